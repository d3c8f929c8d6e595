/*
 * onion_crypto: the primitives of the Bchat/Session onion-request layer (docs/protocol.md §6.2):
 * X25519 agreement, the AES-GCM and XChaCha20 key derivations, seal/open in the wire layout
 * IV ‖ ct ‖ tag; and, through onion_key.h, the server key files. Shared by the onion ingress and
 * pushctl.
 */
#ifndef ONION_CRYPTO_H
#define ONION_CRYPTO_H
#include "onion_key.h" /* the server key files */
#include <stddef.h>

enum onion_cipher { ONION_AES_GCM, ONION_XCHACHA20 };

/* A derived symmetric key and the cipher it is for. */
struct onion_key {
	enum onion_cipher cipher;
	unsigned char key[32];
};

#define ONION_AES_GCM_IV 12
#define ONION_XCHACHA20_NONCE 24
#define ONION_TAG 16

/* shared = X25519(sk, pk); -1 (and shared zeroed) when the result is all zero (low-order pk). */
int onion_x25519(unsigned char shared[32], const unsigned char sk[32], const unsigned char pk[32]);
/* AES-GCM key: HMAC-SHA256(key = salt as ASCII, message = shared). */
void onion_derive_aes(struct onion_key *k, const unsigned char shared[32], const char *salt);
/* XChaCha20 key: unkeyed BLAKE2b-256(shared ‖ client_pk ‖ server_pk). */
void onion_derive_xchacha(struct onion_key *k, const unsigned char shared[32],
			  const unsigned char client_pk[32], const unsigned char server_pk[32]);
/* IV/nonce plus tag bytes: 28 for AES-GCM, 40 for XChaCha20 (0 for an unknown cipher). */
size_t onion_overhead(enum onion_cipher c);
/* out = IV ‖ ct ‖ tag under a fresh CSPRNG IV (or the injected test IV); out holds len +
 * onion_overhead() bytes and must not overlap pt. 0, or -1 on a library failure. */
int onion_seal(const struct onion_key *k, const unsigned char *pt, size_t len, unsigned char *out);
/* in = IV ‖ ct ‖ tag; writes len - overhead bytes to pt (which must not overlap in). -1 when
 * len < overhead or the tag fails; pt then holds no unauthenticated bytes. */
int onion_open(const struct onion_key *k, const unsigned char *in, size_t len, unsigned char *pt);
/* Test-only: the next onion_seal() whose cipher takes an IV of this length (12 or 24) uses iv
 * instead of a random one, once. Other lengths are ignored. Never call it outside tests. */
void onion_test_inject_iv(const unsigned char *iv, size_t len);
/* Frees this thread's cached cipher context (also done automatically at thread exit). */
void onion_thread_cleanup(void);
#endif
