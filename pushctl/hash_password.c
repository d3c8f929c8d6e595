/*
 * hash_password: `pushctl hash-password` reads a password from stdin (one line; echo off when
 * stdin is a terminal) and prints its Argon2id string (libsodium crypto_pwhash_str, interactive
 * limits: 64 MiB, 2 passes) for ingress_onion.stats_password_hash. Each run salts afresh, so
 * two runs print different strings for one password; both verify it. Holds the password only
 * for the run, wiped before exit; never prints it.
 */
#include "pushctl.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PW_MAX 1024

int pushctl_hash_password(int argc, char **argv)
{
	char pw[PW_MAX + 2], out[crypto_pwhash_STRBYTES];
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO), rc = 1;
	size_t len;

	(void)argv;
	if (argc != 2) {
		fprintf(stderr, "usage: pushctl hash-password < password-file\n");
		return 2;
	}
	if (tty) {
		fprintf(stderr, "password: ");
		if (tcgetattr(STDIN_FILENO, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		} else {
			tty = 0;
		}
	}
	if (fgets(pw, sizeof pw, stdin) == NULL)
		pw[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	len = strlen(pw);
	if (len > 0 && pw[len - 1] != '\n' && !feof(stdin)) {
		fprintf(stderr, "pushctl hash-password: the password is longer than %d bytes\n", PW_MAX);
		goto out;
	}
	while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
		pw[--len] = '\0';
	if (len == 0) {
		fprintf(stderr, "pushctl hash-password: empty password (give it on stdin, one line)\n");
		goto out;
	}
	if (crypto_pwhash_str(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		fprintf(stderr, "pushctl hash-password: out of memory\n");
		goto out;
	}
	printf("%s\n", out);
	rc = 0;
out:
	sodium_memzero(pw, sizeof pw);
	return rc;
}
