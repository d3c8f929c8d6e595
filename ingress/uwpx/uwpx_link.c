/*
 * uwpx_link: the router connection of ingress-uwpx (see uwpx_link.h): router.sock on one
 * machine, the bus seam of router_link_bus.c in cluster mode. Trusts the router's frames only
 * after frame_parse(). Holds the socket (or the bus side) and, in cluster mode, copies of the
 * answers not yet read.
 */
#include "uwpx_link.h"
#include "log.h"
#include "sock.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RETRY_MS 200

int uwpx_link_init(struct uwpx_link *l, const char *path, uint32_t timeout_ms)
{
	memset(l, 0, sizeof *l);
	l->bus_ep = -1;
	if (strlen(path) >= sizeof l->path)
		return -1;
	strcpy(l->path, path);
	peer_init(&l->p, -1);
	l->timeout_ms = timeout_ms;
	l->rbuf = malloc(FRAME_MAX);
	return l->rbuf == NULL ? -1 : 0;
}

/* Cluster mode: the bus side, once; its eventfd sits in an epoll set of the link's own, whose
 * fd is the link's fd for the caller. */
static int bus_connect(struct uwpx_link *l)
{
	if ((l->bus_ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || (l->bus = link_bus_new(l->bus_ep, l, l->timeout_ms)) == NULL) {
		if (l->bus_ep >= 0)
			close(l->bus_ep);
		l->bus_ep = -1;
		return -1;
	}
	peer_init(&l->p, l->bus_ep);
	log_info("cluster mode: requests go to the routers over NATS");
	return l->bus_ep;
}

/* link_bus_read's callback: a copy of the answer, read by uwpx_link_read. */
static void bus_answer(void *arg, uint64_t id, uint32_t status, const struct frame *reply)
{
	struct uwpx_link *l = arg;
	size_t n;

	(void)id;
	(void)status;
	if (reply == NULL || l->nans == sizeof l->ans / sizeof l->ans[0])
		return; /* a notify's PubAck (never sent here), or no room: the request's deadline answers */
	n = FRAME_HEADER + reply->len;
	if ((l->ans[l->nans] = malloc(n)) == NULL)
		return;
	memcpy(l->ans[l->nans], reply->payload - FRAME_HEADER, n);
	l->ans_len[l->nans++] = n;
}

static int bus_read(struct uwpx_link *l, struct frame *f)
{
	for (;;) {
		const char *why = "";
		if (l->ans_pos == l->nans) {
			for (size_t i = 0; i < l->nans; i++)
				free(l->ans[i]);
			l->nans = l->ans_pos = 0;
			link_bus_read(l->bus, bus_answer, l);
			if (l->nans == 0)
				return 0;
		}
		memcpy(l->rbuf, l->ans[l->ans_pos], l->ans_len[l->ans_pos]);
		if (frame_parse(l->rbuf, l->ans_len[l->ans_pos++], f, &why) == 0)
			return 1;
		log_warn("cluster: a bad answer from a router: %s", why);
	}
}

void uwpx_link_free(struct uwpx_link *l)
{
	for (size_t i = 0; i < l->nans; i++)
		free(l->ans[i]);
	l->nans = l->ans_pos = 0;
	if (l->bus) {
		link_bus_free(l->bus);
		l->bus = NULL;
		close(l->bus_ep);
		l->bus_ep = -1;
		peer_init(&l->p, -1);
	}
	peer_close(&l->p);
	free(l->rbuf);
	l->rbuf = NULL;
}

int uwpx_link_up(const struct uwpx_link *l)
{
	return l->p.fd >= 0;
}

int uwpx_link_connect(struct uwpx_link *l, uint64_t now_ms)
{
	int fd;

	if (l->bus)
		link_bus_tick(l->bus, now_ms); /* sends again what the servers did not store */
	if (l->p.fd >= 0 || now_ms < l->next_try)
		return -1;
	l->next_try = now_ms + RETRY_MS;
	if (link_bus_wanted(l->path))
		return bus_connect(l);
	fd = sock_connect(l->path, SOCK_SEQPACKET);
	if (fd < 0 || sock_hello(fd, ROLE_INGRESS, 0, NULL) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (!l->warned++)
			log_warn("%s not reachable (%s); retrying", l->path, strerror(e));
		return -1;
	}
	peer_init(&l->p, fd);
	l->warned = 0;
	log_info("connected to %s", l->path);
	return fd;
}

void uwpx_link_close(struct uwpx_link *l, const char *why)
{
	if (l->p.fd < 0 || l->bus)
		return; /* the bus reconnects by itself */
	log_warn("lost the connection to %s: %s", l->path, why);
	peer_close(&l->p);
}

int uwpx_link_send(struct uwpx_link *l, const uint8_t *frame, size_t len)
{
	if (l->bus)
		return link_bus_send(l->bus, frame, len);
	if (l->p.fd < 0)
		return -1;
	if (peer_send(&l->p, frame, len) < 0) {
		uwpx_link_close(l, errno ? strerror(errno) : "send queue full");
		return -1;
	}
	return 0;
}

int uwpx_link_flush(struct uwpx_link *l)
{
	if (l->p.fd >= 0 && l->bus == NULL && peer_flush(&l->p) < 0) {
		uwpx_link_close(l, strerror(errno));
		return -1;
	}
	return 0;
}

int uwpx_link_read(struct uwpx_link *l, struct frame *f)
{
	if (l->bus)
		return bus_read(l, f);
	for (;;) {
		const char *why;
		ssize_t n;

		if (l->p.fd < 0)
			return -1;
		n = sock_recv(l->p.fd, l->rbuf);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			uwpx_link_close(l, n == 0 ? "router closed the connection" : strerror(errno));
			return -1;
		}
		if (frame_parse(l->rbuf, (size_t)n, f, &why) < 0) {
			log_warn("bad frame from %s: %s", l->path, why);
			continue;
		}
		if (f->type == FRAME_HELLO)
			continue;
		return 1;
	}
}
