/*
 * reconnect: the one reconnect policy of the links to the router, the ingresses'
 * (ingress/router_link.c) and the senders' (sender_link.c): try at once (at start and after a
 * loss), then again every
 * interval (plus a random part up to jitter, so many senders do not come back together) while
 * the peer is away; say the first failure with its reason, then nothing until it is back; say
 * a connection and its loss. The same words for every link, whatever the caller.
 */
#ifndef RECONNECT_H
#define RECONNECT_H
#include <stdint.h>

struct reconnect {
	const char *what;	/* the peer, as logs name it (a socket path): must outlive this */
	uint32_t interval_ms, jitter_ms;
	uint64_t next_ms;	/* monotonic: no try before */
	int warned;		/* the peer's absence was said */
};

void reconnect_init(struct reconnect *r, const char *what, uint32_t interval_ms, uint32_t jitter_ms);
/* 1 when a try is due at now_ms. */
int reconnect_due(const struct reconnect *r, uint64_t now_ms);
/* A try failed with errno err: "<what> not reachable (<reason>); retrying", the first time. */
void reconnect_failed(struct reconnect *r, uint64_t now_ms, int err);
/* Connected: "connected to <what><detail>" (detail: "" or e.g. " as ..."). */
void reconnect_ok(struct reconnect *r, const char *detail);
/* The connection was lost: "lost the connection to <what>: <why>"; the next try is due at once
 * (a peer that restarted is usually back; one that is not costs one failed try). */
void reconnect_lost(struct reconnect *r, const char *why);
#endif
