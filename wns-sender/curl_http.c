/*
 * curl_http: wns-sender's HTTP client, libcurl's multi interface behind struct sender_http
 * (common/sender/sender_loop.h), so the shared sender's jobs and the token requests go through it
 * exactly as they would through h2client. HTTPS only; HTTP/2 where the server offers it in
 * ALPN, else HTTP/1.1 with keep-alive (WNS front ends may choose either); at most
 * `connections` connections per host, `max_streams` streams per HTTP/2 connection, and new
 * transfers wait for a stream on an existing connection (CURLOPT_PIPEWAIT) rather than open one.
 * On the sender's loop: libcurl's sockets are the loop's descriptors (the socket callback),
 * each handed to curl_multi_socket_action() when ready; at the end of every turn a due
 * libcurl timer (the timer callback) is handed on too, the finished transfers complete, and
 * the loop's wake-up timer is set to libcurl's timer or the first deadline. Every submitted
 * request completes exactly once, with the whole request (connecting and waiting for a
 * connection included) bounded by the deadline; a connection on which H2C_RECYCLE_EXPIRIES requests ran out of it is closed, as
 * h2client recycles one. The peer is always verified (the configured CA file, or the system store); no
 * redirect is followed. Trusts nothing in an answer: the kept header lines are capped at
 * H2C_HEADERS_MAX and the body at H2C_BODY_MAX (the rest read and dropped). Holds the multi
 * handle, its sockets' loop handles, its wake-up timer and the requests in flight.
 */
#include "wns.h"
#include "daemon.h"
#include "log.h"
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define CH_CONNECT_TIMEOUT_MS 10000 /* TCP and TLS handshakes together, as h2client's */

struct ch_req {
	struct ch *h;
	struct ch_req *prev, *next; /* in flight, in deadline order */
	uint64_t deadline;
	CURL *e;
	struct curl_slist *hdrs;
	char *body;		    /* the request body (libcurl reads it in place) */
	char *rbody, *rhdrs;
	size_t rbody_len, rbody_cap, rhdrs_len, rhdrs_cap;
	int rbody_truncated;
	char errbuf[CURL_ERROR_SIZE];
	h2c_done_fn *done;
	void *ctx;
};

struct ch_sock {
	curl_socket_t fd;
	unsigned expiries;	    /* requests that ran out of their deadline on it */
};

/* One of libcurl's sockets in the loop (libcurl keeps it with curl_multi_assign()). */
struct ch_watch {
	struct ch *h;
	curl_socket_t fd;
	struct loop_fd *lh;
};

struct ch {
	CURLM *m;
	struct loop *lp;
	struct loop_timer *wake;    /* ch_run() due again */
	int closing;		    /* close() is completing what is left */
	uint64_t timer_at;	    /* libcurl's timer (monotonic ms), UINT64_MAX: none */
	long deadline_ms;
	size_t in_flight, max_in_flight;
	char *ca_file;
	struct ch_req *head, *tail;
	struct ch_sock *socks;	    /* libcurl's connections' sockets */
	size_t nsocks, socks_cap;
};

/* Appends n bytes to a buffer kept NUL-terminated and below max; 0, or -1 when bytes were
 * dropped (max reached or no memory). */
static int keep(char **buf, size_t *len, size_t *cap, size_t max, const char *p, size_t n)
{
	int cut = 0;

	if (*len + n + 1 > max) {
		n = *len + 1 < max ? max - 1 - *len : 0;
		cut = 1;
	}
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 1024;
		char *b;
		while (c < *len + n + 1)
			c *= 2;
		if (c > max)
			c = max;
		if ((b = realloc(*buf, c)) == NULL)
			return -1;
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
	return cut ? -1 : 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct ch_req *r = ud;

	if (!r->rbody_truncated && keep(&r->rbody, &r->rbody_len, &r->rbody_cap, H2C_BODY_MAX + 1, p, n) < 0)
		r->rbody_truncated = 1;
	return size * n;
}

/* One header line of the answer; a status line starts a new answer (after a 1xx). */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct ch_req *r = ud;
	size_t len = size * n, l = len;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		r->rhdrs_len = 0;
		return len;
	}
	while (l > 0 && (p[l - 1] == '\r' || p[l - 1] == '\n'))
		l--;
	if (l == 0 || memchr(p, ':', l) == NULL)
		return len;
	if (r->rhdrs_len + l + 2 < H2C_HEADERS_MAX) {
		keep(&r->rhdrs, &r->rhdrs_len, &r->rhdrs_cap, H2C_HEADERS_MAX, p, l);
		keep(&r->rhdrs, &r->rhdrs_len, &r->rhdrs_cap, H2C_HEADERS_MAX, "\r\n", 2);
	}
	return len;
}

/* One of libcurl's sockets is ready. */
static void on_ready(void *arg, uint32_t events)
{
	struct ch_watch *w = arg;
	int running, flags = (events & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) |
			     (events & EPOLLOUT ? CURL_CSELECT_OUT : 0) | (events & EPOLLERR ? CURL_CSELECT_ERR : 0);

	curl_multi_socket_action(w->h->m, w->fd, flags, &running); /* may free w */
}

/* libcurl says which events one of its sockets waits for. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
	struct ch *h = ud;
	struct ch_watch *w = sockp;
	uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (w) {
			loop_del(h->lp, w->lh);
			curl_multi_assign(h->m, fd, NULL);
			free(w);
		}
		return 0;
	}
	if (w) {
		if (loop_mod(h->lp, w->lh, events) == 0)
			return 0;
	} else if ((w = calloc(1, sizeof *w)) != NULL && (w->lh = loop_add(h->lp, fd, events, on_ready, w)) != NULL) {
		w->h = h;
		w->fd = fd;
		curl_multi_assign(h->m, fd, w);
		return 0;
	} else {
		free(w);
	}
	log_error_errno("WNS: watching a libcurl socket");
	return -1;
}

static int on_timer(CURLM *m, long timeout_ms, void *ud)
{
	struct ch *h = ud;

	(void)m;
	h->timer_at = timeout_ms < 0 ? UINT64_MAX : mono_ms() + (uint64_t)timeout_ms;
	return 0;
}

/* A new connection's socket, and its end: kept in h->socks to count its expiries. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct ch *h = ud;
	int fd;

	(void)purpose;
	if (h->nsocks == h->socks_cap) {
		size_t n = h->socks_cap ? 2 * h->socks_cap : 16;
		struct ch_sock *t = realloc(h->socks, n * sizeof *t);
		if (t == NULL)
			return CURL_SOCKET_BAD;
		h->socks = t;
		h->socks_cap = n;
	}
	if ((fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol)) < 0)
		return CURL_SOCKET_BAD;
	h->socks[h->nsocks].fd = fd;
	h->socks[h->nsocks++].expiries = 0;
	return fd;
}

static int on_close_socket(void *ud, curl_socket_t fd)
{
	struct ch *h = ud;

	for (size_t i = 0; i < h->nsocks; i++)
		if (h->socks[i].fd == fd) {
			h->socks[i] = h->socks[--h->nsocks];
			break;
		}
	return close(fd);
}

static void req_free(struct ch_req *r)
{
	if (r->e)
		curl_easy_cleanup(r->e);
	curl_slist_free_all(r->hdrs);
	free(r->body);
	free(r->rbody);
	free(r->rhdrs);
	free(r);
}

/* Completes r (result: libcurl's, or -1 for aborted) and frees it. */
static void req_finish(struct ch *h, struct ch_req *r, int result)
{
	int answered = result == CURLE_OK, timed_out = result == CURLE_OPERATION_TIMEDOUT;
	long status = 0;

	if (r->prev)
		r->prev->next = r->next;
	else
		h->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		h->tail = r->prev;
	h->in_flight--;
	if (answered)
		curl_easy_getinfo(r->e, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(h->m, r->e);
	if (r->done) {
		/* Without an answer, nothing of a partial one is passed on. */
		const struct h2c_response res = {
			.status = status,
			.error = answered ? H2C_OK : result < 0 ? H2C_ERR_ABORTED : timed_out ? H2C_ERR_TIMEOUT : H2C_ERR_TRANSPORT,
			.timed_out = timed_out,
			.aborted = result < 0,
			.error_text = answered ? "" : result < 0 ? "aborted" : timed_out ? "the request ran out of its deadline"
						   : r->errbuf[0] ? r->errbuf : curl_easy_strerror((CURLcode)result),
			.body = answered && r->rbody ? r->rbody : "",
			.body_len = answered ? r->rbody_len : 0,
			.body_truncated = answered && r->rbody_truncated,
			.headers = answered && r->rhdrs ? r->rhdrs : "",
			.headers_len = answered ? r->rhdrs_len : 0,
		};
		r->done(r->ctx, &res);
	}
	req_free(r);
}

static void *ch_open(const struct h2c_opts *o, struct loop *lp)
{
	struct ch *h;
	long conns = o->connections > 0 ? o->connections : 1;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (h = calloc(1, sizeof *h)) == NULL)
		return NULL;
	h->lp = lp;
	h->timer_at = UINT64_MAX;
	h->deadline_ms = o->deadline_ms > 0 ? o->deadline_ms : 10000;
	h->max_in_flight = o->max_in_flight;
	if ((o->ca_file && o->ca_file[0] && (h->ca_file = strdup(o->ca_file)) == NULL) ||
	    (h->m = curl_multi_init()) == NULL) {
		log_error_errno("WNS: cannot set up libcurl");
		free(h->ca_file);
		free(h);
		return NULL;
	}
	curl_multi_setopt(h->m, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(h->m, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->m, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(h->m, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(h->m, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
	curl_multi_setopt(h->m, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns * H2C_ORIGINS_MAX);
	curl_multi_setopt(h->m, CURLMOPT_MAXCONNECTS, conns * H2C_ORIGINS_MAX);
	curl_multi_setopt(h->m, CURLMOPT_MAX_CONCURRENT_STREAMS, o->max_streams > 0 ? o->max_streams : 100L);
	return h;
}

static size_t ch_in_flight(const void *hv)
{
	return ((const struct ch *)hv)->in_flight;
}

/* Milliseconds until ch_run() must run again, or -1. */
static int ch_timeout_ms(const struct ch *h)
{
	uint64_t now = mono_ms(), due = h->timer_at;

	if (h->head && h->head->deadline < due)
		due = h->head->deadline;
	if (due == UINT64_MAX)
		return -1;
	return due <= now ? 0 : due - now > 60000 ? 60000 : (int)(due - now);
}

/* The easy handle of one POST. 0, or -1 (out of memory). */
static int req_setup(struct ch *h, struct ch_req *r, const char *url, const char *const *headers)
{
	CURL *e = r->e;
	int accept = 0, rc = 0;

	for (size_t i = 0; headers && headers[i]; i++) {
		struct curl_slist *l = curl_slist_append(r->hdrs, headers[i]);
		if (l == NULL)
			return -1;
		r->hdrs = l;
		accept |= strncasecmp(headers[i], "accept:", 7) == 0;
	}
	/* No "Expect: 100-continue", and no Accept header the caller did not ask for. */
	if ((r->hdrs = curl_slist_append(r->hdrs, "Expect:")) == NULL ||
	    (!accept && (r->hdrs = curl_slist_append(r->hdrs, "Accept:")) == NULL))
		return -1;
	rc |= curl_easy_setopt(e, CURLOPT_URL, url);
	rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	rc |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	rc |= curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_file)
		rc |= curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
	rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	/* The deadline is expire()'s; libcurl's own timeout only backs it up. */
	rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->deadline_ms + 1000);
	rc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	rc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, h);
	rc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
	rc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, h);
	rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			       h->deadline_ms < CH_CONNECT_TIMEOUT_MS ? h->deadline_ms : (long)CH_CONNECT_TIMEOUT_MS);
	rc |= curl_easy_setopt(e, CURLOPT_USERAGENT, "pushpipe/1");
	/* WNS answers are headers and a few bytes, requests at most WNS_BODY_MAX: the smallest
	 * buffers libcurl takes (its defaults, 16 KiB and 64 KiB per transfer, are most of a
	 * busy sender's memory). */
	rc |= curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1024L);
	rc |= curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
	rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	rc |= curl_easy_setopt(e, CURLOPT_POST, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	return rc ? -1 : 0;
}

static int ch_submit(void *hv, const char *url, const char *const *headers, const void *body, size_t len,
		     h2c_done_fn *done, void *ctx)
{
	struct ch *h = hv;
	struct ch_req *r;

	if (h->closing || h->in_flight >= h->max_in_flight)
		return errno = EAGAIN, -1;
	if (strncasecmp(url, "https://", 8) != 0 || url[8] == '\0')
		return errno = EPROTONOSUPPORT, -1;
	if ((r = calloc(1, sizeof *r)) == NULL || (r->e = curl_easy_init()) == NULL ||
	    (r->body = malloc(len ? len : 1)) == NULL || req_setup(h, r, url, headers) < 0) {
		if (r)
			req_free(r);
		return errno = ENOMEM, -1;
	}
	memcpy(r->body, body, len);
	curl_easy_setopt(r->e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(r->e, CURLOPT_POSTFIELDS, r->body);
	r->h = h;
	r->done = done;
	r->ctx = ctx;
	if (curl_multi_add_handle(h->m, r->e) != CURLM_OK) {
		req_free(r);
		return errno = ENOMEM, -1;
	}
	r->deadline = mono_ms() + (uint64_t)h->deadline_ms;
	r->prev = h->tail;
	if (h->tail)
		h->tail->next = r;
	else
		h->head = r;
	h->tail = r;
	h->in_flight++;
	return 0;
}

/* A request ran out of its deadline on the connection whose local port is port (libcurl 7.88
 * tells a transfer's connection by nothing else): the H2C_RECYCLE_EXPIRIES-th shuts it down,
 * so libcurl finds it dead and opens a new one for what follows (the other requests on it
 * complete without an answer; the sender resends them once). */
static void count_expiry(struct ch *h, long port)
{
	for (size_t i = 0; port > 0 && i < h->nsocks; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		long p;

		if (getsockname(h->socks[i].fd, (struct sockaddr *)&ss, &sl) < 0)
			continue;
		p = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					      : ntohs(((struct sockaddr_in *)&ss)->sin_port);
		if (p != port)
			continue;
		if (++h->socks[i].expiries >= H2C_RECYCLE_EXPIRIES) {
			log_warn("WNS: %u requests ran out of their deadline on one connection: closing it",
				 h->socks[i].expiries);
			h->socks[i].expiries = 0;
			shutdown(h->socks[i].fd, SHUT_RDWR);
		}
		return;
	}
}

/* Requests past their deadline, oldest first (the list is in deadline order). */
static void expire(struct ch *h, uint64_t now)
{
	while (h->head && h->head->deadline <= now) {
		struct ch_req *r = h->head;
		long port = 0;

		curl_easy_getinfo(r->e, CURLINFO_LOCAL_PORT, &port);
		req_finish(h, r, CURLE_OPERATION_TIMEDOUT);
		count_expiry(h, port);
	}
}

static void on_wake(void *arg)
{
	struct ch *h = arg;
	h->wake = NULL; /* ch_run() follows, at the end of the turn */
}

static void ch_run(void *hv)
{
	struct ch *h = hv;
	int running, left;
	CURLMsg *msg;

	if (h->timer_at <= mono_ms()) {
		h->timer_at = UINT64_MAX;
		curl_multi_socket_action(h->m, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	while ((msg = curl_multi_info_read(h->m, &left)) != NULL) {
		struct ch_req *r = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r)
			req_finish(h, r, (int)msg->data.result);
	}
	expire(h, mono_ms());
	if (loop_wake(h->lp, &h->wake, ch_timeout_ms(h), on_wake, h) < 0)
		log_warn("WNS: out of memory for a timer");
}

static void ch_close(void *hv)
{
	struct ch *h = hv;

	if (h == NULL)
		return;
	h->closing = 1;
	while (h->head)
		req_finish(h, h->head, -1);
	curl_multi_cleanup(h->m);
	loop_timer_cancel(h->lp, h->wake);
	free(h->ca_file);
	free(h->socks);
	free(h);
	curl_global_cleanup();
}

const struct sender_http wns_curl_http = {ch_open, ch_close, ch_run, ch_submit, ch_in_flight};
