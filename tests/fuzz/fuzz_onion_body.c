/*
 * fuzz_onion_body: onion_body_open() (ingress/onion/onion_body.c) on arbitrary request bodies, with
 * the test vectors' server key (docs/protocol.md §6.10) (so the vectors in the seed corpus
 * decrypt), salts BELDEX then LOKI, z-base-32 keys refused and admitted (allow_b64 0 and 1).
 * Whatever decrypts is also parsed as v2 and v4 and answered, as the ingress would.
 *
 * Second pass, a round-trip property: the input is taken as a plaintext, sealed the way an app
 * does (vector client key, AES-GCM with each salt and XChaCha20, hex and base64 keys) and
 * opened again; it must open with the same cipher and key and give back exactly the input.
 */
#include "bchat/bchat_request.h"
#include "fuzz_common.h"
#include "../../ingress/onion/onion_body.h"
#include "onion_crypto.h"
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* SHA-256("bchat-pn-test-server-key") and SHA-256("bchat-pn-test-client-ephemeral"). */
static const char SERVER_SK_HEX[] = "e073e7537056e02265fa20cce31383f1be436b1e22c2f0d2560ceabb356c39e7";
static const char CLIENT_SK_HEX[] = "7b61bad5a1ece827e5546015db477c0374c3fd5e68b60b71978439f85d278254";
static unsigned char server_sk[32], server_pk[32], client_sk[32], client_pk[32], shared[32];
static struct onion_salts salts;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	sodium_hex2bin(server_sk, 32, SERVER_SK_HEX, 64, NULL, NULL, NULL);
	sodium_hex2bin(client_sk, 32, CLIENT_SK_HEX, 64, NULL, NULL, NULL);
	crypto_scalarmult_base(server_pk, server_sk);
	crypto_scalarmult_base(client_pk, client_sk);
	CHECK(onion_x25519(shared, client_sk, server_pk) == 0);
	salts.names[0] = "BELDEX";
	salts.names[1] = "LOKI";
	salts.n = 2;
	return 0;
}

static void answer(const struct onion_request *req)
{
	static const struct bchat_config cfg = {1, "bd", 2048};
	struct bchat_request br;
	for (int v4 = 0; v4 < 2; v4++) {
		enum bchat_error e = v4 ? bchat_parse_v4(&cfg, req->plaintext, req->plaintext_len, &br)
					: bchat_parse_v2(&cfg, req->plaintext, req->plaintext_len, &br);
		size_t len;
		if (e == BCHAT_OK)
			check_request(&cfg, &br);
		unsigned char *pt = v4 ? bchat_reply_v4(e, "Bchat", &len) : bchat_reply_v2(e, "Bchat", &len);
		CHECK(pt != NULL);
		unsigned char *sealed = malloc(len + onion_overhead(req->key.cipher));
		CHECK(sealed != NULL);
		CHECK(onion_seal(&req->key, pt, len, sealed) == 0);
		unsigned char *back = malloc(len + 1);
		CHECK(back != NULL);
		CHECK(onion_open(&req->key, sealed, len + onion_overhead(req->key.cipher), back) == 0);
		CHECK(memcmp(back, pt, len) == 0);
		free(back);
		free(sealed);
		free(pt);
		bchat_request_free(&br);
	}
}

static void raw_pass(const uint8_t *data, size_t size)
{
	for (int allow = 0; allow < 2; allow++) {
		struct onion_request req;
		enum onion_body_error e = onion_body_open(server_sk, server_pk, &salts, allow, data, size, &req);
		CHECK(e >= ONION_OK && e <= ONION_E_NOMEM);
		CHECK(onion_body_error_str(e) != NULL);
		if (e == ONION_OK) {
			CHECK(req.plaintext != NULL && req.plaintext[req.plaintext_len] == '\0');
			CHECK(size >= 4 + req.plaintext_len + onion_overhead(req.key.cipher));
			answer(&req);
		} else {
			CHECK(req.plaintext == NULL && req.plaintext_len == 0);
		}
		onion_request_free(&req);
	}
}

/* The app's side, written with the C primitives: seal data and wrap it in a body. */
static void roundtrip(const uint8_t *data, size_t size, enum onion_cipher cipher, const char *salt, int b64)
{
	struct onion_key k;
	struct onion_request req;
	char key_text[65], trailer[160];
	unsigned char *body;
	size_t ct_len = size + onion_overhead(cipher), tl;

	if (cipher == ONION_XCHACHA20)
		onion_derive_xchacha(&k, shared, client_pk, server_pk);
	else
		onion_derive_aes(&k, shared, salt);
	if (b64)
		sodium_bin2base64(key_text, sizeof key_text, client_pk, 32, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	else
		sodium_bin2hex(key_text, sizeof key_text, client_pk, 32);
	tl = (size_t)snprintf(trailer, sizeof trailer, "{\"ephemeral_key\":\"%s\"%s}", key_text,
			      cipher == ONION_XCHACHA20 ? ",\"enc_type\":\"xchacha20\"" : "");
	body = malloc(4 + ct_len + tl);
	CHECK(body != NULL);
	body[0] = (unsigned char)ct_len;
	body[1] = (unsigned char)(ct_len >> 8);
	body[2] = (unsigned char)(ct_len >> 16);
	body[3] = (unsigned char)(ct_len >> 24);
	CHECK(onion_seal(&k, data, size, body + 4) == 0);
	memcpy(body + 4 + ct_len, trailer, tl);
	CHECK(onion_body_open(server_sk, server_pk, &salts, 0, body, 4 + ct_len + tl, &req) == ONION_OK);
	CHECK(req.plaintext_len == size && (size == 0 || memcmp(req.plaintext, data, size) == 0));
	CHECK(req.key.cipher == cipher && memcmp(req.key.key, k.key, 32) == 0);
	onion_request_free(&req);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	raw_pass(data, size);
	if (size > 0) {
		/* One cipher per input (chosen by its first byte) keeps the X25519 cost bounded. */
		switch (data[0] % 3) {
		case 0: roundtrip(data, size, ONION_AES_GCM, "BELDEX", data[size - 1] & 1); break;
		case 1: roundtrip(data, size, ONION_AES_GCM, "LOKI", data[size - 1] & 1); break;
		default: roundtrip(data, size, ONION_XCHACHA20, NULL, data[size - 1] & 1); break;
		}
	}
	return 0;
}
