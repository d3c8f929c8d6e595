/*
 * http: see http.h. libmicrohttpd serves a loopback listener for scrapers and browsers, one
 * request per connection (every answer says "Connection: close"). It parses the request head
 * (malformed → 400, too large for its 16 KiB connection buffer → 431, not HTTP/1.x → 505);
 * here only the method and the path matter, and any body is ignored. The route table is the
 * caller's (statsd/main.c). Every connection is closed HTTP_TIMEOUT_MS after it was accepted,
 * whatever it is doing (this file's timer: libmicrohttpd's own timeout only measures
 * silence); at most HTTP_CONNS at once. libmicrohttpd runs without threads of its own, from
 * statsd's loop, so pages are rendered in the thread that owns the statistics. Trusts nothing
 * in a request. Holds the open connections' accept times.
 */
#include "http.h"
#include "daemon.h"
#include "log.h"
#include "mhd_log.h"
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_CONNS 32
#define HTTP_TIMEOUT_MS 10000
#define HTTP_POOL (16 * 1024) /* per connection: the request head and the answer's head */

struct conn {
	int fd; /* -1: free */
	uint64_t deadline; /* monotonic ms */
};

struct statsd_http {
	struct MHD_Daemon *mhd;
	const struct statsd_route *routes;
	void *ctx;
	struct conn c[HTTP_CONNS];
};

int statsd_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sslen, char *err, size_t errlen)
{
	char host[64];
	const char *colon, *hs = s;
	size_t hl;
	char *end;
	long port;

	memset(ss, 0, sizeof *ss);
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':') {
			snprintf(err, errlen, "listen \"%s\": expected [ADDRESS]:PORT", s);
			return -1;
		}
		hs = s + 1;
		hl = (size_t)(rb - hs);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL) {
			snprintf(err, errlen, "listen \"%s\": expected HOST:PORT", s);
			return -1;
		}
		hl = (size_t)(colon - s);
	}
	port = strtol(colon + 1, &end, 10);
	if (hl == 0 || hl >= sizeof host || colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535) {
		snprintf(err, errlen, "listen \"%s\": expected HOST:PORT with a port from 1 to 65535", s);
		return -1;
	}
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127) {
			snprintf(err, errlen, "listen \"%s\": statsd only listens on a loopback address (127.0.0.0/8, ::1)", s);
			return -1;
		}
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*sslen = sizeof *v4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) {
			snprintf(err, errlen, "listen \"%s\": statsd only listens on a loopback address (127.0.0.0/8, ::1)", s);
			return -1;
		}
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof *v6;
		return 0;
	}
	snprintf(err, errlen, "listen \"%s\": the host must be a numeric loopback address or localhost", s);
	return -1;
}

/* ---- requests ---- */

static const char *reason(unsigned code)
{
	switch (code) {
	case 200:
		return "OK";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	}
	return "Internal Server Error";
}

static enum MHD_Result answer(struct MHD_Connection *mc, unsigned code, const char *type, char *body, size_t len,
			      const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result rc;
	char msg[64];

	if (body == NULL) {
		len = (size_t)snprintf(msg, sizeof msg, "%s\n", reason(code));
		r = MHD_create_response_from_buffer(len, msg, MHD_RESPMEM_MUST_COPY);
	} else {
		r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	}
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_NO ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_NO ||
	    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") == MHD_NO ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_NO ||
	    (allow != NULL && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) == MHD_NO)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	rc = MHD_queue_response(mc, code, r);
	MHD_destroy_response(r);
	return rc;
}

/* Answered as soon as the head is in: the body, if any, is never read. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
	struct statsd_http *h = cls;
	const char *plain = "text/plain; charset=utf-8", *type = plain;
	unsigned code = 200;
	size_t len = 0;
	char *body;
	(void)version;
	(void)upload;
	(void)req_cls;
	*upload_size = 0;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return answer(mc, 405, plain, NULL, 0, "GET, HEAD");
	for (const struct statsd_route *r = h->routes; r->path != NULL; r++) {
		if (strcmp(url, r->path) != 0)
			continue;
		if ((body = r->fn(h->ctx, &code, &type, &len)) == NULL)
			return answer(mc, 500, plain, NULL, 0, NULL);
		return answer(mc, code, type, body, len, NULL);
	}
	return answer(mc, 404, plain, NULL, 0, NULL);
}

/* ---- connections ---- */

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct statsd_http *h = cls;
	struct conn *c = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (c != NULL)
			c->fd = -1;
		return;
	}
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return;
	for (size_t i = 0; i < HTTP_CONNS; i++)
		if (h->c[i].fd < 0) {
			h->c[i].fd = ci->connect_fd;
			h->c[i].deadline = mono_ms() + HTTP_TIMEOUT_MS;
			*socket_context = &h->c[i];
			return;
		}
	/* More than HTTP_CONNS: closed at once (libmicrohttpd's own limit, twice as high, would
	 * leave them in the backlog). */
	shutdown(ci->connect_fd, SHUT_RDWR);
}

/* ---- the listener ---- */

struct statsd_http *statsd_http_start(const char *listen_on, const struct statsd_route *routes, void *ctx, char *err,
				      size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct statsd_http *h;
	int one = 1, lfd;

	if (statsd_listen_parse(listen_on, &ss, &sslen, err, errlen) < 0)
		return NULL;
	if ((h = calloc(1, sizeof *h)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->routes = routes;
	h->ctx = ctx;
	for (size_t i = 0; i < HTTP_CONNS; i++)
		h->c[i].fd = -1;
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(lfd, (struct sockaddr *)&ss, sslen) < 0 || listen(lfd, 64) < 0) {
		snprintf(err, errlen, "listen %s: %s", listen_on, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		free(h);
		return NULL;
	}
	/* No thread of its own: statsd's loop runs it. It takes the listening socket. */
	h->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				  MHD_OPTION_LISTEN_SOCKET, lfd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)(2 * HTTP_CONNS),
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(HTTP_TIMEOUT_MS / 1000),
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_POOL,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
	if (h->mhd == NULL || MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD) == NULL) {
		snprintf(err, errlen, "listen %s: libmicrohttpd did not start", listen_on);
		if (h->mhd == NULL)
			close(lfd);
		statsd_http_stop(h);
		return NULL;
	}
	return h;
}

int statsd_http_fd(const struct statsd_http *h)
{
	return MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd;
}

void statsd_http_run(struct statsd_http *h)
{
	uint64_t now = mono_ms();
	for (size_t i = 0; i < HTTP_CONNS; i++)
		if (h->c[i].fd >= 0 && h->c[i].deadline <= now) {
			shutdown(h->c[i].fd, SHUT_RDWR);
			h->c[i].deadline = UINT64_MAX;
		}
	MHD_run(h->mhd);
}

void statsd_http_stop(struct statsd_http *h)
{
	if (h == NULL)
		return;
	if (h->mhd != NULL)
		MHD_stop_daemon(h->mhd);
	free(h);
}
