/*
 * fuzz_uwpx: the UWPX registration protocol without TLS (ingress/uwpx/uwpx_msg.c, uwpx_uri.c).
 * The input is a byte stream as a client would send it: it is split at NULs with the same
 * uwpx_frame_end() the daemon uses, and every message is parsed under two configurations
 * (default allowlist and cap; loopback switch, an extra suffix and path, a cap of 3). What a
 * successful parse promises is checked, every reply built from it must be compact JSON with
 * sorted keys and one NUL, and the URI validator is run on the raw input too: what it accepts
 * must look like a channel URI, and the looser rules must accept all the strict rules accept.
 */
#include "../../ingress/uwpx/uwpx_msg.h"
#include "uwpx_uri.h"
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const sfx1[] = {".notify.windows.com"};
static const char *const paths1[] = {"/"};
static const char *const sfx2[] = {".notify.windows.com", "wns.example.test"};
static const char *const paths2[] = {"/", "/w/"};
static const struct uwpx_limits lims[2] = {
	{64, {sfx1, 1, paths1, 1, 0}},
	{3, {sfx2, 2, paths2, 2, 1}},
};

static void check_json_reply(const char *buf, size_t len, int status, int version)
{
	json_t *j;
	char *again;

	CHECK(buf != NULL && len >= 2 && buf[len - 1] == '\0' && strlen(buf) == len - 1);
	j = json_loadb(buf, len - 1, JSON_REJECT_DUPLICATES, NULL);
	CHECK(json_is_object(j));
	CHECK(json_integer_value(json_object_get(j, "status")) == status);
	CHECK(json_integer_value(json_object_get(j, "version")) == version);
	CHECK(strcmp(json_string_value(json_object_get(j, "action")), "response") == 0);
	CHECK((json_object_get(j, "error") != NULL) == (status == 0));
	/* Already compact and sorted: dumping it again gives the same bytes. */
	again = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK(again != NULL && strcmp(again, buf) == 0);
	free(again);
	json_decref(j);
}

static int lower_hex64(const char *s)
{
	if (strlen(s) != UWPX_ID_LEN)
		return 0;
	for (size_t i = 0; i < UWPX_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static void check_uwpx(const struct uwpx_limits *lim, const struct uwpx_request *q)
{
	CHECK(q->version == 1 || q->version == 2);
	CHECK(lower_hex64(q->device_id));
	switch (q->action) {
	case UWPX_SET_CHANNEL_URI:
		CHECK(q->channel_uri_len > 0 && q->channel_uri_len <= UWPX_URI_MAX && strlen(q->channel_uri) == q->channel_uri_len);
		CHECK(uwpx_uri_valid(&lim->uri, q->channel_uri, q->channel_uri_len));
		break;
	case UWPX_SET_PUSH_ACCOUNTS: {
		struct uwpx_node nodes[UWPX_ACCOUNTS_CAP];
		size_t len = 0;
		char *r;
		CHECK(q->naccounts <= lim->max_accounts);
		for (size_t i = 0; i < q->naccounts; i++) {
			CHECK(strlen(q->accounts[i]) == UWPX_ID_LEN);
			for (size_t k = 0; k < i; k++)
				CHECK(strcasecmp(q->accounts[i], q->accounts[k]) != 0);
			nodes[i].ok = (int)(i & 1);
			snprintf(nodes[i].node, sizeof nodes[i].node, "N%zu", i);
			snprintf(nodes[i].secret, sizeof nodes[i].secret, "S%zu", i);
		}
		r = uwpx_reply_accounts(q, nodes, "push.example.org", &len);
		check_json_reply(r, len, 1, q->v1_accounts ? 1 : 2); /* version-1 set_accounts: version 1 */
		free(r);
		break;
	}
	case UWPX_REQUEST_TEST_PUSH:
		break;
	default:
		CHECK(!"unknown action");
	}
	CHECK(strcmp(uwpx_action_name(q->action), "unknown") != 0);
}

static void parse_one(const uint8_t *msg, size_t len)
{
	static struct uwpx_request q, q2;
	static uint8_t bom[UWPX_URI_MAX * 40];

	for (int k = 0; k < 2; k++) {
		enum uwpx_result r = uwpx_parse(&lims[k], msg, len, &q);
		size_t rl = 0;
		char *reply;

		CHECK(r >= UWPX_OK && r <= UWPX_E_INTERNAL);
		CHECK(r != UWPX_E_DEVICE_UNKNOWN && r != UWPX_E_TEST_PUSH && r != UWPX_E_INTERNAL);
		if (r == UWPX_EMPTY) {
			CHECK(len == 0 || (len == 3 && memcmp(msg, "\xef\xbb\xbf", 3) == 0));
			continue;
		}
		if (r == UWPX_OK)
			check_uwpx(&lims[k], &q);
		reply = uwpx_reply(r, &rl);
		check_json_reply(reply, rl, r == UWPX_OK, 2);
		CHECK((uwpx_error_string(r) != NULL) == (r != UWPX_OK));
		free(reply);
		/* A leading BOM changes nothing (unless the message already has one). */
		if (len + 3 <= sizeof bom && !(len >= 3 && memcmp(msg, "\xef\xbb\xbf", 3) == 0)) {
			memcpy(bom, "\xef\xbb\xbf", 3);
			memcpy(bom + 3, msg, len);
			CHECK(uwpx_parse(&lims[k], bom, len + 3, &q2) == r);
			if (r == UWPX_OK)
				CHECK(memcmp(&q, &q2, sizeof q) == 0);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const size_t max = 8192;
	size_t pos = 0;

	/* The stream, message by message, as the daemon splits it. */
	while (pos <= size) {
		long end = uwpx_frame_end(data + pos, size - pos, max);
		const uint8_t *nul = memchr(data + pos, 0, size - pos);
		if (end == -1) {
			CHECK(nul == NULL && size - pos <= max);
			break;
		}
		if (end == -2) {
			CHECK(size - pos > max && (nul == NULL || (size_t)(nul - (data + pos)) > max));
			break;
		}
		CHECK(nul == data + pos + end && (size_t)end <= max);
		parse_one(data + pos, (size_t)end);
		pos += (size_t)end + 1;
	}
	/* The whole input as one message, as if the cap allowed it. */
	if (memchr(data, 0, size) == NULL)
		parse_one(data, size);

	/* The URI validator on the raw bytes. */
	{
		int strict = uwpx_uri_valid(&lims[0].uri, (const char *)data, size);
		int loose = uwpx_uri_valid(&lims[1].uri, (const char *)data, size);
		CHECK(!strict || loose);
		if (loose) {
			CHECK(size <= UWPX_URI_MAX && memchr(data, '#', size) == NULL && memchr(data, '@', size) == NULL);
			CHECK(strncasecmp((const char *)data, "http", 4) == 0);
			for (size_t i = 0; i < size; i++)
				CHECK(data[i] > 0x20 && data[i] < 0x7f);
		}
		if (strict)
			CHECK(size > 8 && strncasecmp((const char *)data, "https://", 8) == 0 && memchr(data, ':', size) == data + 5);
	}
	return 0;
}
