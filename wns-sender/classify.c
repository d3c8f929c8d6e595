/*
 * classify: one WNS answer (status and the X-WNS-* headers; WNS answers carry no body worth
 * reading) to one outcome, exactly as docs/senders.md ("wns-sender") says. Pure: no state, no I/O,
 * so the table is unit-tested row by row. Trusts nothing in the headers: they only choose among the
 * outcomes the status allows, and their text reaches the reason filtered to printable ASCII.
 */
#include "wns.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>

static void reason(struct guard_verdict *v, const char *what, const struct wns_answer *a)
{
	char buf[GUARD_REASON_MAX + 1];

	if (a->error_description && a->error_description[0])
		snprintf(buf, sizeof buf, "%s: %.100s", what, a->error_description);
	else
		snprintf(buf, sizeof buf, "%s", what);
	guard_set_reason(v, buf, strlen(buf));
}

void wns_classify(const struct wns_answer *a, uint64_t now_wall_ms, struct guard_verdict *v)
{
	memset(v, 0, sizeof *v);
	v->status = a->status;
	switch (a->status) {
	case 200:
		v->outcome = OUTCOME_DELIVERED;
		/* Accepted, not delivered: counted separately, never retried. */
		if (a->wns_status && strcasecmp(a->wns_status, "dropped") == 0)
			snprintf(v->reason, sizeof v->reason, "dropped");
		else if (a->wns_status && strcasecmp(a->wns_status, "channelthrottled") == 0)
			snprintf(v->reason, sizeof v->reason, "channelthrottled");
		return;
	case 401:
		/* The access token: a new one and one resend, then credentials. */
		v->outcome = OUTCOME_CREDENTIALS;
		v->refresh_auth = 1;
		reason(v, "access token refused (401)", a);
		return;
	case 404:
		v->outcome = OUTCOME_TOKEN_DEAD;
		reason(v, "channel invalid (404)", a);
		return;
	case 410:
		v->outcome = OUTCOME_TOKEN_DEAD;
		reason(v, "channel expired (410)", a);
		return;
	case 406:
		/* The channel's back-off is the router's (it holds the channel's jobs and counts the
		 * 406s in a row to double it): only X-WNS-CONTINUE-AFTER goes back, absent as 0. */
		v->outcome = OUTCOME_RETRY;
		v->retry_after_ms = h2c_retry_after_ms(a->continue_after, now_wall_ms);
		reason(v, "channel throttled (406)", a);
		return;
	case 500:
	case 503:
		v->outcome = OUTCOME_RETRY;
		v->retry_after_ms = h2c_retry_after_ms(a->retry_after, now_wall_ms);
		reason(v, a->status == 500 ? "WNS internal error (500)" : "WNS unavailable (503)", a);
		return;
	default: {
		/* 400 bad headers, 403 token not for this app, 405, 413, and anything else: this
		 * message fails; the channel is never blamed. */
		char what[48];
		snprintf(what, sizeof what, "HTTP %ld", a->status);
		v->outcome = OUTCOME_MESSAGE_FAILED;
		reason(v, what, a);
		return;
	}
	}
}
