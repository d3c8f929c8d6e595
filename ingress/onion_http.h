/* onion_http: the onion ingress's HTTP side on libmicrohttpd (routes, bodies, replies). */
#ifndef ONION_HTTP_H
#define ONION_HTTP_H
#include "config.h"
#include "router_link.h"
#include <stddef.h>

struct MHD_Daemon;

struct onion_server {
	const struct config *cfg;
	unsigned char sk[32], pk[32];
	char pk_hex[65];
	struct router_link *link;
	struct MHD_Daemon *mhd;
};

/* Starts listening on cfg->onion.listen; -1 with a reason. */
int onion_http_start(struct onion_server *s, char *err, size_t errlen);
void onion_http_stop(struct onion_server *s);
struct MHD_Connection;
/* POST /get_statistics_data (onion_stats.c): queues the whole answer. */
int onion_stats_request(struct onion_server *s, struct MHD_Connection *mc, const unsigned char *body, size_t len);
#endif
