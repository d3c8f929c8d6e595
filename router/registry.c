/*
 * registry: the Bchat registry in LMDB (layout in docs/registry.md).
 *
 *   ids     id → record: flags byte, then entries (device u8, failures u8, registered u64,
 *           token length u16, app length u8, token bytes, app bytes). Most ids have one to three
 *           tokens. The app is the registration's app (docs/config.md, section apps); empty = the
 *           platform's default app. (Entries without the app length and app are the first
 *           layout: read as the default app, rewritten by registry_migrate_apps.)
 *   tokens  SipHash-64(token) → holder ids (dupsort). The hash keeps keys short (LMDB keys
 *           are limited to 511 bytes, tokens may have 1024); a collision only adds a
 *           candidate, which is checked against the holder's record.
 *   gmembers  group key → member ids (dupsort); idgroups  id → group keys (dupsort). A
 *           subscribe is two puts whatever the group's size, and the caps are dupsort counts.
 *           (`groups`, one value with every member, is the first layout: migrated by store.c.)
 *
 * Ids that are a two-character prefix and 64 lowercase hex digits are stored as 35 bytes
 * (form 1); anything else byte for byte (form 0), so every id comes back exactly as received.
 * Trusts its callers (the router's frame handlers) for lengths; trusts nothing it reads back
 * more than LMDB's own framing (record lengths are checked while walking).
 */
#include "registry.h"
#include "hex.h"
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define ID_ENC_MAX (REG_ID_MAX + 1)
#define ENTRY_HDR 13	 /* device, failures, registered, token length, app length */
#define ENTRY_HDR_V1 12 /* the first layout: no app */

static size_t id_encode(const char *id, size_t len, unsigned char *out)
{
	if (len == 66) { /* one pass: decode while checking, fall back on the first non-digit */
		size_t i;
		for (i = 0; i < 32; i++) {
			int hi = hex_value_lower((unsigned char)id[2 + 2 * i]);
			int lo = hex_value_lower((unsigned char)id[3 + 2 * i]);
			if ((hi | lo) < 0)
				break;
			out[3 + i] = (unsigned char)(hi << 4 | lo);
		}
		if (i == 32) {
			out[0] = 1;
			out[1] = (unsigned char)id[0];
			out[2] = (unsigned char)id[1];
			return 35;
		}
	}
	out[0] = 0;
	memcpy(out + 1, id, len);
	return len + 1;
}

size_t registry_id_decode(const unsigned char *enc, size_t len, char *out)
{
	static const char hx[] = "0123456789abcdef";
	if (len == 35 && enc[0] == 1) {
		out[0] = (char)enc[1];
		out[1] = (char)enc[2];
		for (size_t i = 0; i < 32; i++) {
			out[2 + 2 * i] = hx[enc[3 + i] >> 4];
			out[3 + 2 * i] = hx[enc[3 + i] & 15];
		}
		out[66] = '\0';
		return 66;
	}
	if (len == 0 || len - 1 > REG_ID_MAX || enc[0] != 0) {
		out[0] = '\0';
		return 0;
	}
	memcpy(out, enc + 1, len - 1);
	out[len - 1] = '\0';
	return len - 1;
}

static void token_hash(const struct store *s, const char *token, size_t len, unsigned char out[8])
{
	crypto_shorthash(out, (const unsigned char *)token, len, s->hash_key);
}

static uint64_t rd64le(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static void wr64le(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* The record layout in use: the first (no apps) only in a read-only open of a file no router of
 * this version has opened. */
static int layout_v1;

static size_t entry_tlen(const unsigned char *rec, size_t off)
{
	return (size_t)rec[off + 10] | (size_t)rec[off + 11] << 8;
}

static size_t entry_len(const unsigned char *rec, size_t off, size_t len)
{
	size_t tl, al, hdr = layout_v1 ? ENTRY_HDR_V1 : ENTRY_HDR;
	if (off + hdr > len)
		return 0;
	tl = entry_tlen(rec, off);
	al = layout_v1 ? 0 : rec[off + 12];
	return off + hdr + tl + al > len ? 0 : hdr + tl + al;
}

/* Offset of the token's entry in the record, or -1. */
static long rec_find(const unsigned char *rec, size_t len, const char *token, size_t tlen)
{
	size_t hdr = layout_v1 ? ENTRY_HDR_V1 : ENTRY_HDR;
	for (size_t off = 1, el; off < len; off += el) {
		if ((el = entry_len(rec, off, len)) == 0)
			return -1;
		if (entry_tlen(rec, off) == tlen && memcmp(rec + off + hdr, token, tlen) == 0)
			return (long)off;
	}
	return -1;
}

static size_t rec_entries(const unsigned char *rec, size_t len)
{
	size_t n = 0;
	for (size_t off = 1, el; off < len && (el = entry_len(rec, off, len)) != 0; off += el)
		n++;
	return n;
}

static void entry_decode(const unsigned char *rec, size_t off, struct registry_token *t)
{
	size_t hdr = layout_v1 ? ENTRY_HDR_V1 : ENTRY_HDR;
	t->device = rec[off];
	t->failures = rec[off + 1];
	t->registered_ms = rd64le(rec + off + 2);
	t->token_len = entry_tlen(rec, off);
	t->token = (const char *)rec + off + hdr;
	t->app_len = layout_v1 ? 0 : rec[off + 12];
	t->app = (const char *)rec + off + hdr + t->token_len;
}

/* 1 when the entry at off belongs to app (NULL = any app). */
static int entry_app_is(const unsigned char *rec, size_t off, const char *app, size_t app_len)
{
	struct registry_token t;
	if (app == NULL)
		return 1;
	entry_decode(rec, off, &t);
	return t.app_len == app_len && memcmp(t.app, app, app_len) == 0;
}

void registry_layout(const struct store *s)
{
	layout_v1 = s->registry_v1;
}

int registry_migrate_apps(MDB_txn *txn, const struct store *s, size_t *moved)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	*moved = 0;
	if ((rc = mdb_cursor_open(txn, s->ids, &c)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		const unsigned char *r = v.mv_data;
		size_t n = 0, off, el, o;
		unsigned char *buf;
		for (off = 1; off + ENTRY_HDR_V1 <= v.mv_size; off += el, n++) {
			el = ENTRY_HDR_V1 + entry_tlen(r, off);
			if (off + el > v.mv_size)
				break;
		}
		if ((buf = malloc(v.mv_size + n)) == NULL) {
			rc = ENOMEM;
			break;
		}
		buf[0] = r[0];
		for (off = 1, o = 1; n-- > 0; off += el) {
			size_t tl = entry_tlen(r, off);
			el = ENTRY_HDR_V1 + tl;
			memcpy(buf + o, r + off, ENTRY_HDR_V1);
			buf[o + 12] = 0; /* the platform's default app */
			memcpy(buf + o + ENTRY_HDR, r + off + ENTRY_HDR_V1, tl);
			o += ENTRY_HDR + tl;
		}
		{
			MDB_val nv = {o, buf};
			rc = mdb_cursor_put(c, &k, &nv, MDB_CURRENT);
		}
		free(buf);
		if (rc != 0)
			break;
		(*moved)++;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static const char *device_counter(uint32_t device)
{
	return device == 1 ? "n_ios" : "n_android";
}

/* Finds which id holds the token: copies its encoding to holder; 1 found, 0 not, -1 error. */
static int find_holder(MDB_txn *txn, const struct store *s, const char *token, size_t tlen, unsigned char *holder,
		       size_t *holder_len, long *entry_off)
{
	unsigned char h[8];
	MDB_val k = {8, h}, v;
	MDB_cursor *c;
	int rc, found = 0;

	token_hash(s, token, tlen, h);
	if (mdb_cursor_open(txn, s->tokens, &c) != 0)
		return -1;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
	while (rc == 0) {
		MDB_val rk = v, rv;
		if (mdb_get(txn, s->ids, &rk, &rv) == 0) {
			long off = rec_find(rv.mv_data, rv.mv_size, token, tlen);
			if (off >= 0) {
				memcpy(holder, v.mv_data, v.mv_size);
				*holder_len = v.mv_size;
				if (entry_off)
					*entry_off = off;
				found = 1;
				break;
			}
		}
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP);
	}
	mdb_cursor_close(c);
	if (!found && rc != 0 && rc != MDB_NOTFOUND)
		return -1;
	return found;
}

/* Removes the token's entry from the holder's record (deleting an emptied record). */
static int remove_entry(MDB_txn *txn, const struct store *s, const unsigned char *holder, size_t hlen,
			const char *token, size_t tlen)
{
	MDB_val k = {hlen, (void *)holder}, v, hk, hv;
	unsigned char h[8];
	long off;
	size_t el;
	unsigned char *buf;
	uint32_t device;

	if (mdb_get(txn, s->ids, &k, &v) != 0)
		return -1;
	if ((off = rec_find(v.mv_data, v.mv_size, token, tlen)) < 0)
		return 0;
	el = entry_len(v.mv_data, (size_t)off, v.mv_size);
	device = ((unsigned char *)v.mv_data)[off];
	if (v.mv_size - el <= 1) {
		if (mdb_del(txn, s->ids, &k, NULL) != 0 || store_meta_add(txn, s, "n_ids", -1) < 0)
			return -1;
	} else {
		if ((buf = malloc(v.mv_size - el)) == NULL)
			return -1;
		memcpy(buf, v.mv_data, (size_t)off);
		memcpy(buf + off, (unsigned char *)v.mv_data + off + el, v.mv_size - (size_t)off - el);
		MDB_val nv = {v.mv_size - el, buf};
		int rc = mdb_put(txn, s->ids, &k, &nv, 0);
		free(buf);
		if (rc != 0)
			return -1;
	}
	token_hash(s, token, tlen, h);
	hk.mv_size = 8;
	hk.mv_data = h;
	hv.mv_size = hlen;
	hv.mv_data = (void *)holder;
	if (mdb_del(txn, s->tokens, &hk, &hv) != 0)
		return -1;
	return store_meta_add(txn, s, device_counter(device), -1) < 0 ? -1 : 1;
}

int registry_register(MDB_txn *txn, const struct store *s, const char *id, size_t id_len, const char *token,
		      size_t token_len, uint32_t device, int legacy_groups_only, uint64_t now)
{
	return registry_register_app(txn, s, id, id_len, token, token_len, device, "", 0, legacy_groups_only, now);
}

int registry_register_app(MDB_txn *txn, const struct store *s, const char *id, size_t id_len, const char *token,
			  size_t token_len, uint32_t device, const char *app, size_t app_len, int legacy_groups_only,
			  uint64_t now)
{
	unsigned char enc[ID_ENC_MAX], holder[ID_ENC_MAX];
	size_t elen = id_encode(id, id_len, enc), hlen;
	MDB_val k = {elen, enc}, v;
	unsigned char *buf;
	size_t nlen, off;
	int rc;

	rc = find_holder(txn, s, token, token_len, holder, &hlen, NULL);
	if (rc < 0)
		return -1;
	if (s->max_tokens && !(rc == 1 && hlen == elen && memcmp(holder, enc, elen) == 0) &&
	    mdb_get(txn, s->ids, &k, &v) == 0 && (uint64_t)rec_entries(v.mv_data, v.mv_size) >= s->max_tokens)
		return REG_LIMIT; /* a new token for an id that has as many as it may */
	if (rc == 1 && (hlen != elen || memcmp(holder, enc, elen) != 0)) {
		/* One id per token: registering it elsewhere moves it (docs/protocol.md §6.4,
		 * register). */
		if (remove_entry(txn, s, holder, hlen, token, token_len) < 0)
			return -1;
		rc = 0;
	}
	rc = rc == 1 ? 1 : 0;
	if (app_len > REG_APP_MAX)
		return -1;
	if (mdb_get(txn, s->ids, &k, &v) == 0) {
		/* Re-registering may change the entry's size (its app): it is rewritten in place. */
		size_t old_el = 0, new_el = ENTRY_HDR + token_len + app_len;
		off = v.mv_size;
		if (rc) {
			off = (size_t)rec_find(v.mv_data, v.mv_size, token, token_len);
			old_el = entry_len(v.mv_data, off, v.mv_size);
		}
		nlen = v.mv_size - old_el + new_el;
		if ((buf = malloc(nlen)) == NULL)
			return -1;
		memcpy(buf, v.mv_data, off);
		memcpy(buf + off + new_el, (unsigned char *)v.mv_data + off + old_el, v.mv_size - off - old_el);
		if (rc)
			buf[off] = ((unsigned char *)v.mv_data)[off]; /* the old device, for the counters */
	} else {
		nlen = 1 + ENTRY_HDR + token_len + app_len;
		if ((buf = malloc(nlen)) == NULL)
			return -1;
		off = 1;
		if (store_meta_add(txn, s, "n_ids", 1) < 0)
			goto fail;
	}
	if (rc && buf[off] != device) {
		if (store_meta_add(txn, s, device_counter(buf[off]), -1) < 0 ||
		    store_meta_add(txn, s, device_counter(device), 1) < 0)
			goto fail;
	}
	buf[0] = legacy_groups_only ? 1 : 0;
	buf[off] = (unsigned char)device;
	buf[off + 1] = 0; /* re-registering resets the failure count (docs/protocol.md §6.4) */
	wr64le(buf + off + 2, now);
	buf[off + 10] = (unsigned char)token_len;
	buf[off + 11] = (unsigned char)(token_len >> 8);
	buf[off + 12] = (unsigned char)app_len;
	memcpy(buf + off + ENTRY_HDR, token, token_len);
	memcpy(buf + off + ENTRY_HDR + token_len, app, app_len);
	v.mv_size = nlen;
	v.mv_data = buf;
	if (mdb_put(txn, s->ids, &k, &v, 0) != 0)
		goto fail;
	free(buf);
	if (!rc) {
		unsigned char h[8];
		MDB_val hk = {8, h}, hv = {elen, enc};
		token_hash(s, token, token_len, h);
		int prc = mdb_put(txn, s->tokens, &hk, &hv, MDB_NODUPDATA);
		if ((prc != 0 && prc != MDB_KEYEXIST) || store_meta_add(txn, s, device_counter(device), 1) < 0)
			return -1;
	}
	return 0;
fail:
	free(buf);
	return -1;
}

int registry_unregister(MDB_txn *txn, const struct store *s, const char *token, size_t token_len)
{
	unsigned char holder[ID_ENC_MAX];
	size_t hlen;
	int rc = find_holder(txn, s, token, token_len, holder, &hlen, NULL);
	if (rc <= 0)
		return rc;
	return remove_entry(txn, s, holder, hlen, token, token_len) < 0 ? -1 : 1;
}

/* Entries in a dupsort key (0 when absent); -1 on a store error. k is left as it was (the
 * cursor points its own copy into the page, which a later put could move). */
static long dup_count(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key)
{
	MDB_cursor *c;
	MDB_val v, kk = *key, *k = &kk;
	size_t n = 0;
	int rc;

	if (mdb_cursor_open(txn, dbi, &c) != 0)
		return -1;
	rc = mdb_cursor_get(c, k, &v, MDB_SET_KEY);
	if (rc == 0)
		rc = mdb_cursor_count(c, &n);
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return -1;
	return rc == 0 ? (long)n : 0;
}

int registry_subscribe(MDB_txn *txn, const struct store *s, const char *group, size_t group_len, const char *id,
		       size_t id_len)
{
	unsigned char genc[ID_ENC_MAX], enc[ID_ENC_MAX];
	size_t glen = id_encode(group, group_len, genc), elen = id_encode(id, id_len, enc);
	MDB_val k = {glen, genc}, v = {elen, enc}, ik = {elen, enc}, iv = {glen, genc};
	MDB_cursor *c;
	long n;
	int rc;

	/* Already a member: nothing to do (and no cap to meet). On copies: a cursor may point the
	 * vals it is given into the page, which the puts below could move. */
	{
		MDB_val ck = k, cv = v;
		if (mdb_cursor_open(txn, s->gmembers, &c) != 0)
			return -1;
		rc = mdb_cursor_get(c, &ck, &cv, MDB_GET_BOTH);
		mdb_cursor_close(c);
	}
	if (rc == 0)
		return 0;
	if (rc != MDB_NOTFOUND)
		return -1;
	if (s->max_members && ((n = dup_count(txn, s->gmembers, &k)) < 0 || (uint64_t)n >= s->max_members))
		return n < 0 ? -1 : REG_LIMIT;
	if (s->max_groups && ((n = dup_count(txn, s->idgroups, &ik)) < 0 || (uint64_t)n >= s->max_groups))
		return n < 0 ? -1 : REG_LIMIT;
	if (mdb_put(txn, s->gmembers, &k, &v, MDB_NODUPDATA) != 0)
		return -1;
	rc = mdb_put(txn, s->idgroups, &ik, &iv, MDB_NODUPDATA);
	return rc == 0 || rc == MDB_KEYEXIST ? 0 : -1;
}

int registry_unsubscribe(MDB_txn *txn, const struct store *s, const char *group, size_t group_len, const char *id,
			 size_t id_len)
{
	unsigned char genc[ID_ENC_MAX], enc[ID_ENC_MAX];
	size_t glen = id_encode(group, group_len, genc), elen = id_encode(id, id_len, enc);
	MDB_val k = {glen, genc}, v = {elen, enc}, ik = {elen, enc}, iv = {glen, genc}, any;
	int rc;

	if ((rc = mdb_get(txn, s->gmembers, &k, &any)) != 0)
		return rc == MDB_NOTFOUND ? 0 : -1;
	/* The last member's leaving deletes the key, and so the group, durably (the legacy server
	 * lost this removal on restart). */
	if ((rc = mdb_del(txn, s->gmembers, &k, &v)) != 0 && rc != MDB_NOTFOUND)
		return -1;
	if ((rc = mdb_del(txn, s->idgroups, &ik, &iv)) != 0 && rc != MDB_NOTFOUND)
		return -1;
	return 1;
}

static int each_token(const MDB_val *rec, registry_token_fn fn, void *arg)
{
	const unsigned char *r = rec->mv_data;
	for (size_t off = 1, el; off < rec->mv_size; off += el) {
		struct registry_token t;
		if ((el = entry_len(r, off, rec->mv_size)) == 0)
			return -1;
		entry_decode(r, off, &t);
		if (fn(arg, &t))
			return 1;
	}
	return 0;
}

int registry_resolve(MDB_txn *txn, const struct store *s, const char *send_to, size_t len, int skip_lgo,
		     enum registry_target *target, registry_token_fn fn, void *arg)
{
	unsigned char enc[ID_ENC_MAX];
	size_t elen = id_encode(send_to, len, enc);
	MDB_val k = {elen, enc}, v;

	if (mdb_get(txn, s->ids, &k, &v) == 0) {
		*target = TARGET_ONE_TO_ONE;
		if (skip_lgo && v.mv_size > 0 && (((unsigned char *)v.mv_data)[0] & 1))
			return 0;
		return each_token(&v, fn, arg) < 0 ? -1 : 0;
	}
	if (s->has_members) {
		MDB_cursor *c;
		int rc;
		if (mdb_cursor_open(txn, s->gmembers, &c) != 0)
			return -1;
		*target = TARGET_UNTRACKED;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
		if (rc == 0)
			*target = TARGET_CLOSED_GROUP;
		while (rc == 0) {
			/* A copy: fn may write (jobs) in this transaction while the cursor walks. */
			unsigned char m[ID_ENC_MAX];
			MDB_val mk = {v.mv_size, m}, mv;
			if (v.mv_size > sizeof m)
				break;
			memcpy(m, v.mv_data, v.mv_size);
			if (mdb_get(txn, s->ids, &mk, &mv) == 0 && each_token(&mv, fn, arg) == 1)
				break;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP);
		}
		mdb_cursor_close(c);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return -1;
		if (*target == TARGET_CLOSED_GROUP)
			return 0;
	} else if (mdb_get(txn, s->groups, &k, &v) == 0) {
		/* The first layout, in a file only read so far (store.c migrates it on a writable open). */
		const unsigned char *g = v.mv_data;
		*target = TARGET_CLOSED_GROUP;
		for (size_t off = 0; off + 2 <= v.mv_size;) {
			size_t ml = (size_t)g[off] | (size_t)g[off + 1] << 8;
			MDB_val mk = {ml, (void *)(g + off + 2)}, mv;
			if (off + 2 + ml > v.mv_size)
				return -1;
			if (mdb_get(txn, s->ids, &mk, &mv) == 0 && each_token(&mv, fn, arg) == 1)
				return 0;
			off += 2 + ml;
		}
		return 0;
	}
	*target = TARGET_UNTRACKED;
	return 0;
}

/* Finds the token's holder and loads the holder's record: 1 found, 0 not, -1 error. */
static int holder_record(MDB_txn *txn, const struct store *s, const char *token, size_t tlen, unsigned char *holder,
			 size_t *hlen, long *off, MDB_val *rec)
{
	int rc = find_holder(txn, s, token, tlen, holder, hlen, off);
	MDB_val k;

	if (rc <= 0)
		return rc;
	k.mv_size = *hlen;
	k.mv_data = holder;
	return mdb_get(txn, s->ids, &k, rec) == 0 ? 1 : -1;
}

int registry_token_dead(MDB_txn *txn, const struct store *s, const char *token, size_t token_len, uint64_t ts_ms)
{
	return registry_token_dead_app(txn, s, token, token_len, NULL, 0, ts_ms);
}

int registry_token_dead_app(MDB_txn *txn, const struct store *s, const char *token, size_t token_len, const char *app,
			    size_t app_len, uint64_t ts_ms)
{
	unsigned char holder[ID_ENC_MAX];
	size_t hlen;
	long off;
	MDB_val v;
	int rc = holder_record(txn, s, token, token_len, holder, &hlen, &off, &v);

	if (rc <= 0)
		return rc;
	if (!entry_app_is(v.mv_data, (size_t)off, app, app_len))
		return 0; /* another app's registration: that app's provider said nothing about it */
	/* Registered again after the provider's verdict: the app has a fresh claim on it. */
	if (rd64le((unsigned char *)v.mv_data + off + 2) > ts_ms)
		return 0;
	return remove_entry(txn, s, holder, hlen, token, token_len) < 0 ? -1 : 1;
}

int registry_token_failure(MDB_txn *txn, const struct store *s, const char *token, size_t token_len, int reset)
{
	return registry_token_failure_app(txn, s, token, token_len, NULL, 0, reset);
}

int registry_token_failure_app(MDB_txn *txn, const struct store *s, const char *token, size_t token_len,
			       const char *app, size_t app_len, int reset)
{
	unsigned char holder[ID_ENC_MAX], *buf;
	size_t hlen;
	long off;
	MDB_val k, v;
	int rc = holder_record(txn, s, token, token_len, holder, &hlen, &off, &v), n;

	if (rc <= 0)
		return rc;
	if (!entry_app_is(v.mv_data, (size_t)off, app, app_len))
		return 0;
	k.mv_size = hlen;
	k.mv_data = holder;
	n = ((unsigned char *)v.mv_data)[off + 1];
	if (reset && n == 0)
		return 0; /* the common case: no write at all */
	n = reset ? 0 : (n < 255 ? n + 1 : 255);
	if ((buf = malloc(v.mv_size)) == NULL)
		return -1;
	memcpy(buf, v.mv_data, v.mv_size);
	buf[off + 1] = (unsigned char)n;
	v.mv_data = buf;
	rc = mdb_put(txn, s->ids, &k, &v, 0);
	free(buf);
	return rc == 0 ? n : -1;
}

int registry_lookup_token(MDB_txn *txn, const struct store *s, const char *token, size_t token_len, char *id,
			  struct registry_token *out)
{
	unsigned char holder[ID_ENC_MAX];
	size_t hlen;
	long off;
	MDB_val v;
	int rc = holder_record(txn, s, token, token_len, holder, &hlen, &off, &v);

	if (rc <= 0)
		return rc;
	registry_id_decode(holder, hlen, id);
	entry_decode(v.mv_data, (size_t)off, out);
	return 1;
}

void registry_counts(MDB_txn *txn, const struct store *s, uint64_t *ios, uint64_t *android, uint64_t *ids)
{
	*ios = store_meta_get(txn, s, "n_ios");
	*android = store_meta_get(txn, s, "n_android");
	*ids = store_meta_get(txn, s, "n_ids");
}

int registry_walk(MDB_txn *txn, const struct store *s,
		  int (*fn)(void *arg, const char *id, size_t id_len, int lgo, const struct registry_token *t),
		  void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	char id[REG_ID_MAX + 1];
	int rc;

	if (mdb_cursor_open(txn, s->ids, &c) != 0)
		return -1;
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		size_t il = registry_id_decode(k.mv_data, k.mv_size, id);
		const unsigned char *r = v.mv_data;
		for (size_t off = 1, el; off < v.mv_size; off += el) {
			struct registry_token t;
			if ((el = entry_len(r, off, v.mv_size)) == 0)
				break;
			entry_decode(r, off, &t);
			if (fn(arg, id, il, r[0] & 1, &t) != 0) {
				mdb_cursor_close(c);
				return 0;
			}
		}
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : -1;
}
