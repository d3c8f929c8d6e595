/*
 * classify: one FCM HTTP v1 answer (status, JSON error body, Retry-After) to one outcome,
 * exactly as the table of docs/senders.md ("fcm-sender") says. The errorCode comes from the details
 * element of type FcmError, never from the HTTP status alone. Pure: no state, no I/O, so the
 * table is unit-tested row by row. Trusts nothing in the body.
 */
#include "fcm.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define FCM_ERROR_TYPE "type.googleapis.com/google.firebase.fcm.v1.FcmError"
#define BAD_REQUEST_TYPE "type.googleapis.com/google.rpc.BadRequest"
#define QUOTA_MIN_MS 60000

static const char *str(json_t *o, const char *key)
{
	json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Does this INVALID_ARGUMENT say that the registration token is invalid? */
static int names_token(json_t *err, json_t *details)
{
	const char *msg = str(err, "message");
	size_t i, k;
	json_t *d, *fv;

	if (msg && strstr(msg, "registration token is not a valid FCM registration token") != NULL)
		return 1;
	json_array_foreach(details, i, d) {
		const char *t = str(d, "@type");
		json_t *viol = json_is_object(d) ? json_object_get(d, "fieldViolations") : NULL;
		if (t == NULL || strcmp(t, BAD_REQUEST_TYPE) != 0 || !json_is_array(viol))
			continue;
		json_array_foreach(viol, k, fv) {
			const char *field = str(fv, "field");
			if (field && strcmp(field, "message.token") == 0)
				return 1;
		}
	}
	return 0;
}

void fcm_classify(long status, const char *body, size_t len, const char *retry_after, uint64_t now_wall_ms,
		  struct guard_verdict *v)
{
	json_t *root = NULL, *err = NULL, *details = NULL, *d;
	const char *code = NULL, *st = NULL;
	size_t i;
	int client = status >= 400 && status <= 499, server = status >= 500 && status <= 599;

	memset(v, 0, sizeof *v);
	v->status = status;
	if (status == 200) {
		v->outcome = OUTCOME_DELIVERED;
		return;
	}
	if (len > 0 && (root = json_loadb(body, len, 0, NULL)) != NULL && json_is_object(root)) {
		err = json_object_get(root, "error");
		if (json_is_object(err)) {
			st = str(err, "status");
			details = json_object_get(err, "details");
		}
	}
	json_array_foreach(details, i, d) {
		const char *t = str(d, "@type");
		if (t && strcmp(t, FCM_ERROR_TYPE) == 0 && (code = str(d, "errorCode")) != NULL)
			break;
	}
	/* A 400 INVALID_ARGUMENT carrying only a BadRequest detail is still INVALID_ARGUMENT. */
	if (code == NULL && status == 400 && st && strcmp(st, "INVALID_ARGUMENT") == 0)
		code = st;
	if (code)
		guard_set_reason(v, code, strlen(code));
	else if (st)
		snprintf(v->reason, sizeof v->reason, "HTTP %ld %.80s (no errorCode)", status, st);
	else
		snprintf(v->reason, sizeof v->reason, "HTTP %ld", status);

	if (code == NULL) {
		if (status == 401) {
			v->outcome = OUTCOME_CREDENTIALS; /* after one refresh and resend */
			v->refresh_auth = 1;
		} else if (status == 403 || status == 404) {
			v->outcome = OUTCOME_CREDENTIALS; /* permission, project id, API disabled */
		} else if (status == 429 || server) {
			v->outcome = OUTCOME_RETRY;
		} else if (client) {
			v->outcome = OUTCOME_MESSAGE_FAILED;
		} else {
			v->outcome = OUTCOME_CREDENTIALS; /* not an FCM answer: a wrong URL or proxy */
		}
	} else if (strcmp(code, "UNREGISTERED") == 0) {
		v->outcome = OUTCOME_TOKEN_DEAD;
	} else if (strcmp(code, "INVALID_ARGUMENT") == 0) {
		if (names_token(err, details)) {
			v->outcome = OUTCOME_TOKEN_DEAD;
			v->guarded = 1;
		} else {
			v->outcome = OUTCOME_MESSAGE_FAILED;
		}
	} else if (strcmp(code, "SENDER_ID_MISMATCH") == 0) {
		v->outcome = OUTCOME_TOKEN_DEAD;
		v->guarded = 1;
	} else if (strcmp(code, "QUOTA_EXCEEDED") == 0 || strcmp(code, "UNAVAILABLE") == 0 ||
		   strcmp(code, "INTERNAL") == 0) {
		v->outcome = OUTCOME_RETRY;
	} else if (strcmp(code, "THIRD_PARTY_AUTH_ERROR") == 0) {
		v->outcome = OUTCOME_CREDENTIALS;
	} else if (strcmp(code, "UNSPECIFIED_ERROR") == 0) {
		v->outcome = server ? OUTCOME_RETRY : client ? OUTCOME_TOKEN_SUSPECT : OUTCOME_CREDENTIALS;
	} else {
		v->outcome = server || status == 429 ? OUTCOME_RETRY : client ? OUTCOME_MESSAGE_FAILED : OUTCOME_CREDENTIALS;
	}
	if (v->outcome == OUTCOME_RETRY) {
		v->retry_after_ms = h2c_retry_after_ms(retry_after, now_wall_ms);
		if (code && strcmp(code, "QUOTA_EXCEEDED") == 0 && v->retry_after_ms < QUOTA_MIN_MS)
			v->retry_after_ms = QUOTA_MIN_MS;
	}
	json_decref(root);
}
