/*
 * payload: the FCM HTTP v1 message for a Bchat notification (docs/protocol.md §6.6): a data
 * message only, never a notification block, and the reduced data map of docs/protocol.md §6.6 when
 * the data is too large; and the p2-style data message for an XMPP ad-hoc registration
 * (docs/senders.md, "Job kinds"). Trusts nothing in the token or data: jansson escapes both. Holds
 * nothing.
 */
#include "fcm.h"
#include <jansson.h>
#include <string.h>

#define DATA_KEY "ENCRYPTED_DATA"

char *fcm_message(const char *token, size_t token_len, const char *data, size_t data_len, size_t *out_len,
		  int *reduced)
{
	json_t *tok = json_stringn(token, token_len), *d = NULL, *root;
	char *out;

	*reduced = sizeof DATA_KEY - 1 + data_len > FCM_DATA_MAX;
	if (tok == NULL)
		return NULL;
	if (!*reduced && (d = json_stringn(data, data_len)) == NULL)
		*reduced = 1; /* not UTF-8: cannot travel as a JSON string */
	if (*reduced)
		d = json_string("1");
	root = json_pack("{s:{s:o,s:{s:o},s:{s:s}}}", "message", "token", tok, "data",
			 *reduced ? "ENCRYPTED_DATA_TOO_LARGE" : DATA_KEY, d, "android", "priority", "HIGH");
	if (root == NULL)
		return NULL; /* json_pack has released tok and d */
	out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (out)
		*out_len = strlen(out);
	return out;
}

char *fcm_xmpp_message(const char *token, size_t token_len, const struct sender_xmpp *x, size_t *out_len)
{
	json_t *tok = json_stringn(token, token_len), *data, *root;
	const char *specific = x->channel[0] ? x->channel : x->account;
	char collapse[SENDER_XMPP_COLLAPSE + 1];
	char *out;

	if (tok == NULL)
		return NULL;
	memcpy(collapse, specific, SENDER_XMPP_COLLAPSE);
	collapse[SENDER_XMPP_COLLAPSE] = '\0';
	data = json_pack("{s:s}", "account", x->account);
	if (data != NULL && x->channel[0] && json_object_set_new(data, "channel", json_string(x->channel)) < 0) {
		json_decref(data);
		data = NULL;
	}
	if (data == NULL) {
		json_decref(tok);
		return NULL;
	}
	root = json_pack("{s:{s:o,s:o,s:{s:s,s:s}}}", "message", "token", tok, "data", data, "android", "priority",
			 x->high ? "HIGH" : "NORMAL", "collapse_key", collapse);
	if (root == NULL)
		return NULL; /* json_pack has released tok and data */
	out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (out)
		*out_len = strlen(out);
	return out;
}
