/*
 * import_uwpx: `pushctl -c CONFIG import-uwpx [--channels TABLE] [--accounts TABLE] FILE` moves
 * the UWPX push server's SQLite database into a running pushpipe (docs/migration.md), so UWPX
 * devices keep receiving pushes without registering again.
 *
 * The database has two tables, found by their columns whatever they are named: the channels
 * (deviceId, channelUri, timeStamp) and the accounts (deviceId, bareJidHash, domainPart, node,
 * secret; bareJidHash is the v2 account_id). The router stays the registry's only writer: each
 * row becomes one FRAME_UWPX_IMPORT, committed like any registration; the router creates a
 * device from a channel row only when it does not know the device, and links an account to its
 * node and secret only when the account has no node yet — so a second run changes nothing, and
 * nothing registered in pushpipe since is overwritten. Rows are validated as ingress-uwpx
 * validates requests (64-hex ids, the configured channel allowlist, nodes and secrets of
 * [0-9A-Za-z]); a refused row is reported by table and rowid only. Trusts nothing in the file,
 * which is opened read-only; never prints a channel URI, node or secret.
 */
#include "uwpx_uri.h"
#include "config.h"
#include "frame.h"
#include "hex.h"
#include "pushctl.h"
#include "sock.h"
#include <errno.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define WINDOW 128
#define NAME_MAX_LEN 128

enum row_kind { ROW_CHANNEL, ROW_ACCOUNT };

struct outstanding {
	uint64_t id;
	sqlite3_int64 rowid;
	enum row_kind kind;
};

struct uimporter {
	int fd;
	uint64_t next_id;
	long inflight;
	struct outstanding out[WINDOW + 1];
	const char *table[2];
	long ok[2], refused[2], skipped[2], no_device, conflict;
	uint8_t buf[FRAME_MAX];
};

static const char *const channel_cols[] = {"deviceId", "channelUri", "timeStamp", NULL};
static const char *const account_cols[] = {"deviceId", "bareJidHash", "domainPart", "node", "secret", NULL};

/* Whether the table has every column of want (names compared as SQLite does: any case). */
static int has_columns(sqlite3 *db, const char *table, const char *const *want)
{
	sqlite3_stmt *st;
	int found = 0, n = 0;

	while (want[n])
		n++;
	if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1)", -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(st, 0);
		for (int i = 0; c && want[i]; i++)
			if (strcasecmp(c, want[i]) == 0)
				found++;
	}
	sqlite3_finalize(st);
	return found == n;
}

/* Finds the one table with these columns (or checks the named one) into out. 0, or -1 with a
 * message on stderr. */
static int find_table(sqlite3 *db, const char *named, const char *const *want, const char *what, char *out)
{
	sqlite3_stmt *st;
	int matches = 0;

	if (named) {
		if (!has_columns(db, named, want)) {
			fprintf(stderr, "pushctl: import-uwpx: table %s has not the columns of the %s table\n", named, what);
			return -1;
		}
		snprintf(out, NAME_MAX_LEN, "%s", named);
		return 0;
	}
	if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", -1, &st, NULL) !=
	    SQLITE_OK) {
		fprintf(stderr, "pushctl: import-uwpx: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		if (t && strlen(t) < NAME_MAX_LEN && has_columns(db, t, want)) {
			if (matches++ == 0)
				snprintf(out, NAME_MAX_LEN, "%s", t);
		}
	}
	sqlite3_finalize(st);
	if (matches == 1)
		return 0;
	fprintf(stderr, "pushctl: import-uwpx: %s tables with the %s columns; name it with --%s TABLE\n",
		matches ? "several" : "no", what, what[0] == 'c' ? "channels" : "accounts");
	return -1;
}

static struct outstanding *find_out(struct uimporter *im, uint64_t id)
{
	for (size_t i = 0; i < WINDOW + 1; i++)
		if (im->out[i].id == id)
			return &im->out[i];
	return NULL;
}

static void refused_row(struct uimporter *im, const struct outstanding *o, const char *why)
{
	fprintf(stderr, "pushctl: import-uwpx: %s row %lld not stored: %s\n", im->table[o->kind], (long long)o->rowid,
		why);
}

/* Reads replies until at most keep requests are outstanding; -1 when the router is gone. */
static int drain(struct uimporter *im, long keep)
{
	static uint8_t in[FRAME_MAX];

	while (im->inflight > keep) {
		struct pollfd p = {im->fd, POLLIN, 0};
		struct outstanding *o;
		struct frame f;
		const char *why;
		uint32_t st;
		ssize_t n;

		if (poll(&p, 1, 10000) <= 0) {
			fprintf(stderr, "pushctl: import-uwpx: the router did not answer for 10 s\n");
			return -1;
		}
		n = sock_recv(im->fd, in);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0) {
			fprintf(stderr, "pushctl: import-uwpx: the router closed the connection\n");
			return -1;
		}
		if (frame_parse(in, (size_t)n, &f, &why) < 0 || f.type != FRAME_REPLY || (o = find_out(im, f.id)) == NULL)
			continue;
		im->inflight--;
		st = frame_u32(&f, TAG_STATUS, STATUS_ERROR);
		if (st == STATUS_OK) {
			im->ok[o->kind]++;
		} else if (st == STATUS_NOT_FOUND && o->kind == ROW_ACCOUNT) {
			im->no_device++;
			refused_row(im, o, "its device has no channel (neither in the channel table nor registered here)");
		} else if (st == STATUS_FORBIDDEN && o->kind == ROW_ACCOUNT) {
			im->conflict++;
			refused_row(im, o, "the account has another node here, or the node belongs to another registration");
		} else {
			im->refused[o->kind]++;
			refused_row(im, o, st == STATUS_BUSY ? "the router is busy (run the import again)" : "the router refused it");
		}
		o->id = 0;
	}
	return 0;
}

static int send_row(struct uimporter *im, struct frame_writer *w, enum row_kind kind, sqlite3_int64 rowid)
{
	long len = frame_end(w);
	struct outstanding *o = find_out(im, 0);

	if (len < 0 || o == NULL)
		return -1;
	while (sock_send(im->fd, im->buf, (size_t)len) < 0) {
		struct pollfd p = {im->fd, POLLOUT, 0};
		if (errno != EAGAIN || poll(&p, 1, 10000) <= 0) {
			fprintf(stderr, "pushctl: import-uwpx: cannot send to the router: %s\n", strerror(errno));
			return -1;
		}
	}
	o->id = im->next_id;
	o->rowid = rowid;
	o->kind = kind;
	im->inflight++;
	return drain(im, WINDOW);
}

static void skip(struct uimporter *im, enum row_kind kind, sqlite3_int64 rowid, const char *why)
{
	im->skipped[kind]++;
	fprintf(stderr, "pushctl: import-uwpx: %s row %lld skipped: %s\n", im->table[kind], (long long)rowid, why);
}

static const char *col(sqlite3_stmt *st, int i, size_t *n)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	*n = s ? (size_t)sqlite3_column_bytes(st, i) : 0;
	return s && strlen(s) == *n ? s : NULL; /* an embedded NUL: not a text value */
}

/* A 64-hex id, lowercased into out when lower. */
static int id64(const char *s, size_t n, char *out, int lower)
{
	if (s == NULL || n != 64)
		return 0;
	for (size_t i = 0; i < 64; i++) {
		if (hex_value((unsigned char)s[i]) < 0)
			return 0;
		out[i] = lower && s[i] >= 'A' && s[i] <= 'F' ? (char)(s[i] - 'A' + 'a') : s[i];
	}
	out[64] = '\0';
	return 1;
}

static int alnum(const char *s, size_t n)
{
	if (s == NULL || n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return 0;
	return 1;
}

/* A domain as a JID's domain part: 1..1023 bytes, no space, control character, '@' or '/'. */
static int domain_ok(const char *s, size_t n)
{
	if (s == NULL || n == 0 || n > 1023)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch == 0x7f || ch == '@' || ch == '/')
			return 0;
	}
	return 1;
}

/* SELECT … FROM "table" with the name quoted ("" doubled). */
static int prepare(sqlite3 *db, const char *cols, const char *table, sqlite3_stmt **st)
{
	char q[512 + 2 * NAME_MAX_LEN], *p;
	size_t o = (size_t)snprintf(q, sizeof q, "SELECT rowid, %s FROM \"", cols);

	for (p = (char *)table; *p && o + 2 < sizeof q; p++) {
		if (*p == '"')
			q[o++] = '"';
		q[o++] = *p;
	}
	snprintf(q + o, sizeof q - o, "\" ORDER BY rowid");
	if (sqlite3_prepare_v2(db, q, -1, st, NULL) != SQLITE_OK) {
		fprintf(stderr, "pushctl: import-uwpx: %s: %s\n", table, sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

static int import_channels(struct uimporter *im, sqlite3 *db, const struct uwpx_uri_rules *rules)
{
	sqlite3_stmt *st;
	int rc;

	if (prepare(db, "deviceId, channelUri", im->table[ROW_CHANNEL], &st) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 rowid = sqlite3_column_int64(st, 0);
		size_t dl, ul;
		const char *dev = col(st, 1, &dl), *uri = col(st, 2, &ul);
		char id[65];
		struct frame_writer w;

		if (!id64(dev, dl, id, 1)) {
			skip(im, ROW_CHANNEL, rowid, "deviceId is not 64 hex characters");
			continue;
		}
		if (uri == NULL || ul == 0) {
			skip(im, ROW_CHANNEL, rowid, "no channel URI");
			continue;
		}
		if (!uwpx_uri_valid(rules, uri, ul)) {
			skip(im, ROW_CHANNEL, rowid, "the channel URI is not allowed (ingress_uwpx channel rules)");
			continue;
		}
		frame_begin(&w, im->buf, FRAME_UWPX_IMPORT, ++im->next_id);
		frame_put_bytes(&w, TAG_DEVICE_ID, id, 64);
		frame_put_bytes(&w, TAG_URI, uri, ul);
		if (send_row(im, &w, ROW_CHANNEL, rowid) < 0) {
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "pushctl: import-uwpx: %s: %s\n", im->table[ROW_CHANNEL], sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

static int import_accounts(struct uimporter *im, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (prepare(db, "deviceId, bareJidHash, domainPart, node, secret", im->table[ROW_ACCOUNT], &st) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 rowid = sqlite3_column_int64(st, 0);
		size_t dl, al, ml, nl, sl;
		const char *dev = col(st, 1, &dl), *acct = col(st, 2, &al), *dom = col(st, 3, &ml), *node = col(st, 4, &nl),
			   *secret = col(st, 5, &sl);
		char id[65], account[65];
		struct frame_writer w;

		if (!id64(dev, dl, id, 1)) {
			skip(im, ROW_ACCOUNT, rowid, "deviceId is not 64 hex characters");
			continue;
		}
		if (!id64(acct, al, account, 0)) {
			skip(im, ROW_ACCOUNT, rowid, "bareJidHash is not 64 hex characters");
			continue;
		}
		if (!domain_ok(dom, ml)) {
			skip(im, ROW_ACCOUNT, rowid, "domainPart is not a domain");
			continue;
		}
		if (!alnum(node, nl) || !alnum(secret, sl)) {
			skip(im, ROW_ACCOUNT, rowid, "node or secret is not 1 to 64 characters of [0-9A-Za-z]");
			continue;
		}
		frame_begin(&w, im->buf, FRAME_UWPX_IMPORT, ++im->next_id);
		frame_put_bytes(&w, TAG_DEVICE_ID, id, 64);
		frame_put_bytes(&w, TAG_ACCOUNT, account, 64);
		frame_put_bytes(&w, TAG_NODE, node, nl);
		frame_put_bytes(&w, TAG_SECRET, secret, sl);
		if (send_row(im, &w, ROW_ACCOUNT, rowid) < 0) {
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "pushctl: import-uwpx: %s: %s\n", im->table[ROW_ACCOUNT], sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: pushctl -c CONFIG import-uwpx [--channels TABLE] [--accounts TABLE] FILE\n");
	return 2;
}

int cmd_import_uwpx(const char *conf, int argc, char **argv)
{
	struct config c;
	struct uwpx_uri_rules rules;
	struct uimporter *im;
	const char *named[2] = {NULL, NULL}, *file = NULL;
	char tables[2][NAME_MAX_LEN], path[256], err[512];
	sqlite3 *db = NULL;
	int rc = 1;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--channels") == 0 && i + 1 < argc)
			named[ROW_CHANNEL] = argv[++i];
		else if (strcmp(argv[i], "--accounts") == 0 && i + 1 < argc)
			named[ROW_ACCOUNT] = argv[++i];
		else if (argv[i][0] != '-' && file == NULL)
			file = argv[i];
		else
			return usage();
	}
	if (file == NULL)
		return usage();
	if (config_load(&c, conf, err, sizeof err) < 0) {
		fprintf(stderr, "pushctl: %s\n", err);
		return 1;
	}
	if ((im = calloc(1, sizeof *im)) == NULL) {
		config_free(&c);
		return 1;
	}
	im->fd = -1;
	memset(&rules, 0, sizeof rules);
	rules.suffixes = (const char *const *)c.uwpx.channel_suffixes.v;
	rules.nsuffixes = c.uwpx.channel_suffixes.n;
	rules.paths = (const char *const *)c.uwpx.channel_paths.v;
	rules.npaths = c.uwpx.channel_paths.n;
	rules.allow_loopback = c.uwpx.allow_loopback_channels;
	if (sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fprintf(stderr, "pushctl: import-uwpx: %s: %s\n", file, db ? sqlite3_errmsg(db) : "cannot open");
		goto out;
	}
	if (find_table(db, named[ROW_CHANNEL], channel_cols, "channels", tables[ROW_CHANNEL]) < 0 ||
	    find_table(db, named[ROW_ACCOUNT], account_cols, "accounts", tables[ROW_ACCOUNT]) < 0)
		goto out;
	im->table[ROW_CHANNEL] = tables[ROW_CHANNEL];
	im->table[ROW_ACCOUNT] = tables[ROW_ACCOUNT];
	if (!config_socket(&c, "router-tool.sock", path, sizeof path)) {
		fprintf(stderr, "pushctl: import-uwpx: state_dir too long\n");
		goto out;
	}
	if ((im->fd = sock_connect(path, SOCK_SEQPACKET)) < 0 || sock_hello(im->fd, ROLE_TOOL, 0, "import-uwpx") < 0) {
		fprintf(stderr, "pushctl: import-uwpx: %s: %s\n", path, strerror(errno));
		goto out;
	}
	/* Channels first: an account needs its device. */
	if (import_channels(im, db, &rules) < 0 || drain(im, 0) < 0 || import_accounts(im, db) < 0 || drain(im, 0) < 0)
		goto out;
	printf("devices (table %s): %ld imported or already present, %ld refused by the router, %ld skipped as invalid\n",
	       im->table[ROW_CHANNEL], im->ok[ROW_CHANNEL], im->refused[ROW_CHANNEL], im->skipped[ROW_CHANNEL]);
	printf("accounts (table %s): %ld imported or already present, %ld without a device, %ld in conflict, "
	       "%ld refused by the router, %ld skipped as invalid\n",
	       im->table[ROW_ACCOUNT], im->ok[ROW_ACCOUNT], im->no_device, im->conflict, im->refused[ROW_ACCOUNT],
	       im->skipped[ROW_ACCOUNT]);
	rc = im->refused[ROW_CHANNEL] + im->refused[ROW_ACCOUNT] + im->no_device + im->conflict == 0 ? 0 : 1;
out:
	if (im->fd >= 0)
		close(im->fd);
	if (db)
		sqlite3_close(db);
	free(im);
	config_free(&c);
	return rc;
}
