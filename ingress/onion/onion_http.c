/*
 * onion_http: HTTP/1.1 for ingress-onion, served by libmicrohttpd. `threads` workers share the
 * listening socket; each is one epoll loop that drives its own libmicrohttpd daemon (external
 * epoll: the daemon's epoll fd sits in the worker's set) and owns its links to the router and
 * statsd. libmicrohttpd parses heads and chunked bodies; here a request body is collected up
 * to the configured cap (413 above, answered at once: the connection then ends), decrypted
 * (400 on any failure, docs/protocol.md §4.6), parsed (encrypted error replies) and, for
 * actions that change state or queue a notification, forwarded to the router; the connection
 * is suspended until the router's verdict (or the link's timeout) and then gets the encrypted
 * reply. Nothing here blocks.
 * Slow clients: libmicrohttpd closes a connection idle for timeout_s; this file's own timer
 * (every 100 ms) shuts down a connection whose request head is not complete head_timeout_s
 * after accept (or after the previous answer on that connection), whose body is not complete
 * body_timeout_s after its head, or whose body arrives slower than min_body_rate bytes/s;
 * conn_limit.c caps the open connections and those from one source address, and a
 * connection over a cap is closed as soon as it is accepted.
 * Trusts nothing from clients; every buffer is bounded. Holds, per connection, one request.
 */
#include "onion_http.h"
#include "onion_health.h"
#include "bchat/bchat_request.h"
#include "conn_limit.h"
#include "counters.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "loop.h"
#include "mhd_log.h"
#include "onion_body.h"
#include "onion_crypto.h"
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BODY_KEEP 16384	      /* a larger body buffer is freed between requests */
#define RATE_GRACE_MS 2000    /* the minimum body rate applies after this much of a body */
#define MHD_POOL (16 * 1024)  /* per connection: the request head and the answer's head (reset per request) */
#define DROP_MAX (1 << 20)    /* a chunked body past the cap is dropped up to this, then cut */

enum route { ROUTE_NONE, ROUTE_V2, ROUTE_V4, ROUTE_STATS, ROUTE_HEALTH };
/* P_HEAD: waiting for a whole request head; P_BODY: reading the body; P_WAIT: suspended until
 * the router or statsd answers; P_ANSWER: the answer is queued or being sent. */
enum phase { P_HEAD, P_BODY, P_WAIT, P_ANSWER };

struct onion_worker {
	struct onion_server *srv;
	pthread_t tid;
	struct loop *lp; /* the worker's own loop (common/loop.c), run on its thread */
	struct loop_timer *mhd_timer; /* libmicrohttpd's next timeout (loop_wake) */
	struct MHD_Daemon *mhd;
	struct router_link *link, *stats_link;
	struct onion_conn *conns; /* every open connection (for the deadlines) */
	uint8_t *fbuf;		  /* FRAME_MAX */
	/* each inner reply's bytes, [v4?][outcome], built on first use: they never change */
	unsigned char *replies[2][BCHAT_GROUP_NOT_FOUND + 1];
	size_t reply_len[2][BCHAT_GROUP_NOT_FOUND + 1];
	uint64_t now_ms;
};

struct onion_conn {
	struct onion_worker *w;
	struct MHD_Connection *mc;
	struct onion_conn *prev, *next;
	int fd;
	struct sockaddr_storage addr;
	int counted; /* holds a place in srv->limit */
	int cut;     /* shut down (over a cap, or a deadline passed): no request is served */
	enum phase ph;
	uint64_t since_ms;   /* P_HEAD: accept or the previous answer; P_BODY: the head's end */
	uint64_t body_bytes; /* body bytes received so far, kept or not */
	/* the request */
	enum route route;
	int service; /* its ingress_onion.services entry; -1: the section's key and default apps */
	unsigned refused; /* 404 or 405: the body is dropped, then this is the answer */
	int too_large, suspended;
	int close_after; /* the answer ends the connection: its body is not (all) read */
	unsigned char *body;
	size_t len, cap;
	char *auth;
	uint32_t status; /* enum frame_status */
	struct onion_request req;
	struct bchat_request br;
	int have_req, have_br;
	void *stats; /* a /get_statistics_data request in progress */
	uint64_t received_us;
	/* the answer, made and waiting to be queued from the request handler */
	struct MHD_Response *resp;
	unsigned code;
	int failed; /* no answer could be made: close */
};

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

/* ---- answers ---- */

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
	if (c->resp)
		MHD_destroy_response(c->resp);
	c->resp = NULL;
	c->len = 0;
	c->body_bytes = 0;
	c->too_large = 0;
	c->close_after = 0;
	c->refused = 0;
	c->status = 0;
	c->code = 0;
	c->failed = 0;
	c->route = ROUTE_NONE;
}

/* No answer can be made (out of memory): the connection is closed, resumed first if it waits. */
static void answer_failed(struct onion_conn *c)
{
	c->failed = 1;
	c->ph = P_ANSWER;
	if (c->suspended) {
		c->suspended = 0;
		MHD_resume_connection(c->mc);
	}
}

void onion_http_respond(struct onion_conn *c, struct onion_response *r)
{
	struct MHD_Response *resp;

	if (r->body != NULL)
		resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
	else
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		free(r->body);
	} else if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->type) == MHD_NO) {
		MHD_destroy_response(resp);
		resp = NULL;
	}
	for (size_t i = 0; resp != NULL && i < r->nheaders && i < ONION_RESP_HEADERS; i++)
		if (MHD_add_response_header(resp, r->header[i][0], r->header[i][1]) == MHD_NO) {
			MHD_destroy_response(resp);
			resp = NULL;
		}
	r->body = NULL;
	if (c->resp)
		MHD_destroy_response(c->resp);
	c->resp = resp;
	c->code = r->code;
	c->failed = resp == NULL;
	c->ph = P_ANSWER;
	if (c->suspended) {
		/* The handler runs again and queues it. */
		c->suspended = 0;
		MHD_resume_connection(c->mc);
	}
}

void onion_http_answer(struct onion_conn *c, unsigned code, const char *type, const char *extra, char *body,
		       size_t len)
{
	struct onion_response r = {.code = code, .type = type, .body = body, .len = len};
	char buf[ONION_RESP_HEADERS][2][256];
	const char *p = extra;

	/* extra holds header lines "Name: value\r\n"; a malformed or overlong one is left out. */
	while (p != NULL && *p != '\0' && r.nheaders < ONION_RESP_HEADERS) {
		const char *eol = strchr(p, '\n'), *colon = strchr(p, ':'), *v, *e;
		size_t nl;
		if (eol == NULL)
			eol = p + strlen(p);
		if (colon != NULL && colon < eol && (nl = (size_t)(colon - p)) > 0 && nl < sizeof buf[0][0]) {
			for (v = colon + 1; *v == ' '; v++)
				;
			for (e = eol; e > v && (e[-1] == '\r' || e[-1] == ' '); e--)
				;
			if ((size_t)(e - v) < sizeof buf[0][1]) {
				memcpy(buf[r.nheaders][0], p, nl);
				buf[r.nheaders][0][nl] = '\0';
				memcpy(buf[r.nheaders][1], v, (size_t)(e - v));
				buf[r.nheaders][1][e - v] = '\0';
				r.header[r.nheaders][0] = buf[r.nheaders][0];
				r.header[r.nheaders][1] = buf[r.nheaders][1];
				r.nheaders++;
			}
		}
		p = *eol ? eol + 1 : eol;
	}
	onion_http_respond(c, &r);
}

static void plain(struct onion_conn *c, unsigned code, const char *text)
{
	struct onion_response r = {.code = code, .type = "text/plain", .body = strdup(text), .len = strlen(text)};
	counter_http(code == 404 ? HTTP_ROUTE_UNKNOWN : HTTP_ROUTE_ONION, code);
	if (code == 405) {
		r.header[r.nheaders][0] = "Allow";
		r.header[r.nheaders++][1] = "POST";
	}
	if (code == 413 || c->close_after) {
		/* A body past the cap is never drained for the next request. */
		r.header[r.nheaders][0] = "Connection";
		r.header[r.nheaders++][1] = "close";
	}
	if (r.body == NULL) {
		answer_failed(c);
		return;
	}
	onion_http_respond(c, &r);
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
		struct onion_response r = {.code = 200, .type = v4 ? "application/octet-stream" : "application/json"};
		counter_http(HTTP_ROUTE_ONION, 200);
		if (!v4) {
			r.body = body;
		} else if (sealed != small) {
			r.body = (char *)sealed;
			sealed = small;
		} else if ((r.body = malloc(outlen)) != NULL) {
			memcpy(r.body, sealed, outlen);
		}
		r.len = outlen;
		body = NULL;
		if (r.body != NULL)
			onion_http_respond(c, &r);
		else
			answer_failed(c);
	} else {
		/* Out of memory: nothing sensible can be sent. */
		answer_failed(c);
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
}

/* Builds the frame for a parsed action. */
/* The app set of the service a request came in on: the app of each device type it names. */
static void put_apps(struct frame_writer *w, const struct config *cfg, int service)
{
	static const uint16_t tags[SVC_DEVICES] = {TAG_APP_IOS, TAG_APP_ANDROID, TAG_APP_HUAWEI};
	if (service < 0)
		return; /* the default apps */
	for (int d = 0; d < SVC_DEVICES; d++) {
		const char *a = cfg->onion.services[service].app[d];
		if (a[0] != '\0')
			frame_put_bytes(w, tags[d], a, strlen(a));
	}
}

static long build_frame(const struct bchat_request *br, uint8_t *buf, const struct config *cfg, int service)
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
		put_apps(&w, cfg, service);
		break;
	case BCHAT_UNREGISTER:
		frame_begin(&w, buf, FRAME_UNREGISTER, 0);
		frame_put_bytes(&w, TAG_TOKEN, br->token, br->token_len);
		put_apps(&w, cfg, service);
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
		put_apps(&w, cfg, service);
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
	/* z-base-32 ephemeral keys exist only on v4 (docs/protocol.md §1). */
	/* Each service has its own key (ingress_onion.services); the rest use the section's. */
	oe = onion_body_open(c->service >= 0 ? srv->svc[c->service].sk : srv->sk,
			     c->service >= 0 ? srv->svc[c->service].pk : srv->pk, &salts, c->route == ROUTE_V4, c->body, c->len,
			     &c->req);
	if (oe != ONION_OK) {
		counter_add(oe == ONION_E_DECRYPT ? CTR_ONION_DECRYPT_FAILED : CTR_ONION_BAD_REQUESTS, 1);
		log_debug("400: %s", onion_body_error_str(oe));
		plain(c, 400, "Bad Request\n");
		return;
	}
	c->have_req = 1;
	memset(&bc, 0, sizeof bc);
	bc.validate_ids = cfg->onion.validate_ids;
	snprintf(bc.id_prefix, sizeof bc.id_prefix, "%s",
		 c->service >= 0 && cfg->onion.services[c->service].id_prefix[0] ? cfg->onion.services[c->service].id_prefix
										   : cfg->onion.id_prefix);
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
			/* Accepted and dropped, as the legacy server did (docs/protocol.md §6.4). */
			counter_add(CTR_MESSAGES_OVERSIZED, 1);
			log_info("notify dropped: data is %zu bytes, the limit is %ld", c->br.data_len, cfg->onion.max_data_len);
			reply(c, BCHAT_OK);
			return;
		}
	}
	n = build_frame(&c->br, c->w->fbuf, cfg, c->service);
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
	c->ph = P_WAIT;
}

void onion_http_stats_ready(struct onion_conn *c)
{
	onion_stats_finish(c->w->srv, c, c->stats);
}

/* ---- reading requests ---- */

static void take_body(struct onion_conn *c, const char *p, size_t n)
{
	c->body_bytes += n;
	if (c->body_bytes > (uint64_t)c->w->srv->cfg->onion.max_body)
		c->close_after = 1;
	if (c->too_large || c->refused)
		return;
	if (c->len + n > (size_t)c->w->srv->cfg->onion.max_body) {
		c->too_large = 1;
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

/* The refusal or the 413 that a request has earned, if any. */
static int refuse(struct onion_conn *c)
{
	if (c->refused == 404)
		plain(c, 404, "Not Found\n");
	else if (c->refused)
		plain(c, 405, "Method Not Allowed\n");
	else if (c->too_large)
		plain(c, 413, "Payload Too Large\n");
	else
		return 0;
	return 1;
}

static void on_health(void *ctx, uint32_t status, const struct frame *f)
{
	struct onion_conn *c = ctx;
	char text[ONION_HEALTH_TEXT_MAX];

	(void)status;
	plain(c, onion_health_text(f, text, sizeof text) ? 200 : 503, text);
}

/* GET /healthz (docs/observability.md, "Health"): this worker's link to the router and, on one
 * machine, the senders the router has (asked each time: it is cheap for the router). In
 * cluster mode only the link to the bus. */
static void health(struct onion_conn *c)
{
	struct onion_worker *w = c->w;
	long n;

	if (!link_connected(w->link)) {
		plain(c, 503, "unhealthy: not connected to the router\n");
		return;
	}
	if (config_cluster(w->srv->cfg)) {
		plain(c, 200, "ok: connected to the router\n");
		return;
	}
	if ((n = onion_health_query(w->fbuf)) < 0 || link_submit(w->link, w->fbuf, (size_t)n, on_health, c) < 0) {
		plain(c, 503, "unhealthy: connected to the router, which is too busy to answer\n");
		return;
	}
	c->ph = P_WAIT;
}

/* The whole request is here. */
static void end_request(struct onion_conn *c)
{
	struct onion_worker *w = c->w;
	if (refuse(c))
		return;
	if (c->route == ROUTE_HEALTH) {
		health(c);
	} else if (c->route == ROUTE_STATS) {
		socklen_t peerlen = c->addr.ss_family == AF_INET6  ? sizeof(struct sockaddr_in6)
				    : c->addr.ss_family == AF_INET ? sizeof(struct sockaddr_in)
								   : 0;
		c->ph = P_WAIT;
		if (onion_stats_begin(w->srv, c, w->link, w->stats_link, c->auth,
				      peerlen ? (struct sockaddr *)&c->addr : NULL, peerlen, c->body, c->len, &c->stats) < 0)
			answer_failed(c);
	} else {
		process(c);
	}
}

/* The head is complete: route and method are known. An answer that needs no body is made
 * at once when the body would be too large to drop (or the client waits for 100 Continue):
 * libmicrohttpd then ends the connection after the answer instead of reading the body. */
static void begin_request(struct onion_conn *c, const char *url, const char *method)
{
	struct MHD_Connection *mc = c->mc;
	const struct config *cfg = c->w->srv->cfg;
	const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	const char *ex = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
	unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
	int has_body = declared > 0 || te != NULL;

	c->ph = P_BODY;
	c->since_ms = mono_ms();
	c->received_us = counters_now_us();
	c->route = match_route(cfg, url);
	c->service = config_onion_service(cfg, url);
	if (c->route == ROUTE_NONE)
		c->refused = 404;
	else if (strcmp(method, MHD_HTTP_METHOD_POST) != 0 &&
		 !(c->route == ROUTE_HEALTH &&
		   (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)))
		c->refused = 405;
	c->too_large = !c->refused && declared > (unsigned long long)cfg->onion.max_body;
	if (c->route == ROUTE_STATS) {
		const char *a = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
		if (a != NULL && (c->auth = strdup(a)) == NULL)
			c->failed = 1;
	}
	if (c->too_large || (c->refused && has_body && (declared > (unsigned long long)cfg->onion.max_body || ex != NULL))) {
		c->close_after = has_body;
		refuse(c);
	}
}

/* Queues the answer made for c, if there is one: MHD_YES when the request goes on. */
static enum MHD_Result queue(struct onion_conn *c)
{
	enum MHD_Result rc;
	if (c->failed)
		return MHD_NO;
	if (c->resp == NULL)
		return MHD_YES;
	rc = MHD_queue_response(c->mc, c->code, c->resp);
	MHD_destroy_response(c->resp);
	c->resp = NULL;
	return rc;
}

/* libmicrohttpd's access handler: called once the head is complete (*req_cls NULL), then
 * with each piece of the body, then once more with none (and again after a resume). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
	struct onion_conn *c = *req_cls;
	(void)cls;
	(void)version;
	if (c == NULL) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		if (ci == NULL || (c = ci->socket_context) == NULL || c->cut)
			return MHD_NO;
		*req_cls = c;
		begin_request(c, url, method);
		return queue(c);
	}
	if (c->cut)
		return MHD_NO;
	if (c->resp != NULL || c->failed || c->ph == P_ANSWER)
		return queue(c);
	if (*upload_size > 0) {
		/* libmicrohttpd takes an answer only before the body or after all of it: a chunked
		 * body past the cap is dropped to its end (answered 413, then closed), within the
		 * body deadlines and up to DROP_MAX bytes; past that the connection is cut. */
		take_body(c, upload, *upload_size);
		*upload_size = 0;
		return c->body_bytes > DROP_MAX ? MHD_NO : MHD_YES;
	}
	end_request(c);
	if (c->ph == P_WAIT) {
		c->suspended = 1;
		MHD_suspend_connection(mc);
		return MHD_YES;
	}
	return queue(c);
}

/* ---- connections ---- */

static void cut(struct onion_conn *c, const char *why)
{
	char a[INET6_ADDRSTRLEN] = "?";
	if (c->addr.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&c->addr)->sin_addr, a, sizeof a);
	else if (c->addr.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&c->addr)->sin6_addr, a, sizeof a);
	log_debug("connection from %s closed: %s", a, why);
	c->cut = 1;
	shutdown(c->fd, SHUT_RDWR);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct onion_worker *w = cls;
	struct onion_conn *c = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ad = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		int one = 1;
		if (fd == NULL || (c = calloc(1, sizeof *c)) == NULL) {
			if (fd != NULL)
				shutdown(fd->connect_fd, SHUT_RDWR);
			return;
		}
		c->w = w;
		c->mc = mc;
		c->fd = fd->connect_fd;
		if (ad != NULL && ad->client_addr != NULL)
			memcpy(&c->addr, ad->client_addr,
			       ad->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
		c->ph = P_HEAD;
		c->since_ms = mono_ms();
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		*socket_context = c;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (conn_limit_take(w->srv->limit, (struct sockaddr *)&c->addr) == 0)
			c->counted = 1;
		else
			cut(c, "over max_connections or max_connections_per_source");
		return;
	}
	if (c == NULL)
		return;
	*(c->prev ? &c->prev->next : &w->conns) = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->counted)
		conn_limit_put(w->srv->limit, (struct sockaddr *)&c->addr);
	request_reset(c);
	free(c->body);
	free(c);
	*socket_context = NULL;
}

/* A request is over (answered, or its connection failed): the next head's deadline starts. */
static void on_completed(void *cls, struct MHD_Connection *mc, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	struct onion_conn *c = *req_cls;
	(void)cls;
	(void)mc;
	(void)toe;
	if (c == NULL)
		return;
	request_reset(c);
	c->ph = P_HEAD;
	c->since_ms = mono_ms();
	*req_cls = NULL;
}

/* The deadlines libmicrohttpd does not have (its timeout_s only measures silence). */
static void check_deadlines(struct onion_worker *w)
{
	const struct conf_ingress_onion *o = &w->srv->cfg->onion;
	uint64_t head = (uint64_t)o->head_timeout_s * 1000, body = (uint64_t)o->body_timeout_s * 1000;
	uint64_t rate = (uint64_t)o->min_body_rate;
	for (struct onion_conn *c = w->conns; c != NULL; c = c->next) {
		uint64_t el = w->now_ms - c->since_ms;
		if (c->cut || w->now_ms < c->since_ms)
			continue;
		if (c->ph == P_HEAD && el >= head)
			cut(c, "request head not complete within ingress_onion.head_timeout_s");
		else if (c->ph == P_BODY && el >= body)
			cut(c, "request body not complete within ingress_onion.body_timeout_s");
		else if (c->ph == P_BODY && rate > 0 && el >= RATE_GRACE_MS && c->body_bytes * 1000 < rate * el)
			cut(c, "request body slower than ingress_onion.min_body_rate");
	}
}

/* ---- workers ---- */

/* Each worker runs its own loop: the router's and statsd's answers as they come, a tenth of a
 * second tick for the links and the request deadlines, and libmicrohttpd at the end of every turn
 * (a resumed request is answered in the turn its router answer came in). */
static void on_router_ready(void *arg, uint32_t events)
{
	struct onion_worker *w = arg;
	(void)events;
	w->now_ms = mono_ms();
	link_read(w->link);
}

static void on_statsd_ready(void *arg, uint32_t events)
{
	struct onion_worker *w = arg;
	(void)events;
	w->now_ms = mono_ms();
	link_read(w->stats_link);
}

/* libmicrohttpd's epoll set is ready: it runs at the end of this turn (on_turn). */
static void on_mhd_ready(void *arg, uint32_t events)
{
	(void)arg;
	(void)events;
}

static void on_mhd_timeout(void *arg)
{
	((struct onion_worker *)arg)->mhd_timer = NULL;
}

/* Deadlines need no finer grain than a tenth of a second. */
static void on_tick(void *arg)
{
	struct onion_worker *w = arg;
	w->now_ms = mono_ms();
	link_tick(w->link, w->now_ms);
	link_tick(w->stats_link, w->now_ms);
	check_deadlines(w);
}

static void on_turn(void *arg)
{
	struct onion_worker *w = arg;
	MHD_UNSIGNED_LONG_LONG mt;

	w->now_ms = mono_ms();
	MHD_run(w->mhd);
	/* The frames this turn produced go to the router and statsd together. */
	link_flush(w->link);
	link_flush(w->stats_link);
	if (MHD_get_timeout(w->mhd, &mt) == MHD_YES &&
	    loop_wake(w->lp, &w->mhd_timer, mt < 100 ? (int)mt : 100, on_mhd_timeout, w) < 0)
		log_warn("HTTP worker: out of memory for a timer");
}

static void *worker_main(void *arg)
{
	struct onion_worker *w = arg;

	w->now_ms = mono_ms();
	/* Connected before the first request is read, so none finds its worker without a router. */
	link_tick(w->link, w->now_ms);
	link_tick(w->stats_link, w->now_ms);
	loop_run(w->lp);
	/* Pending requests are answered Server busy (and resumed), then every connection closes. */
	link_free(w->link);
	link_free(w->stats_link);
	w->link = w->stats_link = NULL;
	MHD_run(w->mhd);
	MHD_stop_daemon(w->mhd);
	w->mhd = NULL;
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

/* The per-source cap: the configured one, or a quarter of max_connections. */
static long per_source(const struct conf_ingress_onion *o)
{
	if (o->max_connections_per_source > 0)
		return o->max_connections_per_source;
	return o->max_connections / 4 > 0 ? o->max_connections / 4 : 1;
}

static int worker_init(struct onion_server *s, struct onion_worker *w)
{
	const struct conf_ingress_onion *o = &s->cfg->onion;
	/* The pending limit is the daemon's; each worker has its share. */
	size_t pending = ((size_t)o->max_pending + s->nworkers - 1) / s->nworkers;
	const union MHD_DaemonInfo *di;
	int lfd;

	w->srv = s;
	if ((w->lp = loop_new()) == NULL || (w->fbuf = malloc(FRAME_MAX)) == NULL ||
	    (w->link = link_new(s->router_path, pending, (uint32_t)o->router_timeout_ms, ROLE_INGRESS, 1,
				loop_epfd(w->lp), loop_watch(w->lp, on_router_ready, w))) == NULL ||
	    (w->stats_link = link_new(s->stats_path, 64, (uint32_t)o->router_timeout_ms, ROLE_INGRESS, 0,
				      loop_epfd(w->lp), loop_watch(w->lp, on_statsd_ready, w))) == NULL ||
	    loop_timer(w->lp, 100, 100, on_tick, w) == NULL || loop_on_turn(w->lp, on_turn, w) < 0)
		return -1;
	/* Each daemon gets its own descriptor of the one listening socket (it closes it). Its
	 * own limits sit above the shared ones (conn_limit.c), which close what is over them;
	 * at its own limit libmicrohttpd would stop accepting and leave clients in the backlog. */
	if ((lfd = dup(s->lfd)) < 0)
		return -1;
	w->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO, 0, NULL,
				  NULL, on_request, w, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				  MHD_OPTION_LISTEN_SOCKET, lfd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)(o->max_connections + 64),
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)per_source(o),
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MHD_POOL,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, w,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, w, MHD_OPTION_END);
	if (w->mhd == NULL) {
		close(lfd);
		errno = EINVAL;
		return -1;
	}
	if ((di = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD)) == NULL)
		return -1;
	if (loop_add(w->lp, di->epoll_fd, EPOLLIN, on_mhd_ready, w) == NULL)
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
	if ((s->limit = conn_limit_new((size_t)o->max_connections, (size_t)per_source(o))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int onion_http_run(struct onion_server *s, char *err, size_t errlen)
{
	s->nworkers = (size_t)s->cfg->onion.threads;
	if ((s->workers = calloc(s->nworkers, sizeof *s->workers)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < s->nworkers; i++) {
		if (worker_init(s, &s->workers[i]) < 0) {
			snprintf(err, errlen, "cannot start HTTP worker %zu: %s", i, strerror(errno));
			return -1;
		}
	}
	return 0;
}

void onion_http_stop(struct onion_server *s)
{
	for (size_t i = 0; s->workers != NULL && i < s->nworkers; i++) {
		struct onion_worker *w = &s->workers[i];
		if (w->tid)
			pthread_join(w->tid, NULL);
		if (w->mhd)
			MHD_stop_daemon(w->mhd);
		link_free(w->link);
		link_free(w->stats_link);
		if (w->lp)
			loop_free(w->lp);
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
	conn_limit_free(s->limit);
	s->limit = NULL;
}
