/*
 * conn_limit: the connection caps of a listener shared by several threads: at most `total`
 * open connections, and at most `per_source` from one source address (IPv4, or IPv6 by its
 * whole address; an IPv4-mapped IPv6 address counts as its IPv4 address). A connection is
 * taken when it is accepted and given back when it closes; one over a cap is refused, and
 * the caller closes it at once (issue "front doors": accepted and closed, never left in the
 * backlog).
 */
#ifndef CONN_LIMIT_H
#define CONN_LIMIT_H
#include <stddef.h>
#include <sys/socket.h>

struct conn_limit;

/* NULL when out of memory. */
struct conn_limit *conn_limit_new(size_t total, size_t per_source);
void conn_limit_free(struct conn_limit *l);
/* 0: counted (give it back with conn_limit_put); -1: over a cap (or not an inet address),
 * nothing counted. Thread-safe. */
int conn_limit_take(struct conn_limit *l, const struct sockaddr *sa);
/* Gives back what a successful conn_limit_take(sa) counted. */
void conn_limit_put(struct conn_limit *l, const struct sockaddr *sa);
/* Open connections from sa's address, and in all (for tests and logs). */
size_t conn_limit_count(struct conn_limit *l, const struct sockaddr *sa, size_t *total);
#endif
