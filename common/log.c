/*
 * log: every daemon logs to stderr, one line per event, so runit's svlogd (or supervisord)
 * keeps one log per daemon. Lines are written with a single write(2) so concurrent
 * writers never interleave. Tokens and secrets go through log_redact().
 * One time stamp per line: the daemon writes its own (UTC, milliseconds), so runit's log/run
 * files start svlogd without -t; under systemd, whose journal stamps every line, stderr is the
 * journal's stream (JOURNAL_STREAM names it) and the daemon leaves its stamp out.
 */
#include "log.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_name = "pushpipe";
static enum log_level log_min = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};
static int log_stamp = 1;

/* 1 when stderr is the systemd journal's stream ("DEV:INODE" in JOURNAL_STREAM, see
 * systemd.exec(5)), which stamps each line itself. */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *daemon)
{
	log_name = daemon;
	log_stamp = !stderr_is_journal();
}

void log_set_level(enum log_level lvl)
{
	log_min = lvl;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

/* err: an errno value whose strerror() ends the line as ": text"; -1 for none. */
static void log_vwrite(enum log_level lvl, int err, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	n = 0;
	if (log_stamp) {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
		r = snprintf(line + n, sizeof line - n, ".%03ldZ ", ts.tv_nsec / 1000000);
		if (r > 0)
			n += (size_t)r;
	}
	r = snprintf(line + n, sizeof line - n, "%s %s[%ld]: ", level_names[lvl], log_name, (long)getpid());
	if (r > 0)
		n += (size_t)r;
	if (n < sizeof line) {
		r = vsnprintf(line + n, sizeof line - n, fmt, ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (err >= 0 && n < sizeof line) {
		r = snprintf(line + n, sizeof line - n, ": %s", strerror(err));
		if (r > 0)
			n += (size_t)r;
	}
	if (n > sizeof line - 2)
		n = sizeof line - 2;
	/* Control characters from peers must not forge extra log lines. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20)
			line[i] = '?';
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;
	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	log_vwrite(lvl, -1, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_ERROR, -1, fmt, ap);
	va_end(ap);
	exit(1);
}

void log_msg_errno(enum log_level lvl, const char *fmt, ...)
{
	int err = errno;
	va_list ap;
	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	log_vwrite(lvl, err, fmt, ap);
	va_end(ap);
}

void fatal_errno(const char *fmt, ...)
{
	int err = errno;
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_ERROR, err, fmt, ap);
	va_end(ap);
	exit(1);
}

const char *log_redact(const char *s, size_t len, char *buf, size_t buflen)
{
	/* Never the whole value: at most half of it, and no more than 8 characters. */
	size_t show = len / 2 < 8 ? len / 2 : 8;
	snprintf(buf, buflen, "%.*s…(%zu)", (int)show, s, len);
	return buf;
}
