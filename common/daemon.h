/* daemon: what every pushpipe daemon does the same way at start-up and shutdown. */
#ifndef DAEMON_H
#define DAEMON_H
#include "config.h"
#include <signal.h>
#include <stdint.h>

struct daemon_opts {
	const char *config_path;
	const char *instance; /* -i NAME: several senders of one platform */
	int check_only;	      /* -n */
};

/* Set by SIGTERM/SIGINT; event loops stop when it is non-zero. */
extern volatile sig_atomic_t daemon_stop;

/* Parses -c FILE, -n, -i NAME; loads and validates the configuration (exits 1 with one
 * line on error; with -n prints "configuration OK" and exits 0); sets up logging and
 * signals (TERM/INT stop, PIPE ignored). */
void daemon_start(const char *name, int argc, char **argv, struct config *c, struct daemon_opts *o);
/* Drops to the configured user of this daemon's role (users.<role>, else `user`) when root,
 * and sets no_new_privs. */
void daemon_privdrop(const struct config *c);
/* "ingress" for ingress-*, "sender" for *-sender, else the name itself ("router", "statsd"). */
const char *daemon_role_class(const char *name);
/* Milliseconds: wall clock (for stored times) and monotonic (for timeouts). */
uint64_t now_ms(void);
uint64_t mono_ms(void);
#endif
