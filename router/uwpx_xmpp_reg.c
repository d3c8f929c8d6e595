/*
 * uwpx_xmpp_reg (functions xreg_*): UWPX devices, account links, push nodes and ad-hoc identities in LMDB (see uwpx_xmpp_reg.h,
 * docs/registry.md). Values are little fixed headers followed by the variable fields:
 *
 *   udev    device id (64 hex) → dead u8, reason length u8, URI length u16, version u32,
 *           dead-at u64, throttled-until u64, created u64, last-seen u64, last-refreshed u64
 *           (ms), waiting job u64, back-offs u32, reason, URI (records written before the
 *           last two fields have the 48-byte header and read as 0 for them)
 *   ulink   device id ‖ account id → node
 *   xnodes  node → kind u8, dead u8, secret length u8, account length u8, channel length u8,
 *           app length u8, domain length u16, token length u16, then the device id (64, wns) or
 *           the identity (32, fcm/apns), secret, account, channel, domain, token, app (fcm/apns:
 *           the registration's app; none = the platform's default app, as every node written
 *           before registrations named their app)
 *   xident  identity (32 bytes) → node
 *
 * Integers are host order, as in the outbox. Every record read back is length-checked.
 */
#include "uwpx_xmpp_reg.h"
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define DEV_HDR 60
#define DEV_HDR_OLD 48 /* before the waiting job and the back-off count */
#define NODE_HDR 10
#define NODE_TRIES 32

static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Seeded draws (cluster mode, docs/cluster.md): a pool of bytes from the seed, refilled from a
 * hash of the seed and a counter; a byte >= 248 is skipped (no modulo bias). */
static struct {
	int on;
	unsigned char seed[randombytes_SEEDBYTES];
	unsigned char pool[512];
	size_t used;
	uint64_t refills;
} S;

static void seed_refill(void)
{
	unsigned char k[randombytes_SEEDBYTES];
	crypto_generichash(k, sizeof k, (const unsigned char *)&S.refills, sizeof S.refills, S.seed, sizeof S.seed);
	randombytes_buf_deterministic(S.pool, sizeof S.pool, k);
	sodium_memzero(k, sizeof k);
	S.refills++;
	S.used = 0;
}

void xreg_random_seed(const unsigned char *seed)
{
	if (seed == NULL) {
		sodium_memzero(&S, sizeof S);
		return;
	}
	memcpy(S.seed, seed, sizeof S.seed);
	S.on = 1;
	S.refills = 0;
	seed_refill();
}

static uint32_t seeded62(void)
{
	for (;;) {
		unsigned char b;
		if (S.used == sizeof S.pool)
			seed_refill();
		b = S.pool[S.used++];
		if (b < 248)
			return b % 62;
	}
}

void xreg_random(char *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		/* rejection sampling inside either way: no modulo bias */
		out[i] = alphabet[S.on ? seeded62() : randombytes_uniform(62)];
	out[len] = '\0';
}

static int put_ok(int rc)
{
	return rc == 0 ? 0 : -1;
}

static int del_ok(int rc)
{
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

/* ---- devices ---- */

static int dev_decode(const MDB_val *v, struct xdevice *d)
{
	const unsigned char *b = v->mv_data;
	size_t hdr;
	uint16_t ul;

	if (v->mv_size < DEV_HDR_OLD)
		return -1;
	memcpy(&ul, b + 2, 2);
	if (b[1] > XREG_REASON_MAX || ul > XREG_URI_MAX || v->mv_size < DEV_HDR_OLD + (size_t)b[1] + ul)
		return -1;
	hdr = v->mv_size - b[1] - ul;
	if (hdr != DEV_HDR && hdr != DEV_HDR_OLD)
		return -1;
	d->dead = b[0] != 0;
	d->reason_len = b[1];
	d->uri_len = ul;
	memcpy(&d->version, b + 4, 4);
	memcpy(&d->dead_ms, b + 8, 8);
	memcpy(&d->throttled_until_ms, b + 16, 8);
	memcpy(&d->created_ms, b + 24, 8);
	memcpy(&d->seen_ms, b + 32, 8);
	memcpy(&d->refreshed_ms, b + 40, 8);
	d->waiting_job = 0;
	d->throttles = 0;
	if (hdr == DEV_HDR) {
		memcpy(&d->waiting_job, b + 48, 8);
		memcpy(&d->throttles, b + 56, 4);
	}
	memcpy(d->reason, b + hdr, d->reason_len);
	d->reason[d->reason_len] = '\0';
	memcpy(d->uri, b + hdr + d->reason_len, d->uri_len);
	d->uri[d->uri_len] = '\0';
	return 0;
}

static int dev_put(MDB_txn *txn, const struct store *s, const char *device_id, const struct xdevice *d)
{
	MDB_val k = {XREG_DEVICE_LEN, (void *)device_id}, v = {DEV_HDR + d->reason_len + d->uri_len, NULL};
	unsigned char *b;
	uint16_t ul = (uint16_t)d->uri_len;

	if (d->reason_len > XREG_REASON_MAX || d->uri_len > XREG_URI_MAX ||
	    mdb_put(txn, s->udev, &k, &v, MDB_RESERVE) != 0)
		return -1;
	b = v.mv_data;
	b[0] = (unsigned char)(d->dead != 0);
	b[1] = (unsigned char)d->reason_len;
	memcpy(b + 2, &ul, 2);
	memcpy(b + 4, &d->version, 4);
	memcpy(b + 8, &d->dead_ms, 8);
	memcpy(b + 16, &d->throttled_until_ms, 8);
	memcpy(b + 24, &d->created_ms, 8);
	memcpy(b + 32, &d->seen_ms, 8);
	memcpy(b + 40, &d->refreshed_ms, 8);
	memcpy(b + 48, &d->waiting_job, 8);
	memcpy(b + 56, &d->throttles, 4);
	memcpy(b + DEV_HDR, d->reason, d->reason_len);
	memcpy(b + DEV_HDR + d->reason_len, d->uri, d->uri_len);
	return 0;
}

int xreg_device_get(MDB_txn *txn, const struct store *s, const char *device_id, struct xdevice *d)
{
	MDB_val k = {XREG_DEVICE_LEN, (void *)device_id}, v;
	int rc = mdb_get(txn, s->udev, &k, &v);
	if (rc != 0)
		return rc == MDB_NOTFOUND ? 0 : -1;
	return dev_decode(&v, d) < 0 ? -1 : 1;
}

int xreg_set_channel(MDB_txn *txn, const struct store *s, const char *device_id, const char *uri, size_t uri_len,
		     uint64_t now)
{
	struct xdevice *d = calloc(1, sizeof *d);
	int rc;

	if (d == NULL || uri_len == 0 || uri_len > XREG_URI_MAX) {
		free(d);
		return -1;
	}
	rc = xreg_device_get(txn, s, device_id, d);
	if (rc < 0) {
		free(d);
		return -1;
	}
	if (rc == 0) {
		memset(d, 0, sizeof *d);
		d->created_ms = now;
	}
	d->dead = 0;
	d->dead_ms = 0;
	d->reason_len = 0;
	d->throttled_until_ms = 0;
	d->waiting_job = 0;
	d->throttles = 0;
	d->seen_ms = d->refreshed_ms = now;
	memcpy(d->uri, uri, uri_len);
	d->uri_len = uri_len;
	rc = dev_put(txn, s, device_id, d);
	free(d);
	return rc;
}

/* Reads the device, lets fn change it, writes it back. 1 done, 0 no device (or fn said 0). */
static int dev_update(MDB_txn *txn, const struct store *s, const char *device_id,
		      int (*fn)(struct xdevice *d, const void *arg), const void *arg)
{
	struct xdevice *d = malloc(sizeof *d);
	int rc;

	if (d == NULL)
		return -1;
	rc = xreg_device_get(txn, s, device_id, d);
	if (rc == 1 && (rc = fn(d, arg)) == 1 && dev_put(txn, s, device_id, d) < 0)
		rc = -1;
	free(d);
	return rc;
}

struct dev_event {
	uint64_t now;
	const char *uri, *reason;
	size_t uri_len, reason_len;
	uint32_t version;
};

/* Whether uri is still d's channel and that channel is alive: WNS answers about any other
 * change nothing. */
static int live_channel(const struct xdevice *d, const char *uri, size_t uri_len)
{
	return !d->dead && d->uri_len == uri_len && memcmp(d->uri, uri, uri_len) == 0;
}

static int ev_touch(struct xdevice *d, const void *arg)
{
	const struct dev_event *e = arg;
	d->seen_ms = d->refreshed_ms = e->now;
	return 1;
}

static int ev_ok(struct xdevice *d, const void *arg)
{
	const struct dev_event *e = arg;
	if (!live_channel(d, e->uri, e->uri_len))
		return 0;
	d->refreshed_ms = e->now;
	d->throttles = 0; /* a success ends a run of 406s: the next back-off starts at 60 s again */
	return 1;
}

static int ev_dead(struct xdevice *d, const void *arg)
{
	const struct dev_event *e = arg;
	if (!live_channel(d, e->uri, e->uri_len))
		return 0;
	d->dead = 1;
	d->dead_ms = e->now;
	d->reason_len = e->reason_len > XREG_REASON_MAX ? XREG_REASON_MAX : e->reason_len;
	memcpy(d->reason, e->reason, d->reason_len);
	return 1;
}

static int ev_wait(struct xdevice *d, const void *arg)
{
	const uint64_t *job = arg;
	d->waiting_job = *job;
	return 1;
}

static int ev_accounts(struct xdevice *d, const void *arg)
{
	const struct dev_event *e = arg;
	d->version = e->version;
	d->seen_ms = d->refreshed_ms = e->now;
	return 1;
}

int xreg_device_touch(MDB_txn *txn, const struct store *s, const char *device_id, uint64_t now)
{
	struct dev_event e = {.now = now};
	return dev_update(txn, s, device_id, ev_touch, &e);
}

int xreg_channel_ok(MDB_txn *txn, const struct store *s, const char *device_id, const char *uri, size_t uri_len,
		    uint64_t now)
{
	struct dev_event e = {.now = now, .uri = uri, .uri_len = uri_len};
	return dev_update(txn, s, device_id, ev_ok, &e);
}

int xreg_channel_dead(MDB_txn *txn, const struct store *s, const char *device_id, const char *uri, size_t uri_len,
		      const char *reason, size_t reason_len, uint64_t now)
{
	struct dev_event e = {.now = now, .uri = uri, .uri_len = uri_len, .reason = reason, .reason_len = reason_len};
	return dev_update(txn, s, device_id, ev_dead, &e);
}

uint64_t xreg_throttle_ms(uint32_t n)
{
	uint64_t ms = XREG_THROTTLE_FIRST_MS;

	for (uint32_t i = 1; i < n && ms < XREG_THROTTLE_CAP_MS; i++)
		ms *= 2;
	return ms < XREG_THROTTLE_CAP_MS ? ms : XREG_THROTTLE_CAP_MS;
}

int xreg_channel_throttled(MDB_txn *txn, const struct store *s, const char *device_id, const char *uri,
			   size_t uri_len, uint64_t now, uint64_t continue_ms, struct xdevice *d)
{
	int rc = xreg_device_get(txn, s, device_id, d), started;

	if (rc <= 0)
		return rc;
	if (!live_channel(d, uri, uri_len))
		return 0;
	if (continue_ms > XREG_CONTINUE_MAX_MS)
		continue_ms = XREG_CONTINUE_MAX_MS; /* the sender caps it too; a frame is no reason to overflow */
	started = d->throttled_until_ms <= now;
	if (started) {
		if (d->throttles < UINT32_MAX)
			d->throttles++;
		d->throttled_until_ms = now + (continue_ms ? continue_ms : xreg_throttle_ms(d->throttles));
	} else if (continue_ms && now + continue_ms > d->throttled_until_ms) {
		d->throttled_until_ms = now + continue_ms;
	} else {
		return 1; /* a send made before the back-off was known: it changes nothing */
	}
	return dev_put(txn, s, device_id, d) < 0 ? -1 : started ? 2 : 1;
}

int xreg_backing_off(const struct xdevice *d, const char *uri, size_t uri_len, uint64_t now)
{
	return d->throttled_until_ms > now && live_channel(d, uri, uri_len);
}

int xreg_channel_wait(MDB_txn *txn, const struct store *s, const char *device_id, uint64_t job)
{
	return dev_update(txn, s, device_id, ev_wait, &job);
}

/* ---- nodes ---- */

static int node_decode(const MDB_val *v, struct xnode *n)
{
	const unsigned char *b = v->mv_data;
	uint16_t dl, tl;
	size_t fixed, pos;

	if (v->mv_size < NODE_HDR)
		return -1;
	memcpy(&dl, b + 6, 2);
	memcpy(&tl, b + 8, 2);
	memset(n, 0, sizeof *n);
	n->kind = b[0];
	n->dead = b[1] != 0;
	n->secret_len = b[2];
	n->account_len = b[3];
	n->channel_len = b[4];
	n->domain_len = dl;
	n->token_len = tl;
	n->app_len = b[5];
	fixed = n->kind == XNODE_WNS ? XREG_DEVICE_LEN : XREG_IDENTITY_LEN;
	if (n->kind < XNODE_WNS || n->kind > XNODE_APNS || n->secret_len > XREG_NODE_MAX ||
	    n->account_len > XREG_ACCOUNT_MAX || n->channel_len > XREG_CHANNEL_MAX || dl > XREG_DOMAIN_MAX ||
	    tl > XREG_TOKEN_MAX || n->app_len > XREG_APP_MAX ||
	    v->mv_size != NODE_HDR + fixed + n->secret_len + n->account_len + n->channel_len + dl + tl + n->app_len)
		return -1;
	pos = NODE_HDR;
	if (n->kind == XNODE_WNS)
		memcpy(n->device_id, b + pos, XREG_DEVICE_LEN);
	else
		memcpy(n->identity, b + pos, XREG_IDENTITY_LEN);
	pos += fixed;
	memcpy(n->secret, b + pos, n->secret_len);
	pos += n->secret_len;
	memcpy(n->account, b + pos, n->account_len);
	pos += n->account_len;
	memcpy(n->channel, b + pos, n->channel_len);
	pos += n->channel_len;
	memcpy(n->domain, b + pos, dl);
	pos += dl;
	memcpy(n->token, b + pos, tl);
	pos += tl;
	memcpy(n->app, b + pos, n->app_len);
	return 0;
}

static int node_put(MDB_txn *txn, const struct store *s, const char *node, size_t node_len, const struct xnode *n)
{
	size_t fixed = n->kind == XNODE_WNS ? XREG_DEVICE_LEN : XREG_IDENTITY_LEN;
	MDB_val k = {node_len, (void *)node},
		v = {NODE_HDR + fixed + n->secret_len + n->account_len + n->channel_len + n->domain_len + n->token_len +
			     n->app_len,
		     NULL};
	uint16_t dl = (uint16_t)n->domain_len, tl = (uint16_t)n->token_len;
	unsigned char *b;

	if (node_len == 0 || node_len > XREG_NODE_MAX || n->secret_len > XREG_NODE_MAX ||
	    n->account_len > XREG_ACCOUNT_MAX || n->channel_len > XREG_CHANNEL_MAX ||
	    n->domain_len > XREG_DOMAIN_MAX || n->token_len > XREG_TOKEN_MAX || n->app_len > XREG_APP_MAX ||
	    mdb_put(txn, s->xnodes, &k, &v, MDB_RESERVE) != 0)
		return -1;
	b = v.mv_data;
	b[0] = (unsigned char)n->kind;
	b[1] = (unsigned char)(n->dead != 0);
	b[2] = (unsigned char)n->secret_len;
	b[3] = (unsigned char)n->account_len;
	b[4] = (unsigned char)n->channel_len;
	b[5] = (unsigned char)n->app_len;
	memcpy(b + 6, &dl, 2);
	memcpy(b + 8, &tl, 2);
	b += NODE_HDR;
	memcpy(b, n->kind == XNODE_WNS ? (const void *)n->device_id : (const void *)n->identity, fixed);
	b += fixed;
	memcpy(b, n->secret, n->secret_len);
	b += n->secret_len;
	memcpy(b, n->account, n->account_len);
	b += n->account_len;
	memcpy(b, n->channel, n->channel_len);
	b += n->channel_len;
	memcpy(b, n->domain, n->domain_len);
	b += n->domain_len;
	memcpy(b, n->token, n->token_len);
	b += n->token_len;
	memcpy(b, n->app, n->app_len);
	return 0;
}

int xreg_node_get(MDB_txn *txn, const struct store *s, const char *node, size_t node_len, struct xnode *out)
{
	MDB_val k = {node_len, (void *)node}, v;
	int rc;

	if (node_len == 0 || node_len > XREG_NODE_MAX)
		return 0;
	if ((rc = mdb_get(txn, s->xnodes, &k, &v)) != 0)
		return rc == MDB_NOTFOUND ? 0 : -1;
	return node_decode(&v, out) < 0 ? -1 : 1;
}

static int node_del(MDB_txn *txn, const struct store *s, const char *node, size_t node_len)
{
	MDB_val k = {node_len, (void *)node};
	return del_ok(mdb_del(txn, s->xnodes, &k, NULL));
}

/* A fresh node name no other registration uses, and a secret. */
static int node_new(MDB_txn *txn, const struct store *s, const struct xreg_lengths *len, char *node, char *secret)
{
	for (int i = 0; i < NODE_TRIES; i++) {
		MDB_val k, v;
		int rc;
		xreg_random(node, len->node);
		k.mv_size = len->node;
		k.mv_data = node;
		rc = mdb_get(txn, s->xnodes, &k, &v);
		if (rc == MDB_NOTFOUND) {
			xreg_random(secret, len->secret);
			return 0;
		}
		if (rc != 0)
			return -1;
	}
	return -1;
}

int xreg_node_bind(MDB_txn *txn, const struct store *s, const char *node, size_t node_len, const char *domain,
		   size_t domain_len)
{
	struct xnode *n = malloc(sizeof *n);
	int rc;

	if (n == NULL || domain_len > XREG_DOMAIN_MAX) {
		free(n);
		return -1;
	}
	rc = xreg_node_get(txn, s, node, node_len, n);
	if (rc == 1) {
		memcpy(n->domain, domain, domain_len);
		n->domain_len = domain_len;
		rc = node_put(txn, s, node, node_len, n) < 0 ? -1 : 1;
	}
	free(n);
	return rc;
}

int xreg_node_token_dead(MDB_txn *txn, const struct store *s, const char *node, size_t node_len, const char *token,
			 size_t token_len)
{
	struct xnode *n = malloc(sizeof *n);
	int rc;

	if (n == NULL)
		return -1;
	rc = xreg_node_get(txn, s, node, node_len, n);
	if (rc == 1) {
		if (n->kind == XNODE_WNS || n->dead || n->token_len != token_len || memcmp(n->token, token, token_len) != 0)
			rc = 0;
		else {
			n->dead = 1;
			rc = node_put(txn, s, node, node_len, n) < 0 ? -1 : 1;
		}
	}
	free(n);
	return rc;
}

/* ---- account links ---- */

static size_t link_key(unsigned char *k, const char *device_id, const char *acct, size_t acct_len)
{
	memcpy(k, device_id, XREG_DEVICE_LEN);
	memcpy(k + XREG_DEVICE_LEN, acct, acct_len);
	return XREG_DEVICE_LEN + acct_len;
}

/* The device's links: fn(arg, account, len, node, len) for each; stops when fn returns non-zero. */
static int links_walk(MDB_txn *txn, const struct store *s, const char *device_id,
		      int (*fn)(void *arg, const char *acct, size_t alen, const char *node, size_t nlen), void *arg)
{
	MDB_cursor *c;
	MDB_val k = {XREG_DEVICE_LEN, (void *)device_id}, v;
	int rc;

	if (mdb_cursor_open(txn, s->ulink, &c) != 0)
		return -1;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < XREG_DEVICE_LEN || memcmp(k.mv_data, device_id, XREG_DEVICE_LEN) != 0)
			break;
		if (fn(arg, (const char *)k.mv_data + XREG_DEVICE_LEN, k.mv_size - XREG_DEVICE_LEN, v.mv_data,
		       v.mv_size) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

/* Links picked for removal, copied out of the cursor walk. */
struct doomed {
	const struct xreg_account *keep; /* NULL: remove every link */
	size_t nkeep;
	struct {
		char acct[XREG_ACCOUNT_MAX];
		char node[XREG_NODE_MAX];
		size_t alen, nlen;
	} *v;
	size_t n, cap;
	int failed;
};

static int listed(const struct doomed *d, const char *acct, size_t alen)
{
	for (size_t i = 0; i < d->nkeep; i++)
		if (d->keep[i].len == alen && memcmp(d->keep[i].id, acct, alen) == 0)
			return 1;
	return 0;
}

static int pick_doomed(void *arg, const char *acct, size_t alen, const char *node, size_t nlen)
{
	struct doomed *d = arg;
	if (alen > XREG_ACCOUNT_MAX || nlen > XREG_NODE_MAX || (d->keep && listed(d, acct, alen)))
		return 0;
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 16;
		void *p = realloc(d->v, nc * sizeof *d->v);
		if (p == NULL) {
			d->failed = 1;
			return 1;
		}
		d->v = p;
		d->cap = nc;
	}
	memcpy(d->v[d->n].acct, acct, alen);
	memcpy(d->v[d->n].node, node, nlen);
	d->v[d->n].alen = alen;
	d->v[d->n].nlen = nlen;
	d->n++;
	return 0;
}

/* Removes the device's links not listed in keep (all when keep is NULL), with their nodes. */
static int links_prune(MDB_txn *txn, const struct store *s, const char *device_id, const struct xreg_account *keep,
		       size_t nkeep)
{
	struct doomed d = {.keep = keep, .nkeep = nkeep};
	unsigned char key[XREG_DEVICE_LEN + XREG_ACCOUNT_MAX];
	int rc = links_walk(txn, s, device_id, pick_doomed, &d);

	if (d.failed)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < d.n; i++) {
		MDB_val k = {link_key(key, device_id, d.v[i].acct, d.v[i].alen), key};
		if (node_del(txn, s, d.v[i].node, d.v[i].nlen) < 0 || del_ok(mdb_del(txn, s->ulink, &k, NULL)) < 0)
			rc = -1;
	}
	free(d.v);
	return rc;
}

/* Fills a with the node and secret of its link, creating both when there is none. */
static int account_resolve(MDB_txn *txn, const struct store *s, const char *device_id, struct xreg_account *a,
			   const struct xreg_lengths *len)
{
	unsigned char key[XREG_DEVICE_LEN + XREG_ACCOUNT_MAX];
	MDB_val k = {link_key(key, device_id, a->id, a->len), key}, v;
	struct xnode *n = calloc(1, sizeof *n);
	int rc = -1;

	if (n == NULL)
		return -1;
	if (mdb_get(txn, s->ulink, &k, &v) == 0 && v.mv_size <= XREG_NODE_MAX) {
		memcpy(a->node, v.mv_data, v.mv_size);
		a->node[v.mv_size] = '\0';
		if (xreg_node_get(txn, s, a->node, v.mv_size, n) == 1 && n->kind == XNODE_WNS) {
			memcpy(a->secret, n->secret, n->secret_len);
			a->secret[n->secret_len] = '\0';
			a->ok = 1;
			free(n);
			return 0;
		}
		memset(n, 0, sizeof *n); /* a link without its node: start again */
	}
	if (node_new(txn, s, len, a->node, a->secret) == 0) {
		n->kind = XNODE_WNS;
		memcpy(n->device_id, device_id, XREG_DEVICE_LEN);
		memcpy(n->account, a->id, a->len);
		n->account_len = a->len;
		memcpy(n->secret, a->secret, len->secret);
		n->secret_len = len->secret;
		v.mv_size = len->node;
		v.mv_data = a->node;
		if (node_put(txn, s, a->node, len->node, n) == 0 && put_ok(mdb_put(txn, s->ulink, &k, &v, 0)) == 0) {
			a->ok = 1;
			rc = 0;
		}
	}
	free(n);
	return rc;
}

int xreg_set_accounts(MDB_txn *txn, const struct store *s, const char *device_id, uint32_t version,
		      struct xreg_account *a, size_t n, const struct xreg_lengths *len, uint64_t now)
{
	struct xdevice *d = malloc(sizeof *d);
	struct dev_event e = {.now = now, .version = version};
	int rc;

	if (d == NULL)
		return -1;
	rc = xreg_device_get(txn, s, device_id, d);
	if (rc == 1 && d->dead)
		rc = xreg_device_touch(txn, s, device_id, now) < 0 ? -1 : 0;
	free(d);
	if (rc != 1)
		return rc;
	for (size_t i = 0; i < n; i++)
		a[i].ok = 0;
	if (links_prune(txn, s, device_id, a, n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t j;
		if (a[i].len == 0 || a[i].len > XREG_ACCOUNT_MAX)
			continue; /* answered success:false */
		for (j = 0; j < i && !(a[j].len == a[i].len && memcmp(a[j].id, a[i].id, a[i].len) == 0); j++)
			;
		if (j < i) {
			memcpy(a[i].node, a[j].node, sizeof a[i].node);
			memcpy(a[i].secret, a[j].secret, sizeof a[i].secret);
			a[i].ok = a[j].ok;
		} else if (account_resolve(txn, s, device_id, &a[i], len) < 0) {
			return -1;
		}
	}
	return dev_update(txn, s, device_id, ev_accounts, &e) < 0 ? -1 : 1;
}

int xreg_device_remove(MDB_txn *txn, const struct store *s, const char *device_id)
{
	MDB_val k = {XREG_DEVICE_LEN, (void *)device_id};
	int rc;

	if (links_prune(txn, s, device_id, NULL, 0) < 0)
		return -1;
	rc = mdb_del(txn, s->udev, &k, NULL);
	return rc == 0 ? 1 : rc == MDB_NOTFOUND ? 0 : -1;
}

/* ---- ad-hoc identities ---- */

int xreg_adhoc_register(MDB_txn *txn, const struct store *s, const unsigned char *identity, uint32_t kind,
			const struct xnode *in, const struct xreg_lengths *len, char *node, char *secret)
{
	MDB_val k = {XREG_IDENTITY_LEN, (void *)identity}, v;
	struct xnode *n = malloc(sizeof *n);
	size_t nlen = 0;
	int rc = -1;

	if (n == NULL || (kind != XNODE_FCM && kind != XNODE_APNS)) {
		free(n);
		return -1;
	}
	if (mdb_get(txn, s->xident, &k, &v) == 0 && v.mv_size <= XREG_NODE_MAX) {
		memcpy(node, v.mv_data, v.mv_size);
		node[v.mv_size] = '\0';
		if (xreg_node_get(txn, s, node, v.mv_size, n) == 1 && n->kind != XNODE_WNS) {
			nlen = v.mv_size;
			memcpy(secret, n->secret, n->secret_len);
			secret[n->secret_len] = '\0';
		}
	}
	if (nlen == 0) {
		if (node_new(txn, s, len, node, secret) < 0)
			goto out;
		nlen = len->node;
	}
	*n = *in;
	n->kind = kind;
	n->dead = 0;
	memcpy(n->identity, identity, XREG_IDENTITY_LEN);
	n->secret_len = strlen(secret);
	memcpy(n->secret, secret, n->secret_len);
	v.mv_size = nlen;
	v.mv_data = node;
	if (node_put(txn, s, node, nlen, n) == 0 && put_ok(mdb_put(txn, s->xident, &k, &v, 0)) == 0)
		rc = 0;
out:
	free(n);
	return rc;
}

int xreg_adhoc_unregister(MDB_txn *txn, const struct store *s, const unsigned char *identity, uint32_t kind)
{
	MDB_val k = {XREG_IDENTITY_LEN, (void *)identity}, v;
	struct xnode *n = malloc(sizeof *n);
	char node[XREG_NODE_MAX];
	size_t nlen;
	int rc;

	if (n == NULL)
		return -1;
	rc = mdb_get(txn, s->xident, &k, &v);
	if (rc != 0 || v.mv_size > XREG_NODE_MAX) {
		free(n);
		return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
	}
	nlen = v.mv_size;
	memcpy(node, v.mv_data, nlen);
	rc = xreg_node_get(txn, s, node, nlen, n);
	if (rc == 1 && n->kind != kind)
		rc = 0; /* registered with the other service: not this command's registration */
	else if (rc >= 0)
		rc = node_del(txn, s, node, nlen) < 0 || del_ok(mdb_del(txn, s->xident, &k, NULL)) < 0 ? -1 : 1;
	free(n);
	return rc;
}

/* ---- expiry ---- */

long xreg_expire(MDB_txn *txn, const struct store *s, uint64_t now, uint64_t expiry_ms, size_t budget, char *cursor)
{
	MDB_cursor *c;
	MDB_val k, v;
	char(*old)[XREG_DEVICE_LEN + 1] = calloc(budget ? budget : 1, sizeof *old);
	size_t nold = 0, seen = 0;
	long removed = 0;
	int rc;

	if (old == NULL || mdb_cursor_open(txn, s->udev, &c) != 0) {
		free(old);
		return -1;
	}
	k.mv_size = strlen(cursor);
	k.mv_data = cursor;
	rc = k.mv_size ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(c, &k, &v, MDB_FIRST);
	if (rc == 0 && k.mv_size == strlen(cursor) && memcmp(k.mv_data, cursor, k.mv_size) == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT); /* the cursor's own device was looked at last pass */
	for (; rc == 0 && seen < budget; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT), seen++) {
		struct xdevice d;
		if (k.mv_size != XREG_DEVICE_LEN)
			continue;
		memcpy(cursor, k.mv_data, XREG_DEVICE_LEN);
		cursor[XREG_DEVICE_LEN] = '\0';
		if (dev_decode(&v, &d) == 0 && d.refreshed_ms + expiry_ms <= now) {
			memcpy(old[nold], k.mv_data, XREG_DEVICE_LEN);
			old[nold++][XREG_DEVICE_LEN] = '\0';
		}
	}
	if (rc == MDB_NOTFOUND)
		cursor[0] = '\0'; /* reached the end: the next pass starts over */
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		removed = -1;
	for (size_t i = 0; removed >= 0 && i < nold; i++) {
		int r = xreg_device_remove(txn, s, old[i]);
		if (r < 0)
			removed = -1;
		else
			removed += r;
	}
	free(old);
	return removed;
}

static uint64_t entries(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_stat st;
	return mdb_stat(txn, dbi, &st) == 0 ? (uint64_t)st.ms_entries : 0;
}

void xreg_counts(MDB_txn *txn, const struct store *s, uint64_t *devices, uint64_t *links, uint64_t *nodes,
		 uint64_t *identities)
{
	*devices = entries(txn, s->udev);
	*links = entries(txn, s->ulink);
	*nodes = entries(txn, s->xnodes);
	*identities = entries(txn, s->xident);
}

/* ---- import (pushctl import-uwpx) ---- */

static int alnum_ok(const char *p, size_t n)
{
	if (n == 0 || n > XREG_NODE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strchr(alphabet, p[i]) == NULL || p[i] == '\0')
			return 0;
	return 1;
}

int xreg_import_account(MDB_txn *txn, const struct store *s, const char *device_id, const char *acct, size_t acct_len,
			const char *node, size_t node_len, const char *secret, size_t secret_len)
{
	unsigned char key[XREG_DEVICE_LEN + XREG_ACCOUNT_MAX];
	MDB_val k, v;
	struct xdevice *d;
	struct xnode *n;
	int rc;

	if (acct_len == 0 || acct_len > XREG_ACCOUNT_MAX || !alnum_ok(node, node_len) || !alnum_ok(secret, secret_len))
		return -2;
	if ((d = malloc(sizeof *d)) == NULL)
		return -1;
	rc = xreg_device_get(txn, s, device_id, d);
	free(d);
	if (rc != 1)
		return rc;
	if ((n = calloc(1, sizeof *n)) == NULL)
		return -1;
	k.mv_size = link_key(key, device_id, acct, acct_len);
	k.mv_data = key;
	if ((rc = mdb_get(txn, s->ulink, &k, &v)) == 0) {
		/* Imported before (or registered here since): the same values again are fine. */
		int same = v.mv_size == node_len && memcmp(v.mv_data, node, node_len) == 0 &&
			   xreg_node_get(txn, s, node, node_len, n) == 1 && n->secret_len == secret_len &&
			   memcmp(n->secret, secret, secret_len) == 0;
		free(n);
		return same ? 2 : -2;
	}
	if (rc != MDB_NOTFOUND) {
		free(n);
		return -1;
	}
	if ((rc = xreg_node_get(txn, s, node, node_len, n)) != 0) {
		free(n);
		return rc == 1 ? -2 : -1; /* a node is one registration's only */
	}
	n->kind = XNODE_WNS;
	memcpy(n->device_id, device_id, XREG_DEVICE_LEN);
	memcpy(n->account, acct, acct_len);
	n->account_len = acct_len;
	memcpy(n->secret, secret, secret_len);
	n->secret_len = secret_len;
	v.mv_size = node_len;
	v.mv_data = (void *)node;
	rc = node_put(txn, s, node, node_len, n) == 0 && put_ok(mdb_put(txn, s->ulink, &k, &v, 0)) == 0 ? 1 : -1;
	free(n);
	return rc;
}
