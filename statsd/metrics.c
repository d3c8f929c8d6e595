/*
 * metrics: see metrics.h. Trusts no datagram: each is parsed as a frame, and an id outside the
 * known ranges of counters.h is dropped, so a bad sender cannot grow the tables.
 */
#include "metrics.h"
#include "daemon.h"
#include "frame.h"
#include "sbuf.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const help[CTR_MAX] = {
	[CTR_MESSAGES_TOTAL] = "Notify requests accepted by the onion ingress.",
	[CTR_MESSAGES_ONE_TO_ONE] = "Notifies to a one-to-one recipient (deduplicated).",
	[CTR_MESSAGES_CLOSED_GROUP] = "Notifies to a closed group.",
	[CTR_MESSAGES_UNTRACKED] = "Notifies for a recipient with no registered device.",
	[CTR_IOS_DELIVERED] = "Pushes APNs accepted.",
	[CTR_ANDROID_DELIVERED] = "Pushes FCM accepted.",
	[CTR_IOS_FAILED] = "APNs pushes that failed for good (dead token, refused, expired).",
	[CTR_ANDROID_FAILED] = "FCM pushes that failed for good (dead token, refused, expired).",
	[CTR_MESSAGES_OVERSIZED] = "Notifies accepted and dropped because their data was too large.",
	[CTR_ONION_REQUESTS] = "Onion requests received with a complete body.",
	[CTR_ONION_BAD_REQUESTS] = "Onion requests answered 400 (malformed envelope).",
	[CTR_ONION_DECRYPT_FAILED] = "Onion requests that could not be decrypted.",
	[CTR_REGISTRATIONS] = "Device registrations.",
	[CTR_UNREGISTRATIONS] = "Device unregistrations.",
	[CTR_JOBS_QUEUED] = "Delivery jobs queued in the router's outbox.",
	[CTR_JOBS_RETRIED] = "Delivery jobs rescheduled after a retryable answer.",
	[CTR_JOBS_EXPIRED] = "Delivery jobs given up after their maximum age.",
	[CTR_JOBS_FAILED] = "Delivery jobs the provider refused for good.",
	[CTR_TOKENS_DELETED] = "Device tokens removed because the provider called them dead.",
	[CTR_BUSY_REJECTS] = "Requests answered busy (router unreachable or full).",
	[CTR_REDUCED_PAYLOADS] = "Pushes sent with a reduced payload to fit the provider's limit.",
	[CTR_HUAWEI_SKIPPED] = "Huawei tokens reached by a notify (stored, never delivered).",
	[CTR_WNS_DELIVERED] = "Pushes WNS accepted.",
	[CTR_WNS_FAILED] = "WNS pushes that failed for good.",
	[CTR_UWPX_REQUESTS] = "UWPX messages parsed.",
	[CTR_UWPX_ERRORS] = "UWPX replies with status 0.",
	[CTR_UWPX_TEST_PUSHES] = "UWPX test pushes requested.",
	[CTR_XMPP_PUBLISHES] = "XMPP publishes answered with a result.",
	[CTR_XMPP_PUBLISHES_REJECTED] = "XMPP publishes answered with an error.",
	[CTR_XMPP_REGISTRATIONS] = "XMPP (XEP-0050) registrations.",
	[CTR_XMPP_RECONNECTS] = "XMPP component reconnects.",
	[CTR_WNS_CHANNELS_DEAD] = "WNS channels marked dead (404/410).",
	[CTR_WNS_THROTTLED] = "WNS 406 (throttled) answers.",
	[CTR_WNS_DROPPED] = "WNS 200 answers with X-WNS-Status: dropped.",
	[CTR_WNS_TOKEN_REFRESHES] = "WNS access tokens obtained.",
	[CTR_UWPX_DEVICES_EXPIRED] = "UWPX devices removed by expiry.",
	[CTR_GUARD_TRIPS] = "Mass-invalidation guard pauses.",
	[CTR_XMPP_FCM_DELIVERED] = "Ad-hoc XMPP pushes FCM accepted.",
	[CTR_XMPP_APNS_DELIVERED] = "Ad-hoc XMPP pushes APNs accepted.",
	[CTR_WNS_SUPERSEDED] = "WNS pushes replaced by a newer one for their channel while it backed off (406).",
	[CTR_RESULTS_IGNORED] = "Sender results for a job that sender does not hold (stale or forged), ignored.",
	[CTR_REGISTRY_LIMITS] = "Registrations and subscriptions refused by a registry cap or a full LMDB map.",
};

static const char *const hist_help[HIST_MAX] = {
	[HIST_ONION_ROUTER_REPLY] = "Onion request received to the router's verdict, in seconds.",
	[HIST_JOB_PROVIDER_ANSWER] = "Job committed by the router to the provider's answer reaching it, in seconds.",
};

static const char *const gauge_help[GAUGE_MAX] = {
	[GAUGE_OUTBOX_JOBS] = "Jobs in the router's durable outbox.",
	[GAUGE_JOBS_IN_FLIGHT] = "Jobs a sender holds and has not answered yet.",
	[GAUGE_PROVIDER_REQUESTS] = "HTTP/2 requests a sender has open to its provider.",
	[GAUGE_ROUTER_CONNECTED] = "1 while the sender's connection to the router is up.",
	[GAUGE_MAP_USED_BYTES] = "Bytes of the router's LMDB map in use (pages in use times the page size).",
	[GAUGE_MAP_SIZE_BYTES] = "Size of the router's LMDB map (router.map_size_mb).",
	[GAUGE_PROVIDER_PAUSED] = "1 while the sender holds its provider paused (credential check or mass-invalidation guard).",
};

/* Gauge names in /metrics: in-flight gauges say so. A renamed gauge is also written under its
 * old name (gauge_alias) for one release. */
static const char *const gauge_prom[GAUGE_MAX] = {
	[GAUGE_OUTBOX_JOBS] = "outbox_jobs",
	[GAUGE_JOBS_IN_FLIGHT] = "jobs_in_flight",
	[GAUGE_PROVIDER_REQUESTS] = "provider_requests_in_flight",
	[GAUGE_ROUTER_CONNECTED] = "router_connected",
	[GAUGE_MAP_USED_BYTES] = "registry_map_used_bytes",
	[GAUGE_MAP_SIZE_BYTES] = "registry_map_size_bytes",
	[GAUGE_PROVIDER_PAUSED] = "provider_paused",
};
static const char *const gauge_alias[GAUGE_MAX] = {
	[GAUGE_PROVIDER_REQUESTS] = "provider_requests",
};

/* pushpipe_deliveries_total{provider,app,outcome}: the per-platform counters folded into one
 * vocabulary. app is "default" (the platform's one app) and "xmpp" (XEP-0050 registrations of
 * the XMPP ingress, sent with their own topic); the per-platform names stay one release as
 * deprecated aliases. */
static const struct {
	uint32_t id;
	const char *provider, *app, *outcome;
} deliveries[] = {
	{CTR_IOS_DELIVERED, "apns", "default", "delivered"},
	{CTR_IOS_FAILED, "apns", "default", "failed"},
	{CTR_XMPP_APNS_DELIVERED, "apns", "xmpp", "delivered"},
	{CTR_ANDROID_DELIVERED, "fcm", "default", "delivered"},
	{CTR_ANDROID_FAILED, "fcm", "default", "failed"},
	{CTR_XMPP_FCM_DELIVERED, "fcm", "xmpp", "delivered"},
	{CTR_WNS_DELIVERED, "wns", "default", "delivered"},
	{CTR_WNS_FAILED, "wns", "default", "failed"},
};
#define NDELIVERIES (sizeof deliveries / sizeof deliveries[0])

static int delivery_alias(uint32_t id)
{
	for (size_t i = 0; i < NDELIVERIES; i++)
		if (deliveries[i].id == id)
			return (int)i;
	return -1;
}

const char *metrics_instance_label(const struct gauge_entry *g)
{
	return g->instance[0] ? g->instance : "default";
}

const char *metrics_counter_help(uint32_t id)
{
	return id > 0 && id < CTR_MAX && help[id] ? help[id] : "Counter.";
}

static int id_valid(uint32_t id)
{
	uint32_t lo = id & 0xffffffu;
	switch (METRIC_KIND(id)) {
	case METRIC_PLAIN:
		return id > 0 && id < CTR_MAX;
	case METRIC_HTTP:
		return (lo >> 16) < HTTP_ROUTE_MAX && (lo & 0xffffu) >= 100 && (lo & 0xffffu) < 600;
	case METRIC_HIST:
		return (lo >> 16) == 0 && hist_name((lo >> 8) & 0xffu) && ((lo & 0xffu) <= HIST_BOUNDS || (lo & 0xffu) == HIST_SUM_BUCKET);
	case METRIC_GAUGE:
		return (lo >> 16) < SRC_MAX && gauge_name(lo & 0xffffu);
	}
	return 0;
}

static int tab_init(struct metric_tab *t)
{
	t->n = 0;
	t->cap = METRICS_SLOTS_FIRST;
	t->v = calloc(t->cap, sizeof *t->v);
	return t->v ? 0 : -1;
}

/* The slot holding id, or the empty one where it would go (a table is never full). */
static struct metric_kv *find(struct metric_kv *v, size_t cap, uint32_t id)
{
	size_t i = (id * 2654435761u) % cap;
	while (v[i].id != id && v[i].id != 0)
		i = (i + 1) % cap;
	return &v[i];
}

/* Doubles t (rehashing what it holds); -1 at METRICS_SLOTS or out of memory. */
static int grow(struct metric_tab *t)
{
	size_t cap = t->cap * 2;
	struct metric_kv *v;

	if (cap > METRICS_SLOTS || (v = calloc(cap, sizeof *v)) == NULL)
		return -1;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].id != 0)
			*find(v, cap, t->v[i].id) = t->v[i];
	free(t->v);
	t->v = v;
	t->cap = cap;
	return 0;
}

/* The slot of id; with create, a new one (value 0) when absent and there is room. */
static struct metric_kv *slot(struct metric_tab *t, uint32_t id, int create)
{
	struct metric_kv *s = find(t->v, t->cap, id);

	if (s->id == id)
		return s;
	if (!create || (t->n >= t->cap / 2 && grow(t) < 0))
		return NULL;
	s = find(t->v, t->cap, id);
	s->id = id;
	t->n++;
	return s;
}

static uint64_t lookup(const struct metric_tab *t, uint32_t id)
{
	const struct metric_kv *s = find(t->v, t->cap, id);
	return s->id == id ? s->v : 0;
}

int metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof *m);
	return tab_init(&m->pend_x) == 0 && tab_init(&m->totals) == 0 ? 0 : -1;
}

void metrics_free(struct metrics *m)
{
	free(m->pend_x.v);
	free(m->totals.v);
	m->pend_x.v = m->totals.v = NULL;
}

static void load_one(void *ctx, uint32_t id, uint64_t v)
{
	struct metrics *m = ctx;
	struct metric_kv *s;
	if (id_valid(id) && METRIC_KIND(id) != METRIC_GAUGE && (s = slot(&m->totals, id, 1)) != NULL)
		s->v = v;
}

int metrics_load(struct metrics *m, struct periods *p)
{
	return periods_totals(p, load_one, m);
}

/* One gauge per daemon, instance name and gauge: a restarted daemon (new pid, same name)
 * replaces its old values instead of standing beside them. */
static void take_gauge(struct metrics *m, uint32_t id, uint64_t v, uint32_t pid, const char *inst, uint64_t now)
{
	uint32_t src = (id >> 16) & 0xffu, g = id & 0xffffu;
	size_t oldest = 0;
	for (size_t i = 0; i < m->ngauges; i++) {
		struct gauge_entry *e = &m->gauges[i];
		if (e->src == src && e->gauge == g && strcmp(e->instance, inst) == 0) {
			e->value = v;
			e->seen_ms = now;
			e->pid = pid;
			return;
		}
		if (e->seen_ms < m->gauges[oldest].seen_ms)
			oldest = i;
	}
	if (m->ngauges < METRICS_GAUGES)
		oldest = m->ngauges++;
	m->gauges[oldest] = (struct gauge_entry){src, g, pid, v, now, ""};
	memcpy(m->gauges[oldest].instance, inst, strlen(inst) + 1);
}

/* An instance name as a label value may carry only [A-Za-z0-9._-]; anything else drops it. */
static int instance_ok(const struct frame_field *fl)
{
	if (fl->len == 0 || fl->len > METRICS_INSTANCE_MAX)
		return 0;
	for (size_t i = 0; i < fl->len; i++) {
		unsigned char ch = fl->val[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
		      ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

int metrics_take(struct metrics *m, const uint8_t *buf, size_t n, uint32_t pid, uint64_t mono_ms)
{
	struct frame f;
	struct frame_field fl;
	size_t pos = 0;
	uint32_t id = 0;
	int taken = 0;
	char inst[METRICS_INSTANCE_MAX + 1] = "";

	m->datagrams++;
	if (frame_parse(buf, n, &f, NULL) < 0 || f.type != FRAME_COUNTER) {
		m->rejected++;
		return -1;
	}
	/* Fields come in (counter, delta) pairs. */
	while (frame_next(&f, &pos, &fl) == 0) {
		if (fl.tag == TAG_COUNTER) {
			id = frame_field_u32(&fl);
			continue;
		}
		if (fl.tag == TAG_INSTANCE) {
			if (!instance_ok(&fl)) {
				m->rejected++;
				return -1;
			}
			memcpy(inst, fl.val, fl.len);
			inst[fl.len] = '\0';
			continue;
		}
		if (fl.tag != TAG_DELTA || !id_valid(id)) {
			id = 0;
			continue;
		}
		uint64_t v = frame_field_u64(&fl);
		struct metric_kv *s;
		switch (METRIC_KIND(id)) {
		case METRIC_PLAIN:
			m->pending[id] += v;
			m->have_pending = 1;
			break;
		case METRIC_GAUGE:
			take_gauge(m, id, v, pid, inst, mono_ms);
			break;
		default:
			if ((s = slot(&m->pend_x, id, 1)) != NULL)
				s->v += v;
			break;
		}
		taken++;
		id = 0;
	}
	return taken;
}

int metrics_dirty(const struct metrics *m)
{
	return m->have_pending || m->pend_x.n > 0;
}

int metrics_commit(struct metrics *m, struct periods *p, uint64_t now_s)
{
	struct metric_kv *x = NULL;
	size_t nx = 0;

	if (m->pend_x.n > 0) {
		if ((x = malloc(m->pend_x.n * sizeof *x)) == NULL)
			return -1;
		for (size_t i = 0; i < m->pend_x.cap; i++)
			if (m->pend_x.v[i].id != 0)
				x[nx++] = m->pend_x.v[i];
	}
	if (periods_commit(p, now_s, m->pending, x, nx) < 0) {
		free(x);
		return -1;
	}
	for (uint32_t i = 1; i < CTR_MAX; i++) {
		struct metric_kv *s;
		if (m->pending[i] && (s = slot(&m->totals, i, 1)) != NULL)
			s->v += m->pending[i];
	}
	for (size_t i = 0; i < nx; i++) {
		struct metric_kv *s = slot(&m->totals, x[i].id, 1);
		if (s)
			s->v += x[i].v;
	}
	free(x);
	memset(m->pending, 0, sizeof m->pending);
	memset(m->pend_x.v, 0, m->pend_x.cap * sizeof *m->pend_x.v);
	m->have_pending = 0;
	m->pend_x.n = 0;
	return 0;
}

uint64_t metrics_value(const struct metrics *m, uint32_t id)
{
	uint64_t v = lookup(&m->totals, id);
	if (METRIC_KIND(id) == METRIC_PLAIN)
		return v + (id > 0 && id < CTR_MAX ? m->pending[id] : 0);
	return v + lookup(&m->pend_x, id);
}

void metrics_expire(struct metrics *m, uint64_t mono_ms)
{
	size_t j = 0;
	for (size_t i = 0; i < m->ngauges; i++)
		if (m->gauges[i].seen_ms + GAUGE_STALE_MS > mono_ms)
			m->gauges[j++] = m->gauges[i];
	m->ngauges = j;
}

void metrics_fmt_seconds(char *out, size_t outlen, uint64_t usec)
{
	int n = snprintf(out, outlen, "%llu.%06llu", (unsigned long long)(usec / 1000000u),
			 (unsigned long long)(usec % 1000000u));
	/* Trim trailing zeros, and the point when nothing is left after it. */
	while (n > 0 && (size_t)n < outlen && out[n - 1] == '0')
		out[--n] = '\0';
	if (n > 0 && (size_t)n < outlen && out[n - 1] == '.')
		out[--n] = '\0';
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_gauge(const void *a, const void *b)
{
	const struct gauge_entry *x = a, *y = b;
	if (x->gauge != y->gauge)
		return x->gauge < y->gauge ? -1 : 1;
	if (x->src != y->src)
		return x->src < y->src ? -1 : 1;
	return strcmp(x->instance, y->instance);
}

/* Every HTTP id seen, committed or pending, ascending. */
static size_t http_ids(const struct metrics *m, uint32_t *ids)
{
	size_t n = 0;
	for (size_t i = 0; i < m->totals.cap; i++) {
		uint32_t a = m->totals.v[i].id;
		if (a && METRIC_KIND(a) == METRIC_HTTP)
			ids[n++] = a;
	}
	for (size_t i = 0; i < m->pend_x.cap; i++) {
		uint32_t b = m->pend_x.v[i].id;
		if (b && METRIC_KIND(b) == METRIC_HTTP && find(m->totals.v, m->totals.cap, b)->id != b)
			ids[n++] = b;
	}
	qsort(ids, n, sizeof *ids, cmp_u32);
	return n;
}

char *metrics_prometheus(const struct metrics *m, uint64_t started_s, uint64_t period_s, size_t *len)
{
	struct sbuf b = {0};
	uint32_t *ids = malloc((m->totals.n + m->pend_x.n + 1) * sizeof *ids);
	struct gauge_entry g[METRICS_GAUGES];
	size_t n;
	char num[32];

	if (ids == NULL)
		return NULL;
	for (uint32_t i = 1; i < CTR_MAX; i++) {
		const char *name = counter_name(i);
		size_t nl = strlen(name);
		/* Prometheus counters end in _total, once: messages_total stays pushpipe_messages_total. */
		const char *sfx = (nl >= 6 && strcmp(name + nl - 6, "_total") == 0) ? "" : "_total";
		int a = delivery_alias(i);
		if (a >= 0)
			sb_printf(&b, "# HELP pushpipe_%s%s Deprecated (removed in the next release): "
				      "pushpipe_deliveries_total{provider=\"%s\",app=\"%s\",outcome=\"%s\"}.\n",
				  name, sfx, deliveries[a].provider, deliveries[a].app, deliveries[a].outcome);
		else
			sb_printf(&b, "# HELP pushpipe_%s%s %s\n", name, sfx, metrics_counter_help(i));
		sb_printf(&b, "# TYPE pushpipe_%s%s counter\npushpipe_%s%s %llu\n", name, sfx, name, sfx,
			  (unsigned long long)metrics_value(m, i));
	}
	sb_puts(&b, "# HELP pushpipe_deliveries_total Pushes a provider accepted (delivered) or refused for good "
		    "(failed), by provider, app and outcome.\n# TYPE pushpipe_deliveries_total counter\n");
	for (size_t i = 0; i < NDELIVERIES; i++)
		sb_printf(&b, "pushpipe_deliveries_total{provider=\"%s\",app=\"%s\",outcome=\"%s\"} %llu\n",
			  deliveries[i].provider, deliveries[i].app, deliveries[i].outcome,
			  (unsigned long long)metrics_value(m, deliveries[i].id));
	sb_puts(&b, "# HELP pushpipe_http_requests_total HTTP requests answered, by route and status.\n"
		    "# TYPE pushpipe_http_requests_total counter\n");
	n = http_ids(m, ids);
	for (size_t i = 0; i < n; i++)
		if (((ids[i] >> 16) & 0xffu) < HTTP_ROUTE_APNS)
			sb_printf(&b, "pushpipe_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
				  http_route_name((ids[i] >> 16) & 0xffu), ids[i] & 0xffffu,
				  (unsigned long long)metrics_value(m, ids[i]));
	sb_puts(&b, "# HELP pushpipe_provider_answers_total Provider answers to the senders, by provider and HTTP status.\n"
		    "# TYPE pushpipe_provider_answers_total counter\n");
	for (size_t i = 0; i < n; i++)
		if (((ids[i] >> 16) & 0xffu) >= HTTP_ROUTE_APNS)
			sb_printf(&b, "pushpipe_provider_answers_total{provider=\"%s\",status=\"%u\"} %llu\n",
				  http_route_name((ids[i] >> 16) & 0xffu), ids[i] & 0xffffu,
				  (unsigned long long)metrics_value(m, ids[i]));
	for (uint32_t h = 1; h < HIST_MAX; h++) {
		const char *name = hist_name(h);
		uint64_t cum = 0;
		sb_printf(&b, "# HELP pushpipe_%s_seconds %s\n# TYPE pushpipe_%s_seconds histogram\n", name, hist_help[h], name);
		for (uint32_t k = 0; k <= HIST_BOUNDS; k++) {
			cum += metrics_value(m, METRIC_HIST_ID(h, k));
			if (k < HIST_BOUNDS)
				metrics_fmt_seconds(num, sizeof num, hist_bounds_us[k]);
			else
				snprintf(num, sizeof num, "+Inf");
			sb_printf(&b, "pushpipe_%s_seconds_bucket{le=\"%s\"} %llu\n", name, num, (unsigned long long)cum);
		}
		metrics_fmt_seconds(num, sizeof num, metrics_value(m, METRIC_HIST_ID(h, HIST_SUM_BUCKET)));
		sb_printf(&b, "pushpipe_%s_seconds_sum %s\npushpipe_%s_seconds_count %llu\n", name, num, name, (unsigned long long)cum);
	}
	memcpy(g, m->gauges, m->ngauges * sizeof *g);
	qsort(g, m->ngauges, sizeof *g, cmp_gauge);
	for (uint32_t k = 1; k < GAUGE_MAX; k++) {
		for (int alias = 0; alias < 2; alias++) {
			const char *name = alias ? gauge_alias[k] : gauge_prom[k];
			if (name == NULL)
				continue;
			if (alias)
				sb_printf(&b, "# HELP pushpipe_%s Deprecated (removed in the next release): pushpipe_%s.\n", name,
					  gauge_prom[k]);
			else
				sb_printf(&b, "# HELP pushpipe_%s %s\n", name, gauge_help[k]);
			sb_printf(&b, "# TYPE pushpipe_%s gauge\n", name);
			for (size_t i = 0; i < m->ngauges; i++)
				if (g[i].gauge == k)
					sb_printf(&b, "pushpipe_%s{daemon=\"%s\",daemon_instance=\"%s\"} %llu\n", name,
						  counter_source_name(g[i].src), metrics_instance_label(&g[i]),
						  (unsigned long long)g[i].value);
		}
	}
	sb_printf(&b, "# HELP pushpipe_build_info The build of this statsd (the pipeline is built and installed together).\n"
		      "# TYPE pushpipe_build_info gauge\npushpipe_build_info{version=\"%s\"} 1\n",
		  daemon_version());
	sb_printf(&b,
		  "# HELP pushpipe_statsd_start_time_seconds When this statsd process started (statsd's clock).\n"
		  "# TYPE pushpipe_statsd_start_time_seconds gauge\npushpipe_statsd_start_time_seconds %llu\n"
		  "# HELP pushpipe_statsd_period_seconds Length of a statistics window.\n"
		  "# TYPE pushpipe_statsd_period_seconds gauge\npushpipe_statsd_period_seconds %llu\n"
		  "# HELP pushpipe_statsd_datagrams_total Counter datagrams received by this statsd process.\n"
		  "# TYPE pushpipe_statsd_datagrams_total counter\npushpipe_statsd_datagrams_total %llu\n"
		  "# HELP pushpipe_statsd_datagrams_rejected_total Datagrams that were not valid counter frames.\n"
		  "# TYPE pushpipe_statsd_datagrams_rejected_total counter\npushpipe_statsd_datagrams_rejected_total %llu\n",
		  (unsigned long long)started_s, (unsigned long long)period_s, (unsigned long long)m->datagrams,
		  (unsigned long long)m->rejected);
	free(ids);
	return sb_take(&b, len);
}

char *metrics_health(const struct metrics *m, char *const *expected, size_t nexpected, unsigned *code, size_t *len)
{
	json_t *root = json_object(), *senders = json_array(), *missing = json_array();
	int router = 0, healthy;
	char *body;

	for (size_t i = 0; i < m->ngauges; i++)
		if (m->gauges[i].src == SRC_ROUTER)
			router = 1;
	healthy = router;
	for (size_t i = 0; i < m->ngauges; i++) {
		const struct gauge_entry *e = &m->gauges[i];
		if (e->gauge != GAUGE_ROUTER_CONNECTED)
			continue;
		int paused = 0;
		for (size_t k = 0; k < m->ngauges; k++)
			if (m->gauges[k].gauge == GAUGE_PROVIDER_PAUSED && m->gauges[k].src == e->src &&
			    strcmp(m->gauges[k].instance, e->instance) == 0)
				paused = m->gauges[k].value != 0;
		json_array_append_new(senders, json_pack("{s:s,s:s,s:b,s:b}", "daemon", counter_source_name(e->src),
							 "instance", metrics_instance_label(e), "router_connected",
							 e->value != 0, "provider_paused", paused));
		healthy &= e->value != 0;
	}
	for (size_t x = 0; x < nexpected; x++) {
		const char *want = expected[x], *colon = strchr(want, ':');
		size_t dl = colon ? (size_t)(colon - want) : strlen(want);
		const char *inst = colon ? colon + 1 : "";
		int found = 0;
		for (size_t i = 0; i < m->ngauges && !found; i++) {
			const struct gauge_entry *e = &m->gauges[i];
			const char *dn = counter_source_name(e->src);
			found = e->gauge == GAUGE_ROUTER_CONNECTED && strlen(dn) == dl && strncmp(dn, want, dl) == 0 &&
				strcmp(e->instance, inst) == 0;
		}
		if (!found) {
			json_array_append_new(missing, json_string(want));
			healthy = 0;
		}
	}
	json_object_set_new(root, "status", json_string(healthy ? "ok" : "unhealthy"));
	json_object_set_new(root, "router", json_boolean(router));
	json_object_set_new(root, "senders", senders);
	json_object_set_new(root, "missing", missing);
	body = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	*code = healthy ? 200 : 503;
	if (body != NULL) {
		size_t n = strlen(body);
		char *nl = realloc(body, n + 2);
		if (nl == NULL) {
			free(body);
			return NULL;
		}
		nl[n] = '\n';
		nl[n + 1] = '\0';
		body = nl;
		*len = n + 1;
	}
	return body;
}
