/*
 * config: the one JSON configuration file, with a section per daemon. Every daemon loads
 * and validates the whole file (an unknown key or a value of the wrong type is an error naming
 * the file and the key), then config_check() checks what that daemon would refuse at start-up,
 * so `-n` on a daemon checks everything its start would.
 */
#ifndef CONFIG_H
#define CONFIG_H
#include <stddef.h>

#define CONF_LIST_MAX 8

struct conf_list {
	char *v[CONF_LIST_MAX];
	size_t n;
};

/* One entry of ingress_onion.services (docs/config.md): requests whose URL starts with one of
 * its route prefixes are decrypted with its key and belong to its apps. */
#define CONF_SERVICES_MAX 8
enum { SVC_IOS, SVC_ANDROID, SVC_HUAWEI, SVC_DEVICES };
struct conf_onion_service {
	char *name;
	struct conf_list routes; /* URL prefixes: "/beldex/", "/loki/" */
	char *key_file;		 /* its server X25519 secret, 64 hex */
	char *id_prefix;	 /* "" = ingress_onion.id_prefix */
	char *app[SVC_DEVICES];	 /* the app of each device type (apns, fcm, hms); "" = the platform's default */
};

struct conf_ingress_onion {
	char *listen;		/* "host:port" */
	char *key_file;		/* server X25519 secret, 64 hex */
	char *flavour;		/* "bchat" or "session": presets below */
	struct conf_list v2_routes, v4_routes, v2_salts, v4_salts;
	long max_body;		/* bytes; 413 above */
	int validate_ids;
	char *id_prefix;
	long max_data_len;
	long max_groups;
	char *product_name;
	char *stats_password_hash; /* "sha256:<hex>" or empty = route answers 401 */
	long max_connections;
	long timeout_s;		/* idle connection (libmicrohttpd) */
	long head_timeout_s;	/* whole request head, from accept or the previous answer */
	long body_timeout_s;	/* whole body, from the end of the head */
	long min_body_rate;	/* bytes/s a body must average after its first 2 s; 0 = none */
	long max_connections_per_source; /* 0 = max_connections / 4 */
	long threads;
	long max_pending;	/* requests waiting for the router */
	long router_timeout_ms;
	struct conf_onion_service services[CONF_SERVICES_MAX];
	size_t nservices;
};

struct conf_ingress_uwpx {
	char *listen;		/* "host:port"; default 0.0.0.0:1997 */
	char *cert_file, *key_file; /* PEM; required when the daemon runs */
	long max_message;	/* bytes before the NUL */
	long first_timeout_s, idle_timeout_s, max_connections;
	long max_accounts;
	struct conf_list channel_suffixes; /* ".notify.windows.com" */
	struct conf_list channel_paths;	   /* "/" */
	int allow_loopback_channels;	   /* tests only (docs/uwpx.md, "Channel URIs") */
	char *app;			   /* the WNS app of UWPX devices; "" = the wns default app */
	long test_push_deadline_ms;
	long router_timeout_ms;
};

struct conf_ingress_xmpp {
	char *server;		/* "host:port" of the XMPP server's component port */
	char *domain;		/* component domain = push_bare_jid; required */
	char *secret_file;	/* shared component secret; required */
	long keepalive_s;
	long max_stanza;
	char *ping_jid;		/* empty = no XEP-0199 pings */
	int bind_domain;	/* bind wns nodes to the first publishing domain */
	int adhoc;		/* XEP-0050 registration */
	struct conf_list adhoc_services; /* "fcm,apns" */
	struct conf_list adhoc_domains;	 /* empty = any */
	struct conf_list applications;	 /* apps an XEP-0050 form's `application` may name */
	char *application;		 /* the app of a form without one; "" = the platform's default */
	long router_timeout_ms;
};

struct conf_router {
	char *db_path;
	long map_size_mb;
	long outbox_max;	/* jobs; past it ingress answers "Server busy" */
	long max_in_flight;	/* per sender instance */
	long job_max_age_s;
	long backoff_first_ms, backoff_cap_ms;
	int skip_legacy_groups_only;
	long failure_threshold;
	long wake_max_age_s;	/* WNS wake-ups and XMPP pushes */
	long device_expiry_s;	/* UWPX devices not refreshed */
	long node_length, secret_length;
	long hello_timeout_ms;	/* a connection that has not said hello by then is closed */
	long max_unauthenticated; /* connections that have not said hello yet */
	long max_tokens_per_id, max_groups_per_id, max_group_members;
	long map_warn_percent;	/* loud log line when the LMDB map passes this */
	long map_full_percent;	/* registrations refused past this; the rest is the outbox's */
};

/* Per-role users (optional): each daemon drops to its role's user, and the router lets a peer
 * take a role only when its uid is that role's (config_user_for). Empty = `user`. */
struct conf_users {
	char *ingress, *sender, *router, *statsd, *tool;
};

/* What every provider sender's section has (docs/config.md), with one set of ranges and
 * defaults: its HTTP client and its mass-invalidation guard. wns_sender has connections,
 * max_streams and deadline_ms only (its other fields stay 0: the client's and the guard's own
 * defaults). */
struct sender_settings {
	long connections, max_streams, deadline_ms, ping_idle_ms;
	long guard_window, guard_min_answers, guard_percent;
};

struct conf_apns {
	char *url;		/* https://api.push.apple.com */
	char *ca_file;		/* empty = system trust store */
	char *auth;		/* "token" or "certificate" */
	char *key_file, *key_id, *team_id;
	char *cert_file, *cert_key_file;
	char *topic;
	char *alert_title, *alert_body;
	long expiration_s;	/* -1 = header not sent */
	long jwt_refresh_s;
	char *xmpp_topic;	/* bundle id for XEP-0050 APNs registrations */
	struct sender_settings common;
};

struct conf_fcm {
	char *url;		/* https://fcm.googleapis.com */
	char *ca_file;
	char *service_account_file;
	char *token_uri;	/* empty = from the service account */
	char *project_id;	/* empty = from the service account */
	struct sender_settings common;
};

struct conf_wns {
	char *auth_flow;	/* "live" or "entra" */
	char *token_url, *ca_file, *client_id, *client_secret_file, *scope, *tenant;
	struct sender_settings common;
	int cache_policy;	/* send X-WNS-Cache-Policy: cache */
	long ttl_s;		/* X-WNS-TTL; 0 = not sent */
};

struct conf_hms {
	char *url;		/* https://push-api.cloud.huawei.com */
	char *token_url;	/* the OAuth token endpoint */
	char *ca_file, *app_id, *app_secret_file;
	struct sender_settings common;
};

struct conf_statsd {
	char *db_path;
	long period_s;
	char *listen;		/* loopback HTTP for metrics and the status page */
	struct conf_list health_senders; /* "apns-sender", "apns-sender:2": /healthz needs them */
};

/* Cluster mode (docs/cluster.md): set when servers is not empty. */
struct conf_cluster {
	struct conf_list servers; /* "nats://host:port" */
	long replicas;		/* of every stream */
	char *credentials;	/* file: USER:PASSWORD on its first line (secret) */
	int tls;		/* TLS to the servers */
	char *tls_ca_file;	/* empty = system trust store */
	char *app;		/* the <app> of pp.job.<platform>.<app> */
	long publish_wait_ms;	/* a publish without an acknowledgement this long is resent */
	long snapshot_changes;	/* registry changes between two snapshots of the registry (0: none) */
};

/* One entry of `apps` (docs/config.md, section apps): a name and its platform; its keys are those of
 * the platform's sender section and override that section for the app's sender processes. */
#define CONF_APPS_MAX 16
struct conf_app {
	char *name;		/* 1 to 32 lowercase letters or digits */
	char *platform;		/* "apns", "fcm", "wns" or "hms" */
};

struct config {
	char *path;
	char *state_dir;	/* sockets */
	char *user;		/* drop privileges to this user when started as root */
	char *log_level;
	int sandbox;		/* seccomp + Landlock per role */
	int landlock_required;	/* refuse to start where the kernel has no Landlock */
	struct conf_ingress_onion onion;
	struct conf_ingress_uwpx uwpx;
	struct conf_ingress_xmpp xmpp;
	struct conf_router router;
	struct conf_apns apns;
	struct conf_fcm fcm;
	struct conf_wns wns;
	struct conf_hms hms;
	struct conf_statsd statsd;
	struct conf_users users;
	struct conf_cluster cluster;
	struct conf_app apps[CONF_APPS_MAX];
	size_t napps;
	void *apps_json;	/* the `apps` array as parsed (jansson), for config_app_select */
	char *app;		/* the app a sender serves (config_app_select); "default" until then */
};

/* Loads defaults, then the file. On error returns -1 with a one-line reason in err. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);
void config_free(struct config *c);
/* What a start of `daemon` (its program name: "router", "apns-sender", ...) would refuse,
 * checked without starting: required keys and files, readable and well-formed secrets, listen
 * addresses, statsd on loopback only, the `user`. Run by every daemon at start-up and by -n.
 * -1 with a one-line reason naming the key in err. */
int config_check(const struct config *c, const char *daemon, char *err, size_t errlen);
/* What the last config_check() found worth a warning but not a refusal ("" = nothing): a file
 * re-read on HUP that the daemon's user could not read. */
const char *config_check_warning(void);
/* 1 when `hash` is a stats_password_hash the ingress accepts ("" = route off). */
int config_password_hash_ok(const char *hash);
/* Joins state_dir and a socket name. */
/* The user a daemon of this role class ("ingress", "sender", "router", "statsd", "tool") runs
 * as: users.<role> when set, else `user` (may be "", meaning: whoever started it). */
const char *config_user_for(const struct config *c, const char *role);
const char *config_socket(const struct config *c, const char *name, char *buf, size_t len);
/* 1 when the configuration has a cluster section with servers (cluster mode). */
int config_cluster(const struct config *c);
/* A sender ("apns-sender", ...) picks its app (-a APP, NULL = none given): the app's keys are
 * applied over the platform's section and c->app names it. Without -a the platform's one app is
 * taken; "default" is the section alone (a platform without apps, or a single-section
 * configuration). -1 with a one-line reason: no such app, or -a missing where it is needed. */
int config_app_select(struct config *c, const char *daemon, const char *app, char *err, size_t errlen);
/* A platform's ("apns", ...) default app: its first entry in `apps`, else "default". Registrations
 * that name no app (and those stored before registrations carried their app) belong to it. */
const char *config_app_of(const struct config *c, const char *platform);
/* 1 when app (len bytes) is an app of the platform: one of its `apps` entries, or "default" when
 * it has none. */
int config_app_has(const struct config *c, const char *platform, const char *app, size_t len);
/* The ingress_onion.services entry a request URL belongs to (its first route prefix the URL
 * starts with), or -1: the section's own key and the default apps. */
int config_onion_service(const struct config *c, const char *url);
#endif
