/*
 * jwt: JSON Web Tokens signed with ES256 (APNs provider tokens) or RS256 (Google OAuth
 * assertions), base64url without padding. The caller supplies the header and claims JSON.
 */
#ifndef JWT_H
#define JWT_H
#include <openssl/evp.h>
#include <stddef.h>

enum jwt_alg { JWT_ES256, JWT_RS256 };

/* Reads a PEM private key (PKCS#8 "PRIVATE KEY" or a traditional form) from a file and checks
 * it fits alg (EC P-256 for ES256, RSA of ≥ 2048 bits for RS256); NULL with a reason in err. */
EVP_PKEY *jwt_key_read_file(const char *path, enum jwt_alg alg, char *err, size_t errlen);
/* Reads and checks such a key file, then frees the key (config_check); 0, or -1 with a reason
 * in err. */
int jwt_key_check_file(const char *path, enum jwt_alg alg, char *err, size_t errlen);
/* The same from PEM text in memory (a service account's private_key). */
EVP_PKEY *jwt_key_read_pem(const char *pem, size_t len, enum jwt_alg alg, char *err, size_t errlen);
/* Returns a malloc'd "b64(header).b64(claims).b64(signature)" over the JSON texts as given,
 * or NULL. ES256 signatures are the 64 raw bytes r‖s, not OpenSSL's DER. */
char *jwt_sign(EVP_PKEY *key, enum jwt_alg alg, const char *header_json, const char *claims_json);
/* Converts a DER ECDSA-Sig into r‖s, each big-endian and left-padded to 32 bytes; 0 or -1. */
int jwt_ecdsa_der_to_raw(const unsigned char *der, size_t len, unsigned char out[64]);
#endif
