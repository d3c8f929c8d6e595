/* statsd's store: windows at their boundaries, totals kept across reopening and seeded from
 * an older store, and the test clock. */
#include "../../statsd/clock.h"
#include "../../statsd/periods.h"
#include "testlib.h"
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/test_periods.XXXXXX";

static void total_cb(void *ctx, uint32_t id, uint64_t v)
{
	uint64_t *t = ctx;
	if (id < CTR_MAX)
		t[id] = v;
	else if (id == METRIC_HTTP_ID(HTTP_ROUTE_ONION, 200))
		t[0] = v;
}

static void rm_store(const char *p)
{
	char f[512];
	snprintf(f, sizeof f, "%s/data.mdb", p);
	unlink(f);
	snprintf(f, sizeof f, "%s/lock.mdb", p);
	unlink(f);
	rmdir(p);
}

int main(void)
{
	struct periods p;
	struct period_row *rows;
	size_t n;
	char err[256], path[256], clk[300];
	uint64_t d[CTR_MAX], tot[CTR_MAX];
	const uint64_t P = 60, B = 1800000000; /* B is a multiple of 60 */

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof path, "%s/stats", dir);
	CHECK(periods_open(&p, path, P, 0, err, sizeof err) == 0, "open: %s", err);
	memset(d, 0, sizeof d);
	d[CTR_MESSAGES_TOTAL] = 3;
	CHECK(periods_add(&p, B + P - 1, d) == 0, "add in the last second of a window");
	d[CTR_MESSAGES_TOTAL] = 5;
	CHECK(periods_add(&p, B + P, d) == 0, "add at the first second of the next");
	d[CTR_MESSAGES_TOTAL] = 7;
	CHECK(periods_add(&p, B + 2 * P - 1, d) == 0, "add at the end of that one");
	CHECK(periods_query(&p, 0, 0, B + 2 * P - 1, &rows, &n) == 0 && n == 2, "two windows (%zu)", n);
	if (n == 2) {
		CHECK(rows[0].start == B && rows[0].end == B + P && rows[0].v[CTR_MESSAGES_TOTAL] == 3, "first window: 3 at [B, B+60)");
		CHECK(rows[1].start == B + P && rows[1].v[CTR_MESSAGES_TOTAL] == 12, "second window: 5 + 7");
		CHECK(rows[1].end == B + 2 * P - 1, "the open window ends now (%llu)", (unsigned long long)rows[1].end);
	}
	free(rows);
	CHECK(periods_query(&p, B + P, 0, B + 5 * P, &rows, &n) == 0 && n == 1 && rows[0].start == B + P, "start filter");
	free(rows);
	CHECK(periods_query(&p, 0, B + P, B + 5 * P, &rows, &n) == 0 && n == 1 && rows[0].start == B, "end filter");
	free(rows);

	struct metric_kv x[2] = {{METRIC_HTTP_ID(HTTP_ROUTE_ONION, 200), 4}, {METRIC_HIST_ID(1, 3), 2}};
	memset(d, 0, sizeof d);
	d[CTR_IOS_DELIVERED] = 2;
	CHECK(periods_commit(&p, B + 3 * P, d, x, 2) == 0, "commit with extra totals");
	periods_close(&p);

	CHECK(periods_open(&p, path, P, 0, err, sizeof err) == 0, "reopen");
	memset(tot, 0, sizeof tot);
	CHECK(periods_totals(&p, total_cb, tot) == 0, "totals read");
	CHECK(tot[CTR_MESSAGES_TOTAL] == 15 && tot[CTR_IOS_DELIVERED] == 2, "totals survive reopening (%llu, %llu)",
	      (unsigned long long)tot[CTR_MESSAGES_TOTAL], (unsigned long long)tot[CTR_IOS_DELIVERED]);
	CHECK(tot[0] == 4, "HTTP answer total kept (%llu)", (unsigned long long)tot[0]);
	CHECK(periods_query(&p, 0, 0, B + 10 * P, &rows, &n) == 0 && n == 3, "three windows after reopening (%zu)", n);
	free(rows);
	periods_close(&p);

	/* A store from before the totals: only "rows". Opening it writable seeds the totals. */
	snprintf(path, sizeof path, "%s/old", dir);
	mkdir(path, 0700);
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		unsigned char key[8], val[8 + 8 * 5];
		uint64_t end = B + P, c1 = 9;
		MDB_val k = {8, key}, v = {sizeof val, val};
		memset(val, 0, sizeof val);
		for (int i = 0; i < 8; i++)
			key[i] = (unsigned char)(B >> (56 - 8 * i));
		memcpy(val, &end, 8);
		memcpy(val + 8 + 8 * CTR_MESSAGES_TOTAL, &c1, 8);
		CHECK(mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 2) == 0 && mdb_env_open(env, path, 0, 0600) == 0 &&
			  mdb_txn_begin(env, NULL, 0, &txn) == 0 && mdb_dbi_open(txn, "rows", MDB_CREATE, &dbi) == 0 &&
			  mdb_put(txn, dbi, &k, &v, 0) == 0 && mdb_txn_commit(txn) == 0,
		      "an old-style store with one short row");
		mdb_env_close(env);
	}
	CHECK(periods_open(&p, path, P, 1, err, sizeof err) == 0 && !p.have_totals, "read-only open of it has no totals");
	periods_close(&p);
	CHECK(periods_open(&p, path, P, 0, err, sizeof err) == 0, "writable open: %s", err);
	memset(tot, 0, sizeof tot);
	periods_totals(&p, total_cb, tot);
	CHECK(tot[CTR_MESSAGES_TOTAL] == 9, "totals seeded from the rows (%llu)", (unsigned long long)tot[CTR_MESSAGES_TOTAL]);
	CHECK(periods_query(&p, 0, 0, B + 10 * P, &rows, &n) == 0 && n == 1 && rows[0].v[CTR_MESSAGES_TOTAL] == 9 &&
		  rows[0].v[CTR_IOS_DELIVERED] == 0,
	      "a short row reads zero for the newer counters");
	free(rows);
	periods_close(&p);

	/* The test clock: honoured only when set; garbage falls back to the real clock. */
	unsetenv("PUSHPIPE_TEST_CLOCK_FILE");
	CHECK(!statsd_test_clock() && statsd_now_s() > 1600000000, "real clock by default");
	snprintf(clk, sizeof clk, "%s/clock", dir);
	FILE *f = fopen(clk, "w");
	fprintf(f, "%llu\n", (unsigned long long)(B + 5));
	fclose(f);
	setenv("PUSHPIPE_TEST_CLOCK_FILE", clk, 1);
	CHECK(statsd_test_clock() && statsd_now_s() == B + 5, "test clock read from the file");
	f = fopen(clk, "w");
	fprintf(f, "%llu\n", (unsigned long long)(B + 65));
	fclose(f);
	CHECK(statsd_now_s() == B + 65, "and read again when it changes");
	f = fopen(clk, "w");
	fprintf(f, "soon\n");
	fclose(f);
	CHECK(statsd_now_s() > 1600000000 && statsd_now_s() != B + 65, "unreadable test clock: the real clock");
	unsetenv("PUSHPIPE_TEST_CLOCK_FILE");
	unlink(clk);

	rm_store(path);
	snprintf(path, sizeof path, "%s/stats", dir);
	rm_store(path);
	rmdir(dir);
	return test_done();
}
