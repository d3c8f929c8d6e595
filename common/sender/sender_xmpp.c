/*
 * sender_xmpp: reads the data of a KIND_XMPP PUSH (sender_xmpp.h). Trusts nothing in it: both
 * ids must be exactly 40 lowercase hex characters before a payload is built from them.
 */
#include "sender_xmpp.h"
#include <jansson.h>
#include <string.h>

static int hex_id(json_t *v, char *out)
{
	const char *s;

	if (!json_is_string(v) || json_string_length(v) != SENDER_XMPP_ID_LEN)
		return -1;
	s = json_string_value(v);
	for (size_t i = 0; i < SENDER_XMPP_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
	memcpy(out, s, SENDER_XMPP_ID_LEN + 1);
	return 0;
}

int sender_xmpp_parse(const char *data, size_t len, struct sender_xmpp *x)
{
	json_t *root = json_loadb(data, len, 0, NULL), *c, *h;
	int rc = -1;

	memset(x, 0, sizeof *x);
	if (!json_is_object(root) || hex_id(json_object_get(root, "account"), x->account) < 0)
		goto out;
	c = json_object_get(root, "channel");
	if (c != NULL && !json_is_null(c) && hex_id(c, x->channel) < 0)
		goto out;
	h = json_object_get(root, "high");
	if (h != NULL && !json_is_boolean(h))
		goto out;
	x->high = json_is_true(h);
	rc = 0;
out:
	json_decref(root);
	return rc;
}
