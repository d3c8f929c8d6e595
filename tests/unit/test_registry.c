/* Registry semantics (docs/protocol.md §6.4) and outbox bookkeeping on a real LMDB. */
#include "../../router/outbox.h"
#include "../../router/registry.h"
#include "frame.h"
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct store S;
static char dir[] = "/tmp/pushpipe-test-registry-XXXXXX";

struct got {
	char tokens[16][1100];
	uint32_t device[16];
	int n;
};

static int collect(void *arg, const struct registry_token *t)
{
	struct got *g = arg;
	if (g->n < 16) {
		memcpy(g->tokens[g->n], t->token, t->token_len);
		g->tokens[g->n][t->token_len] = '\0';
		g->device[g->n++] = t->device;
	}
	return 0;
}

/* The migrated schema-1 record (below): its two entries as written, in the default app. */
static int walked;
static int walk_entry(void *arg, const char *id, size_t id_len, int lgo, const struct registry_token *t)
{
	(void)arg;
	(void)id;
	(void)lgo;
	if (id_len == 66 && t->app_len == 0 && t->registered_ms == 4242 &&
	    ((t->token_len == 4 && memcmp(t->token, "old1", 4) == 0 && t->failures == 2) ||
	     (t->token_len == 5 && memcmp(t->token, "old-2", 5) == 0 && t->failures == 0)))
		walked++;
	return 0;
}

static MDB_txn *begin(void)
{
	MDB_txn *t;
	if (mdb_txn_begin(S.env, NULL, 0, &t) != 0)
		abort();
	return t;
}

static struct got resolve(const char *to, int skip, enum registry_target *target)
{
	struct got g;
	MDB_txn *t = begin();
	memset(&g, 0, sizeof g);
	registry_resolve(t, &S, to, strlen(to), skip, target, collect, &g);
	mdb_txn_abort(t);
	return g;
}

static int has(const struct got *g, const char *tok)
{
	for (int i = 0; i < g->n; i++)
		if (strcmp(g->tokens[i], tok) == 0)
			return 1;
	return 0;
}

static void counts(uint64_t *ios, uint64_t *android, uint64_t *ids)
{
	MDB_txn *t = begin();
	registry_counts(t, &S, ios, android, ids);
	mdb_txn_abort(t);
}

#define REG(id, tok, dev, lgo, when)                                                                          \
	do {                                                                                                  \
		MDB_txn *t_ = begin();                                                                        \
		CHECK(registry_register(t_, &S, id, strlen(id), tok, strlen(tok), dev, lgo, when) == 0, "register %s", tok); \
		mdb_txn_commit(t_);                                                                           \
	} while (0)

int main(void)
{
	char err[256];
	const char *A = "bd1111111111111111111111111111111111111111111111111111111111111111";
	const char *B = "bdAAAA111111111111111111111111111111111111111111111111111111111111"; /* uppercase: kept as sent */
	const char *G = "bd2222222222222222222222222222222222222222222222222222222222222222";
	const char *ios = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
	const char *fcm = "dXk3:APA91bH-x_yz";
	char longtok[1025];
	enum registry_target tg;
	struct got g;
	uint64_t ni, na, nid;
	MDB_txn *t;

	memset(longtok, 'L', 1024);
	longtok[1024] = '\0';
	if (mkdtemp(dir) == NULL || store_open(&S, dir, 64, 0, err, sizeof err) < 0) {
		printf("store: %s\n", err);
		return 1;
	}

	REG(A, ios, PLATFORM_IOS, 0, 1000);
	REG(A, fcm, PLATFORM_ANDROID, 1, 1000);
	g = resolve(A, 0, &tg);
	CHECK(tg == TARGET_ONE_TO_ONE && g.n == 2 && has(&g, ios) && has(&g, fcm), "id resolves to both tokens (%d)", g.n);
	g = resolve(A, 1, &tg);
	CHECK(tg == TARGET_ONE_TO_ONE && g.n == 0, "session flavour skips a legacy_groups_only record");
	counts(&ni, &na, &nid);
	CHECK(ni == 1 && na == 1 && nid == 1, "counts 1/1/1 (%llu %llu %llu)", (unsigned long long)ni, (unsigned long long)na, (unsigned long long)nid);

	/* A token belongs to one id: registering it under B moves it. */
	REG(B, fcm, PLATFORM_ANDROID, 0, 2000);
	g = resolve(A, 0, &tg);
	CHECK(g.n == 1 && has(&g, ios), "token left A");
	g = resolve(B, 0, &tg);
	CHECK(g.n == 1 && has(&g, fcm), "token now under B, byte for byte id");
	counts(&ni, &na, &nid);
	CHECK(ni == 1 && na == 1 && nid == 2, "counts after the move");

	/* Re-registration updates the type, not the count. */
	REG(B, fcm, PLATFORM_HUAWEI, 0, 3000);
	counts(&ni, &na, &nid);
	CHECK(ni == 1 && na == 1 && nid == 2, "huawei counts as android");

	/* Long tokens (beyond LMDB's key limit) work. */
	REG(B, longtok, PLATFORM_ANDROID, 0, 3000);
	g = resolve(B, 0, &tg);
	CHECK(g.n == 2 && has(&g, longtok), "1024-byte token stored and resolved");

	/* Closed groups. */
	t = begin();
	CHECK(registry_subscribe(t, &S, G, strlen(G), A, strlen(A)) == 0, "subscribe A");
	CHECK(registry_subscribe(t, &S, G, strlen(G), B, strlen(B)) == 0, "subscribe B");
	CHECK(registry_subscribe(t, &S, G, strlen(G), B, strlen(B)) == 0, "subscribe B again (idempotent)");
	mdb_txn_commit(t);
	g = resolve(G, 1, &tg);
	CHECK(tg == TARGET_CLOSED_GROUP && g.n == 3, "group reaches every member's tokens once (%d)", g.n);
	g = resolve("bd9999999999999999999999999999999999999999999999999999999999999999", 0, &tg);
	CHECK(tg == TARGET_UNTRACKED && g.n == 0, "unknown target is untracked");

	t = begin();
	CHECK(registry_unsubscribe(t, &S, G, strlen(G), B, strlen(B)) == 1, "unsubscribe B");
	CHECK(registry_unsubscribe(t, &S, G, strlen(G), B, strlen(B)) == 1, "unsubscribe a non-member: group exists");
	CHECK(registry_unsubscribe(t, &S, G, strlen(G), A, strlen(A)) == 1, "unsubscribe the last member");
	CHECK(registry_unsubscribe(t, &S, G, strlen(G), A, strlen(A)) == 0, "the emptied group is gone");
	CHECK(registry_unsubscribe(t, &S, "nope", 4, A, strlen(A)) == 0, "unknown group");
	mdb_txn_commit(t);

	/* Unregister, including the last token of an id (durably: it must not come back). */
	t = begin();
	CHECK(registry_unregister(t, &S, "unknown-token", 13) == 0, "unknown token");
	CHECK(registry_unregister(t, &S, ios, strlen(ios)) == 1, "unregister A's last token");
	mdb_txn_commit(t);
	store_close(&S);
	CHECK(store_open(&S, dir, 64, 0, err, sizeof err) == 0, "reopen");
	g = resolve(A, 0, &tg);
	CHECK(tg == TARGET_UNTRACKED, "A's record is gone after a reopen");
	counts(&ni, &na, &nid);
	CHECK(ni == 0 && na == 2 && nid == 1, "counts after unregister");

	/* Provider feedback respects re-registration time. */
	REG(A, ios, PLATFORM_IOS, 0, 5000);
	t = begin();
	CHECK(registry_token_dead(t, &S, ios, strlen(ios), 4000) == 0, "token registered after the provider's timestamp is kept");
	CHECK(registry_token_dead(t, &S, ios, strlen(ios), 6000) == 1, "token dead since before its registration is removed");
	CHECK(registry_token_dead(t, &S, fcm, strlen(fcm), 9999) == 1 && registry_token_dead(t, &S, fcm, strlen(fcm), 9999) == 0, "exactly that token, once");
	mdb_txn_commit(t);
	g = resolve(B, 0, &tg);
	CHECK(g.n == 1 && has(&g, longtok), "the other token of B is untouched");

	/* Failure counter. */
	t = begin();
	CHECK(registry_token_failure(t, &S, longtok, 1024, 0) == 1 && registry_token_failure(t, &S, longtok, 1024, 0) == 2, "failures count up");
	CHECK(registry_token_failure(t, &S, longtok, 1024, 1) == 0, "delivery resets");
	mdb_txn_commit(t);

	/* Outbox: one message shared by jobs, released with the last job. */
	uint64_t msg, j1, j2;
	struct outbox_job j;
	const void *data;
	size_t dlen;
	t = begin();
	CHECK(outbox_add_msg(t, &S, "payload", 7, 2, &msg) == 0, "message stored");
	CHECK(outbox_add_job(t, &S, msg, PLATFORM_IOS, KIND_BCHAT, "tokA", 4, 100, 1000, &j1) == 0, "job 1");
	CHECK(outbox_add_job(t, &S, msg, PLATFORM_ANDROID, KIND_BCHAT, "tokB", 4, 100, 1000, &j2) == 0, "job 2");
	CHECK(outbox_count(t, &S) == 2, "two jobs");
	CHECK(outbox_get(t, &S, j2, &j, &data, &dlen) == 1 && dlen == 7 && memcmp(data, "payload", 7) == 0 && strcmp(j.token, "tokB") == 0, "job reads back with its data");
	CHECK(outbox_reschedule(t, &S, &j, 500) == 0 && j.attempts == 1, "rescheduled");
	CHECK(outbox_get(t, &S, j1, &j, NULL, NULL) == 1 && outbox_finish(t, &S, &j) == 0, "job 1 finished");
	CHECK(outbox_get(t, &S, j2, &j, &data, &dlen) == 1 && dlen == 7 && j.due_ms == 500, "message survives while job 2 lives");
	CHECK(outbox_finish(t, &S, &j) == 0 && outbox_count(t, &S) == 0, "all jobs finished");
	mdb_txn_commit(t);
	t = begin();
	MDB_stat st;
	mdb_stat(t, S.msgs, &st);
	CHECK(st.ms_entries == 0, "message released with its last job");
	mdb_stat(t, S.due, &st);
	CHECK(st.ms_entries == 0, "due index empty");
	mdb_txn_abort(t);

	/* Caps (router.max_tokens_per_id, max_groups_per_id, max_group_members). */
	{
		const char *C = "bd3333333333333333333333333333333333333333333333333333333333333333";
		const char *M1 = "bd4444444444444444444444444444444444444444444444444444444444444444";
		const char *M2 = "bd5555555555555555555555555555555555555555555555555555555555555555";
		const char *G1 = "bd6666666666666666666666666666666666666666666666666666666666666661";
		const char *G2 = "bd6666666666666666666666666666666666666666666666666666666666666662";
		const char *G3 = "bd6666666666666666666666666666666666666666666666666666666666666663";
		S.max_tokens = 2;
		S.max_groups = 2;
		S.max_members = 2;
		REG(C, "cap-tok-1", PLATFORM_ANDROID, 0, 100);
		REG(C, "cap-tok-2", PLATFORM_ANDROID, 0, 100);
		t = begin();
		CHECK(registry_register(t, &S, C, strlen(C), "cap-tok-3", 9, PLATFORM_ANDROID, 0, 100) == REG_LIMIT,
		      "a third token for an id with max_tokens 2 is refused");
		CHECK(registry_register(t, &S, C, strlen(C), "cap-tok-2", 9, PLATFORM_IOS, 0, 200) == 0,
		      "re-registering a token the id holds is not a new one");
		CHECK(registry_subscribe(t, &S, G1, strlen(G1), C, strlen(C)) == 0 &&
			      registry_subscribe(t, &S, G2, strlen(G2), C, strlen(C)) == 0,
		      "two groups for C");
		CHECK(registry_subscribe(t, &S, G3, strlen(G3), C, strlen(C)) == REG_LIMIT,
		      "a third group for C (max_groups 2) is refused");
		CHECK(registry_subscribe(t, &S, G1, strlen(G1), C, strlen(C)) == 0, "subscribing again is not a new group");
		CHECK(registry_subscribe(t, &S, G1, strlen(G1), M1, strlen(M1)) == 0, "a second member for G1");
		CHECK(registry_subscribe(t, &S, G1, strlen(G1), M2, strlen(M2)) == REG_LIMIT,
		      "a third member for G1 (max_members 2) is refused");
		CHECK(registry_unsubscribe(t, &S, G1, strlen(G1), M1, strlen(M1)) == 1 &&
			      registry_subscribe(t, &S, G1, strlen(G1), M2, strlen(M2)) == 0,
		      "after one leaves, another may join");
		CHECK(registry_unsubscribe(t, &S, G2, strlen(G2), C, strlen(C)) == 1 &&
			      registry_subscribe(t, &S, G3, strlen(G3), C, strlen(C)) == 0,
		      "after leaving a group, C may join another");
		mdb_txn_commit(t);
		g = resolve(G1, 0, &tg);
		CHECK(tg == TARGET_CLOSED_GROUP && g.n == 2, "G1 reaches C's two tokens (M2 has none) (%d)", g.n);
		S.max_tokens = S.max_groups = S.max_members = 0;
	}

	/* The first group layout (one value with every member) is migrated on a writable open. */
	{
		const char *OG = "bd7777777777777777777777777777777777777777777777777777777777777777";
		unsigned char old[2 + 35], genc[35];
		MDB_val k = {35, genc}, v = {sizeof old, old};
		MDB_stat gs;
		/* the group and its member (bd33...33, the id C above) encoded as registry.c stores them */
		genc[0] = 1;
		genc[1] = 'b';
		genc[2] = 'd';
		memset(genc + 3, 0x77, 32);
		old[0] = 35;
		old[1] = 0;
		old[2] = 1;
		old[3] = 'b';
		old[4] = 'd';
		memset(old + 5, 0x33, 32);
		t = begin();
		v.mv_size = 2 + 35;
		CHECK(mdb_put(t, S.groups, &k, &v, 0) == 0, "an old-layout group with one member written directly");
		mdb_txn_commit(t);
		store_close(&S);
		CHECK(store_open(&S, dir, 64, 1, err, sizeof err) == 0, "read-only open leaves it as it is");
		store_close(&S);
		CHECK(store_open(&S, dir, 64, 0, err, sizeof err) == 0, "writable reopen migrates");
		g = resolve(OG, 0, &tg);
		CHECK(tg == TARGET_CLOSED_GROUP && g.n == 2 && has(&g, "cap-tok-1"), "the migrated group reaches its member's tokens (%d)", g.n);
		t = begin();
		mdb_stat(t, S.groups, &gs);
		CHECK(gs.ms_entries == 0, "the old layout is emptied");
		CHECK(registry_unsubscribe(t, &S, OG, 66, "bd3333333333333333333333333333333333333333333333333333333333333333", 66) == 1 &&
			      registry_unsubscribe(t, &S, OG, 66, "bd3333333333333333333333333333333333333333333333333333333333333333", 66) == 0,
		      "and its member can leave, deleting the group");
		mdb_txn_commit(t);
	}

	/* Apps (docs/config.md, section apps): each entry keeps its registration's app. */
	{
		const char *AP = "bd9999999999999999999999999999999999999999999999999999999999999999";
		struct registry_token rt;
		char idb[REG_ID_MAX + 1];
		t = begin();
		CHECK(registry_register_app(t, &S, AP, 66, "app-tok-1", 9, PLATFORM_IOS, "sbx", 3, 0, 100) == 0 &&
			      registry_register_app(t, &S, AP, 66, "app-tok-2", 9, PLATFORM_IOS, "", 0, 0, 100) == 0 &&
			      registry_register_app(t, &S, AP, 66, "app-tok-3", 9, PLATFORM_ANDROID, "two", 3, 0, 100) == 0,
		      "three tokens of one id in three apps");
		CHECK(registry_lookup_token(t, &S, "app-tok-1", 9, idb, &rt) == 1 && rt.app_len == 3 && memcmp(rt.app, "sbx", 3) == 0 &&
			      registry_lookup_token(t, &S, "app-tok-2", 9, idb, &rt) == 1 && rt.app_len == 0,
		      "each with its app (empty: the default app)");
		CHECK(registry_register_app(t, &S, AP, 66, "app-tok-1", 9, PLATFORM_IOS, "longer-app-name", 15, 0, 200) == 0 &&
			      registry_lookup_token(t, &S, "app-tok-1", 9, idb, &rt) == 1 && rt.app_len == 15 &&
			      registry_lookup_token(t, &S, "app-tok-3", 9, idb, &rt) == 1 && rt.app_len == 3 && memcmp(rt.app, "two", 3) == 0,
		      "re-registering in another app rewrites the entry in place; the others are intact");
		mdb_txn_commit(t);
		g = resolve(AP, 0, &tg);
		CHECK(g.n == 3 && strcmp(g.tokens[0], "app-tok-1") == 0 && strcmp(g.tokens[2], "app-tok-3") == 0,
		      "the record keeps its order");
		t = begin();
		CHECK(registry_token_dead_app(t, &S, "app-tok-3", 9, "one", 3, 9999) == 0 &&
			      registry_token_failure_app(t, &S, "app-tok-3", 9, "", 0, 0) == 0,
		      "another app's verdict neither removes a token nor counts a failure");
		CHECK(registry_token_dead_app(t, &S, "app-tok-3", 9, "two", 3, 9999) == 1, "its own app's verdict removes it");
		mdb_txn_commit(t);
	}

	/* Schema 1 (entries without their app) is migrated on a writable open: every entry belongs to
	 * its platform's default app; a read-only open reads the old layout. */
	{
		const char *OM = "bd5555555555555555555555555555555555555555555555555555555555555555";
		unsigned char enc[35], rec[1 + 2 * 12 + 4 + 5];
		MDB_val k = {35, enc}, v = {sizeof rec, rec};
		uint64_t when = 4242;
		static char dir2[] = "/tmp/pushpipe-test-registry1-XXXXXX";
		char rm[128];
		store_close(&S); /* a file of its own: every record of a schema-1 file is in the old layout */
		CHECK(mkdtemp(dir2) != NULL && store_open(&S, dir2, 64, 0, err, sizeof err) == 0, "a second file");
		enc[0] = 1;
		enc[1] = 'b';
		enc[2] = 'd';
		memset(enc + 3, 0x55, 32);
		rec[0] = 0;
		rec[1] = PLATFORM_IOS; /* entry 1: device, failures, registered, length 4, "old1" */
		rec[2] = 2;
		memcpy(rec + 3, &when, 8);
		rec[11] = 4;
		rec[12] = 0;
		memcpy(rec + 13, "old1", 4);
		rec[17] = PLATFORM_ANDROID; /* entry 2: length 5, "old-2" */
		rec[18] = 0;
		memcpy(rec + 19, &when, 8);
		rec[27] = 5;
		rec[28] = 0;
		memcpy(rec + 29, "old-2", 5);
		t = begin();
		mdb_del(t, S.ids, &k, NULL);
		CHECK(mdb_put(t, S.ids, &k, &v, 0) == 0 && store_meta_set(t, &S, "schema", 1) == 0,
		      "a schema-1 record written directly");
		mdb_txn_commit(t);
		store_close(&S);
		CHECK(store_open(&S, dir2, 64, 1, err, sizeof err) == 0 && S.registry_v1, "read-only open of schema 1");
		memset(&g, 0, sizeof g);
		if (mdb_txn_begin(S.env, NULL, MDB_RDONLY, &t) == 0) {
			registry_resolve(t, &S, OM, 66, 0, &tg, collect, &g);
			mdb_txn_abort(t);
		}
		CHECK(g.n == 2 && strcmp(g.tokens[0], "old1") == 0 && strcmp(g.tokens[1], "old-2") == 0,
		      "read-only: the old entries are read (%d)", g.n);
		store_close(&S);
		CHECK(store_open(&S, dir2, 64, 0, err, sizeof err) == 0 && !S.registry_v1, "writable reopen migrates");
		g = resolve(OM, 0, &tg);
		CHECK(g.n == 2 && strcmp(g.tokens[0], "old1") == 0 && strcmp(g.tokens[1], "old-2") == 0 &&
			      g.device[0] == PLATFORM_IOS && g.device[1] == PLATFORM_ANDROID,
		      "the migrated record has both tokens (%d)", g.n);
		t = begin();
		CHECK(registry_walk(t, &S, walk_entry, NULL) == 0 && walked == 2 && store_meta_get(t, &S, "schema") == STORE_SCHEMA_VERSION,
		      "each entry belongs to its platform's default app, the rest kept; schema %d", STORE_SCHEMA_VERSION);
		mdb_txn_abort(t);
		store_close(&S);
		snprintf(rm, sizeof rm, "rm -rf %s", dir2);
		if (system(rm) != 0)
			return 1;
		CHECK(store_open(&S, dir, 64, 0, err, sizeof err) == 0, "back to the first file");
	}

	/* Subscribe cost does not grow with the group: time the last 200 of 20 000 members against
	 * the first 200 (printed; asserted only loosely, the machine may be busy). */
	{
		const char *BG = "bd8888888888888888888888888888888888888888888888888888888888888888";
		char mid[67];
		uint64_t t0 = 0, first = 0, last = 0;
		t = begin();
		for (int i = 0; i < 20000; i++) {
			struct timespec ts;
			snprintf(mid, sizeof mid, "bd%064d", i);
			if (i == 0 || i == 19800) {
				clock_gettime(CLOCK_MONOTONIC, &ts);
				t0 = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
			}
			if (registry_subscribe(t, &S, BG, strlen(BG), mid, 66) != 0)
				break;
			if (i == 199 || i == 19999) {
				clock_gettime(CLOCK_MONOTONIC, &ts);
				*(i == 199 ? &first : &last) = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec - t0;
			}
		}
		mdb_txn_commit(t);
		printf("subscribe: first 200 members %.1f us each, last 200 of 20000 %.1f us each\n", first / 200e3,
		       last / 200e3);
		CHECK(last > 0 && last < 20 * first + 2000000, "the 20 000th subscribe costs about what the 200th did");
	}

	store_close(&S);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return test_done();
}
