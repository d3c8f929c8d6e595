/*
 * http: see http.h. A small HTTP/1.1 server for a loopback listener that serves two pages to
 * scrapers and browsers: one request per connection, answered with "Connection: close". The
 * request head is read whole (at most STATSD_HTTP_HEAD_MAX bytes) and checked by the parser the
 * onion ingress uses (common/http1.c) before it is answered; of it only the method and the path
 * matter, and any body is ignored. After the answer the
 * connection is drained until the client closes, so an unread body never turns the close into
 * a reset. Every connection is closed HTTP_TIMEOUT_MS after it was accepted, whatever it is
 * doing; at most HTTP_CONNS at once, more are closed on accept. The listener and the
 * connections sit in an epoll set of their own whose fd sits in statsd's loop, so pages are
 * rendered in the thread that owns the statistics. Trusts nothing in a request. Holds each
 * connection's head buffer and answer.
 */
#include "http.h"
#include "daemon.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_CONNS 32
#define HTTP_TIMEOUT_MS 10000
#define EV_LISTEN HTTP_CONNS /* epoll tag of the listener; connections are tagged by slot */

enum conn_state { C_FREE, C_HEAD, C_ANSWER, C_DRAIN };

struct conn {
	enum conn_state st;
	int fd;
	uint64_t deadline; /* monotonic ms */
	char *buf;	   /* C_HEAD: the head so far (STATSD_HTTP_HEAD_MAX); C_ANSWER: the answer */
	size_t len, sent;
};

struct statsd_http {
	int lfd, epfd;
	statsd_page_fn *fn;
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

int statsd_http_parse(const char *buf, size_t len, struct statsd_http_req *r)
{
	struct http1_head h;
	size_t skip = 0, scanned = 0;
	long n;

	memset(r, 0, sizeof *r);
	while (skip < len && (buf[skip] == '\r' || buf[skip] == '\n')) /* empty lines before it */
		skip++;
	n = http1_parse_head(buf + skip, len - skip, &scanned, &h);
	if (n == 0)
		return len >= STATSD_HTTP_HEAD_MAX ? STATSD_HTTP_TOO_LONG : STATSD_HTTP_MORE;
	if (n < 0)
		return n == -2 ? STATSD_HTTP_VERSION : STATSD_HTTP_BAD;
	r->method = h.method;
	memcpy(r->path, h.path, sizeof r->path);
	return STATSD_HTTP_OK;
}

static const char *reason(unsigned code)
{
	switch (code) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 505:
		return "HTTP Version Not Supported";
	}
	return "Internal Server Error";
}

#define HEAD_FMT                                                                                   \
	"HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sCache-Control: no-store\r\n" \
	"X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"

/* Replaces c->buf with the whole answer to what the head parsed to (rc, r); NULL when out of
 * memory. Errors and a page that could not be rendered get their reason phrase as the body. */
static void answer(struct statsd_http *h, struct conn *c, int rc, const struct statsd_http_req *r)
{
	const char *type = "text/plain; charset=utf-8", *allow = "";
	unsigned code = 200;
	char *body = NULL, *out, msg[64];
	size_t blen = 0;
	int head = 0, n;

	if (rc != STATSD_HTTP_OK) {
		code = rc == STATSD_HTTP_TOO_LONG ? 431 : rc == STATSD_HTTP_VERSION ? 505 : 400;
	} else if (r->method != HTTP1_GET && r->method != HTTP1_HEAD) {
		code = 405;
		allow = "Allow: GET, HEAD\r\n";
	} else {
		head = r->method == HTTP1_HEAD;
		if ((body = h->fn(h->ctx, r->path, &code, &type, &blen)) == NULL) {
			code = 500;
			type = "text/plain; charset=utf-8";
		}
	}
	if (body == NULL)
		blen = (size_t)snprintf(msg, sizeof msg, "%s\n", reason(code));
	n = snprintf(NULL, 0, HEAD_FMT, code, reason(code), type, blen, allow);
	if ((out = malloc((size_t)n + 1 + (head ? 0 : blen))) != NULL) {
		snprintf(out, (size_t)n + 1, HEAD_FMT, code, reason(code), type, blen, allow);
		if (!head)
			memcpy(out + n, body ? body : msg, blen);
	}
	free(body);
	free(c->buf);
	c->buf = out;
	c->len = (size_t)n + (head ? 0 : blen);
	c->sent = 0;
}

/* ---- connections ---- */

static void conn_close(struct statsd_http *h, struct conn *c)
{
	epoll_ctl(h->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

static void watch(struct statsd_http *h, struct conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)(c - h->c)};
	if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		conn_close(h, c);
}

static void accept_all(struct statsd_http *h, uint64_t now)
{
	int fd;

	while ((fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct conn *c = NULL;
		struct epoll_event ev = {.events = EPOLLIN};
		for (size_t i = 0; i < HTTP_CONNS && c == NULL; i++)
			if (h->c[i].st == C_FREE)
				c = &h->c[i];
		if (c == NULL || (c->buf = malloc(STATSD_HTTP_HEAD_MAX)) == NULL) {
			close(fd);
			continue;
		}
		ev.data.u32 = (uint32_t)(c - h->c);
		if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			free(c->buf);
			c->buf = NULL;
			close(fd);
			continue;
		}
		c->st = C_HEAD;
		c->fd = fd;
		c->len = c->sent = 0;
		c->deadline = now + HTTP_TIMEOUT_MS;
	}
}

/* C_ANSWER: sends what the socket takes; once all is sent, C_DRAIN. */
static void flush(struct statsd_http *h, struct conn *c)
{
	while (c->sent < c->len) {
		ssize_t w = send(c->fd, c->buf + c->sent, c->len - c->sent, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (w <= 0) {
			conn_close(h, c);
			return;
		}
		c->sent += (size_t)w;
	}
	free(c->buf);
	c->buf = NULL;
	shutdown(c->fd, SHUT_WR);
	c->st = C_DRAIN;
	watch(h, c, EPOLLIN);
}

static void conn_event(struct statsd_http *h, struct conn *c)
{
	struct statsd_http_req r;
	char sink[4096];
	ssize_t n;
	int rc;

	if (c->st == C_ANSWER) {
		flush(h, c);
		return;
	}
	if (c->st == C_DRAIN) {
		while ((n = read(c->fd, sink, sizeof sink)) > 0)
			;
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			conn_close(h, c);
		return;
	}
	n = read(c->fd, c->buf + c->len, STATSD_HTTP_HEAD_MAX - c->len);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(h, c);
		return;
	}
	if (n < 0)
		return;
	c->len += (size_t)n;
	if ((rc = statsd_http_parse(c->buf, c->len, &r)) == STATSD_HTTP_MORE)
		return;
	answer(h, c, rc, &r);
	if (c->buf == NULL) {
		conn_close(h, c);
		return;
	}
	c->st = C_ANSWER;
	watch(h, c, EPOLLOUT);
	if (c->st == C_ANSWER)
		flush(h, c);
}

/* ---- the listener ---- */

struct statsd_http *statsd_http_start(const char *listen_on, statsd_page_fn *fn, void *ctx, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct statsd_http *h;
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = EV_LISTEN};
	int one = 1;

	if (statsd_listen_parse(listen_on, &ss, &sslen, err, errlen) < 0)
		return NULL;
	if ((h = calloc(1, sizeof *h)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->fn = fn;
	h->ctx = ctx;
	for (size_t i = 0; i < HTTP_CONNS; i++)
		h->c[i].fd = -1;
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	h->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0 || h->epfd < 0 || setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(h->lfd, (struct sockaddr *)&ss, sslen) < 0 || listen(h->lfd, 64) < 0 ||
	    epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->lfd, &ev) < 0) {
		snprintf(err, errlen, "listen %s: %s", listen_on, strerror(errno));
		statsd_http_stop(h);
		return NULL;
	}
	return h;
}

int statsd_http_fd(const struct statsd_http *h)
{
	return h->epfd;
}

void statsd_http_run(struct statsd_http *h)
{
	struct epoll_event evs[HTTP_CONNS + 1];
	uint64_t now = mono_ms();
	int n = epoll_wait(h->epfd, evs, HTTP_CONNS + 1, 0);

	for (int i = 0; i < n; i++) {
		uint32_t tag = evs[i].data.u32;
		if (tag == EV_LISTEN)
			accept_all(h, now);
		else if (tag < HTTP_CONNS && h->c[tag].st != C_FREE)
			conn_event(h, &h->c[tag]);
	}
	for (size_t i = 0; i < HTTP_CONNS; i++)
		if (h->c[i].st != C_FREE && h->c[i].deadline <= now)
			conn_close(h, &h->c[i]);
}

void statsd_http_stop(struct statsd_http *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < HTTP_CONNS; i++)
		if (h->c[i].st != C_FREE)
			conn_close(h, &h->c[i]);
	if (h->lfd >= 0)
		close(h->lfd);
	if (h->epfd >= 0)
		close(h->epfd);
	free(h);
}
