/*
 * sender_job: a provider sender's jobs, from the router's PUSH to their one RESULT. Checks a
 * PUSH is for this sender, asks the guard whether it may go to the provider, copies the token,
 * has the provider build the body (ops->prepare; a reduced one is counted) and send it
 * (ops->submit). An answer is
 * settled here the same way for every provider: a transport failure is resent once at once
 * (a GOAWAY'd or reset stream), then reported as retry; a rejected credential is dropped
 * (ops->auth_rejected) and the job resent once; every other answer goes through the
 * provider's classifier and the mass-invalidation guard. Jobs may be parked while the
 * provider has no credential, for at most the request deadline. Trusts frames only after
 * frame_parse(); holds the jobs in flight or parked (list in struct sender).
 */
#include "sender_job.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include "sender_loop.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reports the verdict (v NULL: none, the router re-queues the job when this sender goes),
 * logs it when it is not a delivery, and frees the job. */
static void finish(struct sender_job *j, const struct guard_verdict *v)
{
	struct sender *s = j->s;

	if (v) {
		guard_log_verdict(&s->guard, j->id, j->token, j->token_len, v);
		sender_link_result(s, j->link_gen, j->id, v);
	}
	if (j->waiting)
		s->nwaiting--;
	if (j->prev)
		j->prev->next = j->next;
	else
		s->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	s->njobs--;
	free(j->token);
	free(j->body);
	free(j);
}

/* Sends (or resends) the job, or parks it; -1 when it could not be submitted, with v filled. */
static int submit(struct sender_job *j, struct guard_verdict *v)
{
	memset(v, 0, sizeof *v);
	return j->s->ops->submit(j, v);
}

static void on_answer(void *ctx, const struct h2c_response *r)
{
	struct sender_job *j = ctx;
	struct sender *s = j->s;
	struct guard_verdict v;
	char ra[128];

	if (r->aborted) {
		finish(j, NULL);
		return;
	}
	if (r->status == 0) {
		/* No answer: never a verdict on the token, and not counted by the guard. A stream
		 * refused by a GOAWAY or a dropped connection is resent at once, once. */
		static uint64_t last_log;
		if (mono_ms() - last_log >= 1000) { /* one line a second: a dying connection fails many */
			last_log = mono_ms();
			log_warn("no answer from the provider (%s): resending", r->error_text);
		}
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
	/* Every provider answer, by provider and HTTP status (pushpipe_provider_answers_total). */
	counter_http(s->ops->platform == PLATFORM_IOS ? HTTP_ROUTE_APNS
		     : s->ops->platform == PLATFORM_WNS ? HTTP_ROUTE_WNS
		     : s->ops->platform == PLATFORM_HUAWEI ? HTTP_ROUTE_HMS
							: HTTP_ROUTE_FCM,
		     (unsigned)r->status);
	if (s->ops->classify_answer) {
		memset(&v, 0, sizeof v);
		s->ops->classify_answer(j, r, now_ms(), &v);
	} else {
		s->ops->classify(r->status, r->body, r->body_len, h2c_header(r, "retry-after", ra, sizeof ra), now_ms(),
				 &v);
	}
	if (v.refresh_auth && !j->auth_retried) {
		j->auth_retried = 1;
		s->ops->auth_rejected(s, j->auth_gen);
		if (submit(j, &v) < 0)
			finish(j, &v);
		return;
	}
	guard_settle(&s->guard, &v, mono_ms());
	if (v.outcome == OUTCOME_TOKEN_DEAD && v.timestamp_ms == 0)
		v.timestamp_ms = j->started_ms; /* no provider time: the send's start */
	if (v.outcome == OUTCOME_MESSAGE_FAILED || (v.outcome == OUTCOME_RETRY && r->status != 429))
		log_info("%s: job %llu answered HTTP %ld: %.200s", s->ops->provider, (unsigned long long)j->id,
			 r->status, r->body);
	finish(j, &v);
}

void sender_job_answer(void *ctx, const struct h2c_response *r)
{
	on_answer(ctx, r);
}

int sender_job_send(struct sender_job *j, const char *url, const char *const *hdrs, unsigned auth_gen,
		    struct guard_verdict *v)
{
	j->auth_gen = auth_gen;
	if (sender_http_submit(j->s, url, hdrs, j->body, j->body_len, on_answer, j) < 0) {
		v->outcome = OUTCOME_RETRY;
		snprintf(v->reason, sizeof v->reason, "local: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void sender_job_park(struct sender_job *j)
{
	if (!j->waiting) {
		j->waiting = 1;
		j->wait_since = mono_ms();
		j->s->nwaiting++;
	}
}

void sender_push(struct sender *s, const struct frame *f)
{
	struct frame_field tok, data;
	struct guard_verdict v;
	struct sender_job *j;
	uint32_t kind, kinds;
	int reduced;

	memset(&v, 0, sizeof v);
	frame_get(f, TAG_TOKEN, &tok);
	frame_get(f, TAG_DATA, &data);
	kind = frame_u32(f, TAG_KIND, 0);
	kinds = s->ops->kinds ? s->ops->kinds : SENDER_KIND(KIND_BCHAT);
	if (frame_u32(f, TAG_PLATFORM, 0) != s->ops->platform || kind >= 32 || !(kinds & SENDER_KIND(kind))) {
		v.outcome = OUTCOME_MESSAGE_FAILED;
		snprintf(v.reason, sizeof v.reason, "the %s sender does not take this job (platform or kind)",
			 s->ops->platform_name);
		guard_log_verdict(&s->guard, f->id, (const char *)tok.val, tok.len, &v);
		sender_link_result(s, s->link.gen, f->id, &v);
		return;
	}
	if (!guard_admit(&s->guard, mono_ms())) {
		/* Handed back unsent; the pause itself is logged by the guard. */
		guard_paused_verdict(&s->guard, &v);
		sender_link_result(s, s->link.gen, f->id, &v);
		return;
	}
	if ((j = calloc(1, sizeof *j)) == NULL) {
		v.outcome = OUTCOME_RETRY;
		snprintf(v.reason, sizeof v.reason, "local: out of memory");
		sender_link_result(s, s->link.gen, f->id, &v);
		return;
	}
	j->s = s;
	j->id = f->id;
	j->link_gen = s->link.gen;
	j->kind = kind;
	j->started_ms = now_ms();
	j->next = s->jobs;
	if (s->jobs)
		s->jobs->prev = j;
	s->jobs = j;
	s->njobs++;
	if ((j->token = malloc(tok.len + 1)) == NULL) {
		v.outcome = OUTCOME_RETRY;
		snprintf(v.reason, sizeof v.reason, "local: out of memory");
		finish(j, &v);
		return;
	}
	memcpy(j->token, tok.val, tok.len);
	j->token[tok.len] = '\0';
	j->token_len = tok.len;
	if ((reduced = s->ops->prepare(j, (const char *)data.val, data.len, &v)) < 0) {
		finish(j, &v);
		return;
	}
	if (reduced) {
		char tb[40];
		counter_add(CTR_REDUCED_PAYLOADS, 1);
		log_info("%s: job %llu token %s: %u bytes of data do not fit %s", s->ops->provider,
			 (unsigned long long)j->id, log_redact(j->token, j->token_len, tb, sizeof tb), data.len,
			 s->ops->reduced_note);
	}
	if (submit(j, &v) < 0)
		finish(j, &v);
}

void sender_release_waiting(struct sender *s)
{
	struct sender_job *j = s->jobs, *next;
	struct guard_verdict v;

	for (; j && s->nwaiting > 0; j = next) {
		next = j->next;
		if (!j->waiting)
			continue;
		j->waiting = 0;
		s->nwaiting--;
		if (submit(j, &v) < 0)
			finish(j, &v);
	}
}

void sender_fail_waiting(struct sender *s, const struct guard_verdict *v)
{
	struct sender_job *j = s->jobs, *next;
	uint64_t now = mono_ms();
	struct guard_verdict late;

	memset(&late, 0, sizeof late);
	late.outcome = OUTCOME_RETRY;
	snprintf(late.reason, sizeof late.reason, "no access token within the deadline");
	for (; j && s->nwaiting > 0; j = next) {
		next = j->next;
		if (!j->waiting)
			continue;
		if (v)
			finish(j, v);
		else if (now - j->wait_since >= (uint64_t)s->deadline_ms)
			finish(j, &late);
	}
}

void sender_jobs_drop(struct sender *s)
{
	while (s->jobs)
		finish(s->jobs, NULL);
}
