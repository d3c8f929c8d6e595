/*
 * frame: the one wire format between pushpipe daemons.
 *
 * A frame is a 16-byte header (magic, version, type, payload length, id) followed by a
 * payload of typed fields: u16 tag, u32 length, value. Every type lists which tags it may
 * carry; frame_parse() checks the whole frame against that list before anyone reads it, so
 * code past it never sees a malformed field. All integers are little-endian.
 * Bump FRAME_VERSION on any change to this file's lists.
 */
#ifndef FRAME_H
#define FRAME_H
#include <stddef.h>
#include <stdint.h>

#define FRAME_MAGIC 0x5070u /* "pP" */
#define FRAME_VERSION 8
#define FRAME_HEADER 16
#define FRAME_FIELD_HEADER 6 /* a field's tag (u16) and length (u32) */
/* Fits the default Unix socket send buffer (wmem_default 212992) with room to spare. */
#define FRAME_MAX (192 * 1024)

enum frame_type {
	FRAME_HELLO = 1,	 /* any → peer: role, instance, pid, platform, app; first frame on a connection */
	FRAME_BATCH = 2,	 /* ingress ⇄ router: frame+ (TAG_FRAME), several frames in one message;
				    never nested. A peer that sends batches also reads them. */
	FRAME_REGISTER = 10,	 /* ingress → router: id, token, device, flags, group*, app set */
	FRAME_UNREGISTER = 11,	 /* ingress → router: token, app set */
	FRAME_SUBSCRIBE = 12,	 /* ingress → router: group, id */
	FRAME_UNSUBSCRIBE = 13,	 /* ingress → router: group, id */
	FRAME_NOTIFY = 14,	 /* ingress → router: id (send_to), data, app set */
	FRAME_REPLY = 15,	 /* router → ingress: status (enum frame_status) */
	FRAME_COUNTS_QUERY = 16, /* ingress → router */
	FRAME_COUNTS = 17,	 /* router → ingress: ios, android, ids */
	FRAME_SENDERS_QUERY = 18, /* ingress → router */
	FRAME_SENDERS = 19,	 /* router → ingress: sender_up*, sender_down* (router_reply_senders) */
	FRAME_PUSH = 20,	 /* router → sender: platform, kind, token, data, attempt */
	FRAME_RESULT = 21,	 /* sender → router: outcome, retry_after, timestamp, reason */
	FRAME_COUNTER = 30,	 /* any → statsd (datagram): (counter, delta)* */
	FRAME_STATS_QUERY = 31,	 /* ingress → statsd: start, end */
	FRAME_STATS_ROWS = 32,	 /* statsd → ingress: row* */
	FRAME_STATS_IMPORT = 33, /* pushctl → statsd: row* (legacy history) → reply */
	/* UWPX registration (ingress-uwpx → router). Replies: FRAME_REPLY, or FRAME_NODES. */
	FRAME_UWPX_CHANNEL = 40,  /* device_id, uri → reply OK once durable (device created or revived) */
	FRAME_UWPX_ACCOUNTS = 41, /* device_id, version, account* (distinct, in order) → FRAME_NODES,
				     or reply NOT_FOUND (no live channel) / BUSY / ERROR */
	FRAME_UWPX_TEST = 42,	  /* device_id → reply after WNS answers: OK (200), FAILED, NOT_FOUND */
	FRAME_NODES = 43,	  /* router → ingress: (account, node, secret, status)* in request order */
	/* XMPP component (ingress-xmpp → router). */
	FRAME_XMPP_PUBLISH = 44,  /* node, secret, domain, msg_count, pending_count, flags (F_HIGH) →
				     reply OK, NOT_FOUND (item-not-found), FORBIDDEN, UNAVAILABLE (wait),
				     BUSY (wait) */
	FRAME_XMPP_REGISTER = 45, /* platform (IOS=apns, ANDROID=fcm), identity, token, domain, account,
				     channel?, app? → FRAME_NODES with one entry (account, node, secret) */
	FRAME_XMPP_UNREGISTER = 46, /* platform, identity → reply OK or NOT_FOUND */
	/* pushctl import-uwpx → router (ROLE_TOOL only): one row of the UWPX push server's database.
	   device_id, uri → OK (device created; an existing device is left as it is);
	   device_id, account, node, secret → OK (stored, or already stored so), NOT_FOUND (no such
	   device), FORBIDDEN (the account has another node here, or the node is taken). */
	FRAME_UWPX_IMPORT = 47,
};

enum frame_tag {
	TAG_ROLE = 1,		/* u32 enum frame_role */
	TAG_INSTANCE = 2,	/* bytes ≤ 64 */
	TAG_PID = 3,		/* u32 */
	TAG_PLATFORM = 4,	/* u32 enum frame_platform */
	TAG_FRAME = 5,		/* bytes: one whole frame (header and payload) inside a FRAME_BATCH */
	TAG_ID = 10,		/* bytes ≤ 256: a Bchat id or closed-group key */
	TAG_TOKEN = 11,		/* bytes ≤ 1024 */
	TAG_DEVICE = 12,	/* u32 enum frame_platform */
	TAG_FLAGS = 13,		/* u32 FRAME_F_* */
	TAG_GROUP = 14,		/* bytes ≤ 256 */
	TAG_DATA = 15,		/* bytes ≤ 128 KiB */
	TAG_STATUS = 20,	/* u32 enum frame_status */
	TAG_OUTCOME = 21,	/* u32 enum frame_outcome */
	TAG_RETRY_AFTER = 22,	/* u64 milliseconds */
	TAG_TIMESTAMP = 23,	/* u64 milliseconds since the epoch */
	TAG_REASON = 24,	/* bytes ≤ 128: provider reason, for logs and metrics */
	TAG_ATTEMPT = 25,	/* u32 */
	TAG_KIND = 26,		/* u32 enum frame_kind */
	TAG_COUNT_IOS = 30,	/* u64 */
	TAG_COUNT_ANDROID = 31, /* u64 */
	TAG_COUNT_IDS = 32,	/* u64 */
	TAG_COUNTER = 40,	/* u32 enum counter_id (counters.h) */
	TAG_DELTA = 41,		/* u64 */
	TAG_START = 42,		/* u64 seconds */
	TAG_END = 43,		/* u64 seconds */
	/* 44 was a packed statistics row (frame version 3); rows are fields now (stats_row.h) */
	TAG_DEVICE_ID = 50,	/* bytes = 64: UWPX device id, lowercase hex */
	TAG_URI = 51,		/* bytes ≤ 2048: WNS channel URI (validated by the ingress) */
	TAG_ACCOUNT = 52,	/* bytes ≤ 64: UWPX account_id (64 hex) or ad-hoc account hash (40 hex) */
	TAG_NODE = 53,		/* bytes ≤ 64: push node, [0-9A-Za-z] */
	TAG_SECRET = 54,	/* bytes ≤ 64: publish secret, [0-9A-Za-z] */
	TAG_DOMAIN = 55,	/* bytes ≤ 1023: the publishing (or registering) XMPP domain, lowercase */
	TAG_VERSION = 56,	/* u32: UWPX message version */
	TAG_MSG_COUNT = 57,	/* u32: summary message-count */
	TAG_PENDING_COUNT = 58, /* u32: summary pending-subscription-count */
	TAG_IDENTITY = 59,	/* bytes = 32: SHA-256(bare JID ‖ 0 ‖ device-id ‖ 0 ‖ room JID) */
	TAG_CHANNEL = 60,	/* bytes ≤ 40: ad-hoc room channel hash */
	TAG_APP = 61,		/* bytes ≤ 32: the app a sender serves (docs/config.md, section apps); absent = "default";
				   in an XMPP registration the app it names; absent = the platform's default app */
	TAG_SENDER_UP = 62,	/* bytes ≤ 96: a sender connected to the router, "apns-sender" or "apns-sender:NAME" */
	TAG_SENDER_DOWN = 63,	/* bytes ≤ 96: a sender the router expects that is not connected */
	/* The app set of the onion service a Bchat request came in on (frame version 8): the app of
	 * each device type, bytes ≤ 32; absent = that platform's default app. A register stores its
	 * device's app, an unregister and a notify touch only tokens of the set's apps. */
	TAG_APP_IOS = 64,
	TAG_APP_ANDROID = 65,
	TAG_APP_HUAWEI = 66,
};

enum frame_role { ROLE_INGRESS = 1, ROLE_ROUTER = 2, ROLE_SENDER = 3, ROLE_STATSD = 4, ROLE_TOOL = 5 };
enum frame_platform { PLATFORM_IOS = 1, PLATFORM_ANDROID = 2, PLATFORM_HUAWEI = 3, PLATFORM_WNS = 4 };
/*
 * What a FRAME_PUSH carries in TAG_DATA, by kind:
 *   KIND_BCHAT      the notify's data (base64 text); the sender builds the Bchat payload.
 *   KIND_WNS        the exact WNS raw body (compact sorted JSON, docs/senders.md); token = URI.
 *   KIND_XMPP       compact JSON {"account":"<40 hex>","channel":"<40 hex>"?,"high":true|false}
 *                   for an ad-hoc FCM/APNs registration; the sender builds the p2-style message.
 */
enum frame_kind { KIND_BCHAT = 1, KIND_WNS = 2, KIND_XMPP = 3 };
enum frame_status {
	STATUS_OK = 0,
	STATUS_NOT_FOUND = 1,
	STATUS_BUSY = 2,
	STATUS_ERROR = 3,
	STATUS_FORBIDDEN = 4,	/* XMPP publish: wrong secret */
	STATUS_UNAVAILABLE = 5, /* XMPP publish: WNS channel dead (answer recipient-unavailable, wait) */
	STATUS_FAILED = 6,	/* UWPX test push: WNS refused it */
	STATUS_LIMIT = 7,	/* register/subscribe: a registry cap, or the map nearly full (docs/registry.md) */
};
enum frame_outcome {
	OUTCOME_DELIVERED = 1,
	OUTCOME_TOKEN_DEAD = 2,
	OUTCOME_RETRY = 3,
	OUTCOME_MESSAGE_FAILED = 4,
	OUTCOME_CREDENTIALS = 5,
	OUTCOME_TOKEN_SUSPECT = 6,
};
#define FRAME_F_LEGACY_GROUPS_ONLY 0x1u
#define FRAME_F_HIGH 0x2u /* XMPP publish: last-message-body was non-empty */

struct frame {
	uint8_t type;
	uint8_t version;
	uint64_t id;
	const uint8_t *payload;
	uint32_t len;
};

struct frame_field {
	uint16_t tag;
	uint32_t len;
	const uint8_t *val;
};

/* A writer over a caller-owned buffer of FRAME_MAX bytes; errors stick until frame_begin. */
struct frame_writer {
	uint8_t *buf;
	size_t len;
	int overflow;
};

/* Checks header, field structure and the type's field list; 0 when buf is a valid frame. */
int frame_parse(const uint8_t *buf, size_t len, struct frame *f, const char **why);
/* First field with this tag; 0 when found. */
int frame_get(const struct frame *f, uint16_t tag, struct frame_field *out);
/* Iterates every field in order: *pos starts at 0; returns 0 while there is one. */
int frame_next(const struct frame *f, size_t *pos, struct frame_field *out);
/* The frames of a FRAME_BATCH in order: *pos starts at 0. Returns 1 with the next one checked
 * by frame_parse() into *inner (its bytes in *item), 0 after the last, -1 (with a reason) when
 * an inner frame is malformed or is itself a batch. */
int frame_batch_next(const struct frame *batch, size_t *pos, struct frame_field *item, struct frame *inner,
		     const char **why);
/* Typed getters: return the value, or dflt when the tag is absent. */
uint32_t frame_u32(const struct frame *f, uint16_t tag, uint32_t dflt);
uint64_t frame_u64(const struct frame *f, uint16_t tag, uint64_t dflt);
uint32_t frame_field_u32(const struct frame_field *fl);
uint64_t frame_field_u64(const struct frame_field *fl);

void frame_begin(struct frame_writer *w, uint8_t *buf, uint8_t type, uint64_t id);
void frame_put_u32(struct frame_writer *w, uint16_t tag, uint32_t v);
void frame_put_u64(struct frame_writer *w, uint16_t tag, uint64_t v);
void frame_put_bytes(struct frame_writer *w, uint16_t tag, const void *p, size_t n);
/* Finishes the header; returns the frame length, or -1 when a field did not fit. */
long frame_end(struct frame_writer *w);

/* Frames gathered into one FRAME_BATCH message, in a caller-owned buffer of FRAME_MAX bytes.
 * Zero-initialised it is empty. */
struct frame_batch {
	struct frame_writer w;
	size_t n; /* frames in it */
};
/* Adds a copy of a frame (the first one starts the batch in buf); where the copy is, or NULL
 * when it does not fit (nothing added). */
const uint8_t *frame_batch_add(struct frame_batch *b, uint8_t *buf, const uint8_t *frame, size_t len);
/* The size of the message if it ended now (0 when empty). */
size_t frame_batch_size(const struct frame_batch *b);
/* Ends the batch and empties it: the message to send in *msg — the batch, or the frame alone
 * when it is the only one — and its length; 0 when it was empty. The bytes stay in the buffer
 * until the next frame_batch_add(). */
size_t frame_batch_end(struct frame_batch *b, const uint8_t **msg);
const char *frame_type_name(uint8_t type);
#endif
