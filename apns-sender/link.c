/*
 * link: the APNs sender's connection to the router (router.sock). Connects and says hello
 * as an iOS sender, retrying every second with jitter while the router is absent; reads PUSH
 * frames only while there is room for more jobs (back-pressure); sends RESULT frames through
 * the peer's bounded queue. When the connection is lost, the jobs that came on it are
 * forgotten: the router re-queues them, so their late answers are dropped here.
 * Trusts the router's frames only after frame_parse(). Holds the socket and its queue.
 */
#include "apns.h"
#include "daemon.h"
#include "log.h"
#include "sock.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

void apns_link_drop(struct apns *a, const char *why)
{
	if (a->link.fd < 0)
		return;
	log_warn("router connection lost: %s; %zu jobs in flight forgotten (the router re-queues them)", why,
		 a->njobs);
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, a->link.fd, NULL);
	peer_close(&a->link);
	a->link_gen++; /* answers still in flight belong to the old connection */
	a->reconnect_at = mono_ms() + 1000 + (uint64_t)(random() % 500);
}

void apns_link_try(struct apns *a)
{
	char path[256] = "router.sock";
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = APNS_EV_ROUTER};
	int fd = -1;

	if (config_socket(a->cfg, "router.sock", path, sizeof path) == NULL ||
	    (fd = sock_connect(path, SOCK_SEQPACKET)) < 0 ||
	    sock_hello(fd, ROLE_SENDER, PLATFORM_IOS, a->instance) < 0 ||
	    epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		if (!a->absent_logged)
			log_info("router not reachable at %s (%s); retrying every second", path, strerror(errno));
		a->absent_logged = 1;
		if (fd >= 0)
			close(fd);
		a->reconnect_at = mono_ms() + 1000 + (uint64_t)(random() % 500);
		return;
	}
	peer_init(&a->link, fd);
	a->link_gen++;
	a->router_events = EPOLLIN;
	a->absent_logged = 0;
	log_info("connected to the router as iOS sender %s", a->instance ? a->instance : "(unnamed)");
}

void apns_result(struct apns *a, uint64_t link_gen, uint64_t id, const struct guard_verdict *v)
{
	uint8_t buf[512];
	struct frame_writer w;
	long n;

	if (a->link.fd < 0 || link_gen != a->link_gen)
		return;
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
	if ((n = frame_end(&w)) < 0 || peer_send(&a->link, buf, (size_t)n) < 0)
		apns_link_drop(a, "cannot send a result");
}

static void read_router(struct apns *a)
{
	static uint8_t buf[FRAME_MAX];

	for (int k = 0; k < 256 && a->link.fd >= 0 && a->njobs < a->max_jobs; k++) {
		const char *why = "bad frame";
		struct frame f;
		ssize_t n = sock_recv(a->link.fd, buf);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			apns_link_drop(a, n == 0 ? "closed by the router" : strerror(errno));
			return;
		}
		if (frame_parse(buf, (size_t)n, &f, &why) < 0) {
			apns_link_drop(a, why);
			return;
		}
		if (f.type != FRAME_PUSH) {
			apns_link_drop(a, "unexpected frame type");
			return;
		}
		apns_push(a, &f);
	}
}

void apns_link_watch(struct apns *a)
{
	uint32_t want;
	struct epoll_event ev;

	if (a->link.fd < 0)
		return;
	want = (a->njobs < a->max_jobs ? EPOLLIN : 0u) | (peer_has_queued(&a->link) ? EPOLLOUT : 0u);
	if (want == a->router_events)
		return;
	ev.events = want;
	ev.data.u32 = APNS_EV_ROUTER;
	if (epoll_ctl(a->epfd, EPOLL_CTL_MOD, a->link.fd, &ev) == 0)
		a->router_events = want;
}

void apns_link_event(struct apns *a, uint32_t events)
{
	if (a->link.fd < 0)
		return;
	if (events & (EPOLLHUP | EPOLLERR)) {
		apns_link_drop(a, "hung up");
		return;
	}
	if ((events & EPOLLOUT) && peer_flush(&a->link) < 0) {
		apns_link_drop(a, "send failed");
		return;
	}
	if (events & EPOLLIN)
		read_router(a);
}
