/*
 * onion_body: the server side of an onion request body (docs/protocol.md §6.1, §6.2, §6.5):
 * u32le N ‖ N bytes ciphertext ‖ JSON trailer → agreed key and decrypted plaintext.
 */
#ifndef ONION_BODY_H
#define ONION_BODY_H
#include "onion_crypto.h"
#include <stddef.h>

#define ONION_SALTS_MAX 4

/* AES-GCM salts (HMAC keys) tried in order; names past n, and NULL names, are ignored. */
struct onion_salts {
	const char *names[ONION_SALTS_MAX];
	size_t n;
};

/* A decrypted request: key (with the winning salt) for sealing the reply, and plaintext
 * (malloc'd, NUL-terminated after plaintext_len bytes for convenience). */
struct onion_request {
	struct onion_key key;
	unsigned char *plaintext;
	size_t plaintext_len;
};

/* Every value other than ONION_OK is answered with plain HTTP 400 (ONION_E_NOMEM: 503). */
enum onion_body_error {
	ONION_OK,
	ONION_E_SHORT,	   /* fewer than 4 bytes, or fewer than 4 + N */
	ONION_E_LENGTH,	   /* N below the cipher's IV + tag overhead */
	ONION_E_TRAILER,   /* trailer not strict UTF-8 / not exactly one JSON object */
	ONION_E_EPHEMERAL, /* ephemeral_key missing, not a string, or not decodable to 32 bytes */
	ONION_E_ENC_TYPE,  /* enc_type present but not a supported cipher name */
	ONION_E_LOW_ORDER, /* X25519 result all zero */
	ONION_E_DECRYPT,   /* tag failed with every salt (or the one XChaCha20 key) */
	ONION_E_NOMEM,
};

/* Parses body, agrees a key with server_sk and decrypts into out (zeroed on failure, so
 * onion_request_free() is always safe). ephemeral_key is accepted as 64 hex digits (either case)
 * and as base64 (standard or URL-safe, padded or not) on every route; allow_b64 additionally
 * admits z-base-32 (the v4 routes). */
enum onion_body_error onion_body_open(const unsigned char server_sk[32],
				      const unsigned char server_pk[32],
				      const struct onion_salts *salts, int allow_b64,
				      const unsigned char *body, size_t len,
				      struct onion_request *out);
/* Short fixed text for logs. */
const char *onion_body_error_str(enum onion_body_error e);
/* Wipes the key and frees the plaintext; the struct is left zeroed. */
void onion_request_free(struct onion_request *r);
#endif
