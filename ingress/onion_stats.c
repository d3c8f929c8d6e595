/*
 * onion_stats: POST /get_statistics_data (bchat-onion.md §10.3). Checks HTTP Basic auth
 * (password only, compared in constant time against a configured SHA-256 hash), validates
 * the filters, then asks statsd for the window rows and the router for the device and id
 * counts — both over the worker's links, the connection waiting meanwhile — and answers
 * compact JSON with sorted keys. Either peer missing its deadline gives 503. Holds no device
 * data.
 */
#include "counters.h"
#include "frame.h"
#include "stats_date.h"
#include "log.h"
#include "onion_http.h"
#include "stats_row.h"
#include <ctype.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLAG_IOS 1
#define FLAG_ANDROID 2
#define FLAG_GROUP 4
#define FLAG_TOTAL 8

struct stats_req {
	struct onion_conn *conn;
	int outstanding;     /* answers still to come (router, statsd) */
	int failed;
	unsigned hide;	     /* FLAG_* keys removed from every row */
	uint64_t ios, android, ids;
	struct period_row *rows;
	size_t nrows;
};

static void answer(struct onion_conn *c, unsigned code, const char *type, char *body, int auth)
{
	counter_http(HTTP_ROUTE_STATS, code);
	onion_http_answer(c, code, type, auth ? "WWW-Authenticate: Basic realm=\"Authentication Required\"\r\n" : NULL,
			  body, body ? strlen(body) : 0);
}

static void bad_request(struct onion_conn *c, const char *why)
{
	json_t *j = json_pack("{s:i,s:s}", "code", 1, "message", why);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	answer(c, 400, "application/json", s, 0);
}

/* 1 when the Basic password's SHA-256 equals the configured "sha256:<hex>" hash. */
static int password_ok(const char *hash, const char *auth)
{
	unsigned char want[32], got[32], dec[512];
	size_t declen;
	const char *colon;

	if (hash == NULL || strncmp(hash, "sha256:", 7) != 0 || strlen(hash + 7) != 64 ||
	    sodium_hex2bin(want, sizeof want, hash + 7, 64, NULL, NULL, NULL) != 0)
		return 0;
	if (auth == NULL || strncasecmp(auth, "Basic ", 6) != 0)
		return 0;
	if (sodium_base642bin(dec, sizeof dec - 1, auth + 6, strlen(auth + 6), " ", &declen, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return 0;
	/* The username is ignored, as by the legacy server; it may be empty. */
	if ((colon = memchr(dec, ':', declen)) == NULL)
		return 0;
	SHA256((const unsigned char *)colon + 1, declen - (size_t)(colon + 1 - (const char *)dec), got);
	sodium_memzero(dec, sizeof dec);
	return sodium_memcmp(want, got, 32) == 0;
}

/* The legacy "integer value" rule; 1 = zero, 0 = non-zero or absent, -1 = not convertible. */
static int flag_is_zero(json_t *v)
{
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_boolean(v))
		return json_is_false(v);
	if (json_is_integer(v))
		return json_integer_value(v) == 0;
	if (json_is_real(v)) {
		double d = json_real_value(v);
		return d > -1.0 && d < 1.0; /* truncated toward zero */
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		long long x;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0')
			return -1;
		x = strtoll(s, &end, 10);
		while (isspace((unsigned char)*end))
			end++;
		return *end != '\0' || end == s ? -1 : x == 0;
	}
	return -1;
}

static void finish_one(struct stats_req *sr)
{
	if (--sr->outstanding == 0)
		onion_http_stats_ready(sr->conn);
}

static void on_counts(void *ctx, uint32_t status, const struct frame *f)
{
	struct stats_req *sr = ctx;
	if (f == NULL || f->type != FRAME_COUNTS || status != STATUS_OK) {
		sr->failed = 1;
	} else {
		sr->ios = frame_u64(f, TAG_COUNT_IOS, 0);
		sr->android = frame_u64(f, TAG_COUNT_ANDROID, 0);
		sr->ids = frame_u64(f, TAG_COUNT_IDS, 0);
	}
	finish_one(sr);
}

static void on_rows(void *ctx, uint32_t status, const struct frame *f)
{
	struct stats_req *sr = ctx;

	if (f == NULL || f->type != FRAME_STATS_ROWS || status != STATUS_OK ||
	    stats_rows_read(f, &sr->rows, &sr->nrows) < 0)
		sr->failed = 1;
	finish_one(sr);
}

void onion_stats_free(void *pending)
{
	struct stats_req *sr = pending;
	if (sr) {
		free(sr->rows);
		free(sr);
	}
}

int onion_stats_begin(struct onion_server *s, struct onion_conn *c, struct router_link *router,
		      struct router_link *statsd, const char *auth, const unsigned char *body, size_t len,
		      void **pending)
{
	static const struct {
		const char *key;
		unsigned flag;
	} flags[] = {{"ios_pn_number", FLAG_IOS},
		     {"android_pn_number", FLAG_ANDROID},
		     {"closed_group_message_number", FLAG_GROUP},
		     {"total_message_number", FLAG_TOTAL}};
	uint8_t q1[128], q2[128];
	struct frame_writer w;
	struct stats_req *sr;
	json_t *req = NULL;
	uint64_t from = 0, to = 0;
	long n1, n2;

	*pending = NULL;
	if (!password_ok(s->cfg->onion.stats_password_hash, auth)) {
		answer(c, 401, "text/plain", strdup("Unauthorized Access"), 1);
		return 0;
	}
	if (len > 0) {
		/* Parsed whatever the Content-Type says (§10.4 item 5). */
		req = json_loadb((const char *)body, len, 0, NULL);
		if (!json_is_object(req)) {
			json_decref(req);
			bad_request(c, "the body must be a JSON object");
			return 0;
		}
	}
	if ((sr = calloc(1, sizeof *sr)) == NULL) {
		json_decref(req);
		return -1;
	}
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		int z = flag_is_zero(req ? json_object_get(req, flags[i].key) : NULL);
		if (z < 0) {
			json_decref(req);
			free(sr);
			bad_request(c, "a flag is not an integer value");
			return 0;
		}
		if (z)
			sr->hide |= flags[i].flag;
	}
	for (int i = 0; i < 2; i++) {
		json_t *v = req ? json_object_get(req, i ? "end_date" : "start_date") : NULL;
		if (v == NULL || json_is_null(v))
			continue;
		if (!json_is_string(v) || stats_date_parse(json_string_value(v), i ? &to : &from) < 0) {
			json_decref(req);
			free(sr);
			bad_request(c, i ? "end_date must be YYYY-mm-dd or YYYY-mm-dd HH:MM:SS"
					 : "start_date must be YYYY-mm-dd or YYYY-mm-dd HH:MM:SS");
			return 0;
		}
	}
	json_decref(req);
	frame_begin(&w, q1, FRAME_COUNTS_QUERY, 0);
	n1 = frame_end(&w);
	frame_begin(&w, q2, FRAME_STATS_QUERY, 0);
	frame_put_u64(&w, TAG_START, from);
	if (to)
		frame_put_u64(&w, TAG_END, to);
	n2 = frame_end(&w);
	sr->conn = c;
	sr->outstanding = 3; /* two answers, and this function's own reference */
	*pending = sr;
	if (link_submit(router, q1, (size_t)n1, on_counts, sr) < 0) {
		sr->failed = 1;
		sr->outstanding--;
	}
	if (link_submit(statsd, q2, (size_t)n2, on_rows, sr) < 0) {
		sr->failed = 1;
		sr->outstanding--;
	}
	finish_one(sr);
	return 0;
}

static void put_date(json_t *o, const char *key, uint64_t t)
{
	char buf[32];
	stats_date_format(buf, sizeof buf, t);
	json_object_set_new(o, key, json_string(buf));
}

void onion_stats_finish(struct onion_server *s, struct onion_conn *c, void *pending)
{
	struct stats_req *sr = pending;
	json_t *root, *data, *rows;
	char *out;
	int session = strcmp(s->cfg->onion.flavour, "session") == 0;

	if (sr->failed) {
		answer(c, 503, "text/plain", strdup("Service Unavailable\n"), 0);
		return;
	}
	rows = json_array();
	for (size_t i = 0; i < sr->nrows; i++) {
		const struct period_row *r = &sr->rows[i];
		json_t *o = json_object();
		put_date(o, "start_date", r->start);
		put_date(o, "end_date", r->end);
		json_object_set_new(o, "deduplicated_1_1_message_number", json_integer((json_int_t)r->v[CTR_MESSAGES_ONE_TO_ONE]));
		json_object_set_new(o, "untracked_message_number", json_integer((json_int_t)r->v[CTR_MESSAGES_UNTRACKED]));
		if (!(sr->hide & FLAG_IOS))
			json_object_set_new(o, "ios_pn_number", json_integer((json_int_t)r->v[CTR_IOS_DELIVERED]));
		if (!(sr->hide & FLAG_ANDROID))
			json_object_set_new(o, "android_pn_number", json_integer((json_int_t)r->v[CTR_ANDROID_DELIVERED]));
		if (!(sr->hide & FLAG_GROUP))
			json_object_set_new(o, "closed_group_message_number", json_integer((json_int_t)r->v[CTR_MESSAGES_CLOSED_GROUP]));
		if (!(sr->hide & FLAG_TOTAL))
			json_object_set_new(o, "total_message_number", json_integer((json_int_t)r->v[CTR_MESSAGES_TOTAL]));
		json_array_append_new(rows, o);
	}
	data = json_object();
	json_object_set_new(data, "data", rows);
	json_object_set_new(data, "ios_device_number", json_integer((json_int_t)sr->ios));
	json_object_set_new(data, "android_device_number", json_integer((json_int_t)sr->android));
	json_object_set_new(data, session ? "total_session_id_number" : "total_bchat_id_number", json_integer((json_int_t)sr->ids));
	root = json_pack("{s:i,s:o}", "code", 0, "data", data);
	out = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	char *nl = out ? realloc(out, strlen(out) + 2) : NULL;
	if (nl == NULL) {
		free(out);
		answer(c, 503, "text/plain", strdup("Service Unavailable\n"), 0);
		return;
	}
	strcat(nl, "\n");
	answer(c, 200, "application/json", nl, 0);
}
