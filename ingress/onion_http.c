/*
 * onion_http: HTTP/1.1 for ingress-onion. `threads` workers share the listening socket; each
 * is one epoll loop owning its connections and its own links to the router and statsd. A
 * request body is collected up to the configured cap (413 above, the excess read and
 * dropped), decrypted (400 on any failure, bchat-onion.md §7.3), parsed (encrypted error
 * replies, §6.8) and, for actions that change state or queue a notification, forwarded to the
 * router; the connection waits, unread, until the router's verdict (or the link's timeout)
 * and then gets the encrypted reply. Nothing here blocks. Trusts nothing from clients: heads
 * and chunked bodies go through http1.c, every buffer is bounded, and a connection idle for
 * timeout_s is closed whatever it was doing. Holds, per connection, one request at a time.
 */
#include "onion_http.h"
#include "bchat_request.h"
#include "buf.h"
#include "counters.h"
#include "daemon.h"
#include "frame.h"
#include "http1.h"
#include "log.h"
#include "onion_body.h"
#include "onion_crypto.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_MAX 16384	/* a request head must fit; bodies stream through */
#define BODY_KEEP 16384 /* a larger body buffer is freed between requests */
#define ACCEPT_BATCH 64

enum route { ROUTE_NONE, ROUTE_V2, ROUTE_V4, ROUTE_STATS, ROUTE_HEALTH };
enum cstate { C_HEAD, C_BODY, C_CHUNKED, C_WAIT, C_DONE };

struct onion_worker {
	struct onion_server *srv;
	pthread_t tid;
	int epfd;
	char tag_listen, tag_router, tag_statsd; /* epoll tags: only their addresses matter */
	struct router_link *link, *stats_link;
	struct onion_conn *head, *tail; /* every connection, least recently active first */
	uint8_t *fbuf;			/* FRAME_MAX */
	/* each inner reply's bytes, [v4?][outcome], built on first use: they never change */
	unsigned char *replies[2][BCHAT_GROUP_NOT_FOUND + 1];
	size_t reply_len[2][BCHAT_GROUP_NOT_FOUND + 1];
	uint64_t now_ms;
	time_t date_t;
	char date[48]; /* "Date: ...\r\n" for date_t */
};

struct onion_conn {
	int fd;
	struct onion_worker *w;
	struct onion_conn *prev, *next;
	uint64_t last_ms;
	enum cstate st;
	int readable, writable, peer_closed, close_after, driving;
	char *in;
	size_t inlen, scanned;
	char *out;
	size_t outlen, outoff, outcap;
	/* the request being read or answered */
	struct http1_head h;
	enum route route;
	int keep_alive, head_only, too_large;
	unsigned refused; /* 404 or 405: the body is read and dropped, then this is the answer */
	uint64_t body_left;
	struct http1_chunked ck;
	unsigned char *body;
	size_t len, cap;
	char *auth;
	uint32_t status; /* enum frame_status */
	struct onion_request req;
	struct bchat_request br;
	int have_req, have_br;
	void *stats; /* a /get_statistics_data request in progress */
	uint64_t received_us;
};

static void drive(struct onion_conn *c);

static enum route match_route(const struct config *c, const char *url)
{
	for (size_t i = 0; i < c->onion.v2_routes.n; i++)
		if (strcmp(url, c->onion.v2_routes.v[i]) == 0)
			return ROUTE_V2;
	for (size_t i = 0; i < c->onion.v4_routes.n; i++)
		if (strcmp(url, c->onion.v4_routes.v[i]) == 0)
			return ROUTE_V4;
	if (strcmp(url, "/get_statistics_data") == 0)
		return ROUTE_STATS;
	if (strcmp(url, "/healthz") == 0)
		return ROUTE_HEALTH;
	return ROUTE_NONE;
}

/* ---- connections ---- */

static void unlink_conn(struct onion_conn *c)
{
	struct onion_worker *w = c->w;
	*(c->prev ? &c->prev->next : &w->head) = c->next;
	*(c->next ? &c->next->prev : &w->tail) = c->prev;
	c->prev = c->next = NULL;
}

/* Marks activity: the connection moves to the end of the idle order. */
static void touch(struct onion_conn *c)
{
	struct onion_worker *w = c->w;
	c->last_ms = w->now_ms;
	if (w->tail == c)
		return;
	if (c->prev || c->next || w->head == c)
		unlink_conn(c);
	c->prev = w->tail;
	*(w->tail ? &w->tail->next : &w->head) = c;
	w->tail = c;
}

static void request_reset(struct onion_conn *c)
{
	if (c->have_req)
		onion_request_free(&c->req);
	if (c->have_br)
		bchat_request_free(&c->br);
	c->have_req = c->have_br = 0;
	onion_stats_free(c->stats);
	c->stats = NULL;
	free(c->auth);
	c->auth = NULL;
	if (c->cap > BODY_KEEP) {
		free(c->body);
		c->body = NULL;
		c->cap = 0;
	}
	c->len = 0;
	c->too_large = 0;
	c->refused = 0;
	c->head_only = 0;
	c->scanned = 0;
	c->status = 0;
	c->st = C_HEAD;
}

/* Never called while the router or statsd still holds a callback to c (C_WAIT). */
static void conn_close(struct onion_conn *c)
{
	request_reset(c);
	unlink_conn(c);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c->body);
	__atomic_sub_fetch(&c->w->srv->nconns, 1, __ATOMIC_RELAXED);
	free(c);
}

static void consume(struct onion_conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->inlen - n);
	c->inlen -= n;
	c->scanned = c->scanned > n ? c->scanned - n : 0;
}

static int out_append(struct onion_conn *c, const void *p, size_t n)
{
	return buf_append(&c->out, &c->outlen, &c->outcap, p, n, 1024);
}

static const char *status_line(unsigned code)
{
	switch (code) {
	case 200: return "HTTP/1.1 200 OK\r\n";
	case 400: return "HTTP/1.1 400 Bad Request\r\n";
	case 401: return "HTTP/1.1 401 Unauthorized\r\n";
	case 404: return "HTTP/1.1 404 Not Found\r\n";
	case 405: return "HTTP/1.1 405 Method Not Allowed\r\n";
	case 413: return "HTTP/1.1 413 Content Too Large\r\n";
	case 429: return "HTTP/1.1 429 Too Many Requests\r\n";
	case 431: return "HTTP/1.1 431 Request Header Fields Too Large\r\n";
	case 503: return "HTTP/1.1 503 Service Unavailable\r\n";
	}
	return "HTTP/1.1 500 Error\r\n";
}

static const char *date_line(struct onion_worker *w)
{
	time_t t = time(NULL);
	struct tm tm;
	if (t != w->date_t && gmtime_r(&t, &tm) != NULL) {
		w->date_t = t;
		strftime(w->date, sizeof w->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
	}
	return w->date;
}

/* Queues the response; the request is then done (and the connection closed after it when
 * the client asked for that or the request cannot be followed by another). */
static void respond(struct onion_conn *c, unsigned code, const char *type, const char *extra, const void *body,
		    size_t len)
{
	char head[512], digits[24], *d = digits + sizeof digits;
	const char *parts[10];
	size_t n = 0, np = 0, v = len;
	c->close_after = c->close_after || !c->keep_alive;
	*--d = '\0';
	do
		*--d = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	parts[np++] = status_line(code);
	parts[np++] = date_line(c->w);
	parts[np++] = "Content-Length: ";
	parts[np++] = d;
	parts[np++] = "\r\nContent-Type: ";
	parts[np++] = type;
	parts[np++] = "\r\n";
	parts[np++] = extra ? extra : "";
	parts[np++] = c->close_after ? "Connection: close\r\n\r\n" : "\r\n";
	/* The head is assembled from its parts (this runs once per request; snprintf cost more). */
	for (size_t i = 0; i < np && n <= sizeof head; i++) {
		size_t k = strlen(parts[i]);
		if (k > sizeof head - n)
			n = sizeof head + 1;
		else
			memcpy(head + n, parts[i], k), n += k;
	}
	c->st = C_DONE;
	if (n > sizeof head || out_append(c, head, n) < 0 ||
	    (!c->head_only && len > 0 && out_append(c, body, len) < 0)) {
		c->outlen = c->outoff = 0;
		c->close_after = 1;
	}
}

static void plain(struct onion_conn *c, unsigned code, const char *text)
{
	counter_http(code == 404 ? HTTP_ROUTE_UNKNOWN : HTTP_ROUTE_ONION, code);
	respond(c, code, "text/plain", code == 405 ? "Allow: POST\r\n" : NULL, text, strlen(text));
}

/* Malformed HTTP: answered without counting (it never reached a route), then closed. */
static int fail(struct onion_conn *c, unsigned code, const char *text)
{
	c->close_after = 1;
	respond(c, code, "text/plain", NULL, text, strlen(text));
	return 1;
}

void onion_http_answer(struct onion_conn *c, unsigned code, const char *type, const char *extra, char *body,
		       size_t len)
{
	respond(c, code, type, extra, body, len);
	free(body);
}

/* ---- onion requests ---- */

static enum bchat_error verdict(const struct onion_conn *c)
{
	switch (c->status) {
	case STATUS_OK:
		return BCHAT_OK;
	case STATUS_NOT_FOUND:
		return c->br.action == BCHAT_UNREGISTER ? BCHAT_NOT_REGISTERED : BCHAT_GROUP_NOT_FOUND;
	case STATUS_LIMIT:
		/* A registry cap (docs/registry.md, "Caps"): retrying would not help. */
		return BCHAT_INVALID_PARAMETER;
	default:
		/* Busy, router absent or a store error: all retryable for the app. */
		return BCHAT_SERVER_BUSY;
	}
}

/* The inner reply for outcome e on this connection's route (NULL when out of memory). */
static const unsigned char *reply_text(struct onion_conn *c, enum bchat_error e, size_t *len)
{
	struct onion_worker *w = c->w;
	int v4 = c->route == ROUTE_V4;
	const char *product = w->srv->cfg->onion.product_name;
	if ((unsigned)e > BCHAT_GROUP_NOT_FOUND)
		e = BCHAT_INVALID_REQUEST;
	if (w->replies[v4][e] == NULL)
		w->replies[v4][e] = v4 ? bchat_reply_v4(e, product, &w->reply_len[v4][e])
				       : bchat_reply_v2(e, product, &w->reply_len[v4][e]);
	*len = w->reply_len[v4][e];
	return w->replies[v4][e];
}

/* Encrypts the inner reply with the request's key and queues the HTTP 200. */
static void reply(struct onion_conn *c, enum bchat_error e)
{
	size_t ptlen, outlen = 0;
	const unsigned char *pt = reply_text(c, e, &ptlen);
	unsigned char small[1024], *sealed = small;
	char *body = NULL;
	int v4 = c->route == ROUTE_V4;

	if (pt != NULL)
		outlen = ptlen + onion_overhead(c->req.key.cipher);
	if (outlen > sizeof small)
		sealed = malloc(outlen);
	if (pt != NULL && sealed != NULL && onion_seal(&c->req.key, pt, ptlen, sealed) == 0 &&
	    (v4 || (body = bchat_v2_http_body(sealed, outlen, &outlen)) != NULL)) {
		counter_http(HTTP_ROUTE_ONION, 200);
		respond(c, 200, v4 ? "application/octet-stream" : "application/json", NULL,
			v4 ? (char *)sealed : body, outlen);
	} else {
		/* Out of memory: nothing sensible can be sent. */
		c->st = C_DONE;
		c->close_after = 1;
	}
	free(body);
	if (sealed != small)
		free(sealed);
}

static void on_router(void *ctx, uint32_t status, const struct frame *f)
{
	struct onion_conn *c = ctx;
	if (f == NULL && status == STATUS_BUSY) /* no answer: not sent, timed out, or link lost */
		counter_add(CTR_BUSY_REJECTS, 1);
	c->status = status;
	histogram_observe(HIST_ONION_ROUTER_REPLY, counters_now_us() - c->received_us);
	reply(c, verdict(c));
	touch(c);
	drive(c);
}

/* Builds the frame for a parsed action. */
static long build_frame(const struct bchat_request *br, uint8_t *buf)
{
	struct frame_writer w;
	switch (br->action) {
	case BCHAT_REGISTER:
	case BCHAT_REGISTER_LEGACY_GROUPS_ONLY:
		frame_begin(&w, buf, FRAME_REGISTER, 0);
		frame_put_bytes(&w, TAG_ID, br->pubkey, br->pubkey_len);
		frame_put_bytes(&w, TAG_TOKEN, br->token, br->token_len);
		frame_put_u32(&w, TAG_DEVICE, (uint32_t)br->device);
		frame_put_u32(&w, TAG_FLAGS, br->action == BCHAT_REGISTER_LEGACY_GROUPS_ONLY ? FRAME_F_LEGACY_GROUPS_ONLY : 0);
		for (size_t i = 0; i < br->ngroups; i++)
			frame_put_bytes(&w, TAG_GROUP, br->groups[i], br->group_lens[i]);
		break;
	case BCHAT_UNREGISTER:
		frame_begin(&w, buf, FRAME_UNREGISTER, 0);
		frame_put_bytes(&w, TAG_TOKEN, br->token, br->token_len);
		break;
	case BCHAT_SUBSCRIBE_CLOSED_GROUP:
	case BCHAT_UNSUBSCRIBE_CLOSED_GROUP:
		frame_begin(&w, buf, br->action == BCHAT_SUBSCRIBE_CLOSED_GROUP ? FRAME_SUBSCRIBE : FRAME_UNSUBSCRIBE, 0);
		frame_put_bytes(&w, TAG_GROUP, br->group, br->group_len);
		frame_put_bytes(&w, TAG_ID, br->pubkey, br->pubkey_len);
		break;
	case BCHAT_NOTIFY:
		frame_begin(&w, buf, FRAME_NOTIFY, 0);
		frame_put_bytes(&w, TAG_ID, br->send_to, br->send_to_len);
		frame_put_bytes(&w, TAG_DATA, br->data, br->data_len);
		break;
	}
	return frame_end(&w);
}

/* The whole body is here: decrypt, parse, and either answer now or ask the router. */
static void process(struct onion_conn *c)
{
	const struct onion_server *srv = c->w->srv;
	const struct config *cfg = srv->cfg;
	const struct conf_list *sl = c->route == ROUTE_V4 ? &cfg->onion.v4_salts : &cfg->onion.v2_salts;
	struct onion_salts salts;
	struct bchat_config bc;
	enum onion_body_error oe;
	enum bchat_error be;
	long n;

	counter_add(CTR_ONION_REQUESTS, 1);
	memset(&salts, 0, sizeof salts);
	for (size_t i = 0; i < sl->n && i < ONION_SALTS_MAX; i++)
		salts.names[salts.n++] = sl->v[i];
	/* z-base-32 ephemeral keys exist only on v4 (bchat-onion.md §3). */
	oe = onion_body_open(srv->sk, srv->pk, &salts, c->route == ROUTE_V4, c->body, c->len, &c->req);
	if (oe != ONION_OK) {
		counter_add(oe == ONION_E_DECRYPT ? CTR_ONION_DECRYPT_FAILED : CTR_ONION_BAD_REQUESTS, 1);
		log_debug("400: %s", onion_body_error_str(oe));
		plain(c, 400, "Bad Request\n");
		return;
	}
	c->have_req = 1;
	memset(&bc, 0, sizeof bc);
	bc.validate_ids = cfg->onion.validate_ids;
	snprintf(bc.id_prefix, sizeof bc.id_prefix, "%s", cfg->onion.id_prefix);
	bc.max_groups = (size_t)cfg->onion.max_groups;
	be = c->route == ROUTE_V4 ? bchat_parse_v4(&bc, c->req.plaintext, c->req.plaintext_len, &c->br)
				  : bchat_parse_v2(&bc, c->req.plaintext, c->req.plaintext_len, &c->br);
	c->have_br = be == BCHAT_OK;
	if (be != BCHAT_OK) {
		reply(c, be);
		return;
	}
	if (c->br.action == BCHAT_NOTIFY) {
		counter_add(CTR_MESSAGES_TOTAL, 1);
		if (c->br.data_len > (size_t)cfg->onion.max_data_len) {
			/* Accepted and dropped, as the legacy server did (§6.7 step 1). */
			counter_add(CTR_MESSAGES_OVERSIZED, 1);
			log_info("notify dropped: data is %zu bytes, the limit is %ld", c->br.data_len, cfg->onion.max_data_len);
			reply(c, BCHAT_OK);
			return;
		}
	}
	n = build_frame(&c->br, c->w->fbuf);
	if (n < 0) {
		reply(c, BCHAT_INVALID_PARAMETER);
		return;
	}
	if (link_submit(c->w->link, c->w->fbuf, (size_t)n, on_router, c) < 0) {
		counter_add(CTR_BUSY_REJECTS, 1);
		c->status = STATUS_BUSY;
		reply(c, verdict(c));
		return;
	}
	c->st = C_WAIT;
}

void onion_http_stats_ready(struct onion_conn *c)
{
	onion_stats_finish(c->w->srv, c, c->stats);
	if (!c->driving)
		drive(c);
}

/* ---- reading requests ---- */

static void take_body(void *ctx, const unsigned char *p, size_t n)
{
	struct onion_conn *c = ctx;
	if (c->too_large || c->refused || n == 0)
		return;
	if (c->len + n > (size_t)c->w->srv->cfg->onion.max_body) {
		c->too_large = 1; /* the rest is read and dropped */
		return;
	}
	if (c->len + n > c->cap) {
		size_t nc = c->cap ? c->cap : 4096;
		unsigned char *nb;
		while (nc < c->len + n)
			nc *= 2;
		if ((nb = realloc(c->body, nc)) == NULL) {
			c->too_large = 1;
			return;
		}
		c->body = nb;
		c->cap = nc;
	}
	memcpy(c->body + c->len, p, n);
	c->len += n;
}

static int end_request(struct onion_conn *c)
{
	struct onion_worker *w = c->w;
	if (c->refused == 404) {
		plain(c, 404, "Not Found\n");
	} else if (c->refused) {
		plain(c, 405, "Method Not Allowed\n");
	} else if (c->too_large) {
		plain(c, 413, "Payload Too Large\n");
	} else if (c->route == ROUTE_HEALTH) {
		/* GET /healthz: this worker's link to the router (docs/observability.md). */
		plain(c, link_connected(w->link) ? 200 : 503,
		      link_connected(w->link) ? "ok: connected to the router\n" : "unhealthy: not connected to the router\n");
	} else if (c->route == ROUTE_STATS) {
		struct sockaddr_storage peer;
		socklen_t peerlen = sizeof peer;
		if (getpeername(c->fd, (struct sockaddr *)&peer, &peerlen) < 0)
			peerlen = 0;
		c->st = C_WAIT;
		if (onion_stats_begin(w->srv, c, w->link, w->stats_link, c->auth, peerlen ? (struct sockaddr *)&peer : NULL,
				      peerlen, c->body, c->len, &c->stats) < 0) {
			c->st = C_DONE;
			c->close_after = 1;
		}
	} else {
		process(c);
	}
	return 1;
}

/* A complete head of hl bytes is at the start of the input. */
static int begin_request(struct onion_conn *c, size_t hl)
{
	const struct config *cfg = c->w->srv->cfg;
	int has_body = c->h.chunked || c->h.content_length > 0;

	c->received_us = counters_now_us();
	c->route = match_route(cfg, c->h.path);
	c->keep_alive = c->h.keep_alive;
	c->head_only = c->h.method == HTTP1_HEAD;
	if (c->route == ROUTE_STATS && c->h.auth != NULL && (c->auth = strndup(c->h.auth, c->h.auth_len)) == NULL)
		return fail(c, 503, "Service Unavailable\n");
	consume(c, hl);
	/* Refused whatever the body holds; it is still read (and dropped), so the connection can
	 * carry the next request. */
	if (c->route == ROUTE_NONE)
		c->refused = 404;
	else if (c->h.method != HTTP1_POST &&
		 !(c->route == ROUTE_HEALTH && (c->h.method == HTTP1_GET || c->h.method == HTTP1_HEAD)))
		c->refused = 405;
	if (c->refused && c->h.expect_continue && has_body && c->inlen == 0) {
		/* The client waits before sending the body: answer now instead, and close. */
		c->close_after = 1;
		return end_request(c);
	}
	if (c->h.chunked) {
		memset(&c->ck, 0, sizeof c->ck);
		c->st = C_CHUNKED;
	} else {
		c->body_left = has_body ? (uint64_t)c->h.content_length : 0;
		c->too_large = !c->refused && c->body_left > (uint64_t)cfg->onion.max_body;
		c->st = C_BODY;
	}
	if (c->h.expect_continue && c->h.minor >= 1 && has_body && c->inlen == 0) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (out_append(c, cont, sizeof cont - 1) < 0)
			return fail(c, 503, "Service Unavailable\n");
	}
	return 1;
}

/* Uses what the input holds: 1 when something happened, 0 when more bytes are needed. */
static int step(struct onion_conn *c)
{
	long n;
	int done;

	switch (c->st) {
	case C_HEAD:
		if (c->scanned == 0) {
			size_t k = 0;
			while (k < c->inlen && (c->in[k] == '\r' || c->in[k] == '\n'))
				k++;
			consume(c, k);
		}
		if (c->inlen == 0)
			return 0;
		n = http1_parse_head(c->in, c->inlen, &c->scanned, &c->h);
		if (n < 0)
			return fail(c, 400, "Bad Request\n");
		if (n > 0)
			return begin_request(c, (size_t)n);
		return c->inlen == IN_MAX ? fail(c, 431, "Request Header Fields Too Large\n") : 0;
	case C_BODY:
		n = (long)(c->inlen < c->body_left ? c->inlen : c->body_left);
		take_body(c, (unsigned char *)c->in, (size_t)n);
		consume(c, (size_t)n);
		c->body_left -= (uint64_t)n;
		if (c->body_left == 0)
			return end_request(c);
		return n > 0;
	case C_CHUNKED:
		if (c->inlen == 0)
			return 0;
		n = http1_chunked_feed(&c->ck, (unsigned char *)c->in, c->inlen, &done, take_body, c);
		if (n < 0)
			return fail(c, 400, "Bad Request\n");
		consume(c, (size_t)n);
		return done ? end_request(c) : n > 0;
	default:
		return 0;
	}
}

/* 1: bytes arrived; 0: none for now; -1: end of stream or error. */
static int read_more(struct onion_conn *c)
{
	size_t space = IN_MAX - c->inlen;
	ssize_t n = recv(c->fd, c->in + c->inlen, space, 0);
	if (n > 0) {
		c->inlen += (size_t)n;
		/* A short read of a stream socket means it is drained (epoll(7), edge-triggered). */
		if ((size_t)n < space)
			c->readable = 0;
		touch(c);
		return 1;
	}
	if (n < 0 && errno == EINTR)
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		c->readable = 0;
		return 0;
	}
	return -1;
}

/* 1: everything queued is sent; 0: the socket is full; -1: the client is gone. */
static int flush(struct onion_conn *c)
{
	ssize_t n;
	if (!c->writable)
		return 0;
	n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		c->writable = errno == EINTR;
		return 0;
	}
	touch(c);
	c->outoff += (size_t)n;
	if (c->outoff < c->outlen) {
		c->writable = 0;
		return 0;
	}
	c->outoff = c->outlen = 0;
	return 1;
}

/* Moves the connection as far as its bytes allow; may close (free) it. */
static void drive(struct onion_conn *c)
{
	c->driving = 1;
	for (;;) {
		int r;
		if (c->outoff < c->outlen && (r = flush(c)) <= 0) {
			if (r == 0)
				break;
			if (c->st != C_WAIT)
				goto close;
			/* Gone while the router decides: the verdict finds nothing to send to. */
			c->outoff = c->outlen = 0;
			c->close_after = 1;
		}
		if (c->st == C_WAIT)
			break;
		if (c->st == C_DONE) {
			if (c->close_after)
				goto close;
			request_reset(c);
		}
		if (step(c) > 0)
			continue;
		if (!c->readable) {
			if (c->peer_closed)
				goto close;
			break;
		}
		if ((r = read_more(c)) < 0)
			goto close;
		if (r == 0 && c->peer_closed)
			goto close;
		if (r == 0)
			break;
	}
	c->driving = 0;
	return;
close:
	conn_close(c);
}

/* ---- workers ---- */

static void accept_conns(struct onion_worker *w)
{
	struct onion_server *s = w->srv;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
		struct onion_conn *c;
		int one = 1, fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (__atomic_add_fetch(&s->nconns, 1, __ATOMIC_RELAXED) > s->cfg->onion.max_connections) {
			__atomic_sub_fetch(&s->nconns, 1, __ATOMIC_RELAXED);
			close(fd);
			continue;
		}
		if ((c = calloc(1, sizeof *c)) == NULL || (c->in = malloc(IN_MAX)) == NULL) {
			free(c);
			__atomic_sub_fetch(&s->nconns, 1, __ATOMIC_RELAXED);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->fd = fd;
		c->w = w;
		c->writable = 1;
		touch(c);
		ev.data.ptr = c;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			conn_close(c);
	}
}

static void on_conn_event(struct onion_conn *c, uint32_t ev)
{
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = 1;
	if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->peer_closed = 1;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = 1;
	drive(c);
}

/* Closes connections idle for timeout_s; those waiting for a verdict stay (the link's own
 * deadline answers them). */
static void expire_idle(struct onion_worker *w)
{
	uint64_t limit = (uint64_t)w->srv->cfg->onion.timeout_s * 1000;
	struct onion_conn *c = w->head, *next;
	for (; c != NULL && c->last_ms + limit <= w->now_ms; c = next) {
		next = c->next;
		if (c->st != C_WAIT)
			conn_close(c);
	}
}

static void *worker_main(void *arg)
{
	struct onion_worker *w = arg;
	struct onion_server *s = w->srv;
	struct epoll_event ev[64];
	uint64_t next_tick = 0;

	/* Created before the sandbox, started after it (onion_http_run). */
	pthread_mutex_lock(&s->gate_mu);
	while (!s->go)
		pthread_cond_wait(&s->gate, &s->gate_mu);
	pthread_mutex_unlock(&s->gate_mu);
	while (!daemon_stop) {
		int n;
		/* Deadlines need no finer grain than a tenth of a second. */
		if ((w->now_ms = mono_ms()) >= next_tick) {
			link_tick(w->link, w->now_ms);
			link_tick(w->stats_link, w->now_ms);
			expire_idle(w);
			next_tick = w->now_ms + 100;
		}
		/* The frames this turn produced go to the router and statsd together. */
		link_flush(w->link);
		link_flush(w->stats_link);
		n = epoll_wait(w->epfd, ev, 64, 100);
		w->now_ms = mono_ms();
		for (int i = 0; i < n; i++) {
			void *tag = ev[i].data.ptr;
			if (tag == &w->tag_listen)
				accept_conns(w);
			else if (tag == &w->tag_router)
				link_read(w->link);
			else if (tag == &w->tag_statsd)
				link_read(w->stats_link);
			else
				on_conn_event(tag, ev[i].events);
		}
	}
	/* Pending requests are answered Server busy, then every connection closes. */
	link_free(w->link);
	link_free(w->stats_link);
	w->link = w->stats_link = NULL;
	while (w->head != NULL)
		conn_close(w->head);
	onion_thread_cleanup();
	return NULL;
}

static int parse_listen(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	long port;
	char *end;

	if (colon == NULL || (size_t)(colon - s) >= sizeof host)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535)
		return -1;
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static int worker_init(struct onion_server *s, struct onion_worker *w)
{
	const struct conf_ingress_onion *o = &s->cfg->onion;
	/* The pending limit is the daemon's; each worker has its share. */
	size_t pending = ((size_t)o->max_pending + s->nworkers - 1) / s->nworkers;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};

	w->srv = s;
	ev.data.ptr = &w->tag_listen;
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, s->lfd, &ev) < 0 ||
	    (w->fbuf = malloc(FRAME_MAX)) == NULL ||
	    (w->link = link_new(s->router_path, pending, (uint32_t)o->router_timeout_ms, ROLE_INGRESS, 1, w->epfd,
				&w->tag_router)) == NULL ||
	    (w->stats_link = link_new(s->stats_path, 64, (uint32_t)o->router_timeout_ms, ROLE_INGRESS, 0, w->epfd,
				      &w->tag_statsd)) == NULL)
		return -1;
	return pthread_create(&w->tid, NULL, worker_main, w) == 0 ? 0 : -1;
}

int onion_http_start(struct onion_server *s, char *err, size_t errlen)
{
	struct sockaddr_in sa;
	const struct conf_ingress_onion *o = &s->cfg->onion;
	static const char hx[] = "0123456789abcdef";
	int one = 1;

	for (int i = 0; i < 32; i++) {
		s->pk_hex[2 * i] = hx[s->pk[i] >> 4];
		s->pk_hex[2 * i + 1] = hx[s->pk[i] & 15];
	}
	s->pk_hex[64] = '\0';
	s->lfd = -1;
	if (parse_listen(o->listen, &sa) < 0) {
		snprintf(err, errlen, "%s: ingress_onion.listen: expected IPv4 \"address:port\", got \"%s\"", s->cfg->path,
			 o->listen);
		return -1;
	}
	if ((s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s->lfd, 1024) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", o->listen, strerror(errno));
		if (s->lfd >= 0)
			close(s->lfd);
		s->lfd = -1;
		return -1;
	}
	pthread_mutex_init(&s->gate_mu, NULL);
	pthread_cond_init(&s->gate, NULL);
	s->nworkers = (size_t)o->threads;
	if ((s->workers = calloc(s->nworkers, sizeof *s->workers)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < s->nworkers; i++) {
		s->workers[i].epfd = -1;
		if (worker_init(s, &s->workers[i]) < 0) {
			snprintf(err, errlen, "cannot start HTTP worker %zu: %s", i, strerror(errno));
			return -1;
		}
	}
	return 0;
}

void onion_http_run(struct onion_server *s)
{
	uint64_t now = mono_ms();
	/* Connected before the first request can arrive, so none finds its worker without a
	 * router. */
	for (size_t i = 0; i < s->nworkers; i++) {
		link_tick(s->workers[i].link, now);
		link_tick(s->workers[i].stats_link, now);
	}
	pthread_mutex_lock(&s->gate_mu);
	s->go = 1;
	pthread_cond_broadcast(&s->gate);
	pthread_mutex_unlock(&s->gate_mu);
}

void onion_http_stop(struct onion_server *s)
{
	for (size_t i = 0; s->workers != NULL && i < s->nworkers; i++) {
		struct onion_worker *w = &s->workers[i];
		if (w->tid)
			pthread_join(w->tid, NULL);
		if (w->epfd >= 0)
			close(w->epfd);
		link_free(w->link);
		link_free(w->stats_link);
		free(w->fbuf);
		for (int v4 = 0; v4 < 2; v4++)
			for (int e = 0; e <= BCHAT_GROUP_NOT_FOUND; e++)
				free(w->replies[v4][e]);
	}
	free(s->workers);
	s->workers = NULL;
	if (s->lfd >= 0)
		close(s->lfd);
	s->lfd = -1;
}
