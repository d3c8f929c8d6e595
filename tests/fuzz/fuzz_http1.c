/*
 * fuzz_http1: http1_parse_head() and http1_chunked_feed() (common/http1.c) on arbitrary
 * bytes. Reading the input in two pieces must give the same answer as reading it whole; a
 * parsed head lies inside the input, its path is a NUL-free string and its Authorization
 * points into the head; a chunked body decodes to the same bytes however it is split.
 */
#include "fuzz_common.h"
#include "http1.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	unsigned char *buf;
	size_t n;
};

static void collect(void *ctx, const unsigned char *p, size_t n)
{
	struct sink *s = ctx;
	memcpy(s->buf + s->n, p, n);
	s->n += n;
}

static long decode(const uint8_t *data, size_t size, size_t cut, struct sink *out, int *done)
{
	struct http1_chunked c;
	size_t used = 0;
	memset(&c, 0, sizeof c);
	out->n = 0;
	*done = 0;
	while (used < size && !*done) {
		size_t end = used < cut ? cut : size;
		long r = http1_chunked_feed(&c, data + used, end - used, done, collect, out);
		if (r < 0)
			return -1;
		CHECK((size_t)r <= end - used);
		used += (size_t)r;
		if (!*done)
			CHECK(used == end);
	}
	return (long)used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t cut = size ? data[0] % size : 0, scanned = 0;
	struct http1_head h1, h2;
	struct sink a, b;
	long n1, n2, u1, u2;
	int d1, d2;

	if (size == 0 || data[0] == '\r' || data[0] == '\n')
		return 0;
	n1 = http1_parse_head(s, size, &scanned, &h1);
	CHECK(n1 >= -2 && n1 <= (long)size && scanned <= size);
	scanned = 0;
	n2 = http1_parse_head(s, cut, &scanned, &h2);
	CHECK(n2 == 0 || n2 == -1 || n2 == -2 || n2 == n1);
	if (n2 == 0)
		n2 = http1_parse_head(s, size, &scanned, &h2);
	CHECK(n2 == n1);
	if (n1 > 0) {
		CHECK(memchr(h1.path, '\0', sizeof h1.path) != NULL);
		CHECK(strcmp(h1.path, h2.path) == 0 && h1.content_length == h2.content_length);
		CHECK(h1.content_length >= -1 && !(h1.chunked && h1.content_length >= 0));
		if (h1.auth != NULL)
			CHECK(h1.auth >= s && h1.auth + h1.auth_len <= s + n1);
	}
	a.buf = malloc(size + 1);
	b.buf = malloc(size + 1);
	CHECK(a.buf != NULL && b.buf != NULL);
	u1 = decode(data, size, size, &a, &d1);
	u2 = decode(data, size, cut, &b, &d2);
	CHECK(u1 == u2 && d1 == d2);
	if (u1 >= 0)
		CHECK(a.n == b.n && a.n <= (size_t)u1 && memcmp(a.buf, b.buf, a.n) == 0);
	free(a.buf);
	free(b.buf);
	return 0;
}
