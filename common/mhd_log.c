/*
 * mhd_log: see mhd_log.h. Trusts libmicrohttpd's format strings (its own); a message is cut at
 * 255 bytes and its trailing line ends dropped. Holds nothing.
 */
#include "mhd_log.h"
#include "log.h"
#include <stdio.h>
#include <string.h>

void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];
	size_t n;
	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("libmicrohttpd: %s", line);
}
