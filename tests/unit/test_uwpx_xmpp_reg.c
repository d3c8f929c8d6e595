/* UWPX / XMPP registry semantics (docs/uwpx.md, docs/senders.md "wns-sender", docs/xmpp.md "Ad-hoc
 * registration") on a real LMDB. */
#include "../../router/outbox.h"
#include "../../router/uwpx_xmpp_reg.h"
#include "frame.h"
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct store S;
static char dir[] = "/tmp/pushpipe-test-xreg-XXXXXX";
static const struct xreg_lengths LEN = {24, 24};

#define DEV1 "b5facd81c7ac2efc96d7bf09d33c7aff9e3bea9ebd236db28a074d55437f62cd"
#define DEV2 "1111111111111111111111111111111111111111111111111111111111111111"
#define ACC1 "f9d4bb421963be0703134afcff4760790da19bbec398bdbb591014009074db2a"
#define ACC2 "2222222222222222222222222222222222222222222222222222222222222222"
#define ACC3 "3333333333333333333333333333333333333333333333333333333333333333"
#define URI1 "https://db5p.notify.windows.com/?token=AwYAAAD%2bx9%3d"
#define URI2 "https://wns2-par02p.notify.windows.com/?token=BQYAAAAG_x"
#define DEV3 "3333333333333333333333333333333333333333333333333333333333333333"

static MDB_txn *begin(void)
{
	MDB_txn *t;
	if (mdb_txn_begin(S.env, NULL, 0, &t) != 0)
		abort();
	return t;
}

static int commit(MDB_txn *t)
{
	return mdb_txn_commit(t) == 0;
}

static int alnum(const char *s, size_t n)
{
	if (strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')))
			return 0;
	return 1;
}

static void acc(struct xreg_account *a, const char *id)
{
	memset(a, 0, sizeof *a);
	a->id = id;
	a->len = strlen(id);
}

/* set_push_accounts in its own committed transaction; returns xreg_set_accounts' answer. */
static int set_accounts(const char *dev, struct xreg_account *a, size_t n, uint64_t now)
{
	MDB_txn *t = begin();
	int rc = xreg_set_accounts(t, &S, dev, 2, a, n, &LEN, now);
	commit(t);
	return rc;
}

static int set_channel(const char *dev, const char *uri, uint64_t now)
{
	MDB_txn *t = begin();
	int rc = xreg_set_channel(t, &S, dev, uri, strlen(uri), now);
	return commit(t) && rc == 0;
}

static int node_exists(const char *node)
{
	struct xnode n;
	MDB_txn *t = begin();
	int rc = xreg_node_get(t, &S, node, strlen(node), &n);
	mdb_txn_abort(t);
	return rc;
}

static struct xdevice device(const char *dev, int *found)
{
	struct xdevice d;
	MDB_txn *t = begin();
	memset(&d, 0, sizeof d);
	*found = xreg_device_get(t, &S, dev, &d);
	mdb_txn_abort(t);
	return d;
}

static void test_random(void)
{
	char a[65], b[65];
	int hist[62] = {0}, all = 1;
	for (int i = 0; i < 2000; i++) {
		xreg_random(a, 64);
		all &= alnum(a, 64);
		for (int k = 0; k < 64; k++) {
			const char *al = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
			hist[strchr(al, a[k]) - al]++;
		}
	}
	CHECK(all, "random values use [0-9A-Za-z] only, at the asked length");
	int lo = 1 << 30, hi = 0;
	for (int k = 0; k < 62; k++) {
		lo = hist[k] < lo ? hist[k] : lo;
		hi = hist[k] > hi ? hist[k] : hi;
	}
	/* 128000 draws, 2064 expected per symbol: every symbol (Z and z included) shows up near it. */
	CHECK(lo > 1700 && hi < 2450, "uniform over the 62 symbols (min %d, max %d)", lo, hi);
	xreg_random(a, 15);
	xreg_random(b, 15);
	CHECK(alnum(a, 15) && strcmp(a, b) != 0, "15-character values differ");
}

static void test_accounts(void)
{
	struct xreg_account a[3], b[3];
	char n1[65], s1[65], n2[65];
	int found;
	struct xdevice d;

	acc(&a[0], ACC1);
	CHECK(set_accounts(DEV1, a, 1, 1000) == 0, "accounts for an unknown device: not found");
	CHECK(set_channel(DEV1, URI1, 1000), "channel stored");
	d = device(DEV1, &found);
	CHECK(found == 1 && !d.dead && strcmp(d.uri, URI1) == 0 && d.created_ms == 1000 && d.refreshed_ms == 1000,
	      "device created live with its URI");

	acc(&a[0], ACC1);
	acc(&a[1], ACC2);
	acc(&a[2], ACC1); /* repeated: same answer as the first */
	CHECK(set_accounts(DEV1, a, 3, 2000) == 1, "two accounts stored");
	CHECK(a[0].ok && a[1].ok && a[2].ok, "all answered success");
	CHECK(alnum(a[0].node, 24) && alnum(a[0].secret, 24) && alnum(a[1].node, 24), "24-character node and secret");
	CHECK(strcmp(a[0].node, a[1].node) != 0 && strcmp(a[0].secret, a[1].secret) != 0, "one node per account");
	CHECK(strcmp(a[2].node, a[0].node) == 0, "a repeated account gets the same node");
	strcpy(n1, a[0].node);
	strcpy(s1, a[0].secret);
	strcpy(n2, a[1].node);
	d = device(DEV1, &found);
	CHECK(d.version == 2 && d.refreshed_ms == 2000, "version stored, device refreshed");

	acc(&b[0], ACC2);
	acc(&b[1], ACC1);
	CHECK(set_accounts(DEV1, b, 2, 3000) == 1, "same accounts again, other order");
	CHECK(strcmp(b[1].node, n1) == 0 && strcmp(b[1].secret, s1) == 0 && strcmp(b[0].node, n2) == 0,
	      "node and secret stable across set_push_accounts");

	acc(&b[0], ACC1);
	acc(&b[1], ACC3);
	CHECK(set_accounts(DEV1, b, 2, 4000) == 1 && strcmp(b[0].node, n1) == 0, "ACC2 left out, ACC3 added");
	CHECK(node_exists(n2) == 0, "the unlisted account's node is deleted");
	CHECK(node_exists(n1) == 1 && node_exists(b[1].node) == 1, "the listed ones exist");
	{
		struct xnode n;
		MDB_txn *t = begin();
		CHECK(xreg_node_get(t, &S, n1, strlen(n1), &n) == 1 && n.kind == XNODE_WNS &&
			      strcmp(n.device_id, DEV1) == 0 && n.account_len == 64 && memcmp(n.account, ACC1, 64) == 0 &&
			      n.domain_len == 0,
		      "wns node record: device, account as received, unbound");
		mdb_txn_abort(t);
	}
	strcpy(n2, b[1].node);
	CHECK(set_accounts(DEV1, NULL, 0, 5000) == 1, "empty list accepted");
	CHECK(node_exists(n1) == 0 && node_exists(n2) == 0, "empty list removes every account");
	CHECK(device(DEV1, &found).refreshed_ms == 5000 && found == 1, "the device stays");
}

static void test_dead_channel(void)
{
	struct xreg_account a[1];
	char node[65], secret[65];
	int found;
	struct xdevice d;
	MDB_txn *t;

	acc(&a[0], ACC1);
	CHECK(set_accounts(DEV1, a, 1, 6000) == 1, "account for the dead-channel test");
	strcpy(node, a[0].node);
	strcpy(secret, a[0].secret);

	t = begin();
	CHECK(xreg_channel_dead(t, &S, DEV1, URI2, strlen(URI2), "410", 3, 7000) == 0,
	      "a dead answer for another URI is ignored");
	CHECK(xreg_channel_dead(t, &S, DEV1, URI1, strlen(URI1), "410", 3, 7000) == 1, "the current URI is marked dead");
	CHECK(xreg_channel_dead(t, &S, DEV1, URI1, strlen(URI1), "410", 3, 7001) == 0, "marked once");
	commit(t);
	d = device(DEV1, &found);
	CHECK(d.dead && d.dead_ms == 7000 && strcmp(d.reason, "410") == 0, "dead state with reason and time");
	CHECK(node_exists(node) == 1, "nothing deleted by a dead channel");
	acc(&a[0], ACC1);
	CHECK(set_accounts(DEV1, a, 1, 8000) == 0, "accounts need a live channel");
	CHECK(device(DEV1, &found).refreshed_ms == 8000, "...but the message still refreshes the device");

	t = begin();
	CHECK(xreg_channel_ok(t, &S, DEV1, URI1, strlen(URI1), 8500) == 0, "a 200 does not refresh a dead channel");
	CHECK(xreg_channel_throttled(t, &S, DEV1, URI1, strlen(URI1), 8600, 0, &d) == 0,
	      "a 406 on a dead channel is ignored");
	commit(t);
	CHECK(set_channel(DEV1, URI2, 9000), "new channel");
	d = device(DEV1, &found);
	CHECK(!d.dead && d.reason_len == 0 && d.throttled_until_ms == 0 && strcmp(d.uri, URI2) == 0 &&
		      d.created_ms == 1000,
	      "channel replaced: revived, throttle cleared, creation kept");
	acc(&a[0], ACC1);
	CHECK(set_accounts(DEV1, a, 1, 9100) == 1 && strcmp(a[0].node, node) == 0 && strcmp(a[0].secret, secret) == 0,
	      "revived device keeps its node and secret");
	t = begin();
	CHECK(xreg_channel_ok(t, &S, DEV1, URI1, strlen(URI1), 9500) == 0, "a 200 on an old URI refreshes nothing");
	CHECK(xreg_channel_ok(t, &S, DEV1, URI2, strlen(URI2), 9600) == 1, "a 200 on the channel refreshes it");
	CHECK(xreg_node_bind(t, &S, node, strlen(node), "example.org", 11) == 1, "bind");
	commit(t);
	CHECK(device(DEV1, &found).refreshed_ms == 9600, "refreshed at the 200");
	{
		struct xnode n;
		t = begin();
		CHECK(xreg_node_get(t, &S, node, strlen(node), &n) == 1 && strcmp(n.domain, "example.org") == 0 &&
			      strcmp(n.secret, secret) == 0,
		      "bound domain stored, secret kept");
		mdb_txn_abort(t);
	}
}

/* A 406 on DEV3's channel uri at now, in its own committed transaction. */
static int throttle(const char *uri, uint64_t now, uint64_t continue_ms, struct xdevice *d)
{
	MDB_txn *t = begin();
	int rc = xreg_channel_throttled(t, &S, DEV3, uri, strlen(uri), now, continue_ms, d);
	commit(t);
	return rc;
}

/* Writes DEV3's record raw: the 48-byte header of before the back-off fields, plus extra bytes. */
static int put_old_record(const char *uri, uint64_t until, size_t extra)
{
	unsigned char b[48 + 256 + 16];
	uint16_t ul = (uint16_t)strlen(uri);
	uint32_t version = 2;
	uint64_t zero = 0, created = 5, seen = 6, refreshed = 7;
	MDB_val k = {XREG_DEVICE_LEN, DEV3}, v = {48 + extra + ul, b};
	MDB_txn *t = begin();

	memset(b, 0, sizeof b);
	memcpy(b + 2, &ul, 2);
	memcpy(b + 4, &version, 4);
	memcpy(b + 8, &zero, 8);
	memcpy(b + 16, &until, 8);
	memcpy(b + 24, &created, 8);
	memcpy(b + 32, &seen, 8);
	memcpy(b + 40, &refreshed, 8);
	memcpy(b + 48 + extra, uri, ul);
	return mdb_put(t, S.udev, &k, &v, 0) == 0 && commit(t);
}

/* docs/senders.md, "Throttled channels": a 406 backs the channel off for X-WNS-CONTINUE-AFTER, or
 * without it 60 s doubling per repeat up to 1 h; the waiting job is kept with the device. */
static void test_throttle(void)
{
	static const uint64_t want_s[] = {60, 120, 240, 480, 960, 1920, 3600, 3600};
	struct xdevice d;
	uint64_t now = 100000, start = 0;
	MDB_txn *t;
	int found, ok = 1;

	for (uint32_t n = 1; n <= 8; n++)
		ok &= xreg_throttle_ms(n) == want_s[n - 1] * 1000;
	CHECK(ok, "406s in a row without X-WNS-CONTINUE-AFTER: 60 s, 120 s, 240 s, ... at most 1 h");
	CHECK(xreg_throttle_ms(0) == 60000 && xreg_throttle_ms(UINT32_MAX) == 3600000, "no overflow at either end");

	CHECK(throttle(URI1, now, 0, &d) == 0, "a 406 for an unknown device is ignored");
	CHECK(set_channel(DEV3, URI1, now), "channel");
	CHECK(throttle(URI2, now, 0, &d) == 0, "a 406 for a URI that is not the channel's is ignored");
	CHECK(throttle(URI1, now, 0, &d) == 2 && d.throttled_until_ms == now + 60000 && d.throttles == 1,
	      "first 406 without the header: 60 s");
	CHECK(throttle(URI1, now + 1000, 0, &d) == 1 && d.throttled_until_ms == now + 60000 && d.throttles == 1,
	      "a 406 during the back-off (to a send made before it) neither doubles nor extends it");
	CHECK(throttle(URI1, now + 2000, 5000, &d) == 1 && d.throttled_until_ms == now + 60000,
	      "nor does an X-WNS-CONTINUE-AFTER ending earlier");
	CHECK(throttle(URI1, now + 3000, 90000, &d) == 1 && d.throttled_until_ms == now + 93000 && d.throttles == 1,
	      "one ending later moves the end");
	CHECK(xreg_backing_off(&d, URI1, strlen(URI1), now + 92999) &&
		      !xreg_backing_off(&d, URI1, strlen(URI1), now + 93000) && !xreg_backing_off(&d, URI2, strlen(URI2), now),
	      "backing off until the end, for the channel's URI only");
	now += 93000;
	CHECK(throttle(URI1, now, 0, &d) == 2 && d.throttled_until_ms == now + 120000 && d.throttles == 2,
	      "the next 406 once the back-off is over: 120 s");
	now = d.throttled_until_ms;
	CHECK(throttle(URI1, now, 0, &d) == 2 && d.throttled_until_ms == now + 240000 && d.throttles == 3,
	      "then 240 s");
	now = d.throttled_until_ms;
	CHECK(throttle(URI1, now, 7000, &d) == 2 && d.throttled_until_ms == now + 7000 && d.throttles == 4,
	      "X-WNS-CONTINUE-AFTER when WNS gives it (the 406 still counts in the run)");
	for (int i = 0; i < 40; i++) {
		now = start = d.throttled_until_ms;
		throttle(URI1, now, 0, &d);
	}
	CHECK(d.throttles == 44 && d.throttled_until_ms - start == 3600000, "at most 1 h, however long the run");
	now = d.throttled_until_ms;
	CHECK(throttle(URI1, now, UINT64_MAX, &d) == 2 && d.throttled_until_ms == now + XREG_CONTINUE_MAX_MS,
	      "an absurd X-WNS-CONTINUE-AFTER is capped, without overflow");

	t = begin();
	CHECK(xreg_channel_ok(t, &S, DEV3, URI1, strlen(URI1), now) == 1, "a 200 on the channel");
	CHECK(xreg_channel_wait(t, &S, DEV3, 42) == 1, "a job waits for the back-off");
	commit(t);
	d = device(DEV3, &found);
	CHECK(d.throttles == 0 && d.waiting_job == 42,
	      "the 200 ended the run; the waiting job is kept with the device");
	now = d.throttled_until_ms;
	CHECK(throttle(URI1, now, 0, &d) == 2 && d.throttled_until_ms == now + 60000 && d.throttles == 1,
	      "after a success the next back-off is 60 s again");
	CHECK(set_channel(DEV3, URI2, now + 1), "new channel");
	d = device(DEV3, &found);
	CHECK(d.throttled_until_ms == 0 && d.throttles == 0 && d.waiting_job == 0 &&
		      !xreg_backing_off(&d, URI2, strlen(URI2), now + 1),
	      "a new channel clears the back-off, its count and the waiting job");

	CHECK(put_old_record(URI2, 777, 0), "a record in the layout of before the back-off fields");
	d = device(DEV3, &found);
	CHECK(found == 1 && d.throttled_until_ms == 777 && d.created_ms == 5 && d.refreshed_ms == 7 && d.version == 2 &&
		      d.waiting_job == 0 && d.throttles == 0 && strcmp(d.uri, URI2) == 0,
	      "reads with no waiting job and no back-off count");
	CHECK(throttle(URI2, 1000, 0, &d) == 2, "a 406 rewrites it");
	d = device(DEV3, &found);
	CHECK(found == 1 && d.throttles == 1 && d.throttled_until_ms == 61000 && d.created_ms == 5,
	      "in the new layout");
	CHECK(put_old_record(URI2, 777, 4), "a record of neither length");
	d = device(DEV3, &found);
	CHECK(found == -1, "is refused, not misread");
	t = begin();
	CHECK(xreg_device_remove(t, &S, DEV3) == 1, "removed");
	commit(t);
}

static void test_adhoc(void)
{
	unsigned char id1[32], id2[32];
	struct xnode in, n;
	char node[65], secret[65], node2[65], secret2[65], node3[65], secret3[65];
	MDB_txn *t;

	memset(id1, 0xa1, 32);
	memset(id2, 0xb2, 32);
	memset(&in, 0, sizeof in);
	strcpy(in.token, "fcm:token-1");
	in.token_len = strlen(in.token);
	strcpy(in.account, "575743d57bd2e395071f9f88adce7f8bba664ea2");
	in.account_len = 40;
	strcpy(in.domain, "example.org");
	in.domain_len = 11;

	t = begin();
	CHECK(xreg_adhoc_register(t, &S, id1, XNODE_FCM, &in, &LEN, node, secret) == 0, "ad-hoc fcm registration");
	CHECK(alnum(node, 24) && alnum(secret, 24), "ad-hoc node and secret");
	CHECK(xreg_node_token_dead(t, &S, node, strlen(node), "fcm:other", 9) == 0, "dead mark for another token ignored");
	CHECK(xreg_node_token_dead(t, &S, node, strlen(node), "fcm:token-1", 11) == 1, "token marked dead");
	CHECK(xreg_node_get(t, &S, node, strlen(node), &n) == 1 && n.dead && n.kind == XNODE_FCM, "node is dead");
	strcpy(in.token, "apns-hex-token");
	in.token_len = strlen(in.token);
	strcpy(in.channel, "30be82eb00f86644993eaeda4c46ecf51c42715c");
	in.channel_len = 40;
	CHECK(xreg_adhoc_register(t, &S, id1, XNODE_APNS, &in, &LEN, node2, secret2) == 0, "same identity again, apns");
	CHECK(strcmp(node, node2) == 0 && strcmp(secret, secret2) == 0, "same identity keeps node and secret");
	CHECK(xreg_node_get(t, &S, node, strlen(node), &n) == 1 && !n.dead && n.kind == XNODE_APNS &&
		      strcmp(n.token, "apns-hex-token") == 0 && strcmp(n.channel, in.channel) == 0 &&
		      strcmp(n.domain, "example.org") == 0 && memcmp(n.identity, id1, 32) == 0,
	      "token and service updated, dead mark cleared, channel and domain stored");
	CHECK(xreg_adhoc_register(t, &S, id2, XNODE_FCM, &in, &LEN, node3, secret3) == 0 && strcmp(node3, node) != 0,
	      "another identity, another node");
	CHECK(xreg_adhoc_unregister(t, &S, id1, XNODE_FCM) == 0, "unregister with the other service: not found");
	CHECK(xreg_adhoc_unregister(t, &S, id1, XNODE_APNS) == 1, "unregister");
	CHECK(xreg_node_get(t, &S, node, strlen(node), &n) == 0, "its node is gone");
	CHECK(xreg_adhoc_unregister(t, &S, id1, XNODE_APNS) == 0, "unregister again: not found");
	CHECK(xreg_node_get(t, &S, node3, strlen(node3), &n) == 1, "the other identity stays");
	commit(t);
}

static void test_expiry(void)
{
	struct xreg_account a[2];
	char cursor[65] = "";
	char n1[65], n2[65];
	uint64_t devs, links, nodes, idents;
	long removed = 0;
	int found;
	MDB_txn *t;

	/* DEV1 was last refreshed at 9600; DEV2 is new at 50000. */
	CHECK(set_channel(DEV2, URI1, 50000), "second device");
	acc(&a[0], ACC1);
	acc(&a[1], ACC2);
	CHECK(set_accounts(DEV2, a, 2, 50000) == 1, "its accounts");
	strcpy(n1, a[0].node);
	strcpy(n2, a[1].node);
	t = begin();
	xreg_counts(t, &S, &devs, &links, &nodes, &idents);
	CHECK(devs == 2 && links == 3 && nodes == 4 && idents == 1, "counts before expiry (%llu %llu %llu %llu)",
	      (unsigned long long)devs, (unsigned long long)links, (unsigned long long)nodes,
	      (unsigned long long)idents);
	/* Budget 1: each pass looks at one device and the cursor walks on, wrapping at the end. */
	for (int pass = 0; pass < 4; pass++) {
		long r = xreg_expire(t, &S, 9600 + 40000, 40000, 1, cursor);
		CHECK(r >= 0, "expiry pass %d", pass);
		removed += r;
	}
	CHECK(removed == 1, "exactly the stale device expired (%ld)", removed);
	xreg_counts(t, &S, &devs, &links, &nodes, &idents);
	CHECK(devs == 1 && links == 2 && nodes == 3 && idents == 1, "its links and nodes went with it");
	CHECK(xreg_node_get(t, &S, n1, strlen(n1), &(struct xnode){0}) == 1, "the fresh device's nodes stay");
	CHECK(xreg_expire(t, &S, 50000 + 39999, 40000, 100, cursor) == 0, "not yet stale: kept");
	CHECK(xreg_device_touch(t, &S, DEV2, 60000) == 1, "touch");
	CHECK(xreg_expire(t, &S, 50000 + 40000, 40000, 100, cursor) == 0, "a touched device is kept");
	CHECK(xreg_expire(t, &S, 60000 + 40000, 40000, 100, cursor) + xreg_expire(t, &S, 100000, 40000, 100, cursor) ==
		      1,
	      "expires at its refresh time plus the expiry");
	xreg_counts(t, &S, &devs, &links, &nodes, &idents);
	CHECK(devs == 0 && links == 0 && nodes == 1, "only the ad-hoc node is left");
	CHECK(xreg_device_touch(t, &S, DEV2, 1) == 0, "touching an unknown device does nothing");
	commit(t);
	(void)device(DEV2, &found);
	CHECK(found == 0, "expired device gone after commit");
}

static void test_uniqueness(void)
{
	/* 15-character nodes for 300 accounts on one device: all distinct, each findable. */
	static struct xreg_account a[300];
	static char ids[300][65];
	struct xreg_lengths shortlen = {15, 15};
	MDB_txn *t;
	int distinct = 1, ok = 1;

	CHECK(set_channel(DEV2, URI2, 70000), "device for the uniqueness test");
	for (int i = 0; i < 300; i++) {
		snprintf(ids[i], sizeof ids[i], "%064d", i);
		acc(&a[i], ids[i]);
	}
	t = begin();
	CHECK(xreg_set_accounts(t, &S, DEV2, 2, a, 300, &shortlen, 70000) == 1, "300 accounts");
	for (int i = 0; i < 300; i++) {
		ok &= a[i].ok && alnum(a[i].node, 15) && alnum(a[i].secret, 15);
		for (int j = 0; j < i; j++)
			distinct &= strcmp(a[i].node, a[j].node) != 0;
	}
	CHECK(ok, "every node and secret 15 characters of [0-9A-Za-z]");
	CHECK(distinct, "every node distinct");
	commit(t);
}

static void test_outbox_ref(void)
{
	MDB_txn *t = begin();
	uint64_t msg, j1, j2;
	struct outbox_job j;
	const void *data;
	size_t dlen;

	CHECK(outbox_add_msg(t, &S, "{}", 2, 2, &msg) == 0, "message");
	CHECK(outbox_add_job_ref(t, &S, msg, PLATFORM_WNS, KIND_WNS, URI1, strlen(URI1), DEV1, 64, OUTBOX_F_TEST, 5, 100,
				 &j1) == 0,
	      "job with a reference");
	CHECK(outbox_add_job(t, &S, msg, PLATFORM_IOS, KIND_BCHAT, "tok", 3, 5, 100, &j2) == 0, "job without one");
	CHECK(outbox_get(t, &S, j1, &j, &data, &dlen) == 1 && j.kind == KIND_WNS && j.platform == PLATFORM_WNS &&
		      strcmp(j.token, URI1) == 0 && strcmp(j.ref, DEV1) == 0 && j.flags == OUTBOX_F_TEST && dlen == 2,
	      "reference, flags and token read back");
	CHECK(outbox_reschedule(t, &S, &j, 50) == 0 && outbox_get(t, &S, j1, &j, NULL, NULL) == 1 &&
		      strcmp(j.ref, DEV1) == 0 && j.attempts == 1,
	      "reference survives a reschedule");
	CHECK(outbox_get(t, &S, j2, &j, NULL, NULL) == 1 && j.ref_len == 0 && j.flags == 0, "Bchat job has none");
	mdb_txn_abort(t);
}

/* pushctl import-uwpx: an account linked to the node and secret it had at the old server. */
static void test_import(void)
{
	const char *dev = "4444444444444444444444444444444444444444444444444444444444444444";
	const char *nodev = "5555555555555555555555555555555555555555555555555555555555555555";
	const char *node = "ImportedNode000000000001", *secret = "ImportedSecret0000000001";
	struct xreg_account a[2];
	struct xnode *n = calloc(1, sizeof *n);
	MDB_txn *t = begin();
	int rc;

#define IMP(d, ac, nd, sc) xreg_import_account(t, &S, d, ac, strlen(ac), nd, strlen(nd), sc, strlen(sc))
	CHECK(IMP(nodev, ACC1, node, secret) == 0, "import: no such device");
	CHECK(xreg_set_channel(t, &S, dev, URI1, strlen(URI1), 1000) == 0, "import: the device from its channel row");
	CHECK(IMP(dev, ACC1, "bad-node", secret) == -2 && IMP(dev, ACC1, node, "") == -2 && IMP(dev, "", node, secret) == -2,
	      "import: a node or secret not of [0-9A-Za-z], or an empty value, is refused");
	CHECK(IMP(dev, ACC1, node, secret) == 1, "import: stored");
	CHECK(xreg_node_get(t, &S, node, strlen(node), n) == 1 && n->kind == XNODE_WNS && n->secret_len == strlen(secret) &&
		      memcmp(n->secret, secret, n->secret_len) == 0 && memcmp(n->device_id, dev, 64) == 0 &&
		      n->account_len == 64 && memcmp(n->account, ACC1, 64) == 0,
	      "import: the node is the device's, with the imported secret");
	CHECK(IMP(dev, ACC1, node, secret) == 2, "import: the same row again is confirmed, nothing changed");
	CHECK(IMP(dev, ACC1, "OtherNode000000000000001", secret) == -2, "import: the account has another node: refused");
	CHECK(IMP(dev, ACC1, node, "OtherSecret0000000000001") == -2, "import: the same node with another secret: refused");
	CHECK(IMP(dev, ACC2, node, secret) == -2, "import: a node of another registration: refused");
#undef IMP
	commit(t);
	/* set_push_accounts afterwards hands out the imported node and secret. */
	acc(&a[0], ACC1);
	acc(&a[1], ACC2);
	rc = set_accounts(dev, a, 2, 2000);
	CHECK(rc == 1 && a[0].ok && strcmp(a[0].node, node) == 0 && strcmp(a[0].secret, secret) == 0 && a[1].ok &&
		      strcmp(a[1].node, node) != 0,
	      "import: set_push_accounts keeps the imported node and secret, a new account gets a new node");
	t = begin();
	CHECK(xreg_device_remove(t, &S, dev) == 1 && xreg_node_get(t, &S, node, strlen(node), n) == 0,
	      "import: the imported device goes with its nodes");
	commit(t);
	free(n);
}

int main(void)
{
	char err[256];
	if (mkdtemp(dir) == NULL || store_open(&S, dir, 64, 0, err, sizeof err) < 0) {
		printf("store: %s\n", err);
		return 1;
	}
	test_random();
	test_accounts();
	test_dead_channel();
	test_throttle();
	test_adhoc();
	test_expiry();
	test_uniqueness();
	test_outbox_ref();
	test_import();
	store_close(&S);
	/* Reopening finds the same data (the sub-databases exist). */
	CHECK(store_open(&S, dir, 64, 1, err, sizeof err) == 0 && S.has_xreg, "read-only reopen sees the databases");
	{
		MDB_txn *t;
		uint64_t d, l, n, i;
		mdb_txn_begin(S.env, NULL, MDB_RDONLY, &t);
		xreg_counts(t, &S, &d, &l, &n, &i);
		CHECK(d == 1 && l == 300 && n == 301, "data survived the reopen");
		mdb_txn_abort(t);
	}
	store_close(&S);
	{
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			printf("could not remove %s\n", dir);
	}
	return test_done();
}
