/*
 * counters: the sending half of the statistics path (see counters.h). Holds nothing but
 * pending sums; statsd is the only reader.
 */
#include "counters.h"
#include "frame.h"
#include "sock.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/un.h>
#include <unistd.h>

static uint64_t pending[CTR_MAX];
static int have_pending;
/* HTTP answers by route and status (100..599), histogram buckets (+ the sum), gauges. */
static uint64_t pending_http[HTTP_ROUTE_MAX][500];
static int have_http;
static uint64_t pending_hist[HIST_MAX][HIST_BOUNDS + 2];
static int have_hist;
static uint64_t gauge_val[GAUGE_MAX], gauge_sent_val[GAUGE_MAX], gauge_sent_ms;
static unsigned char gauge_is_set[GAUGE_MAX];
static int gauge_any, gauge_busy;
static uint32_t source = 0xffffffffu; /* found from the program name on first use */
static int ctr_fd = -1;
static char ctr_path[108];
static char ctr_instance[65];

static const char *const names[CTR_MAX] = {
	[CTR_MESSAGES_TOTAL] = "messages_total",
	[CTR_MESSAGES_ONE_TO_ONE] = "messages_one_to_one",
	[CTR_MESSAGES_CLOSED_GROUP] = "messages_closed_group",
	[CTR_MESSAGES_UNTRACKED] = "messages_untracked",
	[CTR_IOS_DELIVERED] = "ios_delivered",
	[CTR_ANDROID_DELIVERED] = "android_delivered",
	[CTR_IOS_FAILED] = "ios_failed",
	[CTR_ANDROID_FAILED] = "android_failed",
	[CTR_MESSAGES_OVERSIZED] = "messages_oversized",
	[CTR_ONION_REQUESTS] = "onion_requests",
	[CTR_ONION_BAD_REQUESTS] = "onion_bad_requests",
	[CTR_ONION_DECRYPT_FAILED] = "onion_decrypt_failed",
	[CTR_REGISTRATIONS] = "registrations",
	[CTR_UNREGISTRATIONS] = "unregistrations",
	[CTR_JOBS_QUEUED] = "jobs_queued",
	[CTR_JOBS_RETRIED] = "jobs_retried",
	[CTR_JOBS_EXPIRED] = "jobs_expired",
	[CTR_JOBS_FAILED] = "jobs_failed",
	[CTR_TOKENS_DELETED] = "tokens_deleted",
	[CTR_BUSY_REJECTS] = "busy_rejects",
	[CTR_REDUCED_PAYLOADS] = "reduced_payloads",
	[CTR_HUAWEI_SKIPPED] = "huawei_skipped",
	[CTR_WNS_DELIVERED] = "wns_delivered",
	[CTR_WNS_FAILED] = "wns_failed",
	[CTR_UWPX_REQUESTS] = "uwpx_requests",
	[CTR_UWPX_ERRORS] = "uwpx_errors",
	[CTR_UWPX_TEST_PUSHES] = "uwpx_test_pushes",
	[CTR_XMPP_PUBLISHES] = "xmpp_publishes",
	[CTR_XMPP_PUBLISHES_REJECTED] = "xmpp_publishes_rejected",
	[CTR_XMPP_REGISTRATIONS] = "xmpp_registrations",
	[CTR_XMPP_RECONNECTS] = "xmpp_reconnects",
	[CTR_WNS_CHANNELS_DEAD] = "wns_channels_dead",
	[CTR_WNS_THROTTLED] = "wns_throttled",
	[CTR_WNS_DROPPED] = "wns_dropped",
	[CTR_WNS_TOKEN_REFRESHES] = "wns_token_refreshes",
	[CTR_UWPX_DEVICES_EXPIRED] = "uwpx_devices_expired",
	[CTR_GUARD_TRIPS] = "guard_trips",
	[CTR_XMPP_FCM_DELIVERED] = "xmpp_fcm_delivered",
	[CTR_XMPP_APNS_DELIVERED] = "xmpp_apns_delivered",
	[CTR_WNS_SUPERSEDED] = "wns_superseded",
	[CTR_RESULTS_IGNORED] = "results_ignored",
	[CTR_REGISTRY_LIMITS] = "registry_limits",
};

const char *counter_name(uint32_t id)
{
	return id > 0 && id < CTR_MAX ? names[id] : NULL;
}

const uint64_t hist_bounds_us[HIST_BOUNDS] = {500,	   1000,    2500,    5000,     10000,    25000,    50000,    100000,
					      250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000};

static const char *const route_names[HTTP_ROUTE_MAX] = {
	[HTTP_ROUTE_UNKNOWN] = "unknown",
	[HTTP_ROUTE_ONION] = "onion",
	[HTTP_ROUTE_STATS] = "get_statistics_data",
	[HTTP_ROUTE_APNS] = "apns",
	[HTTP_ROUTE_FCM] = "fcm",
	[HTTP_ROUTE_WNS] = "wns",
	[HTTP_ROUTE_HMS] = "hms",
};
static const char *const hist_names[HIST_MAX] = {
	[HIST_ONION_ROUTER_REPLY] = "onion_router_reply",
	[HIST_JOB_PROVIDER_ANSWER] = "job_provider_answer",
};
static const char *const gauge_names[GAUGE_MAX] = {
	[GAUGE_OUTBOX_JOBS] = "outbox_jobs",
	[GAUGE_JOBS_IN_FLIGHT] = "jobs_in_flight",
	[GAUGE_PROVIDER_REQUESTS] = "provider_requests",
	[GAUGE_ROUTER_CONNECTED] = "router_connected",
	[GAUGE_MAP_USED_BYTES] = "registry_map_used_bytes",
	[GAUGE_MAP_SIZE_BYTES] = "registry_map_size_bytes",
	[GAUGE_PROVIDER_PAUSED] = "provider_paused",
};
/* The program names of the daemons, as installed (bin/<name>). */
static const char *const source_names[SRC_MAX] = {
	[SRC_OTHER] = "other",
	[SRC_ROUTER] = "router",
	[SRC_APNS_SENDER] = "apns-sender",
	[SRC_FCM_SENDER] = "fcm-sender",
	[SRC_WNS_SENDER] = "wns-sender",
	[SRC_INGRESS_ONION] = "ingress-onion",
	[SRC_INGRESS_UWPX] = "ingress-uwpx",
	[SRC_INGRESS_XMPP] = "ingress-xmpp",
	[SRC_STATSD] = "statsd",
	[SRC_HMS_SENDER] = "hms-sender",
};


const char *http_route_name(uint32_t route)
{
	return route < HTTP_ROUTE_MAX ? route_names[route] : NULL;
}

const char *hist_name(uint32_t h)
{
	return h > 0 && h < HIST_MAX ? hist_names[h] : NULL;
}

const char *gauge_name(uint32_t g)
{
	return g > 0 && g < GAUGE_MAX ? gauge_names[g] : NULL;
}

const char *counter_source_name(uint32_t src)
{
	return src < SRC_MAX ? source_names[src] : NULL;
}

uint64_t counters_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void counters_init(const char *statsd_socket_path)
{
	strncpy(ctr_path, statsd_socket_path, sizeof ctr_path - 1);
	if (ctr_fd < 0)
		ctr_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

void counters_set_instance(const char *name)
{
	snprintf(ctr_instance, sizeof ctr_instance, "%s", name ? name : "");
}

static int ctr_muted;

void counters_mute(int on)
{
	__atomic_store_n(&ctr_muted, on, __ATOMIC_RELAXED);
}

void counter_add(enum counter_id id, uint64_t delta)
{
	/* Atomic: the onion ingress counts from several HTTP threads. */
	if (id > 0 && id < CTR_MAX && !__atomic_load_n(&ctr_muted, __ATOMIC_RELAXED)) {
		__atomic_fetch_add(&pending[id], delta, __ATOMIC_RELAXED);
		__atomic_store_n(&have_pending, 1, __ATOMIC_RELAXED);
	}
}

void counter_http(enum http_route route, unsigned status)
{
	if ((unsigned)route < HTTP_ROUTE_MAX && status >= 100 && status < 600) {
		__atomic_fetch_add(&pending_http[route][status - 100], 1, __ATOMIC_RELAXED);
		__atomic_store_n(&have_http, 1, __ATOMIC_RELAXED);
	}
}

void histogram_observe(enum hist_id h, uint64_t usec)
{
	int b = 0;
	if ((unsigned)h == 0 || (unsigned)h >= HIST_MAX)
		return;
	while (b < HIST_BOUNDS && usec > hist_bounds_us[b])
		b++;
	__atomic_fetch_add(&pending_hist[h][b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&pending_hist[h][HIST_BOUNDS + 1], usec, __ATOMIC_RELAXED);
	__atomic_store_n(&have_hist, 1, __ATOMIC_RELAXED);
}

void gauge_set(enum gauge_id g, uint64_t value)
{
	if ((unsigned)g == 0 || (unsigned)g >= GAUGE_MAX)
		return;
	__atomic_store_n(&gauge_val[g], value, __ATOMIC_RELAXED);
	__atomic_store_n(&gauge_is_set[g], 1, __ATOMIC_RELAXED);
	__atomic_store_n(&gauge_any, 1, __ATOMIC_RELAXED);
}

static uint32_t my_source(void)
{
	if (source == 0xffffffffu) {
		source = SRC_OTHER;
		for (uint32_t i = 1; i < SRC_MAX; i++)
			if (strcmp(program_invocation_short_name, source_names[i]) == 0)
				source = i;
	}
	return source;
}

/* Batches (id, value) pairs into datagrams that stay well below a socket buffer. */
#define BATCH_PAIRS 160
struct batch {
	uint8_t buf[FRAME_HEADER + BATCH_PAIRS * 24 + 64 + 6 + 64]; /* + the instance field */
	struct frame_writer w;
	int n;
};

static void batch_begin(struct batch *b)
{
	frame_begin(&b->w, b->buf, FRAME_COUNTER, 0);
	if (ctr_instance[0])
		frame_put_bytes(&b->w, TAG_INSTANCE, ctr_instance, strlen(ctr_instance));
	b->n = 0;
}

static void batch_send(struct batch *b)
{
	struct sockaddr_un sa;
	long n = frame_end(&b->w);

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, ctr_path, sizeof ctr_path);
	/* Dropped on failure: counting must never make a daemon wait (design.md). */
	if (b->n > 0 && n > 0)
		(void)sendto(ctr_fd, b->buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof sa);
	batch_begin(b);
}

static void batch_put(struct batch *b, uint32_t id, uint64_t v)
{
	frame_put_u32(&b->w, TAG_COUNTER, id);
	frame_put_u64(&b->w, TAG_DELTA, v);
	if (++b->n == BATCH_PAIRS)
		batch_send(b);
}

static uint64_t mono_ms_now(void)
{
	return counters_now_us() / 1000u;
}

/* Every set gauge, when one changed or 2 s after the last report (statsd forgets a daemon's
 * gauges when they stop coming). One thread at a time; another one skips. */
static void put_gauges(struct batch *b)
{
	uint64_t now;
	int changed = 0;

	if (!__atomic_load_n(&gauge_any, __ATOMIC_RELAXED) || __atomic_exchange_n(&gauge_busy, 1, __ATOMIC_ACQUIRE))
		return;
	now = mono_ms_now();
	for (int g = 1; g < GAUGE_MAX; g++)
		changed |= __atomic_load_n(&gauge_is_set[g], __ATOMIC_RELAXED) && __atomic_load_n(&gauge_val[g], __ATOMIC_RELAXED) != gauge_sent_val[g];
	if (changed || now >= gauge_sent_ms + 2000) {
		for (int g = 1; g < GAUGE_MAX; g++) {
			if (!__atomic_load_n(&gauge_is_set[g], __ATOMIC_RELAXED))
				continue;
			gauge_sent_val[g] = __atomic_load_n(&gauge_val[g], __ATOMIC_RELAXED);
			batch_put(b, METRIC_GAUGE_ID(my_source(), g), gauge_sent_val[g]);
		}
		gauge_sent_ms = now;
	}
	__atomic_store_n(&gauge_busy, 0, __ATOMIC_RELEASE);
}

void counters_flush(void)
{
	struct batch b; /* on the stack: several threads may flush */
	int any = __atomic_exchange_n(&have_pending, 0, __ATOMIC_RELAXED);
	int http = __atomic_exchange_n(&have_http, 0, __ATOMIC_RELAXED);
	int hist = __atomic_exchange_n(&have_hist, 0, __ATOMIC_RELAXED);

	if (ctr_fd < 0 || ctr_path[0] == '\0')
		return;
	batch_begin(&b);
	for (int i = 1; any && i < CTR_MAX; i++) {
		uint64_t v = __atomic_exchange_n(&pending[i], 0, __ATOMIC_RELAXED);
		if (v != 0)
			batch_put(&b, (uint32_t)i, v);
	}
	for (int r = 0; http && r < HTTP_ROUTE_MAX; r++)
		for (int st = 0; st < 500; st++) {
			uint64_t v = __atomic_exchange_n(&pending_http[r][st], 0, __ATOMIC_RELAXED);
			if (v != 0)
				batch_put(&b, METRIC_HTTP_ID(r, st + 100), v);
		}
	for (int h = 1; hist && h < HIST_MAX; h++)
		for (int k = 0; k < HIST_BOUNDS + 2; k++) {
			uint64_t v = __atomic_exchange_n(&pending_hist[h][k], 0, __ATOMIC_RELAXED);
			if (v != 0)
				batch_put(&b, METRIC_HIST_ID(h, k == HIST_BOUNDS + 1 ? HIST_SUM_BUCKET : (uint32_t)k), v);
		}
	put_gauges(&b);
	batch_send(&b);
}
