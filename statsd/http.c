/*
 * http: see http.h. libmicrohttpd in its external-epoll mode: its epoll fd sits in statsd's
 * loop, and pages are rendered in the same thread that owns the statistics, so nothing is
 * shared between threads. Requests carry no body; anything but GET and HEAD gets 405.
 */
#include "http.h"
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct statsd_http {
	struct MHD_Daemon *d;
	statsd_page_fn *fn;
	void *ctx;
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct statsd_http *h = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	unsigned code = 200;
	const char *type = "text/plain; charset=utf-8";
	size_t len = 0;
	char *body;
	static int first;
	(void)version;
	(void)upload;

	if (*con_cls == NULL) {
		*con_cls = &first; /* headers only so far; answer once the (empty) body is read */
		return MHD_YES;
	}
	if (*upload_size > 0) {
		*upload_size = 0; /* bodies are ignored */
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		static const char msg[] = "Method Not Allowed\n";
		r = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, "Allow", "GET, HEAD");
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else {
		body = h->fn(h->ctx, url, &code, &type, &len);
		if (body == NULL) {
			static const char msg[] = "Internal Server Error\n";
			r = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
			code = MHD_HTTP_INTERNAL_SERVER_ERROR;
		} else {
			r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
			MHD_add_response_header(r, "Content-Type", type);
		}
	}
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(mc, code, r);
	MHD_destroy_response(r);
	return ret;
}

struct statsd_http *statsd_http_start(const char *listen, statsd_page_fn *fn, void *ctx, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct statsd_http *h;
	unsigned flags = MHD_USE_EPOLL;

	if (statsd_listen_parse(listen, &ss, &sslen, err, errlen) < 0)
		return NULL;
	if ((h = calloc(1, sizeof *h)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->fn = fn;
	h->ctx = ctx;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->d = MHD_start_daemon(flags, ntohs(((struct sockaddr_in *)&ss)->sin_port), NULL, NULL, on_request, h,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 32u,
				MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (h->d == NULL) {
		snprintf(err, errlen, "listen %s: cannot start the HTTP listener (address in use?)", listen);
		free(h);
		return NULL;
	}
	return h;
}

int statsd_http_fd(const struct statsd_http *h)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	return i ? i->epoll_fd : -1;
}

void statsd_http_run(struct statsd_http *h)
{
	MHD_run(h->d);
}

void statsd_http_stop(struct statsd_http *h)
{
	if (h) {
		MHD_stop_daemon(h->d);
		free(h);
	}
}
