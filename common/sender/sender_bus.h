/*
 * sender_bus: a provider sender's jobs from the cluster bus (docs/cluster.md), behind
 * sender_link.h: the jobs of (platform, app) come from the durable pull consumer
 * jobs-<platform>-<app> on PP_JOBS, fetched by a thread while the sender has room; each
 * verdict becomes an ack (delivered, failed), a nak with delay (retry, honouring Retry-After
 * and the back-off rules), a term (past the job's maximum age: expired), or, for a verdict the
 * router must know (dead or suspect token), a result on pp.res.<platform>.<app> then an ack.
 */
#ifndef SENDER_BUS_H
#define SENDER_BUS_H
#include "guard.h"
#include <stdint.h>

struct sender;
struct sender_bus;

/* Before privileges drop: the credentials. The connection starts with the first
 * sender_bus_try, in the sandbox. */
int sender_bus_prepare(struct sender *s);
/* Connects (the first time; exits when the options are bad), binds to the jobs consumer and
 * starts fetching, with the job queue's fd and the retry timer on the sender's loop; that fd,
 * or -1 (tried again later). */
int sender_bus_try(struct sender *s);
/* The queue of fetched jobs is readable, or a retry is due. */
void sender_bus_read(struct sender *s);
/* A job's verdict. */
void sender_bus_result(struct sender *s, uint64_t id, const struct guard_verdict *v);
void sender_bus_free(struct sender *s);
#endif
