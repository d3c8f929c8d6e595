/*
 * provider_http: the provider HTTP client (its functions keep the h2direct_ prefix): the requests
 * of one origin over a few connections of its own (HTTP/2 on nghttp2,
 * or HTTP/1.1 where the server chooses it and the client allows it; non-blocking sockets, TLS
 * by OpenSSL with the peer always verified). Requests queue in
 * submission order and go onto the ready connection with the fewest open streams, never past
 * the configured or the server's stream limit; new connections open while requests wait and
 * fewer than the configured number are up. Frames of a loop turn leave in one write.
 * A GOAWAY drains its connection (the streams the server refused complete without an answer,
 * for the caller to resend) and a new one replaces it; a failed connection completes its
 * streams the same way and is retried after a doubling, jittered backoff; a connection silent
 * for H2D_PING_IDLE_MS is PINGed and closed when the PING goes unanswered; one on which
 * H2C_RECYCLE_EXPIRIES requests ran out of their deadline takes no new streams. Every request
 * completes exactly once. Trusts its caller's URLs (h2client checks them) and the TLS
 * verification; bounds what it keeps of every answer. Holds the connections (provider_http_conn.c,
 * provider_http_h1.c) and the requests.
 */
#include "provider_http_int.h"
#include "daemon.h"
#include "log.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "https://host[:port]" of url into d->origin, host and port. */
static int parse_origin(struct h2d *d, const char *url)
{
	const char *p, *a, *end;
	size_t n;

	if (strncasecmp(url, "https://", 8) == 0)
		d->plain = 0, p = url + 8;
	else if (strncasecmp(url, "http://", 7) == 0)
		d->plain = 1, p = url + 7;
	else
		return -1;
	for (end = p; *end && *end != '/' && *end != '?' && *end != '#'; end++)
		;
	if ((n = (size_t)(end - url)) >= sizeof d->origin || end == p)
		return -1;
	memcpy(d->origin, url, n);
	d->origin[n] = '\0';
	d->origin_len = n;
	memcpy(d->authority, p, (size_t)(end - p));
	d->authority[end - p] = '\0';
	if (*p == '[') { /* [v6]:port */
		if ((a = memchr(p, ']', (size_t)(end - p))) == NULL || (size_t)(a - p - 1) >= sizeof d->host)
			return -1;
		memcpy(d->host, p + 1, (size_t)(a - p - 1));
		d->host[a - p - 1] = '\0';
		a++;
	} else {
		for (a = p; a < end && *a != ':'; a++)
			;
		if ((size_t)(a - p) >= sizeof d->host)
			return -1;
		memcpy(d->host, p, (size_t)(a - p));
		d->host[a - p] = '\0';
	}
	if (a < end && *a == ':' && a + 1 < end && (size_t)(end - a - 1) < sizeof d->port) {
		memcpy(d->port, a + 1, (size_t)(end - a - 1));
		d->port[end - a - 1] = '\0';
	} else if (a == end) {
		strcpy(d->port, d->plain ? "80" : "443");
	} else {
		return -1;
	}
	return d->host[0] ? 0 : -1;
}

struct h2d *h2d_new(const struct h2c_opts *o, const char *url, struct loop *lp, SSL_CTX *tls)
{
	struct h2d *d = calloc(1, sizeof *d);
	long n = o->connections > 0 ? o->connections : 1;

	if (d == NULL)
		return NULL;
	if (parse_origin(d, url) < 0 || (!d->plain && tls == NULL)) {
		free(d);
		return NULL;
	}
	d->o = *o;
	d->lp = lp;
	d->tls = tls;
	d->max_conns = n > H2D_CONNS_MAX ? H2D_CONNS_MAX : (unsigned)n;
	d->nslots = 2 * d->max_conns; /* draining connections keep a slot until their streams end */
	d->max_streams = o->max_streams > 0 ? (unsigned)o->max_streams : 100;
	d->deadline_ms = o->deadline_ms > 0 ? (uint64_t)o->deadline_ms : 10000;
	d->ping_idle_ms = o->ping_idle_ms > 0 ? (uint64_t)o->ping_idle_ms : H2D_PING_IDLE_MS;
	d->ping_timeout_ms = d->ping_idle_ms < H2D_PING_TIMEOUT_MS ? d->ping_idle_ms : H2D_PING_TIMEOUT_MS;
	for (unsigned i = 0; i < d->nslots; i++) {
		d->slot[i].d = d;
		d->slot[i].slot = i;
		d->slot[i].fd = -1;
		d->slot[i].backoff_ms = H2D_BACKOFF_MIN_MS;
	}
	return d;
}

int h2d_owns(const struct h2d *d, const char *url)
{
	return strncasecmp(url, d->origin, d->origin_len) == 0 &&
	       (url[d->origin_len] == '\0' || url[d->origin_len] == '/' || url[d->origin_len] == '?');
}

size_t h2d_in_flight(const struct h2d *d)
{
	return d->in_flight;
}

static void list_del(struct h2d_req **head, struct h2d_req **tail, struct h2d_req *r, int pend)
{
	struct h2d_req **prevp = pend ? &r->pprev : &r->prev, **nextp = pend ? &r->pnext : &r->next;
	struct h2d_req *prev = *prevp, *next = *nextp;

	if (prev)
		*(pend ? &prev->pnext : &prev->next) = next;
	else
		*head = next;
	if (next)
		*(pend ? &next->pprev : &next->prev) = prev;
	else
		*tail = prev;
	*prevp = *nextp = NULL;
}

static void list_add_tail(struct h2d_req **head, struct h2d_req **tail, struct h2d_req *r, int pend)
{
	*(pend ? &r->pprev : &r->prev) = *tail;
	*(pend ? &r->pnext : &r->next) = NULL;
	if (*tail)
		*(pend ? &(*tail)->pnext : &(*tail)->next) = r;
	else
		*head = r;
	*tail = r;
}

static void req_release(struct h2d *d, struct h2d_req *r)
{
	r->done = NULL;
	r->ctx = NULL;
	if (d->nfree < d->o.max_in_flight && d->nfree < H2D_FREE_MAX) {
		r->next = d->free_list;
		d->free_list = r;
		d->nfree++;
		return;
	}
	free(r->buf);
	free(r->rbody);
	free(r->rhdrs);
	free(r);
}

void h2d_finish(struct h2d *d, struct h2d_req *r, int how, const char *why)
{
	struct h2c_response res;
	h2c_done_fn *done = r->done;

	memset(&res, 0, sizeof res);
	res.aborted = how == H2D_ABORTED;
	res.timed_out = how == H2D_TIMED_OUT;
	if (how == H2D_ANSWERED) {
		res.status = r->status;
		res.error_text = "";
	} else {
		res.error = how == H2D_ABORTED ? H2C_ERR_ABORTED : how == H2D_TIMED_OUT ? H2C_ERR_TIMEOUT : H2C_ERR_TRANSPORT;
		res.error_text = why;
	}
	res.body = r->rbody ? r->rbody : "";
	res.body_len = r->rbody_len;
	res.body_truncated = r->rbody_truncated;
	res.headers = r->rhdrs ? r->rhdrs : "";
	res.headers_len = r->rhdrs_len;
	if (r->pending)
		list_del(&d->pend_head, &d->pend_tail, r, 1);
	list_del(&d->all_head, &d->all_tail, r, 0);
	r->pending = 0;
	r->c = NULL;
	d->in_flight--;
	if (done)
		done(r->ctx, &res);
	req_release(d, r);
}

/* Room for the header block and the body in r->buf. */
static int req_fill(struct h2d *d, struct h2d_req *r, const char *path, const char *const *headers,
		    const void *body, size_t len)
{
	size_t nh = 0, need, off = 0;
	char clen[24];

	for (; headers && headers[nh]; nh++)
		;
	if (nh + 6 > H2D_NV_MAX)
		return errno = E2BIG, -1;
	need = len + strlen(path) + strlen(d->authority) + 64;
	for (size_t i = 0; i < nh; i++)
		need += strlen(headers[i]) + 1;
	if (need > r->buf_cap) {
		char *b = realloc(r->buf, need);
		if (b == NULL)
			return errno = ENOMEM, -1;
		r->buf = b;
		r->buf_cap = need;
	}
	r->nnv = 0;
#define NV(n, nl, v, vl)                                                                                      \
	do {                                                                                                  \
		r->nv[r->nnv].name = (uint8_t *)(n);                                                          \
		r->nv[r->nnv].namelen = (nl);                                                                 \
		r->nv[r->nnv].value = (uint8_t *)(v);                                                         \
		r->nv[r->nnv].valuelen = (vl);                                                                \
		r->nv[r->nnv].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;            \
		r->nnv++;                                                                                     \
	} while (0)
#define KEEP(s, l) (memcpy(r->buf + off, (s), (l)), off += (l), r->buf + off - (l))
	NV(":method", 7, "POST", 4);
	NV(":scheme", 7, d->plain ? "http" : "https", d->plain ? 4u : 5u);
	NV(":authority", 10, d->authority, strlen(d->authority));
	NV(":path", 5, KEEP(path, strlen(path)), strlen(path));
	for (size_t i = 0; i < nh; i++) {
		const char *h = headers[i], *colon = strchr(h, ':'), *v;
		size_t nl, vl;
		char *name;

		if (colon == NULL || colon == h)
			continue;
		nl = (size_t)(colon - h);
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		vl = strlen(v);
		while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
			vl--;
		if (vl == 0)
			continue; /* "Name:" with no value: no such header is sent */
		name = KEEP(h, nl);
		for (size_t k = 0; k < nl; k++)
			if (name[k] >= 'A' && name[k] <= 'Z')
				name[k] = (char)(name[k] - 'A' + 'a');
		NV(name, nl, KEEP(v, vl), vl);
	}
	snprintf(clen, sizeof clen, "%zu", len);
	NV("content-length", 14, KEEP(clen, strlen(clen)), strlen(clen));
	NV("user-agent", 10, "pushpipe/1", 10);
#undef NV
	r->body = r->buf + off;
	if (len)
		memcpy(r->body, body, len);
	r->body_len = len;
	r->body_off = 0;
#undef KEEP
	return 0;
}

int h2d_submit(struct h2d *d, const char *url, const char *const *headers, const void *body, size_t len,
	       h2c_done_fn *done, void *ctx)
{
	const char *path = url + d->origin_len;
	struct h2d_req *r;

	if ((r = d->free_list) != NULL) {
		d->free_list = r->next;
		d->nfree--;
		r->next = NULL;
	} else if ((r = calloc(1, sizeof *r)) == NULL) {
		return errno = ENOMEM, -1;
	}
	if (req_fill(d, r, *path ? path : "/", headers, body, len) < 0) {
		int e = errno;
		req_release(d, r);
		return errno = e, -1;
	}
	r->status = 0;
	r->complete = 0;
	r->stream_id = 0;
	r->c = NULL;
	r->rbody_len = 0;
	r->rbody_truncated = 0;
	r->rhdrs_len = 0;
	r->done = done;
	r->ctx = ctx;
	r->deadline = mono_ms() + d->deadline_ms;
	r->pending = 1;
	list_add_tail(&d->all_head, &d->all_tail, r, 0);
	list_add_tail(&d->pend_head, &d->pend_tail, r, 1);
	d->in_flight++;
	return 0;
}

/* The ready connection with the most room, or NULL. */
static struct h2d_conn *pick(struct h2d *d)
{
	struct h2d_conn *best = NULL;
	unsigned room = 0;

	for (unsigned i = 0; i < d->nslots; i++) {
		struct h2d_conn *c = &d->slot[i];
		unsigned lim = c->remote_max < d->max_streams ? c->remote_max : d->max_streams;
		unsigned busy = c->h1 ? c->cur != NULL : c->open;
		if (c->state != H2D_READY || busy >= lim)
			continue;
		if (lim - busy > room) {
			room = lim - busy;
			best = c;
		}
	}
	return best;
}

/* Opens a connection when requests wait, none has room, and fewer than max_conns are up. */
static void grow(struct h2d *d, uint64_t now)
{
	unsigned up = 0;
	struct h2d_conn *idle = NULL;

	for (unsigned i = 0; i < d->nslots; i++) {
		struct h2d_conn *c = &d->slot[i];
		if (c->state == H2D_CONNECTING || c->state == H2D_HANDSHAKE)
			return; /* one handshake at a time */
		if (c->state == H2D_READY)
			up++;
		else if (c->state == H2D_IDLE && c->retry_at <= now && idle == NULL)
			idle = c;
	}
	if (up < d->max_conns && idle)
		h2d_conn_open(idle, now);
}

static void dispatch(struct h2d *d, uint64_t now)
{
	struct h2d_conn *c;

	while (d->pend_head && (c = pick(d)) != NULL) {
		struct h2d_req *r = d->pend_head;
		if (h2d_conn_start(c, r) < 0) {
			h2d_finish(d, r, H2D_FAILED, "cannot start an HTTP/2 stream");
			continue;
		}
		list_del(&d->pend_head, &d->pend_tail, r, 1);
		r->pending = 0;
	}
	if (d->pend_head)
		grow(d, now);
}

/* Requests past their deadline, oldest first (the list is in deadline order). */
static void expire(struct h2d *d, uint64_t now)
{
	while (d->all_head && d->all_head->deadline <= now) {
		struct h2d_req *r = d->all_head;
		if (r->c)
			h2d_conn_cancel(r->c, r);
		h2d_finish(d, r, H2D_TIMED_OUT, "the request ran out of its deadline");
	}
}

void h2d_run(struct h2d *d)
{
	uint64_t now = mono_ms();

	expire(d, now);
	for (unsigned i = 0; i < d->nslots; i++)
		h2d_conn_timers(&d->slot[i], now);
	dispatch(d, now);
	for (unsigned i = 0; i < d->nslots; i++)
		h2d_conn_flush(&d->slot[i]);
}

/* When grow() would open a connection for the queued requests (UINT64_MAX: not by itself). */
static uint64_t grow_due(const struct h2d *d)
{
	unsigned up = 0;
	uint64_t due = UINT64_MAX;

	if (d->pend_head == NULL)
		return UINT64_MAX;
	for (unsigned i = 0; i < d->nslots; i++) {
		const struct h2d_conn *c = &d->slot[i];
		if (c->state == H2D_CONNECTING || c->state == H2D_HANDSHAKE)
			return UINT64_MAX; /* its end wakes the loop */
		if (c->state == H2D_READY)
			up++;
		else if (c->state == H2D_IDLE && c->retry_at < due)
			due = c->retry_at;
	}
	return up < d->max_conns ? due : UINT64_MAX;
}

int h2d_timeout_ms(const struct h2d *d)
{
	uint64_t now = mono_ms(), due = grow_due(d);

	/* Queued outside h2c_run() (a provider's tick): a connection can take it now. */
	if (d->pend_head && pick((struct h2d *)d) != NULL)
		return 0;

	if (d->all_head && d->all_head->deadline < due)
		due = d->all_head->deadline;
	for (unsigned i = 0; i < d->nslots; i++) {
		uint64_t t = h2d_conn_due(&d->slot[i]);
		if (t < due)
			due = t;
	}
	if (due == UINT64_MAX)
		return -1;
	return due <= now ? 0 : due - now > 60000 ? 60000 : (int)(due - now);
}

void h2d_free(struct h2d *d)
{
	if (d == NULL)
		return;
	for (unsigned i = 0; i < d->nslots; i++)
		h2d_conn_close(&d->slot[i], NULL);
	while (d->all_head)
		h2d_finish(d, d->all_head, H2D_ABORTED, "aborted");
	while (d->free_list) {
		struct h2d_req *r = d->free_list;
		d->free_list = r->next;
		free(r->buf);
		free(r->rbody);
		free(r->rhdrs);
		free(r);
	}
	free(d);
}
