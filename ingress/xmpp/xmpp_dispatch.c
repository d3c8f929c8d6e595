/*
 * xmpp_dispatch: what the component does with each inbound stanza (docs/xmpp.md, "Stanza dispatch"
 * and "Publish"): disco, ping, XEP-0357 publishes (checks 1–4 here, the rest by the router),
 * unknown IQs. The sender's JID and the message body never leave this file: a publish becomes node,
 * secret, the lowercase domain of `from`, two counts and a high-priority flag.
 */
#include "xmpp_internal.h"
#include "counters.h"
#include "log.h"
#include <stdlib.h>
#include <string.h>

#define JID_PART_MAX 1023

/* ---------------------------------------------------------------- pure helpers */

int xmpp_ieq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return 0;
	for (size_t i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 32);
		if (x != y)
			return 0;
	}
	return 1;
}

static int plain_part(const char *p, size_t n)
{
	if (n == 0 || n > JID_PART_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f || p[i] == '@' || p[i] == '/')
			return 0;
	return 1;
}

int jid_parse(const char *s, struct jid *j)
{
	const char *slash = strchr(s, '/');
	const char *end = slash ? slash : s + strlen(s);
	const char *at = memchr(s, '@', (size_t)(end - s));

	memset(j, 0, sizeof *j);
	if (at) {
		j->local = s;
		j->llen = (size_t)(at - s);
		if (!plain_part(j->local, j->llen))
			return -1;
		j->domain = at + 1;
	} else {
		j->domain = s;
	}
	j->dlen = (size_t)(end - j->domain);
	if (!plain_part(j->domain, j->dlen))
		return -1;
	if (slash) {
		j->res = slash + 1;
		j->rlen = strlen(j->res);
		if (j->rlen == 0 || j->rlen > JID_PART_MAX)
			return -1;
	}
	return 0;
}

uint32_t xmpp_parse_count(const char *s)
{
	uint64_t v = 0;
	int neg = 0, digits = 0;
	if (s == NULL)
		return 0;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	for (; *s >= '0' && *s <= '9'; s++, digits++)
		if (v <= 0x7fffffffu)
			v = v * 10 + (uint64_t)(*s - '0');
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (digits == 0 || *s != '\0' || neg)
		return 0;
	return v > 0x7fffffffu ? 0x7fffffffu : (uint32_t)v;
}

const char *xs_form_value(const struct xnode *x, const char *var)
{
	for (struct xnode *f = xnode_child(x, NS_DATA, "field"); f; f = xnode_next(f, NS_DATA, "field")) {
		const char *v = xnode_attr(f, "var");
		if (v && strcmp(v, var) == 0) {
			struct xnode *val = xnode_child(f, NS_DATA, "value");
			return val ? xnode_text(val) : NULL;
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- disco, ping */

static void disco_info(struct xsess *s, const struct xs_iq *q, struct xnode *query)
{
	const char *node = xnode_attr(query, "node");
	if (node) {
		if (xs_adhoc_disco_info(s, q, node) < 0)
			xs_reply_error(s, q, "item-not-found");
		return;
	}
	xs_iq_open(s, "result", q);
	xb_str(&s->out, "><query xmlns='" NS_DISCO_INFO "'>"
			"<identity category='pubsub' type='push' name='Push service'/>"
			"<feature var='" NS_DISCO_INFO "'/><feature var='" NS_PUSH "'/>");
	if (s->conf.adhoc)
		xb_str(&s->out, "<feature var='" NS_COMMANDS "'/>");
	xb_str(&s->out, "</query></iq>");
}

static void disco_items(struct xsess *s, const struct xs_iq *q, struct xnode *query)
{
	const char *node = xnode_attr(query, "node");
	if (node) {
		if (xs_adhoc_disco_items(s, q, node) < 0)
			xs_reply_error(s, q, "item-not-found");
		return;
	}
	xs_iq_open(s, "result", q);
	xb_str(&s->out, "><query xmlns='" NS_DISCO_ITEMS "'/></iq>");
}

/* ---------------------------------------------------------------- publish */

static int alnum_token(const char *v, size_t max)
{
	size_t n = strlen(v);
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z')))
			return 0;
	return 1;
}

static void reject(struct xsess *s, const struct xs_iq *q, const char *cond, const char *why)
{
	log_debug("publish answered %s: %s", cond, why);
	counter_add(CTR_XMPP_PUBLISHES_REJECTED, 1);
	xs_reply_error(s, q, cond);
}

static void publish(struct xsess *s, const struct xs_iq *q, const char *type, struct xnode *pubsub)
{
	struct xnode *pub = xnode_child(pubsub, NS_PUBSUB, "publish");
	struct xnode *item, *summary = NULL, *opts;
	const char *node, *secret = NULL, *body;
	struct jid j;
	char domain[JID_PART_MAX + 1];
	uint32_t flags = 0;
	struct xs_pending *p;
	struct frame_writer w;

	/* 1 */
	if (strcmp(type, "set") != 0 || pub == NULL) {
		reject(s, q, "bad-request", "not a publish");
		return;
	}
	/* 2: from is the user's server (Prosody) or a bare user JID (some servers); never a full JID */
	if (jid_parse(q->peer, &j) < 0 || j.res != NULL) {
		reject(s, q, "forbidden", "from is not a bare JID");
		return;
	}
	/* 3 */
	node = xnode_attr(pub, "node");
	if (node == NULL || node[0] == '\0') {
		reject(s, q, "forbidden", "no node");
		return;
	}
	/* 4: the secret from the first data form in publish-options */
	opts = xnode_child(pubsub, NS_PUBSUB, "publish-options");
	if (opts)
		secret = xs_form_value(xnode_child(opts, NS_DATA, "x"), "secret");
	if (secret == NULL || secret[0] == '\0') {
		reject(s, q, "forbidden", "no secret");
		return;
	}
	/* Nodes are [0-9A-Za-z]{1,64}: anything else cannot exist (the router's check 5). */
	if (!alnum_token(node, 64)) {
		reject(s, q, "item-not-found", "node cannot exist");
		return;
	}
	/* A secret no node can have must still lose to "node missing" and "domain not bound", so
	 * it goes to the router as a value that never matches, never truncated. */
	if (!alnum_token(secret, 64))
		secret = "!";

	/* Summary (optional, lenient): first item, its notification's form, or a form right in it. */
	item = xnode_child(pub, NS_PUBSUB, "item");
	if (item) {
		struct xnode *n = xnode_child(item, NS_PUSH, "notification");
		summary = xnode_child(n ? n : item, NS_DATA, "x");
	}
	body = xs_form_value(summary, "last-message-body");
	if (body && body[0] != '\0')
		flags |= FRAME_F_HIGH;
	for (size_t i = 0; i < j.dlen; i++) {
		char c = j.domain[i];
		domain[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
	}
	domain[j.dlen] = '\0';

	if ((p = xs_pend_new(s, XP_PUBLISH, q)) == NULL) {
		reject(s, q, "recipient-unavailable", "out of memory");
		return;
	}
	frame_begin(&w, s->fbuf, FRAME_XMPP_PUBLISH, 0);
	frame_put_bytes(&w, TAG_NODE, node, strlen(node));
	frame_put_bytes(&w, TAG_SECRET, secret, strlen(secret));
	frame_put_bytes(&w, TAG_DOMAIN, domain, j.dlen);
	frame_put_u32(&w, TAG_MSG_COUNT, xmpp_parse_count(xs_form_value(summary, "message-count")));
	frame_put_u32(&w, TAG_PENDING_COUNT, xmpp_parse_count(xs_form_value(summary, "pending-subscription-count")));
	frame_put_u32(&w, TAG_FLAGS, flags);
	if (xs_pend_submit(s, p, frame_end(&w)) < 0) {
		reject(s, q, "recipient-unavailable", "router not reachable, or too many requests waiting for it");
		return;
	}
}

void xs_publish_done(struct xsess *s, struct xs_pending *p, const struct frame *f)
{
	struct xs_iq q;
	uint32_t st = STATUS_BUSY;
	const char *cond = "recipient-unavailable";

	xs_pend_iq(p, &q);
	if (f && f->type == FRAME_REPLY)
		st = frame_u32(f, TAG_STATUS, STATUS_ERROR);
	if (st == STATUS_OK) {
		counter_add(CTR_XMPP_PUBLISHES, 1);
		xs_reply_empty(s, &q);
		return;
	}
	if (st == STATUS_NOT_FOUND)
		cond = "item-not-found";
	else if (st == STATUS_FORBIDDEN)
		cond = "forbidden";
	reject(s, &q, cond, f ? "router" : "no answer from the router");
}

/* ---------------------------------------------------------------- dispatch */

/* The domain part of a JID-ish string (up to '/' and after '@'). */
static int domain_is(const char *jid, const char *domain)
{
	struct jid j;
	return jid_parse(jid, &j) == 0 && xmpp_ieq(j.domain, j.dlen, domain, strlen(domain));
}

static int stanza_ns(const char *ns)
{
	return strcmp(ns, "jabber:component:accept") == 0 || strcmp(ns, "jabber:client") == 0 ||
	       strcmp(ns, "jabber:server") == 0;
}

void xs_dispatch(struct xsess *s, struct xnode *st)
{
	const char *id, *from, *to, *type;
	struct xnode *child;
	struct xs_iq q;

	if (!stanza_ns(st->ns) || strcmp(st->name, "iq") != 0)
		return; /* message, presence, anything else: ignored */
	id = xnode_attr(st, "id");
	from = xnode_attr(st, "from");
	to = xnode_attr(st, "to");
	type = xnode_attr(st, "type");
	if (type == NULL)
		type = "";
	if (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) {
		if (id && s->ping_id[0] && strcmp(id, s->ping_id) == 0)
			s->ping_id[0] = '\0';
		return;
	}
	if (id == NULL || from == NULL) {
		log_debug("ignoring an iq without %s", id == NULL ? "id" : "from");
		return;
	}
	if (!xml_valid_chars(id) || !xml_valid_chars(from) || (to && !xml_valid_chars(to))) {
		log_debug("ignoring an iq with characters that cannot be echoed");
		return;
	}
	if (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)
		return;
	q.id = id;
	q.peer = from;
	/* Replies come from the address that was asked, which must be under our domain. */
	q.self = to && domain_is(to, s->conf.domain) ? to : s->conf.domain;

	child = st->first; /* the payload of a get or set */
	if (child == NULL) {
		xs_reply_error(s, &q, "service-unavailable");
	} else if (xnode_is(child, NS_PUBSUB, "pubsub")) {
		publish(s, &q, type, child);
	} else if (xnode_is(child, NS_DISCO_INFO, "query") && strcmp(type, "get") == 0) {
		disco_info(s, &q, child);
	} else if (xnode_is(child, NS_DISCO_ITEMS, "query") && strcmp(type, "get") == 0) {
		disco_items(s, &q, child);
	} else if (xnode_is(child, NS_PING, "ping") && strcmp(type, "get") == 0) {
		xs_reply_empty(s, &q);
	} else if (xnode_is(child, NS_COMMANDS, "command") && strcmp(type, "set") == 0 && s->conf.adhoc) {
		xs_adhoc(s, &q, child);
	} else {
		xs_reply_error(s, &q, "service-unavailable");
	}
}
