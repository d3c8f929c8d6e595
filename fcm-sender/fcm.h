/*
 * fcm: the FCM sender's own part; the router link, the jobs, the guard and the loop are
 * common/sender/sender_*.c, driven through fcm_ops. main.c checks the configuration and starts the
 * loop; send.c turns a job into an FCM HTTP v1 request (fcm_ops); classify.c maps an answer
 * to an outcome (docs/senders.md, "fcm-sender"); payload.c builds the message (docs/protocol.md
 * §6.6); auth.c holds the service account and the OAuth access token.
 */
#ifndef FCM_H
#define FCM_H
#include "config.h"
#include "sender/guard.h"
#include "sender/oauth.h"
#include "sender/sender_loop.h"
#include "sender/sender_xmpp.h"
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define FCM_DATA_MAX 4096		/* data keys plus values */
#define FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"
#define FCM_REFRESH_MARGIN_MS 300000	/* refresh when less than 5 min remain */
#define FCM_OAUTH_RETRY_FIRST_MS 1000	/* exchange back-off after 5xx/transport failures */
#define FCM_OAUTH_RETRY_CAP_MS 60000
#define FCM_OAUTH_REFUSED_MS 60000	/* next exchange after a 400/401 */

struct fcm_auth {
	EVP_PKEY *key;			/* the service account's RSA key */
	char *key_id, *client_email, *token_uri, *project_id;
	struct oauth tok;		/* the access token (common/sender/oauth.h) */
};

struct fcm {
	struct sender s;		/* the shared part; s.ctx points back here */
	char *send_url;
	struct fcm_auth auth;
};

/* send.c: the provider callbacks of the shared sender (ctx: struct fcm). Jobs are parked
 * while there is no access token; auth.c releases them or fails them. */
extern const struct sender_ops fcm_ops;

/* classify.c: a pure function of the answer. now_wall_ms is for Retry-After dates. */
void fcm_classify(long status, const char *body, size_t len, const char *retry_after, uint64_t now_wall_ms,
		  struct guard_verdict *v);

/* payload.c */
/* The message of docs/protocol.md §6.6, or with the data map {"ENCRYPTED_DATA_TOO_LARGE":"1"}
 * (*reduced = 1) when data would pass FCM_DATA_MAX or is not UTF-8. malloc'd; NULL when the token
 * is not UTF-8 or memory ran out. */
char *fcm_message(const char *token, size_t token_len, const char *data, size_t data_len, size_t *out_len,
		  int *reduced);
/* The data-only message for an XMPP ad-hoc registration (docs/senders.md, "Job kinds"):
 * {"message":{"token":…,"data":{"account":…,"channel"?:…},"android":{"priority":"HIGH"|"NORMAL",
 * "collapse_key":<first 6 characters of channel, else account>}}}. malloc'd; NULL when the
 * token is not UTF-8 or memory ran out. */
char *fcm_xmpp_message(const char *token, size_t token_len, const struct sender_xmpp *x, size_t *out_len);

/* auth.c */
/* Reads the service account (config project_id and token_uri override the file's); -1 with
 * a reason in err. */
int fcm_auth_load(struct fcm_auth *au, const struct conf_fcm *c, char *err, size_t errlen);
void fcm_auth_free(struct fcm_auth *au);
/* The OAuth assertion: RS256, header {"alg","typ","kid"}, claims iss, scope, aud, iat, exp. */
char *fcm_assertion_make(EVP_PKEY *key, const char *kid, const char *iss, const char *aud, long long iat);
/* Reads {"access_token","expires_in"} (number or string); 0, or -1 when unusable. */
int fcm_token_parse(const char *body, size_t len, char **access_token, long *expires_in);
/* The authorization header when the access token is usable now, else NULL. */
const char *fcm_auth_header(const struct fcm_auth *au, uint64_t now_mono_ms);
/* Starts a token exchange when one is needed and allowed (call from the loop). */
void fcm_auth_tick(struct fcm *f);
/* A send with access token generation gen got 401: stop using that token. */
void fcm_auth_rejected(struct fcm *f, unsigned gen);
/* Milliseconds until fcm_auth_tick() has something to do, or -1. */
int fcm_auth_timeout_ms(const struct fcm *f);
#endif
