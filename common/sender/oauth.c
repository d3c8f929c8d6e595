/*
 * oauth: the access token of fcm-sender, wns-sender and hms-sender (oauth.h): its request and
 * answer, its bookkeeping, the client-credentials form and secret. Trusts the secret file the
 * configuration names, and nothing in a token endpoint's answer beyond a printable token and a
 * number; holds the current header, wiped when replaced or dropped, as are forms and secrets.
 */
#include "oauth.h"
#include "counters.h"
#include "daemon.h"
#include "guard.h"
#include "log.h"
#include "sender_job.h"
#include "sender_loop.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void oauth_wipe(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

void oauth_init(struct oauth *o, const struct oauth_policy *pol)
{
	memset(o, 0, sizeof *o);
	o->pol = pol;
	o->provider = pol->provider;
	o->backoff_first_ms = o->backoff_ms = pol->backoff_first_ms;
	o->backoff_cap_ms = pol->backoff_cap_ms;
}

char *oauth_secret_read(const char *path, size_t max, const char *what, char *err, size_t errlen)
{
	char buf[OAUTH_TOKEN_MAX + 2], *s;
	size_t n = 0, cap = max + 1 < sizeof buf - 1 ? max + 1 : sizeof buf - 1;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	while (n < cap && (r = read(fd, buf + n, cap - n)) > 0)
		n += (size_t)r;
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	s = n == 0 || n > max || strlen(buf) != n ? NULL : strdup(buf);
	memset(buf, 0, sizeof buf);
	if (s == NULL)
		snprintf(err, errlen, "%s %s: empty, too long, not text, or out of memory", what, path);
	return s;
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

char *oauth_client_form(const char *client_id, const char *secret, const char *scope)
{
	size_t n = 3 * (strlen(client_id) + strlen(secret) + (scope ? strlen(scope) : 0)) + 128, o = 0;
	char *out = malloc(n);

	if (out == NULL)
		return NULL;
	o = put_pair(out, o, "grant_type", "client_credentials");
	o = put_pair(out, o, "client_id", client_id);
	o = put_pair(out, o, "client_secret", secret);
	if (scope)
		put_pair(out, o, "scope", scope);
	return out;
}

void oauth_free(struct oauth *o)
{
	oauth_wipe(o->header);
	o->header = NULL;
}

/* A positive decimal number of seconds, capped; -1 when it is not one. */
static long seconds(const json_t *e, long max_s)
{
	if (json_is_integer(e))
		return json_integer_value(e) <= 0 ? -1 : json_integer_value(e) > max_s ? max_s : (long)json_integer_value(e);
	if (json_is_string(e)) {
		const char *p = json_string_value(e), *s;
		long v = 0;
		for (s = p; *s >= '0' && *s <= '9'; s++)
			v = v > max_s ? v : v * 10 + (*s - '0');
		if (s == p || *s != '\0' || v <= 0)
			return -1;
		return v > max_s ? max_s : v;
	}
	return -1;
}

int oauth_token_parse(const char *body, size_t len, long max_s, char **token, long *expires_in)
{
	json_t *root = json_loadb(body, len, 0, NULL), *t, *e;
	const char *s;

	*token = NULL;
	t = json_is_object(root) ? json_object_get(root, "access_token") : NULL;
	e = json_is_object(root) ? json_object_get(root, "expires_in") : NULL;
	if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) > OAUTH_TOKEN_MAX)
		goto fail;
	for (s = json_string_value(t); *s; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			goto fail;
	if ((*token = strdup(json_string_value(t))) == NULL)
		goto fail;
	*expires_in = e == NULL ? 0 : seconds(e, max_s);
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	return -1;
}

int oauth_token_read(const char *body, size_t len, const struct oauth_policy *pol, char **token,
		     long *expires_in, int *defaulted)
{
	long exp;

	*defaulted = 0;
	if (oauth_token_parse(body, len, pol->max_s, token, &exp) < 0)
		return -1;
	if (exp < 0 && !pol->lenient) { /* present but not a positive number: dead at birth */
		oauth_wipe(*token);
		*token = NULL;
		return -1;
	}
	if (exp <= 0) {
		exp = pol->default_s;
		*defaulted = 1;
	}
	*expires_in = exp;
	return 0;
}

uint64_t oauth_refresh_margin_ms(const struct oauth_policy *pol, long lifetime_s)
{
	uint64_t life = (uint64_t)(lifetime_s > 0 ? lifetime_s : 0) * 1000, m = life / 100 * pol->margin_pct;

	if (m < pol->margin_ms)
		m = pol->margin_ms;
	/* Short-lived tokens (mocks) are refreshed at half their life, not constantly. */
	if (m > life / 2)
		m = life / 2;
	return m;
}

void oauth_answer_text(const struct h2c_response *r, char *why, size_t len)
{
	json_t *root, *e, *d;

	if (r->status == 0) {
		snprintf(why, len, "%s", r->error_text);
		return;
	}
	root = json_loadb(r->body, r->body_len, 0, NULL);
	e = json_is_object(root) ? json_object_get(root, "error") : NULL;
	d = json_is_object(root) ? json_object_get(root, "error_description") : NULL;
	snprintf(why, len, "HTTP %ld%s%.60s%s%.100s", r->status, json_is_string(e) ? " " : "",
		 json_is_string(e) ? json_string_value(e) : "", json_is_string(d) ? ": " : "",
		 json_is_string(d) ? json_string_value(d) : "");
	json_decref(root);
}

const char *oauth_header(const struct oauth *o, uint64_t now_mono)
{
	return o->header && now_mono < o->expires_mono ? o->header : NULL;
}

int oauth_wanted(const struct oauth *o, uint64_t now_mono)
{
	return !o->fetching && now_mono >= o->next_try_mono && (o->header == NULL || now_mono >= o->refresh_mono);
}

int oauth_coming(const struct oauth *o, uint64_t now_mono)
{
	return o->fetching || now_mono >= o->next_try_mono;
}

int oauth_timeout_ms(const struct oauth *o)
{
	uint64_t now = mono_ms(), due;

	if (o->fetching)
		return -1;
	due = o->header ? o->refresh_mono : 0;
	if (o->next_try_mono > due)
		due = o->next_try_mono;
	if (due <= now)
		return 0;
	return due - now > 60000 ? 60000 : (int)(due - now);
}

int oauth_store(struct oauth *o, const char *prefix, const char *token, long expires_in, uint64_t refresh_margin_ms)
{
	size_t n = strlen(prefix) + strlen(token) + sizeof ": Bearer ";
	uint64_t now = mono_ms();
	char *h = malloc(n);

	if (h == NULL)
		return -1;
	snprintf(h, n, "%s: Bearer %s", prefix, token);
	oauth_wipe(o->header);
	o->header = h;
	o->expires_mono = now + (uint64_t)expires_in * 1000;
	o->refresh_mono = o->expires_mono - refresh_margin_ms;
	o->gen++;
	o->backoff_ms = o->backoff_first_ms;
	o->next_try_mono = 0;
	log_info("%s: access token obtained (expires in %ld s, generation %u)", o->provider, expires_in, o->gen);
	return 0;
}

uint64_t oauth_failed(struct oauth *o)
{
	uint64_t wait = o->backoff_ms;

	o->next_try_mono = mono_ms() + wait;
	o->backoff_ms = wait * 2 > o->backoff_cap_ms ? o->backoff_cap_ms : wait * 2;
	return wait;
}

void oauth_rejected(struct oauth *o, unsigned gen)
{
	if (o->header == NULL || gen != o->gen)
		return; /* already replaced since that send */
	log_warn("%s: access token rejected (401); requesting a new one", o->provider);
	oauth_wipe(o->header);
	o->header = NULL;
	o->next_try_mono = 0;
}

void oauth_request_failed(struct oauth *o, const char *why, int refused)
{
	const struct oauth_policy *p = o->pol;
	uint64_t now = mono_ms(), wait;
	struct guard_verdict v;

	memset(&v, 0, sizeof v);
	refused = refused && p->refused_ms > 0;
	if (refused) {
		snprintf(v.reason, sizeof v.reason, "%s token endpoint refused: %.90s", o->provider, why);
		log_error("%s: access token refused by %s: %s", o->provider, o->url, why);
		o->next_try_mono = now + p->refused_ms;
		wait = p->refused_ms;
	} else {
		wait = oauth_failed(o);
		snprintf(v.reason, sizeof v.reason, "no %s access token: %.90s", o->provider, why);
		log_warn("%s: access token request to %s failed: %s; next try in %llu s", o->provider, o->url, why,
			 (unsigned long long)(wait / 1000));
	}
	if (oauth_header(o, now) != NULL || o->s == NULL || (!refused && p->keep_waiting))
		return; /* an early refresh: the current token still works meanwhile */
	if (refused)
		guard_pause(&o->s->guard, v.reason, now);
	v.outcome = OUTCOME_CREDENTIALS;
	v.retry_after_ms = wait;
	sender_fail_waiting(o->s, &v);
}

static void on_token(void *ctx, const struct h2c_response *r)
{
	struct oauth *o = ctx;
	char *tok = NULL, why[200];
	long expires_in = 0;
	int defaulted, stored;

	o->fetching = 0;
	if (r->aborted)
		return;
	if (r->status != 200) {
		oauth_answer_text(r, why, sizeof why);
		oauth_request_failed(o, why, r->status == 400 || r->status == 401);
		return;
	}
	if (oauth_token_read(r->body, r->body_len, o->pol, &tok, &expires_in, &defaulted) < 0) {
		oauth_request_failed(o, "HTTP 200 without a usable access_token", 0);
		return;
	}
	if (defaulted && o->pol->lenient)
		log_warn("%s: token endpoint gave no usable expires_in; assuming %ld s", o->provider, expires_in);
	stored = oauth_store(o, o->pol->header, tok, expires_in, oauth_refresh_margin_ms(o->pol, expires_in));
	oauth_wipe(tok);
	if (stored < 0) {
		oauth_request_failed(o, "out of memory", 0);
		return;
	}
	if (o->pol->refresh_counter >= 0)
		counter_add((enum counter_id)o->pol->refresh_counter, 1);
	sender_release_waiting(o->s);
}

void oauth_request(struct oauth *o, struct sender *s, const char *url, char *form, const char *why_no_form)
{
	static const char *const hdrs[] = {"content-type: application/x-www-form-urlencoded",
					   "accept: application/json", NULL};

	o->s = s;
	o->url = url;
	if (form == NULL) {
		oauth_request_failed(o, why_no_form, 0);
		return;
	}
	if (sender_http_submit(s, url, hdrs, form, strlen(form), on_token, o) == 0) {
		o->fetching = 1;
		log_info("%s: requesting an access token from %s", o->provider, url);
	} else {
		oauth_request_failed(o, "cannot submit the request", 0);
	}
	oauth_wipe(form);
}
