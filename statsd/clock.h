/*
 * clock: statsd's one source of "now" for statistics windows. Normally the wall clock; when the
 * environment names PUSHPIPE_TEST_CLOCK_FILE (tests only), the file's decimal seconds since the
 * epoch, read again on every call (statsd asks about once a second). The file must be inside
 * state_dir: statsd stops at start-up otherwise (statsd_clock_dir), so the test clock never
 * widens what its sandbox lets it read.
 */
#ifndef STATSD_CLOCK_H
#define STATSD_CLOCK_H
#include <stdint.h>

/* Seconds since the epoch. */
uint64_t statsd_now_s(void);
/* 1 when the test clock is in use. */
int statsd_test_clock(void);
/* Where the test clock file may be read from: 0 when it is unset; 1 with the real path of the
 * file's directory in dir (PATH_MAX bytes) when that is state_dir or below it; -1 otherwise
 * (outside, or a directory that does not resolve). */
int statsd_clock_dir(const char *state_dir, char *dir);
#endif
