/*
 * stats_row: statistics windows as typed frame fields (see stats_row.h). statsd writes them,
 * ingress-onion and pushctl read them; the reader trusts only frame_parse's checks and checks
 * the order of the fields itself.
 */
#include "stats_row.h"
#include <stdlib.h>
#include <string.h>

#define U32_FIELD (FRAME_FIELD_HEADER + 4)
#define U64_FIELD (FRAME_FIELD_HEADER + 8)

size_t stats_row_size(const struct period_row *r)
{
	size_t n = 2 * U64_FIELD;
	for (int i = 0; i < CTR_MAX; i++)
		if (r->v[i])
			n += U32_FIELD + U64_FIELD;
	return n;
}

void stats_row_put(struct frame_writer *w, const struct period_row *r)
{
	frame_put_u64(w, TAG_START, r->start);
	frame_put_u64(w, TAG_END, r->end);
	for (uint32_t i = 0; i < CTR_MAX; i++)
		if (r->v[i]) {
			frame_put_u32(w, TAG_COUNTER, i);
			frame_put_u64(w, TAG_DELTA, r->v[i]);
		}
}

/* Where a row is in its fields: its start read, its end read, a counter waiting for its delta. */
enum row_state { ROW_NONE, ROW_START, ROW_OPEN, ROW_COUNTER };

int stats_rows_read(const struct frame *f, struct period_row **rows, size_t *n)
{
	struct frame_field fl;
	struct period_row *out;
	enum row_state st = ROW_NONE;
	size_t pos = 0, count = 0, k = 0;
	uint32_t counter = 0;

	*rows = NULL;
	*n = 0;
	while (frame_next(f, &pos, &fl) == 0)
		count += fl.tag == TAG_START;
	if (count == 0) /* nothing, or fields outside any row */
		return f->len == 0 ? 0 : -1;
	if ((out = calloc(count, sizeof *out)) == NULL)
		return -1;
	pos = 0;
	while (frame_next(f, &pos, &fl) == 0) {
		switch (fl.tag) {
		case TAG_START:
			if (st == ROW_START || st == ROW_COUNTER)
				goto bad;
			out[k++].start = frame_field_u64(&fl);
			st = ROW_START;
			break;
		case TAG_END:
			if (st != ROW_START)
				goto bad;
			out[k - 1].end = frame_field_u64(&fl);
			st = ROW_OPEN;
			break;
		case TAG_COUNTER:
			if (st != ROW_OPEN)
				goto bad;
			counter = frame_field_u32(&fl);
			st = ROW_COUNTER;
			break;
		case TAG_DELTA:
			if (st != ROW_COUNTER)
				goto bad;
			if (counter < CTR_MAX) /* a counter of a newer build: not ours to show */
				out[k - 1].v[counter] = frame_field_u64(&fl);
			st = ROW_OPEN;
			break;
		default:
			goto bad;
		}
	}
	if (st != ROW_OPEN)
		goto bad;
	*rows = out;
	*n = k;
	return 0;
bad:
	free(out);
	return -1;
}
