/*
 * onion_client: builds onion requests the way the apps do and opens the server's replies,
 * for pushctl and the tests. Uses the same primitives as the server (onion_crypto).
 */
#include "onion_client.h"
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned char *onion_client_build(const unsigned char server_pk[32], enum onion_cipher cipher, const char *salt,
				  const char *target, const unsigned char *pt, size_t ptlen, struct onion_key *key,
				  size_t *outlen)
{
	unsigned char esk[32], epk[32], shared[32];
	char epk_hex[65], trailer[512];
	size_t n = ptlen + onion_overhead(cipher);
	int tlen;
	unsigned char *out;

	do {
		randombytes_buf(esk, 32);
		crypto_scalarmult_base(epk, esk);
	} while (onion_x25519(shared, esk, server_pk) < 0);
	if (cipher == ONION_XCHACHA20)
		onion_derive_xchacha(key, shared, epk, server_pk);
	else
		onion_derive_aes(key, shared, salt);
	sodium_bin2hex(epk_hex, sizeof epk_hex, epk, 32);
	tlen = snprintf(trailer, sizeof trailer,
			"{\"host\":\"pushpipe.local\",\"target\":\"%s\",\"method\":\"POST\",\"protocol\":\"http\","
			"\"port\":80,\"ephemeral_key\":\"%s\"%s}",
			target, epk_hex, cipher == ONION_XCHACHA20 ? ",\"enc_type\":\"xchacha20\"" : "");
	if (tlen < 0 || (size_t)tlen >= sizeof trailer || (out = malloc(4 + n + (size_t)tlen)) == NULL)
		return NULL;
	out[0] = (unsigned char)n;
	out[1] = (unsigned char)(n >> 8);
	out[2] = (unsigned char)(n >> 16);
	out[3] = (unsigned char)(n >> 24);
	if (onion_seal(key, pt, ptlen, out + 4) < 0) {
		free(out);
		return NULL;
	}
	memcpy(out + 4 + n, trailer, (size_t)tlen);
	*outlen = 4 + n + (size_t)tlen;
	sodium_memzero(esk, sizeof esk);
	return out;
}

unsigned char *onion_client_open_reply(const struct onion_key *key, int v4, const unsigned char *body, size_t len,
				       size_t *ptlen)
{
	unsigned char *sealed = NULL, *pt;
	size_t slen = len;

	if (!v4) {
		json_t *j = json_loadb((const char *)body, len, 0, NULL);
		json_t *r = j ? json_object_get(j, "result") : NULL;
		const char *b64 = json_string_value(r);
		if (b64 == NULL) {
			json_decref(j);
			return NULL;
		}
		sealed = malloc(strlen(b64) + 1);
		if (sealed == NULL || sodium_base642bin(sealed, strlen(b64), b64, strlen(b64), NULL, &slen, NULL,
							sodium_base64_VARIANT_ORIGINAL) != 0) {
			free(sealed);
			json_decref(j);
			return NULL;
		}
		json_decref(j);
		body = sealed;
	}
	if (slen < onion_overhead(key->cipher) || (pt = malloc(slen - onion_overhead(key->cipher) + 1)) == NULL) {
		free(sealed);
		return NULL;
	}
	if (onion_open(key, body, slen, pt) < 0) {
		free(sealed);
		free(pt);
		return NULL;
	}
	*ptlen = slen - onion_overhead(key->cipher);
	pt[*ptlen] = '\0';
	free(sealed);
	return pt;
}
