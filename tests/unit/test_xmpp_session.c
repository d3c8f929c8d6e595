/* XMPP component session without sockets: handshake, stream errors, restricted XML and caps,
 * every dispatch row, every publish validation row and reply mapping, ad-hoc commands. */
#include "../../ingress/xmpp/xmpp_internal.h"
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERVER_HDR                                                                                     \
	"<?xml version='1.0'?><stream:stream xml:lang='en' from='push.localhost' "                      \
	"xmlns='jabber:component:accept' id='587bb93a-706b-42c8-a368-8b40103d0207' "                   \
	"xmlns:stream='http://etherx.jabber.org/streams'>"

/* ---- a fake router link: records frames, refuses when down, completes each request once
 * (router_link.h's contract; deadlines and lost links are router_link's, see test_router_link) ---- */
static uint8_t sent[16][8192];
static size_t sent_len[16];
static int nsent, router_down;
static struct {
	uint64_t id;
	link_done_fn done;
	void *ctx;
} open_reqs[64];
static uint64_t next_id;

static int submit(void *ctx, uint8_t *f, size_t n, link_done_fn done, void *done_ctx)
{
	size_t i;
	(void)ctx;
	for (i = 0; i < 64 && open_reqs[i].id != 0; i++)
		;
	if (router_down || nsent >= 16 || n > sizeof sent[0] || i == 64)
		return -1;
	next_id++;
	for (int k = 0; k < 8; k++) /* the link sets the id */
		f[8 + k] = (uint8_t)(next_id >> (8 * k));
	open_reqs[i].id = next_id;
	open_reqs[i].done = done;
	open_reqs[i].ctx = done_ctx;
	memcpy(sent[nsent], f, n);
	sent_len[nsent++] = n;
	return 0;
}

/* The link hands over the router's frame for an open request; any other is dropped. */
static void link_deliver(const uint8_t *buf, size_t n)
{
	struct frame f;
	CHECK(frame_parse(buf, n, &f, NULL) == 0, "reply frame parses");
	for (size_t i = 0; i < 64; i++)
		if (open_reqs[i].id != 0 && open_reqs[i].id == f.id) {
			open_reqs[i].id = 0;
			open_reqs[i].done(open_reqs[i].ctx, f.type == FRAME_REPLY ? frame_u32(&f, TAG_STATUS, STATUS_ERROR)
										    : STATUS_OK, &f);
			return;
		}
}

/* No answer: the link's deadline passed, or the link was lost or freed. */
static void link_fail_all(void)
{
	for (size_t i = 0; i < 64; i++)
		if (open_reqs[i].id != 0) {
			open_reqs[i].id = 0;
			open_reqs[i].done(open_reqs[i].ctx, STATUS_BUSY, NULL);
		}
}

/* The daemon frees the session, then the link (which completes what is left). */
static void sess_free(struct xsess *s)
{
	xs_free(s);
	link_fail_all();
}

static struct frame last_frame(void)
{
	struct frame f;
	memset(&f, 0, sizeof f);
	if (nsent > 0)
		frame_parse(sent[nsent - 1], sent_len[nsent - 1], &f, NULL);
	return f;
}

static int field_is(const struct frame *f, uint16_t tag, const char *want)
{
	struct frame_field fl;
	return frame_get(f, tag, &fl) == 0 && fl.len == strlen(want) && memcmp(fl.val, want, fl.len) == 0;
}

static void router_reply(struct xsess *s, uint64_t id, uint32_t status)
{
	static uint8_t buf[FRAME_MAX];
	struct frame_writer w;
	frame_begin(&w, buf, FRAME_REPLY, id);
	frame_put_u32(&w, TAG_STATUS, status);
	(void)s;
	link_deliver(buf, (size_t)frame_end(&w));
}

static void router_nodes(struct xsess *s, uint64_t id, const char *node, const char *secret, uint32_t status)
{
	static uint8_t buf[FRAME_MAX];
	struct frame_writer w;
	frame_begin(&w, buf, FRAME_NODES, id);
	frame_put_bytes(&w, TAG_ACCOUNT, "575743d57bd2e395071f9f88adce7f8bba664ea2", 40);
	frame_put_bytes(&w, TAG_NODE, node, strlen(node));
	frame_put_bytes(&w, TAG_SECRET, secret, strlen(secret));
	frame_put_u32(&w, TAG_STATUS, status);
	(void)s;
	link_deliver(buf, (size_t)frame_end(&w));
}

/* ---- session helpers ---- */
static struct xs_conf conf;
static const char *domains[] = {"example.org"};

static void conf_defaults(void)
{
	memset(&conf, 0, sizeof conf);
	conf.domain = "push.localhost";
	conf.secret = "s3cr3t";
	conf.max_stanza = 4096;
	conf.router_timeout_ms = 5000;
}

/* Takes the session's output (a static copy) and empties it. */
static const char *out(struct xsess *s)
{
	static char copy[1 << 20];
	snprintf(copy, sizeof copy, "%s", s->out.p ? s->out.p : "");
	xb_consume(&s->out, s->out.len);
	return copy;
}

static void feed(struct xsess *s, const char *x)
{
	xs_feed(s, x, strlen(x));
}

static struct xsess *up(void)
{
	struct xsess *s = xs_new(&conf, submit, NULL);
	nsent = 0;
	router_down = 0;
	s->now = 1000;
	xs_start(s);
	out(s);
	feed(s, SERVER_HDR "<handshake/>");
	out(s);
	return s;
}

/* Feeds one IQ and returns the output it caused. */
static const char *iq(struct xsess *s, const char *x)
{
	feed(s, x);
	return out(s);
}

static void test_handshake(void)
{
	struct xsess *s = xs_new(&conf, submit, NULL);
	const char *o;
	CHECK(s->state == XS_IDLE, "idle");
	xs_start(s);
	o = out(s);
	CHECK(strcmp(o, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
			"xmlns:stream='http://etherx.jabber.org/streams' to='push.localhost'>") == 0,
	      "stream header: %s", o);
	CHECK(s->state == XS_WAIT_HEADER, "waits for the header");
	feed(s, SERVER_HDR);
	o = out(s);
	CHECK(strcmp(o, "<handshake>ff2ac05dbc0227c375d65ac766e1666e6145ab75</handshake>") == 0, "handshake: %s", o);
	CHECK(s->state == XS_WAIT_HANDSHAKE, "waits for the handshake reply");
	feed(s, "<handshake/>");
	CHECK(s->state == XS_READY, "ready");
	CHECK(xml_reparse_deferral_disabled(s->rd), "reparse deferral off or absent");

	/* Restart: a second stream on the same session gets the second vector. */
	xs_start(s);
	out(s);
	feed(s, "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' "
		"id=\"9ba91151-3bba-4706-9db2-36871162c92a\">");
	o = out(s);
	CHECK(strcmp(o, "<handshake>29d50eda0275edeeda139f7e6e7078809c8ea051</handshake>") == 0, "vector 2: %s", o);

	/* not-authorized */
	feed(s, "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text "
		"xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Given token does not match calculated token</text>"
		"</stream:error></stream:stream>");
	CHECK(s->state == XS_CLOSED && strcmp(s->end_cond, "not-authorized") == 0, "not-authorized: %s", s->end_cond);

	/* host-unknown, conflict */
	xs_start(s);
	feed(s, SERVER_HDR "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
	CHECK(s->state == XS_CLOSED && strcmp(s->end_cond, "host-unknown") == 0, "host-unknown");
	xs_start(s);
	feed(s, SERVER_HDR "<handshake/><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
			   "</stream:error>");
	CHECK(s->state == XS_CLOSED && strcmp(s->end_cond, "conflict") == 0, "conflict");

	/* No id in the header; a stanza before the handshake. */
	xs_start(s);
	feed(s, "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>");
	CHECK(s->state == XS_CLOSED && s->end_cond[0] == '\0', "header without id ends the stream");
	xs_start(s);
	feed(s, SERVER_HDR "<iq type='get' id='1' from='a'/>");
	CHECK(s->state == XS_CLOSED, "stanza before the handshake ends the stream");
	/* Wrong root */
	xs_start(s);
	out(s);
	feed(s, "<foo/>");
	CHECK(s->state == XS_CLOSED && strstr(out(s), "<invalid-namespace") != NULL, "wrong root: invalid-namespace");
	/* Server closes the stream */
	xs_start(s);
	feed(s, SERVER_HDR "<handshake/>");
	out(s);
	feed(s, "</stream:stream>");
	CHECK(s->state == XS_CLOSED && strcmp(out(s), "</stream:stream>") == 0, "server close answered with ours");
	sess_free(s);
}

static void expect_stream_error(const char *prefix, const char *input, const char *cond, const char *what)
{
	struct xsess *s = up();
	const char *o;
	char want[256];
	feed(s, prefix);
	out(s);
	feed(s, input);
	o = out(s);
	snprintf(want, sizeof want, "<stream:error><%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
				    "</stream:stream>", cond);
	CHECK(s->state == XS_CLOSED && strcmp(o, want) == 0, "%s: state %d, output %s", what, s->state, o);
	CHECK(s->stream_error_sent, "%s: stream error noted", what);
	sess_free(s);
}

static char *repeat(const char *unit, int n, const char *head, const char *tail)
{
	size_t ul = strlen(unit), hl = strlen(head), tl = strlen(tail);
	char *p = malloc(hl + ul * (size_t)n + tl + 1), *q = p;
	memcpy(q, head, hl);
	q += hl;
	for (int i = 0; i < n; i++, q += ul)
		memcpy(q, unit, ul);
	memcpy(q, tail, tl + 1);
	return p;
}

static void test_restrictions_and_caps(void)
{
	struct xsess *s;
	char *x, *y;

	expect_stream_error("", "<!-- hello -->", "restricted-xml", "comment");
	expect_stream_error("", "<?foo bar?>", "restricted-xml", "processing instruction");
	expect_stream_error("<iq type='get' id='1' from='a' to='push.localhost'>", "<!-- in a stanza -->",
			    "restricted-xml", "comment inside a stanza");
	expect_stream_error("", "<iq type='get' id='1' from='a'><a></b></iq>", "not-well-formed", "mismatched tags");
	expect_stream_error("", "<iq type='get' id='1' from='a'>&foo;</iq>", "not-well-formed", "undefined entity");
	expect_stream_error("", "<iq xmlns:p='x' type='get' id='1' from='a'><q:x/></iq>", "not-well-formed",
			    "unbound prefix");

	/* DOCTYPE with an entity (billion laughs style) before the stream header. */
	s = xs_new(&conf, submit, NULL);
	xs_start(s);
	out(s);
	feed(s, "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;'>]>");
	CHECK(s->state == XS_CLOSED && strstr(out(s), "<restricted-xml ") != NULL, "DOCTYPE: restricted-xml");
	sess_free(s);

	/* Depth: 32 elements below the stream are fine, 33 are not. */
	x = repeat("<a>", 31, "<iq type='get' id='d' from='a.example' to='push.localhost'>", "");
	y = repeat("</a>", 31, "", "</iq>");
	s = up();
	feed(s, x);
	feed(s, y);
	CHECK(s->state == XS_READY && strstr(out(s), "service-unavailable") != NULL, "depth 32 accepted");
	sess_free(s);
	free(x);
	free(y);
	x = repeat("<a>", 32, "<iq type='get' id='d' from='a' to='push.localhost'>", "");
	expect_stream_error("", x, "policy-violation", "depth 33");
	free(x);

	/* Attributes: 64 fine, 65 not. */
	char attrs[65 * 16] = "", one[16];
	for (int i = 0; i < 61; i++) {
		snprintf(one, sizeof one, " a%d='v'", i);
		strcat(attrs, one);
	}
	char st[2048];
	snprintf(st, sizeof st, "<iq type='get' id='1' from='a.example'%s><ping xmlns='urn:xmpp:ping'/></iq>", attrs);
	s = up();
	CHECK(strstr(iq(s, st), "type='result'") != NULL && s->state == XS_READY, "64 attributes accepted");
	sess_free(s);
	snprintf(st, sizeof st, "<iq type='get' id='1' from='a' to='b'%s/>", attrs);
	expect_stream_error("", st, "policy-violation", "65 attributes");

	/* Stanza size: 4096 bytes is the cap here. */
	x = repeat("x", 3900, "<iq type='get' id='1' from='a.example'><ping xmlns='urn:xmpp:ping'/><t>", "</t></iq>");
	s = up();
	CHECK(strstr(iq(s, x), "type='result'") != NULL, "stanza under the cap");
	sess_free(s);
	free(x);
	x = repeat("x", 4100, "<iq type='get' id='1' from='a'><t>", "</t></iq>");
	expect_stream_error("", x, "policy-violation", "stanza over the cap");
	free(x);
	x = repeat("y", 5000, "<iq type='get' id='1' from='a' big='", "");
	expect_stream_error("", x, "policy-violation", "endless start tag");
	free(x);
	/* The cap is per stanza: many small ones are fine. */
	s = up();
	x = repeat("<iq type='get' id='p' from='a.example'><ping xmlns='urn:xmpp:ping'/></iq>", 200, "", "");
	feed(s, x);
	CHECK(s->state == XS_READY && s->out.len > 200 * 50, "200 stanzas in a row");
	sess_free(s);
	free(x);
	/* Whitespace keepalives from the server between stanzas. */
	s = up();
	feed(s, "   \n ");
	CHECK(s->state == XS_READY && strcmp(out(s), "") == 0, "whitespace ignored");
	sess_free(s);
}

#define PUBLISH_HEAD "<iq id='882e50292ac8a575e12fe057ba06ba594f24297ea9e9dbd96507fe40c61b24af' type='set' "
#define PROSODY_PUBLISH                                                                                 \
	PUBLISH_HEAD "from='localhost' to='push.localhost'>"                                          \
		     "<pubsub xmlns='http://jabber.org/protocol/pubsub'>"                              \
		     "<publish node='NODE123abc'><item>"                                              \
		     "<notification xmlns='urn:xmpp:push:0'>"                                         \
		     "<x type='form' xmlns='jabber:x:data'>"                                          \
		     "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:push:summary</value></field>" \
		     "<field var='message-count' type='text-single'><value>1</value></field>"          \
		     "<field var='pending-subscription-count' type='text-single'/>"                   \
		     "<field var='last-message-sender' type='jid-single'/>"                           \
		     "<field var='last-message-body' type='text-single'><value>New Message!</value></field>" \
		     "</x></notification></item></publish>"                                           \
		     "<publish-options>"                                                              \
		     "<x type='submit' xmlns='jabber:x:data'>"                                        \
		     "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" \
		     "<field var='secret'><value>SECRETxyz789</value></field></x></publish-options></pubsub></iq>"

#define RESULT "<iq type='result' from='push.localhost' to='localhost' id='882e50292ac8a575e12fe057ba06ba594f24297ea9e9dbd96507fe40c61b24af'/>"
#define ERR(type, cond)                                                                               \
	"<iq type='error' from='push.localhost' to='localhost' "                                      \
	"id='882e50292ac8a575e12fe057ba06ba594f24297ea9e9dbd96507fe40c61b24af'><error type='" type     \
	"'><" cond " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"

static void test_publish(void)
{
	struct xsess *s = up();
	struct frame f;
	const char *o;

	/* The exact Prosody publish (docs/xmpp.md "Publish"). */
	o = iq(s, PROSODY_PUBLISH);
	f = last_frame();
	CHECK(strcmp(o, "") == 0 && nsent == 1, "no reply before the router answers");
	CHECK(f.type == FRAME_XMPP_PUBLISH, "publish frame");
	CHECK(field_is(&f, TAG_NODE, "NODE123abc"), "node");
	CHECK(field_is(&f, TAG_SECRET, "SECRETxyz789"), "secret");
	CHECK(field_is(&f, TAG_DOMAIN, "localhost"), "domain");
	CHECK(frame_u32(&f, TAG_MSG_COUNT, 99) == 1, "message count");
	CHECK(frame_u32(&f, TAG_PENDING_COUNT, 99) == 0, "pending count");
	CHECK(frame_u32(&f, TAG_FLAGS, 0) == FRAME_F_HIGH, "high priority");
	CHECK(xs_pending_count(s) == 1, "one pending");
	router_reply(s, f.id, STATUS_OK);
	o = out(s);
	CHECK(strcmp(o, RESULT) == 0, "result: %s", o);
	CHECK(xs_pending_count(s) == 0, "none pending");
	router_reply(s, f.id, STATUS_OK);
	CHECK(strcmp(out(s), "") == 0, "a second reply to the same id is ignored");

	/* Reply mapping (docs/xmpp.md). */
	struct {
		uint32_t st;
		const char *want;
	} map[] = {
		{STATUS_NOT_FOUND, ERR("cancel", "item-not-found")},
		{STATUS_FORBIDDEN, ERR("auth", "forbidden")},
		{STATUS_UNAVAILABLE, ERR("wait", "recipient-unavailable")},
		{STATUS_BUSY, ERR("wait", "recipient-unavailable")},
		{STATUS_ERROR, ERR("wait", "recipient-unavailable")},
		{STATUS_FAILED, ERR("wait", "recipient-unavailable")},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		iq(s, PROSODY_PUBLISH);
		f = last_frame();
		router_reply(s, f.id, map[i].st);
		o = out(s);
		CHECK(strcmp(o, map[i].want) == 0, "status %u: %s", map[i].st, o);
	}
	/* Router silent past the link's deadline; router unreachable. */
	iq(s, PROSODY_PUBLISH);
	CHECK(strcmp(out(s), "") == 0, "nothing before the link completes the request");
	link_fail_all();
	CHECK(strcmp(out(s), ERR("wait", "recipient-unavailable")) == 0, "timeout: wait");
	CHECK(xs_pending_count(s) == 0, "none pending after the timeout");
	router_down = 1;
	o = iq(s, PROSODY_PUBLISH);
	CHECK(strcmp(o, ERR("wait", "recipient-unavailable")) == 0, "router down: wait at once");
	router_down = 0;
	/* Router connection lost with requests pending. */
	iq(s, PROSODY_PUBLISH);
	iq(s, PROSODY_PUBLISH);
	CHECK(xs_pending_count(s) == 2, "two pending");
	link_fail_all();
	CHECK(strcmp(out(s), ERR("wait", "recipient-unavailable") ERR("wait", "recipient-unavailable")) == 0,
	      "router lost: wait, for each");

	/* Fed one byte at a time, the same frame comes out. */
	nsent = 0;
	for (const char *p = PROSODY_PUBLISH; *p; p++)
		xs_feed(s, p, 1);
	f = last_frame();
	CHECK(nsent == 1 && field_is(&f, TAG_NODE, "NODE123abc") && frame_u32(&f, TAG_MSG_COUNT, 0) == 1,
	      "byte-by-byte feeding");
	router_reply(s, f.id, STATUS_OK);
	CHECK(strcmp(out(s), RESULT) == 0, "byte-by-byte result");
	sess_free(s);
}

#define OPTS(secret)                                                                                  \
	"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"       \
	"http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'>" secret \
	"</field></x></publish-options>"

static void expect_reject(const char *stanza, const char *want, const char *what)
{
	struct xsess *s = up();
	const char *o = iq(s, stanza);
	CHECK(strcmp(o, want) == 0 && nsent == 0, "%s: %s", what, o);
	sess_free(s);
}

static struct frame expect_frame(struct xsess *s, const char *stanza, const char *what)
{
	nsent = 0;
	const char *o = iq(s, stanza);
	CHECK(strcmp(o, "") == 0 && nsent == 1, "%s: sent (%s)", what, o);
	return last_frame();
}

static void test_publish_validation(void)
{
	struct xsess *s;
	struct frame f;
	const char *ps = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>";
	char st[4096];

	/* 1 */
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost' to='push.localhost'>%s" OPTS("<value>s</value>") "</pubsub></iq>", ps);
	expect_reject(st, ERR("modify", "bad-request"), "pubsub without publish");
	snprintf(st, sizeof st, "<iq id='882e50292ac8a575e12fe057ba06ba594f24297ea9e9dbd96507fe40c61b24af' type='get' "
				"from='localhost' to='push.localhost'>%s<publish node='n'/>" OPTS("<value>s</value>") "</pubsub></iq>", ps);
	expect_reject(st, ERR("modify", "bad-request"), "publish in a get");
	/* 2 */
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost/res' to='push.localhost'>%s<publish node='n'/>" OPTS("<value>s</value>") "</pubsub></iq>", ps);
	expect_reject(st, "<iq type='error' from='push.localhost' to='localhost/res' id='882e50292ac8a575e12fe057ba06ba594f24297ea9e9dbd96507fe40c61b24af'>"
			  "<error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
		      "from with a resource");
	snprintf(st, sizeof st, PUBLISH_HEAD "from='@localhost' to='push.localhost'>%s<publish node='n'/>" OPTS("<value>s</value>") "</pubsub></iq>", ps);
	expect_reject(st, "<iq type='error' from='push.localhost' to='@localhost' id='882e50292ac8a575e12fe057ba06ba594f24297ea9e9dbd96507fe40c61b24af'>"
			  "<error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
		      "from not a JID");
	/* 3 */
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost' to='push.localhost'>%s<publish/>" OPTS("<value>s</value>") "</pubsub></iq>", ps);
	expect_reject(st, ERR("auth", "forbidden"), "no node");
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost' to='push.localhost'>%s<publish node=''/>" OPTS("<value>s</value>") "</pubsub></iq>", ps);
	expect_reject(st, ERR("auth", "forbidden"), "empty node");
	/* 4 */
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost' to='push.localhost'>%s<publish node='n'/></pubsub></iq>", ps);
	expect_reject(st, ERR("auth", "forbidden"), "no publish-options");
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost' to='push.localhost'>%s<publish node='n'/>" OPTS("") "</pubsub></iq>", ps);
	expect_reject(st, ERR("auth", "forbidden"), "secret without value");
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost' to='push.localhost'>%s<publish node='n'/>" OPTS("<value></value>") "</pubsub></iq>", ps);
	expect_reject(st, ERR("auth", "forbidden"), "empty secret");
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost' to='push.localhost'>%s<publish node='n'/>"
				"<publish-options><x xmlns='jabber:x:data'><field var='other'><value>s</value></field></x>"
				"</publish-options></pubsub></iq>", ps);
	expect_reject(st, ERR("auth", "forbidden"), "no secret field");
	/* Order: the node check comes before the secret check. */
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost' to='push.localhost'>%s<publish/></pubsub></iq>", ps);
	expect_reject(st, ERR("auth", "forbidden"), "neither node nor secret");
	/* A node that cannot exist is item-not-found without asking. */
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost' to='push.localhost'>%s<publish node='no-such/node'/>" OPTS("<value>s</value>") "</pubsub></iq>", ps);
	expect_reject(st, ERR("cancel", "item-not-found"), "node with other characters");

	/* Lenient: ejabberd-style (bare user JID, no summary), secret of odd characters. */
	s = up();
	snprintf(st, sizeof st, PUBLISH_HEAD "from='User@Example.ORG' to='push.localhost'>%s<publish node='abc'><item/></publish>"
				OPTS("<value>not alnum!</value>") "</pubsub></iq>", ps);
	f = expect_frame(s, st, "ejabberd style");
	CHECK(field_is(&f, TAG_DOMAIN, "example.org"), "domain lowercased, localpart dropped");
	CHECK(field_is(&f, TAG_SECRET, "!"), "impossible secret sent as a never-matching value");
	CHECK(frame_u32(&f, TAG_MSG_COUNT, 9) == 0 && frame_u32(&f, TAG_PENDING_COUNT, 9) == 0 &&
	      frame_u32(&f, TAG_FLAGS, 9) == 0, "no summary: zero counts, not high");
	/* Summary form directly in the item, type submit, odd counts, empty body. */
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost' to='push.localhost'>%s<publish node='abc'><item>"
				"<x xmlns='jabber:x:data' type='submit'><field var='message-count'><value>5</value></field>"
				"<field var='pending-subscription-count'><value>99999999999</value></field>"
				"<field var='last-message-body'><value></value></field></x></item></publish>"
				OPTS("<value>sec</value>") "</pubsub></iq>", ps);
	f = expect_frame(s, st, "summary in the item");
	CHECK(frame_u32(&f, TAG_MSG_COUNT, 0) == 5 && frame_u32(&f, TAG_PENDING_COUNT, 0) == 2147483647u,
	      "counts parsed and clamped");
	CHECK(frame_u32(&f, TAG_FLAGS, 9) == 0, "empty body: not high");
	/* Only the first item; invalid counts are 0; the secret comes from the first value. */
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost' to='push.localhost'>%s<publish node='abc'>"
				"<item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data'>"
				"<field var='message-count'><value>-4</value></field>"
				"<field var='last-message-body'><value>Hi</value></field></x></notification></item>"
				"<item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data'>"
				"<field var='message-count'><value>7</value></field></x></notification></item></publish>"
				OPTS("<value>first</value><value>second</value>") "</pubsub></iq>", ps);
	f = expect_frame(s, st, "two items");
	CHECK(frame_u32(&f, TAG_MSG_COUNT, 9) == 0 && frame_u32(&f, TAG_FLAGS, 0) == FRAME_F_HIGH, "first item used");
	CHECK(field_is(&f, TAG_SECRET, "first"), "first secret value");
	/* jabber:client / jabber:server stanza namespaces, double quotes. */
	snprintf(st, sizeof st, "<iq xmlns=\"jabber:client\" id=\"c1\" type=\"set\" from=\"localhost\" to=\"push.localhost\">"
				"%s<publish node=\"abc\"/>" OPTS("<value>s</value>") "</pubsub></iq>", ps);
	f = expect_frame(s, st, "jabber:client namespace");
	snprintf(st, sizeof st, "<iq xmlns='jabber:server' id='c2' type='set' from='localhost' to='push.localhost'>"
				"%s<publish node='abc'/>" OPTS("<value>s</value>") "</pubsub></iq>", ps);
	f = expect_frame(s, st, "jabber:server namespace");
	/* The body never reaches the frame. */
	snprintf(st, sizeof st, PUBLISH_HEAD "from='localhost' to='push.localhost'>%s<publish node='abc'><item>"
				"<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data'>"
				"<field var='last-message-sender'><value>juliet@example.com</value></field>"
				"<field var='last-message-body'><value>TOPSECRETBODY</value></field></x></notification></item></publish>"
				OPTS("<value>s</value>") "</pubsub></iq>", ps);
	f = expect_frame(s, st, "body and sender");
	CHECK(memmem(sent[0], sent_len[0], "TOPSECRETBODY", 13) == NULL &&
	      memmem(sent[0], sent_len[0], "juliet", 6) == NULL, "body and sender not in the frame");
	sess_free(s);
}

static void test_dispatch(void)
{
	struct xsess *s = up();
	const char *o;

	o = iq(s, "<iq type='get' id='d1' from='alice@example.org/res' to='push.localhost'>"
		  "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
	CHECK(strcmp(o, "<iq type='result' from='push.localhost' to='alice@example.org/res' id='d1'>"
			"<query xmlns='http://jabber.org/protocol/disco#info'>"
			"<identity category='pubsub' type='push' name='Push service'/>"
			"<feature var='http://jabber.org/protocol/disco#info'/><feature var='urn:xmpp:push:0'/>"
			"</query></iq>") == 0, "disco#info: %s", o);
	o = iq(s, "<iq type='get' id='d2' from='a.example' to='push.localhost'>"
		  "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
	CHECK(strcmp(o, "<iq type='result' from='push.localhost' to='a.example' id='d2'>"
			"<query xmlns='http://jabber.org/protocol/disco#items'/></iq>") == 0, "disco#items: %s", o);
	o = iq(s, "<iq type='get' id='d3' from='a.example' to='push.localhost'>"
		  "<query xmlns='http://jabber.org/protocol/disco#info' node='x'/></iq>");
	CHECK(strstr(o, "<error type='cancel'><item-not-found ") != NULL, "disco#info on an unknown node");
	o = iq(s, "<iq type='get' id='d4' from='a.example' to='push.localhost'>"
		  "<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>");
	CHECK(strstr(o, "<item-not-found ") != NULL, "commands node without ad-hoc");
	o = iq(s, "<iq type='get' id='p1' from='a.example' to='push.localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
	CHECK(strcmp(o, "<iq type='result' from='push.localhost' to='a.example' id='p1'/>") == 0, "ping: %s", o);
	o = iq(s, "<iq type='get' id='u1' from='a.example' to='push.localhost'><query xmlns='jabber:iq:version'/></iq>");
	CHECK(strcmp(o, "<iq type='error' from='push.localhost' to='a.example' id='u1'><error type='cancel'>"
			"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>") == 0,
	      "unknown get: %s", o);
	o = iq(s, "<iq type='set' id='u2' from='a.example' to='push.localhost'><query xmlns='jabber:iq:roster'/></iq>");
	CHECK(strstr(o, "<service-unavailable ") != NULL && strstr(o, "id='u2'"), "unknown set");
	o = iq(s, "<iq type='set' id='u3' from='a.example' to='push.localhost'/>");
	CHECK(strstr(o, "<service-unavailable ") != NULL, "set without payload");
	o = iq(s, "<iq type='set' id='u4' from='a@example.org/r' to='push.localhost'>"
		  "<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm'/></iq>");
	CHECK(strstr(o, "<service-unavailable ") != NULL, "command without ad-hoc: service-unavailable");
	o = iq(s, "<iq type='set' id='u5' from='a.example' to='push.localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
	CHECK(strstr(o, "<service-unavailable ") != NULL, "ping as set");
	o = iq(s, "<iq type='get' id='u6' from='a.example' to='push.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/><x/></iq>");
	CHECK(strstr(o, "type='result'") != NULL, "the first child decides");
	/* Ignored */
	CHECK(strcmp(iq(s, "<iq type='result' id='r1' from='a.example' to='push.localhost'/>"), "") == 0, "result ignored");
	CHECK(strcmp(iq(s, "<iq type='error' id='r2' from='a.example' to='push.localhost'><error type='cancel'/></iq>"), "") == 0,
	      "error ignored");
	CHECK(strcmp(iq(s, "<iq type='get' from='a.example' to='push.localhost'><ping xmlns='urn:xmpp:ping'/></iq>"), "") == 0,
	      "no id ignored");
	CHECK(strcmp(iq(s, "<iq type='get' id='n1' to='push.localhost'><ping xmlns='urn:xmpp:ping'/></iq>"), "") == 0,
	      "no from ignored");
	CHECK(strcmp(iq(s, PUBLISH_HEAD "to='push.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>"), "") == 0 &&
	      nsent == 0, "publish without from ignored");
	CHECK(strcmp(iq(s, "<iq type='bogus' id='b1' from='a.example'/>"), "") == 0, "unknown type ignored");
	CHECK(strcmp(iq(s, "<message from='a@b' to='push.localhost'><body>x</body></message>"), "") == 0, "message ignored");
	CHECK(strcmp(iq(s, "<presence from='a@b' to='push.localhost'/>"), "") == 0, "presence ignored");
	CHECK(strcmp(iq(s, "<iq xmlns='urn:other' type='get' id='o1' from='a.example'><ping xmlns='urn:xmpp:ping'/></iq>"), "") == 0,
	      "iq in another namespace ignored");
	/* Reply addressing and escaping. */
	o = iq(s, "<iq type='get' id=\"a'&amp;&lt;&gt;&quot;\" from='a.example' to='sub@push.localhost/r'><ping xmlns='urn:xmpp:ping'/></iq>");
	CHECK(strcmp(o, "<iq type='result' from='sub@push.localhost/r' to='a.example' id='a&apos;&amp;&lt;&gt;&quot;'/>") == 0,
	      "escaped id, from = the address asked: %s", o);
	o = iq(s, "<iq type='get' id='x' from='a.example' to='other.example'><ping xmlns='urn:xmpp:ping'/></iq>");
	CHECK(strstr(o, "from='push.localhost'") != NULL, "from stays in our domain");
	o = iq(s, "<iq type='get' id='x' from='a.example'><ping xmlns='urn:xmpp:ping'/></iq>");
	CHECK(strstr(o, "from='push.localhost'") != NULL, "no to: our domain");
	/* Our own ping and its answer. */
	xs_ping(s, "localhost");
	o = out(s);
	CHECK(strcmp(o, "<iq type='get' from='push.localhost' to='localhost' id='ping-1'><ping xmlns='urn:xmpp:ping'/></iq>") == 0,
	      "ping: %s", o);
	CHECK(strcmp(s->ping_id, "ping-1") == 0, "ping outstanding");
	iq(s, "<iq type='result' id='ping-1' from='localhost' to='push.localhost'/>");
	CHECK(s->ping_id[0] == '\0', "ping answered");

	/* Shutdown: pending answered, then our close, then the server's. */
	iq(s, PROSODY_PUBLISH);
	xs_shutdown(s);
	o = out(s);
	CHECK(strcmp(o, ERR("wait", "recipient-unavailable") "</stream:stream>") == 0, "shutdown: %s", o);
	CHECK(s->state == XS_CLOSING, "closing");
	CHECK(xs_pending_count(s) == 0, "shutdown: nothing pending");
	link_fail_all(); /* the link completes the request later: answered already, nothing more */
	CHECK(strcmp(out(s), "") == 0, "shutdown: no second answer");
	feed(s, "</stream:stream>");
	CHECK(s->state == XS_CLOSED && strcmp(s->end_reason, "closed") == 0 && strcmp(out(s), "") == 0, "closed");
	sess_free(s);
}

#define CMD_HEAD(id, node, action) \
	"<iq type='set' id='" id "' from='alice@Example.org/Conversations.sAdA' to='push.localhost'>" \
	"<command xmlns='http://jabber.org/protocol/commands' node='" node "' " action ">"
#define FIELD(var, v) "<field var='" var "'><value>" v "</value></field>"
#define FORM(fields) "<x xmlns='jabber:x:data' type='submit'>" fields "</x>"
#define CMD_TAIL "</command></iq>"

static void test_adhoc(void)
{
	struct xsess *s;
	struct frame f;
	struct frame_field fl;
	const char *o;
	uint8_t ident[32];
	char big[1100 + 200];

	conf.adhoc = 1;
	conf.fcm = 1;
	s = up();
	o = iq(s, "<iq type='get' id='d1' from='a@example.org/r' to='push.localhost'>"
		  "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
	CHECK(strstr(o, "<feature var='http://jabber.org/protocol/commands'/></query>") != NULL, "commands feature");
	o = iq(s, "<iq type='get' id='d2' from='a@example.org/r' to='push.localhost'>"
		  "<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>");
	CHECK(strcmp(o, "<iq type='result' from='push.localhost' to='a@example.org/r' id='d2'>"
			"<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'>"
			"<item jid='push.localhost' node='register-push-fcm' name='Register an FCM token'/>"
			"<item jid='push.localhost' node='unregister-push-fcm' name='Unregister an FCM token'/>"
			"</query></iq>") == 0, "command list (fcm only): %s", o);
	o = iq(s, "<iq type='get' id='d3' from='a@example.org/r' to='push.localhost'>"
		  "<query xmlns='http://jabber.org/protocol/disco#info' node='register-push-fcm'/></iq>");
	CHECK(strstr(o, "<identity category='automation' type='command-node'") != NULL &&
	      strstr(o, "<feature var='jabber:x:data'/>") != NULL, "command node info: %s", o);
	o = iq(s, "<iq type='get' id='d4' from='a@example.org/r' to='push.localhost'>"
		  "<query xmlns='http://jabber.org/protocol/disco#info' node='http://jabber.org/protocol/commands'/></iq>");
	CHECK(strstr(o, "type='command-list'") != NULL, "commands node info");
	o = iq(s, "<iq type='get' id='d5' from='a@example.org/r' to='push.localhost'>"
		  "<query xmlns='http://jabber.org/protocol/disco#info' node='register-push-apns'/></iq>");
	CHECK(strstr(o, "<item-not-found ") != NULL, "apns node not configured");

	/* Register as docs/xmpp.md "Ad-hoc registration" (domain written in mixed case:
	 * lowercased). */
	nsent = 0;
	o = iq(s, CMD_HEAD("cXo5bNCF6wgD", "register-push-fcm", "action='execute'")
		  FORM(FIELD("token", "FCM-TOKEN:abc_def-1") FIELD("device-id", "92afd7a91cdba9a0")) CMD_TAIL);
	f = last_frame();
	CHECK(strcmp(o, "") == 0 && nsent == 1 && f.type == FRAME_XMPP_REGISTER, "register frame (%s)", o);
	CHECK(frame_u32(&f, TAG_PLATFORM, 0) == PLATFORM_ANDROID, "fcm = android");
	xmpp_adhoc_identity("alice@example.org", "92afd7a91cdba9a0", NULL, ident);
	CHECK(frame_get(&f, TAG_IDENTITY, &fl) == 0 && fl.len == 32 && memcmp(fl.val, ident, 32) == 0, "identity");
	CHECK(field_is(&f, TAG_TOKEN, "FCM-TOKEN:abc_def-1"), "token");
	CHECK(field_is(&f, TAG_DOMAIN, "example.org"), "bound to the sender's domain");
	CHECK(field_is(&f, TAG_ACCOUNT, "575743d57bd2e395071f9f88adce7f8bba664ea2"), "account hash");
	CHECK(frame_get(&f, TAG_CHANNEL, &fl) < 0, "no channel");
	router_nodes(s, f.id, "N8bqNODE", "r2KxSECRET", STATUS_OK);
	o = out(s);
	const char *head = "<iq type='result' from='push.localhost' to='alice@Example.org/Conversations.sAdA' "
			   "id='cXo5bNCF6wgD'><command xmlns='http://jabber.org/protocol/commands' "
			   "node='register-push-fcm' sessionid='";
	CHECK(strncmp(o, head, strlen(head)) == 0, "reply head: %s", o);
	CHECK(strstr(o, "' status='completed'><x xmlns='jabber:x:data' type='form'>"
			"<field var='jid' type='jid-single'><value>push.localhost</value></field>"
			"<field var='node' type='text-single'><value>N8bqNODE</value></field>"
			"<field var='secret' type='text-single'><value>r2KxSECRET</value></field></x></command></iq>") != NULL,
	      "reply form: %s", o);

	/* android-id alias and a room. */
	nsent = 0;
	iq(s, CMD_HEAD("r2", "register-push-fcm", "")
	      FORM(FIELD("token", "T") FIELD("android-id", "92afd7a91cdba9a0") FIELD("muc", "room@Conference.example.org")) CMD_TAIL);
	f = last_frame();
	CHECK(nsent == 1 && field_is(&f, TAG_CHANNEL, "30be82eb00f86644993eaeda4c46ecf51c42715c"), "channel hash");
	CHECK(field_is(&f, TAG_DOMAIN, "conference.example.org"), "room registration bound to the room's domain");
	xmpp_adhoc_identity("alice@example.org", "92afd7a91cdba9a0", "room@conference.example.org", ident);
	CHECK(frame_get(&f, TAG_IDENTITY, &fl) == 0 && memcmp(fl.val, ident, 32) == 0, "room identity");
	router_nodes(s, f.id, "n", "s", STATUS_ERROR);
	CHECK(strstr(out(s), "<error type='cancel'><internal-server-error ") != NULL, "router refused: internal-server-error");
	iq(s, CMD_HEAD("r3", "register-push-fcm", "") FORM(FIELD("token", "T") FIELD("device-id", "d")) CMD_TAIL);
	link_fail_all();
	CHECK(strstr(out(s), "<internal-server-error ") != NULL, "router timeout: internal-server-error");
	router_down = 1;
	o = iq(s, CMD_HEAD("r4", "register-push-fcm", "") FORM(FIELD("token", "T") FIELD("device-id", "d")) CMD_TAIL);
	CHECK(strstr(o, "<internal-server-error ") != NULL, "router down: internal-server-error");
	router_down = 0;

	/* Unregister */
	nsent = 0;
	iq(s, CMD_HEAD("u1", "unregister-push-fcm", "action='execute'") FORM(FIELD("device-id", "92afd7a91cdba9a0")) CMD_TAIL);
	f = last_frame();
	xmpp_adhoc_identity("alice@example.org", "92afd7a91cdba9a0", NULL, ident);
	CHECK(nsent == 1 && f.type == FRAME_XMPP_UNREGISTER && frame_u32(&f, TAG_PLATFORM, 0) == PLATFORM_ANDROID &&
	      frame_get(&f, TAG_IDENTITY, &fl) == 0 && memcmp(fl.val, ident, 32) == 0, "unregister frame");
	router_reply(s, f.id, STATUS_OK);
	o = out(s);
	CHECK(strstr(o, "<command xmlns='http://jabber.org/protocol/commands' node='unregister-push-fcm' sessionid='") != NULL &&
	      strstr(o, "' status='completed'/></iq>") != NULL, "unregistered: %s", o);
	iq(s, CMD_HEAD("u2", "unregister-push-fcm", "") FORM(FIELD("device-id", "zzz")) CMD_TAIL);
	router_reply(s, last_frame().id, STATUS_NOT_FOUND);
	CHECK(strstr(out(s), "<error type='cancel'><item-not-found ") != NULL, "unregister unknown: item-not-found");

	/* Errors (docs/xmpp.md "Ad-hoc registration") */
	struct {
		const char *stanza, *want, *what;
	} errs[] = {
		{CMD_HEAD("e1", "register-push-fcm", "action='next'") FORM(FIELD("token", "T") FIELD("device-id", "d")) CMD_TAIL,
		 "<error type='modify'><bad-request ", "action next"},
		{CMD_HEAD("e2", "register-push-gcm", "") FORM(FIELD("token", "T") FIELD("device-id", "d")) CMD_TAIL,
		 "<error type='cancel'><item-not-found ", "unknown command"},
		{CMD_HEAD("e3", "register-push-apns", "") FORM(FIELD("token", "T") FIELD("device-id", "d")) CMD_TAIL,
		 "<error type='cancel'><item-not-found ", "apns not configured"},
		{CMD_HEAD("e4", "register-push-fcm", "") CMD_TAIL, "<error type='modify'><bad-request ", "no form"},
		{CMD_HEAD("e5", "register-push-fcm", "") FORM(FIELD("device-id", "d")) CMD_TAIL,
		 "<error type='modify'><bad-request ", "no token"},
		{CMD_HEAD("e6", "register-push-fcm", "") FORM(FIELD("token", "") FIELD("device-id", "d")) CMD_TAIL,
		 "<error type='modify'><bad-request ", "empty token"},
		{CMD_HEAD("e7", "register-push-fcm", "") FORM(FIELD("token", "a b") FIELD("device-id", "d")) CMD_TAIL,
		 "<error type='modify'><bad-request ", "token with a space"},
		{CMD_HEAD("e8", "register-push-fcm", "") FORM(FIELD("token", "caf\xc3\xa9") FIELD("device-id", "d")) CMD_TAIL,
		 "<error type='modify'><bad-request ", "token not ASCII"},
		{CMD_HEAD("e9", "register-push-fcm", "") FORM(FIELD("token", "T")) CMD_TAIL,
		 "<error type='modify'><bad-request ", "no device-id"},
		{CMD_HEAD("e10", "register-push-fcm", "") FORM(FIELD("token", "T") FIELD("device-id", "")) CMD_TAIL,
		 "<error type='modify'><bad-request ", "empty device-id"},
		{CMD_HEAD("e11", "register-push-fcm", "") FORM(FIELD("token", "T") FIELD("device-id", "d") FIELD("muc", "room@conf/x")) CMD_TAIL,
		 "<error type='modify'><bad-request ", "muc with a resource"},
		{CMD_HEAD("e12", "register-push-fcm", "") FORM(FIELD("token", "T") FIELD("device-id", "d") FIELD("muc", "conference.example.org")) CMD_TAIL,
		 "<error type='modify'><bad-request ", "muc without a localpart"},
		{CMD_HEAD("e13", "unregister-push-fcm", "") FORM(FIELD("token", "T")) CMD_TAIL,
		 "<error type='modify'><bad-request ", "unregister without device-id"},
		{"<iq type='set' id='e14' from='example.org' to='push.localhost'><command xmlns='http://jabber.org/protocol/commands' "
		 "node='register-push-fcm'>" FORM(FIELD("token", "T") FIELD("device-id", "d")) CMD_TAIL,
		 "<error type='auth'><forbidden ", "sender without localpart"},
	};
	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		nsent = 0;
		o = iq(s, errs[i].stanza);
		CHECK(strstr(o, errs[i].want) != NULL && nsent == 0, "%s: %s", errs[i].what, o);
	}
	/* Token length: 1024 accepted, 1025 refused. */
	memset(big, 'A', 1025);
	big[1024] = '\0';
	char st[4096];
	nsent = 0;
	snprintf(st, sizeof st, CMD_HEAD("t1", "register-push-fcm", "") FORM("<field var='token'><value>%s</value></field>" FIELD("device-id", "d")) CMD_TAIL, big);
	o = iq(s, st);
	CHECK(nsent == 1 && strcmp(o, "") == 0, "1024-byte token");
	big[1024] = 'A';
	big[1025] = '\0';
	snprintf(st, sizeof st, CMD_HEAD("t2", "register-push-fcm", "") FORM("<field var='token'><value>%s</value></field>" FIELD("device-id", "d")) CMD_TAIL, big);
	o = iq(s, st);
	CHECK(nsent == 1 && strstr(o, "<bad-request ") != NULL, "1025-byte token");

	/* Cancel */
	o = iq(s, CMD_HEAD("c1", "register-push-fcm", "action='cancel' sessionid='S1'") CMD_TAIL);
	CHECK(strcmp(o, "<iq type='result' from='push.localhost' to='alice@Example.org/Conversations.sAdA' id='c1'>"
			"<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' sessionid='S1' "
			"status='canceled'/></iq>") == 0, "cancel: %s", o);
	sess_free(s);

	/* Domain allowlist; apns configured. */
	conf.adhoc_domains = domains;
	conf.n_adhoc_domains = 1;
	conf.apns = 1;
	s = up();
	nsent = 0;
	o = iq(s, "<iq type='set' id='a1' from='mallory@evil.example/r' to='push.localhost'><command xmlns='http://jabber.org/protocol/commands' "
		  "node='register-push-fcm'>" FORM(FIELD("token", "T") FIELD("device-id", "d")) CMD_TAIL);
	CHECK(strstr(o, "<error type='auth'><forbidden ") != NULL && nsent == 0, "domain not allowed");
	o = iq(s, CMD_HEAD("a2", "register-push-apns", "") FORM(FIELD("token", "abcdef0123") FIELD("device-id", "d")) CMD_TAIL);
	f = last_frame();
	CHECK(nsent == 1 && f.type == FRAME_XMPP_REGISTER && frame_u32(&f, TAG_PLATFORM, 0) == PLATFORM_IOS,
	      "apns registration from an allowed domain");
	o = iq(s, "<iq type='get' id='d2' from='a@example.org/r' to='push.localhost'>"
		  "<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>");
	CHECK(strstr(o, "node='register-push-apns'") && strstr(o, "node='unregister-push-apns'"), "apns commands listed");
	sess_free(s);
	conf_defaults();
}

int main(void)
{
	conf_defaults();
	test_handshake();
	test_restrictions_and_caps();
	test_publish();
	test_publish_validation();
	test_dispatch();
	test_adhoc();
	return test_done();
}
