/*
 * counters: fire-and-forget counter increments to statsd over a Unix datagram socket.
 * Increments are summed in memory and sent by counters_flush(); a datagram that cannot be
 * sent at once is dropped, so counting never blocks or slows a daemon.
 */
#ifndef COUNTERS_H
#define COUNTERS_H
#include <stdint.h>

/* Append only: the numbers travel between daemons and are stored by statsd. */
enum counter_id {
	CTR_MESSAGES_TOTAL = 1,	    /* total_message_number: every accepted notify */
	CTR_MESSAGES_ONE_TO_ONE,    /* deduplicated_1_1_message_number */
	CTR_MESSAGES_CLOSED_GROUP,  /* closed_group_message_number */
	CTR_MESSAGES_UNTRACKED,	    /* untracked_message_number */
	CTR_IOS_DELIVERED,	    /* ios_pn_number */
	CTR_ANDROID_DELIVERED,	    /* android_pn_number */
	CTR_IOS_FAILED,
	CTR_ANDROID_FAILED,
	CTR_MESSAGES_OVERSIZED,
	CTR_ONION_REQUESTS,
	CTR_ONION_BAD_REQUESTS,	    /* transport errors answered 400 */
	CTR_ONION_DECRYPT_FAILED,
	CTR_REGISTRATIONS,
	CTR_UNREGISTRATIONS,
	CTR_JOBS_QUEUED,
	CTR_JOBS_RETRIED,
	CTR_JOBS_EXPIRED,
	CTR_JOBS_FAILED,
	CTR_TOKENS_DELETED,
	CTR_BUSY_REJECTS,
	CTR_REDUCED_PAYLOADS,
	CTR_HUAWEI_SKIPPED,
	CTR_WNS_DELIVERED,
	CTR_WNS_FAILED,
	CTR_UWPX_REQUESTS,           /* UWPX messages parsed */
	CTR_UWPX_ERRORS,             /* UWPX replies with status 0 */
	CTR_UWPX_TEST_PUSHES,
	CTR_XMPP_PUBLISHES,          /* publishes answered result */
	CTR_XMPP_PUBLISHES_REJECTED, /* publishes answered with an error */
	CTR_XMPP_REGISTRATIONS,      /* XEP-0050 registrations */
	CTR_XMPP_RECONNECTS,
	CTR_WNS_CHANNELS_DEAD,       /* channels marked dead (404/410) */
	CTR_WNS_THROTTLED,           /* 406 answers */
	CTR_WNS_DROPPED,             /* 200 with X-WNS-Status: dropped */
	CTR_WNS_TOKEN_REFRESHES,
	CTR_UWPX_DEVICES_EXPIRED,    /* devices removed by expiry */
	CTR_GUARD_TRIPS,             /* mass-invalidation guard pauses */
	CTR_XMPP_FCM_DELIVERED,
	CTR_XMPP_APNS_DELIVERED,
	CTR_WNS_SUPERSEDED,          /* WNS jobs replaced by a newer one while their channel backed off */
	CTR_RESULTS_IGNORED,         /* router: results for a job the sender does not hold */
	CTR_REGISTRY_LIMITS,         /* router: registrations refused by a registry cap or a full map */
	CTR_MAX
};

/*
 * Beyond the plain counters above, the same FRAME_COUNTER datagrams carry three more kinds of
 * metric, told apart by the top byte of the u32 TAG_COUNTER id (docs/observability.md):
 *   0x00  plain counter: enum counter_id, delta = increment (kept per period and in totals)
 *   0x01  HTTP request:  route << 16 | status, delta = increment (totals only)
 *   0x02  histogram:     hist << 8 | bucket, delta = observations in that bucket; bucket
 *                        HIST_SUM_BUCKET carries the sum of the observed microseconds
 *   0x03  gauge:         source << 16 | gauge, delta = the current value (not a sum)
 */
#define METRIC_KIND(id) ((uint32_t)(id) >> 24)
#define METRIC_PLAIN 0u
#define METRIC_HTTP 1u
#define METRIC_HIST 2u
#define METRIC_GAUGE 3u
#define METRIC_HTTP_ID(route, status) (METRIC_HTTP << 24 | (uint32_t)(route) << 16 | (uint32_t)(status))
#define METRIC_HIST_ID(hist, bucket) (METRIC_HIST << 24 | (uint32_t)(hist) << 8 | (uint32_t)(bucket))
#define METRIC_GAUGE_ID(source, gauge) (METRIC_GAUGE << 24 | (uint32_t)(source) << 16 | (uint32_t)(gauge))

/* HTTP routes whose answers are counted by status (100–599). Append only. */
enum http_route {
	HTTP_ROUTE_UNKNOWN = 0, /* a path no route matches (404) */
	HTTP_ROUTE_ONION,	/* the onion request routes (v2 and v4); also every 405 and 413 */
	HTTP_ROUTE_STATS,	/* /get_statistics_data */
	HTTP_ROUTE_APNS,	/* provider answers, counted by the senders: */
	HTTP_ROUTE_FCM,		/*   exported as pushpipe_provider_answers_total */
	HTTP_ROUTE_WNS,
	HTTP_ROUTE_HMS,
	HTTP_ROUTE_MAX
};

/* Latency histograms, in microseconds, over the fixed buckets of hist_bounds_us. Append only. */
enum hist_id {
	HIST_ONION_ROUTER_REPLY = 1, /* onion request received → the router's verdict */
	HIST_JOB_PROVIDER_ANSWER,    /* job committed by the router → the sender's result */
	HIST_MAX
};
#define HIST_BOUNDS 16			 /* buckets 0..15 have an upper bound, bucket 16 is +Inf */
#define HIST_SUM_BUCKET 0xffu
extern const uint64_t hist_bounds_us[HIST_BOUNDS];

/* Gauges a daemon reports about itself; statsd labels them with the reporting daemon. */
enum gauge_id {
	GAUGE_OUTBOX_JOBS = 1,	   /* router: jobs in the durable outbox */
	GAUGE_JOBS_IN_FLIGHT,	   /* sender: jobs taken from the router and not yet answered */
	GAUGE_PROVIDER_REQUESTS,   /* sender: HTTP/2 requests open to the provider */
	GAUGE_ROUTER_CONNECTED,	   /* sender: 1 while its router connection is up */
	GAUGE_MAP_USED_BYTES,	   /* router: bytes of the LMDB map in use */
	GAUGE_MAP_SIZE_BYTES,	   /* router: the LMDB map's size (router.map_size_mb) */
	GAUGE_PROVIDER_PAUSED,	   /* sender: 1 while the credential check or the guard pauses it */
	GAUGE_MAX
};
/* Who reports a gauge: the daemon's program name, mapped by counter_source_name(). */
enum counter_source {
	SRC_OTHER = 0,
	SRC_ROUTER,
	SRC_APNS_SENDER,
	SRC_FCM_SENDER,
	SRC_WNS_SENDER,
	SRC_INGRESS_ONION,
	SRC_INGRESS_UWPX,
	SRC_INGRESS_XMPP,
	SRC_STATSD,
	SRC_HMS_SENDER,
	SRC_MAX
};

/* Connects the datagram socket to statsd's (statsd may come and go; failures are silent). */
void counters_init(const char *statsd_socket_path);
/* Names this process's instance (-i NAME) in every datagram (TAG_INSTANCE), so statsd labels
 * its gauges by daemon and instance; call once before the first flush. */
void counters_set_instance(const char *name);

/* While on, counter_add() counts nothing: a cluster router replaying registry changes that
 * another router counted already (docs/cluster.md). */
void counters_mute(int on);
void counter_add(enum counter_id id, uint64_t delta);
/* Sends the pending sums in one datagram, if any; call from the event loop. */
void counters_flush(void);
/* Counts one answered HTTP request (any thread). */
void counter_http(enum http_route route, unsigned status);
/* Records one latency observation (any thread). */
void histogram_observe(enum hist_id h, uint64_t usec);
/* Sets a gauge; sent with the next flush when changed, and at least every 2 s while set. */
void gauge_set(enum gauge_id g, uint64_t value);
/* Monotonic microseconds, for measuring latencies. */
uint64_t counters_now_us(void);
/* Names for metric labels; NULL when out of range. */
const char *http_route_name(uint32_t route);
const char *hist_name(uint32_t h);
const char *gauge_name(uint32_t g);
const char *counter_source_name(uint32_t src);
/* The counter's metric name ("messages_total"…), or NULL for an unknown id. */
const char *counter_name(uint32_t id);
#endif
