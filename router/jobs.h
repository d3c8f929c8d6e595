/*
 * jobs: the router's in-memory view of deliverable jobs — which are waiting in a ready
 * queue and which are in flight on which sender. LMDB stays the truth; this is only a
 * bounded cache of what to send next.
 */
#ifndef JOBS_H
#define JOBS_H
#include <stddef.h>
#include <stdint.h>

#define JOBS_READY_MAX 65536
#define JOB_READY (-1)

/* job id → where it is: JOB_READY or the sender slot it is in flight on. */
struct jobs_held {
	uint64_t *keys;
	int32_t *vals;
	size_t cap, n;
};

struct jobs_ring {
	uint64_t ids[JOBS_READY_MAX];
	size_t head, n;
};

int held_put(struct jobs_held *h, uint64_t id, int32_t where);
/* 1 and *where when held, 0 when not. */
int held_get(const struct jobs_held *h, uint64_t id, int32_t *where);
void held_del(struct jobs_held *h, uint64_t id);
void held_free(struct jobs_held *h);
/* Forgets every job held at where; returns how many. */
size_t held_del_where(struct jobs_held *h, int32_t where);

/* 0, or -1 when the ring is full. */
int ring_push(struct jobs_ring *r, uint64_t id);
int ring_push_front(struct jobs_ring *r, uint64_t id);
int ring_pop(struct jobs_ring *r, uint64_t *id);
#endif
