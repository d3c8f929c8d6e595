/*
 * store: opens the router's LMDB environment and keeps its small meta table (schema version,
 * hash key, counters). The router is the only writer; pushctl opens it read-only.
 */
#include "store.h"
#include "registry.h"
#include "log.h"
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void store_be64(unsigned char out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

uint64_t store_rd_be64(const unsigned char in[8])
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | in[i];
	return v;
}

uint64_t store_meta_get(MDB_txn *txn, const struct store *s, const char *name)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	uint64_t x = 0;
	if (mdb_get(txn, s->meta, &k, &v) == 0 && v.mv_size == 8)
		memcpy(&x, v.mv_data, 8);
	return x;
}

int store_meta_set(MDB_txn *txn, const struct store *s, const char *name, uint64_t x)
{
	MDB_val k = {strlen(name), (void *)name}, v = {8, &x};
	return mdb_put(txn, s->meta, &k, &v, 0) == 0 ? 0 : -1;
}

int store_meta_add(MDB_txn *txn, const struct store *s, const char *name, int64_t delta)
{
	uint64_t x = store_meta_get(txn, s, name);
	x = (delta < 0 && (uint64_t)-delta > x) ? 0 : x + (uint64_t)delta;
	return store_meta_set(txn, s, name, x);
}

/* Moves closed groups from the first layout (one `groups` value holding every member: u16
 * length + encoded id each) to `gmembers` / `idgroups`, then empties `groups`. Runs inside the
 * opening transaction, so a crash leaves either layout whole. */
static int migrate_groups(MDB_txn *txn, const struct store *s)
{
	MDB_cursor *c;
	MDB_val k, v;
	MDB_stat st;
	int rc;
	size_t ngroups = 0;

	if ((rc = mdb_stat(txn, s->groups, &st)) != 0 || st.ms_entries == 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->groups, &c)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		const unsigned char *g = v.mv_data;
		ngroups++;
		for (size_t off = 0; off + 2 <= v.mv_size;) {
			size_t ml = (size_t)g[off] | (size_t)g[off + 1] << 8;
			MDB_val mk, mv = {ml, (void *)(g + off + 2)}, gk = k;
			if (off + 2 + ml > v.mv_size || ml == 0)
				break; /* a damaged tail: what came before it is kept */
			mk = mv;
			if ((rc = mdb_put(txn, s->gmembers, &gk, &mv, MDB_NODUPDATA)) != 0 && rc != MDB_KEYEXIST)
				goto out;
			if ((rc = mdb_put(txn, s->idgroups, &mk, &gk, MDB_NODUPDATA)) != 0 && rc != MDB_KEYEXIST)
				goto out;
			off += 2 + ml;
		}
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
out:
	mdb_cursor_close(c);
	if (rc == 0)
		rc = mdb_drop(txn, s->groups, 0);
	if (rc == 0)
		log_info("registry: %zu closed groups moved to the per-member layout", ngroups);
	return rc;
}

int store_open(struct store *s, const char *path, size_t map_size_mb, int readonly, char *err, size_t errlen)
{
	MDB_txn *txn;
	int rc;
	unsigned int flags = readonly ? MDB_RDONLY : 0;
	unsigned int dflags = readonly ? 0 : MDB_CREATE;

	memset(s, 0, sizeof *s);
	if (!readonly)
		mkdir(path, 0700);
	if ((rc = mdb_env_create(&s->env)) != 0 || (rc = mdb_env_set_maxdbs(s->env, 16)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, map_size_mb << 20)) != 0 ||
	    (rc = mdb_env_open(s->env, path, flags | MDB_NOTLS, 0600)) != 0) {
		snprintf(err, errlen, "%s: %s", path, mdb_strerror(rc));
		if (s->env)
			mdb_env_close(s->env);
		s->env = NULL;
		return -1;
	}
	if ((rc = mdb_txn_begin(s->env, NULL, flags, &txn)) != 0)
		goto fail;
	if ((rc = mdb_dbi_open(txn, "meta", dflags, &s->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "tokens", dflags | MDB_DUPSORT, &s->tokens)) != 0 ||
	    (rc = mdb_dbi_open(txn, "ids", dflags, &s->ids)) != 0 ||
	    (rc = mdb_dbi_open(txn, "groups", dflags, &s->groups)) != 0 ||
	    (rc = mdb_dbi_open(txn, "jobs", dflags, &s->jobs)) != 0 ||
	    (rc = mdb_dbi_open(txn, "msgs", dflags, &s->msgs)) != 0 ||
	    (rc = mdb_dbi_open(txn, "due", dflags, &s->due)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	rc = mdb_dbi_open(txn, "udev", dflags, &s->udev);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "ulink", dflags, &s->ulink);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "xnodes", dflags, &s->xnodes);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "xident", dflags, &s->xident);
	if (rc != 0 && !(readonly && rc == MDB_NOTFOUND)) {
		mdb_txn_abort(txn);
		goto fail;
	}
	s->has_xreg = rc == 0;
	rc = mdb_dbi_open(txn, "gmembers", dflags | MDB_DUPSORT, &s->gmembers);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "idgroups", dflags | MDB_DUPSORT, &s->idgroups);
	if (rc != 0 && !(readonly && rc == MDB_NOTFOUND)) {
		mdb_txn_abort(txn);
		goto fail;
	}
	s->has_members = rc == 0;
	if (!readonly && (rc = migrate_groups(txn, s)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	{
		MDB_val k = {8, "hash_key"}, v;
		uint64_t ver = store_meta_get(txn, s, "schema");
		if (mdb_get(txn, s->meta, &k, &v) == 0 && v.mv_size == 16) {
			memcpy(s->hash_key, v.mv_data, 16);
		} else if (!readonly) {
			randombytes_buf(s->hash_key, 16);
			v.mv_size = 16;
			v.mv_data = s->hash_key;
			if (mdb_put(txn, s->meta, &k, &v, 0) != 0 || store_meta_set(txn, s, "schema", STORE_SCHEMA_VERSION) < 0) {
				mdb_txn_abort(txn);
				rc = EIO;
				goto fail;
			}
			ver = STORE_SCHEMA_VERSION;
		}
		if (ver != 0 && ver != 1 && ver != STORE_SCHEMA_VERSION) {
			mdb_txn_abort(txn);
			snprintf(err, errlen, "%s: schema version %llu, this build reads 1 and %d", path,
				 (unsigned long long)ver, STORE_SCHEMA_VERSION);
			mdb_env_close(s->env);
			s->env = NULL;
			return -1;
		}
		if (ver == 1 && readonly) {
			s->registry_v1 = 1;
		} else if (ver == 1) {
			/* Registrations made before they carried their app belong to their platform's
			 * default app (docs/registry.md): one pass, in this transaction. */
			size_t moved;
			if ((rc = registry_migrate_apps(txn, s, &moved)) != 0 ||
			    (rc = store_meta_set(txn, s, "schema", STORE_SCHEMA_VERSION) < 0 ? EIO : 0) != 0) {
				mdb_txn_abort(txn);
				goto fail;
			}
			log_info("registry: %zu ids moved to the layout with apps (their tokens belong to their "
				 "platform's default app)", moved);
		}
	}
	registry_layout(s);
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", path, mdb_strerror(rc));
	mdb_env_close(s->env);
	s->env = NULL;
	return -1;
}

void store_close(struct store *s)
{
	if (s->env)
		mdb_env_close(s->env);
	s->env = NULL;
}

int store_map_use(const struct store *s, uint64_t *used, uint64_t *size)
{
	MDB_envinfo info;
	MDB_stat st;
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t free_pages = 0, pages;
	int rc;

	if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
		return -1;
	pages = (uint64_t)info.me_last_pgno + 1;
	/* The free list (database 0): each value is a page-number list whose first word is its
	 * length. Pages freed there are reused before the map grows. */
	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	if ((rc = mdb_cursor_open(txn, 0, &c)) == 0) {
		while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
			if (v.mv_size >= sizeof(size_t)) {
				size_t n;
				memcpy(&n, v.mv_data, sizeof n);
				if (n <= v.mv_size / sizeof(size_t))
					free_pages += n;
			}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	if (free_pages > pages)
		free_pages = pages;
	*used = (pages - free_pages) * st.ms_psize;
	*size = (uint64_t)info.me_mapsize;
	return 0;
}
