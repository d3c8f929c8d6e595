/*
 * test_uwpx_msg: UWPX v2 messages (docs/uwpx.md, "Framing" to "Errors"): NUL framing and the
 * size cap, BOM and empty messages, every row of the error table and their precedence, versions 1
 * and 2, device_id lowercasing, account_id echo and de-duplication, the account cap, and the
 * exact bytes (compact, keys sorted, one NUL) of every reply; and the version-1 forms of
 * docs/uwpx.md: set_accounts with bare JIDs in both spellings (and mixed), the derived account
 * ids equal to a v2 client's, the version-1 replies, set_channel_uri answered with version 1.
 */
#include "../../ingress/uwpx/uwpx_msg.h"
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEV "b5facd81c7ac2efc96d7bf09d33c7aff9e3bea9ebd236db28a074d55437f62cd"
#define DEV_UP "B5FACD81C7AC2EFC96D7BF09D33C7AFF9E3BEA9EBD236DB28A074D55437F62CD"
#define ACC "f9d4bb421963be0703134afcff4760790da19bbec398bdbb591014009074db2a"
#define ACC2 "0000000000000000000000000000000000000000000000000000000000000002"
#define URI "https://db5p.notify.windows.com/?token=AwYAAAD%2bx9%3d"

static const char *const sfx[] = {".notify.windows.com"};
static const char *const paths[] = {"/"};
static struct uwpx_limits lim = {64, {sfx, 1, paths, 1, 0}};
static struct uwpx_request req;

static enum uwpx_result parse(const char *s)
{
	return uwpx_parse(&lim, (const uint8_t *)s, strlen(s), &req);
}

#define IS(r, msg) do { enum uwpx_result got_ = parse(msg); CHECK(got_ == (r), "%s → %d (want %d)", msg, got_, (r)); } while (0)

static void check_reply(enum uwpx_result r, const char *want)
{
	size_t len = 0;
	char *got = uwpx_reply(r, &len);
	CHECK(got != NULL && len == strlen(want) + 1 && memcmp(got, want, len) == 0, "reply %d is %s (got %s)", r, want,
	      got ? got : "NULL");
	free(got);
}

static void framing(void)
{
	const uint8_t two[] = "{\"a\":1}\0{\"b\":2}";
	uint8_t big[70];

	CHECK(uwpx_frame_end(two, sizeof two - 1, 64) == 7, "first message ends at its NUL");
	CHECK(uwpx_frame_end(two + 8, sizeof two - 9, 64) == -1, "second message needs more input");
	CHECK(uwpx_frame_end((const uint8_t *)"", 0, 64) == -1, "nothing buffered");
	CHECK(uwpx_frame_end((const uint8_t *)"\0", 1, 64) == 0, "an empty message");
	memset(big, 'x', sizeof big);
	CHECK(uwpx_frame_end(big, 64, 64) == -1, "exactly the cap, no NUL yet: wait");
	big[64] = 0;
	CHECK(uwpx_frame_end(big, 65, 64) == 64, "exactly the cap then the NUL: a message");
	big[64] = 'x';
	CHECK(uwpx_frame_end(big, 65, 64) == -2, "cap + 1 bytes without a NUL: over the cap");
	big[65] = 0;
	CHECK(uwpx_frame_end(big, 66, 64) == -2, "NUL after cap + 1 bytes: over the cap");
}

static void good_messages(void)
{
	IS(UWPX_OK, "{\"version\":2,\"action\":\"set_channel_uri\",\"device_id\":\"" DEV "\",\"channel_uri\":\"" URI "\"}");
	CHECK(req.action == UWPX_SET_CHANNEL_URI && req.version == 2 && strcmp(req.device_id, DEV) == 0 &&
		      strcmp(req.channel_uri, URI) == 0 && req.channel_uri_len == strlen(URI),
	      "set_channel_uri fields");
	/* The client's pretty-printed CR LF form, version 1, an uppercase device id, extra fields. */
	IS(UWPX_OK, "{\r\n  \"version\": 1,\r\n  \"action\": \"request_test_push\",\r\n  \"device_id\": \"" DEV_UP
		    "\",\r\n  \"extra\": [1, {\"x\": null}]\r\n}\r\n");
	CHECK(req.action == UWPX_REQUEST_TEST_PUSH && req.version == 1 && strcmp(req.device_id, DEV) == 0,
	      "device_id stored lowercase, version 1 kept");
	IS(UWPX_OK, "\xef\xbb\xbf{\"version\":2,\"action\":\"set_push_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[]}");
	CHECK(req.action == UWPX_SET_PUSH_ACCOUNTS && req.naccounts == 0, "BOM skipped; empty account list");
	IS(UWPX_OK, "{\"version\":2,\"action\":\"set_push_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[{\"account_id\":\"" ACC
		    "\"},{\"account_id\":\"" ACC2 "\",\"x\":1},{\"account_id\":\"F9D4BB421963BE0703134AFCFF4760790DA19BBEC398BDBB591014009074DB2A\"},{\"account_id\":\"" ACC "\"}]}");
	CHECK(req.naccounts == 2 && strcmp(req.accounts[0], ACC) == 0 && strcmp(req.accounts[1], ACC2) == 0,
	      "duplicates (any case) collapse to the first, order kept");
	IS(UWPX_OK, "{\"version\":2,\"action\":\"set_push_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[{\"account_id\":\"F9D4bb421963be0703134afcff4760790da19bbec398bdbb591014009074db2a\"}]}");
	CHECK(req.naccounts == 1 && memcmp(req.accounts[0], "F9D4bb", 6) == 0, "account_id kept exactly as received");
	IS(UWPX_EMPTY, "");
	IS(UWPX_EMPTY, "\xef\xbb\xbf");
}

/* n accounts, ids 0..n-1 (with one duplicate when dup). */
static char *accounts_msg(int n, int dup)
{
	size_t cap = 256 + (size_t)(n + 1) * 90;
	char *m = malloc(cap), *p = m;
	p += sprintf(p, "{\"version\":2,\"action\":\"set_push_accounts\",\"device_id\":\"%s\",\"accounts\":[", DEV);
	for (int i = 0; i < n + dup; i++)
		p += sprintf(p, "%s{\"account_id\":\"%064x\"}", i ? "," : "", i < n ? i : 0);
	strcpy(p, "]}");
	return m;
}

static void errors(void)
{
	char *m;

	/* Row 1: not UTF-8, not JSON, not an object. */
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":\"\xff" DEV "\"}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"request_\xc3\x28\"}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":\"" DEV "\",\"x\":\"\xc0\xaf\"}"); /* overlong */
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":\"" DEV "\",\"x\":\"\xed\xa0\x80\"}"); /* surrogate */
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":\"" DEV "\",\"x\":\"\\ud800\"}"); /* lone escape */
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":\"" DEV "\",\"x\":\"\xf4\x90\x80\x80\"}"); /* > U+10FFFF */
	IS(UWPX_E_MALFORMED, "{\"version\":2,");
	IS(UWPX_E_MALFORMED, "not json");
	IS(UWPX_E_MALFORMED, "[1,2]");
	IS(UWPX_E_MALFORMED, "\"set_channel_uri\"");
	IS(UWPX_E_MALFORMED, "2");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":\"" DEV "\"} {}");
	IS(UWPX_E_MALFORMED, "\xef\xbb\xbf\xef\xbb\xbf{}");
	IS(UWPX_E_MALFORMED, "{\"action\":\"request_test_push\",\"action\":\"request_test_push\",\"version\":2,\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":\"a\\u0000\"}");
	/* Row 2: action missing, not a string, empty; known fields of the wrong type. */
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":5,\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":null}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"\",\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_MALFORMED, "{\"version\":\"2\",\"action\":\"request_test_push\",\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_MALFORMED, "{\"version\":2.0,\"action\":\"request_test_push\",\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":5}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":null}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"set_channel_uri\",\"device_id\":\"" DEV "\",\"channel_uri\":[]}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"set_push_accounts\",\"device_id\":\"" DEV "\",\"accounts\":{}}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"set_push_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[\"" ACC "\"]}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"set_push_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[{\"account_id\":1}]}");
	/* Known fields are typed whatever the action. */
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":\"" DEV "\",\"accounts\":5}");
	/* Row 3 and 4. */
	IS(UWPX_E_UNSUPPORTED, "{\"action\":\"response\",\"status\":1,\"version\":2}");
	IS(UWPX_E_UNSUPPORTED, "{\"action\":\"response\"}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"register_push\",\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"set_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[]}");
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"Set_Channel_Uri\"}");
	/* Row 5. */
	IS(UWPX_E_INVALID, "{\"action\":\"request_test_push\",\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_INVALID, "{\"version\":0,\"action\":\"request_test_push\",\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_INVALID, "{\"version\":3,\"action\":\"request_test_push\",\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_INVALID, "{\"version\":-1,\"action\":\"request_test_push\",\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_INVALID, "{\"version\":2,\"action\":\"request_test_push\"}");
	IS(UWPX_E_INVALID, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":\"\"}");
	IS(UWPX_E_INVALID, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":\"" DEV "0\"}");
	IS(UWPX_E_INVALID, "{\"version\":2,\"action\":\"request_test_push\",\"device_id\":\"g5facd81c7ac2efc96d7bf09d33c7aff9e3bea9ebd236db28a074d55437f62cd\"}");
	IS(UWPX_E_INVALID, "{\"version\":2,\"action\":\"set_channel_uri\",\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_INVALID, "{\"version\":2,\"action\":\"set_channel_uri\",\"device_id\":\"" DEV "\",\"channel_uri\":\"\"}");
	IS(UWPX_E_INVALID, "{\"version\":2,\"action\":\"set_push_accounts\",\"device_id\":\"" DEV "\"}");
	IS(UWPX_E_INVALID, "{\"version\":2,\"action\":\"set_push_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[{}]}");
	IS(UWPX_E_INVALID, "{\"version\":2,\"action\":\"set_push_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[{\"account_id\":\"\"}]}");
	IS(UWPX_E_INVALID, "{\"version\":2,\"action\":\"set_push_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[{\"account_id\":\"" ACC "a\"}]}");
	m = accounts_msg(64, 1);
	IS(UWPX_OK, m);
	CHECK(req.naccounts == 64, "64 distinct accounts (and a duplicate) are fine");
	free(m);
	m = accounts_msg(65, 0);
	IS(UWPX_E_INVALID, m);
	lim.max_accounts = 3;
	free(m);
	m = accounts_msg(3, 0);
	IS(UWPX_OK, m);
	free(m);
	m = accounts_msg(4, 0);
	IS(UWPX_E_INVALID, m);
	free(m);
	lim.max_accounts = 64;
	/* Row 7. */
	IS(UWPX_E_CHANNEL_URI, "{\"version\":2,\"action\":\"set_channel_uri\",\"device_id\":\"" DEV "\",\"channel_uri\":\"http://db5p.notify.windows.com/?token=x\"}");
	IS(UWPX_E_CHANNEL_URI, "{\"version\":2,\"action\":\"set_channel_uri\",\"device_id\":\"" DEV "\",\"channel_uri\":\"http://127.0.0.1:8443/?token=x\"}");
	lim.uri.allow_loopback = 1;
	IS(UWPX_OK, "{\"version\":2,\"action\":\"set_channel_uri\",\"device_id\":\"" DEV "\",\"channel_uri\":\"http://127.0.0.1:8443/?token=x\"}");
	lim.uri.allow_loopback = 0;
	IS(UWPX_E_CHANNEL_URI, "{\"version\":2,\"action\":\"set_channel_uri\",\"device_id\":\"" DEV "\",\"channel_uri\":\"https://db5p.notify.windows.com/?token=\\u00e9\"}");

	/* Precedence: the first failing row wins. */
	IS(UWPX_E_MALFORMED, "{\"action\":\"response\",\"version\":\"2\"}");                 /* 2 before 3 */
	IS(UWPX_E_MALFORMED, "{\"action\":\"nope\",\"device_id\":5}");                       /* 2 before 4 */
	IS(UWPX_E_UNSUPPORTED, "{\"action\":\"response\",\"version\":7,\"device_id\":\"x\"}"); /* 3 before 5 */
	IS(UWPX_E_MALFORMED, "{\"action\":\"nope\",\"version\":7}");                         /* 4 before 5 */
	IS(UWPX_E_MALFORMED, "{\"version\":9,\"action\":\"set_push_accounts\",\"device_id\":\"x\",\"accounts\":[{\"account_id\":\"y\"},7]}"); /* 2 before 5 */
	IS(UWPX_E_INVALID, "{\"version\":2,\"action\":\"set_channel_uri\",\"device_id\":\"x\",\"channel_uri\":\"http://evil/\"}"); /* 5 before 7 */
	IS(UWPX_E_INVALID, "{\"version\":3,\"action\":\"set_channel_uri\",\"device_id\":\"" DEV "\",\"channel_uri\":\"http://evil/\"}");
}

static void replies(void)
{
	struct uwpx_node nodes[3];
	char *got;
	size_t len = 0;

	check_reply(UWPX_OK, "{\"action\":\"response\",\"status\":1,\"version\":2}");
	check_reply(UWPX_E_MALFORMED, "{\"action\":\"response\",\"error\":\"Malformed JSON.\",\"status\":0,\"version\":2}");
	check_reply(UWPX_E_UNSUPPORTED, "{\"action\":\"response\",\"error\":\"Unsupported message type.\",\"status\":0,\"version\":2}");
	check_reply(UWPX_E_INVALID, "{\"action\":\"response\",\"error\":\"Invalid JSON message.\",\"status\":0,\"version\":2}");
	check_reply(UWPX_E_DEVICE_UNKNOWN, "{\"action\":\"response\",\"error\":\"Device id unknown.\",\"status\":0,\"version\":2}");
	check_reply(UWPX_E_CHANNEL_URI, "{\"action\":\"response\",\"error\":\"Invalid channel URI. Has to use the domain 'notify.windows.com'.\",\"status\":0,\"version\":2}");
	check_reply(UWPX_E_TEST_PUSH, "{\"action\":\"response\",\"error\":\"Failed to send test push. Something went wrong...\",\"status\":0,\"version\":2}");
	check_reply(UWPX_E_INTERNAL, "{\"action\":\"response\",\"error\":\"Internal server error... Failed to process received JSON message.\",\"status\":0,\"version\":2}");

	/* The docs/uwpx.md "Replies" account reply, with a stored and an unstored account. */
	memset(&req, 0, sizeof req);
	memset(nodes, 0, sizeof nodes);
	req.action = UWPX_SET_PUSH_ACCOUNTS;
	req.naccounts = 2;
	strcpy(req.accounts[0], ACC);
	strcpy(req.accounts[1], "F9D4BB421963BE0703134AFCFF4760790DA19BBEC398BDBB591014009074DB2B");
	nodes[0].ok = 1;
	strcpy(nodes[0].node, "N8bqAbCdEfGhIjKlMnOpQrSt");
	strcpy(nodes[0].secret, "r2KxAbCdEfGhIjKlMnOpQrSt");
	got = uwpx_reply_accounts(&req, nodes, "push.example.org", &len);
	{
		const char *want = "{\"accounts\":[{\"account_id\":\"" ACC "\",\"node\":\"N8bqAbCdEfGhIjKlMnOpQrSt\",\"secret\":\"r2KxAbCdEfGhIjKlMnOpQrSt\",\"success\":true},"
				   "{\"account_id\":\"F9D4BB421963BE0703134AFCFF4760790DA19BBEC398BDBB591014009074DB2B\",\"node\":\"\",\"secret\":\"\",\"success\":false}],"
				   "\"action\":\"response\",\"push_bare_jid\":\"push.example.org\",\"status\":1,\"version\":2}";
		CHECK(got != NULL && len == strlen(want) + 1 && memcmp(got, want, len) == 0, "accounts reply bytes: %s", got ? got : "NULL");
	}
	free(got);
	req.naccounts = 0;
	got = uwpx_reply_accounts(&req, nodes, "push.example.org", &len);
	{
		const char *want = "{\"accounts\":[],\"action\":\"response\",\"push_bare_jid\":\"push.example.org\",\"status\":1,\"version\":2}";
		CHECK(got != NULL && len == strlen(want) + 1 && memcmp(got, want, len) == 0, "empty accounts reply bytes: %s", got ? got : "NULL");
	}
	free(got);
	/* A domain needing JSON escapes stays valid JSON. */
	got = uwpx_reply_accounts(&req, nodes, "we\"ird\\", &len);
	CHECK(got != NULL && strstr(got, "\"push_bare_jid\":\"we\\\"ird\\\\\"") != NULL, "push_bare_jid escaped");
	free(got);
	CHECK(uwpx_reply_accounts(&req, nodes, "bad\xff", &len) == NULL, "a non-UTF-8 domain is refused, not sent");
	CHECK(strcmp(uwpx_action_name(UWPX_SET_PUSH_ACCOUNTS), "set_push_accounts") == 0, "action names");
}

#define V1(accounts) "{\"version\":1,\"action\":\"set_accounts\",\"device_id\":\"" DEV "\",\"accounts\":" accounts "}"

static void check_reply_to(enum uwpx_result r, const char *want, const char *what)
{
	size_t len = 0;
	char *got = uwpx_reply_to(&req, r, &len);
	CHECK(got != NULL && len == strlen(want) + 1 && memcmp(got, want, len) == 0, "%s: %s (got %s)", what, want,
	      got ? got : "NULL");
	free(got);
}

static void check_accounts_reply(const struct uwpx_node *nodes, const char *want, const char *what)
{
	size_t len = 0;
	char *got = uwpx_reply_accounts(&req, nodes, "push.example.org", &len);
	CHECK(got != NULL && len == strlen(want) + 1 && memcmp(got, want, len) == 0, "%s: %s (got %s)", what, want,
	      got ? got : "NULL");
	free(got);
}

static void version1(void)
{
	struct uwpx_node nodes[3];
	char id[UWPX_ID_LEN + 1], *m, *p;

	/* The account id is the v2 client's: SHA-256(device_id ‖ bare JID), lowercase hex. */
	uwpx_account_id(DEV, "alice@example.org", 17, id);
	CHECK(strcmp(id, ACC) == 0, "account id of the documented example (%s)", id);

	IS(UWPX_OK, V1("[{\"bare_jid\":\"alice@example.org\"}]"));
	CHECK(req.action == UWPX_SET_PUSH_ACCOUNTS && req.v1_accounts && req.version == 1 && req.reply_version == 1 &&
		      req.naccounts == 1 && strcmp(req.accounts[0], ACC) == 0 && !req.camel[0] && !req.push_camel,
	      "set_accounts v1 (bare_jid): the same account id a v2 client sends");
	memset(nodes, 0, sizeof nodes);
	nodes[0].ok = 1;
	strcpy(nodes[0].node, "N8bqAbCdEfGhIjKlMnOpQrSt");
	strcpy(nodes[0].secret, "r2KxAbCdEfGhIjKlMnOpQrSt");
	check_accounts_reply(nodes, "{\"accounts\":[{\"bare_jid\":\"alice@example.org\",\"node\":\"N8bqAbCdEfGhIjKlMnOpQrSt\","
				    "\"secret\":\"r2KxAbCdEfGhIjKlMnOpQrSt\"}],\"action\":\"response\","
				    "\"push_bare_jid\":\"push.example.org\",\"status\":1,\"version\":1}",
			     "version-1 reply, snake spelling");

	IS(UWPX_OK, "{\"version\":1,\"action\":\"set_accounts\",\"device_id\":\"" DEV_UP "\",\"accounts\":[{\"bareJid\":\"alice@example.org\"}]}");
	CHECK(req.naccounts == 1 && strcmp(req.accounts[0], ACC) == 0 && req.camel[0] && req.push_camel,
	      "bareJid spelling, uppercase device id: still the same account id");
	check_accounts_reply(nodes, "{\"accounts\":[{\"bareJid\":\"alice@example.org\",\"node\":\"N8bqAbCdEfGhIjKlMnOpQrSt\","
				    "\"secret\":\"r2KxAbCdEfGhIjKlMnOpQrSt\"}],\"action\":\"response\","
				    "\"push_bareJid\":\"push.example.org\",\"status\":1,\"version\":1}",
			     "version-1 reply, the earlier spelling");

	/* Mixed spellings: each account answered as it was spelled; push_… as the first one. */
	IS(UWPX_OK, V1("[{\"bareJid\":\"bob@example.org\"},{\"bare_jid\":\"alice@example.org\"},{\"bare_jid\":\"bob@example.org\"}]"));
	uwpx_account_id(DEV, "bob@example.org", 15, id);
	CHECK(req.naccounts == 2 && strcmp(req.accounts[0], id) == 0 && strcmp(req.accounts[1], ACC) == 0 && req.camel[0] &&
		      !req.camel[1] && req.push_camel,
	      "mixed spellings; a JID repeated collapses to the first");
	nodes[1] = nodes[0];
	nodes[0].ok = 0;
	nodes[0].node[0] = nodes[0].secret[0] = '\0';
	check_accounts_reply(nodes, "{\"accounts\":[{\"bareJid\":\"bob@example.org\",\"node\":\"\",\"secret\":\"\"},"
				    "{\"bare_jid\":\"alice@example.org\",\"node\":\"N8bqAbCdEfGhIjKlMnOpQrSt\","
				    "\"secret\":\"r2KxAbCdEfGhIjKlMnOpQrSt\"}],\"action\":\"response\","
				    "\"push_bareJid\":\"push.example.org\",\"status\":1,\"version\":1}",
			     "mixed reply; an account not stored has an empty node and secret");
	IS(UWPX_OK, V1("[]"));
	CHECK(req.v1_accounts && req.naccounts == 0, "an empty list disables push (v1 too)");
	check_accounts_reply(nodes, "{\"accounts\":[],\"action\":\"response\",\"push_bare_jid\":\"push.example.org\",\"status\":1,\"version\":1}",
			     "empty version-1 reply");
	/* A JID with non-ASCII characters is hashed as its UTF-8 bytes and echoed. */
	IS(UWPX_OK, V1("[{\"bare_jid\":\"j\u00fcrgen@example.org\"}]"));
	uwpx_account_id(DEV, "j\xc3\xbcrgen@example.org", 19, id);
	CHECK(req.naccounts == 1 && strcmp(req.accounts[0], id) == 0, "non-ASCII JID hashed as UTF-8");

	/* Errors: a version-2 (or versionless) set_accounts stays unknown; bad JIDs are invalid. */
	IS(UWPX_E_MALFORMED, "{\"version\":2,\"action\":\"set_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[{\"bare_jid\":\"a@b\"}]}");
	IS(UWPX_E_MALFORMED, "{\"action\":\"set_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[{\"bare_jid\":\"a@b\"}]}");
	IS(UWPX_E_MALFORMED, "{\"version\":3,\"action\":\"set_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[]}");
	IS(UWPX_E_MALFORMED, V1("[{\"bare_jid\":5}]"));
	IS(UWPX_E_MALFORMED, V1("[{\"bareJid\":null}]"));
	IS(UWPX_E_MALFORMED, V1("[\"alice@example.org\"]"));
	IS(UWPX_E_INVALID, V1("[{}]"));
	IS(UWPX_E_INVALID, V1("[{\"account_id\":\"" ACC "\"}]"));
	IS(UWPX_E_INVALID, V1("[{\"bare_jid\":\"a@b\",\"bareJid\":\"a@b\"}]"));
	IS(UWPX_E_INVALID, V1("[{\"bare_jid\":\"\"}]"));
	IS(UWPX_E_INVALID, V1("[{\"bare_jid\":\"alice@example.org/phone\"}]"));
	IS(UWPX_E_INVALID, V1("[{\"bare_jid\":\"alice @example.org\"}]"));
	IS(UWPX_E_INVALID, V1("[{\"bare_jid\":\"alice@example.org\\n\"}]"));
	IS(UWPX_E_INVALID, "{\"version\":1,\"action\":\"set_accounts\",\"accounts\":[]}");
	IS(UWPX_E_INVALID, "{\"version\":1,\"action\":\"set_accounts\",\"device_id\":\"" DEV "\"}");
	/* The account cap, and the JIDs' total size (the reply must stay one TLS record). */
	m = malloc(16384);
	p = m + sprintf(m, "{\"version\":1,\"action\":\"set_accounts\",\"device_id\":\"%s\",\"accounts\":[", DEV);
	for (int i = 0; i < 65; i++)
		p += sprintf(p, "%s{\"bare_jid\":\"u%d@example.org\"}", i ? "," : "", i);
	strcpy(p, "]}");
	IS(UWPX_E_INVALID, m);
	p = m + sprintf(m, "{\"version\":1,\"action\":\"set_accounts\",\"device_id\":\"%s\",\"accounts\":[", DEV);
	for (int i = 0; i < 4; i++)
		p += sprintf(p, "%s{\"bare_jid\":\"%0800d@example.org\"}", i ? "," : "", i);
	strcpy(p, "]}");
	IS(UWPX_E_INVALID, m);
	p = m + sprintf(m, "{\"version\":1,\"action\":\"set_accounts\",\"device_id\":\"%s\",\"accounts\":[", DEV);
	for (int i = 0; i < 3; i++)
		p += sprintf(p, "%s{\"bare_jid\":\"%0800d@example.org\"}", i ? "," : "", i);
	strcpy(p, "]}");
	IS(UWPX_OK, m);
	CHECK(req.naccounts == 3, "three long JIDs fit");
	free(m);

	/* set_channel_uri version 1 is answered with version 1, errors included. */
	IS(UWPX_OK, "{\"version\":1,\"action\":\"set_channel_uri\",\"device_id\":\"" DEV "\",\"channel_uri\":\"" URI "\"}");
	CHECK(req.reply_version == 1, "set_channel_uri v1: replies in version 1");
	check_reply_to(UWPX_OK, "{\"action\":\"response\",\"status\":1,\"version\":1}", "set_channel_uri v1 success");
	check_reply_to(UWPX_E_INTERNAL, "{\"action\":\"response\",\"error\":\"Internal server error... Failed to process received JSON message.\",\"status\":0,\"version\":1}",
		       "set_channel_uri v1 failure");
	IS(UWPX_E_CHANNEL_URI, "{\"version\":1,\"action\":\"set_channel_uri\",\"device_id\":\"" DEV "\",\"channel_uri\":\"https://evil.example/?token=x\"}");
	check_reply_to(UWPX_E_CHANNEL_URI, "{\"action\":\"response\",\"error\":\"Invalid channel URI. Has to use the domain 'notify.windows.com'.\",\"status\":0,\"version\":1}",
		       "set_channel_uri v1 bad URI");
	IS(UWPX_OK, "{\"version\":2,\"action\":\"set_channel_uri\",\"device_id\":\"" DEV "\",\"channel_uri\":\"" URI "\"}");
	check_reply_to(UWPX_OK, "{\"action\":\"response\",\"status\":1,\"version\":2}", "set_channel_uri v2 success");
	IS(UWPX_OK, "{\"version\":1,\"action\":\"request_test_push\",\"device_id\":\"" DEV "\"}");
	check_reply_to(UWPX_OK, "{\"action\":\"response\",\"status\":1,\"version\":2}", "request_test_push v1: version 2 as before");
	IS(UWPX_OK, "{\"version\":1,\"action\":\"set_push_accounts\",\"device_id\":\"" DEV "\",\"accounts\":[{\"account_id\":\"" ACC "\"}]}");
	CHECK(!req.v1_accounts && req.reply_version == 2, "set_push_accounts v1: the v2 account form, version-2 reply");
	IS(UWPX_E_MALFORMED, "not json");
	check_reply_to(UWPX_E_MALFORMED, "{\"action\":\"response\",\"error\":\"Malformed JSON.\",\"status\":0,\"version\":2}",
		       "an unreadable message: version 2");
}

int main(void)
{
	framing();
	good_messages();
	errors();
	replies();
	version1();
	return test_done();
}
