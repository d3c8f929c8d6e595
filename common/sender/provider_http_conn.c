/*
 * provider_http_conn: one connection of the provider HTTP client: a non-blocking TCP connect, the TLS handshake
 * (peer certificate and host name verified, ALPN "h2" required, or "http/1.1" accepted where
 * allowed, then provider_http_h1.c speaks; prior knowledge HTTP/2 over plain TCP in test mode), an
 * nghttp2 client session fed from the socket and drained into it in batches, and the table of
 * its streams. A connection ends on a read or write
 * error, an HTTP/2 protocol error, an unanswered PING, a connect timeout, or, after a GOAWAY,
 * when the server has nothing more to say; the requests still on it then complete without an
 * answer. Trusts nothing it reads (nghttp2 checks the framing; answers are cut at
 * H2C_BODY_MAX and H2C_HEADERS_MAX). Holds the socket, the TLS state, the session, the
 * stream table and the output batch.
 */
#include "provider_http_int.h"
#include "buf.h"
#include "daemon.h"
#include "log.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* The stream table: stream id → request, open addressing with tombstones (stream ids are odd
 * and rising, so an id's home slot is nearly always free or a tombstone when it is added). */
struct h2d_slot_entry {
	int32_t sid;		/* 0 with r NULL: empty; -1 with r NULL: a tombstone */
	struct h2d_req *r;
};
struct h2d_tab {
	unsigned mask, live, tombs;
	struct h2d_slot_entry e[];
};

static unsigned tab_home(const struct h2d_tab *t, int32_t sid)
{
	return ((uint32_t)sid >> 1) & t->mask;
}

/* The slot holding sid, or -1. */
static long tab_find(const struct h2d_tab *t, int32_t sid)
{
	unsigned i = tab_home(t, sid);

	for (unsigned n = 0; n <= t->mask && (t->e[i].r || t->e[i].sid); n++, i = (i + 1) & t->mask)
		if (t->e[i].r && t->e[i].sid == sid)
			return (long)i;
	return -1;
}

static struct h2d_req *tab_get(struct h2d_conn *c, int32_t sid)
{
	long i = c->tab ? tab_find(c->tab, sid) : -1;
	return i < 0 ? NULL : c->tab->e[i].r;
}

static void tab_put(struct h2d_conn *c, int32_t sid, struct h2d_req *r)
{
	struct h2d_tab *t = c->tab;
	unsigned i = tab_home(t, sid);

	while (t->e[i].r) /* never full: at most max_streams live in twice as many slots */
		i = (i + 1) & t->mask;
	if (t->e[i].sid == -1)
		t->tombs--;
	t->e[i].sid = sid;
	t->e[i].r = r;
	t->live++;
}

/* Every slot emptied and the live entries put back: when tombstones fill half the table. */
static void tab_rebuild(struct h2d_conn *c)
{
	struct h2d_tab *t = c->tab;
	unsigned n = 0, cap = t->mask + 1;
	struct h2d_slot_entry *keep = malloc(t->live * sizeof *keep + 1);

	if (keep == NULL)
		return; /* still correct, only slower */
	for (unsigned i = 0; i < cap; i++)
		if (t->e[i].r)
			keep[n++] = t->e[i];
	memset(t->e, 0, cap * sizeof t->e[0]);
	t->live = t->tombs = 0;
	for (unsigned i = 0; i < n; i++)
		tab_put(c, keep[i].sid, keep[i].r);
	free(keep);
}

static void tab_del(struct h2d_conn *c, int32_t sid)
{
	struct h2d_tab *t = c->tab;
	long i = t ? tab_find(t, sid) : -1;

	if (i < 0)
		return;
	t->e[i].r = NULL;
	t->e[i].sid = -1;
	t->live--;
	if (++t->tombs > (t->mask + 1) / 2)
		tab_rebuild(c);
}

static int tab_new(struct h2d_conn *c, unsigned streams)
{
	unsigned cap = 16;

	while (cap < 2 * streams)
		cap *= 2;
	if ((c->tab = calloc(1, sizeof *c->tab + cap * sizeof c->tab->e[0])) == NULL)
		return -1;
	c->tab->mask = cap - 1;
	return 0;
}

SSL_CTX *h2d_tls_ctx(const struct h2c_opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	const char *what = "TLS context";

	if (ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	what = "trust store";
	if (o->ca_file && o->ca_file[0] ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1
					: SSL_CTX_set_default_verify_paths(ctx) != 1)
		goto fail;
	what = "client certificate";
	if (o->cert_file && o->cert_file[0] &&
	    (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, o->key_file && o->key_file[0] ? o->key_file : o->cert_file,
					 SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(ctx) != 1))
		goto fail;
	return ctx;
fail: {
	char e[256];
	ERR_error_string_n(ERR_get_error(), e, sizeof e);
	log_error("h2client: %s: %s", what, e);
	SSL_CTX_free(ctx);
	return NULL;
}
}

static void on_socket(void *arg, uint32_t events)
{
	h2d_conn_event(arg, events);
}

/* Watches c's socket for events in the loop (added at the first call). */
static void watch(struct h2d_conn *c, unsigned events)
{
	if (events == c->epoll_events)
		return;
	if (c->lh == NULL)
		c->lh = loop_add(c->d->lp, c->fd, events, on_socket, c);
	else if (loop_mod(c->d->lp, c->lh, events) < 0)
		return;
	if (c->lh)
		c->epoll_events = events;
}

void h2d_conn_close(struct h2d_conn *c, const char *why)
{
	struct h2d *d = c->d;
	uint64_t now = mono_ms();
	struct h2d_tab *t = c->tab;

	if (c->state == H2D_IDLE)
		return;
	loop_del(d->lp, c->lh);
	c->lh = NULL;
	if (c->fd >= 0)
		close(c->fd);
	if (c->ng)
		nghttp2_session_del(c->ng);
	if (c->ssl)
		SSL_free(c->ssl);
	c->ng = NULL;
	c->ssl = NULL;
	c->fd = -1;
	c->state = H2D_IDLE;
	c->open = 0;
	c->epoll_events = 0;
	c->tab = NULL;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = c->out_cap = 0;
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	if (c->cur) {
		struct h2d_req *r = c->cur;
		c->cur = NULL;
		if (why)
			h2d_finish(d, r, H2D_FAILED, why);
	}
	c->h1 = 0;
	if (why) {
		log_warn("h2client: connection to %s: %s; reconnecting in %u ms at most", d->origin, why,
			 c->backoff_ms);
		c->retry_at = now + (uint64_t)(random() % c->backoff_ms);
		c->backoff_ms = c->backoff_ms * 2 > H2D_BACKOFF_MAX_MS ? H2D_BACKOFF_MAX_MS : c->backoff_ms * 2;
	} else {
		c->retry_at = now + (uint64_t)(random() % H2D_BACKOFF_MIN_MS);
	}
	/* Whatever is still on it ends without an answer (h2d_free() aborts it instead). */
	if (t) {
		for (unsigned i = 0; i <= t->mask; i++)
			if (t->e[i].r && why)
				h2d_finish(d, t->e[i].r, H2D_FAILED, why);
		free(t);
	}
}

static struct h2d_req *stream_req(struct h2d_conn *c, int32_t sid)
{
	return tab_get(c, sid);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2d_req *r = stream_req(arg, f->hd.stream_id);

	(void)ng;
	if (r && f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
		r->status = 0; /* a final answer after an interim 1xx one starts afresh */
		r->rhdrs_len = 0;
	}
	return 0;
}

void h2d_keep(char **buf, size_t *len, size_t *cap, size_t max, const void *p, size_t n, int *cut)
{
	if (*len + n + 1 > max) {
		if (cut)
			*cut = 1;
		if (*len + 1 >= max)
			return;
		n = max - 1 - *len;
	}
	if (buf_reserve(buf, cap, *len + n + 1, 512) < 0) {
		if (cut)
			*cut = 1;
		return;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nl,
		     const uint8_t *value, size_t vl, uint8_t flags, void *arg)
{
	struct h2d_req *r = stream_req(arg, f->hd.stream_id);

	(void)ng;
	(void)flags;
	if (r == NULL || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (nl == 7 && memcmp(name, ":status", 7) == 0) {
		long s = 0;
		for (size_t i = 0; i < vl && i < 3 && value[i] >= '0' && value[i] <= '9'; i++)
			s = s * 10 + (value[i] - '0');
		r->status = s;
	} else if (nl > 0 && name[0] != ':' && r->rhdrs_len + nl + vl + 4 < H2C_HEADERS_MAX) {
		h2d_keep(&r->rhdrs, &r->rhdrs_len, &r->rhdrs_cap, H2C_HEADERS_MAX, name, nl, NULL);
		h2d_keep(&r->rhdrs, &r->rhdrs_len, &r->rhdrs_cap, H2C_HEADERS_MAX, ": ", 2, NULL);
		h2d_keep(&r->rhdrs, &r->rhdrs_len, &r->rhdrs_cap, H2C_HEADERS_MAX, value, vl, NULL);
		h2d_keep(&r->rhdrs, &r->rhdrs_len, &r->rhdrs_cap, H2C_HEADERS_MAX, "\r\n", 2, NULL);
	}
	return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *p, size_t n, void *arg)
{
	struct h2d_req *r = stream_req(arg, sid);

	(void)ng;
	(void)flags;
	if (r)
		h2d_keep(&r->rbody, &r->rbody_len, &r->rbody_cap, H2C_BODY_MAX, p, n, &r->rbody_truncated);
	return 0;
}

static int on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2d_conn *c = arg;
	struct h2d_req *r;

	switch (f->hd.type) {
	case NGHTTP2_SETTINGS:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
			c->remote_max = nghttp2_session_get_remote_settings(ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
		break;
	case NGHTTP2_GOAWAY:
		if (c->state == H2D_READY) {
			log_info("h2client: GOAWAY from %s (%s, last stream %d): draining the connection",
				 c->d->origin, nghttp2_http2_strerror(f->goaway.error_code), f->goaway.last_stream_id);
			c->state = H2D_DRAINING;
		}
		break;
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && (r = stream_req(c, f->hd.stream_id)) != NULL)
			r->complete = 1;
		break;
	}
	return 0;
}

static int on_close(nghttp2_session *ng, int32_t sid, uint32_t err, void *arg)
{
	struct h2d_conn *c = arg;
	struct h2d_req *r = stream_req(c, sid);
	char why[96];

	(void)ng;
	if (c->open > 0)
		c->open--;
	if (r == NULL)
		return 0;
	tab_del(c, sid);
	if (r->complete && r->status >= 200) {
		h2d_finish(c->d, r, H2D_ANSWERED, NULL);
		return 0;
	}
	snprintf(why, sizeof why, "stream closed without an answer (%s)",
		 err == NGHTTP2_REFUSED_STREAM ? "refused, or beyond a GOAWAY" : nghttp2_http2_strerror(err));
	h2d_finish(c->d, r, H2D_FAILED, why);
	return 0;
}

static nghttp2_session_callbacks *callbacks(void)
{
	static nghttp2_session_callbacks *cb;

	if (cb == NULL && nghttp2_session_callbacks_new(&cb) == 0) {
		nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
		nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
		nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
		nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	}
	return cb;
}

static void ready(struct h2d_conn *c)
{
	nghttp2_settings_entry s[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
	nghttp2_session_callbacks *cb = callbacks();

	if (cb == NULL || nghttp2_session_client_new(&c->ng, cb, c) != 0 ||
	    nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, s, 1) != 0 || tab_new(c, c->d->max_streams) < 0) {
		h2d_conn_close(c, "out of memory");
		return;
	}
	c->state = H2D_READY;
	c->remote_max = 0; /* no stream before the server's SETTINGS tell its limit (APNs: 1 at first) */
	c->last_read = mono_ms();
	c->ping_sent = 0;
	c->expiries = 0;
	c->backoff_ms = H2D_BACKOFF_MIN_MS;
	watch(c, EPOLLIN);
	log_info("h2client: connected to %s (%s)", c->d->origin, c->ssl ? SSL_get_version(c->ssl) : "plain");
}

/* The server chose HTTP/1.1: one request at a time, no session. */
static void ready_h1(struct h2d_conn *c)
{
	c->state = H2D_READY;
	c->h1 = 1;
	c->cur = NULL;
	c->remote_max = 1;
	c->last_read = mono_ms();
	c->ping_sent = 0;
	c->expiries = 0;
	c->backoff_ms = H2D_BACKOFF_MIN_MS;
	watch(c, EPOLLIN);
	log_info("h2client: connected to %s (%s, HTTP/1.1)", c->d->origin, SSL_get_version(c->ssl));
}

static void handshake(struct h2d_conn *c)
{
	int rc = SSL_do_handshake(c->ssl), e;
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;
	char why[300];

	if (rc == 1) {
		SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
		if (alpn_len == 2 && memcmp(alpn, "h2", 2) == 0)
			ready(c);
		else if (c->d->o.allow_http1 && (alpn_len == 0 || (alpn_len == 8 && memcmp(alpn, "http/1.1", 8) == 0)))
			ready_h1(c);
		else
			h2d_conn_close(c, "the server does not offer HTTP/2 (ALPN)");
		return;
	}
	e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		watch(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
		return;
	}
	if (SSL_get_verify_result(c->ssl) != X509_V_OK)
		snprintf(why, sizeof why, "TLS: certificate not trusted: %s",
			 X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
	else {
		char es[200];
		ERR_error_string_n(ERR_get_error(), es, sizeof es);
		snprintf(why, sizeof why, "TLS handshake failed: %s", es);
	}
	ERR_clear_error();
	h2d_conn_close(c, why);
}

static void start_tls(struct h2d_conn *c)
{
	struct h2d *d = c->d;
	unsigned char ip[16];
	int is_ip = inet_pton(AF_INET, d->host, ip) == 1 || inet_pton(AF_INET6, d->host, ip) == 1;

	if ((c->ssl = SSL_new(d->tls)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    (!is_ip && SSL_set_tlsext_host_name(c->ssl, d->host) != 1) ||
	    (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), d->host) != 1
		   : SSL_set1_host(c->ssl, d->host) != 1) ||
	    (d->o.allow_http1 ? SSL_set_alpn_protos(c->ssl, (const unsigned char *)"\x02h2\x08http/1.1", 12)
			      : SSL_set_alpn_protos(c->ssl, (const unsigned char *)"\x02h2", 3)) != 0) {
		h2d_conn_close(c, "cannot set up TLS");
		return;
	}
	SSL_set_connect_state(c->ssl);
	c->state = H2D_HANDSHAKE;
	handshake(c);
}

void h2d_conn_open(struct h2d_conn *c, uint64_t now)
{
	struct h2d *d = c->d;
	struct addrinfo hints, *ai = NULL;
	int one = 1, idle = 60, intvl = 20, rc;
	char why[300];

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	/* getaddrinfo blocks the loop for as long as the resolver takes; it runs only when a
	 * connection opens, a few times a day. */
	if ((rc = getaddrinfo(d->host, d->port, &hints, &ai)) != 0) {
		snprintf(why, sizeof why, "cannot resolve %s: %s", d->host, gai_strerror(rc));
		c->state = H2D_CONNECTING; /* so that close() logs and backs off */
		h2d_conn_close(c, why);
		return;
	}
	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->state = H2D_CONNECTING;
	c->started = now;
	if (c->fd < 0) {
		freeaddrinfo(ai);
		snprintf(why, sizeof why, "socket: %s", strerror(errno));
		h2d_conn_close(c, why);
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	rc = connect(c->fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc < 0 && errno != EINPROGRESS) {
		snprintf(why, sizeof why, "connect: %s", strerror(errno));
		h2d_conn_close(c, why);
		return;
	}
	watch(c, EPOLLOUT);
}

/* The socket became writable (or failed) while connecting. */
static void connected(struct h2d_conn *c)
{
	int err = 0;
	socklen_t len = sizeof err;
	char why[128];

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		snprintf(why, sizeof why, "connect: %s", strerror(err));
		h2d_conn_close(c, why);
	} else if (c->d->plain) {
		ready(c);
	} else {
		start_tls(c);
	}
}

static ssize_t body_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *arg)
{
	struct h2d_req *r = src->ptr;
	size_t n = r->body_len - r->body_off;

	(void)ng;
	(void)sid;
	(void)arg;
	if (n > len)
		n = len;
	memcpy(buf, r->body + r->body_off, n);
	r->body_off += n;
	if (r->body_off == r->body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

int h2d_conn_start(struct h2d_conn *c, struct h2d_req *r)
{
	nghttp2_data_provider dp;
	int32_t sid;

	if (c->h1)
		return h2d_h1_start(c, r);
	dp.source.ptr = r;
	dp.read_callback = body_read;
	r->body_off = 0;
	if ((sid = nghttp2_submit_request(c->ng, NULL, r->nv, r->nnv, r->body_len ? &dp : NULL, NULL)) < 0)
		return -1;
	r->stream_id = sid;
	r->c = c;
	tab_put(c, sid, r);
	c->open++;
	return 0;
}

void h2d_conn_cancel(struct h2d_conn *c, struct h2d_req *r)
{
	if (c->h1) { /* an HTTP/1.1 request cannot be called off but by closing */
		c->cur = NULL;
		h2d_conn_close(c, NULL);
		return;
	}
	tab_del(c, r->stream_id);
	if (c->ng)
		nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_CANCEL);
	/* A connection on which requests keep running out of their deadline is presumed stuck (a
	 * front end that stopped answering while TCP looks fine): it takes no new streams. */
	if (++c->expiries >= H2C_RECYCLE_EXPIRIES && c->state == H2D_READY) {
		log_warn("h2client: %u requests ran out of their deadline on a connection to %s; "
			 "opening a new one for new requests",
			 c->expiries, c->d->origin);
		c->state = H2D_DRAINING;
	}
}

/* The server ended the connection: an HTTP/1.1 answer may end with it, and an idle HTTP/1.1
 * connection may be closed at any time; anything else is a failure. */
static void peer_closed(struct h2d_conn *c, const char *why)
{
	if (c->h1 && (h2d_h1_eof(c) || c->cur == NULL))
		why = NULL;
	h2d_conn_close(c, why);
}

/* SSL_read or SSL_write failed with SSL_get_error() e: closes c with the reason. */
static void tls_failed(struct h2d_conn *c, int e, const char *doing)
{
	char why[300], es[200];
	unsigned long err = ERR_get_error();
	int sys = e == SSL_ERROR_SYSCALL && errno != 0;

	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && err == 0) ||
	    ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) { /* no close_notify */
		snprintf(why, sizeof why, "closed by the server%s%s", sys ? ": " : "", sys ? strerror(errno) : "");
		ERR_clear_error();
		peer_closed(c, why);
		return;
	}
	ERR_error_string_n(err, es, sizeof es);
	snprintf(why, sizeof why, "TLS error while %s: %s", doing, es);
	ERR_clear_error();
	h2d_conn_close(c, why);
}

static void conn_read(struct h2d_conn *c)
{
	uint8_t buf[16384];

	while (c->state == H2D_READY || c->state == H2D_DRAINING) {
		ssize_t n;
		if (c->ssl) {
			int e;
			if ((n = SSL_read(c->ssl, buf, sizeof buf)) <= 0) {
				e = SSL_get_error(c->ssl, (int)n);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					return;
				tls_failed(c, e, "reading");
				return;
			}
		} else if ((n = recv(c->fd, buf, sizeof buf, 0)) <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (n == 0)
				peer_closed(c, "closed by the server");
			else
				h2d_conn_close(c, strerror(errno));
			return;
		}
		c->last_read = mono_ms();
		c->ping_sent = 0; /* anything heard proves the connection alive */
		if (c->h1) {
			if (h2d_h1_input(c, buf, (size_t)n) < 0) {
				h2d_conn_close(c, "malformed HTTP/1.1 answer");
				return;
			}
			if (c->h1_close && c->cur == NULL) {
				h2d_conn_close(c, NULL);
				return;
			}
			continue;
		}
		if (nghttp2_session_mem_recv(c->ng, buf, (size_t)n) < 0) {
			h2d_conn_close(c, "HTTP/2 protocol error from the server");
			return;
		}
	}
}

void h2d_conn_event(struct h2d_conn *c, uint32_t events)
{
	switch (c->state) {
	case H2D_CONNECTING:
		connected(c);
		break;
	case H2D_HANDSHAKE:
		handshake(c);
		break;
	case H2D_READY:
	case H2D_DRAINING:
		if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			conn_read(c);
		break;
	}
}

/* Gathers what nghttp2 has to send into c->out; -1 after closing c. */
static int gather(struct h2d_conn *c)
{
	c->out_off = c->out_len = 0;
	while (c->out_len < H2D_OUT_BATCH) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(c->ng, &p);
		if (n < 0) {
			h2d_conn_close(c, nghttp2_strerror((int)n));
			return -1;
		}
		if (n == 0)
			break;
		if (buf_append(&c->out, &c->out_len, &c->out_cap, p, (size_t)n, 16384) < 0) {
			h2d_conn_close(c, "out of memory");
			return -1;
		}
	}
	return 0;
}

void h2d_conn_flush(struct h2d_conn *c)
{
	if (c->state != H2D_READY && c->state != H2D_DRAINING)
		return;
	for (;;) {
		ssize_t n;
		if (c->out_off == c->out_len && (c->h1 || gather(c) < 0 || c->out_len == 0))
			break;
		if (c->ssl) {
			if ((n = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off))) <= 0) {
				int e = SSL_get_error(c->ssl, (int)n);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
					watch(c, EPOLLIN | EPOLLOUT);
					return;
				}
				tls_failed(c, e, "writing");
				return;
			}
		} else if ((n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL)) < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				watch(c, EPOLLIN | EPOLLOUT);
				return;
			}
			h2d_conn_close(c, strerror(errno));
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->state == H2D_IDLE)
		return;
	watch(c, EPOLLIN);
	if (c->h1)
		return;
	if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng))
		h2d_conn_close(c, c->open ? "the connection ended with requests on it" : NULL);
	else if (c->state == H2D_DRAINING && c->open == 0)
		h2d_conn_close(c, NULL);
}

void h2d_conn_timers(struct h2d_conn *c, uint64_t now)
{
	switch (c->state) {
	case H2D_CONNECTING:
	case H2D_HANDSHAKE:
		if (now - c->started >= H2D_CONNECT_TIMEOUT_MS)
			h2d_conn_close(c, "connecting timed out");
		break;
	case H2D_READY:
	case H2D_DRAINING:
		if (c->h1) { /* no PING in HTTP/1.1: an idle connection is closed instead */
			if (c->cur == NULL && now - c->last_read >= c->d->ping_idle_ms)
				h2d_conn_close(c, NULL);
			break;
		}
		if (c->ping_sent && now - c->ping_sent >= c->d->ping_timeout_ms) {
			h2d_conn_close(c, "no answer to a PING");
		} else if (!c->ping_sent && now - c->last_read >= c->d->ping_idle_ms) {
			if (nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL) == 0)
				c->ping_sent = now;
		}
		break;
	}
}

uint64_t h2d_conn_due(const struct h2d_conn *c)
{
	switch (c->state) {
	case H2D_CONNECTING:
	case H2D_HANDSHAKE:
		return c->started + H2D_CONNECT_TIMEOUT_MS;
	case H2D_READY:
	case H2D_DRAINING:
		if (c->h1)
			return c->cur ? UINT64_MAX : c->last_read + c->d->ping_idle_ms;
		return c->ping_sent ? c->ping_sent + c->d->ping_timeout_ms : c->last_read + c->d->ping_idle_ms;
	}
	return UINT64_MAX;
}
