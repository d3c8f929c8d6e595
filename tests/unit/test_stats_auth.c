/*
 * test_stats_auth: the access decision of /get_statistics_data (ingress/onion/onion_stats.h) with
 * its clock given: no credentials are never counted; 5 wrong passwords in a minute from one
 * source, then 429 with Retry-After until the oldest leaves the window; sources are IPv4
 * addresses and IPv6 /64s (IPv4-mapped = IPv4); malformed credentials count; the Argon2id and
 * sha256: forms; no hash configured.
 */
#include "../../ingress/onion/onion_stats.h"
#include "testlib.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static char sha_hash[80], argon_hash[crypto_pwhash_STRBYTES];

static struct sockaddr_storage addr(const char *a)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	if (strchr(a, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, a, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		inet_pton(AF_INET, a, &s4->sin_addr);
	}
	return ss;
}

static enum stats_auth ask(const char *hash, const char *pw, const char *from, uint64_t now, struct stats_auth_answer *ans)
{
	char auth[256], b64[200], cred[128];
	struct sockaddr_storage ss = addr(from);
	socklen_t len = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (pw == NULL)
		return onion_stats_auth(hash, NULL, (struct sockaddr *)&ss, len, now, ans);
	snprintf(cred, sizeof cred, "admin:%s", pw);
	sodium_bin2base64(b64, sizeof b64, (const unsigned char *)cred, strlen(cred), sodium_base64_VARIANT_ORIGINAL);
	snprintf(auth, sizeof auth, "Basic %s", b64);
	return onion_stats_auth(hash, auth, (struct sockaddr *)&ss, len, now, ans);
}

int main(void)
{
	struct stats_auth_answer ans;
	unsigned char d[32];
	enum stats_auth r;
	uint64_t t = 1000000;

	if (sodium_init() < 0)
		return 1;
	SHA256((const unsigned char *)"right", 5, d);
	strcpy(sha_hash, "sha256:");
	sodium_bin2hex(sha_hash + 7, 65, d, 32);
	if (crypto_pwhash_str(argon_hash, "right", 5, crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return 1;

	/* No credentials: 401 with WWW-Authenticate, as often as asked, never counted. */
	for (int i = 0; i < 20; i++)
		r = ask(sha_hash, NULL, "192.0.2.1", t, &ans);
	CHECK(r == STATS_AUTH_NONE && ans.status == 401 && strstr(ans.header, "WWW-Authenticate: Basic") == ans.header,
	      "no credentials: 401 with WWW-Authenticate (%d, %u, %s)", r, ans.status, ans.header);
	CHECK(onion_stats_auth(sha_hash, "Bearer x", NULL, 0, t, &ans) == STATS_AUTH_NONE, "another scheme: not credentials");
	CHECK(ask(sha_hash, "right", "192.0.2.1", t, &ans) == STATS_AUTH_OK, "then the right password: OK");

	/* Five failures, then 429 until the first of them is a minute old. */
	for (int i = 0; i < 5; i++) {
		r = ask(sha_hash, "wrong", "192.0.2.1", t + (uint64_t)i * 1000, &ans);
		CHECK(r == STATS_AUTH_WRONG && ans.status == 401 && strstr(ans.header, "WWW-Authenticate") != NULL,
		      "wrong password %d: 401 (%d)", i + 1, r);
	}
	r = ask(sha_hash, "wrong", "192.0.2.1", t + 5000, &ans);
	CHECK(r == STATS_AUTH_LIMITED && ans.status == 429 && strcmp(ans.header, "Retry-After: 55\r\n") == 0,
	      "6th: 429, Retry-After 55 (%d, %s)", r, ans.header);
	CHECK(ask(sha_hash, "right", "192.0.2.1", t + 59999, &ans) == STATS_AUTH_LIMITED, "the right password while limited: 429");
	CHECK(ask(sha_hash, NULL, "192.0.2.1", t + 59999, &ans) == STATS_AUTH_NONE, "no credentials while limited: 401");
	CHECK(ask(sha_hash, "right", "192.0.2.2", t + 5000, &ans) == STATS_AUTH_OK, "another address meanwhile: OK");
	CHECK(ask(sha_hash, "right", "::ffff:192.0.2.1", t + 5000, &ans) == STATS_AUTH_LIMITED,
	      "the same address IPv4-mapped: the same source");
	r = ask(sha_hash, "right", "192.0.2.1", t + 60000, &ans);
	CHECK(r == STATS_AUTH_OK, "a minute after the first failure: checked again, OK (%d)", r);
	CHECK(ask(sha_hash, "wrong", "192.0.2.1", t + 60001, &ans) == STATS_AUTH_WRONG, "a wrong one then: 401 (4 in the window before it)");
	CHECK(ask(sha_hash, "wrong", "192.0.2.1", t + 60002, &ans) == STATS_AUTH_LIMITED, "and 5 again in the window: 429");

	/* IPv6: one /64 is one source. */
	for (int i = 0; i < 5; i++) {
		char a[64];
		snprintf(a, sizeof a, "2001:db8:1:2::%x", i + 1);
		ask(sha_hash, "wrong", a, t, &ans);
	}
	CHECK(ask(sha_hash, "right", "2001:db8:1:2:ffff::9", t, &ans) == STATS_AUTH_LIMITED, "5 failures across one /64: limited");
	CHECK(ask(sha_hash, "right", "2001:db8:1:3::1", t, &ans) == STATS_AUTH_OK, "the next /64: OK");

	/* Malformed credentials count as wrong passwords. */
	for (int i = 0; i < 5; i++)
		r = onion_stats_auth(sha_hash, i % 2 ? "Basic !!!" : "Basic bm9jb2xvbg==", (struct sockaddr *)&(struct sockaddr_storage){0}, 0,
				     t, &ans);
	CHECK(r == STATS_AUTH_WRONG, "malformed Basic credentials: 401 (%d)", r);
	CHECK(onion_stats_auth(sha_hash, "Basic bm9jb2xvbg==", NULL, 0, t, &ans) == STATS_AUTH_LIMITED,
	      "5 malformed from one (non-inet) source: limited");

	/* Argon2id, and no hash at all. */
	onion_stats_auth_reset();
	CHECK(ask(argon_hash, "right", "198.51.100.1", t, &ans) == STATS_AUTH_OK, "Argon2id: the right password");
	CHECK(ask(argon_hash, "right", "198.51.100.2", t, &ans) == STATS_AUTH_OK, "Argon2id: the right password again (remembered)");
	CHECK(ask(argon_hash, "Right", "198.51.100.1", t, &ans) == STATS_AUTH_WRONG, "Argon2id: a wrong one");
	CHECK(ask("", "right", "198.51.100.1", t, &ans) == STATS_AUTH_OFF && ans.status == 401, "no hash configured: 401");
	return test_done();
}
