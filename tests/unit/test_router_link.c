/* router_link, the ingresses' one router client, against a scripted router on a real
 * SEQPACKET socket: hello, batching of a turn's requests, replies single and batched, stale
 * and repeated replies ignored, the pending cap, the link's deadline and a request's own,
 * a lost router (everything answered busy at once), reconnection, and link_free. */
#include "../../ingress/router_link.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "testlib.h"
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct done {
	int calls;
	uint32_t status;
	int had_reply;
	uint8_t reply_type;
};

static void on_done(void *ctx, uint32_t status, const struct frame *reply)
{
	struct done *d = ctx;
	d->calls++;
	d->status = status;
	d->had_reply = reply != NULL;
	d->reply_type = reply ? reply->type : 0;
}

static int submit(struct router_link *l, struct done *d, uint32_t within)
{
	uint8_t buf[256];
	struct frame_writer w;
	long n;
	frame_begin(&w, buf, FRAME_UNREGISTER, 0);
	frame_put_bytes(&w, TAG_TOKEN, "tok", 3);
	n = frame_end(&w);
	return within ? link_submit_within(l, buf, (size_t)n, within, on_done, d) : link_submit(l, buf, (size_t)n, on_done, d);
}

/* The frames of one message from the link (a batch is opened): their ids, in order. */
static size_t recv_ids(int fd, uint64_t *ids, size_t max, uint8_t *type)
{
	static uint8_t buf[FRAME_MAX];
	struct frame f, inner;
	struct frame_field item;
	size_t pos = 0, n = 0;
	ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);

	if (got <= 0 || frame_parse(buf, (size_t)got, &f, NULL) < 0)
		return 0;
	*type = f.type;
	if (f.type != FRAME_BATCH) {
		ids[0] = f.id;
		return 1;
	}
	while (n < max && frame_batch_next(&f, &pos, &item, &inner, NULL) == 1)
		ids[n++] = inner.id;
	return n;
}

static void reply(int fd, uint64_t id, uint32_t status)
{
	uint8_t buf[128];
	struct frame_writer w;
	frame_begin(&w, buf, FRAME_REPLY, id);
	frame_put_u32(&w, TAG_STATUS, status);
	(void)!send(fd, buf, (size_t)frame_end(&w), 0);
}

/* Accepts the link's connection and takes its hello; -1 when none came. */
static int accept_link(int lfd)
{
	uint64_t id;
	uint8_t type = 0;
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int fd = poll(&p, 1, 1000) == 1 ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
	if (fd < 0)
		return -1;
	usleep(10000);
	if (recv_ids(fd, &id, 1, &type) != 1 || type != FRAME_HELLO) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Waits (at most a second) for the link's socket to be readable, then reads it. */
static void read_link(struct router_link *l, int epfd)
{
	struct epoll_event ev;
	if (epoll_wait(epfd, &ev, 1, 1000) == 1)
		link_read(l);
}

int main(void)
{
	char dir[] = "/tmp/test_router_link.XXXXXX", path[128];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct done d[8];
	uint64_t ids[8], t0;
	uint8_t type = 0;
	int lfd, fd, epfd = epoll_create1(EPOLL_CLOEXEC);
	struct router_link *l;

	log_set_level(LOG_ERROR);
	CHECK(mkdtemp(dir) != NULL, "temporary directory");
	snprintf(path, sizeof path, "%s/router.sock", dir);
	strcpy(sa.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 4) == 0, "scripted router listens");
	memset(d, 0, sizeof d);

	l = link_new(path, 4, 5000, ROLE_INGRESS, 1, epfd, NULL);
	CHECK(l != NULL && !link_connected(l), "a new link is not connected yet");
	CHECK(submit(l, &d[0], 0) == -1 && d[0].calls == 0, "no router: refused at once, no completion");

	link_tick(l, mono_ms());
	CHECK(link_connected(l), "the tick connects");
	fd = accept_link(lfd);
	CHECK(fd >= 0, "the router gets the link's hello");

	/* One turn, two requests: one FRAME_BATCH message, after link_flush only. */
	CHECK(submit(l, &d[0], 0) == 0 && submit(l, &d[1], 0) == 0, "two requests taken");
	CHECK(recv_ids(fd, ids, 8, &type) == 0, "nothing sent before the turn ends");
	link_flush(l);
	CHECK(recv_ids(fd, ids, 8, &type) == 2 && type == FRAME_BATCH && ids[0] != ids[1] && ids[0] != 0,
	      "the turn's requests leave as one batch, with their own ids");
	CHECK(d[0].calls == 0 && d[1].calls == 0, "no completion before an answer");
	reply(fd, ids[1], STATUS_NOT_FOUND);
	reply(fd, ids[0], STATUS_OK);
	reply(fd, ids[0], STATUS_ERROR); /* a repeat: ignored */
	reply(fd, ids[0] + (1ull << 32), STATUS_OK); /* the slot's id of another request: ignored */
	usleep(10000);
	read_link(l, epfd);
	CHECK(d[0].calls == 1 && d[0].status == STATUS_OK && d[0].had_reply && d[0].reply_type == FRAME_REPLY,
	      "first request: the router's OK");
	CHECK(d[1].calls == 1 && d[1].status == STATUS_NOT_FOUND && d[1].had_reply, "second: the router's not-found");

	/* The pending cap: back-pressure, never a queue. */
	memset(d, 0, sizeof d);
	for (int i = 0; i < 4; i++)
		CHECK(submit(l, &d[i], 0) == 0, "request %d taken", i);
	CHECK(submit(l, &d[4], 0) == -1 && d[4].calls == 0, "a fifth, over the cap of 4: refused");
	link_flush(l);
	CHECK(recv_ids(fd, ids, 8, &type) == 4, "four requests sent");
	for (int i = 0; i < 4; i++)
		reply(fd, ids[i], STATUS_OK);
	usleep(10000);
	read_link(l, epfd);
	CHECK(d[0].calls + d[1].calls + d[2].calls + d[3].calls == 4, "each answered once");

	/* Deadlines: the link's (5000 ms) and a request's own (100 ms). */
	memset(d, 0, sizeof d);
	t0 = mono_ms();
	CHECK(submit(l, &d[0], 0) == 0 && submit(l, &d[1], 100) == 0, "a request with the link's deadline, one with 100 ms");
	link_flush(l);
	CHECK(recv_ids(fd, ids, 8, &type) == 2, "both sent");
	link_tick(l, t0 + 99);
	CHECK(d[0].calls == 0 && d[1].calls == 0, "99 ms: neither is due");
	link_tick(l, mono_ms() + 100);
	CHECK(d[0].calls == 0 && d[1].calls == 1 && d[1].status == STATUS_BUSY && !d[1].had_reply,
	      "100 ms: the short one answered busy, without a reply");
	link_tick(l, t0 + 4999);
	CHECK(d[0].calls == 0, "4999 ms: the link's deadline not yet");
	link_tick(l, mono_ms() + 5000);
	CHECK(d[0].calls == 1 && d[0].status == STATUS_BUSY && !d[0].had_reply, "5000 ms: answered busy");
	reply(fd, ids[0], STATUS_OK);
	usleep(10000);
	read_link(l, epfd);
	CHECK(d[0].calls == 1, "an answer after the deadline is ignored");

	/* The router goes away: everything waiting is answered busy at once, then a reconnect. */
	memset(d, 0, sizeof d);
	CHECK(submit(l, &d[0], 0) == 0 && submit(l, &d[1], 0) == 0, "two more requests");
	link_flush(l);
	close(fd);
	read_link(l, epfd);
	CHECK(d[0].calls == 1 && d[1].calls == 1 && d[0].status == STATUS_BUSY && d[1].status == STATUS_BUSY,
	      "router lost: both answered busy");
	CHECK(!link_connected(l) && submit(l, &d[2], 0) == -1, "not connected: refused");
	link_tick(l, mono_ms() + 1000);
	CHECK(link_connected(l), "the next tick reconnects");
	fd = accept_link(lfd);
	CHECK(fd >= 0, "the router gets a new hello");

	/* link_free: what is still waiting is completed. */
	memset(d, 0, sizeof d);
	CHECK(submit(l, &d[0], 0) == 0, "a request left waiting");
	link_free(l);
	CHECK(d[0].calls == 1 && d[0].status == STATUS_BUSY, "link_free answers it busy");

	close(fd);
	close(lfd);
	close(epfd);
	unlink(path);
	rmdir(dir);
	return test_done();
}
