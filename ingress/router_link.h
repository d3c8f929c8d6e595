/*
 * router_link: an ingress's connection to the router. Any thread may submit a request
 * frame; one thread (link_run) owns the socket's reading side, matches replies to requests
 * by frame id, times them out, and reconnects when the router restarts. Every submitted
 * request gets exactly one completion: the router's reply, or STATUS_BUSY when the router
 * is absent, too slow, or the pending table is full (back-pressure, never a queue).
 */
#ifndef ROUTER_LINK_H
#define ROUTER_LINK_H
#include "frame.h"
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct router_link;

/* Called on the link thread; reply is NULL when status was made up locally (busy/timeout). */
typedef void (*link_done_fn)(void *ctx, uint32_t status, const struct frame *reply);

struct router_link *link_new(const char *sock_path, size_t max_pending, uint32_t timeout_ms, uint32_t role);
/* Sends a frame built with frame_begin(.., id 0): the link sets the id. 0 when submitted
 * (done will run later, possibly before this returns), -1 when refused (done not called). */
int link_submit(struct router_link *l, uint8_t *frame, size_t len, link_done_fn done, void *ctx);
/* Runs until *stop: connects, reads replies, expires requests. */
void link_run(struct router_link *l, volatile sig_atomic_t *stop);
void link_free(struct router_link *l);
#endif
