/*
 * sender_loop: start-up, turn work and shutdown shared by the provider senders, on the daemon's
 * loop (loop.h). The router link (sender_link.c) or the cluster bus (sender_bus.c) and the HTTP
 * client (h2client, or the provider's own through struct sender_http) register their
 * descriptors and timers with it; at the end of every turn the HTTP client starts what the
 * turn queued, the router socket's interest follows the room for jobs, the gauges and counters
 * go to statsd, and the sender's timers are set: the next router reconnect, the provider's
 * tick (e.g. an OAuth refresh) when its timeout_ms says, and, while jobs are parked, a check
 * every 100 ms that fails those past the deadline. Trusts the provider's callbacks and its
 * configuration checks. Holds the loop, the HTTP client and the guard of struct sender.
 */
#include "sender_loop.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include "sender_bus.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void sender_init(struct sender *s, const struct sender_ops *ops, void *ctx, const struct config *cfg,
		 const char *instance)
{
	memset(s, 0, sizeof *s);
	s->ops = ops;
	s->ctx = ctx;
	s->cfg = cfg;
	s->instance = instance;
	s->link.peer.fd = -1;
	if ((s->lp = loop_new()) == NULL || loop_daemon_signals(s->lp) < 0)
		fatal_errno("loop");
	if (config_socket(cfg, "router-sender.sock", s->link.path, sizeof s->link.path) == NULL)
		fatal("state_dir too long for a socket path");
	reconnect_init(&s->link.rc, s->link.path, 1000, 500); /* every second, with jitter */
	srandom((unsigned)(getpid() ^ mono_ms()));
}

/* h2client behind struct sender_http, the default. */
static void *h2_open(const struct h2c_opts *o, struct loop *lp)
{
	return h2c_new(o, lp);
}
static void h2_close(void *h)
{
	h2c_free(h);
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
static const struct sender_http h2_http = {h2_open, h2_close, h2_run, h2_submit, h2_in_flight};

static const struct sender_http *http_of(const struct sender *s)
{
	return s->ops->http ? s->ops->http : &h2_http;
}

int sender_http_submit(struct sender *s, const char *url, const char *const *headers, const void *body,
		       size_t len, h2c_done_fn *done, void *ctx)
{
	return http_of(s)->submit(s->http, url, headers, body, len, done, ctx);
}

static void on_tick(void *arg)
{
	struct sender *s = arg;

	s->tick_t = NULL;
	s->ops->tick(s);
}

static void on_waiting(void *arg)
{
	struct sender *s = arg;

	sender_fail_waiting(s, NULL);
	if (s->nwaiting == 0) {
		loop_timer_cancel(s->lp, s->wait_t);
		s->wait_t = NULL;
	}
}

/* The end of every turn: what the turn queued goes out, then the gauges and the timers. */
static void on_turn(void *arg)
{
	struct sender *s = arg;

	http_of(s)->run(s->http);
	sender_link_watch(s);
	gauge_set(GAUGE_JOBS_IN_FLIGHT, s->njobs);
	gauge_set(GAUGE_PROVIDER_REQUESTS, http_of(s)->in_flight(s->http));
	gauge_set(GAUGE_ROUTER_CONNECTED, s->link.peer.fd >= 0);
	gauge_set(GAUGE_PROVIDER_PAUSED, s->guard.paused != 0);
	counters_flush();
	if (s->ops->tick && loop_wake(s->lp, &s->tick_t, s->ops->timeout_ms(s), on_tick, s) < 0)
		log_warn("out of memory for a timer");
	if (s->nwaiting > 0 && s->wait_t == NULL && (s->wait_t = loop_timer(s->lp, 100, 100, on_waiting, s)) == NULL)
		log_warn("out of memory for a timer");
}

void sender_start(struct sender *s, const struct sender_settings *set, struct h2c_opts *ho, size_t extra_in_flight)
{
	char path[256];
	long slots = set->connections * set->max_streams;

	s->set = set;
	ho->connections = set->connections;
	ho->max_streams = set->max_streams;
	ho->deadline_ms = set->deadline_ms;
	ho->ping_idle_ms = set->ping_idle_ms;
	s->max_jobs = (size_t)(slots < 1 ? 1 : slots > SENDER_JOBS_MAX ? SENDER_JOBS_MAX : slots);
	s->deadline_ms = set->deadline_ms;
	ho->max_in_flight = s->max_jobs + extra_in_flight;
	if ((s->http = http_of(s)->open(ho, s->lp)) == NULL)
		fatal("cannot start the HTTP client");
	if (s->ops->http == NULL)
		s->h2 = s->http;
	guard_init(&s->guard, s->ops->provider);
	guard_set_limits(&s->guard, set->guard_window, set->guard_min_answers, set->guard_percent);
	counters_init(config_socket(s->cfg, "statsd.sock", path, sizeof path) ? path : "");
	counters_set_instance(s->instance);
	if (config_cluster(s->cfg) && sender_bus_prepare(s) < 0) /* jobs from NATS (docs/cluster.md) */
		fatal("cluster: cannot start");
	daemon_privdrop(s->cfg);
	if (loop_on_turn(s->lp, on_turn, s) < 0 || sender_link_start(s) < 0)
		fatal("out of memory");
}

void sender_policy(const struct sender *s, struct sandbox_policy *p)
{
	daemon_policy(p, s->cfg);
	p->inet_client = 1;
	p->connect_any = 1;
	p->nofile = 256 + 2 * s->set->connections;
}

void sender_stop(struct sender *s)
{
	log_info("stopping with %zu jobs in flight (the router re-queues them)", s->njobs);
	http_of(s)->close(s->http);
	s->http = s->h2 = NULL;
	sender_jobs_drop(s);
	sender_bus_free(s);
	sender_link_stop(s);
	loop_free(s->lp);
	s->lp = NULL;
}
