/*
 * classify: one APNs answer (status, JSON body, Retry-After) to one outcome, exactly as the
 * table of docs/senders.md ("apns-sender") says. Pure: no state, no I/O, so the table is
 * unit-tested row by row. Trusts nothing in the body: an unreadable body is an unknown reason.
 */
#include "apns.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static int is_one_of(const char *reason, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(reason, *list) == 0)
			return 1;
	return 0;
}

static void set(struct guard_verdict *v, uint32_t outcome)
{
	v->outcome = outcome;
}

void apns_classify(long status, const char *body, size_t len, const char *retry_after, uint64_t now_wall_ms,
		   struct guard_verdict *v)
{
	static const char *const credentials_403[] = {"InvalidProviderToken", "MissingProviderToken", "BadCertificate",
						      "BadCertificateEnvironment", "Forbidden", NULL};
	static const char *const topic_400[] = {"BadTopic", "MissingTopic", "TopicDisallowed", NULL};
	static const char *const gone_410[] = {"Unregistered", "ExpiredToken", NULL};
	char reason[GUARD_REASON_MAX + 1] = "";
	json_t *root = NULL, *jr, *jt;

	memset(v, 0, sizeof *v);
	v->status = status;
	if (status == 200) {
		set(v, OUTCOME_DELIVERED);
		return;
	}
	if (len > 0 && (root = json_loadb(body, len, 0, NULL)) != NULL && json_is_object(root)) {
		if ((jr = json_object_get(root, "reason")) != NULL && json_is_string(jr))
			snprintf(reason, sizeof reason, "%s", json_string_value(jr));
		jt = json_object_get(root, "timestamp");
		if (json_is_integer(jt) && json_integer_value(jt) > 0)
			v->timestamp_ms = (uint64_t)json_integer_value(jt);
		else if (json_is_real(jt) && json_real_value(jt) > 0)
			v->timestamp_ms = (uint64_t)json_real_value(jt);
	}
	json_decref(root);
	if (reason[0])
		guard_set_reason(v, reason, strlen(reason));
	else
		snprintf(v->reason, sizeof v->reason, "HTTP %ld", status);

	switch (status) {
	case 400:
		if (strcmp(reason, "BadDeviceToken") == 0 || strcmp(reason, "DeviceTokenNotForTopic") == 0) {
			set(v, OUTCOME_TOKEN_DEAD);
			v->guarded = 1;
		} else if (is_one_of(reason, topic_400)) {
			set(v, OUTCOME_CREDENTIALS);
		} else if (strcmp(reason, "IdleTimeout") == 0) {
			set(v, OUTCOME_RETRY);
		} else {
			/* MissingDeviceToken, BadCollapseId, …, PayloadEmpty, and unknown reasons. */
			set(v, OUTCOME_MESSAGE_FAILED);
		}
		break;
	case 403:
		if (strcmp(reason, "ExpiredProviderToken") == 0) {
			set(v, OUTCOME_CREDENTIALS);
			v->refresh_auth = 1;
		} else if (is_one_of(reason, credentials_403)) {
			set(v, OUTCOME_CREDENTIALS);
		} else {
			set(v, OUTCOME_MESSAGE_FAILED);
		}
		break;
	case 410:
		if (is_one_of(reason, gone_410))
			set(v, OUTCOME_TOKEN_DEAD);
		else
			set(v, OUTCOME_MESSAGE_FAILED);
		break;
	case 429:
		/* TooManyProviderTokenUpdates keeps the JWT (it is replaced on its schedule only);
		 * TooManyRequests is about this device: never the token's death. */
		set(v, OUTCOME_RETRY);
		break;
	default:
		if (status >= 500 && status <= 599)
			set(v, OUTCOME_RETRY);
		else if (status >= 400 && status <= 499)
			set(v, OUTCOME_MESSAGE_FAILED); /* 404 BadPath, 405, 413, and any other 4xx */
		else
			set(v, OUTCOME_CREDENTIALS);	/* not an APNs answer: a wrong URL or proxy */
		break;
	}
	if (v->outcome != OUTCOME_TOKEN_DEAD)
		v->timestamp_ms = 0;
	if (v->outcome == OUTCOME_RETRY)
		v->retry_after_ms = h2c_retry_after_ms(retry_after, now_wall_ms);
}
