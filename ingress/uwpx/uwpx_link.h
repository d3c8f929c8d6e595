/*
 * uwpx_link: ingress-uwpx's connection to the router, for a single-threaded event loop. It
 * connects (and reconnects, at most every 200 ms) to the router's SEQPACKET socket, says
 * hello, sends request frames through a bounded peer queue and hands back the frames that
 * arrive, parsed. Matching replies to requests is the caller's business (frame ids).
 * In cluster mode (router_link_bus.h, docs/cluster.md) the same calls publish each request to
 * pp.req.<type> with Pp-Reply and hand back the routers' answers: the link is "up" at once, and
 * its fd is an epoll set of its own that is readable when answers wait.
 */
#ifndef UWPX_LINK_H
#define UWPX_LINK_H
#include "frame.h"
#include "../router_link_bus.h"
#include "peer.h"
#include <stddef.h>
#include <stdint.h>

struct uwpx_link {
	char path[108];
	struct peer p;	  /* p.fd is -1 while the router is away */
	uint64_t next_try;
	int warned;
	uint8_t *rbuf;	  /* FRAME_MAX */
	struct link_bus *bus;	/* cluster mode, else NULL */
	int bus_ep;		/* cluster mode: the epoll set p.fd stands for */
	uint32_t timeout_ms;
	uint8_t *ans[256];	/* cluster mode: answers taken from the bus, not yet read */
	size_t ans_len[256], nans, ans_pos;
};

/* timeout_ms: cluster mode only, how long a request that the servers did not store is sent again. */
int uwpx_link_init(struct uwpx_link *l, const char *path, uint32_t timeout_ms);
/* When down and due, tries to connect; returns the new fd once connected, else -1. */
int uwpx_link_connect(struct uwpx_link *l, uint64_t now_ms);
int uwpx_link_up(const struct uwpx_link *l);
/* Sends (or queues) a frame; -1 when the link is down or just failed (it is then down). */
int uwpx_link_send(struct uwpx_link *l, const uint8_t *frame, size_t len);
/* Sends what was queued; -1 when the link failed (it is then down). */
int uwpx_link_flush(struct uwpx_link *l);
/* Reads one frame into *f (valid until the next read): 1 when one arrived, 0 when none is
 * waiting, -1 when the link was lost (it is then down). Invalid frames are logged and skipped. */
int uwpx_link_read(struct uwpx_link *l, struct frame *f);
void uwpx_link_close(struct uwpx_link *l, const char *why);
/* At exit: frees the link's buffers and its bus side. */
void uwpx_link_free(struct uwpx_link *l);
#endif
