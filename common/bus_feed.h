/*
 * bus_feed: a durable pull consumer read continuously (docs/cluster.md, "Pulling"). Instead of
 * one fetch per round (a pull request each time, which the servers replicate twice in the
 * consumer's Raft group), a feed keeps waiting pull requests for up to `batch` messages
 * outstanding on its own inbox, asks again when half of them came (or a request expired), and
 * hands every message to a queue (bus.h) the moment it arrives. Its messages are settled with
 * bus_settle(), which answers a JetStream message of any subscription.
 */
#ifndef BUS_FEED_H
#define BUS_FEED_H
#include "bus.h"

enum bus_settle_how { BUS_ACK, BUS_NAK, BUS_TERM, BUS_IN_PROGRESS };

struct bus_feed;
/* Starts reading consumer of stream into q (items of this kind). room: how many more messages
 * the daemon can take; the feed lowers it (atomically) by one per message that arrives and never
 * asks for more than it allows; the daemon raises it as it takes them. NULL on failure. */
struct bus_feed *bus_feed_start(struct bus *b, const char *stream, const char *consumer, struct bus_queue *q, int kind,
				volatile long *room, int batch);
void bus_feed_stop(struct bus_feed *f);

/* Acknowledges (or nak's after delay_ms, terminates, marks in progress) a JetStream message. */
void bus_settle(struct bus *b, natsMsg *m, enum bus_settle_how how, int64_t delay_ms);
#endif
