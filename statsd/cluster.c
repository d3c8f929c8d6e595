/*
 * statsd cluster: see cluster.h and docs/cluster.md. The sums travel as FRAME_COUNTER frames
 * with a Pp-Origin header naming their statsd (its host name, and its -i instance if any);
 * a statsd skips its own. PP_STATS keeps a day; each statsd reads it through its
 * own durable consumer stats-<name>, created to deliver only what is new (a statsd that joins
 * counts from then on). The sums are published with an id and sent again (same id) until the
 * stream stored them.
 * Trusts frames only after metrics_take()'s frame_parse(). Holds the bus connection, the sums
 * not yet published, and the last rendered state of the streams.
 */
#include "cluster.h"
#include "bus.h"
#include "counters.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define STATS_STREAM "PP_STATS"

struct statsd_cluster {
	struct bus bus;
	jsCtx *qjs;		/* JetStream calls that answer within 500 ms or fail */
	jsCtx *pjs;		/* publishes of the sums, acknowledged asynchronously */
	natsMsg *retry[64];	/* sums not stored (no stream leader for a moment): sent again */
	size_t nretry;
	uint64_t seq;		/* of the sums: their Nats-Msg-Id is <name>.<start>.<seq> */
	uint64_t boot;
	struct bus_queue *q;
	struct bus_puller *puller;
	natsSubscription *sub;
	volatile long room;
	char name[64];
	uint64_t sums[CTR_MAX];
	int have;
	int started;
	uint64_t next_try;
	/* the streams' and consumers' state, refreshed by its own thread (its questions may wait
	 * for the servers; statsd's loop must keep draining the datagrams) */
	jsCtx *sjs;
	pthread_t refresher;
	int refreshing;
	volatile int stop;
	pthread_mutex_t mu;
	char *state;		/* Prometheus text, under mu */
};

struct statsd_cluster *statsd_cluster_prepare(const struct config *cfg, const char *instance, int *failed)
{
	struct statsd_cluster *c;
	char err[256], host[64] = "statsd";
	size_t k = 0;

	*failed = 0;
	if (!config_cluster(cfg))
		return NULL;
	if ((c = calloc(1, sizeof *c)) == NULL || (c->q = bus_queue_new()) == NULL) {
		free(c);
		*failed = 1;
		return NULL;
	}
	gethostname(host, sizeof host - 1);
	if (instance && instance[0]) /* several statsd on one host (tests) */
		snprintf(host + strlen(host), sizeof host - strlen(host), "-%s", instance);
	for (const char *p = host; *p && k < sizeof c->name - 1; p++)
		c->name[k++] = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '-';
	if (k == 0)
		c->name[k++] = 'x';
	c->boot = now_ms();
	pthread_mutex_init(&c->mu, NULL);
	if (bus_prepare(&c->bus, cfg, "statsd", err, sizeof err) < 0) {
		log_error("%s", err);
		bus_queue_free(c->q);
		free(c);
		*failed = 1;
		return NULL;
	}
	return c;
}

static void *refresher_main(void *arg);

/* libnats' thread: a publish of sums was not stored; the loop sends it again (same id). */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js;
	(void)pae;
	if (!bus_stored(pa))
		bus_queue_put(((struct statsd_cluster *)closure)->q, 1, msg, 0);
	else
		natsMsg_Destroy(msg);
}

int statsd_cluster_start(struct statsd_cluster *c, int epfd, void *tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
	jsStreamConfig sc;
	jsConsumerConfig cc;
	jsStreamInfo *si = NULL;
	jsConsumerInfo *ci = NULL;
	jsSubOptions so;
	jsErrCode ec = 0;
	char durable[96];
	const char *subjects[1] = {"pp.stats.>"};

	jsOptions jo;

	if (c->bus.nc == NULL && bus_connect(&c->bus, NULL) < 0)
		return -1;
	jsOptions_Init(&jo);
	jo.Wait = 500; /* statsd's loop must keep draining datagrams: tried again in 2 s */
	if (c->qjs == NULL && natsConnection_JetStream(&c->qjs, c->bus.nc, &jo) != NATS_OK)
		return -1;
	if (c->pjs == NULL) {
		jsOptions po;
		jsOptions_Init(&po);
		po.PublishAsync.AckHandler = on_ack;
		po.PublishAsync.AckHandlerClosure = c;
		if (natsConnection_JetStream(&c->pjs, c->bus.nc, &po) != NATS_OK)
			return -1;
	}
	jsStreamConfig_Init(&sc);
	sc.Name = STATS_STREAM;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Replicas = c->bus.cfg->cluster.replicas;
	sc.MaxAge = 86400LL * 1000000000LL;
	if (js_AddStream(&si, c->qjs, &sc, NULL, &ec) != NATS_OK) {
		jsStreamInfo_Destroy(si);
		si = NULL;
		if (js_UpdateStream(&si, c->qjs, &sc, NULL, &ec) != NATS_OK) {
			jsStreamInfo_Destroy(si);
			return -1;
		}
	}
	jsStreamInfo_Destroy(si);
	snprintf(durable, sizeof durable, "stats-%s", c->name);
	jsConsumerConfig_Init(&cc);
	cc.Durable = durable;
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverNew;
	cc.AckWait = 30LL * 1000000000LL;
	if (js_AddConsumer(&ci, c->qjs, STATS_STREAM, &cc, NULL, &ec) != NATS_OK && ec != 10148 /* exists */) {
		jsConsumerInfo_Destroy(ci);
		ci = NULL;
		if (js_GetConsumerInfo(&ci, c->qjs, STATS_STREAM, durable, NULL, &ec) != NATS_OK) {
			log_warn("cluster: statistics consumer %s: error %d", durable, (int)ec);
			return -1;
		}
	}
	jsConsumerInfo_Destroy(ci);
	jsSubOptions_Init(&so);
	so.Stream = STATS_STREAM;
	so.Consumer = durable;
	if (js_PullSubscribe(&c->sub, c->qjs, "pp.stats.>", durable, NULL, &so, &ec) != NATS_OK)
		return -1;
	c->room = 1 << 20; /* sums are small and applied at once */
	if ((c->puller = bus_puller_start(c->sub, c->q, 0, &c->room, 256)) == NULL ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, bus_queue_fd(c->q), &ev) < 0)
		return -1;
	jsOptions_Init(&jo);
	jo.Wait = 2000;
	if (natsConnection_JetStream(&c->sjs, c->bus.nc, &jo) == NATS_OK &&
	    pthread_create(&c->refresher, NULL, refresher_main, c) == 0)
		c->refreshing = 1;
	c->started = 1;
	log_info("cluster: statistics shared as %s on %s", c->name, STATS_STREAM);
	return 0;
}

void statsd_cluster_note(struct statsd_cluster *c, const uint8_t *buf, size_t n)
{
	struct frame f;
	struct frame_field fl;
	size_t pos = 0;
	uint32_t id = 0;

	if (c == NULL || frame_parse(buf, n, &f, NULL) < 0 || f.type != FRAME_COUNTER)
		return;
	while (frame_next(&f, &pos, &fl) == 0) {
		if (fl.tag == TAG_COUNTER) {
			id = frame_field_u32(&fl);
			continue;
		}
		if (fl.tag == TAG_DELTA && id > 0 && id < CTR_MAX && METRIC_KIND(id) == METRIC_PLAIN) {
			c->sums[id] += frame_field_u64(&fl);
			c->have = 1;
		}
		id = 0;
	}
}

void statsd_cluster_read(struct statsd_cluster *c, struct metrics *m)
{
	int kind;
	natsMsg *msg;
	uint64_t arg;

	if (c == NULL)
		return;
	for (int k = 0; k < 1024 && bus_queue_get(c->q, &kind, &msg, &arg) == 1; k++) {
		const char *origin = NULL;
		if (kind == 1) { /* our sums, not stored */
			if (c->nretry < sizeof c->retry / sizeof c->retry[0])
				c->retry[c->nretry++] = msg;
			else
				natsMsg_Destroy(msg); /* counted locally, missing elsewhere: logged */
			continue;
		}
		if (natsMsgHeader_Get(msg, "Pp-Origin", &origin) != NATS_OK || strcmp(origin, c->name) != 0)
			metrics_take(m, (const uint8_t *)natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, mono_ms());
		natsMsg_Ack(msg, NULL);
		natsMsg_Destroy(msg);
		__atomic_add_fetch(&c->room, 1, __ATOMIC_ACQ_REL);
	}
}

static void publish(struct statsd_cluster *c, natsMsg *m)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = c->bus.wait_ms;
	if (js_PublishMsgAsync(c->pjs, &m, &po) != NATS_OK && m != NULL) {
		if (c->nretry < sizeof c->retry / sizeof c->retry[0])
			c->retry[c->nretry++] = m;
		else {
			log_warn("cluster: statistics sums lost for the other hosts (the bus refused them)");
			natsMsg_Destroy(m);
		}
	}
}

static void publish_sums(struct statsd_cluster *c)
{
	static uint8_t buf[FRAME_MAX];
	struct frame_writer w;
	char subj[96], msg_id[128];
	natsMsg *m;
	long n;
	size_t nr = c->nretry;

	/* first what was not stored, with its own id (stored once if it was after all) */
	c->nretry = 0;
	for (size_t i = 0; i < nr; i++)
		publish(c, c->retry[i]);
	if (!c->have)
		return;
	frame_begin(&w, buf, FRAME_COUNTER, 0);
	for (uint32_t id = 1; id < CTR_MAX; id++)
		if (c->sums[id]) {
			frame_put_u32(&w, TAG_COUNTER, id);
			frame_put_u64(&w, TAG_DELTA, c->sums[id]);
		}
	memset(c->sums, 0, sizeof c->sums);
	c->have = 0;
	if ((n = frame_end(&w)) < 0)
		return;
	snprintf(subj, sizeof subj, "pp.stats.%s", c->name);
	snprintf(msg_id, sizeof msg_id, "%s.%llu.%llu", c->name, (unsigned long long)c->boot, (unsigned long long)++c->seq);
	if ((m = bus_msg(subj, buf, (size_t)n, msg_id)) == NULL)
		return;
	if (natsMsgHeader_Set(m, "Pp-Origin", c->name) != NATS_OK) {
		natsMsg_Destroy(m);
		return;
	}
	publish(c, m);
}

static void append(char **s, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char **s, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(*s ? *s + *len : NULL, *s ? *cap - *len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (*s && *len + (size_t)n < *cap) {
			*len += (size_t)n;
			return;
		}
		size_t nc = (*cap ? *cap * 2 : 4096) + (size_t)n;
		char *p = realloc(*s, nc);
		if (p == NULL)
			return;
		*s = p;
		*cap = nc;
	}
}

/* The state of every stream and consumer of the design, as gauges. */
static void refresh_state(struct statsd_cluster *c)
{
	static const char *const streams[] = {BUS_REQ, BUS_REGISTRY, BUS_JOBS, BUS_RES, STATS_STREAM};
	static const char *const consumers[][2] = {{BUS_REQ, BUS_REQ_CONSUMER},
						   {BUS_RES, BUS_RES_CONSUMER},
						   {BUS_JOBS, "jobs-apns-"},
						   {BUS_JOBS, "jobs-fcm-"},
						   {BUS_JOBS, "jobs-wns-"}};
	char *s = NULL;
	size_t len = 0, cap = 0;
	/* A question without an answer (2 s) ends the refresh; the last complete one stays shown. */
	int up = c->bus.nc && natsConnection_Status(c->bus.nc) == NATS_CONN_STATUS_CONNECTED;
	append(&s, &len, &cap, "# HELP pushpipe_cluster_connected 1 while this statsd is connected to NATS.\n"
			       "# TYPE pushpipe_cluster_connected gauge\npushpipe_cluster_connected %d\n", up);
	append(&s, &len, &cap, "# HELP pushpipe_cluster_stream_messages Messages in a cluster stream.\n"
			       "# TYPE pushpipe_cluster_stream_messages gauge\n"
			       "# HELP pushpipe_cluster_stream_last_seq Last sequence of a cluster stream.\n"
			       "# TYPE pushpipe_cluster_stream_last_seq gauge\n"
			       "# HELP pushpipe_cluster_stream_replicas_current Replicas of a stream that are current "
			       "(leader included).\n# TYPE pushpipe_cluster_stream_replicas_current gauge\n");
	for (size_t i = 0; up && i < sizeof streams / sizeof streams[0]; i++) {
		jsStreamInfo *si = NULL;
		int cur = 0;
		if (js_GetStreamInfo(&si, c->sjs, streams[i], NULL, NULL) != NATS_OK) {
			jsStreamInfo_Destroy(si);
			up = 0;
			break;
		}
		if (si->Cluster) {
			cur = si->Cluster->Leader != NULL;
			for (int k = 0; k < si->Cluster->ReplicasLen; k++)
				cur += si->Cluster->Replicas[k]->Current && !si->Cluster->Replicas[k]->Offline;
		}
		append(&s, &len, &cap,
		       "pushpipe_cluster_stream_messages{stream=\"%s\"} %llu\n"
		       "pushpipe_cluster_stream_last_seq{stream=\"%s\"} %llu\n"
		       "pushpipe_cluster_stream_replicas_current{stream=\"%s\",leader=\"%s\"} %d\n",
		       streams[i], (unsigned long long)si->State.Msgs, streams[i], (unsigned long long)si->State.LastSeq,
		       streams[i], si->Cluster && si->Cluster->Leader ? si->Cluster->Leader : "", cur);
		jsStreamInfo_Destroy(si);
	}
	append(&s, &len, &cap, "# HELP pushpipe_cluster_consumer_pending Messages a consumer has not yet been given.\n"
			       "# TYPE pushpipe_cluster_consumer_pending gauge\n"
			       "# HELP pushpipe_cluster_consumer_ack_pending Messages given and not yet acknowledged.\n"
			       "# TYPE pushpipe_cluster_consumer_ack_pending gauge\n"
			       "# HELP pushpipe_cluster_consumer_redelivered Messages given more than once, now pending.\n"
			       "# TYPE pushpipe_cluster_consumer_redelivered gauge\n");
	for (size_t i = 0; up && i < sizeof consumers / sizeof consumers[0]; i++) {
		jsConsumerInfo *ci = NULL;
		char name[128];
		snprintf(name, sizeof name, "%s%s", consumers[i][1],
			 strncmp(consumers[i][1], "jobs-", 5) == 0 ? c->bus.cfg->cluster.app : "");
		if (js_GetConsumerInfo(&ci, c->sjs, consumers[i][0], name, NULL, NULL) != NATS_OK) {
			jsConsumerInfo_Destroy(ci);
			up = 0;
			break;
		}
		append(&s, &len, &cap,
		       "pushpipe_cluster_consumer_pending{consumer=\"%s\"} %llu\n"
		       "pushpipe_cluster_consumer_ack_pending{consumer=\"%s\"} %lld\n"
		       "pushpipe_cluster_consumer_redelivered{consumer=\"%s\"} %lld\n",
		       name, (unsigned long long)ci->NumPending, name, (long long)ci->NumAckPending, name,
		       (long long)ci->NumRedelivered);
		jsConsumerInfo_Destroy(ci);
	}
	pthread_mutex_lock(&c->mu);
	if (!up && c->state != NULL) {
		free(s); /* keep the last complete state */
	} else {
		free(c->state);
		c->state = s;
	}
	pthread_mutex_unlock(&c->mu);
}

static void *refresher_main(void *arg)
{
	struct statsd_cluster *c = arg;
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		refresh_state(c);
		for (int i = 0; i < 50 && !__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE); i++)
			usleep(100 * 1000);
	}
	return NULL;
}

void statsd_cluster_tick(struct statsd_cluster *c, int epfd, void *tag)
{
	uint64_t now = mono_ms();
	if (c == NULL)
		return;
	if (!c->started) {
		if (now >= c->next_try && statsd_cluster_start(c, epfd, tag) < 0)
			c->next_try = now + 2000;
		if (!c->started)
			return;
	}
	publish_sums(c);
}

char *statsd_cluster_metrics(struct statsd_cluster *c)
{
	char *s;
	if (c == NULL)
		return NULL;
	pthread_mutex_lock(&c->mu);
	s = c->state ? strdup(c->state) : NULL;
	pthread_mutex_unlock(&c->mu);
	return s;
}

void statsd_cluster_free(struct statsd_cluster *c)
{
	if (c == NULL)
		return;
	if (c->refreshing) {
		__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
		pthread_join(c->refresher, NULL);
	}
	bus_puller_stop(c->puller);
	natsSubscription_Destroy(c->sub);
	for (size_t i = 0; i < c->nretry; i++)
		natsMsg_Destroy(c->retry[i]);
	jsCtx_Destroy(c->pjs);
	jsCtx_Destroy(c->sjs);
	jsCtx_Destroy(c->qjs);
	bus_queue_free(c->q);
	bus_close(&c->bus);
	free(c->state);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
