/*
 * uwpx_server: the ingress-uwpx event loop. One thread, one epoll set: the TLS listener(s),
 * every client connection (non-blocking OpenSSL, NUL-framed messages handled strictly in
 * order, one SSL_write per reply) and the router link. Each message waits for at most one
 * router answer; the connection reads nothing more until its reply is written.
 */
#ifndef UWPX_SERVER_H
#define UWPX_SERVER_H
#include "config.h"

/* Sets up TLS and the listening socket; NULL with a one-line reason in err on failure. */
struct uwpx_server *uwpx_server_new(const struct config *c, char *err, size_t errlen);
/* Runs until daemon_stop. */
void uwpx_server_run(struct uwpx_server *s);
void uwpx_server_free(struct uwpx_server *s);
#endif
