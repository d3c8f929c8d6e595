/*
 * test_sandbox: start-up decisions of common/sandbox.c, each taken in a child process that
 * enters the sandbox as a daemon would and reports by its exit status and its log (stderr):
 *   landlock_required - with Landlock hidden from the child (a seccomp filter answering ENOSYS
 *                       to landlock_create_ruleset, as a kernel without it does) start-up
 *                       stops with one line; without the key it goes on with a warning; with
 *                       Landlock present it starts; the key without "sandbox" is a config error;
 *   test clock file   - PUSHPIPE_TEST_CLOCK_FILE outside state_dir (directly, through "..",
 *                       through a symbolic link) stops statsd, sandbox on or off; inside it
 *                       is readable and (with Landlock) a file beside state_dir is not.
 */
#include "config.h"
#include "log.h"
#include "sandbox.h"
#include "testlib.h"
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/pushpipe-test-sandbox-XXXXXX";
static char logbuf[8192];

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
	char path[512], text[2048];
	snprintf(path, sizeof path, "%s/pushpipe.json", dir);
	snprintf(text, sizeof text,
		 "{\"state_dir\": \"%s/run\", \"sandbox\": %s, \"landlock_required\": %s,"
		 " \"statsd\": {\"db_path\": \"%s/run/stats\"}, \"apns_sender\": {\"key_file\": \"%s/apns.p8\"}}\n",
		 dir, sandbox ? "true" : "false", required ? "true" : "false", dir, dir);
	write_file(path, text);
	return config_load(c, path, err, errlen);
}

/* What the child does once its sandbox is entered. */
enum after { AFTER_EXIT, AFTER_READ_CLOCK };

/* Runs sandbox_enter(role) in a child (Landlock hidden when hide_landlock), with
 * PUSHPIPE_TEST_CLOCK_FILE = clock (or unset); returns the child's exit status (-1 when it
 * was killed), its stderr in logbuf. After entering, the child exits 0, or with
 * AFTER_READ_CLOCK: 0 when the clock file opens and a file beside state_dir does not, 10
 * when the clock does not open, 11 when the file beside state_dir opens too. */
static int child(const struct config *c, enum sandbox_role role, int hide_landlock, const char *clock, enum after what)
{
	char logpath[512];
	int status, fd;
	pid_t p;
	ssize_t n;

	snprintf(logpath, sizeof logpath, "%s/child.log", dir);
	fflush(NULL);
	if ((p = fork()) < 0)
		return -1;
	if (p == 0) {
		if ((fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 || dup2(fd, 2) < 0)
			_exit(20);
		if (clock)
			setenv("PUSHPIPE_TEST_CLOCK_FILE", clock, 1);
		else
			unsetenv("PUSHPIPE_TEST_CLOCK_FILE");
		if (hide_landlock) {
			scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
			if (ctx == NULL || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(landlock_create_ruleset), 0) < 0 ||
			    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) < 0 || seccomp_load(ctx) < 0)
				_exit(21);
			seccomp_release(ctx);
		}
		sandbox_enter(c, role);
		if (what == AFTER_READ_CLOCK) {
			char beside[512];
			if ((fd = open(clock, O_RDONLY | O_CLOEXEC)) < 0)
				_exit(10);
			close(fd);
			snprintf(beside, sizeof beside, "%s/secret", dir);
			if (sandbox_landlock_abi() > 0 && c->sandbox && (fd = open(beside, O_RDONLY | O_CLOEXEC)) >= 0)
				_exit(11);
		}
		_exit(0);
	}
	if (waitpid(p, &status, 0) != p)
		return -1;
	logbuf[0] = '\0';
	if ((fd = open(logpath, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, logbuf, sizeof logbuf - 1);
		logbuf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void landlock_required(void)
{
	struct config c;
	char err[512];
	int rc;

	memset(&c, 0, sizeof c);
	CHECK(load(&c, 0, 1, err, sizeof err) < 0 && strstr(err, "landlock_required") != NULL,
	      "landlock_required without sandbox: configuration error (%s)", err);
	config_free(&c);

	CHECK(load(&c, 1, 1, err, sizeof err) == 0, "landlock_required: loads (%s)", err);
	rc = child(&c, SANDBOX_APNS_SENDER, 1, NULL, AFTER_EXIT);
	CHECK(rc == 1 && strstr(logbuf, "Landlock is required") != NULL,
	      "landlock_required, kernel without Landlock: refuses to start (exit %d, log: %s)", rc, logbuf);
	if (sandbox_landlock_abi() > 0) {
		rc = child(&c, SANDBOX_APNS_SENDER, 0, NULL, AFTER_EXIT);
		CHECK(rc == 0 && strstr(logbuf, "Landlock ABI") != NULL,
		      "landlock_required, kernel with Landlock: starts (exit %d, log: %s)", rc, logbuf);
	} else {
		printf("# this kernel has no Landlock: the start with it is not run\n");
	}
	config_free(&c);

	CHECK(load(&c, 1, 0, err, sizeof err) == 0, "no landlock_required: loads (%s)", err);
	rc = child(&c, SANDBOX_APNS_SENDER, 1, NULL, AFTER_EXIT);
	CHECK(rc == 0 && strstr(logbuf, "Landlock not available") != NULL,
	      "no landlock_required, kernel without Landlock: starts with a warning (exit %d, log: %s)", rc, logbuf);
	config_free(&c);
}

static void clock_file(void)
{
	struct config c;
	char err[512], path[512], link[512];
	int rc;

	snprintf(path, sizeof path, "%s/secret", dir);
	write_file(path, "not for statsd\n");
	snprintf(path, sizeof path, "%s/clock", dir);
	write_file(path, "1700000000\n");
	snprintf(link, sizeof link, "%s/run/up", dir);
	if (symlink(dir, link) < 0)
		CHECK(0, "symlink %s: %s", link, strerror(errno));
	for (int sandbox = 1; sandbox >= 0; sandbox--) {
		const char *const outside[] = {"%s/clock", "%s/run/../clock", "%s/run/up/clock", "/etc/hostname"};
		CHECK(load(&c, sandbox, 0, err, sizeof err) == 0, "loads (%s)", err);
		for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
			snprintf(path, sizeof path, outside[i], dir);
			rc = child(&c, SANDBOX_STATSD, 0, path, AFTER_EXIT);
			CHECK(rc == 1 && strstr(logbuf, "must name a file inside state_dir") != NULL,
			      "sandbox %s: clock file %s outside state_dir: statsd refuses to start (exit %d, log: %s)",
			      sandbox ? "on" : "off", outside[i], rc, logbuf);
		}
		config_free(&c);
	}
	snprintf(path, sizeof path, "%s/run/clock", dir);
	write_file(path, "1700000000\n");
	CHECK(load(&c, 1, 0, err, sizeof err) == 0, "loads (%s)", err);
	rc = child(&c, SANDBOX_STATSD, 0, path, AFTER_READ_CLOCK);
	CHECK(rc == 0, "clock file inside state_dir: statsd starts, reads it, and not the file beside state_dir "
		       "(exit %d, log: %s)", rc, logbuf);
	config_free(&c);
}

int main(void)
{
	char path[512];

	log_init("test_sandbox");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof path, "%s/run", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/run/stats", dir);
	mkdir(path, 0700);
	landlock_required();
	clock_file();
	snprintf(path, sizeof path, "rm -rf '%s'", dir);
	if (system(path) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return test_done();
}
