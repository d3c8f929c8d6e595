/*
 * sock: thin wrappers over Unix-domain sockets. SEQPACKET keeps frame boundaries, so a
 * frame is always one send and one recv; nothing here ever blocks.
 */
#include "sock.h"
#include "frame.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa->sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa->sun_path, path);
	return 0;
}

/* Set by daemon_start() when it runs as root with `user`: listeners are given to that user
 * before privileges drop, so peers running as the user can still connect. */
static uid_t owner_uid = (uid_t)-1;
static gid_t owner_gid = (gid_t)-1;

void sock_set_owner(uid_t uid, gid_t gid)
{
	owner_uid = uid;
	owner_gid = gid;
}

int sock_listen(const char *path, int type)
{
	return sock_listen_as(path, type, 0660, (uid_t)-1, (gid_t)-1);
}

/* The file gets its mode and owner before listen(), so no connect() can come in between. */
int sock_listen_as(const char *path, int type, mode_t mode, uid_t uid, gid_t gid)
{
	struct sockaddr_un sa;
	int fd;

	if (uid == (uid_t)-1) {
		uid = owner_uid;
		gid = owner_gid;
	}

	if (fill_addr(&sa, path) < 0)
		return -1;
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	unlink(path);
	/* Before bind: a datagram that arrives before SO_PASSCRED carries no sender pid. */
	if ((type == SOCK_DGRAM && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &(int){1}, sizeof(int)) < 0) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(path, mode) < 0 ||
	    (uid != (uid_t)-1 && chown(path, uid, gid) < 0) ||
	    (type == SOCK_SEQPACKET && listen(fd, 128) < 0)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int sock_connect(const char *path, int type)
{
	struct sockaddr_un sa;
	int fd;

	if (fill_addr(&sa, path) < 0)
		return -1;
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int sock_accept(int lfd)
{
	return accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int sock_send(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		return -1;
	if ((size_t)n != len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

ssize_t sock_recv(int fd, uint8_t *buf)
{
	ssize_t n = recv(fd, buf, FRAME_MAX, MSG_DONTWAIT | MSG_TRUNC);
	if (n > FRAME_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	return n;
}

int sock_path(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= outlen || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int sock_hello(int fd, uint32_t role, uint32_t platform, const char *instance)
{
	return sock_hello_app(fd, role, platform, instance, NULL);
}

int sock_hello_app(int fd, uint32_t role, uint32_t platform, const char *instance, const char *app)
{
	uint8_t buf[256];
	struct frame_writer w;
	long n;

	/* frame_begin needs FRAME_MAX only as an upper bound; a hello is tiny. */
	frame_begin(&w, buf, FRAME_HELLO, 0);
	frame_put_u32(&w, TAG_ROLE, role);
	frame_put_u32(&w, TAG_PID, (uint32_t)getpid());
	if (platform)
		frame_put_u32(&w, TAG_PLATFORM, platform);
	if (instance)
		frame_put_bytes(&w, TAG_INSTANCE, instance, strnlen(instance, 64));
	if (app && strcmp(app, "default") != 0)
		frame_put_bytes(&w, TAG_APP, app, strnlen(app, 32));
	n = frame_end(&w);
	return n < 0 ? -1 : sock_send(fd, buf, (size_t)n);
}
