/* jobs: open-addressing table and fixed rings for the router's job cache (see jobs.h). */
#include "jobs.h"
#include <stdlib.h>

#define EMPTY 0 /* job ids start at 1 */
#define TOMB UINT64_MAX

static size_t slot(uint64_t id, size_t cap)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id & (cap - 1);
}

static int grow(struct jobs_held *h)
{
	size_t live = 0, ncap = 1024;
	for (size_t i = 0; i < h->cap; i++)
		live += h->keys[i] != EMPTY && h->keys[i] != TOMB;
	while (live * 4 >= ncap)
		ncap *= 2;
	uint64_t *nk = calloc(ncap, sizeof *nk);
	int32_t *nv = calloc(ncap, sizeof *nv);
	if (nk == NULL || nv == NULL) {
		free(nk);
		free(nv);
		return -1;
	}
	for (size_t i = 0; i < h->cap; i++) {
		if (h->keys[i] == EMPTY || h->keys[i] == TOMB)
			continue;
		size_t j = slot(h->keys[i], ncap);
		while (nk[j] != EMPTY)
			j = (j + 1) & (ncap - 1);
		nk[j] = h->keys[i];
		nv[j] = h->vals[i];
	}
	free(h->keys);
	free(h->vals);
	h->keys = nk;
	h->vals = nv;
	h->cap = ncap;
	h->n = live;
	return 0;
}

static long find(const struct jobs_held *h, uint64_t id)
{
	if (h->cap == 0)
		return -1;
	for (size_t j = slot(id, h->cap), k = 0; k < h->cap; k++, j = (j + 1) & (h->cap - 1)) {
		if (h->keys[j] == EMPTY)
			return -1;
		if (h->keys[j] == id)
			return (long)j;
	}
	return -1;
}

int held_put(struct jobs_held *h, uint64_t id, int32_t where)
{
	long f = find(h, id);
	size_t j;
	if (f >= 0) {
		h->vals[f] = where;
		return 0;
	}
	/* Tombstones count towards the load so probing always ends at an empty slot. */
	if ((h->n + 1) * 2 > h->cap && grow(h) < 0)
		return -1;
	j = slot(id, h->cap);
	while (h->keys[j] != EMPTY && h->keys[j] != TOMB)
		j = (j + 1) & (h->cap - 1);
	if (h->keys[j] == EMPTY)
		h->n++;
	h->keys[j] = id;
	h->vals[j] = where;
	return 0;
}

int held_get(const struct jobs_held *h, uint64_t id, int32_t *where)
{
	long f = find(h, id);
	if (f < 0)
		return 0;
	*where = h->vals[f];
	return 1;
}

void held_del(struct jobs_held *h, uint64_t id)
{
	long f = find(h, id);
	if (f >= 0)
		h->keys[f] = TOMB;
}

void held_free(struct jobs_held *h)
{
	free(h->keys);
	free(h->vals);
	h->keys = NULL;
	h->vals = NULL;
	h->cap = h->n = 0;
}

size_t held_del_where(struct jobs_held *h, int32_t where)
{
	size_t n = 0;
	for (size_t i = 0; i < h->cap; i++)
		if (h->keys[i] != EMPTY && h->keys[i] != TOMB && h->vals[i] == where) {
			h->keys[i] = TOMB;
			n++;
		}
	return n;
}

int ring_push(struct jobs_ring *r, uint64_t id)
{
	if (r->n == JOBS_READY_MAX)
		return -1;
	r->ids[(r->head + r->n++) % JOBS_READY_MAX] = id;
	return 0;
}

int ring_push_front(struct jobs_ring *r, uint64_t id)
{
	if (r->n == JOBS_READY_MAX)
		return -1;
	r->head = (r->head + JOBS_READY_MAX - 1) % JOBS_READY_MAX;
	r->ids[r->head] = id;
	r->n++;
	return 0;
}

int ring_pop(struct jobs_ring *r, uint64_t *id)
{
	if (r->n == 0)
		return -1;
	*id = r->ids[r->head];
	r->head = (r->head + 1) % JOBS_READY_MAX;
	r->n--;
	return 0;
}
