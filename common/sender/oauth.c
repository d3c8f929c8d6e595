/*
 * oauth: the access-token bookkeeping shared by fcm-sender and wns-sender (oauth.h). Trusts
 * nothing in a token endpoint's answer beyond a printable token and a number; holds the
 * current header, wiped when replaced or dropped.
 */
#include "oauth.h"
#include "daemon.h"
#include "log.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void wipe(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

void oauth_init(struct oauth *o, const char *provider, uint64_t backoff_first_ms, uint64_t backoff_cap_ms)
{
	memset(o, 0, sizeof *o);
	o->provider = provider;
	o->backoff_first_ms = o->backoff_ms = backoff_first_ms;
	o->backoff_cap_ms = backoff_cap_ms;
}

void oauth_free(struct oauth *o)
{
	wipe(o->header);
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
	wipe(o->header);
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
	wipe(o->header);
	o->header = NULL;
	o->next_try_mono = 0;
}
