/*
 * cluster_cmd: pushctl's moves between one machine and a cluster (docs/cluster.md, "Moving a
 * registry into a cluster and back").
 *
 *   cluster-import   reads the single-machine registry at router.db_path (read-only, safe while
 *                    that router runs) and publishes every registration and closed-group
 *                    membership as a registry change on PP_REGISTRY, with the configuration's
 *                    cluster section (the admin NATS user); every router of the cluster applies
 *                    them like any other change. A registration keeps its registration time and
 *                    its consecutive failures (headers of its change).
 *   cluster-export DIR  writes a compact copy of a cluster router's registry (router.db_path,
 *                    which holds the whole registry) to DIR: the database of a single-machine
 *                    router.
 *
 * Trusts the configuration and the databases it names (the router wrote them). Holds nothing.
 */
#include "../router/registry.h"
#include "../router/uwpx_xmpp_reg.h"
#include "bus.h"
#include "config.h"
#include "frame.h"
#include "pushctl.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_BATCH 1000

struct importer {
	struct bus bus;
	natsMsg *msgs[IMPORT_BATCH];
	size_t n;
	uint64_t registrations, memberships;
	int failed;
};

static int flush(struct importer *im)
{
	if (im->n == 0 || im->failed)
		return im->failed ? -1 : 0;
	if (bus_publish(&im->bus, im->msgs, im->n, NULL, 10000) < 0) {
		fprintf(stderr, "pushctl: the cluster did not acknowledge %zu registry changes; run the import again "
				"(it is idempotent)\n",
			im->n);
		im->failed = 1;
	}
	im->n = 0;
	return im->failed ? -1 : 0;
}

/* One change; its id is the hash of the frame and of what its headers carry, so an import run
 * twice within the stream's dedupe window stores each change once (and applying one again
 * changes nothing anyway). A registration (t not NULL) carries its registration time and its
 * consecutive failures in the headers Pp-Registered and Pp-Failures, which the routers apply
 * with it (router/cluster.c, apply_register). */
static int add(struct importer *im, const char *subject, const uint8_t *frame, size_t len,
	       const struct registry_token *t)
{
	crypto_generichash_state st;
	unsigned char h[16];
	char id[40], when[24], fails[12];
	natsMsg *m;

	snprintf(when, sizeof when, "%llu", t ? (unsigned long long)t->registered_ms : 0ULL);
	snprintf(fails, sizeof fails, "%u", t ? (unsigned)t->failures : 0U);
	crypto_generichash_init(&st, NULL, 0, sizeof h);
	crypto_generichash_update(&st, frame, len);
	if (t) {
		crypto_generichash_update(&st, (const unsigned char *)when, strlen(when) + 1);
		crypto_generichash_update(&st, (const unsigned char *)fails, strlen(fails) + 1);
	}
	crypto_generichash_final(&st, h, sizeof h);
	id[0] = 'm';
	sodium_bin2hex(id + 1, sizeof id - 1, h, sizeof h);
	if ((m = bus_msg(subject, frame, len, id)) == NULL)
		return im->failed = 1, -1;
	if (t && (natsMsgHeader_Set(m, "Pp-Registered", when) != NATS_OK ||
		  natsMsgHeader_Set(m, "Pp-Failures", fails) != NATS_OK)) {
		natsMsg_Destroy(m);
		return im->failed = 1, -1;
	}
	im->msgs[im->n] = m;
	if (++im->n == IMPORT_BATCH)
		return flush(im);
	return 0;
}

static int import_token(void *arg, const char *id, size_t id_len, int lgo, const struct registry_token *t)
{
	struct importer *im = arg;
	uint8_t buf[4096];
	struct frame_writer w;
	long n;

	frame_begin(&w, buf, FRAME_REGISTER, 0);
	frame_put_bytes(&w, TAG_ID, id, id_len);
	frame_put_bytes(&w, TAG_TOKEN, t->token, t->token_len);
	frame_put_u32(&w, TAG_DEVICE, t->device);
	frame_put_u32(&w, TAG_FLAGS, lgo ? FRAME_F_LEGACY_GROUPS_ONLY : 0);
	/* The registration's app goes with it (none: the platform's default app). */
	if (t->app_len > 0 && t->device >= PLATFORM_IOS && t->device <= PLATFORM_HUAWEI)
		frame_put_bytes(&w, t->device == PLATFORM_IOS ? TAG_APP_IOS : t->device == PLATFORM_ANDROID ? TAG_APP_ANDROID
													 : TAG_APP_HUAWEI,
				t->app, t->app_len);
	if ((n = frame_end(&w)) < 0 || add(im, "pp.reg.register", buf, (size_t)n, t) < 0)
		return 1;
	im->registrations++;
	return 0;
}

/* Every closed group's members (gmembers: group key → member id, one duplicate each). */
static int import_groups(struct importer *im, MDB_txn *txn, const struct store *s)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if (mdb_cursor_open(txn, s->gmembers, &c) != 0)
		return -1;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char group[REG_ID_MAX + 1], id[REG_ID_MAX + 1];
		size_t gl = registry_id_decode(k.mv_data, k.mv_size, group), il = registry_id_decode(v.mv_data, v.mv_size, id);
		uint8_t buf[1024];
		struct frame_writer w;
		long n;

		if (gl == 0 || il == 0)
			continue;
		frame_begin(&w, buf, FRAME_SUBSCRIBE, 0);
		frame_put_bytes(&w, TAG_GROUP, group, gl);
		frame_put_bytes(&w, TAG_ID, id, il);
		if ((n = frame_end(&w)) < 0 || add(im, "pp.reg.subscribe", buf, (size_t)n, NULL) < 0) {
			mdb_cursor_close(c);
			return -1;
		}
		im->memberships++;
	}
	mdb_cursor_close(c);
	return 0;
}

static int cluster_import(const struct config *c)
{
	static struct importer im;
	struct store s;
	MDB_txn *txn;
	char err[512];
	uint64_t ndev = 0, nlink = 0, nnode = 0, nident = 0;
	int rc = 1;

	if (!config_cluster(c)) {
		fprintf(stderr, "pushctl: %s has no cluster section (cluster.servers)\n", c->path);
		return 2;
	}
	if (store_open(&s, c->router.db_path, (size_t)c->router.map_size_mb, 1, err, sizeof err) < 0) {
		fprintf(stderr, "pushctl: registry: %s\n", err);
		return 1;
	}
	if (mdb_txn_begin(s.env, NULL, MDB_RDONLY, &txn) != 0) {
		store_close(&s);
		return 1;
	}
	if (bus_prepare(&im.bus, c, "pushctl", err, sizeof err) < 0 || bus_connect(&im.bus, NULL) < 0) {
		fprintf(stderr, "pushctl: %s\n", err);
		goto out;
	}
	if (registry_walk(txn, &s, import_token, &im) < 0 || im.failed || import_groups(&im, txn, &s) < 0 ||
	    flush(&im) < 0)
		goto out;
	if (s.has_xreg)
		xreg_counts(txn, &s, &ndev, &nlink, &nnode, &nident);
	printf("%llu registrations and %llu closed-group memberships published to %s\n",
	       (unsigned long long)im.registrations, (unsigned long long)im.memberships, BUS_REGISTRY);
	if (ndev + nnode + nident > 0)
		fprintf(stderr, "pushctl: %llu UWPX devices, %llu push nodes and %llu XMPP registrations are not "
				"moved (not yet in cluster mode)\n",
			(unsigned long long)ndev, (unsigned long long)nnode, (unsigned long long)nident);
	rc = 0;
out:
	mdb_txn_abort(txn);
	store_close(&s);
	if (im.bus.nc || im.bus.opts)
		bus_close(&im.bus);
	return rc;
}

static int cluster_export(const struct config *c, const char *dir)
{
	struct store s;
	MDB_txn *txn;
	char err[512];
	uint64_t seq = 0;
	int rc;

	if (store_open(&s, c->router.db_path, (size_t)c->router.map_size_mb, 1, err, sizeof err) < 0) {
		fprintf(stderr, "pushctl: registry: %s\n", err);
		return 1;
	}
	if (mdb_txn_begin(s.env, NULL, MDB_RDONLY, &txn) == 0) {
		seq = store_meta_get(txn, &s, "cluster_reg_seq");
		mdb_txn_abort(txn);
	}
	/* A consistent snapshot even while the router writes (LMDB copies from a read txn). */
	if ((rc = mdb_env_copy2(s.env, dir, MDB_CP_COMPACT)) != 0) {
		fprintf(stderr, "pushctl: copying the registry to %s: %s (the directory must exist and be empty)\n", dir,
			mdb_strerror(rc));
		store_close(&s);
		return 1;
	}
	store_close(&s);
	printf("registry copied to %s (cluster registry change %llu): use it as router.db_path of a "
	       "single-machine router\n",
	       dir, (unsigned long long)seq);
	return 0;
}

int pushctl_cluster(const char *conf, int argc, char **argv)
{
	struct config c;
	char err[512];
	int rc = 2;

	if (config_load(&c, conf, err, sizeof err) < 0) {
		fprintf(stderr, "pushctl: %s\n", err);
		return 1;
	}
	if (argc == 1 && strcmp(argv[0], "cluster-import") == 0)
		rc = cluster_import(&c);
	else if (argc == 2 && strcmp(argv[0], "cluster-export") == 0)
		rc = cluster_export(&c, argv[1]);
	else
		fprintf(stderr, "usage: pushctl -c CONFIG cluster-import | cluster-export DIR\n");
	config_free(&c);
	return rc;
}
