/*
 * ingress-xmpp: the XEP-0114 component and XEP-0357 app server (docs/xmpp.md).
 * Connects to the user's XMPP server's component port, authenticates with the shared secret,
 * answers publishes and ad-hoc commands after asking the router, and reconnects with back-off.
 * Single-threaded: the event loop (loop.c) owns the XMPP socket and the link to the router (router_link.c,
 * the ingresses' one router client: router.sock, or the routers over NATS in cluster mode,
 * docs/cluster.md). All protocol work is in xmpp_session.c and its neighbours; this file moves
 * bytes and keeps time.
 * Holds the component secret; never logs it, nor any sender JID or message body.
 */
#include "config.h"
#include "counters.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "loop.h"
#include "sandbox.h"
#include "../router_link.h"
#include "../router_link_bus.h"
#include "xmpp_session.h"
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HANDSHAKE_TIMEOUT_MS 15000
#define SHUTDOWN_WAIT_MS 5000
#define PING_IDLE_MS (5 * 60 * 1000)
#define PING_TIMEOUT_MS 30000

struct app {
	struct config *cfg;
	struct xsess *s;
	char host[256], port[16];
	int fd;			/* XMPP socket or -1 */
	int connecting;		/* non-blocking connect in progress */
	uint64_t connect_at, ready_at, last_in, last_out, ping_at, next_attempt;
	struct xmpp_backoff backoff;
	int was_ready;
	struct loop *lp;
	struct loop_fd *xh;	/* the XMPP socket's handle, while fd >= 0 */
	uint32_t xwatched;	/* the events it is registered for */
	struct router_link *link; /* in the loop's epoll set, with a loop_watch handle */
};

static int submit(void *ctx, uint8_t *frame, size_t len, link_done_fn done, void *done_ctx)
{
	return link_submit(((struct app *)ctx)->link, frame, len, done, done_ctx);
}

static char *read_secret(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[1024];
	size_t n;
	if (f == NULL)
		fatal_errno("ingress_xmpp.secret_file %s", path);
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (n == 0 || strlen(buf) != n)
		fatal("ingress_xmpp.secret_file %s: empty or not text", path);
	return strdup(buf);
}

static void split_hostport(struct app *a, const char *hp)
{
	const char *colon = strrchr(hp, ':');
	size_t hl;
	if (colon == NULL || colon[1] == '\0')
		fatal("ingress_xmpp.server: expected host:port, got %s", hp);
	hl = (size_t)(colon - hp);
	if (hp[0] == '[' && hl >= 2 && hp[hl - 1] == ']') {
		hp++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof a->host || strlen(colon + 1) >= sizeof a->port)
		fatal("ingress_xmpp.server: bad host:port %s", hp);
	memcpy(a->host, hp, hl);
	a->host[hl] = '\0';
	strcpy(a->port, colon + 1);
}

/* ---------------------------------------------------------------- XMPP socket */

static void on_xmpp(void *arg, uint32_t events);

/* Closes the XMPP socket (and leaves the loop). */
static void xmpp_close(struct app *a)
{
	if (a->fd < 0)
		return;
	loop_del(a->lp, a->xh);
	a->xh = NULL;
	close(a->fd);
	a->fd = -1;
}

static void xmpp_connect(struct app *a, uint64_t now)
{
	struct addrinfo hints, *res = NULL;
	int fd, one = 1, idle = 60, intvl = 10, cnt = 6, rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	a->connect_at = now;
	if ((rc = getaddrinfo(a->host, a->port, &hints, &res)) != 0) {
		log_warn("xmpp server %s: %s", a->host, gai_strerror(rc));
		goto fail;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, res->ai_addr, res->ai_addrlen) < 0 && errno != EINPROGRESS) {
		log_warn_errno("xmpp server %s:%s", a->host, a->port);
		close(fd);
		goto fail;
	}
	freeaddrinfo(res);
	res = NULL;
	if ((a->xh = loop_add(a->lp, fd, EPOLLOUT, on_xmpp, a)) == NULL) {
		log_warn_errno("event loop");
		close(fd);
		goto fail;
	}
	a->fd = fd;
	a->xwatched = EPOLLOUT;
	a->connecting = 1;
	return;
fail:
	if (res)
		freeaddrinfo(res);
	a->next_attempt = now + xmpp_backoff_next(&a->backoff, "", 0, randombytes_random());
}

static void xmpp_flush(struct app *a, uint64_t now)
{
	struct xbuf *o = &a->s->out;
	while (a->fd >= 0 && !a->connecting && o->len > 0) {
		ssize_t n = send(a->fd, o->p, o->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				xs_peer_gone(a->s, "write failed");
			return;
		}
		xb_consume(o, (size_t)n);
		a->last_out = now;
	}
}

/* Closes the XMPP connection and schedules the next attempt. */
static void xmpp_down(struct app *a, uint64_t now)
{
	uint64_t up = a->was_ready ? now - a->ready_at : 0;
	const char *cond = a->s->end_cond;
	uint32_t delay;

	xmpp_flush(a, now);
	xmpp_close(a);
	a->connecting = 0;
	a->ping_at = 0;
	delay = xmpp_backoff_next(&a->backoff, cond, up, randombytes_random());
	if (strcmp(cond, "not-authorized") == 0 || strcmp(cond, "host-unknown") == 0)
		log_error("xmpp server refused the component (%s): check ingress_xmpp.domain and secret_file "
			  "against the server's component configuration", cond);
	else if (cond[0])
		log_warn("xmpp stream error from the server: %s", cond);
	log_info("xmpp connection closed (%s); reconnecting in %u ms", a->s->end_reason ? a->s->end_reason : "closed",
		 delay);
	a->next_attempt = now + delay;
	a->was_ready = 0;
	if (!daemon_stop)
		counter_add(CTR_XMPP_RECONNECTS, 1);
}

static void xmpp_readable(struct app *a, uint64_t now)
{
	char buf[16384];
	for (int k = 0; k < 64 && a->s->state != XS_CLOSED; k++) {
		ssize_t n = recv(a->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0) {
			xs_peer_gone(a->s, n == 0 ? "server closed the connection" : "read failed");
			return;
		}
		a->last_in = now;
		a->s->now = now;
		xs_feed(a->s, buf, (size_t)n);
	}
}

static void xmpp_connected(struct app *a, uint64_t now)
{
	int err = 0;
	socklen_t len = sizeof err;
	a->connecting = 0;
	if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
		log_warn("xmpp server %s:%s: %s", a->host, a->port, strerror(err ? err : errno));
		xmpp_close(a);
		a->next_attempt = now + xmpp_backoff_next(&a->backoff, "", 0, randombytes_random());
		return;
	}
	if (xs_start(a->s) < 0)
		fatal("out of memory");
	a->last_in = a->last_out = now;
	log_info("connected to xmpp server %s:%s", a->host, a->port);
}

/* Timers of a live connection: handshake deadline, keepalive, ping. */
static void xmpp_timers(struct app *a, uint64_t now)
{
	struct xsess *s = a->s;
	if (s->state == XS_READY && !a->was_ready) {
		a->was_ready = 1;
		a->ready_at = now;
		log_info("component authenticated as %s", s->conf.domain);
	}
	if (s->state != XS_READY && s->state != XS_CLOSED && s->state != XS_CLOSING &&
	    now - a->connect_at > HANDSHAKE_TIMEOUT_MS)
		xs_peer_gone(s, "handshake timeout");
	if (s->state != XS_READY)
		return;
	if (a->cfg->xmpp.ping_jid[0]) {
		if (a->ping_at && a->last_in >= a->ping_at) {
			a->ping_at = 0;
		} else if (a->ping_at && now - a->ping_at > PING_TIMEOUT_MS) {
			xs_peer_gone(s, "no answer to ping");
			return;
		} else if (!a->ping_at && now - a->last_in > PING_IDLE_MS) {
			xs_ping(s, a->cfg->xmpp.ping_jid);
			a->ping_at = now;
		}
	}
	if (s->out.len == 0 && now - a->last_out >= (uint64_t)a->cfg->xmpp.keepalive_s * 1000)
		xb_str(&s->out, " ");
}

/* ---------------------------------------------------------------- main */

/* The XMPP socket is ready: the connect completed, or bytes came. */
static void on_xmpp(void *arg, uint32_t events)
{
	struct app *a = arg;
	uint64_t now = mono_ms();

	(void)events;
	a->s->now = now;
	if (a->fd < 0)
		return;
	if (a->connecting)
		xmpp_connected(a, now);
	else
		xmpp_readable(a, now);
}

static void on_link(void *arg, uint32_t events)
{
	struct app *a = arg;

	(void)events;
	link_read(a->link);
}

/* The end of every turn: deadlines, (re)connecting, what the turn queued goes out, and the
 * XMPP socket watched for what it waits for. While stopping, only the queued bytes go out. */
static void step(void *arg)
{
	struct app *a = arg;
	uint64_t now = mono_ms();
	uint32_t want;

	a->s->now = now;
	link_tick(a->link, now);
	if (a->fd < 0 && !daemon_stop && now >= a->next_attempt)
		xmpp_connect(a, now);
	if (a->fd >= 0 && a->connecting && now - a->connect_at > HANDSHAKE_TIMEOUT_MS) {
		log_warn("xmpp server %s:%s: connect timed out", a->host, a->port);
		xmpp_close(a);
		a->connecting = 0;
		a->next_attempt = now + xmpp_backoff_next(&a->backoff, "", 0, randombytes_random());
	}
	if (a->fd >= 0 && !a->connecting) {
		if (!daemon_stop)
			xmpp_timers(a, now);
		xmpp_flush(a, now);
		if (a->s->state == XS_CLOSED && !daemon_stop)
			xmpp_down(a, now);
	}
	link_flush(a->link);
	if (a->fd < 0)
		return;
	want = a->connecting ? EPOLLOUT : EPOLLIN | (a->s->out.len ? EPOLLOUT : 0);
	if (want != a->xwatched && loop_mod(a->lp, a->xh, want) == 0)
		a->xwatched = want;
}

/* A turn at least every 100 ms (the deadlines of step()). */
static void tick(void *arg)
{
	(void)arg;
}

static void flush_counters(void *arg)
{
	(void)arg;
	counters_flush();
}

/* Runs until a stop signal, then closes the stream and waits for the server's close (at most
 * SHUTDOWN_WAIT_MS). */
static void run(struct app *a)
{
	uint64_t stop_at;

	if (loop_on_turn(a->lp, step, a) < 0 || loop_timer(a->lp, 0, 100, tick, a) == NULL ||
	    loop_timer(a->lp, 1000, 1000, flush_counters, a) == NULL)
		fatal("event loop: out of memory");
	loop_run(a->lp);
	if (a->fd >= 0 && !a->connecting && a->s->state != XS_CLOSED) {
		log_info("stopping: closing the stream");
		xs_shutdown(a->s);
		stop_at = mono_ms() + SHUTDOWN_WAIT_MS;
		while (a->fd >= 0 && a->s->state != XS_CLOSED && mono_ms() < stop_at)
			loop_once(a->lp, 100);
		xmpp_flush(a, mono_ms());
	}
	xmpp_close(a);
}

/* ingress-xmpp's policy: connect out, to the XMPP server's port only (and DNS over TCP), no
 * listener; read its component secret. */
static void enter_sandbox(const struct config *c)
{
	struct sandbox_policy p;

	daemon_policy(&p, c);
	p.inet_client = 1;
	sandbox_allow_connect(&p, sandbox_port_of(c->xmpp.server));
	sandbox_allow_connect(&p, 53);
	sandbox_allow_read(&p, c->xmpp.secret_file);
	sandbox_enter(&p);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct daemon_opts opts;
	struct app a;
	struct xs_conf xc;
	struct loop_fd *link_h;
	char path[256];
	char *secret;

	daemon_start("ingress-xmpp", argc, argv, &cfg, &opts);
	memset(&a, 0, sizeof a);
	/* Signals are read from the loop's signalfd; set up before libnats starts its threads. */
	if ((a.lp = loop_new()) == NULL || loop_daemon_signals(a.lp) < 0)
		fatal("event loop: cannot set up");
	if (link_bus_config(&cfg) < 0) /* cluster mode: the routers are reached over NATS */
		fatal("cluster: cannot start");
	if (sodium_init() < 0)
		fatal("libsodium initialisation failed");
	/* libcrypto loads what SHA-1 needs on first use: do it now, before the sandbox. */
	if (xmpp_sha1_hex("", "", 0, path) < 0)
		fatal("libcrypto: SHA-1 unavailable");
	a.cfg = &cfg;
	a.fd = -1;
	/* domain and secret_file were checked by daemon_start (config_check). */
	secret = read_secret(cfg.xmpp.secret_file);
	split_hostport(&a, cfg.xmpp.server);
	memset(&xc, 0, sizeof xc);
	xc.domain = cfg.xmpp.domain;
	xc.secret = secret;
	xc.max_stanza = (size_t)cfg.xmpp.max_stanza;
	xc.router_timeout_ms = (uint32_t)cfg.xmpp.router_timeout_ms;
	xc.adhoc = cfg.xmpp.adhoc;
	for (size_t i = 0; i < cfg.xmpp.adhoc_services.n; i++) {
		const char *svc = cfg.xmpp.adhoc_services.v[i];
		if (strcmp(svc, "fcm") == 0)
			xc.fcm = 1;
		else if (strcmp(svc, "apns") == 0)
			/* APNs registrations need the bundle id and credentials of the apns-sender. */
			xc.apns = cfg.apns.xmpp_topic[0] && (cfg.apns.key_file[0] || cfg.apns.cert_file[0]);
		else
			fatal("%s: ingress_xmpp.adhoc_services: unknown service %s", cfg.path, svc);
	}
	xc.adhoc_domains = (const char *const *)cfg.xmpp.adhoc_domains.v;
	xc.n_adhoc_domains = cfg.xmpp.adhoc_domains.n;
	xc.applications = (const char *const *)cfg.xmpp.applications.v;
	xc.n_applications = cfg.xmpp.applications.n;
	xc.application = cfg.xmpp.application;
	counters_init(config_socket(&cfg, "statsd.sock", path, sizeof path) ? path : "");
	if (config_socket(&cfg, "router.sock", path, sizeof path) == NULL)
		fatal("state_dir too long for a socket path");
	if ((link_h = loop_watch(a.lp, on_link, &a)) == NULL ||
	    (a.link = link_new(path, XS_MAX_PENDING, xc.router_timeout_ms, ROLE_INGRESS, 1, loop_epfd(a.lp), link_h)) == NULL)
		fatal("cannot set up the link to the router");
	if ((a.s = xs_new(&xc, submit, &a)) == NULL)
		fatal("out of memory");
	daemon_privdrop(&cfg);
	enter_sandbox(&cfg);
	if (link_bus_start() < 0) /* libnats' threads start inside the sandbox */
		fatal("cluster: cannot start");
	log_info("component %s for xmpp server %s:%s%s", xc.domain, a.host, a.port,
		 xc.adhoc ? (xc.apns ? " (ad-hoc: fcm, apns)" : xc.fcm ? " (ad-hoc: fcm)" : " (ad-hoc: none)") : "");
	if (xc.adhoc && (xc.fcm || xc.apns) && xc.n_adhoc_domains == 0)
		log_warn("ingress_xmpp.adhoc is on with an empty adhoc_domains: any user of any federated XMPP "
			 "server can register push tokens, pushed with this server's provider credentials; "
			 "list the user domains served in ingress_xmpp.adhoc_domains (docs/xmpp.md)");
	if (xc.adhoc && xc.apns == 0) {
		for (size_t i = 0; i < cfg.xmpp.adhoc_services.n; i++)
			if (strcmp(cfg.xmpp.adhoc_services.v[i], "apns") == 0)
				log_warn("ad-hoc apns disabled: apns_sender.xmpp_topic and credentials are not configured");
	}
	run(&a);
	log_info("stopping");
	counters_flush();
	xs_free(a.s);	     /* its requests' answers, if any come, are dropped */
	link_free(a.link);   /* ... by completing them now */
	loop_free(a.lp);
	link_bus_shutdown();
	sodium_memzero(secret, strlen(secret));
	free(secret);
	config_free(&cfg);
	return 0;
}
