/* sha1: SHA-1 (FIPS 180-4) for what XMPP fixes to it; see sha1.c. */
#ifndef SHA1_H
#define SHA1_H
#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20

struct sha1 {
	uint32_t h[5];
	uint64_t len;	  /* bytes hashed so far */
	uint8_t buf[64];  /* the block being filled */
	size_t n;	  /* bytes in buf */
};

void sha1_init(struct sha1 *s);
void sha1_update(struct sha1 *s, const void *data, size_t len);
/* Writes the digest and wipes s. */
void sha1_final(struct sha1 *s, uint8_t out[SHA1_LEN]);
#endif
