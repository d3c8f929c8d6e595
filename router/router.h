/*
 * router: shared state of the router process — the store, the peers (ingresses and sender
 * instances) and the job cache. main.c runs the loop; handle.c applies frames inside one
 * write transaction per batch (group commit); dispatch.c hands jobs to senders.
 */
#ifndef ROUTER_H
#define ROUTER_H
#include "config.h"
#include "jobs.h"
#include "peer.h"
#include "store.h"
#include <stdint.h>

#define ROUTER_PEERS 256
#define PLATFORMS 5 /* indexed by enum frame_platform */

struct router_peer {
	struct peer p;
	int in_use;
	uint64_t gen;
	uint32_t in_flight;
};

/* A frame waiting for the next group commit. */
struct pending {
	int slot;
	uint64_t gen;
	size_t len;
	uint8_t *buf;
};

struct router {
	const struct config *cfg;
	struct store store;
	struct router_peer peers[ROUTER_PEERS];
	uint64_t next_gen;
	struct jobs_held held;
	struct jobs_ring ready[PLATFORMS];
	int spilled;		/* jobs in LMDB not in the ready rings: rescan */
	uint64_t next_scan_ms, last_scan_ms;
	struct pending *batch;
	size_t nbatch, batch_cap;
	uint64_t *fresh;	/* jobs committed by this batch, to queue after commit */
	uint32_t *fresh_platform;
	size_t nfresh, fresh_cap;
	uint64_t outbox_jobs;	/* mirror of the n_jobs meta counter */
};

/* handle.c: applies the batch in one transaction and answers each frame. */
void router_commit_batch(struct router *r);
/* dispatch.c */
void router_dispatch(struct router *r);
void router_rescan(struct router *r);
void router_sender_gone(struct router *r, int slot);
int router_reply(struct router *r, int slot, uint64_t gen, uint64_t id, uint32_t status);
void router_drop_peer(struct router *r, int slot, const char *why);
uint64_t router_backoff(const struct router *r, uint32_t attempts);
#endif
