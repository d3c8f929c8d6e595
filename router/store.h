/*
 * store: the router's LMDB environment — registry and outbox in one file, so a notify's jobs
 * and the registry they were resolved from commit together. Layout: docs/registry.md.
 */
#ifndef STORE_H
#define STORE_H
#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

/* 2: Bchat registry entries carry their app (registry.c); a writable open migrates version 1. */
#define STORE_SCHEMA_VERSION 2

struct store {
	MDB_env *env;
	MDB_dbi meta, tokens, ids, groups, jobs, msgs, due;
	/* UWPX / XMPP (uwpx_xmpp_reg.h): devices, account links, push nodes, ad-hoc identities. Absent in a
	 * database no router of this version has written yet (read-only opens): has_xreg is 0. */
	MDB_dbi udev, ulink, xnodes, xident;
	int has_xreg;
	/* Closed groups (registry.c): group → member ids and id → groups, both dupsort, so one
	 * subscribe costs the same at any group size. Absent only in a read-only open of a file no
	 * router of this version has opened (has_members 0: `groups` still has the old layout). */
	MDB_dbi gmembers, idgroups;
	int has_members;
	/* Schema version 1 read-only: registry entries without their app (registry.c reads both). */
	int registry_v1;
	/* Registry caps (router.max_tokens_per_id, max_groups_per_id, max_group_members); 0 = none.
	 * Set by the owner after store_open. */
	uint64_t max_tokens, max_groups, max_members;
	unsigned char hash_key[16]; /* SipHash key for the token index, kept in meta */
};

/* Opens (creating) the environment at path (a directory) with the given map size. */
int store_open(struct store *s, const char *path, size_t map_size_mb, int readonly, char *err, size_t errlen);
void store_close(struct store *s);
/* meta counters: little u64 values under short names. */
uint64_t store_meta_get(MDB_txn *txn, const struct store *s, const char *name);
int store_meta_set(MDB_txn *txn, const struct store *s, const char *name, uint64_t v);
int store_meta_add(MDB_txn *txn, const struct store *s, const char *name, int64_t delta);
/* The map's size and the bytes in use (pages ever used, less those on LMDB's free list), for
 * the gauge and the registration stop. -1 on a store error. */
int store_map_use(const struct store *s, uint64_t *used, uint64_t *size);
void store_be64(unsigned char out[8], uint64_t v);
uint64_t store_rd_be64(const unsigned char in[8]);
#endif
