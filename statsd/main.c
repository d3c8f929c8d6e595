/*
 * statsd: receives metric datagrams from every daemon on "statsd.sock" (counters, HTTP answers,
 * latency buckets, gauges: counters.h), sums them and adds them to the current statistics
 * window and to the all-time totals in its own LMDB once a second (a restart loses at most
 * that second). Answers period queries on "statsd-query.sock", and serves Prometheus metrics
 * (/metrics) and the status page (/) on a loopback-only HTTP listener (statsd.listen).
 * Trusts no datagram: each is parsed as a frame, unknown ids are ignored.
 * Everything runs on the event loop (loop.c): the sockets, the HTTP listener, a 1 s commit timer.
 * Holds no device data (no tokens, no ids).
 */
#include "clock.h"
#include "cluster.h"
#include "counters.h"
#include "daemon.h"
#include "frame.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "page.h"
#include "peer.h"
#include "periods.h"
#include "sandbox.h"
#include "sock.h"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 64

/* A connection on the query socket. */
struct client {
	struct peer p;		/* p.fd < 0: the slot is free */
	struct loop_fd *h;
	uint32_t watched;	/* the events its fd is registered for */
	struct statsd *sd;
};

struct statsd {
	struct periods per;
	struct metrics m;
	uint64_t started_s;
	long period_s;
	char *const *health;	/* statsd.health_senders */
	size_t nhealth;
	struct statsd_cluster *cluster; /* cluster mode (cluster.h), else NULL */
	struct loop *lp;
	struct statsd_http *http;
	struct loop_fd *bus_h;	/* the cluster queue's watcher */
	int dfd, qfd;
	uint64_t window;	/* the window the last commit was in */
	struct client clients[MAX_CLIENTS];
};

static uint8_t rxbuf[FRAME_MAX]; /* one datagram or request at a time */

/* One datagram with its sender's pid (SO_PASSCRED); -1 when none is waiting. */
static ssize_t recv_dgram(int fd, uint8_t *buf, uint32_t *pid)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(struct ucred))];
	} cm;
	struct iovec iov = {buf, FRAME_MAX};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b};
	ssize_t r = recvmsg(fd, &mh, MSG_DONTWAIT);

	*pid = 0;
	if (r < 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred uc;
			memcpy(&uc, CMSG_DATA(c), sizeof uc);
			*pid = (uint32_t)uc.pid;
		}
	return r;
}

/* GET /metrics: the Prometheus text format. */
static char *page_metrics(void *ctx, unsigned *code, const char **type, size_t *len)
{
	struct statsd *sd = ctx;
	char *cl, *text, *all;
	size_t cl_len;

	(void)code;
	metrics_expire(&sd->m, mono_ms());
	*type = "text/plain; version=0.0.4; charset=utf-8";
	text = metrics_prometheus(&sd->m, sd->started_s, (uint64_t)sd->period_s, len);
	/* cluster mode: the streams' and consumers' state (cluster.h) */
	cl = statsd_cluster_metrics(sd->cluster);
	cl_len = cl ? strlen(cl) : 0;
	if (text != NULL && cl_len > 0 && (all = realloc(text, *len + cl_len + 1)) != NULL) {
		memcpy(all + *len, cl, cl_len + 1);
		*len += cl_len;
		text = all;
	}
	free(cl);
	return text;
}

/* GET /: the status page. */
static char *page_status(void *ctx, unsigned *code, const char **type, size_t *len)
{
	struct statsd *sd = ctx;
	struct page_input in = {.m = &sd->m, .now_s = statsd_now_s(), .started_s = sd->started_s,
				.period_s = (uint64_t)sd->period_s, .test_clock = statsd_test_clock()};
	struct period_row *rows = NULL;
	char *html;
	(void)code;
	metrics_expire(&sd->m, mono_ms());
	if (periods_query(&sd->per, 0, 0, in.now_s, &rows, &in.nrows) < 0)
		return NULL;
	in.rows = rows;
	*type = "text/html; charset=utf-8";
	html = page_render(&in, len);
	free(rows);
	return html;
}

/* GET /healthz: the pipeline's health as JSON, 200 or 503 (docs/observability.md). */
static char *page_health(void *ctx, unsigned *code, const char **type, size_t *len)
{
	struct statsd *sd = ctx;
	metrics_expire(&sd->m, mono_ms());
	*type = "application/json";
	return metrics_health(&sd->m, sd->health, sd->nhealth, code, len);
}

/* statsd's HTTP routes (GET and HEAD; any other path is 404). */
static const struct statsd_route routes[] = {
	{"/metrics", page_metrics},
	{"/healthz", page_health},
	{"/", page_status},
	{NULL, NULL},
};

/* pushctl import-legacy: rows kept with their own bounds, answered OK when all were stored. */
static int import_rows(struct periods *p, struct peer *c, const struct frame *f)
{
	uint8_t out[64];
	struct frame_writer w;
	struct period_row *rows;
	size_t n;
	uint32_t status = STATUS_OK;
	long len;

	if (stats_rows_read(f, &rows, &n) < 0)
		status = STATUS_ERROR;
	for (size_t i = 0; status == STATUS_OK && i < n; i++)
		if (rows[i].end < rows[i].start || periods_put(p, &rows[i]) < 0)
			status = STATUS_ERROR;
	free(rows);
	frame_begin(&w, out, FRAME_REPLY, f->id);
	frame_put_u32(&w, TAG_STATUS, status);
	return (len = frame_end(&w)) > 0 ? peer_send(c, out, (size_t)len) : 0;
}

/* -1 when the reply cannot even be queued (the client does not read): drop it. */
static int answer_query(struct periods *p, struct peer *c, const uint8_t *buf, size_t n)
{
	static uint8_t out[FRAME_MAX];
	struct frame f;
	struct frame_writer w;
	struct period_row *rows;
	size_t nrows;
	long len;

	if (frame_parse(buf, n, &f, NULL) < 0)
		return 0;
	if (f.type == FRAME_STATS_IMPORT)
		return import_rows(p, c, &f);
	if (f.type != FRAME_STATS_QUERY)
		return 0;
	frame_begin(&w, out, FRAME_STATS_ROWS, f.id);
	if (periods_query(p, frame_u64(&f, TAG_START, 0), frame_u64(&f, TAG_END, 0), statsd_now_s(), &rows, &nrows) == 0) {
		/* Newest rows win when they do not all fit one frame. */
		size_t first = nrows, room = FRAME_MAX - FRAME_HEADER;
		while (first > 0 && stats_row_size(&rows[first - 1]) <= room)
			room -= stats_row_size(&rows[--first]);
		for (size_t i = first; i < nrows; i++)
			stats_row_put(&w, &rows[i]);
		free(rows);
	}
	return (len = frame_end(&w)) > 0 ? peer_send(c, out, (size_t)len) : 0;
}

/* Commits the pending sums once a second, and opens a row for every window statsd runs in. */
static void commit(struct statsd *sd, uint64_t *window)
{
	uint64_t now = statsd_now_s(), w = now - now % (uint64_t)sd->period_s;
	if (!metrics_dirty(&sd->m) && w == *window)
		return;
	if (metrics_commit(&sd->m, &sd->per, now) == 0)
		*window = w;
	else
		log_error("statistics commit failed; keeping the counts in memory");
}

/* statsd's policy: its listeners are bound before; it reads and writes its own LMDB directory,
 * and reads the test clock's directory (tests only), which must be inside state_dir: statsd
 * stops otherwise, sandbox or not. */
static void enter_sandbox(const struct config *c)
{
	static char clock_dir[PATH_MAX];
	struct sandbox_policy p;
	int clock = statsd_clock_dir(c->state_dir, clock_dir);

	if (clock < 0)
		fatal("PUSHPIPE_TEST_CLOCK_FILE (tests only) must name a file inside state_dir (%s): %s", c->state_dir,
		      getenv("PUSHPIPE_TEST_CLOCK_FILE"));
	daemon_policy(&p, c);
	p.may_listen = 1;
	sandbox_allow_write(&p, c->statsd.db_path);
	if (clock == 1)
		sandbox_allow_read(&p, clock_dir);
	sandbox_enter(&p);
}

static void client_close(struct client *c)
{
	loop_del(c->sd->lp, c->h);
	peer_close(&c->p);
	c->p.fd = -1;
}

/* A query client: replies queued, requests answered, closed on EOF or error. */
static void on_client(void *arg, uint32_t events)
{
	struct client *c = arg;
	ssize_t r = 0;
	uint32_t want;

	if ((events & EPOLLOUT) && peer_flush(&c->p) < 0) {
		client_close(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		r = sock_recv(c->p.fd, rxbuf);
		if ((r < 0 && errno != EAGAIN) || r == 0) {
			client_close(c);
			return;
		}
	}
	if (r > 0 && answer_query(&c->sd->per, &c->p, rxbuf, (size_t)r) < 0) {
		log_warn("query client dropped: it does not read its replies");
		client_close(c);
		return;
	}
	/* Replies the socket did not take go out when it is writable again, not when the next
	 * reply comes. */
	want = peer_has_queued(&c->p) ? EPOLLIN | EPOLLOUT : EPOLLIN;
	if (want != c->watched && loop_mod(c->sd->lp, c->h, want) == 0)
		c->watched = want;
}

static void on_query_listen(void *arg, uint32_t events)
{
	struct statsd *sd = arg;
	int fd;

	(void)events;
	while ((fd = sock_accept(sd->qfd)) >= 0) {
		struct client *c = NULL;
		for (int i = 0; i < MAX_CLIENTS && c == NULL; i++)
			if (sd->clients[i].p.fd < 0)
				c = &sd->clients[i];
		if (c == NULL) {
			close(fd);
			continue;
		}
		peer_init(&c->p, fd);
		c->watched = EPOLLIN;
		if ((c->h = loop_add(sd->lp, fd, EPOLLIN, on_client, c)) == NULL) {
			peer_close(&c->p);
			c->p.fd = -1;
		}
	}
}

/* Takes what the datagrams hold, at most 4096 per turn (queries and HTTP get their turn). */
static void on_dgram(void *arg, uint32_t events)
{
	struct statsd *sd = arg;

	(void)events;
	for (int k = 0; k < 4096; k++) {
		uint32_t pid;
		ssize_t r = recv_dgram(sd->dfd, rxbuf, &pid);
		if (r <= 0)
			break;
		metrics_take(&sd->m, rxbuf, (size_t)r, pid, mono_ms());
		statsd_cluster_note(sd->cluster, rxbuf, (size_t)r);
	}
}

static void on_bus(void *arg, uint32_t events)
{
	struct statsd *sd = arg;

	(void)events;
	statsd_cluster_read(sd->cluster, &sd->m);
}

/* libmicrohttpd serves whatever is ready, on every turn (its fd only wakes the loop). */
static void on_http(void *arg, uint32_t events)
{
	(void)arg;
	(void)events;
}

static void http_turn(void *arg)
{
	struct statsd *sd = arg;
	statsd_http_run(sd->http);
}

/* A turn at least every 200 ms: libmicrohttpd's own timeouts. */
static void http_tick(void *arg)
{
	(void)arg;
}

/* Once a second: the commit, expired gauges, the cluster's sums. */
static void flush_tick(void *arg)
{
	struct statsd *sd = arg;

	commit(sd, &sd->window);
	metrics_expire(&sd->m, mono_ms());
	statsd_cluster_tick(sd->cluster, loop_epfd(sd->lp), sd->bus_h);
}

int main(int argc, char **argv)
{
	static struct statsd sd;
	struct config cfg;
	struct daemon_opts opts;
	char path[256], err[512];
	int cl_failed;

	daemon_start("statsd", argc, argv, &cfg, &opts);
	/* Signals are read from the loop's signalfd; set up before libnats starts its threads. */
	if ((sd.lp = loop_new()) == NULL || loop_daemon_signals(sd.lp) < 0)
		fatal("event loop: cannot set up");
	sd.period_s = cfg.statsd.period_s;
	sd.health = cfg.statsd.health_senders.v;
	sd.nhealth = cfg.statsd.health_senders.n;
	if (metrics_init(&sd.m) < 0)
		fatal("out of memory");
	if (periods_open(&sd.per, cfg.statsd.db_path, (uint64_t)cfg.statsd.period_s, 0, err, sizeof err) < 0)
		fatal("statistics store: %s", err);
	daemon_give_dir(&cfg, cfg.statsd.db_path);
	if (metrics_load(&sd.m, &sd.per) < 0)
		fatal("statistics store: cannot read the totals");
	if ((sd.http = statsd_http_start(cfg.statsd.listen, routes, &sd, err, sizeof err)) == NULL)
		fatal("statsd.listen: %s", err);
	if (config_socket(&cfg, "statsd.sock", path, sizeof path) == NULL || (sd.dfd = sock_listen(path, SOCK_DGRAM)) < 0)
		fatal_errno("counter socket");
	/* The sender's pid (the socket passes credentials) tells apart the gauges of several
	 * instances of one daemon. */
	if (config_socket(&cfg, "statsd-query.sock", path, sizeof path) == NULL ||
	    (sd.qfd = sock_listen(path, SOCK_SEQPACKET)) < 0)
		fatal_errno("query socket");
	if ((sd.cluster = statsd_cluster_prepare(&cfg, opts.instance, &cl_failed)) == NULL && cl_failed)
		fatal("cluster: cannot start");
	daemon_privdrop(&cfg);
	sd.started_s = statsd_now_s();
	enter_sandbox(&cfg);
	for (int i = 0; i < MAX_CLIENTS; i++) {
		sd.clients[i].p.fd = -1;
		sd.clients[i].sd = &sd;
	}
	if (loop_add(sd.lp, sd.dfd, EPOLLIN, on_dgram, &sd) == NULL ||
	    loop_add(sd.lp, sd.qfd, EPOLLIN, on_query_listen, &sd) == NULL ||
	    loop_add(sd.lp, statsd_http_fd(sd.http), EPOLLIN, on_http, &sd) == NULL ||
	    (sd.bus_h = loop_watch(sd.lp, on_bus, &sd)) == NULL || loop_on_turn(sd.lp, http_turn, &sd) < 0 ||
	    loop_timer(sd.lp, 200, 200, http_tick, &sd) == NULL || loop_timer(sd.lp, 0, 1000, flush_tick, &sd) == NULL)
		fatal_errno("event loop");
	if (statsd_test_clock())
		log_warn("PUSHPIPE_TEST_CLOCK_FILE is set: windows follow the test clock, not the real one");
	log_info("started: windows of %ld s, http on %s", cfg.statsd.period_s, cfg.statsd.listen);

	loop_run(sd.lp);
	/* Datagrams already in the socket when the stop came are counted too. */
	for (int k = 0; k < 65536; k++) {
		uint32_t pid;
		ssize_t r = recv_dgram(sd.dfd, rxbuf, &pid);
		if (r <= 0)
			break;
		metrics_take(&sd.m, rxbuf, (size_t)r, pid, mono_ms());
	}
	if (metrics_dirty(&sd.m) && metrics_commit(&sd.m, &sd.per, statsd_now_s()) < 0)
		log_error("final statistics commit failed");
	log_info("stopping");
	statsd_http_stop(sd.http);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (sd.clients[i].p.fd >= 0)
			peer_close(&sd.clients[i].p);
	statsd_cluster_free(sd.cluster);
	loop_free(sd.lp);
	periods_close(&sd.per);
	metrics_free(&sd.m);
	config_free(&cfg);
	return 0;
}
