/* util.c: logging, clocks, growable buffers, JSON string escaping, random ids, base64url and
 * URL decoding, request header helpers. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>
#include "mock.h"

void mock_log(const char *level, const char *fmt, ...)
{
	char ts[32], msg[1024];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s %s mock-provider[%ld]: %s\n", ts, level, (long)getpid(), msg);
}

int64_t mock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mock_buf_reserve(struct mock_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1, ncap;
	char *np;

	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	np = realloc(b->p, ncap);
	if (!np)
		return -1;
	b->p = np;
	b->cap = ncap;
	return 0;
}

int mock_buf_append(struct mock_buf *b, const void *p, size_t n)
{
	if (mock_buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int mock_buf_puts(struct mock_buf *b, const char *s)
{
	return mock_buf_append(b, s, strlen(s));
}

int mock_buf_printf(struct mock_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || mock_buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0)
		len = 2, cp = s[0] & 0x1F;
	else if ((s[0] & 0xF0) == 0xE0)
		len = 3, cp = s[0] & 0x0F;
	else if ((s[0] & 0xF8) == 0xF0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* Appends s as a quoted JSON string. Bytes that are not valid UTF-8 become \u00XX (Latin-1). */
int mock_buf_json_str(struct mock_buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run;

	if (mock_buf_reserve(b, n + 2) < 0 || mock_buf_append(b, "\"", 1) < 0)
		return -1;
	while (i < n) {
		run = i;
		while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
			run++;
		if (run > i && mock_buf_append(b, s + i, run - i) < 0)
			return -1;
		i = run;
		if (i >= n)
			break;
		if (u[i] == '"' || u[i] == '\\') {
			char esc[2] = { '\\', (char)u[i] };
			if (mock_buf_append(b, esc, 2) < 0)
				return -1;
			i++;
		} else if (u[i] < 0x20) {
			const char *e = u[i] == '\n' ? "\\n" : u[i] == '\r' ? "\\r" : u[i] == '\t' ? "\\t" : NULL;
			if (e ? mock_buf_puts(b, e) : mock_buf_printf(b, "\\u%04x", u[i]))
				return -1;
			i++;
		} else {
			size_t l = utf8_len(u + i, n - i);
			if (l == 0) {
				if (mock_buf_printf(b, "\\u%04x", u[i]) < 0)
					return -1;
				i++;
			} else {
				if (mock_buf_append(b, s + i, l) < 0)
					return -1;
				i += l;
			}
		}
	}
	return mock_buf_append(b, "\"", 1);
}

void mock_buf_reset(struct mock_buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void mock_buf_free(struct mock_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void mock_random_hex(char *out, size_t nbytes)
{
	static const char hx[] = "0123456789abcdef";
	unsigned char raw[64];
	size_t i;

	if (nbytes > sizeof raw)
		nbytes = sizeof raw;
	if (RAND_bytes(raw, (int)nbytes) != 1) {
		for (i = 0; i < nbytes; i++)
			raw[i] = (unsigned char)random();
	}
	for (i = 0; i < nbytes; i++) {
		out[2 * i] = hx[raw[i] >> 4];
		out[2 * i + 1] = hx[raw[i] & 15];
	}
	out[2 * nbytes] = '\0';
}

/* A version-4 UUID in upper case, as APNs returns them. */
void mock_uuid(char out[37])
{
	char h[33];
	size_t i;

	mock_random_hex(h, 16);
	h[12] = '4';
	h[16] = "89ab"[(h[16] >= 'a' ? h[16] - 'a' + 10 : h[16] - '0') & 3];
	for (i = 0; i < 32; i++)
		h[i] = (char)toupper((unsigned char)h[i]);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

int mock_is_uuid(const char *s)
{
	size_t i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

static int b64url_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Unpadded base64url (as JWTs use); padding or any other character is an error. */
int mock_b64url_decode(const char *in, size_t len, struct mock_buf *out)
{
	uint32_t acc = 0;
	int bits = 0, v;
	size_t i;

	mock_buf_reset(out);
	if (len % 4 == 1 || mock_buf_reserve(out, len) < 0)
		return -1;
	for (i = 0; i < len; i++) {
		v = b64url_val((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out->p[out->len++] = (char)((acc >> bits) & 0xFF);
		}
	}
	if (acc & ((1u << bits) - 1))
		return -1; /* non-canonical trailing bits */
	out->p[out->len] = '\0';
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* application/x-www-form-urlencoded value: '+' is a space, %XX an octet. */
int mock_url_decode(const char *in, size_t len, struct mock_buf *out)
{
	size_t i;
	int hi, lo;
	char ch;

	mock_buf_reset(out);
	if (mock_buf_reserve(out, len) < 0)
		return -1;
	for (i = 0; i < len; i++) {
		ch = in[i];
		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%') {
			if (i + 2 >= len)
				return -1;
			hi = hexval((unsigned char)in[i + 1]);
			lo = hexval((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = (char)(hi * 16 + lo);
			i += 2;
		}
		out->p[out->len++] = ch;
	}
	out->p[out->len] = '\0';
	return 0;
}

const char *mock_req_header(const struct mock_req *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nhdrs; i++)
		if (strcmp(r->hdrs[i].name, name) == 0)
			return r->hdrs[i].value;
	return NULL;
}

size_t mock_req_header_count(const struct mock_req *r, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < r->nhdrs; i++)
		if (strcmp(r->hdrs[i].name, name) == 0)
			n++;
	return n;
}

/* Stores a copy with the name lowercased; fields past MOCK_MAX_HEADERS are dropped. */
int mock_req_add_header(struct mock_req *r, const char *name, size_t nlen, const char *value, size_t vlen)
{
	struct mock_hdr *h;
	size_t i;

	if (r->nhdrs >= MOCK_MAX_HEADERS)
		return 0;
	h = &r->hdrs[r->nhdrs];
	h->name = malloc(nlen + 1);
	h->value = malloc(vlen + 1);
	if (!h->name || !h->value) {
		free(h->name);
		free(h->value);
		return -1;
	}
	for (i = 0; i < nlen; i++)
		h->name[i] = (char)tolower((unsigned char)name[i]);
	h->name[nlen] = '\0';
	memcpy(h->value, value, vlen);
	h->value[vlen] = '\0';
	r->nhdrs++;
	return 0;
}

int mock_req_set_resp_header(struct mock_req *r, const char *name, const char *value)
{
	struct mock_hdr *h;

	if (r->nrhdrs >= sizeof r->rhdrs / sizeof r->rhdrs[0])
		return -1;
	h = &r->rhdrs[r->nrhdrs];
	h->name = strdup(name);
	h->value = strdup(value);
	if (!h->name || !h->value) {
		free(h->name);
		free(h->value);
		return -1;
	}
	r->nrhdrs++;
	return 0;
}

const char *mock_reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}
