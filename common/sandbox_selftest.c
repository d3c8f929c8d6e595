/*
 * sandbox_selftest: the PUSHPIPE_SANDBOX_SELFTEST hook (tests only, tests/integration/sandbox.py).
 * Once a daemon has entered its sandbox, sandbox_enter runs the one action named there (open a
 * file, write one, create an inet socket, bind, listen, connect, fork, signal a pid through one
 * of the signal calls) and exits with its outcome, so a test can tell what each role may do.
 */
#include "log.h"
#include "sandbox.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int parse_inet(const char *hp, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(hp, ':');
	if (colon == NULL || (size_t)(colon - hp) >= sizeof host)
		return -1;
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = '\0';
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* A signal action's target: "self" or a pid. */
static pid_t target_pid(const char *arg)
{
	return strcmp(arg, "self") == 0 ? getpid() : (pid_t)atoi(arg);
}

/* Sends SIGCONT (harmless to a running or sleeping process) to pid with one of the signal
 * calls; returns the call's result. */
static int send_signal(const char *how, pid_t pid)
{
	char path[64];
	int pfd, rc, e;
	siginfo_t si;

	memset(&si, 0, sizeof si);
	si.si_signo = SIGCONT;
	si.si_code = SI_QUEUE; /* what sigqueue() sends; the kernel refuses SI_USER from user space */
	si.si_pid = getpid();
	si.si_uid = getuid();
	if (strcmp(how, "kill") == 0)
		return kill(pid, SIGCONT);
	if (strcmp(how, "tkill") == 0)
		return (int)syscall(SYS_tkill, pid, SIGCONT);
	if (strcmp(how, "tgkill") == 0)
		return (int)syscall(SYS_tgkill, pid, pid, SIGCONT);
	if (strcmp(how, "sigqueue") == 0)
		return (int)syscall(SYS_rt_sigqueueinfo, pid, SIGCONT, &si);
	if (strcmp(how, "tgsigqueue") == 0)
		return (int)syscall(SYS_rt_tgsigqueueinfo, pid, pid, SIGCONT, &si);
	/* pidfd: the descriptor comes from /proc/PID, as pidfd_open may be refused itself */
	snprintf(path, sizeof path, "/proc/%d", (int)pid);
	if ((pfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0 && (pfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = (int)syscall(SYS_pidfd_send_signal, pfd, SIGCONT, NULL, 0);
	e = errno;
	close(pfd);
	errno = e;
	return rc;
}

void sandbox_selftest(const char *action)
{
	static const char *const signal_actions[] = {"kill", "tkill", "tgkill", "sigqueue", "tgsigqueue", "pidfd"};
	struct sockaddr_in sa;
	const char *arg = strchr(action, ':');
	size_t alen = arg ? (size_t)(arg - action) : strlen(action);
	int rc = -1, fd = -1;

	arg = arg ? arg + 1 : "";
	errno = 0;
	for (size_t i = 0; i < sizeof signal_actions / sizeof signal_actions[0]; i++)
		if (strlen(signal_actions[i]) == alen && strncmp(action, signal_actions[i], alen) == 0 && arg[0]) {
			rc = send_signal(signal_actions[i], target_pid(arg));
			goto done;
		}
	if (strcmp(action, "inet") == 0) {
		rc = fd = socket(AF_INET, SOCK_STREAM, 0);
	} else if (strncmp(action, "connect:", 8) == 0 && parse_inet(arg, &sa) == 0) {
		if ((rc = fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0)
			rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	} else if ((strncmp(action, "bind:", 5) == 0 || strncmp(action, "listen:", 7) == 0) &&
		   parse_inet(arg, &sa) == 0) {
		if ((rc = fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0)
			rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
		if (rc == 0 && action[0] == 'l')
			rc = listen(fd, 1);
	} else if (strncmp(action, "bind-udp:", 9) == 0 && parse_inet(arg, &sa) == 0) {
		/* A UDP port, the address padded to a sockaddr_storage: the length the kernel
		 * accepts for AF_INET that a length-based rule took for a Unix address. */
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof ss);
		memcpy(&ss, &sa, sizeof sa);
		if ((rc = fd = socket(AF_INET, SOCK_DGRAM, 0)) >= 0)
			rc = bind(fd, (struct sockaddr *)&ss, sizeof ss);
	} else if (strncmp(action, "open:", 5) == 0) {
		rc = fd = open(arg, O_RDONLY | O_CLOEXEC);
	} else if (strncmp(action, "write:", 6) == 0) {
		rc = fd = open(arg, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	} else if (strcmp(action, "fork") == 0) {
		pid_t p = fork();
		if (p == 0)
			_exit(0);
		if (p > 0) /* the child holds this daemon's listeners until it is gone */
			waitpid(p, NULL, 0);
		rc = p < 0 ? -1 : 0;
	} else {
		log_error("sandbox selftest %s: unknown action", action);
		exit(SANDBOX_SELFTEST_BAD);
	}
done:
	if (rc >= 0) {
		log_info("sandbox selftest %s: allowed", action);
		exit(SANDBOX_SELFTEST_ALLOWED);
	}
	if (errno == EPERM || errno == EACCES) {
		log_info("sandbox selftest %s: denied (%s)", action, strerror(errno));
		exit(SANDBOX_SELFTEST_DENIED);
	}
	log_info("sandbox selftest %s: failed (%s)", action, strerror(errno));
	exit(SANDBOX_SELFTEST_OTHER);
}
