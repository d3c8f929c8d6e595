/*
 * apns-sender: delivers iOS jobs through APNs. Takes PUSH frames from the router (link.c),
 * sends each as one HTTP/2 request (send.c) and answers each with exactly one RESULT frame.
 * This file: options, configuration, credentials, privileges, and the one loop — one thread,
 * one epoll set over the router socket and the HTTP/2 client's sockets. Trusts the
 * configuration; APNs answers count only through classify.c. Holds the APNs credentials
 * (key, or certificate paths) and, through struct apns, everything in flight.
 */
#include "apns.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

static struct apns A;

static void check_config(const struct conf_apns *c)
{
	char err[512];

	if (strncasecmp(c->url, "https://", 8) != 0)
		fatal("configuration: apns_sender.url must be an https:// URL");
	if (c->topic[0] == '\0')
		fatal("configuration: apns_sender.topic is empty");
	if (apns_auth_load(&A.auth, c, err, sizeof err) < 0)
		fatal("configuration: %s", err);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct daemon_opts opts;
	struct h2c_opts ho;
	struct epoll_event ev, evs[64];
	char path[256];
	long slots;

	daemon_start("apns-sender", argc, argv, &cfg, &opts);
	A.instance = opts.instance;
	A.epfd = -1;
	srandom((unsigned)(getpid() ^ mono_ms()));
	A.cfg = &cfg;
	A.c = &cfg.apns;
	A.link.fd = -1;
	check_config(&cfg.apns);
	slots = cfg.apns.connections * cfg.apns.max_streams;
	A.max_jobs = (size_t)(slots < 1 ? 1 : slots > 10000 ? 10000 : slots);
	memset(&ho, 0, sizeof ho);
	ho.connections = cfg.apns.connections;
	ho.max_streams = cfg.apns.max_streams;
	ho.deadline_ms = cfg.apns.deadline_ms;
	ho.max_in_flight = A.max_jobs;
	ho.ca_file = cfg.apns.ca_file;
	if (strcmp(cfg.apns.auth, "certificate") == 0) {
		ho.cert_file = cfg.apns.cert_file;
		ho.key_file = cfg.apns.cert_key_file;
	}
	if ((A.h2 = h2c_new(&ho)) == NULL)
		fatal("cannot start the HTTP/2 client");
	guard_init(&A.guard, "APNs");
	counters_init(config_socket(&cfg, "statsd.sock", path, sizeof path) ? path : "");
	daemon_privdrop(&cfg);
	if ((A.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		fatal("epoll: %s", strerror(errno));
	ev.events = EPOLLIN;
	ev.data.u32 = APNS_EV_H2;
	if (epoll_ctl(A.epfd, EPOLL_CTL_ADD, h2c_fd(A.h2), &ev) < 0)
		fatal("epoll: %s", strerror(errno));
	log_info("started: %s, topic %s, %s authentication, %ld connections of up to %ld streams, "
		 "%zu jobs in flight at most",
		 cfg.apns.url, cfg.apns.topic, cfg.apns.auth, cfg.apns.connections, cfg.apns.max_streams, A.max_jobs);

	while (!daemon_stop) {
		uint64_t now = mono_ms();
		int timeout = 1000, t = h2c_timeout_ms(A.h2), n;

		if (A.link.fd < 0 && now >= A.reconnect_at) {
			apns_link_try(&A);
			now = mono_ms();
		}
		if (t >= 0 && t < timeout)
			timeout = t;
		if (A.link.fd < 0 && A.reconnect_at > now && A.reconnect_at - now < (uint64_t)timeout)
			timeout = (int)(A.reconnect_at - now);
		n = epoll_wait(A.epfd, evs, 64, timeout);
		for (int i = 0; i < n; i++)
			if (evs[i].data.u32 == APNS_EV_ROUTER)
				apns_link_event(&A, evs[i].events);
		h2c_run(A.h2);
		apns_link_watch(&A);
		counters_flush();
	}
	log_info("stopping with %zu jobs in flight (the router re-queues them)", A.njobs);
	h2c_free(A.h2);
	if (A.link.fd >= 0)
		peer_close(&A.link);
	apns_auth_free(&A.auth);
	close(A.epfd);
	config_free(&cfg);
	return 0;
}
