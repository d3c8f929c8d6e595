/*
 * page: the status page statsd serves at "/": one self-contained HTML document (inline CSS
 * and SVG, no script, no external asset) with deliveries and failures per provider over the
 * recent windows, messages per window, the live gauges, latencies and HTTP answers.
 */
#ifndef STATSD_PAGE_H
#define STATSD_PAGE_H
#include "metrics.h"
#include "periods.h"
#include <stddef.h>
#include <stdint.h>

#define PAGE_WINDOWS 14 /* the most recent windows charted */

struct page_input {
	const struct metrics *m;
	const struct period_row *rows; /* ascending; the last PAGE_WINDOWS are used */
	size_t nrows;
	uint64_t now_s, started_s, period_s;
	int test_clock;
};

/* malloc'd HTML, or NULL. */
char *page_render(const struct page_input *in, size_t *len);
#endif
