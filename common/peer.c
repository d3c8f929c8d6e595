/* peer: bounded outbound queue for one SEQPACKET connection (see peer.h). */
#include "peer.h"
#include "frame.h"
#include "sock.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct peer_msg {
	struct peer_msg *next;
	size_t len;
	uint8_t data[];
};

void peer_init(struct peer *p, int fd)
{
	memset(p, 0, sizeof *p);
	p->fd = fd;
}

int peer_init_cred(struct peer *p)
{
	struct ucred uc;
	socklen_t len = sizeof uc;

	p->has_cred = 0;
	if (getsockopt(p->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 || len != sizeof uc)
		return -1;
	p->uid = (uint32_t)uc.uid;
	p->gid = (uint32_t)uc.gid;
	p->cred_pid = (uint32_t)uc.pid;
	p->has_cred = 1;
	return 0;
}

int peer_has_queued(const struct peer *p)
{
	return p->head != NULL;
}

/* Sends now, or queues what the socket will not take. */
static int write_or_queue(struct peer *p, const uint8_t *buf, size_t len)
{
	struct peer_msg *m;

	if (p->head == NULL) {
		if (sock_send(p->fd, buf, len) == 0)
			return 0;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
			return -1;
	}
	if (p->queued_bytes + len > PEER_QUEUE_MAX_BYTES)
		return -1;
	if ((m = malloc(sizeof *m + len)) == NULL)
		return -1;
	m->next = NULL;
	m->len = len;
	memcpy(m->data, buf, len);
	if (p->tail)
		p->tail->next = m;
	else
		p->head = m;
	p->tail = m;
	p->queued_bytes += len;
	return 0;
}

int peer_batch_flush(struct peer *p)
{
	const uint8_t *msg;
	size_t n = frame_batch_end(&p->batch, &msg);
	return n == 0 ? 0 : write_or_queue(p, msg, n);
}

int peer_send(struct peer *p, const uint8_t *buf, size_t len)
{
	if (!p->batches || len > PEER_BATCH_BYTES - FRAME_HEADER - FRAME_FIELD_HEADER)
		return peer_batch_flush(p) < 0 ? -1 : write_or_queue(p, buf, len);
	if (p->batch_buf == NULL && (p->batch_buf = malloc(FRAME_MAX)) == NULL)
		return -1;
	if (frame_batch_size(&p->batch) + FRAME_FIELD_HEADER + len > PEER_BATCH_BYTES && peer_batch_flush(p) < 0)
		return -1;
	return frame_batch_add(&p->batch, p->batch_buf, buf, len) != NULL ? 0 : -1;
}

int peer_flush(struct peer *p)
{
	while (p->head) {
		struct peer_msg *m = p->head;
		if (sock_send(p->fd, m->data, m->len) < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) ? 0 : -1;
		p->head = m->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->queued_bytes -= m->len;
		free(m);
	}
	return 0;
}

void peer_close(struct peer *p)
{
	while (p->head) {
		struct peer_msg *m = p->head;
		p->head = m->next;
		free(m);
	}
	p->tail = NULL;
	p->queued_bytes = 0;
	free(p->batch_buf);
	p->batch_buf = NULL;
	p->batch.n = 0;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

int peer_hello(struct peer *p, const uint8_t *buf, size_t len, const char **why)
{
	struct frame f;
	struct frame_field fl;

	if (frame_parse(buf, len, &f, why) < 0)
		return -1;
	if (f.type != FRAME_HELLO)
		return *why = "first frame is not a hello", -1;
	p->role = frame_u32(&f, TAG_ROLE, 0);
	p->platform = frame_u32(&f, TAG_PLATFORM, 0);
	p->pid = frame_u32(&f, TAG_PID, 0);
	if (frame_get(&f, TAG_INSTANCE, &fl) == 0) {
		memcpy(p->instance, fl.val, fl.len);
		p->instance[fl.len] = '\0';
	}
	if (frame_get(&f, TAG_APP, &fl) == 0 && fl.len > 0) {
		memcpy(p->app, fl.val, fl.len);
		p->app[fl.len] = '\0';
	} else {
		strcpy(p->app, "default");
	}
	p->hello_done = 1;
	return 0;
}
