/*
 * testlib: the smallest test harness that does the job. Every CHECK counts as one
 * assertion; test_done() prints "N passed, N failed" and gives the exit status.
 */
#ifndef TESTLIB_H
#define TESTLIB_H
#include <stddef.h>
#include <stdint.h>

extern int test_passed, test_failed;

#define CHECK(cond, ...) test_check((cond) != 0, __FILE__, __LINE__, #cond, __VA_ARGS__)
#define CHECK_MEM(a, b, n, ...) test_check(test_memeq((a), (b), (n)), __FILE__, __LINE__, "memeq", __VA_ARGS__)

void test_check(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
int test_memeq(const void *a, const void *b, size_t n);
/* Decodes lowercase or uppercase hex into a malloc'd buffer; aborts the test run on bad input. */
uint8_t *test_unhex(const char *hex, size_t *len);
/* Reads a whole file into a NUL-terminated malloc'd buffer, or NULL. */
char *test_slurp(const char *path, size_t *len);
/* Prints the closing line and returns the process exit status. */
int test_done(void);
#endif
