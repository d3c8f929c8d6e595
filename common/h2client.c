/*
 * h2client: the senders' HTTP/2 client (APNs, FCM and its OAuth endpoint, later WNS) on one
 * libcurl multi handle. libcurl's sockets live in a private epoll set whose fd the caller's
 * loop watches, so a sender stays one thread and one loop. Connections are few and long-lived
 * (CURLPIPE_MULTIPLEX with PIPEWAIT: new requests wait for a stream on an open connection
 * rather than opening more), TLS verification is always on, redirects are never followed,
 * every request has a deadline. Trusts the URLs its caller builds; bounds every response it
 * keeps. Holds the connections, the requests in flight and a free list of easy handles.
 */
#include "h2client.h"
#include "daemon.h"
#include "h2direct.h"
#include "log.h"
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

struct h2c_xfer {
	struct h2c *h;
	CURL *easy;
	struct h2c_xfer *prev, *next; /* active list, or free list (next only) */
	struct curl_slist *hdrs;
	char *req_body;
	size_t req_cap;
	char *rbody;
	size_t rbody_len, rbody_cap;
	int rbody_truncated;
	char rhdrs[H2C_HEADERS_MAX];
	size_t rhdrs_len;
	h2c_done_fn *done;
	void *ctx;
	char errbuf[CURL_ERROR_SIZE];
};

struct h2c {
	struct h2c_opts o;
	char *ca_file, *cert_file, *key_file;
	CURLM *multi;
	int epfd;
	int timer_set;
	int closing;		/* h2c_free() is completing what is left */
	uint64_t timer_due;
	size_t in_flight, nfree;
	struct h2c_xfer *active, *free_list;
	struct h2d *direct;	/* the origin of o.direct_origin, straight on nghttp2 */
	/* Deadline expiries per connection, which is known by its local port (libcurl 7.88 has
	 * no connection id); recycle_mono: when the last recycle was decided (0 = never). */
	struct { long port; unsigned expiries; } expired[H2C_EXPIRY_SLOTS];
	unsigned expired_next;
	uint64_t recycle_mono;
};

static int curl_users;

/*
 * Connection recycling. A connection on which two requests ran out of their deadline is
 * presumed stuck (a provider front end that stopped answering while the TCP connection and
 * HTTP/2 PINGs look fine), so new requests must not go to it. libcurl cannot close one
 * connection of its pool on request, but it refuses to reuse a connection older than
 * CURLOPT_MAXLIFETIME_CONN: from the recycle on, every request is given as lifetime the whole
 * seconds since the recycle, rounded up. Connections opened after it stay usable; those opened
 * before it (at least a deadline old by then, the stuck one among them) are not reused and are
 * closed by libcurl once idle. This recycles every connection older than the decision, which
 * with a few long-lived connections per host costs one new handshake each. It relies on the
 * deadline being at least about a second, as any sensible deadline is.
 */
static void note_expiry(struct h2c *h, CURL *e)
{
	long port = 0;
	unsigned i;

	if (curl_easy_getinfo(e, CURLINFO_LOCAL_PORT, &port) != CURLE_OK || port <= 0)
		return; /* never connected: nothing to recycle */
	for (i = 0; i < H2C_EXPIRY_SLOTS; i++)
		if (h->expired[i].port == port)
			break;
	if (i == H2C_EXPIRY_SLOTS) {
		i = h->expired_next++ % H2C_EXPIRY_SLOTS;
		h->expired[i].port = port;
		h->expired[i].expiries = 0;
	}
	if (++h->expired[i].expiries < H2C_RECYCLE_EXPIRIES)
		return;
	log_warn("h2client: %u requests ran out of their deadline on the connection from local port %ld; "
		 "opening new connections for new requests",
		 h->expired[i].expiries, port);
	memset(h->expired, 0, sizeof h->expired);
	h->recycle_mono = mono_ms();
	if (h->recycle_mono == 0)
		h->recycle_mono = 1;
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct h2c *h = userp;
	struct epoll_event ev;

	(void)e;
	memset(&ev, 0, sizeof ev);
	ev.data.fd = s;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, s, NULL);
		curl_multi_assign(h->multi, s, NULL);
		return 0;
	}
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
	/* A closed fd leaves the set by itself and its number may come back: tolerate both. */
	if (socketp == NULL) {
		if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, s, &ev) < 0 && errno == EEXIST)
			epoll_ctl(h->epfd, EPOLL_CTL_MOD, s, &ev);
		curl_multi_assign(h->multi, s, h);
	} else if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT) {
		epoll_ctl(h->epfd, EPOLL_CTL_ADD, s, &ev);
	}
	return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct h2c *h = userp;
	(void)m;
	h->timer_set = timeout_ms >= 0;
	h->timer_due = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct h2c_xfer *x = arg;
	size_t len = size * n, room;

	if (x->rbody_len + 1 >= H2C_BODY_MAX || len == 0) {
		x->rbody_truncated |= len > 0;
		return len;
	}
	room = H2C_BODY_MAX - 1 - x->rbody_len;
	if (len > room)
		x->rbody_truncated = 1;
	else
		room = len;
	if (x->rbody_len + room + 1 > x->rbody_cap) {
		size_t nc = x->rbody_cap ? x->rbody_cap : 1024;
		char *b;
		while (nc < x->rbody_len + room + 1)
			nc *= 2;
		if (nc > H2C_BODY_MAX)
			nc = H2C_BODY_MAX;
		if ((b = realloc(x->rbody, nc)) == NULL) {
			x->rbody_truncated = 1;
			return len;
		}
		x->rbody = b;
		x->rbody_cap = nc;
	}
	memcpy(x->rbody + x->rbody_len, p, room);
	x->rbody_len += room;
	x->rbody[x->rbody_len] = '\0';
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct h2c_xfer *x = arg;
	size_t len = size * n;

	/* A new status line (after an interim 1xx answer) starts a new header block. */
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		x->rhdrs_len = 0;
		return len;
	}
	if (x->rhdrs_len + len < sizeof x->rhdrs) {
		memcpy(x->rhdrs + x->rhdrs_len, p, len);
		x->rhdrs_len += len;
	}
	return len;
}

/* http:// only in test mode and only to this host: a mock, never a provider. */
static int url_allowed(const struct h2c *h, const char *url, int *plain)
{
	CURLU *u;
	char *host = NULL;
	int ok;

	*plain = strncasecmp(url, "http://", 7) == 0;
	if (strncasecmp(url, "https://", 8) == 0)
		return 1;
	if (!*plain || !h->o.allow_plain_http || (u = curl_url()) == NULL)
		return 0;
	ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	     (strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0 || strcasecmp(host, "localhost") == 0);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

struct h2c *h2c_new(const struct h2c_opts *o)
{
	struct h2c *h = calloc(1, sizeof *h);

	if (h == NULL)
		return NULL;
	h->o = *o;
	h->epfd = -1;
	if (curl_users++ == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("h2client: libcurl initialisation failed");
		curl_users--;
		free(h);
		return NULL;
	}
	h->ca_file = o->ca_file && o->ca_file[0] ? strdup(o->ca_file) : NULL;
	h->cert_file = o->cert_file && o->cert_file[0] ? strdup(o->cert_file) : NULL;
	h->key_file = o->key_file && o->key_file[0] ? strdup(o->key_file) : NULL;
	if ((h->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || (h->multi = curl_multi_init()) == NULL) {
		log_error("h2client: %s", h->epfd < 0 ? strerror(errno) : "curl_multi_init failed");
		h2c_free(h);
		return NULL;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, o->connections > 0 ? o->connections : 1L);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, o->max_streams > 0 ? o->max_streams : 100L);
	if (o->direct_origin && o->direct_origin[0]) {
		int plain;
		if (!url_allowed(h, o->direct_origin, &plain) ||
		    (h->direct = h2d_new(o, o->direct_origin, h->epfd)) == NULL) {
			log_error("h2client: cannot serve %s over HTTP/2 directly", o->direct_origin);
			h2c_free(h);
			return NULL;
		}
	}
	return h;
}

int h2c_fd(const struct h2c *h)
{
	return h->epfd;
}

size_t h2c_in_flight(const struct h2c *h)
{
	return h->in_flight + (h->direct ? h2d_in_flight(h->direct) : 0);
}

int h2c_timeout_ms(const struct h2c *h)
{
	uint64_t now;
	int t = -1, td = h->direct ? h2d_timeout_ms(h->direct) : -1;

	if (h->timer_set) {
		now = mono_ms();
		t = h->timer_due <= now ? 0 : h->timer_due - now > 60000 ? 60000 : (int)(h->timer_due - now);
	}
	return t < 0 ? td : td < 0 || t < td ? t : td;
}

static void xfer_release(struct h2c *h, struct h2c_xfer *x)
{
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	x->rbody_len = 0;
	x->rbody_truncated = 0;
	x->rhdrs_len = 0;
	x->done = NULL;
	x->ctx = NULL;
	/* Keep as many handles as may be in flight at once; the connections live in the multi. */
	if (h->nfree < h->o.max_in_flight) {
		curl_easy_reset(x->easy);
		x->next = h->free_list;
		h->free_list = x;
		h->nfree++;
		return;
	}
	curl_easy_cleanup(x->easy);
	free(x->req_body);
	free(x->rbody);
	free(x);
}

static void active_unlink(struct h2c *h, struct h2c_xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		h->active = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
}

static int setup(struct h2c *h, struct h2c_xfer *x, const char *url, int plain, size_t len)
{
	CURL *e = x->easy;
	int rc = 0;

#define SET(opt, val) rc |= (int)curl_easy_setopt(e, opt, val)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PRIVATE, x);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_PROTOCOLS_STR, plain ? "http" : "https");
	SET(CURLOPT_HTTP_VERSION, plain ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : (long)CURL_HTTP_VERSION_2TLS);
	SET(CURLOPT_PIPEWAIT, 1L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (h->ca_file)
		SET(CURLOPT_CAINFO, h->ca_file);
	if (h->cert_file) {
		SET(CURLOPT_SSLCERT, h->cert_file);
		SET(CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (h->key_file)
		SET(CURLOPT_SSLKEY, h->key_file);
	SET(CURLOPT_TIMEOUT_MS, h->o.deadline_ms > 0 ? h->o.deadline_ms : 10000L);
	if (h->recycle_mono) { /* see note_expiry() */
		long life = (long)((mono_ms() - h->recycle_mono + 999) / 1000);
		SET(CURLOPT_MAXLIFETIME_CONN, life < 1 ? 1L : life);
	}
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, 60L);
	SET(CURLOPT_TCP_KEEPINTVL, 20L);
	SET(CURLOPT_USERAGENT, "pushpipe/1");
	SET(CURLOPT_HTTPHEADER, x->hdrs);
	SET(CURLOPT_POSTFIELDS, x->req_body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
#undef SET
	return rc == 0 ? 0 : -1;
}

int h2c_submit(struct h2c *h, const char *url, const char *const *headers, const void *body, size_t len,
	       h2c_done_fn *done, void *ctx)
{
	struct h2c_xfer *x;
	int plain;

	if (h->closing || h2c_in_flight(h) >= h->o.max_in_flight) {
		errno = EAGAIN;
		return -1;
	}
	if (!url_allowed(h, url, &plain)) {
		errno = EPROTONOSUPPORT;
		return -1;
	}
	if (h->direct && h2d_owns(h->direct, url))
		return h2d_submit(h->direct, url, headers, body, len, done, ctx);
	if ((x = h->free_list) != NULL) {
		h->free_list = x->next;
		h->nfree--;
		x->next = NULL;
	} else {
		if ((x = calloc(1, sizeof *x)) == NULL)
			return errno = ENOMEM, -1;
		if ((x->easy = curl_easy_init()) == NULL) {
			free(x);
			return errno = ENOMEM, -1;
		}
		x->h = h;
	}
	if (len + 1 > x->req_cap) {
		char *b = realloc(x->req_body, len + 1);
		if (b == NULL)
			goto fail;
		x->req_body = b;
		x->req_cap = len + 1;
	}
	if (len)
		memcpy(x->req_body, body, len);
	x->req_body[len] = '\0';
	for (size_t i = 0; headers && headers[i]; i++) {
		struct curl_slist *l = curl_slist_append(x->hdrs, headers[i]);
		if (l == NULL)
			goto fail;
		x->hdrs = l;
	}
	/* HTTP/1.1 fallback (an OAuth endpoint) must not wait for "100 Continue". */
	{
		struct curl_slist *l = curl_slist_append(x->hdrs, "Expect:");
		if (l == NULL)
			goto fail;
		x->hdrs = l;
	}
	x->errbuf[0] = '\0';
	if (setup(h, x, url, plain, len) < 0 || curl_multi_add_handle(h->multi, x->easy) != CURLM_OK)
		goto fail;
	x->done = done;
	x->ctx = ctx;
	x->prev = NULL;
	x->next = h->active;
	if (h->active)
		h->active->prev = x;
	h->active = x;
	h->in_flight++;
	return 0;
fail:
	xfer_release(h, x);
	errno = ENOMEM;
	return -1;
}

static void finish(struct h2c *h, struct h2c_xfer *x, CURLcode rc, int aborted)
{
	struct h2c_response r;
	h2c_done_fn *done = x->done;
	void *ctx = x->ctx;

	memset(&r, 0, sizeof r);
	r.error = (int)rc;
	r.aborted = aborted;
	r.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
	r.error_text = aborted ? "aborted" : x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
	if (r.timed_out && !aborted)
		note_expiry(h, x->easy);
	/* A partial answer is no answer: the caller retries. */
	if (rc == CURLE_OK && !aborted)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r.status);
	r.body = x->rbody ? x->rbody : "";
	r.body_len = x->rbody_len;
	r.body_truncated = x->rbody_truncated;
	r.headers = x->rhdrs;
	r.headers_len = x->rhdrs_len;
	active_unlink(h, x);
	h->in_flight--;
	if (done)
		done(ctx, &r);
	xfer_release(h, x);
}

static void collect(struct h2c *h)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		CURL *e = m->easy_handle;
		CURLcode rc = m->data.result;
		struct h2c_xfer *x = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(h->multi, e);
		if (x)
			finish(h, x, rc, 0);
	}
}

void h2c_run(struct h2c *h)
{
	struct epoll_event evs[64];
	int running, n;

	n = epoll_wait(h->epfd, evs, 64, 0);
	for (int i = 0; i < n; i++) {
		int mask = 0;
		if (evs[i].data.u64 & H2D_EV_TAG) {
			h2d_event(h->direct, (uint32_t)evs[i].data.u64, evs[i].events);
			continue;
		}
		if (evs[i].events & EPOLLIN)
			mask |= CURL_CSELECT_IN;
		if (evs[i].events & EPOLLOUT)
			mask |= CURL_CSELECT_OUT;
		if (evs[i].events & (EPOLLERR | EPOLLHUP))
			mask |= CURL_CSELECT_ERR;
		curl_multi_socket_action(h->multi, evs[i].data.fd, mask, &running);
	}
	if (h->timer_set && mono_ms() >= h->timer_due) {
		h->timer_set = 0;
		curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	collect(h);
	if (h->direct)
		h2d_run(h->direct);
}

void h2c_free(struct h2c *h)
{
	if (h == NULL)
		return;
	h->closing = 1;
	h2d_free(h->direct);
	h->direct = NULL;
	while (h->active) {
		struct h2c_xfer *x = h->active;
		curl_multi_remove_handle(h->multi, x->easy);
		finish(h, x, CURLE_ABORTED_BY_CALLBACK, 1);
	}
	while (h->free_list) {
		struct h2c_xfer *x = h->free_list;
		h->free_list = x->next;
		curl_easy_cleanup(x->easy);
		free(x->req_body);
		free(x->rbody);
		free(x);
	}
	if (h->multi)
		curl_multi_cleanup(h->multi);
	if (h->epfd >= 0)
		close(h->epfd);
	free(h->ca_file);
	free(h->cert_file);
	free(h->key_file);
	free(h);
	if (--curl_users == 0)
		curl_global_cleanup();
}

const char *h2c_header(const struct h2c_response *r, const char *name, char *buf, size_t buflen)
{
	size_t nl = strlen(name), pos = 0;

	while (pos < r->headers_len) {
		const char *line = r->headers + pos;
		const char *end = memchr(line, '\n', r->headers_len - pos);
		size_t ll = end ? (size_t)(end - line) : r->headers_len - pos;

		pos += ll + 1;
		if (ll > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl + 1, *ve = line + ll;
			size_t vl;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			vl = (size_t)(ve - v);
			if (buflen == 0)
				return NULL;
			if (vl >= buflen)
				vl = buflen - 1;
			memcpy(buf, v, vl);
			buf[vl] = '\0';
			return buf;
		}
	}
	return NULL;
}

uint64_t h2c_retry_after_ms(const char *value, uint64_t now_wall_ms)
{
	const uint64_t cap = 86400000;
	const char *p = value;
	uint64_t v = 0;
	time_t t;

	if (value == NULL)
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p >= '0' && *p <= '9') {
		for (; *p >= '0' && *p <= '9'; p++)
			if ((v = v * 10 + (uint64_t)(*p - '0')) > cap / 1000)
				return cap;
		while (*p == ' ' || *p == '\t')
			p++;
		return *p == '\0' ? v * 1000 : 0;
	}
	t = curl_getdate(p, NULL);
	if (t <= 0 || (uint64_t)t * 1000 <= now_wall_ms)
		return 0;
	v = (uint64_t)t * 1000 - now_wall_ms;
	return v > cap ? cap : v;
}
