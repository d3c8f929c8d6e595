/*
 * uwpx_xmpp_handle: the router's side of UWPX and XMPP (docs/uwpx.md "Actions" to "What is stored",
 * docs/xmpp.md "Publish" and "Ad-hoc registration", docs/senders.md "wns-sender"). Request handlers
 * run inside handle.c's group-commit batch (one nested transaction each), so whatever they answer
 * is on disk before the answer leaves. Also: sender results for KIND_WNS and KIND_XMPP jobs, the
 * test pushes waiting for such a result, WNS channels backing off after a 406 (one waiting job
 * each, the newest; the older superseded), and the device expiry sweep. Frames arrive parsed
 * (frame_parse); lengths and alphabets are still checked here.
 */
#include "counters.h"
#include "daemon.h"
#include "hex.h"
#include "log.h"
#include "router.h"
#include "uwpx_xmpp_reg.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCOUNTS_MAX 256
#define SWEEP_BUDGET 1000

static const char test_body[] = "{\"action\":\"test_push\",\"version\":2}";

static int is_hex(const uint8_t *p, size_t n, int lower_only)
{
	for (size_t i = 0; i < n; i++)
		if ((lower_only ? hex_value_lower(p[i]) : hex_value(p[i])) < 0)
			return 0;
	return 1;
}

/* The device id field as a NUL-terminated string, or NULL when it is not 64 lowercase hex. */
static const char *device_id(const struct frame *f, char out[XREG_DEVICE_LEN + 1])
{
	struct frame_field d;
	if (frame_get(f, TAG_DEVICE_ID, &d) != 0 || d.len != XREG_DEVICE_LEN || !is_hex(d.val, d.len, 1))
		return NULL;
	memcpy(out, d.val, XREG_DEVICE_LEN);
	out[XREG_DEVICE_LEN] = '\0';
	return out;
}

static struct xreg_lengths lengths(const struct router *r)
{
	struct xreg_lengths l = {(size_t)r->cfg->router.node_length, (size_t)r->cfg->router.secret_length};
	return l;
}

/* Room for one more job, or a busy answer (back-pressure as for notifies). */
static int outbox_full(const struct router *r)
{
	if (r->outbox_jobs + 1 <= (uint64_t)r->cfg->router.outbox_max)
		return 0;
	counter_add(CTR_BUSY_REJECTS, 1);
	return 1;
}

/* Stores one wake-up job (message and job) due now and remembers it for the ready queue. */
static int queue_job(struct router *r, MDB_txn *txn, uint32_t platform, uint32_t kind, const char *token,
		     size_t token_len, const char *ref, size_t ref_len, uint32_t flags, const char *app, size_t app_len,
		     const char *body, size_t body_len, uint64_t now, uint64_t *job)
{
	uint64_t msg;
	int lane = router_lane(r, platform, app, app_len);
	if (lane < 0 || outbox_add_msg(txn, &r->store, body, body_len, 1, &msg) < 0 ||
	    outbox_add_job_app(txn, &r->store, msg, platform, kind, token, token_len, ref, ref_len, flags, app, app_len,
			       now, (uint64_t)r->cfg->router.wake_max_age_s * 1000, job) < 0 ||
	    router_fresh_add(r, *job, (uint32_t)lane) < 0)
		return -1;
	counter_add(CTR_JOBS_QUEUED, 1);
	return 0;
}

/* Builds a FRAME_NODES reply into p->reply. */
static int nodes_reply(struct pending *p, uint64_t id, const struct xreg_account *a, size_t n)
{
	static uint8_t buf[FRAME_MAX];
	struct frame_writer w;
	long len;

	frame_begin(&w, buf, FRAME_NODES, id);
	for (size_t i = 0; i < n; i++) {
		frame_put_bytes(&w, TAG_ACCOUNT, a[i].id, a[i].len > XREG_ACCOUNT_MAX ? XREG_ACCOUNT_MAX : a[i].len);
		frame_put_bytes(&w, TAG_NODE, a[i].node, a[i].ok ? strlen(a[i].node) : 0);
		frame_put_bytes(&w, TAG_SECRET, a[i].secret, a[i].ok ? strlen(a[i].secret) : 0);
		frame_put_u32(&w, TAG_STATUS, a[i].ok ? STATUS_OK : STATUS_ERROR);
	}
	if ((len = frame_end(&w)) < 0 || (p->reply = malloc((size_t)len)) == NULL)
		return -1;
	memcpy(p->reply, buf, (size_t)len);
	p->reply_len = (size_t)len;
	return 0;
}

static uint32_t do_channel(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now)
{
	char dev[XREG_DEVICE_LEN + 1];
	struct frame_field uri;

	if (device_id(f, dev) == NULL || frame_get(f, TAG_URI, &uri) != 0 || uri.len == 0)
		return STATUS_ERROR;
	if (!uwpx_uri_valid(&r->uri_rules, (const char *)uri.val, uri.len)) {
		/* The ingress checked it already: only a forged or foreign frame gets here. */
		log_warn("device %.8s...: channel URI outside the allowlist refused", dev);
		return STATUS_ERROR;
	}
	return xreg_set_channel(txn, &r->store, dev, (const char *)uri.val, uri.len, now) < 0 ? STATUS_ERROR
											       : STATUS_OK;
}

static uint32_t do_accounts(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now, struct pending *p)
{
	char dev[XREG_DEVICE_LEN + 1];
	struct xreg_lengths len = lengths(r);
	struct xreg_account *a;
	struct frame_field fl;
	size_t n = 0, pos = 0;
	uint32_t status = STATUS_ERROR;
	int rc;

	if (device_id(f, dev) == NULL || (a = calloc(ACCOUNTS_MAX, sizeof *a)) == NULL)
		return STATUS_ERROR;
	while (frame_next(f, &pos, &fl) == 0) {
		if (fl.tag != TAG_ACCOUNT)
			continue;
		if (n == ACCOUNTS_MAX)
			goto out;
		a[n].id = (const char *)fl.val;
		/* Not hex: answered success:false (it would not be JSON-safe in a WNS body). */
		a[n].len = is_hex(fl.val, fl.len, 0) ? fl.len : 0;
		n++;
	}
	rc = xreg_set_accounts(txn, &r->store, dev, frame_u32(f, TAG_VERSION, 0), a, n, &len, now);
	if (rc == 0)
		status = STATUS_NOT_FOUND;
	else if (rc == 1) {
		/* Echo what was received, also for the accounts refused above. */
		pos = 0;
		for (size_t i = 0; frame_next(f, &pos, &fl) == 0;)
			if (fl.tag == TAG_ACCOUNT) {
				a[i].id = (const char *)fl.val;
				a[i++].len = fl.len;
			}
		status = nodes_reply(p, f->id, a, n) < 0 ? STATUS_ERROR : STATUS_OK;
	}
out:
	free(a);
	return status;
}

static uint32_t do_test(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now, struct pending *p)
{
	char dev[XREG_DEVICE_LEN + 1];
	struct xdevice *d;
	uint32_t status = STATUS_ERROR;
	const char *app;
	size_t app_len;
	int rc;

	if (device_id(f, dev) == NULL || (d = malloc(sizeof *d)) == NULL)
		return STATUS_ERROR;
	router_wns_app(r, &app, &app_len);
	rc = xreg_device_get(txn, &r->store, dev, d);
	if (rc == 1 && xreg_device_touch(txn, &r->store, dev, now) < 0)
		rc = -1;
	if (rc == 0 || (rc == 1 && d->dead))
		status = STATUS_NOT_FOUND;
	else if (rc == 1 && (r->nxtests == XTEST_MAX || outbox_full(r)))
		status = STATUS_BUSY;
	else if (rc == 1 && queue_job(r, txn, PLATFORM_WNS, KIND_WNS, d->uri, d->uri_len, dev, XREG_DEVICE_LEN,
				      OUTBOX_F_TEST, app, app_len, test_body, sizeof test_body - 1, now, &p->job) == 0)
		status = STATUS_DEFERRED;
	free(d);
	return status;
}

/* The WNS raw body of a publish (docs/senders.md, "wns-sender"): compact, keys sorted. */
static int wns_body(char *out, size_t cap, const struct xnode *n, const struct frame *f)
{
	uint32_t msgs = frame_u32(f, TAG_MSG_COUNT, 0), pending = frame_u32(f, TAG_PENDING_COUNT, 0);
	int len;
	msgs = msgs > INT32_MAX ? INT32_MAX : msgs;
	pending = pending > INT32_MAX ? INT32_MAX : pending;
	len = snprintf(out, cap,
		       "{\"account_id\":\"%.*s\",\"action\":\"push\",\"message_count\":%u,"
		       "\"pending_subscription_count\":%u,\"version\":2}",
		       (int)n->account_len, n->account, msgs, pending);
	return len > 0 && (size_t)len < cap ? len : -1;
}

/* What an fcm/apns node's sender needs to build the p2-style message (docs/xmpp.md "Ad-hoc
 * registration"). */
static int xmpp_body(char *out, size_t cap, const struct xnode *n, int high)
{
	int len;
	if (n->channel_len)
		len = snprintf(out, cap, "{\"account\":\"%.*s\",\"channel\":\"%.*s\",\"high\":%s}", (int)n->account_len,
			       n->account, (int)n->channel_len, n->channel, high ? "true" : "false");
	else
		len = snprintf(out, cap, "{\"account\":\"%.*s\",\"high\":%s}", (int)n->account_len, n->account,
			       high ? "true" : "false");
	return len > 0 && (size_t)len < cap ? len : -1;
}

static int domain_eq(const struct xnode *n, const struct frame_field *d)
{
	if (n->domain_len != d->len)
		return 0;
	for (size_t i = 0; i < d->len; i++) {
		int a = (unsigned char)n->domain[i], b = d->val[i];
		if ((a >= 'A' && a <= 'Z' ? a + 32 : a) != (b >= 'A' && b <= 'Z' ? b + 32 : b))
			return 0;
	}
	return 1;
}

/* Checks 5–10 of docs/xmpp.md "Publish", in order, without writing (also the cluster's check,
 * cluster_uwpx_xmpp.c): the job a publish becomes, or the status to answer. */
uint32_t xhandle_publish_check(struct router *r, MDB_txn *txn, const struct frame *f, struct xnode *n,
			       struct xdevice *d, struct xpublish *out)
{
	struct frame_field node, secret, domain;
	int rc;

	frame_get(f, TAG_NODE, &node);
	frame_get(f, TAG_SECRET, &secret);
	frame_get(f, TAG_DOMAIN, &domain);
	if ((rc = xreg_node_get(txn, &r->store, (const char *)node.val, node.len, n)) <= 0)
		return rc < 0 ? STATUS_ERROR : STATUS_NOT_FOUND;
	if (n->domain_len > 0 && !domain_eq(n, &domain))
		return STATUS_NOT_FOUND;
	if (secret.len != n->secret_len || sodium_memcmp(secret.val, n->secret, secret.len) != 0)
		return STATUS_FORBIDDEN;
	out->bind = 0;
	if (n->kind != XNODE_WNS) {
		if (n->dead)
			return STATUS_NOT_FOUND;
		out->platform = n->kind == XNODE_APNS ? PLATFORM_IOS : PLATFORM_ANDROID;
		out->kind = KIND_XMPP;
		out->token = n->token;
		out->token_len = n->token_len;
		out->ref = (const char *)node.val;
		out->ref_len = node.len;
		out->app = n->app; /* the registration's app */
		out->app_len = n->app_len;
		out->body_len = xmpp_body(out->body, sizeof out->body, n, (frame_u32(f, TAG_FLAGS, 0) & FRAME_F_HIGH) != 0);
		return out->body_len < 0 ? STATUS_ERROR : STATUS_OK;
	}
	if ((rc = xreg_device_get(txn, &r->store, n->device_id, d)) <= 0)
		return rc < 0 ? STATUS_ERROR : STATUS_NOT_FOUND; /* expired under its node: cannot happen */
	if (d->dead)
		return STATUS_UNAVAILABLE;
	out->platform = PLATFORM_WNS;
	out->kind = KIND_WNS;
	out->token = d->uri;
	out->token_len = d->uri_len;
	out->ref = n->device_id;
	out->ref_len = XREG_DEVICE_LEN;
	router_wns_app(r, &out->app, &out->app_len);
	out->bind = n->domain_len == 0 && r->cfg->xmpp.bind_domain && domain.len > 0;
	out->body_len = wns_body(out->body, sizeof out->body, n, f);
	return out->body_len < 0 ? STATUS_ERROR : STATUS_OK;
}

/* Checks (above); queues the job. */
static uint32_t publish(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now, struct xnode *n,
			struct xdevice *d)
{
	struct frame_field node, domain;
	struct xpublish x;
	uint64_t job;
	uint32_t status = xhandle_publish_check(r, txn, f, n, d, &x);

	if (status != STATUS_OK)
		return status;
	if (outbox_full(r))
		return STATUS_BUSY;
	if (queue_job(r, txn, x.platform, x.kind, x.token, x.token_len, x.ref, x.ref_len, 0, x.app, x.app_len, x.body,
		      (size_t)x.body_len, now, &job) < 0)
		return STATUS_ERROR;
	frame_get(f, TAG_NODE, &node);
	frame_get(f, TAG_DOMAIN, &domain);
	if (x.bind &&
	    xreg_node_bind(txn, &r->store, (const char *)node.val, node.len, (const char *)domain.val, domain.len) < 0)
		return STATUS_ERROR;
	return STATUS_OK;
}

static uint32_t do_publish(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now)
{
	struct xnode *n = malloc(sizeof *n);
	struct xdevice *d = malloc(sizeof *d);
	uint32_t status = n && d ? publish(r, txn, f, now, n, d) : STATUS_ERROR;
	free(n);
	free(d);
	return status;
}

static uint32_t adhoc_kind(const struct frame *f)
{
	uint32_t pl = frame_u32(f, TAG_PLATFORM, 0);
	return pl == PLATFORM_IOS ? XNODE_APNS : pl == PLATFORM_ANDROID ? XNODE_FCM : 0;
}

static uint32_t do_xregister(struct router *r, MDB_txn *txn, const struct frame *f, struct pending *p)
{
	struct frame_field id, tok, dom, acct, ch = {0, 0, NULL}, app = {0, 0, NULL};
	struct xreg_lengths len = lengths(r);
	const char *an = "";
	size_t al = 0;
	struct xreg_account out;
	struct xnode *in;
	uint32_t kind = adhoc_kind(f), status = STATUS_ERROR;

	frame_get(f, TAG_IDENTITY, &id);
	frame_get(f, TAG_TOKEN, &tok);
	frame_get(f, TAG_DOMAIN, &dom);
	frame_get(f, TAG_ACCOUNT, &acct);
	if (frame_get(f, TAG_CHANNEL, &ch) != 0)
		ch.len = 0; /* frame_get leaves the last field it looked at */
	if (frame_get(f, TAG_APP, &app) != 0)
		app.len = 0;
	/* The app the registration names (the ingress checked its allowlist), as stored. */
	if (kind != 0 && router_app_norm(r, kind == XNODE_APNS ? PLATFORM_IOS : PLATFORM_ANDROID, (const char *)app.val,
					 app.len, &an, &al) < 0) {
		log_warn("XMPP registration for an app this router's configuration does not have; refused");
		return STATUS_ERROR;
	}
	if (kind == 0 || id.len != XREG_IDENTITY_LEN || tok.len == 0 || acct.len == 0 || !is_hex(acct.val, acct.len, 0) ||
	    !is_hex(ch.val, ch.len, 0) || (in = calloc(1, sizeof *in)) == NULL)
		return STATUS_ERROR;
	memcpy(in->token, tok.val, tok.len);
	in->token_len = tok.len;
	memcpy(in->domain, dom.val, dom.len);
	in->domain_len = dom.len;
	memcpy(in->account, acct.val, acct.len);
	in->account_len = acct.len;
	if (ch.len)
		memcpy(in->channel, ch.val, ch.len);
	in->channel_len = ch.len;
	memcpy(in->app, an, al);
	in->app_len = al;
	memset(&out, 0, sizeof out);
	if (xreg_adhoc_register(txn, &r->store, id.val, kind, in, &len, out.node, out.secret) == 0) {
		out.id = (const char *)acct.val;
		out.len = acct.len;
		out.ok = 1;
		status = nodes_reply(p, f->id, &out, 1) < 0 ? STATUS_ERROR : STATUS_OK;
	}
	free(in);
	return status;
}

static uint32_t do_xunregister(struct router *r, MDB_txn *txn, const struct frame *f)
{
	struct frame_field id;
	uint32_t kind = adhoc_kind(f);
	int rc;

	frame_get(f, TAG_IDENTITY, &id);
	if (kind == 0 || id.len != XREG_IDENTITY_LEN)
		return STATUS_ERROR;
	rc = xreg_adhoc_unregister(txn, &r->store, id.val, kind);
	return rc < 0 ? STATUS_ERROR : rc == 1 ? STATUS_OK : STATUS_NOT_FOUND;
}

/* One row of the UWPX push server's database (pushctl import-uwpx): a device's channel, or an
 * account with the node and secret it had there. What pushpipe holds already is never changed. */
static uint32_t do_import(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now)
{
	char dev[XREG_DEVICE_LEN + 1];
	struct frame_field uri, acct, node, secret;
	int rc;

	if (device_id(f, dev) == NULL)
		return STATUS_ERROR;
	if (frame_get(f, TAG_URI, &uri) == 0) {
		struct xdevice *d;
		if (!uwpx_uri_valid(&r->uri_rules, (const char *)uri.val, uri.len))
			return STATUS_ERROR; /* pushctl checked it already; the allowlist holds here too */
		d = malloc(sizeof *d);
		rc = d == NULL ? -1 : xreg_device_get(txn, &r->store, dev, d);
		free(d);
		if (rc == 0)
			rc = xreg_set_channel(txn, &r->store, dev, (const char *)uri.val, uri.len, now) < 0 ? -1 : 1;
		return rc < 0 ? STATUS_ERROR : STATUS_OK;
	}
	if (frame_get(f, TAG_ACCOUNT, &acct) != 0 || frame_get(f, TAG_NODE, &node) != 0 ||
	    frame_get(f, TAG_SECRET, &secret) != 0 || !is_hex(acct.val, acct.len, 0))
		return STATUS_ERROR;
	rc = xreg_import_account(txn, &r->store, dev, (const char *)acct.val, acct.len, (const char *)node.val, node.len,
				 (const char *)secret.val, secret.len);
	return rc == -1 ? STATUS_ERROR : rc == 0 ? STATUS_NOT_FOUND : rc == -2 ? STATUS_FORBIDDEN : STATUS_OK;
}

uint32_t xhandle_request(struct router *r, MDB_txn *txn, const struct frame *f, uint64_t now, struct pending *p)
{
	switch (f->type) {
	case FRAME_UWPX_CHANNEL:
		return do_channel(r, txn, f, now);
	case FRAME_UWPX_ACCOUNTS:
		return do_accounts(r, txn, f, now, p);
	case FRAME_UWPX_TEST:
		return do_test(r, txn, f, now, p);
	case FRAME_UWPX_IMPORT:
		return do_import(r, txn, f, now);
	case FRAME_XMPP_PUBLISH:
		return do_publish(r, txn, f, now);
	case FRAME_XMPP_REGISTER:
		return do_xregister(r, txn, f, p);
	case FRAME_XMPP_UNREGISTER:
		return do_xunregister(r, txn, f);
	}
	return STATUS_ERROR;
}

/* ---- results ---- */

static void test_answer(const struct outbox_job *j, struct pending *p, uint32_t status)
{
	if (j->flags & OUTBOX_F_TEST) {
		p->answer = 1;
		p->job = j->id;
		p->answer_status = status;
	}
}

/* Whether job id is on a sender now (then its own result settles it). */
static int in_flight(const struct router *r, uint64_t id)
{
	int32_t where;
	return held_get(&r->held, id, &where) && where != JOB_READY;
}

/* Ends a job that a newer one for the same channel replaces while the channel backs off
 * (docs/senders.md, "Throttled channels": newest wins). Not delivered, not retried, not a failure
 * either: counted wns_superseded and logged, so that no acknowledged notification disappears
 * unseen. */
static int supersede(struct router *r, MDB_txn *txn, const struct outbox_job *old, uint64_t by, uint64_t *test_job)
{
	char tb[32];

	counter_add(CTR_WNS_SUPERSEDED, 1);
	log_info("WNS job %llu superseded by job %llu: channel %s is backing off and only its newest notification "
		 "is sent",
		 (unsigned long long)old->id, (unsigned long long)by,
		 log_redact(old->token, old->token_len, tb, sizeof tb));
	if (old->flags & OUTBOX_F_TEST)
		*test_job = old->id;
	return outbox_finish(txn, &r->store, old);
}

/* j's channel (d) backs off: j and the job already waiting for that channel, if any, keep one
 * between them, the newer (job ids grow with acceptance), due when the back-off ends; the older
 * is superseded. j expires at once instead when it would pass its maximum age by then. A waiting
 * job that is on a sender (sent as an earlier back-off ended) is left to its own result, which
 * comes back here if it is a 406 too. attempted: j was sent (a 406), which counts as an attempt.
 * *test_job: a test push that ended here, to be answered failed. 0, or -1 on a store error. */
static int hold(struct router *r, MDB_txn *txn, struct outbox_job *j, const struct xdevice *d, int attempted,
		uint64_t *test_job)
{
	struct outbox_job w;
	int rc;

	*test_job = 0;
	if (d->throttled_until_ms > j->accepted_ms + j->max_age_ms) {
		counter_add(CTR_WNS_FAILED, 1);
		counter_add(CTR_JOBS_EXPIRED, 1);
		log_info("job %llu expired: its WNS channel backs off past the job's maximum age",
			 (unsigned long long)j->id);
		if (j->flags & OUTBOX_F_TEST)
			*test_job = j->id;
		return outbox_finish(txn, &r->store, j);
	}
	if (d->waiting_job != 0 && d->waiting_job != j->id) {
		if ((rc = outbox_get(txn, &r->store, d->waiting_job, &w, NULL, NULL)) < 0)
			return -1;
		if (rc == 1 && w.id > j->id)
			return supersede(r, txn, j, w.id, test_job);
		if (rc == 1 && !in_flight(r, w.id) && supersede(r, txn, &w, j->id, test_job) < 0)
			return -1;
	}
	if (xreg_channel_wait(txn, &r->store, j->ref, j->id) < 0)
		return -1;
	if (!attempted)
		return outbox_defer(txn, &r->store, j, d->throttled_until_ms);
	counter_add(CTR_JOBS_RETRIED, 1);
	return outbox_reschedule(txn, &r->store, j, d->throttled_until_ms);
}

/* A 406 for j (the sender's retry_after is X-WNS-CONTINUE-AFTER, 0 when WNS sent none): the
 * channel backs off (xreg_channel_throttled) and j waits as its one pending job. 0 done, 1 for
 * the caller to retry as usual (j's URI is no longer the device's live channel), -1 store
 * error. */
static int throttled(struct router *r, MDB_txn *txn, const struct outbox_job *j, uint64_t continue_ms, uint64_t now,
		     struct pending *p)
{
	struct xdevice *d = malloc(sizeof *d);
	struct outbox_job w = *j;
	uint64_t test_job = 0;
	char tb[32];
	int rc;

	if (d == NULL)
		return -1;
	rc = xreg_channel_throttled(txn, &r->store, j->ref, j->token, j->token_len, now, continue_ms, d);
	if (rc == 2)
		log_info("WNS channel %s throttled (406, %u in a row): backing off for %llu s%s",
			 log_redact(j->token, j->token_len, tb, sizeof tb), d->throttles,
			 (unsigned long long)((d->throttled_until_ms - now) / 1000),
			 continue_ms ? " (X-WNS-CONTINUE-AFTER)" : "");
	if (rc > 0)
		rc = hold(r, txn, &w, d, 1, &test_job);
	else if (rc == 0)
		rc = 1;
	free(d);
	if (rc == 0 && test_job) {
		p->answer = 1;
		p->job = test_job;
		p->answer_status = STATUS_FAILED;
	}
	return rc;
}

static int wns_result(struct router *r, MDB_txn *txn, const struct frame *f, const struct outbox_job *j,
		      uint64_t now, struct pending *p)
{
	uint32_t outcome = frame_u32(f, TAG_OUTCOME, 0);
	int has_dev = j->ref_len == XREG_DEVICE_LEN;
	struct frame_field rs = {0, 0, NULL};
	char tbuf[32];
	int rc;

	switch (outcome) {
	case OUTCOME_DELIVERED:
		counter_add(CTR_WNS_DELIVERED, 1);
		if (has_dev && xreg_channel_ok(txn, &r->store, j->ref, j->token, j->token_len, now) < 0)
			return -1;
		test_answer(j, p, STATUS_OK);
		return outbox_finish(txn, &r->store, j);
	case OUTCOME_TOKEN_DEAD:
		counter_add(CTR_WNS_FAILED, 1);
		frame_get(f, TAG_REASON, &rs);
		rc = has_dev ? xreg_channel_dead(txn, &r->store, j->ref, j->token, j->token_len, (const char *)rs.val,
						 rs.len, now)
			     : 0;
		if (rc < 0)
			return -1;
		if (rc == 1) {
			counter_add(CTR_WNS_CHANNELS_DEAD, 1);
			log_info("WNS channel %s marked dead (device, accounts and nodes kept)",
				 log_redact(j->token, j->token_len, tbuf, sizeof tbuf));
		}
		test_answer(j, p, STATUS_FAILED);
		return outbox_finish(txn, &r->store, j);
	case OUTCOME_MESSAGE_FAILED:
	case OUTCOME_TOKEN_SUSPECT:
		counter_add(CTR_WNS_FAILED, 1);
		counter_add(CTR_JOBS_FAILED, 1);
		test_answer(j, p, STATUS_FAILED);
		return outbox_finish(txn, &r->store, j);
	case OUTCOME_CREDENTIALS:
		if (j->flags & OUTBOX_F_TEST) {
			/* Only worth anything while the user waits: fails now (docs/senders.md,
			 * "Access token"), not retried. */
			counter_add(CTR_WNS_FAILED, 1);
			test_answer(j, p, STATUS_FAILED);
			return outbox_finish(txn, &r->store, j);
		}
		return 1;
	default:
		if (has_dev && frame_u32(f, TAG_STATUS, 0) == 406)
			return throttled(r, txn, j, frame_u64(f, TAG_RETRY_AFTER, 0), now, p);
		return 1;
	}
}

static int xmpp_result(struct router *r, MDB_txn *txn, const struct frame *f, const struct outbox_job *j)
{
	char tbuf[32];
	int rc;

	switch (frame_u32(f, TAG_OUTCOME, 0)) {
	case OUTCOME_DELIVERED:
		counter_add(j->platform == PLATFORM_IOS ? CTR_XMPP_APNS_DELIVERED : CTR_XMPP_FCM_DELIVERED, 1);
		return outbox_finish(txn, &r->store, j);
	case OUTCOME_TOKEN_DEAD:
		/* Marked, never deleted: the node answers item-not-found until re-registered. */
		rc = xreg_node_token_dead(txn, &r->store, j->ref, j->ref_len, j->token, j->token_len);
		if (rc < 0)
			return -1;
		if (rc == 1)
			log_info("token %s of an XMPP registration is dead",
				 log_redact(j->token, j->token_len, tbuf, sizeof tbuf));
		counter_add(CTR_JOBS_FAILED, 1);
		return outbox_finish(txn, &r->store, j);
	case OUTCOME_MESSAGE_FAILED:
	case OUTCOME_TOKEN_SUSPECT:
		counter_add(CTR_JOBS_FAILED, 1);
		return outbox_finish(txn, &r->store, j);
	default:
		return 1;
	}
}

int xhandle_result(struct router *r, MDB_txn *txn, const struct frame *f, const struct outbox_job *j, uint64_t now,
		   struct pending *p)
{
	return j->kind == KIND_WNS ? wns_result(r, txn, f, j, now, p) : xmpp_result(r, txn, f, j);
}

/* ---- test pushes waiting for their outcome ---- */

void xtest_add(struct router *r, int slot, uint64_t gen, uint64_t frame_id, uint64_t job)
{
	struct xtest *x;
	if (r->nxtests == XTEST_MAX) {
		router_reply(r, slot, gen, frame_id, STATUS_BUSY);
		return;
	}
	x = &r->xtests[r->nxtests++];
	x->job = job;
	x->slot = slot;
	x->gen = gen;
	x->frame_id = frame_id;
	x->deadline_ms = mono_ms() + XTEST_WAIT_MS;
}

static void xtest_del(struct router *r, size_t i)
{
	r->xtests[i] = r->xtests[--r->nxtests];
}

void xtest_answer(struct router *r, uint64_t job, uint32_t status)
{
	for (size_t i = 0; i < r->nxtests; i++)
		if (r->xtests[i].job == job) {
			struct xtest x = r->xtests[i];
			xtest_del(r, i);
			router_reply(r, x.slot, x.gen, x.frame_id, status);
			return;
		}
}

void xtest_expire(struct router *r, uint64_t mono_now)
{
	for (size_t i = 0; i < r->nxtests;)
		if (r->xtests[i].deadline_ms <= mono_now)
			xtest_del(r, i); /* the ingress answered at its own deadline long ago */
		else
			i++;
}

void xtest_peer_gone(struct router *r, int slot)
{
	for (size_t i = 0; i < r->nxtests;)
		if (r->xtests[i].slot == slot)
			xtest_del(r, i);
		else
			i++;
}

/* ---- jobs that can no longer be delivered ---- */

void xhandle_drop(struct router *r, const uint64_t *ids, size_t n)
{
	MDB_txn *txn;
	size_t done = 0;

	if (n == 0 || mdb_txn_begin(r->store.env, NULL, 0, &txn) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct outbox_job j;
		if (outbox_get(txn, &r->store, ids[i], &j, NULL, NULL) == 1 && outbox_finish(txn, &r->store, &j) == 0)
			done++;
	}
	r->outbox_jobs = outbox_count(txn, &r->store);
	if (mdb_txn_commit(txn) != 0) {
		log_error("dropping jobs for dead channels: commit failed");
		r->spilled = 1;
		return;
	}
	counter_add(CTR_WNS_FAILED, done);
	log_info("%zu queued WNS jobs dropped: their channel is dead or their device gone", done);
	for (size_t i = 0; i < n && r->nxtests > 0; i++)
		xtest_answer(r, ids[i], STATUS_FAILED);
}

/* ---- jobs for a channel backing off ---- */

void xhandle_hold(struct router *r, const uint64_t *ids, size_t n)
{
	struct xdevice *d;
	uint64_t now = now_ms(), *tests = NULL;
	size_t ntests = 0;
	MDB_txn *txn = NULL;
	int rc = 0;

	if (n == 0)
		return;
	if ((d = malloc(sizeof *d)) == NULL || (tests = calloc(n, sizeof *tests)) == NULL ||
	    mdb_txn_begin(r->store.env, NULL, 0, &txn) != 0)
		rc = -1;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct outbox_job j;
		uint64_t test_job = 0;

		if ((rc = outbox_get(txn, &r->store, ids[i], &j, NULL, NULL)) == 1 &&
		    (rc = xreg_device_get(txn, &r->store, j.ref, d)) == 1 &&
		    xreg_backing_off(d, j.token, j.token_len, now)) {
			rc = hold(r, txn, &j, d, 0, &test_job);
			if (test_job)
				tests[ntests++] = test_job;
		} else if (rc >= 0) {
			/* Ended, or its back-off is over by now: due already, the next scan sends it. */
			r->spilled = 1;
			rc = 0;
		}
	}
	if (rc == 0)
		r->outbox_jobs = outbox_count(txn, &r->store);
	if (rc < 0 || mdb_txn_commit(txn) != 0) {
		/* Nothing changed: the jobs are still due, the next scan takes them again. */
		if (rc < 0 && txn)
			mdb_txn_abort(txn);
		log_error("holding jobs for throttled WNS channels failed; trying again");
		r->spilled = 1;
		ntests = 0;
	}
	for (size_t i = 0; i < ntests; i++)
		xtest_answer(r, tests[i], STATUS_FAILED);
	free(tests);
	free(d);
}

/* ---- device expiry ---- */

long router_sweep_devices(struct router *r, uint64_t now)
{
	MDB_txn *txn;
	long n;

	if (mdb_txn_begin(r->store.env, NULL, 0, &txn) != 0)
		return -1;
	n = xreg_expire(txn, &r->store, now, (uint64_t)r->cfg->router.device_expiry_s * 1000, SWEEP_BUDGET,
			r->sweep_cursor);
	if (n <= 0) {
		mdb_txn_abort(txn);
		if (n < 0)
			log_error("device expiry sweep failed");
		return n;
	}
	if (mdb_txn_commit(txn) != 0) {
		log_error("device expiry sweep: commit failed");
		return -1;
	}
	counter_add(CTR_UWPX_DEVICES_EXPIRED, (uint64_t)n);
	log_info("%ld UWPX devices expired (not refreshed for %ld s), with their accounts and nodes", n,
		 r->cfg->router.device_expiry_s);
	return n;
}
