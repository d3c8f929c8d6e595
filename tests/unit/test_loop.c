/* loop.c, the daemons' event loop: fd callbacks with their user data, changing and deleting
 * handles (also one whose event is pending in the same turn), watchers for code that registers
 * its own fds, one-shot and periodic timers in deadline order, cancelling (also from inside
 * the timer itself), the wait bounded by the next timer, loop_wake's one moving timer, signals through signalfd, turn hooks
 * and loop_daemon_signals' SIGTERM. */
#include "daemon.h"
#include "loop.h"
#include "testlib.h"
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static int calls[8];
static uint32_t last_events[8];
static void *last_arg;
static int order[8], norder;

static void on_fd(void *arg, uint32_t events)
{
	int i = *(int *)arg;
	calls[i]++;
	last_events[i] = events;
	last_arg = arg;
}

/* The two handles of a pair, each deleting the other when it runs. */
static struct loop *L;
static struct loop_fd *pair[2];
static int pair_ran[2];
static void on_pair(void *arg, uint32_t events)
{
	int i = *(int *)arg;
	(void)events;
	pair_ran[i]++;
	loop_del(L, pair[1 - i]);
	loop_del(L, pair[i]);
}

static void on_timer(void *arg)
{
	int i = *(int *)arg;
	calls[i]++;
	if (norder < 8)
		order[norder++] = i;
}

static struct loop_timer *self_t;
static void on_self_cancel(void *arg)
{
	(*(int *)arg)++;
	loop_timer_cancel(L, self_t);
}

/* A wake-up timer (loop_wake): clears its pointer, counts. */
static struct loop_timer *wake_t;
static int wake_calls;
static void on_wake(void *arg)
{
	(void)arg;
	wake_t = NULL;
	wake_calls++;
}

static int got_signo;
static void on_signal(void *arg, int signo)
{
	(void)arg;
	got_signo = signo;
}

static int turns;
static void on_turn(void *arg)
{
	(void)arg;
	turns++;
}

int main(void)
{
	int ids[8] = {0, 1, 2, 3, 4, 5, 6, 7};
	int a[2], b[2], c[2];
	struct loop_fd *h;
	struct loop_timer *t;
	uint64_t t0;
	int n, self_calls = 0;

	L = loop_new();
	CHECK(L != NULL, "loop_new");
	CHECK(pipe(a) == 0 && pipe(b) == 0 && pipe(c) == 0, "pipes");

	/* fd callbacks with user data */
	h = loop_add(L, a[0], EPOLLIN, on_fd, &ids[1]);
	CHECK(h != NULL, "loop_add");
	CHECK(loop_once(L, 0) == 0 && calls[1] == 0, "nothing ready: nothing runs");
	CHECK(write(a[1], "x", 1) == 1, "write");
	CHECK(loop_once(L, 1000) == 1 && calls[1] == 1 && (last_events[1] & EPOLLIN) && last_arg == &ids[1],
	      "readable: its callback, with its user data and events");
	loop_del(L, h);
	CHECK(loop_once(L, 0) == 0 && calls[1] == 1, "deleted: no more calls, though still readable");
	h = loop_add(L, a[1], EPOLLIN, on_fd, &ids[2]);
	CHECK(loop_once(L, 0) == 0, "write end watched for input: nothing");
	CHECK(loop_mod(L, h, EPOLLOUT) == 0 && loop_once(L, 0) == 1 && calls[2] == 1 && (last_events[2] & EPOLLOUT),
	      "loop_mod to EPOLLOUT: writable");
	loop_del(L, h);

	/* Two handles ready in one turn, the first deleting the second: only one runs. */
	pair[0] = loop_add(L, b[0], EPOLLIN, on_pair, &ids[0]);
	pair[1] = loop_add(L, c[0], EPOLLIN, on_pair, &ids[1]);
	CHECK(write(b[1], "x", 1) == 1 && write(c[1], "x", 1) == 1, "both readable");
	loop_once(L, 1000);
	CHECK(pair_ran[0] + pair_ran[1] == 1, "a handle deleted in the turn of its pending event is not called (%d+%d)",
	      pair_ran[0], pair_ran[1]);
	CHECK(loop_once(L, 0) == 0, "both gone");

	/* A watcher: code that registers its own fd with the watcher as data.ptr. */
	h = loop_watch(L, on_fd, &ids[3]);
	{
		struct epoll_event ev = {.events = EPOLLIN};
		ev.data.ptr = h;
		CHECK(epoll_ctl(loop_epfd(L), EPOLL_CTL_ADD, b[0], &ev) == 0, "own registration");
	}
	CHECK(loop_once(L, 1000) == 1 && calls[3] == 1 && last_arg == &ids[3], "watcher called for a foreign fd");
	epoll_ctl(loop_epfd(L), EPOLL_CTL_DEL, b[0], NULL);
	loop_del(L, h);

	/* Timers: deadline order, once and periodic, and the wait they bound. */
	memset(calls, 0, sizeof calls);
	t0 = mono_ms();
	loop_timer(L, 30, 0, on_timer, &ids[4]);
	loop_timer(L, 10, 0, on_timer, &ids[5]);
	t = loop_timer(L, 5, 5, on_timer, &ids[6]);
	usleep(40000);
	loop_once(L, 0);
	CHECK(calls[4] == 1 && calls[5] == 1 && calls[6] == 1, "all three due: each ran once (%d %d %d)", calls[4],
	      calls[5], calls[6]);
	CHECK(norder == 3 && order[0] == 6 && order[1] == 5 && order[2] == 4, "in deadline order (%d %d %d)", order[0],
	      order[1], order[2]);
	n = 0;
	while (mono_ms() < t0 + 140)
		n += loop_once(L, -1);
	CHECK(calls[4] == 1 && calls[5] == 1, "one-shot timers ran once");
	CHECK(calls[6] >= 4 && calls[6] <= 30, "the 5 ms timer ran again and again, never in bursts (%d times in 140 ms)", calls[6]);
	loop_timer_cancel(L, t);
	n = calls[6];
	loop_timer(L, 50, 0, on_timer, &ids[7]);
	t0 = mono_ms();
	loop_once(L, -1);
	CHECK(calls[7] == 1 && mono_ms() >= t0 + 49, "the wait lasts until the next timer (%llu ms)",
	      (unsigned long long)(mono_ms() - t0));
	CHECK(calls[6] == n, "a cancelled timer does not run");
	self_t = loop_timer(L, 0, 1, on_self_cancel, &self_calls);
	for (int i = 0; i < 5; i++)
		loop_once(L, 5);
	CHECK(self_calls == 1, "a periodic timer cancelling itself in its callback runs once");

	/* loop_wake: one timer kept, moved earlier, never later, cancelled with -1. */
	CHECK(loop_wake(L, &wake_t, 200, on_wake, NULL) == 0 && wake_t != NULL, "loop_wake starts a timer");
	t = wake_t;
	CHECK(loop_wake(L, &wake_t, 500, on_wake, NULL) == 0 && wake_t == t, "a later wake-up leaves the earlier one");
	CHECK(loop_wake(L, &wake_t, 20, on_wake, NULL) == 0 && wake_t != NULL, "an earlier wake-up replaces it");
	t0 = mono_ms();
	loop_once(L, -1);
	CHECK(wake_calls == 1 && wake_t == NULL && mono_ms() < t0 + 150, "it ran once, at the earlier time (%llu ms)",
	      (unsigned long long)(mono_ms() - t0));
	CHECK(loop_wake(L, &wake_t, 10, on_wake, NULL) == 0 && loop_wake(L, &wake_t, -1, on_wake, NULL) == 0 &&
		      wake_t == NULL,
	      "-1 cancels it");
	usleep(20000);
	loop_once(L, 0);
	CHECK(wake_calls == 1, "a cancelled wake-up does not run");

	/* Signals through signalfd, and turn hooks. */
	CHECK(loop_signal(L, SIGUSR1, on_signal, NULL) == 0, "loop_signal");
	CHECK(loop_on_turn(L, on_turn, NULL) == 0, "loop_on_turn");
	raise(SIGUSR1);
	loop_once(L, 1000);
	CHECK(got_signo == SIGUSR1, "SIGUSR1 arrives as a callback");
	CHECK(turns == 1, "the turn hook ran once per turn");
	CHECK(loop_daemon_signals(L) == 0, "loop_daemon_signals");
	raise(SIGTERM);
	loop_run(L);
	CHECK(daemon_stop == 1, "SIGTERM: daemon_stop set and loop_run returned");

	loop_free(L);
	return test_done();
}
