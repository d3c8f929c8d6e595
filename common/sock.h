/* sock: Unix-domain sockets for frames (SOCK_SEQPACKET) and counters (SOCK_DGRAM). */
#ifndef SOCK_H
#define SOCK_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Listeners created from now on are chowned to uid:gid (daemon_start, when root with `user`). */
void sock_set_owner(uid_t uid, gid_t gid);
/* Binds (replacing a stale file) and, for SEQPACKET, listens. Non-blocking, close-on-exec. A
 * DGRAM socket receives each sender's credentials (SO_PASSCRED) from its first datagram on. */
int sock_listen(const char *path, int type);
/* sock_listen with the file's mode and owner given (uid (uid_t)-1: the sock_set_owner one). */
int sock_listen_as(const char *path, int type, mode_t mode, uid_t uid, gid_t gid);
/* Connects to a listening socket; the returned fd is non-blocking. -1 with errno. */
int sock_connect(const char *path, int type);
/* Accepts one connection, non-blocking; -1 with errno (EAGAIN when none). */
int sock_accept(int lfd);
/* Sends one whole frame without blocking: 0, or -1 with errno (EAGAIN: try later). */
int sock_send(int fd, const void *buf, size_t len);
/* Receives one frame into buf (FRAME_MAX bytes): its length, 0 on EOF, -1 with errno.
 * A message longer than FRAME_MAX is reported as -1/EMSGSIZE. */
ssize_t sock_recv(int fd, uint8_t *buf);
/* Joins dir and name into out (PATH_MAX); -1 when too long for a socket address. */
int sock_path(char *out, size_t outlen, const char *dir, const char *name);
/* Sends the hello frame announcing this process. */
int sock_hello(int fd, uint32_t role, uint32_t platform, const char *instance);
/* The same, naming the sender's app (NULL or "default": no TAG_APP, as sock_hello). */
int sock_hello_app(int fd, uint32_t role, uint32_t platform, const char *instance, const char *app);
#endif
