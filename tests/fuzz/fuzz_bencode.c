/*
 * fuzz_bencode: bencode_parse_list() and bchat_parse_v4() (common/bchat/bencode.c,
 * common/bchat/bchat_request.c) on arbitrary v4 plaintexts. A list that parses must be canonical:
 * one or two strings inside the buffer, and writing them back gives exactly the input.
 * bencode_write_pair() over any split of the input must parse back to the same two strings.
 */
#include "bchat/bchat_request.h"
#include "bchat/bencode.h"
#include "fuzz_common.h"
#include <sodium.h>
#include <stdint.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct bchat_config cfgs[] = {{1, "bd", 2048}, {0, "", 4}, {1, "05", 0}};
	struct bencode_list l;
	size_t olen;
	unsigned char *out;

	if (bencode_parse_list(data, size, &l) == 0) {
		CHECK(l.n >= 1 && l.n <= BENCODE_LIST_MAX);
		for (size_t i = 0; i < l.n; i++)
			CHECK(l.ptr[i] >= data && l.ptr[i] + l.len[i] <= data + size);
		if (l.n == 2) {
			out = bencode_write_pair(l.ptr[0], l.len[0], l.ptr[1], l.len[1], &olen);
			CHECK(out != NULL && olen == size && memcmp(out, data, size) == 0);
			free(out);
		} else {
			char head[32];
			int hl = snprintf(head, sizeof head, "l%zu:", l.len[0]);
			CHECK(size == (size_t)hl + l.len[0] + 1 && memcmp(data, head, (size_t)hl) == 0 && data[size - 1] == 'e');
		}
	} else {
		CHECK(l.n == 0);
	}
	for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
		struct bchat_request r;
		enum bchat_error e = bchat_parse_v4(&cfgs[i], data, size, &r);
		CHECK(e >= BCHAT_OK && e <= BCHAT_SERVER_BUSY);
		if (e == BCHAT_OK)
			check_request(&cfgs[i], &r);
		else
			CHECK(r.token == NULL && r.pubkey == NULL && r.group == NULL && r.send_to == NULL &&
			      r.data == NULL && r.groups == NULL && r.ngroups == 0);
		bchat_request_free(&r);
	}
	/* Writer → parser: any split of the input into two strings. */
	size_t k = size > 0 ? data[0] % (size + 1) : 0;
	out = bencode_write_pair(data, k, data + k, size - k, &olen);
	CHECK(out != NULL);
	CHECK(bencode_parse_list(out, olen, &l) == 0 && l.n == 2);
	CHECK(l.len[0] == k && l.len[1] == size - k);
	CHECK(k == 0 || memcmp(l.ptr[0], data, k) == 0);
	CHECK(size - k == 0 || memcmp(l.ptr[1], data + k, size - k) == 0);
	free(out);
	return 0;
}
