/*
 * fcm-sender: delivers Android jobs through FCM HTTP v1. Takes PUSH frames from the router
 * (link.c), sends each as one HTTP/2 request (send.c) with an OAuth access token (auth.c),
 * and answers each with exactly one RESULT frame. This file: options, configuration,
 * credentials, privileges, and the one loop — one thread, one epoll set over the router
 * socket and the HTTP/2 client's sockets (sends and token exchanges alike). Trusts the
 * configuration; FCM answers count only through classify.c. Holds, through struct fcm, the
 * service account's key, the access token and everything in flight.
 */
#include "fcm.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

static struct fcm A;

static void check_config(const struct conf_fcm *c)
{
	char err[512];
	size_t n, ul = strlen(c->url);

	if (strncasecmp(c->url, "https://", 8) != 0)
		fatal("configuration: fcm_sender.url must be an https:// URL");
	if (fcm_auth_load(&A.auth, c, err, sizeof err) < 0)
		fatal("configuration: %s", err);
	n = strlen(c->url) + strlen(A.auth.project_id) + sizeof "/v1/projects//messages:send";
	if ((A.send_url = malloc(n)) == NULL)
		fatal("out of memory");
	while (ul > 0 && c->url[ul - 1] == '/')
		ul--;
	snprintf(A.send_url, n, "%.*s/v1/projects/%s/messages:send", (int)ul, c->url, A.auth.project_id);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct daemon_opts opts;
	struct h2c_opts ho;
	struct epoll_event ev, evs[64];
	char path[256];
	long slots;

	daemon_start("fcm-sender", argc, argv, &cfg, &opts);
	A.instance = opts.instance;
	A.epfd = -1;
	srandom((unsigned)(getpid() ^ mono_ms()));
	A.cfg = &cfg;
	A.c = &cfg.fcm;
	A.link.fd = -1;
	check_config(&cfg.fcm);
	slots = cfg.fcm.connections * cfg.fcm.max_streams;
	A.max_jobs = (size_t)(slots < 1 ? 1 : slots > 10000 ? 10000 : slots);
	memset(&ho, 0, sizeof ho);
	ho.connections = cfg.fcm.connections;
	ho.max_streams = cfg.fcm.max_streams;
	ho.deadline_ms = cfg.fcm.deadline_ms;
	ho.max_in_flight = A.max_jobs + 1; /* and one token exchange */
	ho.ca_file = cfg.fcm.ca_file;
	if ((A.h2 = h2c_new(&ho)) == NULL)
		fatal("cannot start the HTTP/2 client");
	guard_init(&A.guard, "FCM");
	counters_init(config_socket(&cfg, "statsd.sock", path, sizeof path) ? path : "");
	daemon_privdrop(&cfg);
	if ((A.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		fatal("epoll: %s", strerror(errno));
	ev.events = EPOLLIN;
	ev.data.u32 = FCM_EV_H2;
	if (epoll_ctl(A.epfd, EPOLL_CTL_ADD, h2c_fd(A.h2), &ev) < 0)
		fatal("epoll: %s", strerror(errno));
	log_info("started: project %s at %s, service account %s, %ld connections of up to %ld streams, "
		 "%zu jobs in flight at most",
		 A.auth.project_id, cfg.fcm.url, A.auth.client_email, cfg.fcm.connections, cfg.fcm.max_streams, A.max_jobs);

	while (!daemon_stop) {
		uint64_t now;
		int timeout = 1000, t, n;

		fcm_auth_tick(&A);
		if (A.nwaiting > 0)
			fcm_fail_waiting(&A, NULL);
		now = mono_ms();
		if (A.link.fd < 0 && now >= A.reconnect_at) {
			fcm_link_try(&A);
			now = mono_ms();
		}
		if ((t = h2c_timeout_ms(A.h2)) >= 0 && t < timeout)
			timeout = t;
		if ((t = fcm_auth_timeout_ms(&A)) >= 0 && t < timeout)
			timeout = t;
		if (A.nwaiting > 0 && timeout > 100)
			timeout = 100;
		if (A.link.fd < 0 && A.reconnect_at > now && A.reconnect_at - now < (uint64_t)timeout)
			timeout = (int)(A.reconnect_at - now);
		n = epoll_wait(A.epfd, evs, 64, timeout);
		for (int i = 0; i < n; i++)
			if (evs[i].data.u32 == FCM_EV_ROUTER)
				fcm_link_event(&A, evs[i].events);
		h2c_run(A.h2);
		fcm_link_watch(&A);
		counters_flush();
	}
	log_info("stopping with %zu jobs in flight (the router re-queues them)", A.njobs);
	h2c_free(A.h2);
	fcm_jobs_drop(&A);
	if (A.link.fd >= 0)
		peer_close(&A.link);
	fcm_auth_free(&A.auth);
	free(A.send_url);
	close(A.epfd);
	config_free(&cfg);
	return 0;
}
