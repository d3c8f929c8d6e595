/* b64url: base64url without padding (RFC 4648 §5), as JWTs use it. */
#ifndef B64URL_H
#define B64URL_H
#include <stddef.h>

/* Bytes needed to encode n bytes, the terminating NUL included. */
#define B64URL_ENCODED_SIZE(n) (((n) + 2) / 3 * 4 + 1)

/* Encodes n bytes into out (NUL-terminated); returns the length, or -1 when out is too small. */
long b64url_encode(const void *in, size_t n, char *out, size_t outlen);
/* Decodes unpadded base64url; returns the decoded length, or -1 on a bad character, a
 * trailing "=", an impossible length or a too-small out. */
long b64url_decode(const char *in, size_t n, void *out, size_t outlen);
#endif
