/* sandbox: applies a confinement policy (rlimits, Landlock, seccomp) that a daemon builds for
 * its own role and enters once start-up is over. Knows no role and no configuration section. */
#ifndef SANDBOX_H
#define SANDBOX_H
#include <stddef.h>
#include <stdint.h>

#define SANDBOX_MAX_PATHS 16
#define SANDBOX_MAX_PORTS 16

/* What one daemon may do once sandboxed. Paths are borrowed (they must live until
 * sandbox_enter returns); NULL or "" paths and port 0 are ignored when added. */
struct sandbox_policy {
	const char *name;      /* the daemon, for the log line */
	int enabled;	       /* false: sandbox_enter only logs "sandbox: off" */
	int landlock_required; /* refuse to start on a kernel without Landlock */
	long nofile;	       /* RLIMIT_NOFILE */
	int single_thread;     /* RLIMIT_NPROC 0: no new threads or processes */
	int inet_client;       /* inet (and netlink, for the resolver) sockets, with no inet bind */
	int may_listen;	       /* listen() allowed (listener roles: sockets are bound before) */
	int connect_any;       /* TCP connect to any port; else only to connect_ports (Landlock ABI 4+) */
	const char *read[SANDBOX_MAX_PATHS]; /* read-only, besides the system files */
	size_t nread;
	const char *write[SANDBOX_MAX_PATHS]; /* read-write (LMDB directories) */
	size_t nwrite;
	uint16_t connect_ports[SANDBOX_MAX_PORTS];
	size_t nports;
};

/* Exit statuses of the PUSHPIPE_SANDBOX_SELFTEST hook (tests only). */
#define SANDBOX_SELFTEST_DENIED 3  /* the action failed with EPERM or EACCES */
#define SANDBOX_SELFTEST_ALLOWED 4 /* the action succeeded */
#define SANDBOX_SELFTEST_OTHER 5   /* it failed with another error */
#define SANDBOX_SELFTEST_BAD 6	   /* unknown action */

/* An enabled policy named name that allows nothing beyond the shared allowlist: Unix sockets
 * only, no listen, no TCP, 256 open files. */
void sandbox_policy_init(struct sandbox_policy *p, const char *name);
/* Add a read-only path, a read-write path, a TCP port to connect to. Exit when a list is full
 * (a programming error). */
void sandbox_allow_read(struct sandbox_policy *p, const char *path);
void sandbox_allow_write(struct sandbox_policy *p, const char *path);
void sandbox_allow_connect(struct sandbox_policy *p, uint16_t port);
/* The port of "host:port" ("[v6]:port"), 0 when there is none. */
uint16_t sandbox_port_of(const char *hostport);

/* Call once start-up is over: configuration read, listeners open, secrets loaded, privileges
 * dropped (daemon_privdrop), and before any thread is started (Landlock binds the calling
 * thread and the threads it creates later). With p->enabled: exits when other threads already
 * run (whether or not the kernel has Landlock); lowers rlimits, applies the Landlock rules (when the kernel has Landlock) and a
 * seccomp allowlist; exits with one line when that fails, or when landlock_required is set and
 * the kernel has no Landlock. Disabled, it logs that and does nothing. Either way it then
 * gives the heap's free pages back to the kernel (start-up is over), and when
 * PUSHPIPE_SANDBOX_SELFTEST is set runs that action and exits with one of the statuses above. */
void sandbox_enter(const struct sandbox_policy *p);
/* Tests only (common/sandbox_selftest.c): runs one action and exits with its outcome. */
void sandbox_selftest(const char *action);
/* The Landlock ABI version of the running kernel, 0 when absent or disabled. */
int sandbox_landlock_abi(void);
#endif
