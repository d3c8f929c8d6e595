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
#define FRAME_VERSION 1
#define FRAME_HEADER 16
/* Fits the default Unix socket send buffer (wmem_default 212992) with room to spare. */
#define FRAME_MAX (192 * 1024)

enum frame_type {
	FRAME_HELLO = 1,	 /* any → peer: role, instance, pid; first frame on a connection */
	FRAME_REGISTER = 10,	 /* ingress → router: id, token, device, flags, group* */
	FRAME_UNREGISTER = 11,	 /* ingress → router: token */
	FRAME_SUBSCRIBE = 12,	 /* ingress → router: group, id */
	FRAME_UNSUBSCRIBE = 13,	 /* ingress → router: group, id */
	FRAME_NOTIFY = 14,	 /* ingress → router: id (send_to), data */
	FRAME_REPLY = 15,	 /* router → ingress: status (enum frame_status) */
	FRAME_COUNTS_QUERY = 16, /* ingress → router */
	FRAME_COUNTS = 17,	 /* router → ingress: ios, android, ids */
	FRAME_PUSH = 20,	 /* router → sender: platform, kind, token, data, attempt */
	FRAME_RESULT = 21,	 /* sender → router: outcome, retry_after, timestamp, reason */
	FRAME_COUNTER = 30,	 /* any → statsd (datagram): (counter, delta)* */
	FRAME_STATS_QUERY = 31,	 /* ingress → statsd: start, end */
	FRAME_STATS_ROWS = 32,	 /* statsd → ingress: row* */
};

enum frame_tag {
	TAG_ROLE = 1,		/* u32 enum frame_role */
	TAG_INSTANCE = 2,	/* bytes ≤ 64 */
	TAG_PID = 3,		/* u32 */
	TAG_PLATFORM = 4,	/* u32 enum frame_platform */
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
	TAG_ROW = 44,		/* bytes: one packed statistics row (stats_row.h) */
};

enum frame_role { ROLE_INGRESS = 1, ROLE_ROUTER = 2, ROLE_SENDER = 3, ROLE_STATSD = 4, ROLE_TOOL = 5 };
enum frame_platform { PLATFORM_IOS = 1, PLATFORM_ANDROID = 2, PLATFORM_HUAWEI = 3, PLATFORM_WNS = 4 };
enum frame_kind { KIND_BCHAT = 1 };
enum frame_status { STATUS_OK = 0, STATUS_NOT_FOUND = 1, STATUS_BUSY = 2, STATUS_ERROR = 3 };
enum frame_outcome {
	OUTCOME_DELIVERED = 1,
	OUTCOME_TOKEN_DEAD = 2,
	OUTCOME_RETRY = 3,
	OUTCOME_MESSAGE_FAILED = 4,
	OUTCOME_CREDENTIALS = 5,
	OUTCOME_TOKEN_SUSPECT = 6,
};
#define FRAME_F_LEGACY_GROUPS_ONLY 0x1u

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
const char *frame_type_name(uint8_t type);
#endif
