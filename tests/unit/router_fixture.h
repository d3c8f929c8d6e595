/*
 * router_fixture: what the router core's unit tests share — a router on a temporary LMDB with
 * the default configuration, fake peers (one end of a SOCK_SEQPACKET socketpair in the peer
 * table, the test reads the other), frames for the batch, and the loop's edge that main.c
 * holds in the daemon (router_send_frame, router_drop_peer) without epoll.
 * Included by one test program each; everything here is static except that edge.
 */
#ifndef ROUTER_FIXTURE_H
#define ROUTER_FIXTURE_H
#include "../../router/outbox.h"
#include "../../router/registry.h"
#include "../../router/router.h"
#include "../../router/uwpx_xmpp_reg.h"
#include "config.h"
#include "frame.h"
#include "testlib.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define FX_UNUSED __attribute__((unused))

static struct router R;
static struct config CFG;
static char fx_dir[] = "/tmp/pushpipe-test-router-XXXXXX";
static int fx_fd[ROUTER_PEERS]; /* the test's end of each fake peer */

/* Called by router_send_frame before each frame leaves (NULL: nothing). */
static void (*fx_on_send)(int slot, const uint8_t *buf, size_t len);
static int fx_dropped; /* router_drop_peer calls */

int router_send_frame(struct router *r, int slot, uint64_t gen, const uint8_t *buf, size_t len)
{
	struct router_peer *p = &r->peers[slot];
	if (!p->in_use || p->gen != gen)
		return -1;
	if (fx_on_send)
		fx_on_send(slot, buf, len);
	if (peer_send(&p->p, buf, len) < 0) {
		router_drop_peer(r, slot, "reply queue full");
		return -1;
	}
	return 0;
}

void router_drop_peer(struct router *r, int slot, const char *why)
{
	struct router_peer *p = &r->peers[slot];
	(void)why;
	if (!p->in_use)
		return;
	fx_dropped++;
	if (p->p.role == ROLE_SENDER)
		router_sender_gone(r, slot);
	xtest_peer_gone(r, slot);
	peer_close(&p->p);
	p->in_use = 0;
}

static FX_UNUSED void fx_open(void)
{
	char path[300], err[512];
	FILE *f;

	if (mkdtemp(fx_dir) == NULL)
		abort();
	snprintf(path, sizeof path, "%s/config.json", fx_dir);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fputs("{}\n", f);
	fclose(f);
	if (config_load(&CFG, path, err, sizeof err) < 0) {
		fprintf(stderr, "config: %s\n", err);
		abort();
	}
	snprintf(path, sizeof path, "%s/db", fx_dir);
	if (mkdir(path, 0700) < 0 || store_open(&R.store, path, 64, 0, err, sizeof err) < 0) {
		fprintf(stderr, "store: %s\n", err);
		abort();
	}
	R.cfg = &CFG;
	uwpx_uri_rules_from_config(&R.uri_rules, &CFG);
}

static FX_UNUSED void fx_close(void)
{
	char cmd[400];
	for (int i = 0; i < ROUTER_PEERS; i++)
		if (R.peers[i].in_use) {
			peer_close(&R.peers[i].p);
			close(fx_fd[i]);
		}
	store_close(&R.store);
	held_free(&R.held);
	free(R.batch);
	free(R.fresh);
	free(R.fresh_platform);
	config_free(&CFG);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fx_dir);
}

/* A connected peer at slot that has said hello; the test reads what the router sends it. */
static FX_UNUSED void fx_peer(int slot, uint32_t role, uint32_t platform)
{
	int sv[2];
	struct router_peer *p = &R.peers[slot];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	memset(p, 0, sizeof *p);
	peer_init(&p->p, sv[0]);
	p->in_use = 1;
	p->gen = ++R.next_gen;
	p->p.role = role;
	p->p.platform = platform;
	p->p.hello_done = 1;
	strcpy(p->p.app, "default");
	p->lane = role == ROLE_SENDER ? (int)platform : 0; /* the platform's default app */
	snprintf(p->p.instance, sizeof p->p.instance, "t%d", slot);
	fx_fd[slot] = sv[1];
}

/* The test side of a peer going away (the router notices on its next send or read). */
static FX_UNUSED void fx_disconnect(int slot)
{
	router_drop_peer(&R, slot, "disconnected");
	close(fx_fd[slot]);
}

/* The next frame the router sent to slot, parsed into f (buf keeps it): 1, or 0 when none. */
static FX_UNUSED int fx_recv(int slot, uint8_t *buf, struct frame *f)
{
	ssize_t n = recv(fx_fd[slot], buf, FRAME_MAX, 0);
	if (n <= 0)
		return 0;
	return frame_parse(buf, (size_t)n, f, NULL) == 0;
}

/* Frames waiting for slot: counted and thrown away. */
static FX_UNUSED int fx_drain(int slot)
{
	static uint8_t buf[FRAME_MAX];
	struct frame f;
	int n = 0;
	while (fx_recv(slot, buf, &f))
		n++;
	return n;
}

/* The status of the next frame to slot when it is a FRAME_REPLY to id, else -1. */
static FX_UNUSED long fx_reply(int slot, uint64_t id)
{
	static uint8_t buf[FRAME_MAX];
	struct frame f;
	if (!fx_recv(slot, buf, &f) || f.type != FRAME_REPLY || f.id != id)
		return -1;
	return (long)frame_u32(&f, TAG_STATUS, 9999);
}

/* Adds a finished frame from slot to the batch, as main.c's batch_add does. */
static FX_UNUSED void fx_add(int slot, struct frame_writer *w)
{
	long n = frame_end(w);
	struct pending *p;

	if (n < 0)
		abort();
	if (R.nbatch == R.batch_cap) {
		R.batch_cap = R.batch_cap ? R.batch_cap * 2 : 64;
		if ((R.batch = realloc(R.batch, R.batch_cap * sizeof *R.batch)) == NULL)
			abort();
	}
	p = &R.batch[R.nbatch++];
	memset(p, 0, sizeof *p);
	if ((p->buf = malloc((size_t)n)) == NULL)
		abort();
	memcpy(p->buf, w->buf, (size_t)n);
	p->len = (size_t)n;
	p->slot = slot;
	p->gen = R.peers[slot].gen;
	p->platform = R.peers[slot].p.platform;
	p->lane = R.peers[slot].p.role == ROLE_SENDER ? R.peers[slot].lane : 0;
}

static uint8_t fx_wbuf[FRAME_MAX];

static FX_UNUSED void fx_register(int slot, uint64_t fid, const char *id, const char *token, uint32_t device,
				  const char *group1, const char *group2)
{
	struct frame_writer w;
	frame_begin(&w, fx_wbuf, FRAME_REGISTER, fid);
	frame_put_bytes(&w, TAG_ID, id, strlen(id));
	frame_put_bytes(&w, TAG_TOKEN, token, strlen(token));
	frame_put_u32(&w, TAG_DEVICE, device);
	if (group1)
		frame_put_bytes(&w, TAG_GROUP, group1, strlen(group1));
	if (group2)
		frame_put_bytes(&w, TAG_GROUP, group2, strlen(group2));
	fx_add(slot, &w);
}

/* A frame of two byte fields (subscribe, notify). */
static void fx_two(int slot, uint8_t type, uint64_t fid, uint16_t t1, const char *v1, uint16_t t2, const char *v2)
{
	struct frame_writer w;
	frame_begin(&w, fx_wbuf, type, fid);
	frame_put_bytes(&w, t1, v1, strlen(v1));
	frame_put_bytes(&w, t2, v2, strlen(v2));
	fx_add(slot, &w);
}

static FX_UNUSED void fx_subscribe(int slot, uint64_t fid, const char *group, const char *id)
{
	fx_two(slot, FRAME_SUBSCRIBE, fid, TAG_GROUP, group, TAG_ID, id);
}

static FX_UNUSED void fx_notify(int slot, uint64_t fid, const char *to, const char *data)
{
	fx_two(slot, FRAME_NOTIFY, fid, TAG_ID, to, TAG_DATA, data);
}

/* A sender's RESULT for job; status is the provider's HTTP status (0: none). */
static FX_UNUSED void fx_result(int slot, uint64_t job, uint32_t outcome, uint64_t retry_after, uint32_t status)
{
	struct frame_writer w;
	frame_begin(&w, fx_wbuf, FRAME_RESULT, job);
	frame_put_u32(&w, TAG_OUTCOME, outcome);
	if (retry_after)
		frame_put_u64(&w, TAG_RETRY_AFTER, retry_after);
	if (status)
		frame_put_u32(&w, TAG_STATUS, status);
	fx_add(slot, &w);
}

/* Reads one job in its own read transaction: 1 found, 0 gone. */
static FX_UNUSED int fx_job(uint64_t id, struct outbox_job *j)
{
	MDB_txn *t;
	int rc;
	if (mdb_txn_begin(R.store.env, NULL, MDB_RDONLY, &t) != 0)
		abort();
	rc = outbox_get(t, &R.store, id, j, NULL, NULL);
	mdb_txn_abort(t);
	return rc;
}

static FX_UNUSED uint64_t fx_jobs(void)
{
	MDB_txn *t;
	uint64_t n;
	if (mdb_txn_begin(R.store.env, NULL, MDB_RDONLY, &t) != 0)
		abort();
	n = outbox_count(t, &R.store);
	mdb_txn_abort(t);
	return n;
}

static int fx_count_cb(void *arg, const struct registry_token *t)
{
	(void)t;
	(*(size_t *)arg)++;
	return 0;
}

/* Tokens a notify to id would reach, in a read transaction of its own. */
static FX_UNUSED size_t fx_tokens(const char *id)
{
	MDB_txn *t;
	enum registry_target target;
	size_t n = 0;
	if (mdb_txn_begin(R.store.env, NULL, MDB_RDONLY, &t) != 0)
		abort();
	if (registry_resolve(t, &R.store, id, strlen(id), 0, &target, fx_count_cb, &n) < 0)
		n = (size_t)-1;
	mdb_txn_abort(t);
	return n;
}

/* The ids of the jobs in the outbox, in id order, into ids (at most max); returns how many. */
static FX_UNUSED size_t fx_job_ids(uint64_t *ids, size_t max)
{
	size_t n = 0;
	for (uint64_t id = 1; id < 10000 && n < max; id++) {
		struct outbox_job j;
		if (fx_job(id, &j) == 1)
			ids[n++] = id;
	}
	return n;
}
#endif
