/*
 * auth: the FCM sender's credentials. Reads the service account once at start-up, signs an
 * RS256 assertion and exchanges it at the token URI for an OAuth access token, through the
 * same HTTP/2 client as the sends and without ever blocking the loop. The token is reused
 * until less than 5 minutes remain, and dropped after a 401 on a send. A refused exchange
 * (400/401) pauses the provider; a failed one (5xx, transport) is retried with back-off.
 * Trusts the service-account file the configuration names, and nothing in the token
 * endpoint's answer beyond a printable token. Never logs the key, the assertion or the token.
 * The request, its answer and the back-off are common/sender/oauth.c's.
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

static const struct oauth_policy fcm_oauth = {
	.provider = "FCM", .header = "authorization",
	.max_s = 86400, .default_s = 3600, .margin_ms = FCM_REFRESH_MARGIN_MS,
	.backoff_first_ms = FCM_OAUTH_RETRY_FIRST_MS, .backoff_cap_ms = FCM_OAUTH_RETRY_CAP_MS,
	.refused_ms = FCM_OAUTH_REFUSED_MS, /* 400/401: the provider pauses, the waiting jobs fail */
	.keep_waiting = 1, /* a 5xx or transport failure: the jobs wait for the next try */
	.refresh_counter = -1,
};

int fcm_auth_load(struct fcm_auth *au, const struct conf_fcm *c, char *err, size_t errlen)
{
	json_error_t je;
	json_t *sa, *pk;
	const char *type;
	char *what = NULL;

	memset(au, 0, sizeof *au);
	oauth_init(&au->tok, &fcm_oauth);
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
	int defaulted;

	return oauth_token_read(body, len, &fcm_oauth, access_token, expires_in, &defaulted);
}

const char *fcm_auth_header(const struct fcm_auth *au, uint64_t now_mono_ms)
{
	return oauth_header(&au->tok, now_mono_ms);
}

/* The assertion grant's form, or NULL with *why set. */
static char *assertion_form(struct fcm_auth *au, const char **why)
{
	static const char grant[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
	char *jwt, *form;
	size_t n;

	jwt = fcm_assertion_make(au->key, au->key_id, au->client_email, au->token_uri, (long long)(now_ms() / 1000));
	if (jwt == NULL) {
		*why = "cannot sign the assertion";
		return NULL;
	}
	n = sizeof grant - 1 + strlen(jwt);
	if ((form = malloc(n + 1)) != NULL) {
		memcpy(form, grant, sizeof grant - 1);
		memcpy(form + sizeof grant - 1, jwt, strlen(jwt) + 1);
	}
	*why = "out of memory";
	oauth_wipe(jwt);
	return form;
}

void fcm_auth_tick(struct fcm *f)
{
	struct fcm_auth *au = &f->auth;
	const char *why;
	char *form;

	if (!oauth_wanted(&au->tok, mono_ms()))
		return;
	form = assertion_form(au, &why);
	oauth_request(&au->tok, &f->s, au->token_uri, form, why);
}

void fcm_auth_rejected(struct fcm *f, unsigned gen)
{
	oauth_rejected(&f->auth.tok, gen);
}

int fcm_auth_timeout_ms(const struct fcm *f)
{
	return oauth_timeout_ms(&f->auth.tok);
}
