/*
 * wns-sender: delivers UWPX wake-ups through WNS as raw notifications (docs/senders.md). Takes
 * PUSH frames of kind KIND_WNS from the router, POSTs each to its channel URI (send.c) with an
 * OAuth access token (auth.c), and answers each with exactly one RESULT frame; the router link,
 * the jobs and the loop's work are the shared sender's (common/sender/sender_loop.h); its HTTP client is
 * libcurl's (curl_http.c: HTTP/2, or HTTP/1.1 when WNS offers only that) and carries sends and
 * token requests alike. This
 * file: options, configuration, credentials. Trusts the configuration; WNS answers count only
 * through classify.c. Holds, through struct wns, the client secret, the access token and
 * everything in flight.
 */
#include "wns.h"
#include "daemon.h"
#include "log.h"
#include "sandbox.h"
#include <string.h>

static struct wns A;

/* wns-sender's policy: the senders' shared shape, and this provider's credential and CA
 * files. */
static void enter_sandbox(const struct config *c)
{
	struct sandbox_policy p;

	sender_policy(&A.s, &p);
	sandbox_allow_read(&p, c->wns.client_secret_file);
	sandbox_allow_read(&p, c->wns.ca_file);
	sandbox_enter(&p);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct daemon_opts opts;
	struct h2c_opts ho;
	char err[512];

	daemon_start("wns-sender", argc, argv, &cfg, &opts);
	sender_init(&A.s, &wns_ops, &A, &cfg, opts.instance);
	A.c = &cfg.wns;
	uwpx_uri_rules_from_config(&A.uri, &cfg);
	if (wns_auth_load(&A.auth, &cfg.wns, err, sizeof err) < 0)
		fatal("configuration: %s", err);
	memset(&ho, 0, sizeof ho);
	ho.ca_file = cfg.wns.ca_file;
	sender_start(&A.s, &cfg.wns.common, &ho, 1); /* and one token request */
	enter_sandbox(&cfg);
	log_info("started: %s flow, token URL %s, scope %s, client %s, %ld connections of up to %ld streams, "
		 "%zu jobs in flight at most",
		 cfg.wns.auth_flow, A.auth.token_url, A.auth.scope, A.auth.client_id, cfg.wns.common.connections,
		 cfg.wns.common.max_streams, A.s.max_jobs);
	loop_run(A.s.lp);
	sender_stop(&A.s);
	wns_auth_free(&A.auth);
	config_free(&cfg);
	return 0;
}
