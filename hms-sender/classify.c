/*
 * classify: one Push Kit answer to one outcome (docs/senders.md, "HMS"). The outcome is in the
 * body's `code`, not in the HTTP status: HTTP 200 carries failures too. A partial success
 * (80100000) names its failed tokens in `msg`, itself a JSON string; a request carries one
 * token, so the token is dead exactly when it is listed in illegal_tokens. "All tokens
 * invalid" (80300007) is what every send gets with a wrong App ID, so it is a guarded reason.
 * Pure: no state, no I/O, so the table is unit-tested row by row. Trusts nothing in the body.
 */
#include "hms.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *str(json_t *o, const char *key)
{
	json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A partial success: 1 when the token is among illegal_tokens, 0 when one message succeeded
 * and the token is not listed, -1 when neither can be read. */
static int partial_names_token(const char *msg, const char *token, size_t token_len)
{
	json_t *m, *illegal, *t;
	size_t i;
	int rc = -1;

	if (msg == NULL || (m = json_loads(msg, 0, NULL)) == NULL)
		return -1;
	illegal = json_object_get(m, "illegal_tokens");
	json_array_foreach(illegal, i, t) {
		if (json_is_string(t) && json_string_length(t) == token_len &&
		    memcmp(json_string_value(t), token, token_len) == 0) {
			rc = 1;
			break;
		}
	}
	if (rc < 0 && json_integer_value(json_object_get(m, "success")) > 0)
		rc = 0;
	json_decref(m);
	return rc;
}

void hms_classify(long status, const char *body, size_t len, const char *token, size_t token_len,
		  const char *retry_after, uint64_t now_wall_ms, struct guard_verdict *v)
{
	json_t *root = NULL;
	const char *code = NULL, *msg = NULL;
	char what[GUARD_REASON_MAX + 1];
	int server = status >= 500 && status <= 599;

	memset(v, 0, sizeof *v);
	v->status = status;
	if (len > 0 && (root = json_loadb(body, len, 0, NULL)) != NULL && json_is_object(root)) {
		code = str(root, "code");
		msg = str(root, "msg");
	}
	if (code && msg)
		snprintf(what, sizeof what, "%.8s %.100s", code, msg);
	else if (code)
		snprintf(what, sizeof what, "%.8s", code);
	else
		snprintf(what, sizeof what, "HTTP %ld (no code)", status);
	guard_set_reason(v, what, strlen(what));

	if (code == NULL) {
		if (status == 401) {
			v->outcome = OUTCOME_CREDENTIALS; /* after one refresh and resend */
			v->refresh_auth = 1;
		} else if (status == 200 || status == 403 || status == 404) {
			v->outcome = OUTCOME_CREDENTIALS; /* not a Push Kit answer: a wrong URL, app or proxy */
		} else if (status == 429 || server) {
			v->outcome = OUTCOME_RETRY;
		} else if (status >= 400 && status <= 499) {
			v->outcome = OUTCOME_MESSAGE_FAILED;
		} else {
			v->outcome = OUTCOME_CREDENTIALS;
		}
	} else if (strcmp(code, HMS_CODE_SUCCESS) == 0) {
		v->outcome = OUTCOME_DELIVERED;
		v->reason[0] = '\0';
	} else if (strcmp(code, HMS_CODE_PARTIAL) == 0) {
		int named = partial_names_token(msg, token, token_len);
		v->outcome = named > 0 ? OUTCOME_TOKEN_DEAD : named == 0 ? OUTCOME_DELIVERED : OUTCOME_MESSAGE_FAILED;
		if (named > 0)
			snprintf(v->reason, sizeof v->reason, "%s illegal token", HMS_CODE_PARTIAL);
		else if (named == 0)
			v->reason[0] = '\0';
	} else if (strcmp(code, HMS_CODE_ALL_TOKENS_INVALID) == 0) {
		v->outcome = OUTCOME_TOKEN_DEAD;
		v->guarded = 1;
	} else if (strcmp(code, HMS_CODE_AUTH_EXPIRED) == 0) {
		v->outcome = OUTCOME_CREDENTIALS;
		v->refresh_auth = 1;
	} else if (strcmp(code, HMS_CODE_AUTH_ERROR) == 0 || strcmp(code, HMS_CODE_NO_PERMISSION) == 0) {
		v->outcome = OUTCOME_CREDENTIALS;
	} else if (strcmp(code, HMS_CODE_TOO_LARGE) == 0 || strcmp(code, HMS_CODE_INVALID_MESSAGE) == 0) {
		v->outcome = OUTCOME_MESSAGE_FAILED;
	} else if (strcmp(code, HMS_CODE_INTERNAL) == 0 || status == 429 || server) {
		v->outcome = OUTCOME_RETRY;
	} else {
		v->outcome = OUTCOME_MESSAGE_FAILED; /* an unknown code: never blame the token */
	}
	if (v->outcome == OUTCOME_RETRY)
		v->retry_after_ms = h2c_retry_after_ms(retry_after, now_wall_ms);
	json_decref(root);
}
