/* HTTP/1.1 request heads and chunked bodies (common/http1.c): what relays send, split at
 * every byte, and the framing the server must refuse rather than guess. */
#include "http1.h"
#include "testlib.h"
#include <stdlib.h>
#include <string.h>

static long parse(const char *s, struct http1_head *h)
{
	size_t scanned = 0;
	return http1_parse_head(s, strlen(s), &scanned, h);
}

struct sink {
	char buf[256];
	size_t n;
};

static void collect(void *ctx, const unsigned char *p, size_t n)
{
	struct sink *s = ctx;
	if (s->n + n <= sizeof s->buf) {
		memcpy(s->buf + s->n, p, n);
	}
	s->n += n;
}

/* Feeds s in pieces of `step` bytes; the bytes used, -1 on error; *done as at the end. */
static long chunked(const char *s, size_t step, struct sink *out, int *done)
{
	struct http1_chunked c;
	size_t len = strlen(s), used = 0;
	memset(&c, 0, sizeof c);
	memset(out, 0, sizeof *out);
	*done = 0;
	while (used < len && !*done) {
		size_t n = len - used < step ? len - used : step;
		long r = http1_chunked_feed(&c, (const unsigned char *)s + used, n, done, collect, out);
		if (r < 0)
			return -1;
		used += (size_t)r;
	}
	return (long)used;
}

int main(void)
{
	static const char relay[] = "POST /beldex/v2/lsrpc HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n"
				    "Authorization: Basic abc\r\nExpect: 100-Continue\r\n\r\nbody";
	static const char *bad[] = {
		"\x05\x01 garbage\r\n\r\n",
		"POST /a HTTP/1.10\r\n\r\n",
		"POST /a b HTTP/1.1\r\n\r\n",
		"POST  /a HTTP/1.1\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"POST /a HTTP/1.1\r\nX: 1\r\n folded\r\n\r\n",
		"POST /a HTTP/1.1\r\nno colon\r\n\r\n",
		"POST /a HTTP/1.1\r\nBad Name: 1\r\n\r\n",
		"POST /a HTTP/1.1\r\nX: a\x01b\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n",
	};
	struct http1_head h;
	struct sink out;
	size_t scanned = 0;
	long n;
	int done;

	/* The head is found only once complete, wherever the reads split it. */
	for (size_t cut = 1; cut < sizeof relay - 5; cut++) {
		scanned = 0;
		n = http1_parse_head(relay, cut, &scanned, &h);
		CHECK(n == 0 && scanned <= cut, "incomplete head at %zu bytes", cut);
		n = http1_parse_head(relay, sizeof relay - 1, &scanned, &h);
		CHECK(n == (long)(sizeof relay - 5), "head found after a split at %zu (%ld)", cut, n);
	}
	CHECK(h.method == HTTP1_POST && strcmp(h.path, "/beldex/v2/lsrpc") == 0 && h.minor == 1, "request line");
	CHECK(h.content_length == 12 && !h.chunked && h.expect_continue && h.keep_alive, "fields");
	CHECK(h.auth != NULL && h.auth_len == 9 && memcmp(h.auth, "Basic abc", 9) == 0, "Authorization kept");

	CHECK(parse("POST /beldex/v4/lsrpc?x=1 HTTP/1.1\nTransfer-Encoding: Chunked\nConnection: foo, close\n\n", &h) > 0,
	      "bare LF, chunked, close");
	CHECK(strcmp(h.path, "/beldex/v4/lsrpc") == 0 && h.chunked && h.content_length == -1 && !h.keep_alive,
	      "query cut, chunked, Connection: close");
	CHECK(parse("GET /%62eldex HTTP/1.0\r\n\r\n", &h) > 0 && h.method == HTTP1_GET && strcmp(h.path, "/beldex") == 0 &&
		      !h.keep_alive,
	      "percent-decoded path; HTTP/1.0 is one request");
	CHECK(parse("HEAD /a%00b HTTP/1.1\r\n\r\n", &h) > 0 && h.method == HTTP1_HEAD && h.path[0] == '\0',
	      "a path with NUL names no route");
	CHECK(parse("post /a HTTP/1.1\r\n\r\n", &h) > 0 && h.method == HTTP1_OTHER, "methods are case-sensitive");
	CHECK(parse("DELETE /a HTTP/1.1\r\n\r\n", &h) > 0 && h.method == HTTP1_OTHER, "other methods");
	CHECK(parse("POST /a HTTP/2.0\r\n\r\n", &h) == -2 && parse("GET / HTTP/0.9\r\n\r\n", &h) == -2,
	      "another HTTP version is told apart from a malformed head");
	CHECK(parse("POST * HTTP/1.1\r\n\r\n", &h) > 0 && h.path[0] == '\0', "asterisk form names no route");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(parse(bad[i], &h) == -1, "malformed head %zu refused", i);

	/* Chunked bodies, in one piece and byte by byte. */
	for (size_t step = 1; step <= 64; step += 63) {
		n = chunked("5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT", step, &out, &done);
		CHECK(done && n == 45 && out.n == 12 && memcmp(out.buf, "hello, world", 12) == 0,
		      "chunked body, %zu-byte reads (%ld, %zu)", step, n, out.n);
		n = chunked("A\nabcdefghij\n0\n\n", step, &out, &done);
		CHECK(done && out.n == 10, "bare LF chunk lines, %zu-byte reads", step);
	}
	CHECK(chunked("zz\r\nabc\r\n0\r\n\r\n", 64, &out, &done) == -1, "bad chunk size");
	CHECK(chunked("\r\n", 64, &out, &done) == -1, "empty chunk size");
	CHECK(chunked("5\r\nhelloX\r\n0\r\n\r\n", 64, &out, &done) == -1, "chunk longer than its size");
	CHECK(chunked("1000000000000000\r\n", 64, &out, &done) == -1, "chunk size past 60 bits");
	CHECK(chunked("5\r\nhel", 64, &out, &done) == 6 && !done && out.n == 3, "body not finished yet");
	return test_done();
}
