/*
 * send: the WNS part of a job's life (docs/senders.md, "wns-sender"), as the callbacks of the
 * shared sender (common/sender/sender_job.c does the rest: admission, the transport resend, the resend
 * after a 401, the guard, the result). The router's data is the raw notification itself and goes
 * out byte for byte, POSTed to the job's channel URI with the access token; a job waits while a
 * token is being fetched and is answered credentials while none can be had. Each answer's X-WNS-*
 * diagnostic headers are logged (the channel URI only redacted) and 406s and dropped notifications
 * counted. Trusts no channel URI: each is checked against the allowlist again (common/uwpx_uri.c)
 * before the access token is sent; holds nothing beyond what struct wns holds.
 */
#include "wns.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int wns_prepare(struct sender_job *j, const char *data, size_t data_len, struct guard_verdict *v)
{
	if (data_len == 0 || data_len > WNS_BODY_MAX) {
		v->outcome = OUTCOME_MESSAGE_FAILED;
		snprintf(v->reason, sizeof v->reason, "raw notification of %zu bytes (1 to %d allowed)", data_len,
			 WNS_BODY_MAX);
		return -1;
	}
	if ((j->body = malloc(data_len)) == NULL) {
		v->outcome = OUTCOME_RETRY;
		snprintf(v->reason, sizeof v->reason, "local: out of memory");
		return -1;
	}
	memcpy(j->body, data, data_len);
	j->body_len = data_len;
	return 0;
}

static int wns_submit(struct sender_job *j, struct guard_verdict *v)
{
	struct wns *w = j->s->ctx;
	const char *hdrs[8];
	char ttl[48];
	size_t n = 0;
	uint64_t now = mono_ms();

	if (!uwpx_uri_valid(&w->uri, j->token, strlen(j->token))) {
		/* Before the access token goes anywhere: only hosts of the allowlist get it. */
		v->outcome = OUTCOME_MESSAGE_FAILED;
		snprintf(v->reason, sizeof v->reason, "channel URI outside the allowlist (ingress_uwpx.channel_suffixes)");
		return -1;
	}
	if ((hdrs[n++] = wns_auth_header(&w->auth, now)) == NULL) {
		if (wns_auth_coming(&w->auth, now)) {
			sender_job_park(j);
			return 0;
		}
		v->outcome = OUTCOME_CREDENTIALS;
		v->retry_after_ms = w->auth.tok.next_try_mono > now ? w->auth.tok.next_try_mono - now : 0;
		snprintf(v->reason, sizeof v->reason, "no WNS access token");
		return -1;
	}
	hdrs[n++] = "Content-Type: application/octet-stream";
	hdrs[n++] = "X-WNS-Type: wns/raw";
	hdrs[n++] = "X-WNS-RequestForStatus: true";
	if (w->c->cache_policy)
		hdrs[n++] = "X-WNS-Cache-Policy: cache";
	if (w->c->ttl_s > 0) {
		snprintf(ttl, sizeof ttl, "X-WNS-TTL: %ld", w->c->ttl_s);
		hdrs[n++] = ttl;
	}
	hdrs[n] = NULL;
	/* curl_http.c sends Content-Length (never chunked) and no Expect. */
	return sender_job_send(j, j->token, hdrs, w->auth.tok.gen, v);
}

static void wns_classify_answer(struct sender_job *j, const struct h2c_response *r, uint64_t now_wall_ms,
				struct guard_verdict *v)
{
	char st[64], ca[64], ra[128], desc[256], dev[64], id[64], trace[256], cv[128], tb[40];
	struct wns_answer a;

	memset(&a, 0, sizeof a);
	a.status = r->status;
	a.wns_status = h2c_header(r, "x-wns-status", st, sizeof st);
	if (a.wns_status == NULL)
		a.wns_status = h2c_header(r, "x-wns-notificationstatus", st, sizeof st);
	a.continue_after = h2c_header(r, "x-wns-continue-after", ca, sizeof ca);
	a.retry_after = h2c_header(r, "retry-after", ra, sizeof ra);
	a.error_description = h2c_header(r, "x-wns-error-description", desc, sizeof desc);
	wns_classify(&a, now_wall_ms, v);
	if (r->status == 406)
		counter_add(CTR_WNS_THROTTLED, 1);
	if (v->outcome == OUTCOME_DELIVERED && strcmp(v->reason, "dropped") == 0)
		counter_add(CTR_WNS_DROPPED, 1);
	log_msg(r->status == 200 && v->reason[0] == '\0' ? LOG_DEBUG : LOG_INFO,
		"WNS: job %llu channel %s: HTTP %ld, X-WNS-Status %s, X-WNS-DeviceConnectionStatus %s, X-WNS-Msg-ID %s, "
		"X-WNS-Debug-Trace %s, X-WNS-Error-Description %s, MS-CV %s",
		(unsigned long long)j->id, log_redact(j->token, j->token_len, tb, sizeof tb), r->status,
		a.wns_status ? a.wns_status : "-",
		h2c_header(r, "x-wns-deviceconnectionstatus", dev, sizeof dev) ? dev : "-",
		h2c_header(r, "x-wns-msg-id", id, sizeof id) ? id : "-",
		h2c_header(r, "x-wns-debug-trace", trace, sizeof trace) ? trace : "-",
		a.error_description ? a.error_description : "-", h2c_header(r, "ms-cv", cv, sizeof cv) ? cv : "-");
}

/* A 401 to a send that used access token generation gen. */
static void wns_on_rejected(struct sender *s, unsigned gen)
{
	wns_auth_rejected(s->ctx, gen);
}

static void wns_tick(struct sender *s)
{
	wns_auth_tick(s->ctx);
}

static int wns_timeout_ms(const struct sender *s)
{
	return wns_auth_timeout_ms(s->ctx);
}

const struct sender_ops wns_ops = {
	.provider = "WNS",
	.platform = PLATFORM_WNS,
	.platform_name = "WNS",
	.reduced_note = "",
	.kinds = SENDER_KIND(KIND_WNS),
	.prepare = wns_prepare,
	.submit = wns_submit,
	.classify_answer = wns_classify_answer,
	.auth_rejected = wns_on_rejected,
	.tick = wns_tick,
	.timeout_ms = wns_timeout_ms,
	.http = &wns_curl_http,
};
