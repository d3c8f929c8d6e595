/* stats_row: one statistics window and how it travels in frames (stats-rows, stats-import). */
#ifndef STATS_ROW_H
#define STATS_ROW_H
#include "counters.h"
#include "frame.h"
#include <stddef.h>
#include <stdint.h>

struct period_row {
	uint64_t start, end; /* seconds since the epoch */
	uint64_t v[CTR_MAX];
};

/*
 * On the wire a row is a run of typed fields: TAG_START, TAG_END, then a (TAG_COUNTER,
 * TAG_DELTA) pair for every counter that is not zero. A reader skips counter ids it does not
 * know, so daemons built with different counter lists still agree on every row they share.
 */

/* Bytes the row takes in a frame. */
size_t stats_row_size(const struct period_row *r);
/* Appends the row's fields to w (an overflow sticks in w, as for every frame_put_*). */
void stats_row_put(struct frame_writer *w, const struct period_row *r);
/* Reads every row of a stats-rows or stats-import frame into a new array (free() it; NULL
 * when there is none). 0, or -1 when the fields are not rows: a field before TAG_START, a
 * second TAG_START or TAG_END in a row, a counter without its delta, a row without its end. */
int stats_rows_read(const struct frame *f, struct period_row **rows, size_t *n);
#endif
