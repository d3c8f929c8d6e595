/*
 * registry: which device tokens belong to which Bchat id, and which ids are in which
 * closed group (docs/protocol.md §6.4). Every function works inside the caller's write or
 * read transaction, so a request's changes commit (or not) as one.
 */
#ifndef REGISTRY_H
#define REGISTRY_H
#include "store.h"
#include <stddef.h>
#include <stdint.h>

#define REG_ID_MAX 256
#define REG_TOKEN_MAX 1024
#define REG_APP_MAX 32

/* Returned (instead of -1) when a registry cap (store.h: max_tokens, max_groups, max_members)
 * refuses a change; nothing was written. */
#define REG_LIMIT (-2)

enum registry_target { TARGET_UNTRACKED, TARGET_ONE_TO_ONE, TARGET_CLOSED_GROUP };

struct registry_token {
	const char *token;
	size_t token_len;
	uint32_t device; /* enum frame_platform */
	uint32_t failures;
	uint64_t registered_ms;
	const char *app; /* the registration's app (not NUL-terminated); empty = the platform's default */
	size_t app_len;
};

/* Called once per token that a notify resolves to; return non-zero to stop. */
typedef int (*registry_token_fn)(void *arg, const struct registry_token *t);

/* 0, REG_LIMIT when the id has max_tokens tokens and this one is new to it, -1 on error. */
int registry_register(MDB_txn *txn, const struct store *s, const char *id, size_t id_len, const char *token,
		      size_t token_len, uint32_t device, int legacy_groups_only, uint64_t now);
/* The same for an app (app_len bytes, ≤ REG_APP_MAX; empty = the platform's default app). */
int registry_register_app(MDB_txn *txn, const struct store *s, const char *id, size_t id_len, const char *token,
			  size_t token_len, uint32_t device, const char *app, size_t app_len, int legacy_groups_only,
			  uint64_t now);
/* 1 when the token was known and removed, 0 when unknown, -1 on a store error. */
int registry_unregister(MDB_txn *txn, const struct store *s, const char *token, size_t token_len);
/* 0 (also when already a member), REG_LIMIT when the group has max_members members or the id is
 * in max_groups groups, -1 on error. */
int registry_subscribe(MDB_txn *txn, const struct store *s, const char *group, size_t group_len, const char *id,
		       size_t id_len);
/* 1 when the group existed, 0 when unknown, -1 on a store error. */
int registry_unsubscribe(MDB_txn *txn, const struct store *s, const char *group, size_t group_len, const char *id,
			 size_t id_len);
/* Resolves a notify target to tokens (docs/protocol.md §6.4); -1 on a store error. */
int registry_resolve(MDB_txn *txn, const struct store *s, const char *send_to, size_t len, int skip_lgo,
		     enum registry_target *target, registry_token_fn fn, void *arg);
/* Provider feedback: removes the token unless it was registered after ts_ms. 1 = removed. */
int registry_token_dead(MDB_txn *txn, const struct store *s, const char *token, size_t token_len, uint64_t ts_ms);
/* The same, only when the token is a registration of app (NULL = any app); 0 otherwise. */
int registry_token_dead_app(MDB_txn *txn, const struct store *s, const char *token, size_t token_len, const char *app,
			    size_t app_len, uint64_t ts_ms);
int registry_token_failure_app(MDB_txn *txn, const struct store *s, const char *token, size_t token_len,
			       const char *app, size_t app_len, int reset);
/* Adds one consecutive failure (or resets with reset != 0); returns the new count, -1 on error. */
int registry_token_failure(MDB_txn *txn, const struct store *s, const char *token, size_t token_len, int reset);
/* Decodes an id as the registry stores it (docs/registry.md: 0 then the bytes, or 1, the two
 * prefix characters and the 32 bytes of a 66-character lowercase hex id) into out (REG_ID_MAX + 1
 * bytes, NUL-terminated); the id's length, 0 when enc is not such an encoding. */
size_t registry_id_decode(const unsigned char *enc, size_t len, char *out);
/* Looks a token up: fills the id (NUL-terminated, REG_ID_MAX + 1 bytes) and entry; 1 found, 0 not. */
int registry_lookup_token(MDB_txn *txn, const struct store *s, const char *token, size_t token_len, char *id,
			  struct registry_token *out);
/* The first layout's entries had no app (docs/registry.md). store_open calls this inside its
 * opening transaction on a writable open of such a file: every entry gets the platform's default
 * app; *moved counts the records rewritten. 0, or an LMDB error. */
int registry_migrate_apps(MDB_txn *txn, const struct store *s, size_t *moved);
/* Selects the record layout of the open store (s->registry_v1); called by store_open. */
void registry_layout(const struct store *s);
void registry_counts(MDB_txn *txn, const struct store *s, uint64_t *ios, uint64_t *android, uint64_t *ids);
/* Walks every id record (for export): fn gets the id and each token; returns -1 on error. */
int registry_walk(MDB_txn *txn, const struct store *s,
		  int (*fn)(void *arg, const char *id, size_t id_len, int lgo, const struct registry_token *t),
		  void *arg);
#endif
