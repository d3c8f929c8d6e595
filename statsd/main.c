/*
 * statsd: receives counter increments from every daemon as datagrams on "statsd.sock",
 * sums them and adds them to the current statistics window in its own LMDB once a second
 * (a restart loses at most that second). Answers period queries on "statsd-query.sock".
 * Trusts no datagram: each is parsed as a frame, unknown counters are ignored.
 * Holds no device data (no tokens, no ids).
 */
#include "counters.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "peer.h"
#include "periods.h"
#include "sandbox.h"
#include "sock.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 64

static uint64_t pending[CTR_MAX];
static int have_pending;

static void take_counters(const uint8_t *buf, size_t n)
{
	struct frame f;
	struct frame_field fl;
	size_t pos = 0;
	uint32_t id = 0;

	if (frame_parse(buf, n, &f, NULL) < 0 || f.type != FRAME_COUNTER)
		return;
	/* Fields come in (counter, delta) pairs. */
	while (frame_next(&f, &pos, &fl) == 0) {
		if (fl.tag == TAG_COUNTER) {
			id = frame_field_u32(&fl);
		} else if (fl.tag == TAG_DELTA && id > 0 && id < CTR_MAX) {
			pending[id] += frame_field_u64(&fl);
			have_pending = 1;
			id = 0;
		}
	}
}

static void answer_query(struct periods *p, struct peer *c, const uint8_t *buf, size_t n)
{
	static uint8_t out[FRAME_MAX];
	struct frame f;
	struct frame_writer w;
	struct period_row *rows;
	size_t nrows;
	long len;

	if (frame_parse(buf, n, &f, NULL) < 0 || f.type != FRAME_STATS_QUERY)
		return;
	frame_begin(&w, out, FRAME_STATS_ROWS, f.id);
	if (periods_query(p, frame_u64(&f, TAG_START, 0), frame_u64(&f, TAG_END, 0), now_ms() / 1000, &rows, &nrows) == 0) {
		/* Newest rows win when they do not all fit one frame. */
		size_t first = nrows > 800 ? nrows - 800 : 0;
		for (size_t i = first; i < nrows; i++)
			frame_put_bytes(&w, TAG_ROW, &rows[i], sizeof rows[i]);
		free(rows);
	}
	if ((len = frame_end(&w)) > 0)
		peer_send(c, out, (size_t)len);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct daemon_opts opts;
	struct periods per;
	struct peer clients[MAX_CLIENTS];
	char path[256], err[512];
	static uint8_t buf[FRAME_MAX];
	struct epoll_event evs[32];
	int dfd, qfd, epfd;
	uint64_t next_flush = 0, window = 0;

	daemon_start("statsd", argc, argv, &cfg, &opts);
	if (periods_open(&per, cfg.statsd.db_path, (uint64_t)cfg.statsd.period_s, 0, err, sizeof err) < 0)
		fatal("statistics store: %s", err);
	if (config_socket(&cfg, "statsd.sock", path, sizeof path) == NULL || (dfd = sock_listen(path, SOCK_DGRAM)) < 0)
		fatal("counter socket: %s", strerror(errno));
	if (config_socket(&cfg, "statsd-query.sock", path, sizeof path) == NULL ||
	    (qfd = sock_listen(path, SOCK_SEQPACKET)) < 0)
		fatal("query socket: %s", strerror(errno));
	daemon_privdrop(&cfg);
	sandbox_enter(&cfg, SANDBOX_STATSD);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1000};
	epoll_ctl(epfd, EPOLL_CTL_ADD, dfd, &ev);
	ev.data.u32 = 1001;
	epoll_ctl(epfd, EPOLL_CTL_ADD, qfd, &ev);
	for (int i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	log_info("started: windows of %ld s", cfg.statsd.period_s);

	while (!daemon_stop) {
		int n = epoll_wait(epfd, evs, 32, 200);
		uint64_t now;
		for (int i = 0; i < n; i++) {
			uint32_t tag = evs[i].data.u32;
			if (tag == 1000) {
				for (int k = 0; k < 4096; k++) {
					ssize_t r = recv(dfd, buf, FRAME_MAX, MSG_DONTWAIT);
					if (r <= 0)
						break;
					take_counters(buf, (size_t)r);
				}
			} else if (tag == 1001) {
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
					epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
				}
			} else if (tag < MAX_CLIENTS && clients[tag].fd >= 0) {
				ssize_t r = sock_recv(clients[tag].fd, buf);
				if (r <= 0 && !(r < 0 && errno == EAGAIN)) {
					peer_close(&clients[tag]);
					continue;
				}
				if (r > 0)
					answer_query(&per, &clients[tag], buf, (size_t)r);
			}
		}
		now = mono_ms();
		if (now >= next_flush) {
			uint64_t wall = now_ms() / 1000, w = wall - wall % (uint64_t)cfg.statsd.period_s;
			/* A row exists for every window the server ran in, even an idle one. */
			if (have_pending || w != window) {
				if (periods_add(&per, wall, pending) == 0) {
					memset(pending, 0, sizeof pending);
					have_pending = 0;
					window = w;
				} else {
					log_error("statistics commit failed; keeping the counts in memory");
				}
			}
			next_flush = now + 1000;
		}
	}
	if (have_pending)
		periods_add(&per, now_ms() / 1000, pending);
	log_info("stopping");
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			peer_close(&clients[i]);
	periods_close(&per);
	config_free(&cfg);
	return 0;
}
