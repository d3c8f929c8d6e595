/*
 * bchat_request: validates a decrypted Bchat/Session request (v2/v3 JSON, v4 bencode) into one
 * action with its arguments, and builds the exact inner reply bytes (docs/protocol.md §6.3–§6.5).
 * Trusts nothing: the plaintext came from an anonymous client. Every string is length-checked,
 * NUL-checked and copied; a request is either returned whole or not at all.
 *
 * Order of checks (each failure stops, the first one decides the reply):
 *   1. plaintext shape (v2: a JSON object; v4: the bencoded list with an object meta) → Invalid request
 *   2. endpoint (one leading '/' stripped)                                     → Invalid endpoint
 *   3. body (v2: absent/null/"" = {}, a string must hold an object, or an object;
 *            v4: absent/empty element = {}, else an object)                     → Invalid request
 *   4. arguments, one field at a time in the order docs/protocol.md §2 lists them, each field
 *      deciding Missing (absent, null, "") before Invalid (wrong type, U+0000, length, format) —
 *      so a request with an invalid token and no pubKey answers Invalid parameter (token comes
 *      first).
 */
#include "bchat_request.h"
#include "bencode.h"
#include "json_scan.h"
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A "\u0000" inside a string must be answered Invalid parameter (docs/protocol.md §6.3), not fail
 * the whole document. Numbers are never read, so a huge integer in an unused field does not sink
 * the request (only one too large for a double does, as it always has). */
#define BCHAT_JSON_FLAGS JSCAN_ALLOW_NUL

static const struct bchat_config default_config = {1, "bd", BCHAT_MAX_GROUPS_DEFAULT};

static const struct {
	const char *name;
	enum bchat_action action;
} actions[] = {
	{"register", BCHAT_REGISTER},
	{"register_legacy_groups_only", BCHAT_REGISTER_LEGACY_GROUPS_ONLY},
	{"unregister", BCHAT_UNREGISTER},
	{"subscribe_closed_group", BCHAT_SUBSCRIBE_CLOSED_GROUP},
	{"unsubscribe_closed_group", BCHAT_UNSUBSCRIBE_CLOSED_GROUP},
	{"notify", BCHAT_NOTIFY},
};

const char *bchat_action_name(enum bchat_action a)
{
	for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
		if (actions[i].action == a)
			return actions[i].name;
	return "unknown";
}

static int is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int bchat_valid_id(const struct bchat_config *c, const char *s, size_t n)
{
	if (!c->validate_ids)
		return n >= 1 && n <= BCHAT_OPAQUE_ID_MAX;
	size_t pl = strnlen(c->id_prefix, sizeof c->id_prefix);
	if (n != pl + 64 || memcmp(s, c->id_prefix, pl) != 0)
		return 0;
	for (size_t i = pl; i < n; i++)
		if (!is_hex((unsigned char)s[i]))
			return 0;
	return 1;
}

int bchat_valid_token(const char *s, size_t n)
{
	if (n < 1 || n > BCHAT_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

enum bchat_device bchat_resolve_device(const char *device, size_t device_len, const char *token,
				       size_t token_len)
{
	static const struct {
		const char *name;
		enum bchat_device dev;
	} names[] = {{"ios", BCHAT_DEV_IOS}, {"android", BCHAT_DEV_ANDROID}, {"huawei", BCHAT_DEV_HUAWEI}};
	if (device != NULL)
		for (size_t i = 0; i < 3; i++)
			if (device_len == strlen(names[i].name) &&
			    memcmp(device, names[i].name, device_len) == 0)
				return names[i].dev;
	/* APNs tokens are hex of no promised length; FCM tokens are never pure hex
	 * (docs/protocol.md §2). */
	if (token_len < 64 || token_len > 200 || token_len % 2 != 0)
		return BCHAT_DEV_ANDROID;
	for (size_t i = 0; i < token_len; i++)
		if (!is_hex((unsigned char)token[i]))
			return BCHAT_DEV_ANDROID;
	return BCHAT_DEV_IOS;
}

/* A required string argument, unescaped into a malloc'd copy (*s, *n; NUL-terminated):
 * Missing when absent, null or ""; Invalid when not a string or holding U+0000. */
static enum bchat_error get_str(struct jval args, const char *key, char **s, size_t *n)
{
	struct jval v = jscan_get(args, key);
	*s = NULL;
	if (v.type == J_ABSENT || v.type == J_NULL)
		return BCHAT_MISSING_PARAMETER;
	if (v.type != J_STRING)
		return BCHAT_INVALID_PARAMETER;
	if (v.n == 2)
		return BCHAT_MISSING_PARAMETER;
	if ((*s = malloc(v.n)) == NULL)
		return BCHAT_SERVER_BUSY;
	*n = jscan_str(v, *s);
	(*s)[*n] = '\0';
	if (memchr(*s, '\0', *n) != NULL) {
		free(*s);
		*s = NULL;
		return BCHAT_INVALID_PARAMETER;
	}
	return BCHAT_OK;
}

/* Keeps a validated copy in *dst, or frees it and answers Invalid parameter. */
static enum bchat_error keep(int valid, char *s, size_t n, char **dst, size_t *dlen)
{
	if (!valid) {
		free(s);
		return BCHAT_INVALID_PARAMETER;
	}
	*dst = s;
	*dlen = n;
	return BCHAT_OK;
}

static enum bchat_error arg_id(const struct bchat_config *c, struct jval args, const char *key,
			       char **dst, size_t *dlen)
{
	char *s;
	size_t n;
	enum bchat_error e = get_str(args, key, &s, &n);
	if (e != BCHAT_OK)
		return e;
	return keep(bchat_valid_id(c, s, n), s, n, dst, dlen);
}

static enum bchat_error arg_token(struct jval args, struct bchat_request *r)
{
	char *s;
	size_t n;
	enum bchat_error e = get_str(args, "token", &s, &n);
	if (e != BCHAT_OK)
		return e;
	return keep(bchat_valid_token(s, n), s, n, &r->token, &r->token_len);
}

/* `device` is optional and only its three exact values mean anything: docs/protocol.md §2 sends
 * every other value — another string, "", a number, a string with U+0000 — to the token rule rather
 * than to an error, because the legacy error on unknown values was the bug. A string of more than
 * 64 raw bytes unescapes to more than 10, so cannot be one of the three. */
static void arg_device(struct jval args, struct bchat_request *r)
{
	struct jval v = jscan_get(args, "device");
	char d[64];
	size_t dn = 0;
	int have = v.type == J_STRING && v.n <= sizeof d;
	if (have)
		dn = jscan_str(v, d);
	r->device = bchat_resolve_device(have ? d : NULL, dn, r->token, r->token_len);
}

/* legacyGroupPublicKeys: absent/null = none; otherwise an array of at most max_groups ids. An
 * empty string inside the array is Invalid (not Missing): the field itself is present. */
static enum bchat_error arg_groups(const struct bchat_config *c, struct jval args,
				   struct bchat_request *r)
{
	struct jval v = jscan_get(args, "legacyGroupPublicKeys"), g;
	size_t n = 0, pos = 0;
	if (v.type == J_ABSENT || v.type == J_NULL)
		return BCHAT_OK;
	if (v.type != J_ARRAY)
		return BCHAT_INVALID_PARAMETER;
	while (jscan_next(v, &pos, &g))
		if (++n > c->max_groups || g.type != J_STRING)
			return BCHAT_INVALID_PARAMETER;
	if (n == 0)
		return BCHAT_OK;
	r->groups = calloc(n, sizeof *r->groups);
	r->group_lens = calloc(n, sizeof *r->group_lens);
	if (r->groups == NULL || r->group_lens == NULL)
		return BCHAT_SERVER_BUSY;
	for (pos = 0; jscan_next(v, &pos, &g);) {
		char *s = malloc(g.n);
		size_t sl;
		if (s == NULL)
			return BCHAT_SERVER_BUSY;
		sl = jscan_str(g, s);
		s[sl] = '\0';
		r->groups[r->ngroups] = s;
		r->group_lens[r->ngroups++] = sl;
		if (sl == 0 || memchr(s, '\0', sl) != NULL || !bchat_valid_id(c, s, sl))
			return BCHAT_INVALID_PARAMETER;
	}
	return BCHAT_OK;
}

static enum bchat_error parse_args(const struct bchat_config *c, enum bchat_action a,
				   struct jval args, struct bchat_request *r)
{
	enum bchat_error e = BCHAT_OK;

	r->action = a;
	switch (a) {
	case BCHAT_REGISTER:
	case BCHAT_REGISTER_LEGACY_GROUPS_ONLY:
		if ((e = arg_token(args, r)) != BCHAT_OK ||
		    (e = arg_id(c, args, "pubKey", &r->pubkey, &r->pubkey_len)) != BCHAT_OK)
			return e;
		arg_device(args, r);
		if (a == BCHAT_REGISTER_LEGACY_GROUPS_ONLY)
			e = arg_groups(c, args, r);
		return e;
	case BCHAT_UNREGISTER:
		return arg_token(args, r);
	case BCHAT_SUBSCRIBE_CLOSED_GROUP:
	case BCHAT_UNSUBSCRIBE_CLOSED_GROUP:
		if ((e = arg_id(c, args, "closedGroupPublicKey", &r->group, &r->group_len)) != BCHAT_OK)
			return e;
		return arg_id(c, args, "pubKey", &r->pubkey, &r->pubkey_len);
	case BCHAT_NOTIFY:
		/* send_to is an id or a closed-group key; both have the id shape (docs/protocol.md
		 * §6.3). */
		if ((e = arg_id(c, args, "send_to", &r->send_to, &r->send_to_len)) != BCHAT_OK)
			return e;
		return get_str(args, "data", &r->data, &r->data_len);
	}
	return BCHAT_INVALID_ENDPOINT;
}

/* Finds the action an endpoint string names, after stripping one leading '/'
 * (docs/protocol.md §6.3). */
static int find_action(struct jval v, enum bchat_action *a)
{
	char buf[256], *s = buf;
	size_t n;
	if (v.type != J_STRING || v.n > sizeof buf)
		return -1; /* over 256 raw bytes unescape to over 42: no action name is that long */
	n = jscan_str(v, buf);
	if (n > 0 && s[0] == '/') {
		s++;
		n--;
	}
	for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
		if (n == strlen(actions[i].name) && memcmp(s, actions[i].name, n) == 0) {
			*a = actions[i].action;
			return 0;
		}
	}
	return -1;
}

static enum bchat_error finish(const struct bchat_config *c, enum bchat_action a, struct jval args,
			       struct bchat_request *out)
{
	enum bchat_error e = parse_args(c != NULL ? c : &default_config, a, args, out);
	if (e != BCHAT_OK)
		bchat_request_free(out);
	return e;
}

enum bchat_error bchat_parse_v2(const struct bchat_config *c, const unsigned char *pt, size_t len,
				struct bchat_request *out)
{
	struct jval root, body, args = {J_ABSENT, NULL, 0};
	enum bchat_action a;
	enum bchat_error e;
	char *inner = NULL;

	memset(out, 0, sizeof *out);
	if (pt == NULL || jscan_object((const char *)pt, len, BCHAT_JSON_FLAGS, &root) < 0)
		return BCHAT_INVALID_REQUEST;
	if (find_action(jscan_get(root, "endpoint"), &a) < 0)
		return BCHAT_INVALID_ENDPOINT;
	body = jscan_get(root, "body");
	if (body.type == J_OBJECT) {
		args = body;
	} else if (body.type == J_STRING && body.n > 2) {
		/* The body as a string holds the arguments as a JSON document of its own. */
		size_t il;
		if ((inner = malloc(body.n)) == NULL)
			return BCHAT_SERVER_BUSY;
		il = jscan_str(body, inner);
		if (jscan_object(inner, il, BCHAT_JSON_FLAGS, &args) < 0) {
			free(inner);
			return BCHAT_INVALID_REQUEST;
		}
	} else if (body.type != J_ABSENT && body.type != J_NULL && body.type != J_STRING) {
		return BCHAT_INVALID_REQUEST;
	}
	e = finish(c, a, args, out);
	free(inner);
	return e;
}

enum bchat_error bchat_parse_v4(const struct bchat_config *c, const unsigned char *pt, size_t len,
				struct bchat_request *out)
{
	struct bencode_list l;
	struct jval meta, args = {J_ABSENT, NULL, 0};
	enum bchat_action a;

	memset(out, 0, sizeof *out);
	if (bencode_parse_list(pt, len, &l) < 0 ||
	    jscan_object((const char *)l.ptr[0], l.len[0], BCHAT_JSON_FLAGS, &meta) < 0)
		return BCHAT_INVALID_REQUEST;
	/* Arguments come only from the body; meta supplies the endpoint and nothing else. */
	if (find_action(jscan_get(meta, "endpoint"), &a) < 0)
		return BCHAT_INVALID_ENDPOINT;
	if (l.n >= 2 && l.len[1] != 0 &&
	    jscan_object((const char *)l.ptr[1], l.len[1], BCHAT_JSON_FLAGS, &args) < 0)
		return BCHAT_INVALID_REQUEST;
	return finish(c, a, args, out);
}

void bchat_request_free(struct bchat_request *r)
{
	if (r == NULL)
		return;
	free(r->token);
	free(r->pubkey);
	free(r->group);
	free(r->send_to);
	free(r->data);
	if (r->groups != NULL)
		for (size_t i = 0; i < r->ngroups; i++)
			free(r->groups[i]);
	free(r->groups);
	free(r->group_lens);
	memset(r, 0, sizeof *r);
}

const char *bchat_error_str(enum bchat_error e)
{
	switch (e) {
	case BCHAT_OK:
		return "Success";
	case BCHAT_MISSING_PARAMETER:
		return "Missing parameter";
	case BCHAT_INVALID_PARAMETER:
		return "Invalid parameter";
	case BCHAT_INVALID_ENDPOINT:
		return "Invalid endpoint";
	case BCHAT_INVALID_REQUEST:
		return "Invalid request";
	case BCHAT_SERVER_BUSY:
		return "Server busy";
	case BCHAT_NOT_REGISTERED:
		return "id was not registered before.";
	case BCHAT_GROUP_NOT_FOUND:
		return "Cannot find the closed group id on PN server.";
	}
	return "Invalid request";
}

/* docs/protocol.md §6.5: the inner status, code and message of an outcome; *msg is malloc'd and
 * already JSON-escaped (the product name comes from configuration and may need it). */
static int reply_parts(enum bchat_error e, const char *product, int *status, int *code, char **msg)
{
	char raw[256];
	const char *m;
	*status = 400;
	*code = 0;
	switch (e) {
	case BCHAT_OK:
		*status = 200;
		*code = 1;
		m = "Success";
		break;
	case BCHAT_NOT_REGISTERED:
		*status = 200;
		snprintf(raw, sizeof raw, "%s id was not registered before.",
			 product != NULL ? product : "Bchat");
		m = raw;
		break;
	case BCHAT_GROUP_NOT_FOUND:
		*status = 200;
		m = "Cannot find the closed group id on PN server.";
		break;
	default:
		m = bchat_error_str(e);
		break;
	}
	size_t n = strlen(m);
	char *out = malloc(n * 6 + 1), *p = out;
	if (out == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)m[i];
		if (ch == '"' || ch == '\\') {
			*p++ = '\\';
			*p++ = (char)ch;
		} else if (ch < 0x20) {
			p += sprintf(p, "\\u%04x", ch);
		} else {
			*p++ = (char)ch;
		}
	}
	*p = '\0';
	*msg = out;
	return 0;
}

/* asprintf with the length; NULL on failure. */
static unsigned char *format_alloc(size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static unsigned char *format_alloc(size_t *len, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return (unsigned char *)s;
}

unsigned char *bchat_reply_v2(enum bchat_error e, const char *product, size_t *len)
{
	int status, code;
	char *msg;
	unsigned char *out;
	if (reply_parts(e, product, &status, &code, &msg) < 0)
		return NULL;
	out = format_alloc(len, "{\"status\": %d, \"body\": {\"code\": %d, \"message\": \"%s\"}}",
			   status, code, msg);
	free(msg);
	return out;
}

unsigned char *bchat_reply_v4(enum bchat_error e, const char *product, size_t *len)
{
	int status, code;
	char *msg;
	size_t mlen = 0, blen = 0;
	unsigned char *meta, *body, *out = NULL;
	if (reply_parts(e, product, &status, &code, &msg) < 0)
		return NULL;
	meta = format_alloc(&mlen, "{\"code\": %d, \"headers\": {\"content-type\": \"application/json\"}}",
			    status);
	body = format_alloc(&blen, "{\"code\": %d, \"message\": \"%s\"}", code, msg);
	if (meta != NULL && body != NULL)
		out = bencode_write_pair(meta, mlen, body, blen, len);
	free(meta);
	free(body);
	free(msg);
	return out;
}

char *bchat_v2_http_body(const unsigned char *sealed, size_t len, size_t *out_len)
{
	static const char head[] = "{\"result\":\"", tail[] = "\"}\n";
	uint64_t b64 = 4 * (((uint64_t)len + 2) / 3);
	uint64_t total = sizeof head - 1 + b64 + sizeof tail - 1 + 1;
	char *out;
	if (len > SIZE_MAX / 2 || total > SIZE_MAX)
		return NULL;
	out = malloc((size_t)total);
	if (out == NULL)
		return NULL;
	memcpy(out, head, sizeof head - 1);
	sodium_bin2base64(out + sizeof head - 1, (size_t)b64 + 1, sealed, len,
			  sodium_base64_VARIANT_ORIGINAL);
	memcpy(out + sizeof head - 1 + b64, tail, sizeof tail);
	*out_len = (size_t)total - 1;
	return out;
}
