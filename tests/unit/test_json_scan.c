/*
 * test_json_scan: common/bchat/json_scan.c. Every document in the table is judged by jansson too
 * (json_loadb with the flags the onion path used), so the verdicts are not only checked against
 * themselves; then the readers: escapes, surrogate pairs, duplicate names, arrays, nesting at
 * and past the 2048 limit, numbers at a double's edge; and every byte value at every place of
 * strings read 8 bytes at a time.
 */
#include "bchat/json_scan.h"
#include "testlib.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int jansson_object(const char *s, size_t n, unsigned flags)
{
	json_t *j = json_loadb(s, n, JSON_DECODE_INT_AS_REAL | (flags ? JSON_ALLOW_NUL : 0), NULL);
	int ok = json_is_object(j);
	json_decref(j);
	return ok;
}

static void verdict(const char *doc, unsigned flags, int want)
{
	struct jval root;
	int ok = jscan_object(doc, strlen(doc), flags, &root) == 0;
	CHECK(ok == want, "json_scan %s %s (flags %u)", want ? "accepts" : "refuses", doc, flags);
	CHECK(jansson_object(doc, strlen(doc), flags) == want, "jansson agrees on %s (flags %u)", doc, flags);
}

static void table(void)
{
	static const char *const good[] = {
		"{}", " \t\r\n{ } \n", "{\"a\":1}", "{\"a\":-0}", "{\"a\":0.5e-3}", "{\"a\":1E+2}",
		"{\"a\":[]}", "{\"a\":[1,[2,[3]]]}", "{\"a\":{\"b\":{}}}", "{\"\":\"\"}",
		"{\"a\":true,\"b\":false,\"c\":null}", "{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
		"{\"a\":\"\\ud83d\\ude00\"}", "{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
		"{\"a\":1e308}", "{\"a\":1e-400}", "{\"a\":123456789012345678901234567890}",
		"{\"a\":1,\"a\":2}", "{\"k\\u0041\":1}",
	};
	static const char *const bad[] = {
		"", " ", "[]", "[{}]", "\"s\"", "1", "null", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\" 1}",
		"{a:1}", "{\"a\":1,}", "{,}", "{\"a\":[1,]}", "{\"a\":[,1]}", "{\"a\":1}{}", "{\"a\":1} x",
		"{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":-}", "{\"a\":1e}", "{\"a\":1e+}", "{\"a\":+1}",
		"{\"a\":0x10}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":1e309}", "{\"a\":-1e309}",
		"{\"a\":tru}", "{\"a\":truex}", "{\"a\":nul}", "{\"a\":True}", "{\"a\":'s'}",
		"{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12G4\"}", "{\"a\":\"\\ud800\"}",
		"{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"tab\there\"}",
		"{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}",
		"{\"a\":\"\xe2\x82\"}", "{\"a\":\"\x80\"}", "{\"a\":\"open}", "\xef\xbb\xbf{}",
		"{\"a\\u0000\":1}",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		verdict(good[i], 0, 1);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		verdict(bad[i], 0, 0);
	/* \u0000 in a value: only with the flag; in a name: never. */
	verdict("{\"a\":\"x\\u0000y\"}", 0, 0);
	verdict("{\"a\":\"x\\u0000y\"}", JSCAN_ALLOW_NUL, 1);
	verdict("{\"a\\u0000\":1}", JSCAN_ALLOW_NUL, 0);
}

static void depth(void)
{
	for (size_t d = 2047; d <= 2049; d++) {
		/* {"a":[[[…]]]}: the object is one level, the arrays the rest */
		size_t n = 0;
		char *s = malloc(2 * d + 16);
		struct jval root;
		n += (size_t)sprintf(s, "{\"a\":");
		for (size_t i = 1; i < d; i++)
			s[n++] = '[';
		for (size_t i = 1; i < d; i++)
			s[n++] = ']';
		s[n++] = '}';
		int ok = jscan_object(s, n, 0, &root) == 0;
		CHECK(ok == (d <= JSCAN_MAX_DEPTH), "nesting %zu deep: %s", d, ok ? "accepted" : "refused");
		CHECK(jansson_object(s, n, 0) == ok, "jansson agrees on nesting %zu deep", d);
		free(s);
	}
}

static void readers(void)
{
	const char *doc = " {\"s\": \"x\\u00e9\\ud83d\\ude00\\n\\/\", \"dup\": 1, \"arr\": [\"a\", {\"in\": [1]}, \"b\\\"c\"],"
			  " \"n\": -1.5e3, \"t\": true, \"f\": false, \"z\": null, \"o\": {\"s\": \"inner\"},"
			  " \"esc\\u0061ped\": \"yes\", \"dup\": \"last\", \"nul\": \"a\\u0000b\"} ";
	struct jval root, v, e;
	char buf[64];
	size_t n, pos = 0, count = 0;

	CHECK(jscan_object(doc, strlen(doc), JSCAN_ALLOW_NUL, &root) == 0, "the sample document is valid");
	CHECK(root.p[0] == '{' && root.p[root.n - 1] == '}', "the root span is the object itself");
	v = jscan_get(root, "s");
	n = jscan_str(v, buf);
	CHECK(v.type == J_STRING && n == 9 && memcmp(buf, "x\xc3\xa9\xf0\x9f\x98\x80\n/", n) == 0,
	      "escapes and a surrogate pair unescape to UTF-8");
	v = jscan_get(root, "dup");
	CHECK(jscan_str_is(v, "last"), "a repeated name: the last one counts");
	CHECK(jscan_str_is(jscan_get(root, "escaped"), "yes"), "names are compared unescaped");
	CHECK(jscan_get(root, "o").type == J_OBJECT && jscan_str_is(jscan_get(jscan_get(root, "o"), "s"), "inner"),
	      "nested objects are read in place");
	CHECK(jscan_get(root, "in").type == J_ABSENT, "only the object's own members are found");
	CHECK(jscan_get(root, "missing").type == J_ABSENT, "an absent member");
	CHECK(jscan_get(root, "n").type == J_NUMBER && jscan_get(root, "n").n == 6, "a number's span");
	CHECK(jscan_get(root, "t").type == J_TRUE && jscan_get(root, "f").type == J_FALSE &&
		      jscan_get(root, "z").type == J_NULL,
	      "literals");
	v = jscan_get(root, "nul");
	n = jscan_str(v, buf);
	CHECK(n == 3 && memcmp(buf, "a\0b", 3) == 0, "\\u0000 is kept when allowed");
	v = jscan_get(root, "arr");
	while (jscan_next(v, &pos, &e)) {
		if (count == 0)
			CHECK(jscan_str_is(e, "a"), "first element");
		if (count == 1)
			CHECK(e.type == J_OBJECT && jscan_get(e, "in").type == J_ARRAY, "second element");
		if (count == 2)
			CHECK(jscan_str_is(e, "b\"c"), "third element, with an escaped quote");
		count++;
	}
	CHECK(count == 3, "three elements, got %zu", count);
	pos = 0;
	CHECK(!jscan_next(jscan_get(root, "s"), &pos, &e), "a string is not iterated");
	CHECK(jscan_str(jscan_get(root, "n"), buf) == 0 && !jscan_str_is(jscan_get(root, "n"), "-1.5e3"),
	      "a number is not a string");
	CHECK(jscan_get(jscan_get(root, "s"), "x").type == J_ABSENT, "members of a non-object are absent");
	pos = 0;
	CHECK(jscan_object("{\"e\":[]}", 8, 0, &root) == 0 && !jscan_next(jscan_get(root, "e"), &pos, &e),
	      "an empty array has no elements");
}

/* Strings are checked 8 bytes at a time while every byte is plain: every byte value, at every
 * place in and around such a block, in strings of several lengths, judged as jansson judges it. */
static void every_byte(void)
{
	char doc[64];
	int agree = 0, total = 0, accepted = 0;
	for (size_t len = 7; len <= 25; len += 9)
		for (size_t at = 0; at < len; at++)
			for (int b = 1; b < 256; b++) {
				struct jval root;
				size_t n = 0;
				int ok;
				doc[n++] = '{';
				doc[n++] = '"';
				for (size_t i = 0; i < len; i++)
					doc[n++] = i == at ? (char)b : (char)('a' + i % 26);
				memcpy(doc + n, "\":1}", 4);
				n += 4;
				ok = jscan_object(doc, n, 0, &root) == 0;
				agree += ok == jansson_object(doc, n, 0);
				/* A backslash may start a valid escape with the letter after it. */
				if (b != '\\')
					accepted += ok == (b >= 0x20 && b <= 0x7f && b != '"');
				total++;
			}
	CHECK(agree == total, "%d of %d one-odd-byte strings judged as jansson judges them", agree, total);
	/* ASCII from 0x20 but '"' and '\\' is accepted at every place; every other byte is refused. */
	CHECK(accepted == 254 * (7 + 16 + 25), "%d of %d verdicts as RFC 8259 says", accepted, 254 * (7 + 16 + 25));
}

int main(void)
{
	every_byte();
	table();
	depth();
	readers();
	return test_done();
}
