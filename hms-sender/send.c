/*
 * send: the HMS part of a job's life (docs/senders.md, "HMS"), as the callbacks of the shared
 * sender (common/sender/sender_job.c does the rest: admission, the transport resend, the resend
 * after a refused access token, the guard, the result). Builds the message (payload.c), POSTs
 * it to the app's messages:send URL with the access token, or parks the job while there is
 * none (auth.c releases it, or fails it when the token endpoint refuses us; the loop fails it
 * past the request deadline). Takes Bchat jobs of Huawei registrations only. Trusts nothing in
 * the token beyond what hms_message() escapes; holds nothing beyond what struct hms holds.
 */
#include "hms.h"
#include "daemon.h"
#include <stdio.h>

static int hms_prepare(struct sender_job *j, const char *data, size_t data_len, struct guard_verdict *v)
{
	int reduced = 0;

	j->body = hms_message(j->token, j->token_len, data, data_len, &j->body_len, &reduced);
	if (j->body == NULL) {
		/* Not UTF-8: this token cannot be written into a message, whoever's fault it is. */
		v->outcome = OUTCOME_MESSAGE_FAILED;
		snprintf(v->reason, sizeof v->reason, "token is not UTF-8");
		return -1;
	}
	return reduced != 0;
}

static int hms_submit(struct sender_job *j, struct guard_verdict *v)
{
	struct hms *h = j->s->ctx;
	const char *hdrs[3];

	if ((hdrs[0] = hms_auth_header(&h->auth, mono_ms())) == NULL) {
		sender_job_park(j);
		return 0;
	}
	hdrs[1] = "Content-Type: application/json";
	hdrs[2] = NULL;
	return sender_job_send(j, h->send_url, hdrs, h->auth.tok.gen, v);
}

static void hms_classify_answer(struct sender_job *j, const struct h2c_response *r, uint64_t now_wall_ms,
				struct guard_verdict *v)
{
	char ra[128];

	hms_classify(r->status, r->body, r->body_len, j->token, j->token_len,
		     h2c_header(r, "retry-after", ra, sizeof ra), now_wall_ms, v);
}

/* A send with access token generation gen was refused as unauthenticated. */
static void hms_on_rejected(struct sender *s, unsigned gen)
{
	hms_auth_rejected(s->ctx, gen);
}

static void hms_tick(struct sender *s)
{
	hms_auth_tick(s->ctx);
}

static int hms_timeout_ms(const struct sender *s)
{
	return hms_auth_timeout_ms(s->ctx);
}

const struct sender_ops hms_ops = {
	.provider = "HMS",
	.platform = PLATFORM_HUAWEI,
	.platform_name = "Huawei",
	.reduced_note = "the message; reduced data sent",
	.kinds = SENDER_KIND(KIND_BCHAT),
	.prepare = hms_prepare,
	.submit = hms_submit,
	.classify_answer = hms_classify_answer,
	.auth_rejected = hms_on_rejected,
	.tick = hms_tick,
	.timeout_ms = hms_timeout_ms,
};
