/* Configuration loader: defaults, flavour presets, and one clear error per mistake. */
#include "config.h"
#include "daemon.h"
#include "testlib.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[] = "/tmp/pushpipe-test-config-XXXXXX";

static int load(const char *json, struct config *c, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");
	fputs(json, f);
	fclose(f);
	return config_load(c, path, err, errlen);
}

int main(void)
{
	struct config c;
	char err[512];
	int fd = mkstemp(path);
	close(fd);

	CHECK(load("{}", &c, err, sizeof err) == 0, "empty object loads: %s", err);
	CHECK(strcmp(c.onion.id_prefix, "bd") == 0 && strcmp(c.onion.product_name, "Bchat") == 0, "bchat defaults");
	CHECK(c.onion.v2_routes.n == 2 && strcmp(c.onion.v2_routes.v[1], "/beldex/v3/lsrpc") == 0, "v2 and v3 routes");
	CHECK(c.onion.v4_salts.n == 2 && strcmp(c.onion.v4_salts.v[0], "BELDEX") == 0 && strcmp(c.onion.v4_salts.v[1], "LOKI") == 0, "v4 salts BELDEX, LOKI");
	CHECK(c.onion.max_body == 65536 && c.onion.max_data_len == 10240 && c.router.job_max_age_s == 86400, "numeric defaults");
	CHECK(c.router.skip_legacy_groups_only == 0 && strcmp(c.apns.topic, "com.beldex.bchat") == 0, "bchat router/apns defaults");
	CHECK(strcmp(c.state_dir, "/run/pushpipe") == 0 && strcmp(c.router.db_path, "/var/lib/pushpipe/registry") == 0 &&
		      strcmp(c.statsd.db_path, "/var/lib/pushpipe/stats") == 0,
	      "FHS default paths: %s %s %s", c.state_dir, c.router.db_path, c.statsd.db_path);
	config_free(&c);

	CHECK(load("{\"_comment\": \"top\", \"_\": [1, {\"x\": 2}], \"router\": {\"_why\": \"kept small\", \"outbox_max\": 7},"
		   " \"_statsd\": {\"bogus\": 1}}", &c, err, sizeof err) == 0 && c.router.outbox_max == 7,
	      "keys starting with '_' are comments at the top and in sections: %s", err);
	config_free(&c);
	CHECK(load("{\"router\": {\"comment\": \"x\"}}", &c, err, sizeof err) < 0 && strstr(err, "router.comment: unknown key"),
	      "a comment key needs its '_': %s", err);
	config_free(&c);
	CHECK(load("{\"router\": {\"_c\": 1, \"outbox_max\": \"7\"}}", &c, err, sizeof err) < 0 && strstr(err, "outbox_max: wrong type"),
	      "a comment does not hide a bad value beside it: %s", err);
	config_free(&c);

	/* apps (docs/config.md, "Apps"): an app's keys override its platform's section for its sender */
	CHECK(load("{\"apns_sender\": {\"team_id\": \"TEAM1\", \"connections\": 3},"
		   " \"apps\": [{\"name\": \"bchat\", \"platform\": \"apns\", \"topic\": \"com.example.one\", \"_c\": 1},"
		   " {\"name\": \"android1\", \"platform\": \"fcm\", \"project_id\": \"p1\"}]}", &c, err, sizeof err) == 0 &&
		      c.napps == 2 && strcmp(c.app, "default") == 0,
	      "apps load: %s", err);
	CHECK(strcmp(config_app_of(&c, "apns"), "bchat") == 0 && strcmp(config_app_of(&c, "fcm"), "android1") == 0 &&
		      strcmp(config_app_of(&c, "wns"), "default") == 0,
	      "the app of each platform");
	CHECK(strcmp(c.apns.topic, "com.beldex.bchat") == 0, "the section untouched before a sender selects its app");
	CHECK(config_app_select(&c, "apns-sender", NULL, err, sizeof err) == 0 && strcmp(c.app, "bchat") == 0 &&
		      strcmp(c.apns.topic, "com.example.one") == 0 && strcmp(c.apns.team_id, "TEAM1") == 0 &&
		      c.apns.common.connections == 3,
	      "apns-sender without -a takes its platform's one app over the section: %s", err);
	config_free(&c);
	CHECK(load("{\"apps\": [{\"name\": \"bchat\", \"platform\": \"apns\"}]}", &c, err, sizeof err) == 0 &&
		      config_app_select(&c, "apns-sender", "other", err, sizeof err) < 0 && strstr(err, "-a other: no apns app"),
	      "-a names an app that is not there: %s", err);
	config_free(&c);
	CHECK(load("{}", &c, err, sizeof err) == 0 && config_app_select(&c, "fcm-sender", NULL, err, sizeof err) == 0 &&
		      strcmp(c.app, "default") == 0 && config_app_select(&c, "fcm-sender", "default", err, sizeof err) == 0 &&
		      config_app_select(&c, "fcm-sender", "x", err, sizeof err) < 0,
	      "a single-section configuration is app \"default\": %s", err);
	config_free(&c);
	CHECK(load("{\"apps\": [{\"name\": \"a\", \"platform\": \"apns\", \"project_id\": \"p\"}]}", &c, err, sizeof err) < 0 &&
		      strstr(err, "apps[0] (\"a\").project_id: unknown key"),
	      "an app takes only its platform's keys: %s", err);
	config_free(&c);
	CHECK(load("{\"apps\": [{\"name\": \"a\", \"platform\": \"apns\", \"connections\": 0}]}", &c, err, sizeof err) < 0 &&
		      strstr(err, "apps[0] (\"a\"):") && strstr(err, "outside"),
	      "an app's value is checked like the section's: %s", err);
	config_free(&c);
	CHECK(load("{\"apps\": [{\"name\": \"Bad-Name\", \"platform\": \"apns\"}]}", &c, err, sizeof err) < 0 &&
		      strstr(err, "apps[0].name"),
	      "app names are lowercase letters or digits: %s", err);
	config_free(&c);
	CHECK(load("{\"apps\": [{\"name\": \"a\", \"platform\": \"gcm\"}]}", &c, err, sizeof err) < 0 && strstr(err, "apps[0].platform"),
	      "an unknown platform: %s", err);
	config_free(&c);
	CHECK(load("{\"apps\": [{\"name\": \"a\", \"platform\": \"apns\", \"topic\": \"t.a\"}, {\"name\": \"b\", \"platform\": "
		   "\"apns\", \"topic\": \"t.b\", \"url\": \"https://api.sandbox.push.apple.com\"}]}",
		   &c, err, sizeof err) == 0 &&
		      strcmp(config_app_of(&c, "apns"), "a") == 0 && config_app_has(&c, "apns", "b", 1) &&
		      !config_app_has(&c, "apns", "default", 7) && !config_app_has(&c, "fcm", "a", 1) &&
		      config_app_has(&c, "fcm", "default", 7),
	      "two apps of one platform: the first is its default app: %s", err);
	CHECK(config_app_select(&c, "apns-sender", NULL, err, sizeof err) < 0 && strstr(err, "-a APP is required"),
	      "several apps of a platform: -a is required: %s", err);
	CHECK(config_app_select(&c, "apns-sender", "b", err, sizeof err) == 0 && strcmp(c.app, "b") == 0 &&
		      strcmp(c.apns.topic, "t.b") == 0 && strcmp(c.apns.url, "https://api.sandbox.push.apple.com") == 0,
	      "-a b takes b's keys (the sandbox beside the production app): %s", err);
	config_free(&c);
	CHECK(load("{\"apps\": [{\"name\": \"a\", \"platform\": \"apns\"}, {\"name\": \"a\", \"platform\": \"apns\"}]}", &c, err,
		   sizeof err) < 0 && strstr(err, "a second apns app of that name"),
	      "an app name twice for one platform is refused: %s", err);
	config_free(&c);
	CHECK(load("{\"apps\": [{\"name\": \"a\", \"platform\": \"apns\"}, {\"name\": \"a\", \"platform\": \"fcm\"}]}", &c, err,
		   sizeof err) == 0,
	      "one name on two platforms is two apps: %s", err);
	config_free(&c);
	CHECK(load("{\"apps\": {\"name\": \"a\"}}", &c, err, sizeof err) < 0 && strstr(err, "apps: wrong type"), "apps is an array: %s", err);
	config_free(&c);

	CHECK(load("{\"ingress_onion\":{\"flavour\":\"session\"}}", &c, err, sizeof err) == 0, "session flavour");
	CHECK(strcmp(c.onion.id_prefix, "05") == 0 && c.router.skip_legacy_groups_only == 1 && c.onion.v2_salts.n == 1 &&
		      strcmp(c.onion.v2_salts.v[0], "LOKI") == 0 && strcmp(c.onion.v4_routes.v[0], "/oxen/v4/lsrpc") == 0,
	      "session presets");
	config_free(&c);

	CHECK(load("{\"ingress_onion\":{\"flavour\":\"session\",\"id_prefix\":\"bd\",\"v2_salts\":[\"BELDEX\",\"LOKI\"]}}", &c, err, sizeof err) == 0 &&
		      strcmp(c.onion.id_prefix, "bd") == 0 && c.onion.v2_salts.n == 2,
	      "explicit values beat presets");
	config_free(&c);

	CHECK(load("{\"router\":{\"outbox_maxx\":5}}", &c, err, sizeof err) < 0 && strstr(err, "router.outbox_maxx: unknown key") && strstr(err, path), "unknown key named with file: %s", err);
	config_free(&c);
	CHECK(load("{\"routr\":{}}", &c, err, sizeof err) < 0 && strstr(err, "routr: unknown key"), "unknown section: %s", err);
	config_free(&c);
	CHECK(load("{\"router\":{\"outbox_max\":\"5\"}}", &c, err, sizeof err) < 0 && strstr(err, "router.outbox_max: wrong type"), "string for integer: %s", err);
	config_free(&c);
	CHECK(load("{\"router\":{\"outbox_max\":0}}", &c, err, sizeof err) < 0 && strstr(err, "outside"), "out of range: %s", err);
	config_free(&c);
	CHECK(load("{\"ingress_onion\":{\"validate_ids\":1}}", &c, err, sizeof err) < 0 && strstr(err, "validate_ids: wrong type"), "integer for boolean: %s", err);
	config_free(&c);
	CHECK(load("{\"ingress_onion\":{\"v2_routes\":\"/x\"}}", &c, err, sizeof err) < 0 && strstr(err, "v2_routes: wrong type"), "string for list: %s", err);
	config_free(&c);
	CHECK(load("{\"state_dir\": 5}", &c, err, sizeof err) < 0 && strstr(err, "state_dir: wrong type"), "top-level type: %s", err);
	config_free(&c);
	CHECK(load("{\"ingress_onion\":{\"flavour\":\"loki\"}}", &c, err, sizeof err) < 0 && strstr(err, "flavour"), "unknown flavour: %s", err);
	config_free(&c);
	CHECK(load("{\"log_level\":\"loud\"}", &c, err, sizeof err) < 0 && strstr(err, "log_level"), "unknown log level: %s", err);
	config_free(&c);
	CHECK(load("{\"router\":{}, \"router\":{}}", &c, err, sizeof err) < 0, "duplicate keys rejected: %s", err);
	config_free(&c);
	CHECK(load("{\"router\": ", &c, err, sizeof err) < 0 && strstr(err, path), "syntax error names the file: %s", err);
	config_free(&c);
	CHECK(load("[]", &c, err, sizeof err) < 0 && strstr(err, "object"), "not an object: %s", err);
	config_free(&c);
	CHECK(config_load(&c, "/nonexistent/pushpipe.json", err, sizeof err) < 0 && strstr(err, "/nonexistent/pushpipe.json"), "missing file: %s", err);
	config_free(&c);
	/* Per-role users: users.<role> when set, else user. */
	CHECK(load("{\"user\":\"pp\",\"users\":{\"sender\":\"pp-snd\",\"ingress\":\"\"}}", &c, err, sizeof err) == 0 &&
		      strcmp(config_user_for(&c, "sender"), "pp-snd") == 0 && strcmp(config_user_for(&c, "ingress"), "pp") == 0 &&
		      strcmp(config_user_for(&c, "router"), "pp") == 0 && strcmp(config_user_for(&c, "tool"), "pp") == 0,
	      "users.sender for senders, user for the rest: %s", err);
	config_free(&c);
	CHECK(load("{\"users\":{\"senders\":\"x\"}}", &c, err, sizeof err) < 0 && strstr(err, "users.senders: unknown key"),
	      "unknown role: %s", err);
	config_free(&c);
	CHECK(strcmp(daemon_role_class("apns-sender"), "sender") == 0 && strcmp(daemon_role_class("ingress-xmpp"), "ingress") == 0 &&
		      strcmp(daemon_role_class("router"), "router") == 0 && strcmp(daemon_role_class("statsd"), "statsd") == 0,
	      "each daemon's role class");

	/* config_check: what a start (and -n) of one daemon refuses. */
	{
		static const struct {
			const char *json, *daemon, *want; /* want NULL: accepted */
		} cases[] = {
			{"{}", "router", NULL},
			{"{}", "statsd", NULL},
			{"{\"statsd\":{\"listen\":\"[::1]:5080\"}}", "statsd", NULL},
			{"{\"statsd\":{\"listen\":\"0.0.0.0:5080\"}}", "statsd", "loopback"},
			{"{\"statsd\":{\"listen\":\"127.0.0.1:0\"}}", "statsd", "port"},
			{"{\"statsd\":{\"health_senders\":[\"apns-sender\",\"wns-sender:2\"]}}", "statsd", NULL},
			{"{\"statsd\":{\"health_senders\":[\"router\"]}}", "statsd", "health_senders"},
			{"{\"statsd\":{\"health_senders\":[\"fcm-sender:\"]}}", "statsd", "health_senders"},
			{"{\"user\":\"no-such-user-pushpipe\"}", "router", "no such user"},
			{"{\"user\":\"root\"}", "router", NULL},
			{"{\"state_dir\":\"\"}", "router", "state_dir: required"},
			{"{}", "ingress-onion", "ingress_onion.key_file: required"},
			{"{\"ingress_onion\":{\"listen\":\"127.0.0.1:99999\",\"key_file\":\"/x\"}}", "ingress-onion", "port"},
			{"{\"ingress_onion\":{\"listen\":\"localhost\"}}", "ingress-onion", "HOST:PORT"},
			{"{\"ingress_onion\":{\"key_file\":\"/nonexistent/k\"}}", "ingress-onion", "No such file"},
			{"{\"ingress_uwpx\":{\"listen\":\"127.0.0.1:1997\"}}", "ingress-uwpx", "cert_file: required"},
			{"{\"apns_sender\":{\"auth\":\"tokn\"}}", "apns-sender", "apns_sender.auth"},
			{"{\"apns_sender\":{\"key_id\":\"K\",\"team_id\":\"T\"}}", "apns-sender", "apns_sender.key_file: required"},
			{"{\"apns_sender\":{\"url\":\"http://x\"}}", "apns-sender", "https"},
			{"{\"wns_sender\":{\"auth_flow\":\"magic\"}}", "wns-sender", "auth_flow"},
			{"{}", "ingress-xmpp", "ingress_xmpp.domain: required"},
		};
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			int rc;
			err[0] = '\0';
			rc = load(cases[i].json, &c, err, sizeof err);
			if (rc == 0)
				rc = config_check(&c, cases[i].daemon, err, sizeof err);
			if (cases[i].want == NULL)
				CHECK(rc == 0, "%s accepts %s (%s)", cases[i].daemon, cases[i].json, err);
			else
				CHECK(rc < 0 && strstr(err, cases[i].want), "%s refuses %s: %s", cases[i].daemon, cases[i].json, err);
			config_free(&c);
		}
	}
	{
		char argon[crypto_pwhash_STRBYTES];
		CHECK(crypto_pwhash_str(argon, "pw", 2, crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0 &&
			      config_password_hash_ok("") &&
			      config_password_hash_ok("sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8") &&
			      config_password_hash_ok(argon) && !config_password_hash_ok("$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaA"),
		      "password hashes: empty, sha256:<64 hex>, a real $argon2id$ string; a malformed one refused");
	}
	CHECK(!config_password_hash_ok("5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8") &&
		  !config_password_hash_ok("sha256:5e88") &&
		  !config_password_hash_ok("sha256:ze884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8") &&
		  !config_password_hash_ok("plain-password"),
	      "malformed password hashes refused");
	unlink(path);
	return test_done();
}
