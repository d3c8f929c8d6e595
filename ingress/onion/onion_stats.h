/*
 * onion_stats: the access decision of POST /get_statistics_data, kept apart from the HTTP
 * server so any server (onion_http.c today) only passes the Authorization header and the
 * client's address in and sends the status, header line and body it is given.
 *
 * The password is checked against ingress_onion.stats_password_hash: an Argon2id string
 * ("$argon2id$...", libsodium crypto_pwhash_str; `pushctl hash-password` makes one) or the
 * older "sha256:<64 hex>" (still accepted, with a warning at start-up). At most one Argon2id
 * check runs at a time in the process (each holds the hash's memory, 64 MiB for pushctl's);
 * a request that finds it busy gets 503 with Retry-After. A password once found right is
 * remembered as a keyed hash in memory, so a client polling with it costs one check in all.
 * Per source (an IPv4 address, an IPv6 /64): a request without credentials is not a failure
 * (401 with WWW-Authenticate); a wrong password is (401 with WWW-Authenticate) until
 * STATS_AUTH_MAX_FAILURES in the last STATS_AUTH_WINDOW_MS, after which every request with
 * credentials gets 429 with Retry-After, without a check, until the oldest of them is older
 * than the window. Sources are kept in a fixed table (STATS_AUTH_SOURCES); when it is full
 * the source whose last failure is oldest is forgotten.
 */
#ifndef ONION_STATS_H
#define ONION_STATS_H
#include "config.h"
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STATS_AUTH_MAX_FAILURES 5
#define STATS_AUTH_WINDOW_MS 60000
#define STATS_AUTH_SOURCES 1024

enum stats_auth {
	STATS_AUTH_OK,	    /* go on with the request */
	STATS_AUTH_NONE,    /* 401: no (Basic) credentials; not a failure */
	STATS_AUTH_WRONG,   /* 401: wrong password, counted */
	STATS_AUTH_LIMITED, /* 429: too many failures from this source */
	STATS_AUTH_BUSY,    /* 503: another check is running */
	STATS_AUTH_OFF,	    /* 401: no password configured */
};

/* What to answer when the decision is not STATS_AUTH_OK. */
struct stats_auth_answer {
	unsigned status;    /* 401, 429 or 503 */
	const char *body;   /* text/plain */
	char header[96];    /* one header line with its CRLF, or "" */
};

/* Logs what start-up should know about the configured hash (the sha256: form is weak; none
 * set). Call once, before the workers run. */
void onion_stats_init(const struct config *c);
/* The decision for one request: authorization is the Authorization header's value (NULL
 * when absent), peer the client's address (NULL or a family other than inet: one shared
 * source), now_ms a monotonic clock. Fills *ans unless the result is STATS_AUTH_OK.
 * Thread-safe. */
enum stats_auth onion_stats_auth(const char *configured_hash, const char *authorization, const struct sockaddr *peer,
				 socklen_t peerlen, uint64_t now_ms, struct stats_auth_answer *ans);
/* Forgets every source and the remembered password (tests). */
void onion_stats_auth_reset(void);
#endif
