/*
 * onion_stats: POST /get_statistics_data (docs/protocol.md §6.7). Checks HTTP Basic auth
 * (password only; the decision, its hash forms, the one-check-at-a-time rule and the
 * per-source failure limit are described in onion_stats.h), validates the filters, then asks
 * statsd for the window rows and the router for the device and id counts — both over the
 * worker's links, the connection waiting meanwhile — and answers compact JSON with sorted
 * keys. Either peer missing its deadline gives 503. Holds no device data; holds, process-wide,
 * the failure table (addresses and times only) and a keyed hash of the last right password
 * (the key random per process).
 */
#include "counters.h"
#include "frame.h"
#include "bchat/stats_date.h"
#include "log.h"
#include "onion_http.h"
#include "onion_stats.h"
#include "stats_row.h"
#include <ctype.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
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

static void answer(struct onion_conn *c, unsigned code, const char *type, char *body, const char *header)
{
	counter_http(HTTP_ROUTE_STATS, code);
	onion_http_answer(c, code, type, header && header[0] ? header : NULL, body, body ? strlen(body) : 0);
}

static void bad_request(struct onion_conn *c, const char *why)
{
	json_t *j = json_pack("{s:i,s:s}", "code", 1, "message", why);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	answer(c, 400, "application/json", s, NULL);
}

/* ---- the access decision (onion_stats.h) ---- */

#define WWW_AUTH "WWW-Authenticate: Basic realm=\"Authentication Required\"\r\n"

struct source {
	uint8_t key[9]; /* family (4 or 6), then the IPv4 address or the IPv6 /64 */
	uint64_t fail_ms[STATS_AUTH_MAX_FAILURES]; /* the latest failures, 0 = none */
	uint64_t last_ms;
};

static pthread_mutex_t auth_mu = PTHREAD_MUTEX_INITIALIZER; /* sources, remembered */
static pthread_mutex_t check_mu = PTHREAD_MUTEX_INITIALIZER; /* one Argon2id check at a time */
static struct source sources[STATS_AUTH_SOURCES];
static unsigned char mac_key[crypto_generichash_KEYBYTES];
static unsigned char remembered[crypto_generichash_BYTES]; /* keyed hash of the right password */
static int have_key, have_remembered;

void onion_stats_auth_reset(void)
{
	pthread_mutex_lock(&auth_mu);
	memset(sources, 0, sizeof sources);
	sodium_memzero(remembered, sizeof remembered);
	have_remembered = 0;
	pthread_mutex_unlock(&auth_mu);
}

void onion_stats_init(const struct config *c)
{
	const char *h = c->onion.stats_password_hash;
	if (sodium_init() < 0)
		fatal("libsodium initialisation failed");
	if (h == NULL || h[0] == '\0')
		log_info("ingress_onion.stats_password_hash is not set: /get_statistics_data answers 401 to everyone");
	else if (strncmp(h, "sha256:", 7) == 0)
		log_warn("ingress_onion.stats_password_hash is an unsalted SHA-256 (\"sha256:\"), fast to guess from a "
			 "leaked configuration: replace it with the output of `pushctl hash-password` (Argon2id)");
}

static void source_key(const struct sockaddr *sa, socklen_t len, uint8_t key[9])
{
	memset(key, 0, 9);
	if (sa != NULL && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa != NULL && sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(a, mapped, 12) == 0) { /* an IPv4 client of a dual-stack listener */
			key[0] = 4;
			memcpy(key + 1, a + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a, 8); /* one /64: what one client usually holds */
		}
	}
}

/* The source's entry (auth_mu held); NULL when absent and create is 0. */
static struct source *source_find(const uint8_t key[9], int create, uint64_t now)
{
	struct source *free_slot = NULL, *oldest = NULL;
	for (size_t i = 0; i < STATS_AUTH_SOURCES; i++) {
		struct source *e = &sources[i];
		if (e->last_ms != 0 && memcmp(e->key, key, 9) == 0)
			return e;
		if (e->last_ms == 0 || now - e->last_ms >= STATS_AUTH_WINDOW_MS) {
			if (free_slot == NULL)
				free_slot = e;
		} else if (oldest == NULL || e->last_ms < oldest->last_ms) {
			oldest = e;
		}
	}
	if (!create)
		return NULL;
	if (free_slot == NULL)
		free_slot = oldest;
	memset(free_slot, 0, sizeof *free_slot);
	memcpy(free_slot->key, key, 9);
	return free_slot;
}

/* Failures of e within the window, and (in *oldest) the earliest of them. */
static int recent_failures(const struct source *e, uint64_t now, uint64_t *oldest)
{
	int n = 0;
	*oldest = UINT64_MAX;
	for (int i = 0; i < STATS_AUTH_MAX_FAILURES; i++)
		if (e->fail_ms[i] != 0 && now - e->fail_ms[i] < STATS_AUTH_WINDOW_MS) {
			n++;
			if (e->fail_ms[i] < *oldest)
				*oldest = e->fail_ms[i];
		}
	return n;
}

static void record_failure(const uint8_t key[9], uint64_t now)
{
	struct source *e;
	int slot = 0;
	pthread_mutex_lock(&auth_mu);
	e = source_find(key, 1, now);
	for (int i = 1; i < STATS_AUTH_MAX_FAILURES; i++) /* replace the oldest */
		if (e->fail_ms[i] < e->fail_ms[slot])
			slot = i;
	e->fail_ms[slot] = now ? now : 1;
	e->last_ms = now ? now : 1;
	pthread_mutex_unlock(&auth_mu);
}

/* The password's keyed hash (what is remembered once it was right). */
static void password_mac(const unsigned char *pw, size_t len, unsigned char out[crypto_generichash_BYTES])
{
	crypto_generichash(out, crypto_generichash_BYTES, pw, len, mac_key, sizeof mac_key);
}

/* 1 right, 0 wrong, -1 busy (another check runs). */
static int password_check(const char *hash, const char *pw, size_t len)
{
	unsigned char want[32], got[32];
	int ok;

	if (strncmp(hash, "sha256:", 7) == 0) {
		if (strlen(hash + 7) != 64 || sodium_hex2bin(want, sizeof want, hash + 7, 64, NULL, NULL, NULL) != 0)
			return 0;
		SHA256((const unsigned char *)pw, len, got);
		return sodium_memcmp(want, got, 32) == 0;
	}
	if (pthread_mutex_trylock(&check_mu) != 0)
		return -1;
	ok = crypto_pwhash_str_verify(hash, pw, len) == 0;
	pthread_mutex_unlock(&check_mu);
	return ok;
}

static enum stats_auth deny(struct stats_auth_answer *ans, enum stats_auth why, unsigned retry_after)
{
	ans->header[0] = '\0';
	switch (why) {
	case STATS_AUTH_LIMITED:
		ans->status = 429;
		ans->body = "Too Many Requests\n";
		snprintf(ans->header, sizeof ans->header, "Retry-After: %u\r\n", retry_after ? retry_after : 1);
		break;
	case STATS_AUTH_BUSY:
		ans->status = 503;
		ans->body = "Service Unavailable\n";
		snprintf(ans->header, sizeof ans->header, "Retry-After: 1\r\n");
		break;
	default:
		ans->status = 401;
		ans->body = "Unauthorized Access";
		snprintf(ans->header, sizeof ans->header, "%s", WWW_AUTH);
		break;
	}
	return why;
}

enum stats_auth onion_stats_auth(const char *hash, const char *auth, const struct sockaddr *peer, socklen_t peerlen,
				 uint64_t now, struct stats_auth_answer *ans)
{
	unsigned char dec[512], mac[crypto_generichash_BYTES];
	uint8_t key[9];
	uint64_t oldest;
	size_t declen;
	const char *colon, *pw;
	size_t pwlen;
	struct source *e;
	int n, rc;

	if (hash == NULL || hash[0] == '\0')
		return deny(ans, STATS_AUTH_OFF, 0);
	while (auth != NULL && (*auth == ' ' || *auth == '\t'))
		auth++;
	if (auth == NULL || auth[0] == '\0' || strncasecmp(auth, "Basic", 5) != 0 || auth[5] != ' ')
		return deny(ans, STATS_AUTH_NONE, 0); /* no credentials (or another scheme): not a failure */
	source_key(peer, peerlen, key);

	pthread_mutex_lock(&auth_mu);
	if (!have_key) {
		randombytes_buf(mac_key, sizeof mac_key);
		have_key = 1;
	}
	e = source_find(key, 0, now);
	n = e ? recent_failures(e, now, &oldest) : 0;
	pthread_mutex_unlock(&auth_mu);
	if (n >= STATS_AUTH_MAX_FAILURES)
		return deny(ans, STATS_AUTH_LIMITED, (unsigned)((oldest + STATS_AUTH_WINDOW_MS - now + 999) / 1000));

	/* The username is ignored, as by the legacy server; it may be empty. */
	if (sodium_base642bin(dec, sizeof dec - 1, auth + 6, strlen(auth + 6), " ", &declen, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    (colon = memchr(dec, ':', declen)) == NULL) {
		sodium_memzero(dec, sizeof dec);
		record_failure(key, now); /* credentials, but malformed: a wrong password */
		return deny(ans, STATS_AUTH_WRONG, 0);
	}
	pw = colon + 1;
	pwlen = declen - (size_t)(pw - (const char *)dec);
	password_mac((const unsigned char *)pw, pwlen, mac);
	pthread_mutex_lock(&auth_mu);
	rc = have_remembered && sodium_memcmp(mac, remembered, sizeof mac) == 0;
	pthread_mutex_unlock(&auth_mu);
	if (!rc && (rc = password_check(hash, pw, pwlen)) == 1) {
		pthread_mutex_lock(&auth_mu);
		memcpy(remembered, mac, sizeof mac);
		have_remembered = 1;
		pthread_mutex_unlock(&auth_mu);
	}
	sodium_memzero(dec, sizeof dec);
	sodium_memzero(mac, sizeof mac);
	if (rc < 0)
		return deny(ans, STATS_AUTH_BUSY, 0);
	if (rc == 0) {
		record_failure(key, now);
		return deny(ans, STATS_AUTH_WRONG, 0);
	}
	return STATS_AUTH_OK;
}

static uint64_t mono_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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

/* The hash the last SIGHUP installed (onion_stats_reload); NULL = the configuration's. */
static pthread_mutex_t reloaded_lock = PTHREAD_MUTEX_INITIALIZER;
static char *reloaded_hash;

void onion_stats_reload(const char *hash)
{
	char *copy = strdup(hash);
	pthread_mutex_lock(&reloaded_lock);
	free(reloaded_hash);
	reloaded_hash = copy;
	pthread_mutex_unlock(&reloaded_lock);
	onion_stats_auth_reset(); /* the remembered password and the failure counts were the old hash's */
}

int onion_stats_begin(struct onion_server *s, struct onion_conn *c, struct router_link *router,
		      struct router_link *statsd, const char *auth, const struct sockaddr *peer, socklen_t peerlen,
		      const unsigned char *body, size_t len, void **pending)
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

	struct stats_auth_answer ans;

	*pending = NULL;
	char hash[256];
	pthread_mutex_lock(&reloaded_lock);
	snprintf(hash, sizeof hash, "%s", reloaded_hash ? reloaded_hash : s->cfg->onion.stats_password_hash);
	pthread_mutex_unlock(&reloaded_lock);
	if (onion_stats_auth(hash, auth, peer, peerlen, mono_now_ms(), &ans) != STATS_AUTH_OK) {
		answer(c, ans.status, "text/plain", strdup(ans.body), ans.header);
		return 0;
	}
	if (len > 0) {
		/* Parsed whatever the Content-Type says (docs/protocol.md §6.7). */
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
		answer(c, 503, "text/plain", strdup("Service Unavailable\n"), NULL);
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
		answer(c, 503, "text/plain", strdup("Service Unavailable\n"), NULL);
		return;
	}
	strcat(nl, "\n");
	answer(c, 200, "application/json", nl, NULL);
}
