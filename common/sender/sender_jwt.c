/*
 * sender_jwt: signs a JWT whose header and claims the caller built with jansson (apns-sender's
 * provider token, fcm-sender's OAuth assertion). Trusts the caller's objects; holds nothing:
 * the dumps are freed before returning.
 */
#include "sender_jwt.h"
#include <stdlib.h>

char *sender_jwt_sign(EVP_PKEY *key, enum jwt_alg alg, json_t *header, json_t *claims)
{
	char *h = header ? json_dumps(header, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	char *c = claims ? json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	char *tok = h && c ? jwt_sign(key, alg, h, c) : NULL;

	json_decref(header);
	json_decref(claims);
	free(h);
	free(c);
	return tok;
}
