/*
 * reconnect: when to connect to the router again, and what to say about it (reconnect.h).
 */
#include "reconnect.h"
#include "log.h"
#include <stdlib.h>
#include <string.h>

void reconnect_init(struct reconnect *r, const char *what, uint32_t interval_ms, uint32_t jitter_ms)
{
	memset(r, 0, sizeof *r);
	r->what = what;
	r->interval_ms = interval_ms;
	r->jitter_ms = jitter_ms;
}

int reconnect_due(const struct reconnect *r, uint64_t now_ms)
{
	return now_ms >= r->next_ms;
}

static void schedule(struct reconnect *r, uint64_t now_ms)
{
	r->next_ms = now_ms + r->interval_ms + (r->jitter_ms ? (uint64_t)random() % r->jitter_ms : 0);
}

void reconnect_failed(struct reconnect *r, uint64_t now_ms, int err)
{
	if (!r->warned++)
		log_warn("%s not reachable (%s); retrying", r->what, strerror(err));
	schedule(r, now_ms);
}

void reconnect_ok(struct reconnect *r, const char *detail)
{
	log_info("connected to %s%s", r->what, detail ? detail : "");
	r->warned = 0;
}

void reconnect_lost(struct reconnect *r, const char *why)
{
	log_warn("lost the connection to %s: %s", r->what, why);
	r->next_ms = 0;
}
