/*
 * cluster_uwpx_xmpp: the UWPX and XMPP side of the router in cluster mode (docs/cluster.md "UWPX and
 * XMPP"). Which of their requests are registry changes, and the seed that makes a change that
 * draws push nodes and secrets apply the same on every router.
 */
#ifndef CLUSTER_X_H
#define CLUSTER_X_H
#include <lmdb.h>
#include <nats/nats.h>
#include <stdint.h>

#define CLUSTER_H_SEED "Pp-Seed" /* 64 hex: the seed of a change's nodes and secrets */

/* 1 when a request of this frame type is a registry change (UWPX channel and accounts, XMPP
 * register and unregister). */
int cluster_x_is_change(uint8_t type);
/* On the change about to be published for a request of this type: a fresh random seed when the
 * change draws nodes or secrets. 0, or -1. */
int cluster_x_seed_change(natsMsg *m, uint8_t type);
/* Before applying change m: its seed, if it carries one, drives xreg_random; after: back. A
 * change that should carry a seed and does not (or a bad one) is refused: -1. */
int cluster_x_seed_begin(natsMsg *m, uint8_t type);
void cluster_x_seed_end(void);

struct router;
struct frame;
/* A WNS or XMPP job's result in PP_REGISTRY (header Pp-Ref: the job's device or node): a dead
 * channel or token is marked, as on one machine. */
void cluster_x_apply_result(struct router *r, MDB_txn *txn, const struct frame *push, const struct frame *res,
			    const char *ref, uint64_t ts);
#endif
