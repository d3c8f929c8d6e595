/*
 * wns: the WNS sender's own part (docs/senders.md, "wns-sender"); the router link, the jobs, the
 * guard and the loop are common/sender/sender_*.c, driven through wns_ops. main.c checks the
 * configuration and starts the loop; curl_http.c is its HTTP client (libcurl); send.c turns a job into a raw
 * notification POST to its channel URI (wns_ops); classify.c maps an answer to an outcome
 * (docs/senders.md, "wns-sender"); auth.c holds the OAuth access token (docs/senders.md,
 * "Access token") and its refresh.
 */
#ifndef WNS_H
#define WNS_H
#include "uwpx_uri.h"
#include "config.h"
#include "sender/guard.h"
#include "sender/oauth.h"
#include "sender/sender_loop.h"
#include <stddef.h>
#include <stdint.h>

#define WNS_BODY_MAX 5000		     /* raw notification bytes (WNS answers 413 beyond) */
#define WNS_TOKEN_DEFAULT_S 3600	     /* expires_in missing or unreadable */
#define WNS_TOKEN_MAX_S (7 * 86400)	     /* expires_in beyond this is taken as this */
#define WNS_REFRESH_MIN_MS 300000	     /* refresh when less than max(this, 10 % of the life) remain */
#define WNS_TOKEN_RETRY_FIRST_MS 10000	     /* token request back-off: 10 s doubling … */
#define WNS_TOKEN_RETRY_CAP_MS 300000	     /* … to 5 min */
#define WNS_SECRET_MAX 4096		     /* client secret bytes */
#define WNS_LIVE_TOKEN_URL "https://login.live.com/accesstoken.srf"
#define WNS_LIVE_SCOPE "notify.windows.com"
#define WNS_ENTRA_TOKEN_URL "https://login.microsoftonline.com/%s/oauth2/v2.0/token"
#define WNS_ENTRA_SCOPE "https://wns.windows.com/.default"

struct wns_auth {
	char *token_url, *scope, *client_id, *secret;
	struct oauth tok;		/* the access token (common/sender/oauth.h) */
};

struct wns {
	struct sender s;		/* the shared part; s.ctx points back here */
	const struct conf_wns *c;
	struct uwpx_uri_rules uri;	/* the channel allowlist, checked before any send */
	struct wns_auth auth;
};

/* The parts of a WNS answer that decide its outcome (header values NULL when absent). */
struct wns_answer {
	long status;
	const char *wns_status;		/* X-WNS-Status (or X-WNS-NotificationStatus) */
	const char *continue_after;	/* X-WNS-CONTINUE-AFTER, seconds */
	const char *retry_after;	/* Retry-After */
	const char *error_description;	/* X-WNS-Error-Description */
};

/* send.c: the provider callbacks of the shared sender (ctx: struct wns). */
extern const struct sender_ops wns_ops;
/* curl_http.c: the HTTP client of those callbacks, on libcurl's multi interface. */
extern const struct sender_http wns_curl_http;

/* classify.c: a pure function of the answer, the table of docs/senders.md ("wns-sender"):
 * 200 delivered (reason "dropped" when WNS dropped it); 401 credentials with refresh_auth;
 * 404/410 token_dead (the channel); 406 retry with X-WNS-CONTINUE-AFTER as retry_after (0 when
 * absent: the router's channel back-off then starts at 60 s and doubles);
 * 500/503 retry (Retry-After honoured); everything else message_failed. */
void wns_classify(const struct wns_answer *a, uint64_t now_wall_ms, struct guard_verdict *v);

/* auth.c */
/* Resolves the token URL and scope for the flow, reads the client secret file; -1 with a
 * reason in err. */
int wns_auth_load(struct wns_auth *au, const struct conf_wns *c, char *err, size_t errlen);
void wns_auth_free(struct wns_auth *au);
/* Reads {"access_token", "expires_in"} (a number or a decimal string). 0, with *defaulted set
 * when expires_in was missing or unreadable (then WNS_TOKEN_DEFAULT_S); -1 when there is no
 * usable access token. */
int wns_token_parse(const char *body, size_t len, char **access_token, long *expires_in, int *defaulted);
/* Milliseconds before expiry at which a token of this lifetime is refreshed: max(300 s, 10 %),
 * but at most half the lifetime (short-lived test tokens are not refreshed constantly). */
uint64_t wns_refresh_margin_ms(long lifetime_s);
/* The authorization header when the access token is usable now, else NULL. */
const char *wns_auth_header(const struct wns_auth *au, uint64_t now_mono_ms);
/* Whether a token request is in flight or due now (then a job may wait for it). */
int wns_auth_coming(const struct wns_auth *au, uint64_t now_mono_ms);
/* Starts a token request when one is needed and allowed (call from the loop). */
void wns_auth_tick(struct wns *w);
/* A send with access token generation gen got 401: stop using that token. */
void wns_auth_rejected(struct wns *w, unsigned gen);
/* Milliseconds until wns_auth_tick() has something to do, or -1. */
int wns_auth_timeout_ms(const struct wns *w);
#endif
