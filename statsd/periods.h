/*
 * periods: statistics windows in statsd's own LMDB. A window is period_s long and aligned
 * to multiples of period_s since the epoch, so restarts never shift it. Each row holds one
 * u64 per counter id (counters.h). No device data is ever stored here.
 */
#ifndef PERIODS_H
#define PERIODS_H
#include "counters.h"
#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

struct periods {
	MDB_env *env;
	MDB_dbi rows;
	uint64_t period_s;
};

struct period_row {
	uint64_t start, end; /* seconds since the epoch */
	uint64_t v[CTR_MAX];
};

int periods_open(struct periods *p, const char *path, uint64_t period_s, int readonly, char *err, size_t errlen);
void periods_close(struct periods *p);
/* Adds the deltas to the window containing now_s (creating it); one durable commit. */
int periods_add(struct periods *p, uint64_t now_s, const uint64_t delta[CTR_MAX]);
/* Rows with start >= from and end <= to (0 = unbounded), ascending; the open window's end is now_s. */
int periods_query(struct periods *p, uint64_t from, uint64_t to, uint64_t now_s, struct period_row **rows, size_t *n);
/* Stores a row as given (imported history keeps its own bounds). */
int periods_put(struct periods *p, const struct period_row *row);
#endif
