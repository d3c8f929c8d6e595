/*
 * metrics: statsd's in-memory view of every metric. Counter datagrams (counters.h) are parsed
 * here: plain counters and the totals-only kinds (HTTP answers, histogram buckets) wait as
 * pending sums until metrics_commit() adds them to the store; gauges are kept per reporting
 * daemon (program and instance name, with the pid last seen) and forgotten when they stop
 * coming. Renders /metrics and the /healthz answer.
 */
#ifndef STATSD_METRICS_H
#define STATSD_METRICS_H
#include "counters.h"
#include "periods.h"
#include <stddef.h>
#include <stdint.h>

#define METRICS_SLOTS 8192	/* far more than the valid ids of the totals-only kinds */
#define METRICS_SLOTS_FIRST 256 /* a table starts with one page and doubles up to METRICS_SLOTS */
#define METRICS_GAUGES 256
#define GAUGE_STALE_MS 10000	/* a daemon reports every 2 s; after this its gauges are gone */

#define METRICS_INSTANCE_MAX 64

struct gauge_entry {
	uint32_t src, gauge, pid;
	uint64_t value, seen_ms; /* seen: monotonic ms */
	char instance[METRICS_INSTANCE_MAX + 1]; /* -i NAME of the reporting daemon, "" = none */
};

/* An open-addressing hash of metric ids (id 0 = empty slot), at most half full. */
struct metric_tab {
	struct metric_kv *v;
	size_t n, cap;		   /* cap: a power of two, METRICS_SLOTS at most */
};

struct metrics {
	uint64_t pending[CTR_MAX];
	int have_pending;
	struct metric_tab pend_x;  /* pending totals-only deltas */
	struct metric_tab totals;  /* committed totals, every kind but gauges */
	struct gauge_entry gauges[METRICS_GAUGES];
	size_t ngauges;
	uint64_t datagrams, rejected; /* since this process started */
};

int metrics_init(struct metrics *m);
void metrics_free(struct metrics *m);
/* Loads the stored totals (after metrics_init). */
int metrics_load(struct metrics *m, struct periods *p);
/* Parses one datagram; pid is the sender's (0 if unknown). Returns the pairs taken, -1 if invalid. */
int metrics_take(struct metrics *m, const uint8_t *buf, size_t n, uint32_t pid, uint64_t mono_ms);
/* 1 when something waits for a commit. */
int metrics_dirty(const struct metrics *m);
/* Commits the pending sums into the window of now_s and the totals; 0 on success (then folded
 * into the in-memory totals), -1 when the store refused (the sums stay pending). */
int metrics_commit(struct metrics *m, struct periods *p, uint64_t now_s);
/* Committed plus pending value of a metric id. */
uint64_t metrics_value(const struct metrics *m, uint32_t id);
/* Drops gauges not refreshed within GAUGE_STALE_MS. */
void metrics_expire(struct metrics *m, uint64_t mono_ms);
/* The Prometheus text exposition (format 0.0.4); malloc'd. */
char *metrics_prometheus(const struct metrics *m, uint64_t started_s, uint64_t period_s, size_t *len);
/* GET /healthz: whether the router reports (its gauges are fresh) and every sender that reports,
 * and every one named in `expected` ("apns-sender" or "apns-sender:NAME"), is connected to the
 * router. Sets *code (200 or 503) and returns a malloc'd JSON body (NULL = out of memory). */
char *metrics_health(const struct metrics *m, char *const *expected, size_t nexpected, unsigned *code, size_t *len);
/* The instance label's value: the -i name, or "default" for a daemon started without one. */
const char *metrics_instance_label(const struct gauge_entry *g);
/* Prometheus-style float text of a microsecond count in seconds ("0.0025", "60"). */
void metrics_fmt_seconds(char *out, size_t outlen, uint64_t usec);
/* Help text of a plain counter id. */
const char *metrics_counter_help(uint32_t id);
#endif
