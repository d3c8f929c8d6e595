/*
 * oauth: an OAuth access token a sender holds for its provider (FCM, WNS): reading the token
 * endpoint's answer, the header built from it, when it is refreshed, the back-off after a
 * failed request, and dropping it after a 401. Providers keep their own policy (how long a
 * token without expires_in lives, what a refused request does to the jobs); the bookkeeping is
 * here. Never logs a token.
 */
#ifndef OAUTH_H
#define OAUTH_H
#include "h2client.h"
#include <stddef.h>
#include <stdint.h>

#define OAUTH_TOKEN_MAX 4096 /* access token bytes */

struct oauth {
	const char *provider;	/* for logs: "FCM", "WNS" */
	char *header;		/* "<prefix>: Bearer <access token>", or NULL */
	uint64_t expires_mono;	/* when the access token dies */
	uint64_t refresh_mono;	/* when a new one is fetched */
	unsigned gen;		/* bumped with every new access token */
	int fetching;		/* a token request is in flight */
	uint64_t next_try_mono; /* no token request before this */
	uint64_t backoff_ms;	/* the next failure's wait */
	uint64_t backoff_first_ms, backoff_cap_ms;
};

void oauth_init(struct oauth *o, const char *provider, uint64_t backoff_first_ms, uint64_t backoff_cap_ms);
/* Wipes and frees the token. */
void oauth_free(struct oauth *o);
/* Reads {"access_token","expires_in"}: the token must be 1..OAUTH_TOKEN_MAX printable ASCII
 * bytes without spaces (it goes into a header line). *expires_in: the seconds (a positive
 * integer or decimal string, capped at max_s), 0 when absent, -1 when present but not a
 * positive number. 0 with *token malloc'd, or -1. */
int oauth_token_parse(const char *body, size_t len, long max_s, char **token, long *expires_in);
/* A non-200 answer or none, for logs: "HTTP 400 invalid_grant: description", or the
 * transport error. */
void oauth_answer_text(const struct h2c_response *r, char *why, size_t len);
/* The authorization header while the token is usable, else NULL. */
const char *oauth_header(const struct oauth *o, uint64_t now_mono);
/* Should a token request start now? */
int oauth_wanted(const struct oauth *o, uint64_t now_mono);
/* Milliseconds until oauth_wanted() may change, or -1 while a request is in flight. */
int oauth_timeout_ms(const struct oauth *o);
/* A new token (wiped by the caller): header "<prefix>: Bearer <token>", refreshed
 * refresh_margin_ms before it dies, back-off reset. -1 when memory ran out. */
int oauth_store(struct oauth *o, const char *prefix, const char *token, long expires_in, uint64_t refresh_margin_ms);
/* A failed request: no new one before the current back-off has passed, which then doubles up
 * to the cap. Returns the wait. */
uint64_t oauth_failed(struct oauth *o);
/* A send that used generation gen got 401: stop using that token (unless already replaced). */
void oauth_rejected(struct oauth *o, unsigned gen);
#endif
