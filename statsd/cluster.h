/*
 * statsd cluster: statistics of a whole cluster (docs/cluster.md). Each statsd sums the plain
 * counters its host's daemons send it, publishes the sums once a second on pp.stats.<name>
 * (stream PP_STATS), and adds every other statsd's sums to its own store, so each host's
 * /get_statistics_data answers with cluster-wide counts. Its /metrics also shows the cluster's
 * streams and consumers.
 */
#ifndef STATSD_CLUSTER_H
#define STATSD_CLUSTER_H
#include "config.h"
#include "metrics.h"
#include <stddef.h>
#include <stdint.h>

struct statsd_cluster;
/* Before privileges drop; NULL without a cluster section (or on failure, logged, *failed set).
 * The statsd's name on the bus is its host name, with "-<instance>" when given. */
struct statsd_cluster *statsd_cluster_prepare(const struct config *cfg, const char *instance, int *failed);
/* After the sandbox: connects, sets up PP_STATS and this statsd's consumer, registers the
 * queue fd in epfd with tag as its data.ptr (a loop_watch() handle). 0 or -1 (tried again by
 * the tick). */
int statsd_cluster_start(struct statsd_cluster *c, int epfd, void *tag);
/* A datagram taken locally: its plain counters are summed for publishing. */
void statsd_cluster_note(struct statsd_cluster *c, const uint8_t *buf, size_t n);
/* The queue is readable: other statsd's sums go into m. */
void statsd_cluster_read(struct statsd_cluster *c, struct metrics *m);
/* Once a second: publishes the sums (and connects, until that succeeded). */
void statsd_cluster_tick(struct statsd_cluster *c, int epfd, void *tag);
/* Prometheus lines about the cluster's streams and consumers, refreshed every 5 s by a thread
 * of their own: a copy to free, or NULL (none yet, or not in cluster mode). */
char *statsd_cluster_metrics(struct statsd_cluster *c);
void statsd_cluster_free(struct statsd_cluster *c);
#endif
