/*
 * guard: what the senders make of provider answers once classified — the verdict every
 * classifier fills in, and the mass-invalidation guard with the provider pause
 * (docs/senders.md, "Mass-invalidation guard"). One struct guard per provider configuration of a
 * sender.
 */
#ifndef GUARD_H
#define GUARD_H
#include <stddef.h>
#include <stdint.h>

/* Defaults of the limits; the configuration may set others (guard_set_limits). */
#define GUARD_WINDOW 100	  /* N: recent provider answers considered */
#define GUARD_SHARE_PCT 50	  /* guarded answers must be more than this share of them */
#define GUARD_MIN_GUARDED 10	  /* M: and at least this many */
#define GUARD_WINDOW_MAX 100000	  /* the largest N the configuration may ask for */
#define GUARD_PROBE_MS 60000	  /* one probe job per interval while paused */
#define GUARD_LOG_MS 60000	  /* the "paused" error line at most this often */
#define GUARD_REASON_MAX 128	  /* TAG_REASON bound */
#define GUARD_LINES_PER_S 20	  /* outcome log lines per second, the rest counted */

/* One provider answer reduced to what the router needs (docs/senders.md, "Outcomes and retries").
 * Classifiers are pure functions filling this; the sender and the guard adjust it before it is
 * reported. */
struct guard_verdict {
	uint32_t outcome;	  /* enum frame_outcome */
	uint64_t retry_after_ms;  /* 0 = the router's own back-off */
	uint64_t timestamp_ms;	  /* token_dead: provider's time (APNs 410), else 0 */
	long status;		  /* HTTP status, 0 for a transport failure */
	int guarded;		  /* token_dead that the guard must confirm */
	int refresh_auth;	  /* our credential expired: refresh it and retry this send once */
	char reason[GUARD_REASON_MAX + 1];
};

struct guard {
	const char *provider;	  /* for log lines: "APNs", "FCM" */
	int delivered_seen;	  /* since start (there is no reload yet) */
	unsigned window_n, min_guarded, share_pct; /* N, M and the share in use */
	uint8_t window[(GUARD_WINDOW_MAX + 7) / 8]; /* the first window_n bits: 1 = guarded answer */
	unsigned pos, filled, guarded;
	int paused;
	char pause_reason[GUARD_REASON_MAX + 1];
	uint64_t next_probe_ms, last_log_ms;
	int logged;		  /* the pause has been logged at last_log_ms */
	uint64_t line_second;	  /* outcome lines: at most GUARD_LINES_PER_S per second */
	unsigned lines, suppressed;
	unsigned long trips;	  /* times the guard started a pause */
	unsigned long handed_back; /* jobs answered unsent during the current pause */
};

/* With the default limits. */
void guard_init(struct guard *g, const char *provider);
/* Sets N, M and the share (percent) from the configuration; a value ≤ 0 keeps the default, N is
 * capped at GUARD_WINDOW_MAX. Call before the first answer. */
void guard_set_limits(struct guard *g, long window, long min_guarded, long share_pct);
/* Records one answer actually received from the provider (never a timeout or connection
 * failure) and settles the verdict: a guarded token_dead becomes credentials while the guard
 * holds (a pause it starts so is counted as CTR_GUARD_TRIPS); credentials pause the provider;
 * delivered ends a pause. */
void guard_settle(struct guard *g, struct guard_verdict *v, uint64_t now_mono_ms);
/* Pauses the provider for a credentials problem found outside a send (e.g. OAuth). */
void guard_pause(struct guard *g, const char *reason, uint64_t now_mono_ms);
/* Whether a new job may go to the provider now: always when not paused; when paused, one
 * probe per GUARD_PROBE_MS (the call that returns 1 uses it up). A refused job is counted,
 * and the pause's error line repeated at most once a minute. */
int guard_admit(struct guard *g, uint64_t now_mono_ms);
/* Fills v for a job handed back unsent while paused: credentials, retry after GUARD_PROBE_MS. */
void guard_paused_verdict(const struct guard *g, struct guard_verdict *v);
/* Logs a non-delivered verdict for a job (token truncated), rate-limited per provider. */
void guard_log_verdict(struct guard *g, uint64_t job_id, const char *token, size_t token_len,
		       const struct guard_verdict *v);
/* Copies a provider reason into v->reason, keeping printable ASCII only, bounded. */
void guard_set_reason(struct guard_verdict *v, const char *s, size_t n);
#endif
