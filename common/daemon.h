/* daemon: what every pushpipe daemon does the same way at start-up and shutdown. */
#ifndef DAEMON_H
#define DAEMON_H
#include "config.h"
#include "sandbox.h"
#include <signal.h>
#include <stdint.h>

struct daemon_opts {
	const char *config_path;
	const char *instance; /* -i NAME: several senders of one platform */
	const char *app;      /* -a APP: the app a sender serves (NULL = its platform's one app) */
	int check_only;	      /* -n */
};

/* Set by SIGTERM/SIGINT; event loops stop when it is non-zero. */
extern volatile sig_atomic_t daemon_stop;
/* Set by SIGHUP; event loops call daemon_reload_check() on every turn. */
extern volatile sig_atomic_t daemon_hup;

/* The build's version ("git describe" at build time, or the fallback in the Makefile). */
const char *daemon_version(void);

/* Parses -c FILE, -n, -a APP, -i NAME, --help, --version; loads the configuration (a sender's
 * with its app's keys applied: config_app_select) and runs the checks
 * of config_check() for this daemon (exits 1 with one line on error; with -n prints
 * "configuration OK" and exits 0); takes the instance lock in state_dir (exits 1 with
 * "already running (pid N)" when another holds it); when started as root with `user` set,
 * gives state_dir and the sockets created later to that user; sets up logging and signals
 * (TERM/INT stop, HUP reload, PIPE ignored). */
void daemon_start(const char *name, int argc, char **argv, struct config *c, struct daemon_opts *o);
/* Started as root with a user (daemon_user): gives a directory the daemon created (an LMDB
 * environment) and the files in it to that user, so it stays usable after privileges drop and
 * on later starts. */
void daemon_give_dir(const struct config *c, const char *dir);
/* Drops to the configured user of this daemon's role (users.<role>, else `user`) when root,
 * and sets no_new_privs. */
void daemon_privdrop(const struct config *c);
/* The part of every daemon's sandbox policy that the shared configuration decides, under the
 * daemon's name: on or off ("sandbox"), "landlock_required", the configuration file (read again
 * on SIGHUP), and in cluster mode inet client sockets with TCP connect to the NATS servers'
 * ports and DNS, and the cluster's CA file. The daemon's main.c adds its own. */
void daemon_policy(struct sandbox_policy *p, const struct config *c);
/* "ingress" for ingress-*, "sender" for *-sender, else the name itself ("router", "statsd"). */
const char *daemon_role_class(const char *name);
/* The user this daemon runs as after daemon_privdrop(): users.<role>, else `user` ("" = none). */
const char *daemon_user(const struct config *c);

/* Called with the freshly loaded configuration on SIGHUP, after the log level has been applied;
 * returns a short description of what it re-read ("" for nothing), for the log line. */
typedef const char *(*daemon_reload_fn)(const struct config *fresh, void *arg);
void daemon_on_reload(daemon_reload_fn fn, void *arg);
/* When a SIGHUP came since the last call: re-reads the configuration file, applies the log
 * level, calls the daemon's reload hook and logs what it did; a broken file is logged and the
 * running configuration kept. Returns 1 when a reload was attempted. */
int daemon_reload_check(void);

/* Milliseconds: wall clock (for stored times) and monotonic (for timeouts). */
uint64_t now_ms(void);
uint64_t mono_ms(void);
#endif
