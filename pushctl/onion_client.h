/* onion_client: the app side of an onion request (what a Bchat app's last layer holds). */
#ifndef ONION_CLIENT_H
#define ONION_CLIENT_H
#include "onion_crypto.h"
#include <stddef.h>

/* Builds u32le N ‖ sealed plaintext ‖ trailer for server_pk; the reply key goes to *key. */
unsigned char *onion_client_build(const unsigned char server_pk[32], enum onion_cipher cipher, const char *salt,
				  const char *target, const unsigned char *pt, size_t ptlen, struct onion_key *key,
				  size_t *outlen);
/* Opens a reply body (v2: {"result": base64}; v4: raw); malloc'd plaintext or NULL. */
unsigned char *onion_client_open_reply(const struct onion_key *key, int v4, const unsigned char *body, size_t len,
				       size_t *ptlen);
#endif
