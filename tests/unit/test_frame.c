/* Frame codec: round trips, and every way a hostile peer can break a frame. */
#include "frame.h"
#include "testlib.h"
#include <stdlib.h>
#include <string.h>

static uint8_t buf[FRAME_MAX];

static long notify_frame(const char *id, const char *data)
{
	struct frame_writer w;
	frame_begin(&w, buf, FRAME_NOTIFY, 0x1122334455667788ULL);
	frame_put_bytes(&w, TAG_ID, id, strlen(id));
	frame_put_bytes(&w, TAG_DATA, data, strlen(data));
	return frame_end(&w);
}

int main(void)
{
	struct frame f;
	struct frame_field fl;
	const char *why;
	long n = notify_frame("bd1234", "hello");

	CHECK(n == FRAME_HEADER + 6 + 6 + 6 + 5, "length %ld", n);
	CHECK(frame_parse(buf, (size_t)n, &f, &why) == 0, "round trip parses");
	CHECK(f.type == FRAME_NOTIFY && f.id == 0x1122334455667788ULL, "type and id kept");
	CHECK(frame_get(&f, TAG_ID, &fl) == 0 && fl.len == 6 && memcmp(fl.val, "bd1234", 6) == 0, "id field");
	CHECK(frame_get(&f, TAG_DATA, &fl) == 0 && fl.len == 5, "data field");
	CHECK(frame_get(&f, TAG_TOKEN, &fl) == -1, "absent field");

	/* Every truncation is rejected. */
	int bad = 0;
	for (long i = 0; i < n; i++)
		bad += frame_parse(buf, (size_t)i, &f, &why) == 0;
	CHECK(bad == 0, "%d truncations accepted", bad);

	/* Every single-byte corruption of the header or field framing is either rejected or still
	 * a self-consistent frame; none reads out of bounds (ASan would tell). */
	for (long i = 0; i < n; i++) {
		uint8_t save = buf[i];
		buf[i] ^= 0xff;
		if (frame_parse(buf, (size_t)n, &f, &why) == 0) {
			size_t pos = 0;
			while (frame_next(&f, &pos, &fl) == 0)
				CHECK(fl.val + fl.len <= buf + n, "field inside the frame after flipping byte %ld", i);
		}
		buf[i] = save;
	}

	n = notify_frame("x", "y");
	buf[2] = FRAME_VERSION + 1;
	CHECK(frame_parse(buf, (size_t)n, &f, &why) < 0 && strstr(why, "version"), "other version rejected");
	n = notify_frame("x", "y");
	buf[0] = 0;
	CHECK(frame_parse(buf, (size_t)n, &f, &why) < 0 && strstr(why, "magic"), "bad magic rejected");
	n = notify_frame("x", "y");
	buf[3] = 200;
	CHECK(frame_parse(buf, (size_t)n, &f, &why) < 0 && strstr(why, "type"), "unknown type rejected");

	struct frame_writer w;
	frame_begin(&w, buf, FRAME_NOTIFY, 1);
	frame_put_bytes(&w, TAG_ID, "x", 1);
	n = frame_end(&w);
	CHECK(frame_parse(buf, (size_t)n, &f, &why) < 0 && strstr(why, "required"), "missing required field");

	frame_begin(&w, buf, FRAME_NOTIFY, 1);
	frame_put_bytes(&w, TAG_ID, "x", 1);
	frame_put_bytes(&w, TAG_ID, "y", 1);
	frame_put_bytes(&w, TAG_DATA, "d", 1);
	n = frame_end(&w);
	CHECK(frame_parse(buf, (size_t)n, &f, &why) < 0 && strstr(why, "repeated"), "repeated single field");

	frame_begin(&w, buf, FRAME_NOTIFY, 1);
	frame_put_bytes(&w, TAG_ID, "x", 1);
	frame_put_bytes(&w, TAG_DATA, "d", 1);
	frame_put_u32(&w, TAG_OUTCOME, 1);
	n = frame_end(&w);
	CHECK(frame_parse(buf, (size_t)n, &f, &why) < 0 && strstr(why, "not allowed"), "field of another type");

	frame_begin(&w, buf, FRAME_REPLY, 1);
	frame_put_bytes(&w, TAG_STATUS, "abc", 3);
	n = frame_end(&w);
	CHECK(frame_parse(buf, (size_t)n, &f, &why) < 0 && strstr(why, "length"), "u32 field of 3 bytes");

	char big[300];
	memset(big, 'a', sizeof big);
	frame_begin(&w, buf, FRAME_NOTIFY, 1);
	frame_put_bytes(&w, TAG_ID, big, sizeof big);
	frame_put_bytes(&w, TAG_DATA, "d", 1);
	CHECK(frame_end(&w) == -1, "the writer refuses an id over 256 bytes");
	/* The same frame forged by hand is refused by the reader. */
	frame_begin(&w, buf, FRAME_NOTIFY, 1);
	frame_put_bytes(&w, TAG_ID, big, 256);
	frame_put_bytes(&w, TAG_DATA, "d", 1);
	n = frame_end(&w);
	buf[FRAME_HEADER + 2] = 0x2c; /* length 256 → 300 */
	buf[FRAME_HEADER + 3] = 0x01;
	CHECK(frame_parse(buf, (size_t)n, &f, &why) < 0, "an id field over 256 bytes is rejected");

	frame_begin(&w, buf, FRAME_REGISTER, 7);
	frame_put_bytes(&w, TAG_ID, "id", 2);
	frame_put_bytes(&w, TAG_TOKEN, "tok", 3);
	frame_put_u32(&w, TAG_DEVICE, PLATFORM_ANDROID);
	for (int i = 0; i < 5; i++)
		frame_put_bytes(&w, TAG_GROUP, "g", 1);
	n = frame_end(&w);
	CHECK(frame_parse(buf, (size_t)n, &f, &why) == 0, "repeated group fields allowed");
	CHECK(frame_u32(&f, TAG_DEVICE, 0) == PLATFORM_ANDROID && frame_u32(&f, TAG_FLAGS, 9) == 9, "typed getters");

	/* A writer never overflows its buffer. */
	uint8_t *huge = calloc(1, FRAME_MAX);
	frame_begin(&w, buf, FRAME_NOTIFY, 1);
	frame_put_bytes(&w, TAG_DATA, huge, FRAME_MAX);
	CHECK(frame_end(&w) == -1, "oversized field refused by the writer");
	free(huge);
	return test_done();
}
