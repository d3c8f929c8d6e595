/*
 * b64url: base64url without padding for JWTs (jwt.c) and their tests, on libsodium's
 * constant-time codec. Trusts nothing in the decoder's input; holds nothing.
 */
#include "b64url.h"
#include <sodium.h>
#include <string.h>

#define VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

long b64url_encode(const void *in, size_t n, char *out, size_t outlen)
{
	/* libsodium aborts on a short buffer: refuse it here instead. */
	if (outlen < B64URL_ENCODED_SIZE(n))
		return -1;
	sodium_bin2base64(out, outlen, in, n, VARIANT);
	return (long)strlen(out);
}

long b64url_decode(const char *in, size_t n, void *out, size_t outlen)
{
	size_t len;

	/* Without an end pointer libsodium refuses input it cannot read to the end (a bad
	 * character, "="), a length no encoding has, and leftover bits that are not zero (one
	 * encoding per byte string). */
	if (sodium_base642bin(out, outlen, in, n, NULL, &len, NULL, VARIANT) != 0)
		return -1;
	return (long)len;
}
