/*
 * router_link_bus: request frames to the routers over NATS JetStream (see router_link_bus.h
 * and docs/cluster.md). The connection is the process's; each link has its own JetStream
 * publish context and reply inbox, whose libnats callbacks only put completions on the link's
 * queue (bus.h): the link's thread takes them in link_bus_read(). Notifies of all the links of
 * the process are gathered under one mutex into shared batch messages, whose PubAck callback
 * puts each notify's completion on its own link's queue. Trusts the router's answers only after
 * frame_parse(); an answer for an unknown id is ignored by the caller.
 */
#include "router_link_bus.h"
#include "bus.h"
#include "daemon.h"
#include "log.h"
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

enum { EV_ACKED = 1, EV_FAILED = 2, EV_ANSWER = 3 };

/* Notifies are gathered while earlier ones wait for their PubAck (group commit): the process
 * (all its links) has at most NOTIFY_INFLIGHT notify messages unacknowledged, and what comes
 * meanwhile leaves as one FRAME_BATCH message of up to NOTIFY_BATCH notifies when one of them
 * is acknowledged. An idle ingress therefore sends a notify at once; a busy one stores many per
 * replicated message. */
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
	struct link_bus *waiting; /* next link made before the connection (link_bus_start) */
};

/* Links made before link_bus_start connected (ingress-uwpx and ingress-xmpp make theirs before
 * the sandbox, libnats' threads start after it): attached to the connection once it exists. */
static struct link_bus *G_waiting;
static int attach(struct link_bus *b);

/* A notify of the shared batch: the link that waits for it, and its request id there. */
struct owner {
	struct link_bus *l; /* NULL once that link is gone */
	uint64_t id;
};

/* A notify message in flight, from its first publish until acknowledged or given up. Known
 * by its natsMsg, which libnats hands back to the PubAck callback. */
struct nmsg {
	struct nmsg *next;
	natsMsg *m;
	struct owner *own;
	size_t n;
	uint64_t at, deadline; /* at: when to send it again (0: with libnats, waiting) */
};

/* The notifies of every link of the process. */
static struct {
	pthread_mutex_t mu;
	jsCtx *js;
	uint8_t *buf;
	struct frame_batch fb;
	struct owner own[NOTIFY_BATCH];
	char first_id[64]; /* the first notify's Nats-Msg-Id, used when it goes alone */
	char tok[64];	   /* the process's own token in batch ids */
	uint64_t deadline, sent;
	size_t inflight;
	struct nmsg *msgs;
} N = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_notify_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);

static int notify_init(void)
{
	jsOptions jo;
	char inbox[192];
	const char *tok;

	jsOptions_Init(&jo);
	jo.Wait = G.wait_ms;
	jo.PublishAsync.AckHandler = on_notify_ack;
	jo.PublishAsync.MaxPending = 8192;
	jo.PublishAsync.StallWait = 50;
	if ((N.buf = malloc(FRAME_MAX)) == NULL || bus_new_inbox(&G, inbox, sizeof inbox) < 0 ||
	    natsConnection_JetStream(&N.js, G.nc, &jo) != NATS_OK) {
		log_error("cluster: cannot set up the publisher of notifies");
		return -1;
	}
	tok = strrchr(inbox, '.');
	snprintf(N.tok, sizeof N.tok, "%.60s", tok ? tok + 1 : inbox);
	return 0;
}

int link_bus_config(const struct config *cfg)
{
	char err[256];
	if (!config_cluster(cfg) || G_on)
		return 0;
	if (bus_prepare(&G, cfg, "ingress", err, sizeof err) < 0) {
		log_error("%s", err);
		return -1;
	}
	G_on = 1;
	return 0;
}

/* The notify publisher's JetStream context needs the connection: it is made once connected. */
int link_bus_start(void)
{
	if (!G_on || G.nc != NULL)
		return 0;
	if (bus_connect(&G, NULL) < 0)
		return -1;
	while (G_waiting != NULL) {
		struct link_bus *b = G_waiting;
		G_waiting = b->waiting;
		b->waiting = NULL;
		if (attach(b) < 0)
			return -1;
	}
	return N.js != NULL ? 0 : notify_init();
}

void link_bus_shutdown(void)
{
	if (N.js) {
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MaxWait = 1000;
		js_PublishAsyncComplete(N.js, &po);
		jsCtx_Destroy(N.js);
		N.js = NULL;
	}
	while (N.msgs) {
		struct nmsg *r = N.msgs;
		N.msgs = r->next;
		if (r->at)
			natsMsg_Destroy(r->m); /* not with libnats */
		free(r->own);
		free(r);
	}
	free(N.buf);
	N.buf = NULL;
	if (G_on)
		bus_close(&G);
	G_on = 0;
}

int link_bus_wanted(const char *sock_path)
{
	const char *slash = strrchr(sock_path, '/');
	return G_on && strcmp(slash ? slash + 1 : sock_path, "router.sock") == 0;
}

/* libnats' thread: a PubAck of a request that the router answers, or its failure. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct link_bus *b = closure;

	(void)js;
	if (!bus_stored(pa)) {
		log_debug("cluster: a request was not stored: %s", pae && pae->ErrText ? pae->ErrText
							  : pae ? natsStatus_GetText(pae->Err) : "a duplicate without a sequence");
		bus_queue_put(b->q, EV_FAILED, msg, 0); /* sent again from the link's thread */
		return;
	}
	natsMsg_Destroy(msg); /* stored: the router's answer comes on the link's inbox */
}

/* libnats' thread: the router's answer. */
static void on_answer(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)nc;
	(void)sub;
	bus_queue_put(((struct link_bus *)closure)->q, EV_ANSWER, msg, 0);
}

/* The link's inbox, JetStream context and answer subscription on the connection. */
static int attach(struct link_bus *b)
{
	jsOptions jo;

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
	return 0;
fail:
	log_error("cluster: cannot set up a link to the routers");
	return -1;
}

struct link_bus *link_bus_new(int epfd, void *tag, uint32_t timeout_ms)
{
	struct link_bus *b = calloc(1, sizeof *b);
	struct epoll_event ev = {.events = EPOLLIN};

	if (b == NULL || (b->q = bus_queue_new()) == NULL)
		goto fail;
	b->timeout_ms = timeout_ms;
	ev.data.ptr = tag;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, bus_queue_fd(b->q), &ev) < 0)
		goto fail;
	if (G.nc == NULL) { /* not connected yet: link_bus_start attaches it */
		b->waiting = G_waiting;
		G_waiting = b;
		return b;
	}
	if (attach(b) < 0) {
		link_bus_free(b);
		return NULL;
	}
	return b;
fail:
	log_error("cluster: cannot set up a link to the routers");
	link_bus_free(b);
	return NULL;
}

static void resend_later(struct link_bus *b, natsMsg *m, uint64_t deadline)
{
	struct resend *r = malloc(sizeof *r);
	uint64_t now = mono_ms();
	if (r == NULL || now >= deadline) {
		free(r);
		natsMsg_Destroy(m); /* its request is answered busy by the link's deadline */
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

/* libnats' thread: the PubAck of a notify message, or its failure. */
static void on_notify_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct nmsg **pp, *r = NULL;

	(void)js;
	(void)closure;
	pthread_mutex_lock(&N.mu);
	for (pp = &N.msgs; *pp; pp = &(*pp)->next)
		if ((*pp)->m == msg) {
			r = *pp;
			break;
		}
	if (r == NULL) {
		pthread_mutex_unlock(&N.mu);
		natsMsg_Destroy(msg);
		return;
	}
	if (!bus_stored(pa)) {
		/* pa without a sequence: a "duplicate" of a copy the stream has not committed, which
		 * may never be (bus_stored); the client hears Success only once it is stored. */
		log_debug("cluster: notifies not stored: %s", pae && pae->ErrText ? pae->ErrText
						   : pae ? natsStatus_GetText(pae->Err) : "a duplicate without a sequence");
		r->at = mono_ms() + 100; /* sent again, same id, by a link's tick */
		pthread_mutex_unlock(&N.mu);
		return;
	}
	*pp = r->next;
	N.inflight--;
	for (size_t i = 0; i < r->n; i++)
		if (r->own[i].l)
			bus_queue_put(r->own[i].l->q, EV_ACKED, NULL, r->own[i].id);
	pthread_mutex_unlock(&N.mu);
	natsMsg_Destroy(msg);
	free(r->own);
	free(r);
}

/* Under N.mu: the notifies gathered so far become a message in flight. They leave alone as
 * pp.req.notify with their own id, or several as one FRAME_BATCH on pp.req.batch with an id of
 * the process's own (a resend of that message is stored once; each notify's own id is checked
 * by the router, docs/cluster.md). NULL when nothing was gathered, or without memory (the
 * requests are then answered busy at their deadline). */
static struct nmsg *take_notifies(void)
{
	size_t n = N.fb.n, len;
	const uint8_t *msg;
	char id[96], dl[24];
	struct nmsg *r;

	if (n == 0)
		return NULL;
	len = frame_batch_end(&N.fb, &msg);
	if ((r = calloc(1, sizeof *r)) == NULL || (r->own = malloc(n * sizeof *r->own)) == NULL) {
		free(r);
		return NULL;
	}
	if (n == 1)
		r->m = bus_msg("pp.req.notify", msg, len, N.first_id);
	else {
		snprintf(id, sizeof id, "%s.b%llu", N.tok, (unsigned long long)++N.sent);
		r->m = bus_msg("pp.req.batch", msg, len, id);
	}
	snprintf(dl, sizeof dl, "%llu", (unsigned long long)N.deadline);
	if (r->m == NULL || natsMsgHeader_Set(r->m, "Pp-Deadline", dl) != NATS_OK) {
		log_warn("cluster: %zu notifies not published (no memory); answered busy at their deadline", n);
		natsMsg_Destroy(r->m);
		free(r->own);
		free(r);
		return NULL;
	}
	memcpy(r->own, N.own, n * sizeof *r->own);
	r->n = n;
	r->deadline = N.deadline;
	r->next = N.msgs;
	N.msgs = r;
	N.inflight++;
	return r;
}

/* Outside N.mu: hands r's message to libnats (which may call back at once). */
static void send_notifies(struct nmsg *r)
{
	natsMsg *m = r->m;
	jsPubOptions po;

	jsPubOptions_Init(&po);
	po.MaxWait = G.wait_ms;
	if (js_PublishMsgAsync(N.js, &m, &po) != NATS_OK) {
		pthread_mutex_lock(&N.mu);
		r->at = mono_ms() + 100;
		pthread_mutex_unlock(&N.mu);
	}
}

void link_bus_flush(struct link_bus *b)
{
	struct nmsg *r = NULL;

	if (b == NULL)
		return;
	pthread_mutex_lock(&N.mu);
	if (N.fb.n > 0 && N.inflight < NOTIFY_INFLIGHT)
		r = take_notifies();
	pthread_mutex_unlock(&N.mu);
	if (r)
		send_notifies(r);
}

static int queue_notify(struct link_bus *b, const struct frame *f, const uint8_t *frame, size_t len)
{
	struct nmsg *r = NULL;
	int rc = -1;

	pthread_mutex_lock(&N.mu);
	if (N.fb.n > 0 && (N.fb.n >= NOTIFY_BATCH || frame_batch_size(&N.fb) + FRAME_FIELD_HEADER + len > NOTIFY_BATCH_BYTES))
		r = take_notifies();
	if (N.fb.n == 0) {
		notify_id(f, N.first_id, sizeof N.first_id);
		N.deadline = mono_ms() + b->timeout_ms;
	}
	if (frame_batch_add(&N.fb, N.buf, frame, len) != NULL) {
		N.own[N.fb.n - 1].l = b;
		N.own[N.fb.n - 1].id = f->id;
		rc = 0;
	}
	pthread_mutex_unlock(&N.mu);
	if (r)
		send_notifies(r);
	return rc;
}

/* Notify messages due to be sent again go; those past their deadline are given up. */
static void notifies_tick(uint64_t now)
{
	struct nmsg *due[64], **pp;
	size_t nd = 0;

	pthread_mutex_lock(&N.mu);
	for (pp = &N.msgs; *pp && nd < 64;) {
		struct nmsg *r = *pp;
		if (r->at == 0 || r->at > now) {
			pp = &r->next;
			continue;
		}
		if (now >= r->deadline) {
			*pp = r->next;
			N.inflight--;
			natsMsg_Destroy(r->m); /* its requests are answered busy by their links' deadlines */
			free(r->own);
			free(r);
			continue;
		}
		r->at = 0;
		due[nd++] = r;
		pp = &r->next;
	}
	pthread_mutex_unlock(&N.mu);
	for (size_t i = 0; i < nd; i++)
		send_notifies(due[i]);
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

	if (now != UINT64_MAX)
		notifies_tick(now);
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
			natsMsg_Destroy(r->m);
		else if (publish(b, &r->m) < 0)
			resend_later(b, r->m, r->deadline);
		free(r);
	}
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
			fn(arg, id, STATUS_OK, NULL); /* a notify's message was stored */
		}
		natsMsg_Destroy(m);
	}
}

void link_bus_free(struct link_bus *b)
{
	if (b == NULL)
		return;
	for (struct link_bus **w = &G_waiting; *w; w = &(*w)->waiting)
		if (*w == b) {
			*w = b->waiting;
			break;
		}
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
	pthread_mutex_lock(&N.mu); /* its notifies, gathered or in flight, have no one to tell */
	for (size_t i = 0; i < N.fb.n; i++)
		if (N.own[i].l == b)
			N.own[i].l = NULL;
	for (struct nmsg *r = N.msgs; r; r = r->next)
		for (size_t i = 0; i < r->n; i++)
			if (r->own[i].l == b)
				r->own[i].l = NULL;
	pthread_mutex_unlock(&N.mu);
	bus_queue_free(b->q);
	free(b);
}
