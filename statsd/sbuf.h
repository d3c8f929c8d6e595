/* sbuf: a growing text buffer for the pages statsd renders (errors stick; check .fail). */
#ifndef STATSD_SBUF_H
#define STATSD_SBUF_H
#include <stddef.h>

struct sbuf {
	char *p;
	size_t len, cap;
	int fail;
};

void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_puts(struct sbuf *b, const char *s);
/* Hands the text over (NULL after a failure) and resets b. */
char *sb_take(struct sbuf *b, size_t *len);
#endif
