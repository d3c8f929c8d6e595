/*
 * fuzz_frame: frame_parse() (common/frame.c) on arbitrary bytes, as every daemon does with
 * what a peer sends. A frame that parses is walked field by field with frame_next(); every
 * field must lie inside the payload and the walk must end exactly at its end; every getter is
 * called for every tag; re-encoding the fields with the writer gives back exactly the input;
 * a valid hello is applied to a peer as the router and statsd do; and a batch is walked frame
 * by frame as the router and the ingress do, each inner frame inside the batch and none a batch.
 */
#include "frame.h"
#include "fuzz_common.h"
#include "peer.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[FRAME_MAX];
	struct frame f;
	struct frame_field fl;
	struct frame_writer w;
	const char *why = NULL;
	size_t pos = 0, nfields = 0;

	CHECK(frame_type_name(size > 3 ? data[3] : 0) != NULL);
	if (frame_parse(data, size, &f, &why) < 0) {
		CHECK(why != NULL);
		return 0;
	}
	CHECK(f.payload == data + FRAME_HEADER && (size_t)f.len + FRAME_HEADER == size);
	CHECK(strcmp(frame_type_name(f.type), "unknown") != 0);
	frame_begin(&w, buf, f.type, f.id);
	while (frame_next(&f, &pos, &fl) == 0) {
		CHECK(fl.val >= f.payload && fl.val + fl.len <= f.payload + f.len);
		CHECK(pos <= f.len);
		(void)frame_field_u32(&fl);
		(void)frame_field_u64(&fl);
		frame_put_bytes(&w, fl.tag, fl.val, fl.len);
		nfields++;
	}
	CHECK(pos == f.len);
	CHECK(nfields <= f.len / 6);
	long n = frame_end(&w);
	CHECK(n == (long)size && memcmp(buf, data, size) == 0);
	for (uint16_t tag = 0; tag < 64; tag++) {
		if (frame_get(&f, tag, &fl) == 0)
			CHECK(fl.tag == tag && fl.val + fl.len <= f.payload + f.len);
		(void)frame_u32(&f, tag, 7);
		(void)frame_u64(&f, tag, 7);
	}
	if (f.type == FRAME_BATCH) {
		struct frame inner;
		size_t bpos = 0, ninner = 0;
		int r;
		while ((r = frame_batch_next(&f, &bpos, &fl, &inner, &why)) == 1) {
			CHECK(fl.tag == TAG_FRAME && fl.val >= f.payload && fl.val + fl.len <= f.payload + f.len);
			CHECK(inner.payload == fl.val + FRAME_HEADER && inner.type != FRAME_BATCH);
			ninner++;
		}
		CHECK(r == 0 ? ninner == nfields && bpos == f.len : why != NULL);
	}
	if (f.type == FRAME_HELLO) {
		struct peer p;
		memset(&p, 0, sizeof p);
		p.fd = -1;
		CHECK(peer_hello(&p, data, size, &why) == 0 && p.hello_done);
		CHECK(strlen(p.instance) <= 64);
	}
	return 0;
}
