/*
 * bus: the NATS JetStream connection of a daemon in cluster mode (see bus.h and
 * docs/cluster.md "Design"). Trusts the configuration and the servers it names (a server's
 * messages are frames again, checked by frame_parse() wherever they are used). Holds the
 * credentials read at start-up, the connection, one publisher that waits for PubAcks, and
 * the queues and fetch threads that hand messages from libnats' threads to a daemon's loop.
 */
#include "bus.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "nats_lib.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000LL

const char *bus_platform_name(uint32_t platform)
{
	switch (platform) {
	case PLATFORM_IOS:
		return "apns";
	case PLATFORM_ANDROID:
		return "fcm";
	case PLATFORM_WNS:
		return "wns";
	case PLATFORM_HUAWEI:
		return "hms"; /* hms-sender: pp.job.hms.<app>, jobs-hms-<app>, user sender-hms-<app> */
	}
	return NULL;
}

const char *bus_app_name(const struct config *c, uint32_t platform, const char *app, size_t len, char *buf,
			 size_t buflen)
{
	const char *conf = platform == PLATFORM_HUAWEI ? "hms" : bus_platform_name(platform);
	size_t n = 0;

	for (size_t i = 0; conf && i < c->napps; i++)
		n += strcmp(c->apps[i].platform, conf) == 0;
	if (n == 0)
		snprintf(buf, buflen, "%s", c->cluster.app); /* a platform without apps: cluster.app */
	else if (len == 0)
		snprintf(buf, buflen, "%s", config_app_of(c, conf));
	else
		snprintf(buf, buflen, "%.*s", (int)len, app);
	return buf;
}

void bus_job_subject_app(const struct bus *b, uint32_t platform, const char *app, size_t app_len, char *buf, size_t len)
{
	const char *p = bus_platform_name(platform);
	char a[64];
	snprintf(buf, len, "pp.job.%s.%s", p ? p : "none", bus_app_name(b->cfg, platform, app, app_len, a, sizeof a));
}

void bus_job_subject(const struct bus *b, uint32_t platform, char *buf, size_t len)
{
	/* A sender's own app (config_app_select; "default" = none). */
	bus_job_subject_app(b, platform, b->cfg->app, strcmp(b->cfg->app, "default") ? strlen(b->cfg->app) : 0, buf, len);
}

static void job_consumer_app(const struct bus *b, uint32_t platform, const char *app, size_t app_len, char *buf,
			     size_t len)
{
	const char *p = bus_platform_name(platform);
	char a[64];
	snprintf(buf, len, "jobs-%s-%s", p ? p : "none", bus_app_name(b->cfg, platform, app, app_len, a, sizeof a));
}

void bus_job_consumer(const struct bus *b, uint32_t platform, char *buf, size_t len)
{
	job_consumer_app(b, platform, b->cfg->app, strcmp(b->cfg->app, "default") ? strlen(b->cfg->app) : 0, buf, len);
}

static int read_credentials(const char *path, char *user, size_t ulen, char *pass, size_t plen)
{
	char line[512];
	FILE *f = fopen(path, "r");
	char *colon;
	int rc = -1;

	if (f == NULL)
		return -1;
	if (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\r\n")] = 0;
		colon = strchr(line, ':');
		if (colon != NULL && colon != line && (size_t)(colon - line) < ulen && strlen(colon + 1) < plen) {
			*colon = 0;
			strcpy(user, line);
			strcpy(pass, colon + 1);
			rc = 0;
		}
	}
	fclose(f);
	memset(line, 0, sizeof line); /* a secret */
	return rc;
}

static void on_connected(natsConnection *nc, void *closure)
{
	(void)nc;
	log_info("cluster: connected to NATS as %s", ((struct bus *)closure)->name);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	log_warn("cluster: %s lost its NATS server; reconnecting", ((struct bus *)closure)->name);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	log_info("cluster: %s reconnected to NATS", ((struct bus *)closure)->name);
}

/* A NATS user name fit to be part of a subject token: no dot, wildcard or space. */
static int inbox_user_ok(const char *user)
{
	if (user[0] == 0 || strlen(user) > 100)
		return 0;
	for (const char *p = user; *p; p++)
		if (*p == '.' || *p == '*' || *p == '>' || (unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return 0;
	return 1;
}

int bus_new_inbox(const struct bus *b, char *buf, size_t len)
{
	natsInbox *nb = NULL;
	const char *tok;
	int n;

	if (natsInbox_Create(&nb) != NATS_OK)
		return -1;
	tok = strrchr((const char *)nb, '.'); /* natsInbox_Create gives "_INBOX.<unique>" */
	n = snprintf(buf, len, "%s.%s", b->inbox[0] ? b->inbox : "_INBOX", tok ? tok + 1 : (const char *)nb);
	natsInbox_Destroy(nb);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

int bus_prepare(struct bus *b, const struct config *cfg, const char *name, char *err, size_t errlen)
{
	const struct conf_cluster *c = &cfg->cluster;

	memset(b, 0, sizeof *b);
	/* libnats is loaded here, in cluster mode only (common/nats_lib.h). */
	if (nats_lib_load(err, errlen) < 0)
		return -1;
	b->cfg = cfg;
	b->wait_ms = c->publish_wait_ms;
	snprintf(b->name, sizeof b->name, "%s", name);
	if (c->credentials[0] &&
	    read_credentials(c->credentials, b->user, sizeof b->user, b->pass, sizeof b->pass) < 0) {
		snprintf(err, errlen, "cluster.credentials %s: cannot read USER:PASSWORD from its first line",
			 c->credentials);
		return -1;
	}
	/* Every reply to this connection (requests, JetStream API answers, PubAcks, fetched
	 * messages) goes to an inbox under the user's own prefix; the server lets each user
	 * subscribe to its own prefix only (docs/cluster.md, "Credentials"). */
	if (b->user[0] && !inbox_user_ok(b->user)) {
		memset(b->pass, 0, sizeof b->pass);
		snprintf(err, errlen, "cluster.credentials %s: the user name may not hold a dot, wildcard or space",
			 c->credentials);
		return -1;
	}
	snprintf(b->inbox, sizeof b->inbox, b->user[0] ? "_INBOX_%s" : "_INBOX", b->user);
	return 0;
}

/* The connection options (libnats starts its own threads here); the password is wiped from b. */
static natsStatus make_options(struct bus *b)
{
	const struct conf_cluster *c = &b->cfg->cluster;
	natsStatus s = natsOptions_Create(&b->opts);

	if (s == NATS_OK)
		s = natsOptions_SetServers(b->opts, (const char **)c->servers.v, (int)c->servers.n);
	if (s == NATS_OK && b->user[0])
		s = natsOptions_SetUserInfo(b->opts, b->user, b->pass);
	if (s == NATS_OK && b->user[0])
		s = natsOptions_SetCustomInboxPrefix(b->opts, b->inbox);
	if (s == NATS_OK)
		s = natsOptions_SetName(b->opts, b->name);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(b->opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(b->opts, 250);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(b->opts, 2000);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(b->opts, true, on_connected, b);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(b->opts, on_disconnected, b);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(b->opts, on_reconnected, b);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(b->opts, 2000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(b->opts, 2);
	if (s == NATS_OK && c->tls)
		s = natsOptions_SetSecure(b->opts, true);
	if (s == NATS_OK && c->tls && c->tls_ca_file[0])
		s = natsOptions_LoadCATrustedCertificates(b->opts, c->tls_ca_file);
	memset(b->pass, 0, sizeof b->pass);
	return s;
}

struct pubstate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t gen;
	size_t n, outstanding, nfailed;
	uint64_t *seqs;
	char *acked;
	natsMsg **failed;
};

int bus_stored(const jsPubAck *pa)
{
	return pa != NULL && pa->Sequence > 0;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct pubstate *ps = closure;
	const char *ix = NULL;
	unsigned long long g = 0;
	size_t i = 0;

	(void)js;
	(void)pae;
	if (natsMsgHeader_Get(msg, "Pp-Ix", &ix) != NATS_OK || sscanf(ix, "%llu:%zu", &g, &i) != 2) {
		natsMsg_Destroy(msg);
		return;
	}
	pthread_mutex_lock(&ps->mu);
	if (g != ps->gen || i >= ps->n || ps->acked[i]) {
		pthread_mutex_unlock(&ps->mu);
		natsMsg_Destroy(msg);
		return;
	}
	ps->outstanding--;
	if (bus_stored(pa)) {
		ps->acked[i] = 1;
		if (ps->seqs)
			ps->seqs[i] = pa->Sequence;
		natsMsg_Destroy(msg);
	} else {
		ps->failed[ps->nfailed++] = msg; /* resent by bus_publish, outside this callback */
	}
	pthread_cond_signal(&ps->cv);
	pthread_mutex_unlock(&ps->mu);
}

int bus_connect(struct bus *b, volatile int *stop)
{
	natsStatus s;
	jsOptions jo;
	struct pubstate *ps;

	(void)stop;
	if ((s = make_options(b)) != NATS_OK) {
		log_error("cluster: connection options: %s", natsStatus_GetText(s));
		return -1;
	}
	/* Returns at once while no server answers; libnats keeps trying (on_connected). */
	s = natsConnection_Connect(&b->nc, b->opts);
	if (s == NATS_NOT_YET_CONNECTED)
		log_warn("cluster: no NATS server answers yet; connecting in the background");
	else if (s != NATS_OK) {
		log_error("cluster: cannot connect to NATS: %s", natsStatus_GetText(s));
		return -1;
	}
	if ((ps = calloc(1, sizeof *ps)) == NULL)
		return -1;
	pthread_mutex_init(&ps->mu, NULL);
	pthread_cond_init(&ps->cv, NULL);
	b->pstate = ps;
	jsOptions_Init(&jo);
	jo.Wait = 5000;
	s = natsConnection_JetStream(&b->js, b->nc, &jo);
	if (s == NATS_OK) {
		jsOptions_Init(&jo);
		jo.Wait = b->wait_ms;
		jo.PublishAsync.AckHandler = on_ack;
		jo.PublishAsync.AckHandlerClosure = ps;
		jo.PublishAsync.MaxPending = 4096;
		s = natsConnection_JetStream(&b->pjs, b->nc, &jo);
	}
	if (s != NATS_OK) {
		log_error("cluster: JetStream context: %s", natsStatus_GetText(s));
		return -1;
	}
	if (s == NATS_OK && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED)
		log_info("cluster: connected to NATS as %s", b->name);
	return 0;
}

void bus_close(struct bus *b)
{
	struct pubstate *ps = b->pstate;
	if (b->nc) {
		natsConnection_Drain(b->nc);
		natsConnection_Close(b->nc);
	}
	jsCtx_Destroy(b->pjs);
	jsCtx_Destroy(b->js);
	natsConnection_Destroy(b->nc);
	natsOptions_Destroy(b->opts);
	if (ps) {
		pthread_mutex_destroy(&ps->mu);
		pthread_cond_destroy(&ps->cv);
		free(ps);
	}
	memset(b, 0, sizeof *b);
	nats_CloseAndWait(1000); /* libnats' own threads and memory: one bus per process */
}

natsMsg *bus_msg(const char *subject, const void *data, size_t len, const char *msg_id)
{
	natsMsg *m = NULL;
	if (natsMsg_Create(&m, subject, NULL, data, (int)len) != NATS_OK)
		return NULL;
	if (msg_id && natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id) != NATS_OK) {
		natsMsg_Destroy(m);
		return NULL;
	}
	return m;
}

static void deadline_ts(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * NS_PER_MS;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Hands msg (index i) to libnats; on a refusal it goes back to the failed list. */
static void publish_one(struct bus *b, struct pubstate *ps, natsMsg *m, size_t i)
{
	char ix[48];
	jsPubOptions po;

	snprintf(ix, sizeof ix, "%llu:%zu", (unsigned long long)ps->gen, i);
	natsMsgHeader_Set(m, "Pp-Ix", ix);
	jsPubOptions_Init(&po);
	po.MaxWait = b->wait_ms; /* without it a lost PubAck would never end (docs/cluster.md) */
	pthread_mutex_lock(&ps->mu);
	ps->outstanding++;
	pthread_mutex_unlock(&ps->mu);
	if (js_PublishMsgAsync(b->pjs, &m, &po) != NATS_OK) {
		pthread_mutex_lock(&ps->mu);
		ps->outstanding--;
		ps->failed[ps->nfailed++] = m;
		pthread_mutex_unlock(&ps->mu);
	}
}

int bus_publish(struct bus *b, natsMsg **msgs, size_t n, uint64_t *seqs, int64_t timeout_ms)
{
	struct pubstate *ps = b->pstate;
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	natsMsg **retry = NULL;
	size_t acked = 0;
	int rc = -1, logged = 0;

	if (n == 0)
		return 0;
	if (ps == NULL || (retry = calloc(n, sizeof *retry)) == NULL)
		goto out;
	pthread_mutex_lock(&ps->mu);
	ps->gen++;
	ps->n = n;
	ps->outstanding = ps->nfailed = 0;
	ps->seqs = seqs;
	ps->acked = calloc(n, 1);
	ps->failed = calloc(n, sizeof *ps->failed);
	pthread_mutex_unlock(&ps->mu);
	if (ps->acked == NULL || ps->failed == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		natsMsg *m = msgs[i];
		msgs[i] = NULL;
		if (m)
			publish_one(b, ps, m, i);
		else
			ps->acked[i] = 1; /* nothing to send in this slot */
	}
	for (;;) {
		size_t nr;
		struct timespec ts;

		pthread_mutex_lock(&ps->mu);
		deadline_ts(&ts, 50);
		while (ps->outstanding > 0 && ps->nfailed == 0 && mono_ms() < end)
			pthread_cond_timedwait(&ps->cv, &ps->mu, &ts), deadline_ts(&ts, 50);
		nr = ps->nfailed;
		memcpy(retry, ps->failed, nr * sizeof *retry);
		ps->nfailed = 0;
		acked = 0;
		for (size_t i = 0; i < n; i++)
			acked += ps->acked[i] != 0;
		pthread_mutex_unlock(&ps->mu);
		if (acked == n) {
			rc = 0;
			break;
		}
		if (mono_ms() >= end) {
			for (size_t k = 0; k < nr; k++)
				natsMsg_Destroy(retry[k]);
			break;
		}
		if (nr > 0) {
			if (!logged++)
				log_warn("cluster: %zu publishes not acknowledged; resending them with the same ids", nr);
			usleep(50 * 1000); /* a leader election takes a moment: do not spin */
			for (size_t k = 0; k < nr; k++) {
				const char *ix = NULL;
				unsigned long long g;
				size_t i = 0;
				if (natsMsgHeader_Get(retry[k], "Pp-Ix", &ix) == NATS_OK &&
				    sscanf(ix, "%llu:%zu", &g, &i) == 2)
					publish_one(b, ps, retry[k], i);
				else
					natsMsg_Destroy(retry[k]);
			}
		}
	}
out:
	if (ps) {
		pthread_mutex_lock(&ps->mu);
		ps->gen++; /* late answers for this set are ignored */
		ps->n = 0;
		ps->seqs = NULL;
		free(ps->acked);
		free(ps->failed);
		ps->acked = NULL;
		ps->failed = NULL;
		pthread_mutex_unlock(&ps->mu);
	}
	for (size_t i = 0; i < n; i++)
		natsMsg_Destroy(msgs[i]), msgs[i] = NULL;
	free(retry);
	if (rc < 0)
		log_warn("cluster: %zu of %zu publishes not acknowledged within %lld ms", n - acked, n,
			 (long long)timeout_ms);
	return rc;
}

static int stream_put(struct bus *b, const char *name, const char *subject, jsRetentionPolicy ret, int64_t max_age_ms,
		      int64_t max_msgs)
{
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	natsStatus s;
	const char *subjects[1] = {subject};

	jsStreamConfig_Init(&sc);
	sc.Name = name;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Retention = ret;
	sc.Storage = js_FileStorage;
	sc.Replicas = b->cfg->cluster.replicas;
	sc.Duplicates = 120000 * NS_PER_MS;
	sc.MaxAge = max_age_ms * NS_PER_MS;
	if (max_msgs > 0) {
		sc.MaxMsgs = max_msgs;
		sc.Discard = js_DiscardNew; /* a full stream refuses the publish: the ingress answers busy */
	}
	s = js_AddStream(&si, b->js, &sc, NULL, &ec);
	if (s != NATS_OK) {
		jsStreamInfo_Destroy(si);
		si = NULL;
		s = js_UpdateStream(&si, b->js, &sc, NULL, &ec);
	}
	jsStreamInfo_Destroy(si);
	if (s != NATS_OK) {
		log_error("cluster: stream %s: %s (error %d)", name, natsStatus_GetText(s), (int)ec);
		return -1;
	}
	return 0;
}

static int consumer_put(struct bus *b, const char *stream, const char *name, const char *filter, int64_t ack_wait_ms,
			int64_t max_ack_pending)
{
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsErrCode ec = 0;
	natsStatus s;

	jsConsumerConfig_Init(&cc);
	cc.Durable = name;
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = ack_wait_ms * NS_PER_MS;
	cc.MaxAckPending = max_ack_pending;
	cc.FilterSubject = filter;
	cc.DeliverPolicy = js_DeliverAll;
	cc.MaxWaiting = 512;
	s = js_AddConsumer(&ci, b->js, stream, &cc, NULL, &ec);
	if (s != NATS_OK) {
		jsConsumerInfo_Destroy(ci);
		ci = NULL;
		s = js_UpdateConsumer(&ci, b->js, stream, &cc, NULL, &ec);
	}
	jsConsumerInfo_Destroy(ci);
	if (s != NATS_OK) {
		log_error("cluster: consumer %s on %s: %s (error %d)", name, stream, natsStatus_GetText(s), (int)ec);
		return -1;
	}
	return 0;
}

int bus_setup_streams(struct bus *b, uint64_t job_max_age_ms, const int64_t *ack_wait_ms,
		      const int64_t *max_ack_pending)
{
	static const uint32_t platforms[] = {PLATFORM_IOS, PLATFORM_ANDROID, PLATFORM_WNS, PLATFORM_HUAWEI};

	if (stream_put(b, BUS_REQ, "pp.req.>", js_WorkQueuePolicy, 0, b->queue_max) < 0 ||
	    stream_put(b, BUS_REGISTRY, "pp.reg.>", js_LimitsPolicy, 0, 0) < 0 ||
	    stream_put(b, BUS_JOBS, "pp.job.>", js_WorkQueuePolicy, (int64_t)job_max_age_ms, b->queue_max) < 0 ||
	    stream_put(b, BUS_RES, "pp.res.>", js_WorkQueuePolicy, 0, 0) < 0 ||
	    consumer_put(b, BUS_REQ, BUS_REQ_CONSUMER, NULL, 30000, 20000) < 0 ||
	    consumer_put(b, BUS_RES, BUS_RES_CONSUMER, NULL, 30000, 20000) < 0)
		return -1;
	/* One consumer per (platform, app): the platform's default app ("" below) and its other apps. */
	for (size_t i = 0; i < sizeof platforms / sizeof platforms[0]; i++) {
		const char *conf = platforms[i] == PLATFORM_HUAWEI ? "hms" : bus_platform_name(platforms[i]);
		for (size_t k = 0; k <= b->cfg->napps; k++) {
			const char *app = k == 0 ? "" : b->cfg->apps[k - 1].name;
			char subj[128], name[128];
			if (k > 0 && (strcmp(b->cfg->apps[k - 1].platform, conf) != 0 || strcmp(app, config_app_of(b->cfg, conf)) == 0))
				continue; /* another platform's, or the default app (k == 0) */
			bus_job_subject_app(b, platforms[i], app, strlen(app), subj, sizeof subj);
			job_consumer_app(b, platforms[i], app, strlen(app), name, sizeof name);
			if (consumer_put(b, BUS_JOBS, name, subj, ack_wait_ms[platforms[i]], max_ack_pending[platforms[i]]) < 0)
				return -1;
		}
	}
	return 0;
}

natsStatus bus_fetch(natsSubscription *sub, natsMsgList *list, int batch, int64_t wait_ms)
{
	/* libnats asks for what is there now (no_wait) and, when that is nothing, waits for the
	 * batch; with some but fewer than the batch it also waits until wait_ms has passed. */
	natsStatus s = natsSubscription_Fetch(list, sub, batch, wait_ms > 0 ? wait_ms : 1, NULL);
	if (s != NATS_OK)
		natsMsgList_Destroy(list);
	return s;
}

int bus_msg_meta(natsMsg *m, uint64_t *stream_seq, uint64_t *ts_ms, uint64_t *delivered)
{
	jsMsgMetaData *md = NULL;
	if (natsMsg_GetMetaData(&md, m) != NATS_OK)
		return -1;
	if (stream_seq)
		*stream_seq = md->Sequence.Stream;
	if (ts_ms)
		*ts_ms = (uint64_t)(md->Timestamp / NS_PER_MS);
	if (delivered)
		*delivered = md->NumDelivered;
	jsMsgMetaData_Destroy(md);
	return 0;
}

/* The queue: a list under a mutex, and an eventfd that is readable while the list is not
 * empty (written under the same mutex, so no wake-up is lost). */
struct bus_item {
	struct bus_item *next;
	int kind;
	natsMsg *m;
	uint64_t arg;
};

struct bus_queue {
	pthread_mutex_t mu;
	struct bus_item *head, *tail;
	size_t n;
	int fd;
};

struct bus_queue *bus_queue_new(void)
{
	struct bus_queue *q = calloc(1, sizeof *q);
	if (q == NULL)
		return NULL;
	if ((q->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->mu, NULL);
	return q;
}

void bus_queue_free(struct bus_queue *q)
{
	int kind;
	natsMsg *m;
	uint64_t arg;
	if (q == NULL)
		return;
	while (bus_queue_get(q, &kind, &m, &arg) == 1)
		natsMsg_Destroy(m);
	close(q->fd);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

int bus_queue_fd(const struct bus_queue *q)
{
	return q->fd;
}

void bus_queue_put(struct bus_queue *q, int kind, natsMsg *m, uint64_t arg)
{
	struct bus_item *it = malloc(sizeof *it);
	uint64_t one = 1;
	if (it == NULL) {
		natsMsg_Destroy(m); /* never acknowledged: JetStream delivers it again */
		return;
	}
	it->next = NULL;
	it->kind = kind;
	it->m = m;
	it->arg = arg;
	pthread_mutex_lock(&q->mu);
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->n++;
	if (write(q->fd, &one, sizeof one) < 0) {
		/* the counter is already non-zero: the fd stays readable */
	}
	pthread_mutex_unlock(&q->mu);
}

int bus_queue_get(struct bus_queue *q, int *kind, natsMsg **m, uint64_t *arg)
{
	struct bus_item *it;
	uint64_t v;

	pthread_mutex_lock(&q->mu);
	it = q->head;
	if (it == NULL) {
		if (read(q->fd, &v, sizeof v) < 0) {
			/* already reset */
		}
		pthread_mutex_unlock(&q->mu);
		return 0;
	}
	q->head = it->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->n--;
	pthread_mutex_unlock(&q->mu);
	*kind = it->kind;
	*m = it->m;
	*arg = it->arg;
	free(it);
	return 1;
}

size_t bus_queue_len(struct bus_queue *q)
{
	size_t n;
	pthread_mutex_lock(&q->mu);
	n = q->n;
	pthread_mutex_unlock(&q->mu);
	return n;
}

struct bus_puller {
	pthread_t th;
	natsSubscription *sub;
	struct bus_queue *q;
	int kind, batch;
	volatile long *room;
	volatile int stop;
};

static void *puller_main(void *arg)
{
	struct bus_puller *p = arg;

	int idle = 1;

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		long room = __atomic_load_n(p->room, __ATOMIC_ACQUIRE);
		natsMsgList list = {0};
		natsStatus s;
		int want;

		if (room <= 0) {
			usleep(10 * 1000);
			continue;
		}
		want = room < p->batch ? (int)room : p->batch;
		/* short waits while jobs flow, long ones while idle (fewer pull requests) */
		s = bus_fetch(p->sub, &list, want, idle ? 500 : 20);
		idle = !(s == NATS_OK && list.Count > 0);
		if (s == NATS_OK) {
			__atomic_sub_fetch(p->room, (long)list.Count, __ATOMIC_ACQ_REL);
			for (int i = 0; i < list.Count; i++) {
				bus_queue_put(p->q, p->kind, list.Msgs[i], 0);
				list.Msgs[i] = NULL;
			}
			natsMsgList_Destroy(&list);
		} else if (s != NATS_TIMEOUT) {
			natsMsgList_Destroy(&list);
			usleep(200 * 1000); /* not connected, or a leader election: try again soon */
		}
	}
	return NULL;
}

struct bus_puller *bus_puller_start(natsSubscription *sub, struct bus_queue *q, int kind, volatile long *room,
				    int batch)
{
	struct bus_puller *p = calloc(1, sizeof *p);
	if (p == NULL)
		return NULL;
	p->sub = sub;
	p->q = q;
	p->kind = kind;
	p->room = room;
	p->batch = batch;
	if (pthread_create(&p->th, NULL, puller_main, p) != 0) {
		free(p);
		return NULL;
	}
	return p;
}

void bus_puller_stop(struct bus_puller *p)
{
	if (p == NULL)
		return;
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
	pthread_join(p->th, NULL);
	free(p);
}
