/*
 * cluster_uwpx_xmpp: UWPX and XMPP in cluster mode (see cluster_uwpx_xmpp.h and docs/cluster.md "UWPX and
 * XMPP"). On one machine set_push_accounts and an XEP-0050 registration draw their push nodes and
 * secrets from the CSPRNG as they are applied; in cluster mode every router applies every change,
 * so the router that takes the request draws a 32-byte seed from the CSPRNG and carries it in the
 * change (header Pp-Seed); every copy then draws the same nodes and secrets from it. The state of
 * one machine that publishes, test pushes and WNS answers change — a channel's back-off after a
 * 406 with its one waiting job, a success ending the run of 406s, refreshes, a node's domain
 * binding, the device expiry sweep — is made of registry changes too (pp.reg.result and
 * pp.reg.x-*), applied by every router with the change's stream time as now. Trusts changes in
 * PP_REGISTRY (only routers publish there, by the permission table); a malformed seed is
 * refused, never replaced by a local draw. Holds the cluster_x table's handle, a cache of
 * PP_JOBS's size and this router's waiting test pushes.
 */
#include "cluster_uwpx_xmpp.h"
#include "bus.h"
#include "daemon.h"
#include "counters.h"
#include "frame.h"
#include "log.h"
#include "router.h"
#include "uwpx_xmpp_reg.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cluster_x_is_change(uint8_t type)
{
	return type == FRAME_UWPX_CHANNEL || type == FRAME_UWPX_ACCOUNTS || type == FRAME_XMPP_REGISTER ||
	       type == FRAME_XMPP_UNREGISTER;
}

static int draws(uint8_t type)
{
	return type == FRAME_UWPX_ACCOUNTS || type == FRAME_XMPP_REGISTER;
}

int cluster_x_seed_change(natsMsg *m, uint8_t type)
{
	unsigned char seed[randombytes_SEEDBYTES];
	char hex[2 * sizeof seed + 1];

	if (!draws(type))
		return 0;
	randombytes_buf(seed, sizeof seed);
	sodium_bin2hex(hex, sizeof hex, seed, sizeof seed);
	sodium_memzero(seed, sizeof seed);
	return natsMsgHeader_Set(m, CLUSTER_H_SEED, hex) == NATS_OK ? 0 : -1;
}

int cluster_x_seed_begin(natsMsg *m, uint8_t type)
{
	unsigned char seed[randombytes_SEEDBYTES];
	const char *v = NULL;
	size_t n = 0;

	if (!draws(type))
		return 0;
	if (natsMsgHeader_Get(m, CLUSTER_H_SEED, &v) != NATS_OK || v == NULL || strlen(v) != 2 * sizeof seed ||
	    sodium_hex2bin(seed, sizeof seed, v, strlen(v), NULL, &n, NULL) != 0 || n != sizeof seed) {
		log_warn("cluster: a %s change without a valid seed; refused", frame_type_name(type));
		return -1;
	}
	xreg_random_seed(seed);
	sodium_memzero(seed, sizeof seed);
	return 0;
}

void cluster_x_seed_end(void)
{
	xreg_random_seed(NULL);
}

/* ---- shared WNS channel state: back-off, the one waiting job, refreshes, expiry ---- */

/* Cluster-only rows of the router's LMDB (sub-database "cluster_x"), written only by applying
 * PP_REGISTRY changes, so every copy holds the same: "w" + device id → the job waiting for the
 * device's channel to end its back-off (u64 job, u64 accepted ms, u32 body length, body);
 * "sweep" → the expiry sweep's state (u64 time and u64 PP_REGISTRY sequence of the last sweep,
 * then its cursor, a device id or empty). */
static MDB_dbi XDB;
static int xdb_open;
#define WAIT_HDR 20
#define SWEEP_HDR 16
#define SWEEP_BUDGET 1000
#define SWEEP_EVERY_MS 60000
#define RELEASE_MAX 256

int cluster_x_init(struct router *r)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(r->store.env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "cluster_x", MDB_CREATE, &XDB)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
		log_error("cluster: cannot open the cluster_x table: %s", mdb_strerror(rc));
		return -1;
	}
	xdb_open = 1;
	return 0;
}

struct xwait {
	uint64_t job, accepted_ms;
	size_t body_len;
	char body[256];
};

static void wait_key(char k[1 + XREG_DEVICE_LEN], const char *dev)
{
	k[0] = 'w';
	memcpy(k + 1, dev, XREG_DEVICE_LEN);
}

/* 1 found, 0 not, -1 error. */
static int wait_get(MDB_txn *txn, const char *dev, struct xwait *w)
{
	char kb[1 + XREG_DEVICE_LEN];
	MDB_val k = {sizeof kb, kb}, v;
	const unsigned char *b;
	uint32_t bl;
	int rc;

	wait_key(kb, dev);
	if ((rc = mdb_get(txn, XDB, &k, &v)) != 0)
		return rc == MDB_NOTFOUND ? 0 : -1;
	b = v.mv_data;
	if (v.mv_size < WAIT_HDR)
		return -1;
	memcpy(&w->job, b, 8);
	memcpy(&w->accepted_ms, b + 8, 8);
	memcpy(&bl, b + 16, 4);
	if (bl > sizeof w->body || v.mv_size != WAIT_HDR + bl)
		return -1;
	w->body_len = bl;
	memcpy(w->body, b + WAIT_HDR, bl);
	return 1;
}

static int wait_put(MDB_txn *txn, const char *dev, const struct xwait *w)
{
	char kb[1 + XREG_DEVICE_LEN];
	unsigned char b[WAIT_HDR + sizeof w->body];
	uint32_t bl = (uint32_t)w->body_len;
	MDB_val k = {sizeof kb, kb}, v = {WAIT_HDR + w->body_len, b};

	wait_key(kb, dev);
	memcpy(b, &w->job, 8);
	memcpy(b + 8, &w->accepted_ms, 8);
	memcpy(b + 16, &bl, 4);
	memcpy(b + WAIT_HDR, w->body, w->body_len);
	return mdb_put(txn, XDB, &k, &v, 0) == 0 ? 0 : -1;
}

static int wait_del(MDB_txn *txn, const char *dev)
{
	char kb[1 + XREG_DEVICE_LEN];
	MDB_val k = {sizeof kb, kb};
	int rc;

	wait_key(kb, dev);
	rc = mdb_del(txn, XDB, &k, NULL);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

/* "Pp-Job: <acceptance sequence>.<accepted ms>": which job is newer (the PP_REQ sequence of
 * the request that made it) and its age. 0, or -1 when absent or malformed. */
static int job_header(natsMsg *m, uint64_t *job, uint64_t *accepted_ms)
{
	const char *v = NULL;
	char *end;

	if (natsMsgHeader_Get(m, CLUSTER_H_JOB, &v) != NATS_OK || v == NULL)
		return -1;
	*job = strtoull(v, &end, 10);
	if (*end != '.' || *job == 0)
		return -1;
	*accepted_ms = strtoull(end + 1, &end, 10);
	return *end == '\0' ? 0 : -1;
}

/* A device id header (Pp-Ref) into dev; 0, or -1. */
static int device_header(natsMsg *m, char dev[XREG_DEVICE_LEN + 1])
{
	const char *v = NULL;

	if (natsMsgHeader_Get(m, "Pp-Ref", &v) != NATS_OK || v == NULL || strlen(v) != XREG_DEVICE_LEN)
		return -1;
	memcpy(dev, v, XREG_DEVICE_LEN + 1);
	return 0;
}

static void superseded(const char *dev, uint64_t old, uint64_t by)
{
	counter_add(CTR_WNS_SUPERSEDED, 1);
	log_info("WNS job %llu superseded by job %llu: the channel of device %.8s... is backing off and only its "
		 "newest notification is sent",
		 (unsigned long long)old, (unsigned long long)by, dev);
}

/* The rule of one machine (docs/senders.md "Throttled channels") on the copy: job w for dev's
 * channel, backing off, and the job already waiting keep one between them, the newer;
 * the older is superseded. A job that would pass its maximum age before the back-off ends
 * expires at once; a dead or gone device's job fails. 0, or -1 on a store error. */
static int hold(struct router *r, MDB_txn *txn, const char *dev, const struct xwait *w)
{
	struct xdevice *d = malloc(sizeof *d);
	struct xwait *old = malloc(sizeof *old);
	uint64_t max_age = (uint64_t)r->cfg->router.wake_max_age_s * 1000;
	int rc = -1, have;

	if (d == NULL || old == NULL)
		goto out;
	if ((rc = xreg_device_get(txn, &r->store, dev, d)) < 0)
		goto out;
	if (rc == 0 || d->dead) {
		counter_add(CTR_WNS_FAILED, 1);
		log_info("WNS job %llu dropped: its device %.8s... is gone or its channel dead", (unsigned long long)w->job,
			 dev);
		rc = 0;
		goto out;
	}
	if (d->throttled_until_ms > w->accepted_ms + max_age) {
		counter_add(CTR_WNS_FAILED, 1);
		counter_add(CTR_JOBS_EXPIRED, 1);
		log_info("WNS job %llu expired: its channel backs off past the job's maximum age", (unsigned long long)w->job);
		rc = 0;
		goto out;
	}
	if ((have = wait_get(txn, dev, old)) < 0) {
		rc = -1;
		goto out;
	}
	rc = 0;
	if (have && old->job == w->job)
		goto out; /* the same job again (a redelivered result) */
	if (have && old->job > w->job) {
		superseded(dev, w->job, old->job);
		goto out;
	}
	if (have)
		superseded(dev, old->job, w->job);
	rc = wait_put(txn, dev, w);
out:
	free(old);
	free(d);
	return rc;
}

/* A job (a PUSH frame) into a waiting record; 0, or -1. */
static int wait_of(const struct frame *push, uint64_t job, uint64_t accepted_ms, struct xwait *w)
{
	struct frame_field data;

	if (frame_get(push, TAG_DATA, &data) != 0 || data.len > sizeof w->body)
		return -1;
	w->job = job;
	w->accepted_ms = accepted_ms;
	w->body_len = data.len;
	memcpy(w->body, data.val, data.len);
	return 0;
}

/* A WNS 406 on the job push, applied at ts: the channel backs off (the rule and values of one
 * machine, xreg_channel_throttled) and the job waits as its one pending job. */
static void apply_throttled(struct router *r, MDB_txn *txn, natsMsg *m, const struct frame *push,
			    const struct frame *res, const char *dev, uint64_t ts)
{
	struct xdevice *d = malloc(sizeof *d);
	struct frame_field tok;
	struct xwait w;
	uint64_t job, acc;
	char tb[32];
	int rc;

	if (d == NULL || frame_get(push, TAG_TOKEN, &tok) != 0 || job_header(m, &job, &acc) < 0 ||
	    wait_of(push, job, acc, &w) < 0) {
		free(d);
		return;
	}
	rc = xreg_channel_throttled(txn, &r->store, dev, (const char *)tok.val, tok.len, ts,
				    frame_u64(res, TAG_RETRY_AFTER, 0), d);
	if (rc == 2)
		log_info("WNS channel %s throttled (406, %u in a row): backing off for %llu s%s",
			 log_redact((const char *)tok.val, tok.len, tb, sizeof tb), d->throttles,
			 (unsigned long long)((d->throttled_until_ms - ts) / 1000),
			 frame_u64(res, TAG_RETRY_AFTER, 0) ? " (X-WNS-CONTINUE-AFTER)" : "");
	if (rc > 0)
		hold(r, txn, dev, &w);
	else if (rc == 0) {
		counter_add(CTR_WNS_FAILED, 1);
		log_info("WNS job %llu dropped after a 406: its channel was replaced or is dead", (unsigned long long)job);
	}
	free(d);
}

/* A WNS or XMPP job's result, applied by every router as a registry change (header Pp-Ref: the
 * device or node): as on one machine, a 404/410 marks the device's channel dead and an XMPP
 * node's dead token is marked (devices, accounts and nodes are kept; a new channel or
 * registration revives them); a WNS 200 refreshes the device and ends its run of 406s; a 406
 * backs the channel off and holds the job. */
void cluster_x_apply_result(struct router *r, MDB_txn *txn, const struct frame *push, const struct frame *res,
			    natsMsg *m, uint64_t ts)
{
	struct frame_field tok, rs = {0, 0, NULL};
	uint32_t kind = frame_u32(push, TAG_KIND, 0), outcome = frame_u32(res, TAG_OUTCOME, 0);
	const char *ref = NULL;
	char tbuf[32], dev[XREG_DEVICE_LEN + 1];
	size_t rl;
	int rc, wns;

	if (natsMsgHeader_Get(m, "Pp-Ref", &ref) != NATS_OK)
		ref = NULL;
	rl = ref ? strlen(ref) : 0;
	if (rl == 0 || frame_get(push, TAG_TOKEN, &tok) != 0)
		return;
	wns = kind == KIND_WNS && device_header(m, dev) == 0;
	if (wns && outcome == OUTCOME_DELIVERED) {
		xreg_channel_ok(txn, &r->store, dev, (const char *)tok.val, tok.len, ts);
	} else if (wns && outcome == OUTCOME_RETRY && frame_u32(res, TAG_STATUS, 0) == 406) {
		apply_throttled(r, txn, m, push, res, dev, ts);
	} else if (wns && outcome == OUTCOME_TOKEN_DEAD) {
		if (frame_get(res, TAG_REASON, &rs) != 0)
			rs.len = 0;
		rc = xreg_channel_dead(txn, &r->store, dev, (const char *)tok.val, tok.len, (const char *)rs.val, rs.len, ts);
		if (rc == 1) {
			counter_add(CTR_WNS_CHANNELS_DEAD, 1);
			log_info("WNS channel %s marked dead (device, accounts and nodes kept)",
				 log_redact((const char *)tok.val, tok.len, tbuf, sizeof tbuf));
		}
	} else if (kind == KIND_XMPP && outcome == OUTCOME_TOKEN_DEAD) {
		rc = xreg_node_token_dead(txn, &r->store, ref, rl, (const char *)tok.val, tok.len);
		if (rc == 1)
			log_info("token %s of an XMPP registration is dead",
				 log_redact((const char *)tok.val, tok.len, tbuf, sizeof tbuf));
	}
}

/* pp.reg.x-hold: a job (PUSH frame) made while its channel backed off. */
static int apply_hold(struct router *r, MDB_txn *txn, natsMsg *m)
{
	char dev[XREG_DEVICE_LEN + 1];
	struct frame push;
	struct xwait w;
	uint64_t job, acc;

	if (device_header(m, dev) < 0 || job_header(m, &job, &acc) < 0 ||
	    frame_parse((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &push, NULL) < 0 ||
	    push.type != FRAME_PUSH || wait_of(&push, job, acc, &w) < 0) {
		log_warn("cluster: a malformed hold change; skipped");
		return 0;
	}
	return hold(r, txn, dev, &w);
}

/* pp.reg.x-release: the waiting job went to PP_JOBS (or was dropped) when the back-off ending at
 * Pp-Until was over: no longer waiting. Unless a new back-off began since (the released job's
 * own 406, applied first): then it waits for that one. */
static int apply_release(struct router *r, MDB_txn *txn, natsMsg *m)
{
	char dev[XREG_DEVICE_LEN + 1];
	struct xdevice *d;
	struct xwait w;
	uint64_t job, acc;
	const char *until = NULL;
	int rc, have;

	if (device_header(m, dev) < 0 || job_header(m, &job, &acc) < 0 ||
	    natsMsgHeader_Get(m, CLUSTER_H_UNTIL, &until) != NATS_OK || until == NULL)
		return 0;
	if ((rc = wait_get(txn, dev, &w)) <= 0 || w.job != job)
		return rc < 0 ? -1 : 0;
	if ((d = malloc(sizeof *d)) == NULL || (have = xreg_device_get(txn, &r->store, dev, d)) < 0) {
		free(d);
		return -1;
	}
	rc = have == 1 && !d->dead && d->throttled_until_ms > strtoull(until, NULL, 10) ? 0 : wait_del(txn, dev);
	free(d);
	return rc;
}

/* pp.reg.x-touch: a test push's refresh of its device (last seen and refreshed), as on one
 * machine. */
static int apply_touch(struct router *r, MDB_txn *txn, natsMsg *m, uint64_t ts)
{
	char dev[XREG_DEVICE_LEN + 1];

	if (device_header(m, dev) < 0)
		return 0;
	return xreg_device_touch(txn, &r->store, dev, ts) < 0 ? -1 : 0;
}

/* pp.reg.x-bind: an accepted publish binds its wns node to its domain (ingress_xmpp.bind_domain):
 * checked again on the copy, so of two publishes from different domains the first in the
 * stream binds. */
static int apply_bind(struct router *r, MDB_txn *txn, natsMsg *m)
{
	struct xnode *n = malloc(sizeof *n);
	struct xdevice *d = malloc(sizeof *d);
	struct frame f;
	struct frame_field node, domain;
	struct xpublish x;
	int rc = 0;

	if (n && d && frame_parse((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &f, NULL) == 0 &&
	    f.type == FRAME_XMPP_PUBLISH && xhandle_publish_check(r, txn, &f, n, d, &x) == STATUS_OK && x.bind &&
	    frame_get(&f, TAG_NODE, &node) == 0 && frame_get(&f, TAG_DOMAIN, &domain) == 0)
		rc = xreg_node_bind(txn, &r->store, (const char *)node.val, node.len, (const char *)domain.val, domain.len);
	free(n);
	free(d);
	return rc < 0 ? -1 : 0;
}

struct sweep {
	uint64_t ts, seq;
	char cursor[XREG_DEVICE_LEN + 1];
};

static int sweep_get(MDB_txn *txn, struct sweep *s)
{
	MDB_val k = {5, "sweep"}, v;
	int rc = mdb_get(txn, XDB, &k, &v);

	memset(s, 0, sizeof *s);
	if (rc != 0)
		return rc == MDB_NOTFOUND ? 0 : -1;
	if (v.mv_size < SWEEP_HDR || v.mv_size > SWEEP_HDR + XREG_DEVICE_LEN)
		return -1;
	memcpy(&s->ts, v.mv_data, 8);
	memcpy(&s->seq, (const char *)v.mv_data + 8, 8);
	memcpy(s->cursor, (const char *)v.mv_data + SWEEP_HDR, v.mv_size - SWEEP_HDR);
	return 1;
}

static int sweep_put(MDB_txn *txn, const struct sweep *s)
{
	unsigned char b[SWEEP_HDR + XREG_DEVICE_LEN];
	size_t cl = strlen(s->cursor);
	MDB_val k = {5, "sweep"}, v = {SWEEP_HDR + cl, b};

	memcpy(b, &s->ts, 8);
	memcpy(b + 8, &s->seq, 8);
	memcpy(b + SWEEP_HDR, s->cursor, cl);
	return mdb_put(txn, XDB, &k, &v, 0) == 0 ? 0 : -1;
}

/* pp.reg.x-expire: one pass of the device expiry sweep (the budget and rule of one machine),
 * with the change's time as now and the cursor kept in the copy, so every router removes the
 * same devices. */
static int apply_expire(struct router *r, MDB_txn *txn, uint64_t seq, uint64_t ts)
{
	struct sweep s;
	long n;

	if (sweep_get(txn, &s) < 0)
		memset(&s, 0, sizeof s);
	n = xreg_expire(txn, &r->store, ts, (uint64_t)r->cfg->router.device_expiry_s * 1000, SWEEP_BUDGET, s.cursor);
	if (n < 0)
		return -1;
	s.ts = ts;
	s.seq = seq;
	if (sweep_put(txn, &s) < 0)
		return -1;
	if (n > 0) {
		counter_add(CTR_UWPX_DEVICES_EXPIRED, (uint64_t)n);
		log_info("%ld UWPX devices expired (not refreshed for %ld s), with their accounts and nodes", n,
			 r->cfg->router.device_expiry_s);
	}
	return 0;
}

int cluster_x_owns(natsMsg *m)
{
	const char *s = natsMsg_GetSubject(m);
	return s && strncmp(s, "pp.reg.x-", 9) == 0;
}

uint32_t cluster_x_apply(struct router *r, MDB_txn *txn, natsMsg *m, uint64_t seq, uint64_t ts)
{
	const char *what = natsMsg_GetSubject(m) + 9;
	MDB_txn *child;
	int rc = 0;

	if (!xdb_open || mdb_txn_begin(r->store.env, txn, 0, &child) != 0)
		return STATUS_ERROR;
	if (strcmp(what, "hold") == 0)
		rc = apply_hold(r, child, m);
	else if (strcmp(what, "release") == 0)
		rc = apply_release(r, child, m);
	else if (strcmp(what, "touch") == 0)
		rc = apply_touch(r, child, m, ts);
	else if (strcmp(what, "bind") == 0)
		rc = apply_bind(r, child, m);
	else if (strcmp(what, "expire") == 0)
		rc = apply_expire(r, child, seq, ts);
	else
		log_warn("cluster: registry change %llu of an unknown kind (%s); skipped", (unsigned long long)seq, what);
	if (rc < 0) {
		mdb_txn_abort(child);
		return STATUS_ERROR;
	}
	return mdb_txn_commit(child) == 0 ? STATUS_OK : STATUS_ERROR;
}

/* ---- the router that takes a request ---- */

/* Whether a device's refresh is old enough to be worth a replicated write: older than a
 * sixteenth of the expiry, so a device used every day costs a write every few days rather than
 * one per notification. */
static int stale(const struct router *r, const struct xdevice *d, uint64_t now)
{
	uint64_t every = (uint64_t)r->cfg->router.device_expiry_s * 1000 / 16;
	return d->refreshed_ms + every <= now;
}

static int set_job_headers(natsMsg *m, const char *dev, uint64_t job, uint64_t accepted_ms)
{
	char v[48];

	snprintf(v, sizeof v, "%llu.%llu", (unsigned long long)job, (unsigned long long)accepted_ms);
	return natsMsgHeader_Set(m, "Pp-Ref", dev) == NATS_OK && natsMsgHeader_Set(m, CLUSTER_H_JOB, v) == NATS_OK ? 0
														   : -1;
}

natsMsg *cluster_x_wns_msg(struct router *r, const char *subj, const char *id, const uint8_t *frame, size_t len,
			   const char *dev, const struct xdevice *d, uint64_t job, uint64_t accepted_ms, uint64_t now,
			   int *held)
{
	char hid[32];
	natsMsg *m;

	*held = xreg_backing_off(d, d->uri, d->uri_len, now);
	if (*held) {
		snprintf(hid, sizeof hid, "xh%llu", (unsigned long long)job);
		m = bus_msg("pp.reg.x-hold", frame, len, hid);
	} else {
		m = bus_msg(subj, frame, len, id);
	}
	if (m && (set_job_headers(m, dev, job, accepted_ms) < 0 ||
		  (!*held && (d->throttles > 0 || stale(r, d, now)) && natsMsgHeader_Set(m, CLUSTER_H_OK, "1") != NATS_OK))) {
		natsMsg_Destroy(m);
		m = NULL;
	}
	return m;
}

natsMsg *cluster_x_touch(struct router *r, const char *dev, const struct xdevice *d, uint64_t job, uint64_t now)
{
	char id[32];
	natsMsg *m;

	if (!stale(r, d, now))
		return NULL;
	snprintf(id, sizeof id, "xt%llu", (unsigned long long)job);
	if ((m = bus_msg("pp.reg.x-touch", "", 0, id)) != NULL && natsMsgHeader_Set(m, "Pp-Ref", dev) != NATS_OK) {
		natsMsg_Destroy(m);
		m = NULL;
	}
	return m;
}

natsMsg *cluster_x_bind_change(natsMsg *req, uint64_t job)
{
	char id[32];

	snprintf(id, sizeof id, "xb%llu", (unsigned long long)job);
	return bus_msg("pp.reg.x-bind", natsMsg_GetData(req), (size_t)natsMsg_GetDataLength(req), id);
}

/* ---- limits: PP_JOBS as the outbox, and the test pushes waiting for WNS ---- */

int cluster_x_jobs_room(struct router *r, struct bus *b)
{
	static uint64_t next, msgs;
	uint64_t now = mono_ms();

	if (now >= next) {
		jsStreamInfo *si = NULL;
		jsErrCode ec = 0;
		if (js_GetStreamInfo(&si, b->js, BUS_JOBS, NULL, &ec) == NATS_OK)
			msgs = si->State.Msgs;
		jsStreamInfo_Destroy(si);
		next = now + 1000;
	}
	if (msgs + 1 <= (uint64_t)r->cfg->router.outbox_max)
		return 1;
	counter_add(CTR_BUSY_REJECTS, 1);
	return 0;
}

static struct {
	uint64_t key, deadline;
} tests[XTEST_MAX];

static uint64_t test_key(const char *reply, uint64_t frame_id)
{
	unsigned char out[8];
	char buf[256];
	uint64_t h;
	int n = snprintf(buf, sizeof buf, "%s %llu", reply ? reply : "", (unsigned long long)frame_id);

	crypto_generichash(out, sizeof out, (const unsigned char *)buf, (size_t)(n > 0 ? n : 0), NULL, 0);
	memcpy(&h, out, 8);
	return h | 1;
}

int cluster_x_test_add(const char *reply, uint64_t frame_id)
{
	uint64_t now = mono_ms();

	for (size_t i = 0; i < XTEST_MAX; i++)
		if (tests[i].key == 0 || tests[i].deadline <= now) {
			tests[i].key = test_key(reply, frame_id);
			tests[i].deadline = now + XTEST_WAIT_MS;
			return 0;
		}
	counter_add(CTR_BUSY_REJECTS, 1);
	return -1;
}

void cluster_x_test_done(const char *reply, uint64_t frame_id)
{
	uint64_t k = test_key(reply, frame_id);

	for (size_t i = 0; i < XTEST_MAX; i++)
		if (tests[i].key == k)
			tests[i].key = 0;
}

/* ---- once a second: released waiting jobs, the expiry sweep ---- */

/* Waiting jobs whose channel's back-off has ended go to PP_JOBS (id "xw<job>.<end of the
 * back-off>": every router may send the same one, the stream stores it once) and a release change
 * (id "xr<job>.<end>", header Pp-Until: the end) takes them off the copies; the job of a device
 * that is gone or dead is only released. */
static void release_due(struct router *r, struct bus *b, uint64_t now)
{
	natsMsg *jobs[RELEASE_MAX], *rel[RELEASE_MAX];
	struct xdevice *d = malloc(sizeof *d);
	size_t nj = 0, nr = 0;
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k = {1, "w"}, v;
	int rc;

	if (d == NULL || mdb_txn_begin(r->store.env, NULL, MDB_RDONLY, &txn) != 0 || mdb_cursor_open(txn, XDB, &c) != 0) {
		if (txn)
			mdb_txn_abort(txn);
		free(d);
		return;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && nr < RELEASE_MAX;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		static uint8_t buf[FRAME_MAX];
		char dev[XREG_DEVICE_LEN + 1], id[64], subj[128], until[24];
		struct frame_writer w;
		struct xwait wt;
		long len;
		int have;

		if (k.mv_size != 1 + XREG_DEVICE_LEN || ((const char *)k.mv_data)[0] != 'w')
			break;
		memcpy(dev, (const char *)k.mv_data + 1, XREG_DEVICE_LEN);
		dev[XREG_DEVICE_LEN] = '\0';
		if (wait_get(txn, dev, &wt) != 1 || (have = xreg_device_get(txn, &r->store, dev, d)) < 0)
			continue;
		if (have && !d->dead && d->throttled_until_ms > now)
			continue; /* still backing off */
		if (have && !d->dead) {
			frame_begin(&w, buf, FRAME_PUSH, 0);
			frame_put_u32(&w, TAG_PLATFORM, PLATFORM_WNS);
			frame_put_u32(&w, TAG_KIND, KIND_WNS);
			frame_put_bytes(&w, TAG_TOKEN, d->uri, d->uri_len);
			frame_put_bytes(&w, TAG_DATA, wt.body, wt.body_len);
			frame_put_u32(&w, TAG_ATTEMPT, 0);
			snprintf(id, sizeof id, "xw%llu.%llu", (unsigned long long)wt.job,
				 (unsigned long long)d->throttled_until_ms);
			bus_job_subject(b, PLATFORM_WNS, subj, sizeof subj);
			if ((len = frame_end(&w)) < 0 || (jobs[nj] = bus_msg(subj, buf, (size_t)len, id)) == NULL)
				continue;
			/* Its delivery is reported: a 200 ends the channel's run of 406s. */
			if (set_job_headers(jobs[nj], dev, wt.job, wt.accepted_ms) < 0 ||
			    natsMsgHeader_Set(jobs[nj], CLUSTER_H_OK, "1") != NATS_OK) {
				natsMsg_Destroy(jobs[nj]);
				continue;
			}
			nj++;
		}
		/* The ids name the back-off that ended: a job held again (its own 406) and released
		 * after the next one is a new job and a new release, not a duplicate of these. */
		snprintf(until, sizeof until, "%llu", (unsigned long long)(have ? d->throttled_until_ms : 0));
		snprintf(id, sizeof id, "xr%llu.%s", (unsigned long long)wt.job, until);
		if ((rel[nr] = bus_msg("pp.reg.x-release", "", 0, id)) != NULL &&
		    set_job_headers(rel[nr], dev, wt.job, wt.accepted_ms) == 0 &&
		    natsMsgHeader_Set(rel[nr], CLUSTER_H_UNTIL, until) == NATS_OK)
			nr++;
		else
			natsMsg_Destroy(rel[nr]);
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	free(d);
	if (nj && bus_publish(b, jobs, nj, NULL, 4 * b->wait_ms) != 0) {
		log_warn("cluster: %zu WNS jobs whose back-off ended not stored now; trying again", nj);
		for (size_t i = 0; i < nr; i++)
			natsMsg_Destroy(rel[i]);
		return;
	}
	if (nj)
		counter_add(CTR_JOBS_QUEUED, nj);
	if (nr && router_cluster_changes(r, rel, nr) < 0)
		log_warn("cluster: %zu released WNS jobs not recorded now; trying again", nr);
}

/* A sweep change once the copy's last sweep is a minute old (plus a few seconds of this
 * router's own, so that usually one router sends it); its id names the sweep it follows, so
 * routers that send it together store it once. */
static void sweep_due(struct router *r, uint64_t now)
{
	static uint32_t jitter;
	MDB_txn *txn;
	MDB_stat st;
	struct sweep s;
	char id[32];
	natsMsg *m;
	int have;

	if (jitter == 0)
		jitter = 1 + randombytes_uniform(10000);
	if (mdb_txn_begin(r->store.env, NULL, MDB_RDONLY, &txn) != 0)
		return;
	have = sweep_get(txn, &s) >= 0 && mdb_stat(txn, r->store.udev, &st) == 0 && st.ms_entries > 0;
	mdb_txn_abort(txn);
	if (!have || s.ts + SWEEP_EVERY_MS + jitter > now)
		return;
	snprintf(id, sizeof id, "xe%llu", (unsigned long long)s.seq);
	if ((m = bus_msg("pp.reg.x-expire", "", 0, id)) != NULL)
		router_cluster_changes(r, &m, 1);
}

void cluster_x_tick(struct router *r, struct bus *b)
{
	static uint64_t next;
	uint64_t mono = mono_ms();

	if (!xdb_open || mono < next)
		return;
	next = mono + 1000;
	release_due(r, b, now_ms());
	sweep_due(r, now_ms());
}
