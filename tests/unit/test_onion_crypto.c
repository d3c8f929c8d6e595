/*
 * test_onion_crypto: onion_crypto and onion_body against tests/vectors/bchat-onion-vectors.json
 * (docs/protocol.md §6.10): derivations, the v2/v4 requests and byte-exact replies, cross-route and
 * negative cases, seal/open round trips and the key files. Trusts the vectors file and nothing
 * else.
 */
#include "bchat/bchat_request.h"
#include "../../ingress/onion/onion_body.h"
#include "onion_crypto.h"
#include "testlib.h"
#include "vectors_path.h"
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define V4_LOKI "v4_aesgcm_LOKI(stock pyonionreq)"
#define V4_BELDEX "v4_aesgcm_BELDEX(if server patched)"
#define V4_XCHACHA "v4_xchacha20"
#define REQ "request_body_hex"
#define RESP "response_body_hex(raw bytes, no base64)"

static json_t *vectors;
static unsigned char server_sk[32], server_pk[32], client_sk[32], client_pk[32];
static const struct onion_salts salts_v2 = {{"BELDEX"}, 1};
static const struct onion_salts salts_v4 = {{"BELDEX", "LOKI"}, 2};
static const struct onion_salts salts_loki = {{"LOKI"}, 1};

static const char *vs(const char *obj, const char *key)
{
	json_t *o = obj != NULL ? json_object_get(vectors, obj) : vectors;
	const char *s = json_string_value(json_object_get(o, key));
	if (s == NULL) {
		fprintf(stderr, "vectors: missing %s.%s\n", obj != NULL ? obj : "", key);
		exit(2);
	}
	return s;
}

static unsigned char *vh(const char *obj, const char *key, size_t *len)
{
	return test_unhex(vs(obj, key), len);
}

static void vh32(const char *key, unsigned char out[32])
{
	size_t n;
	unsigned char *b = vh(NULL, key, &n);
	if (n != 32) {
		fprintf(stderr, "vectors: %s is not 32 bytes\n", key);
		exit(2);
	}
	memcpy(out, b, 32);
	free(b);
}

static void put_u32le(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* u32le n_field ‖ ct ‖ trailer, malloc'd. */
static unsigned char *build_body(uint32_t n_field, const unsigned char *ct, size_t ctlen,
				 const char *trailer, size_t trlen, size_t *len)
{
	unsigned char *b = malloc(4 + ctlen + trlen + 1);
	put_u32le(b, n_field);
	if (ctlen > 0)
		memcpy(b + 4, ct, ctlen);
	if (trlen > 0)
		memcpy(b + 4 + ctlen, trailer, trlen);
	*len = 4 + ctlen + trlen;
	return b;
}

/* The vector's trailer layout with a chosen key string and extra members. */
static size_t make_trailer(char *out, size_t cap, const char *key, const char *extra)
{
	int n = snprintf(out, cap,
			 "{\"host\":\"pushnotificationv1.rpcnode.stream\",\"target\":\"/beldex/v2/lsrpc\","
			 "\"method\":\"POST\",\"protocol\":\"http\",\"port\":80,\"ephemeral_key\":\"%s\"%s}",
			 key, extra);
	return (size_t)n;
}

static void hex32(char out[65], const unsigned char in[32])
{
	sodium_bin2hex(out, 65, in, 32);
}

static void zbase32(char out[53], const unsigned char in[32])
{
	static const char alphabet[] = "ybndrfg8ejkmcpqxot1uwisza345h769";
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < 32; i++) {
		acc = (acc << 8 | in[i]) & 0xfffu;
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = alphabet[(acc >> bits) & 31];
		}
	}
	out[o++] = alphabet[(acc << (5 - bits)) & 31];
	out[o] = '\0';
}

static void test_derivations(void)
{
	unsigned char pk[32], shared[32], shared2[32], h[32], want[32];
	struct onion_key k;

	crypto_hash_sha256(h, (const unsigned char *)"bchat-pn-test-server-key", 24);
	CHECK_MEM(h, server_sk, 32, "server secret is SHA-256 of its label");
	crypto_hash_sha256(h, (const unsigned char *)"bchat-pn-test-client-ephemeral", 30);
	CHECK_MEM(h, client_sk, 32, "client secret is SHA-256 of its label");
	crypto_scalarmult_base(pk, server_sk);
	CHECK_MEM(pk, server_pk, 32, "server public key");
	crypto_scalarmult_base(pk, client_sk);
	CHECK_MEM(pk, client_pk, 32, "client public key");

	vh32("x25519_shared", want);
	CHECK(onion_x25519(shared, server_sk, client_pk) == 0, "server side x25519");
	CHECK_MEM(shared, want, 32, "x25519_shared (server side)");
	CHECK(onion_x25519(shared2, client_sk, server_pk) == 0, "client side x25519");
	CHECK_MEM(shared2, want, 32, "x25519_shared (client side)");

	vh32("key_aesgcm_BELDEX", want);
	onion_derive_aes(&k, shared, "BELDEX");
	CHECK(k.cipher == ONION_AES_GCM, "BELDEX key is AES-GCM");
	CHECK_MEM(k.key, want, 32, "key_aesgcm_BELDEX");
	vh32("key_aesgcm_LOKI", want);
	onion_derive_aes(&k, shared, "LOKI");
	CHECK_MEM(k.key, want, 32, "key_aesgcm_LOKI");
	vh32("key_xchacha20", want);
	onion_derive_xchacha(&k, shared, client_pk, server_pk);
	CHECK(k.cipher == ONION_XCHACHA20, "xchacha key type");
	CHECK_MEM(k.key, want, 32, "key_xchacha20");

	/* Keyed HMAC states are kept per salt (a few of them): many salts, in turn and again, each
	 * against OpenSSL's HMAC, an implementation of its own. */
	{
		static const char *salts[] = {"BELDEX", "LOKI", "OXEN", "SESSION", "A", "SALT-SIX", "BELDEX",
					      "LOKI", "0123456789abcdef0123456789abcdef", /* 32: kept */
					      "0123456789abcdef0123456789abcdef!", "A", "BELDEX"};
		int same = 0;
		for (size_t i = 0; i < sizeof salts / sizeof salts[0]; i++) {
			unsigned int len = 0;
			onion_derive_aes(&k, shared, salts[i]);
			same += HMAC(EVP_sha256(), salts[i], (int)strlen(salts[i]), shared, 32, want, &len) != NULL &&
				len == 32 && memcmp(k.key, want, 32) == 0;
		}
		CHECK(same == (int)(sizeof salts / sizeof salts[0]), "%d of %zu salts derive the HMAC-SHA256 key", same,
		      sizeof salts / sizeof salts[0]);
	}

	CHECK(onion_overhead(ONION_AES_GCM) == 28, "AES-GCM overhead");
	CHECK(onion_overhead(ONION_XCHACHA20) == 40, "XChaCha20 overhead");
}

static void test_v2(void)
{
	size_t blen, rlen, slen, hlen;
	unsigned char *body = vh("v2", "request_body_hex", &blen), *reply, *sealed;
	const char *inner = vs("v2", "inner_plaintext");
	unsigned char want_key[32];
	struct onion_request r;
	struct bchat_request q;
	char *http;

	CHECK(blen == 462, "v2 body is 462 bytes (%zu)", blen);
	CHECK(onion_body_open(server_sk, server_pk, &salts_v2, 0, body, blen, &r) == ONION_OK,
	      "v2 request opens with BELDEX");
	vh32("key_aesgcm_BELDEX", want_key);
	CHECK(r.key.cipher == ONION_AES_GCM, "v2 cipher");
	CHECK_MEM(r.key.key, want_key, 32, "v2 key is the BELDEX key");
	CHECK(r.plaintext_len == strlen(inner), "v2 plaintext length %zu", r.plaintext_len);
	CHECK_MEM(r.plaintext, inner, strlen(inner), "v2 plaintext");
	CHECK(r.plaintext != NULL && r.plaintext[r.plaintext_len] == '\0', "plaintext NUL-terminated");

	CHECK(bchat_parse_v2(NULL, r.plaintext, r.plaintext_len, &q) == BCHAT_OK, "v2 parses");
	CHECK(q.action == BCHAT_NOTIFY, "v2 is a notify");
	CHECK(q.send_to != NULL && strcmp(q.send_to, "bd1111111111111111111111111111111111111111111111111111111111111111") == 0,
	      "send_to is bd111…1");
	CHECK(q.data != NULL && strcmp(q.data, "ZXhhbXBsZSB3cmFwcGVkIGVudmVsb3BlIGJ5dGVz") == 0,
	      "data is the base64 envelope");
	bchat_request_free(&q);

	reply = bchat_reply_v2(BCHAT_OK, "Bchat", &rlen);
	CHECK(rlen == 58 && reply != NULL && memcmp(reply, vs("v2", "response_plaintext"), 58) == 0,
	      "v2 success reply plaintext (%zu bytes)", rlen);
	slen = rlen + onion_overhead(r.key.cipher);
	sealed = malloc(slen);
	onion_test_inject_iv((const unsigned char *)"defghijklmno", 12);
	CHECK(onion_seal(&r.key, reply, rlen, sealed) == 0, "v2 reply seals");
	http = bchat_v2_http_body(sealed, slen, &hlen);
	CHECK(http != NULL && hlen == 130 && strcmp(http, vs("v2", "response_http_body")) == 0,
	      "v2 response_http_body byte-exact: %s", http != NULL ? http : "(null)");
	free(http);
	free(sealed);
	free(reply);
	onion_request_free(&r);
	CHECK(r.plaintext == NULL && r.plaintext_len == 0, "request free zeroes");
	free(body);
}

/* One v4 vector: open with `salts`, check plaintext, parse, reply byte-exact with `iv`. */
static void v4_case(const char *name, const struct onion_salts *salts, const char *keyname,
		    const unsigned char *iv, size_t ivlen)
{
	size_t blen, rlen, wlen;
	unsigned char *body = vh(name, REQ, &blen), *want = vh(name, RESP, &wlen), *reply, *sealed;
	const char *pt = vs(NULL, "v4_plaintext");
	unsigned char want_key[32];
	struct onion_request r;
	struct bchat_request q;

	CHECK(onion_body_open(server_sk, server_pk, salts, 1, body, blen, &r) == ONION_OK, "%s opens",
	      name);
	vh32(keyname, want_key);
	CHECK_MEM(r.key.key, want_key, 32, "%s decrypted with %s", name, keyname);
	CHECK(r.plaintext_len == 223 && r.plaintext_len == strlen(pt), "%s plaintext length %zu", name,
	      r.plaintext_len);
	CHECK_MEM(r.plaintext, pt, strlen(pt), "%s plaintext", name);
	CHECK(bchat_parse_v4(NULL, r.plaintext, r.plaintext_len, &q) == BCHAT_OK, "%s parses", name);
	CHECK(q.action == BCHAT_NOTIFY && q.send_to_len == 66 && q.data_len == 40, "%s notify", name);
	bchat_request_free(&q);

	reply = bchat_reply_v4(BCHAT_OK, "Bchat", &rlen);
	CHECK(reply != NULL && rlen == 103 && memcmp(reply, vs(NULL, "v4_response_plaintext"), 103) == 0,
	      "v4 success reply plaintext (%zu bytes)", rlen);
	sealed = malloc(rlen + onion_overhead(r.key.cipher));
	onion_test_inject_iv(iv, ivlen);
	CHECK(onion_seal(&r.key, reply, rlen, sealed) == 0, "%s reply seals", name);
	CHECK(wlen == rlen + onion_overhead(r.key.cipher) && memcmp(sealed, want, wlen) == 0,
	      "%s reply byte-exact", name);
	free(sealed);
	free(reply);
	free(want);
	free(body);
	onion_request_free(&r);
}

static void test_v4(void)
{
	unsigned char nonce[24];
	size_t blen;
	unsigned char *body;
	struct onion_request r;

	for (int i = 0; i < 24; i++)
		nonce[i] = (unsigned char)(0xc8 + i);
	v4_case(V4_LOKI, &salts_v4, "key_aesgcm_LOKI", (const unsigned char *)"defghijklmno", 12);
	v4_case(V4_BELDEX, &salts_v4, "key_aesgcm_BELDEX", (const unsigned char *)"defghijklmno", 12);
	v4_case(V4_XCHACHA, &salts_v4, "key_xchacha20", nonce, 24);
	/* The salt list only applies to AES-GCM: XChaCha20 opens whatever the list holds. */
	v4_case(V4_XCHACHA, &salts_loki, "key_xchacha20", nonce, 24);
	v4_case(V4_LOKI, &salts_loki, "key_aesgcm_LOKI", (const unsigned char *)"defghijklmno", 12);

	body = vh(V4_BELDEX, REQ, &blen);
	CHECK(onion_body_open(server_sk, server_pk, &salts_loki, 1, body, blen, &r) == ONION_E_DECRYPT,
	      "BELDEX request fails with salts [LOKI]");
	CHECK(r.plaintext == NULL, "nothing left on failure");
	struct onion_salts none = {{NULL}, 0};
	CHECK(onion_body_open(server_sk, server_pk, &none, 1, body, blen, &r) == ONION_E_DECRYPT,
	      "empty salt list decrypts nothing");
	struct onion_salts reversed = {{"LOKI", NULL, "BELDEX"}, 3};
	CHECK(onion_body_open(server_sk, server_pk, &reversed, 1, body, blen, &r) == ONION_OK,
	      "NULL salt skipped, later salt tried");
	onion_request_free(&r);
	free(body);
}

/* The cross-route cases of the test vectors (docs/protocol.md §6.10). */
static void test_cross_route(void)
{
	size_t blen, rlen, hlen;
	unsigned char *body, *reply, *sealed, *back;
	struct onion_request r;
	struct bchat_request q;
	const char *want = "{\"status\": 400, \"body\": {\"code\": 0, \"message\": \"Invalid request\"}}";

	body = vh(V4_LOKI, REQ, &blen);
	CHECK(onion_body_open(server_sk, server_pk, &salts_v2, 0, body, blen, &r) == ONION_E_DECRYPT,
	      "v4 LOKI request on the v2 route: 400");
	free(body);

	body = vh(V4_BELDEX, REQ, &blen);
	CHECK(onion_body_open(server_sk, server_pk, &salts_v2, 0, body, blen, &r) == ONION_OK,
	      "v4 BELDEX request on the v2 route decrypts");
	CHECK(bchat_parse_v2(NULL, r.plaintext, r.plaintext_len, &q) == BCHAT_INVALID_REQUEST,
	      "bencode is not JSON: Invalid request");
	bchat_request_free(&q);
	reply = bchat_reply_v2(BCHAT_INVALID_REQUEST, "Bchat", &rlen);
	CHECK(reply != NULL && rlen == strlen(want) && memcmp(reply, want, rlen) == 0,
	      "Invalid request reply bytes");
	sealed = malloc(rlen + 28);
	back = malloc(rlen + 1);
	CHECK(onion_seal(&r.key, reply, rlen, sealed) == 0, "seal");
	CHECK(onion_open(&r.key, sealed, rlen + 28, back) == 0 && memcmp(back, want, rlen) == 0,
	      "the client's key opens the Invalid request reply");
	char *http = bchat_v2_http_body(sealed, rlen + 28, &hlen);
	CHECK(http != NULL && strncmp(http, "{\"result\":\"", 11) == 0 && http[hlen - 1] == '\n' &&
		      strlen(http) == hlen,
	      "v2 HTTP body shape");
	free(http);
	free(back);
	free(sealed);
	free(reply);
	onion_request_free(&r);
	free(body);

	/* enc_type is honoured on every route. */
	body = vh(V4_XCHACHA, REQ, &blen);
	CHECK(onion_body_open(server_sk, server_pk, &salts_v2, 0, body, blen, &r) == ONION_OK,
	      "XChaCha20 request on the v2 route decrypts");
	CHECK(r.key.cipher == ONION_XCHACHA20, "and keeps its cipher for the reply");
	onion_request_free(&r);
	free(body);
}

static enum onion_body_error open_with(const struct onion_salts *s, int b64,
				       const unsigned char *b, size_t len)
{
	struct onion_request r;
	enum onion_body_error e = onion_body_open(server_sk, server_pk, s, b64, b, len, &r);
	if (e != ONION_OK && (r.plaintext != NULL || r.plaintext_len != 0))
		e = (enum onion_body_error)99; /* failure must leave out zeroed */
	onion_request_free(&r);
	return e;
}

/* The v2 ciphertext with a replacement trailer. */
static enum onion_body_error with_trailer(const char *trailer, size_t trlen, int b64)
{
	size_t blen, len;
	unsigned char *v = vh("v2", REQ, &blen), *b;
	b = build_body(259, v + 4, 259, trailer, trlen, &len);
	enum onion_body_error e = open_with(&salts_v2, b64, b, len);
	free(b);
	free(v);
	return e;
}

static enum onion_body_error with_key(const char *key, const char *extra, int b64)
{
	char t[512];
	size_t n = make_trailer(t, sizeof t, key, extra);
	return with_trailer(t, n, b64);
}

static void test_negative(void)
{
	const char *names[] = {"v2", V4_LOKI, V4_XCHACHA};
	const struct onion_salts *sl[] = {&salts_v2, &salts_v4, &salts_v4};
	char hex[65], t[512], b64[64], z[53];
	size_t blen, len, n;
	unsigned char *v, *b;
	int bad;

	/* The builder reproduces the vector, so the variants below differ only where intended. */
	v = vh("v2", REQ, &blen);
	hex32(hex, client_pk);
	n = make_trailer(t, sizeof t, hex, "");
	CHECK(n == 199 && memcmp(v + 4 + 259, t, n) == 0, "trailer builder matches the vector");
	free(v);

	for (size_t k = 0; k < 3; k++) {
		v = vh(names[k], REQ, &blen);
		uint32_t nf = (uint32_t)v[0] | (uint32_t)v[1] << 8;
		bad = 0;
		for (size_t cut = 0; cut < 4 + (size_t)nf; cut++) {
			b = malloc(cut + 1); /* exact-size copy so ASan sees any over-read */
			memcpy(b, v, cut);
			if (open_with(sl[k], 1, b, cut) != ONION_E_SHORT)
				bad++;
			free(b);
		}
		CHECK(bad == 0, "%s truncated below 4+N: %d lengths not ONION_E_SHORT", names[k], bad);
		bad = 0;
		for (size_t cut = 4 + (size_t)nf; cut < blen; cut++) {
			b = malloc(cut + 1);
			memcpy(b, v, cut);
			if (open_with(sl[k], 1, b, cut) != ONION_E_TRAILER)
				bad++;
			free(b);
		}
		CHECK(bad == 0, "%s trailer cut short: %d lengths not ONION_E_TRAILER", names[k], bad);
		bad = 0;
		for (size_t i = 4; i < 4 + (size_t)nf; i++) {
			for (int bit = 0; bit < 8; bit += 7) {
				v[i] ^= (unsigned char)(1 << bit);
				if (open_with(sl[k], 1, v, blen) != ONION_E_DECRYPT)
					bad++;
				v[i] ^= (unsigned char)(1 << bit);
			}
		}
		CHECK(bad == 0, "%s: %d flipped IV/ciphertext/tag bytes not ONION_E_DECRYPT", names[k],
		      bad);
		CHECK(open_with(sl[k], 1, v, blen) == ONION_OK, "%s unflipped still opens", names[k]);
		free(v);
	}
	CHECK(open_with(&salts_v2, 0, NULL, 0) == ONION_E_SHORT, "NULL body");

	/* N too small for the cipher, or beyond the body. */
	v = vh("v2", REQ, &blen);
	const char *tr = (const char *)v + 4 + 259;
	b = build_body(0, NULL, 0, tr, 199, &len);
	CHECK(open_with(&salts_v2, 0, b, len) == ONION_E_LENGTH, "N = 0");
	free(b);
	b = build_body(27, v + 4, 27, tr, 199, &len);
	CHECK(open_with(&salts_v2, 0, b, len) == ONION_E_LENGTH, "N = 27");
	free(b);
	b = build_body(28, v + 4, 28, tr, 199, &len);
	CHECK(open_with(&salts_v2, 0, b, len) == ONION_E_DECRYPT, "N = 28 passes framing, fails tag");
	free(b);
	memcpy(t, v, 4);
	put_u32le(v, 0xffffffffu);
	CHECK(open_with(&salts_v2, 0, v, blen) == ONION_E_SHORT, "N = 0xffffffff");
	put_u32le(v, 259 + 199 + 1);
	CHECK(open_with(&salts_v2, 0, v, blen) == ONION_E_SHORT, "N one past the body");
	put_u32le(v, 259 + 199);
	CHECK(open_with(&salts_v2, 0, v, blen) == ONION_E_TRAILER, "N covering the trailer");
	memcpy(v, t, 4);
	free(v);

	v = vh(V4_XCHACHA, REQ, &blen);
	n = make_trailer(t, sizeof t, hex, ",\"enc_type\":\"xchacha20\"");
	b = build_body(39, v + 4, 39, t, n, &len);
	CHECK(open_with(&salts_v4, 1, b, len) == ONION_E_LENGTH, "XChaCha20 N = 39");
	free(b);
	b = build_body(263, v + 4, 263, t, n, &len);
	CHECK(open_with(&salts_v4, 1, b, len) == ONION_OK, "XChaCha20 with rebuilt trailer");
	free(b);
	n = make_trailer(t, sizeof t, hex, ",\"enc_type\":\"xchacha20-poly1305\"");
	b = build_body(263, v + 4, 263, t, n, &len);
	CHECK(open_with(&salts_v4, 1, b, len) == ONION_OK, "enc_type xchacha20-poly1305");
	free(b);
	n = make_trailer(t, sizeof t, hex, "");
	b = build_body(263, v + 4, 263, t, n, &len);
	CHECK(open_with(&salts_v4, 1, b, len) == ONION_E_DECRYPT, "XChaCha20 body read as AES-GCM");
	free(b);
	free(v);

	/* Trailers. */
	CHECK(with_trailer("[]", 2, 1) == ONION_E_TRAILER, "trailer []");
	CHECK(with_trailer("{}", 2, 1) == ONION_E_EPHEMERAL, "trailer {}");
	CHECK(with_trailer("", 0, 1) == ONION_E_TRAILER, "empty trailer");
	CHECK(with_trailer("5", 1, 1) == ONION_E_TRAILER, "trailer 5");
	CHECK(with_trailer("\"x\"", 3, 1) == ONION_E_TRAILER, "trailer string");
	CHECK(with_trailer("null", 4, 1) == ONION_E_TRAILER, "trailer null");
	CHECK(with_trailer("{}{}", 4, 1) == ONION_E_TRAILER, "two objects");
	CHECK(with_trailer("{\"a\":1", 6, 1) == ONION_E_TRAILER, "unterminated object");
	CHECK(with_trailer("{\"a\":\"\xff\"}", 9, 1) == ONION_E_TRAILER, "invalid UTF-8 byte");
	CHECK(with_trailer("{\"a\":\"\xc0\xaf\"}", 10, 1) == ONION_E_TRAILER, "overlong UTF-8");
	CHECK(with_trailer("{\"a\":\"\xed\xa0\x80\"}", 11, 1) == ONION_E_TRAILER, "UTF-8 surrogate");
	CHECK(with_trailer("{\"a\":\"\xf4\x90\x80\x80\"}", 12, 1) == ONION_E_TRAILER, "above U+10FFFF");
	CHECK(with_trailer("{\"a\":\"\xe2\x82\"}", 10, 1) == ONION_E_TRAILER, "truncated UTF-8");
	CHECK(with_trailer("{\"a\":\"x\"}\0", 10, 1) == ONION_E_TRAILER, "NUL after the object");
	CHECK(with_trailer("{\"a\":\"\\u0000\"}", 14, 1) == ONION_E_TRAILER, "\\u0000 in the trailer");
	CHECK(with_trailer("\xef\xbb\xbf{}", 5, 1) == ONION_E_TRAILER, "BOM before the object");
	n = make_trailer(t, sizeof t, hex, "");
	memcpy(t + n, " \r\n\t", 5);
	CHECK(with_trailer(t, n + 4, 0) == ONION_OK, "whitespace after the object");
	memcpy(t + n, " x", 3);
	CHECK(with_trailer(t, n + 2, 0) == ONION_E_TRAILER, "junk after the object");
	n = make_trailer(t, sizeof t, hex, ",\"note\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"port\":1e400");
	CHECK(with_trailer(t, n, 0) == ONION_E_TRAILER, "unrepresentable number rejected");
	n = make_trailer(t, sizeof t, hex, ",\"note\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"big\":123456789012345678901234567890");
	CHECK(with_trailer(t, n, 0) == ONION_OK, "valid multibyte UTF-8, big integer, unknown keys");
	n = (size_t)snprintf(t, sizeof t, "{\"ephemeral_key\":\"%s\"}", hex);
	CHECK(with_trailer(t, n, 0) == ONION_OK, "minimal trailer");
	n = (size_t)snprintf(t, sizeof t, "{\"ephemeral_key\":\"%.64s0\",\"ephemeral_key\":\"%s\"}", hex, hex);
	CHECK(with_trailer(t, n, 0) == ONION_OK, "duplicate key: last wins");

	/* ephemeral_key encodings. */
	CHECK(with_key(hex, "", 0) == ONION_OK, "lowercase hex");
	char up[65];
	for (int i = 0; i < 65; i++)
		up[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
	CHECK(with_key(up, "", 0) == ONION_OK, "uppercase hex");
	CHECK(with_key("", "", 1) == ONION_E_EPHEMERAL, "empty key");
	hex[63] = '\0';
	CHECK(with_key(hex, "", 1) == ONION_E_EPHEMERAL, "63-char key");
	hex32(hex, client_pk);
	char h65[66];
	snprintf(h65, sizeof h65, "%s0", hex);
	CHECK(with_key(h65, "", 1) == ONION_E_EPHEMERAL, "65-char key");
	char g[65];
	memcpy(g, hex, 65);
	g[10] = 'g';
	CHECK(with_key(g, "", 1) == ONION_E_EPHEMERAL, "non-hex digit");
	CHECK(with_key("0000000000000000000000000000000000000000000000000000000000000000", "", 1) ==
		      ONION_E_LOW_ORDER,
	      "all-zero key");
	CHECK(with_key("0100000000000000000000000000000000000000000000000000000000000000", "", 1) ==
		      ONION_E_LOW_ORDER,
	      "u = 1 (low order)");
	CHECK(with_key("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", "", 1) ==
		      ONION_E_LOW_ORDER,
	      "order-8 point");
	CHECK(with_trailer("{\"ephemeral_key\":5}", 19, 1) == ONION_E_EPHEMERAL, "numeric key");
	CHECK(with_trailer("{\"ephemeral_key\":null}", 22, 1) == ONION_E_EPHEMERAL, "null key");
	n = (size_t)snprintf(t, sizeof t, "{\"ephemeral_key\":\"%.32s\\u0000%.31s\"}", hex, hex + 32);
	CHECK(with_trailer(t, n, 1) == ONION_E_TRAILER, "key with U+0000");

	sodium_bin2base64(b64, sizeof b64, client_pk, 32, sodium_base64_VARIANT_ORIGINAL);
	CHECK(strlen(b64) == 44 && with_key(b64, "", 1) == ONION_OK, "padded base64 (v4)");
	CHECK(with_key(b64, "", 0) == ONION_OK, "padded base64 (v2: accepted too)");
	b64[43] = '\0';
	CHECK(with_key(b64, "", 1) == ONION_OK, "unpadded base64");
	sodium_bin2base64(b64, sizeof b64, client_pk, 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	CHECK(with_key(b64, "", 1) == ONION_OK, "URL-safe base64");
	char last = b64[42];
	b64[42] = (char)(last + 1); /* canonical: low 2 bits 0, so +1 sets a padding bit or leaves the alphabet */
	CHECK(with_key(b64, "", 1) == ONION_E_EPHEMERAL, "base64 with non-zero padding bits");
	b64[42] = last;
	b64[5] = '*';
	CHECK(with_key(b64, "", 1) == ONION_E_EPHEMERAL, "base64 with a bad character");
	/* Both alphabets in one key (docs/protocol.md): a key whose standard spelling has a '+'
	 * and a '/', with only the '+' made URL-safe, decodes (the body then fails to decrypt,
	 * as it was sealed to another key), where a bad spelling fails earlier. */
	for (int i = 0; i < 1000; i++) {
		unsigned char sk[32], pk[32];
		char label[32], *plus;
		snprintf(label, sizeof label, "mixed-alphabet-%d", i);
		crypto_hash_sha256(sk, (const unsigned char *)label, strlen(label));
		crypto_scalarmult_base(pk, sk);
		sodium_bin2base64(b64, sizeof b64, pk, 32, sodium_base64_VARIANT_ORIGINAL);
		if ((plus = strchr(b64, '+')) == NULL || strchr(b64, '/') == NULL)
			continue;
		*plus = '-';
		CHECK(with_key(b64, "", 1) == ONION_E_DECRYPT, "base64 mixing both alphabets decodes (%s)", b64);
		break;
	}
	sodium_bin2base64(b64, sizeof b64, client_pk, 32, sodium_base64_VARIANT_ORIGINAL);
	b64[42] = '=';
	CHECK(with_key(b64, "", 1) == ONION_E_EPHEMERAL, "two '=' in a 44-char key");
	zbase32(z, client_pk);
	CHECK(strlen(z) == 52 && with_key(z, "", 1) == ONION_OK, "z-base-32 on v4");
	CHECK(with_key(z, "", 0) == ONION_E_EPHEMERAL, "z-base-32 not on v2");
	z[0] = 'l'; /* not in the alphabet */
	CHECK(with_key(z, "", 1) == ONION_E_EPHEMERAL, "z-base-32 with a bad character");

	/* enc_type. */
	hex32(hex, client_pk);
	CHECK(with_key(hex, ",\"enc_type\":\"aes-gcm\"", 0) == ONION_OK, "enc_type aes-gcm");
	CHECK(with_key(hex, ",\"enc_type\":\"gcm\"", 0) == ONION_OK, "enc_type gcm");
	CHECK(with_key(hex, ",\"enc_type\":\"rot13\"", 0) == ONION_E_ENC_TYPE, "enc_type rot13");
	CHECK(with_key(hex, ",\"enc_type\":\"aes-cbc\"", 0) == ONION_E_ENC_TYPE, "aes-cbc unsupported");
	CHECK(with_key(hex, ",\"enc_type\":\"cbc\"", 0) == ONION_E_ENC_TYPE, "cbc unsupported");
	CHECK(with_key(hex, ",\"enc_type\":\"AES-GCM\"", 0) == ONION_E_ENC_TYPE, "matched exactly");
	CHECK(with_key(hex, ",\"enc_type\":\"\"", 0) == ONION_E_ENC_TYPE, "empty enc_type");
	CHECK(with_key(hex, ",\"enc_type\":null", 0) == ONION_E_ENC_TYPE, "null enc_type");
	CHECK(with_key(hex, ",\"enc_type\":1", 0) == ONION_E_ENC_TYPE, "numeric enc_type");
	CHECK(with_key(hex, ",\"enc_type\":[\"gcm\"]", 0) == ONION_E_ENC_TYPE, "array enc_type");

	for (int e = ONION_OK; e <= ONION_E_NOMEM + 1; e++)
		CHECK(onion_body_error_str((enum onion_body_error)e)[0] != '\0', "error text %d", e);
}

static void test_round_trips(void)
{
	static unsigned char pt[70001], ct[70001 + 40], back[70001];
	const size_t lens[] = {0, 1, 15, 16, 17, 58, 103, 255, 4096, 70001};
	const enum onion_cipher ciphers[] = {ONION_AES_GCM, ONION_XCHACHA20};
	struct onion_key k;
	int bad = 0;

	for (size_t c = 0; c < 2; c++) {
		for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
			size_t n = lens[i], ov = onion_overhead(ciphers[c]);
			k.cipher = ciphers[c];
			randombytes_buf(k.key, 32);
			randombytes_buf(pt, n);
			if (onion_seal(&k, pt, n, ct) != 0 || onion_open(&k, ct, n + ov, back) != 0 ||
			    (n > 0 && memcmp(pt, back, n) != 0))
				bad++;
			ct[n + ov - 1] ^= 1;
			memset(back, 0xaa, n);
			if (onion_open(&k, ct, n + ov, back) == 0)
				bad++;
			for (size_t j = 0; j < n; j++)
				if (back[j] == pt[j] && pt[j] != 0 && back[j] != 0xaa)
					bad++; /* plaintext leaked after a failed tag */
			ct[n + ov - 1] ^= 1;
			k.key[0] ^= 1;
			if (onion_open(&k, ct, n + ov, back) == 0)
				bad++;
		}
		CHECK(bad == 0, "cipher %zu: %d round-trip failures", c, bad);
		k.cipher = ciphers[c];
		CHECK(onion_open(&k, ct, onion_overhead(ciphers[c]) - 1, back) == -1, "shorter than overhead");
		CHECK(onion_seal(&k, NULL, 0, ct) == 0 && onion_open(&k, ct, onion_overhead(k.cipher), back) == 0,
		      "empty plaintext round trip");
	}

	/* Fresh IVs, and the injected IV is used once, only by the cipher it fits. */
	unsigned char a[60], b2[60];
	k.cipher = ONION_AES_GCM;
	randombytes_buf(k.key, 32);
	onion_seal(&k, pt, 20, a);
	onion_seal(&k, pt, 20, b2);
	CHECK(memcmp(a, b2, 12) != 0, "two seals draw different IVs");
	onion_test_inject_iv((const unsigned char *)"0123456789abcdefghijklmnop", 13);
	onion_seal(&k, pt, 20, a);
	CHECK(memcmp(a, "0123456789ab", 12) != 0, "13-byte injection ignored");
	onion_test_inject_iv((const unsigned char *)"0123456789ab", 12);
	k.cipher = ONION_XCHACHA20;
	onion_seal(&k, pt, 20, a);
	CHECK(memcmp(a, "0123456789ab", 12) != 0, "12-byte IV not used for XChaCha20");
	k.cipher = ONION_AES_GCM;
	onion_seal(&k, pt, 20, a);
	CHECK(memcmp(a, "0123456789ab", 12) == 0, "pending IV used by the next AES-GCM seal");
	onion_seal(&k, pt, 20, a);
	CHECK(memcmp(a, "0123456789ab", 12) != 0, "and only once");

	unsigned char zero[32] = {0}, out[32];
	memset(out, 0x55, 32);
	CHECK(onion_x25519(out, server_sk, zero) == -1, "x25519 with the zero point fails");
	CHECK(sodium_is_zero(out, 32), "and leaves zeros");
}

/* The reply IVs come from a per-thread generator (onion_crypto.c): no repeats over many
 * refills of its buffer, none between threads, and a child after fork() must not replay the
 * bytes its parent had buffered. */
static int cmp_iv(const void *a, const void *b)
{
	return memcmp(a, b, ONION_AES_GCM_IV);
}

static void *iv_thread(void *p)
{
	unsigned char (*ivs)[ONION_AES_GCM_IV] = p, pt[1] = {0}, ct[1 + 28];
	struct onion_key k = {ONION_AES_GCM, {1}};
	for (int i = 0; i < 5000; i++) {
		onion_seal(&k, pt, 1, ct);
		memcpy(ivs[i], ct, ONION_AES_GCM_IV);
	}
	return NULL;
}

static void test_iv_generator(void)
{
	static unsigned char ivs[2 * 5000][ONION_AES_GCM_IV];
	unsigned char pt[1] = {0}, ct[1 + 28], child_iv[ONION_AES_GCM_IV];
	struct onion_key k = {ONION_AES_GCM, {1}};
	pthread_t t[2];
	int fds[2], dups = 0, status = 0;
	pid_t pid;

	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, iv_thread, ivs + i * 5000);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	qsort(ivs, 2 * 5000, ONION_AES_GCM_IV, cmp_iv);
	for (int i = 1; i < 2 * 5000; i++)
		dups += memcmp(ivs[i - 1], ivs[i], ONION_AES_GCM_IV) == 0;
	CHECK(dups == 0, "10 000 IVs from two threads (about 470 refills): %d repeats", dups);

	onion_seal(&k, pt, 1, ct); /* this thread's generator now holds buffered bytes */
	CHECK(pipe(fds) == 0, "pipe");
	if ((pid = fork()) == 0) {
		onion_seal(&k, pt, 1, ct);
		_exit(write(fds[1], ct, ONION_AES_GCM_IV) == ONION_AES_GCM_IV ? 0 : 1);
	}
	onion_seal(&k, pt, 1, ct);
	waitpid(pid, &status, 0);
	CHECK(read(fds[0], child_iv, sizeof child_iv) == (ssize_t)sizeof child_iv && status == 0,
	      "the child sealed");
	CHECK(memcmp(child_iv, ct, ONION_AES_GCM_IV) != 0, "a forked child draws other IVs than its parent");
	close(fds[0]);
	close(fds[1]);
}

struct thread_arg {
	int bad;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	unsigned char pt[100], ct[140], back[100];
	struct onion_key k = {ONION_AES_GCM, {0}};
	for (int i = 0; i < 200; i++) {
		randombytes_buf(k.key, 32);
		randombytes_buf(pt, sizeof pt);
		if (onion_seal(&k, pt, sizeof pt, ct) != 0 || onion_open(&k, ct, 128, back) != 0 ||
		    memcmp(pt, back, sizeof pt) != 0)
			a->bad++;
	}
	return NULL; /* the per-thread context is freed by the key destructor */
}

static void test_threads(void)
{
	pthread_t t[4];
	struct thread_arg a[4];
	int bad = 0;
	for (int i = 0; i < 4; i++) {
		a[i].bad = 0;
		pthread_create(&t[i], NULL, thread_main, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		bad += a[i].bad;
	}
	CHECK(bad == 0, "concurrent seal/open: %d failures", bad);
}

static int write_file(const char *path, const char *content, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return -1;
	fwrite(content, 1, len, f);
	return fclose(f);
}

static void test_key_files(void)
{
	char dir[] = "/tmp/test_onion_keys.XXXXXX", path[256], pub[256], err[512], hex[65], buf[200];
	unsigned char sk[32], pk[32], sk2[32], pk2[32];
	struct stat st;
	size_t n;

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof path, "%s/server.key", dir);
	hex32(hex, server_sk);

	snprintf(buf, sizeof buf, "%s\n", hex);
	write_file(path, buf, strlen(buf));
	CHECK(onion_key_load(path, sk, pk, err, sizeof err) == 0, "good key file: %s", err);
	CHECK_MEM(sk, server_sk, 32, "secret loaded");
	CHECK_MEM(pk, server_pk, 32, "public derived");

	snprintf(buf, sizeof buf, " \t\r\n%s \r\n\n", hex);
	write_file(path, buf, strlen(buf));
	memset(sk, 0, 32);
	CHECK(onion_key_load(path, sk, pk, err, sizeof err) == 0 && memcmp(sk, server_sk, 32) == 0,
	      "whitespace around the key");
	write_file(path, hex, 64);
	CHECK(onion_key_load(path, sk, pk, err, sizeof err) == 0, "no newline");
	for (int i = 0; i < 64; i++)
		buf[i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
	write_file(path, buf, 64);
	CHECK(onion_key_load(path, sk, pk, err, sizeof err) == 0 && memcmp(sk, server_sk, 32) == 0,
	      "uppercase hex");

	const struct {
		const char *content;
		const char *why;
	} bad[] = {
		{"", "empty"},
		{"\n", "only a newline"},
		{"e073e7537056e02265fa20cce31383f1be436b1e22c2f0d2560ceabb356c39e\n", "63 hex"},
		{"e073e7537056e02265fa20cce31383f1be436b1e22c2f0d2560ceabb356c39e70\n", "65 hex"},
		{"g073e7537056e02265fa20cce31383f1be436b1e22c2f0d2560ceabb356c39e7\n", "bad hex"},
		{"e073e7537056e02265fa20cce31383f1 be436b1e22c2f0d2560ceabb356c39e7\n", "space inside"},
		{"e073e7537056e02265fa20cce31383f1be436b1e22c2f0d2560ceabb356c39e7\nx\n", "junk line"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_file(path, bad[i].content, strlen(bad[i].content));
		err[0] = '\0';
		memset(sk, 0x11, 32);
		CHECK(onion_key_load(path, sk, pk, err, sizeof err) == -1, "rejects %s", bad[i].why);
		CHECK(strstr(err, path) != NULL, "error names the file: %s", err);
		CHECK(sodium_is_zero(sk, 32), "no partial secret after %s", bad[i].why);
	}
	char *big = malloc(10000);
	memset(big, ' ', 10000);
	memcpy(big + 5000, hex, 64);
	write_file(path, big, 10000);
	free(big);
	CHECK(onion_key_load(path, sk, pk, err, sizeof err) == -1, "oversized file rejected");
	snprintf(buf, sizeof buf, "%s/absent.key", dir);
	CHECK(onion_key_load(buf, sk, pk, err, sizeof err) == -1 && strstr(err, "absent.key") != NULL,
	      "missing file: %s", err);
	unlink(path);

	/* Generation. */
	snprintf(path, sizeof path, "%s/gen.key", dir);
	snprintf(pub, sizeof pub, "%s/gen.pub", dir);
	CHECK(onion_key_write_pair(path, pub, sk, pk) == 0, "write pair: %s", strerror(errno));
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "secret file is 0600");
	CHECK(stat(pub, &st) == 0 && (st.st_mode & 0777) == 0644, "public file is 0644");
	char *s = test_slurp(path, &n);
	hex32(hex, sk);
	CHECK(s != NULL && n == 65 && memcmp(s, hex, 64) == 0 && s[64] == '\n', "secret is 64hex\\n");
	free(s);
	s = test_slurp(pub, &n);
	hex32(hex, pk);
	CHECK(s != NULL && n == 65 && memcmp(s, hex, 64) == 0 && s[64] == '\n',
	      "public is 64 lowercase hex\\n");
	free(s);
	CHECK(onion_key_load(path, sk2, pk2, err, sizeof err) == 0 && memcmp(sk, sk2, 32) == 0 &&
		      memcmp(pk, pk2, 32) == 0,
	      "generated pair loads back");
	errno = 0;
	CHECK(onion_key_write_pair(path, pub, sk2, pk2) == -1 && errno == EEXIST,
	      "never overwrites a secret key");
	CHECK(onion_key_load(path, sk2, pk2, err, sizeof err) == 0 && memcmp(sk, sk2, 32) == 0,
	      "existing key unchanged");
	snprintf(buf, sizeof buf, "%s/gen.key.tmp", dir);
	CHECK(access(buf, F_OK) != 0, "no temporary file left");
	unlink(path);
	unlink(pub);
	snprintf(buf, sizeof buf, "%s/nodir/x.pub", dir);
	errno = 0;
	CHECK(onion_key_write_pair(path, buf, sk2, pk2) == -1 && access(path, F_OK) != 0,
	      "public write failure leaves no secret");
	rmdir(dir);
}

int main(void)
{
	size_t len;
	char *text = test_slurp(vectors_path(), &len);
	json_error_t jerr;

	if (text == NULL) {
		CHECK(0, "cannot read vectors at %s (set PUSHPIPE_VECTORS)", vectors_path());
		return test_done();
	}
	vectors = json_loadb(text, len, 0, &jerr);
	free(text);
	if (vectors == NULL) {
		CHECK(0, "vectors: %s", jerr.text);
		return test_done();
	}
	vh32("server_x25519_priv", server_sk);
	vh32("server_x25519_pub", server_pk);
	vh32("client_ephemeral_priv", client_sk);
	vh32("client_ephemeral_pub", client_pk);

	test_derivations();
	test_v2();
	test_v4();
	test_cross_route();
	test_negative();
	test_round_trips();
	test_threads();
	test_iv_generator();
	test_key_files();

	json_decref(vectors);
	onion_thread_cleanup();
	return test_done();
}
