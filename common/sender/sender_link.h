/*
 * sender_link: a provider sender's connection to the router (router-sender.sock), part of struct
 * sender (sender_loop.h), a descriptor and a timer of its loop: hello as a sender of ops->platform, PUSH frames in while there is
 * room for jobs, RESULT frames out through the peer's bounded queue.
 */
#ifndef SENDER_LINK_H
#define SENDER_LINK_H
#include "guard.h"
#include "loop.h"
#include "peer.h"
#include "reconnect.h"
#include <stdint.h>

struct sender;

struct sender_link {
	struct peer peer;	/* fd -1 while disconnected */
	uint64_t gen;		/* bumped on every connect and loss */
	struct reconnect rc;	/* when to try again; rc.warned: the router's absence was said */
	char path[108];		/* router-sender.sock */
	uint32_t events;	/* what the router fd is watched for */
	struct loop_fd *h;	/* the router socket in the loop */
	struct loop_timer *retry; /* the next connection try */
	struct sender_bus *bus;	/* cluster mode: jobs come from NATS (sender_bus.h) */
};

/* Registers the link with the sender's loop: the first connection is tried in its first turn,
 * and after a failure or a loss when rc says. 0, or -1 (out of memory). */
int sender_link_start(struct sender *s);
/* Connects to the router and says hello; on failure schedules the next try (rc). */
void sender_link_try(struct sender *s);
/* At shutdown: the connection closed, the link's handles freed. */
void sender_link_stop(struct sender *s);
/* Closes the router connection (jobs that came on it are forgotten) and schedules a reconnect. */
void sender_link_drop(struct sender *s, const char *why);
/* Watches the router socket for reading only while there is room for jobs, and for writing
 * while results are queued; called at the end of every turn of the loop. */
void sender_link_watch(struct sender *s);
/* Sends a job's result to the router, unless the connection it came on (link_gen) is gone:
 * then the router has re-queued the job already. */
/* The result frame of job id with verdict v, written into buf (512 bytes are enough); its
 * length, or -1. One encoding for both transports (the router socket and pp.res). */
long sender_result_frame(uint8_t *buf, uint64_t id, const struct guard_verdict *v);
void sender_link_result(struct sender *s, uint64_t link_gen, uint64_t id, const struct guard_verdict *v);
#endif
