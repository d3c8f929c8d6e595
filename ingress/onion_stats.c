/*
 * onion_stats: POST /get_statistics_data (bchat-onion.md §10.3). Checks HTTP Basic auth
 * (password only, constant time against a configured SHA-256 hash).
 * The statistics rows themselves come from statsd (not yet wired: answers 503).
 */
#include "log.h"
#include "onion_http.h"
#include <microhttpd.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static int plain(struct MHD_Connection *mc, unsigned code, const char *text, int auth)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	int ret;
	MHD_add_response_header(r, "Content-Type", "text/plain");
	if (auth)
		MHD_add_response_header(r, "WWW-Authenticate", "Basic realm=\"Authentication Required\"");
	ret = MHD_queue_response(mc, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* 1 when the Basic password's SHA-256 equals the configured "sha256:<hex>" hash. */
static int password_ok(const char *hash, struct MHD_Connection *mc)
{
	const char *auth = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	unsigned char want[32], got[32], dec[512];
	size_t declen;
	const char *colon;

	if (hash == NULL || strncmp(hash, "sha256:", 7) != 0 ||
	    sodium_hex2bin(want, sizeof want, hash + 7, strlen(hash + 7), NULL, NULL, NULL) != 0)
		return 0;
	if (auth == NULL || strncasecmp(auth, "Basic ", 6) != 0)
		return 0;
	if (sodium_base642bin(dec, sizeof dec - 1, auth + 6, strlen(auth + 6), " ", &declen, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return 0;
	dec[declen] = '\0';
	/* The username is ignored, as by the legacy server; it may be empty. */
	if ((colon = memchr(dec, ':', declen)) == NULL)
		return 0;
	SHA256((const unsigned char *)colon + 1, declen - (size_t)(colon + 1 - (const char *)dec), got);
	return sodium_memcmp(want, got, 32) == 0;
}

int onion_stats_request(struct onion_server *s, struct MHD_Connection *mc, const unsigned char *body, size_t len)
{
	(void)body;
	(void)len;
	if (!password_ok(s->cfg->onion.stats_password_hash, mc))
		return plain(mc, MHD_HTTP_UNAUTHORIZED, "Unauthorized Access", 1);
	return plain(mc, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable\n", 0);
}
