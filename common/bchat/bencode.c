/*
 * bencode: parses and writes the two-string bencoded lists of onion v4 requests and replies.
 * Trusts nothing it parses: lengths are checked for overflow and against the bytes left before
 * anything is pointed at, and any deviation from the exact shape is an error.
 */
#include "bencode.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads "<digits>:" at *pos; stores the length and moves *pos past the colon. */
static int read_len(const unsigned char *buf, size_t len, size_t *pos, size_t *out)
{
	size_t p = *pos, start = p;
	uint64_t v = 0;
	while (p < len && buf[p] >= '0' && buf[p] <= '9') {
		unsigned d = (unsigned)(buf[p] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		p++;
	}
	if (p == start || p >= len || buf[p] != ':')
		return -1;
	/* Canonical form: "0" is the only length that may start with a zero. */
	if (buf[start] == '0' && p - start > 1)
		return -1;
	p++;
	if (v > (uint64_t)(len - p))
		return -1;
	*out = (size_t)v;
	*pos = p;
	return 0;
}

int bencode_parse_list(const unsigned char *buf, size_t len, struct bencode_list *out)
{
	size_t pos = 1;
	memset(out, 0, sizeof *out);
	if (buf == NULL || len < 2 || buf[0] != 'l')
		return -1;
	while (pos < len && buf[pos] != 'e') {
		size_t n;
		if (out->n == BENCODE_LIST_MAX || read_len(buf, len, &pos, &n) < 0)
			goto bad;
		out->ptr[out->n] = buf + pos;
		out->len[out->n] = n;
		out->n++;
		pos += n;
	}
	/* An empty list is not a request, and the 'e' must be the very last byte. */
	if (out->n == 0 || pos != len - 1 || buf[pos] != 'e')
		goto bad;
	return 0;
bad:
	memset(out, 0, sizeof *out);
	return -1;
}

unsigned char *bencode_write_pair(const unsigned char *a, size_t alen, const unsigned char *b,
				  size_t blen, size_t *out_len)
{
	char ha[24], hb[24];
	int la = snprintf(ha, sizeof ha, "%zu:", alen), lb = snprintf(hb, sizeof hb, "%zu:", blen);
	uint64_t total = 2 + (uint64_t)la + (uint64_t)lb + (uint64_t)alen + (uint64_t)blen;
	unsigned char *out, *p;
	if (la < 0 || lb < 0 || alen > SIZE_MAX / 2 || blen > SIZE_MAX / 2 || total > SIZE_MAX)
		return NULL;
	out = malloc((size_t)total);
	if (out == NULL)
		return NULL;
	p = out;
	*p++ = 'l';
	memcpy(p, ha, (size_t)la);
	p += la;
	if (alen > 0)
		memcpy(p, a, alen);
	p += alen;
	memcpy(p, hb, (size_t)lb);
	p += lb;
	if (blen > 0)
		memcpy(p, b, blen);
	p += blen;
	*p = 'e';
	*out_len = (size_t)total;
	return out;
}
