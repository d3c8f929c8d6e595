/*
 * auth: the HMS sender's OAuth access token (docs/senders.md, "HMS"). Reads the app secret
 * once at start-up and asks the token endpoint for a client-credentials token (client_id =
 * the App ID, client_secret = the App Secret), through the same HTTP client as the sends and
 * without ever blocking the loop. The token is refreshed when less than 5 minutes (at most
 * half its life) remain, and dropped after a send is refused as unauthenticated. A refused
 * request (400/401) pauses the provider and is tried again after a minute; a failed one (5xx,
 * transport, an unusable 200) is tried again with back-off. Trusts the secret file the
 * configuration names, and nothing in the token endpoint's answer beyond a printable token.
 * Never logs the secret or a token.
 */
#include "hms.h"
#include "daemon.h"
#include "log.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SECRET_MAX 1024

static void free_secret(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

static char *read_secret(const char *path, char *err, size_t errlen)
{
	char buf[SECRET_MAX + 2], *s;
	size_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "hms_sender.app_secret_file %s: %s", path, strerror(errno));
		return NULL;
	}
	while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	s = n == 0 || n > SECRET_MAX || strlen(buf) != n ? NULL : strdup(buf);
	memset(buf, 0, sizeof buf);
	if (s == NULL)
		snprintf(err, errlen, "hms_sender.app_secret_file %s: empty, too long, not text, or out of memory", path);
	return s;
}

/* An App ID is a decimal number; anything else would change the send URL's path. */
static int app_id_ok(const char *p)
{
	size_t n = strlen(p);
	return n > 0 && n <= 32 && strspn(p, "0123456789") == n;
}

int hms_auth_load(struct hms_auth *au, const struct conf_hms *c, char *err, size_t errlen)
{
	memset(au, 0, sizeof *au);
	oauth_init(&au->tok, "HMS", HMS_OAUTH_RETRY_FIRST_MS, HMS_OAUTH_RETRY_CAP_MS);
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
	if ((au->secret = read_secret(c->app_secret_file, err, errlen)) == NULL)
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
	free_secret(au->secret);
	oauth_free(&au->tok);
	memset(au, 0, sizeof *au);
}

/* Appends name=value (value percent-encoded outside the unreserved characters) at o. */
static size_t put_pair(char *out, size_t o, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";

	if (o > 0)
		out[o++] = '&';
	o += (size_t)sprintf(out + o, "%s=", name);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '.' || *p == '_' || *p == '~') {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return o;
}

char *hms_token_form(const char *app_id, const char *secret)
{
	char *out = malloc(3 * (strlen(app_id) + strlen(secret)) + 96);
	size_t o = 0;

	if (out == NULL)
		return NULL;
	o = put_pair(out, o, "grant_type", "client_credentials");
	o = put_pair(out, o, "client_id", app_id);
	put_pair(out, o, "client_secret", secret);
	return out;
}

int hms_token_parse(const char *body, size_t len, char **access_token, long *expires_in)
{
	long exp;

	if (oauth_token_parse(body, len, HMS_TOKEN_MAX_S, access_token, &exp) < 0)
		return -1;
	if (exp < 0) { /* present but not a positive number: dead at birth */
		free_secret(*access_token);
		*access_token = NULL;
		return -1;
	}
	*expires_in = exp == 0 ? HMS_TOKEN_DEFAULT_S : exp;
	return 0;
}

const char *hms_auth_header(const struct hms_auth *au, uint64_t now_mono_ms)
{
	return oauth_header(&au->tok, now_mono_ms);
}

static void request_failed(struct hms *h, const char *why, int refused)
{
	struct hms_auth *au = &h->auth;
	uint64_t now = mono_ms(), wait;
	struct guard_verdict v;

	memset(&v, 0, sizeof v);
	if (refused) {
		snprintf(v.reason, sizeof v.reason, "HMS token endpoint refused: %.90s", why);
		log_error("HMS: access token refused by %s: %s", au->token_url, why);
		au->tok.next_try_mono = now + HMS_OAUTH_REFUSED_MS;
		wait = HMS_OAUTH_REFUSED_MS;
	} else {
		wait = oauth_failed(&au->tok);
		snprintf(v.reason, sizeof v.reason, "no HMS access token: %.90s", why);
		log_warn("HMS: access token request to %s failed: %s; next try in %llu ms", au->token_url, why,
			 (unsigned long long)wait);
	}
	if (hms_auth_header(au, now) != NULL)
		return; /* an early refresh: the current token still works meanwhile */
	if (refused)
		guard_pause(&h->s.guard, v.reason, now);
	v.outcome = OUTCOME_CREDENTIALS;
	v.retry_after_ms = wait;
	sender_fail_waiting(&h->s, &v);
}

static void on_token(void *ctx, const struct h2c_response *r)
{
	struct hms *h = ctx;
	struct hms_auth *au = &h->auth;
	char *tok = NULL, why[200];
	long expires_in = 0;
	uint64_t margin;
	int stored;

	au->tok.fetching = 0;
	if (r->aborted)
		return;
	if (r->status != 200) {
		oauth_answer_text(r, why, sizeof why);
		request_failed(h, why, r->status == 400 || r->status == 401);
		return;
	}
	if (hms_token_parse(r->body, r->body_len, &tok, &expires_in) < 0) {
		request_failed(h, "HTTP 200 without a usable access_token", 0);
		return;
	}
	/* Short-lived tokens (mocks) are refreshed at half their life, not constantly. */
	margin = (uint64_t)expires_in * 1000 / 2;
	if (margin > HMS_REFRESH_MARGIN_MS)
		margin = HMS_REFRESH_MARGIN_MS;
	stored = oauth_store(&au->tok, "Authorization", tok, expires_in, margin);
	free_secret(tok);
	if (stored < 0) {
		request_failed(h, "out of memory", 0);
		return;
	}
	sender_release_waiting(&h->s);
}

void hms_auth_tick(struct hms *h)
{
	struct hms_auth *au = &h->auth;
	uint64_t now = mono_ms();
	const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL};
	char *form;

	if (!oauth_wanted(&au->tok, now))
		return;
	if ((form = hms_token_form(au->app_id, au->secret)) == NULL) {
		request_failed(h, "out of memory", 0);
		return;
	}
	if (h2c_submit(h->s.h2, au->token_url, hdrs, form, strlen(form), on_token, h) == 0) {
		au->tok.fetching = 1;
		log_info("HMS: requesting an access token from %s", au->token_url);
	} else {
		request_failed(h, "cannot submit the request", 0);
	}
	free_secret(form);
}

void hms_auth_rejected(struct hms *h, unsigned gen)
{
	oauth_rejected(&h->auth.tok, gen);
}

int hms_auth_timeout_ms(const struct hms *h)
{
	return oauth_timeout_ms(&h->auth.tok);
}
