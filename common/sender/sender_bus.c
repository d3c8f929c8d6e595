/*
 * sender_bus: the jobs of a provider sender in cluster mode (see sender_bus.h and
 * docs/cluster.md). Trusts a job only after frame_parse(); the stream's own metadata gives
 * the job's age and delivery count. Holds the bus connection, the pull subscription, the
 * fetch thread, and the JetStream message of every job in flight until its verdict.
 */
#include "sender_bus.h"
#include "bus.h"
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

struct slot {
	uint64_t id;		/* 0 = free */
	natsMsg *m;
	uint64_t ts_ms;		/* when the job was stored */
	uint64_t delivered;	/* deliveries so far, this one included */
};

struct sender_bus {
	struct bus bus;
	natsSubscription *sub;
	struct bus_queue *q;
	struct bus_puller *puller;
	volatile long room;
	struct slot slots[SLOTS];
	uint64_t seq;
	int bound;
};

int sender_bus_prepare(struct sender *s)
{
	char err[256], name[64];
	struct sender_bus *b = calloc(1, sizeof *b);

	if (b == NULL)
		return -1;
	if (bus_platform_name(s->ops->platform) == NULL) {
		log_error("cluster: no job stream for the %s sender's platform in cluster mode (docs/cluster.md)",
			  s->ops->platform_name);
		free(b);
		return -1;
	}
	snprintf(name, sizeof name, "%s-sender%s%s", bus_platform_name(s->ops->platform), s->instance ? "-" : "",
		 s->instance ? s->instance : "");
	if (bus_prepare(&b->bus, s->cfg, name, err, sizeof err) < 0 || bus_connect(&b->bus, NULL) < 0 ||
	    (b->q = bus_queue_new()) == NULL) {
		log_error("%s", err);
		free(b);
		return -1;
	}
	s->link.bus = b;
	return 0;
}

int sender_bus_try(struct sender *s)
{
	struct sender_bus *b = s->link.bus;
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = SENDER_EV_ROUTER};

	if (b->bound)
		return bus_queue_fd(b->q);
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
		if (!s->link.absent_logged)
			log_info("cluster: jobs consumer %s not ready (%s, error %d); retrying every second", consumer,
				 natsStatus_GetText(st), (int)ec);
		s->link.absent_logged = 1;
		b->sub = NULL;
		return -1;
	}
	b->room = (long)s->max_jobs;
	if ((b->puller = bus_puller_start(b->sub, b->q, 0, &b->room, 256)) == NULL ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, bus_queue_fd(b->q), &ev) < 0) {
		log_error("cluster: cannot start fetching jobs");
		return -1;
	}
	b->bound = 1;
	s->link.absent_logged = 0;
	log_info("cluster: %s sender %s takes jobs from %s", s->ops->platform_name, s->instance ? s->instance : "(unnamed)",
		 consumer);
	return bus_queue_fd(b->q);
}

static void slot_free(struct sender_bus *b, struct slot *sl)
{
	natsMsg_Destroy(sl->m);
	memset(sl, 0, sizeof *sl);
	__atomic_add_fetch(&b->room, 1, __ATOMIC_ACQ_REL);
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

	for (int k = 0; k < 512 && bus_queue_get(b->q, &kind, &m, &arg) == 1; k++) {
		struct frame f;
		struct slot *sl = NULL;
		const char *why = "";
		uint64_t ts = 0, delivered = 1, id;
		size_t i;

		if (frame_parse((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &f, &why) < 0 ||
		    f.type != FRAME_PUSH || bus_msg_meta(m, NULL, &ts, &delivered) < 0) {
			log_warn("cluster: a bad job on %s (%s); dropped", natsMsg_GetSubject(m), why);
			natsMsg_Term(m, NULL);
			natsMsg_Destroy(m);
			__atomic_add_fetch(&b->room, 1, __ATOMIC_ACQ_REL);
			continue;
		}
		if (now_ms() > ts + max_age) {
			count_outcome(s->ops->platform, 0);
			counter_add(CTR_JOBS_EXPIRED, 1);
			natsMsg_Term(m, NULL);
			natsMsg_Destroy(m);
			__atomic_add_fetch(&b->room, 1, __ATOMIC_ACQ_REL);
			continue;
		}
		id = ++b->seq;
		for (i = 0; i < SLOTS; i++) {
			sl = &b->slots[(id + i) % SLOTS];
			if (sl->id == 0)
				break;
		}
		if (i == SLOTS) { /* cannot happen: room bounds the jobs in flight */
			natsMsg_Nak(m, NULL);
			natsMsg_Destroy(m);
			__atomic_add_fetch(&b->room, 1, __ATOMIC_ACQ_REL);
			continue;
		}
		id = (id << 16) | (uint64_t)(sl - b->slots);
		sl->id = id;
		sl->m = m;
		sl->ts_ms = ts;
		sl->delivered = delivered;
		f.id = id;
		sender_push(s, &f);
	}
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
	struct frame_writer w;
	const uint8_t *msg;
	char subj[128], id[48];
	uint64_t seq = 0;
	natsMsg *out;
	long n;
	size_t len;

	frame_begin(&w, res, FRAME_RESULT, 0);
	frame_put_u32(&w, TAG_OUTCOME, v->outcome);
	if (v->retry_after_ms)
		frame_put_u64(&w, TAG_RETRY_AFTER, v->retry_after_ms);
	if (v->timestamp_ms)
		frame_put_u64(&w, TAG_TIMESTAMP, v->timestamp_ms);
	if (v->reason[0])
		frame_put_bytes(&w, TAG_REASON, v->reason, strnlen(v->reason, GUARD_REASON_MAX));
	if (v->status > 0)
		frame_put_u32(&w, TAG_STATUS, (uint32_t)v->status);
	if ((n = frame_end(&w)) < 0)
		return -1;
	memset(&fb, 0, sizeof fb);
	if (frame_batch_add(&fb, batch_buf, (const uint8_t *)natsMsg_GetData(sl->m), (size_t)natsMsg_GetDataLength(sl->m)) ==
		    NULL ||
	    frame_batch_add(&fb, batch_buf, res, (size_t)n) == NULL)
		return -1;
	len = frame_batch_end(&fb, &msg);
	bus_msg_meta(sl->m, &seq, NULL, NULL);
	snprintf(subj, sizeof subj, "pp.res.%s.%s", bus_platform_name(s->ops->platform), s->cfg->cluster.app);
	snprintf(id, sizeof id, "x%llu", (unsigned long long)seq); /* a redelivered job's result is stored once */
	if ((out = bus_msg(subj, msg, len, id)) == NULL)
		return -1;
	/* A UWPX/XMPP job's device or node, and a test push's waiting ingress (docs/cluster.md). */
	for (size_t i = 0; i < 3; i++) {
		static const char *const keep[] = {"Pp-Ref", "Pp-Reply", "Pp-Req"};
		const char *hv = NULL;
		if (natsMsgHeader_Get(sl->m, keep[i], &hv) == NATS_OK && hv)
			natsMsgHeader_Set(out, keep[i], hv);
	}
	return bus_publish(&b->bus, &out, 1, NULL, 4 * b->bus.wait_ms);
}

void sender_bus_result(struct sender *s, uint64_t id, const struct guard_verdict *v)
{
	struct sender_bus *b = s->link.bus;
	struct slot *sl = slot_of(b, id);
	uint32_t pl = s->ops->platform;
	uint64_t now = now_ms(), max_age = (uint64_t)s->cfg->router.job_max_age_s * 1000, delay;

	if (sl == NULL)
		return;
	histogram_observe(HIST_JOB_PROVIDER_ANSWER, now > sl->ts_ms ? (now - sl->ts_ms) * 1000 : 0);
	if (natsMsgHeader_Get(sl->m, "Pp-Reply", &(const char *){NULL}) == NATS_OK &&
	    (v->outcome == OUTCOME_DELIVERED || v->outcome == OUTCOME_MESSAGE_FAILED || v->outcome == OUTCOME_CREDENTIALS)) {
		/* A test push (a user waits): its outcome goes to the router that answers him. */
		count_outcome(pl, v->outcome == OUTCOME_DELIVERED);
		if (publish_result(s, sl, v) == 0)
			natsMsg_Ack(sl->m, NULL);
		else
			natsMsg_NakWithDelay(sl->m, 1000, NULL);
		slot_free(b, sl);
		return;
	}
	switch (v->outcome) {
	case OUTCOME_DELIVERED:
		count_outcome(pl, 1);
		natsMsg_Ack(sl->m, NULL);
		break;
	case OUTCOME_TOKEN_DEAD:
	case OUTCOME_TOKEN_SUSPECT:
		count_outcome(pl, 0);
		if (publish_result(s, sl, v) == 0)
			natsMsg_Ack(sl->m, NULL);
		else
			natsMsg_NakWithDelay(sl->m, 1000, NULL); /* the result is published when it comes again */
		break;
	case OUTCOME_MESSAGE_FAILED:
		count_outcome(pl, 0);
		counter_add(CTR_JOBS_FAILED, 1);
		natsMsg_Ack(sl->m, NULL);
		break;
	default: /* retry, credentials */
		delay = backoff(s->cfg, sl->delivered ? sl->delivered - 1 : 0);
		if (v->retry_after_ms > delay)
			delay = v->retry_after_ms;
		if (now + delay > sl->ts_ms + max_age) {
			count_outcome(pl, 0);
			counter_add(CTR_JOBS_EXPIRED, 1);
			log_info("job expired after %llu attempts", (unsigned long long)sl->delivered);
			natsMsg_Term(sl->m, NULL);
		} else {
			counter_add(CTR_JOBS_RETRIED, 1);
			natsMsg_NakWithDelay(sl->m, (int64_t)delay, NULL);
		}
	}
	slot_free(b, sl);
}

void sender_bus_free(struct sender *s)
{
	struct sender_bus *b = s->link.bus;
	if (b == NULL)
		return;
	bus_puller_stop(b->puller);
	for (size_t i = 0; i < SLOTS; i++)
		if (b->slots[i].id) {
			natsMsg_Nak(b->slots[i].m, NULL); /* handed back at once, not after AckWait */
			natsMsg_Destroy(b->slots[i].m);
		}
	natsSubscription_Destroy(b->sub);
	bus_queue_free(b->q);
	bus_close(&b->bus);
	free(b);
	s->link.bus = NULL;
}
