/*
 * test_sender_classify: every row of the APNs and FCM answer tables (docs/senders.md) to its
 * outcome, Retry-After in seconds and as an HTTP date, the mass-invalidation guard of
 * docs/senders.md "Outcomes and retries", and the payloads of docs/protocol.md §6.6 (exact bytes,
 * reduced forms at the size limits), the guard's limits from the configuration, and the XMPP ad-hoc
 * payloads of docs/senders.md.
 */
#include "../../apns-sender/apns.h"
#include "../../fcm-sender/fcm.h"
#include "log.h"
#include "testlib.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint64_t NOW = 1445412450000ull; /* Wed, 21 Oct 2015 07:27:30 GMT */

static const char *nn(const char *s)
{
	return s ? s : "(null)";
}

static const char *oname(uint32_t o)
{
	static const char *const n[] = {"?", "delivered", "token_dead", "retry", "message_failed", "credentials",
					"token_suspect"};
	return o < 7 ? n[o] : "?";
}

static void apns_json(long status, const char *body, const char *retry_after, struct guard_verdict *v)
{
	apns_classify(status, body, strlen(body), retry_after, NOW, v);
}

static void fcm_json(long status, const char *body, const char *retry_after, struct guard_verdict *v)
{
	fcm_classify(status, body, strlen(body), retry_after, NOW, v);
}

static int token_parse(const char *body, char **token, long *expires_in)
{
	return fcm_token_parse(body, strlen(body), token, expires_in);
}

static void apns_row(long status, const char *reason, uint32_t want, int guarded)
{
	char body[256];
	struct guard_verdict v;

	if (reason)
		snprintf(body, sizeof body, "{\"reason\":\"%s\"}", reason);
	else
		body[0] = '\0';
	apns_classify(status, body, strlen(body), NULL, NOW, &v);
	CHECK(v.outcome == want && v.guarded == guarded, "APNs %ld %s: %s%s, want %s%s", status, reason ? reason : "-",
	      oname(v.outcome), v.guarded ? " (guarded)" : "", oname(want), guarded ? " (guarded)" : "");
	CHECK(v.status == status, "status kept");
}

static void test_apns_table(void)
{
	static const char *const bugs[] = {"MissingDeviceToken", "BadCollapseId", "BadExpirationDate", "BadMessageId",
					   "BadPriority", "DuplicateHeaders", "InvalidPushType", "PayloadEmpty"};
	struct guard_verdict v;
	const char *b410 = "{\"reason\":\"Unregistered\",\"timestamp\":1700000000123}";

	apns_row(200, NULL, OUTCOME_DELIVERED, 0);
	apns_row(400, "BadDeviceToken", OUTCOME_TOKEN_DEAD, 1);
	apns_row(400, "DeviceTokenNotForTopic", OUTCOME_TOKEN_DEAD, 1);
	for (size_t i = 0; i < sizeof bugs / sizeof bugs[0]; i++)
		apns_row(400, bugs[i], OUTCOME_MESSAGE_FAILED, 0);
	apns_row(400, "BadTopic", OUTCOME_CREDENTIALS, 0);
	apns_row(400, "MissingTopic", OUTCOME_CREDENTIALS, 0);
	apns_row(400, "TopicDisallowed", OUTCOME_CREDENTIALS, 0);
	apns_row(400, "IdleTimeout", OUTCOME_RETRY, 0);
	apns_row(403, "ExpiredProviderToken", OUTCOME_CREDENTIALS, 0);
	apns_json(403, "{\"reason\":\"ExpiredProviderToken\"}", NULL, &v);
	CHECK(v.refresh_auth == 1, "ExpiredProviderToken asks for a new JWT and one resend");
	apns_json(403, "{\"reason\":\"InvalidProviderToken\"}", NULL, &v);
	CHECK(v.refresh_auth == 0, "InvalidProviderToken does not");
	apns_row(403, "InvalidProviderToken", OUTCOME_CREDENTIALS, 0);
	apns_row(403, "MissingProviderToken", OUTCOME_CREDENTIALS, 0);
	apns_row(403, "BadCertificate", OUTCOME_CREDENTIALS, 0);
	apns_row(403, "BadCertificateEnvironment", OUTCOME_CREDENTIALS, 0);
	apns_row(403, "Forbidden", OUTCOME_CREDENTIALS, 0);
	apns_row(404, "BadPath", OUTCOME_MESSAGE_FAILED, 0);
	apns_row(405, "MethodNotAllowed", OUTCOME_MESSAGE_FAILED, 0);
	apns_row(410, "Unregistered", OUTCOME_TOKEN_DEAD, 0);
	apns_row(410, "ExpiredToken", OUTCOME_TOKEN_DEAD, 0);
	apns_row(413, "PayloadTooLarge", OUTCOME_MESSAGE_FAILED, 0);
	apns_row(429, "TooManyProviderTokenUpdates", OUTCOME_RETRY, 0);
	apns_row(429, "TooManyRequests", OUTCOME_RETRY, 0);
	apns_row(500, "InternalServerError", OUTCOME_RETRY, 0);
	apns_row(503, "ServiceUnavailable", OUTCOME_RETRY, 0);
	apns_row(503, "Shutdown", OUTCOME_RETRY, 0);
	/* other 4xx: never blame the token */
	apns_row(400, "SomethingNew", OUTCOME_MESSAGE_FAILED, 0);
	apns_row(403, "SomethingNew", OUTCOME_MESSAGE_FAILED, 0);
	apns_row(410, "SomethingNew", OUTCOME_MESSAGE_FAILED, 0);
	apns_row(418, "Teapot", OUTCOME_MESSAGE_FAILED, 0);
	apns_row(400, NULL, OUTCOME_MESSAGE_FAILED, 0);
	/* other 5xx */
	apns_row(502, NULL, OUTCOME_RETRY, 0);
	apns_row(504, "whatever", OUTCOME_RETRY, 0);
	/* not an APNs answer at all */
	apns_row(301, NULL, OUTCOME_CREDENTIALS, 0);

	apns_json(410, b410, NULL, &v);
	CHECK(v.outcome == OUTCOME_TOKEN_DEAD && v.timestamp_ms == 1700000000123ull, "410 timestamp in ms: %llu",
	      (unsigned long long)v.timestamp_ms);
	CHECK(strcmp(v.reason, "Unregistered") == 0, "reason %s", v.reason);
	apns_json(400, "{\"reason\":\"BadDeviceToken\"}", NULL, &v);
	CHECK(v.timestamp_ms == 0, "no timestamp without one (the sender uses the send's start)");
	apns_json(400, "{\"reason\":\"Bad\\nDevice\"}", NULL, &v);
	CHECK(strcmp(v.reason, "Bad?Device") == 0, "control characters never reach a reason: %s", v.reason);
	apns_json(400, "not json", NULL, &v);
	CHECK(v.outcome == OUTCOME_MESSAGE_FAILED && strcmp(v.reason, "HTTP 400") == 0, "unreadable body");
	apns_json(503, "{\"reason\":\"ServiceUnavailable\"}", "7", &v);
	CHECK(v.retry_after_ms == 7000, "503 Retry-After seconds -> %llu ms", (unsigned long long)v.retry_after_ms);
	apns_json(429, "{\"reason\":\"TooManyRequests\"}", "Wed, 21 Oct 2015 07:28:00 GMT", &v);
	CHECK(v.retry_after_ms == 30000, "429 Retry-After date -> %llu ms", (unsigned long long)v.retry_after_ms);
	apns_json(400, "{\"reason\":\"BadTopic\"}", "7", &v);
	CHECK(v.retry_after_ms == 0, "Retry-After only for retries");
}

static void fcm_row(long status, const char *body, uint32_t want, int guarded, const char *what)
{
	struct guard_verdict v;

	fcm_classify(status, body, body ? strlen(body) : 0, NULL, NOW, &v);
	CHECK(v.outcome == want && v.guarded == guarded, "FCM %ld %s: %s%s, want %s%s", status, what, oname(v.outcome),
	      v.guarded ? " (guarded)" : "", oname(want), guarded ? " (guarded)" : "");
}

#define FCM_ERR(code, http, status, msg, extra)                                                                 \
	"{\"error\":{\"code\":" #http ",\"message\":\"" msg "\",\"status\":\"" status "\",\"details\":[{\"@type\":" \
	"\"type.googleapis.com/google.firebase.fcm.v1.FcmError\",\"errorCode\":\"" code "\"}" extra "]}}"

static void test_fcm_table(void)
{
	struct guard_verdict v;
	const char *quota = FCM_ERR("QUOTA_EXCEEDED", 429, "RESOURCE_EXHAUSTED", "quota", "");
	const char *unavail = FCM_ERR("UNAVAILABLE", 503, "UNAVAILABLE", "busy", "");

	fcm_row(200, "{\"name\":\"projects/p/messages/1\"}", OUTCOME_DELIVERED, 0, "success");
	fcm_row(404, FCM_ERR("UNREGISTERED", 404, "NOT_FOUND", "Requested entity was not found.", ""),
		OUTCOME_TOKEN_DEAD, 0, "UNREGISTERED");
	fcm_row(400,
		FCM_ERR("INVALID_ARGUMENT", 400, "INVALID_ARGUMENT",
			"The registration token is not a valid FCM registration token", ""),
		OUTCOME_TOKEN_DEAD, 1, "INVALID_ARGUMENT (token message)");
	fcm_row(400,
		FCM_ERR("INVALID_ARGUMENT", 400, "INVALID_ARGUMENT", "Invalid value",
			",{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\",\"fieldViolations\":"
			"[{\"field\":\"message.token\",\"description\":\"Invalid registration token\"}]}"),
		OUTCOME_TOKEN_DEAD, 1, "INVALID_ARGUMENT (message.token violation)");
	fcm_row(400,
		FCM_ERR("INVALID_ARGUMENT", 400, "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value'",
			",{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\",\"fieldViolations\":"
			"[{\"field\":\"message.data[0].value\",\"description\":\"Invalid value\"}]}"),
		OUTCOME_MESSAGE_FAILED, 0, "INVALID_ARGUMENT (data field)");
	fcm_row(400,
		"{\"error\":{\"code\":400,\"message\":\"Invalid value\",\"status\":\"INVALID_ARGUMENT\",\"details\":"
		"[{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\",\"fieldViolations\":[{\"field\":"
		"\"message.token\"}]}]}}",
		OUTCOME_TOKEN_DEAD, 1, "INVALID_ARGUMENT without FcmError, naming the token");
	fcm_row(403, FCM_ERR("SENDER_ID_MISMATCH", 403, "PERMISSION_DENIED", "SenderId mismatch", ""),
		OUTCOME_TOKEN_DEAD, 1, "SENDER_ID_MISMATCH");
	fcm_row(429, quota, OUTCOME_RETRY, 0, "QUOTA_EXCEEDED");
	fcm_row(503, unavail, OUTCOME_RETRY, 0, "UNAVAILABLE");
	fcm_row(500, FCM_ERR("INTERNAL", 500, "INTERNAL", "oops", ""), OUTCOME_RETRY, 0, "INTERNAL");
	fcm_row(401, FCM_ERR("THIRD_PARTY_AUTH_ERROR", 401, "UNAUTHENTICATED", "apns", ""), OUTCOME_CREDENTIALS, 0,
		"THIRD_PARTY_AUTH_ERROR");
	fcm_row(400, FCM_ERR("UNSPECIFIED_ERROR", 400, "INVALID_ARGUMENT", "?", ""), OUTCOME_TOKEN_SUSPECT, 0,
		"UNSPECIFIED_ERROR 4xx");
	fcm_row(500, FCM_ERR("UNSPECIFIED_ERROR", 500, "INTERNAL", "?", ""), OUTCOME_RETRY, 0, "UNSPECIFIED_ERROR 5xx");
	fcm_row(401, "{\"error\":{\"code\":401,\"message\":\"Request had invalid authentication credentials.\","
		     "\"status\":\"UNAUTHENTICATED\"}}",
		OUTCOME_CREDENTIALS, 0, "401 without errorCode");
	fcm_json(401, "{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}", NULL, &v);
	CHECK(v.refresh_auth == 1, "401 without errorCode: refresh the access token and resend once");
	fcm_json(401, FCM_ERR("THIRD_PARTY_AUTH_ERROR", 401, "UNAUTHENTICATED", "apns", ""), NULL, &v);
	CHECK(v.refresh_auth == 0, "THIRD_PARTY_AUTH_ERROR is not our access token");
	fcm_row(403, "{\"error\":{\"code\":403,\"status\":\"PERMISSION_DENIED\"}}", OUTCOME_CREDENTIALS, 0,
		"403 without errorCode");
	fcm_row(404, "{\"error\":{\"code\":404,\"status\":\"NOT_FOUND\"}}", OUTCOME_CREDENTIALS, 0,
		"404 without errorCode (never a dead token on the status alone)");
	fcm_row(404, "<html>Not Found</html>", OUTCOME_CREDENTIALS, 0, "404 with a non-JSON body");
	fcm_row(400, FCM_ERR("SOMETHING_NEW", 400, "FAILED_PRECONDITION", "?", ""), OUTCOME_MESSAGE_FAILED, 0,
		"unknown errorCode 4xx");
	fcm_row(503, FCM_ERR("SOMETHING_NEW", 503, "UNAVAILABLE", "?", ""), OUTCOME_RETRY, 0, "unknown errorCode 5xx");
	fcm_row(409, "{}", OUTCOME_MESSAGE_FAILED, 0, "unknown 4xx");
	fcm_row(502, "garbage", OUTCOME_RETRY, 0, "5xx with garbage");
	fcm_row(429, NULL, OUTCOME_RETRY, 0, "429 without a body");
	fcm_row(400, NULL, OUTCOME_MESSAGE_FAILED, 0, "400 without a body");
	/* A FcmError in a detail of another @type is not an errorCode. */
	fcm_row(404,
		"{\"error\":{\"code\":404,\"status\":\"NOT_FOUND\",\"details\":[{\"@type\":\"type.googleapis.com/other\","
		"\"errorCode\":\"UNREGISTERED\"}]}}",
		OUTCOME_CREDENTIALS, 0, "errorCode outside an FcmError detail");

	fcm_json(429, quota, "10", &v);
	CHECK(v.retry_after_ms == 60000, "QUOTA_EXCEEDED waits at least 60 s: %llu", (unsigned long long)v.retry_after_ms);
	fcm_json(429, quota, "120", &v);
	CHECK(v.retry_after_ms == 120000, "QUOTA_EXCEEDED honours a longer Retry-After");
	fcm_json(503, unavail, "Wed, 21 Oct 2015 07:29:30 GMT", &v);
	CHECK(v.retry_after_ms == 120000, "UNAVAILABLE Retry-After date -> %llu", (unsigned long long)v.retry_after_ms);
	fcm_json(503, unavail, NULL, &v);
	CHECK(v.retry_after_ms == 0, "no Retry-After: the router's back-off");
	CHECK(strcmp(v.reason, "UNAVAILABLE") == 0, "reason is the errorCode: %s", v.reason);
}

static void test_retry_after(void)
{
	CHECK(h2c_retry_after_ms("120", NOW) == 120000, "seconds");
	CHECK(h2c_retry_after_ms(" 3 ", NOW) == 3000, "seconds with blanks");
	CHECK(h2c_retry_after_ms("0", NOW) == 0, "zero");
	CHECK(h2c_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 30000, "IMF date");
	CHECK(h2c_retry_after_ms("Wednesday, 21-Oct-15 07:28:00 GMT", NOW) == 30000, "RFC 850 date");
	CHECK(h2c_retry_after_ms("Wed Oct 21 07:28:00 2015", NOW) == 30000, "asctime date");
	CHECK(h2c_retry_after_ms("Wed, 21 Oct 2015 07:00:00 GMT", NOW) == 0, "a past date");
	CHECK(h2c_retry_after_ms("soon", NOW) == 0, "garbage");
	CHECK(h2c_retry_after_ms("12abc", NOW) == 0, "digits then garbage");
	CHECK(h2c_retry_after_ms(NULL, NOW) == 0, "absent");
	CHECK(h2c_retry_after_ms("99999999999999999999", NOW) == 86400000, "capped at a day");
}

static struct guard_verdict answer(struct guard *g, uint32_t outcome, int guarded, uint64_t now)
{
	struct guard_verdict v;
	memset(&v, 0, sizeof v);
	v.outcome = outcome;
	v.guarded = guarded;
	snprintf(v.reason, sizeof v.reason, "%s", guarded ? "BadDeviceToken" : "x");
	guard_settle(g, &v, now);
	return v;
}

static void test_guard(void)
{
	struct guard g;
	struct guard_verdict v;
	uint64_t t = 1000000;
	int tripped_at = -1;

	/* 1. before any delivery: configuration, and the provider pauses */
	guard_init(&g, "APNs");
	v = answer(&g, OUTCOME_TOKEN_DEAD, 1, t);
	CHECK(v.outcome == OUTCOME_CREDENTIALS, "guarded answer before any success -> credentials");
	CHECK(v.retry_after_ms == GUARD_PROBE_MS, "handed back for 60 s");
	CHECK(g.paused, "provider paused");
	CHECK(guard_admit(&g, t + 1) == 0, "no sends while paused");
	CHECK(guard_admit(&g, t + GUARD_PROBE_MS) == 1, "one probe after 60 s");
	CHECK(guard_admit(&g, t + GUARD_PROBE_MS + 1) == 0, "only one");
	guard_paused_verdict(&g, &v);
	CHECK(v.outcome == OUTCOME_CREDENTIALS && v.retry_after_ms == 60000, "paused jobs: credentials, 60 s");
	v = answer(&g, OUTCOME_DELIVERED, 0, t + GUARD_PROBE_MS + 2);
	CHECK(!g.paused && guard_admit(&g, t + GUARD_PROBE_MS + 3), "the first delivery ends the pause");

	/* 2. after a success a single guarded answer is a dead token */
	guard_init(&g, "APNs");
	answer(&g, OUTCOME_DELIVERED, 0, t);
	v = answer(&g, OUTCOME_TOKEN_DEAD, 1, t);
	CHECK(v.outcome == OUTCOME_TOKEN_DEAD && !g.paused, "one BadDeviceToken after a success -> token_dead");

	/* 3. 60 guarded among the last 100 answers trips it */
	guard_init(&g, "APNs");
	for (int i = 0; i < 100; i++) {
		int guarded = i % 5 < 3; /* 60 % guarded, interleaved */
		v = answer(&g, guarded ? OUTCOME_TOKEN_DEAD : OUTCOME_DELIVERED, guarded, t);
		if (guarded && v.outcome == OUTCOME_CREDENTIALS && tripped_at < 0 && i > 0)
			tripped_at = i;
	}
	CHECK(g.guarded == 60 && g.filled == 100, "window holds 60 of 100 (%u of %u)", g.guarded, g.filled);
	v = answer(&g, OUTCOME_TOKEN_DEAD, 1, t);
	CHECK(v.outcome == OUTCOME_CREDENTIALS && g.paused, "60 of 100 guarded -> credentials, paused");
	CHECK(tripped_at > 0, "it tripped once the share passed 50 %% with >= 10 guarded (at answer %d)", tripped_at);
	CHECK(g.trips >= 1, "trip counted");

	/* 4. 5 guarded of 10: below the minimum of 10, and not more than half */
	guard_init(&g, "APNs");
	for (int i = 0; i < 10; i++) {
		int guarded = i % 2 == 1;
		v = answer(&g, guarded ? OUTCOME_TOKEN_DEAD : OUTCOME_DELIVERED, guarded, t);
		if (guarded)
			CHECK(v.outcome == OUTCOME_TOKEN_DEAD, "answer %d of 5-of-10 stays token_dead", i);
	}
	CHECK(!g.paused, "5 of 10 does not trip");

	/* 5. many guarded but not dominating: 10 of 40 */
	guard_init(&g, "APNs");
	for (int i = 0; i < 40; i++)
		v = answer(&g, i % 4 == 0 ? OUTCOME_TOKEN_DEAD : OUTCOME_DELIVERED, i % 4 == 0, t);
	CHECK(!g.paused && g.guarded == 10, "10 of 40 guarded does not trip");

	/* 6. exactly half does not trip, more than half does; the window slides */
	guard_init(&g, "FCM");
	for (int i = 0; i < 10; i++)
		answer(&g, OUTCOME_DELIVERED, 0, t);
	for (int i = 0; i < 10; i++)
		v = answer(&g, OUTCOME_TOKEN_DEAD, 1, t);
	CHECK(v.outcome == OUTCOME_TOKEN_DEAD, "10 of 20 is not more than half (%s)", oname(v.outcome));
	v = answer(&g, OUTCOME_TOKEN_DEAD, 1, t);
	CHECK(v.outcome == OUTCOME_CREDENTIALS, "11 of 21 trips");
	for (int i = 0; i < 100; i++)
		answer(&g, OUTCOME_DELIVERED, 0, t);
	CHECK(g.guarded == 0 && !g.paused, "old answers leave the window");
	v = answer(&g, OUTCOME_TOKEN_DEAD, 1, t);
	CHECK(v.outcome == OUTCOME_TOKEN_DEAD, "then a guarded answer is a dead token again");

	/* 7. plain credentials answers pause too; transport failures are never recorded */
	guard_init(&g, "APNs");
	answer(&g, OUTCOME_DELIVERED, 0, t);
	v = answer(&g, OUTCOME_CREDENTIALS, 0, t);
	CHECK(g.paused && v.retry_after_ms == GUARD_PROBE_MS, "InvalidProviderToken pauses the provider");
	guard_pause(&g, "OAuth refused", t);
	CHECK(g.paused, "guard_pause");
}

static void test_apns_payload(void)
{
	size_t len, full;
	int reduced;
	char *p, *data;
	const char *want = "{\"aps\":{\"alert\":{\"title\":\"Bchat\",\"body\":\"You've got a new message\"},\"badge\":1,"
			   "\"sound\":\"default\",\"mutable-content\":1,\"category\":\"SECRET\"},"
			   "\"ENCRYPTED_DATA\":\"QUJD+/=\",\"remote\":1}";
	char url[256];

	p = apns_payload("Bchat", "You've got a new message", "QUJD+/=", 7, &len, &reduced);
	CHECK(p && strcmp(p, want) == 0 && len == strlen(want) && !reduced, "APNs body: %s", nn(p));
	free(p);
	p = apns_payload("Bchat", "You've got a new message", "a\"b\\c\n", 6, &len, &reduced);
	CHECK(p && strstr(p, "\"ENCRYPTED_DATA\":\"a\\\"b\\\\c\\n\"") != NULL, "JSON escaping: %s", nn(p));
	free(p);
	/* The overhead of the full body, then data that fills it to exactly 4096 bytes, then one more. */
	p = apns_payload("Bchat", "You've got a new message", "", 0, &full, &reduced);
	free(p);
	data = malloc(5000);
	memset(data, 'A', 5000);
	p = apns_payload("Bchat", "You've got a new message", data, 4096 - full, &len, &reduced);
	CHECK(p && !reduced && len == 4096, "4096 bytes: full payload (%zu)", len);
	free(p);
	p = apns_payload("Bchat", "You've got a new message", data, 4097 - full, &len, &reduced);
	CHECK(p && reduced && strstr(p, "ENCRYPTED_DATA") == NULL && strstr(p, "\"mutable-content\":1") != NULL &&
		      len <= 4096,
	      "4097 bytes: reduced payload %s", nn(p));
	free(p);
	p = apns_payload("Bchat", "You've got a new message", "\xff\xfe", 2, &len, &reduced);
	CHECK(p && reduced, "data that is not UTF-8: reduced payload");
	free(p);
	free(data);
	/* Plain data takes a path without jansson: the same bytes as jansson's, whatever the title
	 * (one that holds the key itself, quotes, non-ASCII), and after the title changes. */
	{
		static const char *const titles[][2] = {{"Session", "New"}, {"\"ENCRYPTED_DATA\":\"", "x\"y"},
							{"Bchat \xc3\xa9", "\\\n"}, {"Session", "New"}};
		char ascii[93];
		for (int i = 0, c = 0x20; c < 0x7f; c++)
			if (c != '"' && c != '\\')
				ascii[i++] = (char)c;
		for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++) {
			json_t *o = json_pack("{s:{s:{s:s,s:s},s:i,s:s,s:i,s:s},s:s%,s:i}", "aps", "alert", "title",
					      titles[i][0], "body", titles[i][1], "badge", 1, "sound", "default",
					      "mutable-content", 1, "category", "SECRET", "ENCRYPTED_DATA", ascii,
					      sizeof ascii, "remote", 1);
			char *w = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
			p = apns_payload(titles[i][0], titles[i][1], ascii, sizeof ascii, &len, &reduced);
			CHECK(p && w && strcmp(p, w) == 0 && len == strlen(w) && !reduced,
			      "title %zu: printable data that needs no escape gives jansson's body: %s", i, nn(p));
			free(p);
			free(w);
			json_decref(o);
		}
	}

	CHECK(apns_url(url, sizeof url, "https://api.push.apple.com/", "abcDEF0123", 10) == 0 &&
		      strcmp(url, "https://api.push.apple.com/3/device/abcDEF0123") == 0,
	      "url %s", url);
	CHECK(apns_url(url, sizeof url, "https://h:2197", "a/b c%?#-._~", 12) == 0 &&
		      strcmp(url, "https://h:2197/3/device/a%2Fb%20c%25%3F%23-._~") == 0,
	      "percent-encoded %s", url);
	CHECK(apns_url(url, 30, "https://api.push.apple.com", "abcdef", 6) == -1, "too long");
}

static void test_fcm_payload(void)
{
	size_t len;
	int reduced;
	char *p, *data = malloc(5000);

	p = fcm_message("tok:1", 5, "QUJD", 4, &len, &reduced);
	CHECK(p && !reduced && strcmp(p, "{\"message\":{\"token\":\"tok:1\",\"data\":{\"ENCRYPTED_DATA\":\"QUJD\"},"
					 "\"android\":{\"priority\":\"HIGH\"}}}") == 0,
	      "FCM body: %s", nn(p));
	CHECK(p && strstr(p, "notification") == NULL, "no notification block");
	free(p);
	memset(data, 'A', 5000);
	p = fcm_message("t", 1, data, 4096 - 14, &len, &reduced);
	CHECK(p && !reduced, "key + value = 4096: full");
	free(p);
	p = fcm_message("t", 1, data, 4097 - 14, &len, &reduced);
	CHECK(p && reduced && strcmp(p, "{\"message\":{\"token\":\"t\",\"data\":{\"ENCRYPTED_DATA_TOO_LARGE\":\"1\"},"
					"\"android\":{\"priority\":\"HIGH\"}}}") == 0,
	      "4097: reduced %s", nn(p));
	free(p);
	CHECK(fcm_message("\xff", 1, "x", 1, &len, &reduced) == NULL, "a token that is not UTF-8 is refused");
	free(data);
}

static void test_token_parse(void)
{
	char *t = NULL;
	long e = 0;
	const char *b1 = "{\"access_token\":\"ya29.abc\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
	const char *b2 = "{\"access_token\":\"ya29.abc\",\"expires_in\":\"3599\"}";
	const char *b3 = "{\"access_token\":\"ya29 abc\\r\\nx: y\",\"expires_in\":3599}";

	CHECK(token_parse(b1, &t, &e) == 0 && strcmp(t, "ya29.abc") == 0 && e == 3599, "number");
	free(t);
	CHECK(token_parse(b2, &t, &e) == 0 && e == 3599, "string expires_in");
	free(t);
	CHECK(token_parse(b3, &t, &e) == -1 && t == NULL, "a token that would break the header line");
	CHECK(token_parse("{}", &t, &e) == -1, "no token");
	CHECK(token_parse("{\"access_token\":\"a\",\"expires_in\":0}", &t, &e) == -1, "expired at birth");
}

static void test_guard_limits(void)
{
	struct guard g;
	struct guard_verdict v;
	uint64_t t = 1000000;

	/* window 10, at least 3 guarded, more than 20 %: 3 of 10 trips, 2 of 10 does not */
	guard_init(&g, "APNs");
	guard_set_limits(&g, 10, 3, 20);
	CHECK(g.window_n == 10 && g.min_guarded == 3 && g.share_pct == 20, "limits set");
	for (int i = 0; i < 8; i++)
		answer(&g, OUTCOME_DELIVERED, 0, t);
	v = answer(&g, OUTCOME_TOKEN_DEAD, 1, t);
	v = answer(&g, OUTCOME_TOKEN_DEAD, 1, t);
	CHECK(v.outcome == OUTCOME_TOKEN_DEAD && !g.paused, "2 guarded of 10: below M = 3");
	v = answer(&g, OUTCOME_TOKEN_DEAD, 1, t);
	CHECK(g.filled == 10 && g.guarded == 3, "window of 10 slides (%u of %u)", g.guarded, g.filled);
	CHECK(v.outcome == OUTCOME_CREDENTIALS && g.paused && g.trips == 1, "3 of 10 > 20 %% with M = 3 trips");
	v = answer(&g, OUTCOME_TOKEN_DEAD, 1, t);
	CHECK(g.trips == 1, "a trip is counted once per pause");

	/* zero or negative values keep the defaults; N is capped */
	guard_init(&g, "FCM");
	guard_set_limits(&g, 0, -1, 0);
	CHECK(g.window_n == GUARD_WINDOW && g.min_guarded == GUARD_MIN_GUARDED && g.share_pct == GUARD_SHARE_PCT,
	      "defaults kept");
	guard_set_limits(&g, 10000000, 5, 500);
	CHECK(g.window_n == GUARD_WINDOW_MAX && g.share_pct == 100, "capped");
	/* a large window works: 100000 answers fill it */
	for (int i = 0; i < GUARD_WINDOW_MAX + 5; i++)
		answer(&g, OUTCOME_DELIVERED, 0, t);
	CHECK(g.filled == GUARD_WINDOW_MAX && g.guarded == 0, "large window fills (%u)", g.filled);
}

static void test_xmpp_payloads(void)
{
	struct sender_xmpp x;
	size_t len = 0;
	char *p;
	const char *acc = "575743d57bd2e395071f9f88adce7f8bba664ea2", *room = "30be82eb00f86644993eaeda4c46ecf51c42715c";
	char data[256];

	snprintf(data, sizeof data, "{\"account\":\"%s\",\"high\":true}", acc);
	CHECK(sender_xmpp_parse(data, strlen(data), &x) == 0 && x.high && strcmp(x.account, acc) == 0 && !x.channel[0],
	      "parse account, high");
	p = fcm_xmpp_message("tok:1", 5, &x, &len);
	CHECK(p && strcmp(p, "{\"message\":{\"token\":\"tok:1\",\"data\":{\"account\":\"575743d57bd2e395071f9f88adce7f8bba664ea2\"},"
			     "\"android\":{\"priority\":\"HIGH\",\"collapse_key\":\"575743\"}}}") == 0 && len == strlen(p),
	      "FCM XMPP high: %s", nn(p));
	free(p);
	p = apns_xmpp_payload(x.high, &len);
	CHECK(p && strcmp(p, "{\"aps\":{\"alert\":{\"title\":\"New message\"},\"sound\":\"default\"}}") == 0 &&
		      len == strlen(p),
	      "APNs XMPP high: %s", nn(p));
	free(p);

	snprintf(data, sizeof data, "{\"account\":\"%s\",\"channel\":\"%s\",\"high\":false}", acc, room);
	CHECK(sender_xmpp_parse(data, strlen(data), &x) == 0 && !x.high && strcmp(x.channel, room) == 0,
	      "parse channel, not high");
	p = fcm_xmpp_message("t", 1, &x, &len);
	CHECK(p && strcmp(p, "{\"message\":{\"token\":\"t\",\"data\":{\"account\":\"575743d57bd2e395071f9f88adce7f8bba664ea2\","
			     "\"channel\":\"30be82eb00f86644993eaeda4c46ecf51c42715c\"},"
			     "\"android\":{\"priority\":\"NORMAL\",\"collapse_key\":\"30be82\"}}}") == 0,
	      "FCM XMPP room, normal: %s", nn(p));
	free(p);
	p = apns_xmpp_payload(x.high, &len);
	CHECK(p && strcmp(p, "{\"aps\":{\"content-available\":1}}") == 0, "APNs XMPP background: %s", nn(p));
	free(p);
	p = fcm_xmpp_message("\xff", 1, &x, &len);
	CHECK(p == NULL, "FCM XMPP: token not UTF-8 refused");

	snprintf(data, sizeof data, "{\"account\":\"%s\"}", acc);
	CHECK(sender_xmpp_parse(data, strlen(data), &x) == 0 && !x.high, "high absent: false");
	CHECK(sender_xmpp_parse("{\"account\":\"575743\"}", 20, &x) < 0, "short account refused");
	snprintf(data, sizeof data, "{\"account\":\"%.39sG\"}", acc);
	CHECK(sender_xmpp_parse(data, strlen(data), &x) < 0, "non-hex account refused");
	snprintf(data, sizeof data, "{\"account\":\"%s\",\"channel\":7}", acc);
	CHECK(sender_xmpp_parse(data, strlen(data), &x) < 0, "bad channel refused");
	snprintf(data, sizeof data, "{\"account\":\"%s\",\"high\":\"yes\"}", acc);
	CHECK(sender_xmpp_parse(data, strlen(data), &x) < 0, "non-boolean high refused");
	CHECK(sender_xmpp_parse("[1]", 3, &x) < 0 && sender_xmpp_parse("", 0, &x) < 0, "not an object refused");
}

int main(void)
{
	log_set_level((enum log_level)(LOG_ERROR + 1)); /* the guard's error lines are expected here */
	test_apns_table();
	test_fcm_table();
	test_retry_after();
	test_guard();
	test_apns_payload();
	test_fcm_payload();
	test_token_parse();
	test_guard_limits();
	test_xmpp_payloads();
	return test_done();
}
