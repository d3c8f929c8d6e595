/*
 * senders: which senders the router has, for an ingress's health answer (FRAME_SENDERS_QUERY,
 * docs/observability.md, "Health"). A sender is named as statsd names it: "apns-sender", or
 * "apns-sender:NAME" for one started with -i NAME. The router expects every sender named in
 * statsd.health_senders and every sender that has been connected since the router started; the
 * answer lists those connected (sender_up) and those expected but not connected (sender_down).
 */
#include "log.h"
#include "router.h"
#include <stdio.h>
#include <string.h>

static const char *daemon_of(uint32_t platform)
{
	static const char *const names[] = {"", "apns-sender", "fcm-sender", "hms-sender", "wns-sender"};
	return platform < sizeof names / sizeof names[0] && names[platform][0] ? names[platform] : "sender";
}

/* The sender at slot's name into out (SENDER_NAME_MAX bytes). */
static void sender_name(const struct router_peer *p, char *out)
{
	snprintf(out, SENDER_NAME_MAX, "%s%s%s", daemon_of(p->p.platform), p->p.instance[0] ? ":" : "", p->p.instance);
}

static int is_up(const struct router *r, const char *name)
{
	char n[SENDER_NAME_MAX];

	for (int i = 0; i < ROUTER_PEERS; i++) {
		const struct router_peer *p = &r->peers[i];
		if (!p->in_use || !p->p.hello_done || p->p.role != ROLE_SENDER)
			continue;
		sender_name(p, n);
		if (strcmp(n, name) == 0)
			return 1;
	}
	return 0;
}

/* Was this sender taken (main.c refuses one of another app than its platform's jobs)? */
static int was_taken(const struct router *r, const struct router_peer *p)
{
	static const char *const conf_names[] = {"", "apns", "fcm", "hms", "wns"};

	return p->p.platform < sizeof conf_names / sizeof conf_names[0] && p->p.platform > 0 &&
	       strcmp(p->p.app, config_app_of(r->cfg, conf_names[p->p.platform])) == 0;
}

void router_senders_gone(struct router *r, int slot)
{
	char n[SENDER_NAME_MAX];

	if (!was_taken(r, &r->peers[slot]))
		return;
	sender_name(&r->peers[slot], n);
	for (size_t i = 0; i < r->nseen; i++)
		if (strcmp(r->seen[i], n) == 0)
			return;
	if (r->nseen == SENDERS_SEEN_MAX) {
		log_warn("more than %d sender names since the router started: %s is not remembered for health answers",
			 SENDERS_SEEN_MAX, n);
		return;
	}
	memcpy(r->seen[r->nseen++], n, sizeof n);
}

/* Adds name as down unless it is up or already listed in out (names so far). */
static void put_down(const struct router *r, struct frame_writer *w, const char *name, const char **listed,
		     size_t *nlisted)
{
	for (size_t i = 0; i < *nlisted; i++)
		if (strcmp(listed[i], name) == 0)
			return;
	listed[(*nlisted)++] = name;
	if (!is_up(r, name))
		frame_put_bytes(w, TAG_SENDER_DOWN, name, strnlen(name, SENDER_NAME_MAX - 1));
}

void router_reply_senders(struct router *r, int slot, uint64_t id)
{
	static uint8_t buf[FRAME_MAX];
	const char *listed[CONF_LIST_MAX + SENDERS_SEEN_MAX];
	const struct conf_list *want = &r->cfg->statsd.health_senders;
	char n[SENDER_NAME_MAX];
	struct frame_writer w;
	size_t nlisted = 0;
	long len;

	frame_begin(&w, buf, FRAME_SENDERS, id);
	for (int i = 0; i < ROUTER_PEERS; i++) {
		const struct router_peer *p = &r->peers[i];
		if (!p->in_use || !p->p.hello_done || p->p.role != ROLE_SENDER)
			continue;
		sender_name(p, n);
		frame_put_bytes(&w, TAG_SENDER_UP, n, strlen(n));
	}
	for (size_t i = 0; i < want->n; i++)
		put_down(r, &w, want->v[i], listed, &nlisted);
	for (size_t i = 0; i < r->nseen; i++)
		put_down(r, &w, r->seen[i], listed, &nlisted);
	len = frame_end(&w);
	if (len > 0 && peer_send(&r->peers[slot].p, buf, (size_t)len) < 0)
		router_drop_peer(r, slot, "reply queue full");
}
