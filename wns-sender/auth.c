/*
 * auth: the WNS sender's OAuth access token (docs/senders.md, "Access token"). Reads the client
 * secret once at start-up and asks the token endpoint of the configured flow (`live`:
 * login.live.com, scope notify.windows.com; `entra`: login.microsoftonline.com/{tenant}, scope
 * https://wns.windows.com/.default; the URL overridable for mocks) for a client-credentials token,
 * through the same HTTP client as the sends and without ever blocking the loop. The token is
 * refreshed when less than max(300 s, 10 % of its life) remain, and dropped after a 401 on a send.
 * A failed request (any answer but a usable 200, or no answer) is tried again after 10 s, doubling
 * to 5 min; jobs waiting for a token are then answered credentials. Trusts the secret file the
 * configuration names, and nothing in the token endpoint's answer beyond a printable token. Never
 * logs the secret or a token. The request, its answer and the back-off are common/sender/oauth.c's.
 */
#include "wns.h"
#include "counters.h"
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct oauth_policy wns_oauth = {
	.provider = "WNS", .header = "Authorization", .lenient = 1,
	.max_s = WNS_TOKEN_MAX_S, .default_s = WNS_TOKEN_DEFAULT_S, .margin_ms = WNS_REFRESH_MIN_MS, .margin_pct = 10,
	.backoff_first_ms = WNS_TOKEN_RETRY_FIRST_MS, .backoff_cap_ms = WNS_TOKEN_RETRY_CAP_MS,
	.refused_ms = 0, /* a refused request is retried like any failed one; the waiting jobs fail */
	.refresh_counter = CTR_WNS_TOKEN_REFRESHES,
};

int wns_auth_load(struct wns_auth *au, const struct conf_wns *c, char *err, size_t errlen)
{
	int entra;
	char url[1024];

	memset(au, 0, sizeof *au);
	oauth_init(&au->tok, &wns_oauth);
	if (strcmp(c->auth_flow, "live") != 0 && strcmp(c->auth_flow, "entra") != 0) {
		snprintf(err, errlen, "wns_sender.auth_flow must be \"live\" or \"entra\"");
		return -1;
	}
	entra = strcmp(c->auth_flow, "entra") == 0;
	if (c->token_url[0]) {
		snprintf(url, sizeof url, "%s", c->token_url);
	} else if (entra) {
		if (c->tenant[0] == '\0' || strpbrk(c->tenant, "/?#%@ ") != NULL) {
			snprintf(err, errlen, "wns_sender.tenant is required (and a plain name) with auth_flow \"entra\"");
			return -1;
		}
		snprintf(url, sizeof url, WNS_ENTRA_TOKEN_URL, c->tenant);
	} else {
		snprintf(url, sizeof url, "%s", WNS_LIVE_TOKEN_URL);
	}
	if (strncasecmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "wns_sender.token_url must be an https:// URL");
		return -1;
	}
	if (c->client_id[0] == '\0') {
		snprintf(err, errlen, "wns_sender.client_id is required");
		return -1;
	}
	if (c->client_secret_file[0] == '\0') {
		snprintf(err, errlen, "wns_sender.client_secret_file is required");
		return -1;
	}
	au->secret = oauth_secret_read(c->client_secret_file, WNS_SECRET_MAX, "wns_sender.client_secret_file", err, errlen);
	if (au->secret == NULL)
		return -1;
	au->token_url = strdup(url);
	au->scope = strdup(c->scope[0] ? c->scope : entra ? WNS_ENTRA_SCOPE : WNS_LIVE_SCOPE);
	au->client_id = strdup(c->client_id);
	if (au->token_url == NULL || au->scope == NULL || au->client_id == NULL) {
		wns_auth_free(au);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

void wns_auth_free(struct wns_auth *au)
{
	free(au->token_url);
	free(au->scope);
	free(au->client_id);
	oauth_wipe(au->secret);
	oauth_free(&au->tok);
	memset(au, 0, sizeof *au);
}

int wns_token_parse(const char *body, size_t len, char **access_token, long *expires_in, int *defaulted)
{
	return oauth_token_read(body, len, &wns_oauth, access_token, expires_in, defaulted);
}

uint64_t wns_refresh_margin_ms(long lifetime_s)
{
	return oauth_refresh_margin_ms(&wns_oauth, lifetime_s);
}

const char *wns_auth_header(const struct wns_auth *au, uint64_t now_mono_ms)
{
	return oauth_header(&au->tok, now_mono_ms);
}

int wns_auth_coming(const struct wns_auth *au, uint64_t now_mono_ms)
{
	return oauth_coming(&au->tok, now_mono_ms);
}

void wns_auth_tick(struct wns *w)
{
	struct wns_auth *au = &w->auth;

	if (oauth_wanted(&au->tok, mono_ms()))
		oauth_request(&au->tok, &w->s, au->token_url, oauth_client_form(au->client_id, au->secret, au->scope),
			      "out of memory");
}

void wns_auth_rejected(struct wns *w, unsigned gen)
{
	oauth_rejected(&w->auth.tok, gen);
}

int wns_auth_timeout_ms(const struct wns *w)
{
	return oauth_timeout_ms(&w->auth.tok);
}
