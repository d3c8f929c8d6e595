/*
 * payload: the APNs request body for a Bchat notification (docs/protocol.md §6.6) and its
 * reduced form when too large (docs/protocol.md §6.6), the p2-style body for XMPP ad-hoc
 * registrations (docs/senders.md, "Job kinds"), and the request path. Trusts nothing in data or the
 * token: jansson escapes the one, percent-encoding guards the other. Holds nothing.
 */
#include "apns.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dump(const char *title, const char *text, const char *data, size_t data_len, int with_data)
{
	json_t *root, *aps;
	char *out = NULL;

	aps = json_pack("{s:{s:s,s:s},s:i,s:s,s:i,s:s}", "alert", "title", title, "body", text, "badge", 1, "sound",
			"default", "mutable-content", 1, "category", "SECRET");
	if (aps == NULL)
		return NULL;
	root = json_object();
	if (root == NULL || json_object_set_new(root, "aps", aps) < 0) {
		json_decref(root);
		return NULL;
	}
	if (with_data) {
		/* json_stringn refuses bytes that are not UTF-8: the caller falls back. */
		json_t *d = json_stringn(data, data_len);
		if (d == NULL || json_object_set_new(root, "ENCRYPTED_DATA", d) < 0) {
			json_decref(root);
			return NULL;
		}
	}
	if (json_object_set_new(root, "remote", json_integer(1)) == 0)
		out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	return out;
}

/*
 * The common case without jansson: data that is printable ASCII other than '"' and '\\' (base64,
 * as clients send) is written by jansson as it is, so the body is the one jansson makes with an
 * empty ENCRYPTED_DATA, cut there, with data in between: the same bytes, built once per title and
 * text. NULL when data needs escaping (or memory ran out): the caller lets jansson do it.
 */
static char *plain(const char *title, const char *text, const char *data, size_t data_len, size_t *out_len)
{
	static const char key[] = "\"ENCRYPTED_DATA\":\"";
	static char *tmpl, *tmpl_title, *tmpl_text, *cut;
	static size_t pre, suf;
	char *out, *p;

	for (size_t i = 0; i < data_len; i++)
		if (data[i] < 0x20 || data[i] > 0x7e || data[i] == '"' || data[i] == '\\')
			return NULL;
	if (tmpl == NULL || strcmp(tmpl_title, title) != 0 || strcmp(tmpl_text, text) != 0) {
		free(tmpl);
		free(tmpl_title);
		free(tmpl_text);
		tmpl = dump(title, text, "", 0, 1);
		tmpl_title = strdup(title);
		tmpl_text = strdup(text);
		if (tmpl == NULL || tmpl_title == NULL || tmpl_text == NULL) {
			free(tmpl);
			free(tmpl_title);
			free(tmpl_text);
			tmpl = tmpl_title = tmpl_text = NULL;
			return NULL;
		}
		/* The key's last appearance is the member itself (a title holding it is escaped). */
		for (cut = NULL, p = tmpl; (p = strstr(p, key)) != NULL; p++)
			cut = p + sizeof key - 1;
		pre = cut ? (size_t)(cut - tmpl) : 0;
		suf = cut ? strlen(cut) : 0;
	}
	if (cut == NULL)
		return NULL;
	if ((out = malloc(pre + data_len + suf + 1)) == NULL)
		return NULL;
	memcpy(out, tmpl, pre);
	memcpy(out + pre, data, data_len);
	memcpy(out + pre + data_len, cut, suf + 1);
	*out_len = pre + data_len + suf;
	return out;
}

char *apns_payload(const char *title, const char *text, const char *data, size_t data_len, size_t *out_len,
		   int *reduced)
{
	char *out = plain(title, text, data, data_len, out_len);

	*reduced = 0;
	if (out != NULL) {
		if (*out_len <= APNS_PAYLOAD_MAX)
			return out;
		free(out);
		out = NULL;
	} else {
		out = dump(title, text, data, data_len, 1);
	}
	if (out != NULL && strlen(out) <= APNS_PAYLOAD_MAX) {
		*out_len = strlen(out);
		return out;
	}
	free(out);
	*reduced = 1;
	if ((out = dump(title, text, NULL, 0, 0)) != NULL)
		*out_len = strlen(out);
	return out;
}

char *apns_xmpp_payload(int high, size_t *out_len)
{
	const char *body = high ? "{\"aps\":{\"alert\":{\"title\":\"New message\"},\"sound\":\"default\"}}"
				: "{\"aps\":{\"content-available\":1}}";
	char *out = strdup(body);

	if (out)
		*out_len = strlen(out);
	return out;
}

int apns_url(char *out, size_t outlen, const char *base, const char *token, size_t token_len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t bl = strlen(base), o;
	int n;

	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	n = snprintf(out, outlen, "%.*s/3/device/", (int)bl, base);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	o = (size_t)n;
	for (size_t i = 0; i < token_len; i++) {
		unsigned char c = (unsigned char)token[i];
		int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
			    c == '_' || c == '~' || c == '-';
		if (o + (plain ? 1 : 3) >= outlen)
			return -1;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return 0;
}
