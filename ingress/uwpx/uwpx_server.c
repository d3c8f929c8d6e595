/*
 * uwpx_server: connections, TLS and the router round trips of ingress-uwpx (uwpx_server.h).
 *
 * A connection is READ (taking bytes until a whole message is buffered), WAIT (its message
 * went to the router), or WRITE (its reply is being written). Sockets are edge-triggered, so
 * pump() always runs a connection until OpenSSL wants more I/O, and it is called again
 * whenever the connection leaves WAIT. A reply buffer stays where it is until SSL_write has
 * taken it whole (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER is off).
 * Everything is a callback of the daemon's event loop (loop.c): the listener, each connection
 * (a handle of its own), the router link (a loop_watch handle), and a 50 ms timer for deadlines.
 */
#include "uwpx_server.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "../router_link.h"
#include "uwpx_msg.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define IN_FIRST 4096
#define TICK_MS 50

enum cstate { C_FREE = 0, C_READ, C_WAIT, C_WRITE };

struct conn {
	enum cstate st;
	int fd;
	struct loop_fd *h;	/* its handle in the loop */
	SSL *ssl;
	uint8_t *in;
	size_t inlen, incap;
	char *out;		/* the reply being written, JSON + NUL */
	size_t outlen;
	int close_after;	/* oversize: close once the reply is out */
	int got_first;		/* first_timeout_s is over, idle_timeout_s applies */
	uint64_t deadline;	/* first/idle deadline (READ and WRITE) */
	uint64_t req_deadline;	/* WAIT: the request's deadline */
	struct uwpx_server *srv;
	struct uwpx_request *req;
	char addr[64];
};

struct uwpx_server {
	const struct config *cfg;
	struct uwpx_limits lim;
	SSL_CTX *ctx;
	struct loop *lp;
	int lfd;
	struct router_link *link;
	struct conn *conns;
	size_t nslots, nactive;
	size_t *free_slots, nfree;
	uint8_t *fbuf;		/* FRAME_MAX, for request frames */
};

static void pump(struct uwpx_server *s, size_t slot);
static void on_router(void *ctx, uint32_t status, const struct frame *f);

/* ---- listener and TLS ---- */

static int listen_on(const char *spec, char *err, size_t errlen)
{
	char host[256];
	const char *port, *colon = strrchr(spec, ':');
	struct addrinfo hints, *ai = NULL;
	int fd = -1, one = 1, rc;
	size_t hl;

	if (colon == NULL || colon == spec || colon[1] == '\0')
		goto bad;
	port = colon + 1;
	hl = (size_t)(colon - spec);
	if (spec[0] == '[') {
		if (spec[hl - 1] != ']' || hl < 3)
			goto bad;
		spec++, hl -= 2;
	}
	if (hl >= sizeof host)
		goto bad;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "ingress_uwpx.listen \"%s\": %s", host, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		snprintf(err, errlen, "ingress_uwpx.listen %s:%s: %s", host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
bad:
	snprintf(err, errlen, "ingress_uwpx.listen: \"%s\" is not host:port or [v6]:port", spec);
	return -1;
}

static SSL_CTX *tls_context(const struct conf_ingress_uwpx *u, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	const char *what = NULL;

	if (u->cert_file[0] == '\0' || u->key_file[0] == '\0') {
		snprintf(err, errlen, "ingress_uwpx.cert_file and ingress_uwpx.key_file are required");
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "SSL_CTX_new failed");
		return NULL;
	}
	/* TLS 1.2 is what the clients pin; 1.3 is offered too. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF); /* a client closing without close_notify just closed */
	/* Whole-buffer writes from a buffer that never moves: one SSL_write = one record. */
	SSL_CTX_clear_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, u->cert_file) != 1)
		what = u->cert_file;
	else if (SSL_CTX_use_PrivateKey_file(ctx, u->key_file, SSL_FILETYPE_PEM) != 1)
		what = u->key_file;
	else if (SSL_CTX_check_private_key(ctx) != 1)
		what = "the key does not match the certificate";
	if (what != NULL) {
		char e[160];
		ERR_error_string_n(ERR_get_error(), e, sizeof e);
		snprintf(err, errlen, "TLS: %s: %s", what, e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* ---- connections ---- */

static struct conn *slot_conn(struct uwpx_server *s, size_t slot)
{
	return &s->conns[slot];
}

static void conn_close(struct uwpx_server *s, size_t slot, const char *why)
{
	struct conn *c = slot_conn(s, slot);

	if (c->st == C_FREE)
		return;
	log_debug("%s: closed (%s)", c->addr, why);
	if (c->ssl) {
		ERR_clear_error();
		if (strcmp(why, "client closed") != 0 && strcmp(why, "TLS error") != 0)
			(void)SSL_shutdown(c->ssl); /* best effort: the socket is non-blocking */
		SSL_free(c->ssl);
	}
	loop_del(s->lp, c->h);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c->req);
	memset(c, 0, sizeof *c);
	c->fd = -1;
	s->free_slots[s->nfree++] = slot;
	s->nactive--;
}

/* Queues a reply buffer (taking it) for writing; NULL (out of memory) closes the connection. */
static void set_reply(struct uwpx_server *s, size_t slot, char *buf, size_t len, int is_error)
{
	struct conn *c = slot_conn(s, slot);

	if (is_error)
		counter_add(CTR_UWPX_ERRORS, 1);
	if (buf == NULL) {
		conn_close(s, slot, "out of memory");
		return;
	}
	c->out = buf;
	c->outlen = len;
	c->st = C_WRITE;
	/* A client gets the idle time to take its reply, however long the router took. */
	c->deadline = mono_ms() + (uint64_t)s->cfg->uwpx.idle_timeout_s * 1000;
}

static void reply(struct uwpx_server *s, size_t slot, enum uwpx_result r)
{
	size_t len = 0;
	const struct uwpx_request *q = slot_conn(s, slot)->req;
	char *buf = q ? uwpx_reply_to(q, r, &len) : uwpx_reply(r, &len); /* in the request's version */
	set_reply(s, slot, buf, len, r != UWPX_OK);
}

static void log_outcome(const struct conn *c, const struct uwpx_request *req, const char *what)
{
	char dev[32];
	log_debug("%s: %s device %s: %s", c->addr, uwpx_action_name(req->action),
		  log_redact(req->device_id, UWPX_ID_LEN, dev, sizeof dev), what);
}

/* Sends the validated request to the router; the reply (or a deadline) ends the wait. */
static void forward(struct uwpx_server *s, size_t slot)
{
	struct conn *c = slot_conn(s, slot);
	struct uwpx_request *q = c->req;
	struct frame_writer w;
	uint32_t within = (uint32_t)(q->action == UWPX_REQUEST_TEST_PUSH ? s->cfg->uwpx.test_push_deadline_ms
									  : s->cfg->uwpx.router_timeout_ms);
	uint8_t type = q->action == UWPX_SET_CHANNEL_URI	 ? FRAME_UWPX_CHANNEL
		       : q->action == UWPX_SET_PUSH_ACCOUNTS ? FRAME_UWPX_ACCOUNTS
							     : FRAME_UWPX_TEST;
	long n;

	frame_begin(&w, s->fbuf, type, 0);
	frame_put_bytes(&w, TAG_DEVICE_ID, q->device_id, UWPX_ID_LEN);
	if (q->action == UWPX_SET_CHANNEL_URI)
		frame_put_bytes(&w, TAG_URI, q->channel_uri, q->channel_uri_len);
	if (q->action == UWPX_SET_PUSH_ACCOUNTS) {
		frame_put_u32(&w, TAG_VERSION, (uint32_t)q->version);
		for (size_t i = 0; i < q->naccounts; i++)
			frame_put_bytes(&w, TAG_ACCOUNT, q->accounts[i], UWPX_ID_LEN);
	}
	if (q->action == UWPX_REQUEST_TEST_PUSH)
		counter_add(CTR_UWPX_TEST_PUSHES, 1);
	n = frame_end(&w);
	/* Set before the request goes: the link's deadline for it is never earlier. */
	c->req_deadline = mono_ms() + within;
	if (n < 0 || link_submit_within(s->link, s->fbuf, (size_t)n, within, on_router, c) < 0) {
		log_outcome(c, q, "router not reachable");
		reply(s, slot, UWPX_E_INTERNAL);
		return;
	}
	c->st = C_WAIT;
}

/* One whole message, the bytes before its NUL. */
static void handle_message(struct uwpx_server *s, size_t slot, const uint8_t *msg, size_t len)
{
	struct conn *c = slot_conn(s, slot);
	enum uwpx_result r;

	if (c->req == NULL && (c->req = malloc(sizeof *c->req)) == NULL) {
		conn_close(s, slot, "out of memory");
		return;
	}
	r = uwpx_parse(&s->lim, msg, len, c->req);
	if (r == UWPX_EMPTY)
		return;
	counter_add(CTR_UWPX_REQUESTS, 1);
	c->got_first = 1;
	c->deadline = mono_ms() + (uint64_t)s->cfg->uwpx.idle_timeout_s * 1000;
	if (r != UWPX_OK) {
		log_debug("%s: refused: %s", c->addr, uwpx_error_string(r));
		reply(s, slot, r);
		return;
	}
	if (c->req->action == UWPX_SET_CHANNEL_URI) {
		const char *host;
		size_t hl = uwpx_uri_host(c->req->channel_uri, c->req->channel_uri_len, &host);
		log_debug("%s: set_channel_uri host %.*s", c->addr, (int)hl, host);
	}
	forward(s, slot);
}

/* Drops the first message (and its NUL) from the input buffer. */
static void consume(struct conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->inlen - n);
	c->inlen -= n;
}

/* Makes room for more input, up to max_message + 1 bytes in all. */
static int grow(struct uwpx_server *s, struct conn *c)
{
	size_t cap = (size_t)s->cfg->uwpx.max_message + 1, want;
	uint8_t *p;

	if (c->inlen < c->incap)
		return 0;
	want = c->incap == 0 ? IN_FIRST : c->incap * 2;
	if (want > cap)
		want = cap;
	if (want <= c->incap || (p = realloc(c->in, want)) == NULL)
		return -1;
	c->in = p;
	c->incap = want;
	return 0;
}

/* OpenSSL's verdict on a call that did not complete: 0 = wait for I/O, -1 = connection over. */
static int ssl_wait(struct conn *c, int rc, const char **why)
{
	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		*why = "client closed";
		return -1;
	case SSL_ERROR_SYSCALL:
		*why = (rc == 0 || errno == 0 || errno == ECONNRESET || errno == EPIPE) ? "client closed" : "TLS error";
		return -1;
	default:
		*why = "TLS error";
		return -1;
	}
}

static void pump(struct uwpx_server *s, size_t slot)
{
	struct conn *c = slot_conn(s, slot);
	size_t max = (size_t)s->cfg->uwpx.max_message;
	const char *why = NULL;

	for (;;) {
		long end;
		int rc;

		if (c->st == C_FREE || c->st == C_WAIT)
			return;
		if (c->st == C_WRITE) {
			ERR_clear_error();
			rc = SSL_write(c->ssl, c->out, (int)c->outlen);
			if (rc <= 0) {
				if (ssl_wait(c, rc, &why) < 0)
					conn_close(s, slot, why);
				return;
			}
			free(c->out);
			c->out = NULL;
			c->outlen = 0;
			c->st = C_READ;
			if (c->close_after) {
				conn_close(s, slot, "message over the size cap");
				return;
			}
			c->deadline = mono_ms() + (uint64_t)s->cfg->uwpx.idle_timeout_s * 1000;
			continue;
		}
		/* READ: answer what is buffered first, in order; read only when nothing is. */
		end = uwpx_frame_end(c->in, c->inlen, max);
		if (end >= 0) {
			handle_message(s, slot, c->in, (size_t)end);
			if (c->st != C_FREE)
				consume(c, (size_t)end + 1);
			continue;
		}
		if (end == -2) {
			log_debug("%s: message over %zu bytes", c->addr, max);
			c->close_after = 1;
			c->got_first = 1;
			counter_add(CTR_UWPX_REQUESTS, 1);
			if (c->req)
				c->req->reply_version = 0; /* not the previous message's version */
			reply(s, slot, UWPX_E_MALFORMED);
			continue;
		}
		if (grow(s, c) < 0) {
			conn_close(s, slot, "out of memory");
			return;
		}
		ERR_clear_error();
		rc = SSL_read(c->ssl, c->in + c->inlen, (int)(c->incap - c->inlen));
		if (rc <= 0) {
			if (ssl_wait(c, rc, &why) < 0)
				conn_close(s, slot, why);
			return;
		}
		c->inlen += (size_t)rc;
	}
}

static void on_conn(void *arg, uint32_t events)
{
	struct conn *c = arg;

	(void)events;
	pump(c->srv, (size_t)(c - c->srv->conns));
}

static void accept_all(void *arg, uint32_t events)
{
	struct uwpx_server *s = arg;

	(void)events;
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t sl = sizeof sa;
		struct conn *c;
		size_t slot;
		int one = 1;
		int fd = accept4(s->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				log_warn_errno("accept");
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		if (s->nfree == 0) {
			log_debug("connection refused: %zu connections open", s->nactive);
			close(fd);
			continue;
		}
		slot = s->free_slots[--s->nfree];
		c = slot_conn(s, slot);
		memset(c, 0, sizeof *c);
		c->fd = fd;
		c->srv = s;
		if (getnameinfo((struct sockaddr *)&sa, sl, c->addr, sizeof c->addr, NULL, 0, NI_NUMERICHOST) != 0)
			strcpy(c->addr, "?");
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if ((c->ssl = SSL_new(s->ctx)) == NULL || SSL_set_fd(c->ssl, fd) != 1 ||
		    (c->h = loop_add(s->lp, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, on_conn, c)) == NULL) {
			if (c->ssl)
				SSL_free(c->ssl);
			close(fd);
			memset(c, 0, sizeof *c);
			s->free_slots[s->nfree++] = slot;
			log_warn("cannot set up a connection");
			continue;
		}
		SSL_set_accept_state(c->ssl);
		c->st = C_READ;
		c->deadline = mono_ms() + (uint64_t)s->cfg->uwpx.first_timeout_s * 1000;
		s->nactive++;
		pump(s, slot);
	}
}

/* ---- router answers ---- */

static int alnum_str(const struct frame_field *fl, char *out)
{
	if (fl->len < 1 || fl->len > UWPX_NODE_MAX)
		return 0;
	for (uint32_t i = 0; i < fl->len; i++) {
		char ch = (char)fl->val[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
			return 0;
	}
	memcpy(out, fl->val, fl->len);
	out[fl->len] = '\0';
	return 1;
}

int uwpx_nodes_parse(const struct uwpx_request *q, const struct frame *f, struct uwpx_node *nodes)
{
	struct frame_field fl;
	size_t pos = 0, n = 0, want = q->naccounts;
	int bad = 0;

	if (want > UWPX_ACCOUNTS_CAP)
		return -1;
	memset(nodes, 0, want * sizeof *nodes);
	/* Groups of (ACCOUNT, NODE, SECRET, STATUS): each ACCOUNT starts the next one. An ACCOUNT
	 * beyond those asked for ends the parse before anything is written for it. */
	while (!bad && f->type == FRAME_NODES && frame_next(f, &pos, &fl) == 0) {
		struct uwpx_node *nd = n > 0 ? &nodes[n - 1] : NULL;
		switch (fl.tag) {
		case TAG_ACCOUNT:
			if (n >= want || fl.len != UWPX_ID_LEN || memcmp(fl.val, q->accounts[n], UWPX_ID_LEN) != 0) {
				bad = 1;
				break;
			}
			nodes[n++].ok = -1; /* no status yet */
			break;
		case TAG_NODE:
			bad = nd == NULL || (fl.len > 0 && !alnum_str(&fl, nd->node));
			break;
		case TAG_SECRET:
			bad = nd == NULL || (fl.len > 0 && !alnum_str(&fl, nd->secret));
			break;
		case TAG_STATUS:
			bad = nd == NULL || fl.len != 4;
			if (!bad)
				nd->ok = frame_field_u32(&fl) == STATUS_OK;
			break;
		default:
			break;
		}
	}
	for (size_t i = 0; i < n && !bad; i++) {
		if (nodes[i].ok < 0)
			nodes[i].ok = 0;
		if (nodes[i].ok && (nodes[i].node[0] == '\0' || nodes[i].secret[0] == '\0'))
			bad = 1;
		if (!nodes[i].ok)
			nodes[i].node[0] = nodes[i].secret[0] = '\0';
	}
	return bad || n != want ? -1 : 0;
}

/* FRAME_NODES (or a plain OK for no accounts) → the accounts reply; nodes that do not match
 * the request → internal error. */
static void nodes_reply(struct uwpx_server *s, size_t slot, const struct frame *f)
{
	struct conn *c = slot_conn(s, slot);
	struct uwpx_request *q = c->req;
	struct uwpx_node nodes[UWPX_ACCOUNTS_CAP];
	size_t len = 0;
	char *buf;

	if (uwpx_nodes_parse(q, f, nodes) < 0) {
		log_warn("%s: router's nodes do not match the request", c->addr);
		reply(s, slot, UWPX_E_INTERNAL);
		return;
	}
	buf = uwpx_reply_accounts(q, nodes, s->cfg->xmpp.domain, &len);
	log_outcome(c, q, "accounts stored");
	if (buf == NULL)
		reply(s, slot, UWPX_E_INTERNAL);
	else
		set_reply(s, slot, buf, len, 0);
}

/* The router's answer (f) or its absence (f NULL: not sent, link lost, or deadline passed). */
static void answer(struct uwpx_server *s, size_t slot, const struct frame *f)
{
	struct conn *c = slot_conn(s, slot);
	struct uwpx_request *q = c->req;
	uint32_t st = STATUS_ERROR;
	enum uwpx_result r = UWPX_E_INTERNAL;
	/* The link times a request out at its deadline, never before; earlier is a lost link. */
	int deadline = f == NULL && mono_ms() >= c->req_deadline;

	c->st = C_READ;
	/* An empty account list may also be confirmed with a plain OK. */
	if (f != NULL && q->action == UWPX_SET_PUSH_ACCOUNTS &&
	    (f->type == FRAME_NODES || (f->type == FRAME_REPLY && q->naccounts == 0 &&
					frame_u32(f, TAG_STATUS, STATUS_ERROR) == STATUS_OK))) {
		nodes_reply(s, slot, f);
		pump(s, slot);
		return;
	}
	if (f != NULL && f->type == FRAME_REPLY)
		st = frame_u32(f, TAG_STATUS, STATUS_ERROR);
	if (f == NULL && deadline && q->action == UWPX_REQUEST_TEST_PUSH)
		r = UWPX_OK; /* unknown at the deadline: stays queued (docs/uwpx.md) */
	else if (f != NULL && st == STATUS_OK && (q->action != UWPX_SET_PUSH_ACCOUNTS))
		r = UWPX_OK;
	else if (f != NULL && st == STATUS_NOT_FOUND && q->action != UWPX_SET_CHANNEL_URI)
		r = UWPX_E_DEVICE_UNKNOWN;
	else if (f != NULL && st == STATUS_FAILED && q->action == UWPX_REQUEST_TEST_PUSH)
		r = UWPX_E_TEST_PUSH;
	log_outcome(c, q, f ? (r == UWPX_OK ? "ok" : uwpx_error_string(r))
			    : deadline ? (r == UWPX_OK ? "no outcome by the deadline, answered success" : "router timeout")
				       : "router connection lost");
	reply(s, slot, r);
	pump(s, slot);
}

/* The link's completion of a connection's request (router_link.h). */
static void on_router(void *ctx, uint32_t status, const struct frame *f)
{
	struct conn *c = ctx;
	struct uwpx_server *s = c->srv;

	(void)status; /* f carries it; without f the request had no answer */
	if (c->st == C_WAIT) /* else the connection was closed while it waited */
		answer(s, (size_t)(c - s->conns), f);
}

/* Every 50 ms: the first/idle deadlines, the router link's deadlines, the counters. */
static void tick(void *arg)
{
	struct uwpx_server *s = arg;
	uint64_t now = mono_ms();

	for (size_t i = 0; i < s->nslots; i++) {
		struct conn *c = &s->conns[i];
		if ((c->st == C_READ || c->st == C_WRITE) && c->deadline <= now)
			conn_close(s, i, c->got_first ? "idle timeout" : "no message in time");
	}
	link_tick(s->link, now);
	counters_flush();
}

/* ---- set-up and loop ---- */

static void on_link(void *arg, uint32_t events)
{
	struct uwpx_server *s = arg;

	(void)events;
	link_read(s->link);
}

static void flush_link(void *arg)
{
	struct uwpx_server *s = arg;
	link_flush(s->link);
}

struct uwpx_server *uwpx_server_new(const struct config *c, struct loop *lp, char *err, size_t errlen)
{
	struct uwpx_server *s = calloc(1, sizeof *s);
	const struct conf_ingress_uwpx *u = &c->uwpx;
	struct loop_fd *link_h;
	char path[256];

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cfg = c;
	s->lp = lp;
	s->lfd = -1;
	s->lim.max_accounts = (size_t)u->max_accounts;
	s->lim.uri.suffixes = (const char *const *)u->channel_suffixes.v;
	s->lim.uri.nsuffixes = u->channel_suffixes.n;
	s->lim.uri.paths = (const char *const *)u->channel_paths.v;
	s->lim.uri.npaths = u->channel_paths.n;
	s->lim.uri.allow_loopback = u->allow_loopback_channels;
	s->nslots = (size_t)u->max_connections;
	if (c->xmpp.domain[0] == '\0') {
		snprintf(err, errlen, "ingress_xmpp.domain: required (it is the push_bare_jid of every account reply)");
		goto fail;
	}
	if (config_socket(c, "router.sock", path, sizeof path) == NULL) {
		snprintf(err, errlen, "state_dir too long for a socket path");
		goto fail;
	}
	s->conns = calloc(s->nslots, sizeof *s->conns);
	s->free_slots = calloc(s->nslots, sizeof *s->free_slots);
	s->fbuf = malloc(FRAME_MAX);
	if (s->conns == NULL || s->free_slots == NULL || s->fbuf == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < s->nslots; i++) {
		s->conns[i].fd = -1;
		s->free_slots[s->nfree++] = s->nslots - 1 - i;
	}
	if ((s->ctx = tls_context(u, err, errlen)) == NULL || (s->lfd = listen_on(u->listen, err, errlen)) < 0)
		goto fail;
	/* One request per connection at most: a pending slot for each. */
	if ((link_h = loop_watch(lp, on_link, s)) == NULL ||
	    (s->link = link_new(path, s->nslots, (uint32_t)u->router_timeout_ms, ROLE_INGRESS, 1, loop_epfd(lp),
				link_h)) == NULL) {
		snprintf(err, errlen, "cannot set up the link to the router");
		goto fail;
	}
	if (loop_add(lp, s->lfd, EPOLLIN, accept_all, s) == NULL || loop_timer(lp, 0, TICK_MS, tick, s) == NULL ||
	    loop_on_turn(lp, flush_link, s) < 0) {
		snprintf(err, errlen, "event loop: %s", strerror(errno));
		goto fail;
	}
	return s;
fail:
	uwpx_server_free(s);
	return NULL;
}

int uwpx_server_reload_tls(struct uwpx_server *s, const struct conf_ingress_uwpx *u, char *err, size_t errlen)
{
	SSL_CTX *fresh = tls_context(u, err, errlen);
	if (fresh == NULL)
		return -1;
	/* Connections under way keep the context they started with (SSL holds a reference). */
	SSL_CTX_free(s->ctx);
	s->ctx = fresh;
	return 0;
}

void uwpx_server_free(struct uwpx_server *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; s->conns && i < s->nslots; i++)
		if (s->conns[i].st != C_FREE)
			conn_close(s, i, "stopping");
	link_free(s->link); /* after the connections: nobody is left to answer */
	if (s->lfd >= 0)
		close(s->lfd);
	SSL_CTX_free(s->ctx);
	free(s->conns);
	free(s->free_slots);
	free(s->fbuf);
	free(s);
}
