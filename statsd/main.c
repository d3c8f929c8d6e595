/*
 * statsd: receives metric datagrams from every daemon on "statsd.sock" (counters, HTTP answers,
 * latency buckets, gauges: counters.h), sums them and adds them to the current statistics
 * window and to the all-time totals in its own LMDB once a second (a restart loses at most
 * that second). Answers period queries on "statsd-query.sock", and serves Prometheus metrics
 * (/metrics) and the status page (/) on a loopback-only HTTP listener (statsd.listen).
 * Trusts no datagram: each is parsed as a frame, unknown ids are ignored.
 * Holds no device data (no tokens, no ids).
 */
#include "clock.h"
#include "cluster.h"
#include "counters.h"
#include "daemon.h"
#include "frame.h"
#include "http.h"
#include "log.h"
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
#define TAG_DGRAM 1000
#define TAG_QUERY 1001
#define TAG_HTTP 1002
#define TAG_BUS 1003

struct statsd {
	struct periods per;
	struct metrics m;
	uint64_t started_s;
	long period_s;
	char *const *health;	/* statsd.health_senders */
	size_t nhealth;
	struct statsd_cluster *cluster; /* cluster mode (cluster.h), else NULL */
};

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

int main(int argc, char **argv)
{
	static struct statsd sd;
	struct config cfg;
	struct daemon_opts opts;
	struct peer clients[MAX_CLIENTS];
	uint32_t watched[MAX_CLIENTS]; /* the events each client's fd is registered for */
	struct statsd_http *http;
	char path[256], err[512];
	static uint8_t buf[FRAME_MAX];
	struct epoll_event evs[32];
	int dfd, qfd, epfd, cl_failed;
	uint64_t next_flush = 0, window = 0;

	daemon_start("statsd", argc, argv, &cfg, &opts);
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
	if ((http = statsd_http_start(cfg.statsd.listen, routes, &sd, err, sizeof err)) == NULL)
		fatal("statsd.listen: %s", err);
	if (config_socket(&cfg, "statsd.sock", path, sizeof path) == NULL || (dfd = sock_listen(path, SOCK_DGRAM)) < 0)
		fatal_errno("counter socket");
	/* The sender's pid (the socket passes credentials) tells apart the gauges of several
	 * instances of one daemon. */
	if (config_socket(&cfg, "statsd-query.sock", path, sizeof path) == NULL ||
	    (qfd = sock_listen(path, SOCK_SEQPACKET)) < 0)
		fatal_errno("query socket");
	if ((sd.cluster = statsd_cluster_prepare(&cfg, opts.instance, &cl_failed)) == NULL && cl_failed)
		fatal("cluster: cannot start");
	daemon_privdrop(&cfg);
	sd.started_s = statsd_now_s();
	enter_sandbox(&cfg);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = TAG_DGRAM};
	epoll_ctl(epfd, EPOLL_CTL_ADD, dfd, &ev);
	ev.data.u32 = TAG_QUERY;
	epoll_ctl(epfd, EPOLL_CTL_ADD, qfd, &ev);
	ev.data.u32 = TAG_HTTP;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, statsd_http_fd(http), &ev) < 0)
		fatal_errno("epoll");
	for (int i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	if (statsd_test_clock())
		log_warn("PUSHPIPE_TEST_CLOCK_FILE is set: windows follow the test clock, not the real one");
	log_info("started: windows of %ld s, http on %s", cfg.statsd.period_s, cfg.statsd.listen);

	while (!daemon_stop) {
		int n = epoll_wait(epfd, evs, 32, 200);
		for (int i = 0; i < n; i++) {
			uint32_t tag = evs[i].data.u32;
			if (tag == TAG_DGRAM) {
				for (int k = 0; k < 4096; k++) {
					uint32_t pid;
					ssize_t r = recv_dgram(dfd, buf, &pid);
					if (r <= 0)
						break;
					metrics_take(&sd.m, buf, (size_t)r, pid, mono_ms());
					statsd_cluster_note(sd.cluster, buf, (size_t)r);
				}
			} else if (tag == TAG_BUS) {
				statsd_cluster_read(sd.cluster, &sd.m);
			} else if (tag == TAG_QUERY) {
				int fd;
				while ((fd = sock_accept(qfd)) >= 0) {
					int slot;
					for (slot = 0; slot < MAX_CLIENTS && clients[slot].fd >= 0; slot++)
						;
					if (slot == MAX_CLIENTS) {
						close(fd);
						continue;
					}
					peer_init(&clients[slot], fd);
					ev.data.u32 = (uint32_t)slot;
					watched[slot] = EPOLLIN;
					epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
				}
			} else if (tag < MAX_CLIENTS && clients[tag].fd >= 0) {
				struct peer *c = &clients[tag];
				ssize_t r = 0;
				if ((evs[i].events & EPOLLOUT) && peer_flush(c) < 0) {
					peer_close(c);
					continue;
				}
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					r = sock_recv(c->fd, buf);
				if (r < 0 && errno != EAGAIN) {
					peer_close(c);
					continue;
				}
				if (r == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
					peer_close(c);
					continue;
				}
				if (r > 0 && answer_query(&sd.per, c, buf, (size_t)r) < 0) {
					log_warn("query client dropped: it does not read its replies");
					peer_close(c);
					continue;
				}
				/* Replies the socket did not take go out when it is writable again,
				 * not when the next reply comes. */
				ev.events = peer_has_queued(c) ? EPOLLIN | EPOLLOUT : EPOLLIN;
				ev.data.u32 = tag;
				if (ev.events != watched[tag] && epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
					watched[tag] = ev.events;
				ev.events = EPOLLIN;
			}
		}
		statsd_http_run(http);
		if (mono_ms() >= next_flush) {
			commit(&sd, &window);
			metrics_expire(&sd.m, mono_ms());
			statsd_cluster_tick(sd.cluster, epfd, TAG_BUS);
			next_flush = mono_ms() + 1000;
		}
		daemon_reload_check();
	}
	/* Datagrams already in the socket when the stop came are counted too. */
	for (int k = 0; k < 65536; k++) {
		uint32_t pid;
		ssize_t r = recv_dgram(dfd, buf, &pid);
		if (r <= 0)
			break;
		metrics_take(&sd.m, buf, (size_t)r, pid, mono_ms());
	}
	if (metrics_dirty(&sd.m) && metrics_commit(&sd.m, &sd.per, statsd_now_s()) < 0)
		log_error("final statistics commit failed");
	log_info("stopping");
	statsd_http_stop(http);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			peer_close(&clients[i]);
	statsd_cluster_free(sd.cluster);
	periods_close(&sd.per);
	metrics_free(&sd.m);
	config_free(&cfg);
	return 0;
}
