/*
 * test_sandbox: common/sandbox.c applying a policy, and the parts of it the configuration and
 * statsd decide. Each case enters the sandbox in a child process, as a daemon would, and
 * reports by its exit status and its log (stderr):
 *   landlock_required - with Landlock hidden from the child (a seccomp filter answering ENOSYS
 *                       to landlock_create_ruleset, as a kernel without it does) start-up
 *                       stops with one line; without the flag it goes on with a warning; with
 *                       Landlock present it starts; the key without "sandbox" is a config error,
 *                       and daemon_policy carries both keys and the configuration file;
 *   files             - a read path is readable and not writable, a write path takes new
 *                       files, anything else is refused, from the main thread and from a
 *                       thread started afterwards (it inherits the rules);
 *   threads           - a thread already running at sandbox_enter stops start-up (Landlock
 *                       would bind only the calling thread);
 *   sockets, signals  - inet sockets only for inet clients, which may not bind an inet address;
 *                       listen only when allowed; TCP connect only to the policy's ports unless
 *                       any is allowed (Landlock ABI 4+); signals to this process only;
 *   rlimits           - the open file cap;
 *   test clock file   - statsd_clock_dir refuses PUSHPIPE_TEST_CLOCK_FILE outside state_dir
 *                       (directly, through "..", through a symbolic link); inside it, statsd's
 *                       policy reads the clock and (with Landlock) not a file beside state_dir.
 */
#include "../../statsd/clock.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "sandbox.h"
#include "testlib.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/pushpipe-test-sandbox-XXXXXX";
static char logbuf[8192];
static char p_conf[512], p_secret[512], p_other[512], p_db[512], p_clock[512];
static uint16_t lport; /* a loopback TCP listener of the parent's */
static int landlock;   /* the kernel's Landlock ABI */
static int unix_fd;    /* a child's Unix socket, bound before the sandbox as a daemon's listener is */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(1);
	}
}

/* Loads a configuration with these top-level booleans; 0 or -1 with err. */
static int load(struct config *c, int sandbox, int required, char *err, size_t errlen)
{
	char text[2048];
	snprintf(text, sizeof text,
		 "{\"state_dir\": \"%s/run\", \"sandbox\": %s, \"landlock_required\": %s,"
		 " \"statsd\": {\"db_path\": \"%s/run/stats\"}, \"apns_sender\": {\"key_file\": \"%s/apns.p8\"}}\n",
		 dir, sandbox ? "true" : "false", required ? "true" : "false", dir, dir);
	write_file(p_conf, text);
	return config_load(c, p_conf, err, errlen);
}

/* 0 when path opens with flags, else errno. */
static int try_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* What a child checks once inside: its exit status (0 = as expected). */
typedef int (*after_fn)(const struct sandbox_policy *p);

/* Runs sandbox_enter(p) in a child (Landlock hidden when hide_landlock; `before` run first
 * when set), then after (exit 0 without it); returns the child's exit status (-1 when it was
 * killed), its stderr in logbuf. */
static int child(const struct sandbox_policy *p, int hide_landlock, void (*before)(void), after_fn after)
{
	char logpath[512];
	int status, fd;
	pid_t pid;
	ssize_t n;

	snprintf(logpath, sizeof logpath, "%s/child.log", dir);
	fflush(NULL);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		if ((fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 || dup2(fd, 2) < 0)
			_exit(20);
		if (hide_landlock) {
			scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
			if (ctx == NULL || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(landlock_create_ruleset), 0) < 0 ||
			    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) < 0 || seccomp_load(ctx) < 0)
				_exit(21);
			seccomp_release(ctx);
		}
		if ((unix_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
		    bind(unix_fd, (struct sockaddr *)&(struct sockaddr_un){.sun_family = AF_UNIX}, sizeof(sa_family_t)) < 0)
			_exit(23); /* autobind: an abstract address of the kernel's choosing */
		if (before)
			before();
		sandbox_enter(p);
		_exit(after ? after(p) : 0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	logbuf[0] = '\0';
	if ((fd = open(logpath, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, logbuf, sizeof logbuf - 1);
		logbuf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A policy as tests use it: the secret readable, the db directory writable. */
static void test_policy(struct sandbox_policy *p)
{
	sandbox_policy_init(p, "test");
	sandbox_allow_read(p, p_secret);
	sandbox_allow_write(p, p_db);
}

static void landlock_required(void)
{
	struct sandbox_policy p;
	struct config c;
	char err[512];
	int rc;

	memset(&c, 0, sizeof c);
	CHECK(load(&c, 0, 1, err, sizeof err) < 0 && strstr(err, "landlock_required") != NULL,
	      "landlock_required without sandbox: configuration error (%s)", err);
	config_free(&c);
	CHECK(load(&c, 1, 1, err, sizeof err) == 0, "landlock_required: loads (%s)", err);
	daemon_policy(&p, &c);
	CHECK(p.enabled && p.landlock_required && p.nread == 1 && strcmp(p.read[0], p_conf) == 0 && !p.inet_client,
	      "daemon_policy: sandbox on, Landlock required, the configuration file readable, no inet");
	rc = child(&p, 1, NULL, NULL);
	CHECK(rc == 1 && strstr(logbuf, "Landlock is required") != NULL,
	      "landlock_required, kernel without Landlock: refuses to start (exit %d, log: %s)", rc, logbuf);
	if (landlock > 0) {
		rc = child(&p, 0, NULL, NULL);
		CHECK(rc == 0 && strstr(logbuf, "Landlock ABI") != NULL,
		      "landlock_required, kernel with Landlock: starts (exit %d, log: %s)", rc, logbuf);
	} else {
		printf("# this kernel has no Landlock: the start with it is not run\n");
	}
	config_free(&c);

	CHECK(load(&c, 1, 0, err, sizeof err) == 0, "no landlock_required: loads (%s)", err);
	daemon_policy(&p, &c);
	CHECK(p.enabled && !p.landlock_required, "daemon_policy: sandbox on, Landlock not required");
	rc = child(&p, 1, NULL, NULL);
	CHECK(rc == 0 && strstr(logbuf, "Landlock not available") != NULL,
	      "no landlock_required, kernel without Landlock: starts with a warning (exit %d, log: %s)", rc, logbuf);
	config_free(&c);

	CHECK(load(&c, 0, 0, err, sizeof err) == 0, "sandbox off: loads (%s)", err);
	daemon_policy(&p, &c);
	rc = child(&p, 0, NULL, NULL);
	CHECK(!p.enabled && rc == 0 && strstr(logbuf, "sandbox: off") != NULL,
	      "sandbox off: logs it and starts (exit %d, log: %s)", rc, logbuf);
	config_free(&c);
}

/* Exit 0 when the policy's files are as it says: 10 + the failed step otherwise. */
static int check_files(void)
{
	char made[600];
	snprintf(made, sizeof made, "%s/new", p_db);
	if (try_open(p_secret, O_RDONLY) != 0)
		return 10;
	if (try_open(p_secret, O_WRONLY) != EACCES)
		return 11;
	if (try_open(made, O_WRONLY | O_CREAT) != 0)
		return 12;
	if (try_open(p_other, O_RDONLY) != EACCES)
		return 13;
	if (try_open("/etc/passwd", O_RDONLY) != EACCES)
		return 14;
	return 0;
}

static void *files_thread(void *arg)
{
	*(int *)arg = check_files();
	return NULL;
}

static int after_files(const struct sandbox_policy *p)
{
	pthread_t t;
	int rc = check_files(), trc = 99;
	(void)p;
	if (rc != 0)
		return rc;
	if (pthread_create(&t, NULL, files_thread, &trc) != 0)
		return 30;
	pthread_join(t, NULL);
	return trc == 0 ? 0 : 20 + trc;
}

static void *sleeper(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

static void start_sleeper(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, sleeper, NULL) != 0)
		_exit(22);
}

static void files_and_threads(void)
{
	struct sandbox_policy p;
	int rc;

	test_policy(&p);
	for (int hide = 0; hide < 2; hide++) {
		rc = child(&p, hide, start_sleeper, NULL);
		CHECK(rc == 1 && strstr(logbuf, "threads already run") != NULL,
		      "a thread started before sandbox_enter stops start-up, %s Landlock (exit %d, log: %s)",
		      hide ? "without" : "with", rc, logbuf);
	}
	p.enabled = 0;
	rc = child(&p, 0, start_sleeper, after_files);
	CHECK(rc == 11, "sandbox off, a thread running: starts, and the read-only file opens for writing (exit %d)", rc);
	if (landlock <= 0) {
		printf("# this kernel has no Landlock: file rules are not checked\n");
		return;
	}
	p.enabled = 1;
	rc = child(&p, 0, NULL, after_files);
	CHECK(rc == 0, "files: the read path reads only, the write path takes new files, nothing else opens; "
		       "the same in a thread started afterwards (exit %d: 1x main thread, 3x thread; log: %s)", rc, logbuf);
}

/* 0 when the call failed with EPERM or EACCES, 1 when it succeeded, 2 otherwise. */
static int outcome(int rc)
{
	return rc >= 0 ? 1 : errno == EPERM || errno == EACCES ? 0 : 2;
}

static int connect_to(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;
	if (fd < 0)
		return -1;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	close(fd);
	return rc;
}

/* A connect to the parent's listener: 0 denied, 1 allowed. */
static int after_connect(const struct sandbox_policy *p)
{
	(void)p;
	return outcome(connect_to(lport));
}

/* Socket and signal rules: a bit per step (1 allowed, 0 denied) packed into the status:
 * inet socket, inet bind, listen on the Unix socket bound before, kill(self), kill(parent). */
static int after_sockets(const struct sandbox_policy *p)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int inet = outcome(fd), bind_ok = fd >= 0 ? outcome(bind(fd, (struct sockaddr *)&sa, sizeof sa)) : 0;
	int lis = outcome(listen(unix_fd, 1)), self = outcome(kill(getpid(), 0)), parent = outcome(kill(getppid(), 0));
	(void)p;
	return inet * 16 + bind_ok * 8 + lis * 4 + self * 2 + parent;
}

static void sockets_and_signals(void)
{
	struct sandbox_policy p;
	int rc;

	sandbox_policy_init(&p, "test");
	rc = child(&p, 0, NULL, after_sockets);
	CHECK(rc == 2, "default policy: no inet socket, no listen, signals to itself only (status %d, want 2)", rc);
	p.may_listen = 1;
	rc = child(&p, 0, NULL, after_sockets);
	CHECK(rc == 6, "may_listen: listen allowed (status %d, want 6)", rc);
	sandbox_policy_init(&p, "test");
	p.inet_client = 1;
	rc = child(&p, 0, NULL, after_sockets);
	CHECK(rc == 18, "inet client: inet sockets, no inet bind, no listen (status %d, want 18)", rc);
	if (landlock < 4) {
		printf("# Landlock ABI %d: TCP connect rules are not checked\n", landlock);
		return;
	}
	rc = child(&p, 0, NULL, after_connect);
	CHECK(rc == 0, "inet client without ports: TCP connect denied (%d)", rc);
	sandbox_allow_connect(&p, lport);
	rc = child(&p, 0, NULL, after_connect);
	CHECK(rc == 1, "inet client with the listener's port: TCP connect allowed (%d)", rc);
	sandbox_policy_init(&p, "test");
	p.inet_client = p.connect_any = 1;
	rc = child(&p, 0, NULL, after_connect);
	CHECK(rc == 1, "inet client, any port: TCP connect allowed (%d)", rc);
}

static int after_rlimits(const struct sandbox_policy *p)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || (long)rl.rlim_max != p->nofile || (long)rl.rlim_cur != p->nofile)
		return 10;
	if (getrlimit(RLIMIT_CORE, &rl) < 0 || rl.rlim_max != 0)
		return 11;
	return 0;
}

static void rlimits(void)
{
	struct sandbox_policy p;
	int rc;
	sandbox_policy_init(&p, "test");
	p.nofile = 300;
	rc = child(&p, 0, NULL, after_rlimits);
	CHECK(rc == 0 && strstr(logbuf, "sandbox: test: seccomp allowlist") && strstr(logbuf, "open files <= 300"),
	      "rlimits: 300 open files, no core files, logged (exit %d, log: %s)", rc, logbuf);
}

/* statsd's policy for the test clock (statsd/main.c builds it the same way). */
static int after_clock(const struct sandbox_policy *p)
{
	(void)p;
	if (try_open(p_clock, O_RDONLY) != 0)
		return 10;
	if (landlock > 0 && try_open(p_other, O_RDONLY) == 0)
		return 11;
	return statsd_now_s() == 1700000000 ? 0 : 12;
}

static void clock_file(void)
{
	const char *const outside[] = {"%s/clock", "%s/run/../clock", "%s/run/up/clock", "/etc/hostname"};
	char path[512], link[512], cdir[PATH_MAX], sd[512];
	struct sandbox_policy p;
	int rc;

	snprintf(sd, sizeof sd, "%s/run", dir);
	snprintf(path, sizeof path, "%s/clock", dir);
	write_file(path, "1700000000\n");
	snprintf(link, sizeof link, "%s/run/up", dir);
	if (symlink(dir, link) < 0)
		CHECK(0, "symlink %s: %s", link, strerror(errno));
	unsetenv("PUSHPIPE_TEST_CLOCK_FILE");
	CHECK(statsd_clock_dir(sd, cdir) == 0, "no clock file: nothing to allow");
	for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
		snprintf(path, sizeof path, outside[i], dir);
		setenv("PUSHPIPE_TEST_CLOCK_FILE", path, 1);
		CHECK(statsd_clock_dir(sd, cdir) == -1, "clock file %s outside state_dir: refused", outside[i]);
	}
	write_file(p_clock, "1700000000\n");
	setenv("PUSHPIPE_TEST_CLOCK_FILE", p_clock, 1);
	rc = statsd_clock_dir(sd, cdir);
	CHECK(rc == 1 && strstr(cdir, "/run") != NULL, "clock file inside state_dir: its directory (%s)", cdir);
	sandbox_policy_init(&p, "statsd");
	sandbox_allow_write(&p, p_db);
	sandbox_allow_read(&p, cdir);
	rc = child(&p, 0, NULL, after_clock);
	CHECK(rc == 0, "clock file inside state_dir: statsd's policy reads it, and not the file beside state_dir "
		       "(exit %d, log: %s)", rc, logbuf);
	unsetenv("PUSHPIPE_TEST_CLOCK_FILE");
}

int main(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof sa;
	char path[600];
	int lfd;

	log_init("test_sandbox");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	landlock = sandbox_landlock_abi();
	snprintf(p_conf, sizeof p_conf, "%s/pushpipe.json", dir);
	snprintf(p_secret, sizeof p_secret, "%s/secret", dir);
	snprintf(p_other, sizeof p_other, "%s/other", dir);
	snprintf(p_db, sizeof p_db, "%s/run/stats", dir);
	snprintf(p_clock, sizeof p_clock, "%s/run/clock", dir);
	snprintf(path, sizeof path, "%s/run", dir);
	mkdir(path, 0700);
	mkdir(p_db, 0700);
	write_file(p_secret, "readable\n");
	write_file(p_other, "not for this policy\n");
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(lfd, 16) < 0 || getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
		perror("listener");
		return 1;
	}
	lport = ntohs(sa.sin_port);
	landlock_required();
	files_and_threads();
	sockets_and_signals();
	rlimits();
	clock_file();
	close(lfd);
	snprintf(path, sizeof path, "rm -rf '%s'", dir);
	if (system(path) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return test_done();
}
