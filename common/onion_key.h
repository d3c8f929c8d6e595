/*
 * onion_key: the onion ingress's server key files (see onion_key.c); libsodium only.
 */
#ifndef ONION_KEY_H
#define ONION_KEY_H
#include <stddef.h>

/* Reads a secret key file (64 hex digits, surrounding ASCII whitespace allowed) and derives pk.
 * 0, or -1 with a reason naming the path in err. */
int onion_key_load(const char *path, unsigned char sk[32], unsigned char pk[32], char *err,
		   size_t errlen);
/* Generates a key pair; writes secret_path (0600, "64hex\n", never overwrites: -1/EEXIST) then
 * public_path (0644, "64hex\n", replaced atomically). 0, or -1 with errno and no secret left. */
int onion_key_write_pair(const char *secret_path, const char *public_path, unsigned char sk[32],
			 unsigned char pk[32]);
#endif
