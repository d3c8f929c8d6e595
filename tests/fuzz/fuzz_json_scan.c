/*
 * fuzz_json_scan: common/bchat/json_scan.c against jansson, the parser it stands in for on the onion
 * path. The first input byte picks the flags (JSCAN_ALLOW_NUL or not), the rest is the
 * document. Both must agree on whether it is a JSON object; when it is, every member jansson
 * sees must be found by jscan_get() with the same type and, for strings, the same bytes, and
 * arrays must hold the same elements in the same order — down to the innermost value.
 *
 * One known difference: a raw NUL byte is never valid JSON, but jansson skips one that comes
 * right after a number or a literal (its reader takes a NUL in its look-ahead buffer for "read
 * more"). json_scan refuses every document holding a raw NUL, which is what is checked there.
 */
#include "fuzz_common.h"
#include "bchat/json_scan.h"
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum jtype jansson_type(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return J_OBJECT;
	case JSON_ARRAY:
		return J_ARRAY;
	case JSON_STRING:
		return J_STRING;
	case JSON_INTEGER:
	case JSON_REAL:
		return J_NUMBER;
	case JSON_TRUE:
		return J_TRUE;
	case JSON_FALSE:
		return J_FALSE;
	case JSON_NULL:
		return J_NULL;
	}
	return J_ABSENT;
}

static void same(const json_t *j, struct jval v)
{
	CHECK(jansson_type(j) == v.type);
	if (v.type == J_STRING) {
		char *s = malloc(v.n);
		size_t n;
		CHECK(s != NULL);
		n = jscan_str(v, s);
		CHECK(n == json_string_length(j) && memcmp(s, json_string_value(j), n) == 0);
		free(s);
	} else if (v.type == J_ARRAY) {
		struct jval e;
		size_t pos = 0, i = 0;
		while (jscan_next(v, &pos, &e)) {
			CHECK(i < json_array_size(j));
			same(json_array_get(j, i++), e);
		}
		CHECK(i == json_array_size(j));
	} else if (v.type == J_OBJECT) {
		const char *k;
		json_t *m;
		json_object_foreach((json_t *)j, k, m)
			same(m, jscan_get(v, k));
		CHECK(jscan_get(v, "\x01 no member has this name").type == J_ABSENT);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned flags;
	struct jval root;
	json_t *j;
	int ok;

	if (size < 1)
		return 0;
	flags = data[0] & 1 ? JSCAN_ALLOW_NUL : 0;
	j = json_loadb((const char *)data + 1, size - 1,
		       JSON_DECODE_INT_AS_REAL | (flags ? JSON_ALLOW_NUL : 0), NULL);
	ok = jscan_object((const char *)data + 1, size - 1, flags, &root) == 0;
	if (memchr(data + 1, 0, size - 1) != NULL)
		CHECK(!ok);
	else
		CHECK(ok == json_is_object(j));
	if (ok)
		same(j, root);
	json_decref(j);
	return 0;
}
