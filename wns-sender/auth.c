/*
 * auth: the WNS sender's OAuth access token (uwpx-xmpp.md §3.4). Reads the client secret once
 * at start-up and asks the token endpoint of the configured flow (`live`: login.live.com,
 * scope notify.windows.com; `entra`: login.microsoftonline.com/{tenant}, scope
 * https://wns.windows.com/.default; the URL overridable for mocks) for a client-credentials
 * token, through the same HTTP client as the sends and without ever blocking the loop. The
 * token is refreshed when less than max(300 s, 10 % of its life) remain, and dropped after a
 * 401 on a send. A failed request (any answer but a usable 200, or no answer) is tried again
 * after 10 s, doubling to 5 min; jobs waiting for a token are then answered credentials.
 * Trusts the secret file the configuration names, and nothing in the token endpoint's answer
 * beyond a printable token. Never logs the secret or a token.
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
	au->backoff_ms = WNS_TOKEN_RETRY_FIRST_MS;
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
	free_secret(au->header);
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
	json_t *root = json_loadb(body, len, 0, NULL), *t, *e;
	const char *s;
	long exp = -1;

	*access_token = NULL;
	*defaulted = 0;
	t = json_is_object(root) ? json_object_get(root, "access_token") : NULL;
	e = json_is_object(root) ? json_object_get(root, "expires_in") : NULL;
	if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) > 4096)
		goto fail;
	/* It goes into a header line: printable ASCII only. */
	for (s = json_string_value(t); *s; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			goto fail;
	if (json_is_integer(e) && json_integer_value(e) > 0) {
		exp = json_integer_value(e) > WNS_TOKEN_MAX_S ? WNS_TOKEN_MAX_S : (long)json_integer_value(e);
	} else if (json_is_string(e)) {
		/* A decimal string (Entra ID): digits only, nothing else. */
		const char *p = json_string_value(e);
		long v = 0;
		for (s = p; *s >= '0' && *s <= '9'; s++)
			v = v > WNS_TOKEN_MAX_S ? v : v * 10 + (*s - '0');
		if (s != p && *s == '\0' && v > 0)
			exp = v > WNS_TOKEN_MAX_S ? WNS_TOKEN_MAX_S : v;
	}
	if (exp <= 0) {
		exp = WNS_TOKEN_DEFAULT_S;
		*defaulted = 1;
	}
	if ((*access_token = strdup(json_string_value(t))) == NULL)
		goto fail;
	*expires_in = exp;
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	return -1;
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
	return au->header && now_mono_ms < au->expires_mono ? au->header : NULL;
}

int wns_auth_coming(const struct wns_auth *au, uint64_t now_mono_ms)
{
	return au->fetching || now_mono_ms >= au->next_try_mono;
}

static void request_failed(struct wns *w, const char *why)
{
	struct wns_auth *au = &w->auth;
	uint64_t now = mono_ms(), wait = au->backoff_ms;
	struct guard_verdict v;

	log_error("WNS: access token request to %s failed: %s; next try in %llu s", au->token_url, why,
		  (unsigned long long)(wait / 1000));
	au->next_try_mono = now + wait;
	au->backoff_ms = wait * 2 > WNS_TOKEN_RETRY_CAP_MS ? WNS_TOKEN_RETRY_CAP_MS : wait * 2;
	if (wns_auth_header(au, now) != NULL)
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
	int defaulted;
	size_t n;
	uint64_t now;

	au->fetching = 0;
	if (r->aborted)
		return;
	if (r->status == 0) {
		snprintf(why, sizeof why, "%s", r->error_text);
		request_failed(w, why);
		return;
	}
	if (r->status != 200) {
		json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
		json_t *e = json_is_object(root) ? json_object_get(root, "error") : NULL;
		json_t *d = json_is_object(root) ? json_object_get(root, "error_description") : NULL;
		snprintf(why, sizeof why, "HTTP %ld%s%.60s%s%.100s", r->status, json_is_string(e) ? " " : "",
			 json_is_string(e) ? json_string_value(e) : "", json_is_string(d) ? ": " : "",
			 json_is_string(d) ? json_string_value(d) : "");
		json_decref(root);
		request_failed(w, why);
		return;
	}
	if (wns_token_parse(r->body, r->body_len, &tok, &expires_in, &defaulted) < 0) {
		request_failed(w, "HTTP 200 without a usable access_token");
		return;
	}
	if (defaulted)
		log_warn("WNS: token endpoint gave no usable expires_in; assuming %d s", WNS_TOKEN_DEFAULT_S);
	n = strlen(tok) + sizeof "Authorization: Bearer ";
	free_secret(au->header);
	if ((au->header = malloc(n)) != NULL) {
		now = mono_ms();
		snprintf(au->header, n, "Authorization: Bearer %s", tok);
		au->expires_mono = now + (uint64_t)expires_in * 1000;
		au->refresh_mono = au->expires_mono - wns_refresh_margin_ms(expires_in);
		au->gen++;
		au->backoff_ms = WNS_TOKEN_RETRY_FIRST_MS;
		au->next_try_mono = 0;
		counter_add(CTR_WNS_TOKEN_REFRESHES, 1);
		log_info("WNS: access token obtained (expires in %ld s, generation %u)", expires_in, au->gen);
	}
	free_secret(tok);
	if (au->header)
		sender_release_waiting(&w->s);
	else
		request_failed(w, "out of memory");
}

void wns_auth_tick(struct wns *w)
{
	struct wns_auth *au = &w->auth;
	uint64_t now = mono_ms();
	const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL};
	char *form;

	if (au->fetching || now < au->next_try_mono || (au->header != NULL && now < au->refresh_mono))
		return;
	if ((form = wns_token_form(au->client_id, au->secret, au->scope)) == NULL) {
		request_failed(w, "out of memory");
		return;
	}
	if (h2c_submit(w->s.h2, au->token_url, hdrs, form, strlen(form), on_token, w) == 0) {
		au->fetching = 1;
		log_info("WNS: requesting an access token from %s", au->token_url);
	} else {
		request_failed(w, "cannot submit the request");
	}
	free_secret(form);
}

void wns_auth_rejected(struct wns *w, unsigned gen)
{
	struct wns_auth *au = &w->auth;

	if (au->header == NULL || gen != au->gen)
		return; /* already replaced since that send */
	log_warn("WNS: access token rejected (401); requesting a new one");
	free_secret(au->header);
	au->header = NULL;
}

int wns_auth_timeout_ms(const struct wns *w)
{
	const struct wns_auth *au = &w->auth;
	uint64_t now = mono_ms(), due;

	if (au->fetching)
		return -1;
	due = au->header ? au->refresh_mono : 0;
	if (au->next_try_mono > due)
		due = au->next_try_mono;
	if (due <= now)
		return 0;
	return due - now > 60000 ? 60000 : (int)(due - now);
}
