/*
 * sender_link: a provider sender's connection to the router (router-sender.sock). Connects and says
 * hello as a sender of the provider's platform, retrying every second with jitter while the
 * router is absent (reconnect.h, the policy and wording of every link to the router; the try
 * is a timer of the sender's loop, the socket one of its descriptors); reads PUSH frames only
 * while there is room for more jobs (back-pressure);
 * sends RESULT frames through the peer's bounded queue. When the connection is lost, the jobs
 * that came on it are forgotten: the router re-queues them, so their late answers are dropped
 * here. Trusts the router's frames only after frame_parse(). Holds the socket and its queue
 * (struct sender_link in struct sender).
 */
#include "sender_link.h"
#include "daemon.h"
#include "log.h"
#include "sender_bus.h"
#include "sender_loop.h"
#include "sock.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_retry(void *arg)
{
	struct sender *s = arg;

	s->link.retry = NULL;
	if (s->link.peer.fd < 0)
		sender_link_try(s);
}

/* The next try, when rc says. */
static int arm_retry(struct sender *s)
{
	uint64_t now = mono_ms(), next = s->link.rc.next_ms;

	if (loop_wake(s->lp, &s->link.retry, next > now ? (int)(next - now) : 0, on_retry, s) == 0)
		return 0;
	log_warn("out of memory for a timer");
	return -1;
}

int sender_link_start(struct sender *s)
{
	return arm_retry(s);
}

void sender_link_stop(struct sender *s)
{
	struct sender_link *l = &s->link;

	loop_timer_cancel(s->lp, l->retry);
	l->retry = NULL;
	loop_del(s->lp, l->h);
	l->h = NULL;
	if (l->peer.fd >= 0)
		peer_close(&l->peer);
}

static void on_router(void *arg, uint32_t events);

void sender_link_drop(struct sender *s, const char *why)
{
	struct sender_link *l = &s->link;

	if (l->peer.fd < 0 || l->bus)
		return;
	reconnect_lost(&l->rc, why);
	if (s->njobs)
		log_warn("%zu jobs in flight forgotten (the router re-queues them)", s->njobs);
	loop_del(s->lp, l->h);
	l->h = NULL;
	peer_close(&l->peer);
	l->gen++; /* answers still in flight belong to the old connection */
	arm_retry(s);
}

void sender_link_try(struct sender *s)
{
	struct sender_link *l = &s->link;
	char detail[160];
	int fd = -1;

	if (l->bus) {
		/* Cluster mode: "connected" while bound to the jobs consumer; peer.fd is then a
		 * copy of the job queue's eventfd. */
		if ((fd = sender_bus_try(s)) < 0 || (fd = dup(fd)) < 0) {
			l->rc.next_ms = mono_ms() + l->rc.interval_ms + (uint64_t)random() % l->rc.jitter_ms;
			arm_retry(s);
			return;
		}
		peer_init(&l->peer, fd);
		l->gen++;
		return;
	}
	if ((fd = sock_connect(l->path, SOCK_SEQPACKET)) < 0 ||
	    sock_hello_app(fd, ROLE_SENDER, s->ops->platform, s->instance, s->cfg->app) < 0 ||
	    (l->h = loop_add(s->lp, fd, EPOLLIN, on_router, s)) == NULL) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		reconnect_failed(&l->rc, mono_ms(), e);
		arm_retry(s);
		return;
	}
	peer_init(&l->peer, fd);
	l->gen++;
	l->events = EPOLLIN;
	snprintf(detail, sizeof detail, " as %s sender %s of app %s", s->ops->platform_name,
		 s->instance ? s->instance : "(unnamed)", s->cfg->app);
	reconnect_ok(&l->rc, detail);
}

long sender_result_frame(uint8_t *buf, uint64_t id, const struct guard_verdict *v)
{
	struct frame_writer w;

	frame_begin(&w, buf, FRAME_RESULT, id);
	frame_put_u32(&w, TAG_OUTCOME, v->outcome);
	if (v->retry_after_ms)
		frame_put_u64(&w, TAG_RETRY_AFTER, v->retry_after_ms);
	if (v->timestamp_ms)
		frame_put_u64(&w, TAG_TIMESTAMP, v->timestamp_ms);
	if (v->reason[0])
		frame_put_bytes(&w, TAG_REASON, v->reason, strnlen(v->reason, GUARD_REASON_MAX));
	if (v->status > 0)
		frame_put_u32(&w, TAG_STATUS, (uint32_t)v->status);
	return frame_end(&w);
}

void sender_link_result(struct sender *s, uint64_t link_gen, uint64_t id, const struct guard_verdict *v)
{
	uint8_t buf[512];
	long n;

	if (s->link.bus) {
		sender_bus_result(s, id, v);
		return;
	}
	if (s->link.peer.fd < 0 || link_gen != s->link.gen)
		return;
	if ((n = sender_result_frame(buf, id, v)) < 0 || peer_send(&s->link.peer, buf, (size_t)n) < 0)
		sender_link_drop(s, "cannot send a result");
}

static void read_router(struct sender *s)
{
	static uint8_t buf[FRAME_MAX];

	for (int k = 0; k < 256 && s->link.peer.fd >= 0 && s->njobs < s->max_jobs; k++) {
		const char *why = "bad frame";
		struct frame f;
		ssize_t n = sock_recv(s->link.peer.fd, buf);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			sender_link_drop(s, n == 0 ? "closed by the router" : strerror(errno));
			return;
		}
		if (frame_parse(buf, (size_t)n, &f, &why) < 0) {
			sender_link_drop(s, why);
			return;
		}
		if (f.type != FRAME_PUSH) {
			sender_link_drop(s, "unexpected frame type");
			return;
		}
		sender_push(s, &f);
	}
}

void sender_link_watch(struct sender *s)
{
	struct sender_link *l = &s->link;
	uint32_t want;

	if (l->peer.fd < 0 || l->bus)
		return;
	want = (s->njobs < s->max_jobs ? EPOLLIN : 0u) | (peer_has_queued(&l->peer) ? EPOLLOUT : 0u);
	if (want != l->events && loop_mod(s->lp, l->h, want) == 0)
		l->events = want;
}

/* The router socket is ready. */
static void on_router(void *arg, uint32_t events)
{
	struct sender *s = arg;

	if (s->link.peer.fd < 0)
		return;
	if (events & (EPOLLHUP | EPOLLERR)) {
		sender_link_drop(s, "hung up");
		return;
	}
	if ((events & EPOLLOUT) && peer_flush(&s->link.peer) < 0) {
		sender_link_drop(s, "send failed");
		return;
	}
	if (events & EPOLLIN)
		read_router(s);
}
