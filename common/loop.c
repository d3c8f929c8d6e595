/*
 * loop: one epoll set, a list of timers sorted by deadline, a signalfd, and turn hooks (see
 * loop.h). Handles are freed late: one deleted during a turn is marked dead and freed when
 * the turn's events are all dispatched, so an event still pending for it is skipped, never
 * delivered to freed memory.
 */
#include "loop.h"
#include "daemon.h"
#include "log.h"
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define LOOP_EVENTS 64
#define LOOP_HOOKS 8
#define LOOP_NSIG 65

struct loop_fd {
	loop_fd_fn fn;
	void *arg;
	int fd; /* -1 for a watcher */
	int dead;
	struct loop_fd *next_dead;
	struct loop_fd *prev, *next; /* the live handles, freed by loop_free */
};

struct loop_timer {
	struct loop_timer *next;
	uint64_t at, every;
	loop_timer_fn fn;
	void *arg;
	int running, dead;
};

struct loop {
	int epfd, sigfd;
	int stop;
	struct loop_fd *dead;	   /* deleted handles, freed at the end of the turn */
	struct loop_fd *live;	   /* the others */
	struct loop_timer *timers; /* sorted by at */
	struct loop_fd *sig_h;
	sigset_t sigmask;
	struct {
		loop_signal_fn fn;
		void *arg;
	} sig[LOOP_NSIG];
	struct {
		loop_turn_fn fn;
		void *arg;
	} hook[LOOP_HOOKS];
	int nhooks;
};

struct loop *loop_new(void)
{
	struct loop *lp = calloc(1, sizeof *lp);
	if (lp == NULL)
		return NULL;
	lp->sigfd = -1;
	sigemptyset(&lp->sigmask);
	if ((lp->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		free(lp);
		return NULL;
	}
	return lp;
}

int loop_epfd(const struct loop *lp)
{
	return lp->epfd;
}

static void free_dead(struct loop *lp)
{
	while (lp->dead) {
		struct loop_fd *h = lp->dead;
		lp->dead = h->next_dead;
		free(h);
	}
}

void loop_free(struct loop *lp)
{
	if (lp == NULL)
		return;
	while (lp->timers) {
		struct loop_timer *t = lp->timers;
		lp->timers = t->next;
		free(t);
	}
	while (lp->live)
		loop_del(lp, lp->live);
	free_dead(lp);
	if (lp->sigfd >= 0)
		close(lp->sigfd);
	close(lp->epfd);
	free(lp);
}

/* ---- descriptors ---- */

static struct loop_fd *handle(struct loop *lp, loop_fd_fn fn, void *arg, int fd)
{
	struct loop_fd *h = calloc(1, sizeof *h);
	if (h == NULL)
		return NULL;
	h->fn = fn;
	h->arg = arg;
	h->fd = fd;
	if ((h->next = lp->live) != NULL)
		h->next->prev = h;
	lp->live = h;
	return h;
}

static void unlink_live(struct loop *lp, struct loop_fd *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		lp->live = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->prev = h->next = NULL;
}

struct loop_fd *loop_add(struct loop *lp, int fd, uint32_t events, loop_fd_fn fn, void *arg)
{
	struct epoll_event ev = {.events = events};
	struct loop_fd *h = handle(lp, fn, arg, fd);

	if (h == NULL)
		return NULL;
	ev.data.ptr = h;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		unlink_live(lp, h);
		free(h);
		errno = e;
		return NULL;
	}
	return h;
}

struct loop_fd *loop_watch(struct loop *lp, loop_fd_fn fn, void *arg)
{
	return handle(lp, fn, arg, -1);
}

int loop_mod(struct loop *lp, struct loop_fd *h, uint32_t events)
{
	struct epoll_event ev = {.events = events};
	ev.data.ptr = h;
	return h->dead || h->fd < 0 ? -1 : epoll_ctl(lp->epfd, EPOLL_CTL_MOD, h->fd, &ev);
}

void loop_del(struct loop *lp, struct loop_fd *h)
{
	if (h == NULL || h->dead)
		return;
	if (h->fd >= 0)
		(void)epoll_ctl(lp->epfd, EPOLL_CTL_DEL, h->fd, NULL); /* gone already if it was closed */
	unlink_live(lp, h);
	h->dead = 1;
	h->next_dead = lp->dead;
	lp->dead = h;
}

/* ---- timers ---- */

static void timer_insert(struct loop *lp, struct loop_timer *t)
{
	struct loop_timer **pp = &lp->timers;
	while (*pp && (*pp)->at <= t->at)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
}

struct loop_timer *loop_timer(struct loop *lp, uint64_t after_ms, uint64_t every_ms, loop_timer_fn fn, void *arg)
{
	struct loop_timer *t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	t->at = mono_ms() + after_ms;
	t->every = every_ms;
	t->fn = fn;
	t->arg = arg;
	timer_insert(lp, t);
	return t;
}

void loop_timer_cancel(struct loop *lp, struct loop_timer *t)
{
	struct loop_timer **pp = &lp->timers;

	if (t == NULL)
		return;
	if (t->running) { /* freed by run_timers once its callback returns */
		t->dead = 1;
		return;
	}
	while (*pp && *pp != t)
		pp = &(*pp)->next;
	if (*pp)
		*pp = t->next;
	free(t);
}

int loop_wake(struct loop *lp, struct loop_timer **t, int after_ms, loop_timer_fn fn, void *arg)
{
	uint64_t at = mono_ms() + (uint64_t)(after_ms < 0 ? 0 : after_ms);

	if (*t && after_ms >= 0 && (*t)->at <= at)
		return 0;
	loop_timer_cancel(lp, *t);
	*t = NULL;
	if (after_ms < 0)
		return 0;
	return (*t = loop_timer(lp, (uint64_t)after_ms, 0, fn, arg)) ? 0 : -1;
}

/* Runs the timers due at now, earliest first; a timer a callback starts for now runs in the
 * next turn. */
static int run_timers(struct loop *lp, uint64_t now)
{
	struct loop_timer *due = NULL, **tail = &due;
	int n = 0;

	while (lp->timers && lp->timers->at <= now) {
		struct loop_timer *t = lp->timers;
		lp->timers = t->next;
		t->next = NULL;
		*tail = t;
		tail = &t->next;
	}
	while (due) {
		struct loop_timer *t = due;
		due = t->next;
		t->running = 1;
		t->fn(t->arg);
		t->running = 0;
		n++;
		if (t->dead || t->every == 0) {
			free(t);
			continue;
		}
		t->at += t->every;
		if (t->at <= now) /* late by more than a period: no burst to catch up */
			t->at = now + t->every;
		timer_insert(lp, t);
	}
	return n;
}

/* ---- signals ---- */

static void on_signalfd(void *arg, uint32_t events)
{
	struct loop *lp = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(lp->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
		if (si.ssi_signo < LOOP_NSIG && lp->sig[si.ssi_signo].fn)
			lp->sig[si.ssi_signo].fn(lp->sig[si.ssi_signo].arg, (int)si.ssi_signo);
}

int loop_signal(struct loop *lp, int signo, loop_signal_fn fn, void *arg)
{
	sigset_t one;
	int fd;

	if (signo <= 0 || signo >= LOOP_NSIG)
		return -1;
	sigemptyset(&one);
	sigaddset(&one, signo);
	sigaddset(&lp->sigmask, signo);
	if (pthread_sigmask(SIG_BLOCK, &one, NULL) != 0 ||
	    (fd = signalfd(lp->sigfd, &lp->sigmask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return -1;
	if (lp->sigfd < 0) {
		lp->sigfd = fd;
		if ((lp->sig_h = loop_add(lp, fd, EPOLLIN, on_signalfd, lp)) == NULL)
			return -1;
	}
	lp->sig[signo].fn = fn;
	lp->sig[signo].arg = arg;
	return 0;
}

static void on_stop_signal(void *arg, int signo)
{
	(void)signo;
	daemon_stop = 1;
	loop_stop(arg);
}

static void on_hup_signal(void *arg, int signo)
{
	(void)arg;
	(void)signo;
	daemon_hup = 1;
}

static void reload_hook(void *arg)
{
	(void)arg;
	daemon_reload_check();
}

int loop_daemon_signals(struct loop *lp)
{
	if (loop_signal(lp, SIGTERM, on_stop_signal, lp) < 0 || loop_signal(lp, SIGINT, on_stop_signal, lp) < 0 ||
	    loop_signal(lp, SIGHUP, on_hup_signal, lp) < 0)
		return -1;
	return loop_on_turn(lp, reload_hook, NULL);
}

/* ---- turns ---- */

int loop_on_turn(struct loop *lp, loop_turn_fn fn, void *arg)
{
	if (lp->nhooks == LOOP_HOOKS)
		return -1;
	lp->hook[lp->nhooks].fn = fn;
	lp->hook[lp->nhooks++].arg = arg;
	return 0;
}

int loop_once(struct loop *lp, int max_wait_ms)
{
	struct epoll_event evs[LOOP_EVENTS];
	uint64_t now = mono_ms();
	int wait = max_wait_ms < 0 ? INT_MAX : max_wait_ms, n, ran = 0;

	if (lp->timers) {
		uint64_t until = lp->timers->at > now ? lp->timers->at - now : 0;
		if (until < (uint64_t)wait)
			wait = (int)until;
	}
	n = epoll_wait(lp->epfd, evs, LOOP_EVENTS, wait == INT_MAX ? -1 : wait);
	if (n < 0 && errno != EINTR)
		log_warn_errno("epoll_wait");
	for (int i = 0; i < n; i++) {
		struct loop_fd *h = evs[i].data.ptr;
		if (h->dead)
			continue;
		h->fn(h->arg, evs[i].events);
		ran++;
	}
	ran += run_timers(lp, mono_ms());
	for (int i = 0; i < lp->nhooks; i++)
		lp->hook[i].fn(lp->hook[i].arg);
	free_dead(lp);
	return ran;
}

void loop_run(struct loop *lp)
{
	/* At most a second per wait: a flag a signal handler of another thread set (daemon.c's,
	 * where the signal was not blocked) is seen within that. */
	while (!lp->stop && !daemon_stop)
		loop_once(lp, 1000);
}

void loop_stop(struct loop *lp)
{
	lp->stop = 1;
}
