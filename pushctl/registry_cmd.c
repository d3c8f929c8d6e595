/*
 * registry_cmd: pushctl's read-only views of the router's registry (counts, lookup, export).
 * Opens LMDB read-only, so it is safe while the router runs: readers never block the writer.
 */
#include "../router/registry.h"
#include "config.h"
#include "pushctl.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *device_name(uint32_t d)
{
	return d == 1 ? "ios" : d == 2 ? "android" : d == 3 ? "huawei" : "unknown";
}

/* Each device type's default app (docs/config.md, section apps), as the configuration names it:
 * the registry stores it as the empty name. */
static char default_app[4][33];

static int open_ro(const char *conf, struct store *s, MDB_txn **txn)
{
	static const char *const platforms[4] = {"", "apns", "fcm", "hms"};
	struct config c;
	char err[512];

	if (config_load(&c, conf, err, sizeof err) < 0) {
		fprintf(stderr, "pushctl: %s\n", err);
		return -1;
	}
	for (int d = 1; d < 4; d++)
		snprintf(default_app[d], sizeof default_app[d], "%s", config_app_of(&c, platforms[d]));
	if (store_open(s, c.router.db_path, (size_t)c.router.map_size_mb, 1, err, sizeof err) < 0) {
		fprintf(stderr, "pushctl: registry: %s\n", err);
		config_free(&c);
		return -1;
	}
	config_free(&c);
	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn) != 0) {
		store_close(s);
		return -1;
	}
	return 0;
}

static json_t *token_json(const char *id, size_t id_len, int lgo, const struct registry_token *t)
{
	const char *app = t->app_len ? t->app : t->device < 4 ? default_app[t->device] : "";
	size_t app_len = t->app_len ? t->app_len : strlen(app);
	return json_pack("{s:s%,s:s%,s:s,s:s%,s:b,s:i,s:I}", "id", id, id_len, "token", t->token, t->token_len, "device",
			 device_name(t->device), "app", app, app_len, "legacy_groups_only", lgo, "failures",
			 (int)t->failures, "registered_ms", (json_int_t)t->registered_ms);
}

static int print_line(void *arg, const char *id, size_t id_len, int lgo, const struct registry_token *t)
{
	json_t *j = token_json(id, id_len, lgo, t);
	char *s = json_dumps(j, JSON_COMPACT);
	(void)arg;
	puts(s);
	free(s);
	json_decref(j);
	return 0;
}

struct find_ctx {
	const char *id;
	size_t id_len;
	const char *token; /* NULL: every token of the id */
	int found;
};

static int print_if_id(void *arg, const char *id, size_t id_len, int lgo, const struct registry_token *t)
{
	struct find_ctx *f = arg;
	if (id_len == f->id_len && memcmp(id, f->id, id_len) == 0 &&
	    (f->token == NULL || (strlen(f->token) == t->token_len && memcmp(f->token, t->token, t->token_len) == 0))) {
		f->found = 1;
		print_line(NULL, id, id_len, lgo, t);
	}
	return 0;
}

int pushctl_registry(const char *conf, int argc, char **argv)
{
	struct store s;
	MDB_txn *txn;
	int rc = 0;

	if (argc < 1) {
		fprintf(stderr, "usage: pushctl -c CONFIG counts | lookup ID_OR_TOKEN | export\n");
		return 2;
	}
	if (open_ro(conf, &s, &txn) < 0)
		return 1;
	if (strcmp(argv[0], "counts") == 0) {
		uint64_t ios, android, ids, jobs = store_meta_get(txn, &s, "n_jobs");
		registry_counts(txn, &s, &ios, &android, &ids);
		printf("ids %llu\nios %llu\nandroid %llu\noutbox_jobs %llu\n", (unsigned long long)ids,
		       (unsigned long long)ios, (unsigned long long)android, (unsigned long long)jobs);
	} else if (strcmp(argv[0], "export") == 0) {
		rc = registry_walk(txn, &s, print_line, NULL) < 0 ? 1 : 0;
	} else if (strcmp(argv[0], "lookup") == 0 && argc == 2) {
		char id[REG_ID_MAX + 1];
		struct registry_token t;
		if (registry_lookup_token(txn, &s, argv[1], strlen(argv[1]), id, &t) == 1) {
			/* Through the id's record, which also knows its legacy_groups_only flag. */
			struct find_ctx f = {id, strlen(id), argv[1], 0};
			registry_walk(txn, &s, print_if_id, &f);
		} else {
			/* Not a token: look for an id (a full walk; ids are few per lookup by hand). */
			struct find_ctx f = {argv[1], strlen(argv[1]), NULL, 0};
			registry_walk(txn, &s, print_if_id, &f);
			if (!f.found) {
				fprintf(stderr, "pushctl: %s: no such id or token\n", argv[1]);
				rc = 1;
			}
		}
	} else {
		fprintf(stderr, "pushctl: unknown registry command %s\n", argv[0]);
		rc = 2;
	}
	mdb_txn_abort(txn);
	store_close(&s);
	return rc;
}
