/* Cluster mode's seeded draws (router/cluster_uwpx_xmpp.c, docs/cluster.md "UWPX and XMPP"): the seed a
 * change carries makes every router draw the same nodes and secrets; without one, draws are
 * random; a change that should carry a seed and does not is refused. */
#include "../../router/cluster_uwpx_xmpp.h"
#include "router_fixture.h"
#include "../../router/uwpx_xmpp_reg.h"
#include "frame.h"
#include "testlib.h"
#include <sodium.h>
#include <string.h>

static natsMsg *msg(void)
{
	natsMsg *m = NULL;
	if (natsMsg_Create(&m, "pp.reg.uwpx-accounts", NULL, "x", 1) != NATS_OK)
		return NULL;
	return m;
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
	if (opened == NATS_OK)
		nats_Close();
	return test_done();
}
