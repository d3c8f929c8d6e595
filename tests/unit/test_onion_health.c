/*
 * test_onion_health: ingress-onion's health text from the router's FRAME_SENDERS answer
 * (ingress/onion/onion_health.c): healthy only without sender_down, every missing sender named,
 * a long or odd list cut or masked rather than overflowing, no answer unhealthy.
 */
#include "frame.h"
#include "../../ingress/onion/onion_health.h"
#include "testlib.h"
#include <string.h>

static uint8_t buf[FRAME_MAX];

/* A FRAME_SENDERS answer with these up and down names (NULL-terminated lists). */
static struct frame answer(const char *const *up, const char *const *down)
{
	struct frame_writer w;
	struct frame f;
	const char *why;
	long n;

	frame_begin(&w, buf, FRAME_SENDERS, 7);
	for (; up && *up; up++)
		frame_put_bytes(&w, TAG_SENDER_UP, *up, strlen(*up));
	for (; down && *down; down++)
		frame_put_bytes(&w, TAG_SENDER_DOWN, *down, strlen(*down));
	n = frame_end(&w);
	CHECK(n > 0 && frame_parse(buf, (size_t)n, &f, &why) == 0, "the answer parses");
	return f;
}

int main(void)
{
	static const char *const up[] = {"apns-sender", "fcm-sender:2", NULL};
	static const char *const down[] = {"hms-sender", "wns-sender:eu", NULL};
	static const char *const odd[] = {"bad name\n", NULL};
	char text[ONION_HEALTH_TEXT_MAX], small[48], longname[97];
	const char *many[40];
	struct frame f, q;
	const char *why;
	long n;

	n = onion_health_query(buf);
	CHECK(n > 0 && frame_parse(buf, (size_t)n, &q, &why) == 0 && q.type == FRAME_SENDERS_QUERY, "the query parses");

	f = answer(up, NULL);
	CHECK(onion_health_text(&f, text, sizeof text) == 1 &&
		      strcmp(text, "ok: connected to the router; senders connected: apns-sender, fcm-sender:2\n") == 0,
	      "all up: ok, naming them (%s)", text);
	f = answer(NULL, NULL);
	CHECK(onion_health_text(&f, text, sizeof text) == 1 && strstr(text, "no sender connected or expected"),
	      "none at all: ok, saying so (%s)", text);
	f = answer(up, down);
	CHECK(onion_health_text(&f, text, sizeof text) == 0 &&
		      strcmp(text, "unhealthy: connected to the router; senders not connected to the router: hms-sender, "
				   "wns-sender:eu\n") == 0,
	      "some down: unhealthy, naming only those (%s)", text);
	f = answer(NULL, odd);
	CHECK(onion_health_text(&f, text, sizeof text) == 0 && strstr(text, "(unprintable name)") && !strstr(text, "bad name"),
	      "an unprintable name still counts, masked (%s)", text);
	CHECK(onion_health_text(NULL, text, sizeof text) == 0 && strncmp(text, "unhealthy:", 10) == 0,
	      "no answer: unhealthy (%s)", text);
	q.type = FRAME_REPLY;
	CHECK(onion_health_text(&q, text, sizeof text) == 0, "another frame type: unhealthy");

	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	for (size_t i = 0; i < 39; i++)
		many[i] = longname;
	many[39] = NULL;
	f = answer(NULL, many);
	CHECK(onion_health_text(&f, text, sizeof text) == 0 && strlen(text) < sizeof text &&
		      text[strlen(text) - 1] == '\n' && strstr(text, "…"),
	      "a list longer than the answer is cut (%zu bytes)", strlen(text));
	CHECK(onion_health_text(&f, small, sizeof small) == 0 && strlen(small) < sizeof small &&
		      small[strlen(small) - 1] == '\n',
	      "even in a small buffer (%s)", small);
	return test_done();
}
