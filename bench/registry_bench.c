/*
 * registry_bench: the router's registry against raw LMDB, in one process, one run.
 *
 *   registry_bench DIR [N]
 *
 * Fills a fresh registry in DIR with N registrations (default 1 000 000: Bchat ids, 163-byte
 * FCM-style tokens, committed 10 000 per transaction as the router's group commit would),
 * then measures
 *   - LMDB bytes per registration (pages in use × page size / N) against the bytes of the id
 *     and token themselves;
 *   - recipient lookups per second through registry_resolve() against raw mdb_get() of the
 *     same keys in the same database, same order, same read transaction kind;
 *   - durable single-registration commits per second (one fsync each), the baseline for the
 *     router's group commit measured by router_load.
 * Prints "name value" pairs on one line for bench/run.sh.
 */
#include "../router/registry.h"
#include "../router/store.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_LEN 163
#define ID_LEN 66

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Deterministic id and token for registration i (so lookups can rebuild them). */
static void make_id(uint64_t i, char id[ID_LEN + 1])
{
	unsigned char h[32];
	static const char hx[] = "0123456789abcdef";
	crypto_generichash(h, sizeof h, (const unsigned char *)&i, sizeof i, NULL, 0);
	id[0] = 'b';
	id[1] = 'd';
	for (int k = 0; k < 32; k++) {
		id[2 + 2 * k] = hx[h[k] >> 4];
		id[3 + 2 * k] = hx[h[k] & 15];
	}
	id[ID_LEN] = '\0';
}

static void make_token(uint64_t i, char tok[TOKEN_LEN + 1])
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char h[TOKEN_LEN];
	uint64_t j = i ^ 0x9e3779b97f4a7c15ull;
	crypto_generichash(h, 64, (const unsigned char *)&j, sizeof j, NULL, 0);
	crypto_generichash(h + 64, 64, h, 64, NULL, 0);
	crypto_generichash(h + 128, TOKEN_LEN - 128, h + 64, 64, NULL, 0);
	for (int k = 0; k < TOKEN_LEN; k++)
		tok[k] = al[h[k] & 63];
	tok[22] = ':'; /* FCM tokens: "<22 chars>:APA91b…" */
	tok[TOKEN_LEN] = '\0';
}

static int count_fn(void *arg, const struct registry_token *t)
{
	*(size_t *)arg += t->token_len;
	return 0;
}

/* The registry's own id encoding (registry.c, form 1): prefix and 32 bytes. */
static void encode_id(const char *id, unsigned char out[35])
{
	out[0] = 1;
	out[1] = (unsigned char)id[0];
	out[2] = (unsigned char)id[1];
	for (int k = 0; k < 32; k++) {
		unsigned hi = (unsigned)(id[2 + 2 * k] <= '9' ? id[2 + 2 * k] - '0' : id[2 + 2 * k] - 'a' + 10);
		unsigned lo = (unsigned)(id[3 + 2 * k] <= '9' ? id[3 + 2 * k] - '0' : id[3 + 2 * k] - 'a' + 10);
		out[3 + k] = (unsigned char)(hi << 4 | lo);
	}
}

int main(int argc, char **argv)
{
	struct store s;
	char err[256], id[ID_LEN + 1], tok[TOKEN_LEN + 1];
	uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000, lookups;
	MDB_txn *txn;
	MDB_envinfo info;
	MDB_stat st;
	double t0, t_reg, t_raw, fill_s;
	size_t sink = 0;
	enum registry_target target;

	if (argc < 2 || n == 0 || sodium_init() < 0) {
		fprintf(stderr, "usage: registry_bench DIR [N]\n");
		return 2;
	}
	if (store_open(&s, argv[1], 16384, 0, err, sizeof err) < 0) {
		fprintf(stderr, "registry_bench: %s\n", err);
		return 1;
	}
	t0 = now_s();
	for (uint64_t i = 0; i < n;) {
		if (mdb_txn_begin(s.env, NULL, 0, &txn) != 0)
			return 1;
		for (uint64_t e = i + 10000; i < n && i < e; i++) {
			make_id(i, id);
			make_token(i, tok);
			if (registry_register(txn, &s, id, ID_LEN, tok, TOKEN_LEN, 2, 0, 1700000000000ull + i) < 0) {
				fprintf(stderr, "registry_bench: register failed at %llu\n", (unsigned long long)i);
				return 1;
			}
		}
		if (mdb_txn_commit(txn) != 0)
			return 1;
	}
	fill_s = now_s() - t0;
	mdb_env_info(s.env, &info);
	mdb_env_stat(s.env, &st);
	/* Bytes in the B-trees of the registry's databases (what the data occupies), and the
	 * file's high-water mark (which also holds free pages that later commits reuse). */
	double tree_pages = 0;
	{
		MDB_dbi dbis[] = {s.ids, s.tokens, s.groups, s.meta, s.jobs, s.msgs, s.due, 1 /* main */};
		MDB_stat ds;
		mdb_txn_begin(s.env, NULL, MDB_RDONLY, &txn);
		for (size_t k = 0; k < sizeof dbis / sizeof dbis[0]; k++)
			if (mdb_stat(txn, dbis[k], &ds) == 0)
				tree_pages += (double)(ds.ms_branch_pages + ds.ms_leaf_pages + ds.ms_overflow_pages);
		mdb_txn_abort(txn);
	}
	double bytes_per_reg = tree_pages * st.ms_psize / (double)n;
	double file_per_reg = (double)(info.me_last_pgno + 1) * st.ms_psize / (double)n;
	double raw_bytes = ID_LEN + TOKEN_LEN;

	/* Lookups: same ids, same order, each in a fresh read transaction per 1000 (as the router
	 * resolves a batch per write transaction). */
	lookups = n < 1000000 ? n : 1000000;
	unsigned char (*keys)[35] = malloc(lookups * 35);
	char (*ids)[ID_LEN + 1] = malloc(lookups * (ID_LEN + 1));
	if (!keys || !ids)
		return 1;
	for (uint64_t i = 0; i < lookups; i++) {
		uint64_t r = (i * 2654435761u) % n;
		make_id(r, ids[i]);
		encode_id(ids[i], keys[i]);
	}
	for (int round = 0; round < 2; round++) { /* round 0 warms the page cache for both */
		t0 = now_s();
		for (uint64_t i = 0; i < lookups; i += 1000) {
			mdb_txn_begin(s.env, NULL, MDB_RDONLY, &txn);
			for (uint64_t k = i; k < i + 1000 && k < lookups; k++) {
				MDB_val key = {35, keys[k]}, val;
				if (mdb_get(txn, s.ids, &key, &val) == 0)
					sink += val.mv_size;
			}
			mdb_txn_abort(txn);
		}
		t_raw = now_s() - t0;
		t0 = now_s();
		for (uint64_t i = 0; i < lookups; i += 1000) {
			mdb_txn_begin(s.env, NULL, MDB_RDONLY, &txn);
			for (uint64_t k = i; k < i + 1000 && k < lookups; k++)
				registry_resolve(txn, &s, ids[k], ID_LEN, 0, &target, count_fn, &sink);
			mdb_txn_abort(txn);
		}
		t_reg = now_s() - t0;
	}
	if (sink == 0) {
		fprintf(stderr, "registry_bench: lookups found nothing\n");
		return 1;
	}

	/* Durable single commits: one registration, one fsync. */
	int singles = 300;
	t0 = now_s();
	for (int i = 0; i < singles; i++) {
		make_id(n + (uint64_t)i, id);
		make_token(n + (uint64_t)i, tok);
		mdb_txn_begin(s.env, NULL, 0, &txn);
		registry_register(txn, &s, id, ID_LEN, tok, TOKEN_LEN, 2, 0, 1);
		if (mdb_txn_commit(txn) != 0)
			return 1;
	}
	double single_rate = singles / (now_s() - t0);

	printf("registrations %llu fill_s %.1f bytes_per_registration %.1f file_bytes_per_registration %.1f raw_id_token_bytes %.0f bytes_ratio %.2f "
	       "lookups %llu registry_lookups_per_s %.0f raw_mdb_get_per_s %.0f lookup_ratio %.2f "
	       "single_commits_per_s %.0f sample_id %s\n",
	       (unsigned long long)n, fill_s, bytes_per_reg, file_per_reg, raw_bytes, bytes_per_reg / raw_bytes,
	       (unsigned long long)lookups, lookups / t_reg, lookups / t_raw, t_raw / t_reg, single_rate, ids[0]);
	free(keys);
	free(ids);
	store_close(&s);
	return 0;
}
