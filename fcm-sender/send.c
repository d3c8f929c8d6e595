/*
 * send: the FCM part of a job's life (docs/protocol.md §6.6, docs/senders.md "fcm-sender"), as the
 * callbacks of the shared sender (common/sender/sender_job.c does the rest: admission, the transport
 * resend, the guard, the result). Builds the message (Bchat, or XMPP ad-hoc of docs/senders.md
 * "Job kinds"), sends it to the project's send URL with
 * the OAuth access token, or parks the job while there is none (auth.c releases it, or fails
 * it when the token endpoint refuses us; the loop fails it past the request deadline); a 401
 * drops the access token so the one resend waits for a new one. Trusts nothing in the token
 * beyond what fcm_message() escapes; holds nothing beyond what struct fcm holds.
 */
#include "fcm.h"
#include "daemon.h"
#include <stdio.h>

static int fcm_prepare(struct sender_job *j, const char *data, size_t data_len, struct guard_verdict *v)
{
	int reduced = 0;

	if (j->kind == KIND_XMPP) {
		struct sender_xmpp x;
		if (sender_xmpp_parse(data, data_len, &x) < 0) {
			v->outcome = OUTCOME_MESSAGE_FAILED;
			snprintf(v->reason, sizeof v->reason, "unreadable XMPP job data");
			return -1;
		}
		j->body = fcm_xmpp_message(j->token, j->token_len, &x, &j->body_len);
	} else {
		j->body = fcm_message(j->token, j->token_len, data, data_len, &j->body_len, &reduced);
	}
	if (j->body == NULL) {
		/* Not UTF-8: this token cannot be written into a message, whoever's fault it is. */
		v->outcome = OUTCOME_MESSAGE_FAILED;
		snprintf(v->reason, sizeof v->reason, "token is not UTF-8");
		return -1;
	}
	return reduced != 0;
}

static int fcm_submit(struct sender_job *j, struct guard_verdict *v)
{
	struct fcm *f = j->s->ctx;
	const char *hdrs[3];

	if ((hdrs[0] = fcm_auth_header(&f->auth, mono_ms())) == NULL) {
		sender_job_park(j);
		return 0;
	}
	hdrs[1] = "content-type: application/json";
	hdrs[2] = NULL;
	return sender_job_send(j, f->send_url, hdrs, f->auth.tok.gen, v);
}

/* A 401 to a send that used access token generation gen. */
static void fcm_on_rejected(struct sender *s, unsigned gen)
{
	fcm_auth_rejected(s->ctx, gen);
}

static void fcm_tick(struct sender *s)
{
	fcm_auth_tick(s->ctx);
}

static int fcm_timeout_ms(const struct sender *s)
{
	return fcm_auth_timeout_ms(s->ctx);
}

const struct sender_ops fcm_ops = {
	.provider = "FCM",
	.platform = PLATFORM_ANDROID,
	.platform_name = "Android",
	.reduced_note = "the message; reduced data sent",
	.kinds = SENDER_KIND(KIND_BCHAT) | SENDER_KIND(KIND_XMPP),
	.prepare = fcm_prepare,
	.submit = fcm_submit,
	.classify = fcm_classify,
	.auth_rejected = fcm_on_rejected,
	.tick = fcm_tick,
	.timeout_ms = fcm_timeout_ms,
};
