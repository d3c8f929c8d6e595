/*
 * common/sender/sender_job.c driven directly: a struct sender with a fake provider (its submit only
 * records the job, the test plays the provider's answers through sender_job_answer) and a
 * router link on a socketpair, from which the RESULT frames are read.
 */
#include "daemon.h"
#include "frame.h"
#include "sender/sender_job.h"
#include "sender/sender_loop.h"
#include "testlib.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sender S;
static int router_fd; /* the test's end of the router link */

/* The fake provider. */
static struct sender_job *last;	 /* the job submitted last */
static int nsubmit, nrejected, park, refuse;
static unsigned rejected_gen;

static int fake_prepare(struct sender_job *j, const char *data, size_t len, struct guard_verdict *v)
{
	if (len == 4 && memcmp(data, "fail", 4) == 0) {
		v->outcome = OUTCOME_MESSAGE_FAILED;
		snprintf(v->reason, sizeof v->reason, "payload refused");
		return -1;
	}
	if ((j->body = malloc(len + 1)) == NULL)
		return -1;
	memcpy(j->body, data, len);
	j->body[len] = '\0';
	j->body_len = len;
	return len > 16;
}

static int fake_submit(struct sender_job *j, struct guard_verdict *v)
{
	nsubmit++;
	last = j;
	if (refuse) {
		v->outcome = OUTCOME_RETRY;
		snprintf(v->reason, sizeof v->reason, "local: refused");
		return -1;
	}
	if (park)
		sender_job_park(j);
	else
		j->auth_gen = 7;
	return 0;
}

/* 200 delivered, 400 message failed, 401 credential expired (refresh), 410 token dead
 * (unguarded), anything else retry. */
static void fake_classify(long status, const char *body, size_t len, const char *retry_after, uint64_t now,
			  struct guard_verdict *v)
{
	(void)body;
	(void)len;
	(void)retry_after;
	(void)now;
	memset(v, 0, sizeof *v);
	v->status = status;
	v->outcome = status == 200   ? OUTCOME_DELIVERED
		     : status == 400 ? OUTCOME_MESSAGE_FAILED
		     : status == 410 ? OUTCOME_TOKEN_DEAD
				     : OUTCOME_RETRY;
	v->refresh_auth = status == 401;
}

static void fake_auth_rejected(struct sender *s, unsigned gen)
{
	(void)s;
	nrejected++;
	rejected_gen = gen;
}

static const struct sender_ops OPS = {
	.provider = "Fake",
	.platform = PLATFORM_IOS,
	.platform_name = "iOS",
	.reduced_note = "test",
	.prepare = fake_prepare,
	.submit = fake_submit,
	.classify = fake_classify,
	.auth_rejected = fake_auth_rejected,
};

static void push(uint64_t id, uint32_t platform, uint32_t kind, const char *token, const char *data)
{
	static uint8_t buf[FRAME_MAX];
	struct frame_writer w;
	struct frame f;
	long n;

	frame_begin(&w, buf, FRAME_PUSH, id);
	frame_put_u32(&w, TAG_PLATFORM, platform);
	frame_put_u32(&w, TAG_KIND, kind);
	frame_put_bytes(&w, TAG_TOKEN, token, strlen(token));
	frame_put_bytes(&w, TAG_DATA, data, strlen(data));
	frame_put_u32(&w, TAG_ATTEMPT, 0);
	n = frame_end(&w);
	if (n < 0 || frame_parse(buf, (size_t)n, &f, NULL) < 0)
		abort();
	sender_push(&S, &f);
}

static void answer(struct sender_job *j, long status, int timed_out, int aborted)
{
	struct h2c_response r;
	memset(&r, 0, sizeof r);
	r.status = status;
	r.timed_out = timed_out;
	r.aborted = aborted;
	r.error_text = status ? "" : "stream reset";
	r.body = "";
	r.headers = "";
	sender_job_answer(j, &r);
}

struct result {
	uint64_t id;
	uint32_t outcome;
	uint64_t timestamp;
	char reason[129];
};

/* The next RESULT on the router link: 1, or 0 when none is waiting. */
static int result(struct result *out)
{
	static uint8_t buf[FRAME_MAX];
	struct frame f;
	struct frame_field fl;
	ssize_t n = recv(router_fd, buf, sizeof buf, 0);

	memset(out, 0, sizeof *out);
	if (n <= 0 || frame_parse(buf, (size_t)n, &f, NULL) < 0 || f.type != FRAME_RESULT)
		return 0;
	out->id = f.id;
	out->outcome = frame_u32(&f, TAG_OUTCOME, 0);
	out->timestamp = frame_u64(&f, TAG_TIMESTAMP, 0);
	if (frame_get(&f, TAG_REASON, &fl) == 0 && fl.len < sizeof out->reason)
		memcpy(out->reason, fl.val, fl.len);
	return 1;
}

static void test_refused_pushes(void)
{
	struct result r;

	push(1, PLATFORM_ANDROID, KIND_BCHAT, "tok", "data");
	CHECK(result(&r) && r.id == 1 && r.outcome == OUTCOME_MESSAGE_FAILED, "another platform's job: message failed");
	push(2, PLATFORM_IOS, KIND_WNS, "tok", "data");
	CHECK(result(&r) && r.id == 2 && r.outcome == OUTCOME_MESSAGE_FAILED, "a kind it does not take: message failed");
	push(3, PLATFORM_IOS, KIND_BCHAT, "tok", "fail");
	CHECK(result(&r) && r.id == 3 && r.outcome == OUTCOME_MESSAGE_FAILED && strcmp(r.reason, "payload refused") == 0,
	      "prepare's verdict is the answer");
	CHECK(nsubmit == 0 && S.njobs == 0 && S.jobs == NULL, "none of them was sent or kept");
}

static void test_delivered(void)
{
	struct result r;
	uint64_t t0 = now_ms();

	push(10, PLATFORM_IOS, KIND_BCHAT, "token-10", "hello");
	CHECK(nsubmit == 1 && S.njobs == 1 && last && last->id == 10, "submitted and held");
	CHECK(last->token_len == 8 && strcmp(last->token, "token-10") == 0, "token copied, NUL-terminated");
	CHECK(last->body_len == 5 && strcmp(last->body, "hello") == 0 && last->started_ms >= t0, "body prepared");
	CHECK(!result(&r), "no result before the answer");
	answer(last, 200, 0, 0);
	CHECK(result(&r) && r.id == 10 && r.outcome == OUTCOME_DELIVERED, "delivered reported");
	CHECK(S.njobs == 0 && S.jobs == NULL, "job freed");

	/* A token the provider calls dead without a time: the send's start is the time. */
	push(11, PLATFORM_IOS, KIND_BCHAT, "token-11", "hello");
	uint64_t started = last->started_ms;
	answer(last, 410, 0, 0);
	CHECK(result(&r) && r.id == 11 && r.outcome == OUTCOME_TOKEN_DEAD && r.timestamp == started,
	      "token dead with the send's start as its time");
}

static void test_transport_and_auth(void)
{
	struct result r;
	struct sender_job *j;

	/* No answer (a reset stream): resent once at once, then reported as retry. */
	push(20, PLATFORM_IOS, KIND_BCHAT, "token-20", "hello");
	j = last;
	nsubmit = 0;
	answer(j, 0, 0, 0);
	CHECK(nsubmit == 1 && !result(&r) && S.njobs == 1, "first transport failure: resent, nothing reported");
	answer(j, 0, 0, 0);
	CHECK(nsubmit == 1 && result(&r) && r.id == 20 && r.outcome == OUTCOME_RETRY &&
		      strncmp(r.reason, "transport", 9) == 0,
	      "second: reported as retry (%s)", r.reason);
	CHECK(S.njobs == 0, "and freed");

	/* The deadline passed: retry at once, no resend. */
	push(21, PLATFORM_IOS, KIND_BCHAT, "token-21", "hello");
	nsubmit = 0;
	answer(last, 0, 1, 0);
	CHECK(nsubmit == 0 && result(&r) && r.id == 21 && r.outcome == OUTCOME_RETRY && strncmp(r.reason, "deadline", 8) == 0,
	      "timed out: retry without a resend");

	/* A rejected credential: dropped and the job resent once; a second rejection is answered. */
	push(22, PLATFORM_IOS, KIND_BCHAT, "token-22", "hello");
	j = last;
	nsubmit = nrejected = 0;
	answer(j, 401, 0, 0);
	CHECK(nrejected == 1 && rejected_gen == 7 && nsubmit == 1 && !result(&r), "credential dropped, job resent");
	answer(j, 401, 0, 0);
	CHECK(nrejected == 1 && nsubmit == 1 && result(&r) && r.id == 22 && r.outcome == OUTCOME_RETRY,
	      "second rejection: answered, not resent again");

	/* h2c_free() aborting a request: freed without a result (the router re-queues it). */
	push(23, PLATFORM_IOS, KIND_BCHAT, "token-23", "hello");
	answer(last, 0, 0, 1);
	CHECK(!result(&r) && S.njobs == 0, "aborted: no result, freed");

	/* A result for a job of an older router connection is not sent. */
	push(24, PLATFORM_IOS, KIND_BCHAT, "token-24", "hello");
	S.link.gen++;
	answer(last, 200, 0, 0);
	CHECK(!result(&r) && S.njobs == 0, "older link: result dropped");

	/* Submit refused: answered with its verdict. */
	refuse = 1;
	push(25, PLATFORM_IOS, KIND_BCHAT, "token-25", "hello");
	refuse = 0;
	CHECK(result(&r) && r.id == 25 && r.outcome == OUTCOME_RETRY && S.njobs == 0, "refused submit: retry");
}

static void test_parked(void)
{
	struct result r;
	struct guard_verdict v;
	struct sender_job *a, *b;

	park = 1;
	push(30, PLATFORM_IOS, KIND_BCHAT, "token-30", "hello");
	a = last;
	push(31, PLATFORM_IOS, KIND_BCHAT, "token-31", "hello");
	b = last;
	CHECK(S.nwaiting == 2 && a->waiting && b->waiting && S.njobs == 2, "two parked");
	park = 0;
	nsubmit = 0;
	sender_release_waiting(&S);
	CHECK(nsubmit == 2 && S.nwaiting == 0 && !a->waiting && !b->waiting, "released: both submitted again");
	answer(a, 200, 0, 0);
	answer(b, 200, 0, 0);
	CHECK(result(&r) && result(&r) && S.njobs == 0, "and answered");

	/* Parked past the deadline: only the late one is answered retry. */
	park = 1;
	push(32, PLATFORM_IOS, KIND_BCHAT, "token-32", "hello");
	a = last;
	push(33, PLATFORM_IOS, KIND_BCHAT, "token-33", "hello");
	a->wait_since -= (uint64_t)S.deadline_ms + 1;
	sender_fail_waiting(&S, NULL);
	CHECK(result(&r) && r.id == 32 && r.outcome == OUTCOME_RETRY && !result(&r), "only the late one answered");
	CHECK(S.nwaiting == 1 && S.njobs == 1, "the other still parked");
	memset(&v, 0, sizeof v);
	v.outcome = OUTCOME_CREDENTIALS;
	sender_fail_waiting(&S, &v);
	CHECK(result(&r) && r.id == 33 && r.outcome == OUTCOME_CREDENTIALS && S.njobs == 0 && S.nwaiting == 0,
	      "credential refused: the parked job answered with it");
	park = 0;

	/* At shutdown the jobs left are freed unanswered. */
	push(34, PLATFORM_IOS, KIND_BCHAT, "token-34", "hello");
	sender_jobs_drop(&S);
	CHECK(S.njobs == 0 && S.jobs == NULL && !result(&r), "dropped without a result");
}

static void test_paused(void)
{
	struct result r;
	nsubmit = 0;
	guard_pause(&S.guard, "test", mono_ms());
	push(40, PLATFORM_IOS, KIND_BCHAT, "token-40", "hello");
	CHECK(nsubmit == 0 && S.njobs == 0 && result(&r) && r.id == 40 && r.outcome != OUTCOME_DELIVERED,
	      "paused: handed back unsent");
}

int main(void)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		return 1;
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	memset(&S, 0, sizeof S);
	S.ops = &OPS;
	S.max_jobs = 100;
	S.deadline_ms = 10000;
	guard_init(&S.guard, "Fake");
	peer_init(&S.link.peer, sv[0]);
	S.link.gen = 1;
	router_fd = sv[1];
	test_refused_pushes();
	test_delivered();
	test_transport_and_auth();
	test_parked();
	test_paused();
	peer_close(&S.link.peer);
	close(router_fd);
	return test_done();
}
