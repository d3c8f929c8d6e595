/*
 * conn_limit: see conn_limit.h. An open-addressing table (linear probing, deletion by
 * backward shift) of source addresses with their open connections, sized to twice the total
 * cap so it is never more than half full, behind one mutex: it is touched once when a
 * connection opens and once when it closes. Trusts the addresses the kernel gave accept().
 * Holds counts only.
 */
#include "conn_limit.h"
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	unsigned char addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	uint32_t n;		/* 0 = free */
};

struct conn_limit {
	pthread_mutex_t mu;
	size_t total, per_source, open;
	size_t mask; /* table size - 1 */
	struct slot *t;
};

struct conn_limit *conn_limit_new(size_t total, size_t per_source)
{
	struct conn_limit *l = calloc(1, sizeof *l);
	size_t size = 16;
	while (size < 2 * total + 2)
		size *= 2;
	if (l == NULL || (l->t = calloc(size, sizeof *l->t)) == NULL) {
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->mu, NULL);
	l->total = total;
	l->per_source = per_source;
	l->mask = size - 1;
	return l;
}

void conn_limit_free(struct conn_limit *l)
{
	if (l == NULL)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l->t);
	free(l);
}

static int key_of(const struct sockaddr *sa, unsigned char k[16])
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		memcpy(k, mapped, 12);
		memcpy(k + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(k, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

static size_t hash_of(const unsigned char k[16])
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (int i = 0; i < 16; i++)
		h = (h ^ k[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

/* The slot holding k, or the free slot where it would go. */
static size_t find(const struct conn_limit *l, const unsigned char k[16])
{
	size_t i = hash_of(k) & l->mask;
	while (l->t[i].n != 0 && memcmp(l->t[i].addr, k, 16) != 0)
		i = (i + 1) & l->mask;
	return i;
}

int conn_limit_take(struct conn_limit *l, const struct sockaddr *sa)
{
	unsigned char k[16];
	int rc = -1;
	size_t i;

	if (key_of(sa, k) < 0)
		return -1;
	pthread_mutex_lock(&l->mu);
	i = find(l, k);
	if (l->open < l->total && l->t[i].n < l->per_source) {
		if (l->t[i].n == 0)
			memcpy(l->t[i].addr, k, 16);
		l->t[i].n++;
		l->open++;
		rc = 0;
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

void conn_limit_put(struct conn_limit *l, const struct sockaddr *sa)
{
	unsigned char k[16];
	size_t i, j;

	if (key_of(sa, k) < 0)
		return;
	pthread_mutex_lock(&l->mu);
	i = find(l, k);
	if (l->t[i].n > 0) {
		l->open--;
		if (--l->t[i].n == 0) {
			/* Backward shift: move up every later entry of the run that may sit at i. */
			for (j = (i + 1) & l->mask; l->t[j].n != 0; j = (j + 1) & l->mask) {
				size_t home = hash_of(l->t[j].addr) & l->mask;
				/* j's entry may move to i when i lies cyclically in [home, j). */
				if (((j - home) & l->mask) >= ((j - i) & l->mask)) {
					l->t[i] = l->t[j];
					l->t[j].n = 0;
					i = j;
				}
			}
		}
	}
	pthread_mutex_unlock(&l->mu);
}

size_t conn_limit_count(struct conn_limit *l, const struct sockaddr *sa, size_t *total)
{
	unsigned char k[16];
	size_t n = 0;
	pthread_mutex_lock(&l->mu);
	if (key_of(sa, k) == 0)
		n = l->t[find(l, k)].n;
	if (total)
		*total = l->open;
	pthread_mutex_unlock(&l->mu);
	return n;
}
