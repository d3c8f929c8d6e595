/*
 * conn.c: TLS connections on the epoll loop. Accepts (at most max_conns at a time), runs the
 * non-blocking handshake with a deadline, picks HTTP/2 or HTTP/1.1 from ALPN, moves bytes
 * between the socket and the protocol layers, closes gracefully (close_notify, then a short
 * drain) or abruptly (RST), and keeps the timer list of delayed answers.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include "mock.h"

static SSL_CTX *tls_ctx;
static int ep_fd = -1;
static size_t conn_limit = MOCK_MAX_CONNS;
static struct mock_conn *conn_list;
static size_t conn_count;
static uint64_t conn_next_id = 1;
static struct mock_req *timer_head, *timer_tail;

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	static const unsigned char protos[] = "\x02h2\x08http/1.1";
	const unsigned char *offer = mock_cfg.http1_only ? protos + 3 : protos;
	unsigned int offer_len = (unsigned int)(sizeof protos - 1 - (size_t)(offer - protos));
	unsigned char *sel;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, offer, offer_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static const char *tls_error(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (!e)
		return "unexpected end of stream";
	ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	return buf;
}

int conn_tls_init(void)
{
	static const unsigned char sid_ctx[] = "mock-provider";

	tls_ctx = SSL_CTX_new(TLS_server_method());
	if (!tls_ctx)
		return -1;
	SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(tls_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_id_context(tls_ctx, sid_ctx, sizeof sid_ctx - 1);
	if (SSL_CTX_use_certificate_chain_file(tls_ctx, mock_cfg.cert) != 1) {
		mock_log("error", "cannot load certificate %s: %s", mock_cfg.cert, tls_error());
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(tls_ctx, mock_cfg.key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(tls_ctx) != 1) {
		mock_log("error", "cannot load key %s: %s", mock_cfg.key, tls_error());
		return -1;
	}
	SSL_CTX_set_alpn_select_cb(tls_ctx, alpn_select, NULL);
	return 0;
}

void conn_tls_free(void)
{
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
}

void conn_setup(int epfd, size_t max_conns)
{
	ep_fd = epfd;
	conn_limit = max_conns;
}

size_t conn_open_count(void)
{
	return conn_count;
}

/* ---- requests and the timer list ---- */

struct mock_req *req_new(struct mock_conn *c)
{
	struct mock_req *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->conn = c;
	r->cnext = c->reqs;
	if (c->reqs)
		c->reqs->cprev = r;
	c->reqs = r;
	return r;
}

static void timer_unlink(struct mock_req *r)
{
	if (!r->in_timer)
		return;
	if (r->tprev)
		r->tprev->tnext = r->tnext;
	else
		timer_head = r->tnext;
	if (r->tnext)
		r->tnext->tprev = r->tprev;
	else
		timer_tail = r->tprev;
	r->tprev = r->tnext = NULL;
	r->in_timer = 0;
}

static void timer_add(struct mock_req *r, int64_t due)
{
	struct mock_req *p = timer_tail;

	r->due_ms = due;
	while (p && p->due_ms > due)
		p = p->tprev;
	r->tprev = p;
	r->tnext = p ? p->tnext : timer_head;
	if (r->tnext)
		r->tnext->tprev = r;
	else
		timer_tail = r;
	if (p)
		p->tnext = r;
	else
		timer_head = r;
	r->in_timer = 1;
}

void req_free(struct mock_req *r)
{
	struct mock_conn *c = r->conn;
	size_t i;

	timer_unlink(r);
	if (r->cprev)
		r->cprev->cnext = r->cnext;
	else
		c->reqs = r->cnext;
	if (r->cnext)
		r->cnext->cprev = r->cprev;
	if (c->h1_req == r)
		c->h1_req = NULL;
	for (i = 0; i < r->nhdrs; i++) {
		free(r->hdrs[i].name);
		free(r->hdrs[i].value);
	}
	for (i = 0; i < r->nrhdrs; i++) {
		free(r->rhdrs[i].name);
		free(r->rhdrs[i].value);
	}
	free(r->method);
	free(r->path);
	mock_buf_free(&r->body);
	mock_buf_free(&r->rbody);
	mock_buf_free(&r->goaway_data);
	free(r);
}

int64_t timers_next_due(void)
{
	return timer_head ? timer_head->due_ms : -1;
}

void timers_run(int64_t now_mono)
{
	struct mock_req *r;
	struct mock_conn *c;

	while ((r = timer_head) && r->due_ms <= now_mono) {
		timer_unlink(r);
		c = r->conn;
		conn_execute(r); /* may free r (HTTP/1.1) */
		if (c->state == MOCK_CS_H1 && !c->want_close && http1_process(c) < 0)
			c->want_close = MOCK_CLOSE_ABORT;
		conn_after_io(c); /* may free c and its other requests, which leave the list */
	}
}

/* Chooses the answer for a complete request and carries it out now or after its delay. */
void conn_dispatch(struct mock_req *r)
{
	int64_t delay;

	r->dispatched = 1;
	delay = routes_dispatch(r);
	if (delay > 0)
		timer_add(r, mock_mono_ms() + delay);
	else
		conn_execute(r);
}

void conn_execute(struct mock_req *r)
{
	struct mock_conn *c = r->conn;
	uint32_t raise = faults_streams_after_success();

	if (c->state == MOCK_CS_H2) {
		if (h2_respond(r) < 0)
			c->want_close = MOCK_CLOSE_ABORT;
		if (r->success && raise && !c->raised_streams && r->action == MOCK_ACT_REPLY) {
			c->raised_streams = 1;
			h2_raise_streams(c, raise);
		}
	} else if (c->state == MOCK_CS_H1) {
		if (http1_respond(r) < 0)
			c->want_close = MOCK_CLOSE_ABORT;
	}
}

/* ---- connections ---- */

static void want_out(struct mock_conn *c, int on)
{
	struct epoll_event ev;

	if (c->epoll_out == on)
		return;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(ep_fd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->epoll_out = on;
}

int conn_out_append(struct mock_conn *c, const void *data, size_t len)
{
	if (c->out_off && c->out_off == c->out.len) {
		c->out_off = 0;
		mock_buf_reset(&c->out);
	} else if (c->out_off > 65536 && c->out_off > c->out.len / 2) {
		memmove(c->out.p, c->out.p + c->out_off, c->out.len - c->out_off);
		c->out.len -= c->out_off;
		c->out_off = 0;
	}
	return mock_buf_append(&c->out, data, len);
}

void conn_accept_all(int lfd)
{
	struct epoll_event ev;
	struct mock_conn *c;
	int fd, one = 1;

	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				mock_log("error", "accept: %s", strerror(errno));
			return;
		}
		faults_count_conn("accepted");
		if (conn_count >= conn_limit) {
			faults_count_conn("refused");
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c = calloc(1, sizeof *c);
		if (!c || !(c->ssl = SSL_new(tls_ctx))) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->id = conn_next_id++;
		c->state = MOCK_CS_HANDSHAKE;
		c->deadline_ms = mock_mono_ms() + MOCK_HANDSHAKE_MS;
		SSL_set_fd(c->ssl, fd);
		SSL_set_accept_state(c->ssl);
		memset(&ev, 0, sizeof ev);
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(ep_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			SSL_free(c->ssl);
			free(c);
			close(fd);
			continue;
		}
		c->next = conn_list;
		if (conn_list)
			conn_list->prev = c;
		conn_list = c;
		conn_count++;
	}
}

static void conn_close(struct mock_conn *c, int how)
{
	struct linger lg = { 1, 0 };

	if (c->prev)
		c->prev->next = c->next;
	else
		conn_list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	conn_count--;
	epoll_ctl(ep_fd, EPOLL_CTL_DEL, c->fd, NULL);
	if (how == MOCK_CLOSE_ABORT)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	if (c->h2)
		nghttp2_session_del(c->h2); /* calls no callbacks: the requests are freed below */
	while (c->reqs)
		req_free(c->reqs);
	SSL_free(c->ssl);
	close(c->fd);
	mock_buf_free(&c->in);
	mock_buf_free(&c->out);
	free(c);
}

static void conn_read(struct mock_conn *c)
{
	unsigned char buf[16384];
	int n, e, rc;

	while (!c->want_close || c->state == MOCK_CS_LINGER) {
		ERR_clear_error();
		n = SSL_read(c->ssl, buf, sizeof buf);
		if (n > 0) {
			rc = 0;
			if (c->state == MOCK_CS_H2)
				rc = h2_recv(c, buf, (size_t)n);
			else if (c->state == MOCK_CS_H1)
				rc = http1_recv(c, buf, (size_t)n);
			if (rc < 0)
				c->want_close = MOCK_CLOSE_ABORT;
			continue;
		}
		e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			return;
		if (e == SSL_ERROR_WANT_WRITE) {
			want_out(c, 1);
			return;
		}
		/* close_notify, EOF or a TLS error: nothing more will come */
		ERR_clear_error();
		c->want_close = MOCK_CLOSE_NOW;
		return;
	}
}

static void conn_flush(struct mock_conn *c)
{
	int n, e;

	for (;;) {
		if (c->state == MOCK_CS_H2 && c->out.len - c->out_off < 65536 && h2_fill_output(c) < 0) {
			c->want_close = MOCK_CLOSE_ABORT;
			return;
		}
		if (c->out_off == c->out.len)
			break;
		ERR_clear_error();
		n = SSL_write(c->ssl, c->out.p + c->out_off, (int)(c->out.len - c->out_off));
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_WRITE) {
			want_out(c, 1);
			return;
		}
		if (e == SSL_ERROR_WANT_READ)
			return;
		ERR_clear_error();
		c->want_close = MOCK_CLOSE_NOW;
		return;
	}
	c->out_off = 0;
	mock_buf_reset(&c->out);
	want_out(c, 0);
}

static void conn_handshake(struct mock_conn *c)
{
	const unsigned char *alpn = NULL;
	unsigned int alen = 0;
	int rc, e;

	ERR_clear_error();
	rc = SSL_do_handshake(c->ssl);
	if (rc == 1) {
		c->deadline_ms = 0;
		SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
		if (alen == 2 && memcmp(alpn, "h2", 2) == 0) {
			c->state = MOCK_CS_H2;
			faults_count_conn("h2");
			if (h2_session_init(c) < 0) {
				c->want_close = MOCK_CLOSE_ABORT;
				return;
			}
		} else {
			c->state = MOCK_CS_H1;
			c->h1_keepalive = 1;
			faults_count_conn("http/1.1");
		}
		want_out(c, 0);
		conn_read(c);
		return;
	}
	e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ) {
		want_out(c, 0);
	} else if (e == SSL_ERROR_WANT_WRITE) {
		want_out(c, 1);
	} else {
		faults_count_conn("tls_fail");
		mock_log("warn", "connection %llu: TLS handshake failed: %s", (unsigned long long)c->id,
			 e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN ? "connection closed" : tls_error());
		ERR_clear_error();
		c->want_close = MOCK_CLOSE_ABORT;
	}
}

void conn_on_event(struct mock_conn *c, uint32_t events)
{
	(void)events;
	if (c->state == MOCK_CS_HANDSHAKE)
		conn_handshake(c);
	else
		conn_read(c);
	conn_after_io(c);
}

/* Flushes output and carries out a pending close; c may be freed on return. */
void conn_after_io(struct mock_conn *c)
{
	if (c->state == MOCK_CS_LINGER) {
		if (c->want_close == MOCK_CLOSE_NOW || c->want_close == MOCK_CLOSE_ABORT)
			conn_close(c, c->want_close);
		return;
	}
	if (c->want_close == MOCK_CLOSE_ABORT || c->want_close == MOCK_CLOSE_NOW) {
		conn_close(c, c->want_close);
		return;
	}
	if (c->state == MOCK_CS_HANDSHAKE)
		return;
	conn_flush(c);
	if (c->want_close == MOCK_CLOSE_ABORT || c->want_close == MOCK_CLOSE_NOW) {
		conn_close(c, c->want_close);
		return;
	}
	if (c->out_off != c->out.len)
		return; /* still writing */
	if (c->state == MOCK_CS_H2 && !c->want_close && !nghttp2_session_want_read(c->h2) &&
	    !nghttp2_session_want_write(c->h2))
		c->want_close = MOCK_CLOSE_GRACEFUL;
	if (c->want_close == MOCK_CLOSE_GRACEFUL &&
	    (c->state != MOCK_CS_H2 || !nghttp2_session_want_write(c->h2))) {
		/* close_notify, half-close, then drain what the peer still sends for a moment so that
		 * our last bytes (a GOAWAY) are not destroyed by a RST */
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		ERR_clear_error();
		shutdown(c->fd, SHUT_WR);
		c->state = MOCK_CS_LINGER;
		c->want_close = MOCK_CLOSE_NONE;
		c->deadline_ms = mock_mono_ms() + MOCK_LINGER_MS;
		want_out(c, 0);
	}
}

void conn_sweep(int64_t now_mono)
{
	struct mock_conn *c, *next;

	for (c = conn_list; c; c = next) {
		next = c->next;
		if (!c->deadline_ms || now_mono < c->deadline_ms)
			continue;
		if (c->state == MOCK_CS_HANDSHAKE) {
			faults_count_conn("tls_fail");
			mock_log("warn", "connection %llu: TLS handshake timed out", (unsigned long long)c->id);
			conn_close(c, MOCK_CLOSE_ABORT);
		} else {
			conn_close(c, MOCK_CLOSE_NOW);
		}
	}
}

void conn_close_all(void)
{
	while (conn_list)
		conn_close(conn_list, MOCK_CLOSE_NOW);
}
