/*
 * onion_crypto: X25519, the two key derivations, AES-256-GCM (OpenSSL EVP) and
 * XChaCha20-Poly1305 (libsodium) in the onion wire layout (the server key files: onion_key.c).
 * Trusts nothing it decrypts: every length is checked before use and a failed tag leaves no
 * plaintext behind. Holds one cached EVP context per thread (the ingress opens and seals on
 * every request, and re-creating a context per call costs more than the AES itself) and the
 * one-shot test IV.
 */
#include "onion_crypto.h"
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;
static int init_failed;
static _Thread_local EVP_CIPHER_CTX *tls_ctx;

static pthread_mutex_t inject_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int inject_pending;
static unsigned char inject_iv[ONION_XCHACHA20_NONCE];
static size_t inject_len;

static void ctx_destroy(void *p)
{
	EVP_CIPHER_CTX_free(p);
}

/* Reply IVs come from a per-thread generator with fast key erasure rather than a getrandom()
 * per reply (a system call on every request): ChaCha20 under a 32-byte key gives 32 bytes of
 * next key and 256 bytes of output, and the old key is gone. Seeded from the OS, reseeded
 * every 4096 refills (1 MiB), and after fork() in the child (the generation changes). */
#define RNG_OUT 256
static atomic_uint rng_generation = 1;
static _Thread_local struct {
	unsigned char key[crypto_stream_chacha20_KEYBYTES];
	unsigned char out[RNG_OUT];
	size_t left;
	unsigned generation, refills;
} tls_rng;

static void rng_after_fork(void)
{
	atomic_fetch_add(&rng_generation, 1);
}

static void rng_bytes(unsigned char *dst, size_t len)
{
	static const unsigned char zero_nonce[crypto_stream_chacha20_NONCEBYTES];
	unsigned gen = atomic_load_explicit(&rng_generation, memory_order_relaxed);
	if (tls_rng.generation != gen) {
		randombytes_buf(tls_rng.key, sizeof tls_rng.key);
		tls_rng.generation = gen;
		tls_rng.refills = 0;
		tls_rng.left = 0;
	}
	while (len > 0) {
		if (tls_rng.left == 0) {
			unsigned char block[sizeof tls_rng.key + RNG_OUT];
			if (++tls_rng.refills % 4096 == 0)
				randombytes_buf(tls_rng.key, sizeof tls_rng.key);
			crypto_stream_chacha20(block, sizeof block, zero_nonce, tls_rng.key);
			memcpy(tls_rng.key, block, sizeof tls_rng.key);
			memcpy(tls_rng.out, block + sizeof tls_rng.key, RNG_OUT);
			sodium_memzero(block, sizeof block);
			tls_rng.left = RNG_OUT;
		}
		size_t k = len < tls_rng.left ? len : tls_rng.left;
		unsigned char *src = tls_rng.out + RNG_OUT - tls_rng.left;
		memcpy(dst, src, k);
		sodium_memzero(src, k);
		tls_rng.left -= k;
		dst += k;
		len -= k;
	}
}

static void init_all(void)
{
	if (sodium_init() < 0 || pthread_key_create(&ctx_key, ctx_destroy) != 0 ||
	    pthread_atfork(NULL, NULL, rng_after_fork) != 0)
		init_failed = 1;
}

static int lib_init(void)
{
	pthread_once(&init_once, init_all);
	return init_failed ? -1 : 0;
}

/* The thread's AES-256-GCM context, created once and re-keyed per call: binding the cipher
 * once avoids OpenSSL 3's per-init algorithm fetch. */
static EVP_CIPHER_CTX *gcm_ctx(void)
{
	if (tls_ctx != NULL)
		return tls_ctx;
	if (lib_init() < 0)
		return NULL;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (c == NULL)
		return NULL;
	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, 1) != 1 ||
	    pthread_setspecific(ctx_key, c) != 0) {
		EVP_CIPHER_CTX_free(c);
		return NULL;
	}
	tls_ctx = c;
	return c;
}

void onion_thread_cleanup(void)
{
	if (tls_ctx == NULL)
		return;
	pthread_setspecific(ctx_key, NULL);
	EVP_CIPHER_CTX_free(tls_ctx);
	tls_ctx = NULL;
}

int onion_x25519(unsigned char shared[32], const unsigned char sk[32], const unsigned char pk[32])
{
	if (lib_init() < 0 || crypto_scalarmult(shared, sk, pk) != 0) {
		sodium_memzero(shared, 32);
		return -1;
	}
	return 0;
}

/* HMAC states keyed with a salt, before any message: the salts are few and fixed by the
 * configuration, so each thread keys each of them once, which halves the SHA-256 work of every
 * derivation. A salt that does not fit the table is keyed on every call. */
#define SALT_CACHE 4
#define SALT_MAX 32
static _Thread_local struct {
	char salt[SALT_MAX + 1];
	crypto_auth_hmacsha256_state st;
} tls_salts[SALT_CACHE];

static void keyed_state(crypto_auth_hmacsha256_state *st, const char *salt)
{
	size_t n = strlen(salt);
	/* The salt is the HMAC key and is 4 or 6 bytes, so the one-shot API (32-byte key) is out. */
	for (int i = 0; n > 0 && n <= SALT_MAX && i < SALT_CACHE; i++) {
		if (tls_salts[i].salt[0] == '\0') {
			memcpy(tls_salts[i].salt, salt, n + 1);
			crypto_auth_hmacsha256_init(&tls_salts[i].st, (const unsigned char *)salt, n);
		}
		if (strcmp(tls_salts[i].salt, salt) == 0) {
			*st = tls_salts[i].st;
			return;
		}
	}
	crypto_auth_hmacsha256_init(st, (const unsigned char *)salt, n);
}

void onion_derive_aes(struct onion_key *k, const unsigned char shared[32], const char *salt)
{
	crypto_auth_hmacsha256_state st;
	(void)lib_init();
	keyed_state(&st, salt);
	crypto_auth_hmacsha256_update(&st, shared, 32);
	crypto_auth_hmacsha256_final(&st, k->key);
	sodium_memzero(&st, sizeof st);
	k->cipher = ONION_AES_GCM;
}

void onion_derive_xchacha(struct onion_key *k, const unsigned char shared[32],
			  const unsigned char client_pk[32], const unsigned char server_pk[32])
{
	crypto_generichash_state st;
	(void)lib_init();
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, shared, 32);
	crypto_generichash_update(&st, client_pk, 32);
	crypto_generichash_update(&st, server_pk, 32);
	crypto_generichash_final(&st, k->key, 32);
	sodium_memzero(&st, sizeof st);
	k->cipher = ONION_XCHACHA20;
}

size_t onion_overhead(enum onion_cipher c)
{
	switch (c) {
	case ONION_AES_GCM:
		return ONION_AES_GCM_IV + ONION_TAG;
	case ONION_XCHACHA20:
		return ONION_XCHACHA20_NONCE + ONION_TAG;
	}
	return 0;
}

void onion_test_inject_iv(const unsigned char *iv, size_t len)
{
	if (len != ONION_AES_GCM_IV && len != ONION_XCHACHA20_NONCE)
		return;
	pthread_mutex_lock(&inject_lock);
	memcpy(inject_iv, iv, len);
	inject_len = len;
	atomic_store(&inject_pending, 1);
	pthread_mutex_unlock(&inject_lock);
}

/* Fills iv with the injected test IV if one of this length is pending, else from the CSPRNG.
 * The atomic flag keeps the production path free of the lock. */
static void fresh_iv(unsigned char *iv, size_t len)
{
	if (atomic_load_explicit(&inject_pending, memory_order_acquire)) {
		int used = 0;
		pthread_mutex_lock(&inject_lock);
		if (inject_pending && inject_len == len) {
			memcpy(iv, inject_iv, len);
			atomic_store(&inject_pending, 0);
			used = 1;
		}
		pthread_mutex_unlock(&inject_lock);
		if (used)
			return;
	}
	if (lib_init() < 0) {
		randombytes_buf(iv, len);
		return;
	}
	rng_bytes(iv, len);
}

/* EVP takes int lengths; feed larger inputs in pieces rather than truncate. */
static int gcm_update(EVP_CIPHER_CTX *c, unsigned char *out, const unsigned char *in, size_t len)
{
	while (len > 0) {
		int chunk = len > (size_t)1 << 30 ? 1 << 30 : (int)len, n = 0;
		if (EVP_CipherUpdate(c, out, &n, in, chunk) != 1 || n != chunk)
			return -1;
		out += chunk;
		in += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

static int gcm_seal(const unsigned char key[32], const unsigned char *pt, size_t len,
		    unsigned char *out)
{
	EVP_CIPHER_CTX *c = gcm_ctx();
	int n = 0;
	if (c == NULL)
		return -1;
	fresh_iv(out, ONION_AES_GCM_IV);
	if (EVP_CipherInit_ex(c, NULL, NULL, key, out, 1) != 1 ||
	    gcm_update(c, out + ONION_AES_GCM_IV, pt, len) < 0 ||
	    EVP_CipherFinal_ex(c, out + ONION_AES_GCM_IV + len, &n) != 1 || n != 0 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, ONION_TAG,
				out + ONION_AES_GCM_IV + len) != 1)
		return -1;
	return 0;
}

static int gcm_open(const unsigned char key[32], const unsigned char *in, size_t len,
		    unsigned char *pt)
{
	EVP_CIPHER_CTX *c = gcm_ctx();
	size_t ctlen = len - ONION_AES_GCM_IV - ONION_TAG;
	unsigned char tag[ONION_TAG], tail[16];
	int n = 0;
	if (c == NULL)
		return -1;
	memcpy(tag, in + len - ONION_TAG, ONION_TAG);
	if (EVP_CipherInit_ex(c, NULL, NULL, key, in, 0) != 1 ||
	    gcm_update(c, pt, in + ONION_AES_GCM_IV, ctlen) < 0 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, ONION_TAG, tag) != 1 ||
	    EVP_CipherFinal_ex(c, tail, &n) != 1) {
		/* GCM decrypts before it verifies: do not leave forged plaintext to the caller. */
		if (ctlen > 0)
			memset(pt, 0, ctlen);
		return -1;
	}
	return 0;
}

int onion_seal(const struct onion_key *k, const unsigned char *pt, size_t len, unsigned char *out)
{
	static const unsigned char empty[1];
	unsigned long long clen = 0;
	if (lib_init() < 0)
		return -1;
	if (pt == NULL)
		pt = empty; /* len is 0: libraries may dislike a NULL source */
	switch (k->cipher) {
	case ONION_AES_GCM:
		return gcm_seal(k->key, pt, len, out);
	case ONION_XCHACHA20:
		if (len > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX)
			return -1;
		fresh_iv(out, ONION_XCHACHA20_NONCE);
		return crypto_aead_xchacha20poly1305_ietf_encrypt(out + ONION_XCHACHA20_NONCE, &clen,
								   pt, len, NULL, 0, NULL, out, k->key);
	}
	return -1;
}

int onion_open(const struct onion_key *k, const unsigned char *in, size_t len, unsigned char *pt)
{
	unsigned long long mlen = 0;
	size_t ov = onion_overhead(k->cipher);
	if (ov == 0 || len < ov || lib_init() < 0)
		return -1;
	switch (k->cipher) {
	case ONION_AES_GCM:
		return gcm_open(k->key, in, len, pt);
	case ONION_XCHACHA20:
		/* libsodium verifies before it writes, so a failure leaves pt untouched. */
		return crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &mlen, NULL,
								   in + ONION_XCHACHA20_NONCE,
								   len - ONION_XCHACHA20_NONCE, NULL, 0,
								   in, k->key);
	}
	return -1;
}
