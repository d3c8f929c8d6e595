/*
 * hms-sender: delivers the Bchat jobs of Huawei registrations through Huawei Push Kit. Takes
 * PUSH frames of platform PLATFORM_HUAWEI from the router, sends each as one messages:send
 * request (send.c) with an OAuth access token (auth.c), and answers each with exactly one
 * RESULT frame; the router link, the jobs and the loop's work are the shared sender's
 * (common/sender/sender_loop.h), whose HTTP client carries sends and token requests alike. This file:
 * options, configuration, credentials, the send URL. Trusts the configuration; Push Kit
 * answers count only through classify.c. Holds, through struct hms, the app secret, the
 * access token and everything in flight.
 */
#include "hms.h"
#include "daemon.h"
#include "log.h"
#include "sandbox.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct hms A;

static void check_config(const struct conf_hms *c)
{
	char err[512];
	size_t n, ul = strlen(c->url);

	if (strncasecmp(c->url, "https://", 8) != 0)
		fatal("configuration: hms_sender.url must be an https:// URL");
	if (hms_auth_load(&A.auth, c, err, sizeof err) < 0)
		fatal("configuration: %s", err);
	while (ul > 0 && c->url[ul - 1] == '/')
		ul--;
	n = ul + strlen(A.auth.app_id) + sizeof "/v1//messages:send";
	if ((A.send_url = malloc(n)) == NULL)
		fatal("out of memory");
	snprintf(A.send_url, n, "%.*s/v1/%s/messages:send", (int)ul, c->url, A.auth.app_id);
}

/* hms-sender's policy: the senders' shared shape, and this provider's credential and CA
 * files. */
static void enter_sandbox(const struct config *c)
{
	struct sandbox_policy p;

	sender_policy(&A.s, &p);
	sandbox_allow_read(&p, c->hms.app_secret_file);
	sandbox_allow_read(&p, c->hms.ca_file);
	sandbox_enter(&p);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct daemon_opts opts;
	struct h2c_opts ho;

	daemon_start("hms-sender", argc, argv, &cfg, &opts);
	sender_init(&A.s, &hms_ops, &A, &cfg, opts.instance);
	check_config(&cfg.hms);
	memset(&ho, 0, sizeof ho);
	ho.ca_file = cfg.hms.ca_file;
	ho.allow_http1 = 1; /* Push Kit front ends may answer HTTP/1.1 */
	sender_start(&A.s, &cfg.hms.common, &ho, 1); /* and one token request */
	enter_sandbox(&cfg);
	log_info("started: app %s at %s, token URL %s, %ld connections of up to %ld streams, %zu jobs in flight at most",
		 A.auth.app_id, cfg.hms.url, A.auth.token_url, cfg.hms.common.connections, cfg.hms.common.max_streams, A.s.max_jobs);
	loop_run(A.s.lp);
	sender_stop(&A.s);
	hms_auth_free(&A.auth);
	free(A.send_url);
	config_free(&cfg);
	return 0;
}
