/*
 * http: statsd's loopback-only HTTP listener (libmicrohttpd driven from statsd's own epoll
 * loop, no threads): GET or HEAD of a path is answered by one callback that renders the body.
 */
#ifndef STATSD_HTTP_H
#define STATSD_HTTP_H
#include <stddef.h>
#include <sys/socket.h>

struct statsd_http;

/* Renders path: sets *code and *type, returns a malloc'd body (NULL = 500). */
typedef char *statsd_page_fn(void *ctx, const char *path, unsigned *code, const char **type, size_t *len);

/* "127.0.0.1:5080", "localhost:5080", "[::1]:5080": 0 and the address; -1 with a reason when
 * malformed or not a loopback address. */
int statsd_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sslen, char *err, size_t errlen);
/* Starts listening; NULL with a reason on failure. */
struct statsd_http *statsd_http_start(const char *listen, statsd_page_fn *fn, void *ctx, char *err, size_t errlen);
/* The fd to watch for EPOLLIN in statsd's loop. */
int statsd_http_fd(const struct statsd_http *h);
/* Serves whatever is ready (never blocks); call when the fd is readable and once per loop turn. */
void statsd_http_run(struct statsd_http *h);
void statsd_http_stop(struct statsd_http *h);
#endif
