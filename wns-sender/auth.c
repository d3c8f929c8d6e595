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
 * logs the secret or a token.
 */
#include "wns.h"
#include "counters.h"
#include "daemon.h"
#include "log.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SECRET_MAX 4096

static char *read_secret(const char *path, char *err, size_t errlen)
{
	char buf[SECRET_MAX + 2], *s;
	size_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "wns_sender.client_secret_file %s: %s", path, strerror(errno));
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
		snprintf(err, errlen, "wns_sender.client_secret_file %s: empty, too long, not text, or out of memory",
			 path);
	return s;
}

int wns_auth_load(struct wns_auth *au, const struct conf_wns *c, char *err, size_t errlen)
{
	int entra;
	char url[1024];

	memset(au, 0, sizeof *au);
	oauth_init(&au->tok, "WNS", WNS_TOKEN_RETRY_FIRST_MS, WNS_TOKEN_RETRY_CAP_MS);
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
	if ((au->secret = read_secret(c->client_secret_file, err, errlen)) == NULL)
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

static void free_secret(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

void wns_auth_free(struct wns_auth *au)
{
	free(au->token_url);
	free(au->scope);
	free(au->client_id);
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

char *wns_token_form(const char *client_id, const char *secret, const char *scope)
{
	size_t n = 3 * (strlen(client_id) + strlen(secret) + strlen(scope)) + 128, o = 0;
	char *out = malloc(n);

	if (out == NULL)
		return NULL;
	o = put_pair(out, o, "grant_type", "client_credentials");
	o = put_pair(out, o, "client_id", client_id);
	o = put_pair(out, o, "client_secret", secret);
	put_pair(out, o, "scope", scope);
	return out;
}

int wns_token_parse(const char *body, size_t len, char **access_token, long *expires_in, int *defaulted)
{
	long exp;

	*defaulted = 0;
	if (oauth_token_parse(body, len, WNS_TOKEN_MAX_S, access_token, &exp) < 0)
		return -1;
	if (exp <= 0) {
		exp = WNS_TOKEN_DEFAULT_S;
		*defaulted = 1;
	}
	*expires_in = exp;
	return 0;
}

uint64_t wns_refresh_margin_ms(long lifetime_s)
{
	uint64_t life = (uint64_t)(lifetime_s > 0 ? lifetime_s : 0) * 1000, m = life / 10;

	if (m < WNS_REFRESH_MIN_MS)
		m = WNS_REFRESH_MIN_MS;
	if (m > life / 2)
		m = life / 2;
	return m;
}

const char *wns_auth_header(const struct wns_auth *au, uint64_t now_mono_ms)
{
	return oauth_header(&au->tok, now_mono_ms);
}

int wns_auth_coming(const struct wns_auth *au, uint64_t now_mono_ms)
{
	return au->tok.fetching || now_mono_ms >= au->tok.next_try_mono;
}

static void request_failed(struct wns *w, const char *why)
{
	struct wns_auth *au = &w->auth;
	uint64_t wait = oauth_failed(&au->tok);
	struct guard_verdict v;

	log_error("WNS: access token request to %s failed: %s; next try in %llu s", au->token_url, why,
		  (unsigned long long)(wait / 1000));
	if (wns_auth_header(au, mono_ms()) != NULL)
		return; /* an early refresh: the current token still works meanwhile */
	memset(&v, 0, sizeof v);
	v.outcome = OUTCOME_CREDENTIALS;
	v.retry_after_ms = wait;
	snprintf(v.reason, sizeof v.reason, "no WNS access token: %.90s", why);
	sender_fail_waiting(&w->s, &v);
}

static void on_token(void *ctx, const struct h2c_response *r)
{
	struct wns *w = ctx;
	struct wns_auth *au = &w->auth;
	char *tok = NULL, why[200];
	long expires_in = 0;
	int defaulted, stored;

	au->tok.fetching = 0;
	if (r->aborted)
		return;
	if (r->status != 200) {
		oauth_answer_text(r, why, sizeof why);
		request_failed(w, why);
		return;
	}
	if (wns_token_parse(r->body, r->body_len, &tok, &expires_in, &defaulted) < 0) {
		request_failed(w, "HTTP 200 without a usable access_token");
		return;
	}
	if (defaulted)
		log_warn("WNS: token endpoint gave no usable expires_in; assuming %d s", WNS_TOKEN_DEFAULT_S);
	stored = oauth_store(&au->tok, "Authorization", tok, expires_in, wns_refresh_margin_ms(expires_in));
	free_secret(tok);
	if (stored < 0) {
		request_failed(w, "out of memory");
		return;
	}
	counter_add(CTR_WNS_TOKEN_REFRESHES, 1);
	sender_release_waiting(&w->s);
}

void wns_auth_tick(struct wns *w)
{
	struct wns_auth *au = &w->auth;
	uint64_t now = mono_ms();
	const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL};
	char *form;

	if (!oauth_wanted(&au->tok, now))
		return;
	if ((form = wns_token_form(au->client_id, au->secret, au->scope)) == NULL) {
		request_failed(w, "out of memory");
		return;
	}
	if (sender_http_submit(&w->s, au->token_url, hdrs, form, strlen(form), on_token, w) == 0) {
		au->tok.fetching = 1;
		log_info("WNS: requesting an access token from %s", au->token_url);
	} else {
		request_failed(w, "cannot submit the request");
	}
	free_secret(form);
}

void wns_auth_rejected(struct wns *w, unsigned gen)
{
	oauth_rejected(&w->auth.tok, gen);
}

int wns_auth_timeout_ms(const struct wns *w)
{
	return oauth_timeout_ms(&w->auth.tok);
}
