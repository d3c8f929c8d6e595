/*
 * fuzz_xmpp: the XMPP component session (stream reader, stanza tree, dispatch, publish and
 * ad-hoc handling) fed arbitrary server bytes after a valid handshake, in chunks whose sizes the
 * input chooses. The router answers every request (statuses rotate; registrations get nodes).
 * Checks: every request frame is valid and carries only what it may (lowercase domain,
 * alphanumeric node, counts in range), and everything the component wrote is well-formed XML.
 */
#include "fuzz_common.h"
#include "log.h"
#include "../../ingress/xmpp/xmpp_internal.h"
#include <ctype.h>
#include <expat.h>

/* A fake router link (router_link.h): requests of this turn, and those left unanswered (they
 * are completed busy later, as the link's deadline does). */
static uint8_t reqs[8][FRAME_MAX];
static size_t req_len[8];
static struct {
	link_done_fn done;
	void *ctx;
} req_cb[8], late[64];
static int nreq, nlate;
static uint64_t next_id;

static int submit(void *ctx, uint8_t *f, size_t n, link_done_fn done, void *done_ctx)
{
	(void)ctx;
	if (nreq >= 8 || nlate >= 56)
		return -1; /* a full router: the session must answer by itself */
	next_id++;
	for (int k = 0; k < 8; k++)
		f[8 + k] = (uint8_t)(next_id >> (8 * k));
	memcpy(reqs[nreq], f, n);
	req_len[nreq] = n;
	req_cb[nreq].done = done;
	req_cb[nreq++].ctx = done_ctx;
	return 0;
}

/* The link's deadline (or its loss): every request left unanswered completes busy. */
static void expire_all(void)
{
	int n = nlate;
	nlate = 0;
	for (int i = 0; i < n; i++)
		late[i].done(late[i].ctx, STATUS_BUSY, NULL);
}

static void check_xmpp_request(const struct frame *f)
{
	struct frame_field fl;
	switch (f->type) {
	case FRAME_XMPP_PUBLISH:
		CHECK(frame_get(f, TAG_NODE, &fl) == 0 && fl.len >= 1 && fl.len <= 64);
		for (uint32_t i = 0; i < fl.len; i++)
			CHECK(isalnum(fl.val[i]));
		CHECK(frame_get(f, TAG_DOMAIN, &fl) == 0 && fl.len >= 1);
		for (uint32_t i = 0; i < fl.len; i++)
			CHECK(!(fl.val[i] >= 'A' && fl.val[i] <= 'Z') && fl.val[i] > 0x20 && fl.val[i] != '/' && fl.val[i] != '@');
		CHECK(frame_u32(f, TAG_MSG_COUNT, 0) <= 0x7fffffffu);
		CHECK(frame_u32(f, TAG_PENDING_COUNT, 0) <= 0x7fffffffu);
		CHECK((frame_u32(f, TAG_FLAGS, 0) & ~FRAME_F_HIGH) == 0);
		break;
	case FRAME_XMPP_REGISTER:
		CHECK(frame_get(f, TAG_TOKEN, &fl) == 0 && fl.len >= 1 && fl.len <= 1024);
		for (uint32_t i = 0; i < fl.len; i++)
			CHECK(fl.val[i] >= 0x21 && fl.val[i] <= 0x7e);
		CHECK(frame_get(f, TAG_ACCOUNT, &fl) == 0 && fl.len == 40);
		CHECK(frame_get(f, TAG_IDENTITY, &fl) == 0 && fl.len == 32);
		break;
	case FRAME_XMPP_UNREGISTER:
		CHECK(frame_get(f, TAG_IDENTITY, &fl) == 0 && fl.len == 32);
		break;
	default:
		CHECK(!"unexpected request type");
	}
}

static void answer(struct xsess *s, unsigned *turn)
{
	static uint8_t buf[FRAME_MAX];
	int n = nreq;
	nreq = 0;
	for (int i = 0; i < n; i++) {
		struct frame f, r;
		struct frame_writer w;
		CHECK(frame_parse(reqs[i], req_len[i], &f, NULL) == 0);
		check_xmpp_request(&f);
		if (f.type == FRAME_XMPP_REGISTER && (*turn & 1)) {
			frame_begin(&w, buf, FRAME_NODES, f.id);
			frame_put_bytes(&w, TAG_ACCOUNT, "a", 1);
			frame_put_bytes(&w, TAG_NODE, "Node1", 5);
			frame_put_bytes(&w, TAG_SECRET, "Secret1", 7);
			frame_put_u32(&w, TAG_STATUS, STATUS_OK);
		} else {
			frame_begin(&w, buf, FRAME_REPLY, f.id);
			frame_put_u32(&w, TAG_STATUS, *turn % 7);
		}
		(*turn)++;
		if (*turn % 5 == 0) { /* some stay unanswered until the deadline */
			late[nlate++] = req_cb[i];
			continue;
		}
		CHECK(frame_parse(buf, (size_t)frame_end(&w), &r, NULL) == 0);
		req_cb[i].done(req_cb[i].ctx, r.type == FRAME_REPLY ? frame_u32(&r, TAG_STATUS, STATUS_ERROR) : STATUS_OK, &r);
	}
	(void)s;
}

/* What the component wrote after its stream header must be a sequence of well-formed
 * elements (plus a final </stream:stream> when it closed). */
static void check_output(const char *o, size_t n)
{
	XML_Parser p = XML_ParserCreate("UTF-8");
	const char *open = "<r xmlns:stream='http://etherx.jabber.org/streams'>", *close = "</stream:stream>";
	size_t cl = strlen(close);
	if (n >= cl && memcmp(o + n - cl, close, cl) == 0)
		n -= cl;
	CHECK(p != NULL);
	CHECK(XML_Parse(p, open, (int)strlen(open), 0) == XML_STATUS_OK);
	if (XML_Parse(p, o, (int)n, 0) != XML_STATUS_OK || XML_Parse(p, "</r>", 4, 1) != XML_STATUS_OK) {
		fprintf(stderr, "output not well-formed (%s): %.*s\n", XML_ErrorString(XML_GetErrorCode(p)), (int)n, o);
		CHECK(!"output well-formed");
	}
	XML_ParserFree(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *domains[] = {"example.org"};
	struct xs_conf c = {"push.localhost", "s3cr3t", 4096, 5000, 1, 1, 1, NULL, 0};
	static const char hdr[] = "<stream:stream xmlns='jabber:component:accept' "
				  "xmlns:stream='http://etherx.jabber.org/streams' id='abc'><handshake/>";
	struct xsess *s;
	struct xbuf all;
	unsigned turn = 0;
	size_t chunk;

	if (size < 1)
		return 0;
	log_set_level(LOG_ERROR); /* the session logs ignored stanzas; keep the fuzzer quiet */
	if (data[0] & 0x80) {
		c.adhoc_domains = domains;
		c.n_adhoc_domains = 1;
	}
	chunk = (size_t)(data[0] & 0x3f) + 1;
	data++;
	size--;
	nreq = 0;
	s = xs_new(&c, submit, NULL);
	CHECK(s != NULL);
	s->now = 1;
	CHECK(xs_start(s) == 0);
	xs_feed(s, hdr, sizeof hdr - 1);
	CHECK(s->state == XS_READY);
	xb_consume(&s->out, s->out.len);
	xb_init(&all, 1u << 24);
	while (size > 0 && s->state != XS_CLOSED) {
		size_t k = size < chunk ? size : chunk;
		xs_feed(s, data, k);
		data += k;
		size -= k;
		answer(s, &turn);
		s->now += 100;
		if (turn % 3 == 0)
			expire_all();
		xb_raw(&all, s->out.p ? s->out.p : "", s->out.len);
		xb_consume(&s->out, s->out.len);
	}
	if (s->state != XS_CLOSED)
		xs_shutdown(s);
	answer(s, &turn);
	expire_all();
	CHECK(xs_pending_count(s) == 0);
	xb_raw(&all, s->out.p ? s->out.p : "", s->out.len);
	check_output(all.p ? all.p : "", all.len);
	xb_free(&all);
	xs_free(s);
	return 0;
}
