/*
 * send: the APNs part of a job's life (docs/protocol.md §6.6, docs/senders.md "apns-sender"), as
 * the callbacks of the shared sender (common/sender/sender_job.c does the rest: admission, the transport
 * resend, the guard, the result). Builds the body (Bchat, or XMPP ad-hoc of docs/senders.md "Job
 * kinds", with its own topic, push type and priority), the request URL and headers with the current
 * provider token, and drops that token after ExpiredProviderToken so the one resend gets a new JWT.
 * Trusts the job's token only through apns_url()'s percent-encoding; holds nothing beyond what
 * struct apns holds.
 */
#include "apns.h"
#include "daemon.h"
#include <stdio.h>

static int apns_prepare(struct sender_job *j, const char *data, size_t data_len, struct guard_verdict *v)
{
	const struct apns *a = j->s->ctx;
	int reduced = 0;

	if (j->kind == KIND_XMPP) {
		struct sender_xmpp x;
		if (sender_xmpp_parse(data, data_len, &x) < 0) {
			v->outcome = OUTCOME_MESSAGE_FAILED;
			snprintf(v->reason, sizeof v->reason, "unreadable XMPP job data");
			return -1;
		}
		j->pflags = x.high ? 0 : APNS_JOB_BACKGROUND;
		j->body = apns_xmpp_payload(x.high, &j->body_len);
	} else {
		j->body = apns_payload(a->c->alert_title, a->c->alert_body, data, data_len, &j->body_len, &reduced);
	}
	if (j->body == NULL) {
		v->outcome = OUTCOME_RETRY;
		snprintf(v->reason, sizeof v->reason, "local: out of memory");
		return -1;
	}
	return reduced != 0;
}

static int apns_submit(struct sender_job *j, struct guard_verdict *v)
{
	struct apns *a = j->s->ctx;
	const struct conf_apns *c = a->c;
	char url[4096 + 3 * 1024], expiration[64], topic[512];
	const char *hdrs[8], *auth;
	size_t n = 0;
	int failed;

	if (apns_url(url, sizeof url, c->url, j->token, j->token_len) < 0) {
		v->outcome = OUTCOME_MESSAGE_FAILED;
		snprintf(v->reason, sizeof v->reason, "URL too long");
		return -1;
	}
	/* XMPP ad-hoc registrations belong to their own app (xmpp_topic, else topic). */
	snprintf(topic, sizeof topic, "apns-topic: %s",
		 j->kind == KIND_XMPP && c->xmpp_topic[0] ? c->xmpp_topic : c->topic);
	hdrs[n++] = topic;
	if (j->pflags & APNS_JOB_BACKGROUND) {
		hdrs[n++] = "apns-push-type: background";
		hdrs[n++] = "apns-priority: 5";
	} else {
		hdrs[n++] = "apns-push-type: alert";
		hdrs[n++] = "apns-priority: 10";
	}
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
	return sender_job_send(j, url, hdrs, a->auth.gen, v);
}

/* ExpiredProviderToken to a send that used JWT generation gen. */
static void apns_auth_rejected(struct sender *s, unsigned gen)
{
	struct apns *a = s->ctx;

	apns_auth_expired(&a->auth, gen, mono_ms());
}

const struct sender_ops apns_ops = {
	.provider = "APNs",
	.platform = PLATFORM_IOS,
	.platform_name = "iOS",
	.reduced_note = "the payload; reduced payload sent",
	.kinds = SENDER_KIND(KIND_BCHAT) | SENDER_KIND(KIND_XMPP),
	.prepare = apns_prepare,
	.submit = apns_submit,
	.classify = apns_classify,
	.auth_rejected = apns_auth_rejected,
};
