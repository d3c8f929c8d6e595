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
 * Holds nothing beyond one run; never prints a secret key.
 */
#include "onion_client.h"
#include "pushctl.h"
#include "onion_crypto.h"
#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr,
		"usage: pushctl keygen [-d DIR]\n"
		"       pushctl hash-password < FILE   (stats_password_hash from a password on stdin)\n"
		"       pushctl send [-u URL] [-k SERVER_PUBKEY|-K FILE] [-4] [-x] [-s SALT] [-r ROUTE]\n"
		"                    ACTION [name=value ...]\n"
		"  ACTION is register, register_legacy_groups_only, unregister, subscribe_closed_group,\n"
		"  unsubscribe_closed_group or notify; values are strings, except legacyGroupPublicKeys\n"
		"  (comma-separated list). -4 sends onion v4 (default v2); -x uses XChaCha20-Poly1305.\n"
		"       pushctl -c CONFIG counts | lookup ID_OR_TOKEN | export   (registry, read-only)\n"
		"       pushctl -c CONFIG import-legacy FILE   (legacy SQLite database → router and statsd)\n"
		"       pushctl -c CONFIG stats [--start DATE] [--end DATE]      (statsd's windows)\n"
		"       pushctl -c CONFIG cluster-import | cluster-export DIR   (registry into a cluster, and back)\n");
	exit(2);
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
		if (f == NULL || fgets(hex, sizeof hex, f) == NULL) {
			if (f)
				fclose(f);
			return -1;
		}
		fclose(f);
		hex[strcspn(hex, " \r\n\t")] = '\0';
	} else {
		snprintf(hex, sizeof hex, "%s", hex_or_file);
	}
	return strlen(hex) == 64 && sodium_hex2bin(pk, 32, hex, 64, NULL, NULL, NULL) == 0 ? 0 : -1;
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

static int send_cmd(int argc, char **argv)
{
	const char *url = "http://127.0.0.1:5000", *key = NULL, *salt = "BELDEX", *route = NULL;
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
		case 's': salt = optarg; break;
		case 'r': route = optarg; break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	if (key == NULL) {
		key = "var/keys/server.pub";
		key_is_file = 1;
	}
	if (load_pubkey(key, key_is_file, pk) < 0) {
		fprintf(stderr, "pushctl: %s: not a 64-hex-digit public key\n", key);
		return 2;
	}
	if (route == NULL)
		route = v4 ? "/beldex/v4/lsrpc" : "/beldex/v2/lsrpc";
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
	if (curl_easy_perform(curl) != CURLE_OK) {
		fprintf(stderr, "pushctl: POST %s failed\n", full);
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		printf("HTTP %ld: %.*s\n", status, (int)resp.n, resp.p ? (char *)resp.p : "");
		goto out;
	}
	reply = onion_client_open_reply(&okey, v4, resp.p, resp.n, &rlen);
	if (reply == NULL) {
		fprintf(stderr, "pushctl: the reply did not decrypt\n");
		goto out;
	}
	printf("%.*s\n", (int)rlen, reply);
	/* Success means code != 0 inside the reply (what the apps test). */
	rc = (strstr((char *)reply, "\"code\": 1") != NULL) ? 0 : 1;
	free(reply);
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	free(resp.p);
	free(body);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (sodium_init() < 0)
		return 1;
	if (strcmp(argv[1], "-c") == 0 && argc >= 4 && strcmp(argv[3], "import-legacy") == 0)
		return cmd_import_legacy(argv[2], argc - 4, argv + 4);
	if (strcmp(argv[1], "-c") == 0 && argc >= 4 && strncmp(argv[3], "cluster-", 8) == 0)
		return pushctl_cluster(argv[2], argc - 3, argv + 3);
	if (strcmp(argv[1], "-c") == 0 && argc >= 4 && strcmp(argv[3], "stats") == 0)
		return pushctl_stats(argv[2], argc - 3, argv + 3);
	if (strcmp(argv[1], "-c") == 0 && argc >= 4)
		return pushctl_registry(argv[2], argc - 3, argv + 3);
	optind = 2;
	if (strcmp(argv[1], "keygen") == 0)
		return keygen(argc, argv);
	if (strcmp(argv[1], "hash-password") == 0)
		return pushctl_hash_password(argc, argv);
	if (strcmp(argv[1], "send") == 0)
		return send_cmd(argc, argv);
	usage();
	return 2;
}
