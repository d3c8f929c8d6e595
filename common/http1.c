/*
 * http1: request heads and chunked bodies (see http1.h). Trusts nothing: every byte of the
 * head is checked against the grammar's character classes, numbers are bounded before they
 * are accumulated, and framing the server cannot be sure of (Content-Length together with
 * chunked, two different lengths, other transfer codings, folded lines) is an error rather
 * than a guess. Holds nothing: the result points into the caller's bytes or is copied.
 */
#include "http1.h"
#include "hex.h"
#include <string.h>
#include <strings.h>

static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The end of the line starting at p (the LF), or NULL; *next is the byte after it. A CR
 * before the LF is not part of the line. */
static const char *line_end(const char *p, const char *end, const char **next)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	if (lf == NULL)
		return NULL;
	*next = lf + 1;
	return lf > p && lf[-1] == '\r' ? lf - 1 : lf;
}

static int token_is(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && strncasecmp(s, lit, n) == 0;
}

/* Decodes the origin-form path of target (up to '?') into h->path; a path that is too long,
 * not origin-form, or decodes to a NUL is left "" (it names no route). */
static void take_path(const char *t, size_t n, struct http1_head *h)
{
	size_t o = 0;
	h->path[0] = '\0';
	if (n == 0 || t[0] != '/')
		return;
	for (size_t i = 0; i < n && t[i] != '?'; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c == '%' && i + 2 < n && hex_value((unsigned char)t[i + 1]) >= 0 && hex_value((unsigned char)t[i + 2]) >= 0) {
			c = (unsigned char)(hex_value((unsigned char)t[i + 1]) << 4 | hex_value((unsigned char)t[i + 2]));
			i += 2;
		}
		if (c == '\0' || o + 1 >= sizeof h->path) {
			h->path[0] = '\0';
			return;
		}
		h->path[o++] = (char)c;
	}
	h->path[o] = '\0';
}

/* The length of the token (RFC 9110 §5.6.2) at p that delim follows, or 0 when there is none. */
static size_t token_before(const char *p, const char *e, char delim)
{
	const char *s = p;
	while (p < e && is_tchar((unsigned char)*p))
		p++;
	return p > s && p < e && *p == delim ? (size_t)(p - s) : 0;
}

static int parse_request_line(const char *p, const char *e, struct http1_head *h)
{
	const char *m = p, *t, *v;
	size_t ml = token_before(p, e, ' ');
	if (ml == 0)
		return -1;
	p += ml;
	/* Methods are case-sensitive (RFC 9110 §9.1). */
	h->method = ml == 4 && memcmp(m, "POST", 4) == 0   ? HTTP1_POST
		    : ml == 4 && memcmp(m, "HEAD", 4) == 0 ? HTTP1_HEAD
		    : ml == 3 && memcmp(m, "GET", 3) == 0  ? HTTP1_GET
							   : HTTP1_OTHER;
	t = ++p;
	while (p < e && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
		p++;
	if (p == t || p == e || *p != ' ')
		return -1;
	take_path(t, (size_t)(p - t), h);
	v = ++p;
	if (e - v != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' ||
	    v[7] > '9')
		return -1;
	if (v[5] != '1')
		return -2;
	h->minor = v[7] - '0';
	return 0;
}

static int parse_length(const char *v, size_t n, int64_t *out)
{
	int64_t x = 0;
	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	if (*out >= 0 && *out != x)
		return -1;
	*out = x;
	return 0;
}

/* 1 when the Connection field's token list holds "close". */
static int has_close(const char *v, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t s, e;
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (token_is(v + s, e - s, "close"))
			return 1;
	}
	return 0;
}

static int parse_field(const char *p, const char *e, struct http1_head *h, int *te, int *close)
{
	const char *n = p, *v;
	size_t nl = token_before(p, e, ':');
	if (nl == 0)
		return -1;
	p += nl;
	for (v = p + 1; v < e && (*v == ' ' || *v == '\t'); v++)
		;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	for (p = v; p < e; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return -1;
	if (token_is(n, nl, "Content-Length"))
		return parse_length(v, (size_t)(e - v), &h->content_length);
	if (token_is(n, nl, "Transfer-Encoding")) {
		if ((*te)++ || !token_is(v, (size_t)(e - v), "chunked"))
			return -1;
		h->chunked = 1;
	} else if (token_is(n, nl, "Expect")) {
		h->expect_continue = token_is(v, (size_t)(e - v), "100-continue");
	} else if (token_is(n, nl, "Connection")) {
		*close |= has_close(v, (size_t)(e - v));
	} else if (token_is(n, nl, "Authorization")) {
		h->auth = v;
		h->auth_len = (size_t)(e - v);
	}
	return 0;
}

long http1_parse_head(const char *buf, size_t len, size_t *scanned, struct http1_head *h)
{
	const char *p = buf, *end, *e, *next;
	int te = 0, close = 0, rl;

	/* Nothing is parsed before the empty line that ends the head has arrived. */
	for (;;) {
		const char *lf = memchr(buf + *scanned, '\n', len - *scanned);
		if (lf == NULL) {
			*scanned = len;
			return 0;
		}
		*scanned = (size_t)(lf - buf) + 1;
		if ((lf > buf && lf[-1] == '\n') || (lf > buf + 1 && lf[-1] == '\r' && lf[-2] == '\n'))
			break;
	}
	end = buf + *scanned;
	memset(h, 0, sizeof *h);
	h->content_length = -1;
	if ((e = line_end(p, end, &next)) == NULL)
		return -1;
	if ((rl = parse_request_line(p, e, h)) < 0)
		return rl;
	for (p = next; (e = line_end(p, end, &next)) != NULL && e > p; p = next)
		if (*p == ' ' || *p == '\t' || parse_field(p, e, h, &te, &close) < 0)
			return -1;
	if (e == NULL || (te && h->content_length >= 0))
		return -1;
	/* HTTP/1.0 clients get one request per connection. */
	h->keep_alive = h->minor >= 1 && !close;
	return (long)(next - buf);
}

enum { CK_SIZE, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF, CK_TRAILER, CK_TRAILER_LINE, CK_END_LF };

#define CK_LINE_MAX 4096

long http1_chunked_feed(struct http1_chunked *c, const unsigned char *in, size_t len, int *done, http1_sink sink,
			void *ctx)
{
	size_t i = 0;
	*done = 0;
	while (i < len && !*done) {
		unsigned char b = in[i];
		int v;
		if (c->state == CK_DATA) {
			size_t n = len - i < c->left ? len - i : (size_t)c->left;
			sink(ctx, in + i, n);
			i += n;
			if ((c->left -= n) == 0)
				c->state = CK_DATA_CR;
			continue;
		}
		i++;
		switch (c->state) {
		case CK_SIZE:
			if ((v = hex_value(b)) >= 0 && c->digits < 15) {
				c->left = c->left << 4 | (uint64_t)v;
				c->digits++;
				break;
			}
			if (c->digits == 0 || v >= 0)
				return -1;
			if (b == ';' || b == ' ' || b == '\t') {
				c->state = CK_EXT;
				c->line = 0;
			} else if (b == '\r') {
				c->state = CK_SIZE_LF;
			} else if (b == '\n') {
				i--;
				c->state = CK_SIZE_LF;
			} else {
				return -1;
			}
			break;
		case CK_EXT:
			if (b == '\n') {
				i--;
				c->state = CK_SIZE_LF;
			} else if (b == '\r') {
				c->state = CK_SIZE_LF;
			} else if (++c->line > CK_LINE_MAX || (b < 0x20 && b != '\t') || b == 0x7f) {
				return -1;
			}
			break;
		case CK_SIZE_LF:
			if (b != '\n')
				return -1;
			c->digits = 0;
			c->state = c->left > 0 ? CK_DATA : CK_TRAILER;
			c->line = 0;
			break;
		case CK_DATA_CR:
			if (b == '\r')
				c->state = CK_DATA_LF;
			else if (b == '\n')
				c->state = CK_SIZE;
			else
				return -1;
			break;
		case CK_DATA_LF:
			if (b != '\n')
				return -1;
			c->state = CK_SIZE;
			break;
		case CK_TRAILER:
			/* A trailer line, or the empty line that ends the body. */
			if (b == '\r') {
				c->state = CK_END_LF;
			} else if (b == '\n') {
				*done = 1;
			} else {
				c->state = CK_TRAILER_LINE;
				c->line++;
			}
			break;
		case CK_TRAILER_LINE:
			if (b == '\n')
				c->state = CK_TRAILER;
			else if (++c->line > CK_LINE_MAX)
				return -1;
			break;
		case CK_END_LF:
			if (b != '\n')
				return -1;
			*done = 1;
			break;
		}
	}
	return (long)i;
}
