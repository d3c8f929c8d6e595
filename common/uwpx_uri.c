/*
 * uwpx_uri: channel URI validation, written out rule by rule from docs/uwpx.md, "Channel URIs":
 *   1. 1..2048 bytes of printable ASCII;
 *   2. scheme https (case-insensitive), no userinfo, no port, no fragment;
 *   3. host = one DNS label + a configured suffix (case-insensitive);
 *   4. path exactly one of the configured paths;
 *   5. query exactly token=<[A-Za-z0-9_%]+>.
 * The loopback switch adds http/https to 127.0.0.1, [::1] or localhost with an optional port,
 * under the same path and query rules.
 */
#include "uwpx_uri.h"
#include "config.h"
#include <string.h>
#include <strings.h>

static int has_prefix_ci(const char *s, size_t len, const char *p)
{
	size_t n = strlen(p);
	return len >= n && strncasecmp(s, p, n) == 0;
}

static int is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* One DNS label: 1..63 of [A-Za-z0-9-], not starting or ending with '-'. */
static int is_label(const char *s, size_t n)
{
	if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return 0;
	return 1;
}

/* host = label "." suffix, the suffix compared case-insensitively (a leading dot optional). */
static int wns_host(const struct uwpx_uri_rules *r, const char *h, size_t n)
{
	for (size_t i = 0; i < r->nsuffixes; i++) {
		const char *sfx = r->suffixes[i];
		size_t sl;
		if (sfx[0] == '.')
			sfx++;
		sl = strlen(sfx);
		if (sl == 0 || n < sl + 2 || h[n - sl - 1] != '.' || strncasecmp(h + n - sl, sfx, sl) != 0)
			continue;
		if (is_label(h, n - sl - 1))
			return 1;
	}
	return 0;
}

/* ":digits" with a value 1..65535, or nothing. */
static int opt_port(const char *s, size_t n)
{
	unsigned long v = 0;
	if (n == 0)
		return 1;
	if (s[0] != ':' || n < 2 || n > 6)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

static int loopback_authority(const char *a, size_t n)
{
	static const char *const hosts[] = {"127.0.0.1", "[::1]", "localhost"};
	for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
		size_t hl = strlen(hosts[i]);
		if (n >= hl && strncasecmp(a, hosts[i], hl) == 0 && opt_port(a + hl, n - hl))
			return 1;
	}
	return 0;
}

static int query_ok(const char *q, size_t n)
{
	if (n < 7 || memcmp(q, "token=", 6) != 0)
		return 0;
	for (size_t i = 6; i < n; i++)
		if (!is_alnum(q[i]) && q[i] != '_' && q[i] != '%')
			return 0;
	return 1;
}

int uwpx_uri_valid(const struct uwpx_uri_rules *r, const char *uri, size_t len)
{
	const char *p, *end = uri + len, *auth, *path, *query;
	size_t alen;
	int loopback_scheme = 0;

	if (uri == NULL || len == 0 || len > UWPX_URI_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)uri[i] < 0x21 || (unsigned char)uri[i] > 0x7e || uri[i] == '#')
			return 0; /* not printable ASCII, or a fragment */
	if (has_prefix_ci(uri, len, "https://"))
		p = uri + 8;
	else if (r->allow_loopback && has_prefix_ci(uri, len, "http://"))
		p = uri + 7, loopback_scheme = 1;
	else
		return 0;
	auth = p;
	while (p < end && *p != '/' && *p != '?')
		p++;
	alen = (size_t)(p - auth);
	if (memchr(auth, '@', alen) != NULL)
		return 0; /* userinfo */
	if (r->allow_loopback && loopback_authority(auth, alen)) {
		/* accepted with either scheme */
	} else if (loopback_scheme || memchr(auth, ':', alen) != NULL || !wns_host(r, auth, alen)) {
		return 0; /* plain http, an explicit port, or a host outside the allowlist */
	}
	path = p;
	while (p < end && *p != '?')
		p++;
	query = p;
	{
		size_t pl = (size_t)(query - path);
		int ok = 0;
		for (size_t i = 0; i < r->npaths && !ok; i++)
			ok = strlen(r->paths[i]) == pl && memcmp(r->paths[i], path, pl) == 0;
		if (!ok)
			return 0;
	}
	if (query == end)
		return 0; /* no query, so no token */
	return query_ok(query + 1, (size_t)(end - query - 1));
}

size_t uwpx_uri_host(const char *uri, size_t len, const char **host)
{
	const char *p = memchr(uri, ':', len), *end = uri + len, *h;
	if (p == NULL || end - p < 3 || p[1] != '/' || p[2] != '/') {
		*host = uri;
		return 0;
	}
	h = p + 3;
	for (p = h; p < end && *p != '/' && *p != '?'; p++)
		;
	*host = h;
	return (size_t)(p - h);
}

void uwpx_uri_rules_from_config(struct uwpx_uri_rules *r, const struct config *c)
{
	r->suffixes = (const char *const *)c->uwpx.channel_suffixes.v;
	r->nsuffixes = c->uwpx.channel_suffixes.n;
	r->paths = (const char *const *)c->uwpx.channel_paths.v;
	r->npaths = c->uwpx.channel_paths.n;
	r->allow_loopback = c->uwpx.allow_loopback_channels;
}
