/*
 * handle: applies a batch of frames from ingresses and senders in one LMDB write
 * transaction (group commit: one fsync for the whole batch), then answers them. Nothing is
 * acknowledged before the commit returns. Each request runs in a nested transaction so a
 * failing one changes nothing while the others still commit.
 * Trusts frames only after frame_parse(); sender results are checked against the job cache
 * (main.c takes a result only for a job in flight on that very connection) and the job's
 * platform against the sender's, so no peer can end (or delete the token of) a job it never held.
 */
#include "counters.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "outbox.h"
#include "registry.h"
#include "router.h"
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct resolved {
	struct router *r;
	MDB_txn *txn;
	uint64_t msg_id;
	uint64_t now;
	size_t njobs;
	int failed;
	const struct appset *apps; /* the request's app set: other apps' tokens are not its recipients */
	size_t ntok;		   /* count_token: the recipients */
};

int router_fresh_add(struct router *r, uint64_t id, uint32_t lane)
{
	if (r->nfresh == r->fresh_cap) {
		size_t nc = r->fresh_cap ? r->fresh_cap * 2 : 256;
		uint64_t *a = realloc(r->fresh, nc * sizeof *a);
		if (a == NULL)
			return -1;
		r->fresh = a;
		uint32_t *b = realloc(r->fresh_platform, nc * sizeof *b);
		if (b == NULL)
			return -1;
		r->fresh_platform = b;
		r->fresh_cap = nc;
	}
	r->fresh[r->nfresh] = id;
	r->fresh_platform[r->nfresh++] = lane;
	return 0;
}

/* Huawei tokens get jobs only with an hms_sender section (docs/senders.md); set per notify,
 * with the number of Huawei tokens the notify's first pass found and skipped. */
static int huawei_sent;
static size_t huawei_skipped;

/* Counts the tokens a notify will reach (only platforms that have a sender role, only tokens of
 * the request's apps). */
static int count_token(void *arg, const struct registry_token *t)
{
	struct resolved *rs = arg;
	if (!appset_has(rs->apps, t->device, t->app, t->app_len))
		return 0;
	if (t->device != PLATFORM_HUAWEI || huawei_sent)
		rs->ntok++;
	else
		huawei_skipped++;
	return 0;
}

static int add_job(void *arg, const struct registry_token *t)
{
	struct resolved *rs = arg;
	uint64_t id;
	int lane;

	if (!appset_has(rs->apps, t->device, t->app, t->app_len))
		return 0; /* another app's registration (docs/config.md, section apps) */
	if (t->device == PLATFORM_HUAWEI && !huawei_sent)
		return 0; /* without an hms_sender section: stored and counted, never delivered */
	if ((lane = router_lane(rs->r, t->device, t->app, t->app_len)) < 0)
		return 0; /* an app the configuration no longer has: nobody could deliver it */
	if (outbox_add_job_app(rs->txn, &rs->r->store, rs->msg_id, t->device, KIND_BCHAT, t->token, t->token_len, NULL, 0,
			       0, t->app, t->app_len, rs->now, (uint64_t)rs->r->cfg->router.job_max_age_s * 1000, &id) < 0 ||
	    router_fresh_add(rs->r, id, (uint32_t)lane) < 0) {
		rs->failed = 1;
		return 1;
	}
	rs->njobs++;
	return 0;
}

static uint32_t do_notify(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now)
{
	struct frame_field to, data;
	enum registry_target target;
	size_t ntok;
	struct resolved rs;
	struct appset apps;
	int skip = r->cfg->router.skip_legacy_groups_only;

	frame_get(f, TAG_ID, &to);
	frame_get(f, TAG_DATA, &data);
	if (router_appset(r, f, &apps) < 0)
		return STATUS_ERROR;
	huawei_sent = r->cfg->hms.app_id[0] != '\0';
	huawei_skipped = 0;
	memset(&rs, 0, sizeof rs);
	rs.apps = &apps;
	if (registry_resolve(txn, &r->store, (const char *)to.val, to.len, skip, &target, count_token, &rs) < 0)
		return STATUS_ERROR;
	ntok = rs.ntok;
	if (r->outbox_jobs + ntok > (uint64_t)r->cfg->router.outbox_max) {
		counter_add(CTR_BUSY_REJECTS, 1);
		return STATUS_BUSY;
	}
	counter_add(CTR_HUAWEI_SKIPPED, huawei_skipped); /* also when they were the only tokens */
	counter_add(target == TARGET_ONE_TO_ONE	    ? CTR_MESSAGES_ONE_TO_ONE
		    : target == TARGET_CLOSED_GROUP ? CTR_MESSAGES_CLOSED_GROUP
						    : CTR_MESSAGES_UNTRACKED,
		    1);
	rs.r = r;
	rs.txn = txn;
	rs.now = now;
	if (ntok > 0 && outbox_add_msg(txn, &r->store, data.val, data.len, (uint32_t)ntok, &rs.msg_id) < 0)
		return STATUS_ERROR;
	if (ntok > 0 && (registry_resolve(txn, &r->store, (const char *)to.val, to.len, skip, &target, add_job, &rs) < 0 ||
			 rs.failed))
		return STATUS_ERROR;
	counter_add(CTR_JOBS_QUEUED, rs.njobs);
	return STATUS_OK;
}

/* A registry function's failure as a status: REG_LIMIT (counted, logged at most once a minute)
 * or a store error. */
static uint32_t limit_status(int rc, const char *what, const char *key)
{
	static uint64_t next_log;
	uint64_t now;

	if (rc != REG_LIMIT)
		return STATUS_ERROR;
	counter_add(CTR_REGISTRY_LIMITS, 1);
	if ((now = mono_ms()) >= next_log) {
		log_warn("registration refused: too many %s (%s); further refusals are counted in registry_limits", what,
			 key);
		next_log = now + 60000;
	}
	return STATUS_LIMIT;
}

static uint32_t do_register(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now)
{
	struct frame_field id, tok, fl;
	size_t pos = 0;
	uint32_t device = frame_u32(f, TAG_DEVICE, 0), flags = frame_u32(f, TAG_FLAGS, 0);
	struct appset apps;

	frame_get(f, TAG_ID, &id);
	frame_get(f, TAG_TOKEN, &tok);
	int rc;

	if (device < PLATFORM_IOS || device > PLATFORM_HUAWEI || tok.len == 0 || id.len == 0)
		return STATUS_ERROR;
	if (router_appset(r, f, &apps) < 0) {
		log_warn("register: an app this router's configuration does not have; refused");
		return STATUS_ERROR;
	}
	/* The registration belongs to its device's app in the set of the service it came in on. */
	if ((rc = registry_register_app(txn, &r->store, (const char *)id.val, id.len, (const char *)tok.val, tok.len,
					device, apps.app[device], apps.len[device], (flags & FRAME_F_LEGACY_GROUPS_ONLY) != 0,
					now)) < 0)
		return limit_status(rc, "tokens for one id", "router.max_tokens_per_id");
	while (frame_next(f, &pos, &fl) == 0)
		if (fl.tag == TAG_GROUP && fl.len > 0 &&
		    (rc = registry_subscribe(txn, &r->store, (const char *)fl.val, fl.len, (const char *)id.val, id.len)) < 0)
			return limit_status(rc, "groups of one id or members of one group",
					    "router.max_groups_per_id, router.max_group_members");
	counter_add(CTR_REGISTRATIONS, 1);
	return STATUS_OK;
}

static uint32_t do_request(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now, struct pending *p)
{
	struct frame_field a, b;
	int rc;

	switch (f->type) {
	case FRAME_REGISTER:
		/* Past router.map_full_percent the rest of the map is kept for the outbox: notifies
		 * and results go on, registrations wait until unregistrations make room. */
		if (r->map_full)
			return limit_status(REG_LIMIT, "bytes in the LMDB map", "router.map_size_mb");
		return do_register(r, txn, f, now);
	case FRAME_UNREGISTER: {
		struct appset apps;
		struct registry_token t;
		char holder[REG_ID_MAX + 1];
		frame_get(f, TAG_TOKEN, &a);
		if (router_appset(r, f, &apps) < 0)
			return STATUS_ERROR;
		/* Only a registration of the request's apps: another service's token is not its own. */
		rc = registry_lookup_token(txn, &r->store, (const char *)a.val, a.len, holder, &t);
		if (rc == 1 && !appset_has(&apps, t.device, t.app, t.app_len))
			return STATUS_NOT_FOUND;
		if (rc >= 0)
			rc = registry_unregister(txn, &r->store, (const char *)a.val, a.len);
	}
		if (rc == 1)
			counter_add(CTR_UNREGISTRATIONS, 1);
		return rc < 0 ? STATUS_ERROR : rc == 1 ? STATUS_OK : STATUS_NOT_FOUND;
	case FRAME_SUBSCRIBE:
	case FRAME_UNSUBSCRIBE:
		frame_get(f, TAG_GROUP, &a);
		frame_get(f, TAG_ID, &b);
		if (a.len == 0 || b.len == 0)
			return STATUS_ERROR;
		if (f->type == FRAME_SUBSCRIBE) {
			if (r->map_full)
				return limit_status(REG_LIMIT, "bytes in the LMDB map", "router.map_size_mb");
			rc = registry_subscribe(txn, &r->store, (const char *)a.val, a.len, (const char *)b.val, b.len);
			return rc < 0 ? limit_status(rc, "groups of one id or members of one group",
						     "router.max_groups_per_id, router.max_group_members")
				      : STATUS_OK;
		}
		rc = registry_unsubscribe(txn, &r->store, (const char *)a.val, a.len, (const char *)b.val, b.len);
		return rc < 0 ? STATUS_ERROR : rc == 1 ? STATUS_OK : STATUS_NOT_FOUND;
	case FRAME_NOTIFY:
		return do_notify(r, txn, f, now);
	case FRAME_UWPX_CHANNEL:
	case FRAME_UWPX_ACCOUNTS:
	case FRAME_UWPX_TEST:
	case FRAME_UWPX_IMPORT:
	case FRAME_XMPP_PUBLISH:
	case FRAME_XMPP_REGISTER:
	case FRAME_XMPP_UNREGISTER:
		return xhandle_request(r, txn, f, now, p);
	}
	return STATUS_ERROR;
}

uint32_t router_apply_request(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now, struct pending *p)
{
	return do_request(r, txn, f, now, p);
}

uint64_t router_backoff(const struct router *r, uint32_t attempts)
{
	uint64_t d = (uint64_t)r->cfg->router.backoff_first_ms;
	uint64_t cap = (uint64_t)r->cfg->router.backoff_cap_ms;
	for (uint32_t i = 0; i < attempts && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	/* ±20 % jitter so retries of one burst do not arrive together (docs/senders.md, "Outcomes
	 * and retries"). */
	return d * 80 / 100 + randombytes_uniform((uint32_t)(d * 40 / 100 + 1));
}

static void count_outcome(uint32_t platform, int delivered)
{
	if (platform == PLATFORM_IOS)
		counter_add(delivered ? CTR_IOS_DELIVERED : CTR_IOS_FAILED, 1);
	else if (platform == PLATFORM_ANDROID || platform == PLATFORM_HUAWEI) /* as the legacy API counts */
		counter_add(delivered ? CTR_ANDROID_DELIVERED : CTR_ANDROID_FAILED, 1);
	else if (platform == PLATFORM_WNS)
		counter_add(delivered ? CTR_WNS_DELIVERED : CTR_WNS_FAILED, 1);
}

/* A retryable outcome: the job moves in `due`, or ends when its next try would pass its age. */
static int retry_job(struct router *r, MDB_txn *txn, struct outbox_job *j, uint64_t after, uint64_t now,
		     struct pending *p)
{
	uint64_t delay = router_backoff(r, j->attempts);
	if (after > delay)
		delay = after;
	if (now + delay - j->accepted_ms > j->max_age_ms) {
		if (j->kind != KIND_XMPP)
			count_outcome(j->platform, 0);
		counter_add(CTR_JOBS_EXPIRED, 1);
		log_info("job %llu expired after %u attempts", (unsigned long long)j->id, j->attempts + 1);
		if (j->flags & OUTBOX_F_TEST) {
			p->answer = 1;
			p->job = j->id;
			p->answer_status = STATUS_FAILED;
		}
		return outbox_finish(txn, &r->store, j);
	}
	counter_add(CTR_JOBS_RETRIED, 1);
	return outbox_reschedule(txn, &r->store, j, now + delay);
}

/* Applies a sender's verdict on one job. Returns -1 on a store error. */
static int do_result(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now, struct pending *p)
{
	struct outbox_job j;
	uint32_t outcome = frame_u32(f, TAG_OUTCOME, 0);
	uint64_t after = frame_u64(f, TAG_RETRY_AFTER, 0), ts = frame_u64(f, TAG_TIMESTAMP, 0);
	char tbuf[32];
	int rc = outbox_get(txn, &r->store, f->id, &j, NULL, NULL);

	if (rc <= 0)
		return rc;
	if (j.platform != p->platform || (p->lane != 0 && router_lane(r, j.platform, j.app, j.app_len) != p->lane)) {
		/* main.c already took only results for jobs held by that connection, and jobs go only
		 * to senders of their platform: this is a second lock on the same door. */
		counter_add(CTR_RESULTS_IGNORED, 1);
		log_warn("result for job %llu from a sender of another platform or app, ignored", (unsigned long long)j.id);
		return 0;
	}
	histogram_observe(HIST_JOB_PROVIDER_ANSWER, now > j.accepted_ms ? (now - j.accepted_ms) * 1000 : 0);
	if (j.kind == KIND_WNS || j.kind == KIND_XMPP) {
		/* Never the Bchat token path: WNS channels and XMPP tokens are marked, not deleted. */
		rc = xhandle_result(r, txn, f, &j, now, p);
		return rc == 1 ? retry_job(r, txn, &j, after, now, p) : rc;
	}
	switch (outcome) {
	case OUTCOME_DELIVERED:
		count_outcome(j.platform, 1);
		if (registry_token_failure_app(txn, &r->store, j.token, j.token_len, j.app, j.app_len, 1) < 0)
			return -1;
		return outbox_finish(txn, &r->store, &j);
	case OUTCOME_TOKEN_DEAD:
		count_outcome(j.platform, 0);
		/* Only the job's app's registration: another app's provider said nothing about it. */
		rc = registry_token_dead_app(txn, &r->store, j.token, j.token_len, j.app, j.app_len, ts ? ts : j.accepted_ms);
		if (rc == 1) {
			counter_add(CTR_TOKENS_DELETED, 1);
			log_info("token %s removed: provider says it is dead",
				 log_redact(j.token, j.token_len, tbuf, sizeof tbuf));
		}
		return rc < 0 ? -1 : outbox_finish(txn, &r->store, &j);
	case OUTCOME_TOKEN_SUSPECT:
		count_outcome(j.platform, 0);
		rc = registry_token_failure_app(txn, &r->store, j.token, j.token_len, j.app, j.app_len, 0);
		if (rc >= r->cfg->router.failure_threshold &&
		    registry_token_dead_app(txn, &r->store, j.token, j.token_len, j.app, j.app_len, now) == 1)
			counter_add(CTR_TOKENS_DELETED, 1);
		return rc < 0 ? -1 : outbox_finish(txn, &r->store, &j);
	case OUTCOME_MESSAGE_FAILED:
		count_outcome(j.platform, 0);
		counter_add(CTR_JOBS_FAILED, 1);
		return outbox_finish(txn, &r->store, &j);
	case OUTCOME_RETRY:
	case OUTCOME_CREDENTIALS:
	default:
		return retry_job(r, txn, &j, after, now, p);
	}
}

/* Undoes what a failed request's handler left for after the commit. */
static void pending_clear(struct pending *p)
{
	free(p->reply);
	p->reply = NULL;
	p->reply_len = 0;
	p->job = 0;
	p->answer = 0;
}

/* One group commit, phase by phase (router_commit_batch). */
struct batch {
	struct router *r;
	struct frame *f;   /* each frame, parsed once */
	uint8_t *parsed;   /* 1 when f[i] parsed; a frame that did not is answered STATUS_ERROR */
	uint32_t *status;  /* each request's answer */
	MDB_txn *txn;
	uint64_t now;
	int ok;		   /* 0 once the batch cannot reach the disk: everything is answered ERROR */
};

/* Phase 1: parses every frame of the batch once, and begins the write transaction. */
static void batch_begin(struct batch *b, struct router *r)
{
	int rc;

	memset(b, 0, sizeof *b);
	b->r = r;
	b->now = now_ms();
	b->ok = 1;
	b->f = calloc(r->nbatch, sizeof *b->f);
	b->parsed = calloc(r->nbatch, 1);
	b->status = calloc(r->nbatch, sizeof *b->status);
	r->nfresh = 0;
	if (b->f == NULL || b->parsed == NULL || b->status == NULL) {
		log_error("no memory for a batch of %zu frames; answered as errors", r->nbatch);
		b->ok = 0;
		return;
	}
	for (size_t i = 0; i < r->nbatch; i++)
		b->parsed[i] = frame_parse(r->batch[i].buf, r->batch[i].len, &b->f[i], NULL) == 0;
	if ((rc = mdb_txn_begin(r->store.env, NULL, 0, &b->txn)) != 0) {
		log_error("registry: cannot begin a write transaction: %s", mdb_strerror(rc));
		b->ok = 0;
	}
}

/* Phase 2: applies frame i in a nested transaction of its own; a request that fails (error,
 * busy, limit) leaves nothing behind, neither in LMDB nor for after the commit. */
static void batch_apply(struct batch *b, size_t i)
{
	struct router *r = b->r;
	struct pending *p = &r->batch[i];
	const struct frame *f = &b->f[i];
	size_t fresh_mark = r->nfresh;
	MDB_txn *child;
	int rc;

	if (!b->parsed[i]) {
		b->status[i] = STATUS_ERROR;
		return;
	}
	if ((rc = mdb_txn_begin(r->store.env, b->txn, 0, &child)) != 0) {
		log_error("registry: cannot begin a nested transaction: %s", mdb_strerror(rc));
		b->status[i] = STATUS_ERROR;
		return;
	}
	if (f->type == FRAME_RESULT)
		b->status[i] = do_result(r, child, f, b->now, p) < 0 ? STATUS_ERROR : STATUS_OK;
	else
		b->status[i] = do_request(r, child, f, b->now, p);
	if (b->status[i] == STATUS_ERROR || b->status[i] == STATUS_BUSY || b->status[i] == STATUS_LIMIT) {
		mdb_txn_abort(child);
		r->nfresh = fresh_mark;
		pending_clear(p);
	} else if ((rc = mdb_txn_commit(child)) != 0) {
		log_error("registry: a nested commit failed: %s", mdb_strerror(rc));
		b->status[i] = STATUS_ERROR;
		r->nfresh = fresh_mark;
		pending_clear(p);
	}
}

/* Phase 3: commits the batch (one fsync); on failure nothing of it is on disk. Either way the
 * outbox counter is read back from what is. */
static void batch_commit(struct batch *b)
{
	struct router *r = b->r;
	MDB_txn *rt;
	int rc;

	if (b->ok) {
		r->outbox_jobs = outbox_count(b->txn, &r->store);
		if ((rc = mdb_txn_commit(b->txn)) != 0) {
			log_error("registry commit failed: %s", mdb_strerror(rc));
			b->ok = 0;
		}
	} else if (b->txn) {
		mdb_txn_abort(b->txn);
	}
	b->txn = NULL;
	if (!b->ok) {
		r->nfresh = 0;
		if (mdb_txn_begin(r->store.env, NULL, MDB_RDONLY, &rt) == 0) {
			r->outbox_jobs = outbox_count(rt, &r->store);
			mdb_txn_abort(rt);
		}
	}
}

/* Phase 4, only after the commit: everything acknowledged here is on disk. A result frees its
 * job's place on the sender; a test push starts waiting for its job's outcome; a request gets
 * its whole reply frame or its status. Frees the batch's frames. */
static void batch_answer(struct batch *b)
{
	struct router *r = b->r;

	for (size_t i = 0; i < r->nbatch; i++) {
		struct pending *p = &r->batch[i];
		struct frame fb;
		const struct frame *f = b->parsed ? &b->f[i] : &fb;
		int32_t where;

		/* Without memory for the batch, nothing was parsed: each frame is parsed here. */
		if (b->parsed ? !b->parsed[i] : frame_parse(p->buf, p->len, &fb, NULL) < 0) {
			pending_clear(p);
			free(p->buf);
			continue;
		}
		if (f->type == FRAME_RESULT) {
			/* Stored or not, the job is no longer in flight on that sender. */
			if (held_get(&r->held, f->id, &where) && where == p->slot) {
				held_del(&r->held, f->id);
				if (r->peers[p->slot].gen == p->gen && r->peers[p->slot].in_flight > 0)
					r->peers[p->slot].in_flight--;
				if (!b->ok || b->status[i] == STATUS_ERROR)
					r->spilled = 1;
			}
			if (b->ok && p->answer)
				xtest_answer(r, p->job, p->answer_status);
		} else if (b->ok && b->status[i] == STATUS_DEFERRED) {
			xtest_add(r, p->slot, p->gen, f->id, p->job);
		} else if (b->ok && b->status[i] == STATUS_OK && p->reply) {
			router_send_frame(r, p->slot, p->gen, p->reply, p->reply_len);
		} else {
			router_reply(r, p->slot, p->gen, f->id, b->ok ? b->status[i] : STATUS_ERROR);
		}
		pending_clear(p);
		free(p->buf);
	}
	r->nbatch = 0;
}

/* Phase 5: the jobs the batch committed join their platform's ready queue. */
static void batch_queue_fresh(struct router *r)
{
	for (size_t i = 0; i < r->nfresh; i++) {
		uint32_t pl = r->fresh_platform[i] < LANES ? r->fresh_platform[i] : 0;
		if (ring_push(&r->ready[pl], r->fresh[i]) < 0 || held_put(&r->held, r->fresh[i], JOB_READY) < 0)
			r->spilled = 1; /* stays in LMDB; the next scan finds it */
	}
	r->nfresh = 0;
}

void router_commit_batch(struct router *r)
{
	struct batch b;

	if (r->nbatch == 0)
		return;
	batch_begin(&b, r);
	for (size_t i = 0; b.ok && i < r->nbatch; i++)
		batch_apply(&b, i);
	batch_commit(&b);
	batch_answer(&b);
	batch_queue_fresh(r);
	free(b.f);
	free(b.parsed);
	free(b.status);
}
