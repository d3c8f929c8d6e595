/*
 * send: one router job to one FCM HTTP v1 request (bchat-onion.md §9.3, providers.md §2.1),
 * and its answer to one result. Jobs wait (bounded by the job limit and the request deadline)
 * while there is no access token; a transport failure is resent once at once, then reported
 * as retry; a 401 drops the access token and resends once with a new one; every other answer
 * goes through classify.c and the mass-invalidation guard. Trusts frames only after
 * frame_parse(); holds the jobs in flight (list in struct fcm).
 */
#include "fcm.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reports the verdict (v NULL: none, the router re-queues the job when this sender goes),
 * logs it when it is not a delivery, and frees the job. */
static void finish(struct fcm_job *j, const struct guard_verdict *v)
{
	struct fcm *f = j->f;

	if (v) {
		guard_log_verdict(&f->guard, j->id, j->token, j->token_len, v);
		fcm_result(f, j->link_gen, j->id, v);
	}
	if (j->waiting)
		f->nwaiting--;
	if (j->prev)
		j->prev->next = j->next;
	else
		f->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	f->njobs--;
	free(j->token);
	free(j->body);
	free(j);
}

static void on_answer(void *ctx, const struct h2c_response *r);

static void wait_for_token(struct fcm_job *j)
{
	if (!j->waiting) {
		j->waiting = 1;
		j->wait_since = mono_ms();
		j->f->nwaiting++;
	}
}

/* Sends (or resends) the job, or parks it until there is an access token; -1 when it could
 * not be submitted, with v filled. */
static int submit(struct fcm_job *j, struct guard_verdict *v)
{
	struct fcm *f = j->f;
	const char *hdrs[3];

	memset(v, 0, sizeof *v);
	if ((hdrs[0] = fcm_auth_header(&f->auth, mono_ms())) == NULL) {
		wait_for_token(j);
		return 0;
	}
	hdrs[1] = "content-type: application/json";
	hdrs[2] = NULL;
	j->auth_gen = f->auth.gen;
	if (h2c_submit(f->h2, f->send_url, hdrs, j->body, j->body_len, on_answer, j) < 0) {
		v->outcome = OUTCOME_RETRY;
		snprintf(v->reason, sizeof v->reason, "local: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void on_answer(void *ctx, const struct h2c_response *r)
{
	struct fcm_job *j = ctx;
	struct fcm *f = j->f;
	struct guard_verdict v;
	char ra[128];

	if (r->aborted) {
		finish(j, NULL);
		return;
	}
	if (r->status == 0) {
		/* No answer: never a verdict on the token, and not counted by the guard. */
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
	fcm_classify(r->status, r->body, r->body_len, h2c_header(r, "retry-after", ra, sizeof ra), now_ms(), &v);
	if (v.refresh_auth && !j->auth_retried) {
		j->auth_retried = 1;
		fcm_auth_rejected(f, j->auth_gen);
		if (submit(j, &v) < 0)
			finish(j, &v);
		return;
	}
	guard_settle(&f->guard, &v, mono_ms());
	if (v.outcome == OUTCOME_TOKEN_DEAD)
		v.timestamp_ms = j->started_ms; /* FCM gives no time: the send's start (§0.1) */
	if (v.outcome == OUTCOME_MESSAGE_FAILED || (v.outcome == OUTCOME_RETRY && r->status != 429))
		log_info("FCM: job %llu answered HTTP %ld: %.200s", (unsigned long long)j->id, r->status, r->body);
	finish(j, &v);
}

void fcm_push(struct fcm *f, const struct frame *fr)
{
	struct frame_field tok, data;
	struct guard_verdict v;
	struct fcm_job *j;
	int reduced;

	memset(&v, 0, sizeof v);
	frame_get(fr, TAG_TOKEN, &tok);
	frame_get(fr, TAG_DATA, &data);
	if (frame_u32(fr, TAG_PLATFORM, 0) != PLATFORM_ANDROID || frame_u32(fr, TAG_KIND, 0) != KIND_BCHAT) {
		v.outcome = OUTCOME_MESSAGE_FAILED;
		snprintf(v.reason, sizeof v.reason, "not an Android Bchat job");
		guard_log_verdict(&f->guard, fr->id, (const char *)tok.val, tok.len, &v);
		fcm_result(f, f->link_gen, fr->id, &v);
		return;
	}
	if (!guard_admit(&f->guard, mono_ms())) {
		/* Handed back unsent; the pause itself is logged by the guard. */
		guard_paused_verdict(&f->guard, &v);
		fcm_result(f, f->link_gen, fr->id, &v);
		return;
	}
	if ((j = calloc(1, sizeof *j)) == NULL) {
		v.outcome = OUTCOME_RETRY;
		snprintf(v.reason, sizeof v.reason, "local: out of memory");
		fcm_result(f, f->link_gen, fr->id, &v);
		return;
	}
	j->f = f;
	j->id = fr->id;
	j->link_gen = f->link_gen;
	j->started_ms = now_ms();
	j->next = f->jobs;
	if (f->jobs)
		f->jobs->prev = j;
	f->jobs = j;
	f->njobs++;
	if ((j->token = malloc(tok.len + 1)) == NULL)
		goto nomem;
	memcpy(j->token, tok.val, tok.len);
	j->token[tok.len] = '\0';
	j->token_len = tok.len;
	j->body = fcm_message(j->token, j->token_len, (const char *)data.val, data.len, &j->body_len, &reduced);
	if (j->body == NULL) {
		/* Not UTF-8: this token cannot be written into a message, whoever's fault it is. */
		v.outcome = OUTCOME_MESSAGE_FAILED;
		snprintf(v.reason, sizeof v.reason, "token is not UTF-8");
		finish(j, &v);
		return;
	}
	if (reduced) {
		char tb[40];
		counter_add(CTR_REDUCED_PAYLOADS, 1);
		log_info("FCM: job %llu token %s: %u bytes of data do not fit the message; reduced data sent",
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

void fcm_release_waiting(struct fcm *f)
{
	struct fcm_job *j = f->jobs, *next;
	struct guard_verdict v;

	for (; j && f->nwaiting > 0; j = next) {
		next = j->next;
		if (!j->waiting)
			continue;
		j->waiting = 0;
		f->nwaiting--;
		if (submit(j, &v) < 0)
			finish(j, &v);
	}
}

void fcm_fail_waiting(struct fcm *f, const struct guard_verdict *v)
{
	struct fcm_job *j = f->jobs, *next;
	uint64_t now = mono_ms();
	struct guard_verdict late;

	memset(&late, 0, sizeof late);
	late.outcome = OUTCOME_RETRY;
	snprintf(late.reason, sizeof late.reason, "no access token within the deadline");
	for (; j && f->nwaiting > 0; j = next) {
		next = j->next;
		if (!j->waiting)
			continue;
		if (v)
			finish(j, v);
		else if (now - j->wait_since >= (uint64_t)f->c->deadline_ms)
			finish(j, &late);
	}
}

void fcm_jobs_drop(struct fcm *f)
{
	while (f->jobs)
		finish(f->jobs, NULL);
}
