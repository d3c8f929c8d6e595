/*
 * router_link: a connection from an ingress worker to the router (or to statsd's query
 * socket). A link belongs to one thread, which submits request frames, reads the replies when
 * the link's socket is readable, and ticks it: the tick reconnects when the peer restarts and
 * times requests out. Every submitted request gets exactly one completion: the peer's reply,
 * or STATUS_BUSY when the peer is absent, too slow, or the pending table is full
 * (back-pressure, never a queue).
 */
#ifndef ROUTER_LINK_H
#define ROUTER_LINK_H
#include "frame.h"
#include <stddef.h>
#include <stdint.h>

struct router_link;

/* Called on the link's thread; reply is NULL when status was made up locally (busy/timeout). */
typedef void (*link_done_fn)(void *ctx, uint32_t status, const struct frame *reply);

/* The link registers its socket, once connected, in epfd (EPOLLIN, data.ptr = tag). batches:
 * the peer reads FRAME_BATCH (the router does; statsd does not). */
struct router_link *link_new(const char *sock_path, size_t max_pending, uint32_t timeout_ms, uint32_t role,
			     int batches, int epfd, void *tag);
/* Queues a frame built with frame_begin(.., id 0) (copied; the link sets the id). 0 when
 * submitted (done runs later, never before this returns: busy too, if the socket will not take
 * the frame when it is sent), -1 when refused (done not called). */
int link_submit(struct router_link *l, uint8_t *frame, size_t len, link_done_fn done, void *ctx);
/* The same with a deadline of its own (timeout_ms from now) instead of the link's. */
int link_submit_within(struct router_link *l, uint8_t *frame, size_t len, uint32_t timeout_ms, link_done_fn done,
		       void *ctx);
/* 1 while the link's socket is connected to its peer. */
int link_connected(const struct router_link *l);
/* Sends every queued frame; call before the thread waits for events again. */
void link_flush(struct router_link *l);
/* Reads every reply waiting on the socket; call when it is readable. */
void link_read(struct router_link *l);
/* Connects (at most every 200 ms while the peer is away) and expires overdue requests; call
 * at least every 100 ms. */
void link_tick(struct router_link *l, uint64_t now_ms);
/* Completes every pending request with STATUS_BUSY, then frees the link. */
void link_free(struct router_link *l);
#endif
