/*
 * frame: encode and validate the typed frames daemons exchange (see frame.h).
 * Trusts nothing: a frame from a peer daemon is checked completely, field by field,
 * against the per-type field list before any getter runs.
 */
#include "frame.h"
#include <string.h>

enum field_kind { K_U32, K_U64, K_BYTES };

struct tag_rule {
	uint16_t tag;
	uint8_t kind;
	uint32_t max;
};

static const struct tag_rule tag_rules[] = {
	{TAG_ROLE, K_U32, 4},	       {TAG_INSTANCE, K_BYTES, 64},	 {TAG_PID, K_U32, 4},
	{TAG_FRAME, K_BYTES, FRAME_MAX - FRAME_HEADER - FRAME_FIELD_HEADER},
	{TAG_PLATFORM, K_U32, 4},      {TAG_ID, K_BYTES, 256},		 {TAG_TOKEN, K_BYTES, 1024},
	{TAG_DEVICE, K_U32, 4},	       {TAG_FLAGS, K_U32, 4},		 {TAG_GROUP, K_BYTES, 256},
	{TAG_DATA, K_BYTES, 128 * 1024}, {TAG_STATUS, K_U32, 4},	 {TAG_OUTCOME, K_U32, 4},
	{TAG_RETRY_AFTER, K_U64, 8},   {TAG_TIMESTAMP, K_U64, 8},	 {TAG_REASON, K_BYTES, 128},
	{TAG_ATTEMPT, K_U32, 4},       {TAG_KIND, K_U32, 4},		 {TAG_COUNT_IOS, K_U64, 8},
	{TAG_COUNT_ANDROID, K_U64, 8}, {TAG_COUNT_IDS, K_U64, 8},	 {TAG_COUNTER, K_U32, 4},
	{TAG_DELTA, K_U64, 8},	       {TAG_START, K_U64, 8},		 {TAG_END, K_U64, 8},
	{TAG_DEVICE_ID, K_BYTES, 64},	 {TAG_URI, K_BYTES, 2048},
	{TAG_ACCOUNT, K_BYTES, 64},    {TAG_NODE, K_BYTES, 64},		 {TAG_SECRET, K_BYTES, 64},
	{TAG_DOMAIN, K_BYTES, 1023},   {TAG_VERSION, K_U32, 4},		 {TAG_MSG_COUNT, K_U32, 4},
	{TAG_PENDING_COUNT, K_U32, 4}, {TAG_IDENTITY, K_BYTES, 32},	 {TAG_CHANNEL, K_BYTES, 40},
	{TAG_APP, K_BYTES, 32},	       {TAG_SENDER_UP, K_BYTES, 96},	 {TAG_SENDER_DOWN, K_BYTES, 96},
	{TAG_APP_IOS, K_BYTES, 32},    {TAG_APP_ANDROID, K_BYTES, 32},	 {TAG_APP_HUAWEI, K_BYTES, 32},
};

/* Per type: allowed tags; R = required (exactly once), O = optional (at most once), M = many,
 * P = one or more. */
enum { R = 1, O = 2, M = 3, P = 4 };
struct type_rule {
	uint8_t type;
	const char *name;
	struct {
		uint16_t tag;
		uint8_t use;
	} f[8];
};

static const struct type_rule type_rules[] = {
	{FRAME_HELLO, "hello", {{TAG_ROLE, R}, {TAG_INSTANCE, O}, {TAG_PID, O}, {TAG_PLATFORM, O}, {TAG_APP, O}}},
	{FRAME_BATCH, "batch", {{TAG_FRAME, P}}},
	{FRAME_REGISTER, "register",
	 {{TAG_ID, R}, {TAG_TOKEN, R}, {TAG_DEVICE, R}, {TAG_FLAGS, O}, {TAG_GROUP, M}, {TAG_APP_IOS, O},
	  {TAG_APP_ANDROID, O}, {TAG_APP_HUAWEI, O}}},
	{FRAME_UNREGISTER, "unregister", {{TAG_TOKEN, R}, {TAG_APP_IOS, O}, {TAG_APP_ANDROID, O}, {TAG_APP_HUAWEI, O}}},
	{FRAME_SUBSCRIBE, "subscribe", {{TAG_GROUP, R}, {TAG_ID, R}}},
	{FRAME_UNSUBSCRIBE, "unsubscribe", {{TAG_GROUP, R}, {TAG_ID, R}}},
	{FRAME_NOTIFY, "notify",
	 {{TAG_ID, R}, {TAG_DATA, R}, {TAG_FLAGS, O}, {TAG_APP_IOS, O}, {TAG_APP_ANDROID, O}, {TAG_APP_HUAWEI, O}}},
	{FRAME_REPLY, "reply", {{TAG_STATUS, R}}},
	{FRAME_COUNTS_QUERY, "counts-query", {{0, 0}}},
	{FRAME_COUNTS, "counts", {{TAG_COUNT_IOS, R}, {TAG_COUNT_ANDROID, R}, {TAG_COUNT_IDS, R}}},
	{FRAME_SENDERS_QUERY, "senders-query", {{0, 0}}},
	{FRAME_SENDERS, "senders", {{TAG_SENDER_UP, M}, {TAG_SENDER_DOWN, M}}},
	{FRAME_PUSH, "push",
	 {{TAG_PLATFORM, R}, {TAG_KIND, R}, {TAG_TOKEN, R}, {TAG_DATA, R}, {TAG_ATTEMPT, O}}},
	{FRAME_RESULT, "result",
	 {{TAG_OUTCOME, R}, {TAG_RETRY_AFTER, O}, {TAG_TIMESTAMP, O}, {TAG_REASON, O}, {TAG_STATUS, O}}},
	{FRAME_COUNTER, "counter", {{TAG_COUNTER, M}, {TAG_DELTA, M}, {TAG_INSTANCE, O}}},
	{FRAME_STATS_QUERY, "stats-query", {{TAG_START, O}, {TAG_END, O}}},
	/* Rows are runs of these fields (stats_row.h), which checks their order. */
	{FRAME_STATS_ROWS, "stats-rows", {{TAG_START, M}, {TAG_END, M}, {TAG_COUNTER, M}, {TAG_DELTA, M}}},
	{FRAME_STATS_IMPORT, "stats-import", {{TAG_START, M}, {TAG_END, M}, {TAG_COUNTER, M}, {TAG_DELTA, M}}},
	{FRAME_UWPX_CHANNEL, "uwpx-channel", {{TAG_DEVICE_ID, R}, {TAG_URI, R}}},
	{FRAME_UWPX_ACCOUNTS, "uwpx-accounts", {{TAG_DEVICE_ID, R}, {TAG_VERSION, O}, {TAG_ACCOUNT, M}}},
	{FRAME_UWPX_TEST, "uwpx-test", {{TAG_DEVICE_ID, R}}},
	{FRAME_UWPX_IMPORT, "uwpx-import",
	 {{TAG_DEVICE_ID, R}, {TAG_URI, O}, {TAG_ACCOUNT, O}, {TAG_NODE, O}, {TAG_SECRET, O}}},
	{FRAME_NODES, "nodes", {{TAG_ACCOUNT, M}, {TAG_NODE, M}, {TAG_SECRET, M}, {TAG_STATUS, M}}},
	{FRAME_XMPP_PUBLISH, "xmpp-publish",
	 {{TAG_NODE, R}, {TAG_SECRET, R}, {TAG_DOMAIN, R}, {TAG_MSG_COUNT, O}, {TAG_PENDING_COUNT, O},
	  {TAG_FLAGS, O}}},
	{FRAME_XMPP_REGISTER, "xmpp-register",
	 {{TAG_PLATFORM, R}, {TAG_IDENTITY, R}, {TAG_TOKEN, R}, {TAG_DOMAIN, R}, {TAG_ACCOUNT, R},
	  {TAG_CHANNEL, O}, {TAG_APP, O}}},
	{FRAME_XMPP_UNREGISTER, "xmpp-unregister", {{TAG_PLATFORM, R}, {TAG_IDENTITY, R}}},
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

static const struct tag_rule *tag_rule(uint16_t tag)
{
	for (size_t i = 0; i < sizeof tag_rules / sizeof tag_rules[0]; i++)
		if (tag_rules[i].tag == tag)
			return &tag_rules[i];
	return NULL;
}

static const struct type_rule *type_rule(uint8_t type)
{
	for (size_t i = 0; i < sizeof type_rules / sizeof type_rules[0]; i++)
		if (type_rules[i].type == type)
			return &type_rules[i];
	return NULL;
}

const char *frame_type_name(uint8_t type)
{
	const struct type_rule *t = type_rule(type);
	return t ? t->name : "unknown";
}

int frame_parse(const uint8_t *buf, size_t len, struct frame *f, const char **why)
{
	const struct type_rule *tr;
	unsigned seen[8] = {0};
	size_t pos;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	if (len < FRAME_HEADER || len > FRAME_MAX)
		return *why = "bad frame size", -1;
	if (rd16(buf) != FRAME_MAGIC)
		return *why = "bad magic", -1;
	if (buf[2] != FRAME_VERSION)
		return *why = "unsupported frame version", -1;
	f->version = buf[2];
	f->type = buf[3];
	f->len = rd32(buf + 4);
	f->id = rd64(buf + 8);
	f->payload = buf + FRAME_HEADER;
	if ((uint64_t)f->len != (uint64_t)len - FRAME_HEADER)
		return *why = "payload length mismatch", -1;
	if ((tr = type_rule(f->type)) == NULL)
		return *why = "unknown frame type", -1;
	for (pos = 0; pos < f->len;) {
		const struct tag_rule *rule;
		uint16_t tag;
		uint32_t flen;
		size_t i;

		if (f->len - pos < FRAME_FIELD_HEADER)
			return *why = "truncated field header", -1;
		tag = rd16(f->payload + pos);
		flen = rd32(f->payload + pos + 2);
		pos += FRAME_FIELD_HEADER;
		if (flen > f->len - pos)
			return *why = "field overruns frame", -1;
		if ((rule = tag_rule(tag)) == NULL)
			return *why = "unknown field tag", -1;
		if ((rule->kind == K_U32 && flen != 4) || (rule->kind == K_U64 && flen != 8) ||
		    (rule->kind == K_BYTES && flen > rule->max))
			return *why = "bad field length", -1;
		for (i = 0; i < 8 && tr->f[i].tag != 0; i++)
			if (tr->f[i].tag == tag)
				break;
		if (i == 8 || tr->f[i].tag == 0)
			return *why = "field not allowed for this frame type", -1;
		if (tr->f[i].use != M && tr->f[i].use != P && seen[i] > 0)
			return *why = "repeated field", -1;
		seen[i]++;
		pos += flen;
	}
	for (size_t i = 0; i < 8 && tr->f[i].tag != 0; i++)
		if ((tr->f[i].use == R || tr->f[i].use == P) && seen[i] == 0)
			return *why = "required field missing", -1;
	return 0;
}

int frame_next(const struct frame *f, size_t *pos, struct frame_field *out)
{
	if (*pos + FRAME_FIELD_HEADER > f->len)
		return -1;
	out->tag = rd16(f->payload + *pos);
	out->len = rd32(f->payload + *pos + 2);
	out->val = f->payload + *pos + FRAME_FIELD_HEADER;
	*pos += FRAME_FIELD_HEADER + (size_t)out->len;
	return 0;
}

int frame_batch_next(const struct frame *batch, size_t *pos, struct frame_field *item, struct frame *inner,
		     const char **why)
{
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	if (batch->type != FRAME_BATCH)
		return *why = "not a batch", -1;
	/* frame_parse() has checked the batch: every field is a TAG_FRAME inside the payload. */
	if (frame_next(batch, pos, item) < 0)
		return 0;
	if (frame_parse(item->val, item->len, inner, why) < 0)
		return -1;
	if (inner->type == FRAME_BATCH)
		return *why = "batch inside a batch", -1;
	return 1;
}

int frame_get(const struct frame *f, uint16_t tag, struct frame_field *out)
{
	size_t pos = 0;
	while (frame_next(f, &pos, out) == 0)
		if (out->tag == tag)
			return 0;
	return -1;
}

uint32_t frame_field_u32(const struct frame_field *fl)
{
	return fl->len == 4 ? rd32(fl->val) : 0;
}

uint64_t frame_field_u64(const struct frame_field *fl)
{
	return fl->len == 8 ? rd64(fl->val) : 0;
}

uint32_t frame_u32(const struct frame *f, uint16_t tag, uint32_t dflt)
{
	struct frame_field fl;
	return frame_get(f, tag, &fl) == 0 ? frame_field_u32(&fl) : dflt;
}

uint64_t frame_u64(const struct frame *f, uint16_t tag, uint64_t dflt)
{
	struct frame_field fl;
	return frame_get(f, tag, &fl) == 0 ? frame_field_u64(&fl) : dflt;
}

void frame_begin(struct frame_writer *w, uint8_t *buf, uint8_t type, uint64_t id)
{
	w->buf = buf;
	w->len = FRAME_HEADER;
	w->overflow = 0;
	wr16(buf, FRAME_MAGIC);
	buf[2] = FRAME_VERSION;
	buf[3] = type;
	wr64(buf + 8, id);
}

void frame_put_bytes(struct frame_writer *w, uint16_t tag, const void *p, size_t n)
{
	const struct tag_rule *rule = tag_rule(tag);
	/* The writer keeps the reader's rules, so no daemon ever sends what its peer must refuse. */
	if (w->overflow || rule == NULL || n > rule->max || n > FRAME_MAX || w->len + FRAME_FIELD_HEADER + n > FRAME_MAX) {
		w->overflow = 1;
		return;
	}
	wr16(w->buf + w->len, tag);
	wr32(w->buf + w->len + 2, (uint32_t)n);
	if (n > 0)
		memcpy(w->buf + w->len + FRAME_FIELD_HEADER, p, n);
	w->len += FRAME_FIELD_HEADER + n;
}

void frame_put_u32(struct frame_writer *w, uint16_t tag, uint32_t v)
{
	uint8_t b[4];
	wr32(b, v);
	frame_put_bytes(w, tag, b, 4);
}

void frame_put_u64(struct frame_writer *w, uint16_t tag, uint64_t v)
{
	uint8_t b[8];
	wr64(b, v);
	frame_put_bytes(w, tag, b, 8);
}

long frame_end(struct frame_writer *w)
{
	if (w->overflow)
		return -1;
	wr32(w->buf + 4, (uint32_t)(w->len - FRAME_HEADER));
	return (long)w->len;
}

const uint8_t *frame_batch_add(struct frame_batch *b, uint8_t *buf, const uint8_t *frame, size_t len)
{
	size_t before;

	if (b->n == 0)
		frame_begin(&b->w, buf, FRAME_BATCH, 0);
	before = b->w.len;
	frame_put_bytes(&b->w, TAG_FRAME, frame, len);
	if (b->w.overflow) {
		b->w.overflow = 0;
		b->w.len = before;
		return NULL;
	}
	b->n++;
	return b->w.buf + b->w.len - len;
}

size_t frame_batch_size(const struct frame_batch *b)
{
	return b->n ? b->w.len : 0;
}

size_t frame_batch_end(struct frame_batch *b, const uint8_t **msg)
{
	size_t n = b->n;

	b->n = 0;
	if (n == 0)
		return 0;
	if (n == 1) { /* alone: the frame itself, after the batch header and its field header */
		*msg = b->w.buf + FRAME_HEADER + FRAME_FIELD_HEADER;
		return b->w.len - FRAME_HEADER - FRAME_FIELD_HEADER;
	}
	*msg = b->w.buf;
	return (size_t)frame_end(&b->w); /* every field fitted: frame_batch_add() saw to that */
}
