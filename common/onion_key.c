/*
 * onion_key: the onion ingress's server key files (64 hex digits of an X25519 secret key):
 * reading one and deriving its public key, and writing a new pair. libsodium only, so that
 * config.c, which checks the key files when it loads, brings no OpenSSL into the daemons that
 * use none (docs/dependencies.md). Trusts nothing it reads: a file is at most 4 KiB, checked
 * whole, and wiped from memory after.
 */
#include "onion_key.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int onion_key_load(const char *path, unsigned char sk[32], unsigned char pk[32], char *err,
		   size_t errlen)
{
	/* A key file is 65 bytes; anything much larger is not one, and is not read whole. */
	unsigned char buf[4096];
	size_t n = 0, b = 0, e;
	int fd, rc = -1;
	const char *why = NULL;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "%s: crypto library initialisation failed", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof buf - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			close(fd);
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == sizeof buf) {
			why = "file too large for a key";
			break;
		}
	}
	close(fd);
	if (why == NULL) {
		e = n;
		while (b < e && is_space(buf[b]))
			b++;
		while (e > b && is_space(buf[e - 1]))
			e--;
		size_t got = 0;
		if (e - b != 64 || sodium_hex2bin(sk, 32, (const char *)buf + b, 64, NULL, &got, NULL) != 0 || got != 32)
			why = "expected 64 hex digits";
	}
	if (why == NULL && crypto_scalarmult_base(pk, sk) != 0)
		why = "unusable secret key";
	if (why != NULL) {
		sodium_memzero(sk, 32);
		snprintf(err, errlen, "%s: %s", path, why);
	} else {
		rc = 0;
	}
out:
	sodium_memzero(buf, sizeof buf);
	return rc;
}

static void to_hex(char out[65], const unsigned char in[32])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < 32; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[64] = '\n';
}

/* Writes path.tmp fully and durably; the caller then links or renames it into place, so a
 * crash never leaves a half-written key under the real name. */
static int write_tmp(const char *tmp, const char line[65], mode_t mode)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	size_t off = 0;
	int saved;
	if (fd < 0)
		return -1;
	if (fchmod(fd, mode) < 0)
		goto fail;
	while (off < 65) {
		ssize_t w = write(fd, line + off, 65 - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd) < 0)
		goto fail;
	return close(fd);
fail:
	saved = errno;
	close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

static int sync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;
	if (slash == NULL) {
		strcpy(dir, ".");
	} else {
		size_t n = slash == path ? 1 : (size_t)(slash - path);
		if (n >= sizeof dir)
			return -1;
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* Writes line to path through path.tmp: with link(), which refuses to replace (an existing
 * server key is never overwritten), or with rename(). 0, or -1 with errno set. */
static int place(const char *path, const char *line, mode_t mode, int no_replace)
{
	char tmp[PATH_MAX];
	int saved;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (write_tmp(tmp, line, mode) < 0)
		return -1;
	if ((no_replace ? link(tmp, path) : rename(tmp, path)) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (no_replace)
		unlink(tmp);
	return 0;
}

int onion_key_write_pair(const char *secret_path, const char *public_path, unsigned char sk[32],
			 unsigned char pk[32])
{
	char line[65];
	int saved;

	if (sodium_init() < 0) {
		errno = EIO;
		return -1;
	}
	randombytes_buf(sk, 32);
	if (crypto_scalarmult_base(pk, sk) != 0) {
		errno = EIO;
		return -1;
	}
	to_hex(line, sk);
	if (place(secret_path, line, 0600, 1) < 0)
		goto fail;
	to_hex(line, pk);
	if (place(public_path, line, 0644, 0) < 0)
		goto fail_secret;
	if (sync_dir_of(secret_path) < 0 || sync_dir_of(public_path) < 0)
		goto fail_secret;
	sodium_memzero(line, sizeof line);
	return 0;
fail_secret:
	/* Without its public half the pair is not usable; leave no orphan secret behind. */
	saved = errno;
	unlink(secret_path);
	errno = saved;
fail:
	sodium_memzero(line, sizeof line);
	saved = errno;
	sodium_memzero(sk, 32);
	sodium_memzero(pk, 32);
	errno = saved;
	return -1;
}
