/*
 * apns: the APNs sender's own part; the router link, the jobs, the guard and the loop are
 * common/sender/sender_*.c, driven through apns_ops. main.c checks the configuration and starts the
 * loop; send.c turns a job into an APNs request (apns_ops); classify.c maps an answer to an
 * outcome (docs/senders.md, "apns-sender"); payload.c builds the body (docs/protocol.md §6.6);
 * auth.c holds the provider token (JWT ES256) and its refresh.
 */
#ifndef APNS_H
#define APNS_H
#include "config.h"
#include "sender/guard.h"
#include "sender/sender_loop.h"
#include "sender/sender_xmpp.h"
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define APNS_PAYLOAD_MAX 4096
#define APNS_FORCED_REFRESH_MS 60000 /* ExpiredProviderToken may force a new JWT this often */
#define APNS_JOB_BACKGROUND 1u	      /* sender_job.pflags: apns-push-type background, priority 5 */

struct apns_auth {
	EVP_PKEY *key;		/* NULL with certificate authentication */
	char *kid, *team;
	uint64_t refresh_ms;	/* a JWT is replaced when this old */
	char *header;		/* "authorization: bearer <JWT>" */
	uint64_t issued_mono, forced_mono;
	unsigned gen;		/* bumped with every new JWT */
};

struct apns {
	struct sender s;	/* the shared part; s.ctx points back here */
	const struct conf_apns *c;
	struct apns_auth auth;
};

/* send.c: the provider callbacks of the shared sender (ctx: struct apns). */
extern const struct sender_ops apns_ops;

/* classify.c: a pure function of the answer. now_wall_ms is for Retry-After dates. */
void apns_classify(long status, const char *body, size_t len, const char *retry_after, uint64_t now_wall_ms,
		   struct guard_verdict *v);

/* payload.c */
/* The notification body of docs/protocol.md §6.6, or the reduced one (*reduced = 1) when the full
 * one would pass APNS_PAYLOAD_MAX bytes or data is not UTF-8. malloc'd, NUL-terminated; NULL on
 * allocation failure. */
char *apns_payload(const char *title, const char *text, const char *data, size_t data_len, size_t *out_len,
		   int *reduced);
/* The p2-style body for an XMPP ad-hoc registration (docs/senders.md, "Job kinds"): high →
 * {"aps":{"alert":{"title":"New message"},"sound":"default"}} (alert, priority 10), else
 * {"aps":{"content-available":1}} (background, priority 5). malloc'd, NULL when out of memory. */
char *apns_xmpp_payload(int high, size_t *out_len);
/* "<base>/3/device/<token>", the token percent-encoded outside [A-Za-z0-9._~-]; 0, or -1
 * when it does not fit out. */
int apns_url(char *out, size_t outlen, const char *base, const char *token, size_t token_len);

/* auth.c */
/* Loads the credentials the configuration names (token: .p8 key; certificate: checks the
 * files are readable); -1 with a reason in err. */
int apns_auth_load(struct apns_auth *au, const struct conf_apns *c, char *err, size_t errlen);
void apns_auth_free(struct apns_auth *au);
/* The authorization header line for a send now, generating a JWT when there is none or the
 * current one is refresh_ms old; NULL with certificate authentication or when signing fails
 * (*failed set then). */
const char *apns_auth_header(struct apns_auth *au, uint64_t now_wall_ms, uint64_t now_mono_ms, int *failed);
/* APNs said ExpiredProviderToken to a send that used JWT generation gen: drop that JWT so the
 * next send makes a new one (at most once per APNS_FORCED_REFRESH_MS). */
void apns_auth_expired(struct apns_auth *au, unsigned gen, uint64_t now_mono_ms);
/* The provider token itself: header {"alg":"ES256","kid":kid}, claims {"iss":team,"iat":iat}. */
char *apns_jwt_make(EVP_PKEY *key, const char *kid, const char *team, long long iat);
#endif
