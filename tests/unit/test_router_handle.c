/*
 * router/handle.c driven directly: a batch of frames from fake peers is applied in one group
 * commit on a temporary LMDB, and what the peers receive is read from their sockets.
 */
#include "router_fixture.h"
#include "daemon.h"

#define ING 0	  /* an ingress */
#define IOS 1	  /* an APNs sender */
#define ANDROID 2 /* an FCM sender */

/* At each reply: how many jobs a separate read transaction sees (replies only after commit). */
static uint64_t seen_jobs[64];
static size_t nseen;

static void record_jobs(int slot, const uint8_t *buf, size_t len)
{
	(void)slot;
	(void)buf;
	(void)len;
	if (nseen < 64)
		seen_jobs[nseen++] = fx_jobs();
}

static void test_group_commit(void)
{
	/* One bad request among good ones: the good ones commit, each gets its own answer. */
	fx_register(ING, 1, "alice", "tok-a1", PLATFORM_IOS, NULL, NULL);
	fx_register(ING, 2, "bob", "tok-b1", 99, NULL, NULL); /* no such platform */
	fx_register(ING, 3, "alice", "tok-a2", PLATFORM_ANDROID, NULL, NULL);
	fx_notify(ING, 4, "alice", "aGVsbG8=");
	CHECK(fx_drain(ING) == 0, "nothing answered before the commit");
	nseen = 0;
	fx_on_send = record_jobs;
	router_commit_batch(&R);
	fx_on_send = NULL;
	CHECK(R.nbatch == 0, "batch emptied");
	CHECK(fx_reply(ING, 1) == STATUS_OK, "register ok");
	CHECK(fx_reply(ING, 2) == STATUS_ERROR, "bad platform refused");
	CHECK(fx_reply(ING, 3) == STATUS_OK, "second register ok");
	CHECK(fx_reply(ING, 4) == STATUS_OK, "notify ok");
	CHECK(fx_drain(ING) == 0, "one answer per frame");
	CHECK(nseen == 4 && seen_jobs[0] == 2 && seen_jobs[3] == 2,
	      "every answer left after the batch was on disk (%zu answers, first saw %llu jobs)", nseen,
	      nseen ? (unsigned long long)seen_jobs[0] : 0ULL);
	CHECK(fx_tokens("alice") == 2 && fx_tokens("bob") == 0, "alice has two tokens, bob none");
	CHECK(R.outbox_jobs == 2, "outbox counter mirrors the store (%llu)", (unsigned long long)R.outbox_jobs);
	/* The committed jobs are queued for their platform and known to the cache. */
	int32_t where;
	CHECK(R.ready[PLATFORM_IOS].n == 1 && R.ready[PLATFORM_ANDROID].n == 1, "one ready job per platform");
	CHECK(R.ready[PLATFORM_IOS].n == 1 && held_get(&R.held, R.ready[PLATFORM_IOS].ids[R.ready[PLATFORM_IOS].head], &where) &&
		      where == JOB_READY,
	      "the iOS job is held as ready");
}

static void test_failed_request_changes_nothing(void)
{
	uint64_t before = fx_jobs();
	size_t ready = R.ready[PLATFORM_IOS].n;

	/* The register succeeds, then its second group passes the cap: the whole request must go. */
	R.store.max_groups = 1;
	fx_register(ING, 10, "carol", "tok-c1", PLATFORM_IOS, "g1", "g2");
	fx_register(ING, 11, "dave", "tok-d1", PLATFORM_IOS, "g1", NULL);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 10) == STATUS_LIMIT, "over the groups cap: STATUS_LIMIT");
	CHECK(fx_reply(ING, 11) == STATUS_OK, "the next request in the batch still commits");
	CHECK(fx_tokens("carol") == 0, "the refused register left no token behind");
	CHECK(fx_tokens("dave") == 1, "dave registered");
	CHECK(fx_tokens("g1") == 1, "group g1 has dave only");
	R.store.max_groups = 0;

	/* A notify refused for the outbox bound queues nothing, in LMDB or in memory. */
	CFG.router.outbox_max = (long)before + 1;
	fx_notify(ING, 12, "alice", "eA=="); /* two tokens: one over the bound */
	fx_notify(ING, 13, "dave", "eA==");	     /* one token: fits */
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 12) == STATUS_BUSY, "busy at outbox_max");
	CHECK(fx_reply(ING, 13) == STATUS_OK, "a notify that fits passes");
	CHECK(fx_jobs() == before + 1, "only dave's job was stored (%llu)", (unsigned long long)fx_jobs());
	CHECK(R.ready[PLATFORM_IOS].n == ready + 1, "only dave's job was queued");
	fx_notify(ING, 14, "dave", "eA==");
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 14) == STATUS_BUSY, "the outbox is at its bound now");
	CFG.router.outbox_max = 100000;
}

static void test_caps(void)
{
	R.store.max_tokens = 1;
	fx_register(ING, 20, "erin", "tok-e1", PLATFORM_IOS, NULL, NULL);
	fx_register(ING, 21, "erin", "tok-e2", PLATFORM_ANDROID, NULL, NULL);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 20) == STATUS_OK, "first token");
	CHECK(fx_reply(ING, 21) == STATUS_LIMIT, "a second token over max_tokens_per_id: STATUS_LIMIT");
	CHECK(fx_tokens("erin") == 1, "still one token");
	R.store.max_tokens = 0;

	R.store.max_members = 1;
	fx_subscribe(ING, 22, "club", "erin");
	fx_subscribe(ING, 23, "club", "alice");
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 22) == STATUS_OK, "first member");
	CHECK(fx_reply(ING, 23) == STATUS_LIMIT, "second member over max_group_members: STATUS_LIMIT");
	R.store.max_members = 0;

	/* Map nearly full: registrations and subscriptions wait, notifies go on. */
	R.map_full = 1;
	fx_register(ING, 24, "frank", "tok-f1", PLATFORM_IOS, NULL, NULL);
	fx_subscribe(ING, 25, "club2", "frank");
	fx_notify(ING, 26, "erin", "eA==");
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 24) == STATUS_LIMIT, "register refused with the map full");
	CHECK(fx_reply(ING, 25) == STATUS_LIMIT, "subscribe refused with the map full");
	CHECK(fx_reply(ING, 26) == STATUS_OK, "notify still accepted with the map full");
	CHECK(fx_tokens("frank") == 0, "nothing registered");
	R.map_full = 0;
}

/* Pops every ready job of a platform and marks it in flight on slot, as dispatch would. */
static size_t hand_out(uint32_t platform, int slot, uint64_t *ids, size_t max)
{
	size_t n = 0;
	uint64_t id;
	while (n < max && ring_pop(&R.ready[platform], &id) == 0) {
		held_put(&R.held, id, slot);
		R.peers[slot].in_flight++;
		ids[n++] = id;
	}
	return n;
}

static void test_results(void)
{
	uint64_t ids[16], ios;
	struct outbox_job j;
	uint64_t t0;
	size_t n;

	/* Clean slate: a fresh notify to alice (iOS + Android). */
	while (ring_pop(&R.ready[PLATFORM_IOS], &ios) == 0)
		;
	n = fx_job_ids(ids, 16);
	{
		MDB_txn *t;
		mdb_txn_begin(R.store.env, NULL, 0, &t);
		for (size_t i = 0; i < n; i++)
			if (outbox_get(t, &R.store, ids[i], &j, NULL, NULL) == 1)
				outbox_finish(t, &R.store, &j);
		mdb_txn_commit(t);
	}
	while (ring_pop(&R.ready[PLATFORM_ANDROID], &ios) == 0)
		;
	fx_notify(ING, 30, "alice", "eA==");
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 30) == STATUS_OK, "notify");
	CHECK(hand_out(PLATFORM_IOS, IOS, &ios, 1) == 1, "an iOS job");
	CHECK(hand_out(PLATFORM_ANDROID, ANDROID, ids, 1) == 1, "an Android job");

	/* A result from a sender of another platform changes nothing (second lock). The job is
	 * marked held by that sender here so only handle.c's own check stands in the way. */
	held_put(&R.held, ios, ANDROID);
	fx_result(ANDROID, ios, OUTCOME_TOKEN_DEAD, 0, 0);
	router_commit_batch(&R);
	CHECK(fx_job(ios, &j) == 1, "a foreign platform's result left the job");
	CHECK(fx_tokens("alice") == 2, "and the token");
	CHECK(fx_drain(ANDROID) == 0, "senders get no reply");
	held_put(&R.held, ios, IOS);

	/* Retry: the job stays, with an attempt counted and a due time in the back-off window. */
	CFG.router.backoff_first_ms = 10000;
	CFG.router.backoff_cap_ms = 100000;
	t0 = now_ms();
	fx_result(IOS, ios, OUTCOME_RETRY, 0, 0);
	router_commit_batch(&R);
	CHECK(fx_job(ios, &j) == 1 && j.attempts == 1, "retried job kept with one attempt");
	CHECK(j.due_ms >= t0 + 8000 && j.due_ms <= now_ms() + 12000, "due in 10 s ± 20 %% (in %lld ms)",
	      (long long)(j.due_ms - t0));
	CHECK(!held_get(&R.held, ios, &(int32_t){0}) && R.peers[IOS].in_flight == 0,
	      "no longer in flight on the sender");

	/* The provider's Retry-After wins when longer than the back-off. */
	held_put(&R.held, ios, IOS);
	R.peers[IOS].in_flight = 1;
	t0 = now_ms();
	fx_result(IOS, ios, OUTCOME_RETRY, 50000, 0);
	router_commit_batch(&R);
	CHECK(fx_job(ios, &j) == 1 && j.attempts == 2 && j.due_ms >= t0 + 50000, "Retry-After honoured");

	/* Next try past the job's maximum age: it ends instead. */
	held_put(&R.held, ios, IOS);
	R.peers[IOS].in_flight = 1;
	CFG.router.backoff_first_ms = (long)CFG.router.job_max_age_s * 2000; /* even -20 % is past it */
	CFG.router.backoff_cap_ms = CFG.router.backoff_first_ms;
	fx_result(IOS, ios, OUTCOME_RETRY, 0, 0);
	router_commit_batch(&R);
	CHECK(fx_job(ios, &j) == 0, "a retry past the maximum age ends the job");
	CFG.router.backoff_first_ms = 1000;
	CFG.router.backoff_cap_ms = 60000;

	/* Token dead: job ends, token leaves the registry. */
	fx_result(ANDROID, ids[0], OUTCOME_TOKEN_DEAD, 0, 0);
	router_commit_batch(&R);
	CHECK(fx_job(ids[0], &j) == 0, "dead token's job finished");
	CHECK(fx_tokens("alice") == 1, "the dead token was removed (left %zu)", fx_tokens("alice"));
	CHECK(R.peers[ANDROID].in_flight == 0, "in-flight count back to 0");
}

static void test_delivered_and_stale(void)
{
	uint64_t id, other;
	struct outbox_job j;

	fx_notify(ING, 40, "dave", "eA==");
	fx_notify(ING, 41, "erin", "eA==");
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 40) == STATUS_OK && fx_reply(ING, 41) == STATUS_OK, "two notifies");
	CHECK(hand_out(PLATFORM_IOS, IOS, &id, 1) == 1 && hand_out(PLATFORM_IOS, IOS, &other, 1) == 1, "two iOS jobs");
	fx_result(IOS, id, OUTCOME_DELIVERED, 0, 0);
	router_commit_batch(&R);
	CHECK(fx_job(id, &j) == 0, "delivered job finished");
	CHECK(R.peers[IOS].in_flight == 1, "one job left in flight");
	CHECK(fx_job(other, &j) == 1, "the other job is untouched");

	/* A result for a job held by another connection is not taken (main.c asks dispatch.c). */
	fx_peer(3, ROLE_SENDER, PLATFORM_IOS);
	uint64_t ignored = R.results_ignored;
	CHECK(router_result_held(&R, 3, other) == 0, "a job in flight elsewhere is not taken from slot 3");
	CHECK(router_result_held(&R, 3, 99999) == 0, "nor an unknown job");
	CHECK(R.results_ignored == ignored + 2 && R.peers[3].forged_logged, "both counted as ignored");
	CHECK(router_result_held(&R, IOS, other) == 1, "the holder's result is taken");
	fx_disconnect(3);
}

static void test_suspect_and_corrupt(void)
{
	uint64_t ids[2];
	struct pending *p;

	/* Suspect answers count up to router.failure_threshold, then the token goes. */
	CFG.router.failure_threshold = 2;
	fx_register(ING, 50, "gina", "tok-g1", PLATFORM_ANDROID, NULL, NULL);
	fx_notify(ING, 51, "gina", "eA==");
	fx_notify(ING, 52, "gina", "eA==");
	router_commit_batch(&R);
	CHECK(fx_drain(ING) == 3, "registered, two notifies");
	CHECK(hand_out(PLATFORM_ANDROID, ANDROID, ids, 2) == 2, "two Android jobs");
	fx_result(ANDROID, ids[0], OUTCOME_TOKEN_SUSPECT, 0, 0);
	router_commit_batch(&R);
	CHECK(fx_tokens("gina") == 1, "one suspect answer: the token stays");
	fx_result(ANDROID, ids[1], OUTCOME_TOKEN_SUSPECT, 0, 0);
	router_commit_batch(&R);
	CHECK(fx_tokens("gina") == 0, "the second reaches the threshold: the token goes");

	/* A frame that does not parse is not answered (it has no id to answer) and stops nothing. */
	fx_register(ING, 53, "hank", "tok-h1", PLATFORM_IOS, NULL, NULL);
	p = &R.batch[R.nbatch - 1];
	p->buf[0] ^= 0xff; /* the magic */
	fx_register(ING, 54, "hank", "tok-h2", PLATFORM_IOS, NULL, NULL);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 54) == STATUS_OK && fx_drain(ING) == 0, "only the good frame answered");
	CHECK(fx_tokens("hank") == 1, "and only it applied");
}

int main(void)
{
	fx_open();
	CFG.router.outbox_max = 100000;
	fx_peer(ING, ROLE_INGRESS, 0);
	fx_peer(IOS, ROLE_SENDER, PLATFORM_IOS);
	fx_peer(ANDROID, ROLE_SENDER, PLATFORM_ANDROID);
	test_group_commit();
	test_failed_request_changes_nothing();
	test_caps();
	test_results();
	test_delivered_and_stale();
	test_suspect_and_corrupt();
	fx_close();
	return test_done();
}
