/*
 * nats_bench: the bus's own rate, the baseline of the cluster benchmark (docs/benchmarks.md).
 * Connects to the given nats-server nodes as the given user, makes a fresh R3 work-queue stream
 * PP_BENCH (file storage, as pushpipe's streams) and measures, with N messages of SIZE bytes:
 *   publish  asynchronous publishes, each with its own Nats-Msg-Id and a MaxWait (as an ingress
 *            does), until every one is acknowledged by the stream;
 *   fetch    pull fetch (batch 512) and ack of all of them by one durable consumer;
 *   bus      both at once, a publisher thread and a fetching thread, from the first publish to
 *            the last message fetched: the rate a message crosses the bus once, stored and taken.
 * Prints one line of "name value" pairs. Trusts the servers (a local test cluster); holds the
 * password given on its command line (a test cluster's, never a production one).
 * usage: nats_bench -s URL[,URL...] -u USER -p PASSWORD [-n N] [-b SIZE]
 */
#include "bench.h"
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STREAM "PP_BENCH"

static atomic_long pub_failed;

static void die_status(const char *what, natsStatus s, jsErrCode jerr)
{
	fprintf(stderr, "nats_bench: %s: %s (JetStream error %d; %s)\n", what, natsStatus_GetText(s), (int)jerr,
	        nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
	exit(1);
}

static void on_pub_err(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	(void)js;
	(void)pae;
	(void)closure;
	atomic_fetch_add(&pub_failed, 1);
}

struct run {
	jsCtx *js;
	long n;
	int size;
	const char *subject;
	const char *durable;
	long got;
	double t_end;
};

static void make_stream(jsCtx *js)
{
	jsErrCode jerr = 0;
	js_DeleteStream(js, STREAM, NULL, &jerr); /* a previous run's, if any */
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	const char *subjects[] = {"ppbench.>"};
	cfg.Name = STREAM;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Retention = js_WorkQueuePolicy;
	cfg.Replicas = 3;
	jsStreamInfo *si = NULL;
	natsStatus s = js_AddStream(&si, js, &cfg, NULL, &jerr);
	if (s != NATS_OK)
		die_status("making the R3 stream " STREAM, s, jerr);
	jsStreamInfo_Destroy(si);
}

static void publish_all(struct run *r, const char *tag)
{
	char *data = malloc((size_t)r->size);
	if (!data)
		exit(1);
	memset(data, 'x', (size_t)r->size);
	char id[64];
	for (long i = 0; i < r->n; i++) {
		jsPubOptions po;
		jsPubOptions_Init(&po);
		snprintf(id, sizeof id, "%s-%ld", tag, i);
		po.MsgId = id;
		po.MaxWait = 5000;
		natsStatus s;
		int tries = 0;
		while ((s = js_PublishAsync(r->js, r->subject, data, r->size, &po)) == NATS_TIMEOUT && tries++ < 50)
			; /* MaxPending full for StallWait: try again */
		if (s != NATS_OK)
			die_status("async publish", s, 0);
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 60000;
	natsStatus s = js_PublishAsyncComplete(r->js, &po);
	if (s != NATS_OK)
		die_status("waiting for the publish acks", s, 0);
	free(data);
}

static void *fetch_all(void *arg)
{
	struct run *r = arg;
	jsErrCode jerr = 0;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = STREAM;
	so.Config.AckPolicy = js_AckExplicit;
	so.Config.MaxAckPending = 20000;
	natsSubscription *sub = NULL;
	natsStatus s = js_PullSubscribe(&sub, r->js, r->subject, r->durable, NULL, &so, &jerr);
	if (s != NATS_OK)
		die_status("pull subscribe", s, jerr);
	int idle = 0;
	while (r->got < r->n && idle < 20) {
		natsMsgList list = {0};
		s = natsSubscription_Fetch(&list, sub, 512, 1000, &jerr);
		if (s == NATS_TIMEOUT) {
			idle++;
			continue;
		}
		if (s != NATS_OK)
			die_status("fetch", s, jerr);
		idle = 0;
		for (int i = 0; i < list.Count; i++)
			natsMsg_Ack(list.Msgs[i], NULL);
		r->got += list.Count;
		natsMsgList_Destroy(&list);
	}
	r->t_end = now_s();
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	return NULL;
}

int main(int argc, char **argv)
{
	char *servers_arg = NULL;
	const char *user = NULL, *pass = NULL;
	long n = 100000;
	int size = 200, c;
	while ((c = getopt(argc, argv, "s:u:p:n:b:")) != -1) {
		switch (c) {
		case 's': servers_arg = optarg; break;
		case 'u': user = optarg; break;
		case 'p': pass = optarg; break;
		case 'n': n = atol(optarg); break;
		case 'b': size = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (!servers_arg || n < 1 || size < 1 || size > 1 << 20)
		goto usage;
	const char *servers[16];
	int ns = 0;
	for (char *t = strtok(servers_arg, ","); t && ns < 16; t = strtok(NULL, ","))
		servers[ns++] = t;

	natsOptions *opts = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsStatus s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(opts, servers, ns);
	if (s == NATS_OK && user)
		s = natsOptions_SetUserInfo(opts, user, pass);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1);
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, opts);
	if (s != NATS_OK)
		die_status("connecting", s, 0);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 4096;
	jo.PublishAsync.ErrHandler = on_pub_err;
	jo.Wait = 10000;
	if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK)
		die_status("JetStream context", s, 0);
	make_stream(js);

	/* Phases one and two: publish everything, then fetch and ack everything. */
	struct run a = {.js = js, .n = n, .size = size, .subject = "ppbench.a", .durable = "bench-a"};
	double t0 = now_s();
	publish_all(&a, "a");
	double t_pub = now_s() - t0;
	double t1 = now_s();
	fetch_all(&a);
	double t_fetch = a.t_end - t1;

	/* Phase three: both at once. */
	struct run b = {.js = js, .n = n, .size = size, .subject = "ppbench.b", .durable = "bench-b"};
	pthread_t th;
	double t2 = now_s();
	if (pthread_create(&th, NULL, fetch_all, &b) != 0)
		return 1;
	publish_all(&b, "b");
	pthread_join(th, NULL);
	double t_bus = b.t_end - t2;

	printf("messages %ld bytes %d publish_per_s %.0f fetch_ack_per_s %.0f bus_per_s %.0f fetched %ld fetched_concurrent %ld publish_failed %ld\n",
	       n, size, (double)n / t_pub, (double)a.got / t_fetch, (double)b.got / t_bus, a.got, b.got,
	       (long)atomic_load(&pub_failed));
	jsErrCode jerr = 0;
	js_DeleteStream(js, STREAM, NULL, &jerr);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	nats_Close();
	return (a.got == n && b.got == n) ? 0 : 1;
usage:
	fprintf(stderr, "usage: nats_bench -s URL[,URL...] -u USER -p PASSWORD [-n N] [-b SIZE]\n");
	return 2;
}
