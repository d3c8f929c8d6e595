/*
 * periods: statistics windows in statsd's own LMDB. A window is period_s long and aligned
 * to multiples of period_s since the epoch, so restarts never shift it. Each row holds one
 * u64 per counter id (counters.h). Beside the windows, "totals" keeps every metric's sum since
 * the store was created (plain counters, HTTP answers, histogram buckets: the ids of
 * counters.h), updated in the same commit as the window. No device data is ever stored here.
 */
#ifndef PERIODS_H
#define PERIODS_H
#include "counters.h"
#include "stats_row.h"
#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

struct periods {
	MDB_env *env;
	MDB_dbi rows, totals;
	int have_totals; /* 0 only for a read-only open of a store that predates them */
	uint64_t period_s;
};

/* One metric id (counters.h) and a value. */
struct metric_kv {
	uint32_t id;
	uint64_t v;
};

int periods_open(struct periods *p, const char *path, uint64_t period_s, int readonly, char *err, size_t errlen);
void periods_close(struct periods *p);
/* Adds the deltas to the window containing now_s (creating it) and to the totals; one durable commit. */
int periods_add(struct periods *p, uint64_t now_s, const uint64_t delta[CTR_MAX]);
/* The same, also adding nx further metric deltas (HTTP answers, histogram buckets) to the totals. */
int periods_commit(struct periods *p, uint64_t now_s, const uint64_t delta[CTR_MAX], const struct metric_kv *x, size_t nx);
/* Calls fn for every stored total, ascending by id. */
int periods_totals(struct periods *p, void (*fn)(void *ctx, uint32_t id, uint64_t v), void *ctx);
/* Rows with start >= from and end <= to (0 = unbounded), ascending; the open window's end is now_s. */
int periods_query(struct periods *p, uint64_t from, uint64_t to, uint64_t now_s, struct period_row **rows, size_t *n);
/* Stores a row as given (imported history keeps its own bounds). */
int periods_put(struct periods *p, const struct period_row *row);
#endif
