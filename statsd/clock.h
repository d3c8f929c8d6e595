/*
 * clock: statsd's one source of "now" for statistics windows. Normally the wall clock; when the
 * environment names PUSHPIPE_TEST_CLOCK_FILE (tests only), the file's decimal seconds since the
 * epoch, read again on every call (statsd asks about once a second). The file must be inside
 * state_dir: sandbox_enter (common/sandbox.c) stops statsd at start-up otherwise, so the test
 * clock never widens what statsd may read.
 */
#ifndef STATSD_CLOCK_H
#define STATSD_CLOCK_H
#include <stdint.h>

/* Seconds since the epoch. */
uint64_t statsd_now_s(void);
/* 1 when the test clock is in use. */
int statsd_test_clock(void);
#endif
