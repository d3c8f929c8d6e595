/*
 * router: shared state of the router process — the store, the peers (ingresses and sender
 * instances) and the job cache. main.c puts the peers and timers on the event loop
 * (common/loop.c); handle.c applies frames inside one write transaction per batch (group
 * commit), uwpx_xmpp_handle.c those of UWPX and XMPP; dispatch.c hands jobs to senders.
 */
#ifndef ROUTER_H
#define ROUTER_H
#include "config.h"
#include "frame.h"
#include "jobs.h"
#include "outbox.h"
#include "peer.h"
#include "store.h"
#include "uwpx_uri.h"
#include <stdint.h>

struct loop;

#define ROUTER_PEERS 256
#define SENDERS_SEEN_MAX 64  /* sender names remembered for health answers (senders.c) */
#define SENDER_NAME_MAX 97   /* "apns-sender:NAME" and its NUL */
#define PLATFORMS 5 /* indexed by enum frame_platform */
/* Ready queues, one per (platform, app): a platform's default app at its platform's index, the
 * other apps after them (apps.c). */
#define LANES (PLATFORMS + CONF_APPS_MAX)

struct router_peer {
	struct peer p;
	int in_use;
	uint32_t sock_role;	/* the role class of the socket it connected to (main.c LISTENERS) */
	uint64_t gen;
	uint32_t in_flight;
	uint64_t accepted_ms;	/* monotonic: the hello deadline counts from here */
	int forged_logged;	/* a result for a job it does not hold was logged once */
	int lane;		/* a sender: the lane of its (platform, app); set at its hello */
	struct loop_fd *h;	/* its socket on the loop */
};

/* Internal status: the request succeeded and is answered later (UWPX test push). */
#define STATUS_DEFERRED 0xffffffffu
#define XTEST_MAX 256
#define XTEST_WAIT_MS 10000

/* A frame waiting for the next group commit, and what its handler left for after the commit. */
struct pending {
	int slot;
	uint64_t gen;
	size_t len;
	uint8_t *buf;
	uint8_t *reply;		/* a whole reply frame (FRAME_NODES) to send instead of a FRAME_REPLY */
	size_t reply_len;
	uint64_t job;		/* test push: the job whose outcome answers it; result: the job it ended */
	uint32_t platform;	/* the peer's platform (results are applied only to jobs of it) */
	int lane;		/* a sender's lane (results only for jobs of its app); 0 = not checked */
	int answer;		/* result: the job was a test push; answer it with answer_status */
	uint32_t answer_status;
};

/* A UWPX test push waiting for its job's final outcome. */
struct xtest {
	uint64_t job, gen, frame_id, deadline_ms; /* deadline on the monotonic clock */
	int slot;
};

struct router {
	const struct config *cfg;
	struct loop *lp;	/* the process's event loop (main.c; cluster.c in cluster mode) */
	struct store store;
	struct router_peer peers[ROUTER_PEERS];
	uint64_t next_gen;
	struct jobs_held held;
	struct jobs_ring ready[LANES];
	int spilled;		/* jobs in LMDB not in the ready rings: rescan */
	uint64_t last_scan_ms;	/* monotonic: the last rescan (main.c) */
	struct pending *batch;
	size_t nbatch, batch_cap;
	uint64_t *fresh;	/* jobs committed by this batch, to queue after commit */
	uint32_t *fresh_platform; /* each one's lane */
	size_t nfresh, fresh_cap;
	uint64_t outbox_jobs;	/* mirror of the n_jobs meta counter */
	struct xtest xtests[XTEST_MAX];
	size_t nxtests;
	char sweep_cursor[65];	/* device id the expiry sweep continues after */
	/* Peer trust (docs/operations.md, "Security model"): the uid that may take each role
	 * (indexed by enum frame_role; root always may), connections without a hello yet, and
	 * those closed for it since the last summary line. */
	uint32_t role_uid[ROLE_TOOL + 1];
	struct uwpx_uri_rules uri_rules; /* WNS channel URIs, checked again here (uwpx_uri.h) */
	uint32_t nunauth;
	uint64_t unauth_closed, next_unauth_log_ms;
	uint64_t results_ignored;
	/* LMDB map use (registry.c): last reading, and whether the warning is in force. */
	int map_warned;		/* past router.map_warn_percent: warned, until it drops below */
	int map_full;		/* past router.map_full_percent: registrations refused */
	int map_skip;		/* ticks to skip before the next reading (main.c check_map) */
	/* Senders that have been connected since the router started (senders.c). */
	char seen[SENDERS_SEEN_MAX][SENDER_NAME_MAX];
	size_t nseen;
};

/* apps.c (docs/config.md, section apps). An app is given by name and length; the empty name is
 * the platform's default app (its first in `apps`, or "default"), as stored. */
struct appset {
	const char *app[PLATFORMS]; /* per device (enum frame_platform), normalised: "" = default */
	size_t len[PLATFORMS];
};
/* The configuration's platform name of an enum frame_platform ("apns", ...), NULL for others. */
const char *router_platform_conf(uint32_t platform);
/* The lane of (platform, app), or -1 when app is no app of the platform. */
int router_lane(const struct router *r, uint32_t platform, const char *app, size_t len);
/* The app as stored: "" for the platform's default app, else app itself; -1 when app is no app
 * of the platform. */
int router_app_norm(const struct router *r, uint32_t platform, const char *app, size_t len, const char **out,
		    size_t *out_len);
/* The WNS app of UWPX devices (ingress_uwpx.app) as stored. */
void router_wns_app(const struct router *r, const char **app, size_t *len);
/* A Bchat request's app set (TAG_APP_IOS, ...; absent = the default app); -1 when one names no
 * app of its platform. */
int router_appset(const struct router *r, const struct frame *f, struct appset *s);
/* 1 when a token of device stored with app belongs to the set. */
int appset_has(const struct appset *s, uint32_t device, const char *app, size_t len);
/* handle.c: applies the batch in one transaction and answers each frame. */
/* One request frame inside txn at time now (cluster mode applies registry changes with it). */
uint32_t router_apply_request(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now, struct pending *p);
void router_commit_batch(struct router *r);
/* Remembers a job committed by this batch, to queue once the batch is on disk in its lane. */
int router_fresh_add(struct router *r, uint64_t id, uint32_t lane);
/* uwpx_xmpp_handle.c: UWPX and XMPP frames, results of KIND_WNS / KIND_XMPP jobs, test-push answers and
 * the device expiry sweep. */
uint32_t xhandle_request(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now, struct pending *p);
/* What an XEP-0357 publish becomes once checked (xhandle_publish_check): its job's fields
 * (token and ref point into the xnode/xdevice given), and whether the node binds its domain. */
struct xpublish {
	uint32_t platform, kind;
	const char *token, *ref, *app; /* app: the job's app as stored ("" = the platform's default) */
	size_t token_len, ref_len, app_len;
	char body[256];
	int body_len, bind;
};
struct xnode;
struct xdevice;
uint32_t xhandle_publish_check(struct router *r, MDB_txn *txn, const struct frame *f, struct xnode *n,
			       struct xdevice *d, struct xpublish *out);
/* 0 handled (job finished), 1 to be retried by the caller, -1 store error. */
int xhandle_result(struct router *r, MDB_txn *txn, const struct frame *f, const struct outbox_job *j, uint64_t now,
		   struct pending *p);
void xtest_add(struct router *r, int slot, uint64_t gen, uint64_t frame_id, uint64_t job);
void xtest_answer(struct router *r, uint64_t job, uint32_t status);
void xtest_expire(struct router *r, uint64_t mono_now);
void xtest_peer_gone(struct router *r, int slot);
/* Ends queued jobs that can no longer be delivered (dead WNS channel, device gone). */
void xhandle_drop(struct router *r, const uint64_t *ids, size_t n);
/* Jobs dispatch did not send because their WNS channel backs off after a 406: each waits for
 * the back-off to end as its channel's one pending job, or is superseded by a newer one
 * (docs/senders.md, "Throttled channels"). One commit for them all; on failure they stay due and
 * come back. */
void xhandle_hold(struct router *r, const uint64_t *ids, size_t n);
#define HOLD_MAX 1024 /* such jobs per dispatch round */
/* One bounded pass of the device expiry sweep at wall time now (ms); returns devices removed. */
long router_sweep_devices(struct router *r, uint64_t now);
/* dispatch.c */
void router_dispatch(struct router *r);
void router_rescan(struct router *r);
void router_sender_gone(struct router *r, int slot);
/* 1 when job id is in flight on the sender at slot, so its result may be applied; else the
 * result is counted as ignored (logged once per connection) and 0. */
int router_result_held(struct router *r, int slot, uint64_t id);
int router_reply(struct router *r, int slot, uint64_t gen, uint64_t id, uint32_t status);
/* main.c: the peers */
/* Sends a whole reply frame to an ingress (if it is still the same connection). */
int router_send_frame(struct router *r, int slot, uint64_t gen, const uint8_t *buf, size_t len);
void router_drop_peer(struct router *r, int slot, const char *why);
/* senders.c: a sender's connection is gone (remembered as expected); the answer to an
 * ingress's FRAME_SENDERS_QUERY. */
void router_senders_gone(struct router *r, int slot);
void router_reply_senders(struct router *r, int slot, uint64_t id);
/* handle.c: the retry delay after the given number of attempts */
uint64_t router_backoff(const struct router *r, uint32_t attempts);
/* cluster.c: cluster mode (docs/cluster.md), on the bus instead of the sockets. Prepare reads the
 * credentials (before privileges drop); start connects (inside the sandbox) and puts the
 * router's rounds on r->lp as timers, -1 when it cannot run; stop, after the loop, closes. */
int router_cluster_prepare(struct router *r);
int router_cluster_start(struct router *r);
void router_cluster_stop(struct router *r);
#endif
