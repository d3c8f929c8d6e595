/*
 * bus_feed: a pull consumer read continuously (see bus_feed.h and docs/cluster.md, "Pulling").
 * A thread keeps pull requests ($JS.API.CONSUMER.MSG.NEXT) outstanding on the feed's own inbox;
 * libnats' delivery thread hands each message that comes to the daemon's queue. What is
 * outstanding is counted here: a message that comes uses one, the server's 408 at a request's
 * expiry returns what it still held (Nats-Pending-Messages), and a request whose expiry passed
 * long ago without that answer (a server lost meanwhile) is taken as ended. Trusts the servers'
 * status answers only for counting; messages go to the daemon, which parses them.
 */
#include "bus_feed.h"
#include "daemon.h"
#include "log.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FEED_EXPIRES_MS 1000 /* a pull request waits this long at most; an idle feed renews it */
#define FEED_GRACE_MS 500    /* past its expiry without the server's answer: taken as ended */
#define FEED_REQS 32	     /* pull requests remembered at most (a filled one is forgotten at its expiry) */

/* A pull request sent: how many messages it asked for and when it is over at the latest. */
struct feed_req {
	long asked;
	uint64_t ends; /* monotonic ms: its expiry plus the grace */
};

struct bus_feed {
	struct bus *b;
	struct bus_queue *q;
	int kind, batch;
	volatile long *room;
	natsSubscription *sub;
	char inbox[192], next_subj[256];
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct feed_req req[FEED_REQS]; /* oldest first */
	int nreq;
	long outstanding; /* messages asked for and not come (nor returned by a 408) */
	int stop;
};

static void deadline_in(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Under mu: forgets request i; what is outstanding cannot exceed what the others asked for. */
static void drop(struct bus_feed *f, int i)
{
	long max = 0;

	memmove(&f->req[i], &f->req[i + 1], (size_t)(f->nreq - i - 1) * sizeof f->req[0]);
	f->nreq--;
	for (int k = 0; k < f->nreq; k++)
		max += f->req[k].asked;
	if (f->outstanding > max)
		f->outstanding = max;
}

/* libnats' delivery thread: a message for the daemon, or a status answer to a pull request. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	struct bus_feed *f = closure;
	const char *st = NULL, *pend = NULL;

	(void)nc;
	(void)sub;
	if (natsMsg_GetDataLength(m) == 0 && natsMsgHeader_Get(m, "Status", &st) == NATS_OK && st != NULL) {
		/* 408: a request expired (what it still held comes back); 409 and others: a request
		 * the server ended (leader change, limits): taken as the oldest, all it held gone. */
		pthread_mutex_lock(&f->mu);
		if (strncmp(st, "408", 3) == 0 && natsMsgHeader_Get(m, "Nats-Pending-Messages", &pend) == NATS_OK && pend) {
			f->outstanding -= strtol(pend, NULL, 10); /* what it held will not come */
			if (f->outstanding < 0)
				f->outstanding = 0;
		}
		if (f->nreq > 0)
			drop(f, 0);
		pthread_cond_signal(&f->cv);
		pthread_mutex_unlock(&f->mu);
		natsMsg_Destroy(m);
		return;
	}
	if (natsMsg_GetReply(m) == NULL) {
		natsMsg_Destroy(m); /* not a JetStream message */
		return;
	}
	__atomic_sub_fetch(f->room, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_lock(&f->mu);
	if (f->outstanding > 0)
		f->outstanding--;
	if (f->outstanding == f->batch / 2 || f->outstanding == 0)
		pthread_cond_signal(&f->cv); /* time to ask again */
	pthread_mutex_unlock(&f->mu);
	bus_queue_put(f->q, f->kind, m, 0);
}

/* Under mu: asks for more when at most half a batch is outstanding and the daemon has room.
 * Returns how long to wait before looking again (unless woken earlier). */
static int64_t refill(struct bus_feed *f)
{
	uint64_t now = mono_ms(), next = now + FEED_EXPIRES_MS;
	long room = __atomic_load_n(f->room, __ATOMIC_ACQUIRE), want;
	char body[96];

	for (int i = 0; i < f->nreq;)
		if (now >= f->req[i].ends)
			drop(f, i); /* its expiry passed long ago without an answer: gone with a server */
		else
			i++;
	for (int i = 0; i < f->nreq; i++)
		if (f->req[i].ends < next)
			next = f->req[i].ends;
	if (f->outstanding > f->batch / 2)
		return (int64_t)(next - now);
	want = f->batch - f->outstanding;
	if (room - f->outstanding < want)
		want = room - f->outstanding;
	if (want <= 0 || (want < f->batch / 4 && f->outstanding > 0))
		return 10; /* little room: look again soon (fewer, larger requests) */
	if (natsConnection_Status(f->b->nc) != NATS_CONN_STATUS_CONNECTED)
		return 100;
	if (f->nreq == FEED_REQS) { /* the oldest was filled long ago, most likely */
		memmove(&f->req[0], &f->req[1], (FEED_REQS - 1) * sizeof f->req[0]);
		f->nreq--;
	}
	snprintf(body, sizeof body, "{\"batch\":%ld,\"expires\":%lld}", want, (long long)FEED_EXPIRES_MS * 1000000LL);
	if (natsConnection_PublishRequestString(f->b->nc, f->next_subj, f->inbox, body) != NATS_OK)
		return 100;
	f->req[f->nreq].asked = want;
	f->req[f->nreq].ends = now + FEED_EXPIRES_MS + FEED_GRACE_MS;
	f->nreq++;
	f->outstanding += want;
	/* the next look: when this request (or an older one) has ended, unless woken */
	return (int64_t)((next < f->req[f->nreq - 1].ends ? next : f->req[f->nreq - 1].ends) - now);
}

static void *feed_main(void *arg)
{
	struct bus_feed *f = arg;

	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		struct timespec ts;
		int64_t wait = refill(f);
		/* woken when a request ends or half a batch came; otherwise when one is due to end,
		 * or soon while the daemon has no room */
		deadline_in(&ts, wait > 1 ? wait : 1);
		pthread_cond_timedwait(&f->cv, &f->mu, &ts);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

struct bus_feed *bus_feed_start(struct bus *b, const char *stream, const char *consumer, struct bus_queue *q, int kind,
				volatile long *room, int batch)
{
	struct bus_feed *f = calloc(1, sizeof *f);
	pthread_condattr_t ca;

	if (f == NULL)
		return NULL;
	f->b = b;
	f->q = q;
	f->kind = kind;
	f->room = room;
	f->batch = batch > 1 ? batch : 2;
	snprintf(f->next_subj, sizeof f->next_subj, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", stream, consumer);
	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (bus_new_inbox(b, f->inbox, sizeof f->inbox) < 0 ||
	    natsConnection_Subscribe(&f->sub, b->nc, f->inbox, on_msg, f) != NATS_OK) {
		log_error("cluster: cannot read consumer %s of %s", consumer, stream);
		goto fail;
	}
	/* Messages wait in the daemon's queue, bounded by its room, not in libnats. */
	natsSubscription_SetPendingLimits(f->sub, -1, -1);
	if (pthread_create(&f->th, NULL, feed_main, f) != 0)
		goto fail;
	return f;
fail:
	if (f->sub) {
		natsSubscription_Unsubscribe(f->sub);
		natsSubscription_Destroy(f->sub);
	}
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return NULL;
}

void bus_feed_stop(struct bus_feed *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->th, NULL);
	/* No interest left: the servers drop the requests; what they sent meanwhile is not
	 * acknowledged and comes again after AckWait. */
	natsSubscription_Unsubscribe(f->sub);
	natsSubscription_Destroy(f->sub);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void bus_settle(struct bus *b, natsMsg *m, enum bus_settle_how how, int64_t delay_ms)
{
	const char *reply = natsMsg_GetReply(m);
	char body[64];

	if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0)
		return;
	switch (how) {
	case BUS_ACK:
		snprintf(body, sizeof body, "+ACK");
		break;
	case BUS_NAK:
		if (delay_ms > 0)
			snprintf(body, sizeof body, "-NAK {\"delay\":%lld}", (long long)delay_ms * 1000000LL);
		else
			snprintf(body, sizeof body, "-NAK");
		break;
	case BUS_TERM:
		snprintf(body, sizeof body, "+TERM");
		break;
	case BUS_IN_PROGRESS:
		snprintf(body, sizeof body, "+WPI");
		break;
	}
	natsConnection_PublishString(b->nc, reply, body);
}
