/*
 * outbox: jobs, messages and the due-time index in the router's LMDB (docs/registry.md).
 *   jobs  be64 job id → platform u8, kind u8, attempts u32, accepted u64, due u64,
 *                       max age u64, message id u64, token length u16, reference length u8,
 *                       flags u8, token, reference (device id or node; none for Bchat jobs),
 *                       app (the rest of the value, ≤ 32 bytes: the app whose sender instances
 *                       deliver it; none = the platform's default app, as every job stored
 *                       before jobs carried their app)
 *   msgs  be64 message id → references u32, data
 *   due   be64 due ‖ be64 job id → (empty)
 * Keys are big-endian so LMDB's byte order is time order.
 */
#include "outbox.h"
#include <stdlib.h>
#include <string.h>

#define JOB_HDR 42

static int next_id(MDB_txn *txn, const struct store *s, const char *name, uint64_t *out)
{
	uint64_t v = store_meta_get(txn, s, name) + 1;
	*out = v;
	return store_meta_set(txn, s, name, v);
}

int outbox_add_msg(MDB_txn *txn, const struct store *s, const void *data, size_t len, uint32_t refs, uint64_t *msg_id)
{
	unsigned char key[8];
	MDB_val k = {8, key}, v = {len + 4, NULL};

	if (next_id(txn, s, "next_msg", msg_id) < 0)
		return -1;
	store_be64(key, *msg_id);
	if (mdb_put(txn, s->msgs, &k, &v, MDB_RESERVE) != 0)
		return -1;
	memcpy(v.mv_data, &refs, 4);
	memcpy((unsigned char *)v.mv_data + 4, data, len);
	return 0;
}

static void job_encode(const struct outbox_job *j, unsigned char *b)
{
	uint16_t tl = (uint16_t)j->token_len;
	b[0] = (unsigned char)j->platform;
	b[1] = (unsigned char)j->kind;
	memcpy(b + 2, &j->attempts, 4);
	memcpy(b + 6, &j->accepted_ms, 8);
	memcpy(b + 14, &j->due_ms, 8);
	memcpy(b + 22, &j->max_age_ms, 8);
	memcpy(b + 30, &j->msg_id, 8);
	memcpy(b + 38, &tl, 2);
	b[40] = (unsigned char)j->ref_len;
	b[41] = (unsigned char)j->flags;
	memcpy(b + JOB_HDR, j->token, j->token_len);
	memcpy(b + JOB_HDR + j->token_len, j->ref, j->ref_len);
	memcpy(b + JOB_HDR + j->token_len + j->ref_len, j->app, j->app_len);
}

static int due_put(MDB_txn *txn, const struct store *s, uint64_t due, uint64_t id, int del)
{
	unsigned char key[16];
	MDB_val k = {16, key}, v = {0, ""};
	store_be64(key, due);
	store_be64(key + 8, id);
	if (del) {
		int rc = mdb_del(txn, s->due, &k, NULL);
		return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
	}
	return mdb_put(txn, s->due, &k, &v, 0) == 0 ? 0 : -1;
}

static int job_put(MDB_txn *txn, const struct store *s, const struct outbox_job *j)
{
	unsigned char key[8];
	MDB_val k = {8, key}, v = {JOB_HDR + j->token_len + j->ref_len + j->app_len, NULL};
	store_be64(key, j->id);
	if (mdb_put(txn, s->jobs, &k, &v, MDB_RESERVE) != 0)
		return -1;
	job_encode(j, v.mv_data);
	return 0;
}

int outbox_add_job(MDB_txn *txn, const struct store *s, uint64_t msg_id, uint32_t platform, uint32_t kind,
		   const char *token, size_t token_len, uint64_t now, uint64_t max_age_ms, uint64_t *job_id)
{
	return outbox_add_job_ref(txn, s, msg_id, platform, kind, token, token_len, NULL, 0, 0, now, max_age_ms, job_id);
}

int outbox_add_job_ref(MDB_txn *txn, const struct store *s, uint64_t msg_id, uint32_t platform, uint32_t kind,
		       const char *token, size_t token_len, const char *ref, size_t ref_len, uint32_t flags,
		       uint64_t now, uint64_t max_age_ms, uint64_t *job_id)
{
	return outbox_add_job_app(txn, s, msg_id, platform, kind, token, token_len, ref, ref_len, flags, "", 0, now,
				  max_age_ms, job_id);
}

int outbox_add_job_app(MDB_txn *txn, const struct store *s, uint64_t msg_id, uint32_t platform, uint32_t kind,
		       const char *token, size_t token_len, const char *ref, size_t ref_len, uint32_t flags,
		       const char *app, size_t app_len, uint64_t now, uint64_t max_age_ms, uint64_t *job_id)
{
	struct outbox_job j;

	if (token_len > 1024 || ref_len > OUTBOX_REF_MAX || flags > 0xff || app_len > OUTBOX_APP_MAX ||
	    next_id(txn, s, "next_job", job_id) < 0)
		return -1;
	memset(&j, 0, sizeof j);
	j.id = *job_id;
	j.platform = platform;
	j.kind = kind;
	j.accepted_ms = now;
	j.due_ms = now;
	j.max_age_ms = max_age_ms;
	j.msg_id = msg_id;
	j.token_len = token_len;
	memcpy(j.token, token, token_len);
	j.ref_len = ref_len;
	if (ref_len)
		memcpy(j.ref, ref, ref_len);
	j.flags = flags;
	j.app_len = app_len;
	if (app_len)
		memcpy(j.app, app, app_len);
	if (job_put(txn, s, &j) < 0 || due_put(txn, s, j.due_ms, j.id, 0) < 0)
		return -1;
	return store_meta_add(txn, s, "n_jobs", 1);
}

int outbox_get(MDB_txn *txn, const struct store *s, uint64_t job_id, struct outbox_job *j, const void **data,
	       size_t *dlen)
{
	unsigned char key[8];
	MDB_val k = {8, key}, v;
	const unsigned char *b;
	uint16_t tl;
	int rc;

	store_be64(key, job_id);
	if ((rc = mdb_get(txn, s->jobs, &k, &v)) != 0)
		return rc == MDB_NOTFOUND ? 0 : -1;
	b = v.mv_data;
	if (v.mv_size < JOB_HDR)
		return -1;
	memcpy(&tl, b + 38, 2);
	if (v.mv_size < JOB_HDR + (size_t)tl + b[40] || v.mv_size > JOB_HDR + (size_t)tl + b[40] + OUTBOX_APP_MAX ||
	    tl > 1024 || b[40] > OUTBOX_REF_MAX)
		return -1;
	j->id = job_id;
	j->platform = b[0];
	j->kind = b[1];
	memcpy(&j->attempts, b + 2, 4);
	memcpy(&j->accepted_ms, b + 6, 8);
	memcpy(&j->due_ms, b + 14, 8);
	memcpy(&j->max_age_ms, b + 22, 8);
	memcpy(&j->msg_id, b + 30, 8);
	j->token_len = tl;
	memcpy(j->token, b + JOB_HDR, tl);
	j->token[tl] = '\0';
	j->ref_len = b[40];
	j->flags = b[41];
	memcpy(j->ref, b + JOB_HDR + tl, j->ref_len);
	j->ref[j->ref_len] = '\0';
	j->app_len = v.mv_size - JOB_HDR - tl - j->ref_len;
	memcpy(j->app, b + JOB_HDR + tl + j->ref_len, j->app_len);
	j->app[j->app_len] = '\0';
	if (data) {
		store_be64(key, j->msg_id);
		if (mdb_get(txn, s->msgs, &k, &v) != 0 || v.mv_size < 4)
			return -1;
		*data = (const unsigned char *)v.mv_data + 4;
		*dlen = v.mv_size - 4;
	}
	return 1;
}

int outbox_finish(MDB_txn *txn, const struct store *s, const struct outbox_job *j)
{
	unsigned char key[8];
	MDB_val k = {8, key}, v;
	uint32_t refs;

	store_be64(key, j->id);
	if (mdb_del(txn, s->jobs, &k, NULL) != 0 || due_put(txn, s, j->due_ms, j->id, 1) < 0 ||
	    store_meta_add(txn, s, "n_jobs", -1) < 0)
		return -1;
	store_be64(key, j->msg_id);
	if (mdb_get(txn, s->msgs, &k, &v) != 0 || v.mv_size < 4)
		return 0; /* already gone: nothing to release */
	memcpy(&refs, v.mv_data, 4);
	if (refs <= 1)
		return mdb_del(txn, s->msgs, &k, NULL) == 0 ? 0 : -1;
	refs--;
	{
		unsigned char *copy = malloc(v.mv_size);
		int rc;
		if (copy == NULL)
			return -1;
		memcpy(copy, v.mv_data, v.mv_size);
		memcpy(copy, &refs, 4);
		v.mv_data = copy;
		rc = mdb_put(txn, s->msgs, &k, &v, 0);
		free(copy);
		return rc == 0 ? 0 : -1;
	}
}

/* Moves the job in `due`, counting an attempt or not. */
static int move(MDB_txn *txn, const struct store *s, struct outbox_job *j, uint64_t due_ms, int attempted)
{
	if (due_put(txn, s, j->due_ms, j->id, 1) < 0)
		return -1;
	j->due_ms = due_ms;
	if (attempted)
		j->attempts++;
	if (job_put(txn, s, j) < 0 || due_put(txn, s, j->due_ms, j->id, 0) < 0)
		return -1;
	return 0;
}

int outbox_reschedule(MDB_txn *txn, const struct store *s, struct outbox_job *j, uint64_t due_ms)
{
	return move(txn, s, j, due_ms, 1);
}

int outbox_defer(MDB_txn *txn, const struct store *s, struct outbox_job *j, uint64_t due_ms)
{
	return move(txn, s, j, due_ms, 0);
}

int outbox_scan(MDB_txn *txn, const struct store *s, uint64_t until, int (*fn)(void *arg, uint64_t job_id, uint64_t due),
		void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if (mdb_cursor_open(txn, s->due, &c) != 0)
		return -1;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t due, id;
		if (k.mv_size != 16)
			continue;
		due = store_rd_be64(k.mv_data);
		id = store_rd_be64((unsigned char *)k.mv_data + 8);
		if (due > until || fn(arg, id, due))
			break;
	}
	mdb_cursor_close(c);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

uint64_t outbox_count(MDB_txn *txn, const struct store *s)
{
	return store_meta_get(txn, s, "n_jobs");
}
