/* XMPP component helpers: SHA-1 and the handshake and ad-hoc hash vectors, JIDs, summary
 * counts, back-off, output escaping. */
#include "testlib.h"
#include "../../ingress/xmpp/xmpp_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FIPS 180 examples through the one SHA-1 the component uses (libcrypto), with and without
 * the NUL byte between the parts. */
static void test_sha1(void)
{
	char hex[41];

	CHECK(xmpp_sha1_hex("", "", 0, hex) == 0 && strcmp(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709") == 0,
	      "SHA-1 of nothing: %s", hex);
	CHECK(xmpp_sha1_hex("a", "bc", 0, hex) == 0 && strcmp(hex, "a9993e364706816aba3e25717850c26c9cd0d89d") == 0,
	      "SHA-1 abc: %s", hex);
	/* printf 'a\0bc' | sha1sum */
	CHECK(xmpp_sha1_hex("a", "bc", 1, hex) == 0 && strcmp(hex, "0b2749668f0ea8df8a630da13f0d218709efd5ca") == 0,
	      "SHA-1 of a, NUL, bc: %s", hex);
}

static void test_handshake(void)
{
	char hex[41];
	xmpp_handshake_hex("587bb93a-706b-42c8-a368-8b40103d0207", "s3cr3t", hex);
	CHECK(strcmp(hex, "ff2ac05dbc0227c375d65ac766e1666e6145ab75") == 0, "vector 1: %s", hex);
	xmpp_handshake_hex("9ba91151-3bba-4706-9db2-36871162c92a", "s3cr3t", hex);
	CHECK(strcmp(hex, "29d50eda0275edeeda139f7e6e7078809c8ea051") == 0, "vector 2: %s", hex);
}

static void test_hashes(void)
{
	char h[41];
	uint8_t id[32], id2[32], id3[32];
	xmpp_adhoc_account("alice@example.org", "92afd7a91cdba9a0", h);
	CHECK(strcmp(h, "575743d57bd2e395071f9f88adce7f8bba664ea2") == 0, "account vector: %s", h);
	xmpp_adhoc_channel("room@conference.example.org", "92afd7a91cdba9a0", h);
	CHECK(strcmp(h, "30be82eb00f86644993eaeda4c46ecf51c42715c") == 0, "channel vector: %s", h);
	/* identity = SHA-256(bare ‖ 0 ‖ device ‖ 0 ‖ room), computed independently with
	 * printf 'alice@example.org\0092afd7a91cdba9a0\000' | sha256sum (and with the room appended) */
	size_t n;
	uint8_t *want = test_unhex("083e18e605b9dbab87e3448397c60d8879231c915c848db7ee2e81d924da03c8", &n);
	xmpp_adhoc_identity("alice@example.org", "92afd7a91cdba9a0", NULL, id);
	CHECK(memcmp(id, want, 32) == 0, "identity vector without a room");
	free(want);
	want = test_unhex("00ddafb50d6da218f8a2c9c6e2f580543c65c6d493c9fa15abb0237d70b2d065", &n);
	xmpp_adhoc_identity("alice@example.org", "92afd7a91cdba9a0", "room@conference.example.org", id3);
	CHECK(memcmp(id3, want, 32) == 0, "identity vector with a room");
	xmpp_adhoc_identity("alice@example.org", "92afd7a91cdba9a0", "", id2);
	CHECK(memcmp(id, id2, 32) == 0, "no room = empty room");
	CHECK(memcmp(id, id3, 32) != 0, "room changes the identity");
	free(want);
}

static void test_jid(void)
{
	struct jid j;
	CHECK(jid_parse("localhost", &j) == 0 && j.llen == 0 && j.dlen == 9 && j.res == NULL, "domain only");
	CHECK(jid_parse("alice@example.org/res", &j) == 0 && j.llen == 5 && j.dlen == 11 && j.rlen == 3,
	      "full jid");
	CHECK(jid_parse("a@b/c/d", &j) == 0 && j.rlen == 3, "slash in the resource");
	CHECK(jid_parse("a@b/x@y", &j) == 0 && j.llen == 1 && j.dlen == 1, "@ in the resource");
	CHECK(jid_parse("", &j) < 0, "empty");
	CHECK(jid_parse("@example.org", &j) < 0, "empty localpart");
	CHECK(jid_parse("alice@", &j) < 0, "empty domain");
	CHECK(jid_parse("a@b@c", &j) < 0, "two @");
	CHECK(jid_parse("example.org/", &j) < 0, "empty resource");
	CHECK(jid_parse("exa mple.org", &j) < 0, "space");
	char big[1100];
	memset(big, 'a', 1024);
	big[1024] = '\0';
	CHECK(jid_parse(big, &j) < 0, "domain over 1023 bytes");
	CHECK(xmpp_ieq("LocalHost", 9, "localhost", 9) && !xmpp_ieq("localhost", 9, "localhosu", 9), "ieq");
}

static void test_counts(void)
{
	CHECK(xmpp_parse_count(NULL) == 0, "missing");
	CHECK(xmpp_parse_count("") == 0, "empty");
	CHECK(xmpp_parse_count("1") == 1, "one");
	CHECK(xmpp_parse_count(" 42 ") == 42, "spaces");
	CHECK(xmpp_parse_count("+7") == 7, "plus");
	CHECK(xmpp_parse_count("-3") == 0, "negative clamps to 0");
	CHECK(xmpp_parse_count("2147483647") == 2147483647u, "max");
	CHECK(xmpp_parse_count("2147483648") == 2147483647u, "clamped");
	CHECK(xmpp_parse_count("99999999999999999999999") == 2147483647u, "huge clamped");
	CHECK(xmpp_parse_count("12abc") == 0, "junk");
	CHECK(xmpp_parse_count("abc") == 0, "letters");
	CHECK(xmpp_parse_count("1.5") == 0, "fraction");
}

static void test_backoff(void)
{
	struct xmpp_backoff b = {0};
	const uint32_t mid = UINT32_MAX / 2; /* factor 1.0 */
	uint32_t want[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		uint32_t d = xmpp_backoff_next(&b, "", 0, mid);
		CHECK(d + 100 >= want[i] && d <= want[i], "step %zu: %u", i, d); /* mid is just below 1.0 */
	}
	CHECK(xmpp_backoff_next(&b, "", 60000, mid) <= 1000, "reset after 60 s up");
	CHECK(xmpp_backoff_next(&b, "", 59000, mid) >= 1900, "no reset before 60 s");
	b.base_ms = 0;
	CHECK(xmpp_backoff_next(&b, "", 0, 0) == 800, "jitter -20 %%");
	b.base_ms = 0;
	CHECK(xmpp_backoff_next(&b, "", 0, UINT32_MAX) == 1200, "jitter +20 %%");
	b.base_ms = 0;
	CHECK(xmpp_backoff_next(&b, "conflict", 0, 0) == 30000, "conflict waits at least 30 s");
	b.base_ms = 0;
	uint32_t d = xmpp_backoff_next(&b, "not-authorized", 0, mid);
	CHECK(d >= 59900 && d <= 60000, "not-authorized: maximum (%u)", d);
	b.base_ms = 0;
	d = xmpp_backoff_next(&b, "host-unknown", 0, 0);
	CHECK(d == 48000, "host-unknown: maximum with jitter (%u)", d);
	d = xmpp_backoff_next(&b, "", 0, UINT32_MAX);
	CHECK(d == 72000, "stays at the maximum (%u)", d);
}

static void test_escape(void)
{
	struct xbuf b;
	xb_init(&b, 1024);
	xb_text(&b, "a&b<c>d'e\"f");
	CHECK(strcmp(b.p, "a&amp;b&lt;c&gt;d'e\"f") == 0, "text: %s", b.p);
	xb_consume(&b, b.len);
	xb_attr(&b, "a&b<c>d'e\"f");
	CHECK(strcmp(b.p, "a&amp;b&lt;c&gt;d&apos;e&quot;f") == 0, "attr: %s", b.p);
	xb_consume(&b, b.len);
	xb_kv(&b, "id", "x'y");
	CHECK(strcmp(b.p, " id='x&apos;y'") == 0, "kv: %s", b.p);
	xb_free(&b);
	xb_init(&b, 8);
	xb_str(&b, "1234567");
	CHECK(!b.full && b.len == 7, "fits");
	xb_str(&b, "8");
	CHECK(b.full && b.len == 7, "bound kept");
	xb_free(&b);

	CHECK(xml_valid_chars("plain ascii\t\r\n"), "ascii");
	CHECK(xml_valid_chars("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "utf-8");
	CHECK(!xml_valid_chars("a\x01" "b"), "control character");
	CHECK(!xml_valid_chars("\xc3"), "truncated sequence");
	CHECK(!xml_valid_chars("\xc0\xaf"), "overlong");
	CHECK(!xml_valid_chars("\xed\xa0\x80"), "surrogate");
	CHECK(!xml_valid_chars("\xef\xbf\xbe"), "U+FFFE");
	CHECK(!xml_valid_chars("\xff"), "invalid byte");
}

int main(void)
{
	test_sha1();
	test_handshake();
	test_hashes();
	test_jid();
	test_counts();
	test_backoff();
	test_escape();
	return test_done();
}
