/*
 * loop: the one event loop of every daemon (epoll). It calls back, on the loop's thread:
 * a function per file descriptor when it is ready (with its own user data), timers on the
 * monotonic clock (once or every so often), signals (read from a signalfd, so a handler is an
 * ordinary function), and hooks at the end of every turn (e.g. to send what the turn queued).
 * A daemon's main.c sets up, registers its peers, enters its sandbox, and dispatches:
 * loop_run() until loop_stop(). In the spirit of Redis' ae and OpenBSD's event_dispatch.
 *
 * Code that registers descriptors by itself (router_link.c takes an epoll set and a tag) is
 * given loop_epfd() and a watcher (loop_watch()) as the tag: epoll's data.ptr must always be
 * a struct loop_fd.
 */
#ifndef LOOP_H
#define LOOP_H
#include <stdint.h>

struct loop;
struct loop_fd;
struct loop_timer;

typedef void (*loop_fd_fn)(void *arg, uint32_t events);
typedef void (*loop_timer_fn)(void *arg);
typedef void (*loop_signal_fn)(void *arg, int signo);
typedef void (*loop_turn_fn)(void *arg);

/* NULL on failure (errno set). */
struct loop *loop_new(void);
/* Closes the loop's own descriptors and frees every handle still registered (not the fds
 * registered with loop_add). */
void loop_free(struct loop *lp);
/* The epoll set, for code that registers its own descriptors with a watcher as data.ptr. */
int loop_epfd(const struct loop *lp);

/* Calls fn(arg, events) when fd is ready for events (EPOLLIN, EPOLLOUT, EPOLLET, ...).
 * NULL on failure (errno set). */
struct loop_fd *loop_add(struct loop *lp, int fd, uint32_t events, loop_fd_fn fn, void *arg);
/* Changes what fd is watched for; 0 or -1. */
int loop_mod(struct loop *lp, struct loop_fd *h, uint32_t events);
/* Stops watching (the caller closes the fd, before or after); safe inside any callback, also
 * for a handle whose event is pending in the same turn (it is then not called). */
void loop_del(struct loop *lp, struct loop_fd *h);
/* A handle without a descriptor of its own: whoever puts it in loop_epfd() as data.ptr gets
 * fn(arg, events) for those descriptors. Freed by loop_del(). */
struct loop_fd *loop_watch(struct loop *lp, loop_fd_fn fn, void *arg);

/* fn(arg) after_ms from now, then every every_ms (0: once; a one-shot timer is freed after it
 * ran). Timers due in one turn run in deadline order. NULL on out of memory. */
struct loop_timer *loop_timer(struct loop *lp, uint64_t after_ms, uint64_t every_ms, loop_timer_fn fn, void *arg);
/* Cancels (and frees) a timer that has not run out; safe inside any callback. */
void loop_timer_cancel(struct loop *lp, struct loop_timer *t);
/* For code that works out again on every turn when it next needs to run (a client's
 * deadlines, libcurl's timer): keeps *t, a one-shot timer calling fn(arg), due after_ms from
 * now (-1: none). A timer due no later is left alone (waking early costs one turn); a later
 * one is cancelled and started anew. fn must set *t to NULL (the timer is freed once it ran).
 * 0, or -1 on out of memory. */
int loop_wake(struct loop *lp, struct loop_timer **t, int after_ms, loop_timer_fn fn, void *arg);

/* fn(arg, signo) when signo arrives: the signal is blocked in the calling thread (threads
 * created later inherit that) and read from the loop's signalfd. 0, or -1. */
int loop_signal(struct loop *lp, int signo, loop_signal_fn fn, void *arg);
/* What every daemon wants: SIGTERM and SIGINT set daemon_stop and stop the loop, SIGHUP sets
 * daemon_hup; daemon_reload_check() runs at the end of every turn. 0, or -1. */
int loop_daemon_signals(struct loop *lp);

/* fn(arg) at the end of every turn, after the turn's callbacks (at most 8 hooks). 0, or -1. */
int loop_on_turn(struct loop *lp, loop_turn_fn fn, void *arg);

/* One turn: waits at most max_wait_ms (-1: until the next timer or event), runs what is ready
 * and due, then the turn hooks. Returns the number of callbacks run. */
int loop_once(struct loop *lp, int max_wait_ms);
/* Turns until loop_stop() (or daemon_stop, set by a signal handler of daemon.c). */
void loop_run(struct loop *lp);
void loop_stop(struct loop *lp);
#endif
