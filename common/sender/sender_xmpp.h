/*
 * sender_xmpp: what a PUSH of kind KIND_XMPP carries for the APNs and FCM senders (frame.h):
 * compact JSON {"account":"<40 hex>","channel":"<40 hex>"?,"high":true|false} from an ad-hoc
 * registration's node (docs/xmpp.md, "Ad-hoc registration"). Each sender builds its p2-style
 * payload from it.
 */
#ifndef SENDER_XMPP_H
#define SENDER_XMPP_H
#include <stddef.h>

#define SENDER_XMPP_ID_LEN 40	/* lowercase hex SHA-1 */
#define SENDER_XMPP_COLLAPSE 6	/* FCM collapse_key: this many characters of the most specific id */

struct sender_xmpp {
	char account[SENDER_XMPP_ID_LEN + 1];
	char channel[SENDER_XMPP_ID_LEN + 1]; /* "" when not a room registration */
	int high;			      /* last-message-body was non-empty */
};

/* 0, or -1 when data is not that JSON (an account and, if present, a channel of 40 lowercase
 * hex characters; high a boolean, false when absent). */
int sender_xmpp_parse(const char *data, size_t len, struct sender_xmpp *x);
#endif
