/*
 * peer: one frame connection with a bounded queue for frames the socket could not take at
 * once. A peer whose queue would pass its bound is reported to the caller, which drops it:
 * a slow peer can cost it its connection, never the process its memory.
 */
#ifndef PEER_H
#define PEER_H
#include "frame.h"
#include <stddef.h>
#include <stdint.h>

#define PEER_QUEUE_MAX_BYTES (16u << 20)
/* Frames gathered into one FRAME_BATCH before it is sent (see peer_batch_flush). */
#define PEER_BATCH_BYTES (64u * 1024)

struct peer_msg;

struct peer {
	int fd;
	uint32_t role, platform, pid;
	char instance[65];
	char app[33];		/* the hello's TAG_APP; "default" when absent */
	int hello_done;
	/* The kernel's word on who connected (SO_PEERCRED at connect()), set by peer_init_cred();
	 * has_cred 0 when it could not be read. The hello's pid is only what the peer claims. */
	int has_cred;
	uint32_t uid, gid, cred_pid;
	struct peer_msg *head, *tail;
	size_t queued_bytes;
	/* Set by the owner once the peer has sent a FRAME_BATCH (so it reads them): from then on
	 * peer_send() gathers frames in batch until peer_batch_flush(). */
	int batches;
	uint8_t *batch_buf; /* FRAME_MAX bytes, allocated on first use */
	struct frame_batch batch;
};

void peer_init(struct peer *p, int fd);
/* Records the connecting process's credentials (SO_PEERCRED); -1 when they cannot be read. */
int peer_init_cred(struct peer *p);
/* Sends now or queues (or, when p->batches, adds to the batch); -1 when the queue bound would
 * be passed or the socket failed. */
int peer_send(struct peer *p, const uint8_t *buf, size_t len);
/* Sends the frames gathered by peer_send(): one FRAME_BATCH, or the frame alone when it is the
 * only one. Call once per turn of the owner's loop; -1 as for peer_send(). */
int peer_batch_flush(struct peer *p);
/* Sends queued frames until the socket is full; -1 on a socket error. */
int peer_flush(struct peer *p);
int peer_has_queued(const struct peer *p);
/* Frees the queue and closes the fd. */
void peer_close(struct peer *p);
/* Applies a hello frame to the peer; -1 (with a reason) when it is not a valid hello. */
int peer_hello(struct peer *p, const uint8_t *buf, size_t len, const char **why);
#endif
