/*
 * hms: the Huawei Push Kit sender's own part (docs/senders.md, "HMS"); the router link, the
 * jobs, the guard and the loop are common/sender/sender_*.c, driven through hms_ops. main.c checks
 * the configuration and starts the loop; send.c turns a job into a messages:send request
 * (hms_ops); classify.c maps an answer to an outcome from its `code` field; payload.c builds
 * the message (the FCM payload, its data map as a JSON string); auth.c holds the OAuth access
 * token of the client-credentials flow.
 */
#ifndef HMS_H
#define HMS_H
#include "config.h"
#include "sender/guard.h"
#include "sender/oauth.h"
#include "sender/sender_loop.h"
#include <stddef.h>
#include <stdint.h>

#define HMS_MESSAGE_MAX 4096		/* the message without its token list */
#define HMS_TOKEN_DEFAULT_S 3600	/* expires_in missing */
#define HMS_TOKEN_MAX_S 86400		/* expires_in beyond this is taken as this */
#define HMS_REFRESH_MARGIN_MS 300000	/* refresh when less than 5 min remain (half the life at most) */
#define HMS_OAUTH_RETRY_FIRST_MS 1000	/* token request back-off after 5xx/transport failures … */
#define HMS_OAUTH_RETRY_CAP_MS 60000	/* … doubling to this */
#define HMS_OAUTH_REFUSED_MS 60000	/* next request after the token endpoint refused us (400/401) */
#define HMS_SECRET_MAX 1024		/* app secret bytes */
#define HMS_PUSH_URL "https://push-api.cloud.huawei.com"
#define HMS_TOKEN_URL "https://oauth-login.cloud.huawei.com/oauth2/v3/token"

/* The answer codes of Push Kit (docs/senders.md). */
#define HMS_CODE_SUCCESS "80000000"
#define HMS_CODE_PARTIAL "80100000"
#define HMS_CODE_INVALID_MESSAGE "80100003"
#define HMS_CODE_AUTH_ERROR "80200001"
#define HMS_CODE_AUTH_EXPIRED "80200003"
#define HMS_CODE_NO_PERMISSION "80300002"
#define HMS_CODE_ALL_TOKENS_INVALID "80300007"
#define HMS_CODE_TOO_LARGE "80300008"
#define HMS_CODE_INTERNAL "81000001"

struct hms_auth {
	char *token_url, *app_id, *secret;
	struct oauth tok;		/* the access token (common/sender/oauth.h) */
};

struct hms {
	struct sender s;		/* the shared part; s.ctx points back here */
	char *send_url;			/* <url>/v1/<app id>/messages:send */
	struct hms_auth auth;
};

/* send.c: the provider callbacks of the shared sender (ctx: struct hms). */
extern const struct sender_ops hms_ops;

/* classify.c: a pure function of the answer (HTTP status, JSON body, Retry-After) and of the
 * token the request was for (it may be listed in a partial success's illegal_tokens).
 * 80000000 delivered; 80100000 token_dead when the token is among illegal_tokens, else
 * delivered when one succeeded, else message_failed; 80300007 token_dead, guarded;
 * 80200003 credentials with refresh_auth; 80200001 and 80300002 credentials; 80300008 and
 * 80100003 message_failed; 81000001 retry; without a code: 401 credentials with refresh_auth,
 * 403/404 and a 200 that is not a Push Kit answer credentials, 429/5xx retry (Retry-After
 * honoured), other 4xx message_failed; an unknown code message_failed (retry with 5xx). */
void hms_classify(long status, const char *body, size_t len, const char *token, size_t token_len,
		  const char *retry_after, uint64_t now_wall_ms, struct guard_verdict *v);

/* payload.c: {"validate_only":false,"message":{"data":"{\"ENCRYPTED_DATA\":\"<data>\"}",
 * "android":{"urgency":"HIGH"},"token":["<token>"]}}; the data map becomes
 * {"ENCRYPTED_DATA_TOO_LARGE":"1"} (*reduced = 1) when the message without its token list
 * would pass HMS_MESSAGE_MAX, or the data is not UTF-8. malloc'd; NULL when the token is not
 * UTF-8 or memory ran out. */
char *hms_message(const char *token, size_t token_len, const char *data, size_t data_len, size_t *out_len,
		  int *reduced);

/* auth.c */
/* Checks the token URL and the app id, reads the app secret file; -1 with a reason in err. */
int hms_auth_load(struct hms_auth *au, const struct conf_hms *c, char *err, size_t errlen);
void hms_auth_free(struct hms_auth *au);
/* Reads {"access_token","expires_in"}: 0 (expires_in HMS_TOKEN_DEFAULT_S when missing), or
 * -1 when there is no usable token or expires_in is not a positive number. */
int hms_token_parse(const char *body, size_t len, char **access_token, long *expires_in);
/* The authorization header when the access token is usable now, else NULL. */
const char *hms_auth_header(const struct hms_auth *au, uint64_t now_mono_ms);
/* Starts a token request when one is needed and allowed (call from the loop). */
void hms_auth_tick(struct hms *h);
/* A send with access token generation gen was refused as unauthenticated: stop using it. */
void hms_auth_rejected(struct hms *h, unsigned gen);
/* Milliseconds until hms_auth_tick() has something to do, or -1. */
int hms_auth_timeout_ms(const struct hms *h);
#endif
