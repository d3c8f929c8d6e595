/*
 * provider_http_h1: HTTP/1.1 on a provider HTTP client connection whose server chose it in ALPN (Push Kit front ends
 * do). One request at a time, never pipelined: the request goes out with Content-Length (never
 * chunked, no Expect), the answer is read by Content-Length, chunked coding, or to the end of
 * the connection; interim 1xx answers are skipped. Trusts nothing it reads: the head is
 * capped at H2C_HEADERS_MAX, the body kept up to H2C_BODY_MAX (the rest read and dropped),
 * sizes checked for overflow; anything malformed closes the connection. Holds the parse state
 * and unparsed bytes in struct h2d_conn.
 */
#include "provider_http_int.h"
#include "buf.h"
#include "hex.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { H1_HEAD, H1_LENGTH, H1_CHUNK_SIZE, H1_CHUNK_DATA, H1_CHUNK_END, H1_TRAILER, H1_TO_CLOSE };

static int out_put(struct h2d_conn *c, const void *p, size_t n)
{
	return buf_append(&c->out, &c->out_len, &c->out_cap, p, n, 4096);
}

int h2d_h1_start(struct h2d_conn *c, struct h2d_req *r)
{
	const nghttp2_nv *path = NULL, *authority = NULL;
	int rc = 0;

	for (size_t i = 0; i < r->nnv; i++) {
		if (r->nv[i].namelen == 5 && memcmp(r->nv[i].name, ":path", 5) == 0)
			path = &r->nv[i];
		else if (r->nv[i].namelen == 10 && memcmp(r->nv[i].name, ":authority", 10) == 0)
			authority = &r->nv[i];
	}
	if (path == NULL || authority == NULL)
		return -1;
	c->out_len = c->out_off = 0;
	rc |= out_put(c, "POST ", 5);
	rc |= out_put(c, path->value, path->valuelen);
	rc |= out_put(c, " HTTP/1.1\r\nHost: ", 17);
	rc |= out_put(c, authority->value, authority->valuelen);
	rc |= out_put(c, "\r\n", 2);
	for (size_t i = 0; i < r->nnv; i++) {
		if (r->nv[i].name[0] == ':')
			continue;
		rc |= out_put(c, r->nv[i].name, r->nv[i].namelen);
		rc |= out_put(c, ": ", 2);
		rc |= out_put(c, r->nv[i].value, r->nv[i].valuelen);
		rc |= out_put(c, "\r\n", 2);
	}
	rc |= out_put(c, "\r\n", 2);
	rc |= out_put(c, r->body, r->body_len);
	if (rc)
		return -1;
	c->cur = r;
	r->c = c;
	c->h1_phase = H1_HEAD;
	c->h1_close = 0;
	c->in_len = 0;
	return 0;
}

static int value_is(const char *v, size_t vl, const char *word)
{
	size_t wl = strlen(word);

	/* A comma-separated list contains word (any case). */
	for (size_t i = 0; i + wl <= vl; i++)
		if (strncasecmp(v + i, word, wl) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
		    (i + wl == vl || v[i + wl] == ',' || v[i + wl] == ' '))
			return 1;
	return 0;
}

/* Parses the head in c->in[0..len) (ending "\r\n\r\n"); 1 for an interim answer, 0, -1. */
static int head(struct h2d_conn *c, struct h2d_req *r, size_t len)
{
	char *p = c->in, *end = c->in + len, *eol;
	int chunked = 0, has_length = 0, http10;
	uint64_t length = 0;
	long status;

	if (len < 12 || strncmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
		return -1;
	http10 = p[7] == '0';
	if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
		return -1;
	status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
		return -1;
	r->status = status;
	r->rhdrs_len = 0;
	c->h1_keep_alive = !http10;
	for (p = eol + 1; p < end && !(p[0] == '\r' && p[1] == '\n'); p = eol + 1) {
		char *colon, *v, *ve;
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL || (colon = memchr(p, ':', (size_t)(eol - p))) == NULL ||
		    colon == p)
			return -1;
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		if (colon - p == 14 && strncasecmp(p, "content-length", 14) == 0) {
			length = 0;
			if (v == ve)
				return -1;
			for (char *d = v; d < ve; d++)
				if (*d < '0' || *d > '9' || (length = length * 10 + (uint64_t)(*d - '0')) > (1ULL << 40))
					return -1;
			has_length = 1;
		} else if (colon - p == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
			chunked = value_is(v, (size_t)(ve - v), "chunked");
		} else if (colon - p == 10 && strncasecmp(p, "connection", 10) == 0) {
			if (value_is(v, (size_t)(ve - v), "close"))
				c->h1_keep_alive = 0;
			else if (value_is(v, (size_t)(ve - v), "keep-alive"))
				c->h1_keep_alive = 1;
		}
		h2d_keep(&r->rhdrs, &r->rhdrs_len, &r->rhdrs_cap, H2C_HEADERS_MAX, p, (size_t)(eol + 1 - p), NULL);
	}
	if (status < 200)
		return 1; /* 100 Continue and the like: the real answer follows */
	if (status == 204 || status == 304) {
		c->h1_phase = H1_LENGTH;
		c->h1_left = 0;
	} else if (chunked) {
		c->h1_phase = H1_CHUNK_SIZE;
	} else if (has_length) {
		c->h1_phase = H1_LENGTH;
		c->h1_left = length;
	} else {
		c->h1_phase = H1_TO_CLOSE;
		c->h1_keep_alive = 0;
	}
	return 0;
}

static void body(struct h2d_conn *c, const char *p, size_t n)
{
	struct h2d_req *r = c->cur;

	h2d_keep(&r->rbody, &r->rbody_len, &r->rbody_cap, H2C_BODY_MAX, p, n, &r->rbody_truncated);
}

static void answered(struct h2d_conn *c)
{
	struct h2d_req *r = c->cur;

	c->cur = NULL;
	c->h1_close = !c->h1_keep_alive;
	r->complete = 1;
	h2d_finish(c->d, r, H2D_ANSWERED, NULL);
}

/* A line ending in "\r\n" at the start of c->in: its length with the ending, or 0 for not yet. */
static size_t line(const struct h2d_conn *c)
{
	const char *nl = memchr(c->in, '\n', c->in_len);
	return nl ? (size_t)(nl - c->in) + 1 : 0;
}

static void consume(struct h2d_conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* Works through c->in; -1 when malformed. */
static int parse(struct h2d_conn *c)
{
	for (;;) {
		size_t n;
		switch (c->h1_phase) {
		case H1_HEAD: {
			char *e = NULL;
			int rc;
			for (size_t i = 3; i < c->in_len && e == NULL; i++)
				if (memcmp(c->in + i - 3, "\r\n\r\n", 4) == 0)
					e = c->in + i + 1;
			if (e == NULL)
				return c->in_len > H2C_HEADERS_MAX + 1024 ? -1 : 0;
			n = (size_t)(e - c->in);
			if ((rc = head(c, c->cur, n)) < 0)
				return -1;
			consume(c, n);
			if (rc == 1)
				continue;
			break;
		}
		case H1_LENGTH:
			n = c->in_len < c->h1_left ? c->in_len : (size_t)c->h1_left;
			body(c, c->in, n);
			consume(c, n);
			if ((c->h1_left -= n) > 0)
				return 0;
			answered(c);
			return c->in_len ? -1 : 0; /* nothing may follow: never pipelined */
		case H1_TO_CLOSE:
			body(c, c->in, c->in_len);
			c->in_len = 0;
			return 0;
		case H1_CHUNK_SIZE: {
			uint64_t size = 0;
			size_t digits = 0;
			if ((n = line(c)) == 0)
				return c->in_len > 1024 ? -1 : 0;
			for (; digits < n; digits++) {
				int v = hex_value((unsigned char)c->in[digits]);
				if (v < 0)
					break;
				if ((size = size * 16 + (uint64_t)v) > (1ULL << 40))
					return -1;
			}
			if (digits == 0)
				return -1;
			consume(c, n); /* chunk extensions are ignored */
			c->h1_left = size;
			c->h1_phase = size ? H1_CHUNK_DATA : H1_TRAILER;
			break;
		}
		case H1_CHUNK_DATA:
			n = c->in_len < c->h1_left ? c->in_len : (size_t)c->h1_left;
			body(c, c->in, n);
			consume(c, n);
			if ((c->h1_left -= n) > 0)
				return 0;
			c->h1_phase = H1_CHUNK_END;
			break;
		case H1_CHUNK_END:
			if (c->in_len < 2)
				return 0;
			if (memcmp(c->in, "\r\n", 2) != 0)
				return -1;
			consume(c, 2);
			c->h1_phase = H1_CHUNK_SIZE;
			break;
		case H1_TRAILER:
			if ((n = line(c)) == 0)
				return c->in_len > H2C_HEADERS_MAX ? -1 : 0;
			consume(c, n);
			if (n <= 2) { /* the empty line */
				answered(c);
				return c->in_len ? -1 : 0;
			}
			break;
		}
	}
}

int h2d_h1_input(struct h2d_conn *c, const uint8_t *p, size_t n)
{
	if (c->cur == NULL)
		return -1; /* nothing was asked */
	if (buf_append(&c->in, &c->in_len, &c->in_cap, p, n, 4096) < 0)
		return -1;
	return parse(c);
}

int h2d_h1_eof(struct h2d_conn *c)
{
	if (c->cur == NULL || c->h1_phase != H1_TO_CLOSE)
		return 0;
	answered(c);
	return 1;
}
