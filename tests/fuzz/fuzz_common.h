/*
 * fuzz_common: what the fuzz targets share: CHECK (abort with the failed condition, so a broken
 * invariant is a crash libFuzzer keeps) and the promises of a successful bchat_parse_v2/v4.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H
#include "bchat/bchat_request.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                              \
	do {                                                                                  \
		if (!(c)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                              \
		}                                                                             \
	} while (0)

static inline void check_str(const char *s, size_t n, int required)
{
	if (s == NULL) {
		CHECK(!required && n == 0);
		return;
	}
	CHECK(n > 0 && strlen(s) == n);
}

static inline int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline void check_id(const struct bchat_config *c, const char *s, size_t n)
{
	check_str(s, n, 1);
	if (c->validate_ids) {
		size_t pl = strlen(c->id_prefix);
		CHECK(n == pl + 64 && memcmp(s, c->id_prefix, pl) == 0);
		for (size_t i = pl; i < n; i++)
			CHECK(is_hex(s[i]));
	} else {
		CHECK(n <= BCHAT_OPAQUE_ID_MAX);
	}
}

static inline void check_request(const struct bchat_config *c, const struct bchat_request *r)
{
	switch (r->action) {
	case BCHAT_REGISTER:
	case BCHAT_REGISTER_LEGACY_GROUPS_ONLY:
		check_str(r->token, r->token_len, 1);
		CHECK(r->token_len <= BCHAT_TOKEN_MAX);
		for (size_t i = 0; i < r->token_len; i++)
			CHECK(r->token[i] > 0x20 && r->token[i] < 0x7f);
		check_id(c, r->pubkey, r->pubkey_len);
		CHECK(r->device >= BCHAT_DEV_IOS && r->device <= BCHAT_DEV_HUAWEI);
		CHECK(r->ngroups <= c->max_groups);
		CHECK(r->action == BCHAT_REGISTER_LEGACY_GROUPS_ONLY || r->ngroups == 0);
		for (size_t i = 0; i < r->ngroups; i++)
			check_id(c, r->groups[i], r->group_lens[i]);
		CHECK(r->send_to == NULL && r->data == NULL && r->group == NULL);
		break;
	case BCHAT_UNREGISTER:
		check_str(r->token, r->token_len, 1);
		CHECK(r->pubkey == NULL && r->send_to == NULL && r->group == NULL && r->ngroups == 0);
		break;
	case BCHAT_SUBSCRIBE_CLOSED_GROUP:
	case BCHAT_UNSUBSCRIBE_CLOSED_GROUP:
		check_id(c, r->group, r->group_len);
		check_id(c, r->pubkey, r->pubkey_len);
		CHECK(r->token == NULL && r->send_to == NULL && r->ngroups == 0);
		break;
	case BCHAT_NOTIFY:
		check_id(c, r->send_to, r->send_to_len);
		check_str(r->data, r->data_len, 1);
		CHECK(r->token == NULL && r->pubkey == NULL && r->ngroups == 0);
		break;
	default:
		CHECK(!"unknown action");
	}
	CHECK(strcmp(bchat_action_name(r->action), "unknown") != 0);
}

#endif
