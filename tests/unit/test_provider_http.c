/*
 * The provider HTTP client's HTTP/1.1 codec (common/sender/provider_http_h1.c) on a connection without a socket: the request
 * it writes, and answers fed in pieces: Content-Length, chunked with extensions and trailers, an
 * interim 100, a body that ends with the connection, Connection: close, bodies past the cap,
 * and malformed answers, each of which must make the connection close.
 */
#include "sender/provider_http_int.h"
#include "testlib.h"
#include <stdlib.h>
#include <string.h>

static struct {
	int calls;
	long status;
	int error, truncated;
	size_t body_len;
	char body[256];
	char wns_status[64];
} got;

static void on_done(void *ctx, const struct h2c_response *r)
{
	(void)ctx;
	got.calls++;
	got.status = r->status;
	got.error = r->error;
	got.truncated = r->body_truncated;
	got.body_len = r->body_len;
	snprintf(got.body, sizeof got.body, "%.*s", (int)(r->body_len < 255 ? r->body_len : 255), r->body);
	if (!h2c_header(r, "x-wns-status", got.wns_status, sizeof got.wns_status))
		got.wns_status[0] = '\0';
}

static struct h2d *D;

/* A request on slot 0, as dispatch would put it there. */
static struct h2d_conn *start(void)
{
	const char *hdrs[] = {"Content-Type: application/octet-stream", "X-WNS-Type: wns/raw", "Expect:", NULL};
	struct h2d_conn *c = &D->slot[0];

	memset(&got, 0, sizeof got);
	if (h2d_submit(D, "http://127.0.0.1:9/wns/ch?token=a", hdrs, "body", 4, on_done, NULL) < 0)
		return NULL;
	c->state = H2D_READY;
	c->h1 = 1;
	return h2d_h1_start(c, D->pend_head) == 0 ? c : NULL;
}

/* Feeds s in pieces of step bytes; the last return value. */
static int feed(struct h2d_conn *c, const char *s, size_t step)
{
	size_t n = strlen(s);
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i += step)
		rc = h2d_h1_input(c, (const uint8_t *)s + i, n - i < step ? n - i : step);
	return rc;
}

/* Ends the request left on c, as closing the connection does. */
static void drop(struct h2d_conn *c)
{
	if (c->cur)
		h2d_finish(D, c->cur, H2D_FAILED, "test");
	c->cur = NULL;
	c->in_len = 0;
}

static void test_request(void)
{
	struct h2d_conn *c = start();
	const char *want = "POST /wns/ch?token=a HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"
			   "content-type: application/octet-stream\r\nx-wns-type: wns/raw\r\n"
			   "content-length: 4\r\nuser-agent: pushpipe/1\r\n\r\nbody";

	CHECK(c && c->out_len == strlen(want) && memcmp(c->out, want, c->out_len) == 0,
	      "the request: Host, the headers, Content-Length, no Expect, the body: %.*s", c ? (int)c->out_len : 0,
	      c ? c->out : "");
	drop(c);
}

static void test_answers(void)
{
	struct h2d_conn *c;

	c = start();
	CHECK(feed(c, "HTTP/1.1 200 OK\r\nX-WNS-Status: received\r\nContent-Length: 5\r\n\r\nhello", 1) == 0 &&
		      got.calls == 1 && got.status == 200 && strcmp(got.body, "hello") == 0 &&
		      strcmp(got.wns_status, "received") == 0 && !c->h1_close && c->cur == NULL,
	      "Content-Length, fed a byte at a time (%d calls, %ld, %s)", got.calls, got.status, got.body);

	c = start();
	CHECK(feed(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n"
		      "Trailer: x\r\n\r\n", 3) == 0 &&
		      got.calls == 1 && strcmp(got.body, "hello world") == 0,
	      "chunked, with an extension and a trailer (%s)", got.body);

	c = start();
	CHECK(feed(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 406 Not Acceptable\r\nX-WNS-Status: channelthrottled\r\n"
		      "Content-Length: 0\r\n\r\n", 7) == 0 &&
		      got.calls == 1 && got.status == 406 && strcmp(got.wns_status, "channelthrottled") == 0,
	      "an interim 100, then the answer (%ld)", got.status);

	c = start();
	CHECK(feed(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 64) == 0 && got.calls == 1 &&
		      c->h1_close == 1,
	      "Connection: close closes after the answer");

	c = start();
	CHECK(feed(c, "HTTP/1.0 200 OK\r\n\r\nuntil the end", 4) == 0 && got.calls == 0 && h2d_h1_eof(c) == 1 &&
		      got.calls == 1 && strcmp(got.body, "until the end") == 0 && c->h1_close == 1,
	      "a body that ends with the connection (%s)", got.body);

	c = start();
	CHECK(feed(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal", 64) == 0 && h2d_h1_eof(c) == 0 && got.calls == 0,
	      "a Content-Length body cut short by the close is no answer");
	drop(c);
	CHECK(got.calls == 1 && got.status == 0 && got.error == H2C_ERR_TRANSPORT, "it fails as a transport error");
}

static void test_big_body(void)
{
	struct h2d_conn *c = start();
	char head[128];
	size_t n = H2C_BODY_MAX + 100, i;
	char *body = malloc(n);
	int rc;

	memset(body, 'x', n);
	snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
	rc = feed(c, head, 64);
	for (i = 0; i < n && rc == 0; i += 4000)
		rc = h2d_h1_input(c, (const uint8_t *)body + i, n - i < 4000 ? n - i : 4000);
	CHECK(rc == 0 && got.calls == 1 && got.truncated && got.body_len == H2C_BODY_MAX - 1 && !c->h1_close,
	      "a body past the cap is read to its end, kept up to the cap, flagged (%zu)", got.body_len);
	free(body);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"ICY 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct h2d_conn *c = start();
		CHECK(feed(c, bad[i], 5) < 0, "malformed answer %zu refused", i);
		drop(c);
	}
	{
		struct h2d_conn *c = start();
		char *big = malloc(H2C_HEADERS_MAX + 2048);
		memset(big, 'a', H2C_HEADERS_MAX + 2047);
		big[H2C_HEADERS_MAX + 2047] = '\0';
		memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
		CHECK(feed(c, big, 1000) < 0, "a head without end past the cap is refused");
		drop(c);
		free(big);
	}
	{
		struct h2d_conn *c = &D->slot[0];
		c->cur = NULL;
		CHECK(h2d_h1_input(c, (const uint8_t *)"HTTP/1.1 200 OK\r\n\r\n", 19) < 0, "an answer to nothing is refused");
	}
}

int main(void)
{
	struct h2c_opts o;
	struct loop *lp;

	memset(&o, 0, sizeof o);
	o.connections = 1;
	o.max_streams = 1;
	o.deadline_ms = 10000;
	o.max_in_flight = 100;
	o.allow_plain_http = 1;
	o.allow_http1 = 1;
	lp = loop_new();
	D = lp ? h2d_new(&o, "http://127.0.0.1:9", lp, NULL) : NULL;
	CHECK(D != NULL, "an origin");
	if (D != NULL) {
		test_request();
		test_answers();
		test_big_body();
		test_malformed();
		h2d_free(D);
	}
	if (lp)
		loop_free(lp);
	return test_done();
}
