/* onion_http: the onion ingress's HTTP side on libmicrohttpd (routes, bodies, replies). */
#ifndef ONION_HTTP_H
#define ONION_HTTP_H
#include "config.h"
#include "router_link.h"
#include <microhttpd.h>
#include <stddef.h>

struct MHD_Daemon;

struct onion_server {
	const struct config *cfg;
	unsigned char sk[32], pk[32];
	char pk_hex[65];
	struct router_link *link;	/* router: registry changes, notifies, counts */
	struct router_link *stats_link; /* statsd: statistics windows */
	struct MHD_Daemon *mhd;
};

/* Starts listening on cfg->onion.listen; -1 with a reason. */
int onion_http_start(struct onion_server *s, char *err, size_t errlen);
void onion_http_stop(struct onion_server *s);
/* POST /get_statistics_data (onion_stats.c): begin either answers at once (auth, bad
 * filters) or suspends the connection with *pending set; after the resume, finish answers.
 * onion_stats_free releases *pending when the connection ends. */
enum MHD_Result onion_stats_begin(struct onion_server *s, struct MHD_Connection *mc, const unsigned char *body,
				  size_t len, void **pending);
enum MHD_Result onion_stats_finish(struct onion_server *s, struct MHD_Connection *mc, void *pending);
void onion_stats_free(void *pending);
#endif
