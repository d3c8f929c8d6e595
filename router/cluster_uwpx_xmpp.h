/*
 * cluster_uwpx_xmpp: the UWPX and XMPP side of the router in cluster mode (docs/cluster.md "UWPX and
 * XMPP"). Which of their requests are registry changes, the seed that makes a change that draws
 * push nodes and secrets apply the same on every router, and the changes that carry the state
 * of one machine: WNS back-off and waiting jobs, refreshes, domain binding, device expiry.
 */
#ifndef CLUSTER_X_H
#define CLUSTER_X_H
#include <lmdb.h>
#include <nats/nats.h>
#include <stdint.h>

#define CLUSTER_H_SEED "Pp-Seed" /* 64 hex: the seed of a change's nodes and secrets */
#define CLUSTER_H_JOB "Pp-Job"	 /* a WNS job's "<acceptance sequence>.<accepted ms>" */
#define CLUSTER_H_APP "Pp-App"	 /* a result's app, from its subject pp.res.<platform>.<app> */
#define CLUSTER_H_OK "Pp-Ok"	 /* a WNS job whose delivery wns-sender reports (pp.res) */
#define CLUSTER_H_UNTIL "Pp-Until" /* a release: the end of the back-off after which it was sent */

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
struct bus;
struct xdevice;
/* A WNS or XMPP job's result in PP_REGISTRY, m its message (header Pp-Ref: the job's device or
 * node; Pp-Job): a dead channel or token is marked, a WNS 200 refreshes the device and ends its
 * run of 406s, a 406 backs the channel off and holds the job, as on one machine. */
void cluster_x_apply_result(struct router *r, MDB_txn *txn, const struct frame *push, const struct frame *res,
			    natsMsg *m, uint64_t ts);

/* Opens the cluster-only table (waiting jobs, the sweep's state) at start. 0, or -1. */
int cluster_x_init(struct router *r);
/* 1 when m is one of the changes below (subjects pp.reg.x-*: hold, release, touch, bind, expire). */
int cluster_x_owns(natsMsg *m);
/* Applies such a change (stream sequence seq, stored at ts) in a child of txn: STATUS_OK or
 * STATUS_ERROR (nothing of it applied). */
uint32_t cluster_x_apply(struct router *r, MDB_txn *txn, natsMsg *m, uint64_t seq, uint64_t ts);

/* The message a WNS job (frame, for device dev, as d is in the caught-up copy) becomes: while the
 * channel backs off, a hold change (*held = 1, id "xh<job>"); otherwise the job on subj with id,
 * with Pp-Ok when its delivery must be reported (the channel had 406s, or the device's refresh is
 * older than a sixteenth of router.device_expiry_s). Both carry Pp-Ref and Pp-Job (job: the
 * request's PP_REQ sequence). NULL on failure. */
natsMsg *cluster_x_wns_msg(struct router *r, const char *subj, const char *id, const uint8_t *frame, size_t len,
			   const char *dev, const struct xdevice *d, uint64_t job, uint64_t accepted_ms, uint64_t now,
			   int *held);
/* A test push's refresh of dev as a change, only when d's refresh is that old; else NULL. */
natsMsg *cluster_x_touch(struct router *r, const char *dev, const struct xdevice *d, uint64_t job, uint64_t now);
/* The domain binding of an accepted publish (request req) as a change. */
natsMsg *cluster_x_bind_change(natsMsg *req, uint64_t job);

/* Room for one more job on PP_JOBS, the cluster's outbox (its message count, read at most once
 * a second, against router.outbox_max): 1, or 0 (counted busy). */
int cluster_x_jobs_room(struct router *r, struct bus *b);
/* This router's test pushes waiting for WNS (at most XTEST_MAX, each for XTEST_WAIT_MS or until
 * this router relays its answer): 0 added, -1 full (counted busy). */
int cluster_x_test_add(const char *reply, uint64_t frame_id);
void cluster_x_test_done(const char *reply, uint64_t frame_id);
/* Once a second: waiting jobs whose back-off ended go to PP_JOBS and are released; an expiry
 * sweep change when the last sweep is a minute old. */
void cluster_x_tick(struct router *r, struct bus *b);

/* cluster.c: publishes changes to PP_REGISTRY (taking them) and applies them, this router
 * counting what they change. 0, or -1. */
int router_cluster_changes(struct router *r, natsMsg **msgs, size_t n);
#endif
