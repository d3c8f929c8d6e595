/* Cluster mode's seeded draws (router/cluster_uwpx_xmpp.c, docs/cluster.md "UWPX and XMPP"): the seed a
 * change carries makes every router draw the same nodes and secrets; without one, draws are
 * random; a change that should carry a seed and does not is refused. And the shared WNS channel
 * state as changes apply it to a copy: a 406's back-off and waiting job, newest wins, expiry at
 * once, releases, a 200 ending the run, a test push's touch, the expiry sweep. */
#include "../../router/cluster_uwpx_xmpp.h"
#include "router_fixture.h"
#include "../../router/uwpx_xmpp_reg.h"
#include "frame.h"
#include "testlib.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static natsMsg *msg(void)
{
	natsMsg *m = NULL;
	if (natsMsg_Create(&m, "pp.reg.uwpx-accounts", NULL, "x", 1) != NATS_OK)
		return NULL;
	return m;
}

/* ---- the shared WNS channel state: changes applied to a copy ---- */

static const char XDEV[] = "d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3";
static const char XURI[] = "https://db5p.notify.windows.com/?token=AwYAAAB";

static natsMsg *xmsg(const char *subject, const uint8_t *data, size_t len, uint64_t job, uint64_t acc)
{
	natsMsg *m = NULL;
	char v[48];

	snprintf(v, sizeof v, "%llu.%llu", (unsigned long long)job, (unsigned long long)acc);
	if (natsMsg_Create(&m, subject, NULL, (const char *)data, (int)len) != NATS_OK ||
	    natsMsgHeader_Set(m, "Pp-Ref", XDEV) != NATS_OK || natsMsgHeader_Set(m, CLUSTER_H_JOB, v) != NATS_OK)
		abort();
	return m;
}

static long push_frame(uint8_t *buf, const char *body)
{
	struct frame_writer w;
	frame_begin(&w, buf, FRAME_PUSH, 0);
	frame_put_u32(&w, TAG_PLATFORM, PLATFORM_WNS);
	frame_put_u32(&w, TAG_KIND, KIND_WNS);
	frame_put_bytes(&w, TAG_TOKEN, XURI, strlen(XURI));
	frame_put_bytes(&w, TAG_DATA, body, strlen(body));
	frame_put_u32(&w, TAG_ATTEMPT, 0);
	return frame_end(&w);
}

/* Applies one change in its own transaction, as cluster.c does: a result (PUSH + RESULT) or a
 * pp.reg.x-* change. */
static uint32_t apply(natsMsg *m, const struct frame *push, const struct frame *res, uint64_t seq, uint64_t ts)
{
	MDB_txn *txn;
	uint32_t st = STATUS_OK;

	if (mdb_txn_begin(R.store.env, NULL, 0, &txn) != 0)
		abort();
	if (push)
		cluster_x_apply_result(&R, txn, push, res, m, ts);
	else
		st = cluster_x_apply(&R, txn, m, seq, ts);
	if (mdb_txn_commit(txn) != 0)
		abort();
	natsMsg_Destroy(m);
	return st;
}

/* The job waiting for XDEV's channel (0: none). */
static uint64_t waiting(void)
{
	MDB_txn *txn;
	MDB_dbi dbi;
	char kb[65];
	MDB_val k = {sizeof kb, kb}, v;
	uint64_t job = 0;

	kb[0] = 'w';
	memcpy(kb + 1, XDEV, 64);
	if (mdb_txn_begin(R.store.env, NULL, MDB_RDONLY, &txn) != 0)
		abort();
	if (mdb_dbi_open(txn, "cluster_x", 0, &dbi) == 0 && mdb_get(txn, dbi, &k, &v) == 0)
		memcpy(&job, v.mv_data, 8);
	mdb_txn_abort(txn);
	return job;
}

static struct xdevice dev_now(int *found)
{
	struct xdevice d;
	MDB_txn *txn;

	memset(&d, 0, sizeof d);
	if (mdb_txn_begin(R.store.env, NULL, MDB_RDONLY, &txn) != 0)
		abort();
	*found = xreg_device_get(txn, &R.store, XDEV, &d);
	mdb_txn_abort(txn);
	return d;
}

static void shared_state(void)
{
	static uint8_t pbuf[FRAME_MAX], rbuf[256];
	uint64_t t0 = 1800000000000ull;
	struct frame push, res;
	struct frame_writer w;
	struct xdevice d;
	MDB_txn *txn;
	natsMsg *m;
	long pl, rl;
	int found;

	fx_open();
	CHECK(cluster_x_init(&R) == 0, "the cluster_x table opens");
	if (mdb_txn_begin(R.store.env, NULL, 0, &txn) != 0 ||
	    xreg_set_channel(txn, &R.store, XDEV, XURI, strlen(XURI), t0) < 0 || mdb_txn_commit(txn) != 0)
		abort();

	/* A 406 with X-WNS-CONTINUE-AFTER 4 s on job 10: the channel backs off, job 10 waits. */
	pl = push_frame(pbuf, "{\"message_count\":1}");
	frame_begin(&w, rbuf, FRAME_RESULT, 0);
	frame_put_u32(&w, TAG_OUTCOME, OUTCOME_RETRY);
	frame_put_u64(&w, TAG_RETRY_AFTER, 4000);
	frame_put_u32(&w, TAG_STATUS, 406);
	rl = frame_end(&w);
	CHECK(pl > 0 && rl > 0 && frame_parse(pbuf, (size_t)pl, &push, NULL) == 0 &&
		      frame_parse(rbuf, (size_t)rl, &res, NULL) == 0,
	      "a WNS job and its 406");
	apply(xmsg("pp.reg.result", pbuf, (size_t)pl, 10, t0), &push, &res, 2, t0 + 100);
	d = dev_now(&found);
	CHECK(found == 1 && d.throttled_until_ms == t0 + 4100 && d.throttles == 1 && waiting() == 10,
	      "a 406 backs the channel off for X-WNS-CONTINUE-AFTER and its job waits (%llu, %u, %llu)",
	      (unsigned long long)(d.throttled_until_ms - t0), d.throttles, (unsigned long long)waiting());

	/* Newer jobs replace the waiting one; an older one is superseded itself. */
	pl = push_frame(pbuf, "{\"message_count\":3}");
	CHECK(apply(xmsg("pp.reg.x-hold", pbuf, (size_t)pl, 12, t0 + 200), NULL, NULL, 3, t0 + 200) == STATUS_OK &&
		      waiting() == 12,
	      "a newer job held during the back-off replaces the waiting one");
	pl = push_frame(pbuf, "{\"message_count\":2}");
	apply(xmsg("pp.reg.x-hold", pbuf, (size_t)pl, 11, t0 + 300), NULL, NULL, 4, t0 + 300);
	CHECK(waiting() == 12, "an older job does not replace a newer waiting one");
	apply(xmsg("pp.reg.x-hold", pbuf, (size_t)pl, 13, t0 - 3600 * 1000), NULL, NULL, 5, t0 + 400);
	CHECK(waiting() == 12, "a job that would pass its maximum age before the back-off ends expires at once");

	/* A release for an earlier back-off than the current one keeps the job; the right one ends it. */
	m = xmsg("pp.reg.x-release", (const uint8_t *)"", 0, 12, 0);
	natsMsgHeader_Set(m, CLUSTER_H_UNTIL, "1");
	apply(m, NULL, NULL, 6, t0 + 4200);
	CHECK(waiting() == 12, "a release made before a newer back-off began keeps the job waiting");
	m = xmsg("pp.reg.x-release", (const uint8_t *)"", 0, 11, 0);
	snprintf((char *)pbuf, 32, "%llu", (unsigned long long)(t0 + 4100));
	natsMsgHeader_Set(m, CLUSTER_H_UNTIL, (const char *)pbuf);
	apply(m, NULL, NULL, 7, t0 + 4200);
	CHECK(waiting() == 12, "a release of another job changes nothing");
	m = xmsg("pp.reg.x-release", (const uint8_t *)"", 0, 12, 0);
	natsMsgHeader_Set(m, CLUSTER_H_UNTIL, (const char *)pbuf);
	apply(m, NULL, NULL, 8, t0 + 4200);
	CHECK(waiting() == 0, "the release after the back-off ends the wait");

	/* The 200 of the released job ends the run of 406s and refreshes the device. */
	pl = push_frame(pbuf, "{\"message_count\":3}");
	frame_begin(&w, rbuf, FRAME_RESULT, 0);
	frame_put_u32(&w, TAG_OUTCOME, OUTCOME_DELIVERED);
	frame_put_u32(&w, TAG_STATUS, 200);
	rl = frame_end(&w);
	frame_parse(pbuf, (size_t)pl, &push, NULL);
	frame_parse(rbuf, (size_t)rl, &res, NULL);
	apply(xmsg("pp.reg.result", pbuf, (size_t)pl, 12, t0), &push, &res, 9, t0 + 5000);
	d = dev_now(&found);
	CHECK(found == 1 && d.throttles == 0 && d.refreshed_ms == t0 + 5000, "a 200 ends the run of 406s and refreshes");

	/* A test push's touch; the sweep, at the change's time, with the copy's cursor. */
	apply(xmsg("pp.reg.x-touch", (const uint8_t *)"", 0, 14, 0), NULL, NULL, 10, t0 + 6000);
	d = dev_now(&found);
	CHECK(found == 1 && d.seen_ms == t0 + 6000 && d.refreshed_ms == t0 + 6000, "a touch refreshes last seen");
	apply(xmsg("pp.reg.x-expire", (const uint8_t *)"", 0, 1, 0), NULL, NULL, 11, t0 + 6000 + 60 * 86400 * 1000ull - 1);
	dev_now(&found);
	CHECK(found == 1, "the sweep keeps a device refreshed within device_expiry_s");
	apply(xmsg("pp.reg.x-expire", (const uint8_t *)"", 0, 1, 0), NULL, NULL, 12, t0 + 6000 + 60 * 86400 * 1000ull);
	dev_now(&found);
	CHECK(found == 0, "the sweep removes it at device_expiry_s");
	CHECK(apply(xmsg("pp.reg.x-bogus", (const uint8_t *)"", 0, 1, 0), NULL, NULL, 13, t0) == STATUS_OK,
	      "an unknown change is skipped");
	fx_close();
}

int main(void)
{
	char a[65], b[65], c[65], d[65];
	natsStatus opened = nats_Open(-1); /* libnats' message pool and its collector */
	natsMsg *m = msg(), *m2 = msg(), *bare = msg();
	const char *hv = NULL;
	int letters[62] = {0}, spread = 1;

	if (sodium_init() < 0 || m == NULL || m2 == NULL || bare == NULL)
		return 1;
	CHECK(cluster_x_is_change(FRAME_UWPX_CHANNEL) && cluster_x_is_change(FRAME_UWPX_ACCOUNTS) &&
		      cluster_x_is_change(FRAME_XMPP_REGISTER) && cluster_x_is_change(FRAME_XMPP_UNREGISTER),
	      "UWPX channel/accounts and XMPP register/unregister are registry changes");
	CHECK(!cluster_x_is_change(FRAME_UWPX_TEST) && !cluster_x_is_change(FRAME_XMPP_PUBLISH) &&
		      !cluster_x_is_change(FRAME_NOTIFY),
	      "test pushes, publishes and notifies are not");

	CHECK(cluster_x_seed_change(m, FRAME_UWPX_ACCOUNTS) == 0 && natsMsgHeader_Get(m, CLUSTER_H_SEED, &hv) == NATS_OK &&
		      hv && strlen(hv) == 64,
	      "a set_push_accounts change carries a 64-hex seed");
	CHECK(cluster_x_seed_change(m2, FRAME_UWPX_CHANNEL) == 0 &&
		      natsMsgHeader_Get(m2, CLUSTER_H_SEED, &hv) == NATS_NOT_FOUND,
	      "a set_channel_uri change draws nothing and carries no seed");
	natsMsg_Destroy(m2);
	m2 = msg();
	CHECK(cluster_x_seed_change(m2, FRAME_XMPP_REGISTER) == 0, "an XMPP registration gets a seed of its own");

	/* The same change applied twice (two routers) draws the same; another change differs. */
	CHECK(cluster_x_seed_begin(m, FRAME_UWPX_ACCOUNTS) == 0, "seed taken");
	xreg_random(a, 24);
	xreg_random(b, 64);
	cluster_x_seed_end();
	CHECK(cluster_x_seed_begin(m, FRAME_UWPX_ACCOUNTS) == 0, "seed taken again");
	xreg_random(c, 24);
	xreg_random(d, 64);
	cluster_x_seed_end();
	CHECK(strcmp(a, c) == 0 && strcmp(b, d) == 0, "the same seed draws the same node and secret (%s)", a);
	CHECK(strcmp(a, b) != 0 && strncmp(a, b, 24) != 0, "successive draws differ");
	CHECK(cluster_x_seed_begin(m2, FRAME_XMPP_REGISTER) == 0, "the other change's seed");
	xreg_random(c, 24);
	cluster_x_seed_end();
	CHECK(strcmp(a, c) != 0, "another seed draws another node");

	/* After the change: random again, not the seed's stream. */
	xreg_random(c, 24);
	xreg_random(d, 24);
	CHECK(strcmp(c, d) != 0 && strcmp(c, a) != 0, "without a seed the draws are random");

	/* Seeded draws stay in the alphabet and use all of it (no bias check, just coverage). */
	CHECK(cluster_x_seed_begin(m, FRAME_UWPX_ACCOUNTS) == 0, "seed taken for coverage");
	for (int i = 0; i < 200; i++) {
		xreg_random(d, 64);
		for (int k = 0; k < 64; k++) {
			char ch = d[k];
			int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'A' && ch <= 'Z' ? ch - 'A' + 10
				: ch >= 'a' && ch <= 'z' ? ch - 'a' + 36 : -1;
			if (v < 0)
				spread = 0;
			else
				letters[v]++;
		}
	}
	cluster_x_seed_end();
	for (int i = 0; i < 62; i++)
		if (letters[i] < 100) /* 12 800 draws: about 206 each */
			spread = 0;
	CHECK(spread, "seeded draws are [0-9A-Za-z] and cover the alphabet evenly enough (beyond the first pool)");

	CHECK(cluster_x_seed_begin(bare, FRAME_UWPX_ACCOUNTS) == -1, "a set_push_accounts change without a seed is refused");
	CHECK(natsMsgHeader_Set(bare, CLUSTER_H_SEED, "zz") == NATS_OK &&
		      cluster_x_seed_begin(bare, FRAME_XMPP_REGISTER) == -1,
	      "a malformed seed is refused");
	CHECK(cluster_x_seed_begin(bare, FRAME_UWPX_CHANNEL) == 0, "a change that draws nothing needs no seed");
	natsMsg_Destroy(m);
	natsMsg_Destroy(m2);
	natsMsg_Destroy(bare);
	shared_state();
	if (opened == NATS_OK)
		nats_Close();
	return test_done();
}
