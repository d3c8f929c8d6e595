/* clock: the wall clock, or the test clock file (see clock.h). */
#include "clock.h"
#include "log.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *clock_file(void)
{
	const char *f = getenv("PUSHPIPE_TEST_CLOCK_FILE");
	return f && *f ? f : NULL;
}

int statsd_test_clock(void)
{
	return clock_file() != NULL;
}

uint64_t statsd_now_s(void)
{
	static int warned;
	const char *path = clock_file();
	unsigned long long v;
	FILE *f;

	if (path != NULL && (f = fopen(path, "r")) != NULL) {
		int ok = fscanf(f, "%llu", &v) == 1;
		fclose(f);
		if (ok) {
			warned = 0;
			return (uint64_t)v;
		}
	}
	if (path != NULL && !warned) {
		log_warn("test clock %s is unreadable; using the real clock", path);
		warned = 1;
	}
	return (uint64_t)time(NULL);
}
