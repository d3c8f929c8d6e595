/*
 * router_link: request/reply frames between an ingress and the router (see router_link.h).
 * Trusts the router's frames only after frame_parse(); a reply with an unknown id is
 * ignored (it belongs to a request that already timed out).
 */
#include "router_link.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include "sock.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct link_slot {
	uint64_t id; /* 0 = free */
	uint64_t deadline;
	link_done_fn done;
	void *ctx;
};

struct router_link {
	char path[108];
	uint32_t role, timeout_ms;
	pthread_mutex_t mu;
	int fd;
	struct link_slot *slots;
	size_t nslots, used;
	uint64_t seq;
	uint8_t *rbuf; /* FRAME_MAX: one per link, each link has its own thread */
};

struct router_link *link_new(const char *sock_path, size_t max_pending, uint32_t timeout_ms, uint32_t role)
{
	struct router_link *l = calloc(1, sizeof *l);
	if (l == NULL || (l->slots = calloc(max_pending, sizeof *l->slots)) == NULL ||
	    (l->rbuf = malloc(FRAME_MAX)) == NULL) {
		if (l)
			free(l->slots);
		free(l);
		return NULL;
	}
	strncpy(l->path, sock_path, sizeof l->path - 1);
	l->nslots = max_pending;
	l->timeout_ms = timeout_ms;
	l->role = role;
	l->fd = -1;
	pthread_mutex_init(&l->mu, NULL);
	return l;
}

static void wr64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int link_submit(struct router_link *l, uint8_t *frame, size_t len, link_done_fn done, void *ctx)
{
	struct link_slot *s = NULL;
	uint64_t id;
	int rc = -1;

	pthread_mutex_lock(&l->mu);
	if (l->fd >= 0 && l->used < l->nslots) {
		/* The id names the slot (low 32 bits) and a sequence, so stale replies never match. */
		size_t i = (size_t)(l->seq % l->nslots);
		for (size_t k = 0; k < l->nslots; k++, i = (i + 1) % l->nslots)
			if (l->slots[i].id == 0) {
				s = &l->slots[i];
				break;
			}
		id = (++l->seq << 32) | (uint64_t)(s - l->slots);
		wr64(frame + 8, id);
		if (sock_send(l->fd, frame, len) == 0) {
			s->id = id;
			s->deadline = mono_ms() + l->timeout_ms;
			s->done = done;
			s->ctx = ctx;
			l->used++;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

/* Completes and frees every slot that matches (all of them when fail_all). The table is
 * scanned under one lock; the callbacks run outside it. */
static void expire(struct router_link *l, int fail_all)
{
	uint64_t now = mono_ms();
	struct link_slot due[64];
	size_t n;

	do {
		n = 0;
		pthread_mutex_lock(&l->mu);
		for (size_t i = 0; i < l->nslots && n < 64; i++)
			if (l->slots[i].id != 0 && (fail_all || l->slots[i].deadline <= now)) {
				due[n++] = l->slots[i];
				l->slots[i].id = 0;
				l->used--;
			}
		pthread_mutex_unlock(&l->mu);
		for (size_t i = 0; i < n; i++)
			due[i].done(due[i].ctx, STATUS_BUSY, NULL);
	} while (n == 64);
}

static void handle_frame(struct router_link *l, const uint8_t *buf, size_t n)
{
	struct frame f;
	const char *why;
	size_t i;
	link_done_fn done = NULL;
	void *ctx = NULL;

	if (frame_parse(buf, n, &f, &why) < 0) {
		log_warn("bad frame from %s: %s", l->path, why);
		return;
	}
	i = (size_t)(f.id & 0xffffffffu);
	pthread_mutex_lock(&l->mu);
	if (i < l->nslots && l->slots[i].id == f.id && f.id != 0) {
		done = l->slots[i].done;
		ctx = l->slots[i].ctx;
		l->slots[i].id = 0;
		l->used--;
	}
	pthread_mutex_unlock(&l->mu);
	if (done)
		done(ctx, f.type == FRAME_REPLY ? frame_u32(&f, TAG_STATUS, STATUS_ERROR) : STATUS_OK, &f);
}

void link_run(struct router_link *l, volatile sig_atomic_t *stop)
{
	uint8_t *buf = l->rbuf;
	uint64_t next_try = 0, next_tick = 0;
	int warned = 0;

	while (!*stop) {
		struct pollfd pfd;
		int fd;

		pthread_mutex_lock(&l->mu);
		fd = l->fd;
		pthread_mutex_unlock(&l->mu);
		if (fd < 0) {
			uint64_t now = mono_ms();
			if (now >= next_try) {
				fd = sock_connect(l->path, SOCK_SEQPACKET);
				if (fd >= 0 && sock_hello(fd, l->role, 0, NULL) == 0) {
					log_info("connected to %s", l->path);
					warned = 0;
					pthread_mutex_lock(&l->mu);
					l->fd = fd;
					pthread_mutex_unlock(&l->mu);
				} else {
					if (fd >= 0)
						close(fd);
					fd = -1;
					if (!warned++)
						log_warn("%s not reachable; retrying", l->path);
					next_try = now + 200;
				}
			}
			if (fd < 0) {
				usleep(50 * 1000);
				continue;
			}
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 50) > 0) {
			for (int k = 0; k < 1024; k++) {
				ssize_t n = sock_recv(fd, buf);
				if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
					break;
				if (n <= 0) {
					log_warn("lost the connection to %s", l->path);
					pthread_mutex_lock(&l->mu);
					close(l->fd);
					l->fd = -1;
					pthread_mutex_unlock(&l->mu);
					expire(l, 1);
					break;
				}
				handle_frame(l, buf, (size_t)n);
			}
		}
		/* Deadlines and counters need no finer grain than a tenth of a second. */
		if (mono_ms() >= next_tick) {
			expire(l, 0);
			counters_flush();
			next_tick = mono_ms() + 100;
		}
	}
	expire(l, 1);
}

void link_free(struct router_link *l)
{
	if (l == NULL)
		return;
	if (l->fd >= 0)
		close(l->fd);
	pthread_mutex_destroy(&l->mu);
	free(l->slots);
	free(l->rbuf);
	free(l);
}
