/*
 * fcm: shared state of the FCM sender. main.c runs the loop, link.c the router connection;
 * send.c turns a job into an FCM HTTP v1 request and its answer into a result; classify.c
 * maps an answer to an outcome (providers.md §2.4); payload.c builds the message
 * (bchat-onion.md §9.3, §9.4); auth.c holds the service account and the OAuth access token.
 */
#ifndef FCM_H
#define FCM_H
#include "config.h"
#include "frame.h"
#include "guard.h"
#include "h2client.h"
#include "peer.h"
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define FCM_DATA_MAX 4096		/* data keys plus values */
#define FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"
#define FCM_REFRESH_MARGIN_MS 300000	/* refresh when less than 5 min remain */
#define FCM_OAUTH_RETRY_FIRST_MS 1000	/* exchange back-off after 5xx/transport failures */
#define FCM_OAUTH_RETRY_CAP_MS 60000
#define FCM_OAUTH_REFUSED_MS 60000	/* next exchange after a 400/401 */
#define FCM_EV_ROUTER 1			/* epoll tags in the loop */
#define FCM_EV_H2 2

struct fcm_auth {
	EVP_PKEY *key;			/* the service account's RSA key */
	char *key_id, *client_email, *token_uri, *project_id;
	char *header;			/* "authorization: Bearer <access token>", or NULL */
	uint64_t expires_mono;		/* when the access token dies */
	uint64_t refresh_margin_ms;
	unsigned gen;			/* bumped with every new access token */
	int fetching;			/* an exchange is in flight */
	uint64_t next_try_mono;		/* no exchange before this */
	uint64_t backoff_ms;
};

/* One job from the router, from its PUSH until its RESULT. */
struct fcm_job {
	struct fcm *f;
	struct fcm_job *prev, *next;
	uint64_t id;
	uint64_t link_gen;		/* router connection it came on */
	uint64_t started_ms;		/* wall clock at the first send: token_dead's time */
	uint64_t wait_since;		/* monotonic, while waiting for an access token */
	char *token;
	size_t token_len;
	char *body;
	size_t body_len;
	unsigned auth_gen;		/* the access token the last send used */
	int waiting, auth_retried, transport_retried;
};

struct fcm {
	const struct config *cfg;
	const struct conf_fcm *c;
	char *send_url;
	struct h2c *h2;
	struct guard guard;
	struct fcm_auth auth;
	int epfd;			/* the loop's */
	const char *instance;		/* -i NAME */
	struct peer link;		/* to the router; fd -1 while disconnected */
	uint64_t link_gen;		/* bumped on every connect and loss */
	uint64_t reconnect_at;		/* monotonic */
	uint32_t router_events;		/* what the router fd is watched for */
	int absent_logged;
	struct fcm_job *jobs;		/* in flight or waiting */
	size_t njobs, nwaiting, max_jobs;
};

/* link.c */
/* Connects to the router and says hello; on failure schedules the next try (reconnect_at). */
void fcm_link_try(struct fcm *f);
/* Closes the router connection (jobs that came on it are forgotten) and schedules a reconnect. */
void fcm_link_drop(struct fcm *f, const char *why);
/* Handles epoll events on the router socket. */
void fcm_link_event(struct fcm *f, uint32_t events);
/* Watches the router socket for reading only while there is room for jobs, and for writing
 * while results are queued; call after every turn of the loop. */
void fcm_link_watch(struct fcm *f);
/* Sends a job's result to the router, unless the connection it came on is gone (then the
 * router has re-queued the job already). */
void fcm_result(struct fcm *f, uint64_t link_gen, uint64_t id, const struct guard_verdict *v);

/* send.c */
void fcm_push(struct fcm *f, const struct frame *fr);
/* Frees every job left (at shutdown, after h2c_free()) without answering. */
void fcm_jobs_drop(struct fcm *f);
/* Sends the jobs waiting for an access token (one just arrived). */
void fcm_release_waiting(struct fcm *f);
/* Answers the waiting jobs with v (the token endpoint refused us), or, v NULL, only those
 * that waited longer than the request deadline (retry). */
void fcm_fail_waiting(struct fcm *f, const struct guard_verdict *v);

/* classify.c: a pure function of the answer. now_wall_ms is for Retry-After dates. */
void fcm_classify(long status, const char *body, size_t len, const char *retry_after, uint64_t now_wall_ms,
		  struct guard_verdict *v);

/* payload.c */
/* The message of §9.3, or with the data map {"ENCRYPTED_DATA_TOO_LARGE":"1"} (*reduced = 1)
 * when data would pass FCM_DATA_MAX or is not UTF-8. malloc'd; NULL when the token is not
 * UTF-8 or memory ran out. */
char *fcm_message(const char *token, size_t token_len, const char *data, size_t data_len, size_t *out_len,
		  int *reduced);

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
