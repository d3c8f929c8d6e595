/*
 * xmpp_session: the component stream's life (header, handshake, stream errors, close), the
 * IQs waiting for the router, reply helpers, and the reconnect back-off. Stanza dispatch is in
 * xmpp_dispatch.c, ad-hoc commands in xmpp_adhoc.c.
 */
#include "xmpp_internal.h"
#include "counters.h"
#include "log.h"
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_ACCEPT "jabber:component:accept"

/* ---------------------------------------------------------------- handshake, back-off */

int xmpp_sha1_hex(const char *a, const char *b, int nul_between, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) == 1 && EVP_DigestUpdate(c, a, strlen(a)) == 1 &&
		 (!nul_between || EVP_DigestUpdate(c, "", 1) == 1) && EVP_DigestUpdate(c, b, strlen(b)) == 1 &&
		 EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == 20;

	EVP_MD_CTX_free(c);
	out[0] = '\0';
	if (ok)
		sodium_bin2hex(out, 41, md, 20);
	explicit_bzero(md, sizeof md);
	return ok ? 0 : -1;
}

void xmpp_handshake_hex(const char *stream_id, const char *secret, char out[41])
{
	if (xmpp_sha1_hex(stream_id, secret, 0, out) < 0)
		log_error("SHA-1 unavailable from libcrypto; the handshake will be refused");
}

uint32_t xmpp_backoff_next(struct xmpp_backoff *b, const char *cond, uint64_t up_ms, uint32_t rnd)
{
	const uint32_t first = 1000, cap = 60000;
	uint64_t d;
	if (b->base_ms == 0 || up_ms >= 60000)
		b->base_ms = first;
	if (cond && (strcmp(cond, "not-authorized") == 0 || strcmp(cond, "host-unknown") == 0))
		b->base_ms = cap;
	/* base × [0.8, 1.2] */
	d = (uint64_t)b->base_ms * (800 + (uint64_t)rnd * 400 / UINT32_MAX) / 1000;
	if (cond && strcmp(cond, "conflict") == 0 && d < 30000)
		d = 30000;
	b->base_ms = b->base_ms >= cap / 2 ? cap : b->base_ms * 2;
	return (uint32_t)d;
}

/* ---------------------------------------------------------------- replies */

void xs_iq_open(struct xsess *s, const char *type, const struct xs_iq *q)
{
	xb_str(&s->out, "<iq");
	xb_kv(&s->out, "type", type);
	xb_kv(&s->out, "from", q->self);
	xb_kv(&s->out, "to", q->peer);
	xb_kv(&s->out, "id", q->id);
}

void xs_reply_empty(struct xsess *s, const struct xs_iq *q)
{
	xs_iq_open(s, "result", q);
	xb_str(&s->out, "/>");
}

static const char *error_type(const char *cond)
{
	if (strcmp(cond, "forbidden") == 0)
		return "auth";
	if (strcmp(cond, "recipient-unavailable") == 0)
		return "wait";
	if (strcmp(cond, "bad-request") == 0)
		return "modify";
	return "cancel"; /* item-not-found, service-unavailable, internal-server-error */
}

void xs_reply_error(struct xsess *s, const struct xs_iq *q, const char *cond)
{
	xs_iq_open(s, "error", q);
	xb_str(&s->out, "><error");
	xb_kv(&s->out, "type", error_type(cond));
	xb_str(&s->out, "><");
	xb_str(&s->out, cond);
	xb_str(&s->out, " xmlns='" XNS_STANZAS_ERR "'/></error></iq>");
}

/* ---------------------------------------------------------------- pending requests */

/* The router client (router_link.c) keeps ids and deadlines; a request here only remembers
 * whom to answer, on which stream. */

static char *dup_or_null(const char *v)
{
	return v ? strdup(v) : NULL;
}

static void pend_release(struct xs_pending *p)
{
	free(p->id);
	free(p->peer);
	free(p->self);
	free(p);
}

struct xs_pending *xs_pend_new(struct xsess *s, enum xp_kind kind, const struct xs_iq *q)
{
	struct xs_pending *p = calloc(1, sizeof *p);

	(void)s;
	if (p == NULL)
		return NULL;
	p->kind = kind;
	p->id = dup_or_null(q->id);
	p->peer = dup_or_null(q->peer);
	p->self = dup_or_null(q->self);
	if (p->id == NULL || p->peer == NULL || p->self == NULL) {
		pend_release(p);
		return NULL;
	}
	return p;
}

/* Takes p off its stream's list: its answer, if one still comes, is dropped. */
static void pend_detach(struct xsess *s, struct xs_pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		s->pend = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
	p->s = NULL;
	s->npend--;
}

static void pend_done(struct xsess *s, struct xs_pending *p, const struct frame *f)
{
	if (p->kind == XP_PUBLISH)
		xs_publish_done(s, p, f);
	else
		xs_adhoc_done(s, p, f);
}

/* The link's completion: the router's answer, or NULL (not sent in time, no answer by the
 * deadline, link lost). */
static void pend_answer(void *ctx, uint32_t status, const struct frame *f)
{
	struct xs_pending *p = ctx;
	struct xsess *s = p->s;

	(void)status; /* f carries it; XMPP requests are never complete without an answer */
	if (s != NULL) {
		pend_detach(s, p);
		pend_done(s, p, f);
	}
	pend_release(p);
}

int xs_pend_submit(struct xsess *s, struct xs_pending *p, long len)
{
	if (len < 0 || s->submit(s->submit_ctx, s->fbuf, (size_t)len, pend_answer, p) < 0) {
		pend_release(p);
		return -1;
	}
	p->s = s;
	p->next = s->pend;
	if (s->pend)
		s->pend->prev = p;
	s->pend = p;
	s->npend++;
	return 0;
}

void xs_pend_iq(const struct xs_pending *p, struct xs_iq *q)
{
	q->id = p->id;
	q->peer = p->peer;
	q->self = p->self;
}

size_t xs_pending_count(const struct xsess *s)
{
	return s->npend;
}

/* Answers every waiting request as failed (answer != 0) or forgets it (its stream is gone);
 * either way its completion, when it comes, only frees it. */
static void drop_pending(struct xsess *s, int answer)
{
	while (s->pend) {
		struct xs_pending *p = s->pend;
		pend_detach(s, p);
		if (answer)
			pend_done(s, p, NULL);
	}
}

/* ---------------------------------------------------------------- stream */

/* Ends the stream: nothing more is written after this. */
static void finish(struct xsess *s, const char *reason, int send_close)
{
	if (s->state == XS_CLOSED)
		return;
	if (send_close)
		xb_str(&s->out, "</stream:stream>");
	s->state = XS_CLOSED;
	if (s->end_reason == NULL)
		s->end_reason = reason;
	s->out.full = 1; /* xb_* drop further writes; the caller flushes what is there */
}

static void stream_error(struct xsess *s, const char *cond, const char *reason)
{
	if (s->state == XS_CLOSED)
		return;
	xb_str(&s->out, "<stream:error><");
	xb_str(&s->out, cond);
	xb_str(&s->out, " xmlns='" XNS_STREAMS_ERR "'/></stream:error>");
	s->stream_error_sent = 1;
	s->end_reason = reason;
	finish(s, reason, 1);
}

static int on_stream_start(void *ctx, const char **atts)
{
	struct xsess *s = ctx;
	const char *id = NULL;
	char hs[41];

	for (int i = 0; atts[i]; i += 2)
		if (strcmp(atts[i], "id") == 0)
			id = atts[i + 1];
	if (s->state != XS_WAIT_HEADER) {
		finish(s, "unexpected stream header", 1);
		return -1;
	}
	if (id == NULL || id[0] == '\0' || strlen(id) >= sizeof s->stream_id) {
		finish(s, "server stream header without a usable id", 1);
		return -1;
	}
	strcpy(s->stream_id, id);
	xmpp_handshake_hex(id, s->conf.secret, hs);
	xb_str(&s->out, "<handshake>");
	xb_str(&s->out, hs);
	xb_str(&s->out, "</handshake>");
	s->state = XS_WAIT_HANDSHAKE;
	return 0;
}

static void take_stream_error(struct xsess *s, struct xnode *e)
{
	for (struct xnode *c = e->first; c; c = c->next)
		if (strcmp(c->ns, XNS_STREAMS_ERR) == 0 && strcmp(c->name, "text") != 0) {
			snprintf(s->end_cond, sizeof s->end_cond, "%s", c->name);
			break;
		}
	if (s->end_cond[0] == '\0')
		snprintf(s->end_cond, sizeof s->end_cond, "undefined-condition");
	s->end_reason = "stream error from the server";
	finish(s, NULL, 1);
}

static int on_element(void *ctx, struct xnode *top)
{
	struct xsess *s = ctx;

	if (xnode_is(top, XNS_STREAM, "error")) {
		take_stream_error(s, top);
		return -1;
	}
	switch (s->state) {
	case XS_WAIT_HANDSHAKE:
		if (strcmp(top->name, "handshake") == 0 && strcmp(top->ns, NS_ACCEPT) == 0) {
			s->state = XS_READY;
			return 0;
		}
		finish(s, "unexpected element before the handshake completed", 1);
		return -1;
	case XS_READY:
		xs_dispatch(s, top);
		if (s->out.full) {
			s->end_reason = "output buffer full (server not reading)";
			finish(s, NULL, 0);
			return -1;
		}
		return 0;
	case XS_CLOSING:
		return 0; /* no new work while shutting down */
	default:
		finish(s, "unexpected element", 1);
		return -1;
	}
}

static void on_stream_end(void *ctx)
{
	struct xsess *s = ctx;
	finish(s, s->state == XS_CLOSING ? "closed" : "server closed the stream", s->state != XS_CLOSING);
}

struct xsess *xs_new(const struct xs_conf *conf, xs_submit_fn submit, void *ctx)
{
	struct xsess *s = calloc(1, sizeof *s);
	if (s == NULL)
		return NULL;
	s->conf = *conf;
	s->submit = submit;
	s->submit_ctx = ctx;
	s->fbuf = malloc(FRAME_MAX);
	if (s->fbuf == NULL) {
		xs_free(s);
		return NULL;
	}
	xb_init(&s->out, XS_OUT_MAX);
	return s;
}

void xs_free(struct xsess *s)
{
	if (s == NULL)
		return;
	drop_pending(s, 0);
	free(s->fbuf);
	xml_reader_free(s->rd);
	xb_free(&s->out);
	free(s);
}

int xs_start(struct xsess *s)
{
	struct xml_callbacks cb = {s, on_stream_start, on_element, on_stream_end};
	drop_pending(s, 0);
	xml_reader_free(s->rd);
	xb_free(&s->out);
	xb_init(&s->out, XS_OUT_MAX);
	s->state = XS_IDLE;
	s->stream_id[0] = s->end_cond[0] = s->ping_id[0] = '\0';
	s->end_reason = NULL;
	s->stream_error_sent = 0;
	if ((s->rd = xml_reader_new(s->conf.max_stanza, &cb)) == NULL)
		return -1;
	xb_str(&s->out, "<?xml version='1.0'?><stream:stream xmlns='" NS_ACCEPT "' xmlns:stream='" XNS_STREAM "'");
	xb_kv(&s->out, "to", s->conf.domain);
	xb_str(&s->out, ">");
	s->state = XS_WAIT_HEADER;
	return 0;
}

enum xs_state xs_feed(struct xsess *s, const void *buf, size_t n)
{
	const char *detail;
	if (s->state == XS_IDLE || s->state == XS_CLOSED || s->rd == NULL)
		return s->state;
	if (xml_reader_feed(s->rd, buf, n) < 0) {
		switch (xml_reader_error(s->rd, &detail)) {
		case XERR_RESTRICTED:
			stream_error(s, "restricted-xml", detail);
			break;
		case XERR_POLICY:
			stream_error(s, "policy-violation", detail);
			break;
		case XERR_BAD_STREAM:
			stream_error(s, "invalid-namespace", detail);
			break;
		case XERR_MEMORY:
			stream_error(s, "internal-server-error", "out of memory");
			break;
		case XERR_HANDLER:
			finish(s, "stopped", 1);
			break;
		default:
			stream_error(s, "not-well-formed", detail);
			break;
		}
	}
	return s->state;
}

void xs_peer_gone(struct xsess *s, const char *why)
{
	finish(s, why, 0);
}

void xs_shutdown(struct xsess *s)
{
	if (s->state == XS_CLOSED || s->state == XS_CLOSING)
		return;
	drop_pending(s, 1);
	if (s->state == XS_IDLE) {
		finish(s, "stopped", 0);
		return;
	}
	xb_str(&s->out, "</stream:stream>");
	s->state = XS_CLOSING;
}

void xs_ping(struct xsess *s, const char *jid)
{
	struct xs_iq q;
	if (s->state != XS_READY)
		return;
	snprintf(s->ping_id, sizeof s->ping_id, "ping-%u", ++s->ping_seq);
	q.id = s->ping_id;
	q.peer = jid;
	q.self = s->conf.domain;
	xs_iq_open(s, "get", &q);
	xb_str(&s->out, "><ping xmlns='" NS_PING "'/></iq>");
}
