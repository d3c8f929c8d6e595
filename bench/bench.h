/*
 * bench: what the load generators and micro-benchmarks share (header only, so that tools which
 * link nothing of the tree can use it too): the monotonic clock in seconds.
 */
#ifndef BENCH_H
#define BENCH_H
#include <time.h>

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
#endif
