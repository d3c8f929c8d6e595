/*
 * http: statsd's loopback-only HTTP listener, driven from statsd's own epoll loop (no threads):
 * GET or HEAD of a path is answered by one callback that renders the body; anything else 405.
 */
#ifndef STATSD_HTTP_H
#define STATSD_HTTP_H
#include "http1.h"
#include <stddef.h>
#include <sys/socket.h>

struct statsd_http;

/* Renders path: sets *code and *type, returns a malloc'd body (NULL = 500). */
typedef char *statsd_page_fn(void *ctx, const char *path, unsigned *code, const char **type, size_t *len);

/* "127.0.0.1:5080", "localhost:5080", "[::1]:5080": 0 and the address; -1 with a reason when
 * malformed or not a loopback address. */
int statsd_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sslen, char *err, size_t errlen);
#define STATSD_HTTP_HEAD_MAX 8192 /* request line and headers */

enum { STATSD_HTTP_OK, STATSD_HTTP_MORE, STATSD_HTTP_BAD, STATSD_HTTP_TOO_LONG, STATSD_HTTP_VERSION };

struct statsd_http_req {
	enum http1_method method;
	char path[HTTP1_PATH_MAX]; /* percent-decoded, without the query string; "" names no page */
};

/* Reads the request head at the start of buf (len bytes) with common/http1.c: STATSD_HTTP_OK
 * with r filled once the empty line that ends it is there, _MORE before that, _TOO_LONG when
 * STATSD_HTTP_HEAD_MAX bytes hold no whole head, _BAD for a malformed head, _VERSION for a
 * protocol other than HTTP/1.x. */
int statsd_http_parse(const char *buf, size_t len, struct statsd_http_req *r);
/* Starts listening; NULL with a reason on failure. */
struct statsd_http *statsd_http_start(const char *listen, statsd_page_fn *fn, void *ctx, char *err, size_t errlen);
/* The fd to watch for EPOLLIN in statsd's loop (an epoll set of the listener and connections). */
int statsd_http_fd(const struct statsd_http *h);
/* Serves whatever is ready (never blocks); call when the fd is readable and once per loop turn. */
void statsd_http_run(struct statsd_http *h);
void statsd_http_stop(struct statsd_http *h);
#endif
