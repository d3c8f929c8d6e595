/*
 * ingress-onion: the Bchat onion-request endpoint (bchat-onion.md). Plain HTTP/1.1 from the
 * last onion relay; the body is decrypted with the server's X25519 key, the action parsed and
 * validated, and registry changes and notifies are forwarded to the router as frames. The
 * encrypted success reply is written only after the router has committed the change.
 * Holds the server secret key. Trusts nothing it receives: every failure to decrypt is a
 * plain 400, every bad request inside an encrypted reply. May not open LMDB or reach providers.
 */
#include "bchat_request.h"
#include "config.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include "onion_body.h"
#include "onion_crypto.h"
#include "onion_http.h"
#include "router_link.h"
#include "sandbox.h"
#include "sock.h"
#include <errno.h>
#include <pthread.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *run_stats_link(void *arg)
{
	link_run(arg, &daemon_stop);
	return NULL;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct daemon_opts opts;
	struct onion_server srv;
	char path[256], err[256];
	pthread_t stats_thread;

	daemon_start("ingress-onion", argc, argv, &cfg, &opts);
	memset(&srv, 0, sizeof srv);
	srv.cfg = &cfg;
	if (cfg.onion.key_file[0] == '\0')
		fatal("%s: ingress_onion.key_file: required", cfg.path);
	if (onion_key_load(cfg.onion.key_file, srv.sk, srv.pk, err, sizeof err) < 0)
		fatal("server key: %s", err);
	if (config_socket(&cfg, "router.sock", path, sizeof path) == NULL)
		fatal("state_dir too long for a socket path");
	srv.link = link_new(path, (size_t)cfg.onion.max_pending, (uint32_t)cfg.onion.router_timeout_ms, ROLE_INGRESS);
	if (srv.link == NULL)
		fatal("out of memory");
	if (config_socket(&cfg, "statsd-query.sock", path, sizeof path) == NULL ||
	    (srv.stats_link = link_new(path, 64, (uint32_t)cfg.onion.router_timeout_ms, ROLE_INGRESS)) == NULL)
		fatal("out of memory");
	counters_init(config_socket(&cfg, "statsd.sock", path, sizeof path) ? path : "");
	if (onion_http_start(&srv, err, sizeof err) < 0)
		fatal("%s", err);
	daemon_privdrop(&cfg);
	sandbox_enter(&cfg, SANDBOX_INGRESS_ONION);
	log_info("listening on http://%s (public key %s)", cfg.onion.listen, srv.pk_hex);
	/* The main thread owns the router connection, a second thread the statsd one; HTTP runs
	 * on libmicrohttpd's threads. */
	if (pthread_create(&stats_thread, NULL, run_stats_link, srv.stats_link) != 0)
		fatal("cannot start a thread");
	link_run(srv.link, &daemon_stop);
	pthread_join(stats_thread, NULL);
	log_info("stopping");
	onion_http_stop(&srv);
	link_free(srv.link);
	link_free(srv.stats_link);
	config_free(&cfg);
	return 0;
}
