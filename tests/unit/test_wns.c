/*
 * test_wns: the WNS sender's pure parts — every row of the answer table (docs/senders.md,
 * "wns-sender", and the router contract), the token endpoint's answer (expires_in as a number, a
 * decimal string, missing or unreadable), the refresh margin of docs/senders.md ("Access token"),
 * and the percent-encoded token form.
 */
#include "../../wns-sender/wns.h"
#include "log.h"
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint64_t NOW = 1445412450000ull; /* Wed, 21 Oct 2015 07:27:30 GMT */

static const char *oname(uint32_t o)
{
	static const char *const n[] = {"?", "delivered", "token_dead", "retry", "message_failed", "credentials",
					"token_suspect"};
	return o < 7 ? n[o] : "?";
}

static struct guard_verdict row(long status, const char *wns_status, const char *continue_after, const char *retry_after)
{
	struct wns_answer a = {status, wns_status, continue_after, retry_after, NULL};
	struct guard_verdict v;

	wns_classify(&a, NOW, &v);
	return v;
}

static void expect(long status, uint32_t want, uint64_t retry_ms, const char *what)
{
	struct guard_verdict v = row(status, NULL, NULL, NULL);

	CHECK(v.outcome == want && v.retry_after_ms == retry_ms && v.status == status && !v.guarded,
	      "%s: HTTP %ld -> %s after %llu, want %s after %llu", what, status, oname(v.outcome),
	      (unsigned long long)v.retry_after_ms, oname(want), (unsigned long long)retry_ms);
}

static void test_table(void)
{
	struct guard_verdict v;
	struct wns_answer a = {400, NULL, NULL, NULL, "bad\nheader"};

	v = row(200, "received", NULL, NULL);
	CHECK(v.outcome == OUTCOME_DELIVERED && v.reason[0] == '\0', "200 received: delivered, no reason");
	v = row(200, NULL, NULL, NULL);
	CHECK(v.outcome == OUTCOME_DELIVERED && v.reason[0] == '\0', "200 without status: delivered");
	v = row(200, "dropped", NULL, NULL);
	CHECK(v.outcome == OUTCOME_DELIVERED && strcmp(v.reason, "dropped") == 0, "200 dropped: delivered, reason dropped");
	v = row(200, "Dropped", NULL, "30");
	CHECK(v.outcome == OUTCOME_DELIVERED && strcmp(v.reason, "dropped") == 0 && v.retry_after_ms == 0,
	      "dropped in any case, never retried");
	v = row(200, "channelthrottled", NULL, NULL);
	CHECK(v.outcome == OUTCOME_DELIVERED && strcmp(v.reason, "channelthrottled") == 0, "200 channelthrottled");

	v = row(401, NULL, NULL, NULL);
	CHECK(v.outcome == OUTCOME_CREDENTIALS && v.refresh_auth, "401: credentials after one refresh and resend");
	v = row(404, NULL, NULL, NULL);
	CHECK(v.outcome == OUTCOME_TOKEN_DEAD && !v.guarded && v.timestamp_ms == 0, "404: channel dead, not guarded");
	v = row(410, NULL, NULL, NULL);
	CHECK(v.outcome == OUTCOME_TOKEN_DEAD && !v.guarded, "410: channel dead");

	v = row(406, "channelthrottled", "120", NULL);
	CHECK(v.outcome == OUTCOME_RETRY && v.retry_after_ms == 120000, "406: retry after X-WNS-CONTINUE-AFTER (%llu)",
	      (unsigned long long)v.retry_after_ms);
	CHECK(v.status == 406, "406: the status goes to the router, which backs the channel off");
	v = row(406, NULL, NULL, "5");
	CHECK(v.outcome == OUTCOME_RETRY && v.retry_after_ms == 0 && v.status == 406,
	      "406 without the header: no retry_after, the router's doubling back-off applies (Retry-After is not "
	      "the throttle's)");
	v = row(406, NULL, "junk", NULL);
	CHECK(v.outcome == OUTCOME_RETRY && v.retry_after_ms == 0, "406 unreadable header: as if absent");

	v = row(503, NULL, NULL, "30");
	CHECK(v.outcome == OUTCOME_RETRY && v.retry_after_ms == 30000, "503: Retry-After seconds");
	v = row(503, NULL, NULL, "Wed, 21 Oct 2015 07:28:00 GMT");
	CHECK(v.outcome == OUTCOME_RETRY && v.retry_after_ms == 30000, "503: Retry-After date");
	expect(503, OUTCOME_RETRY, 0, "503 without Retry-After");
	v = row(500, NULL, NULL, "7");
	CHECK(v.outcome == OUTCOME_RETRY && v.retry_after_ms == 7000, "500: retry, Retry-After honoured");
	expect(500, OUTCOME_RETRY, 0, "500");

	expect(400, OUTCOME_MESSAGE_FAILED, 0, "bad headers");
	expect(403, OUTCOME_MESSAGE_FAILED, 0, "token not for this app: the channel is not blamed");
	expect(405, OUTCOME_MESSAGE_FAILED, 0, "wrong method");
	expect(413, OUTCOME_MESSAGE_FAILED, 0, "too large");
	expect(429, OUTCOME_MESSAGE_FAILED, 0, "other 4xx");
	expect(502, OUTCOME_MESSAGE_FAILED, 0, "other 5xx");
	expect(302, OUTCOME_MESSAGE_FAILED, 0, "a redirect (never followed)");
	expect(201, OUTCOME_MESSAGE_FAILED, 0, "another 2xx");

	wns_classify(&a, NOW, &v);
	CHECK(v.outcome == OUTCOME_MESSAGE_FAILED && strstr(v.reason, "HTTP 400") && strstr(v.reason, "bad?header"),
	      "the error description reaches the reason, filtered: %s", v.reason);
}

static void token(const char *body, int want_rc, const char *want_tok, long want_exp, int want_default)
{
	char *tok = NULL;
	long exp = 0;
	int def = -1, rc = wns_token_parse(body, strlen(body), &tok, &exp, &def);

	if (want_rc < 0) {
		CHECK(rc < 0 && tok == NULL, "refused: %s", body);
		return;
	}
	CHECK(rc == 0 && tok && strcmp(tok, want_tok) == 0 && exp == want_exp && def == want_default,
	      "%s -> rc %d token %s expires %ld defaulted %d", body, rc, tok ? tok : "-", exp, def);
	free(tok);
}

static void test_token_parse(void)
{
	token("{\"access_token\":\"EgYAAA+x/=\",\"token_type\":\"bearer\",\"expires_in\":86400}", 0, "EgYAAA+x/=", 86400, 0);
	token("{\"token_type\":\"Bearer\",\"expires_in\":\"86399\",\"ext_expires_in\":\"86399\",\"access_token\":\"eyJ0\"}", 0,
	      "eyJ0", 86399, 0);
	token("{\"access_token\":\"a\"}", 0, "a", WNS_TOKEN_DEFAULT_S, 1);
	token("{\"access_token\":\"a\",\"expires_in\":\"soon\"}", 0, "a", 3600, 1);
	token("{\"access_token\":\"a\",\"expires_in\":\"12s\"}", 0, "a", 3600, 1);
	token("{\"access_token\":\"a\",\"expires_in\":\"\"}", 0, "a", 3600, 1);
	token("{\"access_token\":\"a\",\"expires_in\":0}", 0, "a", 3600, 1);
	token("{\"access_token\":\"a\",\"expires_in\":-5}", 0, "a", 3600, 1);
	token("{\"access_token\":\"a\",\"expires_in\":null}", 0, "a", 3600, 1);
	token("{\"access_token\":\"a\",\"expires_in\":12.5}", 0, "a", 3600, 1);
	token("{\"access_token\":\"a\",\"expires_in\":99999999999}", 0, "a", WNS_TOKEN_MAX_S, 0);
	token("{\"access_token\":\"a\",\"expires_in\":\"99999999999999999999999\"}", 0, "a", WNS_TOKEN_MAX_S, 0);
	token("{\"expires_in\":3600}", -1, NULL, 0, 0);
	token("{\"access_token\":\"\"}", -1, NULL, 0, 0);
	token("{\"access_token\":\"a b\"}", -1, NULL, 0, 0);
	token("{\"access_token\":\"a\\nb\"}", -1, NULL, 0, 0);
	token("{\"access_token\":42}", -1, NULL, 0, 0);
	token("not json", -1, NULL, 0, 0);
}

static void test_margin_and_form(void)
{
	char *f;

	CHECK(wns_refresh_margin_ms(86400) == 8640000, "a day: 10 %% (%llu)", (unsigned long long)wns_refresh_margin_ms(86400));
	CHECK(wns_refresh_margin_ms(3600) == 360000, "an hour: 10 %% = 6 min");
	CHECK(wns_refresh_margin_ms(2000) == 300000, "33 min: 300 s");
	CHECK(wns_refresh_margin_ms(300) == 150000, "5 min: at most half the life");
	CHECK(wns_refresh_margin_ms(4) == 2000, "4 s: half");
	f = oauth_client_form("ms-app://s-1-15-2-1", "a+b/c=d&e f~", "notify.windows.com");
	CHECK(f && strcmp(f, "grant_type=client_credentials&client_id=ms-app%3A%2F%2Fs-1-15-2-1"
			     "&client_secret=a%2Bb%2Fc%3Dd%26e%20f~&scope=notify.windows.com") == 0,
	      "form: %s", f ? f : "(null)");
	free(f);
	f = oauth_client_form("id", "s", "https://wns.windows.com/.default");
	CHECK(f && strstr(f, "&scope=https%3A%2F%2Fwns.windows.com%2F.default") != NULL, "entra scope encoded");
	free(f);
}

int main(void)
{
	log_set_level((enum log_level)(LOG_ERROR + 1));
	test_table();
	test_token_parse();
	test_margin_and_form();
	return test_done();
}
