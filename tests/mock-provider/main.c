/*
 * main.c: mock-provider's command line, listening socket, ready file and epoll event loop
 * (connections, delay timers, deadline sweep, record flushing every 50 ms, SIGTERM/SIGINT).
 *
 *   mock-provider -l 127.0.0.1:PORT --cert server.pem --key server.key --record FILE
 *                 [--apns-key apns_pub.pem --apns-kid KEYID --apns-team TEAMID]
 *                 [--fcm-key fcm_pub.pem] [--fcm-project PROJECT]
 *                 [--wns-client-id ID --wns-client-secret SECRET] [--ready-file FILE]
 *                 [--hms-app-id ID --hms-app-secret SECRET]
 *                 [--http1-only]
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include "mock.h"

struct mock_config mock_cfg;

static char tag_listen, tag_signal; /* epoll data for the non-connection descriptors */

static void usage(void)
{
	fprintf(stderr,
		"usage: mock-provider -l HOST:PORT --cert server.pem --key server.key --record FILE\n"
		"       [--apns-key apns_pub.pem --apns-kid KEYID --apns-team TEAMID]\n"
		"       [--fcm-key fcm_pub.pem] [--fcm-project PROJECT]\n"
		"       [--apns-extra-key KEYID=apns_pub.pem]... [--fcm-extra-key fcm_pub.pem]... [--fcm-project P2]...\n"
		"       [--wns-client-id ID --wns-client-secret SECRET] [--ready-file FILE]\n"
		"       [--hms-app-id ID --hms-app-secret SECRET]\n"
		"       [--http1-only]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "record", required_argument, NULL, 'r' },
		{ "apns-key", required_argument, NULL, 'A' },
		{ "apns-kid", required_argument, NULL, 'I' },
		{ "apns-team", required_argument, NULL, 'T' },
		{ "fcm-key", required_argument, NULL, 'F' },
		{ "fcm-project", required_argument, NULL, 'P' },
		{ "wns-client-id", required_argument, NULL, 'W' },
		{ "wns-client-secret", required_argument, NULL, 'S' },
		{ "hms-app-id", required_argument, NULL, 'H' },
		{ "hms-app-secret", required_argument, NULL, 'X' },
		{ "ready-file", required_argument, NULL, 'R' },
		{ "http1-only", no_argument, NULL, '1' },
		{ "apns-extra-key", required_argument, NULL, 'a' },
		{ "fcm-extra-key", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': mock_cfg.listen = optarg; break;
		case 'c': mock_cfg.cert = optarg; break;
		case 'k': mock_cfg.key = optarg; break;
		case 'r': mock_cfg.record = optarg; break;
		case 'A': mock_cfg.apns_key_file = optarg; break;
		case 'I': mock_cfg.apns_kid = optarg; break;
		case 'T': mock_cfg.apns_team = optarg; break;
		case 'F': mock_cfg.fcm_key_file = optarg; break;
		case 'P':
			if (!mock_cfg.fcm_project)
				mock_cfg.fcm_project = optarg;
			else if (mock_cfg.nfcm_projects < MOCK_EXTRA_MAX)
				mock_cfg.fcm_projects[mock_cfg.nfcm_projects++] = optarg;
			else
				usage();
			break;
		case 'a': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg || mock_cfg.napns_extra == MOCK_EXTRA_MAX)
				usage();
			*eq = '\0';
			mock_cfg.apns_extra_kid[mock_cfg.napns_extra] = optarg;
			mock_cfg.apns_extra_file[mock_cfg.napns_extra++] = eq + 1;
			break;
		}
		case 'f':
			if (mock_cfg.nfcm_extra == MOCK_EXTRA_MAX)
				usage();
			mock_cfg.fcm_extra_file[mock_cfg.nfcm_extra++] = optarg;
			break;
		case 'W': mock_cfg.wns_client_id = optarg; break;
		case 'S': mock_cfg.wns_client_secret = optarg; break;
		case 'H': mock_cfg.hms_app_id = optarg; break;
		case 'X': mock_cfg.hms_app_secret = optarg; break;
		case 'R': mock_cfg.ready_file = optarg; break;
		case '1': mock_cfg.http1_only = 1; break;
		default: usage();
		}
	}
	if (optind != argc || !mock_cfg.listen || !mock_cfg.cert || !mock_cfg.key || !mock_cfg.record)
		usage();
}

/* "127.0.0.1:8443", "[::1]:0", "localhost:0" */
static int listen_on(const char *spec, int *port_out)
{
	char host[256];
	const char *colon = strrchr(spec, ':'), *h = spec;
	size_t hl;
	struct addrinfo hints, *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int fd, one = 1, rc;

	if (!colon)
		return -1;
	hl = (size_t)(colon - spec);
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']')
		h++, hl -= 2;
	if (hl >= sizeof host)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res);
	if (rc != 0) {
		mock_log("error", "cannot resolve %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		mock_log("error", "cannot listen on %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	*port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* Writes "PORT\n" to a temporary name, then renames it into place. */
static int write_ready_file(const char *path, int port)
{
	char tmp[4096];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
		return -1;
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Room for MOCK_MAX_CONNS connections plus a few files; fewer connections if the limit is low. */
static size_t raise_nofile(void)
{
	struct rlimit rl;
	rlim_t want = MOCK_MAX_CONNS + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 256;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur >= want)
		return MOCK_MAX_CONNS;
	return rl.rlim_cur > 96 ? (size_t)rl.rlim_cur - 64 : 32;
}

static int load_keys(void)
{
	if (mock_cfg.apns_key_file && jwt_load_key(mock_cfg.apns_key_file, &mock_cfg.apns_key) < 0) {
		mock_log("error", "cannot load APNs key %s", mock_cfg.apns_key_file);
		return -1;
	}
	if (mock_cfg.fcm_key_file && jwt_load_key(mock_cfg.fcm_key_file, &mock_cfg.fcm_key) < 0) {
		mock_log("error", "cannot load FCM key %s", mock_cfg.fcm_key_file);
		return -1;
	}
	for (size_t i = 0; i < mock_cfg.napns_extra; i++)
		if (jwt_load_key(mock_cfg.apns_extra_file[i], &mock_cfg.apns_extra_key[i]) < 0) {
			mock_log("error", "cannot load APNs key %s", mock_cfg.apns_extra_file[i]);
			return -1;
		}
	for (size_t i = 0; i < mock_cfg.nfcm_extra; i++)
		if (jwt_load_key(mock_cfg.fcm_extra_file[i], &mock_cfg.fcm_extra_key[i]) < 0) {
			mock_log("error", "cannot load FCM key %s", mock_cfg.fcm_extra_file[i]);
			return -1;
		}
	return 0;
}

static void cleanup(int lfd, int sfd, int epfd)
{
	conn_close_all();
	faults_free();
	routes_free();
	h2_free_callbacks();
	record_close();
	conn_tls_free();
	EVP_PKEY_free(mock_cfg.apns_key);
	EVP_PKEY_free(mock_cfg.fcm_key);
	for (size_t i = 0; i < MOCK_EXTRA_MAX; i++) {
		EVP_PKEY_free(mock_cfg.apns_extra_key[i]);
		EVP_PKEY_free(mock_cfg.fcm_extra_key[i]);
	}
	if (lfd >= 0)
		close(lfd);
	if (sfd >= 0)
		close(sfd);
	if (epfd >= 0)
		close(epfd);
}

int main(int argc, char **argv)
{
	struct epoll_event ev, events[256];
	sigset_t mask;
	int lfd = -1, sfd = -1, epfd = -1, port = 0, n, i, timeout, running = 1;
	int64_t now, due, last_flush, last_sweep;
	size_t max_conns;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	max_conns = raise_nofile();
	if (load_keys() < 0 || conn_tls_init() < 0 || routes_init() < 0)
		goto fail;
	if (record_open(mock_cfg.record) < 0) {
		mock_log("error", "cannot open record file %s: %s", mock_cfg.record, strerror(errno));
		goto fail;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	lfd = listen_on(mock_cfg.listen, &port);
	if (sfd < 0 || epfd < 0 || lfd < 0)
		goto fail;
	conn_setup(epfd, max_conns);
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.ptr = &tag_listen;
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.ptr = &tag_signal;
	epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);
	mock_log("info", "listening on %s (port %d), max %zu connections, APNs JWT %s, FCM assertion %s", mock_cfg.listen,
		 port, max_conns, mock_cfg.apns_key ? "verified" : "not verified",
		 mock_cfg.fcm_key ? "verified" : "not verified");
	if (mock_cfg.ready_file && write_ready_file(mock_cfg.ready_file, port) < 0) {
		mock_log("error", "cannot write ready file %s: %s", mock_cfg.ready_file, strerror(errno));
		goto fail;
	}

	last_flush = last_sweep = mock_mono_ms();
	while (running) {
		now = mock_mono_ms();
		timeout = 250;
		due = timers_next_due();
		if (due >= 0)
			timeout = (int)(due <= now ? 0 : due - now < timeout ? due - now : timeout);
		if (record_dirty()) {
			due = last_flush + 50;
			timeout = (int)(due <= now ? 0 : due - now < timeout ? due - now : timeout);
		}
		n = epoll_wait(epfd, events, (int)(sizeof events / sizeof events[0]), timeout);
		if (n < 0 && errno != EINTR) {
			mock_log("error", "epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			if (events[i].data.ptr == &tag_listen) {
				conn_accept_all(lfd);
			} else if (events[i].data.ptr == &tag_signal) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
					mock_log("info", "signal %u received, stopping", si.ssi_signo);
					running = 0;
				}
			} else {
				conn_on_event(events[i].data.ptr, events[i].events);
			}
		}
		now = mock_mono_ms();
		timers_run(now);
		if (now - last_sweep >= 250) {
			conn_sweep(now);
			last_sweep = now;
		}
		if (now - last_flush >= 50) {
			record_flush();
			last_flush = now;
		}
	}
	cleanup(lfd, sfd, epfd);
	mock_log("info", "stopped");
	return 0;
fail:
	cleanup(lfd, sfd, epfd);
	return 1;
}
