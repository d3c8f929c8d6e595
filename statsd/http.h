/*
 * http: statsd's loopback-only HTTP listener, served by libmicrohttpd driven from statsd's own
 * epoll loop (external epoll, no threads): GET or HEAD of a path in the route table is answered
 * by that route's callback; another path 404, another method 405.
 */
#ifndef STATSD_HTTP_H
#define STATSD_HTTP_H
#include <stddef.h>
#include <sys/socket.h>

struct statsd_http;

/* Renders a page: returns a malloc'd body (NULL = 500) of *len bytes and sets *type; may set
 * *code (200 when left alone). */
typedef char *statsd_page_fn(void *ctx, unsigned *code, const char **type, size_t *len);

/* One route: the exact path (percent-decoded, without the query string) and its page. */
struct statsd_route {
	const char *path;
	statsd_page_fn *fn;
};

/* "127.0.0.1:5080", "localhost:5080", "[::1]:5080": 0 and the address; -1 with a reason when
 * malformed or not a loopback address. */
int statsd_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sslen, char *err, size_t errlen);
/* Starts listening; routes ends with {NULL, NULL} and must outlive the listener. NULL with a
 * reason on failure. */
struct statsd_http *statsd_http_start(const char *listen, const struct statsd_route *routes, void *ctx, char *err,
				      size_t errlen);
/* The fd to watch for EPOLLIN in statsd's loop (libmicrohttpd's epoll set). */
int statsd_http_fd(const struct statsd_http *h);
/* Serves whatever is ready (never blocks); call when the fd is readable and once per loop turn. */
void statsd_http_run(struct statsd_http *h);
void statsd_http_stop(struct statsd_http *h);
#endif
