/*
 * uwpx_xmpp_reg (functions xreg_*): the XMPP side of the registry in LMDB — UWPX devices and their WNS channels, the
 * (device, account) links, push nodes with their secrets, and XEP-0050 ad-hoc identities
 * (docs/uwpx.md, docs/xmpp.md "Ad-hoc registration"; layout in docs/registry.md). Every function
 * works inside the caller's transaction, so one request's changes commit (or not) as one. Callers
 * are the router's frame handlers: lengths are checked against the XREG_* limits here, contents
 * (hex, URI rules) were checked by the ingress.
 */
#ifndef XREG_H
#define XREG_H
#include "store.h"
#include <stddef.h>
#include <stdint.h>

#define XREG_DEVICE_LEN 64
#define XREG_URI_MAX 2048
#define XREG_ACCOUNT_MAX 64
#define XREG_NODE_MAX 64
#define XREG_CHANNEL_MAX 40
#define XREG_DOMAIN_MAX 1023
#define XREG_TOKEN_MAX 1024
#define XREG_REASON_MAX 128
#define XREG_IDENTITY_LEN 32
#define XREG_APP_MAX 32
#define XREG_THROTTLE_FIRST_MS 60000	 /* a WNS 406 without X-WNS-CONTINUE-AFTER backs off 60 s, */
#define XREG_THROTTLE_CAP_MS 3600000	 /* doubling per repeat, at most 1 h (docs/senders.md) */
#define XREG_CONTINUE_MAX_MS 86400000ull /* X-WNS-CONTINUE-AFTER beyond this is taken as this */

enum xnode_kind { XNODE_WNS = 1, XNODE_FCM = 2, XNODE_APNS = 3 };

struct xdevice {
	int dead;
	uint32_t version;
	uint64_t dead_ms, throttled_until_ms, created_ms, seen_ms, refreshed_ms;
	uint64_t waiting_job;	/* the one job waiting for the back-off to end (0: none; may have ended since) */
	uint32_t throttles;	/* back-offs started (by a 406) since the channel's last 200 */
	char reason[XREG_REASON_MAX + 1];
	size_t reason_len;
	char uri[XREG_URI_MAX + 1];
	size_t uri_len;
};

struct xnode {
	uint32_t kind; /* enum xnode_kind */
	int dead;      /* fcm/apns: the provider declared the token dead */
	char secret[XREG_NODE_MAX + 1];
	size_t secret_len;
	char domain[XREG_DOMAIN_MAX + 1]; /* bound domain; empty = none */
	size_t domain_len;
	char device_id[XREG_DEVICE_LEN + 1]; /* wns */
	char account[XREG_ACCOUNT_MAX + 1];  /* wns: account_id as received; fcm/apns: account hash */
	size_t account_len;
	char channel[XREG_CHANNEL_MAX + 1]; /* fcm/apns room registrations; empty otherwise */
	size_t channel_len;
	char token[XREG_TOKEN_MAX + 1]; /* fcm/apns */
	size_t token_len;
	unsigned char identity[XREG_IDENTITY_LEN]; /* fcm/apns */
	char app[XREG_APP_MAX + 1]; /* fcm/apns: the registration's app; empty = the platform's default */
	size_t app_len;
};

/* One requested account of set_push_accounts, and what became of it. */
struct xreg_account {
	const char *id;
	size_t len;
	char node[XREG_NODE_MAX + 1];
	char secret[XREG_NODE_MAX + 1];
	int ok;
};

/* Lengths of generated nodes and secrets (router.node_length / secret_length, 15..64). */
struct xreg_lengths {
	size_t node, secret;
};

/* Fills out[0..len) with [0-9A-Za-z], uniform, from libsodium's CSPRNG; out[len] = 0. */
void xreg_random(char *out, size_t len);
/* Cluster mode: from now on xreg_random draws from seed (randombytes_SEEDBYTES bytes), so every
 * router applying the same change draws the same nodes and secrets; NULL: back to random. */
void xreg_random_seed(const unsigned char *seed);

/* Devices. device_id is 64 lowercase hex characters. 1 found, 0 not, -1 store error. */
int xreg_device_get(MDB_txn *txn, const struct store *s, const char *device_id, struct xdevice *d);
/* Creates the device or replaces its channel; clears dead and throttled state (back-off, its
 * count, the waiting job); refreshes it. */
int xreg_set_channel(MDB_txn *txn, const struct store *s, const char *device_id, const char *uri, size_t uri_len,
		     uint64_t now);
/* Records a registration message (last seen and last refreshed = now). 1 done, 0 no device. */
int xreg_device_touch(MDB_txn *txn, const struct store *s, const char *device_id, uint64_t now);
/* A WNS 200 on uri: refreshes the device if its channel is still uri, and ends its run of 406s.
 * 1 done, 0 ignored. */
int xreg_channel_ok(MDB_txn *txn, const struct store *s, const char *device_id, const char *uri, size_t uri_len,
		    uint64_t now);
/* WNS 404/410 on uri: marks the channel dead if the device's channel is still uri. 1 marked,
 * 0 ignored (device gone, channel replaced since, or already dead). Nothing is deleted. */
int xreg_channel_dead(MDB_txn *txn, const struct store *s, const char *device_id, const char *uri, size_t uri_len,
		      const char *reason, size_t reason_len, uint64_t now);
/* The back-off after the n-th 406 in a row (n >= 1) when WNS gave no X-WNS-CONTINUE-AFTER:
 * 60 s, 120 s, 240 s, ... at most 1 h. */
uint64_t xreg_throttle_ms(uint32_t n);
/* A WNS 406 on uri at now; continue_ms is X-WNS-CONTINUE-AFTER (0: absent). A channel not
 * backing off starts a back-off of continue_ms, or else xreg_throttle_ms() of its 406s since its
 * last success. One backing off already (the 406 answers a send made before the back-off was
 * known) keeps it; only a later X-WNS-CONTINUE-AFTER moves its end. d receives the device as
 * stored. 2 back-off started, 1 one was running, 0 ignored (device gone, channel replaced or
 * dead), -1 error. */
int xreg_channel_throttled(MDB_txn *txn, const struct store *s, const char *device_id, const char *uri,
			   size_t uri_len, uint64_t now, uint64_t continue_ms, struct xdevice *d);
/* Whether a job for uri must wait: uri is still d's live channel and it backs off past now. */
int xreg_backing_off(const struct xdevice *d, const char *uri, size_t uri_len, uint64_t now);
/* Records job as the one job waiting for the channel's back-off to end. 1 done, 0 no device. */
int xreg_channel_wait(MDB_txn *txn, const struct store *s, const char *device_id, uint64_t job);
/* Removes a device with its account links and their nodes. 1 removed, 0 unknown. */
/* pushctl import-uwpx: links (device, account) to node with secret, as the UWPX push server had
 * them. 1 stored; 2 already stored with this node and secret; 0 no such device; -2 refused (the
 * link exists with another node or secret, the node belongs to another registration, or a
 * value is empty, too long or not [0-9A-Za-z]); -1 store error. */
int xreg_import_account(MDB_txn *txn, const struct store *s, const char *device_id, const char *acct, size_t acct_len,
			const char *node, size_t node_len, const char *secret, size_t secret_len);
int xreg_device_remove(MDB_txn *txn, const struct store *s, const char *device_id);

/* set_push_accounts: needs a live channel (else 0). Keeps the node and secret of every listed
 * account that has one, creates the others, deletes the device's unlisted accounts; stores
 * version; refreshes the device. 1 done (each a[i].ok, node, secret filled), -1 error. */
int xreg_set_accounts(MDB_txn *txn, const struct store *s, const char *device_id, uint32_t version,
		      struct xreg_account *a, size_t n, const struct xreg_lengths *len, uint64_t now);

/* Nodes. 1 found, 0 not, -1 error. */
int xreg_node_get(MDB_txn *txn, const struct store *s, const char *node, size_t node_len, struct xnode *out);
/* Binds a node to domain (the first accepted publish of a wns node). */
int xreg_node_bind(MDB_txn *txn, const struct store *s, const char *node, size_t node_len, const char *domain,
		   size_t domain_len);
/* A provider declared an fcm/apns node's token dead: marks it if the node still has that token.
 * 1 marked, 0 ignored. */
int xreg_node_token_dead(MDB_txn *txn, const struct store *s, const char *node, size_t node_len, const char *token,
			 size_t token_len);

/* XEP-0050 registration of identity (32 bytes) for kind XNODE_FCM or XNODE_APNS. The same
 * identity again keeps its node and secret and takes the new token, kind, account, channel and
 * domain; the dead mark is cleared. node and secret receive the values (NUL-terminated). */
int xreg_adhoc_register(MDB_txn *txn, const struct store *s, const unsigned char *identity, uint32_t kind,
			const struct xnode *in, const struct xreg_lengths *len, char *node, char *secret);
/* Removes identity's registration if it is of kind. 1 removed, 0 not found, -1 error. */
int xreg_adhoc_unregister(MDB_txn *txn, const struct store *s, const unsigned char *identity, uint32_t kind);

/* Expiry sweep: looks at up to budget devices after *cursor (a device id, "" = from the start,
 * wrapping at the end) and removes those not refreshed since now - expiry_ms. Updates cursor
 * (XREG_DEVICE_LEN + 1 bytes). Returns how many were removed, -1 on error. */
long xreg_expire(MDB_txn *txn, const struct store *s, uint64_t now, uint64_t expiry_ms, size_t budget, char *cursor);

/* Counts for logs and tests. */
void xreg_counts(MDB_txn *txn, const struct store *s, uint64_t *devices, uint64_t *links, uint64_t *nodes,
		 uint64_t *identities);
#endif
