/* jwt.c: loads verification keys and checks compact JWS tokens signed with ES256 (APNs: raw
 * 64-byte r||s signatures, converted to DER for OpenSSL) or RS256 (FCM service-account
 * assertions). Claims are returned parsed; the callers judge them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include "mock.h"

/* Accepts a PEM public key, a PEM private key (e.g. the APNs .p8) or a certificate. */
int jwt_load_key(const char *path, EVP_PKEY **out)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;
	X509 *x;

	if (!f)
		return -1;
	k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	if (!k) {
		rewind(f);
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	}
	if (!k) {
		rewind(f);
		x = PEM_read_X509(f, NULL, NULL, NULL);
		if (x) {
			k = X509_get_pubkey(x);
			X509_free(x);
		}
	}
	fclose(f);
	if (!k)
		return -1;
	*out = k;
	return 0;
}

/* ES256 raw r||s (64 bytes) to a DER ECDSA-Sig-Value. */
static int es256_to_der(const unsigned char *raw, size_t len, unsigned char **der, int *der_len)
{
	ECDSA_SIG *sig;
	BIGNUM *r, *s;

	if (len != 64)
		return -1;
	sig = ECDSA_SIG_new();
	r = BN_bin2bn(raw, 32, NULL);
	s = BN_bin2bn(raw + 32, 32, NULL);
	if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
		ECDSA_SIG_free(sig);
		BN_free(r);
		BN_free(s);
		return -1;
	}
	*der = NULL;
	*der_len = i2d_ECDSA_SIG(sig, der);
	ECDSA_SIG_free(sig);
	return *der_len > 0 ? 0 : -1;
}

static int verify_sig(EVP_PKEY *key, const char *alg, const char *input, size_t input_len,
		      const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *der = NULL;
	int der_len = 0, ok = 0;

	if (!md)
		return -1;
	if (strcmp(alg, "ES256") == 0) {
		if (EVP_PKEY_base_id(key) != EVP_PKEY_EC || es256_to_der(sig, sig_len, &der, &der_len) < 0)
			goto out;
		sig = der;
		sig_len = (size_t)der_len;
	} else if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
		goto out;
	}
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)input, input_len) == 1)
		ok = 1;
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

/*
 * Splits token into header.claims.signature, requires header "alg" == alg, verifies the
 * signature with key (skipped when key is NULL) and returns the parsed header and claims
 * objects (caller json_decref()s them). On failure *err says why and nothing is returned.
 */
int jwt_verify(const char *token, const char *alg, EVP_PKEY *key, json_t **header, json_t **claims,
	       const char **err)
{
	const char *d1, *d2;
	struct mock_buf buf = { 0 };
	json_t *h = NULL, *c = NULL, *a;
	int rc = -1;

	*header = *claims = NULL;
	d1 = strchr(token, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d1 || !d2 || strchr(d2 + 1, '.')) {
		*err = "malformed JWT";
		return -1;
	}
	if (mock_b64url_decode(token, (size_t)(d1 - token), &buf) < 0 ||
	    !(h = json_loadb(buf.p, buf.len, 0, NULL)) || !json_is_object(h)) {
		*err = "bad JWT header";
		goto out;
	}
	a = json_object_get(h, "alg");
	if (!json_is_string(a) || strcmp(json_string_value(a), alg) != 0) {
		*err = "wrong JWT alg";
		goto out;
	}
	if (mock_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &buf) < 0 ||
	    !(c = json_loadb(buf.p, buf.len, 0, NULL)) || !json_is_object(c)) {
		*err = "bad JWT claims";
		goto out;
	}
	if (mock_b64url_decode(d2 + 1, strlen(d2 + 1), &buf) < 0) {
		*err = "bad JWT signature encoding";
		goto out;
	}
	if (key && verify_sig(key, alg, token, (size_t)(d2 - token), (const unsigned char *)buf.p, buf.len) < 0) {
		*err = "bad JWT signature";
		goto out;
	}
	*header = h;
	*claims = c;
	h = c = NULL;
	rc = 0;
out:
	json_decref(h);
	json_decref(c);
	mock_buf_free(&buf);
	return rc;
}
