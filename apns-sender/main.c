/*
 * apns-sender: delivers iOS jobs through APNs. Takes PUSH frames from the router, sends each
 * as one HTTP/2 request (send.c) and answers each with exactly one RESULT frame; the router
 * link, the jobs and the loop's work are the shared sender's (common/sender/sender_loop.h). This file:
 * options, configuration, credentials, and the HTTP/2 client's settings (a TLS client
 * certificate with certificate authentication). Trusts the configuration; APNs answers count
 * only through classify.c. Holds the APNs credentials (key, or certificate paths) and,
 * through struct apns, everything in flight.
 */
#include "apns.h"
#include "daemon.h"
#include "log.h"
#include "sandbox.h"
#include <string.h>

static struct apns A;

static void check_config(const struct conf_apns *c)
{
	char err[512];

	/* url, topic, auth and the key were checked by daemon_start (config_check); this loads it. */
	if (apns_auth_load(&A.auth, c, err, sizeof err) < 0)
		fatal("configuration: %s", err);
}

/* apns-sender's policy: the senders' shared shape, and this provider's credential and CA
 * files. */
static void enter_sandbox(const struct config *c)
{
	struct sandbox_policy p;

	sender_policy(&A.s, &p);
	sandbox_allow_read(&p, c->apns.key_file);
	sandbox_allow_read(&p, c->apns.cert_file);
	sandbox_allow_read(&p, c->apns.cert_key_file);
	sandbox_allow_read(&p, c->apns.ca_file);
	sandbox_enter(&p);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct daemon_opts opts;
	struct h2c_opts ho;

	daemon_start("apns-sender", argc, argv, &cfg, &opts);
	sender_init(&A.s, &apns_ops, &A, &cfg, opts.instance);
	A.c = &cfg.apns;
	check_config(&cfg.apns);
	memset(&ho, 0, sizeof ho);
	ho.ca_file = cfg.apns.ca_file;
	ho.push_origin = cfg.apns.url;
	if (strcmp(cfg.apns.auth, "certificate") == 0) {
		ho.cert_file = cfg.apns.cert_file;
		ho.key_file = cfg.apns.cert_key_file;
	}
	sender_start(&A.s, &cfg.apns.common, &ho, 0);
	enter_sandbox(&cfg);
	log_info("started: %s, topic %s, %s authentication, %ld connections of up to %ld streams, "
		 "%zu jobs in flight at most",
		 cfg.apns.url, cfg.apns.topic, cfg.apns.auth, cfg.apns.common.connections, cfg.apns.common.max_streams,
		 A.s.max_jobs);
	loop_run(A.s.lp);
	sender_stop(&A.s);
	apns_auth_free(&A.auth);
	config_free(&cfg);
	return 0;
}
