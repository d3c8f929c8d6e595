/*
 * uwpx_server: ingress-uwpx's connections, on the daemon's event loop (loop.c), one thread:
 * the TLS listener(s),
 * every client connection (non-blocking OpenSSL, NUL-framed messages handled strictly in
 * order, one SSL_write per reply) and the router link. Each message waits for at most one
 * router answer; the connection reads nothing more until its reply is written.
 */
#ifndef UWPX_SERVER_H
#define UWPX_SERVER_H
#include "config.h"
#include "frame.h"
#include "loop.h"
#include "uwpx_msg.h"

/* Sets up TLS and the listening socket and registers them, the router link and the deadline
 * timer with lp (the caller runs it); NULL with a one-line reason in err on failure. */
struct uwpx_server *uwpx_server_new(const struct config *c, struct loop *lp, char *err, size_t errlen);
void uwpx_server_free(struct uwpx_server *s);
/* The router's FRAME_NODES answer to the set_push_accounts request q, into nodes[0 ..
 * q->naccounts) (the caller's array holds at least q->naccounts entries; nothing past them is
 * written). 0 when it carries exactly the accounts asked for, in order, each with a valid
 * status and, when stored, an alphanumeric node and secret; -1 otherwise (a different, an
 * extra or a missing account, a malformed field). A frame of another type carries no nodes,
 * so it matches only a request for no accounts. */
int uwpx_nodes_parse(const struct uwpx_request *q, const struct frame *f, struct uwpx_node *nodes);
/* SIGHUP: loads cert_file and key_file again (a renewed certificate); new connections use it,
 * those under way keep theirs. -1 with a reason, the running certificate kept. */
int uwpx_server_reload_tls(struct uwpx_server *s, const struct conf_ingress_uwpx *u, char *err, size_t errlen);
#endif
