/*
 * router/uwpx_xmpp_handle.c driven directly through handle.c's batch: UWPX channel, accounts and test
 * push; XMPP publish with the right and the wrong secret, to a dead channel and to a channel
 * backing off after a 406 (the newest job waits, older ones are superseded); XEP-0050 ad-hoc
 * register and unregister. Fake ingress and WNS sender on socketpairs.
 */
#include "router_fixture.h"
#include "daemon.h"

#define ING 0
#define WNS 1
#define APNS 2
#define ING2 3 /* a second ingress, which goes away */

#define DEV1 "b5facd81c7ac2efc96d7bf09d33c7aff9e3bea9ebd236db28a074d55437f62cd"
#define DEV2 "1111111111111111111111111111111111111111111111111111111111111111"
#define DEV3 "3333333333333333333333333333333333333333333333333333333333333333"
#define ACC1 "f9d4bb421963be0703134afcff4760790da19bbec398bdbb591014009074db2a"
#define ACC2 "2222222222222222222222222222222222222222222222222222222222222222"
#define URI1 "https://db5p.notify.windows.com/?token=AwYAAAD%2bx9%3d"
#define URI2 "https://wns2-par02p.notify.windows.com/?token=BQYAAAAG_x"

struct node {
	char node[XREG_NODE_MAX + 1], secret[XREG_NODE_MAX + 1];
	uint32_t status;
};

static void channel(uint64_t fid, const char *dev, const char *uri)
{
	struct frame_writer w;
	frame_begin(&w, fx_wbuf, FRAME_UWPX_CHANNEL, fid);
	frame_put_bytes(&w, TAG_DEVICE_ID, dev, strlen(dev));
	frame_put_bytes(&w, TAG_URI, uri, strlen(uri));
	fx_add(ING, &w);
}

static void accounts(uint64_t fid, const char *dev, const char *a1, const char *a2)
{
	struct frame_writer w;
	frame_begin(&w, fx_wbuf, FRAME_UWPX_ACCOUNTS, fid);
	frame_put_bytes(&w, TAG_DEVICE_ID, dev, strlen(dev));
	frame_put_u32(&w, TAG_VERSION, 2);
	frame_put_bytes(&w, TAG_ACCOUNT, a1, strlen(a1));
	if (a2)
		frame_put_bytes(&w, TAG_ACCOUNT, a2, strlen(a2));
	fx_add(ING, &w);
}

static void test_push_from(int slot, uint64_t fid, const char *dev)
{
	struct frame_writer w;
	frame_begin(&w, fx_wbuf, FRAME_UWPX_TEST, fid);
	frame_put_bytes(&w, TAG_DEVICE_ID, dev, strlen(dev));
	fx_add(slot, &w);
}

static void test_push(uint64_t fid, const char *dev)
{
	test_push_from(ING, fid, dev);
}

static void publish(uint64_t fid, const char *node, const char *secret)
{
	struct frame_writer w;
	frame_begin(&w, fx_wbuf, FRAME_XMPP_PUBLISH, fid);
	frame_put_bytes(&w, TAG_NODE, node, strlen(node));
	frame_put_bytes(&w, TAG_SECRET, secret, strlen(secret));
	frame_put_bytes(&w, TAG_DOMAIN, "chat.example", 12);
	frame_put_u32(&w, TAG_MSG_COUNT, 1);
	fx_add(ING, &w);
}

static const unsigned char IDENTITY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
#define ADHOC_ACCOUNT "0123456789abcdef0123456789abcdef01234567"

static void xregister(uint64_t fid, int unregister)
{
	struct frame_writer w;
	frame_begin(&w, fx_wbuf, unregister ? FRAME_XMPP_UNREGISTER : FRAME_XMPP_REGISTER, fid);
	frame_put_u32(&w, TAG_PLATFORM, PLATFORM_IOS);
	frame_put_bytes(&w, TAG_IDENTITY, IDENTITY, sizeof IDENTITY);
	if (!unregister) {
		frame_put_bytes(&w, TAG_TOKEN, "apns-token-1", 12);
		frame_put_bytes(&w, TAG_DOMAIN, "chat.example", 12);
		frame_put_bytes(&w, TAG_ACCOUNT, ADHOC_ACCOUNT, 40);
	}
	fx_add(ING, &w);
}

/* Reads a FRAME_NODES answer to fid into out (at most max entries); returns the entries, -1
 * when the next frame is something else. */
static long nodes(uint64_t fid, struct node *out, size_t max)
{
	static uint8_t buf[FRAME_MAX];
	struct frame f;
	struct frame_field fl;
	size_t pos = 0;
	long n = -1;

	if (!fx_recv(ING, buf, &f) || f.type != FRAME_NODES || f.id != fid)
		return -1;
	while (frame_next(&f, &pos, &fl) == 0) {
		if (fl.tag == TAG_ACCOUNT && (size_t)++n < max)
			memset(&out[n], 0, sizeof out[n]);
		if (n < 0 || (size_t)n >= max)
			continue;
		if (fl.tag == TAG_NODE && fl.len <= XREG_NODE_MAX)
			memcpy(out[n].node, fl.val, fl.len);
		else if (fl.tag == TAG_SECRET && fl.len <= XREG_NODE_MAX)
			memcpy(out[n].secret, fl.val, fl.len);
		else if (fl.tag == TAG_STATUS)
			out[n].status = frame_field_u32(&fl);
	}
	return n + 1;
}

static struct xdevice device(const char *dev, int *found)
{
	struct xdevice d;
	MDB_txn *t;
	memset(&d, 0, sizeof d);
	mdb_txn_begin(R.store.env, NULL, MDB_RDONLY, &t);
	*found = xreg_device_get(t, &R.store, dev, &d);
	mdb_txn_abort(t);
	return d;
}

/* The PUSH frames waiting on the WNS sender: their ids into ids; -1 on another frame. */
static long wns_pushes(uint64_t *ids, size_t max, const char *want_uri)
{
	static uint8_t buf[FRAME_MAX];
	struct frame f;
	struct frame_field t;
	long n = 0;
	while (fx_recv(WNS, buf, &f)) {
		if (f.type != FRAME_PUSH || frame_u32(&f, TAG_KIND, 0) != KIND_WNS ||
		    frame_u32(&f, TAG_PLATFORM, 0) != PLATFORM_WNS || frame_get(&f, TAG_TOKEN, &t) != 0 ||
		    (want_uri && (t.len != strlen(want_uri) || memcmp(t.val, want_uri, t.len) != 0)))
			return -1;
		if ((size_t)n < max)
			ids[n] = f.id;
		n++;
	}
	return n;
}

/* Publishes to node and lets dispatch hand the job to the WNS sender: its job id, 0 when the
 * publish was refused or no single push for uri left. */
static uint64_t publish_sent(uint64_t fid, const struct node *n, const char *uri)
{
	uint64_t ids[8];
	publish(fid, n->node, n->secret);
	router_commit_batch(&R);
	if (fx_reply(ING, fid) != STATUS_OK)
		return 0;
	router_dispatch(&R);
	return wns_pushes(ids, 8, uri) == 1 ? ids[0] : 0;
}

static struct node N1[2];

static void test_uwpx(void)
{
	struct node bad[2];
	uint64_t ids[8];
	struct outbox_job j;
	int found;

	channel(1, DEV1, URI1);
	channel(2, "B5FACD81C7AC2EFC96D7BF09D33C7AFF9E3BEA9EBD236DB28A074D55437F62CD", URI1); /* not lowercase */
	channel(3, DEV2, "https://evil.example.com/?token=x");				  /* outside the allowlist */
	accounts(4, DEV1, ACC1, ACC2);
	accounts(5, DEV2, ACC1, NULL); /* no channel: no device */
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 1) == STATUS_OK, "channel stored");
	CHECK(fx_reply(ING, 2) == STATUS_ERROR, "uppercase device id refused");
	CHECK(fx_reply(ING, 3) == STATUS_ERROR, "channel outside the allowlist refused");
	CHECK(nodes(4, N1, 2) == 2, "accounts answered with two nodes");
	CHECK(N1[0].status == STATUS_OK && N1[1].status == STATUS_OK && strlen(N1[0].node) == 24 &&
		      strlen(N1[0].secret) == 24 && strcmp(N1[0].node, N1[1].node) != 0,
	      "each account its own node and secret of router.node_length");
	CHECK(fx_reply(ING, 5) == STATUS_NOT_FOUND, "accounts for a device without a channel: not found");
	device(DEV2, &found);
	CHECK(found == 0, "no device created by a refused channel");

	/* Accounts again: the same nodes (idempotent) in the order asked. */
	accounts(6, DEV1, ACC2, ACC1);
	router_commit_batch(&R);
	CHECK(nodes(6, bad, 2) == 2 && strcmp(bad[0].node, N1[1].node) == 0 && strcmp(bad[1].node, N1[0].node) == 0,
	      "the same nodes, in request order");

	/* Test push: no answer until WNS answers. */
	test_push(7, DEV1);
	test_push(8, DEV3);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 8) == STATUS_NOT_FOUND, "test push for an unknown device: not found");
	CHECK(fx_drain(ING) == 0, "the test push is not answered yet");
	CHECK(R.nxtests == 1, "one test push waiting");
	router_dispatch(&R);
	CHECK(wns_pushes(ids, 8, URI1) == 1, "the WNS sender got one push for URI1");
	CHECK(fx_job(ids[0], &j) == 1 && (j.flags & OUTBOX_F_TEST) && j.kind == KIND_WNS && j.ref_len == 64 &&
		      memcmp(j.ref, DEV1, 64) == 0,
	      "a test job for DEV1");
	fx_result(WNS, ids[0], OUTCOME_DELIVERED, 0, 200);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 7) == STATUS_OK, "test push answered OK once WNS delivered it");
	CHECK(R.nxtests == 0 && fx_job(ids[0], &j) == 0, "nothing left waiting");
}

static void test_publish(void)
{
	uint64_t ids[8];
	struct outbox_job j;

	publish(10, N1[0].node, N1[0].secret);
	publish(11, N1[0].node, "wrongwrongwrongwrongwron");
	publish(12, "nosuchnodenosuchnodenosu", N1[0].secret);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 10) == STATUS_OK, "publish with the right secret");
	CHECK(fx_reply(ING, 11) == STATUS_FORBIDDEN, "wrong secret: forbidden");
	CHECK(fx_reply(ING, 12) == STATUS_NOT_FOUND, "unknown node: not found");
	CHECK(fx_jobs() == 1, "one job queued (%llu)", (unsigned long long)fx_jobs());
	router_dispatch(&R);
	CHECK(wns_pushes(ids, 8, URI1) == 1, "sent to the WNS sender");
	CHECK(fx_job(ids[0], &j) == 1 && memcmp(j.ref, DEV1, 64) == 0, "a job for DEV1");
	fx_result(WNS, ids[0], OUTCOME_DELIVERED, 0, 200);
	router_commit_batch(&R);
	CHECK(fx_jobs() == 0, "delivered");
}

static void test_throttle(void)
{
	uint64_t ids[8], j1, j2, j3, t0 = now_ms();
	struct outbox_job j;
	struct xdevice d;
	int found;

	CHECK((j1 = publish_sent(20, &N1[0], URI1)) != 0, "published and sent");
	/* WNS answers 406: the channel backs off; the job waits for the end of it. */
	fx_result(WNS, j1, OUTCOME_RETRY, 0, 406);
	router_commit_batch(&R);
	d = device(DEV1, &found);
	CHECK(found == 1 && d.throttled_until_ms >= t0 + XREG_THROTTLE_FIRST_MS && d.waiting_job == j1,
	      "channel backs off 60 s with job 1 waiting");
	CHECK(fx_job(j1, &j) == 1 && j.due_ms == d.throttled_until_ms && j.attempts == 1, "job 1 due at the end of it");

	/* Two more publishes during the back-off: none is sent, the newest waits. */
	publish(21, N1[0].node, N1[0].secret);
	router_commit_batch(&R);
	publish(22, N1[1].node, N1[1].secret);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 21) == STATUS_OK && fx_reply(ING, 22) == STATUS_OK, "both accepted");
	CHECK(fx_job_ids(ids, 8) == 3, "three jobs stored");
	j2 = ids[1];
	j3 = ids[2];
	router_dispatch(&R);
	CHECK(wns_pushes(ids, 8, NULL) == 0, "nothing sent while the channel backs off");
	CHECK(fx_job(j1, &j) == 0 && fx_job(j2, &j) == 0, "jobs 1 and 2 superseded");
	d = device(DEV1, &found);
	CHECK(fx_job(j3, &j) == 1 && j.due_ms == d.throttled_until_ms && d.waiting_job == j3,
	      "job 3 waits for the end of the back-off");
	CHECK(R.outbox_jobs == 1, "outbox count follows (%llu)", (unsigned long long)R.outbox_jobs);

	/* Clear it for what follows. */
	MDB_txn *t;
	mdb_txn_begin(R.store.env, NULL, 0, &t);
	outbox_get(t, &R.store, j3, &j, NULL, NULL);
	outbox_finish(t, &R.store, &j);
	mdb_txn_commit(t);
}

static void test_dead_channel(void)
{
	struct node n2[1];
	uint64_t ids[8], j4, j5;
	struct outbox_job j;
	struct xdevice d;
	int found;

	channel(30, DEV2, URI2);
	accounts(31, DEV2, ACC1, NULL);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 30) == STATUS_OK && nodes(31, n2, 1) == 1, "second device with one node");
	CHECK((j4 = publish_sent(32, &n2[0], URI2)) != 0, "published and sent to URI2");
	/* A second publish, then WNS says the channel is gone (410). */
	publish(33, n2[0].node, n2[0].secret);
	fx_result(WNS, j4, OUTCOME_TOKEN_DEAD, 0, 410);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 33) == STATUS_OK, "accepted before the verdict");
	d = device(DEV2, &found);
	CHECK(found == 1 && d.dead, "channel marked dead, device kept");
	CHECK(fx_job(j4, &j) == 0, "the failed job ended");
	CHECK(fx_job_ids(ids, 8) == 1, "the second job is still queued");
	j5 = ids[0];
	router_dispatch(&R);
	CHECK(wns_pushes(ids, 8, NULL) == 0 && fx_job(j5, &j) == 0, "the queued job for a dead channel is dropped, not sent");
	publish(34, n2[0].node, n2[0].secret);
	test_push(35, DEV2);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 34) == STATUS_UNAVAILABLE, "publish to a dead channel: unavailable");
	CHECK(fx_reply(ING, 35) == STATUS_NOT_FOUND, "test push to a dead channel: not found");
	CHECK(fx_jobs() == 0, "nothing queued");
	/* A new channel revives the device. */
	channel(36, DEV2, URI1);
	publish(37, n2[0].node, n2[0].secret);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 36) == STATUS_OK && fx_reply(ING, 37) == STATUS_OK, "a new channel revives it");
	router_dispatch(&R);
	CHECK(wns_pushes(ids, 8, URI1) == 1, "sent to the new URI");
	fx_result(WNS, ids[0], OUTCOME_DELIVERED, 0, 200);
	router_commit_batch(&R);
}

static void test_adhoc(void)
{
	struct node n[1], again[1];
	static uint8_t buf[FRAME_MAX];
	struct frame f;
	struct frame_field t;

	xregister(40, 0);
	router_commit_batch(&R);
	CHECK(nodes(40, n, 1) == 1 && n[0].status == STATUS_OK && strlen(n[0].node) == 24, "ad-hoc register: one node");
	xregister(41, 0);
	router_commit_batch(&R);
	CHECK(nodes(41, again, 1) == 1 && strcmp(again[0].node, n[0].node) == 0, "registering again: the same node");

	publish(42, n[0].node, n[0].secret);
	publish(43, n[0].node, "wrongwrongwrongwrongwron");
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 42) == STATUS_OK && fx_reply(ING, 43) == STATUS_FORBIDDEN, "publish: right and wrong secret");
	router_dispatch(&R);
	CHECK(fx_recv(APNS, buf, &f) && f.type == FRAME_PUSH && frame_u32(&f, TAG_KIND, 0) == KIND_XMPP &&
		      frame_get(&f, TAG_TOKEN, &t) == 0 && t.len == 12 && memcmp(t.val, "apns-token-1", 12) == 0,
	      "an XMPP job for the APNs sender with the registered token");
	CHECK(frame_get(&f, TAG_DATA, &t) == 0 && memmem(t.val, t.len, ADHOC_ACCOUNT, 40) != NULL,
	      "its data names the account");
	CHECK(wns_pushes(NULL, 0, NULL) == 0, "nothing to the WNS sender");
	fx_result(APNS, f.id, OUTCOME_DELIVERED, 0, 200);
	router_commit_batch(&R);

	xregister(44, 1);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 44) == STATUS_OK, "unregister");
	xregister(45, 1);
	publish(46, n[0].node, n[0].secret);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 45) == STATUS_NOT_FOUND, "unregister again: not found");
	CHECK(fx_reply(ING, 46) == STATUS_NOT_FOUND, "publish to the removed node: not found");
	CHECK(fx_jobs() == 0, "no job left");
}

/* A test push from slot, committed and handed to the WNS sender: its job id (0: not so). */
static uint64_t test_sent(int slot, uint64_t fid, const char *dev)
{
	uint64_t ids[8];
	test_push_from(slot, fid, dev);
	router_commit_batch(&R);
	router_dispatch(&R);
	return wns_pushes(ids, 8, URI2) == 1 ? ids[0] : 0;
}

static void test_push_outcomes(void)
{
	struct outbox_job j;
	uint64_t job, msg, bad;
	MDB_txn *t;

	channel(50, DEV3, URI2);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 50) == STATUS_OK, "third device");

	/* WNS refuses the test push: answered FAILED. */
	CHECK((job = test_sent(ING, 51, DEV3)) != 0, "test push sent");
	fx_result(WNS, job, OUTCOME_MESSAGE_FAILED, 0, 400);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 51) == STATUS_FAILED && R.nxtests == 0, "refused by WNS: FAILED");

	/* The asking ingress goes away: its test push is forgotten, the result still ends the job. */
	fx_peer(ING2, ROLE_INGRESS, 0);
	CHECK((job = test_sent(ING2, 52, DEV3)) != 0 && R.nxtests == 1, "test push from the second ingress");
	fx_disconnect(ING2);
	CHECK(R.nxtests == 0, "forgotten with its ingress");
	fx_result(WNS, job, OUTCOME_DELIVERED, 0, 200);
	router_commit_batch(&R);
	CHECK(fx_job(job, &j) == 0 && fx_drain(ING) == 0, "job ended, nobody answered");

	/* Past the wait, the router stops waiting (the ingress answered at its own deadline). */
	CHECK((job = test_sent(ING, 53, DEV3)) != 0 && R.nxtests == 1, "another test push");
	xtest_expire(&R, mono_ms() + XTEST_WAIT_MS - 1000);
	CHECK(R.nxtests == 1, "still waiting before the deadline");
	xtest_expire(&R, mono_ms() + XTEST_WAIT_MS + 1);
	CHECK(R.nxtests == 0, "no longer after it");
	fx_result(WNS, job, OUTCOME_DELIVERED, 0, 200);
	router_commit_batch(&R);
	CHECK(fx_drain(ING) == 0, "a late outcome answers nothing");

	/* A WNS job whose URI is outside the allowlist (stored by hand) is dropped, never sent. */
	mdb_txn_begin(R.store.env, NULL, 0, &t);
	outbox_add_msg(t, &R.store, "{}", 2, 1, &msg);
	outbox_add_job_ref(t, &R.store, msg, PLATFORM_WNS, KIND_WNS, "https://evil.example.com/x", 26, DEV3, 64, 0,
			   now_ms(), 60000, &bad);
	mdb_txn_commit(t);
	router_rescan(&R);
	router_dispatch(&R);
	CHECK(wns_pushes(NULL, 0, NULL) == 0 && fx_job(bad, &j) == 0, "a URI outside the allowlist is dropped");
}

static void test_sweep(void)
{
	uint64_t later = now_ms() + (uint64_t)CFG.router.device_expiry_s * 1000 + 1000;
	int found;

	CHECK(router_sweep_devices(&R, now_ms()) == 0, "nothing expires today");
	CHECK(router_sweep_devices(&R, later) == 3, "the three devices expire when not refreshed");
	device(DEV1, &found);
	CHECK(found == 0, "DEV1 gone");
	publish(60, N1[0].node, N1[0].secret);
	router_commit_batch(&R);
	CHECK(fx_reply(ING, 60) == STATUS_NOT_FOUND, "its nodes went with it");
}

int main(void)
{
	fx_open();
	CFG.router.outbox_max = 100000;
	CFG.router.max_in_flight = 100;
	fx_peer(ING, ROLE_INGRESS, 0);
	fx_peer(WNS, ROLE_SENDER, PLATFORM_WNS);
	fx_peer(APNS, ROLE_SENDER, PLATFORM_IOS);
	test_uwpx();
	test_publish();
	test_throttle();
	test_dead_channel();
	test_adhoc();
	test_push_outcomes();
	test_sweep();
	fx_close();
	return test_done();
}
