/*
 * daemon: shared start-up (options, configuration, the instance lock, logging, signals,
 * privileges) and the SIGHUP reload. Each daemon's main.c calls daemon_start() first, so they
 * all behave alike. Trusts the configuration once config_check() passed. Holds the lock file's
 * descriptor (open for the life of the process) and the reload hook.
 */
#include "daemon.h"
#include "log.h"
#include "sock.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef PUSHPIPE_VERSION
#define PUSHPIPE_VERSION "unknown"
#endif

volatile sig_atomic_t daemon_stop;
volatile sig_atomic_t daemon_hup;

static const char *daemon_name = "pushpipe";
static const char *config_path;
static daemon_reload_fn reload_fn;
static const char *daemon_app; /* -a APP: re-selected on every re-read */
static void *reload_arg;
static int lock_fd = -1;

const char *daemon_version(void)
{
	return PUSHPIPE_VERSION;
}

static void on_stop(int sig)
{
	(void)sig;
	daemon_stop = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	daemon_hup = 1;
}

static void help(const char *name, FILE *f)
{
	fprintf(f,
		"usage: %s -c CONFIG [-n] [-a APP] [-i INSTANCE]\n"
		"  -c CONFIG     the pushpipe configuration file (docs/config.md)\n"
		"  -n            check the configuration as a start would, print \"configuration OK\", exit\n"
		"  -a APP        a sender: the app it serves (docs/config.md, section apps); may be omitted\n"
		"                where its platform has one app\n"
		"  -i INSTANCE   instance name, for several senders of one platform (one lock each)\n"
		"  --help        this text\n"
		"  --version     the version of this build\n"
		"Signals: TERM/INT stop; HUP re-reads the log level and the files listed in\n"
		"docs/operations.md (\"Reloading\") and keeps running.\n",
		name);
}

/* The lock of one daemon and instance, in state_dir: a second start with the same name refuses
 * before it touches a socket. flock() is released by the kernel when the process ends, so a
 * stale file never blocks a start. */
static void take_lock(const struct config *c, const char *name, const char *instance, const struct passwd *pw)
{
	char path[512], pid[32];
	int n;
	ssize_t r;
	int app = strcmp(c->app, "default") != 0; /* a sender of a named app: name-APP[-INSTANCE] */

	n = snprintf(path, sizeof path, "%s/%s%s%s%s%s.lock", c->state_dir, name, app ? "-" : "", app ? c->app : "",
		     instance ? "-" : "", instance ? instance : "");
	if (n < 0 || (size_t)n >= sizeof path)
		fatal("state_dir too long for the lock file");
	if (instance && (strchr(instance, '/') || instance[0] == '\0' || instance[0] == '.'))
		fatal("-i %s: an instance name may not be empty, start with '.' or contain '/'", instance);
	if ((lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0)
		fatal_errno("lock %s", path);
	if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			fatal_errno("lock %s", path);
		r = pread(lock_fd, pid, sizeof pid - 1, 0);
		pid[r > 0 ? r : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		fatal("%s%s%s%s%s: already running (pid %s; lock %s)", name, app ? " of app " : "", app ? c->app : "",
		      instance ? " " : "", instance ? instance : "", pid[0] ? pid : "unknown", path);
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(lock_fd, 0) < 0 || pwrite(lock_fd, pid, (size_t)n, 0) != n)
		fatal_errno("lock %s", path);
	if (pw && fchown(lock_fd, pw->pw_uid, pw->pw_gid) < 0)
		fatal_errno("lock %s: chown to %s", path, pw->pw_name);
}

/* Started as root with `user` (after the lock): state_dir and every socket created from here on
 * belong to that user, so the daemons still reach each other after dropping. */
static void give_state_dir(const struct config *c, const struct passwd *pw)
{
	struct stat st;

	if (pw == NULL)
		return;
	if (stat(c->state_dir, &st) < 0)
		fatal_errno("state_dir %s", c->state_dir);
	if (st.st_uid != pw->pw_uid && st.st_gid != pw->pw_gid) {
		if (chown(c->state_dir, pw->pw_uid, pw->pw_gid) < 0)
			fatal_errno("state_dir %s: chown to %s", c->state_dir, pw->pw_name);
		log_info("state_dir %s now belongs to %s", c->state_dir, pw->pw_name);
	}
	sock_set_owner(pw->pw_uid, pw->pw_gid);
}

void daemon_start(const char *name, int argc, char **argv, struct config *c, struct daemon_opts *o)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'H'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	char err[512];
	struct sigaction sa;
	struct passwd *pw = NULL;
	int ch, lvl, is_sender;

	memset(o, 0, sizeof *o);
	daemon_name = name;
	log_init(name);
	while ((ch = getopt_long(argc, argv, "c:na:i:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config_path = optarg;
			break;
		case 'n':
			o->check_only = 1;
			break;
		case 'a':
			o->app = optarg;
			break;
		case 'i':
			o->instance = optarg;
			break;
		case 'h':
		case 'H':
			help(name, stdout);
			exit(0);
		case 'V':
			printf("%s (pushpipe) %s\n", name, PUSHPIPE_VERSION);
			exit(0);
		default:
			help(name, stderr);
			exit(2);
		}
	}
	if (o->config_path == NULL || optind != argc) {
		fprintf(stderr, "%s: %s\n", name, o->config_path == NULL ? "-c CONFIG is required" : "unexpected arguments");
		help(name, stderr);
		exit(2);
	}
	config_path = o->config_path;
	if (config_load(c, o->config_path, err, sizeof err) < 0)
		fatal("configuration: %s", err);
	is_sender = strlen(name) > 7 && strcmp(name + strlen(name) - 7, "-sender") == 0;
	if (o->app && !is_sender)
		fatal("-a: only a sender serves an app");
	if (is_sender && config_app_select(c, name, o->app, err, sizeof err) < 0)
		fatal("configuration: %s", err);
	daemon_app = o->app;
	if (config_check(c, name, err, sizeof err) < 0)
		fatal("configuration: %s", err);
	if (o->check_only) {
		if (config_check_warning()[0])
			fprintf(stderr, "%s: warning: %s\n", name, config_check_warning());
		printf("configuration OK\n");
		exit(0);
	}
	if (config_check_warning()[0])
		log_warn("configuration: %s", config_check_warning());
	lvl = log_level_parse(c->log_level);
	log_set_level((enum log_level)lvl);
	if (geteuid() == 0 && daemon_user(c)[0] != '\0' && (pw = getpwnam(daemon_user(c))) == NULL)
		fatal("user %s: no such user", daemon_user(c));
	if (mkdir(c->state_dir, 0750) < 0 && errno != EEXIST)
		fatal_errno("state_dir %s", c->state_dir);
	take_lock(c, name, o->instance, pw);
	give_state_dir(c, pw);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

void daemon_give_dir(const struct config *c, const char *dir)
{
	struct passwd *pw;
	struct dirent *e;
	DIR *d;
	int dfd;

	if (geteuid() != 0 || daemon_user(c)[0] == '\0' || (pw = getpwnam(daemon_user(c))) == NULL)
		return;
	if ((d = opendir(dir)) == NULL || (dfd = dirfd(d)) < 0 || fchown(dfd, pw->pw_uid, pw->pw_gid) < 0)
		fatal_errno("%s: chown to %s", dir, pw->pw_name);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' &&
		    fchownat(dfd, e->d_name, pw->pw_uid, pw->pw_gid, AT_SYMLINK_NOFOLLOW) < 0)
			fatal_errno("%s/%s: chown to %s", dir, e->d_name, pw->pw_name);
	closedir(d);
}

const char *daemon_role_class(const char *name)
{
	size_t n = strlen(name);
	if (strncmp(name, "ingress", 7) == 0)
		return "ingress";
	if (n >= 7 && strcmp(name + n - 7, "-sender") == 0)
		return "sender";
	return name; /* "router", "statsd" */
}

const char *daemon_user(const struct config *c)
{
	return config_user_for(c, daemon_role_class(daemon_name));
}

void daemon_privdrop(const struct config *c)
{
	/* users.<role> when set (docs/operations.md, "Security model"), else `user`. */
	const char *user = daemon_user(c);
	if (geteuid() == 0 && user[0] != '\0') {
		struct passwd *pw = getpwnam(user);
		if (pw == NULL)
			fatal("user %s: no such user", user);
		if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
			fatal_errno("dropping privileges to %s", user);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fatal_errno("no_new_privs");
}

void daemon_policy(struct sandbox_policy *p, const struct config *c)
{
	sandbox_policy_init(p, daemon_name);
	p->enabled = c->sandbox;
	p->landlock_required = c->landlock_required;
	sandbox_allow_read(p, c->path);
	if (!config_cluster(c))
		return;
	/* docs/cluster.md: libnats connects out from its own threads, started after the sandbox. */
	p->inet_client = 1;
	for (size_t i = 0; i < c->cluster.servers.n; i++) {
		uint16_t port = sandbox_port_of(c->cluster.servers.v[i]);
		sandbox_allow_connect(p, port ? port : 4222);
	}
	sandbox_allow_connect(p, 53); /* DNS over TCP, for server names */
	if (c->cluster.tls)
		sandbox_allow_read(p, c->cluster.tls_ca_file);
}

void daemon_on_reload(daemon_reload_fn fn, void *arg)
{
	reload_fn = fn;
	reload_arg = arg;
}

int daemon_reload_check(void)
{
	struct config fresh;
	char err[512];
	const char *what = "";

	if (!daemon_hup)
		return 0;
	daemon_hup = 0;
	if (config_path == NULL)
		return 0;
	if (config_load(&fresh, config_path, err, sizeof err) < 0) {
		log_error("HUP: %s; keeping the running configuration", err);
		config_free(&fresh);
		return 1;
	}
	if (strstr(daemon_name, "-sender") && config_app_select(&fresh, daemon_name, daemon_app, err, sizeof err) < 0) {
		log_error("HUP: %s; keeping the running configuration", err);
		config_free(&fresh);
		return 1;
	}
	log_set_level((enum log_level)log_level_parse(fresh.log_level));
	if (reload_fn)
		what = reload_fn(&fresh, reload_arg);
	log_info("HUP: re-read %s: log level %s%s%s; everything else keeps running", config_path, fresh.log_level,
		 what && what[0] ? ", " : "", what ? what : "");
	config_free(&fresh);
	return 1;
}

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
