/*
 * sender_loop: start-up, loop and shutdown shared by the provider senders. One thread, one
 * epoll set over the router socket (sender_link.c) and the HTTP client's sockets (h2client, or
 * the provider's own through struct sender_http); the provider's tick (e.g. an OAuth refresh)
 * runs first on every turn, parked jobs are failed once past the deadline, and the wait is
 * bounded by the client's timers, the provider's, and the next router reconnect. Trusts the
 * provider's callbacks and its configuration checks. Holds the HTTP client, the guard and the
 * epoll set of struct sender.
 */
#include "sender_loop.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include "sender_bus.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

void sender_init(struct sender *s, const struct sender_ops *ops, void *ctx, const struct config *cfg,
		 const char *instance)
{
	memset(s, 0, sizeof *s);
	s->ops = ops;
	s->ctx = ctx;
	s->cfg = cfg;
	s->instance = instance;
	s->epfd = -1;
	s->link.peer.fd = -1;
	if (config_socket(cfg, "router-sender.sock", s->link.path, sizeof s->link.path) == NULL)
		fatal("state_dir too long for a socket path");
	reconnect_init(&s->link.rc, s->link.path, 1000, 500); /* every second, with jitter */
	srandom((unsigned)(getpid() ^ mono_ms()));
}

/* h2client behind struct sender_http, the default. */
static void *h2_open(const struct h2c_opts *o)
{
	return h2c_new(o);
}
static void h2_close(void *h)
{
	h2c_free(h);
}
static int h2_fd(const void *h)
{
	return h2c_fd(h);
}
static int h2_timeout_ms(const void *h)
{
	return h2c_timeout_ms(h);
}
static void h2_run(void *h)
{
	h2c_run(h);
}
static int h2_submit(void *h, const char *url, const char *const *headers, const void *body, size_t len,
		     h2c_done_fn *done, void *ctx)
{
	return h2c_submit(h, url, headers, body, len, done, ctx);
}
static size_t h2_in_flight(const void *h)
{
	return h2c_in_flight(h);
}
static const struct sender_http h2_http = {h2_open, h2_close, h2_fd, h2_timeout_ms, h2_run, h2_submit, h2_in_flight};

static const struct sender_http *http_of(const struct sender *s)
{
	return s->ops->http ? s->ops->http : &h2_http;
}

int sender_http_submit(struct sender *s, const char *url, const char *const *headers, const void *body,
		       size_t len, h2c_done_fn *done, void *ctx)
{
	return http_of(s)->submit(s->http, url, headers, body, len, done, ctx);
}

void sender_start(struct sender *s, struct h2c_opts *ho, size_t extra_in_flight)
{
	struct epoll_event ev;
	char path[256];
	long slots = ho->connections * ho->max_streams;

	s->max_jobs = (size_t)(slots < 1 ? 1 : slots > SENDER_JOBS_MAX ? SENDER_JOBS_MAX : slots);
	s->deadline_ms = ho->deadline_ms;
	ho->max_in_flight = s->max_jobs + extra_in_flight;
	if ((s->http = http_of(s)->open(ho)) == NULL)
		fatal("cannot start the HTTP client");
	if (s->ops->http == NULL)
		s->h2 = s->http;
	guard_init(&s->guard, s->ops->provider);
	guard_set_limits(&s->guard, s->guard_window, s->guard_min_guarded, s->guard_percent);
	counters_init(config_socket(s->cfg, "statsd.sock", path, sizeof path) ? path : "");
	counters_set_instance(s->instance);
	if (config_cluster(s->cfg) && sender_bus_prepare(s) < 0) /* jobs from NATS (docs/cluster.md) */
		fatal("cluster: cannot start");
	daemon_privdrop(s->cfg);
	if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		fatal_errno("epoll");
	ev.events = EPOLLIN;
	ev.data.u32 = SENDER_EV_H2;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, http_of(s)->fd(s->http), &ev) < 0)
		fatal_errno("epoll");
}

void sender_policy(const struct sender *s, struct sandbox_policy *p, long connections)
{
	daemon_policy(p, s->cfg);
	p->inet_client = 1;
	p->connect_any = 1;
	p->nofile = 256 + 2 * connections;
}

void sender_run(struct sender *s)
{
	struct epoll_event evs[64];

	while (!daemon_stop) {
		uint64_t now;
		int timeout = 1000, t, n;

		if (s->ops->tick)
			s->ops->tick(s);
		if (s->nwaiting > 0)
			sender_fail_waiting(s, NULL);
		now = mono_ms();
		if (s->link.peer.fd < 0 && reconnect_due(&s->link.rc, now)) {
			sender_link_try(s);
			now = mono_ms();
		}
		if ((t = http_of(s)->timeout_ms(s->http)) >= 0 && t < timeout)
			timeout = t;
		if (s->ops->timeout_ms && (t = s->ops->timeout_ms(s)) >= 0 && t < timeout)
			timeout = t;
		if (s->nwaiting > 0 && timeout > 100)
			timeout = 100;
		if (s->link.peer.fd < 0 && s->link.rc.next_ms > now && s->link.rc.next_ms - now < (uint64_t)timeout)
			timeout = (int)(s->link.rc.next_ms - now);
		n = epoll_wait(s->epfd, evs, 64, timeout);
		for (int i = 0; i < n; i++)
			if (evs[i].data.u32 == SENDER_EV_ROUTER)
				sender_link_event(s, evs[i].events);
		http_of(s)->run(s->http);
		sender_link_watch(s);
		gauge_set(GAUGE_JOBS_IN_FLIGHT, s->njobs);
		gauge_set(GAUGE_PROVIDER_REQUESTS, http_of(s)->in_flight(s->http));
		gauge_set(GAUGE_ROUTER_CONNECTED, s->link.peer.fd >= 0);
		gauge_set(GAUGE_PROVIDER_PAUSED, s->guard.paused != 0);
		counters_flush();
		daemon_reload_check();
	}
	log_info("stopping with %zu jobs in flight (the router re-queues them)", s->njobs);
	http_of(s)->close(s->http);
	s->http = s->h2 = NULL;
	sender_jobs_drop(s);
	sender_bus_free(s);
	if (s->link.peer.fd >= 0)
		peer_close(&s->link.peer);
	close(s->epfd);
	s->epfd = -1;
}
