/*
 * ingress-uwpx: the UWPX registration listener (docs/uwpx.md). TLS on port 1997; each
 * NUL-terminated JSON message is validated here and turned into one router frame
 * (FRAME_UWPX_CHANNEL, _ACCOUNTS or _TEST); the reply is written once the router has answered.
 * Holds the TLS key. May not open LMDB or reach providers: the router and the WNS sender do.
 */
#include "config.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "../router_link_bus.h"
#include "sandbox.h"
#include "uwpx_server.h"
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

/* SIGHUP: the TLS certificate and key (renewals; the same paths, which the sandbox allows). */
static const char *reload(const struct config *fresh, void *arg)
{
	static char what[600];
	char err[512];

	if (uwpx_server_reload_tls(arg, &fresh->uwpx, err, sizeof err) < 0) {
		snprintf(what, sizeof what, "TLS certificate kept (%s)", err);
		return what;
	}
	return "TLS certificate and key re-read";
}

/* ingress-uwpx's policy: accept on the listener bound before (no inet socket of its own);
 * read the TLS certificate and key (again on SIGHUP, same paths). */
static void enter_sandbox(const struct config *c)
{
	struct sandbox_policy p;

	daemon_policy(&p, c);
	p.may_listen = 1;
	p.nofile = 256 + c->uwpx.max_connections;
	sandbox_allow_read(&p, c->uwpx.cert_file);
	sandbox_allow_read(&p, c->uwpx.key_file);
	sandbox_enter(&p);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct daemon_opts opts;
	struct uwpx_server *srv;
	struct loop *lp;
	char path[256], err[512];

	daemon_start("ingress-uwpx", argc, argv, &cfg, &opts);
	/* Signals are read from the loop's signalfd; set up before libnats starts its threads. */
	if ((lp = loop_new()) == NULL || loop_daemon_signals(lp) < 0)
		fatal("event loop: cannot set up");
	if (link_bus_config(&cfg) < 0) /* cluster mode: the routers are reached over NATS */
		fatal("cluster: cannot start");
	OPENSSL_init_ssl(0, NULL);
	counters_init(config_socket(&cfg, "statsd.sock", path, sizeof path) ? path : "");
	if ((srv = uwpx_server_new(&cfg, lp, err, sizeof err)) == NULL)
		fatal("%s", err);
	daemon_privdrop(&cfg);
	enter_sandbox(&cfg);
	if (link_bus_start() < 0) /* libnats' threads start inside the sandbox */
		fatal("cluster: cannot start");
	daemon_on_reload(reload, srv);
	log_info("listening on %s (TLS), push_bare_jid %s", cfg.uwpx.listen, cfg.xmpp.domain);
	loop_run(lp);
	log_info("stopping");
	uwpx_server_free(srv);
	loop_free(lp);
	link_bus_shutdown();
	config_free(&cfg);
	return 0;
}
