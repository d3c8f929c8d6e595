/*
 * guard: the mass-invalidation guard of docs/senders.md, shared by the APNs and FCM
 * senders. A few answers (APNs BadDeviceToken, FCM SENDER_ID_MISMATCH, …) mean "this token
 * is dead" but are also what every send gets when our own configuration is wrong; this module
 * decides which it is from the provider's recent answers, and pauses the provider when it is
 * a configuration problem so that no token is deleted. Trusts the classifiers' verdicts;
 * holds a window of the last N answers (N, M and the share from the configuration, the
 * guard.h constants by default) and the pause state.
 */
#include "guard.h"
#include "counters.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include <stdio.h>
#include <string.h>

void guard_init(struct guard *g, const char *provider)
{
	memset(g, 0, sizeof *g);
	g->provider = provider;
	g->window_n = GUARD_WINDOW;
	g->min_guarded = GUARD_MIN_GUARDED;
	g->share_pct = GUARD_SHARE_PCT;
}

void guard_set_limits(struct guard *g, long window, long min_guarded, long share_pct)
{
	if (window > 0)
		g->window_n = (unsigned)(window > GUARD_WINDOW_MAX ? GUARD_WINDOW_MAX : window);
	if (min_guarded > 0)
		g->min_guarded = (unsigned)(min_guarded > GUARD_WINDOW_MAX ? GUARD_WINDOW_MAX : min_guarded);
	if (share_pct > 0)
		g->share_pct = (unsigned)(share_pct > 100 ? 100 : share_pct);
	g->pos = g->filled = g->guarded = 0;
}

void guard_set_reason(struct guard_verdict *v, const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o < GUARD_REASON_MAX; i++)
		v->reason[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	v->reason[o] = '\0';
}

/* One bit per answer: the whole struct stays small enough that zeroing it costs a few pages. */
static void record(struct guard *g, int guarded)
{
	uint8_t *w = &g->window[g->pos / 8], bit = (uint8_t)(1u << (g->pos % 8));

	if (g->filled == g->window_n)
		g->guarded -= (*w & bit) != 0;
	else
		g->filled++;
	*w = guarded ? (uint8_t)(*w | bit) : (uint8_t)(*w & ~bit);
	g->guarded += (unsigned)(guarded != 0);
	g->pos = (g->pos + 1) % g->window_n;
}

static int dominated(const struct guard *g)
{
	return g->guarded >= g->min_guarded && (uint64_t)g->guarded * 100 > (uint64_t)g->filled * g->share_pct;
}

static void pause_now(struct guard *g, const char *reason, uint64_t now)
{
	if (!g->paused) {
		g->paused = 1;
		g->next_probe_ms = now + GUARD_PROBE_MS;
		g->logged = 0;
		g->handed_back = 0;
	}
	snprintf(g->pause_reason, sizeof g->pause_reason, "%s", reason);
}

/* The pause's error line is repeated at most once per GUARD_LOG_MS. */
static int log_due(struct guard *g, uint64_t now)
{
	if (g->logged && now < g->last_log_ms + GUARD_LOG_MS)
		return 0;
	g->logged = 1;
	g->last_log_ms = now;
	return 1;
}

void guard_pause(struct guard *g, const char *reason, uint64_t now_mono_ms)
{
	pause_now(g, reason, now_mono_ms);
	if (log_due(g, now_mono_ms))
		log_error("%s: credentials or configuration problem (%s); provider paused, probing every %d s",
			  g->provider, reason, GUARD_PROBE_MS / 1000);
}

void guard_settle(struct guard *g, struct guard_verdict *v, uint64_t now)
{
	record(g, v->guarded);
	if (v->outcome == OUTCOME_DELIVERED) {
		g->delivered_seen = 1;
		if (g->paused) {
			g->paused = 0;
			log_info("%s: delivered again; pause (%s) ended", g->provider, g->pause_reason);
		}
		return;
	}
	if (v->guarded) {
		if (g->delivered_seen && !dominated(g)) {
			v->outcome = OUTCOME_TOKEN_DEAD;
			return;
		}
		v->outcome = OUTCOME_CREDENTIALS;
		if (!g->paused) {
			g->trips++;
			counter_add(CTR_GUARD_TRIPS, 1);
		}
		pause_now(g, v->reason, now);
		if (log_due(g, now))
			log_error("%s: mass-invalidation guard holds (%s): %u of the last %u answers guarded "
				  "(%s delivered since start); no token is deleted, provider paused, probing every %d s",
				  g->provider, v->reason, g->guarded, g->filled, g->delivered_seen ? "some" : "none",
				  GUARD_PROBE_MS / 1000);
	} else if (v->outcome == OUTCOME_CREDENTIALS) {
		guard_pause(g, v->reason, now);
	}
	if (v->outcome == OUTCOME_CREDENTIALS && v->retry_after_ms < GUARD_PROBE_MS)
		v->retry_after_ms = GUARD_PROBE_MS;
}

int guard_admit(struct guard *g, uint64_t now)
{
	if (!g->paused)
		return 1;
	if (now >= g->next_probe_ms) {
		g->next_probe_ms = now + GUARD_PROBE_MS;
		log_info("%s: paused (%s); sending one job as a probe", g->provider, g->pause_reason);
		return 1;
	}
	g->handed_back++;
	if (log_due(g, now))
		log_error("%s: still paused (%s): %u of the last %u answers guarded, %lu jobs handed back so far; "
			  "no token is deleted",
			  g->provider, g->pause_reason, g->guarded, g->filled, g->handed_back);
	return 0;
}

void guard_paused_verdict(const struct guard *g, struct guard_verdict *v)
{
	memset(v, 0, sizeof *v);
	v->outcome = OUTCOME_CREDENTIALS;
	v->retry_after_ms = GUARD_PROBE_MS;
	snprintf(v->reason, sizeof v->reason, "paused: %.100s", g->pause_reason);
}

static const char *outcome_name(uint32_t o)
{
	switch (o) {
	case OUTCOME_DELIVERED:
		return "delivered";
	case OUTCOME_TOKEN_DEAD:
		return "token_dead";
	case OUTCOME_RETRY:
		return "retry";
	case OUTCOME_MESSAGE_FAILED:
		return "message_failed";
	case OUTCOME_CREDENTIALS:
		return "credentials";
	case OUTCOME_TOKEN_SUSPECT:
		return "token_suspect";
	}
	return "unknown";
}

void guard_log_verdict(struct guard *g, uint64_t job_id, const char *token, size_t token_len,
		       const struct guard_verdict *v)
{
	uint64_t sec = mono_ms() / 1000;
	char tb[40], st[24] = "", ra[40] = "", more[48] = "";

	if (v->outcome == OUTCOME_DELIVERED)
		return;
	if (sec != g->line_second) {
		if (g->suppressed)
			snprintf(more, sizeof more, " (%u similar lines suppressed)", g->suppressed);
		g->line_second = sec;
		g->lines = 0;
		g->suppressed = 0;
	}
	if (g->lines++ >= GUARD_LINES_PER_S) {
		g->suppressed++;
		return;
	}
	if (v->status)
		snprintf(st, sizeof st, ", HTTP %ld", v->status);
	if (v->retry_after_ms)
		snprintf(ra, sizeof ra, ", retry after %llu ms", (unsigned long long)v->retry_after_ms);
	log_msg(v->outcome == OUTCOME_MESSAGE_FAILED || v->outcome == OUTCOME_CREDENTIALS ? LOG_WARN : LOG_INFO,
		"%s: job %llu token %s: %s (%s%s%s)%s", g->provider, (unsigned long long)job_id,
		token ? log_redact(token, token_len, tb, sizeof tb) : "-", outcome_name(v->outcome), v->reason, st, ra,
		more);
}
