/*
 * onion_http: HTTP handling for ingress-onion. A request body is collected up to the
 * configured cap (413 above), decrypted (400 on any failure, bchat-onion.md §7.3), parsed
 * (encrypted error replies, §6.8) and, for actions that change state or queue a
 * notification, forwarded to the router while the connection is suspended. The router's
 * verdict resumes it and the encrypted reply goes out. Nothing here blocks on the router.
 */
#include "onion_http.h"
#include "bchat_request.h"
#include "counters.h"
#include "frame.h"
#include "log.h"
#include "onion_body.h"
#include "onion_crypto.h"
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum route { ROUTE_NONE, ROUTE_V2, ROUTE_V4, ROUTE_STATS };

static __thread uint8_t *frame_buf;
static pthread_key_t frame_buf_key; /* frees each HTTP thread's buffer when the thread ends */
static pthread_once_t frame_buf_once = PTHREAD_ONCE_INIT;

static void frame_buf_key_make(void)
{
	pthread_key_create(&frame_buf_key, free);
}

/* The calling thread's frame buffer (FRAME_MAX bytes), or NULL when out of memory. */
static uint8_t *thread_frame_buf(void)
{
	if (frame_buf == NULL) {
		pthread_once(&frame_buf_once, frame_buf_key_make);
		if ((frame_buf = malloc(FRAME_MAX)) != NULL)
			pthread_setspecific(frame_buf_key, frame_buf);
	}
	return frame_buf;
}

struct conn {
	struct onion_server *srv;
	struct MHD_Connection *mc;
	enum route route;
	unsigned char *body;
	size_t len, cap;
	int too_large;
	int waiting;		/* suspended, waiting for the router */
	int answered;		/* the router (or the link) has given its verdict */
	uint32_t status;	/* enum frame_status */
	struct onion_request req;
	struct bchat_request br;
	int have_req, have_br;
	void *stats;		/* a suspended /get_statistics_data request */
	uint64_t received_us;	/* monotonic: when the request's headers arrived */
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
	return ROUTE_NONE;
}

static enum MHD_Result plain(struct MHD_Connection *mc, unsigned code, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;
	MHD_add_response_header(r, "Content-Type", "text/plain");
	counter_http(code == MHD_HTTP_NOT_FOUND ? HTTP_ROUTE_UNKNOWN : HTTP_ROUTE_ONION, code);
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "POST");
	ret = MHD_queue_response(mc, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum bchat_error verdict(const struct conn *c)
{
	switch (c->status) {
	case STATUS_OK:
		return BCHAT_OK;
	case STATUS_NOT_FOUND:
		return c->br.action == BCHAT_UNREGISTER ? BCHAT_NOT_REGISTERED : BCHAT_GROUP_NOT_FOUND;
	default:
		/* Busy, router absent or a store error: all retryable for the app. */
		return BCHAT_SERVER_BUSY;
	}
}

/* Encrypts the inner reply with the request's key and queues the HTTP 200. */
static enum MHD_Result reply(struct conn *c, enum bchat_error e)
{
	const char *product = c->srv->cfg->onion.product_name;
	size_t ptlen, outlen;
	unsigned char *pt = c->route == ROUTE_V4 ? bchat_reply_v4(e, product, &ptlen) : bchat_reply_v2(e, product, &ptlen);
	unsigned char *sealed;
	struct MHD_Response *r;
	enum MHD_Result ret;
	void *body;

	if (pt == NULL)
		return MHD_NO;
	sealed = malloc(ptlen + onion_overhead(c->req.key.cipher));
	if (sealed == NULL || onion_seal(&c->req.key, pt, ptlen, sealed) < 0) {
		free(pt);
		free(sealed);
		return MHD_NO;
	}
	outlen = ptlen + onion_overhead(c->req.key.cipher);
	free(pt);
	if (c->route == ROUTE_V4) {
		body = sealed;
	} else {
		body = bchat_v2_http_body(sealed, outlen, &outlen);
		free(sealed);
		if (body == NULL)
			return MHD_NO;
	}
	r = MHD_create_response_from_buffer(outlen, body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", c->route == ROUTE_V4 ? "application/octet-stream" : "application/json");
	counter_http(HTTP_ROUTE_ONION, MHD_HTTP_OK);
	ret = MHD_queue_response(c->mc, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static void on_router(void *ctx, uint32_t status, const struct frame *f)
{
	struct conn *c = ctx;
	(void)f;
	c->status = status;
	histogram_observe(HIST_ONION_ROUTER_REPLY, counters_now_us() - c->received_us);
	__atomic_store_n(&c->answered, 1, __ATOMIC_RELEASE);
	MHD_resume_connection(c->mc);
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
static enum MHD_Result process(struct conn *c)
{
	const struct config *cfg = c->srv->cfg;
	const struct conf_list *sl = c->route == ROUTE_V4 ? &cfg->onion.v4_salts : &cfg->onion.v2_salts;
	struct onion_salts salts;
	struct bchat_config bc;
	enum onion_body_error oe;
	enum bchat_error be;
	uint8_t *fbuf;
	long n;

	counter_add(CTR_ONION_REQUESTS, 1);
	memset(&salts, 0, sizeof salts);
	for (size_t i = 0; i < sl->n && i < ONION_SALTS_MAX; i++)
		salts.names[salts.n++] = sl->v[i];
	/* z-base-32 ephemeral keys exist only on v4 (bchat-onion.md §3). */
	oe = onion_body_open(c->srv->sk, c->srv->pk, &salts, c->route == ROUTE_V4, c->body, c->len, &c->req);
	if (oe != ONION_OK) {
		counter_add(oe == ONION_E_DECRYPT ? CTR_ONION_DECRYPT_FAILED : CTR_ONION_BAD_REQUESTS, 1);
		log_debug("400: %s", onion_body_error_str(oe));
		return plain(c->mc, MHD_HTTP_BAD_REQUEST, "Bad Request\n");
	}
	c->have_req = 1;
	memset(&bc, 0, sizeof bc);
	bc.validate_ids = cfg->onion.validate_ids;
	snprintf(bc.id_prefix, sizeof bc.id_prefix, "%s", cfg->onion.id_prefix);
	bc.max_groups = (size_t)cfg->onion.max_groups;
	be = c->route == ROUTE_V4 ? bchat_parse_v4(&bc, c->req.plaintext, c->req.plaintext_len, &c->br)
				  : bchat_parse_v2(&bc, c->req.plaintext, c->req.plaintext_len, &c->br);
	c->have_br = be == BCHAT_OK;
	if (be != BCHAT_OK)
		return reply(c, be);
	if (c->br.action == BCHAT_NOTIFY) {
		counter_add(CTR_MESSAGES_TOTAL, 1);
		if (c->br.data_len > (size_t)cfg->onion.max_data_len) {
			/* Accepted and dropped, as the legacy server did (§6.7 step 1). */
			counter_add(CTR_MESSAGES_OVERSIZED, 1);
			log_info("notify dropped: data is %zu bytes, the limit is %ld", c->br.data_len, cfg->onion.max_data_len);
			return reply(c, BCHAT_OK);
		}
	}
	/* One frame buffer per HTTP thread: FRAME_MAX is too big to allocate per request. */
	if ((fbuf = thread_frame_buf()) == NULL)
		return MHD_NO;
	n = build_frame(&c->br, fbuf);
	if (n < 0)
		return reply(c, BCHAT_INVALID_PARAMETER);
	c->waiting = 1;
	MHD_suspend_connection(c->mc);
	if (link_submit(c->srv->link, fbuf, (size_t)n, on_router, c) < 0) {
		counter_add(CTR_BUSY_REJECTS, 1);
		c->status = STATUS_BUSY;
		c->answered = 1;
		MHD_resume_connection(c->mc);
	}
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct onion_server *srv = cls;
	struct conn *c = *con_cls;
	(void)version;

	if (c == NULL) {
		enum route rt = match_route(srv->cfg, url);
		if (rt == ROUTE_NONE)
			return plain(mc, MHD_HTTP_NOT_FOUND, "Not Found\n");
		if (strcmp(method, "POST") != 0)
			return plain(mc, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed\n");
		if ((c = calloc(1, sizeof *c)) == NULL)
			return MHD_NO;
		c->srv = srv;
		c->mc = mc;
		c->route = rt;
		c->received_us = counters_now_us();
		*con_cls = c;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (!c->too_large) {
			if (c->len + *upload_size > (size_t)srv->cfg->onion.max_body) {
				c->too_large = 1;
			} else {
				if (c->len + *upload_size > c->cap) {
					size_t nc = c->cap ? c->cap : 4096;
					while (nc < c->len + *upload_size)
						nc *= 2;
					unsigned char *nb = realloc(c->body, nc);
					if (nb == NULL)
						return MHD_NO;
					c->body = nb;
					c->cap = nc;
				}
				memcpy(c->body + c->len, upload, *upload_size);
				c->len += *upload_size;
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (c->too_large)
		return plain(mc, MHD_HTTP_CONTENT_TOO_LARGE, "Payload Too Large\n");
	if (c->waiting) {
		if (!__atomic_load_n(&c->answered, __ATOMIC_ACQUIRE))
			return MHD_YES; /* resumed early; the verdict is still on its way */
		c->waiting = 0;
		return reply(c, verdict(c));
	}
	if (c->route == ROUTE_STATS)
		return c->stats ? onion_stats_finish(srv, mc, c->stats) : onion_stats_begin(srv, mc, c->body, c->len, &c->stats);
	return process(c);
}

static void on_done(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct conn *c = *con_cls;
	(void)cls;
	(void)mc;
	(void)toe;
	if (c == NULL)
		return;
	if (c->have_req)
		onion_request_free(&c->req);
	if (c->have_br)
		bchat_request_free(&c->br);
	onion_stats_free(c->stats);
	free(c->body);
	free(c);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("http: %s", line);
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

int onion_http_start(struct onion_server *s, char *err, size_t errlen)
{
	struct sockaddr_in sa;
	const struct conf_ingress_onion *o = &s->cfg->onion;
	static const char hx[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		s->pk_hex[2 * i] = hx[s->pk[i] >> 4];
		s->pk_hex[2 * i + 1] = hx[s->pk[i] & 15];
	}
	s->pk_hex[64] = '\0';
	if (parse_listen(o->listen, &sa) < 0) {
		snprintf(err, errlen, "%s: ingress_onion.listen: expected IPv4 \"address:port\", got \"%s\"", s->cfg->path,
			 o->listen);
		return -1;
	}
	s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
					  MHD_USE_ERROR_LOG,
				  0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				  MHD_OPTION_THREAD_POOL_SIZE, (unsigned)o->threads, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)o->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
				  on_done, s, MHD_OPTION_LISTEN_BACKLOG_SIZE,
				  (unsigned)1024, MHD_OPTION_END);
	if (s->mhd == NULL) {
		snprintf(err, errlen, "cannot listen on %s", o->listen);
		return -1;
	}
	return 0;
}

void onion_http_stop(struct onion_server *s)
{
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	s->mhd = NULL;
}
