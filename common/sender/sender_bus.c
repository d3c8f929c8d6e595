/*
 * sender_bus: the jobs of a provider sender in cluster mode (see sender_bus.h and
 * docs/cluster.md). Trusts a job only after frame_parse(); the stream's own metadata gives
 * the job's age and delivery count. Holds the bus connection, the pull subscription, the
 * fetch thread, and every job message (a push, or a batch of pushes) in flight until each of
 * its jobs has its verdict; a retry of one job of a batch waits here, not on the server.
 */
#include "sender_bus.h"
#include "bus.h"
#include "bus_feed.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include "sender_loop.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define SLOTS 16384 /* > SENDER_JOBS_MAX */
#define PROGRESS_MS 2000 /* a batch holding a retry tells the server it is in progress this often (AckWait is 5 s at least) */

/* One message of PP_JOBS: one push, or a batch of them (router/cluster.c). It is acknowledged
 * (or nak'ed, or terminated) once every job in it has ended. */
struct group {
	struct group *next, *prev;  /* every group */
	struct group *bnext;	    /* backlog: jobs not yet handed to the sender core */
	natsMsg *m;
	struct frame f;		    /* the message's frame (a batch, or the push) */
	size_t pos;		    /* next item of a batch to hand on */
	int batch, started;
	uint32_t index;		    /* of the next job handed on */
	uint64_t ts_ms;		    /* when the message was stored */
	uint64_t delivered;	    /* its deliveries so far, this one included */
	uint64_t progress_ms;
	size_t left;		    /* jobs not ended, + 1 until every job was handed on */
	size_t held;		    /* jobs waiting here for a retry */
	int64_t nak_ms;		    /* a single push's retry: nak with this delay */
	int term, redo;
};

struct slot {
	uint64_t id;		/* 0 = free */
	struct group *g;
	struct frame push;
	const uint8_t *bytes;	/* the push frame, inside the group's message */
	size_t blen;
	uint32_t index;		/* its place in a batch */
	uint32_t attempts;	/* retries already made here (a batch's job) */
	uint64_t due_ms;	/* held for a retry until then; 0 = with the sender core */
};

struct sender_bus {
	struct bus bus;
	natsSubscription *sub;
	struct bus_queue *q;
	struct bus_feed *feed;
	volatile long room;
	struct slot slots[SLOTS];
	uint64_t seq;
	int bound, dispatching;
	struct sender *s;
	struct loop_fd *qh;	/* the job queue's eventfd in the sender's loop */
	struct loop_timer *retry_t; /* the next retry of a batch's job, or progress report */
	size_t active, held;
	struct group *groups, *bhead, *btail;
};

int sender_bus_prepare(struct sender *s)
{
	char err[256] = "out of memory", name[64];
	struct sender_bus *b = calloc(1, sizeof *b);

	if (b == NULL)
		return -1;
	b->s = s;
	if (bus_platform_name(s->ops->platform) == NULL) {
		log_error("cluster: no job stream for the %s sender's platform in cluster mode (docs/cluster.md)",
			  s->ops->platform_name);
		free(b);
		return -1;
	}
	snprintf(name, sizeof name, "%s-sender%s%s", bus_platform_name(s->ops->platform), s->instance ? "-" : "",
		 s->instance ? s->instance : "");
	if (bus_prepare(&b->bus, s->cfg, name, err, sizeof err) < 0 ||
	    (b->q = bus_queue_new()) == NULL) {
		log_error("%s", err);
		free(b);
		return -1;
	}
	s->link.bus = b;
	return 0;
}

static void on_jobs(void *arg, uint32_t events)
{
	(void)events;
	sender_bus_read(arg);
}

static void on_retry(void *arg)
{
	struct sender *s = arg;

	s->link.bus->retry_t = NULL;
	sender_bus_read(s);
}

int sender_bus_try(struct sender *s)
{
	struct sender_bus *b = s->link.bus;

	if (b->bound)
		return bus_queue_fd(b->q);
	/* The connection starts on the first try, inside the sandbox (libnats' threads inherit it). */
	if (b->bus.nc == NULL && bus_connect(&b->bus, NULL) < 0)
		fatal("cluster: cannot start");
	char consumer[128], subject[128];
	jsSubOptions so;
	jsErrCode ec = 0;
	natsStatus st;

	bus_job_consumer(&b->bus, s->ops->platform, consumer, sizeof consumer);
	bus_job_subject(&b->bus, s->ops->platform, subject, sizeof subject);
	jsSubOptions_Init(&so);
	so.Stream = BUS_JOBS; /* bind by name: no stream look-up the sender's user may not make */
	so.Consumer = consumer;
	st = js_PullSubscribe(&b->sub, b->bus.js, subject, consumer, NULL, &so, &ec);
	if (st != NATS_OK) {
		if (!s->link.rc.warned)
			log_info("cluster: jobs consumer %s not ready (%s, error %d); retrying every second", consumer,
				 natsStatus_GetText(st), (int)ec);
		s->link.rc.warned = 1;
		b->sub = NULL;
		return -1;
	}
	b->room = (long)s->max_jobs;
	if ((b->feed = bus_feed_start(&b->bus, BUS_JOBS, consumer, b->q, 0, &b->room, 256)) == NULL ||
	    (b->qh = loop_add(s->lp, bus_queue_fd(b->q), EPOLLIN, on_jobs, s)) == NULL) {
		log_error("cluster: cannot start fetching jobs");
		return -1;
	}
	b->bound = 1;
	s->link.rc.warned = 0;
	log_info("cluster: %s sender %s takes jobs from %s", s->ops->platform_name, s->instance ? s->instance : "(unnamed)",
		 consumer);
	return bus_queue_fd(b->q);
}

/* Every job of g ended: the message is settled. */
static void group_end(struct sender_bus *b, struct group *g)
{
	if (g->term)
		bus_settle(&b->bus, g->m, BUS_TERM, 0);
	else if (g->nak_ms > 0)
		bus_settle(&b->bus, g->m, BUS_NAK, g->nak_ms);
	else if (g->redo)
		bus_settle(&b->bus, g->m, BUS_NAK, 1000); /* comes again whole (a result not published) */
	else
		bus_settle(&b->bus, g->m, BUS_ACK, 0);
	if (g->prev)
		g->prev->next = g->next;
	else
		b->groups = g->next;
	if (g->next)
		g->next->prev = g->prev;
	natsMsg_Destroy(g->m);
	free(g);
}

static void group_release(struct sender_bus *b, struct group *g)
{
	if (--g->left == 0)
		group_end(b, g);
}

/* A job ended: its slot is free, and its message settled when it was the last. */
static void slot_free(struct sender_bus *b, struct slot *sl)
{
	struct group *g = sl->g;
	if (sl->due_ms == 0 && b->active > 0)
		b->active--;
	memset(sl, 0, sizeof *sl);
	__atomic_add_fetch(&b->room, 1, __ATOMIC_ACQ_REL);
	group_release(b, g);
}

/* Hands the next jobs of the backlog to the sender core while it has room. Not re-entered:
 * a verdict given at once (inside sender_push) only frees its slot. */
static void dispatch(struct sender *s)
{
	struct sender_bus *b = s->link.bus;

	if (b->dispatching)
		return;
	b->dispatching = 1;
	while (b->bhead && b->active < s->max_jobs) {
		struct group *g = b->bhead;
		struct frame_field item;
		struct frame push;
		struct slot *sl = NULL;
		const char *why = "";
		uint64_t id = ++b->seq;
		size_t i;
		int r = 1;

		if (g->batch)
			r = frame_batch_next(&g->f, &g->pos, &item, &push, &why);
		else if (!g->started) {
			push = g->f;
			item.val = (const uint8_t *)natsMsg_GetData(g->m);
			item.len = (uint32_t)natsMsg_GetDataLength(g->m);
		} else
			r = 0;
		g->started = 1;
		if (r != 1) { /* every job handed on */
			b->bhead = g->bnext;
			if (b->bhead == NULL)
				b->btail = NULL;
			group_release(b, g);
			continue;
		}
		for (i = 0; i < SLOTS; i++) {
			sl = &b->slots[(id + i) % SLOTS];
			if (sl->id == 0)
				break;
		}
		if (i == SLOTS) { /* cannot happen: active < max_jobs < SLOTS */
			g->redo = 1; /* the message comes again whole */
			g->left--;   /* this job ends here (the dispatch reference keeps g) */
			continue;
		}
		id = (id << 16) | (uint64_t)(sl - b->slots);
		sl->id = id;
		sl->g = g;
		sl->push = push;
		sl->push.id = id;
		sl->bytes = item.val;
		sl->blen = item.len;
		sl->index = g->index++;
		b->active++;
		push.id = id;
		sender_push(s, &push);
	}
	b->dispatching = 0;
}

static void arm_timer(struct sender_bus *b)
{
	uint64_t now = mono_ms(), next = 0;

	if (b->held > 0) {
		next = now + PROGRESS_MS;
		for (size_t i = 0; i < SLOTS; i++)
			if (b->slots[i].id && b->slots[i].due_ms && b->slots[i].due_ms < next)
				next = b->slots[i].due_ms;
		next = next > now ? next - now : 1;
	}
	if (loop_wake(b->s->lp, &b->retry_t, b->held > 0 ? (int)next : -1, on_retry, b->s) < 0)
		log_warn("cluster: out of memory for a timer");
}

/* Jobs of a batch whose retry is due go back to the sender core; the messages that hold such
 * jobs are kept from redelivery (in progress). */
static void retries_due(struct sender *s)
{
	struct sender_bus *b = s->link.bus;
	uint64_t now = mono_ms();

	if (b->held == 0)
		return;
	for (struct group *g = b->groups; g; g = g->next)
		if (g->held > 0 && now >= g->progress_ms + PROGRESS_MS) {
			bus_settle(&b->bus, g->m, BUS_IN_PROGRESS, 0);
			g->progress_ms = now;
		}
	b->dispatching = 1;
	for (size_t i = 0; i < SLOTS && b->held > 0; i++) {
		struct slot *sl = &b->slots[i];
		if (sl->id == 0 || sl->due_ms == 0 || sl->due_ms > now)
			continue;
		sl->due_ms = 0;
		sl->g->held--;
		b->held--;
		b->active++;
		sender_push(s, &sl->push);
	}
	b->dispatching = 0;
	arm_timer(b);
}

/* The time a job was stored: the header a retried job carries, or the stream's timestamp. */
static int group_new(struct sender_bus *b, natsMsg *m, const struct frame *f, uint64_t ts, uint64_t delivered,
		     size_t jobs)
{
	struct group *g = calloc(1, sizeof *g);
	if (g == NULL)
		return -1;
	g->m = m;
	g->f = *f;
	g->batch = f->type == FRAME_BATCH;
	g->ts_ms = ts;
	g->delivered = delivered;
	g->progress_ms = mono_ms();
	g->left = jobs + 1;
	g->next = b->groups;
	if (b->groups)
		b->groups->prev = g;
	b->groups = g;
	if (b->btail)
		b->btail->bnext = g;
	else
		b->bhead = g;
	b->btail = g;
	return 0;
}

/* How many pushes a job message holds; 0 when it is not a push or a batch of pushes only. */
static size_t jobs_in(const struct frame *f)
{
	struct frame_field item;
	struct frame inner;
	const char *why;
	size_t pos = 0, n = 0;
	int r;

	if (f->type == FRAME_PUSH)
		return 1;
	if (f->type != FRAME_BATCH)
		return 0;
	while ((r = frame_batch_next(f, &pos, &item, &inner, &why)) == 1) {
		if (inner.type != FRAME_PUSH)
			return 0;
		n++;
	}
	return r == 0 ? n : 0;
}

static void count_outcome(uint32_t platform, int delivered)
{
	if (platform == PLATFORM_IOS)
		counter_add(delivered ? CTR_IOS_DELIVERED : CTR_IOS_FAILED, 1);
	else if (platform == PLATFORM_ANDROID)
		counter_add(delivered ? CTR_ANDROID_DELIVERED : CTR_ANDROID_FAILED, 1);
	else if (platform == PLATFORM_WNS)
		counter_add(delivered ? CTR_WNS_DELIVERED : CTR_WNS_FAILED, 1);
}

/* The back-off of the router's outbox (docs/senders.md): first × 2^attempts, capped, ±20 %. */
static uint64_t backoff(const struct config *cfg, uint64_t attempts)
{
	uint64_t d = (uint64_t)cfg->router.backoff_first_ms, cap = (uint64_t)cfg->router.backoff_cap_ms;
	for (uint64_t i = 0; i < attempts && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	return d * 80 / 100 + randombytes_uniform((uint32_t)(d * 40 / 100 + 1));
}

void sender_bus_read(struct sender *s)
{
	struct sender_bus *b = s->link.bus;
	uint64_t max_age = (uint64_t)s->cfg->router.job_max_age_s * 1000;
	int kind;
	natsMsg *m;
	uint64_t arg;

	retries_due(s);
	for (int k = 0; k < 512 && bus_queue_get(b->q, &kind, &m, &arg) == 1; k++) {
		struct frame f;
		const char *why = "";
		uint64_t ts = 0, delivered = 1;
		size_t n = 0;

		if (frame_parse((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &f, &why) < 0 ||
		    (n = jobs_in(&f)) == 0 || bus_msg_meta(m, NULL, &ts, &delivered) < 0) {
			log_warn("cluster: a bad job on %s (%s); dropped", natsMsg_GetSubject(m), n ? why : "not pushes");
			bus_settle(&b->bus, m, BUS_TERM, 0);
			natsMsg_Destroy(m);
			__atomic_add_fetch(&b->room, 1, __ATOMIC_ACQ_REL);
			continue;
		}
		if (now_ms() > ts + max_age) {
			for (size_t i = 0; i < n; i++)
				count_outcome(s->ops->platform, 0);
			counter_add(CTR_JOBS_EXPIRED, n);
			bus_settle(&b->bus, m, BUS_TERM, 0);
			natsMsg_Destroy(m);
			__atomic_add_fetch(&b->room, 1, __ATOMIC_ACQ_REL);
			continue;
		}
		/* room counts jobs: the fetch took one for the message */
		__atomic_sub_fetch(&b->room, (long)n - 1, __ATOMIC_ACQ_REL);
		if (group_new(b, m, &f, ts, delivered, n) < 0) {
			bus_settle(&b->bus, m, BUS_NAK, 0);
			natsMsg_Destroy(m);
			__atomic_add_fetch(&b->room, (long)n, __ATOMIC_ACQ_REL);
			continue;
		}
	}
	dispatch(s);
}

static struct slot *slot_of(struct sender_bus *b, uint64_t id)
{
	struct slot *sl = &b->slots[(id & 0xffff) % SLOTS];
	return sl->id == id ? sl : NULL;
}

/* A verdict the router must know: the job and its result, as one batch, on pp.res. */
static int publish_result(struct sender *s, struct slot *sl, const struct guard_verdict *v)
{
	struct sender_bus *b = s->link.bus;
	static uint8_t batch_buf[FRAME_MAX];
	uint8_t res[512];
	struct frame_batch fb;
	const uint8_t *msg;
	char subj[128], id[48];
	uint64_t seq = 0;
	natsMsg *out;
	long n;
	size_t len;

	if ((n = sender_result_frame(res, 0, v)) < 0)
		return -1;
	memset(&fb, 0, sizeof fb);
	if (frame_batch_add(&fb, batch_buf, sl->bytes, sl->blen) == NULL ||
	    frame_batch_add(&fb, batch_buf, res, (size_t)n) == NULL)
		return -1;
	len = frame_batch_end(&fb, &msg);
	bus_msg_meta(sl->g->m, &seq, NULL, NULL);
	{
		char app[64];
		bus_app_name(s->cfg, s->ops->platform, s->cfg->app,
			     strcmp(s->cfg->app, "default") ? strlen(s->cfg->app) : 0, app, sizeof app);
		snprintf(subj, sizeof subj, "pp.res.%s.%s", bus_platform_name(s->ops->platform), app);
	}
	/* a redelivered job's result is stored once */
	if (sl->g->batch)
		snprintf(id, sizeof id, "x%llu.%u", (unsigned long long)seq, sl->index);
	else
		snprintf(id, sizeof id, "x%llu", (unsigned long long)seq);
	if ((out = bus_msg(subj, msg, len, id)) == NULL)
		return -1;
	/* A UWPX/XMPP job's device or node, and a test push's waiting ingress (docs/cluster.md). */
	for (size_t i = 0; i < 4; i++) {
		static const char *const keep[] = {"Pp-Ref", "Pp-Reply", "Pp-Req", "Pp-Job"};
		const char *hv = NULL;
		if (natsMsgHeader_Get(sl->g->m, keep[i], &hv) == NATS_OK && hv)
			natsMsgHeader_Set(out, keep[i], hv);
	}
	return bus_publish(&b->bus, &out, 1, NULL, 4 * b->bus.wait_ms);
}

static int has_header(natsMsg *m, const char *name)
{
	const char *v = NULL;
	return natsMsgHeader_Get(m, name, &v) == NATS_OK && v != NULL;
}

void sender_bus_result(struct sender *s, uint64_t id, const struct guard_verdict *v)
{
	struct sender_bus *b = s->link.bus;
	struct slot *sl = slot_of(b, id);
	struct group *g;
	uint32_t pl = s->ops->platform;
	uint64_t now = now_ms(), max_age = (uint64_t)s->cfg->router.job_max_age_s * 1000, delay, tries;

	if (sl == NULL)
		return;
	g = sl->g;
	histogram_observe(HIST_JOB_PROVIDER_ANSWER, now > g->ts_ms ? (now - g->ts_ms) * 1000 : 0);
	if (natsMsgHeader_Get(g->m, "Pp-Reply", &(const char *){NULL}) == NATS_OK &&
	    (v->outcome == OUTCOME_DELIVERED || v->outcome == OUTCOME_MESSAGE_FAILED || v->outcome == OUTCOME_CREDENTIALS)) {
		/* A test push (a user waits): its outcome goes to the router that answers him. */
		count_outcome(pl, v->outcome == OUTCOME_DELIVERED);
		if (publish_result(s, sl, v) != 0)
			g->redo = 1;
		slot_free(b, sl);
		dispatch(s);
		return;
	}
	if (v->outcome == OUTCOME_RETRY && v->status == 406 && has_header(g->m, "Pp-Ref") && has_header(g->m, "Pp-Job")) {
		/* WNS throttles the channel: the routers back it off and hold the job (docs/cluster.md). */
		if (publish_result(s, sl, v) != 0)
			g->redo = 1; /* the result is published when the message comes again */
		slot_free(b, sl);
		dispatch(s);
		return;
	}
	switch (v->outcome) {
	case OUTCOME_DELIVERED:
		count_outcome(pl, 1);
		/* Pp-Ok: the routers want this success (a channel's run of 406s ends, an old refresh is
		 * renewed); best effort, the job was delivered either way. */
		if (has_header(g->m, "Pp-Ok") && publish_result(s, sl, v) < 0)
			log_warn("cluster: a WNS delivery could not be reported to the routers");
		break;
	case OUTCOME_TOKEN_DEAD:
	case OUTCOME_TOKEN_SUSPECT:
		count_outcome(pl, 0);
		if (publish_result(s, sl, v) != 0)
			g->redo = 1; /* the result is published when the message comes again */
		break;
	case OUTCOME_MESSAGE_FAILED:
		count_outcome(pl, 0);
		counter_add(CTR_JOBS_FAILED, 1);
		break;
	default: /* retry, credentials */
		tries = (g->delivered ? g->delivered - 1 : 0) + sl->attempts;
		delay = backoff(s->cfg, tries);
		if (v->retry_after_ms > delay)
			delay = v->retry_after_ms;
		if (now + delay > g->ts_ms + max_age) {
			count_outcome(pl, 0);
			counter_add(CTR_JOBS_EXPIRED, 1);
			log_info("job expired after %llu attempts", (unsigned long long)tries + 1);
			if (!g->batch)
				g->term = 1;
			break;
		}
		counter_add(CTR_JOBS_RETRIED, 1);
		if (!g->batch) {
			g->nak_ms = (int64_t)delay; /* the server delivers it again after the delay */
			break;
		}
		/* One job of a batch: its siblings may be delivered already, so it waits here (the
		 * message kept in progress) rather than the whole message coming again. */
		sl->attempts++;
		sl->due_ms = mono_ms() + delay;
		g->held++;
		b->held++;
		if (b->active > 0)
			b->active--;
		arm_timer(b);
		dispatch(s);
		return;
	}
	slot_free(b, sl);
	dispatch(s);
}

void sender_bus_free(struct sender *s)
{
	struct sender_bus *b = s->link.bus;
	if (b == NULL)
		return;
	bus_feed_stop(b->feed);
	while (b->groups) {
		struct group *g = b->groups;
		b->groups = g->next;
		bus_settle(&b->bus, g->m, BUS_NAK, 0); /* handed back at once, not after AckWait */
		natsMsg_Destroy(g->m);
		free(g);
	}
	natsSubscription_Destroy(b->sub);
	loop_del(s->lp, b->qh);
	loop_timer_cancel(s->lp, b->retry_t);
	bus_queue_free(b->q);
	bus_close(&b->bus);
	free(b);
	s->link.bus = NULL;
}
