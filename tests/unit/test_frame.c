/* Frame codec: round trips, and every way a hostile peer can break a frame; batches, and a
 * peer's batched sending. */
#include "frame.h"
#include "peer.h"
#include "testlib.h"
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint8_t buf[FRAME_MAX];

static long notify_frame(const char *id, const char *data)
{
	struct frame_writer w;
	frame_begin(&w, buf, FRAME_NOTIFY, 0x1122334455667788ULL);
	frame_put_bytes(&w, TAG_ID, id, strlen(id));
	frame_put_bytes(&w, TAG_DATA, data, strlen(data));
	return frame_end(&w);
}

static long reply_frame(uint8_t *out, uint64_t id, uint32_t status)
{
	struct frame_writer w;
	frame_begin(&w, out, FRAME_REPLY, id);
	frame_put_u32(&w, TAG_STATUS, status);
	return frame_end(&w);
}

/* A batch of the given frames (each a reply with id ids[i]) into buf. */
static long batch_of(const uint64_t *ids, size_t n)
{
	static uint8_t one[64];
	struct frame_writer w;
	frame_begin(&w, buf, FRAME_BATCH, 0);
	for (size_t i = 0; i < n; i++) {
		long k = reply_frame(one, ids[i], (uint32_t)i);
		frame_put_bytes(&w, TAG_FRAME, one, (size_t)k);
	}
	return frame_end(&w);
}

static void test_batch_codec(void)
{
	static const uint64_t ids[] = {5, 9, 2};
	uint8_t inner_buf[64];
	struct frame f, inner;
	struct frame_field item;
	const char *why;
	size_t pos = 0, k = 0;
	long n = batch_of(ids, 3);
	int r;

	CHECK(frame_parse(buf, (size_t)n, &f, &why) == 0 && f.type == FRAME_BATCH, "a batch parses");
	while ((r = frame_batch_next(&f, &pos, &item, &inner, &why)) == 1) {
		CHECK(k < 3 && inner.type == FRAME_REPLY && inner.id == ids[k] &&
			      frame_u32(&inner, TAG_STATUS, 99) == (uint32_t)k,
		      "inner frame %zu in order", k);
		k++;
	}
	CHECK(r == 0 && k == 3, "three inner frames, then the end (%d, %zu)", r, k);

	n = batch_of(ids, 0);
	CHECK(frame_parse(buf, (size_t)n, &f, &why) < 0 && strstr(why, "required"), "an empty batch is refused");

	/* An inner frame that is broken, or a batch itself, stops the walk with a reason. */
	n = batch_of(ids, 2);
	buf[FRAME_HEADER + 6 + reply_frame(inner_buf, 0, 0) + 6 + 3] = 200; /* the second inner frame's type */
	pos = 0;
	CHECK(frame_parse(buf, (size_t)n, &f, &why) == 0, "the outer batch still parses");
	CHECK(frame_batch_next(&f, &pos, &item, &inner, &why) == 1, "the first inner frame is taken");
	CHECK(frame_batch_next(&f, &pos, &item, &inner, &why) == -1 && strstr(why, "type"),
	      "the broken second one is refused: %s", why);
	{
		static uint8_t outer[FRAME_MAX];
		struct frame_writer w;
		n = batch_of(ids, 1);
		frame_begin(&w, outer, FRAME_BATCH, 0);
		frame_put_bytes(&w, TAG_FRAME, buf, (size_t)n);
		n = frame_end(&w);
		pos = 0;
		CHECK(frame_parse(outer, (size_t)n, &f, &why) == 0 &&
			      frame_batch_next(&f, &pos, &item, &inner, &why) == -1 && strstr(why, "batch inside"),
		      "a batch inside a batch is refused");
		frame_begin(&w, outer, FRAME_BATCH, 0);
		frame_put_u32(&w, TAG_STATUS, 0);
		n = frame_end(&w);
		CHECK(frame_parse(outer, (size_t)n, &f, &why) < 0, "a batch carries only TAG_FRAME fields");
	}
	n = reply_frame(buf, 1, 0);
	CHECK(frame_parse(buf, (size_t)n, &f, &why) == 0 && frame_batch_next(&f, &pos, &item, &inner, &why) == -1,
	      "frame_batch_next refuses a frame that is not a batch");
}

/* Reads one message from fd into buf; its length, or -1. */
static long take(int fd)
{
	return (long)recv(fd, buf, FRAME_MAX, MSG_DONTWAIT);
}

static void test_peer_batches(void)
{
	int sv[2];
	struct peer p;
	struct frame f;
	const char *why;
	uint8_t one[64];
	long n;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) {
		CHECK(0, "socketpair");
		return;
	}
	peer_init(&p, sv[0]);
	n = reply_frame(one, 1, 0);
	CHECK(peer_send(&p, one, (size_t)n) == 0 && take(sv[1]) == n, "without batches a frame leaves at once");

	p.batches = 1;
	for (uint64_t id = 10; id < 13; id++) {
		n = reply_frame(one, id, 0);
		CHECK(peer_send(&p, one, (size_t)n) == 0, "frame %llu gathered", (unsigned long long)id);
	}
	CHECK(take(sv[1]) < 0, "nothing leaves before the flush");
	CHECK(peer_batch_flush(&p) == 0, "flush");
	n = take(sv[1]);
	CHECK(n > 0 && frame_parse(buf, (size_t)n, &f, &why) == 0 && f.type == FRAME_BATCH, "one batch message");
	{
		struct frame inner;
		struct frame_field item;
		size_t pos = 0;
		uint64_t want = 10;
		while (frame_batch_next(&f, &pos, &item, &inner, &why) == 1)
			CHECK(inner.id == want++, "reply %llu in order", (unsigned long long)inner.id);
		CHECK(want == 13, "all three in the batch");
	}
	CHECK(peer_batch_flush(&p) == 0 && take(sv[1]) < 0, "a second flush sends nothing");

	n = reply_frame(one, 20, 0);
	CHECK(peer_send(&p, one, (size_t)n) == 0 && peer_batch_flush(&p) == 0, "one frame gathered and flushed");
	CHECK(take(sv[1]) == n && frame_parse(buf, (size_t)n, &f, &why) == 0 && f.type == FRAME_REPLY && f.id == 20,
	      "a lone frame leaves as itself, not as a batch of one");

	/* A frame too large to gather sends what was gathered first: order is kept. */
	{
		static uint8_t big[FRAME_MAX], data[PEER_BATCH_BYTES];
		struct frame_writer w;
		long bn;
		frame_begin(&w, big, FRAME_NOTIFY, 31);
		frame_put_bytes(&w, TAG_ID, "x", 1);
		frame_put_bytes(&w, TAG_DATA, data, sizeof data);
		bn = frame_end(&w);
		n = reply_frame(one, 30, 0);
		CHECK(peer_send(&p, one, (size_t)n) == 0 && peer_send(&p, big, (size_t)bn) == 0, "small, then large");
		CHECK(take(sv[1]) == n && frame_parse(buf, (size_t)n, &f, &why) == 0 && f.id == 30, "the small one first");
		CHECK(take(sv[1]) == bn && frame_parse(buf, (size_t)bn, &f, &why) == 0 && f.id == 31, "then the large one");
	}
	peer_close(&p);
	close(sv[1]);
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

	test_batch_codec();
	test_peer_batches();
	return test_done();
}
