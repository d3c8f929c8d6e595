/*
 * fcm-sender: delivers Android jobs through FCM HTTP v1. Takes PUSH frames from the router,
 * sends each as one HTTP/2 request (send.c) with an OAuth access token (auth.c), and answers
 * each with exactly one RESULT frame; the router link, the jobs and the loop's work are the shared
 * sender's (common/sender/sender_loop.h), whose HTTP/2 client carries sends and token exchanges
 * alike. This file: options, configuration, credentials, the send URL. Trusts the
 * configuration; FCM answers count only through classify.c. Holds, through struct fcm, the
 * service account's key, the access token and everything in flight.
 */
#include "fcm.h"
#include "daemon.h"
#include "log.h"
#include "sandbox.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fcm A;

static void check_config(const struct conf_fcm *c)
{
	char err[512];
	size_t n, ul = strlen(c->url);

	/* url and the service account were checked by daemon_start (config_check). */
	if (fcm_auth_load(&A.auth, c, err, sizeof err) < 0)
		fatal("configuration: %s", err);
	n = strlen(c->url) + strlen(A.auth.project_id) + sizeof "/v1/projects//messages:send";
	if ((A.send_url = malloc(n)) == NULL)
		fatal("out of memory");
	while (ul > 0 && c->url[ul - 1] == '/')
		ul--;
	snprintf(A.send_url, n, "%.*s/v1/projects/%s/messages:send", (int)ul, c->url, A.auth.project_id);
}

/* fcm-sender's policy: the senders' shared shape, and this provider's credential and CA
 * files. */
static void enter_sandbox(const struct config *c)
{
	struct sandbox_policy p;

	sender_policy(&A.s, &p);
	sandbox_allow_read(&p, c->fcm.service_account_file);
	sandbox_allow_read(&p, c->fcm.ca_file);
	sandbox_enter(&p);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct daemon_opts opts;
	struct h2c_opts ho;

	daemon_start("fcm-sender", argc, argv, &cfg, &opts);
	sender_init(&A.s, &fcm_ops, &A, &cfg, opts.instance);
	check_config(&cfg.fcm);
	memset(&ho, 0, sizeof ho);
	ho.ca_file = cfg.fcm.ca_file;
	ho.push_origin = cfg.fcm.url;
	sender_start(&A.s, &cfg.fcm.common, &ho, 1); /* and one token exchange */
	enter_sandbox(&cfg);
	log_info("started: project %s at %s, service account %s, %ld connections of up to %ld streams, "
		 "%zu jobs in flight at most",
		 A.auth.project_id, cfg.fcm.url, A.auth.client_email, cfg.fcm.common.connections, cfg.fcm.common.max_streams,
		 A.s.max_jobs);
	loop_run(A.s.lp);
	sender_stop(&A.s);
	fcm_auth_free(&A.auth);
	free(A.send_url);
	config_free(&cfg);
	return 0;
}
