/*
 * import_legacy: `pushctl -c CONFIG import-legacy FILE` migrates a Bchat/Session legacy push
 * server's SQLite database (docs/protocol.md §6.9) into a running pushpipe.
 *
 * The router stays the registry's only writer: every row becomes the frame the onion ingress
 * would have sent for it (REGISTER, SUBSCRIBE), so rows go through the same durable commit and
 * the same rules (one id per token: a token seen under several ids ends with the last row's).
 * Rows are validated exactly as docs/protocol.md §6.3 validates requests under the configured id
 * settings; rejected rows are skipped and reported by table and rowid, never with a whole token.
 * statistics_table rows go to statsd (FRAME_STATS_IMPORT), which keeps their original bounds. The
 * database is opened read-only; the legacy server may still be running.
 */
#include "bchat/bchat_request.h"
#include "stats_row.h"
#include "config.h"
#include "frame.h"
#include "log.h"
#include "pushctl.h"
#include "sock.h"
#include <errno.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WINDOW 128

static int connect_to(const struct config *c, const char *name);

struct importer {
	int fd;
	uint64_t next_id;
	long inflight, ok, failed, skipped;
	uint8_t buf[FRAME_MAX];
};

/* Reads replies until at most `keep` requests are outstanding; -1 when the router is gone. */
static int drain(struct importer *im, long keep)
{
	static uint8_t in[FRAME_MAX];
	while (im->inflight > keep) {
		struct pollfd p = {im->fd, POLLIN, 0};
		struct frame f;
		const char *why;
		ssize_t n;
		if (poll(&p, 1, 10000) <= 0) {
			fprintf(stderr, "pushctl: import: the router did not answer for 10 s\n");
			return -1;
		}
		n = sock_recv(im->fd, in);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0) {
			fprintf(stderr, "pushctl: import: the router closed the connection\n");
			return -1;
		}
		if (frame_parse(in, (size_t)n, &f, &why) < 0 || f.type != FRAME_REPLY)
			continue;
		im->inflight--;
		if (frame_u32(&f, TAG_STATUS, STATUS_ERROR) == STATUS_OK)
			im->ok++;
		else
			im->failed++;
	}
	return 0;
}

static int send_frame(struct importer *im, struct frame_writer *w)
{
	long len = frame_end(w);
	if (len < 0)
		return -1;
	while (sock_send(im->fd, im->buf, (size_t)len) < 0) {
		struct pollfd p = {im->fd, POLLOUT, 0};
		if (errno != EAGAIN || poll(&p, 1, 10000) <= 0)
			return -1;
	}
	im->inflight++;
	return drain(im, WINDOW);
}

static void skip(struct importer *im, const char *table, sqlite3_int64 rowid, const char *why)
{
	im->skipped++;
	fprintf(stderr, "pushctl: import: %s row %lld skipped: %s\n", table, (long long)rowid, why);
}

static const char *col(sqlite3_stmt *st, int i, size_t *n)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	*n = s ? (size_t)sqlite3_column_bytes(st, i) : 0;
	return s;
}

static int import_tokens(struct importer *im, sqlite3 *db, const struct bchat_config *bc)
{
	sqlite3_stmt *st;
	int rc;
	if (sqlite3_prepare_v2(db,
			       "SELECT rowid, pubKey, token, device, legacy_groups_only FROM token_pubkey_table "
			       "ORDER BY rowid",
			       -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "pushctl: import: token_pubkey_table: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 rowid = sqlite3_column_int64(st, 0);
		size_t il, tl, dl;
		const char *id = col(st, 1, &il), *tok = col(st, 2, &tl), *dev = col(st, 3, &dl);
		struct frame_writer w;
		if (!id || strlen(id) != il || !bchat_valid_id(bc, id, il)) {
			skip(im, "token_pubkey_table", rowid, "pubKey is not a valid id");
			continue;
		}
		if (!tok || strlen(tok) != tl || !bchat_valid_token(tok, tl)) {
			skip(im, "token_pubkey_table", rowid, "token is not a valid device token");
			continue;
		}
		frame_begin(&w, im->buf, FRAME_REGISTER, ++im->next_id);
		frame_put_bytes(&w, TAG_ID, id, il);
		frame_put_bytes(&w, TAG_TOKEN, tok, tl);
		frame_put_u32(&w, TAG_DEVICE, (uint32_t)bchat_resolve_device(dev, dl, tok, tl));
		if (sqlite3_column_int(st, 4) != 0)
			frame_put_u32(&w, TAG_FLAGS, FRAME_F_LEGACY_GROUPS_ONLY);
		if (send_frame(im, &w) < 0) {
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "pushctl: import: token_pubkey_table: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

static int import_groups(struct importer *im, sqlite3 *db, const struct bchat_config *bc)
{
	sqlite3_stmt *st;
	int rc;
	if (sqlite3_prepare_v2(db, "SELECT rowid, closedGroupPublicKey, pubKey FROM closed_group_table ORDER BY rowid",
			       -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "pushctl: import: closed_group_table: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 rowid = sqlite3_column_int64(st, 0);
		size_t gl, il;
		const char *g = col(st, 1, &gl), *id = col(st, 2, &il);
		struct frame_writer w;
		if (!g || strlen(g) != gl || !bchat_valid_id(bc, g, gl)) {
			skip(im, "closed_group_table", rowid, "closedGroupPublicKey is not a valid key");
			continue;
		}
		if (!id || strlen(id) != il || !bchat_valid_id(bc, id, il)) {
			skip(im, "closed_group_table", rowid, "pubKey is not a valid id");
			continue;
		}
		frame_begin(&w, im->buf, FRAME_SUBSCRIBE, ++im->next_id);
		frame_put_bytes(&w, TAG_GROUP, g, gl);
		frame_put_bytes(&w, TAG_ID, id, il);
		if (send_frame(im, &w) < 0) {
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "pushctl: import: closed_group_table: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* Waits for statsd's one reply to an import frame. */
static int stats_reply(int fd)
{
	static uint8_t in[FRAME_MAX];
	struct pollfd p = {fd, POLLIN, 0};
	struct frame f;
	const char *why;
	ssize_t n;
	if (poll(&p, 1, 10000) <= 0 || (n = sock_recv(fd, in)) <= 0 || frame_parse(in, (size_t)n, &f, &why) < 0 ||
	    f.type != FRAME_REPLY)
		return -1;
	return frame_u32(&f, TAG_STATUS, STATUS_ERROR) == STATUS_OK ? 0 : -1;
}

/* statistics_table → statsd rows, in frames of up to 200 rows. Legacy columns map to the
 * counters /get_statistics_data reports (the legacy server counted attempts, not deliveries). */
static int import_statistics(const struct config *c, sqlite3 *db)
{
	static uint8_t out[FRAME_MAX];
	sqlite3_stmt *st;
	struct frame_writer w;
	long rows = 0, skipped = 0, in_frame = 0;
	int fd, rc, result = 0;
	static const int ctr[6] = {CTR_IOS_DELIVERED,	     CTR_ANDROID_DELIVERED,  CTR_MESSAGES_TOTAL,
				   CTR_MESSAGES_CLOSED_GROUP, CTR_MESSAGES_UNTRACKED, CTR_MESSAGES_ONE_TO_ONE};

	if (sqlite3_prepare_v2(db,
			       "SELECT rowid, start_date, end_date, ios_pn_number, android_pn_number, total_message_number, "
			       "closed_group_message_number, untracked_message_number, deduplicated_1_1_message_number "
			       "FROM statistics_table ORDER BY start_date",
			       -1, &st, NULL) != SQLITE_OK) {
		printf("statistics: no statistics_table (%s); nothing imported\n", sqlite3_errmsg(db));
		return 0;
	}
	if ((fd = connect_to(c, "statsd-query.sock")) < 0) {
		sqlite3_finalize(st);
		return -1;
	}
	frame_begin(&w, out, FRAME_STATS_IMPORT, 1);
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			struct period_row row;
			double sd = sqlite3_column_double(st, 1), ed = sqlite3_column_double(st, 2);
			if (sqlite3_column_type(st, 1) == SQLITE_NULL || sqlite3_column_type(st, 2) == SQLITE_NULL ||
			    !(sd >= 0) || !(ed >= sd) || ed > 1e11) {
				skipped++;
				fprintf(stderr, "pushctl: import: statistics_table row %lld skipped: bad dates\n",
					(long long)sqlite3_column_int64(st, 0));
				continue;
			}
			memset(&row, 0, sizeof row);
			row.start = (uint64_t)sd;
			row.end = (uint64_t)ed;
			for (int i = 0; i < 6; i++) {
				sqlite3_int64 v = sqlite3_column_int64(st, 3 + i);
				row.v[ctr[i]] = v > 0 ? (uint64_t)v : 0;
			}
			stats_row_put(&w, &row);
			in_frame++;
			rows++;
		}
		if ((rc != SQLITE_ROW && in_frame > 0) || in_frame == 200) {
			long len = frame_end(&w);
			if (len < 0 || sock_send(fd, out, (size_t)len) < 0 || stats_reply(fd) < 0) {
				fprintf(stderr, "pushctl: import: statsd did not store the statistics rows\n");
				result = -1;
				break;
			}
			frame_begin(&w, out, FRAME_STATS_IMPORT, 1);
			in_frame = 0;
		}
		if (rc != SQLITE_ROW)
			break;
	}
	if (rc != SQLITE_DONE && result == 0) {
		fprintf(stderr, "pushctl: import: statistics_table: %s\n", sqlite3_errmsg(db));
		result = -1;
	}
	sqlite3_finalize(st);
	close(fd);
	if (result == 0)
		printf("statistics: %ld rows imported, %ld skipped\n", rows, skipped);
	return result;
}

static int connect_to(const struct config *c, const char *name)
{
	char path[256];
	int fd;
	if (!config_socket(c, name, path, sizeof path)) {
		fprintf(stderr, "pushctl: import: state_dir too long\n");
		return -1;
	}
	if ((fd = sock_connect(path, SOCK_SEQPACKET)) < 0 || sock_hello(fd, ROLE_TOOL, 0, "import-legacy") < 0) {
		fprintf(stderr, "pushctl: import: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int cmd_import_legacy(const char *conf, int argc, char **argv)
{
	struct config c;
	struct bchat_config bc;
	struct importer im;
	sqlite3 *db = NULL;
	char err[512];
	int rc = 1;

	if (argc != 1) {
		fprintf(stderr, "usage: pushctl -c CONFIG import-legacy FILE\n");
		return 2;
	}
	if (config_load(&c, conf, err, sizeof err) < 0) {
		fprintf(stderr, "pushctl: %s\n", err);
		return 1;
	}
	memset(&bc, 0, sizeof bc);
	bc.validate_ids = c.onion.validate_ids;
	snprintf(bc.id_prefix, sizeof bc.id_prefix, "%s", c.onion.id_prefix);
	bc.max_groups = (size_t)c.onion.max_groups;
	memset(&im, 0, sizeof im);
	if (sqlite3_open_v2(argv[0], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fprintf(stderr, "pushctl: import: %s: %s\n", argv[0], db ? sqlite3_errmsg(db) : "cannot open");
		goto out;
	}
	if ((im.fd = connect_to(&c, "router-tool.sock")) < 0)
		goto out;
	if (import_tokens(&im, db, &bc) < 0 || import_groups(&im, db, &bc) < 0 || drain(&im, 0) < 0)
		goto out_fd;
	printf("registry: %ld rows imported, %ld refused by the router, %ld skipped as invalid\n", im.ok, im.failed,
	       im.skipped);
	rc = (im.failed == 0) ? 0 : 1;
	if (import_statistics(&c, db) < 0)
		rc = 1;
out_fd:
	close(im.fd);
out:
	if (db)
		sqlite3_close(db);
	config_free(&c);
	return rc;
}
