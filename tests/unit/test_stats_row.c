/* Statistics rows as frame fields: a round trip, counters of a newer build skipped, every
 * out-of-order field list refused, and the newest rows kept when a frame is full. */
#include "stats_row.h"
#include "testlib.h"
#include <stdlib.h>
#include <string.h>

static uint8_t buf[FRAME_MAX];

/* Parses what w wrote and reads its rows; -1 when either step refuses it. */
static int read_back(struct frame_writer *w, struct period_row **rows, size_t *n)
{
	struct frame f;
	long len = frame_end(w);
	if (len < 0 || frame_parse(buf, (size_t)len, &f, NULL) < 0)
		return -1;
	return stats_rows_read(&f, rows, n);
}

static void round_trip(void)
{
	struct frame_writer w;
	struct period_row in[3], *out;
	size_t n;

	memset(in, 0, sizeof in);
	for (int i = 0; i < 3; i++) {
		in[i].start = 43200u * (uint64_t)(i + 1);
		in[i].end = in[i].start + 43200;
	}
	in[0].v[CTR_MESSAGES_TOTAL] = 7;
	in[0].v[CTR_MAX - 1] = UINT64_MAX;
	in[2].v[CTR_IOS_DELIVERED] = 1;
	frame_begin(&w, buf, FRAME_STATS_ROWS, 9);
	for (int i = 0; i < 3; i++)
		stats_row_put(&w, &in[i]);
	CHECK(read_back(&w, &out, &n) == 0 && n == 3, "three rows read back");
	CHECK(out && memcmp(out, in, sizeof in) == 0, "every bound and value as written");
	CHECK(stats_row_size(&in[1]) == 28 && stats_row_size(&in[0]) == 28 + 2 * 24,
	      "a row's size counts only its non-zero counters");
	free(out);

	frame_begin(&w, buf, FRAME_STATS_ROWS, 9);
	CHECK(read_back(&w, &out, &n) == 0 && n == 0 && out == NULL, "no rows is an empty answer");
}

/* A row from a build with more counters: the unknown one is skipped, the known ones kept. */
static void newer_counter(void)
{
	struct frame_writer w;
	struct period_row *out;
	size_t n;

	frame_begin(&w, buf, FRAME_STATS_ROWS, 1);
	frame_put_u64(&w, TAG_START, 100);
	frame_put_u64(&w, TAG_END, 200);
	frame_put_u32(&w, TAG_COUNTER, CTR_MAX + 5);
	frame_put_u64(&w, TAG_DELTA, 99);
	frame_put_u32(&w, TAG_COUNTER, CTR_MESSAGES_TOTAL);
	frame_put_u64(&w, TAG_DELTA, 3);
	CHECK(read_back(&w, &out, &n) == 0 && n == 1, "a row with an unknown counter is read");
	CHECK(out && out[0].start == 100 && out[0].end == 200 && out[0].v[CTR_MESSAGES_TOTAL] == 3,
	      "its known counter kept");
	free(out);
}

static void bad_orders(void)
{
	/* Each case: the fields in order, as tags; values are small and well-typed. */
	static const uint16_t cases[][6] = {
		{TAG_END, 0},				      /* an end before any start */
		{TAG_START, 0},				      /* a row without its end */
		{TAG_START, TAG_START, TAG_END, 0},	      /* two starts */
		{TAG_START, TAG_END, TAG_END, 0},	      /* two ends */
		{TAG_START, TAG_END, TAG_DELTA, 0},	      /* a delta without its counter */
		{TAG_START, TAG_END, TAG_COUNTER, 0},	      /* a counter without its delta */
		{TAG_START, TAG_END, TAG_COUNTER, TAG_START, 0}, /* a row cut after a counter */
		{TAG_START, TAG_COUNTER, TAG_DELTA, TAG_END, 0},   /* a counter before the end */
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct frame_writer w;
		struct period_row *out;
		size_t n;
		frame_begin(&w, buf, FRAME_STATS_IMPORT, 1);
		for (int i = 0; cases[c][i]; i++) {
			if (cases[c][i] == TAG_COUNTER)
				frame_put_u32(&w, TAG_COUNTER, 1);
			else
				frame_put_u64(&w, cases[c][i], 1);
		}
		CHECK(read_back(&w, &out, &n) == -1 && out == NULL, "field order %zu refused", c);
	}
}

int main(void)
{
	round_trip();
	newer_counter();
	bad_orders();
	return test_done();
}
