/*
 * floor_server: the least an onion server must do per request, for `make bench` to measure
 * beside ingress-onion on the same machine. Per request it reads the HTTP request from a
 * keep-alive connection, opens the body exactly as ingress-onion does (onion_body_open: the
 * framing, the trailer, one X25519, the key derivation, AES-GCM) and answers with the sealed
 * v2 "Success" reply: one recv(), one X25519, one send(). It skips everything else the
 * ingress does: HTTP validation, the inner request's JSON and its checks, the router and its
 * durable commit, counters, timeouts and limits. Not a server for anything but this bench.
 *
 *   floor_server -p PORT -k SECRET_KEY_FILE [-t THREADS]
 */
#include "bchat/bchat_request.h"
#include "../ingress/onion/onion_body.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (64 * 1024)

struct conn {
	int fd;
	size_t len;
	unsigned char buf[BUF];
};

static unsigned char sk[32], pk[32];
static int lfd;
static unsigned char *reply;
static size_t reply_len;

/* Answers the complete request at c->buf (head_len + body_len bytes); -1 to close. */
static int answer(struct conn *c, size_t head_len, size_t body_len)
{
	static const struct onion_salts salts = {{"BELDEX"}, 1};
	struct onion_request r;
	unsigned char sealed[512];
	char out[1024], *body;
	size_t blen, slen = reply_len + onion_overhead(ONION_AES_GCM);
	int n, ok;

	if (onion_body_open(sk, pk, &salts, 0, c->buf + head_len, body_len, &r) != ONION_OK)
		return -1;
	ok = slen <= sizeof sealed && onion_seal(&r.key, reply, reply_len, sealed) == 0;
	onion_request_free(&r);
	if (!ok || (body = bchat_v2_http_body(sealed, slen, &blen)) == NULL)
		return -1;
	n = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nContent-Type: application/json\r\n\r\n%s",
		     blen, body);
	free(body);
	return n > 0 && (size_t)n < sizeof out && send(c->fd, out, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

/* Reads what is there and answers every complete request in it; -1 to close. */
static int serve(struct conn *c)
{
	ssize_t got = recv(c->fd, c->buf + c->len, BUF - c->len, 0);
	if (got <= 0)
		return got < 0 && errno == EAGAIN ? 0 : -1;
	c->len += (size_t)got;
	for (;;) {
		unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		const char *cl;
		size_t head, body;
		if (end == NULL)
			return c->len == BUF ? -1 : 0;
		*end = '\0';
		cl = strcasestr((char *)c->buf, "\r\ncontent-length:");
		head = (size_t)(end - c->buf) + 4;
		body = cl ? strtoul(cl + 17, NULL, 10) : 0;
		*end = '\r';
		if (head + body > BUF)
			return -1;
		if (c->len < head + body)
			return 0;
		if (answer(c, head, body) < 0)
			return -1;
		memmove(c->buf, c->buf + head + body, c->len - head - body);
		c->len -= head + body;
	}
}

static void *worker(void *arg)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL}, evs[64];
	(void)arg;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		return NULL;
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c == NULL) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK), one = 1;
				struct epoll_event cev = {.events = EPOLLIN};
				if (fd < 0 || (c = calloc(1, sizeof *c)) == NULL) {
					if (fd >= 0)
						close(fd);
					continue;
				}
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
				c->fd = fd;
				cev.data.ptr = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
			} else if (serve(c) < 0) {
				close(c->fd);
				free(c);
			}
		}
	}
}

int main(int argc, char **argv)
{
	int port = 0, threads = 2, ch, one = 1;
	const char *keyfile = NULL;
	char err[256];
	struct sockaddr_in sa = {.sin_family = AF_INET};
	pthread_t t;

	while ((ch = getopt(argc, argv, "p:k:t:")) != -1) {
		switch (ch) {
		case 'p': port = atoi(optarg); break;
		case 'k': keyfile = optarg; break;
		case 't': threads = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (port <= 0 || keyfile == NULL || threads < 1)
		goto usage;
	if (onion_key_load(keyfile, sk, pk, err, sizeof err) < 0) {
		fprintf(stderr, "floor_server: %s\n", err);
		return 1;
	}
	if ((reply = bchat_reply_v2(BCHAT_OK, "Bchat", &reply_len)) == NULL)
		return 1;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 256) < 0) {
		fprintf(stderr, "floor_server: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
		return 1;
	}
	for (int i = 1; i < threads; i++)
		if (pthread_create(&t, NULL, worker, NULL) != 0)
			return 1;
	worker(NULL);
	return 1;
usage:
	fprintf(stderr, "usage: floor_server -p PORT -k SECRET_KEY_FILE [-t THREADS]\n");
	return 2;
}
