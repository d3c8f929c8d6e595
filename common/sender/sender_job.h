/*
 * sender_job: the jobs of a provider sender (sender_loop.h), from the router's PUSH to the
 * one RESULT each gets, and what happens to a provider's answer before it becomes that
 * RESULT: one immediate resend after a transport failure, one resend after a rejected
 * credential, then the provider's classifier and the mass-invalidation guard.
 */
#ifndef SENDER_JOB_H
#define SENDER_JOB_H
#include "frame.h"
#include "guard.h"
#include "h2client.h"
#include <stddef.h>
#include <stdint.h>

struct sender;

/* One job from the router, from its PUSH until its RESULT. */
struct sender_job {
	struct sender *s;
	struct sender_job *prev, *next;
	uint64_t id;
	uint64_t link_gen;	/* router connection it came on: results for an older one are dropped */
	uint64_t started_ms;	/* wall clock at the first send: token_dead's time when the provider gives none */
	uint64_t wait_since;	/* monotonic, while parked */
	char *token;		/* NUL-terminated copy of the PUSH's token */
	size_t token_len;
	char *body;		/* the request body (ops->prepare), kept for a resend */
	size_t body_len;
	uint32_t kind;		/* the PUSH's enum frame_kind */
	unsigned pflags;	/* the provider's own notes on the job (ops->prepare), e.g. a priority */
	unsigned auth_gen;	/* the credential the last send used */
	int waiting, auth_retried, transport_retried;
};

/* Takes one PUSH frame: sends it, or answers it at once (paused, not for us, no memory). */
void sender_push(struct sender *s, const struct frame *f);
/* For ops->submit: POSTs j->body to url with hdrs (NULL-terminated), recording auth_gen as
 * the credential used; the answer goes through the shared handling above. 0, or -1 with v
 * filled (retry) when the request could not be submitted. */
int sender_job_send(struct sender_job *j, const char *url, const char *const *hdrs, unsigned auth_gen,
		    struct guard_verdict *v);
/* The HTTP/2 client's callback for a request sent by sender_job_send() (ctx is the job):
 * settles the answer as described above, resending or reporting it. */
void sender_job_answer(void *ctx, const struct h2c_response *r);
/* For ops->submit: parks j until sender_release_waiting() (no credential yet). */
void sender_job_park(struct sender_job *j);
/* Submits the parked jobs again (the credential they waited for arrived). */
void sender_release_waiting(struct sender *s);
/* Answers the parked jobs with v (the credential was refused), or, v NULL, only those parked
 * longer than the request deadline (retry). */
void sender_fail_waiting(struct sender *s, const struct guard_verdict *v);
/* Frees every job left (at shutdown, after h2c_free()) without answering. */
void sender_jobs_drop(struct sender *s);
#endif
