/*
 * cluster: the router in cluster mode (docs/cluster.md "Design"). Instead of the sockets,
 * timers on the router's loop work the bus: requests come from the shared durable consumer on PP_REQ, registry
 * changes are published to PP_REGISTRY and applied, in the stream's order, by every router to
 * its own LMDB copy (the last applied sequence stored in the same transaction; a copy whose next
 * changes were compacted away starts from the newest snapshot, cluster_snap.c), notifies are
 * resolved against that copy once it caught up with the stream's last sequence, and become
 * jobs on PP_JOBS; results that change the registry come from PP_RES and go to PP_REGISTRY.
 * A request is acknowledged on PP_REQ only after everything it caused was acknowledged by its
 * stream; a redelivered one produces the same Nats-Msg-Ids, so nothing is stored twice.
 * Trusts messages only after frame_parse(); the servers named in the configuration are the
 * cluster. Holds the bus connection, the subscriptions and the last applied registry sequence.
 */
#include "bus.h"
#include "bus_feed.h"
#include "cluster_snap.h"
#include "cluster_uwpx_xmpp.h"
#include "counters.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "uwpx_xmpp_reg.h"
#include "router.h"
#include <sodium.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQ_BATCH 256
#define REQ_FEED 64	     /* requests asked for at once (docs/cluster.md, "Pulling") */
#define REQ_QUEUED 512	     /* requests this router holds at most, taken and not yet handled */
#define ROUND_SPACING_MS 20 /* a busy router begins a round at most this often (docs/cluster.md, "Batching") */
#define REQ_IDLE_WAIT_MS 100 /* an idle router's round (registry catch-up, cluster_x_tick) comes this often */
#define RING 65536		/* statuses of recently applied registry changes */
#define META_SEQ SNAP_META_SEQ
#define H_REGISTERED "Pp-Registered" /* an imported registration's time (ms since the epoch) */
#define H_FAILURES "Pp-Failures"     /* and its consecutive failures */

struct creq {
	natsMsg *m;
	struct frame f;
	uint64_t seq;		/* PP_REQ stream sequence */
	const char *reply;	/* Pp-Reply header: where the ingress waits, or NULL */
	uint64_t reg_seq;	/* its change's PP_REGISTRY sequence */
	uint8_t *answer;	/* a whole answer frame (FRAME_NODES) recorded when applied */
	size_t answer_len;
};

static struct {
	struct bus bus;
	natsSubscription *req, *res, *reg;
	struct bus_queue *reqq;	/* requests as they arrive (bus_feed), taken a round at a time */
	struct bus_feed *reqf;
	volatile long req_room;
	struct bus_queue *resq;	/* results (PP_RES) as they arrive */
	struct bus_feed *resf;
	volatile long res_room;
	struct loop_fd *reqh, *resh; /* the queues' eventfds on the router's loop */
	struct loop_timer *round; /* the next round of requests */
	uint64_t round_at;	/* when the last round that had requests began */
	uint64_t applied;
	int reg_broken;		/* the replaying consumer failed or went silent: replace it when idle */
	uint64_t ring_seq[RING];
	uint32_t ring_status[RING];
	struct creq *mine;	/* this round's registry requests, by reg_seq, for their answers */
	size_t nmine;
} C;

int router_cluster_prepare(struct router *r)
{
	char err[256];
	if (bus_prepare(&C.bus, r->cfg, "router", err, sizeof err) < 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

static int is_change(uint8_t type)
{
	return type == FRAME_REGISTER || type == FRAME_UNREGISTER || type == FRAME_SUBSCRIBE ||
	       type == FRAME_UNSUBSCRIBE || type == FRAME_BATCH || cluster_x_is_change(type);
}

/* (Re)creates the ordered consumer that replays PP_REGISTRY after what was applied. */
static int reg_subscribe(void)
{
	jsSubOptions so;
	jsErrCode ec = 0;
	natsStatus s;

	if (C.reg) {
		natsSubscription_Unsubscribe(C.reg);
		natsSubscription_Destroy(C.reg);
		C.reg = NULL;
	}
	jsSubOptions_Init(&so);
	so.Stream = BUS_REGISTRY;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverByStartSequence;
	so.Config.OptStartSeq = C.applied + 1;
	s = js_SubscribeSync(&C.reg, C.bus.js, "pp.reg.>", NULL, &so, &ec);
	if (s != NATS_OK) {
		log_error("cluster: cannot replay %s: %s (error %d)", BUS_REGISTRY, natsStatus_GetText(s), (int)ec);
		C.reg = NULL;
		return -1;
	}
	C.reg_broken = 0;
	return 0;
}

static int result_app(const struct router *r, natsMsg *m, uint32_t platform, const char **app, size_t *len);

/* A provider's verdict that changes the registry: a batch of the job's PUSH and its RESULT. */
static void apply_result(struct router *r, MDB_txn *txn, const struct frame *batch, uint64_t ts, natsMsg *m)
{
	struct frame_field item, tok;
	struct frame push = {0}, res = {0}, inner;
	size_t pos = 0;
	const char *why;
	char tbuf[32];
	const char *app = NULL;
	size_t app_len = 0;
	int k = 0, rc;

	while (frame_batch_next(batch, &pos, &item, &inner, &why) == 1) {
		if (k == 0)
			push = inner;
		else if (k == 1)
			res = inner;
		k++;
	}
	if (k != 2 || push.type != FRAME_PUSH || res.type != FRAME_RESULT || frame_get(&push, TAG_TOKEN, &tok) < 0) {
		log_warn("cluster: a registry result that is not a push and its result; skipped");
		return;
	}
	if (frame_u32(&push, TAG_KIND, 0) == KIND_WNS || frame_u32(&push, TAG_KIND, 0) == KIND_XMPP) {
		cluster_x_apply_result(r, txn, &push, &res, m, ts);
		return;
	}
	if (result_app(r, m, frame_u32(&push, TAG_PLATFORM, 0), &app, &app_len) < 0) {
		log_warn("cluster: a result of an app this router's configuration does not have; skipped");
		return;
	}
	switch (frame_u32(&res, TAG_OUTCOME, 0)) {
	case OUTCOME_TOKEN_DEAD: {
		uint64_t when = frame_u64(&res, TAG_TIMESTAMP, 0);
		/* Removed unless registered again after the provider's timestamp (docs/registry.md);
		 * only the app's own registration (another app's provider said nothing about it). */
		rc = registry_token_dead_app(txn, &r->store, (const char *)tok.val, tok.len, app, app_len,
					     when ? when : ts);
		if (rc == 1) {
			counter_add(CTR_TOKENS_DELETED, 1);
			log_info("token %s removed: provider says it is dead",
				 log_redact((const char *)tok.val, tok.len, tbuf, sizeof tbuf));
		}
		break;
	}
	case OUTCOME_TOKEN_SUSPECT:
		rc = registry_token_failure_app(txn, &r->store, (const char *)tok.val, tok.len, app, app_len, 0);
		if (rc >= r->cfg->router.failure_threshold &&
		    registry_token_dead_app(txn, &r->store, (const char *)tok.val, tok.len, app, app_len, ts) == 1)
			counter_add(CTR_TOKENS_DELETED, 1);
		break;
	}
}

/* A registration moved from one machine by pushctl cluster-import carries its registration time
 * (header Pp-Registered, never later than the change itself) and its consecutive failures
 * (Pp-Failures): it is registered with both, unless the token was registered at that time or
 * later (a registration made in the cluster since, or the same import applied before), which
 * stays. Any other registration is applied as on one machine. */
static uint32_t apply_register(struct router *r, MDB_txn *txn, const struct frame *f, natsMsg *m, uint64_t ts,
			       struct pending *p)
{
	const char *when_h = NULL, *fail_h = NULL;
	char holder[REG_ID_MAX + 2];
	struct registry_token cur;
	struct frame_field tok;
	uint64_t when;
	unsigned long nfail = 0;
	uint32_t status;

	if (natsMsgHeader_Get(m, H_REGISTERED, &when_h) != NATS_OK || when_h == NULL)
		return router_apply_request(r, txn, f, ts, p);
	when = strtoull(when_h, NULL, 10);
	if (when == 0 || when > ts)
		when = ts;
	if (natsMsgHeader_Get(m, H_FAILURES, &fail_h) == NATS_OK && fail_h != NULL)
		nfail = strtoul(fail_h, NULL, 10);
	if (nfail > 255)
		nfail = 255;
	if (frame_get(f, TAG_TOKEN, &tok) < 0)
		return STATUS_ERROR;
	if (registry_lookup_token(txn, &r->store, (const char *)tok.val, tok.len, holder, &cur) == 1 &&
	    cur.registered_ms >= when)
		return STATUS_OK;
	status = router_apply_request(r, txn, f, when, p);
	for (unsigned long i = 0; status == STATUS_OK && i < nfail; i++)
		if (registry_token_failure(txn, &r->store, (const char *)tok.val, tok.len, 0) < 0)
			status = STATUS_ERROR;
	return status;
}

static struct creq *mine_find(uint64_t seq)
{
	for (size_t i = 0; i < C.nmine; i++)
		if (C.mine[i].reg_seq == seq)
			return &C.mine[i];
	return NULL;
}

/* Applies one PP_REGISTRY message (stream sequence seq, stored at ts) inside txn. */
static void apply_change(struct router *r, MDB_txn *txn, natsMsg *m, uint64_t seq, uint64_t ts)
{
	const uint8_t *data = (const uint8_t *)natsMsg_GetData(m);
	size_t len = (size_t)natsMsg_GetDataLength(m);
	struct creq *q = mine_find(seq);
	struct pending p;
	struct frame f;
	const char *why = "";
	uint32_t status = STATUS_ERROR;
	MDB_txn *child;

	memset(&p, 0, sizeof p);
	counters_mute(q == NULL); /* another router counted it when it made the change */
	if (cluster_x_owns(m)) {
		status = cluster_x_apply(r, txn, m, seq, ts); /* UWPX/XMPP state: back-off, refresh, binding, expiry */
	} else if (frame_parse(data, len, &f, &why) < 0 || !is_change(f.type)) {
		log_warn("cluster: registry change %llu is not a change frame (%s); skipped", (unsigned long long)seq,
			 why);
	} else if (mdb_txn_begin(r->store.env, txn, 0, &child) == 0) {
		if (f.type == FRAME_BATCH) {
			apply_result(r, child, &f, ts, m);
			status = STATUS_OK;
		} else if (cluster_x_seed_begin(m, f.type) == 0) {
			status = f.type == FRAME_REGISTER ? apply_register(r, child, &f, m, ts, &p)
							   : router_apply_request(r, child, &f, ts, &p);
			cluster_x_seed_end();
		}
		if (status == STATUS_ERROR || status == STATUS_BUSY || mdb_txn_commit(child) != 0) {
			if (status != STATUS_ERROR && status != STATUS_BUSY)
				status = STATUS_ERROR;
			else
				mdb_txn_abort(child);
			free(p.reply);
			p.reply = NULL;
		}
	}
	counters_mute(0);
	C.ring_seq[seq % RING] = seq;
	C.ring_status[seq % RING] = status;
	if (q && p.reply) {
		q->answer = p.reply;
		q->answer_len = p.reply_len;
	} else {
		free(p.reply);
	}
}

/* The changes after the copy's last one are no longer all in PP_REGISTRY (compacted): the
 * newest snapshot replaces the copy, and the replay goes on after it. This router's own changes
 * that the snapshot already holds got no status here: they are answered busy (the client's retry
 * changes nothing twice). 0, or -1 (the copy is as it was). */
static int reg_restore(struct router *r)
{
	uint64_t seq, before = C.applied;

	if (snap_load(&C.bus, &r->store, &seq) < 0)
		return -1;
	for (size_t i = 0; i < C.nmine; i++) {
		uint64_t s = C.mine[i].reg_seq;
		if (s > before && s <= seq) {
			C.ring_seq[s % RING] = s;
			C.ring_status[s % RING] = STATUS_BUSY;
		}
	}
	C.applied = seq;
	reg_subscribe();
	return 0;
}

/* Applies registry changes in order until applied >= target (waiting at most wait_ms for
 * them), then whatever else is already here; one LMDB transaction for them all. 0, or -1. */
static int reg_catch_up(struct router *r, uint64_t target, int64_t wait_ms)
{
	uint64_t end = mono_ms() + (uint64_t)wait_ms, before = C.applied, quiet_since = mono_ms();
	MDB_txn *txn = NULL;
	int rc, gap = 0;

	for (size_t n = 0; n < 4096;) {
		natsMsg *m = NULL;
		uint64_t seq = 0, ts = 0, now = mono_ms();
		int pending = 0;
		natsStatus s = NATS_ERR;

		if (C.applied >= target) {
			if (C.reg == NULL || natsSubscription_GetPending(C.reg, &pending, NULL) != NATS_OK || pending <= 0)
				break;
			s = natsSubscription_NextMsg(&m, C.reg, 1);
			if (s != NATS_OK)
				break;
		} else {
			if (now >= end)
				break;
			if (C.reg == NULL || C.reg_broken || now >= quiet_since + 300) {
				/* The replaying consumer is silent while we are behind: it may have been on a
				 * server that died. Read the next change from the stream itself (its leader),
				 * and replace the consumer when the router is idle. */
				if (!C.reg_broken)
					log_warn("cluster: registry replay stalled at change %llu of %llu; reading the "
						 "stream directly", (unsigned long long)C.applied, (unsigned long long)target);
				C.reg_broken = 1;
				if (js_GetMsg(&m, C.bus.js, BUS_REGISTRY, C.applied + 1, NULL, NULL) != NATS_OK) {
					if (snap_needed(&C.bus, C.applied) == 1) {
						gap = 1; /* compacted away: a snapshot holds it */
						break;
					}
					usleep(50 * 1000);
					continue;
				}
				seq = natsMsg_GetSequence(m);
				ts = (uint64_t)(natsMsg_GetTime(m) / 1000000);
				goto got;
			}
			s = natsSubscription_NextMsg(&m, C.reg, (int64_t)(end - now < 100 ? end - now : 100));
			if (s != NATS_OK && s != NATS_TIMEOUT) {
				log_warn("cluster: registry replay failed: %s", natsStatus_GetText(s));
				C.reg_broken = 1; /* its consumer is gone: replaced when the router is idle */
				continue;
			}
			if (s != NATS_OK)
				continue;
		}
		if (bus_msg_meta(m, &seq, &ts, NULL) < 0) {
			natsMsg_Destroy(m);
			continue;
		}
got:
		n++;
		quiet_since = mono_ms();
		if (seq <= C.applied) {
			natsMsg_Destroy(m);
			continue;
		}
		if (txn == NULL && (rc = mdb_txn_begin(r->store.env, NULL, 0, &txn)) != 0) {
			log_error("registry: cannot begin a write transaction: %s", mdb_strerror(rc));
			natsMsg_Destroy(m);
			reg_subscribe(); /* it comes again */
			return -1;
		}
		if (seq != C.applied + 1 && snap_needed(&C.bus, C.applied) == 1) {
			natsMsg_Destroy(m); /* compacted away: a snapshot holds what came before it */
			gap = 1;
			break;
		}
		if (seq != C.applied + 1)
			log_warn("cluster: registry changes %llu..%llu are missing from %s", (unsigned long long)C.applied + 1,
				 (unsigned long long)seq - 1, BUS_REGISTRY);
		apply_change(r, txn, m, seq, ts);
		natsMsg_Destroy(m);
		C.applied = seq;
	}
	if (txn != NULL) {
		int bad = store_meta_set(txn, &r->store, META_SEQ, C.applied) < 0;
		if (bad)
			mdb_txn_abort(txn);
		else if ((rc = mdb_txn_commit(txn)) != 0)
			bad = 1;
		if (bad) {
			log_error("registry: the commit of changes %llu..%llu failed; replaying them",
				  (unsigned long long)before + 1, (unsigned long long)C.applied);
			C.applied = before;
			reg_subscribe();
			return -1;
		}
	}
	if (gap && reg_restore(r) == 0 && C.applied < target && mono_ms() < end)
		return reg_catch_up(r, target, (int64_t)(end - mono_ms()));
	return C.applied >= target ? 0 : -1;
}

static uint64_t registry_last_seq(int *ok)
{
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	uint64_t last = 0;

	*ok = js_GetStreamInfo(&si, C.bus.js, BUS_REGISTRY, NULL, &ec) == NATS_OK;
	if (*ok)
		last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return last;
}

static void answer_frame(const char *subject, const uint8_t *buf, size_t len)
{
	/* Pp-Reply comes from an ingress: an inbox, never one of the bus's own subjects. */
	if (subject && strncmp(subject, "_INBOX", 6) == 0)
		natsConnection_Publish(C.bus.nc, subject, buf, (int)len);
}

static void answer_status(const struct creq *q, uint32_t status)
{
	uint8_t buf[64];
	struct frame_writer w;
	long n;

	frame_begin(&w, buf, FRAME_REPLY, q->f.id);
	frame_put_u32(&w, TAG_STATUS, status);
	if ((n = frame_end(&w)) > 0)
		answer_frame(q->reply, buf, (size_t)n);
}

static void answer_counts(struct router *r, const struct creq *q)
{
	uint8_t buf[128];
	struct frame_writer w;
	uint64_t ios = 0, android = 0, ids = 0;
	MDB_txn *txn;
	long n;

	if (mdb_txn_begin(r->store.env, NULL, MDB_RDONLY, &txn) == 0) {
		registry_counts(txn, &r->store, &ios, &android, &ids);
		mdb_txn_abort(txn);
	}
	frame_begin(&w, buf, FRAME_COUNTS, q->f.id);
	frame_put_u64(&w, TAG_COUNT_IOS, ios);
	frame_put_u64(&w, TAG_COUNT_ANDROID, android);
	frame_put_u64(&w, TAG_COUNT_IDS, ids);
	if ((n = frame_end(&w)) > 0)
		answer_frame(q->reply, buf, (size_t)n);
}

static void settle(natsMsg *m, int ok)
{
	if (ok)
		bus_settle(&C.bus, m, BUS_ACK, 0);
	else
		bus_settle(&C.bus, m, BUS_NAK, 500); /* comes again; its ids make the retry idempotent */
}

/* Publishes n registry changes made here and applies the registry up to the last of them, mine[i]
 * standing for msgs[i] (its reg_seq is set), so a read after the answer sees the change.
 * 0, or -1 when a publish or the catch-up failed. The messages are taken (every slot NULL). */
static int publish_and_catch_up(struct router *r, natsMsg **msgs, size_t n, struct creq *mine)
{
	uint64_t *seqs = calloc(n, sizeof *seqs), target = 0;
	int ok;

	if (seqs == NULL)
		for (size_t i = 0; i < n; i++) {
			natsMsg_Destroy(msgs[i]);
			msgs[i] = NULL;
		}
	ok = seqs != NULL && bus_publish(&C.bus, msgs, n, seqs, 4 * C.bus.wait_ms) == 0;

	if (ok) {
		for (size_t i = 0; i < n; i++) {
			mine[i].reg_seq = seqs[i];
			if (seqs[i] > target)
				target = seqs[i];
		}
		C.mine = mine;
		C.nmine = n;
		ok = reg_catch_up(r, target, 5000) == 0;
		C.mine = NULL;
		C.nmine = 0;
	}
	free(seqs);
	return ok ? 0 : -1;
}

/* Registry changes: published to PP_REGISTRY, applied here, then answered and acknowledged. */
static void do_changes(struct router *r, struct creq *q, size_t n)
{
	natsMsg **out = calloc(n, sizeof *out);
	int ok = out != NULL;

	for (size_t i = 0; ok && i < n; i++) {
		char subj[64], id[32];
		snprintf(subj, sizeof subj, "pp.reg.%s", frame_type_name(q[i].f.type));
		snprintf(id, sizeof id, "q%llu", (unsigned long long)q[i].seq);
		out[i] = bus_msg(subj, natsMsg_GetData(q[i].m), (size_t)natsMsg_GetDataLength(q[i].m), id);
		ok = out[i] != NULL && cluster_x_seed_change(out[i], q[i].f.type) == 0;
	}
	if (ok)
		ok = publish_and_catch_up(r, out, n, q) == 0;
	for (size_t i = 0; i < n; i++) {
		if (ok) {
			uint64_t s = q[i].reg_seq;
			if (q[i].answer)
				answer_frame(q[i].reply, q[i].answer, q[i].answer_len);
			else
				answer_status(&q[i], C.ring_seq[s % RING] == s ? C.ring_status[s % RING] : STATUS_OK);
		}
		free(q[i].answer);
		q[i].answer = NULL;
		settle(q[i].m, ok);
	}
	if (out)
		for (size_t i = 0; i < n; i++)
			natsMsg_Destroy(out[i]);
	free(out);
}

int router_cluster_changes(struct router *r, natsMsg **msgs, size_t n)
{
	struct creq *mine = calloc(n, sizeof *mine);
	int ok;

	if (mine == NULL) {
		for (size_t i = 0; i < n; i++) {
			natsMsg_Destroy(msgs[i]);
			msgs[i] = NULL;
		}
		return -1;
	}
	ok = publish_and_catch_up(r, msgs, n, mine) == 0;
	free(mine);
	return ok ? 0 : -1;
}

/* Notifies already turned into jobs by this router, for the window of PP_REQ's own dedupe (two
 * minutes): a client's resend of a notify that an ingress put into a batch (whose Nats-Msg-Id
 * is the batch's) is skipped here. Keyed by 64 bits of the ingress's notify hash; a slot is
 * looked for among SEEN_PROBE neighbours, the oldest giving way when all are in use, so the
 * memory is bounded and a very busy router may forget early (it then delivers again). */
#define SEEN_SLOTS (1u << 20)
#define SEEN_PROBE 16
#define SEEN_TTL_S 120

struct seen {
	uint64_t key;
	uint32_t at_s; /* mono seconds + 1 when stored; 0: free */
	uint32_t round;
};

static struct seen *seen_tab;
static uint32_t seen_round;

static uint32_t seen_now(void)
{
	return (uint32_t)(mono_ms() / 1000) + 1;
}

/* 1 when key was stored within the window (a duplicate); otherwise stores it for this round. */
static int seen_check_add(uint64_t key)
{
	uint32_t now = seen_now();
	struct seen *use = NULL;
	int use_live = 0;

	if (seen_tab == NULL && (seen_tab = calloc(SEEN_SLOTS, sizeof *seen_tab)) == NULL)
		return 0; /* no memory: no dedupe beyond JetStream's */
	for (uint32_t i = 0; i < SEEN_PROBE; i++) {
		struct seen *sl = &seen_tab[(key + i) & (SEEN_SLOTS - 1)];
		int live = sl->at_s != 0 && now - sl->at_s < SEEN_TTL_S;
		if (live && sl->key == key)
			return 1;
		/* a free or expired slot, else the oldest */
		if (!live && (use == NULL || use_live))
			use = sl, use_live = 0;
		else if (live && (use == NULL || (use_live && sl->at_s < use->at_s)))
			use = sl, use_live = 1;
	}
	use->key = key;
	use->at_s = now;
	use->round = seen_round;
	return 0;
}

/* A round whose jobs were not stored: its notifies are forgotten, so that they come again. */
static void seen_forget(const uint64_t *keys, size_t n)
{
	for (size_t k = 0; seen_tab && k < n; k++)
		for (uint32_t i = 0; i < SEEN_PROBE; i++) {
			struct seen *sl = &seen_tab[(keys[k] + i) & (SEEN_SLOTS - 1)];
			if (sl->key == keys[k] && sl->round == seen_round)
				sl->at_s = 0;
		}
}

/* The ingress's notify id (router_link_bus.c): BLAKE2b-128 of the recipient, a 0 and the data;
 * its first 64 bits. */
static uint64_t notify_key(const struct frame_field *to, const struct frame_field *data)
{
	crypto_generichash_state st;
	unsigned char h[16];
	uint64_t k = 0;

	crypto_generichash_init(&st, NULL, 0, sizeof h);
	crypto_generichash_update(&st, to->val, to->len);
	crypto_generichash_update(&st, (const unsigned char *)"", 1);
	crypto_generichash_update(&st, data->val, data->len);
	crypto_generichash_final(&st, h, sizeof h);
	for (int i = 0; i < 8; i++)
		k = (k << 8) | h[i];
	return k ? k : 1;
}

/* The jobs of a round of notifies go to each (platform, app) as FRAME_BATCH messages of up to
 * JOB_BATCH pushes (one push alone is a FRAME_PUSH, as before). */
#define JOB_BATCH 64
#define JOB_BATCH_BYTES (64 * 1024)
#define LANE_APP_MAX 33 /* an app name (≤ 32) and its NUL */

struct fanout {
	struct router *r;
	const struct creq *q;
	const struct frame_field *data;
	natsMsg **jobs;
	size_t n, cap;
	uint64_t huawei, pushes;
	int failed;
	/* one chunk per lane, the (platform, app) of router_lane */
	struct frame_batch chunk[LANES];
	uint8_t *cbuf[LANES];
	uint64_t cseq[LANES];	/* PP_REQ sequence of the request that started each chunk */
	uint32_t cplat[LANES];	/* each lane's platform and app (empty: the platform's default app) */
	char capp[LANES][LANE_APP_MAX];
	struct appset apps;	  /* the notify's apps: other apps' tokens are not its recipients */
};

/* The pushes gathered for a lane (platform, app) leave as one message, on that app's subject. Its Nats-Msg-Id is the sequence of
 * the request that started it and a hash of its content: a round that is done again with the
 * same requests (redelivered after a router died) makes the same messages, stored once; one
 * made differently (other requests in the round, a changed registry) makes new ones, so a
 * push may then be sent twice but none is lost. */
static void chunk_close(struct fanout *fo, int lane)
{
	struct frame_batch *fb = &fo->chunk[lane];
	size_t n = fb->n, len;
	const uint8_t *msg;
	unsigned char h[12];
	char subj[128], id[64], hex[sizeof h * 2 + 1];

	if (n == 0)
		return;
	len = frame_batch_end(fb, &msg);
	if (fo->n == fo->cap) {
		size_t nc = fo->cap ? fo->cap * 2 : 16;
		natsMsg **a = realloc(fo->jobs, nc * sizeof *a);
		if (a == NULL) {
			fo->failed = 1;
			return;
		}
		fo->jobs = a;
		fo->cap = nc;
	}
	crypto_generichash(h, sizeof h, msg, len, NULL, 0);
	sodium_bin2hex(hex, sizeof hex, h, sizeof h);
	snprintf(id, sizeof id, "j%llu.%s", (unsigned long long)fo->cseq[lane], hex);
	bus_job_subject_app(&C.bus, fo->cplat[lane], fo->capp[lane], strlen(fo->capp[lane]), subj, sizeof subj);
	if ((fo->jobs[fo->n] = bus_msg(subj, msg, len, id)) == NULL) {
		fo->failed = 1;
		return;
	}
	fo->n++;
	fo->pushes += n;
}

static void chunks_close(struct fanout *fo)
{
	for (int l = 0; l < LANES; l++)
		chunk_close(fo, l);
}

static int add_job(void *arg, const struct registry_token *t)
{
	struct fanout *fo = arg;
	uint8_t buf[FRAME_MAX];
	struct frame_writer w;
	struct frame_batch *fb;
	long len;
	int lane;

	if (!appset_has(&fo->apps, t->device, t->app, t->app_len))
		return 0;
	/* Each (platform, app) has its own chunks, published to its own subject (docs/cluster.md). */
	lane = router_lane(fo->r, t->device, t->app, t->app_len);
	if (lane < 0 || lane >= LANES || t->app_len >= LANE_APP_MAX)
		return 0; /* an app this router's configuration does not have */
	if (t->device == PLATFORM_HUAWEI && fo->r->cfg->hms.app_id[0] == '\0') {
		fo->huawei++; /* without an hms_sender section: stored and counted, never delivered (as on one machine) */
		return 0;
	}
	if (bus_platform_name(t->device) == NULL || t->device >= PLATFORMS)
		return 0;
	frame_begin(&w, buf, FRAME_PUSH, 0);
	frame_put_u32(&w, TAG_PLATFORM, t->device);
	frame_put_u32(&w, TAG_KIND, KIND_BCHAT);
	frame_put_bytes(&w, TAG_TOKEN, t->token, t->token_len);
	frame_put_bytes(&w, TAG_DATA, fo->data->val, fo->data->len);
	frame_put_u32(&w, TAG_ATTEMPT, 0);
	if ((len = frame_end(&w)) < 0)
		return fo->failed = 1;
	fb = &fo->chunk[lane];
	if (fo->cbuf[lane] == NULL && (fo->cbuf[lane] = malloc(FRAME_MAX)) == NULL)
		return fo->failed = 1;
	if (fb->n > 0 && (fb->n >= JOB_BATCH || frame_batch_size(fb) + FRAME_FIELD_HEADER + (size_t)len > JOB_BATCH_BYTES))
		chunk_close(fo, lane);
	if (fb->n == 0) {
		fo->cseq[lane] = fo->q->seq;
		fo->cplat[lane] = t->device;
		memcpy(fo->capp[lane], t->app, t->app_len);
		fo->capp[lane][t->app_len] = '\0';
	}
	if (frame_batch_add(fb, fo->cbuf[lane], buf, (size_t)len) == NULL)
		return fo->failed = 1;
	return fo->failed;
}

/* One notify of request q: resolved into fo's chunks, unless this router already did it. */
static int one_notify(struct router *r, MDB_txn *txn, struct fanout *fo, const struct frame *f, uint64_t *keys,
		      size_t *nkeys, uint64_t *cnt)
{
	struct frame_field to, data;
	enum registry_target tg;
	uint64_t key;

	if (f->type != FRAME_NOTIFY || frame_get(f, TAG_ID, &to) < 0 || frame_get(f, TAG_DATA, &data) < 0) {
		log_warn("cluster: a batch of notifies holds a %s frame; skipped", frame_type_name(f->type));
		return 0;
	}
	key = notify_key(&to, &data);
	if (seen_check_add(key)) {
		cnt[3]++;
		return 0;
	}
	keys[(*nkeys)++] = key;
	fo->data = &data;
	if (router_appset(r, f, &fo->apps) < 0) {
		log_warn("cluster: a notify for an app this router's configuration does not have; nobody notified");
		return 0;
	}
	if (registry_resolve(txn, &r->store, (const char *)to.val, to.len, r->cfg->router.skip_legacy_groups_only, &tg,
			     add_job, fo) < 0 ||
	    fo->failed)
		return -1;
	cnt[tg == TARGET_ONE_TO_ONE ? 0 : tg == TARGET_CLOSED_GROUP ? 1 : 2]++;
	return 0;
}

static size_t notifies_in(const struct creq *q)
{
	struct frame_field item;
	struct frame inner;
	const char *why;
	size_t pos = 0, n = 0;

	if (q->f.type != FRAME_BATCH)
		return 1;
	while (frame_batch_next(&q->f, &pos, &item, &inner, &why) == 1)
		n++;
	return n;
}

/* Notifies (alone, or batches of them from an ingress): resolved against a copy that has
 * caught up with every acknowledged registration, published as jobs (one message per
 * (platform, app) for the round, up to JOB_BATCH pushes each), acknowledged once every job
 * message was. */
static void do_notifies(struct router *r, struct creq *q, size_t n)
{
	struct fanout fo;
	uint64_t cnt[4] = {0, 0, 0, 0}, *keys = NULL;
	size_t nkeys = 0, total = 0;
	MDB_txn *txn = NULL;
	int ok, have;
	uint64_t target = registry_last_seq(&have);

	memset(&fo, 0, sizeof fo);
	fo.r = r;
	seen_round++;
	for (size_t i = 0; i < n; i++)
		total += notifies_in(&q[i]);
	ok = (keys = malloc((total + 1) * sizeof *keys)) != NULL && have && reg_catch_up(r, target, 5000) == 0 &&
	     mdb_txn_begin(r->store.env, NULL, MDB_RDONLY, &txn) == 0;
	for (size_t i = 0; ok && i < n; i++) {
		fo.q = &q[i];
		if (q[i].f.type == FRAME_BATCH) {
			struct frame_field item;
			struct frame inner;
			const char *why;
			size_t pos = 0;
			while (ok && frame_batch_next(&q[i].f, &pos, &item, &inner, &why) == 1)
				ok = one_notify(r, txn, &fo, &inner, keys, &nkeys, cnt) == 0;
		} else {
			ok = one_notify(r, txn, &fo, &q[i].f, keys, &nkeys, cnt) == 0;
		}
		ok = ok && !fo.failed;
	}
	if (ok) {
		chunks_close(&fo);
		ok = !fo.failed;
	}
	if (txn)
		mdb_txn_abort(txn);
	if (ok)
		ok = bus_publish(&C.bus, fo.jobs, fo.n, NULL, 4 * C.bus.wait_ms) == 0;
	if (ok) {
		counter_add(CTR_MESSAGES_ONE_TO_ONE, cnt[0]);
		counter_add(CTR_MESSAGES_CLOSED_GROUP, cnt[1]);
		counter_add(CTR_MESSAGES_UNTRACKED, cnt[2]);
		counter_add(CTR_JOBS_QUEUED, fo.pushes);
		counter_add(CTR_HUAWEI_SKIPPED, fo.huawei);
		if (cnt[3])
			log_debug("cluster: %llu notifies sent again were skipped", (unsigned long long)cnt[3]);
	} else {
		seen_forget(keys, nkeys);
		log_warn("cluster: %zu notifies not turned into jobs now; they come again", total);
	}
	for (size_t i = 0; i < fo.n; i++)
		natsMsg_Destroy(fo.jobs[i]);
	free(fo.jobs);
	for (size_t l = 0; l < LANES; l++)
		free(fo.cbuf[l]);
	free(keys);
	for (size_t i = 0; i < n; i++)
		settle(q[i].m, ok);
}

static const char test_body[] = "{\"action\":\"test_push\",\"version\":2}";

/* UWPX test pushes: the device is read from a caught-up copy; its test job carries the ingress's
 * Pp-Reply and the request's id, so wns-sender's result comes back (pp.res.wns.<app>) and is
 * relayed as the answer by whichever router takes it (relay_test_answer). While the device's
 * channel backs off the test push is held like any WNS job (a hold change, cluster_uwpx_xmpp.c); a stale
 * device is refreshed (a touch change). Busy when PP_JOBS is full, this router has too many
 * test pushes waiting, or the job was not stored; the request is acknowledged once its job is
 * (or it was answered). */
static void do_tests(struct router *r, struct creq *q, size_t n)
{
	struct xdevice *d = malloc(sizeof *d);
	uint32_t *status = calloc(n, sizeof *status);
	int *held = calloc(n, sizeof *held);
	natsMsg **jobs = calloc(n, sizeof *jobs), **changes = calloc(2 * n, sizeof *changes);
	size_t nj = 0, nc = 0;
	MDB_txn *txn = NULL;
	int have, ok, jobs_ok, changes_ok;
	uint64_t target = registry_last_seq(&have), now = now_ms();

	ok = d && status && held && jobs && changes && have && reg_catch_up(r, target, 5000) == 0 &&
	     mdb_txn_begin(r->store.env, NULL, MDB_RDONLY, &txn) == 0;
	for (size_t i = 0; i < n; i++) {
		static uint8_t buf[FRAME_MAX];
		struct frame_field dev;
		struct frame_writer w;
		char subj[128], id[32], dv[XREG_DEVICE_LEN + 1], fid[24];
		uint64_t acc = 0;
		natsMsg *job, *touch;
		long len;
		int rc;

		if (status)
			status[i] = STATUS_BUSY;
		if (!ok)
			continue;
		if (frame_get(&q[i].f, TAG_DEVICE_ID, &dev) != 0 || dev.len != XREG_DEVICE_LEN) {
			status[i] = STATUS_ERROR;
			continue;
		}
		memcpy(dv, dev.val, XREG_DEVICE_LEN);
		dv[XREG_DEVICE_LEN] = '\0';
		if ((rc = xreg_device_get(txn, &r->store, dv, d)) < 0)
			continue;
		if (rc == 0 || d->dead) {
			status[i] = STATUS_NOT_FOUND;
			continue;
		}
		if (q[i].reply == NULL || !cluster_x_jobs_room(r, &C.bus) || cluster_x_test_add(q[i].reply, q[i].f.id) < 0)
			continue;
		frame_begin(&w, buf, FRAME_PUSH, 0);
		frame_put_u32(&w, TAG_PLATFORM, PLATFORM_WNS);
		frame_put_u32(&w, TAG_KIND, KIND_WNS);
		frame_put_bytes(&w, TAG_TOKEN, d->uri, d->uri_len);
		frame_put_bytes(&w, TAG_DATA, test_body, sizeof test_body - 1);
		frame_put_u32(&w, TAG_ATTEMPT, 0);
		snprintf(id, sizeof id, "t%llu", (unsigned long long)q[i].seq);
		snprintf(fid, sizeof fid, "%llu", (unsigned long long)q[i].f.id);
		{
			const char *app;
			size_t app_len;
			router_wns_app(r, &app, &app_len); /* the WNS app of UWPX devices */
			bus_job_subject_app(&C.bus, PLATFORM_WNS, app, app_len, subj, sizeof subj);
		}
		bus_msg_meta(q[i].m, NULL, &acc, NULL);
		job = (len = frame_end(&w)) > 0
			      ? cluster_x_wns_msg(r, subj, id, buf, (size_t)len, dv, d, q[i].seq, acc, now, &held[i])
			      : NULL;
		if (job && !held[i] &&
		    (natsMsgHeader_Set(job, BUS_H_REPLY, q[i].reply) != NATS_OK || natsMsgHeader_Set(job, "Pp-Req", fid) != NATS_OK)) {
			natsMsg_Destroy(job);
			job = NULL;
		}
		if (job == NULL) {
			cluster_x_test_done(q[i].reply, q[i].f.id);
			continue;
		}
		if (held[i])
			changes[nc++] = job;
		else
			jobs[nj++] = job;
		status[i] = STATUS_DEFERRED; /* answered when WNS answered */
		if ((touch = cluster_x_touch(r, dv, d, q[i].seq, now)) != NULL)
			changes[nc++] = touch;
	}
	if (txn)
		mdb_txn_abort(txn);
	jobs_ok = nj == 0 || bus_publish(&C.bus, jobs, nj, NULL, 4 * C.bus.wait_ms) == 0;
	changes_ok = nc == 0 || router_cluster_changes(r, changes, nc) == 0;
	if (jobs_ok)
		counter_add(CTR_JOBS_QUEUED, nj);
	for (size_t i = 0; i < n; i++) {
		if (status && status[i] == STATUS_DEFERRED && !(held[i] ? changes_ok : jobs_ok)) {
			status[i] = STATUS_BUSY;
			cluster_x_test_done(q[i].reply, q[i].f.id);
		}
		if (status == NULL || status[i] != STATUS_DEFERRED)
			answer_status(&q[i], status ? status[i] : STATUS_BUSY);
		bus_settle(&C.bus, q[i].m, BUS_ACK, 0);
	}
	for (size_t i = 0; jobs && i < nj; i++)
		natsMsg_Destroy(jobs[i]);
	free(changes);
	free(jobs);
	free(held);
	free(status);
	free(d);
}

/* Domain bindings (ingress_xmpp.bind_domain): each publish that would bind its node becomes a
 * change, applied before the publishes are checked, so the first domain in the stream binds, as
 * the first commit does on one machine. *txn is reopened. 0, or -1. */
static int publish_binds(struct router *r, MDB_txn **txn, struct creq *q, size_t n, struct xnode *xn,
			 struct xdevice *xd)
{
	natsMsg **binds = calloc(n, sizeof *binds);
	size_t nb = 0;
	int rc = 0;

	if (binds == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct xpublish x;
		if (xhandle_publish_check(r, *txn, &q[i].f, xn, xd, &x) == STATUS_OK && x.bind &&
		    (binds[nb] = cluster_x_bind_change(q[i].m, q[i].seq)) != NULL)
			nb++;
	}
	if (nb) {
		mdb_txn_abort(*txn);
		*txn = NULL;
		rc = router_cluster_changes(r, binds, nb) == 0 && mdb_txn_begin(r->store.env, NULL, MDB_RDONLY, txn) == 0
			     ? 0
			     : -1;
	}
	free(binds);
	return rc;
}

/* XEP-0357 publishes: checked against a copy that has caught up (node, secret, domain, a dead
 * channel or token), each becomes one job on PP_JOBS (its id from the request's sequence, so a
 * redelivered request makes no second job; header Pp-Ref: the WNS device or XMPP node) and is
 * answered once the job was acknowledged; a WNS job for a channel backing off becomes a hold
 * change instead (cluster_uwpx_xmpp.c). Busy when PP_JOBS is full or the job was not stored in time
 * (the XMPP server's `wait`), as a full outbox is on one machine. */
static void do_publishes(struct router *r, struct creq *q, size_t n)
{
	struct xnode *xn = malloc(sizeof *xn);
	struct xdevice *xd = malloc(sizeof *xd);
	uint32_t *status = calloc(n, sizeof *status);
	int *held = calloc(n, sizeof *held);
	natsMsg **jobs = calloc(n, sizeof *jobs), **holds = calloc(n, sizeof *holds);
	size_t nj = 0, nh = 0;
	MDB_txn *txn = NULL;
	int have, ok, jobs_ok, holds_ok;
	uint64_t target = registry_last_seq(&have), now = now_ms();

	ok = xn && xd && status && held && jobs && holds && have && reg_catch_up(r, target, 5000) == 0 &&
	     mdb_txn_begin(r->store.env, NULL, MDB_RDONLY, &txn) == 0;
	if (ok && r->cfg->xmpp.bind_domain)
		ok = publish_binds(r, &txn, q, n, xn, xd) == 0;
	for (size_t i = 0; ok && i < n; i++) {
		static uint8_t buf[FRAME_MAX];
		char subj[128], id[32], ref[XREG_NODE_MAX + 1];
		struct frame_writer w;
		struct xpublish x;
		uint64_t acc = 0;
		natsMsg *m = NULL;
		long len;

		status[i] = xhandle_publish_check(r, txn, &q[i].f, xn, xd, &x);
		if (status[i] != STATUS_OK)
			continue;
		if (!cluster_x_jobs_room(r, &C.bus)) {
			status[i] = STATUS_BUSY;
			continue;
		}
		frame_begin(&w, buf, FRAME_PUSH, 0);
		frame_put_u32(&w, TAG_PLATFORM, x.platform);
		frame_put_u32(&w, TAG_KIND, x.kind);
		frame_put_bytes(&w, TAG_TOKEN, x.token, x.token_len);
		frame_put_bytes(&w, TAG_DATA, x.body, (size_t)x.body_len);
		frame_put_u32(&w, TAG_ATTEMPT, 0);
		snprintf(id, sizeof id, "p%llu", (unsigned long long)q[i].seq);
		bus_job_subject_app(&C.bus, x.platform, x.app, x.app_len, subj, sizeof subj);
		bus_msg_meta(q[i].m, NULL, &acc, NULL);
		snprintf(ref, sizeof ref, "%.*s", (int)x.ref_len, x.ref);
		if ((len = frame_end(&w)) < 0)
			m = NULL;
		else if (x.kind == KIND_WNS)
			m = cluster_x_wns_msg(r, subj, id, buf, (size_t)len, ref, xd, q[i].seq, acc, now, &held[i]);
		else if ((m = bus_msg(subj, buf, (size_t)len, id)) != NULL && natsMsgHeader_Set(m, "Pp-Ref", ref) != NATS_OK) {
			natsMsg_Destroy(m);
			m = NULL;
		}
		if (m == NULL)
			status[i] = STATUS_ERROR;
		else if (held[i])
			holds[nh++] = m;
		else
			jobs[nj++] = m;
	}
	if (txn)
		mdb_txn_abort(txn);
	jobs_ok = ok && (nj == 0 || bus_publish(&C.bus, jobs, nj, NULL, 4 * C.bus.wait_ms) == 0);
	holds_ok = ok && (nh == 0 || router_cluster_changes(r, holds, nh) == 0);
	if (jobs_ok)
		counter_add(CTR_JOBS_QUEUED, nj);
	if (!jobs_ok || !holds_ok)
		log_warn("cluster: XMPP publishes not turned into jobs now; answered busy");
	for (size_t i = 0; i < n; i++) {
		uint32_t st = status && ok ? status[i] : STATUS_BUSY;
		if (st == STATUS_OK && !(held[i] ? holds_ok : jobs_ok))
			st = STATUS_BUSY;
		answer_status(&q[i], st);
		bus_settle(&C.bus, q[i].m, BUS_ACK, 0); /* answered: the XMPP server retries a busy one itself */
	}
	for (size_t i = 0; jobs && i < nj; i++)
		natsMsg_Destroy(jobs[i]);
	free(holds);
	free(jobs);
	free(held);
	free(status);
	free(xd);
	free(xn);
}

/* One round of requests: what the feed brought, up to REQ_BATCH, handled. Returns how many
 * messages it took. */
static int requests_round(struct router *r)
{
	natsMsg *msgs[REQ_BATCH];
	struct creq q[REQ_BATCH], changes[REQ_BATCH], notifies[REQ_BATCH], publishes[REQ_BATCH], tests[REQ_BATCH];
	size_t nq = 0, nc = 0, nn = 0, np = 0, nt = 0;
	int total = 0, kind;
	uint64_t arg;

	while (total < REQ_BATCH && bus_queue_get(C.reqq, &kind, &msgs[total], &arg) == 1) {
		__atomic_add_fetch(&C.req_room, 1, __ATOMIC_ACQ_REL);
		total++;
	}
	if (total > 0)
		C.round_at = mono_ms();
	for (int i = 0; i < total && nq < REQ_BATCH; i++) {
		struct creq *c = &q[nq];
		const char *why = "";
		memset(c, 0, sizeof *c);
		c->m = msgs[i];
		if (bus_msg_meta(c->m, &c->seq, NULL, NULL) < 0 ||
		    frame_parse((const uint8_t *)natsMsg_GetData(c->m), (size_t)natsMsg_GetDataLength(c->m), &c->f, &why) < 0) {
			log_warn("cluster: a bad request on %s (%s); dropped", natsMsg_GetSubject(c->m), why);
			bus_settle(&C.bus, c->m, BUS_TERM, 0);
			continue;
		}
		if (natsMsgHeader_Get(c->m, BUS_H_REPLY, &c->reply) != NATS_OK)
			c->reply = NULL;
		nq++;
	}
	for (size_t i = 0; i < nq; i++) {
		switch (q[i].f.type) {
		case FRAME_REGISTER:
		case FRAME_UNREGISTER:
		case FRAME_SUBSCRIBE:
		case FRAME_UNSUBSCRIBE:
		case FRAME_UWPX_CHANNEL:
		case FRAME_UWPX_ACCOUNTS:
		case FRAME_XMPP_REGISTER:
		case FRAME_XMPP_UNREGISTER:
			changes[nc++] = q[i];
			break;
		case FRAME_NOTIFY:
		case FRAME_BATCH: /* notifies an ingress gathered (router_link_bus.c) */
			notifies[nn++] = q[i];
			break;
		case FRAME_XMPP_PUBLISH:
			publishes[np++] = q[i];
			break;
		case FRAME_UWPX_TEST:
			tests[nt++] = q[i];
			break;
		case FRAME_COUNTS_QUERY:
			answer_counts(r, &q[i]);
			bus_settle(&C.bus, q[i].m, BUS_ACK, 0);
			break;
		default:
			log_warn("cluster: %s requests are not handled in cluster mode; answered with an error",
				 frame_type_name(q[i].f.type));
			answer_status(&q[i], STATUS_ERROR);
			bus_settle(&C.bus, q[i].m, BUS_TERM, 0);
		}
	}
	/* Changes first: a notify of the same round then sees them. */
	if (nc)
		do_changes(r, changes, nc);
	if (nn)
		do_notifies(r, notifies, nn);
	if (np)
		do_publishes(r, publishes, np);
	if (nt)
		do_tests(r, tests, nt);
	for (int i = 0; i < total; i++)
		natsMsg_Destroy(msgs[i]);
	return total;
}

/* A UWPX/XMPP job's device or node, and which job it was, go with its result into the registry
 * change. 0, or -1. */
static int relay_ref(natsMsg *m, natsMsg *out)
{
	static const char *const keep[] = {"Pp-Ref", CLUSTER_H_JOB};
	for (size_t i = 0; i < 2; i++) {
		const char *v = NULL;
		if (natsMsgHeader_Get(m, keep[i], &v) == NATS_OK && v && natsMsgHeader_Set(out, keep[i], v) != NATS_OK)
			return -1;
	}
	return 0;
}

/* The app of a result, from its subject pp.res.<platform>.<app> (a sender may publish only on
 * its own app's subject), carried to the registry change as Pp-App: its verdict touches only a
 * token registered for that app, as on one machine. */
static int relay_app(natsMsg *m, natsMsg *out)
{
	const char *s = natsMsg_GetSubject(m), *app;

	if (s == NULL || strncmp(s, "pp.res.", 7) != 0 || (app = strchr(s + 7, '.')) == NULL || app[1] == '\0')
		return 0;
	return natsMsgHeader_Set(out, CLUSTER_H_APP, app + 1) == NATS_OK ? 0 : -1;
}

/* The app (normalized: empty = the default app) a registry result's verdict is for: 1 with
 * *app set, 0 when the change has no Pp-App (written before results carried it: any app), -1
 * for an app this router does not know. */
static int result_app(const struct router *r, natsMsg *m, uint32_t platform, const char **app, size_t *len)
{
	const char *v = NULL;
	char def[64];

	if (natsMsgHeader_Get(m, CLUSTER_H_APP, &v) != NATS_OK || v == NULL)
		return 0;
	bus_app_name(r->cfg, platform, "", 0, def, sizeof def);
	if (strcmp(v, def) == 0) {
		*app = "";
		*len = 0;
		return 1;
	}
	return router_app_norm(r, platform, v, strlen(v), app, len) == 0 ? 1 : -1;
}

/* A test push's result: its answer to the ingress that waits (Pp-Reply, Pp-Req), delivered or
 * failed, as on one machine. Sent again if the result comes again: the ingress takes one. */
static void relay_test_answer(natsMsg *m)
{
	const char *reply = NULL, *req = NULL, *why = "";
	struct frame batch, inner, res = {0};
	struct frame_field item;
	uint8_t buf[64];
	struct frame_writer w;
	size_t pos = 0;
	long n;

	if (natsMsgHeader_Get(m, BUS_H_REPLY, &reply) != NATS_OK || natsMsgHeader_Get(m, "Pp-Req", &req) != NATS_OK ||
	    frame_parse((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &batch, NULL) < 0)
		return;
	while (frame_batch_next(&batch, &pos, &item, &inner, &why) == 1)
		if (inner.type == FRAME_RESULT)
			res = inner;
	if (res.type != FRAME_RESULT)
		return;
	cluster_x_test_done(reply, strtoull(req, NULL, 10));
	frame_begin(&w, buf, FRAME_REPLY, strtoull(req, NULL, 10));
	frame_put_u32(&w, TAG_STATUS, frame_u32(&res, TAG_OUTCOME, 0) == OUTCOME_DELIVERED ? STATUS_OK : STATUS_FAILED);
	if ((n = frame_end(&w)) > 0)
		answer_frame(reply, buf, (size_t)n);
}

/* Results that change the registry become registry changes; the others were only counted. */
static void results_round(struct router *r)
{
	struct creq mine[REQ_BATCH];
	uint64_t seqs[REQ_BATCH], arg;
	natsMsg *out[REQ_BATCH];
	natsMsg *src[REQ_BATCH];
	natsMsg *got[REQ_BATCH];
	size_t n = 0;
	int ok, ng = 0, kind;

	while (ng < REQ_BATCH && bus_queue_get(C.resq, &kind, &got[ng], &arg) == 1) {
		__atomic_add_fetch(&C.res_room, 1, __ATOMIC_ACQ_REL);
		ng++;
	}
	if (ng == 0)
		return;
	for (int i = 0; i < ng && n < REQ_BATCH; i++) {
		natsMsg *m = got[i];
		struct frame f;
		uint64_t seq = 0;
		char id[32];

		if (bus_msg_meta(m, &seq, NULL, NULL) < 0 ||
		    frame_parse((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &f, NULL) < 0 ||
		    f.type != FRAME_BATCH) {
			log_warn("cluster: a bad result on %s; dropped", natsMsg_GetSubject(m));
			bus_settle(&C.bus, m, BUS_TERM, 0);
			continue;
		}
		snprintf(id, sizeof id, "r%llu", (unsigned long long)seq);
		out[n] = bus_msg("pp.reg.result", natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), id);
		if (out[n] && (relay_ref(m, out[n]) < 0 || relay_app(m, out[n]) < 0)) {
			natsMsg_Destroy(out[n]);
			out[n] = NULL;
		}
		memset(&mine[n], 0, sizeof mine[n]);
		src[n++] = m;
	}
	ok = bus_publish(&C.bus, out, n, seqs, 4 * C.bus.wait_ms) == 0;
	if (ok) {
		/* This router counts what its results change (a token deleted), the others not. */
		uint64_t target = 0;
		for (size_t i = 0; i < n; i++) {
			mine[i].reg_seq = seqs[i];
			if (seqs[i] > target)
				target = seqs[i];
		}
		C.mine = mine;
		C.nmine = n;
		reg_catch_up(r, target, 2000);
		C.mine = NULL;
		C.nmine = 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (ok)
			relay_test_answer(src[i]);
		settle(src[i], ok);
	}
	for (int i = 0; i < ng; i++)
		natsMsg_Destroy(got[i]);
}

static int pull_bind(natsSubscription **sub, const char *stream, const char *consumer, const char *subject)
{
	jsSubOptions so;
	jsErrCode ec = 0;
	natsStatus s;

	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Consumer = consumer;
	s = js_PullSubscribe(sub, C.bus.js, subject, consumer, NULL, &so, &ec);
	if (s != NATS_OK)
		log_error("cluster: cannot bind to consumer %s on %s: %s (error %d)", consumer, stream,
			  natsStatus_GetText(s), (int)ec);
	return s == NATS_OK ? 0 : -1;
}

/* At stop: what a feed took and was not handled goes back at once (the other routers take it). */
static void queue_hand_back(struct bus_queue *q)
{
	int kind;
	natsMsg *m;
	uint64_t arg;

	while (q && bus_queue_get(q, &kind, &m, &arg) == 1) {
		bus_settle(&C.bus, m, BUS_NAK, 0);
		natsMsg_Destroy(m);
	}
	bus_queue_free(q);
}

/* At start: a copy whose next changes were compacted away (a new router, or one that was down
 * while the changes it missed were compacted) starts from the newest snapshot. */
static void reg_start(struct router *r)
{
	int need;

	while (!daemon_stop && (need = snap_needed(&C.bus, C.applied)) != 0) {
		if (need == 1 && reg_restore(r) == 0)
			break;
		loop_once(r->lp, 1000); /* a second, in which a stop is seen */
	}
}

/* AckWait of a platform's jobs: a job may take the deadline three times (a resend after a
 * transport failure and one after a refused credential), plus a margin. */
static int64_t ack_wait(long deadline_ms)
{
	return 3 * (int64_t)deadline_ms + 5000;
}

/* Idle or not, the copy never lags the stream by much more than a second: a check a second after
 * the last one began (at once when that one took longer). */
static void check_tick(void *arg)
{
	struct router *r = arg;
	int have;
	uint64_t next = mono_ms() + 1000, last = registry_last_seq(&have), now;

	if (have && last > C.applied)
		reg_catch_up(r, last, 2000);
	if (C.reg_broken && have && C.applied >= last) {
		log_info("cluster: replaying %s with a new consumer from change %llu", BUS_REGISTRY,
			 (unsigned long long)C.applied + 1);
		reg_subscribe();
	}
	snap_tick(&C.bus, &r->store, C.applied, have && C.applied >= last, r->cfg->cluster.snapshot_changes);
	now = mono_ms();
	if (loop_timer(r->lp, next > now ? next - now : 0, 0, check_tick, r) == NULL)
		fatal("cluster: out of memory");
}

/* The results feed put messages in the queue: up to REQ_BATCH of them handled per turn (the
 * eventfd stays readable while more wait). */
static void on_results(void *arg, uint32_t events)
{
	(void)events;
	results_round(arg);
}

/* Group commit: while requests keep coming, a round begins at most every ROUND_SPACING_MS
 * (at once when a full round waits), so the requests that arrive meanwhile share its registry
 * check, its job messages and their PubAcks. How long until the next round may begin. */
static int round_delay(void)
{
	uint64_t now = mono_ms();

	if (bus_queue_len(C.reqq) >= REQ_BATCH || now >= C.round_at + ROUND_SPACING_MS)
		return 0;
	return (int)(C.round_at + ROUND_SPACING_MS - now);
}

/* One round of requests: what the feed brought (its eventfd on the loop wakes it, on_requests),
 * then due again while requests wait (ROUND_SPACING_MS after this one began); idle, every
 * REQ_IDLE_WAIT_MS for the registry's catch-up and cluster_x_tick. The loop itself waits in epoll,
 * for the feed's eventfd among the rest. */
static void round_tick(void *arg)
{
	struct router *r = arg;

	C.round = NULL;
	reg_catch_up(r, 0, 0);
	cluster_x_tick(r, &C.bus);
	requests_round(r);
	counters_flush();
	if (loop_wake(r->lp, &C.round, bus_queue_len(C.reqq) > 0 ? round_delay() : REQ_IDLE_WAIT_MS, round_tick, r) < 0)
		fatal("cluster: out of memory");
}

/* The requests feed put messages in the queue (edge-triggered: once per message it hands on): the
 * next round is due at once, or when the spacing since the last one allows. */
static void on_requests(void *arg, uint32_t events)
{
	struct router *r = arg;

	(void)events;
	if (loop_wake(r->lp, &C.round, round_delay(), round_tick, r) < 0)
		fatal("cluster: out of memory");
}

int router_cluster_start(struct router *r)
{
	const struct config *cfg = r->cfg;
	int64_t aw[PLATFORMS] = {0}, map[PLATFORMS] = {0};
	MDB_txn *txn;

	if (bus_connect(&C.bus, &daemon_stop) < 0)
		return -1;
	if (mdb_txn_begin(r->store.env, NULL, MDB_RDONLY, &txn) == 0) {
		C.applied = store_meta_get(txn, &r->store, META_SEQ);
		mdb_txn_abort(txn);
	}
	/* MaxAckPending: four instances' worth of each sender's concurrency (docs/cluster.md). */
	aw[PLATFORM_IOS] = ack_wait(cfg->apns.common.deadline_ms);
	map[PLATFORM_IOS] = 4 * cfg->apns.common.connections * cfg->apns.common.max_streams;
	aw[PLATFORM_ANDROID] = ack_wait(cfg->fcm.common.deadline_ms);
	map[PLATFORM_ANDROID] = 4 * cfg->fcm.common.connections * cfg->fcm.common.max_streams;
	aw[PLATFORM_WNS] = ack_wait(cfg->wns.common.deadline_ms);
	map[PLATFORM_WNS] = 4 * cfg->wns.common.connections * cfg->wns.common.max_streams;
	aw[PLATFORM_HUAWEI] = ack_wait(cfg->hms.common.deadline_ms);
	map[PLATFORM_HUAWEI] = 4 * cfg->hms.common.connections * cfg->hms.common.max_streams;
	/* PP_REQ and PP_JOBS hold at most router.outbox_max messages each (docs/cluster.md). */
	C.bus.queue_max = cfg->router.outbox_max;
	while (!daemon_stop && (bus_setup_streams(&C.bus, (uint64_t)cfg->router.job_max_age_s * 1000, aw, map) < 0 ||
				snap_setup(&C.bus, &r->store) < 0))
		loop_once(r->lp, 1000);
	while (!daemon_stop && (pull_bind(&C.req, BUS_REQ, BUS_REQ_CONSUMER, "pp.req.>") < 0 ||
				pull_bind(&C.res, BUS_RES, BUS_RES_CONSUMER, "pp.res.>") < 0 || reg_subscribe() < 0))
		loop_once(r->lp, 1000);
	C.req_room = REQ_QUEUED;
	C.res_room = REQ_BATCH;
	while (!daemon_stop && ((C.reqq == NULL && (C.reqq = bus_queue_new()) == NULL) ||
				(C.resq == NULL && (C.resq = bus_queue_new()) == NULL)))
		loop_once(r->lp, 1000);
	while (!daemon_stop && C.reqf == NULL &&
	       (C.reqf = bus_feed_start(&C.bus, BUS_REQ, BUS_REQ_CONSUMER, C.reqq, 0, &C.req_room, REQ_FEED)) == NULL)
		loop_once(r->lp, 1000);
	while (!daemon_stop && C.resf == NULL &&
	       (C.resf = bus_feed_start(&C.bus, BUS_RES, BUS_RES_CONSUMER, C.resq, 0, &C.res_room, REQ_FEED)) == NULL)
		loop_once(r->lp, 1000);
	if (cluster_x_init(r) < 0)
		return -1;
	reg_start(r);
	log_info("cluster: registry copy at change %llu of %s", (unsigned long long)C.applied, BUS_REGISTRY);
	if (loop_timer(r->lp, 0, 0, check_tick, r) == NULL || loop_wake(r->lp, &C.round, 0, round_tick, r) < 0 ||
	    (C.reqh = loop_add(r->lp, bus_queue_fd(C.reqq), EPOLLIN | EPOLLET, on_requests, r)) == NULL ||
	    (C.resh = loop_add(r->lp, bus_queue_fd(C.resq), EPOLLIN, on_results, r)) == NULL) {
		log_error("cluster: out of memory");
		return -1;
	}
	return 0;
}

void router_cluster_stop(struct router *r)
{
	log_info("cluster: stopping at registry change %llu", (unsigned long long)C.applied);
	snap_stop();
	if (C.reqh)
		loop_del(r->lp, C.reqh);
	if (C.resh)
		loop_del(r->lp, C.resh);
	if (C.round)
		loop_timer_cancel(r->lp, C.round);
	C.reqh = C.resh = NULL;
	C.round = NULL;
	bus_feed_stop(C.reqf);
	bus_feed_stop(C.resf);
	queue_hand_back(C.reqq);
	queue_hand_back(C.resq);
	natsSubscription_Destroy(C.req);
	natsSubscription_Destroy(C.res);
	natsSubscription_Destroy(C.reg);
	bus_close(&C.bus);
}
