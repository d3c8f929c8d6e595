/*
 * xmpp_internal: what the pieces of the component share (session, dispatch, ad-hoc commands),
 * and the pure helpers the unit tests check directly (JIDs, ad-hoc hashes, summary counts).
 */
#ifndef XMPP_INTERNAL_H
#define XMPP_INTERNAL_H
#include "frame.h"
#include "xmpp_session.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_PING "urn:xmpp:ping"
#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_PUSH "urn:xmpp:push:0"
#define NS_DATA "jabber:x:data"
#define NS_COMMANDS "http://jabber.org/protocol/commands"

enum xp_kind { XP_PUBLISH = 1, XP_REGISTER, XP_UNREGISTER };

/* A request waiting for the router: the context of its link completion. */
struct xs_pending {
	struct xs_pending *prev, *next;
	struct xsess *s;	/* NULL once its stream is gone: the answer is then dropped */
	enum xp_kind kind;
	char *id, *peer, *self; /* the IQ's id, its from (our reply's to), our reply's from */
	char cmd[32];		/* ad-hoc command node */
	char sid[32];		/* ad-hoc session id */
};

/* An IQ being answered: id, who asked (reply to), and who we are in the reply (reply from). */
struct xs_iq {
	const char *id, *peer, *self;
};

/* ---- replies (xmpp_session.c) ---- */
/* Writes `<iq type='T' from=.. to=.. id=..` (no closing bracket). */
void xs_iq_open(struct xsess *s, const char *type, const struct xs_iq *q);
void xs_reply_empty(struct xsess *s, const struct xs_iq *q);
/* <iq type='error'><error type=…><cond/></error></iq>; the type follows the condition (docs/xmpp.md
 * "Stanza dispatch"). */
void xs_reply_error(struct xsess *s, const struct xs_iq *q, const char *cond);
/* A request holding copies of q; NULL on out of memory. */
struct xs_pending *xs_pend_new(struct xsess *s, enum xp_kind kind, const struct xs_iq *q);
/* Submits the frame built in s->fbuf (id 0, len from frame_end); the router's answer, or its
 * absence, comes to xs_publish_done / xs_adhoc_done. On failure frees p and returns -1. */
int xs_pend_submit(struct xsess *s, struct xs_pending *p, long len);
void xs_pend_iq(const struct xs_pending *p, struct xs_iq *q);

/* ---- dispatch (xmpp_dispatch.c) ---- */
/* First <value> of the field var=name in data form x, or NULL (no form, field or value). */
const char *xs_form_value(const struct xnode *x, const char *var);
void xs_dispatch(struct xsess *s, struct xnode *stanza);
/* The router's answer to a publish (f NULL: no answer in time, or router absent). */
void xs_publish_done(struct xsess *s, struct xs_pending *p, const struct frame *f);

/* ---- ad-hoc commands (xmpp_adhoc.c) ---- */
void xs_adhoc(struct xsess *s, const struct xs_iq *q, struct xnode *cmd);
void xs_adhoc_done(struct xsess *s, struct xs_pending *p, const struct frame *f);
/* disco#info / disco#items on a node (commands list or a command); 0 when answered, -1 when the
 * node is not ours (the caller answers item-not-found). */
int xs_adhoc_disco_info(struct xsess *s, const struct xs_iq *q, const char *node);
int xs_adhoc_disco_items(struct xsess *s, const struct xs_iq *q, const char *node);

/* ---- pure helpers ---- */
struct jid {
	const char *local, *domain, *res; /* pointers into the parsed string */
	size_t llen, dlen, rlen;	  /* llen 0: no localpart; res NULL: no resource */
};
/* Parses [local@]domain[/resource]; -1 when it is not a JID (empty parts, '@' in the domain,
 * parts over 1023 bytes, whitespace or control characters in local or domain). */
int jid_parse(const char *s, struct jid *j);
/* Summary count (docs/xmpp.md "Publish"): decimal integer clamped to 0..2^31-1; NULL, empty or
 * invalid → 0. */
uint32_t xmpp_parse_count(const char *s);
/* Ad-hoc identifiers (docs/xmpp.md, "Ad-hoc registration"): identity = SHA-256(bare ‖ 0 ‖ device ‖
 * 0 ‖ room or ""), account = hex SHA-1(bare ‖ 0 ‖ device), channel = hex SHA-1(room ‖ 0 ‖ device)
 * (room != NULL). */
void xmpp_adhoc_identity(const char *bare, const char *device, const char *room, uint8_t out[32]);
void xmpp_adhoc_account(const char *bare, const char *device, char out[41]);
void xmpp_adhoc_channel(const char *room, const char *device, char out[41]);
/* 1 when a and b are equal ignoring ASCII case. */
int xmpp_ieq(const char *a, size_t alen, const char *b, size_t blen);
#endif
