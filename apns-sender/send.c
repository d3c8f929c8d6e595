/*
 * send: one router job to one APNs request (bchat-onion.md §9.2, providers.md §1.2), and its
 * answer to one result. A transport failure is resent once at once (a GOAWAY'd or reset
 * stream), then reported as retry; ExpiredProviderToken gets a new JWT and one resend; every
 * other answer goes through classify.c and the mass-invalidation guard. Trusts frames only
 * after frame_parse(); holds the jobs in flight (list in struct apns).
 */
#include "apns.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reports the verdict (v NULL: none, the router re-queues the job when this sender goes),
 * logs it when it is not a delivery, and frees the job. */
static void finish(struct apns_job *j, const struct guard_verdict *v)
{
	struct apns *a = j->a;

	if (v) {
		guard_log_verdict(&a->guard, j->id, j->token, j->token_len, v);
		apns_result(a, j->link_gen, j->id, v);
	}
	if (j->prev)
		j->prev->next = j->next;
	else
		a->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	a->njobs--;
	free(j->token);
	free(j->body);
	free(j);
}

static void on_answer(void *ctx, const struct h2c_response *r);

/* Sends (or resends) the job; -1 when it could not be submitted, with v filled. */
static int submit(struct apns_job *j, struct guard_verdict *v)
{
	struct apns *a = j->a;
	const struct conf_apns *c = a->c;
	char url[4096 + 3 * 1024], expiration[64], topic[512];
	const char *hdrs[8], *auth;
	size_t n = 0;
	int failed;

	memset(v, 0, sizeof *v);
	if (apns_url(url, sizeof url, c->url, j->token, j->token_len) < 0) {
		v->outcome = OUTCOME_MESSAGE_FAILED;
		snprintf(v->reason, sizeof v->reason, "URL too long");
		return -1;
	}
	snprintf(topic, sizeof topic, "apns-topic: %s", c->topic);
	hdrs[n++] = topic;
	hdrs[n++] = "apns-push-type: alert";
	hdrs[n++] = "apns-priority: 10";
	if (c->expiration_s >= 0) {
		long long when = c->expiration_s == 0 ? 0 : (long long)(now_ms() / 1000) + c->expiration_s;
		snprintf(expiration, sizeof expiration, "apns-expiration: %lld", when);
		hdrs[n++] = expiration;
	}
	hdrs[n++] = "content-type: application/json";
	auth = apns_auth_header(&a->auth, now_ms(), mono_ms(), &failed);
	if (failed) {
		v->outcome = OUTCOME_CREDENTIALS;
		v->retry_after_ms = GUARD_PROBE_MS;
		snprintf(v->reason, sizeof v->reason, "cannot sign a provider token");
		return -1;
	}
	if (auth)
		hdrs[n++] = auth;
	hdrs[n] = NULL;
	j->jwt_gen = a->auth.gen;
	if (h2c_submit(a->h2, url, hdrs, j->body, j->body_len, on_answer, j) < 0) {
		v->outcome = OUTCOME_RETRY;
		snprintf(v->reason, sizeof v->reason, "local: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void on_answer(void *ctx, const struct h2c_response *r)
{
	struct apns_job *j = ctx;
	struct apns *a = j->a;
	struct guard_verdict v;
	char ra[128];

	if (r->aborted) {
		finish(j, NULL);
		return;
	}
	if (r->status == 0) {
		/* No answer: never a verdict on the token, and not counted by the guard. A stream
		 * refused by a GOAWAY or a dropped connection is resent at once, once. */
		if (!r->timed_out && !j->transport_retried) {
			j->transport_retried = 1;
			if (submit(j, &v) == 0)
				return;
		} else {
			memset(&v, 0, sizeof v);
			v.outcome = OUTCOME_RETRY;
			snprintf(v.reason, sizeof v.reason, "%s: %.100s", r->timed_out ? "deadline" : "transport",
				 r->error_text);
		}
		finish(j, &v);
		return;
	}
	apns_classify(r->status, r->body, r->body_len, h2c_header(r, "retry-after", ra, sizeof ra), now_ms(), &v);
	if (v.refresh_auth && !j->auth_retried) {
		j->auth_retried = 1;
		apns_auth_expired(&a->auth, j->jwt_gen, mono_ms());
		if (submit(j, &v) < 0)
			finish(j, &v);
		return;
	}
	guard_settle(&a->guard, &v, mono_ms());
	if (v.outcome == OUTCOME_TOKEN_DEAD && v.timestamp_ms == 0)
		v.timestamp_ms = j->started_ms;
	if (v.outcome == OUTCOME_MESSAGE_FAILED || (v.outcome == OUTCOME_RETRY && r->status != 429))
		log_info("APNs: job %llu answered HTTP %ld: %.200s", (unsigned long long)j->id, r->status, r->body);
	finish(j, &v);
}

void apns_push(struct apns *a, const struct frame *f)
{
	struct frame_field tok, data;
	struct guard_verdict v;
	struct apns_job *j;
	int reduced;

	memset(&v, 0, sizeof v);
	frame_get(f, TAG_TOKEN, &tok);
	frame_get(f, TAG_DATA, &data);
	if (frame_u32(f, TAG_PLATFORM, 0) != PLATFORM_IOS || frame_u32(f, TAG_KIND, 0) != KIND_BCHAT) {
		v.outcome = OUTCOME_MESSAGE_FAILED;
		snprintf(v.reason, sizeof v.reason, "not an iOS Bchat job");
		guard_log_verdict(&a->guard, f->id, (const char *)tok.val, tok.len, &v);
		apns_result(a, a->link_gen, f->id, &v);
		return;
	}
	if (!guard_admit(&a->guard, mono_ms())) {
		/* Handed back unsent; the pause itself is logged by the guard. */
		guard_paused_verdict(&a->guard, &v);
		apns_result(a, a->link_gen, f->id, &v);
		return;
	}
	if ((j = calloc(1, sizeof *j)) == NULL) {
		v.outcome = OUTCOME_RETRY;
		snprintf(v.reason, sizeof v.reason, "local: out of memory");
		apns_result(a, a->link_gen, f->id, &v);
		return;
	}
	j->a = a;
	j->id = f->id;
	j->link_gen = a->link_gen;
	j->started_ms = now_ms();
	j->next = a->jobs;
	if (a->jobs)
		a->jobs->prev = j;
	a->jobs = j;
	a->njobs++;
	if ((j->token = malloc(tok.len + 1)) == NULL)
		goto nomem;
	memcpy(j->token, tok.val, tok.len);
	j->token[tok.len] = '\0';
	j->token_len = tok.len;
	j->body = apns_payload(a->c->alert_title, a->c->alert_body, (const char *)data.val, data.len, &j->body_len,
			       &reduced);
	if (j->body == NULL)
		goto nomem;
	if (reduced) {
		char tb[40];
		counter_add(CTR_REDUCED_PAYLOADS, 1);
		log_info("APNs: job %llu token %s: %u bytes of data do not fit the payload; reduced payload sent",
			 (unsigned long long)j->id, log_redact(j->token, j->token_len, tb, sizeof tb), data.len);
	}
	if (submit(j, &v) < 0)
		finish(j, &v);
	return;
nomem:
	v.outcome = OUTCOME_RETRY;
	snprintf(v.reason, sizeof v.reason, "local: out of memory");
	finish(j, &v);
}
