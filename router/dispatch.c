/*
 * dispatch: hands ready jobs to sender instances (least loaded first, bounded in flight per
 * instance), puts the jobs of a vanished sender back in the queue, and rescans LMDB for jobs
 * that are due again or that did not fit the in-memory queue. Expired jobs end here; WNS jobs
 * for a dead channel are dropped and those for a channel backing off held back (uwpx_xmpp_handle.c).
 */
#include "counters.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "outbox.h"
#include "router.h"
#include "uwpx_xmpp_reg.h"
#include <stdlib.h>
#include <string.h>

/* The least loaded instance of the lane's (platform, app), or -1. */
static int pick_sender(struct router *r, uint32_t lane)
{
	int best = -1;
	for (int i = 0; i < ROUTER_PEERS; i++) {
		struct router_peer *p = &r->peers[i];
		if (!p->in_use || p->p.role != ROLE_SENDER || p->lane != (int)lane)
			continue;
		if (p->in_flight >= (uint32_t)r->cfg->router.max_in_flight || peer_has_queued(&p->p))
			continue;
		if (best < 0 || p->in_flight < r->peers[best].in_flight)
			best = i;
	}
	return best;
}

#define DROP_MAX 1024

enum wns_state { WNS_SEND, WNS_DROP, WNS_HOLD };

/* A WNS job whose channel died (or whose device expired) since it was queued is not sent; nor
 * is one whose channel backs off after a 406 before the back-off ends (docs/senders.md, "Throttled
 * channels"). */
static enum wns_state wns_state(struct router *r, MDB_txn *txn, const struct outbox_job *j, uint64_t now)
{
	static struct xdevice d;
	int rc;
	if (j->kind != KIND_WNS)
		return WNS_SEND;
	if (!uwpx_uri_valid(&r->uri_rules, j->token, j->token_len)) {
		/* Stored before this check existed, or by hand: never handed to wns-sender. */
		log_warn("WNS job %llu: channel URI outside the allowlist, dropped", (unsigned long long)j->id);
		return WNS_DROP;
	}
	if (j->ref_len != XREG_DEVICE_LEN)
		return WNS_SEND;
	rc = xreg_device_get(txn, &r->store, j->ref, &d);
	if (rc == 0 || (rc == 1 && d.dead))
		return WNS_DROP;
	return rc == 1 && xreg_backing_off(&d, j->token, j->token_len, now) ? WNS_HOLD : WNS_SEND;
}

void router_dispatch(struct router *r)
{
	static uint8_t buf[FRAME_MAX];
	static uint64_t drop[DROP_MAX], hold[HOLD_MAX];
	size_t ndrop = 0, nhold = 0;
	uint64_t now = now_ms();
	MDB_txn *txn = NULL;

	for (uint32_t pl = PLATFORM_IOS; pl < LANES; pl++) {
		uint64_t id;
		int slot;
		while (r->ready[pl].n > 0 && (slot = pick_sender(r, pl)) >= 0) {
			struct outbox_job j;
			const void *data;
			size_t dlen;
			struct frame_writer w;
			enum wns_state st;
			long n;
			int rc;

			ring_pop(&r->ready[pl], &id);
			if (txn == NULL && mdb_txn_begin(r->store.env, NULL, MDB_RDONLY, &txn) != 0) {
				ring_push_front(&r->ready[pl], id);
				return;
			}
			rc = outbox_get(txn, &r->store, id, &j, &data, &dlen);
			if (rc <= 0) {
				held_del(&r->held, id);
				continue;
			}
			st = wns_state(r, txn, &j, now);
			if (st == WNS_DROP && ndrop < DROP_MAX) {
				held_del(&r->held, id);
				drop[ndrop++] = id;
				continue;
			}
			if (st == WNS_HOLD) {
				if (nhold == HOLD_MAX) {
					ring_push_front(&r->ready[pl], id); /* never sent early: next round */
					break;
				}
				held_del(&r->held, id);
				hold[nhold++] = id;
				continue;
			}
			frame_begin(&w, buf, FRAME_PUSH, id);
			frame_put_u32(&w, TAG_PLATFORM, j.platform);
			frame_put_u32(&w, TAG_KIND, j.kind);
			frame_put_bytes(&w, TAG_TOKEN, j.token, j.token_len);
			frame_put_bytes(&w, TAG_DATA, data, dlen);
			frame_put_u32(&w, TAG_ATTEMPT, j.attempts);
			if ((n = frame_end(&w)) < 0) {
				log_error("job %llu does not fit a frame; left in the outbox", (unsigned long long)id);
				held_del(&r->held, id);
				continue;
			}
			if (peer_send(&r->peers[slot].p, buf, (size_t)n) < 0) {
				ring_push_front(&r->ready[pl], id);
				router_drop_peer(r, slot, "send failed");
				continue;
			}
			held_put(&r->held, id, slot);
			r->peers[slot].in_flight++;
		}
	}
	if (txn)
		mdb_txn_abort(txn);
	xhandle_drop(r, drop, ndrop);
	xhandle_hold(r, hold, nhold);
}

int router_reply(struct router *r, int slot, uint64_t gen, uint64_t id, uint32_t status)
{
	uint8_t buf[64];
	struct frame_writer w;
	long n;

	frame_begin(&w, buf, FRAME_REPLY, id);
	frame_put_u32(&w, TAG_STATUS, status);
	n = frame_end(&w);
	return n < 0 ? -1 : router_send_frame(r, slot, gen, buf, (size_t)n);
}

int router_result_held(struct router *r, int slot, uint64_t id)
{
	struct router_peer *p = &r->peers[slot];
	int32_t where;

	/* Only for a job in flight on this very connection (docs/operations.md, "Security
	 * model"): anything else is stale or forged and changes nothing. */
	if (held_get(&r->held, id, &where) && where == slot)
		return 1;
	r->results_ignored++;
	counter_add(CTR_RESULTS_IGNORED, 1);
	if (!p->forged_logged) {
		log_warn("sender %s (pid %u): result for job %llu it does not hold, ignored (logged once per connection)",
			 p->p.instance, p->p.cred_pid, (unsigned long long)id);
		p->forged_logged = 1;
	}
	return 0;
}

void router_sender_gone(struct router *r, int slot)
{
	/* Its jobs go back to the queue: forget them here, the rescan reloads them from LMDB. */
	if (held_del_where(&r->held, slot) > 0)
		r->spilled = 1;
	r->peers[slot].in_flight = 0;
	router_senders_gone(r, slot);
}

struct scan_ctx {
	struct router *r;
	MDB_txn *txn;
	uint64_t now;
	uint64_t *expired;
	size_t nexpired, cap;
	int full;
};

static int scan_one(void *arg, uint64_t id, uint64_t due)
{
	struct scan_ctx *sc = arg;
	struct outbox_job j;
	int32_t where;
	int lane;

	(void)due;
	if (held_get(&sc->r->held, id, &where))
		return 0;
	if (outbox_get(sc->txn, &sc->r->store, id, &j, NULL, NULL) <= 0)
		return 0;
	if (sc->now - j.accepted_ms > j.max_age_ms) {
		if (sc->nexpired == sc->cap) {
			size_t nc = sc->cap ? sc->cap * 2 : 64;
			uint64_t *a = realloc(sc->expired, nc * sizeof *a);
			if (a == NULL)
				return 1;
			sc->expired = a;
			sc->cap = nc;
		}
		sc->expired[sc->nexpired++] = id;
		return sc->nexpired >= 4096;
	}
	lane = router_lane(sc->r, j.platform, j.app, j.app_len);
	if (lane < 0)
		return 0; /* an app the configuration no longer has: it waits, and expires at its age */
	if (ring_push(&sc->r->ready[lane], id) < 0) {
		sc->full = 1;
		return 1;
	}
	held_put(&sc->r->held, id, JOB_READY);
	return 0;
}

void router_rescan(struct router *r)
{
	struct scan_ctx sc;
	MDB_txn *txn;

	memset(&sc, 0, sizeof sc);
	sc.r = r;
	sc.now = now_ms();
	if (mdb_txn_begin(r->store.env, NULL, MDB_RDONLY, &txn) != 0)
		return;
	sc.txn = txn;
	r->spilled = 0;
	outbox_scan(txn, &r->store, sc.now, scan_one, &sc);
	mdb_txn_abort(txn);
	if (sc.full)
		r->spilled = 1;
	if (sc.nexpired > 0 && mdb_txn_begin(r->store.env, NULL, 0, &txn) == 0) {
		for (size_t i = 0; i < sc.nexpired; i++) {
			struct outbox_job j;
			if (outbox_get(txn, &r->store, sc.expired[i], &j, NULL, NULL) == 1 &&
			    outbox_finish(txn, &r->store, &j) == 0) {
				counter_add(CTR_JOBS_EXPIRED, 1);
				if (j.kind == KIND_WNS)
					counter_add(CTR_WNS_FAILED, 1);
				else if (j.kind != KIND_XMPP)
					counter_add(j.platform == PLATFORM_IOS ? CTR_IOS_FAILED : CTR_ANDROID_FAILED, 1);
			}
		}
		r->outbox_jobs = outbox_count(txn, &r->store);
		if (mdb_txn_commit(txn) != 0) {
			log_error("expiring jobs: commit failed");
		} else {
			log_info("%zu jobs expired at their maximum age", sc.nexpired);
			for (size_t i = 0; i < sc.nexpired && r->nxtests > 0; i++)
				xtest_answer(r, sc.expired[i], STATUS_FAILED);
		}
	}
	free(sc.expired);
}
