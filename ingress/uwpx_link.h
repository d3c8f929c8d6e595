/*
 * uwpx_link: ingress-uwpx's connection to the router, for a single-threaded event loop. It
 * connects (and reconnects, at most every 200 ms) to the router's SEQPACKET socket, says
 * hello, sends request frames through a bounded peer queue and hands back the frames that
 * arrive, parsed. Matching replies to requests is the caller's business (frame ids).
 */
#ifndef UWPX_LINK_H
#define UWPX_LINK_H
#include "frame.h"
#include "peer.h"
#include <stddef.h>
#include <stdint.h>

struct uwpx_link {
	char path[108];
	struct peer p;	  /* p.fd is -1 while the router is away */
	uint64_t next_try;
	int warned;
	uint8_t *rbuf;	  /* FRAME_MAX */
};

int uwpx_link_init(struct uwpx_link *l, const char *path);
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
#endif
