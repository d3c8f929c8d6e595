/*
 * onion_health: ingress-onion's GET /healthz answer (docs/observability.md, "Health"): the
 * worker's link to the router and, on one machine, whether every sender the router expects is
 * connected to it (the router's FRAME_SENDERS answer to FRAME_SENDERS_QUERY).
 */
#ifndef ONION_HEALTH_H
#define ONION_HEALTH_H
#include "frame.h"
#include <stddef.h>

#define ONION_HEALTH_TEXT_MAX 1024

/* Builds the query into buf (FRAME_MAX bytes); its length, or -1. */
long onion_health_query(uint8_t *buf);
/* The answer's text for the router's reply (NULL: none came, or it was not FRAME_SENDERS):
 * "ok: connected to the router; senders connected: a, b\n" or "unhealthy: …\n" naming the
 * senders that are not connected. 1 when healthy, else 0. */
int onion_health_text(const struct frame *reply, char *out, size_t len);
#endif
