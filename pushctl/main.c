/*
 * pushctl: the operator's tool.
 *   pushctl keygen [-d DIR]            X25519 key pair: DIR/server.key (0600), DIR/server.pub
 *   pushctl hash-password              a password on stdin → its Argon2id string (hash_password.c)
 *   pushctl send [options] ACTION [name=value ...]
 *                                      builds a real onion request, posts it, prints the reply
 *   pushctl -c CONFIG counts | lookup ID_OR_TOKEN | export
 *                                      reads the registry (LMDB read-only, safe while running)
 *   pushctl -c CONFIG stats [--start DATE] [--end DATE]
 *                                      statsd's statistics windows as a table
 *   pushctl -c CONFIG import-legacy FILE
 *                                      a legacy server's SQLite database → router and statsd
 * -c CONFIG, --help and --version may stand anywhere on the line; `send` with -c takes the
 * server's public key, URL and route from that configuration.
 * Holds nothing beyond one run; never prints a secret key.
 */
#include "config.h"
#include "daemon.h"
#include "onion_client.h"
#include "pushctl.h"
#include "onion_crypto.h"
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(FILE *f)
{
	fprintf(f,
		"usage: pushctl keygen [-d DIR]\n"
		"       pushctl hash-password < FILE   (stats_password_hash from a password on stdin)\n"
		"       pushctl [-c CONFIG] send [-u URL] [-k SERVER_PUBKEY|-K FILE] [-4] [-x] [-s SALT] [-r ROUTE]\n"
		"                    ACTION [name=value ...]\n"
		"  The key, URL and route come from -c CONFIG (ingress_onion), else -k/-K/-u, else\n"
		"  var/keys/server.pub and http://127.0.0.1:5000.\n"
		"  ACTION is register, register_legacy_groups_only, unregister, subscribe_closed_group,\n"
		"  unsubscribe_closed_group or notify; values are strings, except legacyGroupPublicKeys\n"
		"  (comma-separated list). -4 sends onion v4 (default v2); -x uses XChaCha20-Poly1305.\n"
		"       pushctl -c CONFIG counts | lookup ID_OR_TOKEN | export   (registry, read-only)\n"
		"       pushctl -c CONFIG import-legacy FILE   (legacy SQLite database → router and statsd)\n"
		"       pushctl -c CONFIG import-uwpx [--channels TABLE] [--accounts TABLE] FILE\n"
		"                                              (UWPX push server's SQLite database → router)\n"
		"       pushctl -c CONFIG stats [--start DATE] [--end DATE]      (statsd's windows)\n"
		"       pushctl -c CONFIG cluster-import | cluster-export DIR   (registry into a cluster, and back)\n"
		"       pushctl --help | --version\n"
		"  Options and -c CONFIG may also follow the command.\n");
}

static void usage(void)
{
	help(stderr);
	exit(2);
}

/* Names what is missing, then the usage, exit 2. */
static void missing(const char *what)
{
	fprintf(stderr, "pushctl: %s is missing\n", what);
	usage();
}

static int keygen(int argc, char **argv)
{
	const char *dir = ".";
	char sp[4096], pp[4096];
	unsigned char sk[32], pk[32];
	int ch;

	while ((ch = getopt(argc, argv, "d:")) != -1) {
		if (ch != 'd')
			usage();
		dir = optarg;
	}
	snprintf(sp, sizeof sp, "%s/server.key", dir);
	snprintf(pp, sizeof pp, "%s/server.pub", dir);
	if (access(sp, F_OK) == 0) {
		fprintf(stderr, "pushctl: %s exists; not overwriting a server key\n", sp);
		return 1;
	}
	if (onion_key_write_pair(sp, pp, sk, pk) < 0) {
		perror("pushctl: writing the key pair");
		return 1;
	}
	sodium_memzero(sk, sizeof sk);
	char hex[65];
	sodium_bin2hex(hex, sizeof hex, pk, 32);
	printf("%s\n", hex);
	return 0;
}

struct buf {
	unsigned char *p;
	size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *arg)
{
	struct buf *b = arg;
	size_t n = sz * nm;
	unsigned char *np = realloc(b->p, b->n + n + 1);
	if (np == NULL)
		return 0;
	b->p = np;
	memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

static int load_pubkey(const char *hex_or_file, int is_file, unsigned char pk[32])
{
	char hex[129] = {0};
	if (is_file) {
		FILE *f = fopen(hex_or_file, "r");
		if (f == NULL) {
			fprintf(stderr, "pushctl: server public key %s: %s (give -K FILE, -k HEX or -c CONFIG)\n",
				hex_or_file, strerror(errno));
			return -1;
		}
		if (fgets(hex, sizeof hex, f) == NULL) {
			fclose(f);
			fprintf(stderr, "pushctl: server public key %s: empty\n", hex_or_file);
			return -1;
		}
		fclose(f);
		hex[strcspn(hex, " \r\n\t")] = '\0';
	} else {
		snprintf(hex, sizeof hex, "%s", hex_or_file);
	}
	if (strlen(hex) == 64 && sodium_hex2bin(pk, 32, hex, 64, NULL, NULL, NULL) == 0)
		return 0;
	fprintf(stderr, "pushctl: %s: not a 64-hex-digit public key\n", hex_or_file);
	return -1;
}

/* -c CONFIG for send: the public key of ingress_onion.key_file, a URL from its listen address
 * (a wildcard address becomes loopback) and the flavour's first route and salt. */
static int from_config(const char *path, int v4, unsigned char pk[32], char *url, size_t urllen, char **route,
		       char **salt)
{
	struct config c;
	char err[512];
	unsigned char sk[32];
	const char *listen, *colon;

	if (config_load(&c, path, err, sizeof err) < 0) {
		fprintf(stderr, "pushctl: %s\n", err);
		config_free(&c);
		return -1;
	}
	if (c.onion.key_file[0] == '\0') {
		fprintf(stderr, "pushctl: %s: ingress_onion.key_file is not set; give -K FILE or -k HEX\n", path);
		config_free(&c);
		return -1;
	}
	if (onion_key_load(c.onion.key_file, sk, pk, err, sizeof err) < 0) {
		fprintf(stderr, "pushctl: ingress_onion.key_file: %s\n", err);
		config_free(&c);
		return -1;
	}
	sodium_memzero(sk, sizeof sk);
	listen = c.onion.listen;
	colon = strrchr(listen, ':');
	if (strncmp(listen, "0.0.0.0:", 8) == 0 || strncmp(listen, "[::]:", 5) == 0 || strncmp(listen, "*:", 2) == 0)
		snprintf(url, urllen, "http://127.0.0.1%s", colon);
	else
		snprintf(url, urllen, "http://%s", listen);
	if (*route == NULL) {
		const struct conf_list *r = v4 ? &c.onion.v4_routes : &c.onion.v2_routes;
		*route = r->n ? strdup(r->v[0]) : NULL;
	}
	if (*salt == NULL) {
		const struct conf_list *sl = v4 ? &c.onion.v4_salts : &c.onion.v2_salts;
		*salt = sl->n ? strdup(sl->v[0]) : NULL;
	}
	config_free(&c);
	return 0;
}

/* An onion v4 reply is a bencoded list: the response's JSON head ({"code": STATUS, ...}) and
 * its body. Printed like a v2 reply: {"status": STATUS, "body": BODY}. NULL when malformed. */
static char *decode_v4(const unsigned char *p, size_t n)
{
	const unsigned char *part[2] = {NULL, NULL};
	size_t plen[2] = {0, 0}, i = 1, k = 0;
	json_t *head, *out, *body;
	char *s;

	if (n < 2 || p[0] != 'l')
		return NULL;
	while (i < n && p[i] != 'e' && k < 2) {
		size_t len = 0;
		while (i < n && p[i] >= '0' && p[i] <= '9' && len < (1u << 24))
			len = len * 10 + (size_t)(p[i++] - '0');
		if (i >= n || p[i] != ':' || len > n - i - 1)
			return NULL;
		part[k] = p + i + 1;
		plen[k++] = len;
		i += 1 + len;
	}
	if (k == 0 || (head = json_loadb((const char *)part[0], plen[0], 0, NULL)) == NULL)
		return NULL;
	body = k > 1 ? json_loadb((const char *)part[1], plen[1], JSON_DECODE_ANY, NULL) : json_null();
	if (body == NULL)
		body = json_stringn((const char *)part[1], plen[1]);
	out = json_object();
	json_object_set(out, "status", json_object_get(head, "code") ? json_object_get(head, "code") : json_null());
	json_object_set_new(out, "body", body ? body : json_null());
	s = json_dumps(out, JSON_PRESERVE_ORDER);
	json_decref(out);
	json_decref(head);
	return s;
}

/* The arguments object: name=value strings; legacyGroupPublicKeys as an array. */
static json_t *build_args(int argc, char **argv)
{
	json_t *o = json_object();
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (eq == NULL) {
			fprintf(stderr, "pushctl: argument %s is not name=value\n", argv[i]);
			exit(2);
		}
		*eq = '\0';
		if (strcmp(argv[i], "legacyGroupPublicKeys") == 0) {
			json_t *a = json_array();
			for (char *t = strtok(eq + 1, ","); t; t = strtok(NULL, ","))
				json_array_append_new(a, json_string(t));
			json_object_set_new(o, argv[i], a);
		} else {
			json_object_set_new(o, argv[i], json_string(eq + 1));
		}
	}
	return o;
}

static int send_cmd(int argc, char **argv, const char *config)
{
	const char *url = "http://127.0.0.1:5000", *key = NULL;
	char *salt = NULL, *route = NULL, cfg_url[300];
	int key_is_file = 0, v4 = 0, ch, rc = 1;
	enum onion_cipher cipher = ONION_AES_GCM;
	unsigned char pk[32], *body, *reply;
	char *pt, full[2048];
	size_t blen, rlen;
	struct onion_key okey;
	json_t *args;
	struct buf resp = {NULL, 0};
	CURL *curl;
	long status = 0;

	while ((ch = getopt(argc, argv, "u:k:K:4xs:r:")) != -1) {
		switch (ch) {
		case 'u': url = optarg; break;
		case 'k': key = optarg; key_is_file = 0; break;
		case 'K': key = optarg; key_is_file = 1; break;
		case '4': v4 = 1; break;
		case 'x': cipher = ONION_XCHACHA20; break;
		case 's': free(salt); salt = strdup(optarg); break;
		case 'r': free(route); route = strdup(optarg); break;
		default: usage();
		}
	}
	if (optind >= argc)
		missing("the ACTION (register, register_legacy_groups_only, unregister, subscribe_closed_group, "
			"unsubscribe_closed_group or notify)");
	if (config != NULL && key == NULL) {
		if (from_config(config, v4, pk, cfg_url, sizeof cfg_url, &route, &salt) < 0)
			return 2;
		if (strcmp(url, "http://127.0.0.1:5000") == 0)
			url = cfg_url;
	} else {
		if (key == NULL) {
			key = "var/keys/server.pub";
			key_is_file = 1;
		}
		if (load_pubkey(key, key_is_file, pk) < 0)
			return 2;
	}
	if (route == NULL)
		route = strdup(v4 ? "/beldex/v4/lsrpc" : "/beldex/v2/lsrpc");
	if (salt == NULL)
		salt = strdup("BELDEX");
	args = build_args(argc - optind - 1, argv + optind + 1);
	if (v4) {
		char meta[256], *bj = json_dumps(args, JSON_COMPACT);
		int ml = snprintf(meta, sizeof meta, "{\"endpoint\":\"/%s\",\"method\":\"POST\",\"headers\":{}}", argv[optind]);
		size_t bl = strlen(bj);
		pt = malloc((size_t)ml + bl + 64);
		sprintf(pt, "l%d:%s%zu:%se", ml, meta, bl, bj);
		free(bj);
	} else {
		json_t *req = json_object();
		char *bj = json_dumps(args, JSON_COMPACT);
		json_object_set_new(req, "endpoint", json_string(argv[optind]));
		json_object_set_new(req, "body", json_string(bj));
		json_object_set_new(req, "method", json_string("POST"));
		json_object_set_new(req, "headers", json_pack("{s:s}", "Content-Type", "application/json"));
		pt = json_dumps(req, JSON_COMPACT);
		free(bj);
		json_decref(req);
	}
	json_decref(args);
	body = onion_client_build(pk, cipher, salt, route, (unsigned char *)pt, strlen(pt), &okey, &blen);
	free(pt);
	if (body == NULL) {
		fprintf(stderr, "pushctl: could not build the request\n");
		return 1;
	}
	snprintf(full, sizeof full, "%s%s", url, route);
	free(route);
	free(salt);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	curl = curl_easy_init();
	curl_easy_setopt(curl, CURLOPT_URL, full);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)blen);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	char cerr[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
	CURLcode cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		fprintf(stderr, "pushctl: POST %s failed: %s\n", full, cerr[0] ? cerr : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		printf("HTTP %ld: %.*s\n", status, (int)resp.n, resp.p ? (char *)resp.p : "");
		fprintf(stderr, "pushctl: the server answered HTTP %ld%s\n", status,
			status == 400 ? " (the request did not decrypt: wrong server key, salt or route?)" :
			status == 404 ? " (no such route: check -r or the flavour)" :
			status == 503 ? " (Server busy: the ingress has no router connection or is overloaded)" : "");
		goto out;
	}
	reply = onion_client_open_reply(&okey, v4, resp.p, resp.n, &rlen);
	if (reply == NULL) {
		fprintf(stderr, "pushctl: the reply did not decrypt\n");
		goto out;
	}
	if (v4) {
		char *d = decode_v4(reply, rlen);
		if (d == NULL) {
			fprintf(stderr, "pushctl: the v4 reply is not a bencoded list\n");
			printf("%.*s\n", (int)rlen, reply);
		} else {
			free(reply);
			reply = (unsigned char *)d;
			rlen = strlen(d);
			printf("%s\n", d);
		}
	} else {
		printf("%.*s\n", (int)rlen, reply);
	}
	/* Success means "code": 1 inside the reply (the apps accept any code != 0; the server
	 * answers 1 on success and 0 otherwise, docs/protocol.md §6.5). */
	rc = (strstr((char *)reply, "\"code\": 1") != NULL) ? 0 : 1;
	if (rc != 0)
		fprintf(stderr, "pushctl: the server refused the request (see the reply above)\n");
	free(reply);
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	free(resp.p);
	free(body);
	return rc;
}

/* Commands that read the configuration. */
static int needs_config(const char *cmd)
{
	return strcmp(cmd, "counts") == 0 || strcmp(cmd, "lookup") == 0 || strcmp(cmd, "export") == 0 ||
	       strcmp(cmd, "stats") == 0 || strcmp(cmd, "import-legacy") == 0 || strcmp(cmd, "import-uwpx") == 0 ||
	       strcmp(cmd, "cluster-import") == 0 || strcmp(cmd, "cluster-export") == 0;
}

int main(int argc, char **argv)
{
	/* Static, so that it stays reachable whichever way the program leaves (exit or return). */
	static char **rest;
	const char *config = NULL;
	int n = 0, rc;

	rest = calloc((size_t)argc + 1, sizeof *rest);

	if (rest == NULL)
		return 1;
	rest[n++] = argv[0];
	/* -c CONFIG, --help and --version are taken wherever they stand (before "--"). */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				rest[n++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "-c") == 0) {
			if (i + 1 >= argc)
				missing("the CONFIG file after -c");
			config = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			help(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("pushctl (pushpipe) %s\n", daemon_version());
			return 0;
		} else {
			rest[n++] = argv[i];
		}
	}
	rest[n] = NULL;
	if (n < 2)
		missing("the command (keygen, hash-password, send, counts, lookup, export, stats, import-legacy or import-uwpx)");
	if (sodium_init() < 0)
		return 1;
	if (needs_config(rest[1]) && config == NULL) {
		fprintf(stderr, "pushctl %s: -c CONFIG is missing\n", rest[1]);
		usage();
	}
	if (strcmp(rest[1], "lookup") == 0 && n < 3)
		missing("the ID_OR_TOKEN to look up");
	if (strcmp(rest[1], "import-legacy") == 0 && n < 3)
		missing("the legacy database FILE");
	if (strcmp(rest[1], "import-uwpx") == 0 && n < 3)
		missing("the UWPX push server's database FILE");
	optind = 2;
	if (strcmp(rest[1], "import-legacy") == 0)
		rc = cmd_import_legacy(config, n - 2, rest + 2);
	else if (strcmp(rest[1], "import-uwpx") == 0)
		rc = cmd_import_uwpx(config, n - 2, rest + 2);
	else if (strcmp(rest[1], "stats") == 0)
		rc = pushctl_stats(config, n - 1, rest + 1);
	else if (strcmp(rest[1], "cluster-import") == 0 || strcmp(rest[1], "cluster-export") == 0)
		rc = pushctl_cluster(config, n - 1, rest + 1);
	else if (strcmp(rest[1], "counts") == 0 || strcmp(rest[1], "lookup") == 0 || strcmp(rest[1], "export") == 0)
		rc = pushctl_registry(config, n - 1, rest + 1);
	else if (strcmp(rest[1], "keygen") == 0)
		rc = keygen(n, rest);
	else if (strcmp(rest[1], "hash-password") == 0)
		rc = pushctl_hash_password(n, rest);
	else if (strcmp(rest[1], "send") == 0)
		rc = send_cmd(n, rest, config);
	else {
		fprintf(stderr, "pushctl: unknown command %s\n", rest[1]);
		usage();
	}
	return rc;
}
