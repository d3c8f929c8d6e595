/*
 * auth: APNs credentials. With token authentication, holds the team's EC P-256 key and the
 * one provider token (JWT ES256) shared by every request, replaced when jwt_refresh_s old
 * (docs/senders.md, "apns-sender": not more often than every 20 min, so no 429
 * TooManyProviderTokenUpdates), or at once after ExpiredProviderToken. With certificate
 * authentication there is nothing to hold here: the HTTP client presents the certificate.
 * Trusts the key file the configuration names. Never logs the key or a JWT.
 */
#include "apns.h"
#include "jwt.h"
#include "sender/sender_jwt.h"
#include "log.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *apns_jwt_make(EVP_PKEY *key, const char *kid, const char *team, long long iat)
{
	return sender_jwt_sign(key, JWT_ES256, json_pack("{s:s,s:s}", "alg", "ES256", "kid", kid),
			       json_pack("{s:s,s:I}", "iss", team, "iat", (json_int_t)iat));
}

int apns_auth_load(struct apns_auth *au, const struct conf_apns *c, char *err, size_t errlen)
{
	memset(au, 0, sizeof *au);
	au->refresh_ms = (uint64_t)c->jwt_refresh_s * 1000;
	if (strcmp(c->auth, "certificate") == 0) {
		if (c->cert_file[0] == '\0') {
			snprintf(err, errlen, "apns_sender.cert_file is required with auth \"certificate\"");
			return -1;
		}
		if (access(c->cert_file, R_OK) < 0 || (c->cert_key_file[0] && access(c->cert_key_file, R_OK) < 0)) {
			snprintf(err, errlen, "apns_sender: certificate or key file not readable");
			return -1;
		}
		return 0;
	}
	if (strcmp(c->auth, "token") != 0) {
		snprintf(err, errlen, "apns_sender.auth must be \"token\" or \"certificate\"");
		return -1;
	}
	if (c->key_file[0] == '\0' || c->key_id[0] == '\0' || c->team_id[0] == '\0') {
		snprintf(err, errlen, "apns_sender: key_file, key_id and team_id are required with auth \"token\"");
		return -1;
	}
	if ((au->key = jwt_key_read_file(c->key_file, JWT_ES256, err, errlen)) == NULL)
		return -1;
	au->kid = strdup(c->key_id);
	au->team = strdup(c->team_id);
	if (au->kid == NULL || au->team == NULL) {
		apns_auth_free(au);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

void apns_auth_free(struct apns_auth *au)
{
	EVP_PKEY_free(au->key);
	free(au->kid);
	free(au->team);
	free(au->header);
	memset(au, 0, sizeof *au);
}

const char *apns_auth_header(struct apns_auth *au, uint64_t now_wall_ms, uint64_t now_mono_ms, int *failed)
{
	char *jwt;
	size_t n;

	*failed = 0;
	if (au->key == NULL)
		return NULL;
	if (au->header != NULL && now_mono_ms - au->issued_mono < au->refresh_ms)
		return au->header;
	if ((jwt = apns_jwt_make(au->key, au->kid, au->team, (long long)(now_wall_ms / 1000))) == NULL) {
		/* Keep using the old one, if any, rather than stop sending. */
		log_error("APNs: signing a provider token failed");
		*failed = au->header == NULL;
		return au->header;
	}
	n = strlen(jwt) + sizeof "authorization: bearer ";
	free(au->header);
	if ((au->header = malloc(n)) == NULL) {
		free(jwt);
		*failed = 1;
		return NULL;
	}
	snprintf(au->header, n, "authorization: bearer %s", jwt);
	OPENSSL_cleanse(jwt, strlen(jwt));
	free(jwt);
	au->issued_mono = now_mono_ms;
	au->gen++;
	log_info("APNs: provider token generated (kid %s, team %s, generation %u)", au->kid, au->team, au->gen);
	return au->header;
}

void apns_auth_expired(struct apns_auth *au, unsigned gen, uint64_t now_mono_ms)
{
	if (au->header == NULL || gen != au->gen)
		return; /* already replaced since that send */
	if (au->forced_mono != 0 && now_mono_ms - au->forced_mono < APNS_FORCED_REFRESH_MS)
		return;
	au->forced_mono = now_mono_ms;
	free(au->header);
	au->header = NULL;
	log_warn("APNs: ExpiredProviderToken; generating a new provider token");
}
