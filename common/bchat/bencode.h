/*
 * bencode: the small subset of bencode the onion v4 protocol uses (docs/protocol.md §6.3,
 * docs/protocol.md §6.5): a list of one or two byte strings, "l<len>:<bytes>[<len>:<bytes>]e".
 */
#ifndef BENCODE_H
#define BENCODE_H
#include <stddef.h>

#define BENCODE_LIST_MAX 2

/* Elements of a parsed list; ptr[i] points into the parsed buffer (not NUL-terminated). */
struct bencode_list {
	const unsigned char *ptr[BENCODE_LIST_MAX];
	size_t len[BENCODE_LIST_MAX];
	size_t n;
};

/* 0 when buf is exactly 'l', one or two byte strings (decimal length without sign or leading
 * zeros, ':', bytes) and 'e', with nothing after it; -1 for anything else. */
int bencode_parse_list(const unsigned char *buf, size_t len, struct bencode_list *out);
/* malloc'd "l<alen>:<a><blen>:<b>e" (not NUL-terminated), its size in *out_len; NULL when out of
 * memory or the size does not fit. */
unsigned char *bencode_write_pair(const unsigned char *a, size_t alen, const unsigned char *b,
				  size_t blen, size_t *out_len);
#endif
