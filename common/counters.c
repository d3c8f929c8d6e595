/*
 * counters: the sending half of the statistics path (see counters.h). Holds nothing but
 * pending sums; statsd is the only reader.
 */
#include "counters.h"
#include "frame.h"
#include "sock.h"
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static uint64_t pending[CTR_MAX];
static int have_pending;
static int ctr_fd = -1;
static char ctr_path[108];

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
};

const char *counter_name(uint32_t id)
{
	return id > 0 && id < CTR_MAX ? names[id] : NULL;
}

void counters_init(const char *statsd_socket_path)
{
	strncpy(ctr_path, statsd_socket_path, sizeof ctr_path - 1);
	if (ctr_fd < 0)
		ctr_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

void counter_add(enum counter_id id, uint64_t delta)
{
	/* Atomic: the onion ingress counts from several HTTP threads. */
	if (id > 0 && id < CTR_MAX) {
		__atomic_fetch_add(&pending[id], delta, __ATOMIC_RELAXED);
		__atomic_store_n(&have_pending, 1, __ATOMIC_RELAXED);
	}
}

void counters_flush(void)
{
	uint8_t buf[FRAME_HEADER + CTR_MAX * 26]; /* on the stack: several threads may flush */
	struct frame_writer w;
	struct sockaddr_un sa;
	long n;

	if (!__atomic_exchange_n(&have_pending, 0, __ATOMIC_RELAXED) || ctr_fd < 0 || ctr_path[0] == '\0')
		return;
	frame_begin(&w, buf, FRAME_COUNTER, 0);
	for (int i = 1; i < CTR_MAX; i++) {
		uint64_t v = __atomic_exchange_n(&pending[i], 0, __ATOMIC_RELAXED);
		if (v == 0)
			continue;
		frame_put_u32(&w, TAG_COUNTER, (uint32_t)i);
		frame_put_u64(&w, TAG_DELTA, v);
	}
	n = frame_end(&w);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, ctr_path, sizeof ctr_path);
	/* Dropped on failure: counting must never make a daemon wait (design.md). */
	if (n > 0)
		(void)sendto(ctr_fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof sa);
}
