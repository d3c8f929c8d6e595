/*
 * daemon: shared start-up (options, configuration, logging, signals, privileges).
 * Each daemon's main.c calls daemon_start() first, so they all behave alike.
 */
#include "daemon.h"
#include "log.h"
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t daemon_stop;
static const char *daemon_name = "pushpipe";

static void on_stop(int sig)
{
	(void)sig;
	daemon_stop = 1;
}

static void usage(const char *name)
{
	fprintf(stderr, "usage: %s -c CONFIG [-n] [-i INSTANCE]\n", name);
	exit(2);
}

void daemon_start(const char *name, int argc, char **argv, struct config *c, struct daemon_opts *o)
{
	char err[512];
	struct sigaction sa;
	int ch, lvl;

	memset(o, 0, sizeof *o);
	daemon_name = name;
	log_init(name);
	while ((ch = getopt(argc, argv, "c:ni:h")) != -1) {
		switch (ch) {
		case 'c':
			o->config_path = optarg;
			break;
		case 'n':
			o->check_only = 1;
			break;
		case 'i':
			o->instance = optarg;
			break;
		default:
			usage(name);
		}
	}
	if (o->config_path == NULL || optind != argc)
		usage(name);
	if (config_load(c, o->config_path, err, sizeof err) < 0)
		fatal("configuration: %s", err);
	if (o->check_only) {
		printf("configuration OK\n");
		exit(0);
	}
	lvl = log_level_parse(c->log_level);
	log_set_level((enum log_level)lvl);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
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

void daemon_privdrop(const struct config *c)
{
	/* users.<role> when set (docs/operations.md, "Security model"), else `user`. */
	const char *user = config_user_for(c, daemon_role_class(daemon_name));
	if (geteuid() == 0 && user[0] != '\0') {
		struct passwd *pw = getpwnam(user);
		if (pw == NULL)
			fatal("user %s: no such user", user);
		if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
			fatal("dropping privileges to %s: %s", user, strerror(errno));
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fatal("no_new_privs: %s", strerror(errno));
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
