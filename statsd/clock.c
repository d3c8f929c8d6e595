/* clock: the wall clock, or the test clock file (see clock.h). */
#include "clock.h"
#include "log.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int statsd_clock_dir(const char *state_dir, char *dir)
{
	const char *f = clock_file(), *slash;
	char want[PATH_MAX], sd[PATH_MAX];
	size_t n;

	if (f == NULL)
		return 0;
	slash = strrchr(f, '/');
	if (slash == NULL)
		snprintf(want, sizeof want, ".");
	else if (slash == f)
		snprintf(want, sizeof want, "/");
	else
		snprintf(want, sizeof want, "%.*s", (int)(slash - f), f);
	if (realpath(want, dir) == NULL || realpath(state_dir, sd) == NULL)
		return -1;
	n = strlen(sd);
	if (strncmp(dir, sd, n) != 0 || (dir[n] != '\0' && dir[n] != '/' && strcmp(sd, "/") != 0))
		return -1;
	return 1;
}
