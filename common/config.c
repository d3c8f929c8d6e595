/*
 * config: defaults, then the JSON file, checked against one table of every key.
 * Trusts nothing in the file: types, ranges and unknown keys are all reported.
 * Keys starting with '_' are comments, skipped at any level (docs/config.md).
 * Defaults follow the FHS: sockets in /run/pushpipe, databases under /var/lib/pushpipe.
 */
#include "config.h"
#include "daemon.h"
#include "jwt.h"
#include "log.h"
#include "onion_key.h"
#include "sock.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The APNs key check (check_apns) needs jwt.c and, through it, libcrypto. Only apns-sender
 * checks the apns_sender section, and it links jwt.c for its provider tokens; the reference is
 * weak so that config.c alone brings neither into the daemons that use no OpenSSL (the router
 * and statsd map no libcrypto: about 0.4 MB less each, docs/benchmarks.md). */
#pragma weak jwt_key_check_file

enum conf_type { C_STR, C_INT, C_BOOL, C_LIST };

struct conf_key {
	const char *section; /* NULL = top level */
	const char *name;
	enum conf_type type;
	size_t off;
	const char *dflt;    /* strings, and lists as "a,b" */
	long idflt, min, max;
};

#define S(sec, field) offsetof(struct config, sec.field)
#define T(field) offsetof(struct config, field)

/* The keys of struct sender_settings, the same in every provider sender's section: one set of
 * ranges and defaults, a sender's own defaults for its connections and streams. */
#define SENDER_HTTP_KEYS(sec, member, conns, streams)                                                       \
	{sec, "connections", C_INT, S(member, common.connections), NULL, conns, 1, 64},                      \
	{sec, "max_streams", C_INT, S(member, common.max_streams), NULL, streams, 1, 10000},                 \
	{sec, "deadline_ms", C_INT, S(member, common.deadline_ms), NULL, 10000, 100, 120000}
#define SENDER_KEYS(sec, member, conns, streams)                                                            \
	SENDER_HTTP_KEYS(sec, member, conns, streams),                                                       \
	{sec, "ping_idle_ms", C_INT, S(member, common.ping_idle_ms), NULL, 30000, 1000, 600000},             \
	{sec, "guard_window", C_INT, S(member, common.guard_window), NULL, 100, 5, 100000},                  \
	{sec, "guard_min_answers", C_INT, S(member, common.guard_min_answers), NULL, 10, 1, 100000},         \
	{sec, "guard_percent", C_INT, S(member, common.guard_percent), NULL, 50, 1, 100}

static const struct conf_key keys[] = {
	{NULL, "state_dir", C_STR, T(state_dir), "/run/pushpipe", 0, 0, 0},
	{NULL, "user", C_STR, T(user), "", 0, 0, 0},
	{NULL, "log_level", C_STR, T(log_level), "info", 0, 0, 0},
	{NULL, "sandbox", C_BOOL, T(sandbox), NULL, 1, 0, 1},
	{NULL, "landlock_required", C_BOOL, T(landlock_required), NULL, 0, 0, 1},

	{"ingress_onion", "listen", C_STR, S(onion, listen), "0.0.0.0:5000", 0, 0, 0},
	{"ingress_onion", "key_file", C_STR, S(onion, key_file), "", 0, 0, 0},
	{"ingress_onion", "flavour", C_STR, S(onion, flavour), "bchat", 0, 0, 0},
	{"ingress_onion", "v2_routes", C_LIST, S(onion, v2_routes), "", 0, 0, 0},
	{"ingress_onion", "v4_routes", C_LIST, S(onion, v4_routes), "", 0, 0, 0},
	{"ingress_onion", "v2_salts", C_LIST, S(onion, v2_salts), "", 0, 0, 0},
	{"ingress_onion", "v4_salts", C_LIST, S(onion, v4_salts), "", 0, 0, 0},
	{"ingress_onion", "max_body", C_INT, S(onion, max_body), NULL, 65536, 1024, 1 << 20},
	{"ingress_onion", "validate_ids", C_BOOL, S(onion, validate_ids), NULL, 1, 0, 1},
	{"ingress_onion", "id_prefix", C_STR, S(onion, id_prefix), "", 0, 0, 0},
	{"ingress_onion", "max_data_len", C_INT, S(onion, max_data_len), NULL, 10240, 1, 128 * 1024},
	{"ingress_onion", "max_groups", C_INT, S(onion, max_groups), NULL, 2048, 0, 2048},
	{"ingress_onion", "product_name", C_STR, S(onion, product_name), "", 0, 0, 0},
	{"ingress_onion", "stats_password_hash", C_STR, S(onion, stats_password_hash), "", 0, 0, 0},
	{"ingress_onion", "max_connections", C_INT, S(onion, max_connections), NULL, 1024, 1, 65536},
	{"ingress_onion", "timeout_s", C_INT, S(onion, timeout_s), NULL, 10, 1, 300},
	{"ingress_onion", "head_timeout_s", C_INT, S(onion, head_timeout_s), NULL, 10, 1, 300},
	{"ingress_onion", "body_timeout_s", C_INT, S(onion, body_timeout_s), NULL, 30, 1, 600},
	{"ingress_onion", "min_body_rate", C_INT, S(onion, min_body_rate), NULL, 1024, 0, 1 << 30},
	{"ingress_onion", "max_connections_per_source", C_INT, S(onion, max_connections_per_source), NULL, 0, 0, 65536},
	{"ingress_onion", "threads", C_INT, S(onion, threads), NULL, 2, 1, 64},
	{"ingress_onion", "max_pending", C_INT, S(onion, max_pending), NULL, 4096, 1, 1 << 20},
	{"ingress_onion", "router_timeout_ms", C_INT, S(onion, router_timeout_ms), NULL, 5000, 10, 20000},

	{"ingress_uwpx", "listen", C_STR, S(uwpx, listen), "0.0.0.0:1997", 0, 0, 0},
	{"ingress_uwpx", "cert_file", C_STR, S(uwpx, cert_file), "", 0, 0, 0},
	{"ingress_uwpx", "key_file", C_STR, S(uwpx, key_file), "", 0, 0, 0},
	{"ingress_uwpx", "max_message", C_INT, S(uwpx, max_message), NULL, 65536, 1024, 1 << 20},
	{"ingress_uwpx", "first_timeout_s", C_INT, S(uwpx, first_timeout_s), NULL, 10, 1, 300},
	{"ingress_uwpx", "idle_timeout_s", C_INT, S(uwpx, idle_timeout_s), NULL, 30, 1, 3600},
	{"ingress_uwpx", "max_connections", C_INT, S(uwpx, max_connections), NULL, 256, 1, 65536},
	{"ingress_uwpx", "max_accounts", C_INT, S(uwpx, max_accounts), NULL, 64, 1, 64},
	{"ingress_uwpx", "channel_suffixes", C_LIST, S(uwpx, channel_suffixes), ".notify.windows.com", 0, 0, 0},
	{"ingress_uwpx", "channel_paths", C_LIST, S(uwpx, channel_paths), "/", 0, 0, 0},
	{"ingress_uwpx", "allow_loopback_channels", C_BOOL, S(uwpx, allow_loopback_channels), NULL, 0, 0, 1},
	{"ingress_uwpx", "app", C_STR, S(uwpx, app), "", 0, 0, 0},
	{"ingress_uwpx", "test_push_deadline_ms", C_INT, S(uwpx, test_push_deadline_ms), NULL, 2500, 100, 10000},
	{"ingress_uwpx", "router_timeout_ms", C_INT, S(uwpx, router_timeout_ms), NULL, 2000, 10, 20000},

	{"ingress_xmpp", "server", C_STR, S(xmpp, server), "127.0.0.1:5347", 0, 0, 0},
	{"ingress_xmpp", "domain", C_STR, S(xmpp, domain), "", 0, 0, 0},
	{"ingress_xmpp", "secret_file", C_STR, S(xmpp, secret_file), "", 0, 0, 0},
	{"ingress_xmpp", "keepalive_s", C_INT, S(xmpp, keepalive_s), NULL, 60, 1, 3600},
	{"ingress_xmpp", "max_stanza", C_INT, S(xmpp, max_stanza), NULL, 65536, 4096, 1 << 20},
	{"ingress_xmpp", "ping_jid", C_STR, S(xmpp, ping_jid), "", 0, 0, 0},
	{"ingress_xmpp", "bind_domain", C_BOOL, S(xmpp, bind_domain), NULL, 1, 0, 1},
	{"ingress_xmpp", "adhoc", C_BOOL, S(xmpp, adhoc), NULL, 0, 0, 1},
	{"ingress_xmpp", "adhoc_services", C_LIST, S(xmpp, adhoc_services), "fcm,apns", 0, 0, 0},
	{"ingress_xmpp", "adhoc_domains", C_LIST, S(xmpp, adhoc_domains), "", 0, 0, 0},
	{"ingress_xmpp", "applications", C_LIST, S(xmpp, applications), "", 0, 0, 0},
	{"ingress_xmpp", "application", C_STR, S(xmpp, application), "", 0, 0, 0},
	{"ingress_xmpp", "router_timeout_ms", C_INT, S(xmpp, router_timeout_ms), NULL, 5000, 10, 20000},

	{"router", "db_path", C_STR, S(router, db_path), "/var/lib/pushpipe/registry", 0, 0, 0},
	{"router", "map_size_mb", C_INT, S(router, map_size_mb), NULL, 4096, 1, 1 << 20},
	{"router", "outbox_max", C_INT, S(router, outbox_max), NULL, 1000000, 1, 1L << 32},
	{"router", "max_in_flight", C_INT, S(router, max_in_flight), NULL, 1000, 1, 100000},
	{"router", "job_max_age_s", C_INT, S(router, job_max_age_s), NULL, 86400, 1, 30 * 86400},
	{"router", "backoff_first_ms", C_INT, S(router, backoff_first_ms), NULL, 1000, 1, 3600000},
	{"router", "backoff_cap_ms", C_INT, S(router, backoff_cap_ms), NULL, 300000, 1, 86400000},
	{"router", "skip_legacy_groups_only", C_BOOL, S(router, skip_legacy_groups_only), NULL, -1, 0, 1},
	{"router", "failure_threshold", C_INT, S(router, failure_threshold), NULL, 4, 1, 1000},
	{"router", "wake_max_age_s", C_INT, S(router, wake_max_age_s), NULL, 3600, 1, 30 * 86400},
	{"router", "device_expiry_s", C_INT, S(router, device_expiry_s), NULL, 60 * 86400, 60, 3650L * 86400},
	{"router", "node_length", C_INT, S(router, node_length), NULL, 24, 15, 64},
	{"router", "secret_length", C_INT, S(router, secret_length), NULL, 24, 15, 64},
	{"router", "hello_timeout_ms", C_INT, S(router, hello_timeout_ms), NULL, 2000, 100, 60000},
	{"router", "max_unauthenticated", C_INT, S(router, max_unauthenticated), NULL, 16, 1, 256},
	{"router", "max_tokens_per_id", C_INT, S(router, max_tokens_per_id), NULL, 64, 1, 10000},
	{"router", "max_groups_per_id", C_INT, S(router, max_groups_per_id), NULL, 4096, 1, 1000000},
	{"router", "max_group_members", C_INT, S(router, max_group_members), NULL, 10000, 1, 10000000},
	{"router", "map_warn_percent", C_INT, S(router, map_warn_percent), NULL, 85, 1, 99},
	{"router", "map_full_percent", C_INT, S(router, map_full_percent), NULL, 95, 2, 99},

	{"apns_sender", "url", C_STR, S(apns, url), "https://api.push.apple.com", 0, 0, 0},
	{"apns_sender", "ca_file", C_STR, S(apns, ca_file), "", 0, 0, 0},
	{"apns_sender", "auth", C_STR, S(apns, auth), "token", 0, 0, 0},
	{"apns_sender", "key_file", C_STR, S(apns, key_file), "", 0, 0, 0},
	{"apns_sender", "key_id", C_STR, S(apns, key_id), "", 0, 0, 0},
	{"apns_sender", "team_id", C_STR, S(apns, team_id), "", 0, 0, 0},
	{"apns_sender", "cert_file", C_STR, S(apns, cert_file), "", 0, 0, 0},
	{"apns_sender", "cert_key_file", C_STR, S(apns, cert_key_file), "", 0, 0, 0},
	{"apns_sender", "topic", C_STR, S(apns, topic), "", 0, 0, 0},
	{"apns_sender", "alert_title", C_STR, S(apns, alert_title), "", 0, 0, 0},
	{"apns_sender", "alert_body", C_STR, S(apns, alert_body), "You've got a new message", 0, 0, 0},
	{"apns_sender", "expiration_s", C_INT, S(apns, expiration_s), NULL, -1, -1, 30 * 86400},
	SENDER_KEYS("apns_sender", apns, 2, 500),
	{"apns_sender", "jwt_refresh_s", C_INT, S(apns, jwt_refresh_s), NULL, 3000, 1200, 3300},
	{"apns_sender", "xmpp_topic", C_STR, S(apns, xmpp_topic), "", 0, 0, 0},

	{"fcm_sender", "url", C_STR, S(fcm, url), "https://fcm.googleapis.com", 0, 0, 0},
	{"fcm_sender", "ca_file", C_STR, S(fcm, ca_file), "", 0, 0, 0},
	{"fcm_sender", "service_account_file", C_STR, S(fcm, service_account_file), "", 0, 0, 0},
	{"fcm_sender", "token_uri", C_STR, S(fcm, token_uri), "", 0, 0, 0},
	{"fcm_sender", "project_id", C_STR, S(fcm, project_id), "", 0, 0, 0},
	SENDER_KEYS("fcm_sender", fcm, 1, 100),

	{"wns_sender", "auth_flow", C_STR, S(wns, auth_flow), "live", 0, 0, 0},
	{"wns_sender", "token_url", C_STR, S(wns, token_url), "", 0, 0, 0},
	{"wns_sender", "scope", C_STR, S(wns, scope), "", 0, 0, 0},
	{"wns_sender", "tenant", C_STR, S(wns, tenant), "", 0, 0, 0},
	{"wns_sender", "ca_file", C_STR, S(wns, ca_file), "", 0, 0, 0},
	{"wns_sender", "client_id", C_STR, S(wns, client_id), "", 0, 0, 0},
	{"wns_sender", "client_secret_file", C_STR, S(wns, client_secret_file), "", 0, 0, 0},
	SENDER_HTTP_KEYS("wns_sender", wns, 2, 100),
	{"wns_sender", "cache_policy", C_BOOL, S(wns, cache_policy), NULL, 0, 0, 1},
	{"wns_sender", "ttl_s", C_INT, S(wns, ttl_s), NULL, 0, 0, 30 * 86400},

	{"users", "ingress", C_STR, S(users, ingress), "", 0, 0, 0},
	{"users", "sender", C_STR, S(users, sender), "", 0, 0, 0},
	{"users", "router", C_STR, S(users, router), "", 0, 0, 0},
	{"users", "statsd", C_STR, S(users, statsd), "", 0, 0, 0},
	{"users", "tool", C_STR, S(users, tool), "", 0, 0, 0},

	{"hms_sender", "url", C_STR, S(hms, url), "https://push-api.cloud.huawei.com", 0, 0, 0},
	{"hms_sender", "token_url", C_STR, S(hms, token_url), "https://oauth-login.cloud.huawei.com/oauth2/v3/token", 0, 0, 0},
	{"hms_sender", "ca_file", C_STR, S(hms, ca_file), "", 0, 0, 0},
	{"hms_sender", "app_id", C_STR, S(hms, app_id), "", 0, 0, 0},
	{"hms_sender", "app_secret_file", C_STR, S(hms, app_secret_file), "", 0, 0, 0},
	SENDER_KEYS("hms_sender", hms, 1, 100),

	{"statsd", "db_path", C_STR, S(statsd, db_path), "/var/lib/pushpipe/stats", 0, 0, 0},
	{"statsd", "period_s", C_INT, S(statsd, period_s), NULL, 43200, 1, 30 * 86400},
	{"statsd", "listen", C_STR, S(statsd, listen), "127.0.0.1:5080", 0, 0, 0},
	{"statsd", "health_senders", C_LIST, S(statsd, health_senders), "", 0, 0, 0},

	{"cluster", "servers", C_LIST, S(cluster, servers), "", 0, 0, 0},
	{"cluster", "replicas", C_INT, S(cluster, replicas), NULL, 3, 1, 5},
	{"cluster", "credentials", C_STR, S(cluster, credentials), "", 0, 0, 0},
	{"cluster", "tls", C_BOOL, S(cluster, tls), NULL, 0, 0, 1},
	{"cluster", "tls_ca_file", C_STR, S(cluster, tls_ca_file), "", 0, 0, 0},
	{"cluster", "app", C_STR, S(cluster, app), "default", 0, 0, 0},
	{"cluster", "publish_wait_ms", C_INT, S(cluster, publish_wait_ms), NULL, 2000, 100, 60000},
	{"cluster", "snapshot_changes", C_INT, S(cluster, snapshot_changes), NULL, 100000, 0, 1000000000},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const char *const sections[] = {"ingress_onion", "ingress_uwpx", "ingress_xmpp", "router", "apns_sender", "fcm_sender",
				       "wns_sender", "hms_sender", "statsd", "users", "cluster"};

static void list_set(struct conf_list *l, const char *csv)
{
	const char *p = csv;
	l->n = 0;
	while (*p && l->n < CONF_LIST_MAX) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		l->v[l->n++] = strndup(p, n);
		p += n + (e ? 1 : 0);
	}
}

static void list_free(struct conf_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static void *field(struct config *c, const struct conf_key *k)
{
	return (char *)c + k->off;
}

static void set_default(struct config *c, const struct conf_key *k)
{
	switch (k->type) {
	case C_STR:
		*(char **)field(c, k) = strdup(k->dflt);
		break;
	case C_INT:
		*(long *)field(c, k) = k->idflt;
		break;
	case C_BOOL:
		*(int *)field(c, k) = (int)k->idflt;
		break;
	case C_LIST:
		list_set(field(c, k), k->dflt);
		break;
	}
}

static int set_value(struct config *c, const struct conf_key *k, json_t *v, char *err, size_t errlen)
{
	const char *full_sec = k->section ? k->section : "";
	const char *dot = k->section ? "." : "";

	switch (k->type) {
	case C_STR:
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
			goto type;
		free(*(char **)field(c, k));
		*(char **)field(c, k) = strdup(json_string_value(v));
		return 0;
	case C_INT:
		if (!json_is_integer(v))
			goto type;
		if (json_integer_value(v) < k->min || json_integer_value(v) > k->max) {
			snprintf(err, errlen, "%s: %s%s%s: %lld is outside %ld..%ld", c->path, full_sec, dot,
				 k->name, (long long)json_integer_value(v), k->min, k->max);
			return -1;
		}
		*(long *)field(c, k) = (long)json_integer_value(v);
		return 0;
	case C_BOOL:
		if (!json_is_boolean(v))
			goto type;
		*(int *)field(c, k) = json_is_true(v);
		return 0;
	case C_LIST: {
		struct conf_list *l = field(c, k);
		size_t i;
		json_t *e;
		if (!json_is_array(v) || json_array_size(v) > CONF_LIST_MAX)
			goto type;
		json_array_foreach(v, i, e) if (!json_is_string(e) || json_string_length(e) == 0) goto type;
		list_free(l);
		json_array_foreach(v, i, e) l->v[l->n++] = strdup(json_string_value(e));
		return 0;
	}
	}
type:
	snprintf(err, errlen, "%s: %s%s%s: wrong type (expected %s)", c->path, full_sec, dot, k->name,
		 k->type == C_STR ? "a string" : k->type == C_INT ? "an integer" : k->type == C_BOOL ? "true or false" : "an array of up to 8 non-empty strings");
	return -1;
}

static const struct conf_key *find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (((section == NULL && keys[i].section == NULL) ||
		     (section && keys[i].section && strcmp(section, keys[i].section) == 0)) &&
		    strcmp(name, keys[i].name) == 0)
			return &keys[i];
	return NULL;
}

static int is_section(const char *name)
{
	for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
		if (strcmp(name, sections[i]) == 0)
			return 1;
	return 0;
}

/* Flavour presets (docs/protocol.md §6.8) fill what the file left empty. */
static void apply_flavour(struct config *c)
{
	int session = strcmp(c->onion.flavour, "session") == 0;
	struct conf_ingress_onion *o = &c->onion;
	struct {
		char **s;
		const char *bchat, *session;
	} strs[] = {
		{&o->id_prefix, "bd", "05"},
		{&o->product_name, "Bchat", "Session"},
		{&c->apns.topic, "com.beldex.bchat", "com.loki-project.loki-messenger"},
		{&c->apns.alert_title, "Bchat", "Session"},
	};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		if ((*strs[i].s)[0] == '\0') {
			free(*strs[i].s);
			*strs[i].s = strdup(session ? strs[i].session : strs[i].bchat);
		}
	if (o->v2_routes.n == 0)
		list_set(&o->v2_routes, session ? "/loki/v2/lsrpc" : "/beldex/v2/lsrpc,/beldex/v3/lsrpc");
	if (o->v4_routes.n == 0)
		list_set(&o->v4_routes, session ? "/oxen/v4/lsrpc" : "/beldex/v4/lsrpc");
	if (o->v2_salts.n == 0)
		list_set(&o->v2_salts, session ? "LOKI" : "BELDEX");
	if (o->v4_salts.n == 0)
		list_set(&o->v4_salts, session ? "LOKI" : "BELDEX,LOKI");
	if (c->router.skip_legacy_groups_only < 0)
		c->router.skip_legacy_groups_only = session;
}

/* ingress_onion.stats_password_hash (ingress/onion/onion_stats.h): empty, "sha256:<64 hex>", or a
 * libsodium Argon2id string whose memory (held by each check) is at most 256 MiB. */
static int check_password_hash(const char *h)
{
	unsigned v, p;
	unsigned long m, t;
	int end = 0;

	if (h == NULL || h[0] == '\0')
		return 0;
	if (strncmp(h, "sha256:", 7) == 0) {
		unsigned char bin[32];
		size_t n = 0;
		return strlen(h + 7) == 64 && sodium_hex2bin(bin, sizeof bin, h + 7, 64, NULL, &n, NULL) == 0 && n == 32
			       ? 0
			       : -1;
	}
	if (sscanf(h, "$argon2id$v=%u$m=%lu,t=%lu,p=%u$%n", &v, &m, &t, &p, &end) != 4 || end == 0 || v != 19 ||
	    m < 8 || m > 256 * 1024 || t < 1 || t > 64 || p != 1)
		return -1;
	return crypto_pwhash_str_needs_rehash(h, crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE) < 0
		       ? -1
		       : 0;
}

static const char *const app_platforms[] = {"apns", "fcm", "wns", "hms"};

static int app_name_ok(const char *n)
{
	return n[0] != '\0' && strlen(n) <= 32 && strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789") == strlen(n);
}

/* `apps`: an array of objects, each a name, a platform and keys of that platform's sender
 * section (checked here by applying them to a scratch configuration, so an app's mistake is
 * reported at load like a section's). */
static int load_apps(struct config *c, json_t *v, char *err, size_t errlen)
{
	size_t i;
	json_t *a;

	if (!json_is_array(v) || json_array_size(v) > CONF_APPS_MAX) {
		snprintf(err, errlen, "%s: apps: wrong type (expected an array of up to %d objects)", c->path, CONF_APPS_MAX);
		return -1;
	}
	json_array_foreach(v, i, a) {
		json_t *jn = json_object_get(a, "name"), *jp = json_object_get(a, "platform"), *kv;
		const char *name, *platform, *kn;
		char section[32], kerr[400];
		struct config scratch;
		size_t p, j;
		int rc = 0;

		if (!json_is_object(a) || !json_is_string(jn) || !json_is_string(jp)) {
			snprintf(err, errlen, "%s: apps[%zu]: expected an object with a \"name\" and a \"platform\"", c->path, i);
			return -1;
		}
		name = json_string_value(jn);
		platform = json_string_value(jp);
		if (!app_name_ok(name) || strlen(name) != json_string_length(jn)) {
			snprintf(err, errlen, "%s: apps[%zu].name: 1 to 32 lowercase letters or digits", c->path, i);
			return -1;
		}
		for (p = 0; p < sizeof app_platforms / sizeof app_platforms[0]; p++)
			if (strcmp(platform, app_platforms[p]) == 0)
				break;
		if (p == sizeof app_platforms / sizeof app_platforms[0]) {
			snprintf(err, errlen, "%s: apps[%zu].platform: must be \"apns\", \"fcm\", \"wns\" or \"hms\"", c->path, i);
			return -1;
		}
		for (j = 0; j < c->napps; j++)
			if (strcmp(c->apps[j].platform, platform) == 0 && strcmp(c->apps[j].name, name) == 0) {
				snprintf(err, errlen, "%s: apps[%zu] (\"%s\"): a second %s app of that name", c->path, i, name,
					 platform);
				return -1;
			}
		snprintf(section, sizeof section, "%s_sender", platform);
		memset(&scratch, 0, sizeof scratch);
		scratch.path = c->path;
		for (j = 0; j < NKEYS; j++)
			if (keys[j].section && strcmp(keys[j].section, section) == 0)
				set_default(&scratch, &keys[j]);
		json_object_foreach(a, kn, kv) {
			const struct conf_key *k;
			if (kn[0] == '_' || strcmp(kn, "name") == 0 || strcmp(kn, "platform") == 0)
				continue;
			if ((k = find_key(section, kn)) == NULL) {
				snprintf(err, errlen, "%s: apps[%zu] (\"%s\").%s: unknown key (an app takes the keys of %s)",
					 c->path, i, name, kn, section);
				rc = -1;
				break;
			}
			if (set_value(&scratch, k, kv, kerr, sizeof kerr) < 0) {
				snprintf(err, errlen, "apps[%zu] (\"%s\"): %s", i, name, kerr);
				rc = -1;
				break;
			}
		}
		for (j = 0; j < NKEYS; j++) {
			if (keys[j].section == NULL || strcmp(keys[j].section, section) != 0)
				continue;
			if (keys[j].type == C_STR)
				free(*(char **)field(&scratch, &keys[j]));
			else if (keys[j].type == C_LIST)
				list_free(field(&scratch, &keys[j]));
		}
		if (rc < 0)
			return -1;
		c->apps[c->napps].name = strdup(name);
		c->apps[c->napps].platform = strdup(platform);
		c->napps++;
	}
	c->apps_json = json_incref(v);
	return 0;
}

static const char *const svc_devices[SVC_DEVICES] = {"ios", "android", "huawei"};
static const char *const svc_platforms[SVC_DEVICES] = {"apns", "fcm", "hms"};

static int string_list(json_t *v, struct conf_list *l)
{
	size_t i;
	json_t *e;
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > CONF_LIST_MAX)
		return -1;
	json_array_foreach(v, i, e) if (!json_is_string(e) || json_string_length(e) == 0) return -1;
	json_array_foreach(v, i, e) l->v[l->n++] = strdup(json_string_value(e));
	return 0;
}

/* ingress_onion.services: [{"name", "routes": [prefix...], "key_file", "id_prefix"?,
 * "apps": {"ios"?, "android"?, "huawei"?}}]. The app names are checked once `apps` is loaded
 * (check_services). */
static int load_services(struct config *c, json_t *v, char *err, size_t errlen)
{
	size_t i;
	json_t *a;

	if (!json_is_array(v) || json_array_size(v) > CONF_SERVICES_MAX) {
		snprintf(err, errlen, "%s: ingress_onion.services: wrong type (expected an array of up to %d objects)", c->path,
			 CONF_SERVICES_MAX);
		return -1;
	}
	json_array_foreach(v, i, a) {
		struct conf_onion_service *sv = &c->onion.services[c->onion.nservices];
		const char *kn;
		json_t *kv;

		if (!json_is_object(a)) {
			snprintf(err, errlen, "%s: ingress_onion.services[%zu]: expected an object", c->path, i);
			return -1;
		}
		c->onion.nservices++;
		sv->name = strdup("");
		sv->key_file = strdup("");
		sv->id_prefix = strdup("");
		for (int d = 0; d < SVC_DEVICES; d++)
			sv->app[d] = strdup("");
		json_object_foreach(a, kn, kv) {
			char **str = strcmp(kn, "name") == 0 ? &sv->name : strcmp(kn, "key_file") == 0 ? &sv->key_file
								 : strcmp(kn, "id_prefix") == 0 ? &sv->id_prefix : NULL;
			if (kn[0] == '_')
				continue;
			if (str != NULL) {
				if (!json_is_string(kv))
					goto type;
				free(*str);
				*str = strdup(json_string_value(kv));
			} else if (strcmp(kn, "routes") == 0) {
				if (string_list(kv, &sv->routes) < 0)
					goto type;
			} else if (strcmp(kn, "apps") == 0) {
				const char *dn;
				json_t *dv;
				if (!json_is_object(kv))
					goto type;
				json_object_foreach(kv, dn, dv) {
					int d;
					for (d = 0; d < SVC_DEVICES && strcmp(dn, svc_devices[d]) != 0; d++)
						;
					if (d == SVC_DEVICES || !json_is_string(dv)) {
						snprintf(err, errlen,
							 "%s: ingress_onion.services[%zu].apps.%s: expected \"ios\", \"android\" or "
							 "\"huawei\" naming an app",
							 c->path, i, dn);
						return -1;
					}
					free(sv->app[d]);
					sv->app[d] = strdup(json_string_value(dv));
				}
			} else {
				snprintf(err, errlen, "%s: ingress_onion.services[%zu].%s: unknown key", c->path, i, kn);
				return -1;
			}
			continue;
		type:
			snprintf(err, errlen, "%s: ingress_onion.services[%zu].%s: wrong type", c->path, i, kn);
			return -1;
		}
		if (sv->routes.n == 0 || sv->key_file[0] == '\0') {
			snprintf(err, errlen, "%s: ingress_onion.services[%zu]: \"routes\" (URL prefixes) and \"key_file\" are required",
				 c->path, i);
			return -1;
		}
		for (size_t r = 0; r < sv->routes.n; r++)
			if (sv->routes.v[r][0] != '/') {
				snprintf(err, errlen, "%s: ingress_onion.services[%zu].routes: \"%s\" does not start with /", c->path,
					 i, sv->routes.v[r]);
				return -1;
			}
	}
	return 0;
}

/* ingress_uwpx.app names a wns app; ingress_xmpp.application and each of applications an apns or
 * fcm app. */
static int check_app_refs(const struct config *c, char *err, size_t errlen)
{
	const char *u = c->uwpx.app, *x = c->xmpp.application;
	if (u[0] && !config_app_has(c, "wns", u, strlen(u))) {
		snprintf(err, errlen, "%s: ingress_uwpx.app: \"%s\" is no wns app in apps", c->path, u);
		return -1;
	}
	if (x[0] && !config_app_has(c, "apns", x, strlen(x)) && !config_app_has(c, "fcm", x, strlen(x))) {
		snprintf(err, errlen, "%s: ingress_xmpp.application: \"%s\" is no apns or fcm app in apps", c->path, x);
		return -1;
	}
	for (size_t i = 0; i < c->xmpp.applications.n; i++) {
		const char *a = c->xmpp.applications.v[i];
		if (!config_app_has(c, "apns", a, strlen(a)) && !config_app_has(c, "fcm", a, strlen(a))) {
			snprintf(err, errlen, "%s: ingress_xmpp.applications: \"%s\" is no apns or fcm app in apps", c->path, a);
			return -1;
		}
	}
	return 0;
}

static int check_services(const struct config *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->onion.nservices; i++)
		for (int d = 0; d < SVC_DEVICES; d++) {
			const char *a = c->onion.services[i].app[d];
			if (a[0] != '\0' && !config_app_has(c, svc_platforms[d], a, strlen(a))) {
				snprintf(err, errlen, "%s: ingress_onion.services[%zu].apps.%s: \"%s\" is no %s app in apps", c->path,
					 i, svc_devices[d], a, svc_platforms[d]);
				return -1;
			}
		}
	return 0;
}

int config_onion_service(const struct config *c, const char *url)
{
	for (size_t i = 0; i < c->onion.nservices; i++)
		for (size_t r = 0; r < c->onion.services[i].routes.n; r++) {
			const char *p = c->onion.services[i].routes.v[r];
			if (strncmp(url, p, strlen(p)) == 0)
				return (int)i;
		}
	return -1;
}

const char *config_app_of(const struct config *c, const char *platform)
{
	for (size_t i = 0; i < c->napps; i++)
		if (strcmp(c->apps[i].platform, platform) == 0)
			return c->apps[i].name;
	return "default";
}

int config_app_has(const struct config *c, const char *platform, const char *app, size_t len)
{
	int any = 0;
	for (size_t i = 0; i < c->napps; i++)
		if (strcmp(c->apps[i].platform, platform) == 0) {
			any = 1;
			if (strlen(c->apps[i].name) == len && memcmp(c->apps[i].name, app, len) == 0)
				return 1;
		}
	return !any && len == 7 && memcmp(app, "default", 7) == 0;
}

int config_app_select(struct config *c, const char *daemon, const char *app, char *err, size_t errlen)
{
	char platform[16], section[32];
	const char *dash = strchr(daemon, '-');
	size_t i, found = (size_t)-1, count = 0;
	const char *kn;
	json_t *a, *kv;

	if (dash == NULL || strcmp(dash, "-sender") != 0 || (size_t)(dash - daemon) >= sizeof platform) {
		snprintf(err, errlen, "-a: only a sender serves an app");
		return -1;
	}
	snprintf(platform, sizeof platform, "%.*s", (int)(dash - daemon), daemon);
	snprintf(section, sizeof section, "%s_sender", platform);
	for (i = 0; i < c->napps; i++)
		if (strcmp(c->apps[i].platform, platform) == 0) {
			count++;
			if (app == NULL || strcmp(app, c->apps[i].name) == 0)
				found = i;
		}
	if (app != NULL && count == 0 && strcmp(app, "default") == 0)
		return 0;
	if (found == (size_t)-1) {
		if (app == NULL)
			return 0; /* no apps of this platform: the section alone, app "default" */
		snprintf(err, errlen, "%s: -a %s: no %s app of that name in apps", c->path, app, platform);
		return -1;
	}
	if (app == NULL && count > 1) {
		snprintf(err, errlen, "%s: -a APP is required: several %s apps", c->path, platform);
		return -1;
	}
	json_array_foreach((json_t *)c->apps_json, i, a) {
		if (strcmp(json_string_value(json_object_get(a, "name")), c->apps[found].name) != 0 ||
		    strcmp(json_string_value(json_object_get(a, "platform")), platform) != 0)
			continue;
		json_object_foreach(a, kn, kv) {
			const struct conf_key *k;
			if (kn[0] == '_' || strcmp(kn, "name") == 0 || strcmp(kn, "platform") == 0)
				continue;
			if ((k = find_key(section, kn)) == NULL || set_value(c, k, kv, err, errlen) < 0)
				return -1; /* checked by load_apps */
		}
	}
	free(c->app);
	c->app = strdup(c->apps[found].name);
	return 0;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root, *v;
	const char *name;

	memset(c, 0, sizeof *c);
	c->path = strdup(path);
	for (size_t i = 0; i < NKEYS; i++)
		set_default(c, &keys[i]);
	c->app = strdup("default");
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		snprintf(err, errlen, "%s:%d: %s", path, je.line, je.text);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "%s: the configuration must be a JSON object", path);
		goto fail;
	}
	json_object_foreach(root, name, v) {
		const struct conf_key *k;
		if (name[0] == '_')
			continue;
		if (is_section(name)) {
			const char *kn;
			json_t *kv;
			if (!json_is_object(v)) {
				snprintf(err, errlen, "%s: %s: wrong type (expected an object)", path, name);
				goto fail;
			}
			json_object_foreach(v, kn, kv) {
				if (kn[0] == '_')
					continue;
				if (strcmp(name, "ingress_onion") == 0 && strcmp(kn, "services") == 0) {
					if (load_services(c, kv, err, errlen) < 0)
						goto fail;
					continue;
				}
				if ((k = find_key(name, kn)) == NULL) {
					snprintf(err, errlen, "%s: %s.%s: unknown key", path, name, kn);
					goto fail;
				}
				if (set_value(c, k, kv, err, errlen) < 0)
					goto fail;
			}
			continue;
		}
		if (strcmp(name, "apps") == 0) {
			if (load_apps(c, v, err, errlen) < 0)
				goto fail;
			continue;
		}
		if ((k = find_key(NULL, name)) == NULL) {
			snprintf(err, errlen, "%s: %s: unknown key", path, name);
			goto fail;
		}
		if (set_value(c, k, v, err, errlen) < 0)
			goto fail;
	}
	json_decref(root);
	if (check_services(c, err, errlen) < 0 || check_app_refs(c, err, errlen) < 0)
		return -1;
	if (strcmp(c->onion.flavour, "bchat") != 0 && strcmp(c->onion.flavour, "session") != 0) {
		snprintf(err, errlen, "%s: ingress_onion.flavour: must be \"bchat\" or \"session\"", path);
		return -1;
	}
	if (log_level_parse(c->log_level) < 0) {
		snprintf(err, errlen, "%s: log_level: must be debug, info, warn or error", path);
		return -1;
	}
	if (check_password_hash(c->onion.stats_password_hash) < 0) {
		snprintf(err, errlen,
			 "%s: ingress_onion.stats_password_hash: neither an Argon2id string of at most 256 MiB "
			 "(`pushctl hash-password`) nor sha256:<64 hex>",
			 path);
		return -1;
	}
	if (c->landlock_required && !c->sandbox) {
		snprintf(err, errlen, "%s: landlock_required: needs \"sandbox\": true", path);
		return -1;
	}
	if (c->cluster.servers.n > 0 && (strspn(c->cluster.app, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(c->cluster.app) ||
					 c->cluster.app[0] == 0 || strlen(c->cluster.app) > 32)) {
		snprintf(err, errlen, "%s: cluster.app: 1 to 32 lowercase letters or digits", path);
		return -1;
	}
	apply_flavour(c);
	return 0;
fail:
	json_decref(root);
	return -1;
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].type == C_STR)
			free(*(char **)field(c, &keys[i]));
		else if (keys[i].type == C_LIST)
			list_free(field(c, &keys[i]));
	}
	for (size_t i = 0; i < c->napps; i++) {
		free(c->apps[i].name);
		free(c->apps[i].platform);
	}
	json_decref(c->apps_json);
	for (size_t i = 0; i < c->onion.nservices; i++) {
		struct conf_onion_service *sv = &c->onion.services[i];
		free(sv->name);
		free(sv->key_file);
		free(sv->id_prefix);
		list_free(&sv->routes);
		for (int d = 0; d < SVC_DEVICES; d++)
			free(sv->app[d]);
	}
	free(c->app);
	free(c->path);
	memset(c, 0, sizeof *c);
}

const char *config_socket(const struct config *c, const char *name, char *buf, size_t len)
{
	if (sock_path(buf, len, c->state_dir, name) < 0)
		return NULL;
	return buf;
}

const char *config_user_for(const struct config *c, const char *role)
{
	const char *u = strcmp(role, "ingress") == 0  ? c->users.ingress
			: strcmp(role, "sender") == 0 ? c->users.sender
			: strcmp(role, "router") == 0 ? c->users.router
			: strcmp(role, "statsd") == 0 ? c->users.statsd
			: strcmp(role, "tool") == 0   ? c->users.tool
						      : NULL;
	return u && u[0] ? u : c->user;
}

/* ---------------------------------------------------------------- checks before a start */

#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* The user the checked daemon drops to (users.<role>, else `user`), set by config_check(), and
 * the last warning it found (a file that user could not re-read on HUP). */
static const char *check_user = "";
static char check_warn[600];

const char *config_check_warning(void)
{
	return check_warn;
}

/* A file a daemon reads at start-up (or on HUP): it must exist and be readable now; when the
 * daemon drops to a user, files re-read later (reread=1) must be readable by that user too. */
static int check_file(const struct config *c, const char *key, const char *path, int reread, char *err,
		      size_t errlen)
{
	struct stat st;
	int fd;

	if (path[0] == '\0')
		return FAIL("%s: %s: required", c->path, key);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return FAIL("%s: %s: %s: %s", c->path, key, path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return FAIL("%s: %s: %s: not a regular file", c->path, key, path);
	}
	close(fd);
	if (reread && geteuid() == 0 && check_user[0] != '\0') {
		struct passwd *pw = getpwnam(check_user);
		int ok = pw && ((st.st_uid == pw->pw_uid && (st.st_mode & S_IRUSR)) ||
				(st.st_gid == pw->pw_gid && (st.st_mode & S_IRGRP)) || (st.st_mode & S_IROTH));
		/* A warning, not a refusal: the daemon runs; a HUP would keep the old contents. */
		if (!ok)
			snprintf(check_warn, sizeof check_warn,
				 "%s: %s: %s: not readable by user %s, so a HUP cannot re-read it "
				 "(docs/operations.md: root:<group of %s>, mode 0640)",
				 c->path, key, path, check_user, check_user);
	}
	return 0;
}

/* "host:port" or "[v6]:port" with a port from 1 to 65535; loopback=1 also requires every
 * address the host names to be a loopback address. */
static int check_listen(const struct config *c, const char *key, const char *spec, int loopback, char *err,
			size_t errlen)
{
	char host[256], *end;
	const char *colon, *h = spec;
	size_t hl;
	long port;
	struct addrinfo hints, *res, *ai;

	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');
		if (rb == NULL || rb[1] != ':')
			return FAIL("%s: %s: \"%s\": expected [ADDRESS]:PORT", c->path, key, spec);
		h = spec + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(spec, ':')) == NULL)
			return FAIL("%s: %s: \"%s\": expected HOST:PORT", c->path, key, spec);
		hl = (size_t)(colon - spec);
	}
	if (hl == 0 || hl >= sizeof host)
		return FAIL("%s: %s: \"%s\": expected HOST:PORT", c->path, key, spec);
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 || port < 1 || port > 65535)
		return FAIL("%s: %s: \"%s\": the port must be a number from 1 to 65535", c->path, key, spec);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return FAIL("%s: %s: \"%s\": %s is not an address of this host", c->path, key, spec, host);
	for (ai = res; loopback && ai; ai = ai->ai_next) {
		int lo = 0;
		if (ai->ai_family == AF_INET)
			lo = (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
		else if (ai->ai_family == AF_INET6)
			lo = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
		if (!lo) {
			freeaddrinfo(res);
			return FAIL("%s: %s: \"%s\": statsd only listens on a loopback address (127.0.0.0/8, ::1)",
				    c->path, key, spec);
		}
	}
	freeaddrinfo(res);
	return 0;
}

int config_password_hash_ok(const char *hash)
{
	return check_password_hash(hash) == 0;
}

static int check_onion(const struct config *c, char *err, size_t errlen)
{
	unsigned char sk[32], pk[32];
	char why[256];

	if (check_listen(c, "ingress_onion.listen", c->onion.listen, 0, err, errlen) < 0 ||
	    check_file(c, "ingress_onion.key_file", c->onion.key_file, 0, err, errlen) < 0)
		return -1;
	if (onion_key_load(c->onion.key_file, sk, pk, why, sizeof why) < 0)
		return FAIL("%s: ingress_onion.key_file: %s", c->path, why);
	sodium_memzero(sk, sizeof sk);
	for (size_t i = 0; i < c->onion.nservices; i++) {
		char key[64];
		snprintf(key, sizeof key, "ingress_onion.services[%zu].key_file", i);
		if (check_file(c, key, c->onion.services[i].key_file, 0, err, errlen) < 0)
			return -1;
		if (onion_key_load(c->onion.services[i].key_file, sk, pk, why, sizeof why) < 0)
			return FAIL("%s: %s: %s", c->path, key, why);
		sodium_memzero(sk, sizeof sk);
	}
	if (!config_password_hash_ok(c->onion.stats_password_hash))
		return FAIL("%s: ingress_onion.stats_password_hash: expected \"sha256:\" and 64 hex digits "
			    "(or an $argon2id$ hash), or \"\" to turn the statistics route off", c->path);
	return 0;
}

static int check_uwpx(const struct config *c, char *err, size_t errlen)
{
	if (check_listen(c, "ingress_uwpx.listen", c->uwpx.listen, 0, err, errlen) < 0 ||
	    check_file(c, "ingress_uwpx.cert_file", c->uwpx.cert_file, 1, err, errlen) < 0 ||
	    check_file(c, "ingress_uwpx.key_file", c->uwpx.key_file, 1, err, errlen) < 0)
		return -1;
	return 0;
}

static int check_xmpp(const struct config *c, char *err, size_t errlen)
{
	if (c->xmpp.domain[0] == '\0')
		return FAIL("%s: ingress_xmpp.domain: required", c->path);
	if (check_listen(c, "ingress_xmpp.server", c->xmpp.server, 0, err, errlen) < 0 ||
	    check_file(c, "ingress_xmpp.secret_file", c->xmpp.secret_file, 0, err, errlen) < 0)
		return -1;
	return 0;
}

static int check_apns(const struct config *c, char *err, size_t errlen)
{
	const struct conf_apns *a = &c->apns;
	char why[256];

	if (strncasecmp(a->url, "https://", 8) != 0)
		return FAIL("%s: apns_sender.url: must be an https:// URL", c->path);
	if (a->topic[0] == '\0')
		return FAIL("%s: apns_sender.topic: required", c->path);
	if (a->ca_file[0] && check_file(c, "apns_sender.ca_file", a->ca_file, 0, err, errlen) < 0)
		return -1;
	if (strcmp(a->auth, "certificate") == 0)
		return check_file(c, "apns_sender.cert_file", a->cert_file, 0, err, errlen) < 0 ||
			(a->cert_key_file[0] && check_file(c, "apns_sender.cert_key_file", a->cert_key_file, 0, err, errlen) < 0) ? -1 : 0;
	if (strcmp(a->auth, "token") != 0)
		return FAIL("%s: apns_sender.auth: must be \"token\" or \"certificate\", not \"%s\"", c->path, a->auth);
	if (a->key_id[0] == '\0' || a->team_id[0] == '\0')
		return FAIL("%s: apns_sender: key_id and team_id are required with auth \"token\"", c->path);
	if (check_file(c, "apns_sender.key_file", a->key_file, 0, err, errlen) < 0)
		return -1;
	if (jwt_key_check_file == NULL) /* see the #pragma weak above */
		return FAIL("%s: apns_sender.key_file: this program cannot read ES256 keys", c->path);
	if (jwt_key_check_file(a->key_file, JWT_ES256, why, sizeof why) < 0)
		return FAIL("%s: apns_sender.key_file: %s", c->path, why);
	return 0;
}

static int check_fcm(const struct config *c, char *err, size_t errlen)
{
	json_error_t je;
	json_t *sa;

	if (strncasecmp(c->fcm.url, "https://", 8) != 0)
		return FAIL("%s: fcm_sender.url: must be an https:// URL", c->path);
	if ((c->fcm.ca_file[0] && check_file(c, "fcm_sender.ca_file", c->fcm.ca_file, 0, err, errlen) < 0) ||
	    check_file(c, "fcm_sender.service_account_file", c->fcm.service_account_file, 0, err, errlen) < 0)
		return -1;
	if ((sa = json_load_file(c->fcm.service_account_file, 0, &je)) == NULL)
		return FAIL("%s: fcm_sender.service_account_file: line %d: %s", c->path, je.line, je.text);
	int ok = json_is_object(sa) && json_is_string(json_object_get(sa, "private_key"));
	json_decref(sa);
	return ok ? 0 : FAIL("%s: fcm_sender.service_account_file: no private_key", c->path);
}

static int check_wns(const struct config *c, char *err, size_t errlen)
{
	if (strcmp(c->wns.auth_flow, "live") != 0 && strcmp(c->wns.auth_flow, "entra") != 0)
		return FAIL("%s: wns_sender.auth_flow: must be \"live\" or \"entra\"", c->path);
	if (c->wns.client_id[0] == '\0')
		return FAIL("%s: wns_sender.client_id: required", c->path);
	if ((c->wns.ca_file[0] && check_file(c, "wns_sender.ca_file", c->wns.ca_file, 0, err, errlen) < 0) ||
	    check_file(c, "wns_sender.client_secret_file", c->wns.client_secret_file, 0, err, errlen) < 0)
		return -1;
	return 0;
}

static int check_hms(const struct config *c, char *err, size_t errlen)
{
	size_t n = strlen(c->hms.app_id);

	if (strncasecmp(c->hms.url, "https://", 8) != 0)
		return FAIL("%s: hms_sender.url: must be an https:// URL", c->path);
	if (strncasecmp(c->hms.token_url, "https://", 8) != 0)
		return FAIL("%s: hms_sender.token_url: must be an https:// URL", c->path);
	if (n == 0 || n > 32 || strspn(c->hms.app_id, "0123456789") != n)
		return FAIL("%s: hms_sender.app_id: required, the App ID (decimal digits)", c->path);
	if ((c->hms.ca_file[0] && check_file(c, "hms_sender.ca_file", c->hms.ca_file, 0, err, errlen) < 0) ||
	    check_file(c, "hms_sender.app_secret_file", c->hms.app_secret_file, 0, err, errlen) < 0)
		return -1;
	return 0;
}

static int is_sender_daemon(const char *name, size_t len)
{
	static const char *const senders[] = {"apns-sender", "fcm-sender", "wns-sender", "hms-sender"};
	for (size_t i = 0; i < sizeof senders / sizeof senders[0]; i++)
		if (strlen(senders[i]) == len && strncmp(name, senders[i], len) == 0)
			return 1;
	return 0;
}

int config_check(const struct config *c, const char *daemon, char *err, size_t errlen)
{
	static const struct {
		const char *daemon;
		int (*check)(const struct config *, char *, size_t);
	} roles[] = {
		{"ingress-onion", check_onion}, {"ingress-uwpx", check_uwpx}, {"ingress-xmpp", check_xmpp},
		{"apns-sender", check_apns},	{"fcm-sender", check_fcm},    {"wns-sender", check_wns},
		{"hms-sender", check_hms},
	};

	if (c->state_dir[0] == '\0')
		return FAIL("%s: state_dir: required", c->path);
	if (c->user[0] != '\0' && getpwnam(c->user) == NULL)
		return FAIL("%s: user: no such user \"%s\"", c->path, c->user);
	{
		static const char *const classes[] = {"ingress", "sender", "router", "statsd", "tool"};
		for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
			const char *u = config_user_for(c, classes[i]);
			if (u[0] != '\0' && getpwnam(u) == NULL)
				return FAIL("%s: users.%s: no such user \"%s\"", c->path, classes[i], u);
		}
	}
	check_user = daemon ? config_user_for(c, daemon_role_class(daemon)) : c->user;
	check_warn[0] = '\0';
	/* Every daemon reads the file again on HUP, as the user. */
	if (check_file(c, "the configuration file", c->path, 1, err, errlen) < 0)
		return -1;
	if (daemon == NULL)
		return 0;
	if (strcmp(daemon, "router") == 0 && c->router.db_path[0] == '\0')
		return FAIL("%s: router.db_path: required", c->path);
	if (strcmp(daemon, "statsd") == 0) {
		for (size_t i = 0; i < c->statsd.health_senders.n; i++) {
			const char *h = c->statsd.health_senders.v[i];
			size_t dl = strcspn(h, ":");
			if (!is_sender_daemon(h, dl) || (h[dl] == ':' && h[dl + 1] == '\0'))
				return FAIL("%s: statsd.health_senders: \"%s\": expected apns-sender, fcm-sender, "
					    "wns-sender or hms-sender, optionally with :INSTANCE", c->path, h);
		}
		return c->statsd.db_path[0] == '\0' ? FAIL("%s: statsd.db_path: required", c->path)
						   : check_listen(c, "statsd.listen", c->statsd.listen, 1, err, errlen);
	}
	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
		if (strcmp(daemon, roles[i].daemon) == 0)
			return roles[i].check(c, err, errlen);
	return 0;
}

int config_cluster(const struct config *c)
{
	return c->cluster.servers.n > 0;
}
