/*
 * ingress-onion: the Bchat onion-request endpoint (docs/protocol.md). Plain HTTP/1.1 from the
 * last onion relay; the body is decrypted with the server's X25519 key, the action parsed and
 * validated, and registry changes and notifies are forwarded to the router as frames. The
 * encrypted success reply is written only after the router has committed the change.
 * HTTP runs on `threads` worker threads, each driving a libmicrohttpd daemon (onion_http.c);
 * the main thread runs the event loop (loop.c): signals, the SIGHUP reload, the counters.
 * Holds the server secret key. Trusts nothing it receives: every failure to decrypt is a
 * plain 400, every bad request inside an encrypted reply. May not open LMDB or reach providers.
 */
#include "config.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "onion_crypto.h"
#include "onion_http.h"
#include "onion_stats.h"
#include "../router_link_bus.h"
#include "sandbox.h"
#include <stdio.h>
#include <string.h>

/* SIGHUP: the statistics password hash (a malformed one is refused, the old one kept). */
static const char *reload(const struct config *fresh, void *arg)
{
	(void)arg;
	if (!config_password_hash_ok(fresh->onion.stats_password_hash)) {
		log_error("HUP: ingress_onion.stats_password_hash is malformed; keeping the running one");
		return "statistics password hash kept";
	}
	onion_stats_reload(fresh->onion.stats_password_hash);
	return "statistics password hash re-read";
}

/* ingress-onion's policy: accept on the listener bound before (no inet socket of its own);
 * read the configuration and its key. */
static void enter_sandbox(const struct config *c)
{
	struct sandbox_policy p;

	daemon_policy(&p, c);
	p.may_listen = 1;
	p.nofile = 256 + c->onion.max_connections + 4 * c->onion.threads;
	sandbox_allow_read(&p, c->onion.key_file);
	sandbox_enter(&p);
}

/* The counters the workers summed go to statsd every 100 ms. */
static void flush_tick(void *arg)
{
	(void)arg;
	counters_flush();
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct daemon_opts opts;
	struct onion_server srv;
	struct loop *lp;
	char err[256];

	daemon_start("ingress-onion", argc, argv, &cfg, &opts);
	/* Signals are blocked and read from the loop's signalfd before any thread starts (the
	 * HTTP workers, libnats' in cluster mode), so none of them can receive one. */
	if ((lp = loop_new()) == NULL || loop_daemon_signals(lp) < 0)
		fatal("event loop: cannot set up");
	memset(&srv, 0, sizeof srv);
	srv.cfg = &cfg;
	/* key_file was checked by daemon_start (config_check); loaded here, before the drop. */
	if (onion_key_load(cfg.onion.key_file, srv.sk, srv.pk, err, sizeof err) < 0)
		fatal("server key: %s", err);
	for (size_t i = 0; i < cfg.onion.nservices; i++)
		if (onion_key_load(cfg.onion.services[i].key_file, srv.svc[i].sk, srv.svc[i].pk, err, sizeof err) < 0)
			fatal("ingress_onion.services[%zu] key: %s", i, err);
	if (config_socket(&cfg, "router.sock", srv.router_path, sizeof srv.router_path) == NULL ||
	    config_socket(&cfg, "statsd-query.sock", srv.stats_path, sizeof srv.stats_path) == NULL)
		fatal("state_dir too long for a socket path");
	counters_init(config_socket(&cfg, "statsd.sock", err, sizeof err) ? err : "");
	onion_stats_init(&cfg);
	if (link_bus_config(&cfg) < 0) /* cluster mode: the router is reached over NATS */
		fatal("cluster: cannot start");
	if (onion_http_start(&srv, err, sizeof err) < 0)
		fatal("%s", err);
	daemon_privdrop(&cfg);
	enter_sandbox(&cfg);
	/* Every thread starts inside the sandbox and inherits it: libnats' (cluster mode), then
	 * the HTTP workers and their libmicrohttpd daemons, which own the connections to the
	 * router and statsd; this thread only sends the counters. */
	if (link_bus_start() < 0)
		fatal("cluster: cannot start");
	if (onion_http_run(&srv, err, sizeof err) < 0)
		fatal("%s", err);
	log_info("listening on http://%s (public key %s)", cfg.onion.listen, srv.pk_hex);
	daemon_on_reload(reload, NULL);
	if (loop_timer(lp, 100, 100, flush_tick, NULL) == NULL)
		fatal("event loop: out of memory");
	loop_run(lp);
	log_info("stopping");
	onion_http_stop(&srv);
	link_bus_shutdown();
	counters_flush();
	loop_free(lp);
	config_free(&cfg);
	return 0;
}
