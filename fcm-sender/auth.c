/*
 * auth: the FCM sender's credentials. Reads the service account once at start-up, signs an
 * RS256 assertion and exchanges it at the token URI for an OAuth access token, through the
 * same HTTP/2 client as the sends and without ever blocking the loop. The token is reused
 * until less than 5 minutes remain, and dropped after a 401 on a send. A refused exchange
 * (400/401) pauses the provider; a failed one (5xx, transport) is retried with back-off.
 * Trusts the service-account file the configuration names, and nothing in the token
 * endpoint's answer beyond a printable token. Never logs the key, the assertion or the token.
 */
#include "fcm.h"
#include "daemon.h"
#include "jwt.h"
#include "sender/sender_jwt.h"
#include "log.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *dup_member(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) && json_string_length(v) > 0 ? strdup(json_string_value(v)) : NULL;
}

static int project_ok(const char *p)
{
	if (*p == '\0')
		return 0;
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.' || *p == ':' || *p == '_'))
			return 0;
	return 1;
}

int fcm_auth_load(struct fcm_auth *au, const struct conf_fcm *c, char *err, size_t errlen)
{
	json_error_t je;
	json_t *sa, *pk;
	const char *type;
	char *what = NULL;

	memset(au, 0, sizeof *au);
	oauth_init(&au->tok, "FCM", FCM_OAUTH_RETRY_FIRST_MS, FCM_OAUTH_RETRY_CAP_MS);
	if (c->service_account_file[0] == '\0') {
		snprintf(err, errlen, "fcm_sender.service_account_file is required");
		return -1;
	}
	if ((sa = json_load_file(c->service_account_file, 0, &je)) == NULL) {
		snprintf(err, errlen, "%s:%d: %s", c->service_account_file, je.line, je.text);
		return -1;
	}
	type = json_is_object(sa) && json_is_string(json_object_get(sa, "type")) ?
		       json_string_value(json_object_get(sa, "type")) : "";
	if (strcmp(type, "service_account") != 0) {
		snprintf(err, errlen, "%s: type is not \"service_account\"", c->service_account_file);
		goto fail;
	}
	au->project_id = c->project_id[0] ? strdup(c->project_id) : dup_member(sa, "project_id");
	au->token_uri = c->token_uri[0] ? strdup(c->token_uri) : dup_member(sa, "token_uri");
	au->key_id = dup_member(sa, "private_key_id");
	au->client_email = dup_member(sa, "client_email");
	what = !au->project_id ? "project_id" : !au->token_uri ? "token_uri" : !au->key_id ? "private_key_id" :
	       !au->client_email ? "client_email" : NULL;
	if (what) {
		snprintf(err, errlen, "%s: %s missing", c->service_account_file, what);
		goto fail;
	}
	if (!project_ok(au->project_id)) {
		snprintf(err, errlen, "project id \"%.64s\" is not a valid project id", au->project_id);
		goto fail;
	}
	if (strncasecmp(au->token_uri, "https://", 8) != 0) {
		snprintf(err, errlen, "token URI must be an https:// URL");
		goto fail;
	}
	pk = json_object_get(sa, "private_key");
	if (!json_is_string(pk)) {
		snprintf(err, errlen, "%s: private_key missing", c->service_account_file);
		goto fail;
	}
	au->key = jwt_key_read_pem(json_string_value(pk), json_string_length(pk), JWT_RS256, err, errlen);
	if (au->key == NULL)
		goto fail;
	json_decref(sa);
	return 0;
fail:
	json_decref(sa);
	fcm_auth_free(au);
	return -1;
}

void fcm_auth_free(struct fcm_auth *au)
{
	EVP_PKEY_free(au->key);
	free(au->key_id);
	free(au->client_email);
	free(au->token_uri);
	free(au->project_id);
	oauth_free(&au->tok);
	memset(au, 0, sizeof *au);
}

char *fcm_assertion_make(EVP_PKEY *key, const char *kid, const char *iss, const char *aud, long long iat)
{
	return sender_jwt_sign(key, JWT_RS256, json_pack("{s:s,s:s,s:s}", "alg", "RS256", "typ", "JWT", "kid", kid),
			       json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", iss, "scope", FCM_SCOPE, "aud", aud, "iat",
					 (json_int_t)iat, "exp", (json_int_t)(iat + 3600)));
}

int fcm_token_parse(const char *body, size_t len, char **access_token, long *expires_in)
{
	long exp;

	if (oauth_token_parse(body, len, 86400, access_token, &exp) < 0)
		return -1;
	if (exp < 0) { /* present but not a positive number: dead at birth */
		free(*access_token);
		*access_token = NULL;
		return -1;
	}
	*expires_in = exp == 0 ? 3600 : exp;
	return 0;
}

const char *fcm_auth_header(const struct fcm_auth *au, uint64_t now_mono_ms)
{
	return oauth_header(&au->tok, now_mono_ms);
}

static void exchange_failed(struct fcm *f, const char *why, int refused)
{
	struct fcm_auth *au = &f->auth;
	uint64_t now = mono_ms();

	if (refused) {
		struct guard_verdict v;
		char reason[GUARD_REASON_MAX + 1];

		snprintf(reason, sizeof reason, "OAuth token endpoint refused: %.90s", why);
		log_error("FCM: access token refused by %s: %s", au->token_uri, why);
		au->tok.next_try_mono = now + FCM_OAUTH_REFUSED_MS;
		if (fcm_auth_header(au, now) != NULL)
			return; /* an early refresh: the current token still works meanwhile */
		guard_pause(&f->s.guard, reason, now);
		memset(&v, 0, sizeof v);
		v.outcome = OUTCOME_CREDENTIALS;
		v.retry_after_ms = FCM_OAUTH_REFUSED_MS;
		snprintf(v.reason, sizeof v.reason, "%s", reason);
		sender_fail_waiting(&f->s, &v);
		return;
	}
	log_warn("FCM: access token exchange failed: %s; next try in %llu ms", why, (unsigned long long)oauth_failed(&au->tok));
}

static void on_token(void *ctx, const struct h2c_response *r)
{
	struct fcm *f = ctx;
	struct fcm_auth *au = &f->auth;
	char *tok = NULL, why[200];
	long expires_in = 0;
	int stored;

	au->tok.fetching = 0;
	if (r->aborted)
		return;
	if (r->status != 200) {
		oauth_answer_text(r, why, sizeof why);
		exchange_failed(f, why, r->status == 400 || r->status == 401);
		return;
	}
	if (fcm_token_parse(r->body, r->body_len, &tok, &expires_in) < 0) {
		exchange_failed(f, "HTTP 200 without a usable access_token", 0);
		return;
	}
	/* Short-lived tokens (mocks) are refreshed at half their life, not constantly. */
	stored = oauth_store(&au->tok, "authorization", tok, expires_in,
			     (uint64_t)expires_in * 1000 / 2 < FCM_REFRESH_MARGIN_MS ? (uint64_t)expires_in * 1000 / 2
										: FCM_REFRESH_MARGIN_MS);
	memset(tok, 0, strlen(tok));
	free(tok);
	if (stored == 0)
		sender_release_waiting(&f->s);
	else
		exchange_failed(f, "out of memory", 0);
}

void fcm_auth_tick(struct fcm *f)
{
	struct fcm_auth *au = &f->auth;
	uint64_t now = mono_ms();
	const char *hdrs[] = {"content-type: application/x-www-form-urlencoded", "accept: application/json", NULL};
	static const char grant[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
	char *jwt, *form;
	size_t n;

	if (!oauth_wanted(&au->tok, now))
		return;
	jwt = fcm_assertion_make(au->key, au->key_id, au->client_email, au->token_uri, (long long)(now_ms() / 1000));
	if (jwt == NULL) {
		exchange_failed(f, "cannot sign the assertion", 0);
		return;
	}
	n = sizeof grant - 1 + strlen(jwt);
	if ((form = malloc(n + 1)) == NULL) {
		free(jwt);
		exchange_failed(f, "out of memory", 0);
		return;
	}
	memcpy(form, grant, sizeof grant - 1);
	memcpy(form + sizeof grant - 1, jwt, strlen(jwt) + 1);
	if (h2c_submit(f->s.h2, au->token_uri, hdrs, form, n, on_token, f) == 0) {
		au->tok.fetching = 1;
		log_info("FCM: requesting an access token from %s", au->token_uri);
	} else {
		exchange_failed(f, "cannot submit the request", 0);
	}
	memset(form, 0, n);
	free(form);
	free(jwt);
}

void fcm_auth_rejected(struct fcm *f, unsigned gen)
{
	oauth_rejected(&f->auth.tok, gen);
}

int fcm_auth_timeout_ms(const struct fcm *f)
{
	return oauth_timeout_ms(&f->auth.tok);
}
