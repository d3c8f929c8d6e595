/*
 * fuzz_h1_answer: the senders' HTTP/1.1 answer parser (common/sender/provider_http_h1.c) on arbitrary bytes
 * from a server, fed in pieces whose size the first byte picks, then the connection closed. The
 * request is answered at most once; an answer has a final status and a body within the cap;
 * after a refused answer nothing more is fed, as the connection is closed.
 */
#include "fuzz_common.h"
#include "sender/provider_http_int.h"
#include "loop.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int calls;

static void on_done(void *ctx, const struct h2c_response *r)
{
	(void)ctx;
	calls++;
	if (r->error == H2C_OK) {
		CHECK(r->status >= 200 && r->status <= 599);
		CHECK(r->body_len < H2C_BODY_MAX && r->headers_len < H2C_HEADERS_MAX);
		CHECK(r->body_len == 0 || r->body[r->body_len] == '\0');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct h2d *d;
	struct h2d_conn *c;
	size_t step, i;
	int rc = 0;

	if (d == NULL) {
		struct h2c_opts o;
		memset(&o, 0, sizeof o);
		o.connections = 1;
		o.max_streams = 1;
		o.deadline_ms = 10000;
		o.max_in_flight = 4;
		o.allow_plain_http = 1;
		o.allow_http1 = 1;
		struct loop *lp = loop_new(); /* never run: the input is fed by hand */
		CHECK(lp != NULL && (d = h2d_new(&o, "http://127.0.0.1:9", lp, NULL)) != NULL);
	}
	if (size == 0)
		return 0;
	step = (size_t)data[0] % 64 + 1;
	data++, size--;
	calls = 0;
	c = &d->slot[0];
	CHECK(h2d_submit(d, "http://127.0.0.1:9/wns/x", NULL, "b", 1, on_done, NULL) == 0);
	c->state = H2D_READY;
	c->h1 = 1;
	CHECK(h2d_h1_start(c, d->pend_head) == 0);
	for (i = 0; i < size && rc == 0; i += step) {
		rc = h2d_h1_input(c, data + i, size - i < step ? size - i : step);
		if (rc == 0 && c->cur == NULL)
			break; /* answered: whatever follows is for no request */
	}
	if (rc == 0)
		h2d_h1_eof(c);
	CHECK(calls <= 1);
	if (c->cur) /* still waiting: the close fails it, as h2d_conn_close() does */
		h2d_finish(d, c->cur, H2D_FAILED, "closed");
	c->cur = NULL;
	c->in_len = 0;
	CHECK(calls == 1 && d->in_flight == 0);
	return 0;
}
