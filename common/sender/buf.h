/* buf: growing a heap buffer, the one place that doubles one. */
#ifndef BUF_H
#define BUF_H
#include <stdlib.h>
#include <string.h>

/* Makes *buf hold at least need bytes: capacity doubles from first. 0, or -1 when memory ran
 * out (then *buf is unchanged). */
static inline int buf_reserve(char **buf, size_t *cap, size_t need, size_t first)
{
	size_t nc = *cap ? *cap : first;
	char *b;

	if (need <= *cap)
		return 0;
	while (nc < need)
		nc *= 2;
	if ((b = realloc(*buf, nc)) == NULL)
		return -1;
	*buf = b;
	*cap = nc;
	return 0;
}

/* Appends n bytes at p to *buf[0..*len). 0, or -1 when memory ran out. */
static inline int buf_append(char **buf, size_t *len, size_t *cap, const void *p, size_t n, size_t first)
{
	if (buf_reserve(buf, cap, *len + n, first) < 0)
		return -1;
	memcpy(*buf + *len, p, n);
	*len += n;
	return 0;
}
#endif
