/*
 * outbox: durable delivery jobs. A notify becomes one message (the data, stored once) and
 * one job per token; a job leaves only on a final outcome (design.md "Durability").
 */
#ifndef OUTBOX_H
#define OUTBOX_H
#include "store.h"
#include <stddef.h>
#include <stdint.h>

#define OUTBOX_REF_MAX 64
#define OUTBOX_APP_MAX 32
#define OUTBOX_F_TEST 0x1u /* a UWPX test push: someone waits for its outcome */

struct outbox_job {
	uint64_t id;
	uint32_t platform, kind, attempts;
	uint64_t accepted_ms, due_ms, max_age_ms, msg_id;
	char token[1025];
	size_t token_len;
	/* What the result handling needs besides the token: the UWPX device id of a KIND_WNS job,
	 * the push node of a KIND_XMPP job; empty for KIND_BCHAT. */
	char ref[OUTBOX_REF_MAX + 1];
	size_t ref_len;
	uint32_t flags; /* OUTBOX_F_* */
	/* The app whose sender instances deliver it (docs/config.md, section apps); empty = the
	 * platform's default app. */
	char app[OUTBOX_APP_MAX + 1];
	size_t app_len;
};

/* Stores the message data shared by refs jobs; its id in *msg_id. */
int outbox_add_msg(MDB_txn *txn, const struct store *s, const void *data, size_t len, uint32_t refs, uint64_t *msg_id);
/* Adds one job due now; its id in *job_id. */
int outbox_add_job(MDB_txn *txn, const struct store *s, uint64_t msg_id, uint32_t platform, uint32_t kind,
		   const char *token, size_t token_len, uint64_t now, uint64_t max_age_ms, uint64_t *job_id);
/* The same with a reference and flags (see struct outbox_job). */
int outbox_add_job_ref(MDB_txn *txn, const struct store *s, uint64_t msg_id, uint32_t platform, uint32_t kind,
		       const char *token, size_t token_len, const char *ref, size_t ref_len, uint32_t flags,
		       uint64_t now, uint64_t max_age_ms, uint64_t *job_id);
/* The same for an app (≤ OUTBOX_APP_MAX bytes; empty = the platform's default app). */
int outbox_add_job_app(MDB_txn *txn, const struct store *s, uint64_t msg_id, uint32_t platform, uint32_t kind,
		       const char *token, size_t token_len, const char *ref, size_t ref_len, uint32_t flags,
		       const char *app, size_t app_len, uint64_t now, uint64_t max_age_ms, uint64_t *job_id);
/* Reads a job and (when data is not NULL) its message data; 1 found, 0 gone, -1 error.
 * The data pointer is valid until the transaction ends. */
int outbox_get(MDB_txn *txn, const struct store *s, uint64_t job_id, struct outbox_job *j, const void **data,
	       size_t *dlen);
/* Removes a finished job and releases its message. */
int outbox_finish(MDB_txn *txn, const struct store *s, const struct outbox_job *j);
/* Moves a job's due time and counts an attempt. */
int outbox_reschedule(MDB_txn *txn, const struct store *s, struct outbox_job *j, uint64_t due_ms);
/* Moves a job's due time without counting an attempt (it was not sent). */
int outbox_defer(MDB_txn *txn, const struct store *s, struct outbox_job *j, uint64_t due_ms);
/* Calls fn for due jobs in due order with due ≤ until; stops when fn returns non-zero. */
int outbox_scan(MDB_txn *txn, const struct store *s, uint64_t until, int (*fn)(void *arg, uint64_t job_id, uint64_t due),
		void *arg);
uint64_t outbox_count(MDB_txn *txn, const struct store *s);
#endif
