/*
 * cluster_uwpx_xmpp: UWPX and XMPP registry changes in cluster mode (see cluster_uwpx_xmpp.h and docs/cluster.md
 * "UWPX and XMPP"). On one machine set_push_accounts and an XEP-0050 registration draw their
 * push nodes and secrets from the CSPRNG as they are applied; in cluster mode every router
 * applies every change, so the router that takes the request draws a 32-byte seed from the CSPRNG
 * and carries it in the change (header Pp-Seed); every copy then draws the same nodes and
 * secrets from it. Trusts the seed of a change in PP_REGISTRY (only routers publish there, by
 * the permission table); a malformed one is refused, never replaced by a local draw. Holds
 * nothing.
 */
#include "cluster_uwpx_xmpp.h"
#include "counters.h"
#include "frame.h"
#include "log.h"
#include "router.h"
#include "uwpx_xmpp_reg.h"
#include <sodium.h>
#include <string.h>

int cluster_x_is_change(uint8_t type)
{
	return type == FRAME_UWPX_CHANNEL || type == FRAME_UWPX_ACCOUNTS || type == FRAME_XMPP_REGISTER ||
	       type == FRAME_XMPP_UNREGISTER;
}

static int draws(uint8_t type)
{
	return type == FRAME_UWPX_ACCOUNTS || type == FRAME_XMPP_REGISTER;
}

int cluster_x_seed_change(natsMsg *m, uint8_t type)
{
	unsigned char seed[randombytes_SEEDBYTES];
	char hex[2 * sizeof seed + 1];

	if (!draws(type))
		return 0;
	randombytes_buf(seed, sizeof seed);
	sodium_bin2hex(hex, sizeof hex, seed, sizeof seed);
	sodium_memzero(seed, sizeof seed);
	return natsMsgHeader_Set(m, CLUSTER_H_SEED, hex) == NATS_OK ? 0 : -1;
}

int cluster_x_seed_begin(natsMsg *m, uint8_t type)
{
	unsigned char seed[randombytes_SEEDBYTES];
	const char *v = NULL;
	size_t n = 0;

	if (!draws(type))
		return 0;
	if (natsMsgHeader_Get(m, CLUSTER_H_SEED, &v) != NATS_OK || v == NULL || strlen(v) != 2 * sizeof seed ||
	    sodium_hex2bin(seed, sizeof seed, v, strlen(v), NULL, &n, NULL) != 0 || n != sizeof seed) {
		log_warn("cluster: a %s change without a valid seed; refused", frame_type_name(type));
		return -1;
	}
	xreg_random_seed(seed);
	sodium_memzero(seed, sizeof seed);
	return 0;
}

void cluster_x_seed_end(void)
{
	xreg_random_seed(NULL);
}

/* A WNS or XMPP job's result, applied by every router as a registry change: the device's channel
 * (WNS, ref = device id) or the node's token (XMPP, ref = node) marked dead, as on one machine;
 * devices, accounts and nodes are kept (a new channel or registration revives them). */
void cluster_x_apply_result(struct router *r, MDB_txn *txn, const struct frame *push, const struct frame *res,
			    const char *ref, uint64_t ts)
{
	struct frame_field tok, rs = {0, 0, NULL};
	uint32_t kind = frame_u32(push, TAG_KIND, 0);
	size_t rl = ref ? strlen(ref) : 0;
	char tbuf[32];
	int rc;

	if (frame_u32(res, TAG_OUTCOME, 0) != OUTCOME_TOKEN_DEAD || rl == 0 || frame_get(push, TAG_TOKEN, &tok) != 0)
		return;
	if (kind == KIND_WNS && rl == XREG_DEVICE_LEN) {
		if (frame_get(res, TAG_REASON, &rs) != 0)
			rs.len = 0;
		rc = xreg_channel_dead(txn, &r->store, ref, (const char *)tok.val, tok.len, (const char *)rs.val, rs.len, ts);
		if (rc == 1) {
			counter_add(CTR_WNS_CHANNELS_DEAD, 1);
			log_info("WNS channel %s marked dead (device, accounts and nodes kept)",
				 log_redact((const char *)tok.val, tok.len, tbuf, sizeof tbuf));
		}
	} else if (kind == KIND_XMPP) {
		rc = xreg_node_token_dead(txn, &r->store, ref, rl, (const char *)tok.val, tok.len);
		if (rc == 1)
			log_info("token %s of an XMPP registration is dead",
				 log_redact((const char *)tok.val, tok.len, tbuf, sizeof tbuf));
	}
}
