/*
 * apns: shared state of the APNs sender. main.c runs the loop, link.c the router connection;
 * send.c turns a job into an APNs request and its answer into a result; classify.c maps an
 * answer to an outcome (providers.md §1.4); payload.c builds the body (bchat-onion.md §9.2,
 * §9.4); auth.c holds the provider token (JWT ES256) and its refresh.
 */
#ifndef APNS_H
#define APNS_H
#include "config.h"
#include "frame.h"
#include "guard.h"
#include "h2client.h"
#include "peer.h"
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define APNS_PAYLOAD_MAX 4096
#define APNS_FORCED_REFRESH_MS 60000 /* ExpiredProviderToken may force a new JWT this often */
#define APNS_EV_ROUTER 1	/* epoll tags in the loop */
#define APNS_EV_H2 2

struct apns_auth {
	EVP_PKEY *key;		/* NULL with certificate authentication */
	char *kid, *team;
	uint64_t refresh_ms;	/* a JWT is replaced when this old */
	char *header;		/* "authorization: bearer <JWT>" */
	uint64_t issued_mono, forced_mono;
	unsigned gen;		/* bumped with every new JWT */
};

/* One job from the router, from its PUSH until its RESULT. */
struct apns_job {
	struct apns *a;
	struct apns_job *prev, *next;
	uint64_t id;
	uint64_t link_gen;	/* router connection it came on: results for an older one are dropped */
	uint64_t started_ms;	/* wall clock at the first send: token_dead's time when APNs gives none */
	char *token;
	size_t token_len;
	char *body;		/* the payload, kept for a resend */
	size_t body_len;
	unsigned jwt_gen;	/* the JWT the last send used */
	int auth_retried, transport_retried;
};

struct apns {
	const struct config *cfg;
	const struct conf_apns *c;
	struct h2c *h2;
	struct guard guard;
	struct apns_auth auth;
	int epfd;		/* the loop's */
	const char *instance;	/* -i NAME */
	struct peer link;	/* to the router; fd -1 while disconnected */
	uint64_t link_gen;	/* bumped on every connect and loss */
	uint64_t reconnect_at;	/* monotonic */
	uint32_t router_events;	/* what the router fd is watched for */
	int absent_logged;
	struct apns_job *jobs;	/* in flight */
	size_t njobs, max_jobs;
};

/* link.c */
/* Connects to the router and says hello; on failure schedules the next try (reconnect_at). */
void apns_link_try(struct apns *a);
/* Closes the router connection (jobs that came on it are forgotten) and schedules a reconnect. */
void apns_link_drop(struct apns *a, const char *why);
/* Handles epoll events on the router socket. */
void apns_link_event(struct apns *a, uint32_t events);
/* Watches the router socket for reading only while there is room for jobs, and for writing
 * while results are queued; call after every turn of the loop. */
void apns_link_watch(struct apns *a);
/* Sends a job's result to the router, unless the connection it came on is gone (then the
 * router has re-queued the job already). */
void apns_result(struct apns *a, uint64_t link_gen, uint64_t id, const struct guard_verdict *v);

/* send.c */
/* Takes one PUSH frame: sends it, or answers it at once (paused, not for us, no memory). */
void apns_push(struct apns *a, const struct frame *f);

/* classify.c: a pure function of the answer. now_wall_ms is for Retry-After dates. */
void apns_classify(long status, const char *body, size_t len, const char *retry_after, uint64_t now_wall_ms,
		   struct guard_verdict *v);

/* payload.c */
/* The notification body of §9.2, or the reduced one of §9.4 (*reduced = 1) when the full one
 * would pass APNS_PAYLOAD_MAX bytes or data is not UTF-8. malloc'd, NUL-terminated; NULL on
 * allocation failure. */
char *apns_payload(const char *title, const char *text, const char *data, size_t data_len, size_t *out_len,
		   int *reduced);
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
