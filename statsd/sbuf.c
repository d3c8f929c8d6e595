/* sbuf: see sbuf.h. */
#include "sbuf.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(struct sbuf *b, size_t need)
{
	size_t nc;
	char *np;
	if (b->fail)
		return -1;
	if (b->len + need + 1 <= b->cap)
		return 0;
	for (nc = b->cap ? b->cap : 4096; nc < b->len + need + 1; nc *= 2)
		;
	if ((np = realloc(b->p, nc)) == NULL) {
		b->fail = 1;
		return -1;
	}
	b->p = np;
	b->cap = nc;
	return 0;
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || grow(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sb_puts(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);
	if (grow(b, n) < 0)
		return;
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

char *sb_take(struct sbuf *b, size_t *len)
{
	char *p = b->fail ? NULL : b->p;
	if (b->fail)
		free(b->p);
	if (p == NULL && !b->fail && (p = calloc(1, 1)) == NULL)
		b->fail = 1;
	if (len)
		*len = p ? b->len : 0;
	memset(b, 0, sizeof *b);
	return p;
}
