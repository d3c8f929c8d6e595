/*
 * periods: statsd's LMDB of statistics windows (see periods.h).
 *   rows    be64 start → end u64 ‖ counters u64[CTR_MAX] (little-endian)
 *   totals  be32 metric id → u64 (little-endian); created on first open from the sum of the rows
 * Older rows written with fewer counters read as zero for the newer ones.
 */
#include "periods.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void be64(unsigned char out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

static void be32(unsigned char out[4], uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

static uint64_t rdbe64(const unsigned char *in)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | in[i];
	return v;
}

static void row_decode(const MDB_val *k, const MDB_val *v, struct period_row *r);

static int total_add(MDB_txn *txn, struct periods *p, uint32_t id, uint64_t delta)
{
	unsigned char key[4];
	MDB_val k = {4, key}, v;
	uint64_t cur = 0;
	int rc;

	be32(key, id);
	if (mdb_get(txn, p->totals, &k, &v) == 0 && v.mv_size == 8)
		memcpy(&cur, v.mv_data, 8);
	cur += delta;
	v.mv_size = 8;
	v.mv_data = &cur;
	rc = mdb_put(txn, p->totals, &k, &v, 0);
	return rc;
}

/* Opens "totals"; a writable open of an older store creates it from the sum of the rows. */
static int open_totals(struct periods *p, MDB_txn *txn, int readonly)
{
	uint64_t sum[CTR_MAX];
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_dbi_open(txn, "totals", 0, &p->totals);

	if (rc == 0) {
		p->have_totals = 1;
		return 0;
	}
	if (rc != MDB_NOTFOUND)
		return rc;
	if (readonly)
		return 0;
	if ((rc = mdb_dbi_open(txn, "totals", MDB_CREATE, &p->totals)) != 0)
		return rc;
	p->have_totals = 1;
	memset(sum, 0, sizeof sum);
	if ((rc = mdb_cursor_open(txn, p->rows, &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct period_row r;
		if (k.mv_size != 8)
			continue;
		row_decode(&k, &v, &r);
		for (int i = 1; i < CTR_MAX; i++)
			sum[i] += r.v[i];
	}
	mdb_cursor_close(c);
	for (uint32_t i = 1; i < CTR_MAX; i++)
		if (sum[i] && (rc = total_add(txn, p, i, sum[i])) != 0)
			return rc;
	return 0;
}

int periods_open(struct periods *p, const char *path, uint64_t period_s, int readonly, char *err, size_t errlen)
{
	MDB_txn *txn;
	int rc;

	memset(p, 0, sizeof *p);
	p->period_s = period_s;
	if (!readonly)
		mkdir(path, 0700);
	if ((rc = mdb_env_create(&p->env)) != 0 || (rc = mdb_env_set_maxdbs(p->env, 4)) != 0 ||
	    (rc = mdb_env_set_mapsize(p->env, (size_t)256 << 20)) != 0 ||
	    (rc = mdb_env_open(p->env, path, (readonly ? MDB_RDONLY : 0) | MDB_NOTLS, 0600)) != 0 ||
	    (rc = mdb_txn_begin(p->env, NULL, readonly ? MDB_RDONLY : 0, &txn)) != 0) {
		snprintf(err, errlen, "%s: %s", path, mdb_strerror(rc));
		if (p->env)
			mdb_env_close(p->env);
		p->env = NULL;
		return -1;
	}
	if ((rc = mdb_dbi_open(txn, "rows", readonly ? 0 : MDB_CREATE, &p->rows)) != 0 || (rc = open_totals(p, txn, readonly)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		snprintf(err, errlen, "%s: %s", path, mdb_strerror(rc));
		mdb_env_close(p->env);
		p->env = NULL;
		return -1;
	}
	return 0;
}

void periods_close(struct periods *p)
{
	if (p->env)
		mdb_env_close(p->env);
	p->env = NULL;
}

static void row_decode(const MDB_val *k, const MDB_val *v, struct period_row *r)
{
	size_t n = v->mv_size >= 8 ? (v->mv_size - 8) / 8 : 0;
	memset(r, 0, sizeof *r);
	r->start = rdbe64(k->mv_data);
	if (v->mv_size >= 8)
		memcpy(&r->end, v->mv_data, 8);
	if (n > CTR_MAX)
		n = CTR_MAX;
	memcpy(r->v, (unsigned char *)v->mv_data + 8, n * 8);
}

static int row_write(MDB_txn *txn, struct periods *p, const struct period_row *r)
{
	unsigned char key[8], val[8 + 8 * CTR_MAX];
	MDB_val k = {8, key}, v = {sizeof val, val};
	be64(key, r->start);
	memcpy(val, &r->end, 8);
	memcpy(val + 8, r->v, 8 * CTR_MAX);
	return mdb_put(txn, p->rows, &k, &v, 0) == 0 ? 0 : -1;
}

int periods_add(struct periods *p, uint64_t now_s, const uint64_t delta[CTR_MAX])
{
	return periods_commit(p, now_s, delta, NULL, 0);
}

int periods_commit(struct periods *p, uint64_t now_s, const uint64_t delta[CTR_MAX], const struct metric_kv *x, size_t nx)
{
	struct period_row r;
	unsigned char key[8];
	MDB_val k = {8, key}, v;
	MDB_txn *txn;
	uint64_t start = now_s - now_s % p->period_s;
	int ok = 1;

	if (mdb_txn_begin(p->env, NULL, 0, &txn) != 0)
		return -1;
	be64(key, start);
	if (mdb_get(txn, p->rows, &k, &v) == 0) {
		row_decode(&k, &v, &r);
	} else {
		memset(&r, 0, sizeof r);
		r.start = start;
		r.end = start + p->period_s;
	}
	for (int i = 0; i < CTR_MAX; i++)
		r.v[i] += delta[i];
	for (uint32_t i = 1; i < CTR_MAX && ok; i++)
		ok = delta[i] == 0 || total_add(txn, p, i, delta[i]) == 0;
	for (size_t i = 0; i < nx && ok; i++)
		ok = x[i].v == 0 || total_add(txn, p, x[i].id, x[i].v) == 0;
	if (!ok || row_write(txn, p, &r) < 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	return mdb_txn_commit(txn) == 0 ? 0 : -1;
}

int periods_put(struct periods *p, const struct period_row *row)
{
	MDB_txn *txn;
	if (mdb_txn_begin(p->env, NULL, 0, &txn) != 0)
		return -1;
	if (row_write(txn, p, row) < 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	return mdb_txn_commit(txn) == 0 ? 0 : -1;
}

int periods_query(struct periods *p, uint64_t from, uint64_t to, uint64_t now_s, struct period_row **rows, size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	size_t cap = 0;
	int rc;

	*rows = NULL;
	*n = 0;
	if (mdb_txn_begin(p->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	if (mdb_cursor_open(txn, p->rows, &c) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct period_row r;
		if (k.mv_size != 8)
			continue;
		row_decode(&k, &v, &r);
		if (r.end > now_s && r.start <= now_s)
			r.end = now_s; /* the open window ends "now" (docs/protocol.md §6.7) */
		if (r.start < from || (to != 0 && r.end > to))
			continue;
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct period_row *nr = realloc(*rows, nc * sizeof *nr);
			if (nr == NULL)
				break;
			*rows = nr;
			cap = nc;
		}
		(*rows)[(*n)++] = r;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return 0;
}

int periods_totals(struct periods *p, void (*fn)(void *ctx, uint32_t id, uint64_t v), void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if (!p->have_totals)
		return 0;
	if (mdb_txn_begin(p->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	if (mdb_cursor_open(txn, p->totals, &c) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const unsigned char *kb = k.mv_data;
		uint64_t val;
		if (k.mv_size != 4 || v.mv_size != 8)
			continue;
		memcpy(&val, v.mv_data, 8);
		fn(ctx, (uint32_t)kb[0] << 24 | (uint32_t)kb[1] << 16 | (uint32_t)kb[2] << 8 | kb[3], val);
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return 0;
}
