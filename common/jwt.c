/*
 * jwt: signs JWTs for the senders (APNs ES256 provider tokens, FCM RS256 OAuth assertions).
 * Trusts the key files the configuration names, but checks their type and size. Holds no
 * state: keys belong to the caller, tokens are returned in malloc'd strings.
 */
#include "jwt.h"
#include "b64url.h"
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ssl_reason(char *err, size_t errlen, const char *what)
{
	char buf[256];
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	else
		snprintf(buf, sizeof buf, "unknown error");
	snprintf(err, errlen, "%s: %s", what, buf);
	ERR_clear_error();
}

static int key_fits(EVP_PKEY *key, enum jwt_alg alg, char *err, size_t errlen)
{
	if (alg == JWT_ES256) {
		char group[64];
		size_t glen = 0;
		if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
		    EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &glen) != 1 ||
		    (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
			snprintf(err, errlen, "not an EC P-256 key (ES256)");
			return -1;
		}
		return 0;
	}
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) < 2048) {
		snprintf(err, errlen, "not an RSA key of at least 2048 bits (RS256)");
		return -1;
	}
	return 0;
}

EVP_PKEY *jwt_key_read_pem(const char *pem, size_t len, enum jwt_alg alg, char *err, size_t errlen)
{
	BIO *bio;
	EVP_PKEY *key;

	if (len > 1 << 20 || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		snprintf(err, errlen, "key too large");
		return NULL;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key == NULL) {
		ssl_reason(err, errlen, "reading PEM private key");
		return NULL;
	}
	if (key_fits(key, alg, err, errlen) < 0) {
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

EVP_PKEY *jwt_key_read_file(const char *path, enum jwt_alg alg, char *err, size_t errlen)
{
	char buf[16384];
	size_t n;
	EVP_PKEY *key;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open", path);
		return NULL;
	}
	n = fread(buf, 1, sizeof buf, f);
	if (ferror(f) || !feof(f)) {
		fclose(f);
		snprintf(err, errlen, "%s: unreadable or larger than %zu bytes", path, sizeof buf);
		return NULL;
	}
	fclose(f);
	key = jwt_key_read_pem(buf, n, alg, err, errlen);
	OPENSSL_cleanse(buf, sizeof buf);
	return key;
}

int jwt_key_check_file(const char *path, enum jwt_alg alg, char *err, size_t errlen)
{
	EVP_PKEY *key = jwt_key_read_file(path, alg, err, errlen);

	if (key == NULL)
		return -1;
	EVP_PKEY_free(key);
	return 0;
}

int jwt_ecdsa_der_to_raw(const unsigned char *der, size_t len, unsigned char out[64])
{
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	int ok;

	if (sig == NULL)
		return -1;
	ECDSA_SIG_get0(sig, &r, &s);
	ok = BN_bn2binpad(r, out, 32) == 32 && BN_bn2binpad(s, out + 32, 32) == 32;
	ECDSA_SIG_free(sig);
	return ok ? 0 : -1;
}

char *jwt_sign(EVP_PKEY *key, enum jwt_alg alg, const char *header_json, const char *claims_json)
{
	size_t hl = strlen(header_json), cl = strlen(claims_json), siglen = 0, n;
	size_t cap = B64URL_ENCODED_SIZE(hl) + B64URL_ENCODED_SIZE(cl) + B64URL_ENCODED_SIZE(1024) + 2;
	unsigned char *sig = NULL, raw[64];
	EVP_MD_CTX *md = NULL;
	char *tok = malloc(cap);
	long w;

	if (tok == NULL)
		return NULL;
	if ((w = b64url_encode(header_json, hl, tok, cap)) < 0)
		goto fail;
	n = (size_t)w;
	tok[n++] = '.';
	if ((w = b64url_encode(claims_json, cl, tok + n, cap - n)) < 0)
		goto fail;
	n += (size_t)w;
	if ((md = EVP_MD_CTX_new()) == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)tok, n) != 1 || siglen > 1024 ||
	    (sig = malloc(siglen)) == NULL ||
	    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)tok, n) != 1)
		goto fail;
	tok[n++] = '.';
	if (alg == JWT_ES256) {
		if (jwt_ecdsa_der_to_raw(sig, siglen, raw) < 0 || b64url_encode(raw, 64, tok + n, cap - n) < 0)
			goto fail;
	} else if (b64url_encode(sig, siglen, tok + n, cap - n) < 0) {
		goto fail;
	}
	free(sig);
	EVP_MD_CTX_free(md);
	return tok;
fail:
	ERR_clear_error();
	free(sig);
	EVP_MD_CTX_free(md);
	free(tok);
	return NULL;
}
