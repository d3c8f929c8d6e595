/*
 * onion_body: turns the bytes a relay POSTs (u32le N ‖ ciphertext ‖ JSON trailer) into the
 * key and plaintext of one onion request, following docs/protocol.md §6.1–§6.2 step by step.
 * Trusts nothing in the body: N is checked in 64 bits, the trailer is strictly validated
 * (json_scan.c), and decryption failures are reported, never half-used.
 */
#include "onion_body.h"
#include "bchat/json_scan.h"
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int b32z_value(unsigned char c)
{
	static const char alphabet[] = "ybndrfg8ejkmcpqxot1uwisza345h769";
	if (c >= 'A' && c <= 'Z')
		c = (unsigned char)(c - 'A' + 'a');
	const char *p = c != '\0' ? strchr(alphabet, c) : NULL;
	return p != NULL ? (int)(p - alphabet) : -1;
}

/* Decodes 52 z-base-32 symbols into exactly 32 bytes (libsodium has no z-base-32). The unused
 * low bits of the last symbol must be zero, so each key has one spelling. */
static int decode_b32z(const unsigned char *s, unsigned char out[32])
{
	uint32_t acc = 0;
	int nbits = 0;
	size_t o = 0;
	for (size_t i = 0; i < 52; i++) {
		int v = b32z_value(s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 5 | (uint32_t)v) & 0xffffu;
		nbits += 5;
		if (nbits >= 8) {
			nbits -= 8;
			if (o == 32)
				return -1;
			out[o++] = (unsigned char)(acc >> nbits);
		}
	}
	if (o != 32 || (acc & ((1u << nbits) - 1)) != 0)
		return -1;
	return 0;
}

/* Exactly 32 bytes from all of s in one libsodium encoding (hex, or a base64 variant: those
 * refuse leftover bits that are not zero, so each key has one spelling there too). */
static int decode_sodium(const char *s, size_t len, int b64_variant, unsigned char out[32])
{
	size_t n = 0;
	int rc = b64_variant ? sodium_base642bin(out, 32, s, len, NULL, &n, NULL, b64_variant)
			     : sodium_hex2bin(out, 32, s, len, NULL, &n, NULL);
	return rc == 0 && n == 32 ? 0 : -1;
}

/* docs/protocol.md §6.1 ephemeral_key encodings. Lengths do not overlap (64 hex, 43/44 base64, 52
 * z-base-32), so the length picks the decoder. Base64 is accepted on v2 too (the protocol allows
 * it, it costs nothing and cannot be mistaken for hex); z-base-32 only where allow_b32z (v4
 * routes). */
static int decode_ephemeral(const char *s, size_t len, int allow_b32z, unsigned char out[32])
{
	if (len == 64)
		return decode_sodium(s, len, 0, out);
	if (len == 44 && s[43] == '=')
		len = 43;
	if (len == 43) { /* either alphabet, even both in one key (docs/protocol.md): made standard */
		char std[43];
		for (size_t i = 0; i < 43; i++)
			std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
		return decode_sodium(std, 43, sodium_base64_VARIANT_ORIGINAL_NO_PADDING, out);
	}
	if (len == 52 && allow_b32z)
		return decode_b32z((const unsigned char *)s, out);
	return -1;
}

static enum onion_body_error parse_enc_type(struct jval v, enum onion_cipher *c)
{
	if (v.type == J_ABSENT) {
		*c = ONION_AES_GCM;
		return ONION_OK;
	}
	/* aes-cbc/cbc are deliberately unsupported (no app uses them; docs/protocol.md §6.2). */
	if (jscan_str_is(v, "aes-gcm") || jscan_str_is(v, "gcm")) {
		*c = ONION_AES_GCM;
		return ONION_OK;
	}
	if (jscan_str_is(v, "xchacha20") || jscan_str_is(v, "xchacha20-poly1305")) {
		*c = ONION_XCHACHA20;
		return ONION_OK;
	}
	return ONION_E_ENC_TYPE;
}

enum onion_body_error onion_body_open(const unsigned char server_sk[32],
				      const unsigned char server_pk[32],
				      const struct onion_salts *salts, int allow_b64,
				      const unsigned char *body, size_t len,
				      struct onion_request *out)
{
	unsigned char client_pk[32], shared[32];
	enum onion_body_error rc;
	enum onion_cipher cipher = ONION_AES_GCM;
	struct jval trailer, ek;
	char key[400];
	uint64_t n, end;

	memset(out, 0, sizeof *out);
	if (body == NULL || len < 4)
		return ONION_E_SHORT;
	n = (uint64_t)body[0] | (uint64_t)body[1] << 8 | (uint64_t)body[2] << 16 |
	    (uint64_t)body[3] << 24;
	end = 4 + n;
	if (end > (uint64_t)len)
		return ONION_E_SHORT;

	const unsigned char *ct = body + 4, *tr = body + end;
	size_t trlen = len - (size_t)end;
	/* One strict JSON object (UTF-8 checked throughout), nothing but whitespace around it, no
	 * U+0000 anywhere. Duplicate keys: the last one counts. */
	if (jscan_object((const char *)tr, trlen, 0, &trailer) < 0)
		return ONION_E_TRAILER;
	/* Each key form is at most 64 characters; more than 400 raw bytes unescape to more. */
	ek = jscan_get(trailer, "ephemeral_key");
	if (ek.type != J_STRING || ek.n > sizeof key ||
	    decode_ephemeral(key, jscan_str(ek, key), allow_b64, client_pk) < 0)
		return ONION_E_EPHEMERAL;
	rc = parse_enc_type(jscan_get(trailer, "enc_type"), &cipher);
	if (rc != ONION_OK)
		return rc;
	if (n < onion_overhead(cipher))
		return ONION_E_LENGTH;
	/* X25519 is the expensive step: once per request, whatever the number of salts. */
	if (onion_x25519(shared, server_sk, client_pk) < 0)
		return ONION_E_LOW_ORDER;
	size_t ptlen = (size_t)n - onion_overhead(cipher);
	out->plaintext = malloc(ptlen + 1);
	if (out->plaintext == NULL) {
		rc = ONION_E_NOMEM;
		goto wipe;
	}
	rc = ONION_E_DECRYPT;
	if (cipher == ONION_XCHACHA20) {
		onion_derive_xchacha(&out->key, shared, client_pk, server_pk);
		if (onion_open(&out->key, ct, (size_t)n, out->plaintext) == 0)
			rc = ONION_OK;
	} else if (salts != NULL) {
		size_t ns = salts->n < ONION_SALTS_MAX ? salts->n : ONION_SALTS_MAX;
		for (size_t i = 0; i < ns && rc != ONION_OK; i++) {
			if (salts->names[i] == NULL)
				continue;
			onion_derive_aes(&out->key, shared, salts->names[i]);
			if (onion_open(&out->key, ct, (size_t)n, out->plaintext) == 0)
				rc = ONION_OK;
		}
	}
	if (rc == ONION_OK) {
		out->plaintext[ptlen] = '\0';
		out->plaintext_len = ptlen;
	}
wipe:
	sodium_memzero(shared, sizeof shared);
	if (rc != ONION_OK)
		onion_request_free(out);
	return rc;
}

const char *onion_body_error_str(enum onion_body_error e)
{
	switch (e) {
	case ONION_OK:
		return "ok";
	case ONION_E_SHORT:
		return "body shorter than its length prefix";
	case ONION_E_LENGTH:
		return "ciphertext shorter than IV and tag";
	case ONION_E_TRAILER:
		return "trailer is not one UTF-8 JSON object";
	case ONION_E_EPHEMERAL:
		return "bad or missing ephemeral_key";
	case ONION_E_ENC_TYPE:
		return "unsupported enc_type";
	case ONION_E_LOW_ORDER:
		return "low-order ephemeral key";
	case ONION_E_DECRYPT:
		return "decryption failed";
	case ONION_E_NOMEM:
		return "out of memory";
	}
	return "unknown error";
}

void onion_request_free(struct onion_request *r)
{
	if (r == NULL)
		return;
	free(r->plaintext);
	sodium_memzero(r, sizeof *r);
}
