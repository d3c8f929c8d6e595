/*
 * sandbox: applies the confinement policy a daemon built for its own role (struct
 * sandbox_policy, design: "Processes") in three layers, entered once start-up is over
 * (configuration read, listeners open, secrets loaded, privileges dropped):
 *   rlimits  - no core files, the policy's file descriptor cap, and no new processes or
 *              threads when the policy says single-threaded;
 *   Landlock - read access to the policy's files and to system certificates and libraries,
 *              read-write access to its directories; no other file, and (ABI 4+) no TCP bind
 *              and no TCP connect beyond the policy's ports (unless it allows any). Landlock
 *              binds the calling thread and what it creates later, so no other thread may run
 *              yet: daemons start their threads (HTTP workers, libnats) after this;
 *   seccomp  - an allowlist (libseccomp) shared by all daemons, plus the policy's socket rules:
 *              inet sockets only for inet clients, which get no listen() and no inet bind();
 *              signals only to the daemon itself (kill, tkill, tgkill, rt_sigqueueinfo,
 *              rt_tgsigqueueinfo compared with its pid; no pidfd_send_signal). Denied calls
 *              fail with EPERM instead of killing the process, so a missing entry shows up as an
 *              error line in the log. Landlock ABI 6+ adds signal scoping (no signal leaves the
 *              daemon's domain).
 * Without Landlock in the kernel the file rules are skipped with a log line, unless the policy
 * says landlock_required (then start-up stops there); seccomp and rlimits still apply.
 * Start-up ends here, so this is also where the heap pages it left free (configuration parse,
 * filter build, library set-up) go back to the kernel: glibc returns only the heap's top by
 * itself. Knows no role: each daemon's main.c builds its policy. Holds nothing after it returns.
 */
#include "sandbox.h"
#include "log.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/netlink.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZER_BUILD 1
#endif
#endif

/* Landlock definitions newer than some kernel headers (values from the kernel ABI). */
#define LL_FS_TRUNCATE (1ULL << 14)
#define LL_FS_IOCTL_DEV (1ULL << 15)
#define LL_NET_BIND_TCP (1ULL << 0)
#define LL_NET_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0)
#ifndef LANDLOCK_SCOPE_SIGNAL /* ABI 6 (Linux 6.12); Debian 12's headers lack it */
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif
#define LL_RULE_NET_PORT 2

struct ll_ruleset_attr {
	uint64_t handled_access_fs, handled_access_net, scoped;
};
struct ll_net_port_attr {
	uint64_t allowed_access, port;
};

#define FS_FILE_RIGHTS                                                                             \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
	 LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)
#define R_ONLY (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define R_W (R_ONLY | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG | \
	     LANDLOCK_ACCESS_FS_REMOVE_FILE | LL_FS_TRUNCATE)

/* Read-only everywhere: what glibc and OpenSSL open after start-up. */
static const char *const system_reads[] = {
	"/etc/ssl", "/etc/pki", "/etc/ca-certificates", "/usr/share/ca-certificates",
	"/usr/local/share/ca-certificates", "/usr/lib/ssl", "/etc/resolv.conf", "/etc/hosts",
	"/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf", "/etc/services", "/etc/protocols",
	"/etc/localtime", "/usr/share/zoneinfo", "/etc/ld.so.cache", "/lib", "/lib64", "/usr/lib",
	"/usr/lib64", "/usr/local/lib", "/sys/devices/system/cpu", "/proc/sys/crypto",
	"/proc/self", "/dev/urandom", "/dev/random",
};

/* ---- the policy ---- */

void sandbox_policy_init(struct sandbox_policy *p, const char *name)
{
	memset(p, 0, sizeof *p);
	p->name = name;
	p->enabled = 1;
	p->nofile = 256;
}

static void add_path(const char **v, size_t *n, const char *path, const char *what)
{
	if (path == NULL || path[0] == '\0')
		return;
	if (*n == SANDBOX_MAX_PATHS)
		fatal("sandbox: too many %s paths (%s)", what, path);
	v[(*n)++] = path;
}

void sandbox_allow_read(struct sandbox_policy *p, const char *path)
{
	add_path(p->read, &p->nread, path, "read-only");
}

void sandbox_allow_write(struct sandbox_policy *p, const char *path)
{
	add_path(p->write, &p->nwrite, path, "read-write");
}

void sandbox_allow_connect(struct sandbox_policy *p, uint16_t port)
{
	if (port == 0)
		return;
	for (size_t i = 0; i < p->nports; i++)
		if (p->connect_ports[i] == port)
			return;
	if (p->nports == SANDBOX_MAX_PORTS)
		fatal("sandbox: too many TCP ports to connect to");
	p->connect_ports[p->nports++] = port;
}

uint16_t sandbox_port_of(const char *hostport)
{
	const char *p = hostport ? strrchr(hostport, ':') : NULL;
	long v = p ? strtol(p + 1, NULL, 10) : 0;
	return v > 0 && v < 65536 ? (uint16_t)v : 0;
}

int sandbox_landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return v < 0 ? 0 : (int)v;
}

/* ---- rlimits ---- */

static void set_limit(int res, rlim_t want, const char *what)
{
	struct rlimit rl;
	if (getrlimit(res, &rl) < 0)
		fatal_errno("sandbox: getrlimit %s", what);
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
		want = rl.rlim_max; /* only ever lower the hard limit */
	rl.rlim_cur = rl.rlim_max = want;
	if (setrlimit(res, &rl) < 0)
		fatal_errno("sandbox: setrlimit %s", what);
}

static void apply_rlimits(const struct sandbox_policy *p)
{
	set_limit(RLIMIT_CORE, 0, "core");
	set_limit(RLIMIT_NOFILE, (rlim_t)p->nofile, "nofile");
#ifndef SANITIZER_BUILD /* LeakSanitizer starts a tracer task at exit */
	if (p->single_thread)
		set_limit(RLIMIT_NPROC, 0, "nproc");
#endif
}

/* ---- Landlock ---- */

/* Exits when this is not the process's only thread (whatever the kernel, so a daemon that
 * starts a thread too early is caught everywhere). /proc unreadable: nothing to tell. */
static void only_thread(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
#ifndef __SANITIZE_THREAD__ /* ThreadSanitizer runs a helper thread of its own */
	if (n > 1)
		fatal("sandbox: %d threads already run; Landlock would bind only this one (start threads "
		      "after sandbox_enter)",
		      n);
#endif
}

static int ll_add_path(int rfd, const char *path, uint64_t rights, uint64_t handled)
{
	struct landlock_path_beneath_attr pb;
	struct stat st;
	int fd;

	if ((fd = open(path, O_PATH | O_CLOEXEC)) < 0) {
		log_debug("sandbox: %s: %s (no rule)", path, strerror(errno));
		return 0;
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		rights &= FS_FILE_RIGHTS;
	memset(&pb, 0, sizeof pb);
	pb.allowed_access = rights & handled;
	pb.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0) {
		int e = errno;
		close(fd);
		log_error("sandbox: Landlock rule for %s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

static int ll_add_port(int rfd, uint64_t access, uint16_t port)
{
	struct ll_net_port_attr np = {.allowed_access = access, .port = port};
	return (int)syscall(SYS_landlock_add_rule, rfd, LL_RULE_NET_PORT, &np, 0);
}

/* Builds the policy's ruleset; returns its fd, or -1 (errno). */
static int ll_ruleset(const struct sandbox_policy *p, int abi, char *what, size_t wlen)
{
	struct ll_ruleset_attr a;
	size_t asize = 8;
	uint64_t fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */
	int rfd, rc = 0;

	memset(&a, 0, sizeof a);
	if (abi >= 2)
		fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		fs |= LL_FS_TRUNCATE;
	a.handled_access_fs = fs;
	if (abi >= 4) {
		a.handled_access_net = LL_NET_BIND_TCP | (p->connect_any ? 0 : LL_NET_CONNECT_TCP);
		asize = 16;
	}
	if (abi >= 6) { /* probed at run time: the scoped field exists from ABI 6 on */
		a.scoped = LL_SCOPE_ABSTRACT_UNIX | LANDLOCK_SCOPE_SIGNAL;
		asize = 24;
	}
	snprintf(what, wlen, "Landlock ABI %d: files%s%s", abi, abi >= 4 ? ", tcp" : "",
		 abi >= 6 ? ", abstract unix sockets, signals" : "");
	if ((rfd = (int)syscall(SYS_landlock_create_ruleset, &a, asize, 0)) < 0)
		return -1;
	for (size_t i = 0; i < sizeof system_reads / sizeof system_reads[0]; i++)
		rc |= ll_add_path(rfd, system_reads[i], R_ONLY, fs);
	rc |= ll_add_path(rfd, "/dev/null", LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE, fs);
	for (size_t i = 0; i < p->nread; i++)
		rc |= ll_add_path(rfd, p->read[i], R_ONLY, fs);
	for (size_t i = 0; i < p->nwrite; i++)
		rc |= ll_add_path(rfd, p->write[i], R_W, fs);
	for (size_t i = 0; abi >= 4 && (a.handled_access_net & LL_NET_CONNECT_TCP) && i < p->nports; i++)
		rc |= ll_add_port(rfd, LL_NET_CONNECT_TCP, p->connect_ports[i]);
	if (rc != 0) {
		int e = errno;
		close(rfd);
		errno = e;
		return -1;
	}
	return rfd;
}

static void apply_landlock(const struct sandbox_policy *p, char *what, size_t wlen)
{
	int abi = sandbox_landlock_abi(), rfd;

	if (abi <= 0) {
		const char *why_not = errno == EOPNOTSUPP ? "disabled at boot" : "kernel without it";
		if (p->landlock_required)
			fatal("sandbox: Landlock is required (configuration key \"landlock_required\") but not "
			      "available: %s",
			      why_not);
		snprintf(what, wlen, "no Landlock (%s): file rules not applied", why_not);
		log_warn("sandbox: Landlock not available in this kernel; file and TCP rules not applied");
		return;
	}
	if ((rfd = ll_ruleset(p, abi, what, wlen)) < 0)
		fatal_errno("sandbox: Landlock ruleset");
	if (syscall(SYS_landlock_restrict_self, rfd, 0) < 0)
		fatal_errno("sandbox: landlock_restrict_self");
	close(rfd);
}

/* ---- seccomp ---- */

/* Allowed for every role: what glibc, pthreads, LMDB, OpenSSL and nghttp2 call in a
 * running daemon. Names unknown on this architecture are skipped. */
static const char *const base_calls[] = {
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
	"pwritev2", "open", "openat", "close", "close_range", "fstat", "stat", "lstat", "newfstatat",
	"statx", "fstatfs", "statfs", "lseek", "mmap", "munmap", "mprotect", "mremap", "madvise",
	"mincore", "brk", "msync", "fsync", "fdatasync", "ftruncate", "fallocate", "fadvise64",
	"fcntl", "flock", "dup", "dup2", "dup3", "pipe", "pipe2", "eventfd", "eventfd2",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
	"poll", "ppoll", "select", "pselect6", "access", "faccessat", "faccessat2", "readlink",
	"readlinkat", "getdents", "getdents64", "getcwd", "unlink", "unlinkat", "rename", "renameat",
	"renameat2", "mkdir", "mkdirat", "umask", "futex", "futex_waitv", "set_robust_list",
	"get_robust_list", "rseq", "sched_yield", "sched_getaffinity", "sched_getparam",
	"sched_getscheduler", "sched_get_priority_min", "sched_get_priority_max", "nanosleep",
	"clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time", "getpid",
	"gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid",
	"getresgid", "uname", "sysinfo", "getrandom", "prlimit64", "getrlimit", "getrusage",
	"times", "getpriority", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait",
	"rt_sigpending", "rt_sigsuspend", "sigaltstack", "exit", "exit_group",
	"restart_syscall", "membarrier", "arch_prctl", "set_tid_address", "prctl",
	"timerfd_create", "timerfd_settime", "timerfd_gettime", "alarm", "setitimer", "getitimer",
	"sendfile", "connect", "accept", "accept4", "sendto", "recvfrom", "sendmsg", "recvmsg",
	"sendmmsg", "recvmmsg", "shutdown", "getsockopt", "setsockopt", "getsockname",
	"getpeername",
#ifdef SANITIZER_BUILD /* LeakSanitizer stops the world with a ptrace-ing task at exit */
	"ptrace", "wait4", "waitid", "process_vm_readv", "sched_setaffinity",
#endif
};

static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a)
{
	struct scmp_arg_cmp c = {.arg = arg, .op = op, .datum_a = a, .datum_b = 0};
	if (op == SCMP_CMP_MASKED_EQ) /* mask, then value */
		c.datum_b = a;
	return c;
}

static void rule(scmp_filter_ctx ctx, const char *name, unsigned n, const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name), rc;
	if (nr == __NR_SCMP_ERROR)
		return;
	if ((rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, cmp)) < 0)
		fatal("sandbox: seccomp rule for %s: %s", name, strerror(-rc));
}

/* Signals: to this process only (raise, abort, pthread_kill all name it). The pid is compared whole, so no value the kernel would read as another process
 * (0, -1, a negative group) passes. pidfd_send_signal is not allowed at all. */
static const char *const signal_calls[] = {"kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"};

static void apply_seccomp(const struct sandbox_policy *p)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	static const unsigned long ioctls[] = {FIONREAD, FIONBIO, FIOCLEX, FIONCLEX, TCGETS, TIOCGWINSZ};
	struct scmp_arg_cmp cmp[1];
	int rc;

	if (ctx == NULL)
		fatal("sandbox: seccomp_init failed");
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) < 0)
		fatal("sandbox: this libseccomp or kernel cannot filter every thread");
	for (size_t i = 0; i < sizeof base_calls / sizeof base_calls[0]; i++)
		rule(ctx, base_calls[i], 0, NULL);
	for (size_t i = 0; i < sizeof ioctls / sizeof ioctls[0]; i++) {
		cmp[0] = arg_cmp(1, SCMP_CMP_EQ, ioctls[i]);
		rule(ctx, "ioctl", 1, cmp);
	}
	cmp[0] = arg_cmp(0, SCMP_CMP_EQ, (scmp_datum_t)getpid());
	for (size_t i = 0; i < sizeof signal_calls / sizeof signal_calls[0]; i++)
		rule(ctx, signal_calls[i], 1, cmp);
	/* Threads, never processes. clone3 hides its flags from seccomp: ENOSYS makes glibc
	 * fall back to clone, whose flags can be checked. */
#ifndef SANITIZER_BUILD
	cmp[0] = arg_cmp(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD);
#else /* LeakSanitizer's tracer shares memory but is not a thread; fork still fails */
	cmp[0] = arg_cmp(0, SCMP_CMP_MASKED_EQ, CLONE_VM);
#endif
	rule(ctx, "clone", 1, cmp);
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0)
		fatal("sandbox: seccomp rule for clone3: %s", strerror(-rc));

	/* Sockets: Unix everywhere; inet (and netlink, for glibc's resolver) only for inet
	 * clients, with no listen() and no inet bind(): bind() is allowed there only
	 * with a netlink-sized address (glibc binds its resolver's netlink socket), which the
	 * kernel refuses for an inet socket (at least 16 bytes for AF_INET, 24 for AF_INET6). */
	cmp[0] = arg_cmp(0, SCMP_CMP_EQ, AF_UNIX);
	rule(ctx, "socket", 1, cmp);
	rule(ctx, "socketpair", 1, cmp);
	if (p->inet_client) {
		static const int fams[] = {AF_INET, AF_INET6, AF_NETLINK};
		for (size_t i = 0; i < 3; i++) {
			cmp[0] = arg_cmp(0, SCMP_CMP_EQ, (scmp_datum_t)fams[i]);
			rule(ctx, "socket", 1, cmp);
		}
		_Static_assert(sizeof(struct sockaddr_nl) < sizeof(struct sockaddr_in), "netlink address too long");
		cmp[0] = arg_cmp(2, SCMP_CMP_EQ, sizeof(struct sockaddr_nl));
		rule(ctx, "bind", 1, cmp);
	} else {
		rule(ctx, "bind", 0, NULL);
	}
	if (p->may_listen)
		rule(ctx, "listen", 0, NULL);

	if ((rc = seccomp_load(ctx)) < 0)
		fatal("sandbox: loading the seccomp filter: %s", strerror(-rc));
	seccomp_release(ctx);
}

void sandbox_enter(const struct sandbox_policy *p)
{
	const char *st = getenv("PUSHPIPE_SANDBOX_SELFTEST");
	char what[160];

	if (!p->enabled) {
		log_warn("sandbox: off (configuration key \"sandbox\" is false)");
	} else {
		only_thread();
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) /* normally set by daemon_privdrop */
			fatal_errno("no_new_privs");
		apply_rlimits(p);
		apply_landlock(p, what, sizeof what);
		apply_seccomp(p);
		log_info("sandbox: %s: seccomp allowlist, %s, open files <= %ld, no core files", p->name, what,
			 p->nofile);
	}
	malloc_trim(0);
	if (st != NULL && st[0] != '\0')
		sandbox_selftest(st);
}
