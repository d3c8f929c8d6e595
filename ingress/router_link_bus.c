/*
 * router_link_bus: request frames to the routers over NATS JetStream (see router_link_bus.h
 * and docs/cluster.md). The connection is the process's; each link has its own JetStream
 * publish context and reply inbox, whose libnats callbacks only put completions on the link's
 * queue (bus.h): the link's thread takes them in link_bus_read(). Trusts the router's answers
 * only after frame_parse(); an answer for an unknown id is ignored by the caller.
 */
#include "router_link_bus.h"
#include "bus.h"
#include "daemon.h"
#include "log.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

enum { EV_ACKED = 1, EV_FAILED = 2, EV_ANSWER = 3 };

/* Notifies are gathered while earlier ones wait for their PubAck (group commit): a link has at
 * most NOTIFY_INFLIGHT notify messages unacknowledged, and what comes meanwhile leaves as one
 * FRAME_BATCH message of up to NOTIFY_BATCH notifies when one of them is acknowledged. An idle
 * link therefore sends a notify at once; a busy one stores many per replicated message. */
#define NOTIFY_INFLIGHT 1
#define NOTIFY_BATCH 128
#define NOTIFY_BATCH_BYTES (64 * 1024)

static struct bus G;
static int G_on;

/* A request JetStream did not store (no stream leader for a moment): sent again, with the
 * same Nats-Msg-Id, until its deadline. */
struct resend {
	struct resend *next;
	natsMsg *m;
	uint64_t at, deadline; /* monotonic */
};

struct link_bus {
	struct bus_queue *q;
	struct resend *resends;
	uint32_t timeout_ms;
	jsCtx *js;
	natsSubscription *inbox;
	char inbox_subj[192];
	uint64_t sent;
	/* notifies not yet published (NOTIFY_BATCH at most), and notify messages in flight */
	uint8_t *nbuf;
	struct frame_batch nb;
	uint8_t nfirst[64]; /* the first notify's Nats-Msg-Id, used when it goes alone */
	uint64_t ndeadline;
	size_t inflight;
};

int link_bus_config(const struct config *cfg)
{
	char err[256];
	if (!config_cluster(cfg) || G_on)
		return 0;
	if (bus_prepare(&G, cfg, "ingress", err, sizeof err) < 0) {
		log_error("%s", err);
		return -1;
	}
	if (bus_connect(&G, NULL) < 0)
		return -1;
	G_on = 1;
	return 0;
}

void link_bus_shutdown(void)
{
	if (G_on)
		bus_close(&G);
	G_on = 0;
}

int link_bus_wanted(const char *sock_path)
{
	const char *slash = strrchr(sock_path, '/');
	return G_on && strcmp(slash ? slash + 1 : sock_path, "router.sock") == 0;
}

/* libnats' thread: a PubAck or its failure. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct link_bus *b = closure;
	const char *reply = NULL;
	int wants_answer = natsMsgHeader_Get(msg, BUS_H_REPLY, &reply) == NATS_OK;

	(void)js;
	if (pa == NULL) {
		log_debug("cluster: a request was not stored: %s", pae && pae->ErrText ? pae->ErrText
							  : pae ? natsStatus_GetText(pae->Err) : "?");
		bus_queue_put(b->q, EV_FAILED, msg, 0); /* sent again from the link's thread */
		return;
	}
	if (!wants_answer) {
		bus_queue_put(b->q, EV_ACKED, msg, 0); /* a notify or a batch of them: completed by the link */
		return;
	}
	natsMsg_Destroy(msg);
}

/* libnats' thread: the router's answer. */
static void on_answer(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)nc;
	(void)sub;
	bus_queue_put(((struct link_bus *)closure)->q, EV_ANSWER, msg, 0);
}

struct link_bus *link_bus_new(int epfd, void *tag, uint32_t timeout_ms)
{
	struct link_bus *b = calloc(1, sizeof *b);
	struct epoll_event ev = {.events = EPOLLIN};
	jsOptions jo;

	if (b == NULL || (b->q = bus_queue_new()) == NULL || (b->nbuf = malloc(FRAME_MAX)) == NULL)
		goto fail;
	b->timeout_ms = timeout_ms;
	if (bus_new_inbox(&G, b->inbox_subj, sizeof b->inbox_subj) < 0)
		goto fail;
	jsOptions_Init(&jo);
	jo.Wait = G.wait_ms;
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = b;
	jo.PublishAsync.MaxPending = 8192;
	jo.PublishAsync.StallWait = 50;
	if (natsConnection_JetStream(&b->js, G.nc, &jo) != NATS_OK ||
	    natsConnection_Subscribe(&b->inbox, G.nc, b->inbox_subj, on_answer, b) != NATS_OK)
		goto fail;
	ev.data.ptr = tag;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, bus_queue_fd(b->q), &ev) < 0)
		goto fail;
	return b;
fail:
	log_error("cluster: cannot set up a link to the routers");
	link_bus_free(b);
	return NULL;
}

/* A notify message (no Pp-Reply) is in flight from its first publish until acknowledged or
 * given up. */
static int is_notify_msg(natsMsg *m)
{
	const char *v = NULL;
	return natsMsgHeader_Get(m, BUS_H_REPLY, &v) != NATS_OK;
}

static void give_up(struct link_bus *b, natsMsg *m)
{
	if (is_notify_msg(m) && b->inflight > 0)
		b->inflight--;
	natsMsg_Destroy(m); /* its requests are answered busy by the link's deadline */
}

static void resend_later(struct link_bus *b, natsMsg *m, uint64_t deadline)
{
	struct resend *r = malloc(sizeof *r);
	uint64_t now = mono_ms();
	if (r == NULL || now >= deadline) {
		free(r);
		give_up(b, m);
		return;
	}
	r->m = m;
	r->at = now + 100;
	r->deadline = deadline;
	r->next = b->resends;
	b->resends = r;
}

/* Hands m to libnats; 0, or -1 with m still the caller's. */
static int publish(struct link_bus *b, natsMsg **m)
{
	jsPubOptions po;
	natsStatus s;

	jsPubOptions_Init(&po);
	po.MaxWait = G.wait_ms; /* a PubAck that never comes ends as a failure (docs/cluster.md) */
	s = js_PublishMsgAsync(b->js, m, &po);
	if (s != NATS_OK)
		log_debug("cluster: a request not published now: %s", natsStatus_GetText(s));
	return s == NATS_OK ? 0 : -1;
}

/* Publishes m (with its Pp-Deadline); what is not taken now is sent again until then. */
static int send_msg(struct link_bus *b, natsMsg *m, uint64_t deadline)
{
	char dl[24];
	snprintf(dl, sizeof dl, "%llu", (unsigned long long)deadline);
	if (natsMsgHeader_Set(m, "Pp-Deadline", dl) != NATS_OK) {
		natsMsg_Destroy(m);
		return -1;
	}
	if (publish(b, &m) < 0)
		resend_later(b, m, deadline);
	return 0;
}

/* A notify's Nats-Msg-Id: a hash of the recipient and the data, so that the same notify sent
 * again is stored once (docs/cluster.md, "Ingress"). */
static void notify_id(const struct frame *f, char *id, size_t len)
{
	struct frame_field to, data;
	crypto_generichash_state st;
	unsigned char h[16];

	frame_get(f, TAG_ID, &to);
	frame_get(f, TAG_DATA, &data);
	crypto_generichash_init(&st, NULL, 0, sizeof h);
	crypto_generichash_update(&st, to.val, to.len);
	crypto_generichash_update(&st, (const unsigned char *)"", 1);
	crypto_generichash_update(&st, data.val, data.len);
	crypto_generichash_final(&st, h, sizeof h);
	id[0] = 'n';
	sodium_bin2hex(id + 1, len - 1, h, sizeof h);
}

/* The notifies gathered so far leave: alone as pp.req.notify with their own id, or several as
 * one FRAME_BATCH on pp.req.batch with an id of the link's own (a resend of that message is
 * stored once; each notify's own id is checked by the router, docs/cluster.md). */
static void publish_notifies(struct link_bus *b)
{
	size_t n = b->nb.n, len;
	const uint8_t *msg;
	char id[64];
	natsMsg *m;

	if (n == 0)
		return;
	len = frame_batch_end(&b->nb, &msg);
	if (n == 1)
		m = bus_msg("pp.req.notify", msg, len, (const char *)b->nfirst);
	else {
		snprintf(id, sizeof id, "%s.b%llu", strrchr(b->inbox_subj, '.') + 1, (unsigned long long)++b->sent);
		m = bus_msg("pp.req.batch", msg, len, id);
	}
	if (m == NULL) {
		log_warn("cluster: %zu notifies not published (no memory); answered busy at their deadline", n);
		return;
	}
	b->inflight++;
	if (send_msg(b, m, b->ndeadline) < 0 && b->inflight > 0)
		b->inflight--;
}

void link_bus_flush(struct link_bus *b)
{
	if (b != NULL && b->nb.n > 0 && b->inflight < NOTIFY_INFLIGHT)
		publish_notifies(b);
}

static int queue_notify(struct link_bus *b, const struct frame *f, const uint8_t *frame, size_t len)
{
	if (b->nb.n > 0 && (b->nb.n >= NOTIFY_BATCH || frame_batch_size(&b->nb) + FRAME_FIELD_HEADER + len > NOTIFY_BATCH_BYTES))
		publish_notifies(b);
	if (b->nb.n == 0) {
		notify_id(f, (char *)b->nfirst, sizeof b->nfirst);
		b->ndeadline = mono_ms() + b->timeout_ms;
	}
	return frame_batch_add(&b->nb, b->nbuf, frame, len) != NULL ? 0 : -1;
}

int link_bus_send(struct link_bus *b, const uint8_t *frame, size_t len)
{
	struct frame f;
	char subj[64], id[64];
	natsMsg *m;

	if (frame_parse(frame, len, &f, NULL) < 0)
		return -1;
	if (f.type == FRAME_NOTIFY)
		return queue_notify(b, &f, frame, len);
	snprintf(subj, sizeof subj, "pp.req.%s", frame_type_name(f.type));
	snprintf(id, sizeof id, "%s.%llu", strrchr(b->inbox_subj, '.') + 1, (unsigned long long)++b->sent);
	if ((m = bus_msg(subj, frame, len, id)) == NULL)
		return -1;
	if (natsMsgHeader_Set(m, BUS_H_REPLY, b->inbox_subj) != NATS_OK) {
		natsMsg_Destroy(m);
		return -1;
	}
	return send_msg(b, m, mono_ms() + b->timeout_ms);
}

static uint64_t deadline_of(natsMsg *m)
{
	const char *v = NULL;
	return natsMsgHeader_Get(m, "Pp-Deadline", &v) == NATS_OK ? strtoull(v, NULL, 10) : 0;
}

void link_bus_tick(struct link_bus *b, uint64_t now)
{
	struct resend **pp = &b->resends, *due = NULL;

	while (*pp) {
		struct resend *r = *pp;
		if (r->at <= now) {
			*pp = r->next;
			r->next = due;
			due = r;
		} else {
			pp = &r->next;
		}
	}
	while (due) {
		struct resend *r = due;
		due = r->next;
		if (now >= r->deadline)
			give_up(b, r->m);
		else if (publish(b, &r->m) < 0)
			resend_later(b, r->m, r->deadline);
		free(r);
	}
}

/* A notify message was stored: each notify in it is complete. */
static void notifies_stored(struct link_bus *b, natsMsg *m, link_bus_done_fn fn, void *arg)
{
	struct frame f, inner;
	struct frame_field item;
	const char *why = "";
	size_t pos = 0;

	if (b->inflight > 0)
		b->inflight--;
	if (frame_parse((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &f, &why) < 0)
		return; /* cannot happen: the link made it */
	if (f.type != FRAME_BATCH) {
		fn(arg, f.id, STATUS_OK, NULL);
		return;
	}
	while (frame_batch_next(&f, &pos, &item, &inner, &why) == 1)
		fn(arg, inner.id, STATUS_OK, NULL);
}

void link_bus_read(struct link_bus *b, link_bus_done_fn fn, void *arg)
{
	int kind;
	natsMsg *m;
	uint64_t id;

	for (int k = 0; k < 1024 && bus_queue_get(b->q, &kind, &m, &id) == 1; k++) {
		if (kind == EV_ANSWER) {
			struct frame f;
			const char *why = "";
			if (frame_parse((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &f, &why) < 0)
				log_warn("cluster: a bad answer from a router: %s", why);
			else
				fn(arg, f.id, f.type == FRAME_REPLY ? frame_u32(&f, TAG_STATUS, STATUS_ERROR) : STATUS_OK, &f);
		} else if (kind == EV_FAILED) {
			resend_later(b, m, deadline_of(m));
			continue;
		} else {
			notifies_stored(b, m, fn, arg);
		}
		natsMsg_Destroy(m);
	}
}

void link_bus_free(struct link_bus *b)
{
	if (b == NULL)
		return;
	if (b->inbox) {
		natsSubscription_Unsubscribe(b->inbox);
		natsSubscription_Destroy(b->inbox);
	}
	if (b->js) {
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MaxWait = 1000;
		js_PublishAsyncComplete(b->js, &po);
		jsCtx_Destroy(b->js);
	}
	link_bus_tick(b, UINT64_MAX); /* frees the resends */
	bus_queue_free(b->q);
	free(b->nbuf); /* notifies not yet sent: their requests were answered busy by link_free */
	free(b);
}
