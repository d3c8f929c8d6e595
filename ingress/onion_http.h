/*
 * onion_http: the onion ingress's HTTP/1.1 side: worker threads, each an epoll loop that owns
 * its client connections and its own links to the router and to statsd, so a request is read,
 * decrypted, forwarded and answered on one thread without locks or wake-ups.
 */
#ifndef ONION_HTTP_H
#define ONION_HTTP_H
#include "config.h"
#include "router_link.h"
#include <pthread.h>
#include <sys/socket.h>
#include <stddef.h>

struct onion_worker;
struct onion_conn;

struct onion_server {
	const struct config *cfg;
	unsigned char sk[32], pk[32];
	char pk_hex[65];
	char router_path[108], stats_path[108]; /* router.sock, statsd-query.sock */
	int lfd;				/* the listening socket */
	int nconns;				/* open connections, all workers (atomic) */
	size_t nworkers;
	struct onion_worker *workers;
	pthread_mutex_t gate_mu; /* the workers wait for go */
	pthread_cond_t gate;
	int go;
};

/* Opens the listening socket on cfg->onion.listen and creates the worker threads, which wait
 * (called before the sandbox, which then reaches them too); -1 with a reason. */
int onion_http_start(struct onion_server *s, char *err, size_t errlen);
/* Connects every worker to the router and statsd and lets the workers run (after the
 * sandbox); they run until daemon_stop. */
void onion_http_run(struct onion_server *s);
/* Waits for the workers (after daemon_stop) and closes everything. */
void onion_http_stop(struct onion_server *s);

/* Queues the answer to c's request; body (malloc'd, taken) is len bytes. extra is a header
 * line with its CRLF, or NULL. */
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
