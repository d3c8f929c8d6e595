/*
 * test_jwt: base64url, the ES256 provider token of APNs and the RS256 OAuth assertion of
 * FCM, checked the way the providers check them: exact header and claims JSON, unpadded
 * base64url, a 64-byte r‖s signature that OpenSSL verifies with the public key.
 */
#include "../../apns-sender/apns.h"
#include "../../fcm-sender/fcm.h"
#include "b64url.h"
#include "jwt.h"
#include "log.h"
#include "testlib.h"
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Splits a JWT into its three decoded parts; 0 when it has exactly three valid parts. */
static int split(const char *tok, char *hdr, char *claims, unsigned char *sig, size_t *siglen)
{
	const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	long n;

	if (d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL)
		return -1;
	if ((n = b64url_decode(tok, (size_t)(d1 - tok), hdr, 1024)) < 0)
		return -1;
	hdr[n] = '\0';
	if ((n = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), claims, 1024)) < 0)
		return -1;
	claims[n] = '\0';
	if ((n = b64url_decode(d2 + 1, strlen(d2 + 1), sig, 1024)) < 0)
		return -1;
	*siglen = (size_t)n;
	return 0;
}

static int verify(EVP_PKEY *key, const char *tok, const unsigned char *sig, size_t siglen)
{
	const char *d2 = strrchr(tok, '.');
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		 EVP_DigestVerify(md, sig, siglen, (const unsigned char *)tok, (size_t)(d2 - tok)) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

/* r‖s back to DER, as a verifier of raw ECDSA signatures does. */
static int raw_to_der(const unsigned char raw[64], unsigned char *der, size_t *len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, 32, NULL), *ss = BN_bin2bn(raw + 32, 32, NULL);
	unsigned char *p = der;
	int n;

	ECDSA_SIG_set0(s, r, ss);
	n = i2d_ECDSA_SIG(s, &p);
	ECDSA_SIG_free(s);
	if (n <= 0)
		return -1;
	*len = (size_t)n;
	return 0;
}

static char *pem_of(EVP_PKEY *k, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	out = malloc((size_t)n + 1);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(b);
	return out;
}

static void test_b64url(void)
{
	char out[64];
	unsigned char bin[64];
	const unsigned char odd[] = {0xfb, 0xff, 0xbf};

	CHECK(b64url_encode("", 0, out, sizeof out) == 0 && out[0] == '\0', "empty");
	CHECK(b64url_encode("f", 1, out, sizeof out) == 2 && strcmp(out, "Zg") == 0, "f -> %s", out);
	CHECK(b64url_encode("fo", 2, out, sizeof out) == 3 && strcmp(out, "Zm8") == 0, "fo -> %s", out);
	CHECK(b64url_encode("foo", 3, out, sizeof out) == 4 && strcmp(out, "Zm9v") == 0, "foo -> %s", out);
	CHECK(b64url_encode("foob", 4, out, sizeof out) == 6 && strcmp(out, "Zm9vYg") == 0, "foob -> %s", out);
	CHECK(b64url_encode(odd, 3, out, sizeof out) == 4 && strcmp(out, "-_-_") == 0, "url alphabet: %s", out);
	CHECK(b64url_encode("foo", 3, out, 4) == -1, "too small out refused");
	CHECK(b64url_decode("Zm9vYg", 6, bin, sizeof bin) == 4 && memcmp(bin, "foob", 4) == 0, "decode");
	CHECK(b64url_decode("-_-_", 4, bin, sizeof bin) == 3 && memcmp(bin, odd, 3) == 0, "decode url alphabet");
	CHECK(b64url_decode("Zg==", 4, bin, sizeof bin) == -1, "padding refused");
	CHECK(b64url_decode("Zm+v", 4, bin, sizeof bin) == -1, "standard alphabet refused");
	CHECK(b64url_decode("Z", 1, bin, sizeof bin) == -1, "impossible length refused");
	CHECK(b64url_decode("Zh", 2, bin, sizeof bin) == -1, "non-zero trailing bits refused");
	CHECK(b64url_decode("Zm9vYg", 6, bin, 3) == -1, "too small out refused in decoding");
}

static void test_der_to_raw(void)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_new(), *ss = BN_new();
	unsigned char der[80], *p = der, raw[64], want[64];
	int n;

	/* Small r and s: DER drops leading zeros; r‖s must put them back. */
	BN_set_word(r, 0x0102);
	BN_set_word(ss, 0x7f);
	ECDSA_SIG_set0(s, r, ss);
	n = i2d_ECDSA_SIG(s, &p);
	ECDSA_SIG_free(s);
	memset(want, 0, sizeof want);
	want[30] = 0x01;
	want[31] = 0x02;
	want[63] = 0x7f;
	CHECK(jwt_ecdsa_der_to_raw(der, (size_t)n, raw) == 0, "convert");
	CHECK_MEM(raw, want, 64, "left-padded r and s");
	CHECK(jwt_ecdsa_der_to_raw(der, (size_t)n - 1, raw) == -1, "truncated DER refused");
}

static void test_es256(void)
{
	EVP_PKEY *gen = EVP_EC_gen("P-256"), *key;
	char path[] = "/tmp/test_jwt_XXXXXX", err[256], hdr[1024], claims[1024];
	unsigned char sig[1024], der[128];
	size_t siglen = 0, derlen = 0, pemlen;
	char *pem = pem_of(gen, &pemlen), *tok;
	int fd = mkstemp(path);

	CHECK(fd >= 0 && write(fd, pem, pemlen) == (ssize_t)pemlen, "key file written");
	close(fd);
	key = jwt_key_read_file(path, JWT_ES256, err, sizeof err);
	CHECK(key != NULL, "ES256 key loads: %s", err);
	CHECK(jwt_key_read_file(path, JWT_RS256, err, sizeof err) == NULL, "EC key refused for RS256");
	CHECK(jwt_key_read_file("/nonexistent/key.p8", JWT_ES256, err, sizeof err) == NULL, "missing file");

	tok = apns_jwt_make(key, "ABC123DEFG", "TEAM123456", 1700000000);
	CHECK(tok != NULL, "token made");
	if (tok) {
		CHECK(strchr(tok, '=') == NULL && strchr(tok, '+') == NULL && strchr(tok, '/') == NULL,
		      "unpadded base64url: %s", tok);
		CHECK(split(tok, hdr, claims, sig, &siglen) == 0, "three parts");
		CHECK(strcmp(hdr, "{\"alg\":\"ES256\",\"kid\":\"ABC123DEFG\"}") == 0, "header %s", hdr);
		CHECK(strcmp(claims, "{\"iss\":\"TEAM123456\",\"iat\":1700000000}") == 0, "claims %s", claims);
		CHECK(siglen == 64, "r||s is 64 bytes, got %zu", siglen);
		CHECK(siglen == 64 && raw_to_der(sig, der, &derlen) == 0 && verify(gen, tok, der, derlen),
		      "signature verifies with the public key");
		sig[5] ^= 1;
		CHECK(siglen == 64 && raw_to_der(sig, der, &derlen) == 0 && !verify(gen, tok, der, derlen),
		      "a changed signature does not");
	}
	free(tok);
	/* Twenty signatures: r or s below 2^248 happens; the padding must hold every time. */
	for (int i = 0; i < 20; i++) {
		tok = jwt_sign(key, JWT_ES256, "{\"alg\":\"ES256\"}", "{}");
		CHECK(tok && split(tok, hdr, claims, sig, &siglen) == 0 && siglen == 64 &&
			      raw_to_der(sig, der, &derlen) == 0 && verify(gen, tok, der, derlen),
		      "signature %d", i);
		free(tok);
	}
	unlink(path);
	free(pem);
	EVP_PKEY_free(key);
	EVP_PKEY_free(gen);
}

static void test_rs256(void)
{
	EVP_PKEY *gen = EVP_RSA_gen(2048), *key, *small = EVP_RSA_gen(1024);
	char err[256], hdr[1024], claims[1024];
	unsigned char sig[1024];
	size_t siglen = 0, pemlen, spemlen;
	char *pem = pem_of(gen, &pemlen), *spem = pem_of(small, &spemlen), *tok;

	key = jwt_key_read_pem(pem, pemlen, JWT_RS256, err, sizeof err);
	CHECK(key != NULL, "RS256 key loads: %s", err);
	CHECK(jwt_key_read_pem(pem, pemlen, JWT_ES256, err, sizeof err) == NULL, "RSA key refused for ES256");
	CHECK(jwt_key_read_pem(spem, spemlen, JWT_RS256, err, sizeof err) == NULL, "1024-bit RSA refused");
	CHECK(jwt_key_read_pem("garbage", 7, JWT_RS256, err, sizeof err) == NULL, "garbage refused");
	tok = fcm_assertion_make(key, "kid-1", "sa@proj.iam.gserviceaccount.com", "https://oauth2.googleapis.com/token",
				 1700000000);
	CHECK(tok != NULL, "assertion made");
	if (tok) {
		CHECK(strchr(tok, '=') == NULL && strchr(tok, '+') == NULL && strchr(tok, '/') == NULL, "unpadded");
		CHECK(split(tok, hdr, claims, sig, &siglen) == 0, "three parts");
		CHECK(strcmp(hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"kid-1\"}") == 0, "header %s", hdr);
		CHECK(strcmp(claims, "{\"iss\":\"sa@proj.iam.gserviceaccount.com\","
				     "\"scope\":\"https://www.googleapis.com/auth/firebase.messaging\","
				     "\"aud\":\"https://oauth2.googleapis.com/token\",\"iat\":1700000000,"
				     "\"exp\":1700003600}") == 0,
		      "claims %s", claims);
		CHECK(siglen == 256, "RSA-2048 signature is 256 bytes, got %zu", siglen);
		CHECK(verify(gen, tok, sig, siglen), "signature verifies with the public key");
	}
	free(tok);
	free(pem);
	free(spem);
	EVP_PKEY_free(key);
	EVP_PKEY_free(gen);
	EVP_PKEY_free(small);
}

/* One JWT shared by every request until refresh_ms old; ExpiredProviderToken forces one. */
static void test_apns_jwt_reuse(void)
{
	struct apns_auth au;
	int failed;
	const char *h1, *h2;
	char first[1024];
	unsigned g;

	memset(&au, 0, sizeof au);
	au.key = EVP_EC_gen("P-256");
	au.kid = strdup("ABC123DEFG");
	au.team = strdup("TEAM123456");
	au.refresh_ms = 3000 * 1000;
	h1 = apns_auth_header(&au, 1700000000000ull, 100000, &failed);
	CHECK(h1 && !failed && strncmp(h1, "authorization: bearer ", 22) == 0, "header line");
	snprintf(first, sizeof first, "%s", h1 ? h1 : "");
	g = au.gen;
	h2 = apns_auth_header(&au, 1700000600000ull, 100000 + 600000, &failed);
	CHECK(h2 && strcmp(h2, first) == 0 && au.gen == g, "reused after 10 min");
	h2 = apns_auth_header(&au, 1700003000000ull, 100000 + 3000000, &failed);
	CHECK(h2 && strcmp(h2, first) != 0 && au.gen == g + 1, "replaced at jwt_refresh_s");
	g = au.gen;
	apns_auth_expired(&au, g - 1, 100000 + 3000001);
	CHECK(au.header != NULL, "an ExpiredProviderToken for an older JWT changes nothing");
	apns_auth_expired(&au, g, 100000 + 3000001);
	CHECK(au.header == NULL, "ExpiredProviderToken drops the current JWT");
	h2 = apns_auth_header(&au, 1700003000000ull, 100000 + 3000002, &failed);
	CHECK(h2 && au.gen == g + 1, "and the next send makes a new one");
	apns_auth_expired(&au, au.gen, 100000 + 3000003);
	CHECK(au.header != NULL, "but not twice within a minute");
	apns_auth_free(&au);
}

int main(void)
{
	log_set_level((enum log_level)(LOG_ERROR + 1)); /* token refresh lines are expected here */
	test_b64url();
	test_der_to_raw();
	test_es256();
	test_rs256();
	test_apns_jwt_reuse();
	return test_done();
}
