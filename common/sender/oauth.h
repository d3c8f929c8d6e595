/*
 * oauth: an OAuth access token a sender holds for its provider (FCM, WNS, HMS): the token
 * request itself (a form POSTed through the sender's HTTP client, never blocking the loop), the
 * client-credentials form and secret file, reading the token endpoint's answer, the header built
 * from it, when it is refreshed, the back-off after a failed request, pausing the provider after
 * a refused one, and dropping the token after a 401. Providers give their policy (struct
 * oauth_policy) and build the form (client credentials, or FCM's signed assertion). Never logs a
 * secret or a token.
 */
#ifndef OAUTH_H
#define OAUTH_H
#include "h2client.h"
#include <stddef.h>
#include <stdint.h>

#define OAUTH_TOKEN_MAX 4096 /* access token bytes */

struct sender;

/* A provider's token policy. */
struct oauth_policy {
	const char *provider;	  /* for logs and reasons: "FCM", "WNS", "HMS" */
	const char *header;	  /* the header's name: "Authorization" */
	long max_s;		  /* expires_in beyond this is taken as this */
	long default_s;		  /* expires_in missing: the token lives this long */
	int lenient;		  /* an unreadable expires_in also means default_s (else the answer is unusable) */
	uint64_t margin_ms;	  /* refresh when less than this remains … */
	unsigned margin_pct;	  /* … or this share of the life, when more (0: none); at most half the life */
	uint64_t backoff_first_ms, backoff_cap_ms; /* after a failed request: wait, doubling to the cap */
	uint64_t refused_ms;	  /* 400/401 from the endpoint: pause the provider this long (0: a failure) */
	int keep_waiting;	  /* a failed (not refused) request leaves the jobs waiting for a token waiting */
	int refresh_counter;	  /* the counter (counters.h) bumped per token obtained, or -1 */
};

struct oauth {
	const struct oauth_policy *pol;
	const char *provider;	/* pol->provider */
	struct sender *s;	/* set by oauth_request(): whose jobs wait for the token */
	const char *url;	/* the token endpoint, for logs */
	char *header;		/* "<prefix>: Bearer <access token>", or NULL */
	uint64_t expires_mono;	/* when the access token dies */
	uint64_t refresh_mono;	/* when a new one is fetched */
	unsigned gen;		/* bumped with every new access token */
	int fetching;		/* a token request is in flight */
	uint64_t next_try_mono; /* no token request before this */
	uint64_t backoff_ms;	/* the next failure's wait */
	uint64_t backoff_first_ms, backoff_cap_ms;
};

void oauth_init(struct oauth *o, const struct oauth_policy *pol);
/* Wipes and frees the token. */
void oauth_free(struct oauth *o);
/* Wipes and frees a NUL-terminated secret (NULL is fine). */
void oauth_wipe(char *s);
/* Reads a secret alone in a file (trailing white space dropped): malloc'd, or NULL with a reason
 * naming the setting `what` in err (empty, longer than max bytes, not text, unreadable). */
char *oauth_secret_read(const char *path, size_t max, const char *what, char *err, size_t errlen);
/* The client-credentials form: grant_type=client_credentials&client_id=…&client_secret=…
 * [&scope=…] (scope NULL: none), values percent-encoded. malloc'd; NULL when memory ran out. */
char *oauth_client_form(const char *client_id, const char *secret, const char *scope);
/* Reads a token answer under pol: 0 with *token (malloc'd) and *expires_in (pol->default_s
 * when missing, *defaulted then 1; likewise when unreadable if pol->lenient), or -1. */
int oauth_token_read(const char *body, size_t len, const struct oauth_policy *pol, char **token,
		     long *expires_in, int *defaulted);
/* Milliseconds before expiry at which a token of this lifetime is refreshed under pol. */
uint64_t oauth_refresh_margin_ms(const struct oauth_policy *pol, long lifetime_s);
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
/* Is a token request in flight or allowed now (so a job may wait for its answer)? */
int oauth_coming(const struct oauth *o, uint64_t now_mono);
/* After oauth_wanted(): POSTs form (wiped and freed here) to url through s's HTTP client; the
 * answer stores the token and releases s's waiting jobs, or counts as a failure. form NULL:
 * building it failed, for the reason why_no_form. url must outlive o. */
void oauth_request(struct oauth *o, struct sender *s, const char *url, char *form, const char *why_no_form);
/* Milliseconds until oauth_wanted() may change, or -1 while a request is in flight. */
int oauth_timeout_ms(const struct oauth *o);
/* A new token (wiped by the caller): header "<prefix>: Bearer <token>", refreshed
 * refresh_margin_ms before it dies, back-off reset. -1 when memory ran out. */
int oauth_store(struct oauth *o, const char *prefix, const char *token, long expires_in, uint64_t refresh_margin_ms);
/* A failed request: no new one before the current back-off has passed, which then doubles up
 * to the cap. Returns the wait. */
uint64_t oauth_failed(struct oauth *o);
/* A request that failed for the reason why (refused: the endpoint answered 400/401): logged,
 * backed off (refused under pol->refused_ms: that long, and the provider paused), and unless the
 * current token still works (or pol->keep_waiting on a failure that was not refused) the jobs
 * waiting for a token are answered credentials. */
void oauth_request_failed(struct oauth *o, const char *why, int refused);
/* A send that used generation gen got 401: stop using that token (unless already replaced). */
void oauth_rejected(struct oauth *o, unsigned gen);
#endif
