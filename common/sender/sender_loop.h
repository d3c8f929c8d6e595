/*
 * sender_loop: what the provider senders (apns-sender, fcm-sender, hms-sender, wns-sender) share
 * around their provider-specific code. One struct sender per daemon holds the router link
 * (sender_link.h), the jobs from PUSH to RESULT (sender_job.h), the HTTP client (h2client, or
 * the provider's own: struct sender_http) and the mass-invalidation guard, all on the daemon's
 * one loop (loop.h): one thread; the router socket, the HTTP client's sockets, the cluster
 * bus's job queue and every timer are the loop's. A provider supplies a struct sender_ops — its
 * payload, its request (URL, headers, credential), its classifier, its credential refresh —
 * and keeps its own state behind ctx. Its main.c sets up (sender_init, sender_start), enters
 * the sandbox, runs loop_run(s->lp), then sender_stop().
 */
#ifndef SENDER_LOOP_H
#define SENDER_LOOP_H
#include "config.h"
#include "guard.h"
#include "h2client.h"
#include "loop.h"
#include "sandbox.h"
#include "sender_job.h"
#include "sender_link.h"
#include <stddef.h>
#include <stdint.h>

#define SENDER_JOBS_MAX 10000	  /* jobs in flight: connections × max_streams, capped here */
#define SENDER_KIND(k) (1u << (k)) /* sender_ops.kinds */

struct sender;

/* The HTTP client a sender drives, when not h2client (h2client.h has the contract every
 * member keeps: its sockets and timer on the loop it was opened with, a run at the end of
 * every turn, exactly one completion per submitted request). wns-sender's is libcurl's
 * (wns-sender/curl_http.c). */
struct sender_http {
	void *(*open)(const struct h2c_opts *o, struct loop *lp);
	void (*close)(void *h);
	void (*run)(void *h);
	int (*submit)(void *h, const char *url, const char *const *headers, const void *body, size_t len,
		      h2c_done_fn *done, void *ctx);
	size_t (*in_flight)(const void *h);
};

/* What one provider adds. Every callback runs on the loop's thread. */
struct sender_ops {
	const char *provider;	   /* "APNs": the guard's name and the log lines' */
	uint32_t platform;	   /* enum frame_platform: said in the hello, required of every PUSH */
	const char *platform_name; /* "iOS": for log lines */
	const char *reduced_note;  /* "the payload; reduced payload sent": ends the reduced-body line */
	uint32_t kinds;		   /* SENDER_KIND(KIND_…) of every job kind taken; 0 = KIND_BCHAT only */
	/* Builds j->body (malloc'd, freed with the job) from the PUSH's data, j->token and j->kind
	 * being set (may note something for submit in j->pflags);
	 * v comes zeroed. 0; 1 when it is the reduced form of docs/protocol.md §6.6 (then counted
	 * and logged here); or -1 with v filled: the job is then answered with v. */
	int (*prepare)(struct sender_job *j, const char *data, size_t data_len, struct guard_verdict *v);
	/* Sends (or resends) j with sender_job_send(), or parks it with sender_job_park() and
	 * returns 0; v comes zeroed. 0, or -1 with v filled: the job is then answered with v. */
	int (*submit)(struct sender_job *j, struct guard_verdict *v);
	/* A pure function of one answer (guard.h); now_wall_ms is for Retry-After dates. */
	void (*classify)(long status, const char *body, size_t len, const char *retry_after, uint64_t now_wall_ms,
			 struct guard_verdict *v);
	/* Optional, used instead of classify when set: for a provider whose answer lives in its
	 * headers (WNS). v comes zeroed; may log and count, must not resend. */
	void (*classify_answer)(struct sender_job *j, const struct h2c_response *r, uint64_t now_wall_ms,
				struct guard_verdict *v);
	/* An answer said the credential of generation gen (the auth_gen given to
	 * sender_job_send()) is no good any more: stop using it. The job is then resubmitted once. */
	void (*auth_rejected)(struct sender *s, unsigned gen);
	/* Optional, with timeout_ms: a timer of the loop (e.g. a credential refresh). */
	void (*tick)(struct sender *s);
	/* Milliseconds until tick has something to do, or -1; asked at the end of every turn. */
	int (*timeout_ms)(const struct sender *s);
	/* Optional: another HTTP client than h2client (then s->h2 stays NULL). */
	const struct sender_http *http;
};

struct sender {
	const struct sender_ops *ops;
	void *ctx;		   /* the provider's own state, for its callbacks */
	const struct config *cfg;
	const struct sender_settings *set; /* the provider section's shared settings */
	const char *instance;	   /* -i NAME */
	struct h2c *h2;		   /* h2client, unless ops->http is set */
	void *http;		   /* ops->http's client, or s->h2 */
	struct guard guard;
	struct loop *lp;	   /* the daemon's one loop */
	struct loop_timer *tick_t; /* ops->tick's */
	struct loop_timer *wait_t; /* while jobs are parked: their deadline checked every 100 ms */
	struct sender_link link;   /* to the router */
	struct sender_job *jobs;   /* in flight or parked */
	size_t njobs, nwaiting, max_jobs;
	long deadline_ms;	   /* the requests' deadline; parked jobs wait no longer */
};

/* First thing after daemon_start(): ties s to ops and ctx, seeds random() for the reconnect
 * jitter, makes the loop (SIGTERM, SIGINT and SIGHUP read by it); no router connection yet.
 * Exits through fatal() on failure. */
void sender_init(struct sender *s, const struct sender_ops *ops, void *ctx, const struct config *cfg,
		 const char *instance);
/* After the provider has checked its configuration and loaded its credentials: set's
 * connections, max_streams, deadline_ms and ping_idle_ms into ho (the provider has filled its
 * own fields of ho), the job limit (connections × max_streams, 1 to SENDER_JOBS_MAX), the HTTP
 * client from ho on the loop (its max_in_flight set here to the job limit + extra_in_flight),
 * the guard with set's limits, the statsd counters, dropped privileges; then the router link
 * (or the cluster bus) and the sender's turn work registered with the loop: the first
 * connection is tried in its first turn. Exits through fatal() on failure. */
void sender_start(struct sender *s, const struct sender_settings *set, struct h2c_opts *ho, size_t extra_in_flight);
/* The provider senders' shared sandbox policy (daemon_policy, plus): inet client sockets with
 * TCP connect to any port (provider endpoints, token URLs, resolvers), and 256 + 2 ×
 * connections open files. The provider's main.c adds its credential and CA files, then
 * enters it. */
void sender_policy(const struct sender *s, struct sandbox_policy *p);
/* POSTs through the sender's HTTP client (h2c_submit()'s contract). */
int sender_http_submit(struct sender *s, const char *url, const char *const *headers, const void *body,
		       size_t len, h2c_done_fn *done, void *ctx);
/* After loop_run(s->lp) returned: drops every job unanswered (the router re-queues them),
 * closes the router connection and frees what sender_init() and sender_start() made. */
void sender_stop(struct sender *s);
#endif
