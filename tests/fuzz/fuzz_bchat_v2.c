/*
 * fuzz_bchat_v2: bchat_parse_v2() (common/bchat/bchat_request.c) on arbitrary decrypted plaintexts
 * under three configurations (Bchat ids, opaque ids with a small group cap, Session prefix with
 * no groups allowed), checking what a successful parse promises; then the reply builders: every
 * outcome with a product name taken from the input must give the exact reply shape, v2 as a
 * JSON object and v4 as a two-element bencoded list, and bchat_v2_http_body() must wrap the
 * input as {"result":"<base64>"}\n that decodes back to it.
 */
#include "bchat/bchat_request.h"
#include "bchat/bencode.h"
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	return 0;
}

static void check_replies(const uint8_t *data, size_t size)
{
	char product[48];
	size_t pn = size < sizeof product - 1 ? size : sizeof product - 1;
	/* The product name comes from configuration: a NUL-terminated string. */
	memcpy(product, data, pn);
	product[pn] = '\0';
	pn = strlen(product);
	json_t *pj = json_stringn(product, pn); /* NULL when not valid UTF-8 */
	for (int e = BCHAT_OK; e <= BCHAT_GROUP_NOT_FOUND; e++) {
		size_t len;
		unsigned char *v2 = bchat_reply_v2((enum bchat_error)e, product, &len);
		CHECK(v2 != NULL && strlen((char *)v2) == len);
		CHECK(memcmp(v2, "{\"status\": ", 11) == 0);
		if (pj != NULL) {
			json_t *j = json_loadb((const char *)v2, len, 0, NULL);
			CHECK(json_is_object(j));
			json_t *body = json_object_get(j, "body");
			CHECK(json_is_object(body) && json_is_integer(json_object_get(body, "code")) &&
			      json_is_string(json_object_get(body, "message")));
			int st = (int)json_integer_value(json_object_get(j, "status"));
			CHECK(st == 200 || st == 400);
			CHECK((json_integer_value(json_object_get(body, "code")) == 1) == (e == BCHAT_OK));
			json_decref(j);
		}
		unsigned char *v4 = bchat_reply_v4((enum bchat_error)e, product, &len);
		CHECK(v4 != NULL);
		struct bencode_list l;
		CHECK(bencode_parse_list(v4, len, &l) == 0 && l.n == 2);
		if (pj != NULL) {
			json_t *m = json_loadb((const char *)l.ptr[0], l.len[0], 0, NULL);
			json_t *b = json_loadb((const char *)l.ptr[1], l.len[1], 0, NULL);
			CHECK(json_is_object(m) && json_is_object(b));
			json_decref(m);
			json_decref(b);
		}
		free(v2);
		free(v4);
		CHECK(bchat_error_str((enum bchat_error)e) != NULL);
	}
	json_decref(pj);
	/* The reply wrapper over arbitrary sealed bytes. */
	size_t hl;
	char *h = bchat_v2_http_body(data, size, &hl);
	CHECK(h != NULL && strlen(h) == hl && hl >= 14);
	CHECK(memcmp(h, "{\"result\":\"", 11) == 0 && memcmp(h + hl - 3, "\"}\n", 3) == 0);
	unsigned char *back = malloc(size + 1);
	size_t bl = 0;
	CHECK(back != NULL);
	CHECK(sodium_base642bin(back, size + 1, h + 11, hl - 14, NULL, &bl, NULL, sodium_base64_VARIANT_ORIGINAL) == 0);
	CHECK(bl == size && (size == 0 || memcmp(back, data, size) == 0));
	free(back);
	free(h);
	/* Device resolution never fails. */
	enum bchat_device d = bchat_resolve_device((const char *)data, size, (const char *)data, size);
	CHECK(d >= BCHAT_DEV_IOS && d <= BCHAT_DEV_HUAWEI);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct bchat_config cfgs[] = {{1, "bd", 2048}, {0, "", 4}, {1, "05", 0}};
	for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
		struct bchat_request r;
		enum bchat_error e = bchat_parse_v2(&cfgs[i], data, size, &r);
		CHECK(e >= BCHAT_OK && e <= BCHAT_GROUP_NOT_FOUND);
		CHECK(e != BCHAT_NOT_REGISTERED && e != BCHAT_GROUP_NOT_FOUND);
		if (e == BCHAT_OK)
			check_request(&cfgs[i], &r);
		else
			CHECK(r.token == NULL && r.pubkey == NULL && r.group == NULL && r.send_to == NULL &&
			      r.data == NULL && r.groups == NULL && r.ngroups == 0);
		bchat_request_free(&r);
	}
	struct bchat_request r;
	enum bchat_error e = bchat_parse_v2(NULL, data, size, &r);
	CHECK(e >= BCHAT_OK && e <= BCHAT_SERVER_BUSY);
	bchat_request_free(&r);
	check_replies(data, size);
	return 0;
}
