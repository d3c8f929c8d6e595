/* sandbox: per-role confinement (rlimits, Landlock, seccomp) entered once a daemon is ready. */
#ifndef SANDBOX_H
#define SANDBOX_H
#include "config.h"

enum sandbox_role {
	SANDBOX_INGRESS_ONION,
	SANDBOX_INGRESS_UWPX,
	SANDBOX_INGRESS_XMPP,
	SANDBOX_ROUTER,
	SANDBOX_APNS_SENDER,
	SANDBOX_FCM_SENDER,
	SANDBOX_WNS_SENDER,
	SANDBOX_STATSD,
	SANDBOX_HMS_SENDER,
};

/* Exit statuses of the PUSHPIPE_SANDBOX_SELFTEST hook (tests only). */
#define SANDBOX_SELFTEST_DENIED 3  /* the action failed with EPERM or EACCES */
#define SANDBOX_SELFTEST_ALLOWED 4 /* the action succeeded */
#define SANDBOX_SELFTEST_OTHER 5   /* it failed with another error */
#define SANDBOX_SELFTEST_BAD 6	   /* unknown action */

/* Call after the configuration is loaded, every listening socket is open and privileges
 * are dropped (daemon_privdrop). With `sandbox` true: lowers rlimits, applies Landlock
 * rules to every thread (when the kernel has Landlock) and a seccomp allowlist to every
 * thread; exits with one line when that fails, or when `landlock_required` is set and the
 * kernel has no Landlock. With `sandbox` false it logs that and does
 * nothing. Either way it then gives the heap's free pages back to the kernel (start-up is
 * over), and when PUSHPIPE_SANDBOX_SELFTEST is set runs that action and exits with one of the
 * statuses above. For statsd it first exits, sandbox or not, when PUSHPIPE_TEST_CLOCK_FILE
 * (tests only) names a file outside state_dir. */
void sandbox_enter(const struct config *c, enum sandbox_role role);
/* The Landlock ABI version of the running kernel, 0 when absent or disabled. */
int sandbox_landlock_abi(void);
#endif
