/*
 * uwpx_msg: UWPX message framing, parsing, validation and replies (see uwpx_msg.h).
 * Validation follows the error table of docs/uwpx.md row by row: every "wrong JSON type" check
 * (row 2) runs over the whole message before the action is looked at (rows 3–4), and every
 * content check (row 5) after it; the channel URI (row 7) is checked last, as only
 * set_channel_uri has one. Trusts nothing in the message; holds nothing.
 */
#include "uwpx_msg.h"
#include "hex.h"
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

long uwpx_frame_end(const uint8_t *buf, size_t len, size_t max)
{
	size_t scan = len < max + 1 ? len : max + 1;
	const uint8_t *nul = len > 0 ? memchr(buf, 0, scan) : NULL; /* buf may be NULL when empty */

	if (nul != NULL)
		return (long)(nul - buf);
	return len > max ? -2 : -1;
}

/* Present with the wrong JSON type (a null counts as a wrong type, not as absent). */
static int wrong_type(json_t *o, const char *key, int (*ok)(const json_t *))
{
	json_t *v = json_object_get(o, key);
	return v != NULL && !ok(v);
}

static int is_string(const json_t *v)
{
	return json_is_string(v);
}

static int is_integer(const json_t *v)
{
	return json_is_integer(v);
}

static int is_array(const json_t *v)
{
	return json_is_array(v);
}

/* Row 2 over the whole object. */
static int types_ok(json_t *root)
{
	json_t *action = json_object_get(root, "action"), *accounts, *e;
	size_t i;

	if (!json_is_string(action) || json_string_length(action) == 0)
		return 0;
	if (wrong_type(root, "version", is_integer) || wrong_type(root, "device_id", is_string) ||
	    wrong_type(root, "channel_uri", is_string) || wrong_type(root, "accounts", is_array))
		return 0;
	accounts = json_object_get(root, "accounts");
	json_array_foreach(accounts, i, e) if (!json_is_object(e) || wrong_type(e, "account_id", is_string) ||
					       wrong_type(e, "bare_jid", is_string) || wrong_type(e, "bareJid", is_string)) return 0;
	return 1;
}

/* A 64-hex id from a string value (absent, empty or malformed: 0). */
static int hex_id(json_t *v, char *out, int lower)
{
	const char *s = json_string_value(v);
	if (s == NULL || json_string_length(v) != UWPX_ID_LEN)
		return 0;
	for (size_t i = 0; i < UWPX_ID_LEN; i++) {
		if (hex_value((unsigned char)s[i]) < 0)
			return 0;
		out[i] = lower && s[i] >= 'A' && s[i] <= 'F' ? (char)(s[i] - 'A' + 'a') : s[i];
	}
	out[UWPX_ID_LEN] = '\0';
	return 1;
}

static enum uwpx_result accounts_of(const struct uwpx_limits *lim, json_t *arr, struct uwpx_request *req)
{
	json_t *e;
	size_t i;

	if (arr == NULL)
		return UWPX_E_INVALID;
	req->naccounts = 0;
	json_array_foreach(arr, i, e) {
		char id[UWPX_ID_LEN + 1];
		size_t k;
		if (!hex_id(json_object_get(e, "account_id"), id, 0))
			return UWPX_E_INVALID;
		/* Duplicates (in any letter case) collapse to the first spelling. */
		for (k = 0; k < req->naccounts; k++)
			if (strcasecmp(req->accounts[k], id) == 0)
				break;
		if (k < req->naccounts)
			continue;
		if (req->naccounts >= lim->max_accounts || req->naccounts >= UWPX_ACCOUNTS_CAP)
			return UWPX_E_INVALID;
		memcpy(req->accounts[req->naccounts++], id, sizeof id);
	}
	return UWPX_OK;
}

void uwpx_account_id(const char *device_id, const char *jid, size_t jid_len, char *out)
{
	static const char hx[] = "0123456789abcdef";
	crypto_hash_sha256_state st;
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)device_id, UWPX_ID_LEN);
	crypto_hash_sha256_update(&st, (const unsigned char *)jid, jid_len);
	crypto_hash_sha256_final(&st, h);
	for (size_t i = 0; i < sizeof h; i++) {
		out[2 * i] = hx[h[i] >> 4];
		out[2 * i + 1] = hx[h[i] & 15];
	}
	out[UWPX_ID_LEN] = '\0';
}

/* A bare JID as a client sends it: 1..UWPX_JID_MAX bytes, no resource ('/'), no space or control
 * character. Nothing else is normalised: the account id hashes the bytes as given. */
static int jid_ok(const char *s, size_t n)
{
	if (n == 0 || n > UWPX_JID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch == 0x7f || ch == '/')
			return 0;
	}
	return 1;
}

/* Version-1 set_accounts: [{"bare_jid": …}] or [{"bareJid": …}] (either, per account). */
static enum uwpx_result jid_accounts_of(const struct uwpx_limits *lim, json_t *arr, struct uwpx_request *req)
{
	json_t *e;
	size_t i, used = 0;

	if (arr == NULL)
		return UWPX_E_INVALID;
	req->naccounts = 0;
	req->v1_accounts = 1;
	json_array_foreach(arr, i, e) {
		json_t *snake = json_object_get(e, "bare_jid"), *camel = json_object_get(e, "bareJid"), *v;
		char id[UWPX_ID_LEN + 1];
		const char *jid;
		size_t n, k;

		/* Both spellings in one account would be ambiguous; neither is a missing field. */
		if ((snake != NULL) == (camel != NULL))
			return UWPX_E_INVALID;
		v = snake ? snake : camel;
		jid = json_string_value(v);
		n = json_string_length(v);
		if (!jid_ok(jid, n))
			return UWPX_E_INVALID;
		if (i == 0)
			req->push_camel = camel != NULL;
		uwpx_account_id(req->device_id, jid, n, id);
		for (k = 0; k < req->naccounts; k++)
			if (strcmp(req->accounts[k], id) == 0)
				break;
		if (k < req->naccounts)
			continue; /* the same JID again: the first one stands */
		if (req->naccounts >= lim->max_accounts || req->naccounts >= UWPX_ACCOUNTS_CAP || used + n > UWPX_JIDS_MAX)
			return UWPX_E_INVALID;
		memcpy(req->accounts[req->naccounts], id, sizeof id);
		memcpy(req->jids + used, jid, n);
		req->jid_off[req->naccounts] = (uint16_t)used;
		req->jid_len[req->naccounts] = (uint16_t)n;
		req->camel[req->naccounts] = camel != NULL;
		req->naccounts++;
		used += n;
	}
	return UWPX_OK;
}

static enum uwpx_result check(const struct uwpx_limits *lim, json_t *root, struct uwpx_request *req)
{
	const char *action;
	json_t *v;

	if (!json_is_object(root) || !types_ok(root))
		return UWPX_E_MALFORMED;
	action = json_string_value(json_object_get(root, "action"));
	if (strcmp(action, "response") == 0)
		return UWPX_E_UNSUPPORTED;
	if (strcmp(action, "set_channel_uri") == 0)
		req->action = UWPX_SET_CHANNEL_URI;
	else if (strcmp(action, "set_push_accounts") == 0)
		req->action = UWPX_SET_PUSH_ACCOUNTS;
	else if (strcmp(action, "request_test_push") == 0)
		req->action = UWPX_REQUEST_TEST_PUSH;
	else if (strcmp(action, "set_accounts") == 0 && json_integer_value(json_object_get(root, "version")) == 1 &&
		 json_is_integer(json_object_get(root, "version")))
		req->action = UWPX_SET_PUSH_ACCOUNTS, req->v1_accounts = 1; /* only the version-1 form */
	else
		return UWPX_E_MALFORMED;

	v = json_object_get(root, "version");
	if (v == NULL || json_integer_value(v) < 1 || json_integer_value(v) > 2)
		return UWPX_E_INVALID;
	req->version = (int)json_integer_value(v);
	/* Version 1 is answered with version 1 where that version had the action. */
	req->reply_version = req->version == 1 && (req->v1_accounts || req->action == UWPX_SET_CHANNEL_URI) ? 1 : 2;
	if (!hex_id(json_object_get(root, "device_id"), req->device_id, 1))
		return UWPX_E_INVALID;
	switch (req->action) {
	case UWPX_SET_CHANNEL_URI:
		v = json_object_get(root, "channel_uri");
		if (v == NULL || json_string_length(v) == 0)
			return UWPX_E_INVALID;
		if (!uwpx_uri_valid(&lim->uri, json_string_value(v), json_string_length(v)))
			return UWPX_E_CHANNEL_URI;
		req->channel_uri_len = json_string_length(v);
		memcpy(req->channel_uri, json_string_value(v), req->channel_uri_len);
		req->channel_uri[req->channel_uri_len] = '\0';
		return UWPX_OK;
	case UWPX_SET_PUSH_ACCOUNTS:
		if (req->v1_accounts)
			return jid_accounts_of(lim, json_object_get(root, "accounts"), req);
		return accounts_of(lim, json_object_get(root, "accounts"), req);
	case UWPX_REQUEST_TEST_PUSH:
		return UWPX_OK;
	}
	return UWPX_E_MALFORMED;
}

enum uwpx_result uwpx_parse(const struct uwpx_limits *lim, const uint8_t *msg, size_t len, struct uwpx_request *req)
{
	json_t *root;
	enum uwpx_result r;

	if (len >= 3 && memcmp(msg, "\xef\xbb\xbf", 3) == 0)
		msg += 3, len -= 3;
	if (len == 0)
		return UWPX_EMPTY;
	memset(req, 0, sizeof *req);
	/* Duplicate keys make a message ambiguous (which device_id?): refused as malformed.
	 * jansson checks UTF-8 and refuses \u0000 inside strings. */
	root = json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES, NULL);
	if (root == NULL)
		return UWPX_E_MALFORMED;
	r = check(lim, root, req);
	json_decref(root);
	return r;
}

const char *uwpx_error_string(enum uwpx_result r)
{
	switch (r) {
	case UWPX_E_MALFORMED:
		return "Malformed JSON.";
	case UWPX_E_UNSUPPORTED:
		return "Unsupported message type.";
	case UWPX_E_INVALID:
		return "Invalid JSON message.";
	case UWPX_E_DEVICE_UNKNOWN:
		return "Device id unknown.";
	case UWPX_E_CHANNEL_URI:
		return "Invalid channel URI. Has to use the domain 'notify.windows.com'.";
	case UWPX_E_TEST_PUSH:
		return "Failed to send test push. Something went wrong...";
	case UWPX_E_INTERNAL:
		return "Internal server error... Failed to process received JSON message.";
	case UWPX_OK:
	case UWPX_EMPTY:
		break;
	}
	return NULL;
}

const char *uwpx_action_name(enum uwpx_action a)
{
	switch (a) {
	case UWPX_SET_CHANNEL_URI:
		return "set_channel_uri";
	case UWPX_SET_PUSH_ACCOUNTS:
		return "set_push_accounts";
	case UWPX_REQUEST_TEST_PUSH:
		return "request_test_push";
	}
	return "unknown";
}

/* Compact, keys sorted (jansson sorts with strcmp: byte-wise), then the NUL. Takes root. */
static char *finish(json_t *root, size_t *len)
{
	char *out = NULL;
	size_t n;

	if (root == NULL)
		return NULL;
	n = json_dumpb(root, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
	if (n > 0 && (out = malloc(n + 1)) != NULL) {
		if (json_dumpb(root, out, n, JSON_COMPACT | JSON_SORT_KEYS) != n) {
			free(out);
			out = NULL;
		} else {
			out[n] = '\0';
			*len = n + 1;
		}
	}
	json_decref(root);
	return out;
}

/* {"action":"response","status":S,"version":V} plus the error when there is one. */
static json_t *base(int status, const char *error, int version)
{
	json_t *o = json_object();
	if (o == NULL || json_object_set_new(o, "action", json_string("response")) < 0 ||
	    json_object_set_new(o, "status", json_integer(status)) < 0 ||
	    json_object_set_new(o, "version", json_integer(version)) < 0 ||
	    (error != NULL && json_object_set_new(o, "error", json_string(error)) < 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *uwpx_reply(enum uwpx_result r, size_t *len)
{
	const char *err = uwpx_error_string(r);
	return finish(base(err == NULL ? 1 : 0, err, 2), len);
}

char *uwpx_reply_to(const struct uwpx_request *req, enum uwpx_result r, size_t *len)
{
	const char *err = uwpx_error_string(r);
	return finish(base(err == NULL ? 1 : 0, err, req->reply_version == 1 ? 1 : 2), len);
}

char *uwpx_reply_accounts(const struct uwpx_request *req, const struct uwpx_node *nodes, const char *push_bare_jid,
			  size_t *len)
{
	json_t *root = base(1, NULL, req->v1_accounts ? 1 : 2), *arr = json_array(), *jid = json_string(push_bare_jid);

	if (root == NULL || arr == NULL || jid == NULL)
		goto fail;
	for (size_t i = 0; i < req->naccounts; i++) {
		json_t *a = json_object(), *node = json_string(nodes[i].node), *secret = json_string(nodes[i].secret);
		int bad;
		if (a == NULL || node == NULL || secret == NULL) {
			json_decref(a);
			json_decref(node);
			json_decref(secret);
			goto fail;
		}
		/* The *_new setters take the reference even when they fail. */
		bad = json_object_set_new(a, "node", node) < 0;
		bad |= json_object_set_new(a, "secret", secret) < 0;
		if (req->v1_accounts) {
			bad |= json_object_set_new(a, req->camel[i] ? "bareJid" : "bare_jid",
						   json_stringn(req->jids + req->jid_off[i], req->jid_len[i])) < 0;
		} else {
			bad |= json_object_set_new(a, "account_id", json_string(req->accounts[i])) < 0;
			bad |= json_object_set_new(a, "success", json_boolean(nodes[i].ok)) < 0;
		}
		if (json_array_append_new(arr, a) < 0 || bad)
			goto fail;
	}
	{
		int bad = json_object_set_new(root, "accounts", arr) < 0;
		bad |= json_object_set_new(root, req->v1_accounts && req->push_camel ? "push_bareJid" : "push_bare_jid",
					   jid) < 0;
		arr = jid = NULL;
		if (bad)
			goto fail;
	}
	return finish(root, len);
fail:
	json_decref(root);
	json_decref(arr);
	json_decref(jid);
	return NULL;
}
