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
	CTR_MAX
};

/* Connects the datagram socket to statsd's (statsd may come and go; failures are silent). */
void counters_init(const char *statsd_socket_path);
void counter_add(enum counter_id id, uint64_t delta);
/* Sends the pending sums in one datagram, if any; call from the event loop. */
void counters_flush(void);
/* The counter's metric name ("messages_total"…), or NULL for an unknown id. */
const char *counter_name(uint32_t id);
#endif
