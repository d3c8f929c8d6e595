/* uwpx_link: the router connection of ingress-uwpx (see uwpx_link.h). */
#include "uwpx_link.h"
#include "log.h"
#include "sock.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RETRY_MS 200

int uwpx_link_init(struct uwpx_link *l, const char *path)
{
	memset(l, 0, sizeof *l);
	if (strlen(path) >= sizeof l->path)
		return -1;
	strcpy(l->path, path);
	peer_init(&l->p, -1);
	l->rbuf = malloc(FRAME_MAX);
	return l->rbuf == NULL ? -1 : 0;
}

int uwpx_link_up(const struct uwpx_link *l)
{
	return l->p.fd >= 0;
}

int uwpx_link_connect(struct uwpx_link *l, uint64_t now_ms)
{
	int fd;

	if (l->p.fd >= 0 || now_ms < l->next_try)
		return -1;
	l->next_try = now_ms + RETRY_MS;
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
	if (l->p.fd < 0)
		return;
	log_warn("lost the connection to %s: %s", l->path, why);
	peer_close(&l->p);
}

int uwpx_link_send(struct uwpx_link *l, const uint8_t *frame, size_t len)
{
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
	if (l->p.fd >= 0 && peer_flush(&l->p) < 0) {
		uwpx_link_close(l, strerror(errno));
		return -1;
	}
	return 0;
}

int uwpx_link_read(struct uwpx_link *l, struct frame *f)
{
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
