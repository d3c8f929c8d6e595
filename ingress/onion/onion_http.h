/*
 * onion_http: the onion ingress's HTTP/1.1 side, served by libmicrohttpd: `threads` worker
 * threads, each an epoll loop that drives its own libmicrohttpd daemon (external epoll, on
 * the listening socket shared by all) and owns its links to the router and to statsd, so a
 * request is read, decrypted, forwarded and answered on one thread without locks.
 */
#ifndef ONION_HTTP_H
#define ONION_HTTP_H
#include "config.h"
#include "../router_link.h"
#include <pthread.h>
#include <sys/socket.h>
#include <stddef.h>

struct onion_worker;
struct onion_conn;
struct conn_limit;

struct onion_server {
	const struct config *cfg;
	unsigned char sk[32], pk[32];
	char pk_hex[65];
	/* ingress_onion.services (docs/config.md): each service's own key, by index */
	struct {
		unsigned char sk[32], pk[32];
	} svc[CONF_SERVICES_MAX];
	char router_path[108], stats_path[108]; /* router.sock, statsd-query.sock */
	int lfd;				/* the listening socket, bound before the sandbox */
	struct conn_limit *limit;		/* max_connections and the per-source cap */
	size_t nworkers;
	struct onion_worker *workers;
};

/* An answer: status, Content-Type, up to ONION_RESP_HEADERS more header fields and a body
 * (malloc'd; onion_http_respond takes it). Names and values must outlive the call only. */
#define ONION_RESP_HEADERS 4
struct onion_response {
	unsigned code;
	const char *type;
	const char *header[ONION_RESP_HEADERS][2]; /* name, value */
	size_t nheaders;
	char *body;
	size_t len;
};

/* Opens the listening socket on cfg->onion.listen (before the sandbox); -1 with a reason. */
int onion_http_start(struct onion_server *s, char *err, size_t errlen);
/* Creates the workers and their libmicrohttpd daemons (after the sandbox, which the threads
 * inherit); they connect to the router and statsd and run until daemon_stop. -1 with a
 * reason. */
int onion_http_run(struct onion_server *s, char *err, size_t errlen);
/* Waits for the workers (after daemon_stop) and closes everything. */
void onion_http_stop(struct onion_server *s);

/* Answers c's request with r (r->body is taken, also on failure). */
void onion_http_respond(struct onion_conn *c, struct onion_response *r);
/* The same with one optional extra header given as a line "Name: value\r\n" (or NULL); body
 * (malloc'd, taken) is len bytes. */
void onion_http_answer(struct onion_conn *c, unsigned code, const char *type, const char *extra, char *body,
		       size_t len);
/* onion_stats.c calls this when the statistics for c are complete. */
void onion_http_stats_ready(struct onion_conn *c);

/* POST /get_statistics_data (onion_stats.c): begin either answers at once (auth, bad filters;
 * auth is the Authorization value or NULL, peer the client's address, for onion_stats.h)
 * or asks router and statsd with *pending set, and onion_http_stats_ready follows; finish
 * then answers. onion_stats_free releases *pending. begin returns -1 when out of memory. */
int onion_stats_begin(struct onion_server *s, struct onion_conn *c, struct router_link *router,
		      struct router_link *statsd, const char *auth, const struct sockaddr *peer, socklen_t peerlen,
		      const unsigned char *body, size_t len, void **pending);
void onion_stats_finish(struct onion_server *s, struct onion_conn *c, void *pending);
void onion_stats_free(void *pending);
/* SIGHUP: the statistics route checks passwords against this hash from now on (any thread). */
void onion_stats_reload(const char *hash);
#endif
