/* log: one line per event on stderr, "time level daemon[pid]: message" (no time when stderr is
 * the systemd journal, which stamps lines itself). */
#ifndef LOG_H
#define LOG_H
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Names the process in every line; call once at start-up. */
void log_init(const char *daemon);
/* Lines below this level are dropped. */
void log_set_level(enum log_level lvl);
/* Parses "debug", "info", "warn", "error"; -1 when unknown. */
int log_level_parse(const char *s);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs at error level and exits 1: start-up failures and broken invariants only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* As log_msg and fatal, with ": strerror(errno)" appended; errno is read before anything else
 * runs, so pass no argument that may change it. */
void log_msg_errno(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fatal_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Writes a loggable abbreviation of a secret or token ("abcd1234…(71)") into buf. */
const char *log_redact(const char *s, size_t len, char *buf, size_t buflen);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_info_errno(...) log_msg_errno(LOG_INFO, __VA_ARGS__)
#define log_warn_errno(...) log_msg_errno(LOG_WARN, __VA_ARGS__)
#define log_error_errno(...) log_msg_errno(LOG_ERROR, __VA_ARGS__)
#endif
