/*
 * router/dispatch.c driven directly: jobs stored through handle.c's batch are handed to fake
 * senders, whose sockets show the PUSH frames; disconnects, rescans, back-off and expiry.
 */
#include "router_fixture.h"
#include "daemon.h"

#define ING 0
#define IOS_A 1
#define IOS_B 2
#define ANDROID 3

/* PUSH frames waiting on a sender's socket: how many, and (when ids) their job ids. */
static size_t pushes(int slot, uint64_t *ids, uint32_t want_platform, int *wrong)
{
	static uint8_t buf[FRAME_MAX];
	struct frame f;
	size_t n = 0;
	while (fx_recv(slot, buf, &f)) {
		if (f.type != FRAME_PUSH || frame_u32(&f, TAG_PLATFORM, 0) != want_platform)
			(*wrong)++;
		if (ids)
			ids[n] = f.id;
		n++;
	}
	return n;
}

static void notify(uint64_t fid, const char *to)
{
	fx_notify(ING, fid, to, "ZGF0YQ==");
	router_commit_batch(&R);
	if (fx_reply(ING, fid) != STATUS_OK)
		CHECK(0, "notify %llu not accepted", (unsigned long long)fid);
}

static void test_platform_and_bounds(void)
{
	uint64_t a[16], b[16], c[16];
	int wrong = 0;
	size_t na, nb, nc;
	static uint8_t buf[FRAME_MAX];
	struct frame f;
	struct frame_field tok;

	fx_register(ING, 1, "alice", "tok-ios", PLATFORM_IOS, NULL, NULL);
	fx_register(ING, 2, "alice", "tok-android", PLATFORM_ANDROID, NULL, NULL);
	router_commit_batch(&R);
	CHECK(fx_drain(ING) == 2, "registered");

	/* No sender connected: nothing leaves, the jobs wait. */
	notify(3, "alice");
	router_dispatch(&R);
	CHECK(R.ready[PLATFORM_IOS].n == 1 && R.ready[PLATFORM_ANDROID].n == 1, "jobs wait for a sender");

	fx_peer(IOS_A, ROLE_SENDER, PLATFORM_IOS);
	fx_peer(ANDROID, ROLE_SENDER, PLATFORM_ANDROID);
	router_dispatch(&R);
	CHECK(fx_recv(IOS_A, buf, &f) && f.type == FRAME_PUSH, "the APNs sender got a PUSH");
	CHECK(frame_u32(&f, TAG_PLATFORM, 0) == PLATFORM_IOS && frame_u32(&f, TAG_KIND, 0) == KIND_BCHAT &&
		      frame_get(&f, TAG_TOKEN, &tok) == 0 && tok.len == 7 && memcmp(tok.val, "tok-ios", 7) == 0 &&
		      frame_u32(&f, TAG_ATTEMPT, 99) == 0,
	      "with the iOS token, kind and attempt 0");
	CHECK(frame_get(&f, TAG_DATA, &tok) == 0 && tok.len == 8 && memcmp(tok.val, "ZGF0YQ==", 8) == 0,
	      "and the notify's data");
	CHECK(fx_recv(ANDROID, buf, &f) && f.type == FRAME_PUSH && frame_get(&f, TAG_TOKEN, &tok) == 0 &&
		      tok.len == 11 && memcmp(tok.val, "tok-android", 11) == 0,
	      "the FCM sender got the Android job");
	CHECK(fx_drain(IOS_A) == 0 && fx_drain(ANDROID) == 0 && fx_drain(ING) == 0, "one job each, none to the ingress");
	CHECK(R.peers[IOS_A].in_flight == 1 && R.peers[ANDROID].in_flight == 1, "in flight counted per instance");

	/* Bounded in flight per instance, least loaded first. */
	CFG.router.max_in_flight = 3;
	fx_peer(IOS_B, ROLE_SENDER, PLATFORM_IOS);
	for (uint64_t i = 0; i < 6; i++)
		fx_register(ING, 10 + i, "bob", (char[]){'b', 't', (char)('0' + i), 0}, PLATFORM_IOS, NULL, NULL);
	router_commit_batch(&R);
	CHECK(fx_drain(ING) == 6, "bob has six tokens");
	notify(20, "bob");
	router_dispatch(&R);
	na = pushes(IOS_A, a, PLATFORM_IOS, &wrong);
	nb = pushes(IOS_B, b, PLATFORM_IOS, &wrong);
	nc = pushes(ANDROID, c, PLATFORM_ANDROID, &wrong);
	CHECK(na == 2 && nb == 3 && nc == 0 && wrong == 0, "A gets 2 (had 1), B gets 3, Android none (%zu %zu %zu)", na, nb,
	      nc);
	CHECK(R.peers[IOS_A].in_flight == 3 && R.peers[IOS_B].in_flight == 3, "both at max_in_flight");
	CHECK(R.ready[PLATFORM_IOS].n == 1, "the sixth job waits");
	int32_t where;
	CHECK(held_get(&R.held, b[0], &where) && where == IOS_B, "a job is held by the sender it went to");
	CFG.router.max_in_flight = 100;
}

static void test_requeue_on_disconnect(void)
{
	uint64_t ids[16];
	int wrong = 0;
	size_t n;
	int32_t where;

	/* B holds 3 jobs; it goes away: they come back through a rescan and go to A. */
	uint64_t b_jobs[3], k = 0;
	for (size_t i = 0; i < R.held.cap && k < 3; i++)
		if (R.held.keys[i] != 0 && R.held.keys[i] != UINT64_MAX && R.held.vals[i] == IOS_B)
			b_jobs[k++] = R.held.keys[i];
	CHECK(k == 3, "B holds three jobs");
	fx_disconnect(IOS_B);
	CHECK(R.spilled == 1, "a rescan is asked for");
	CHECK(!held_get(&R.held, b_jobs[0], &where), "B's jobs are forgotten by the cache");
	router_rescan(&R);
	CHECK(R.ready[PLATFORM_IOS].n == 4, "B's three and the waiting one are ready (%zu)", R.ready[PLATFORM_IOS].n);
	CHECK(held_get(&R.held, b_jobs[1], &where) && where == JOB_READY, "held as ready again");
	router_dispatch(&R);
	n = pushes(IOS_A, ids, PLATFORM_IOS, &wrong);
	CHECK(n == 4 && wrong == 0, "A gets them all (%zu)", n);
	CHECK(R.peers[IOS_A].in_flight == 7, "A has 7 in flight");

	/* A rescan does not hand out a second copy of a job that is in flight. */
	R.spilled = 1;
	router_rescan(&R);
	CHECK(R.ready[PLATFORM_IOS].n == 0, "nothing in flight is queued twice");

	/* A result from B's successor for a job A holds is not taken. */
	fx_peer(IOS_B, ROLE_SENDER, PLATFORM_IOS);
	CHECK(router_result_held(&R, IOS_B, ids[0]) == 0 && router_result_held(&R, IOS_A, ids[0]) == 1,
	      "results only from the holder");
}

/* Answers every job in flight on slot with outcome (retry_after ms). */
static size_t answer_all(int slot, uint32_t outcome, uint64_t retry_after)
{
	size_t n = 0;
	for (size_t i = 0; i < R.held.cap; i++)
		if (R.held.keys[i] != 0 && R.held.keys[i] != UINT64_MAX && R.held.vals[i] == slot) {
			fx_result(slot, R.held.keys[i], outcome, retry_after, 0);
			n++;
		}
	router_commit_batch(&R);
	return n;
}

static void test_backoff_and_expiry(void)
{
	uint64_t ids[16];
	int wrong = 0;
	struct outbox_job j;
	uint64_t t0 = now_ms();
	MDB_txn *t;

	CHECK(answer_all(IOS_A, OUTCOME_DELIVERED, 0) == 7, "A delivers seven");
	CHECK(R.peers[IOS_A].in_flight == 0, "A idle");
	CHECK(answer_all(ANDROID, OUTCOME_RETRY, 0) == 1, "Android asks to retry");
	CHECK(fx_job_ids(ids, 16) == 1, "only the Android job is left (%zu)", fx_job_ids(ids, 16));
	uint64_t aj = ids[0];
	CHECK(fx_job(aj, &j) == 1 && j.platform == PLATFORM_ANDROID && j.attempts == 1 && j.due_ms >= t0 + 48000,
	      "stored with one attempt and its due time (in %lld ms)", (long long)(j.due_ms - t0));

	/* Not due yet: a rescan leaves it in LMDB, nothing is sent. */
	R.spilled = 1;
	router_rescan(&R);
	router_dispatch(&R);
	CHECK(pushes(ANDROID, NULL, PLATFORM_ANDROID, &wrong) == 0, "not sent before its due time");

	/* Due now: the rescan queues it and the PUSH says attempt 1. */
	mdb_txn_begin(R.store.env, NULL, 0, &t);
	outbox_get(t, &R.store, aj, &j, NULL, NULL);
	outbox_defer(t, &R.store, &j, now_ms() - 1);
	mdb_txn_commit(t);
	router_rescan(&R);
	router_dispatch(&R);
	{
		static uint8_t buf[FRAME_MAX];
		struct frame f;
		CHECK(fx_recv(ANDROID, buf, &f) && f.type == FRAME_PUSH && f.id == aj && frame_u32(&f, TAG_ATTEMPT, 0) == 1,
		      "sent once due, as attempt 1");
	}

	/* Expiry: a job past its maximum age is ended by the rescan, never sent. */
	uint64_t msg, old;
	mdb_txn_begin(R.store.env, NULL, 0, &t);
	outbox_add_msg(t, &R.store, "x", 1, 1, &msg);
	outbox_add_job(t, &R.store, msg, PLATFORM_IOS, KIND_BCHAT, "tok-ios", 7, now_ms() - 20000, 10000, &old);
	mdb_txn_commit(t);
	uint64_t before = fx_jobs();
	router_rescan(&R);
	router_dispatch(&R);
	CHECK(fx_job(old, &j) == 0, "expired job removed");
	CHECK(fx_jobs() == before - 1 && R.outbox_jobs == before - 1, "outbox count follows");
	CHECK(pushes(IOS_A, NULL, PLATFORM_IOS, &wrong) == 0, "the expired job was never sent");
}

int main(void)
{
	fx_open();
	CFG.router.outbox_max = 100000;
	CFG.router.max_in_flight = 100;
	CFG.router.backoff_first_ms = 60000;
	CFG.router.backoff_cap_ms = 60000;
	fx_peer(ING, ROLE_INGRESS, 0);
	test_platform_and_bounds();
	test_requeue_on_disconnect();
	test_backoff_and_expiry();
	fx_close();
	return test_done();
}
