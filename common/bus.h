/*
 * bus: pushpipe's one door to NATS JetStream in cluster mode (docs/cluster.md). A connection
 * made with the role's own NATS user, reconnecting forever; the streams and consumers of the
 * design; a publisher that waits for every PubAck of a set of messages and resends, with the
 * same Nats-Msg-Id, whatever failed or timed out; and a queue with an eventfd through which
 * libnats' threads hand messages to the daemon's own loop (nothing else of the daemon is ever
 * touched from a libnats thread).
 */
#ifndef BUS_H
#define BUS_H
#include "config.h"
#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

/* Stream names and the subjects they hold. */
#define BUS_REQ "PP_REQ"	   /* pp.req.<frame type>: ingress requests, work queue */
#define BUS_REGISTRY "PP_REGISTRY" /* pp.reg.<change>: the registry's changes, kept */
#define BUS_JOBS "PP_JOBS"	   /* pp.job.<platform>.<app>: work queue */
#define BUS_RES "PP_RES"	   /* pp.res.<platform>.<app>: sender results, work queue */
#define BUS_REQ_CONSUMER "routers"
#define BUS_RES_CONSUMER "routers-results"
/* Headers pushpipe adds. */
#define BUS_H_REPLY "Pp-Reply" /* where the router sends its answer to a request */

struct bus {
	natsConnection *nc;
	natsOptions *opts;
	jsCtx *js;		/* for API calls and synchronous work */
	const struct config *cfg;
	char name[64];		/* connection name, for the server's monitoring */
	char inbox[160];	/* inbox prefix: _INBOX_<NATS user>, or _INBOX without credentials */
	char user[128], pass[256]; /* cluster.credentials; pass is wiped once the options hold it */
	int64_t wait_ms;	/* cluster.publish_wait_ms */
	int64_t queue_max;	/* routers: most messages in PP_REQ and in PP_JOBS, new ones refused past it (0: none) */
	/* the waiting publisher (bus_publish) */
	jsCtx *pjs;
	void *pstate;
};

/* Reads the credentials file; call before privileges drop. Starts nothing (libnats and its
 * threads start in bus_connect, after the sandbox). 0, or -1 with a reason in err. */
int bus_prepare(struct bus *b, const struct config *cfg, const char *name, char *err, size_t errlen);
/* Makes the connection options (libnats starts its threads: call after sandbox_enter, whose
 * Landlock rules they then inherit) and connects, in the background while no server answers,
 * and reconnects forever after; stop is unused (kept for callers that may wait). 0, or -1
 * (bad options). b must not move after. */
int bus_connect(struct bus *b, volatile int *stop);
/* A fresh inbox subject under the connection's own prefix (b->inbox + "." + a unique token),
 * the only inboxes the role's NATS user may subscribe to. 0, or -1. */
int bus_new_inbox(const struct bus *b, char *buf, size_t len);
/* Closes the connection and libnats itself (a process has one bus). */
void bus_close(struct bus *b);

/* The platform's name in subjects and consumer names: apns, fcm, wns (NULL for others). */
const char *bus_platform_name(uint32_t platform);
/* The <app> of a (platform, app)'s subjects and consumer names (docs/cluster.md): an app's own
 * name (len 0 = the platform's default app), or cluster.app for a platform without apps. */
const char *bus_app_name(const struct config *c, uint32_t platform, const char *app, size_t len, char *buf,
			 size_t buflen);
/* Subject of a (platform, app)'s jobs, pp.job.<platform>.<app>. */
void bus_job_subject_app(const struct bus *b, uint32_t platform, const char *app, size_t app_len, char *buf, size_t len);
/* Subject and durable consumer names of the jobs of a sender's own app (cfg->app). */
void bus_job_subject(const struct bus *b, uint32_t platform, char *buf, size_t len);
void bus_job_consumer(const struct bus *b, uint32_t platform, char *buf, size_t len);

/* Creates or updates every stream and consumer (routers only). job_max_age_ms bounds PP_JOBS;
 * ack_wait_ms[platform] and max_ack_pending[platform] size each jobs consumer. */
int bus_setup_streams(struct bus *b, uint64_t job_max_age_ms, const int64_t *ack_wait_ms,
		      const int64_t *max_ack_pending);

/* 1 when a PubAck says the message is in its stream: a PubAck with a stream sequence. A
 * server can answer a resend whose first copy it has proposed but not yet committed with
 * "duplicate" and sequence 0 (nats-server 2.10.14 to 2.10.x); if that proposal is then lost (the
 * leader stalled or deposed: no quorum), nothing was stored, so such an answer is a failure
 * and the message is sent again with the same id (docs/cluster.md, "Durability"). */
int bus_stored(const jsPubAck *pa);

/* A message with frame bytes as its data, to subject, with Nats-Msg-Id msg_id (NULL: none). */
natsMsg *bus_msg(const char *subject, const void *data, size_t len, const char *msg_id);
/* Publishes msgs[0..n) (taking them: every slot is NULL afterwards) and waits until every one
 * was acknowledged by its stream, resending failures with the same Nats-Msg-Id, for at most
 * timeout_ms. seqs (optional) receives each stream sequence. 0 when all were acknowledged. */
int bus_publish(struct bus *b, natsMsg **msgs, size_t n, uint64_t *seqs, int64_t timeout_ms);

/* A queue of messages from libnats threads to one loop. Its fd (an eventfd) is readable while
 * the queue is not empty. */
struct bus_queue;
struct bus_queue *bus_queue_new(void);
void bus_queue_free(struct bus_queue *q);
int bus_queue_fd(const struct bus_queue *q);
/* Called from any thread: appends (m may be NULL for a pure event; kind and arg are the
 * caller's). */
void bus_queue_put(struct bus_queue *q, int kind, natsMsg *m, uint64_t arg);
/* Loop thread: the next item, 1 when there was one (the message then belongs to the caller). */
int bus_queue_get(struct bus_queue *q, int *kind, natsMsg **m, uint64_t *arg);
size_t bus_queue_len(struct bus_queue *q);

/* A thread that fetches from a pull subscription into a queue while the loop has room. */
struct bus_puller;
/* room: how many messages the loop can take now; the puller reads it (atomically) before
 * every fetch. batch: most per fetch. */
struct bus_puller *bus_puller_start(natsSubscription *sub, struct bus_queue *q, int kind, volatile long *room,
				    int batch);
void bus_puller_stop(struct bus_puller *p);

/* Fetches up to batch messages from a pull subscription, returning within wait_ms (sooner
 * when the batch fills). The list is the caller's to destroy; NATS_TIMEOUT when nothing came. */
natsStatus bus_fetch(natsSubscription *sub, natsMsgList *list, int batch, int64_t wait_ms);

/* Stream sequence and timestamp (ms since the epoch) of a JetStream message, delivery count. */
int bus_msg_meta(natsMsg *m, uint64_t *stream_seq, uint64_t *ts_ms, uint64_t *delivered);
#endif
