/*
 * vectors_path: where the unit tests find bchat-onion-vectors.json — $PUSHPIPE_VECTORS if set,
 * else tests/vectors/ relative to the repository root (tests run from there).
 */
#ifndef VECTORS_PATH_H
#define VECTORS_PATH_H
#include <stdlib.h>

#define VECTORS_DEFAULT_PATH "tests/vectors/bchat-onion-vectors.json"

static inline const char *vectors_path(void)
{
	const char *p = getenv("PUSHPIPE_VECTORS");
	return p != NULL && p[0] != '\0' ? p : VECTORS_DEFAULT_PATH;
}
#endif
