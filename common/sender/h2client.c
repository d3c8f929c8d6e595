/*
 * h2client: the senders' HTTP client: one h2direct per origin (created at its first request,
 * at most H2C_ORIGINS_MAX at once; one without requests in flight is given up when a new one
 * needs its place), one TLS context shared by all of them, their sockets watched by the
 * sender's loop (loop.h) and their timers behind one wake-up timer of it, so a sender stays one
 * thread and one loop. Checks every
 * URL (https, or http:// to this host in test mode only); trusts the URLs' paths. Holds the
 * origins, the TLS context and the wake-up timer.
 */
#include "h2client.h"
#include "daemon.h"
#include "provider_http.h"
#include "log.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct h2c {
	struct h2c_opts o;
	char *ca_file, *cert_file, *key_file;
	struct loop *lp;
	struct loop_timer *wake; /* when h2c_run() must run again */
	int closing;		/* h2c_free() is completing what is left */
	SSL_CTX *tls;		/* made at the first https origin */
	struct h2d *origin[H2C_ORIGINS_MAX];
	uint64_t used[H2C_ORIGINS_MAX]; /* last request, for giving an idle origin's place away */
};

/* https://, or http:// to this host when the test mode allows it: a mock, never a provider. */
static int url_allowed(const struct h2c *h, const char *url)
{
	const char *host;
	size_t n;

	if (strncasecmp(url, "https://", 8) == 0)
		return url[8] != '\0';
	if (strncasecmp(url, "http://", 7) != 0 || !h->o.allow_plain_http)
		return 0;
	host = url + 7;
	n = strcspn(host, ":/?#");
	if (host[0] == '[')
		n = strcspn(host, "]") + 1;
	return (n == 9 && strncmp(host, "127.0.0.1", 9) == 0) || (n == 5 && strncmp(host, "[::1]", 5) == 0) ||
	       (n == 9 && strncasecmp(host, "localhost", 9) == 0);
}

/* The origin of url, set up if need be; NULL with errno. */
static struct h2d *origin_for(struct h2c *h, const char *url)
{
	int free_i = -1, idle_i = -1;

	for (int i = 0; i < H2C_ORIGINS_MAX; i++) {
		if (h->origin[i] == NULL) {
			if (free_i < 0)
				free_i = i;
		} else if (h2d_owns(h->origin[i], url)) {
			h->used[i] = mono_ms();
			return h->origin[i];
		} else if (h2d_in_flight(h->origin[i]) == 0 && (idle_i < 0 || h->used[i] < h->used[idle_i])) {
			idle_i = i;
		}
	}
	if (free_i < 0 && idle_i < 0)
		return errno = EAGAIN, NULL;
	if (free_i < 0) {
		h2d_free(h->origin[idle_i]);
		h->origin[idle_i] = NULL;
		free_i = idle_i;
	}
	if (strncasecmp(url, "https://", 8) == 0 && h->tls == NULL && (h->tls = h2d_tls_ctx(&h->o)) == NULL)
		return errno = ENOMEM, NULL;
	if ((h->origin[free_i] = h2d_new(&h->o, url, h->lp, h->tls)) == NULL)
		return errno = EPROTONOSUPPORT, NULL;
	h->used[free_i] = mono_ms();
	return h->origin[free_i];
}

struct h2c *h2c_new(const struct h2c_opts *o, struct loop *lp)
{
	struct h2c *h = calloc(1, sizeof *h);

	if (h == NULL)
		return NULL;
	h->o = *o;
	h->ca_file = o->ca_file && o->ca_file[0] ? strdup(o->ca_file) : NULL;
	h->cert_file = o->cert_file && o->cert_file[0] ? strdup(o->cert_file) : NULL;
	h->key_file = o->key_file && o->key_file[0] ? strdup(o->key_file) : NULL;
	h->o.ca_file = h->ca_file;
	h->o.cert_file = h->cert_file;
	h->o.key_file = h->key_file;
	h->o.push_origin = NULL;
	h->lp = lp;
	if (o->push_origin && o->push_origin[0] &&
	    (!url_allowed(h, o->push_origin) || origin_for(h, o->push_origin) == NULL)) {
		log_error("h2client: cannot send to %s", o->push_origin);
		h2c_free(h);
		return NULL;
	}
	return h;
}

size_t h2c_in_flight(const struct h2c *h)
{
	size_t n = 0;

	for (int i = 0; i < H2C_ORIGINS_MAX; i++)
		if (h->origin[i])
			n += h2d_in_flight(h->origin[i]);
	return n;
}

/* Milliseconds until h2c_run() must run again, or -1 for no timer. */
static int timeout_ms(const struct h2c *h)
{
	int t = -1;

	for (int i = 0; i < H2C_ORIGINS_MAX; i++) {
		int ti = h->origin[i] ? h2d_timeout_ms(h->origin[i]) : -1;
		if (ti >= 0 && (t < 0 || ti < t))
			t = ti;
	}
	return t;
}

int h2c_submit(struct h2c *h, const char *url, const char *const *headers, const void *body, size_t len,
	       h2c_done_fn *done, void *ctx)
{
	struct h2d *d;

	if (h->closing || h2c_in_flight(h) >= h->o.max_in_flight) {
		errno = EAGAIN;
		return -1;
	}
	if (!url_allowed(h, url)) {
		errno = EPROTONOSUPPORT;
		return -1;
	}
	if ((d = origin_for(h, url)) == NULL)
		return -1;
	return h2d_submit(d, url, headers, body, len, done, ctx);
}

static void on_wake(void *arg)
{
	struct h2c *h = arg;
	h->wake = NULL; /* h2c_run() follows, at the end of the turn */
}

void h2c_run(struct h2c *h)
{
	for (int i = 0; i < H2C_ORIGINS_MAX; i++)
		if (h->origin[i])
			h2d_run(h->origin[i]);
	if (loop_wake(h->lp, &h->wake, timeout_ms(h), on_wake, h) < 0)
		log_warn("h2client: out of memory for a timer");
}

void h2c_free(struct h2c *h)
{
	if (h == NULL)
		return;
	h->closing = 1;
	for (int i = 0; i < H2C_ORIGINS_MAX; i++) {
		h2d_free(h->origin[i]);
		h->origin[i] = NULL;
	}
	if (h->tls)
		SSL_CTX_free(h->tls);
	loop_timer_cancel(h->lp, h->wake);
	free(h->ca_file);
	free(h->cert_file);
	free(h->key_file);
	free(h);
}

const char *h2c_header(const struct h2c_response *r, const char *name, char *buf, size_t buflen)
{
	size_t nl = strlen(name), pos = 0;

	while (pos < r->headers_len) {
		const char *line = r->headers + pos;
		const char *end = memchr(line, '\n', r->headers_len - pos);
		size_t ll = end ? (size_t)(end - line) : r->headers_len - pos;

		pos += ll + 1;
		if (ll > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl + 1, *ve = line + ll;
			size_t vl;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			vl = (size_t)(ve - v);
			if (buflen == 0)
				return NULL;
			if (vl >= buflen)
				vl = buflen - 1;
			memcpy(buf, v, vl);
			buf[vl] = '\0';
			return buf;
		}
	}
	return NULL;
}

/* An HTTP date (RFC 9110 §5.6.7: IMF-fixdate, RFC 850, asctime) as seconds since the epoch, or -1. */
static time_t http_date(const char *s)
{
	static const char *const fmts[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
					   "%a %b %e %H:%M:%S %Y"};
	for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
		struct tm tm;
		const char *end;
		memset(&tm, 0, sizeof tm);
		if ((end = strptime(s, fmts[i], &tm)) != NULL) {
			while (*end == ' ' || *end == '\t')
				end++;
			if (*end == '\0')
				return timegm(&tm);
		}
	}
	return -1;
}

uint64_t h2c_retry_after_ms(const char *value, uint64_t now_wall_ms)
{
	const uint64_t cap = 86400000;
	const char *p = value;
	uint64_t v = 0;
	time_t t;

	if (value == NULL)
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p >= '0' && *p <= '9') {
		for (; *p >= '0' && *p <= '9'; p++)
			if ((v = v * 10 + (uint64_t)(*p - '0')) > cap / 1000)
				return cap;
		while (*p == ' ' || *p == '\t')
			p++;
		return *p == '\0' ? v * 1000 : 0;
	}
	t = http_date(p);
	if (t <= 0 || (uint64_t)t * 1000 <= now_wall_ms)
		return 0;
	v = (uint64_t)t * 1000 - now_wall_ms;
	return v > cap ? cap : v;
}
