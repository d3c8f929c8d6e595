/*
 * payload: the FCM HTTP v1 message for a Bchat notification (bchat-onion.md §9.3): a data
 * message only, never a notification block, and the reduced data map of §9.4 when the data
 * is too large. Trusts nothing in the token or data: jansson escapes both. Holds nothing.
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
