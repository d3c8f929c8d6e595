/*
 * test_hms: the HMS sender's pure parts — every row of the answer table (docs/senders.md,
 * "HMS": the outcome from the `code` field, HTTP 200 carrying failures, the partial success
 * naming its illegal tokens, the guarded "all tokens invalid"), the message (the FCM payload's
 * data map as a JSON string, the 4096-byte rule without the token list, the reduced form), the
 * token endpoint's answer and the percent-encoded client-credentials form.
 */
#include "../../hms-sender/hms.h"
#include "log.h"
#include "testlib.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint64_t NOW = 1445412450000ull; /* Wed, 21 Oct 2015 07:27:30 GMT */
static const char TOKEN[] = "IQAAAACy0kYkAADdr9w-hms-token";

static const char *oname(uint32_t o)
{
	static const char *const n[] = {"?", "delivered", "token_dead", "retry", "message_failed", "credentials",
					"token_suspect"};
	return o < 7 ? n[o] : "?";
}

static struct guard_verdict answer(long status, const char *body, const char *retry_after)
{
	struct guard_verdict v;

	hms_classify(status, body, body ? strlen(body) : 0, TOKEN, strlen(TOKEN), retry_after, NOW, &v);
	return v;
}

/* One row: a code in an HTTP status, the outcome and flags it must give. */
static void row(long status, const char *code, uint32_t want, int guarded, int refresh, const char *what)
{
	char body[160];
	struct guard_verdict v;

	snprintf(body, sizeof body, "{\"code\":\"%s\",\"msg\":\"m\",\"requestId\":\"1\"}", code);
	v = answer(status, body, NULL);
	CHECK(v.outcome == want && v.guarded == guarded && v.refresh_auth == refresh && v.status == status,
	      "%s: HTTP %ld code %s -> %s guarded %d refresh %d, want %s %d %d", what, status, code, oname(v.outcome),
	      v.guarded, v.refresh_auth, oname(want), guarded, refresh);
}

static void test_table(void)
{
	struct guard_verdict v;
	char body[400];

	row(200, "80000000", OUTCOME_DELIVERED, 0, 0, "success");
	v = answer(200, "{\"code\":\"80000000\",\"msg\":\"Success\",\"requestId\":\"x\"}", NULL);
	CHECK(v.reason[0] == '\0', "success: no reason (%s)", v.reason);
	row(200, "80300007", OUTCOME_TOKEN_DEAD, 1, 0, "all tokens invalid: token_dead, guarded");
	row(200, "80300008", OUTCOME_MESSAGE_FAILED, 0, 0, "message too large: this job fails, never the token");
	row(400, "80100003", OUTCOME_MESSAGE_FAILED, 0, 0, "invalid message");
	row(200, "80100003", OUTCOME_MESSAGE_FAILED, 0, 0, "invalid message in an HTTP 200");
	row(401, "80200001", OUTCOME_CREDENTIALS, 0, 0, "OAuth authentication error: pause, no refresh loop");
	row(401, "80200003", OUTCOME_CREDENTIALS, 0, 1, "OAuth token expired: a new token and one resend");
	row(200, "80200003", OUTCOME_CREDENTIALS, 0, 1, "token expired in an HTTP 200 too");
	row(403, "80300002", OUTCOME_CREDENTIALS, 0, 0, "no permission: configuration, nothing deleted");
	row(500, "81000001", OUTCOME_RETRY, 0, 0, "internal error: retry");
	row(200, "81000001", OUTCOME_RETRY, 0, 0, "internal error in an HTTP 200: retry");
	row(200, "80999999", OUTCOME_MESSAGE_FAILED, 0, 0, "unknown code in a 200: the job fails, the token is kept");
	row(503, "80999999", OUTCOME_RETRY, 0, 0, "unknown code in a 503: retry");

	/* Partial success: the msg field is itself JSON, listing the illegal tokens. */
	snprintf(body, sizeof body,
		 "{\"code\":\"80100000\",\"msg\":\"{\\\"success\\\":0,\\\"failure\\\":1,\\\"illegal_tokens\\\":[\\\"%s\\\"]}\"}",
		 TOKEN);
	v = answer(200, body, NULL);
	CHECK(v.outcome == OUTCOME_TOKEN_DEAD && !v.guarded, "partial success listing our token: token_dead, not guarded (%s)",
	      oname(v.outcome));
	v = answer(200, "{\"code\":\"80100000\",\"msg\":\"{\\\"success\\\":1,\\\"failure\\\":1,\\\"illegal_tokens\\\":[\\\"other\\\"]}\"}",
		   NULL);
	CHECK(v.outcome == OUTCOME_DELIVERED, "partial success listing another token: delivered (%s)", oname(v.outcome));
	v = answer(200, "{\"code\":\"80100000\",\"msg\":\"not json\"}", NULL);
	CHECK(v.outcome == OUTCOME_MESSAGE_FAILED && !v.guarded, "partial success without a readable msg: message_failed (%s)",
	      oname(v.outcome));
	v = answer(200, "{\"code\":\"80100000\",\"msg\":\"{\\\"success\\\":0,\\\"illegal_tokens\\\":[\\\"IQAAAACy0kYk\\\"]}\"}",
		   NULL);
	CHECK(v.outcome != OUTCOME_TOKEN_DEAD, "a prefix of our token listed is not our token (%s)", oname(v.outcome));

	/* Without a code the HTTP status decides. */
	v = answer(429, NULL, "30");
	CHECK(v.outcome == OUTCOME_RETRY && v.retry_after_ms == 30000, "429: retry after Retry-After 30 s (%s %llu)",
	      oname(v.outcome), (unsigned long long)v.retry_after_ms);
	v = answer(503, "", "Wed, 21 Oct 2015 07:28:00 GMT");
	CHECK(v.outcome == OUTCOME_RETRY && v.retry_after_ms == 30000, "503: retry, HTTP-date Retry-After honoured (%llu)",
	      (unsigned long long)v.retry_after_ms);
	v = answer(502, "<html>bad gateway</html>", NULL);
	CHECK(v.outcome == OUTCOME_RETRY && v.retry_after_ms == 0, "502 without a code: retry");
	v = answer(401, NULL, NULL);
	CHECK(v.outcome == OUTCOME_CREDENTIALS && v.refresh_auth, "401 without a code: credentials after a refresh");
	v = answer(200, "<html>captive portal</html>", NULL);
	CHECK(v.outcome == OUTCOME_CREDENTIALS && !v.guarded, "a 200 that is no Push Kit answer: credentials, not delivered");
	v = answer(404, NULL, NULL);
	CHECK(v.outcome == OUTCOME_CREDENTIALS, "404 without a code: credentials (wrong URL or app)");
	v = answer(400, "{}", NULL);
	CHECK(v.outcome == OUTCOME_MESSAGE_FAILED, "400 without a code: message_failed");
	v = answer(200, "{\"code\":80000000}", NULL);
	CHECK(v.outcome == OUTCOME_CREDENTIALS, "a numeric code is not a Push Kit answer");
	v = answer(200, "{\"code\":\"80300007\",\"msg\":\"bad\\u0001\\ncontrol\"}", NULL);
	CHECK(strchr(v.reason, '\n') == NULL && strchr(v.reason, 1) == NULL && strstr(v.reason, "80300007") != NULL,
	      "the reason keeps the code and printable ASCII only (%s)", v.reason);
}

static json_t *parse_message(const char *s, size_t n)
{
	json_t *root = json_loadb(s, n, 0, NULL);
	CHECK(root != NULL, "the message is JSON");
	return root;
}

static void test_payload(void)
{
	const char *data = "ZXhhbXBsZSB3cmFwcGVk/+==";
	size_t n = 0;
	int reduced = -1;
	char *m = hms_message(TOKEN, strlen(TOKEN), data, strlen(data), &n, &reduced);
	json_t *root, *msg, *inner;
	char *big;

	CHECK(m != NULL && n == strlen(m) && reduced == 0, "message built, not reduced");
	root = parse_message(m, n);
	msg = json_object_get(root, "message");
	CHECK(json_is_false(json_object_get(root, "validate_only")), "validate_only false");
	CHECK(json_array_size(json_object_get(msg, "token")) == 1 &&
	      strcmp(json_string_value(json_array_get(json_object_get(msg, "token"), 0)), TOKEN) == 0,
	      "one token in the token list");
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(msg, "android"), "urgency")), "HIGH") == 0,
	      "android urgency HIGH");
	CHECK(json_is_string(json_object_get(msg, "data")), "data is a string");
	inner = json_loads(json_string_value(json_object_get(msg, "data")), 0, NULL);
	CHECK(inner != NULL && json_object_size(inner) == 1 &&
	      strcmp(json_string_value(json_object_get(inner, "ENCRYPTED_DATA")), data) == 0,
	      "data carries {\"ENCRYPTED_DATA\": <notify data>} verbatim");
	json_decref(inner);
	json_decref(root);
	free(m);

	/* The limit counts the message without its token list: 4096 bytes. Find the largest
	 * data that fits and check one more byte reduces it. */
	big = malloc(5000);
	memset(big, 'A', 5000);
	{
		size_t lo = 0, hi = 5000;
		while (lo + 1 < hi) {
			size_t mid = (lo + hi) / 2;
			m = hms_message(TOKEN, strlen(TOKEN), big, mid, &n, &reduced);
			if (reduced)
				hi = mid;
			else
				lo = mid;
			free(m);
		}
		/* {"data":"{\"ENCRYPTED_DATA\":\"<lo>\"}","android":{"urgency":"HIGH"}} */
		size_t without = strlen("{\"data\":\"{\\\"ENCRYPTED_DATA\\\":\\\"\\\"}\",\"android\":{\"urgency\":\"HIGH\"}}") + lo;
		CHECK(without == HMS_MESSAGE_MAX, "the largest data sent whole makes a message of exactly 4096 bytes without tokens (%zu)",
		      without);
		m = hms_message(TOKEN, strlen(TOKEN), big, hi, &n, &reduced);
		root = parse_message(m, n);
		inner = json_loads(json_string_value(json_object_get(json_object_get(root, "message"), "data")), 0, NULL);
		CHECK(reduced == 1 && inner && strcmp(json_string_value(json_object_get(inner, "ENCRYPTED_DATA_TOO_LARGE")), "1") == 0 &&
		      json_object_get(inner, "ENCRYPTED_DATA") == NULL,
		      "one byte more: the reduced map {\"ENCRYPTED_DATA_TOO_LARGE\":\"1\"}");
		json_decref(inner);
		json_decref(root);
		free(m);
	}
	/* A long token does not count towards the limit. */
	{
		char *tok = malloc(900);
		memset(tok, 't', 899);
		tok[899] = '\0';
		m = hms_message(tok, 899, big, 3000, &n, &reduced);
		CHECK(m != NULL && reduced == 0, "a long token does not count against the message size");
		free(m);
		free(tok);
	}
	free(big);
	m = hms_message(TOKEN, strlen(TOKEN), "\xff\xfe", 2, &n, &reduced);
	CHECK(m != NULL && reduced == 1, "data that is not UTF-8: the reduced map");
	free(m);
	m = hms_message("\xff", 1, data, strlen(data), &n, &reduced);
	CHECK(m == NULL, "a token that is not UTF-8: no message");
	m = hms_message("a\"b\\c", 5, "x\"y", 3, &n, &reduced);
	root = m ? json_loadb(m, n, 0, NULL) : NULL;
	CHECK(root != NULL, "quotes and backslashes in token and data are escaped");
	json_decref(root);
	free(m);
}

static void test_auth(void)
{
	char *tok = NULL, *form;
	long exp = 0;

	CHECK(hms_token_parse("{\"access_token\":\"CF3Z-abc=\",\"expires_in\":3600,\"token_type\":\"Bearer\"}", strlen("{\"access_token\":\"CF3Z-abc=\",\"expires_in\":3600,\"token_type\":\"Bearer\"}"), &tok, &exp) == 0 &&
	      tok && strcmp(tok, "CF3Z-abc=") == 0 && exp == 3600, "token answer read");
	free(tok);
	tok = NULL;
	CHECK(hms_token_parse("{\"access_token\":\"abc\"}", strlen("{\"access_token\":\"abc\"}"), &tok, &exp) == 0 && exp == HMS_TOKEN_DEFAULT_S,
	      "no expires_in: one hour");
	free(tok);
	tok = NULL;
	CHECK(hms_token_parse("{\"access_token\":\"abc\",\"expires_in\":-5}", strlen("{\"access_token\":\"abc\",\"expires_in\":-5}"), &tok, &exp) < 0 && tok == NULL,
	      "a negative expires_in: unusable");
	CHECK(hms_token_parse("{\"error\":1101}", strlen("{\"error\":1101}"), &tok, &exp) < 0, "no access_token: unusable");
	CHECK(hms_token_parse("{\"access_token\":\"a b\"}", strlen("{\"access_token\":\"a b\"}"), &tok, &exp) < 0, "a token with a space: unusable");
	form = oauth_client_form("104523987", "s3cr+t/&=", NULL);
	CHECK(form && strcmp(form, "grant_type=client_credentials&client_id=104523987&client_secret=s3cr%2Bt%2F%26%3D") == 0,
	      "client-credentials form, values percent-encoded (%s)", form ? form : "NULL");
	free(form);
}

int main(void)
{
	log_set_level((enum log_level)(LOG_ERROR + 1));
	test_table();
	test_payload();
	test_auth();
	return test_done();
}
