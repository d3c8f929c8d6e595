/*
 * router_link: request/reply frames between an ingress worker and the router or statsd (see
 * router_link.h). Single-threaded: the worker that owns the link does everything, so the
 * pending table needs no lock and a reply is handled where its request was made. Trusts the
 * peer's frames only after frame_parse(); a reply with an unknown id is ignored (it belongs to
 * a request that already timed out).
 *
 * Frames submitted during one turn of the worker's loop are queued and sent together by
 * link_flush() when the turn ends. To the router they go as one FRAME_BATCH message (and its
 * replies come back batched the same way): one system call, one socket buffer and one wake-up
 * of the peer for every request a turn produced, rather than for each. statsd takes frames one
 * per message, so a link to it sends them with one sendmmsg().
 */
#include "router_link.h"
#include "daemon.h"
#include "router_link_bus.h"
#include "log.h"
#include "reconnect.h"
#include "sock.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

struct link_slot {
	uint64_t id; /* 0 = free */
	uint64_t deadline;
	int own_deadline; /* the caller's (link_submit_within): its lateness is the caller's to tell */
	link_done_fn done;
	void *ctx;
};

#define LINK_BATCH 64
#define LINK_OBUF (64 * 1024) /* a larger frame is sent on its own */
#define LINK_RBATCH 16	      /* replies taken per recvmmsg() */
#define RBUF_SIZE ((size_t)LINK_RBATCH * FRAME_MAX)

struct router_link {
	char path[108];
	uint32_t role, timeout_ms;
	int fd, epfd, batches;
	void *tag;
	struct reconnect rc; /* every 200 ms while the peer is away */
	uint64_t now_ms;
	/* requests answered busy with no answer from the peer (its socket was full, or it did not
	 * answer in time), not yet logged; logged at most once a second (busy_note) */
	size_t unsent, late;
	uint64_t noted_ms;
	struct link_slot *slots;
	size_t nslots, used;
	struct link_bus *bus;	/* cluster mode: requests go over NATS (router_link_bus.h) */
	uint64_t seq;
	/* LINK_RBATCH buffers of FRAME_MAX, mapped without huge pages: address space only, until
	 * replies touch their first pages (a reply is a few hundred bytes) */
	uint8_t *rbuf;
	/* frames submitted and not yet sent: gathered as a batch in obuf (FRAME_MAX bytes), each
	 * frame at q[].off */
	uint8_t *obuf;
	struct frame_batch out;
	size_t nq;
	struct {
		size_t off, len;
		uint64_t id;
	} q[LINK_BATCH];
};

struct router_link *link_new(const char *sock_path, size_t max_pending, uint32_t timeout_ms, uint32_t role,
			     int batches, int epfd, void *tag)
{
	struct router_link *l = calloc(1, sizeof *l);
	void *r = mmap(NULL, RBUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r != MAP_FAILED)
		madvise(r, RBUF_SIZE, MADV_NOHUGEPAGE);
	if (l == NULL || r == MAP_FAILED || (l->slots = calloc(max_pending, sizeof *l->slots)) == NULL ||
	    (l->obuf = malloc(FRAME_MAX)) == NULL) {
		if (l)
			free(l->slots);
		if (r != MAP_FAILED)
			munmap(r, RBUF_SIZE);
		free(l);
		return NULL;
	}
	l->rbuf = r;
	strncpy(l->path, sock_path, sizeof l->path - 1);
	l->nslots = max_pending;
	l->timeout_ms = timeout_ms;
	l->role = role;
	l->batches = batches;
	l->fd = -1;
	l->epfd = epfd;
	l->tag = tag;
	reconnect_init(&l->rc, l->path, 200, 0);
	if (link_bus_wanted(sock_path) && (l->bus = link_bus_new(epfd, tag, timeout_ms)) == NULL) {
		link_free(l);
		return NULL;
	}
	return l;
}

static void wr64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Completes the request with this id, if it is still pending, as status. */
static void complete(struct router_link *l, uint64_t id, uint32_t status, const struct frame *f)
{
	size_t i = (size_t)(id & 0xffffffffu);
	struct link_slot s;
	if (id == 0 || i >= l->nslots || l->slots[i].id != id)
		return;
	s = l->slots[i];
	l->slots[i].id = 0;
	l->used--;
	s.done(s.ctx, status, f);
}

/* Sends the queued frames; returns how many of them the socket took, in order. */
static size_t send_queue(struct router_link *l)
{
	struct mmsghdr m[LINK_BATCH];
	struct iovec iov[LINK_BATCH];
	size_t nq = l->nq, sent = 0;
	const uint8_t *msg;
	size_t n = frame_batch_end(&l->out, &msg);

	if (l->fd < 0)
		return 0;
	if (l->batches)
		return sock_send(l->fd, msg, n) == 0 ? nq : 0;
	memset(m, 0, nq * sizeof m[0]);
	for (size_t i = 0; i < nq; i++) {
		iov[i].iov_base = l->obuf + l->q[i].off;
		iov[i].iov_len = l->q[i].len;
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	while (sent < nq) {
		int r = sendmmsg(l->fd, m + sent, (unsigned)(nq - sent), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r <= 0)
			break;
		sent += (size_t)r;
	}
	return sent;
}

/* Tells the operator why requests were answered busy without reaching the peer: rate-limited,
 * as it happens under overload on every turn. */
static void busy_note(struct router_link *l)
{
	if ((l->unsent == 0 && l->late == 0) || (l->noted_ms != 0 && l->now_ms < l->noted_ms + 1000))
		return;
	if (l->unsent)
		log_warn("%zu requests answered busy: they could not be sent to %s", l->unsent,
			 l->path);
	if (l->late)
		log_warn("%zu requests answered busy: no answer from %s within %u ms", l->late, l->path,
			 l->timeout_ms);
	l->unsent = l->late = 0;
	l->noted_ms = l->now_ms;
}

void link_flush(struct router_link *l)
{
	size_t nq = l->nq, sent;

	if (l->bus)
		link_bus_flush(l->bus); /* cluster mode: the turn's notifies, as one message */
	if (nq == 0)
		return;
	sent = send_queue(l);
	l->nq = 0;
	if (l->fd >= 0)
		l->unsent += nq - sent;
	/* What the socket would not take now is answered busy: back-pressure, never a queue. */
	for (size_t i = sent; i < nq; i++)
		complete(l, l->q[i].id, STATUS_BUSY, NULL);
}

int link_submit(struct router_link *l, uint8_t *frame, size_t len, link_done_fn done, void *ctx)
{
	return link_submit_within(l, frame, len, l->timeout_ms, done, ctx);
}

int link_submit_within(struct router_link *l, uint8_t *frame, size_t len, uint32_t timeout_ms, link_done_fn done,
		       void *ctx)
{
	struct link_slot *s = NULL;
	size_t i;
	uint64_t id;

	/* A full queue goes first, and all of it before a frame too large to queue, so frames
	 * leave in the order they came. Callbacks run by a failed send may submit again. */
	if (len > LINK_OBUF ? l->nq > 0
			    : (l->nq == LINK_BATCH || frame_batch_size(&l->out) + FRAME_FIELD_HEADER + len > LINK_OBUF))
		link_flush(l);
	if ((l->fd < 0 && l->bus == NULL) || l->used == l->nslots)
		return -1;
	/* The id names the slot (low 32 bits) and a sequence, so stale replies never match. */
	i = (size_t)(l->seq % l->nslots);
	for (size_t k = 0; k < l->nslots; k++, i = (i + 1) % l->nslots)
		if (l->slots[i].id == 0) {
			s = &l->slots[i];
			break;
		}
	id = (++l->seq << 32) | (uint64_t)(s - l->slots);
	wr64(frame + 8, id);
	if (l->bus) {
		if (link_bus_send(l->bus, frame, len) < 0)
			return -1;
	} else if (len > LINK_OBUF) {
		if (sock_send(l->fd, frame, len) < 0)
			return -1;
	} else {
		const uint8_t *at = frame_batch_add(&l->out, l->obuf, frame, len);
		if (at == NULL) /* cannot happen below LINK_OBUF; refused rather than trusted */
			return -1;
		l->q[l->nq].off = (size_t)(at - l->obuf);
		l->q[l->nq].len = len;
		l->q[l->nq].id = id;
		l->nq++;
	}
	s->id = id;
	s->deadline = mono_ms() + timeout_ms;
	s->own_deadline = timeout_ms != l->timeout_ms;
	s->done = done;
	s->ctx = ctx;
	l->used++;
	return 0;
}

/* Completes every slot that is due (all of them when fail_all). A callback may submit again,
 * into a slot this scan has already passed or will see with a later deadline. */
static void expire(struct router_link *l, int fail_all)
{
	for (size_t i = 0; i < l->nslots && l->used > 0; i++) {
		struct link_slot s = l->slots[i];
		if (s.id == 0 || (!fail_all && s.deadline > l->now_ms))
			continue;
		l->late += !fail_all && !s.own_deadline;
		l->slots[i].id = 0;
		l->used--;
		s.done(s.ctx, STATUS_BUSY, NULL);
	}
}

static void lose(struct router_link *l, const char *why)
{
	reconnect_lost(&l->rc, why);
	close(l->fd);
	l->fd = -1;
	l->nq = l->out.n = 0; /* their slots are completed just below */
	expire(l, 1);
}

static void complete_reply(struct router_link *l, const struct frame *f)
{
	complete(l, f->id, f->type == FRAME_REPLY ? frame_u32(f, TAG_STATUS, STATUS_ERROR) : STATUS_OK, f);
}

static void handle_frame(struct router_link *l, const uint8_t *buf, size_t n)
{
	struct frame f, inner;
	struct frame_field item;
	const char *why;
	size_t pos = 0;
	int r;

	if (frame_parse(buf, n, &f, &why) < 0) {
		log_warn("bad frame from %s: %s", l->path, why);
		return;
	}
	if (f.type != FRAME_BATCH) {
		complete_reply(l, &f);
		return;
	}
	while ((r = frame_batch_next(&f, &pos, &item, &inner, &why)) == 1)
		complete_reply(l, &inner);
	if (r < 0)
		log_warn("bad frame in a batch from %s: %s", l->path, why);
}

static void bus_done(void *arg, uint64_t id, uint32_t status, const struct frame *reply)
{
	complete(arg, id, status, reply);
}

void link_read(struct router_link *l)
{
	struct mmsghdr m[LINK_RBATCH];
	struct iovec iov[LINK_RBATCH];

	if (l->bus) {
		link_bus_read(l->bus, bus_done, l);
		return;
	}

	/* Bounded (1024 replies), so one busy link cannot starve the worker's connections. */
	for (int k = 0; k < 1024 / LINK_RBATCH && l->fd >= 0; k++) {
		const char *why = NULL;
		int r;
		memset(m, 0, sizeof m);
		for (int i = 0; i < LINK_RBATCH; i++) {
			iov[i].iov_base = l->rbuf + (size_t)i * FRAME_MAX;
			iov[i].iov_len = FRAME_MAX;
			m[i].msg_hdr.msg_iov = &iov[i];
			m[i].msg_hdr.msg_iovlen = 1;
		}
		r = recvmmsg(l->fd, m, LINK_RBATCH, MSG_DONTWAIT, NULL);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		for (int i = 0; i < r && l->fd >= 0; i++) {
			/* An empty message is the peer closing; a truncated one a broken peer. */
			if (m[i].msg_len == 0 || (m[i].msg_hdr.msg_flags & MSG_TRUNC)) {
				why = m[i].msg_len == 0 ? "closed by the peer" : "a message over the frame size";
				r = -1;
				break;
			}
			handle_frame(l, iov[i].iov_base, m[i].msg_len);
		}
		if (r <= 0) {
			if (l->fd >= 0)
				lose(l, why ? why : r == 0 ? "closed by the peer" : strerror(errno));
			return;
		}
		if (r < LINK_RBATCH)
			return; /* drained: no need to be told so by EAGAIN */
	}
}

static void connect_peer(struct router_link *l)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int fd = sock_connect(l->path, SOCK_SEQPACKET);

	ev.data.ptr = l->tag;
	if (fd >= 0 && sock_hello(fd, l->role, 0, NULL) == 0 && epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
		reconnect_ok(&l->rc, "");
		l->fd = fd;
		return;
	}
	int e = errno;
	if (fd >= 0)
		close(fd);
	reconnect_failed(&l->rc, l->now_ms, e);
}

void link_tick(struct router_link *l, uint64_t now_ms)
{
	l->now_ms = now_ms;
	if (l->fd < 0 && l->bus == NULL && reconnect_due(&l->rc, now_ms))
		connect_peer(l);
	if (l->bus)
		link_bus_tick(l->bus, mono_ms());
	expire(l, 0);
	busy_note(l);
}

void link_free(struct router_link *l)
{
	if (l == NULL)
		return;
	l->nq = l->out.n = 0;
	expire(l, 1);
	if (l->fd >= 0)
		close(l->fd);
	link_bus_free(l->bus);
	free(l->slots);
	munmap(l->rbuf, RBUF_SIZE);
	free(l->obuf);
	free(l);
}

int link_connected(const struct router_link *l)
{
	return l->fd >= 0;
}
