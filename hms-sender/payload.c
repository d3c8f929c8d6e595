/*
 * payload: the Push Kit message for a Bchat notification — the FCM payload (docs/senders.md):
 * a data message whose data is the same {"ENCRYPTED_DATA":"<notify data>"} map, here as a JSON
 * string, with Android urgency HIGH and the one token in the token list; and the reduced map
 * {"ENCRYPTED_DATA_TOO_LARGE":"1"} when the message without its token list would pass 4096
 * bytes. Trusts nothing in the token or data: jansson escapes both. Holds nothing.
 */
#include "hms.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The message object without its token list, or NULL. */
static json_t *message(const char *data, size_t data_len, int reduced)
{
	json_t *map = reduced ? json_pack("{s:s}", "ENCRYPTED_DATA_TOO_LARGE", "1")
			      : json_pack("{s:o}", "ENCRYPTED_DATA", json_stringn(data, data_len));
	char *s;
	json_t *m;

	if (map == NULL)
		return NULL;
	s = json_dumps(map, JSON_COMPACT);
	json_decref(map);
	if (s == NULL)
		return NULL;
	m = json_pack("{s:s,s:{s:s}}", "data", s, "android", "urgency", "HIGH");
	free(s);
	return m;
}

/* The size of the message without its token list. */
static size_t size_without_tokens(json_t *m)
{
	char *s = json_dumps(m, JSON_COMPACT);
	size_t n = s ? strlen(s) : (size_t)-1;
	free(s);
	return n;
}

char *hms_message(const char *token, size_t token_len, const char *data, size_t data_len, size_t *out_len,
		  int *reduced)
{
	json_t *tok = json_stringn(token, token_len), *m = NULL, *root;
	char *out;

	*reduced = 0;
	if (tok == NULL)
		return NULL;
	m = message(data, data_len, 0);
	if (m == NULL || size_without_tokens(m) > HMS_MESSAGE_MAX) {
		/* Too large, or not UTF-8 (cannot travel as a JSON string). */
		json_decref(m);
		*reduced = 1;
		m = message(data, data_len, 1);
	}
	if (m == NULL) {
		json_decref(tok);
		return NULL;
	}
	if (json_object_set_new(m, "token", json_pack("[o]", tok)) < 0) { /* "o" took tok */
		json_decref(m);
		return NULL;
	}
	root = json_pack("{s:b,s:o}", "validate_only", 0, "message", m);
	if (root == NULL)
		return NULL;
	out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (out)
		*out_len = strlen(out);
	return out;
}
