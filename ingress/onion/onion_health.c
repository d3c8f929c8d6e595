/*
 * onion_health: ingress-onion's health answer from the router's list of senders
 * (onion_health.h). Trusts the reply only as far as frame_parse checked it: names are copied
 * with their length and shown only when printable, and a long list is cut, never overflowed.
 */
#include "onion_health.h"
#include <stdio.h>
#include <string.h>

long onion_health_query(uint8_t *buf)
{
	struct frame_writer w;

	frame_begin(&w, buf, FRAME_SENDERS_QUERY, 0);
	return frame_end(&w);
}

struct text {
	char *s;
	size_t cap, len; /* len < cap - 4 always: room for "…\n" */
	int full;
};

static void put(struct text *t, const char *p, size_t n)
{
	if (t->full)
		return;
	if (t->len + n + 5 > t->cap) {
		memcpy(t->s + t->len, "…", 3);
		t->len += 3;
		t->full = 1;
		return;
	}
	memcpy(t->s + t->len, p, n);
	t->len += n;
}

static int printable(const struct frame_field *f)
{
	for (size_t i = 0; i < f->len; i++)
		if (f->val[i] < 0x21 || f->val[i] > 0x7e)
			return 0;
	return f->len > 0;
}

/* "prefix: a, b" for the fields with this tag; how many there were. */
static size_t list(const struct frame *f, uint16_t tag, const char *prefix, struct text *t)
{
	struct frame_field fl;
	size_t pos = 0, n = 0;

	while (frame_next(f, &pos, &fl) == 0) {
		if (fl.tag != tag)
			continue;
		if (n++ == 0)
			put(t, prefix, strlen(prefix));
		else
			put(t, ", ", 2);
		if (printable(&fl))
			put(t, (const char *)fl.val, fl.len);
		else
			put(t, "(unprintable name)", 18);
	}
	return n;
}

int onion_health_text(const struct frame *reply, char *out, size_t len)
{
	struct text t = {.s = out, .cap = len};
	static const char bad[] = "unhealthy: connected to the router; ", good[] = "ok: connected to the router; ";
	int healthy;

	if (reply == NULL || reply->type != FRAME_SENDERS) {
		snprintf(out, len, "unhealthy: connected to the router, which did not say which senders it has\n");
		return 0;
	}
	put(&t, bad, sizeof bad - 1);
	healthy = list(reply, TAG_SENDER_DOWN, "senders not connected to the router: ", &t) == 0;
	if (healthy) {
		t.len = 0;
		t.full = 0;
		put(&t, good, sizeof good - 1);
		if (list(reply, TAG_SENDER_UP, "senders connected: ", &t) == 0)
			put(&t, "no sender connected or expected", 31);
	}
	out[t.len++] = '\n';
	out[t.len] = '\0';
	return healthy;
}
