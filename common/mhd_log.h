/*
 * mhd_log: libmicrohttpd's error logger (MHD_OPTION_EXTERNAL_LOGGER) for the two daemons that
 * serve HTTP with it (ingress-onion, statsd): each message becomes one debug line in our log.
 */
#ifndef MHD_LOG_H
#define MHD_LOG_H
#include <stdarg.h>

void mhd_log(void *cls, const char *fmt, va_list ap);
#endif
