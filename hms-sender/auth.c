/*
 * auth: the HMS sender's OAuth access token (docs/senders.md, "HMS"). Reads the app secret
 * once at start-up and asks the token endpoint for a client-credentials token (client_id =
 * the App ID, client_secret = the App Secret), through the same HTTP client as the sends and
 * without ever blocking the loop. The token is refreshed when less than 5 minutes (at most
 * half its life) remain, and dropped after a send is refused as unauthenticated. A refused
 * request (400/401) pauses the provider and is tried again after a minute; a failed one (5xx,
 * transport, an unusable 200) is tried again with back-off. Trusts the secret file the
 * configuration names, and nothing in the token endpoint's answer beyond a printable token.
 * Never logs the secret or a token. The request, its answer and the back-off are common/sender/oauth.c's.
 */
#include "hms.h"
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct oauth_policy hms_oauth = {
	.provider = "HMS", .header = "Authorization",
	.max_s = HMS_TOKEN_MAX_S, .default_s = HMS_TOKEN_DEFAULT_S, .margin_ms = HMS_REFRESH_MARGIN_MS,
	.backoff_first_ms = HMS_OAUTH_RETRY_FIRST_MS, .backoff_cap_ms = HMS_OAUTH_RETRY_CAP_MS,
	.refused_ms = HMS_OAUTH_REFUSED_MS, /* 400/401: the provider pauses, the waiting jobs fail */
	.refresh_counter = -1,
};

/* An App ID is a decimal number; anything else would change the send URL's path. */
static int app_id_ok(const char *p)
{
	size_t n = strlen(p);
	return n > 0 && n <= 32 && strspn(p, "0123456789") == n;
}

int hms_auth_load(struct hms_auth *au, const struct conf_hms *c, char *err, size_t errlen)
{
	memset(au, 0, sizeof *au);
	oauth_init(&au->tok, &hms_oauth);
	if (strncasecmp(c->token_url, "https://", 8) != 0) {
		snprintf(err, errlen, "hms_sender.token_url must be an https:// URL");
		return -1;
	}
	if (!app_id_ok(c->app_id)) {
		snprintf(err, errlen, "hms_sender.app_id is required (the App ID: decimal digits)");
		return -1;
	}
	if (c->app_secret_file[0] == '\0') {
		snprintf(err, errlen, "hms_sender.app_secret_file is required");
		return -1;
	}
	au->secret = oauth_secret_read(c->app_secret_file, HMS_SECRET_MAX, "hms_sender.app_secret_file", err, errlen);
	if (au->secret == NULL)
		return -1;
	au->token_url = strdup(c->token_url);
	au->app_id = strdup(c->app_id);
	if (au->token_url == NULL || au->app_id == NULL) {
		hms_auth_free(au);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

void hms_auth_free(struct hms_auth *au)
{
	free(au->token_url);
	free(au->app_id);
	oauth_wipe(au->secret);
	oauth_free(&au->tok);
	memset(au, 0, sizeof *au);
}

int hms_token_parse(const char *body, size_t len, char **access_token, long *expires_in)
{
	int defaulted;

	return oauth_token_read(body, len, &hms_oauth, access_token, expires_in, &defaulted);
}

const char *hms_auth_header(const struct hms_auth *au, uint64_t now_mono_ms)
{
	return oauth_header(&au->tok, now_mono_ms);
}

void hms_auth_tick(struct hms *h)
{
	struct hms_auth *au = &h->auth;

	if (oauth_wanted(&au->tok, mono_ms()))
		oauth_request(&au->tok, &h->s, au->token_url, oauth_client_form(au->app_id, au->secret, NULL),
			      "out of memory");
}

void hms_auth_rejected(struct hms *h, unsigned gen)
{
	oauth_rejected(&h->auth.tok, gen);
}

int hms_auth_timeout_ms(const struct hms *h)
{
	return oauth_timeout_ms(&h->auth.tok);
}
