/*
 * xmpp_adhoc: optional XEP-0050 registration of FCM / APNs tokens (docs/xmpp.md, "Ad-hoc
 * registration"), p2 compatible: register-push-{fcm,apns} and unregister-push-{fcm,apns}, their
 * disco entries, the identity / account / channel hashes, and the reply forms with
 * status='completed'.
 */
#include "xmpp_internal.h"
#include "counters.h"
#include "log.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX 1024
#define DEVICE_MAX 1023

struct cmd {
	const char *node, *name;
	int reg;	  /* register (1) or unregister (0) */
	uint32_t platform; /* PLATFORM_ANDROID = fcm, PLATFORM_IOS = apns */
};

static const struct cmd cmds[] = {
	{"register-push-fcm", "Register an FCM token", 1, PLATFORM_ANDROID},
	{"unregister-push-fcm", "Unregister an FCM token", 0, PLATFORM_ANDROID},
	{"register-push-apns", "Register an APNs token", 1, PLATFORM_IOS},
	{"unregister-push-apns", "Unregister an APNs token", 0, PLATFORM_IOS},
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

/* ---------------------------------------------------------------- hashes */

void xmpp_adhoc_identity(const char *bare, const char *device, const char *room, uint8_t out[32])
{
	const char *parts[3] = {bare, device, room ? room : ""};
	crypto_hash_sha256_state s;

	crypto_hash_sha256_init(&s);
	for (size_t i = 0; i < 3; i++) {
		if (i > 0)
			crypto_hash_sha256_update(&s, (const unsigned char *)"", 1);
		crypto_hash_sha256_update(&s, (const unsigned char *)parts[i], strlen(parts[i]));
	}
	crypto_hash_sha256_final(&s, out);
}

void xmpp_adhoc_account(const char *bare, const char *device, char out[41])
{
	xmpp_sha1_hex(bare, device, 1, out);
}

void xmpp_adhoc_channel(const char *room, const char *device, char out[41])
{
	xmpp_sha1_hex(room, device, 1, out);
}

/* ---------------------------------------------------------------- disco */

static int enabled(const struct xsess *s, const struct cmd *c)
{
	return s->conf.adhoc && (c->platform == PLATFORM_ANDROID ? s->conf.fcm : s->conf.apns);
}

static const struct cmd *find_cmd(const struct xsess *s, const char *node)
{
	for (size_t i = 0; node && i < NCMDS; i++)
		if (strcmp(cmds[i].node, node) == 0)
			return enabled(s, &cmds[i]) ? &cmds[i] : NULL;
	return NULL;
}

int xs_adhoc_disco_info(struct xsess *s, const struct xs_iq *q, const char *node)
{
	const struct cmd *c = find_cmd(s, node);
	if (!s->conf.adhoc || (c == NULL && strcmp(node, NS_COMMANDS) != 0))
		return -1;
	xs_iq_open(s, "result", q);
	xb_str(&s->out, "><query xmlns='" NS_DISCO_INFO "'");
	xb_kv(&s->out, "node", node);
	if (c) {
		xb_str(&s->out, "><identity category='automation' type='command-node'");
		xb_kv(&s->out, "name", c->name);
		xb_str(&s->out, "/><feature var='" NS_COMMANDS "'/><feature var='" NS_DATA "'/>");
	} else {
		xb_str(&s->out, "><identity category='automation' type='command-list' name='Commands'/>");
	}
	xb_str(&s->out, "</query></iq>");
	return 0;
}

int xs_adhoc_disco_items(struct xsess *s, const struct xs_iq *q, const char *node)
{
	if (!s->conf.adhoc || strcmp(node, NS_COMMANDS) != 0)
		return -1;
	xs_iq_open(s, "result", q);
	xb_str(&s->out, "><query xmlns='" NS_DISCO_ITEMS "' node='" NS_COMMANDS "'>");
	for (size_t i = 0; i < NCMDS; i++) {
		if (!enabled(s, &cmds[i]))
			continue;
		xb_str(&s->out, "<item");
		xb_kv(&s->out, "jid", s->conf.domain);
		xb_kv(&s->out, "node", cmds[i].node);
		xb_kv(&s->out, "name", cmds[i].name);
		xb_str(&s->out, "/>");
	}
	xb_str(&s->out, "</query></iq>");
	return 0;
}

/* ---------------------------------------------------------------- commands */

static int token_ok(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
			return 0;
	return 1;
}

static void command_open(struct xsess *s, const struct xs_iq *q, const char *node, const char *sid,
			 const char *status)
{
	xs_iq_open(s, "result", q);
	xb_str(&s->out, "><command xmlns='" NS_COMMANDS "'");
	xb_kv(&s->out, "node", node);
	xb_kv(&s->out, "sessionid", sid);
	xb_kv(&s->out, "status", status);
}

static void new_sid(struct xsess *s, const char *given, char out[32])
{
	if (given && given[0] && strlen(given) < 32)
		snprintf(out, 32, "%s", given);
	else
		snprintf(out, 32, "%llu-%llu", (unsigned long long)s->now, (unsigned long long)++s->session_seq);
}

static void lower_into(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] + 32) : src[i];
	dst[n] = '\0';
}

/* The app a registration names: its form's `application` when the allowlist has it (NULL when
 * not: refused), else the component's default ("" = the platform's default app). */
static const char *form_app(const struct xsess *s, const struct xnode *x)
{
	const char *a = xs_form_value(x, "application");
	if (a == NULL || a[0] == '\0')
		return s->conf.application ? s->conf.application : "";
	for (size_t i = 0; i < s->conf.n_applications; i++)
		if (strcmp(a, s->conf.applications[i]) == 0)
			return a;
	return NULL;
}

static int domain_allowed(const struct xsess *s, const struct jid *j)
{
	if (s->conf.n_adhoc_domains == 0)
		return 1;
	for (size_t i = 0; i < s->conf.n_adhoc_domains; i++) {
		const char *d = s->conf.adhoc_domains[i];
		if (xmpp_ieq(j->domain, j->dlen, d, strlen(d)))
			return 1;
	}
	return 0;
}

void xs_adhoc(struct xsess *s, const struct xs_iq *q, struct xnode *cmdn)
{
	const char *action = xnode_attr(cmdn, "action");
	const struct cmd *c;
	struct xnode *x;
	const char *token, *device, *muc, *app;
	struct jid j, rj;
	char bare[2 * 1024 + 2], room[2 * 1024 + 2], bind[1024], account[41], channel[41], sid[32];
	uint8_t identity[32];
	struct xs_pending *p;
	struct frame_writer w;

	if (action && strcmp(action, "execute") != 0 && strcmp(action, "cancel") != 0) {
		xs_reply_error(s, q, "bad-request");
		return;
	}
	if ((c = find_cmd(s, xnode_attr(cmdn, "node"))) == NULL) {
		xs_reply_error(s, q, "item-not-found");
		return;
	}
	if (action && strcmp(action, "cancel") == 0) {
		new_sid(s, xnode_attr(cmdn, "sessionid"), sid);
		command_open(s, q, c->node, sid, "canceled");
		xb_str(&s->out, "/></iq>");
		return;
	}
	if (jid_parse(q->peer, &j) < 0 || j.llen == 0 || !domain_allowed(s, &j)) {
		xs_reply_error(s, q, "forbidden");
		return;
	}
	x = xnode_child(cmdn, NS_DATA, "x");
	token = xs_form_value(x, "token");
	device = xs_form_value(x, "device-id");
	if (device == NULL || device[0] == '\0')
		device = xs_form_value(x, "android-id");
	muc = xs_form_value(x, "muc");
	if (muc && muc[0] == '\0')
		muc = NULL;
	app = form_app(s, x);
	if (x == NULL || device == NULL || device[0] == '\0' || strlen(device) > DEVICE_MAX ||
	    (c->reg && (token == NULL || !token_ok(token) || app == NULL)) ||
	    (muc && (jid_parse(muc, &rj) < 0 || rj.llen == 0 || rj.res != NULL))) {
		xs_reply_error(s, q, "bad-request");
		return;
	}
	/* The bare JID as the server wrote it, domain lowercased (JIDs compare domains so). */
	memcpy(bare, j.local, j.llen);
	bare[j.llen] = '@';
	lower_into(bare + j.llen + 1, j.domain, j.dlen);
	if (muc) {
		memcpy(room, rj.local, rj.llen);
		room[rj.llen] = '@';
		lower_into(room + rj.llen + 1, rj.domain, rj.dlen);
		lower_into(bind, rj.domain, rj.dlen);
	} else {
		lower_into(bind, j.domain, j.dlen);
	}
	xmpp_adhoc_identity(bare, device, muc ? room : NULL, identity);

	if ((p = xs_pend_new(s, c->reg ? XP_REGISTER : XP_UNREGISTER, q)) == NULL) {
		xs_reply_error(s, q, "internal-server-error");
		return;
	}
	snprintf(p->cmd, sizeof p->cmd, "%s", c->node);
	new_sid(s, xnode_attr(cmdn, "sessionid"), p->sid);
	if (c->reg) {
		xmpp_adhoc_account(bare, device, account);
		frame_begin(&w, s->fbuf, FRAME_XMPP_REGISTER, 0);
		frame_put_u32(&w, TAG_PLATFORM, c->platform);
		frame_put_bytes(&w, TAG_IDENTITY, identity, sizeof identity);
		frame_put_bytes(&w, TAG_TOKEN, token, strlen(token));
		frame_put_bytes(&w, TAG_DOMAIN, bind, strlen(bind));
		frame_put_bytes(&w, TAG_ACCOUNT, account, 40);
		if (muc) {
			xmpp_adhoc_channel(room, device, channel);
			frame_put_bytes(&w, TAG_CHANNEL, channel, 40);
		}
		if (app[0] != '\0')
			frame_put_bytes(&w, TAG_APP, app, strlen(app));
	} else {
		frame_begin(&w, s->fbuf, FRAME_XMPP_UNREGISTER, 0);
		frame_put_u32(&w, TAG_PLATFORM, c->platform);
		frame_put_bytes(&w, TAG_IDENTITY, identity, sizeof identity);
	}
	if (xs_pend_submit(s, p, frame_end(&w)) < 0)
		xs_reply_error(s, q, "internal-server-error");
}

/* Copies an alphanumeric node or secret of 1..64 characters from the router; -1 otherwise. */
static int take_id(const struct frame *f, uint16_t tag, char out[65])
{
	struct frame_field fl;
	if (frame_get(f, tag, &fl) < 0 || fl.len == 0 || fl.len > 64)
		return -1;
	for (uint32_t i = 0; i < fl.len; i++) {
		char ch = (char)fl.val[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
			return -1;
	}
	memcpy(out, fl.val, fl.len);
	out[fl.len] = '\0';
	return 0;
}

void xs_adhoc_done(struct xsess *s, struct xs_pending *p, const struct frame *f)
{
	struct xs_iq q;
	char node[65], secret[65];
	struct frame_field st;

	xs_pend_iq(p, &q);
	if (p->kind == XP_UNREGISTER) {
		uint32_t status = f && f->type == FRAME_REPLY ? frame_u32(f, TAG_STATUS, STATUS_ERROR) : STATUS_ERROR;
		if (status == STATUS_OK) {
			counter_add(CTR_UNREGISTRATIONS, 1);
			command_open(s, &q, p->cmd, p->sid, "completed");
			xb_str(&s->out, "/></iq>");
		} else {
			xs_reply_error(s, &q, status == STATUS_NOT_FOUND ? "item-not-found" : "internal-server-error");
		}
		return;
	}
	if (f == NULL || f->type != FRAME_NODES || frame_get(f, TAG_STATUS, &st) < 0 || st.len != 4 ||
	    frame_field_u32(&st) != STATUS_OK || take_id(f, TAG_NODE, node) < 0 || take_id(f, TAG_SECRET, secret) < 0) {
		if (f == NULL)
			log_warn("ad-hoc registration: no answer from the router in time");
		xs_reply_error(s, &q, "internal-server-error");
		return;
	}
	counter_add(CTR_XMPP_REGISTRATIONS, 1);
	command_open(s, &q, p->cmd, p->sid, "completed");
	xb_str(&s->out, "><x xmlns='" NS_DATA "' type='form'><field var='jid' type='jid-single'><value>");
	xb_text(&s->out, s->conf.domain);
	xb_str(&s->out, "</value></field><field var='node' type='text-single'><value>");
	xb_text(&s->out, node);
	xb_str(&s->out, "</value></field><field var='secret' type='text-single'><value>");
	xb_text(&s->out, secret);
	xb_str(&s->out, "</value></field></x></command></iq>");
}
