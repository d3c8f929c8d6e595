/*
 * test_bchat_request: request parsing (v2 JSON, v4 bencode), argument validation, device
 * resolution and the exact reply bytes of docs/protocol.md §6.3–§6.5.
 */
#include "bchat/bchat_request.h"
#include "bchat/bencode.h"
#include "testlib.h"
#include "vectors_path.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID1 "bd1111111111111111111111111111111111111111111111111111111111111111"
#define ID2 "bd2222222222222222222222222222222222222222222222222222222222222222"
#define GRP "bdabcdef0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789"
#define APNS "9f3c1d2e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define FCM "dGVzdA:APA91bH-x_y1z2fcmtoken"

static const struct bchat_config cfg = {1, "bd", BCHAT_MAX_GROUPS_DEFAULT};

/* Wraps args (JSON text) into a v2 plaintext: body as a JSON string (as apps send it) or as an
 * object. endpoint NULL = no endpoint key. */
static char *v2_text(const char *endpoint, const char *args, int as_string)
{
	json_t *root = json_object(), *body;
	char *out;
	if (endpoint != NULL)
		json_object_set_new(root, "endpoint", json_string(endpoint));
	json_object_set_new(root, "method", json_string("POST"));
	if (as_string) {
		body = json_string(args);
	} else {
		body = json_loads(args, JSON_ALLOW_NUL, NULL);
		if (body == NULL) {
			fprintf(stderr, "bad test JSON: %s\n", args);
			exit(2);
		}
	}
	json_object_set_new(root, "body", body);
	out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return out;
}

static char *v4_text(const char *endpoint, const char *args, size_t *len)
{
	char meta[256], *out = malloc(strlen(args) + 512);
	snprintf(meta, sizeof meta, "{\"endpoint\":\"%s\",\"method\":\"POST\",\"headers\":{}}", endpoint);
	*len = (size_t)sprintf(out, "l%zu:%s%zu:%se", strlen(meta), meta, strlen(args), args);
	return out;
}

static enum bchat_error raw_v2(const struct bchat_config *c, const char *text, struct bchat_request *q)
{
	return bchat_parse_v2(c, (const unsigned char *)text, strlen(text), q);
}

/* Runs args through v2 (string body), v2 (object body) and v4; all three must agree on the
 * outcome. q receives the v4 result (caller frees); the v2 results are compared against it. */
static enum bchat_error all_forms(const struct bchat_config *c, const char *endpoint,
				 const char *args, struct bchat_request *q, int line)
{
	struct bchat_request a, b;
	char *s1 = v2_text(endpoint, args, 1), *s2 = v2_text(endpoint, args, 0), ep4[64];
	size_t l4;
	snprintf(ep4, sizeof ep4, "/%s", endpoint);
	char *s4 = v4_text(ep4, args, &l4);
	enum bchat_error e1 = raw_v2(c, s1, &a), e2 = raw_v2(c, s2, &b);
	enum bchat_error e4 = bchat_parse_v4(c, (const unsigned char *)s4, l4, q);
	CHECK(e1 == e4 && e2 == e4, "line %d: v2 string %d, v2 object %d, v4 %d", line, e1, e2, e4);
	if (e4 == BCHAT_OK && e1 == BCHAT_OK && e2 == BCHAT_OK) {
		CHECK(a.action == q->action && b.action == q->action && a.device == q->device &&
			      b.device == q->device && a.ngroups == q->ngroups && a.data_len == q->data_len &&
			      (a.data == NULL || memcmp(a.data, q->data, a.data_len) == 0),
		      "line %d: forms agree", line);
	}
	if (e4 != BCHAT_OK)
		CHECK(q->token == NULL && q->pubkey == NULL && q->groups == NULL && q->data == NULL,
		      "line %d: failure leaves the request empty", line);
	bchat_request_free(&a);
	bchat_request_free(&b);
	free(s1);
	free(s2);
	free(s4);
	return e4;
}

#define FORMS(c, ep, args, q) all_forms((c), (ep), (args), (q), __LINE__)

/* Outcome only. */
static enum bchat_error outcome(const struct bchat_config *c, const char *ep, const char *args, int line)
{
	struct bchat_request q;
	enum bchat_error e = all_forms(c, ep, args, &q, line);
	bchat_request_free(&q);
	return e;
}
#define OUTCOME(ep, args) outcome(&cfg, (ep), (args), __LINE__)

static void test_actions(void)
{
	struct bchat_request q;

	CHECK(FORMS(&cfg, "register", "{\"token\":\"" APNS "\",\"pubKey\":\"" ID1 "\"}", &q) == BCHAT_OK,
	      "register");
	CHECK(q.action == BCHAT_REGISTER && strcmp(q.token, APNS) == 0 && q.token_len == 64 &&
		      strcmp(q.pubkey, ID1) == 0 && q.pubkey_len == 66 && q.device == BCHAT_DEV_IOS &&
		      q.ngroups == 0 && q.groups == NULL && q.send_to == NULL && q.data == NULL,
	      "register fields");
	bchat_request_free(&q);

	CHECK(FORMS(&cfg, "register", "{\"token\":\"" FCM "\",\"pubKey\":\"" ID1 "\",\"device\":\"huawei\"}", &q) ==
		      BCHAT_OK,
	      "register huawei");
	CHECK(q.device == BCHAT_DEV_HUAWEI && strcmp(q.token, FCM) == 0, "huawei device");
	bchat_request_free(&q);

	CHECK(FORMS(&cfg, "register_legacy_groups_only",
		    "{\"token\":\"" FCM "\",\"pubKey\":\"" ID1 "\",\"device\":\"android\","
		    "\"legacyGroupPublicKeys\":[\"" GRP "\",\"" ID2 "\"]}",
		    &q) == BCHAT_OK,
	      "register_legacy_groups_only");
	CHECK(q.action == BCHAT_REGISTER_LEGACY_GROUPS_ONLY && q.device == BCHAT_DEV_ANDROID &&
		      q.ngroups == 2 && strcmp(q.groups[0], GRP) == 0 && q.group_lens[0] == 66 &&
		      strcmp(q.groups[1], ID2) == 0 && q.group_lens[1] == 66,
	      "legacy groups in order, bytes as received");
	bchat_request_free(&q);

	CHECK(FORMS(&cfg, "register_legacy_groups_only", "{\"token\":\"" FCM "\",\"pubKey\":\"" ID1 "\"}", &q) ==
		      BCHAT_OK,
	      "legacyGroupPublicKeys absent");
	CHECK(q.ngroups == 0 && q.device == BCHAT_DEV_ANDROID, "no groups, token rule → android");
	bchat_request_free(&q);
	CHECK(OUTCOME("register_legacy_groups_only",
		      "{\"token\":\"" FCM "\",\"pubKey\":\"" ID1 "\",\"legacyGroupPublicKeys\":null}") == BCHAT_OK,
	      "legacyGroupPublicKeys null");
	CHECK(OUTCOME("register_legacy_groups_only",
		      "{\"token\":\"" FCM "\",\"pubKey\":\"" ID1 "\",\"legacyGroupPublicKeys\":[]}") == BCHAT_OK,
	      "legacyGroupPublicKeys []");

	CHECK(FORMS(&cfg, "unregister", "{\"token\":\"" APNS "\"}", &q) == BCHAT_OK, "unregister");
	CHECK(q.action == BCHAT_UNREGISTER && strcmp(q.token, APNS) == 0 && q.pubkey == NULL && q.device == 0,
	      "unregister fields");
	bchat_request_free(&q);

	CHECK(FORMS(&cfg, "subscribe_closed_group", "{\"closedGroupPublicKey\":\"" GRP "\",\"pubKey\":\"" ID1 "\"}",
		    &q) == BCHAT_OK,
	      "subscribe_closed_group");
	CHECK(q.action == BCHAT_SUBSCRIBE_CLOSED_GROUP && strcmp(q.group, GRP) == 0 && q.group_len == 66 &&
		      strcmp(q.pubkey, ID1) == 0,
	      "subscribe fields");
	bchat_request_free(&q);

	CHECK(FORMS(&cfg, "unsubscribe_closed_group", "{\"closedGroupPublicKey\":\"" GRP "\",\"pubKey\":\"" ID1 "\"}",
		    &q) == BCHAT_OK,
	      "unsubscribe_closed_group");
	CHECK(q.action == BCHAT_UNSUBSCRIBE_CLOSED_GROUP && strcmp(q.group, GRP) == 0, "unsubscribe fields");
	bchat_request_free(&q);

	CHECK(FORMS(&cfg, "notify", "{\"data\":\"CAES\\u00e9+/=\",\"send_to\":\"" GRP "\",\"extra\":5}", &q) ==
		      BCHAT_OK,
	      "notify");
	CHECK(q.action == BCHAT_NOTIFY && strcmp(q.send_to, GRP) == 0 && q.data_len == 9 &&
		      memcmp(q.data, "CAES\xc3\xa9+/=", 9) == 0,
	      "notify data verbatim after unescaping");
	bchat_request_free(&q);

	/* data has no length cap here (the router applies max_data_len). */
	char *big = malloc(70000), *args = malloc(70200);
	memset(big, 'A', 69999);
	big[69999] = '\0';
	sprintf(args, "{\"send_to\":\"" ID1 "\",\"data\":\"%s\"}", big);
	CHECK(FORMS(&cfg, "notify", args, &q) == BCHAT_OK && q.data_len == 69999, "70 kB data accepted");
	bchat_request_free(&q);
	free(big);
	free(args);

	const enum bchat_action all[] = {BCHAT_REGISTER, BCHAT_REGISTER_LEGACY_GROUPS_ONLY, BCHAT_UNREGISTER,
					 BCHAT_SUBSCRIBE_CLOSED_GROUP, BCHAT_UNSUBSCRIBE_CLOSED_GROUP, BCHAT_NOTIFY};
	const char *names[] = {"register", "register_legacy_groups_only", "unregister",
			       "subscribe_closed_group", "unsubscribe_closed_group", "notify"};
	for (int i = 0; i < 6; i++)
		CHECK(strcmp(bchat_action_name(all[i]), names[i]) == 0, "action name %s", names[i]);
}

/* The three app shapes of docs/protocol.md §6.3, byte for byte as the apps produce them. */
static void test_app_forms(void)
{
	struct bchat_request q;
	const char *ios =
		"{\"endpoint\":\"register\",\"headers\":{\"Content-Type\":\"application\\/json\"},\"method\":\"POST\","
		"\"body\":\"{\\\"pubKey\\\":\\\"\\u0062d1111111111111111111111111111111111111111111111111111111111111111\\\","
		"\\\"token\\\":\\\"" APNS "\\\"}\"}";
	CHECK(raw_v2(&cfg, ios, &q) == BCHAT_OK, "iOS register");
	CHECK(q.action == BCHAT_REGISTER && strcmp(q.pubkey, ID1) == 0 && q.device == BCHAT_DEV_IOS,
	      "iOS: \\u escape resolved, device inferred ios");
	bchat_request_free(&q);

	/* iOS escapes '/' at every level: the outer string holds {"data":"ab\/cd"}. */
	const char *ios_notify =
		"{\"headers\":{\"Content-Type\":\"application\\/json\"},\"body\":\"{\\\"send_to\\\":\\\"" ID1 "\\\","
		"\\\"data\\\":\\\"ab\\\\\\/cd+\\\\\\/==\\\"}\",\"method\":\"POST\",\"endpoint\":\"\\/notify\"}";
	CHECK(raw_v2(&cfg, ios_notify, &q) == BCHAT_OK, "iOS notify with \\/ escapes");
	CHECK(q.data != NULL && strcmp(q.data, "ab/cd+/==") == 0, "data unescaped at both levels: %s",
	      q.data != NULL ? q.data : "(null)");
	bchat_request_free(&q);

	const char *desktop = "{\"method\":\"post\",\"body\":\"{\\\"data\\\":\\\"CAES\\\",\\\"send_to\\\":\\\"" ID1
			      "\\\"}\",\"endpoint\":\"notify\",\"headers\":{\"Content-Type\":\"application/json\"}}";
	CHECK(raw_v2(&cfg, desktop, &q) == BCHAT_OK && q.action == BCHAT_NOTIFY && strcmp(q.data, "CAES") == 0,
	      "desktop notify with method post");
	bchat_request_free(&q);

	const char *android =
		"{\"body\":\"{\\\"token\\\":\\\"" FCM "\\\",\\\"pubKey\\\":\\\"" ID1 "\\\",\\\"device\\\":\\\"android\\\","
		"\\\"legacyGroupPublicKeys\\\":[\\\"" GRP "\\\",\\\"" ID2 "\\\"]}\",\"endpoint\":\"register_legacy_groups_only\","
		"\"method\":\"POST\",\"headers\":{\"content-type\":\"application/json; charset=utf-8\"}}";
	CHECK(raw_v2(&cfg, android, &q) == BCHAT_OK, "Android register_legacy_groups_only");
	CHECK(q.device == BCHAT_DEV_ANDROID && q.ngroups == 2 && strcmp(q.token, FCM) == 0, "Android fields");
	bchat_request_free(&q);

	/* Duplicate keys: last wins, at both levels. */
	const char *dup = "{\"endpoint\":\"foo\",\"body\":\"{\\\"data\\\":\\\"x\\\",\\\"send_to\\\":\\\"" ID1
			  "\\\",\\\"data\\\":\\\"y\\\"}\",\"endpoint\":\"notify\"}";
	CHECK(raw_v2(&cfg, dup, &q) == BCHAT_OK && strcmp(q.data, "y") == 0, "duplicate keys: last wins");
	bchat_request_free(&q);

	/* The vector plaintexts. */
	size_t len;
	char *text = test_slurp(vectors_path(), &len);
	json_t *v = text != NULL ? json_loadb(text, len, 0, NULL) : NULL;
	CHECK(v != NULL, "vectors at %s", vectors_path());
	if (v != NULL) {
		const char *p2 = json_string_value(json_object_get(json_object_get(v, "v2"), "inner_plaintext"));
		const char *p4 = json_string_value(json_object_get(v, "v4_plaintext"));
		CHECK(p2 != NULL && raw_v2(&cfg, p2, &q) == BCHAT_OK && q.action == BCHAT_NOTIFY &&
			      strcmp(q.send_to, ID1) == 0,
		      "v2 vector plaintext");
		bchat_request_free(&q);
		CHECK(p4 != NULL && bchat_parse_v4(&cfg, (const unsigned char *)p4, strlen(p4), &q) == BCHAT_OK &&
			      strcmp(q.data, "ZXhhbXBsZSB3cmFwcGVkIGVudmVsb3BlIGJ5dGVz") == 0,
		      "v4 vector plaintext");
		bchat_request_free(&q);
		CHECK(p4 != NULL && bchat_parse_v2(&cfg, (const unsigned char *)p4, strlen(p4), &q) ==
					    BCHAT_INVALID_REQUEST,
		      "v4 plaintext on v2: Invalid request");
		CHECK(p2 != NULL && bchat_parse_v4(&cfg, (const unsigned char *)p2, strlen(p2), &q) ==
					    BCHAT_INVALID_REQUEST,
		      "v2 plaintext on v4: Invalid request");
	}
	json_decref(v);
	free(text);
}

static void test_parameters(void)
{
	char t1025[1100], t1024[1100], args[1300];
	enum bchat_error M = BCHAT_MISSING_PARAMETER, I = BCHAT_INVALID_PARAMETER, K = BCHAT_OK;

	/* token (register) */
	CHECK(OUTCOME("register", "{\"pubKey\":\"" ID1 "\"}") == M, "token absent");
	CHECK(OUTCOME("register", "{\"token\":null,\"pubKey\":\"" ID1 "\"}") == M, "token null");
	CHECK(OUTCOME("register", "{\"token\":\"\",\"pubKey\":\"" ID1 "\"}") == M, "token empty");
	CHECK(OUTCOME("register", "{\"token\":5,\"pubKey\":\"" ID1 "\"}") == I, "token number");
	CHECK(OUTCOME("register", "{\"token\":[\"a\"],\"pubKey\":\"" ID1 "\"}") == I, "token array");
	CHECK(OUTCOME("register", "{\"token\":true,\"pubKey\":\"" ID1 "\"}") == I, "token bool");
	CHECK(OUTCOME("register", "{\"token\":\"a b\",\"pubKey\":\"" ID1 "\"}") == I, "token with space");
	CHECK(OUTCOME("register", "{\"token\":\"ab\\t\",\"pubKey\":\"" ID1 "\"}") == I, "token with tab");
	CHECK(OUTCOME("register", "{\"token\":\"ab\\u007f\",\"pubKey\":\"" ID1 "\"}") == I, "token with DEL");
	CHECK(OUTCOME("register", "{\"token\":\"ab\\u00e9\",\"pubKey\":\"" ID1 "\"}") == I, "token non-ASCII");
	CHECK(OUTCOME("register", "{\"token\":\"ab\\u0000cd\",\"pubKey\":\"" ID1 "\"}") == I, "token with U+0000");
	CHECK(OUTCOME("register", "{\"token\":\"\\u0000\",\"pubKey\":\"" ID1 "\"}") == I, "token only U+0000");
	CHECK(OUTCOME("register", "{\"token\":\"!~:-_\",\"pubKey\":\"" ID1 "\"}") == K, "token edge bytes");
	memset(t1024, 'x', 1024);
	t1024[1024] = '\0';
	memset(t1025, 'x', 1025);
	t1025[1025] = '\0';
	snprintf(args, sizeof args, "{\"token\":\"%s\",\"pubKey\":\"" ID1 "\"}", t1024);
	CHECK(OUTCOME("register", args) == K, "1024-byte token");
	snprintf(args, sizeof args, "{\"token\":\"%s\",\"pubKey\":\"" ID1 "\"}", t1025);
	CHECK(OUTCOME("register", args) == I, "1025-byte token");

	/* pubKey (register) */
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\"}") == M, "pubKey absent");
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":null}") == M, "pubKey null");
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":\"\"}") == M, "pubKey empty");
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":66}") == I, "pubKey number");
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":{}}") == I, "pubKey object");
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":\"05" APNS "\"}") == I, "pubKey wrong prefix");
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":\"BD" APNS "\"}") == I, "prefix case");
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":\"bd" APNS "0\"}") == I, "65 hex");
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":\"bd123\"}") == I, "short id");
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":\"bdg111111111111111111111111111111111111111111111111111111111111111\"}") == I,
	      "non-hex id");
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":\"bd111111111111111111111111111111111111111111111111111111111111111\\u0000\"}") == I,
	      "id with U+0000");
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":\"bdABCDEF1111111111111111111111111111111111111111111111111111111111\"}") == K,
	      "uppercase hex id");

	/* Order: token is decided before pubKey. */
	CHECK(OUTCOME("register", "{\"token\":\"a b\"}") == I, "bad token + no pubKey: Invalid");
	CHECK(OUTCOME("register", "{\"pubKey\":\"x\"}") == M, "no token + bad pubKey: Missing");
	CHECK(OUTCOME("register", "{}") == M, "register {}");

	/* device (optional; never an error) */
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":\"" ID1 "\",\"device\":5}") == K, "device 5");
	CHECK(OUTCOME("register", "{\"token\":\"" APNS "\",\"pubKey\":\"" ID1 "\",\"device\":\"ios\\u0000\"}") == K,
	      "device with U+0000 ignored");

	/* legacyGroupPublicKeys */
	const char *lg = "{\"token\":\"" FCM "\",\"pubKey\":\"" ID1 "\",\"legacyGroupPublicKeys\":%s}";
	const struct {
		const char *v;
		enum bchat_error e;
	} groups[] = {
		{"\"" GRP "\"", I}, {"5", I},	       {"{}", I},	    {"[5]", I},
		{"[null]", I},	    {"[\"\"]", I},     {"[\"bd12\"]", I},   {"[\"" GRP "\",\"x\"]", I},
		{"[[\"" GRP "\"]]", I}, {"[\"" GRP "\\u0000\"]", I}, {"true", I}, {"[\"" GRP "\",\"" GRP "\"]", K},
	};
	for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
		snprintf(args, sizeof args, lg, groups[i].v);
		CHECK(OUTCOME("register_legacy_groups_only", args) == groups[i].e, "groups %s", groups[i].v);
	}
	snprintf(args, sizeof args, lg, "5");
	CHECK(OUTCOME("register", args) == K, "register ignores legacyGroupPublicKeys");
	struct bchat_config two = {1, "bd", 2}, zero = {1, "bd", 0};
	snprintf(args, sizeof args, lg, "[\"" GRP "\",\"" ID2 "\"]");
	CHECK(outcome(&two, "register_legacy_groups_only", args, __LINE__) == K, "max_groups 2: two");
	snprintf(args, sizeof args, lg, "[\"" GRP "\",\"" ID2 "\",\"" ID1 "\"]");
	CHECK(outcome(&two, "register_legacy_groups_only", args, __LINE__) == I, "max_groups 2: three");
	snprintf(args, sizeof args, lg, "[\"" GRP "\"]");
	CHECK(outcome(&zero, "register_legacy_groups_only", args, __LINE__) == I, "max_groups 0: one");
	snprintf(args, sizeof args, lg, "[]");
	CHECK(outcome(&zero, "register_legacy_groups_only", args, __LINE__) == K, "max_groups 0: none");
	/* Token and pubKey come first. */
	CHECK(OUTCOME("register_legacy_groups_only", "{\"legacyGroupPublicKeys\":5}") == M, "groups after token");

	/* 4096 groups pass with the default config, 4097 do not. */
	size_t cap = 4097 * 70 + 200;
	char *many = malloc(cap), *p = many;
	p += sprintf(p, "{\"token\":\"" FCM "\",\"pubKey\":\"" ID1 "\",\"legacyGroupPublicKeys\":[");
	for (int i = 0; i < 4096; i++)
		p += sprintf(p, "%s\"" GRP "\"", i ? "," : "");
	strcpy(p, "]}");
	CHECK(OUTCOME("register_legacy_groups_only", many) == K, "4096 groups");
	strcpy(p, ",\"" GRP "\"]}");
	CHECK(OUTCOME("register_legacy_groups_only", many) == I, "4097 groups");
	free(many);

	/* unregister */
	CHECK(OUTCOME("unregister", "{}") == M, "unregister token absent");
	CHECK(OUTCOME("unregister", "{\"token\":\"\"}") == M, "unregister token empty");
	CHECK(OUTCOME("unregister", "{\"token\":1}") == I, "unregister token number");
	CHECK(OUTCOME("unregister", "{\"token\":\"a\\nb\"}") == I, "unregister token newline");
	CHECK(OUTCOME("unregister", "{\"token\":\"x\",\"pubKey\":5}") == K, "unregister ignores pubKey");

	/* subscribe / unsubscribe: closedGroupPublicKey before pubKey */
	const char *gs[] = {"subscribe_closed_group", "unsubscribe_closed_group"};
	for (int i = 0; i < 2; i++) {
		CHECK(OUTCOME(gs[i], "{\"pubKey\":\"" ID1 "\"}") == M, "%s group absent", gs[i]);
		CHECK(OUTCOME(gs[i], "{\"closedGroupPublicKey\":null,\"pubKey\":\"" ID1 "\"}") == M, "%s group null", gs[i]);
		CHECK(OUTCOME(gs[i], "{\"closedGroupPublicKey\":\"\",\"pubKey\":\"" ID1 "\"}") == M, "%s group empty", gs[i]);
		CHECK(OUTCOME(gs[i], "{\"closedGroupPublicKey\":[],\"pubKey\":\"" ID1 "\"}") == I, "%s group array", gs[i]);
		CHECK(OUTCOME(gs[i], "{\"closedGroupPublicKey\":\"05" APNS "\",\"pubKey\":\"" ID1 "\"}") == I,
		      "%s group prefix", gs[i]);
		CHECK(OUTCOME(gs[i], "{\"closedGroupPublicKey\":\"" GRP "\"}") == M, "%s pubKey absent", gs[i]);
		CHECK(OUTCOME(gs[i], "{\"closedGroupPublicKey\":\"" GRP "\",\"pubKey\":\"bd\"}") == I, "%s pubKey bad", gs[i]);
		CHECK(OUTCOME(gs[i], "{\"closedGroupPublicKey\":\"bad\"}") == I, "%s bad group + no pubKey", gs[i]);
		CHECK(OUTCOME(gs[i], "{\"pubKey\":\"bad\"}") == M, "%s no group + bad pubKey", gs[i]);
	}

	/* notify: send_to before data */
	CHECK(OUTCOME("notify", "{\"data\":\"x\"}") == M, "send_to absent");
	CHECK(OUTCOME("notify", "{\"send_to\":null,\"data\":\"x\"}") == M, "send_to null");
	CHECK(OUTCOME("notify", "{\"send_to\":\"\",\"data\":\"x\"}") == M, "send_to empty");
	CHECK(OUTCOME("notify", "{\"send_to\":5,\"data\":\"x\"}") == I, "send_to number");
	CHECK(OUTCOME("notify", "{\"send_to\":\"bd11\",\"data\":\"x\"}") == I, "send_to short");
	CHECK(OUTCOME("notify", "{\"send_to\":\"" ID1 "\"}") == M, "data absent");
	CHECK(OUTCOME("notify", "{\"send_to\":\"" ID1 "\",\"data\":null}") == M, "data null");
	CHECK(OUTCOME("notify", "{\"send_to\":\"" ID1 "\",\"data\":\"\"}") == M, "data empty");
	CHECK(OUTCOME("notify", "{\"send_to\":\"" ID1 "\",\"data\":{}}") == I, "data object");
	CHECK(OUTCOME("notify", "{\"send_to\":\"" ID1 "\",\"data\":12}") == I, "data number");
	CHECK(OUTCOME("notify", "{\"send_to\":\"" ID1 "\",\"data\":\"a\\u0000b\"}") == I, "data with U+0000");
	CHECK(OUTCOME("notify", "{\"send_to\":\"bad\"}") == I, "bad send_to + no data: Invalid");
	CHECK(OUTCOME("notify", "{\"data\":5}") == M, "no send_to + bad data: Missing");

	/* Id validation off, and another prefix. */
	struct bchat_config opaque = {0, "", BCHAT_MAX_GROUPS_DEFAULT}, sess = {1, "05", 16};
	char id256[300], id257[300];
	memset(id256, 'z', 256);
	id256[256] = '\0';
	memset(id257, 'z', 257);
	id257[257] = '\0';
	CHECK(outcome(&opaque, "notify", "{\"send_to\":\"any thing \\u00e9\",\"data\":\"x\"}", __LINE__) == K,
	      "opaque id");
	snprintf(args, sizeof args, "{\"send_to\":\"%s\",\"data\":\"x\"}", id256);
	CHECK(outcome(&opaque, "notify", args, __LINE__) == K, "opaque id of 256 bytes");
	snprintf(args, sizeof args, "{\"send_to\":\"%s\",\"data\":\"x\"}", id257);
	CHECK(outcome(&opaque, "notify", args, __LINE__) == I, "opaque id of 257 bytes");
	CHECK(outcome(&opaque, "notify", "{\"send_to\":\"a\\u0000\",\"data\":\"x\"}", __LINE__) == I,
	      "opaque id with U+0000");
	CHECK(outcome(&opaque, "notify", "{\"send_to\":\"\",\"data\":\"x\"}", __LINE__) == M, "opaque id empty");
	CHECK(outcome(&sess, "notify", "{\"send_to\":\"05" APNS "\",\"data\":\"x\"}", __LINE__) == K, "05 prefix");
	CHECK(outcome(&sess, "notify", "{\"send_to\":\"bd" APNS "\",\"data\":\"x\"}", __LINE__) == I,
	      "bd id with prefix 05");
	struct bchat_request q;
	CHECK(bchat_parse_v2(NULL, (const unsigned char *)"{\"endpoint\":\"notify\",\"body\":{\"send_to\":\"" ID1
								 "\",\"data\":\"x\"}}",
			     strlen("{\"endpoint\":\"notify\",\"body\":{\"send_to\":\"" ID1 "\",\"data\":\"x\"}}"),
			     &q) == BCHAT_OK,
	      "NULL config means the Bchat defaults");
	bchat_request_free(&q);
}

static void test_endpoint_and_request(void)
{
	struct bchat_request q;
	const char *notify_body = "{\\\"send_to\\\":\\\"" ID1 "\\\",\\\"data\\\":\\\"x\\\"}";
	char buf[512];
	const struct {
		const char *endpoint; /* raw JSON value, NULL = key absent */
		enum bchat_error e;
	} eps[] = {
		{NULL, BCHAT_INVALID_ENDPOINT},	      {"5", BCHAT_INVALID_ENDPOINT},
		{"null", BCHAT_INVALID_ENDPOINT},     {"[\"notify\"]", BCHAT_INVALID_ENDPOINT},
		{"\"\"", BCHAT_INVALID_ENDPOINT},      {"\"/\"", BCHAT_INVALID_ENDPOINT},
		{"\"foo\"", BCHAT_INVALID_ENDPOINT},   {"\"/subscribe\"", BCHAT_INVALID_ENDPOINT},
		{"\"/unsubscribe\"", BCHAT_INVALID_ENDPOINT}, {"\"//notify\"", BCHAT_INVALID_ENDPOINT},
		{"\"Notify\"", BCHAT_INVALID_ENDPOINT}, {"\"notify \"", BCHAT_INVALID_ENDPOINT},
		{"\"notify\\u0000\"", BCHAT_INVALID_ENDPOINT}, {"\"notify/\"", BCHAT_INVALID_ENDPOINT},
		{"\"notify\"", BCHAT_OK},		 {"\"/notify\"", BCHAT_OK},
		{"\"\\/notify\"", BCHAT_OK},		 {"\"\\u006eotify\"", BCHAT_OK},
	};
	for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
		if (eps[i].endpoint != NULL)
			snprintf(buf, sizeof buf, "{\"endpoint\":%s,\"body\":\"%s\"}", eps[i].endpoint, notify_body);
		else
			snprintf(buf, sizeof buf, "{\"body\":\"%s\"}", notify_body);
		CHECK(raw_v2(&cfg, buf, &q) == eps[i].e, "v2 endpoint %s", eps[i].endpoint ? eps[i].endpoint : "absent");
		bchat_request_free(&q);
		if (eps[i].endpoint != NULL) {
			char b4[600];
			int ml = snprintf(buf, sizeof buf, "{\"endpoint\":%s}", eps[i].endpoint);
			int n = snprintf(b4, sizeof b4, "l%d:%s%zu:{\"send_to\":\"" ID1 "\",\"data\":\"x\"}e", ml, buf,
					 strlen("{\"send_to\":\"" ID1 "\",\"data\":\"x\"}"));
			CHECK(bchat_parse_v4(&cfg, (const unsigned char *)b4, (size_t)n, &q) == eps[i].e,
			      "v4 endpoint %s", eps[i].endpoint);
			bchat_request_free(&q);
		}
	}
	/* The endpoint is judged before the body. */
	CHECK(raw_v2(&cfg, "{\"endpoint\":\"foo\",\"body\":\"not json\"}", &q) == BCHAT_INVALID_ENDPOINT,
	      "bad endpoint + bad body: Invalid endpoint");

	const struct {
		const char *text;
		enum bchat_error e;
		const char *why;
	} v2[] = {
		{"", BCHAT_INVALID_REQUEST, "empty plaintext"},
		{"[]", BCHAT_INVALID_REQUEST, "array plaintext"},
		{"5", BCHAT_INVALID_REQUEST, "number plaintext"},
		{"\"notify\"", BCHAT_INVALID_REQUEST, "string plaintext"},
		{"null", BCHAT_INVALID_REQUEST, "null plaintext"},
		{"{\"endpoint\":\"notify\"", BCHAT_INVALID_REQUEST, "truncated JSON"},
		{"{\"endpoint\":\"notify\"} x", BCHAT_INVALID_REQUEST, "junk after the object"},
		{"{\"endpoint\":\"notify\"}{}", BCHAT_INVALID_REQUEST, "two objects"},
		{"{\"endpoint\":\"notify\",\"x\":\"\xff\"}", BCHAT_INVALID_REQUEST, "invalid UTF-8"},
		{"{\"endpoint\":\"notify\",\"x\":\"\xed\xa0\x80\"}", BCHAT_INVALID_REQUEST, "UTF-8 surrogate"},
		{"{\"endpoint\":\"notify\",\"body\":\"not json\"}", BCHAT_INVALID_REQUEST, "body not JSON"},
		{"{\"endpoint\":\"notify\",\"body\":\"[1,2]\"}", BCHAT_INVALID_REQUEST, "body JSON array"},
		{"{\"endpoint\":\"notify\",\"body\":\"5\"}", BCHAT_INVALID_REQUEST, "body JSON number"},
		{"{\"endpoint\":\"notify\",\"body\":\"\\\"s\\\"\"}", BCHAT_INVALID_REQUEST, "body JSON string"},
		{"{\"endpoint\":\"notify\",\"body\":\"null\"}", BCHAT_INVALID_REQUEST, "body JSON null text"},
		{"{\"endpoint\":\"notify\",\"body\":\"{} x\"}", BCHAT_INVALID_REQUEST, "body junk after object"},
		{"{\"endpoint\":\"notify\",\"body\":\" \"}", BCHAT_INVALID_REQUEST, "body whitespace only"},
		{"{\"endpoint\":\"notify\",\"body\":\"{}\\u0000\"}", BCHAT_INVALID_REQUEST, "body with NUL byte"},
		{"{\"endpoint\":\"notify\",\"body\":[]}", BCHAT_INVALID_REQUEST, "body array"},
		{"{\"endpoint\":\"notify\",\"body\":5}", BCHAT_INVALID_REQUEST, "body number"},
		{"{\"endpoint\":\"notify\",\"body\":true}", BCHAT_INVALID_REQUEST, "body true"},
		{"{\"endpoint\":\"notify\"}", BCHAT_MISSING_PARAMETER, "body absent"},
		{"{\"endpoint\":\"notify\",\"body\":null}", BCHAT_MISSING_PARAMETER, "body null"},
		{"{\"endpoint\":\"notify\",\"body\":\"\"}", BCHAT_MISSING_PARAMETER, "body empty string"},
		{"{\"endpoint\":\"notify\",\"body\":\"{}\"}", BCHAT_MISSING_PARAMETER, "body {}"},
		{"{\"endpoint\":\"notify\",\"body\":{}}", BCHAT_MISSING_PARAMETER, "body object {}"},
		{" {\"endpoint\":\"unregister\",\"body\":{\"token\":\"t\"},\"n\":123456789012345678901234567890} \n",
		 BCHAT_OK, "whitespace, huge integer"},
		{"{\"endpoint\":\"notify\",\"method\":5,\"headers\":\"x\",\"body\":\"{\\\"send_to\\\":\\\"" ID1
		 "\\\",\\\"data\\\":\\\"x\\\"}\"}",
		 BCHAT_OK, "method and headers ignored"},
	};
	for (size_t i = 0; i < sizeof v2 / sizeof v2[0]; i++) {
		CHECK(raw_v2(&cfg, v2[i].text, &q) == v2[i].e, "v2 %s", v2[i].why);
		bchat_request_free(&q);
	}
	CHECK(bchat_parse_v2(&cfg, NULL, 0, &q) == BCHAT_INVALID_REQUEST, "NULL plaintext");
	CHECK(bchat_parse_v2(&cfg, (const unsigned char *)"{\"endpoint\":\"notify\"}\0", 22, &q) ==
		      BCHAT_INVALID_REQUEST,
	      "NUL byte after the object");

#define M4 "{\"endpoint\":\"/notify\"}"
#define B4 "{\"send_to\":\"" ID1 "\",\"data\":\"x\"}"
	const struct {
		const char *text;
		enum bchat_error e;
		const char *why;
	} v4[] = {
		{"l22:" M4 "91:" B4 "e", BCHAT_OK, "well formed"},
		{"l22:" M4 "e", BCHAT_MISSING_PARAMETER, "meta only"},
		{"l22:" M4 "0:e", BCHAT_MISSING_PARAMETER, "empty body element"},
		{"l22:" M4 "2:{}e", BCHAT_MISSING_PARAMETER, "body {}"},
		{"l022:" M4 "91:" B4 "e", BCHAT_INVALID_REQUEST, "leading zero (meta)"},
		{"l22:" M4 "091:" B4 "e", BCHAT_INVALID_REQUEST, "leading zero (body)"},
		{"l22:" M4 "00:e", BCHAT_INVALID_REQUEST, "length 00"},
		{"l22:" M4 "92:" B4 "e", BCHAT_INVALID_REQUEST, "length overruns"},
		{"l22:" M4 "91:" B4, BCHAT_INVALID_REQUEST, "missing e"},
		{"l22:" M4 "99999999999999999999999999:" B4 "e", BCHAT_INVALID_REQUEST, "length overflows"},
		{"l18446744073709551615:e", BCHAT_INVALID_REQUEST, "length 2^64-1"},
		{"l22:" M4 "91:" B4 "1:xe", BCHAT_INVALID_REQUEST, "three elements"},
		{"l22:" M4 "91:" B4 "ee", BCHAT_INVALID_REQUEST, "trailing e"},
		{"l22:" M4 "91:" B4 "e\n", BCHAT_INVALID_REQUEST, "trailing newline"},
		{"l22:" M4 "i5ee", BCHAT_INVALID_REQUEST, "integer element"},
		{"li5e22:" M4 "e", BCHAT_INVALID_REQUEST, "integer first"},
		{"l22:" M4 "l1:aee", BCHAT_INVALID_REQUEST, "nested list"},
		{"l22:" M4 "de" "e", BCHAT_INVALID_REQUEST, "dict element"},
		{"l-22:" M4 "e", BCHAT_INVALID_REQUEST, "negative length"},
		{"l+22:" M4 "e", BCHAT_INVALID_REQUEST, "plus sign"},
		{"l 22:" M4 "e", BCHAT_INVALID_REQUEST, "space before length"},
		{"l22" M4 "e", BCHAT_INVALID_REQUEST, "no colon"},
		{"le", BCHAT_INVALID_REQUEST, "empty list"},
		{"l", BCHAT_INVALID_REQUEST, "only l"},
		{"", BCHAT_INVALID_REQUEST, "empty"},
		{"22:" M4, BCHAT_INVALID_REQUEST, "not a list"},
		{"d8:endpoint6:notifye", BCHAT_INVALID_REQUEST, "dict"},
		{"l2:[]e", BCHAT_INVALID_REQUEST, "meta array"},
		{"l4:nulle", BCHAT_INVALID_REQUEST, "meta null"},
		{"l3:abce", BCHAT_INVALID_REQUEST, "meta not JSON"},
		{"l0:e", BCHAT_INVALID_REQUEST, "meta empty"},
		{"l2:{}e", BCHAT_INVALID_ENDPOINT, "meta without endpoint"},
		{"l22:" M4 "2:[]e", BCHAT_INVALID_REQUEST, "body array"},
		{"l22:" M4 "3:abce", BCHAT_INVALID_REQUEST, "body not JSON"},
		{"l22:" M4 "1:5e", BCHAT_INVALID_REQUEST, "body number"},
		{"l22:" M4 "2:\"\"e", BCHAT_INVALID_REQUEST, "body JSON string"},
		{"l21:{\"endpoint\":\"/notif\"}3:abce", BCHAT_INVALID_ENDPOINT, "bad endpoint before bad body"},
		{"l53:{\"endpoint\":\"/notify\",\"send_to\":\"x\",\"data\":\"y\",\"z\":1}e", BCHAT_MISSING_PARAMETER,
		 "arguments only from the body"},
	};
	for (size_t i = 0; i < sizeof v4 / sizeof v4[0]; i++) {
		CHECK(bchat_parse_v4(&cfg, (const unsigned char *)v4[i].text, strlen(v4[i].text), &q) == v4[i].e,
		      "v4 %s", v4[i].why);
		bchat_request_free(&q);
	}
	/* Every prefix of a good v4 plaintext is malformed; reading stays inside the buffer. */
	const char *good = "l22:" M4 "91:" B4 "e";
	int bad = 0;
	for (size_t n = 0; n < strlen(good); n++) {
		unsigned char *copy = malloc(n + 1);
		memcpy(copy, good, n);
		if (bchat_parse_v4(&cfg, copy, n, &q) != BCHAT_INVALID_REQUEST)
			bad++;
		bchat_request_free(&q);
		free(copy);
	}
	CHECK(bad == 0, "%d truncated v4 plaintexts not Invalid request", bad);
	CHECK(bchat_parse_v4(&cfg, NULL, 0, &q) == BCHAT_INVALID_REQUEST, "NULL v4 plaintext");
}

static void test_bencode(void)
{
	struct bencode_list l;
	size_t n;
	unsigned char *w;
	CHECK(bencode_parse_list((const unsigned char *)"l0:e", 4, &l) == 0 && l.n == 1 && l.len[0] == 0,
	      "one empty string");
	CHECK(bencode_parse_list((const unsigned char *)"l1:a2:bce", 9, &l) == 0 && l.n == 2 && l.len[0] == 1 &&
		      l.len[1] == 2 && memcmp(l.ptr[1], "bc", 2) == 0,
	      "two strings");
	CHECK(bencode_parse_list((const unsigned char *)"l3:e:ee", 7, &l) == 0 && l.n == 1 && memcmp(l.ptr[0], "e:e", 3) == 0,
	      "string holding e and :");
	CHECK(bencode_parse_list((const unsigned char *)"l10:0123456789e", 15, &l) == 0 && l.len[0] == 10,
	      "two-digit length");
	CHECK(bencode_parse_list((const unsigned char *)"l1:ae", 4, &l) == -1 && l.n == 0, "length cut");
	w = bencode_write_pair((const unsigned char *)"ab", 2, (const unsigned char *)"", 0, &n);
	CHECK(w != NULL && n == 8 && memcmp(w, "l2:ab0:e", 8) == 0, "write pair with empty body");
	free(w);
	w = bencode_write_pair((const unsigned char *)"0123456789", 10, (const unsigned char *)"x", 1, &n);
	CHECK(w != NULL && n == 18 && memcmp(w, "l10:01234567891:xe", 18) == 0, "write pair");
	CHECK(w != NULL && bencode_parse_list(w, n, &l) == 0 && l.n == 2, "written pair parses");
	free(w);
}

static void test_devices(void)
{
	char hex200[201], hex202[203];
	for (int i = 0; i < 202; i++)
		hex202[i] = "0123456789abcdef"[i % 16];
	hex202[202] = '\0';
	memcpy(hex200, hex202, 200);
	hex200[200] = '\0';
	const struct {
		const char *device, *token;
		enum bchat_device want;
	} t[] = {
		{"ios", FCM, BCHAT_DEV_IOS},
		{"android", APNS, BCHAT_DEV_ANDROID},
		{"huawei", APNS, BCHAT_DEV_HUAWEI},
		{NULL, APNS, BCHAT_DEV_IOS},
		{NULL, FCM, BCHAT_DEV_ANDROID},
		{"unknown", APNS, BCHAT_DEV_IOS},
		{"unknown", FCM, BCHAT_DEV_ANDROID},
		{"IOS", FCM, BCHAT_DEV_ANDROID},
		{"Android", APNS, BCHAT_DEV_IOS},
		{"", APNS, BCHAT_DEV_IOS},
		{NULL, "9F3C1D2E4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C3D2E1F0", BCHAT_DEV_IOS},
		{NULL, "9f3c1d2e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f", BCHAT_DEV_ANDROID}, /* 63 */
		{NULL, "9f3c1d2e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1", BCHAT_DEV_ANDROID},	 /* 62 */
		{NULL, "9f3c1d2e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0aa", BCHAT_DEV_IOS},	 /* 66 */
		{NULL, "9f3c1d2e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0a", BCHAT_DEV_ANDROID}, /* 65 */
		{NULL, "9f3c1d2e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1g0", BCHAT_DEV_ANDROID}, /* g */
		{NULL, "9f3c1d2e4b5a69788796a5b4c3d2e1f0:f1e2d3c4b5a69788796a5b4c3d2e1f0", BCHAT_DEV_ANDROID},
		{NULL, hex200, BCHAT_DEV_IOS},
		{NULL, hex202, BCHAT_DEV_ANDROID},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		enum bchat_device d = bchat_resolve_device(t[i].device, t[i].device ? strlen(t[i].device) : 0, t[i].token,
							   strlen(t[i].token));
		CHECK(d == t[i].want, "device %s / token %.10s…(%zu): got %d", t[i].device ? t[i].device : "(none)",
		      t[i].token, strlen(t[i].token), d);
	}
	CHECK(bchat_resolve_device("ios\0x", 5, FCM, strlen(FCM)) == BCHAT_DEV_ANDROID, "device compared by length");

	/* Through the parser: device null, non-string and unknown fall back to the token rule. */
	const struct {
		const char *device_json;
		const char *token;
		enum bchat_device want;
	} p[] = {
		{NULL, APNS, BCHAT_DEV_IOS},		{"null", APNS, BCHAT_DEV_IOS},
		{"\"unknown\"", APNS, BCHAT_DEV_IOS},	{"\"unknown\"", FCM, BCHAT_DEV_ANDROID},
		{"5", APNS, BCHAT_DEV_IOS},		{"\"ios\"", FCM, BCHAT_DEV_IOS},
		{"\"android\"", APNS, BCHAT_DEV_ANDROID}, {"\"huawei\"", FCM, BCHAT_DEV_HUAWEI},
		{"\"\"", FCM, BCHAT_DEV_ANDROID},	{"{\"a\":1}", APNS, BCHAT_DEV_IOS},
	};
	for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
		char args[400];
		struct bchat_request q;
		if (p[i].device_json != NULL)
			snprintf(args, sizeof args, "{\"token\":\"%s\",\"pubKey\":\"" ID1 "\",\"device\":%s}", p[i].token,
				 p[i].device_json);
		else
			snprintf(args, sizeof args, "{\"token\":\"%s\",\"pubKey\":\"" ID1 "\"}", p[i].token);
		CHECK(FORMS(&cfg, "register_legacy_groups_only", args, &q) == BCHAT_OK && q.device == p[i].want,
		      "parsed device %s", p[i].device_json ? p[i].device_json : "(absent)");
		bchat_request_free(&q);
	}
}

static void test_replies(void)
{
	const struct {
		enum bchat_error e;
		const char *product;
		const char *v2;
		const char *v4;
	} t[] = {
		{BCHAT_OK, "Bchat", "{\"status\": 200, \"body\": {\"code\": 1, \"message\": \"Success\"}}",
		 "l62:{\"code\": 200, \"headers\": {\"content-type\": \"application/json\"}}33:{\"code\": 1, \"message\": \"Success\"}e"},
		{BCHAT_MISSING_PARAMETER, "Bchat",
		 "{\"status\": 400, \"body\": {\"code\": 0, \"message\": \"Missing parameter\"}}",
		 "l62:{\"code\": 400, \"headers\": {\"content-type\": \"application/json\"}}43:{\"code\": 0, \"message\": \"Missing parameter\"}e"},
		{BCHAT_INVALID_PARAMETER, "Bchat",
		 "{\"status\": 400, \"body\": {\"code\": 0, \"message\": \"Invalid parameter\"}}",
		 "l62:{\"code\": 400, \"headers\": {\"content-type\": \"application/json\"}}43:{\"code\": 0, \"message\": \"Invalid parameter\"}e"},
		{BCHAT_INVALID_ENDPOINT, "Bchat",
		 "{\"status\": 400, \"body\": {\"code\": 0, \"message\": \"Invalid endpoint\"}}",
		 "l62:{\"code\": 400, \"headers\": {\"content-type\": \"application/json\"}}42:{\"code\": 0, \"message\": \"Invalid endpoint\"}e"},
		{BCHAT_INVALID_REQUEST, "Bchat",
		 "{\"status\": 400, \"body\": {\"code\": 0, \"message\": \"Invalid request\"}}",
		 "l62:{\"code\": 400, \"headers\": {\"content-type\": \"application/json\"}}41:{\"code\": 0, \"message\": \"Invalid request\"}e"},
		{BCHAT_SERVER_BUSY, "Bchat", "{\"status\": 400, \"body\": {\"code\": 0, \"message\": \"Server busy\"}}",
		 "l62:{\"code\": 400, \"headers\": {\"content-type\": \"application/json\"}}37:{\"code\": 0, \"message\": \"Server busy\"}e"},
		{BCHAT_NOT_REGISTERED, "Bchat",
		 "{\"status\": 200, \"body\": {\"code\": 0, \"message\": \"Bchat id was not registered before.\"}}",
		 "l62:{\"code\": 200, \"headers\": {\"content-type\": \"application/json\"}}61:{\"code\": 0, \"message\": \"Bchat id was not registered before.\"}e"},
		{BCHAT_NOT_REGISTERED, "Session",
		 "{\"status\": 200, \"body\": {\"code\": 0, \"message\": \"Session id was not registered before.\"}}",
		 "l62:{\"code\": 200, \"headers\": {\"content-type\": \"application/json\"}}63:{\"code\": 0, \"message\": \"Session id was not registered before.\"}e"},
		{BCHAT_NOT_REGISTERED, NULL,
		 "{\"status\": 200, \"body\": {\"code\": 0, \"message\": \"Bchat id was not registered before.\"}}",
		 "l62:{\"code\": 200, \"headers\": {\"content-type\": \"application/json\"}}61:{\"code\": 0, \"message\": \"Bchat id was not registered before.\"}e"},
		{BCHAT_NOT_REGISTERED, "A\"B\\",
		 "{\"status\": 200, \"body\": {\"code\": 0, \"message\": \"A\\\"B\\\\ id was not registered before.\"}}",
		 "l62:{\"code\": 200, \"headers\": {\"content-type\": \"application/json\"}}62:{\"code\": 0, \"message\": \"A\\\"B\\\\ id was not registered before.\"}e"},
		{BCHAT_GROUP_NOT_FOUND, "Session",
		 "{\"status\": 200, \"body\": {\"code\": 0, \"message\": \"Cannot find the closed group id on PN server.\"}}",
		 "l62:{\"code\": 200, \"headers\": {\"content-type\": \"application/json\"}}71:{\"code\": 0, \"message\": \"Cannot find the closed group id on PN server.\"}e"},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		size_t n2 = 0, n4 = 0;
		unsigned char *r2 = bchat_reply_v2(t[i].e, t[i].product, &n2), *r4 = bchat_reply_v4(t[i].e, t[i].product, &n4);
		CHECK(r2 != NULL && n2 == strlen(t[i].v2) && memcmp(r2, t[i].v2, n2) == 0 && r2[n2] == '\0',
		      "v2 reply %zu: %s", i, r2 != NULL ? (char *)r2 : "(null)");
		CHECK(r4 != NULL && n4 == strlen(t[i].v4) && memcmp(r4, t[i].v4, n4) == 0, "v4 reply %zu: %.*s", i,
		      (int)n4, r4 != NULL ? (char *)r4 : "");
		/* Each reply is valid JSON / bencode holding valid JSON with the same status and code. */
		json_t *j = r2 != NULL ? json_loadb((char *)r2, n2, 0, NULL) : NULL;
		CHECK(json_is_object(json_object_get(j, "body")), "v2 reply %zu: body is an object", i);
		json_decref(j);
		struct bencode_list l;
		CHECK(r4 != NULL && bencode_parse_list(r4, n4, &l) == 0 && l.n == 2, "v4 reply %zu parses", i);
		free(r2);
		free(r4);
	}
	size_t n;
	unsigned char *r = bchat_reply_v2(BCHAT_OK, "Bchat", &n);
	CHECK(n == 58, "success v2 is 58 bytes");
	free(r);
	r = bchat_reply_v4(BCHAT_OK, "Session", &n);
	CHECK(n == 103, "success v4 is 103 bytes");
	free(r);

	char *h = bchat_v2_http_body((const unsigned char *)"", 0, &n);
	CHECK(h != NULL && n == 14 && strcmp(h, "{\"result\":\"\"}\n") == 0, "empty result");
	free(h);
	h = bchat_v2_http_body((const unsigned char *)"a", 1, &n);
	CHECK(h != NULL && strcmp(h, "{\"result\":\"YQ==\"}\n") == 0 && n == strlen(h), "padded base64");
	free(h);
	h = bchat_v2_http_body((const unsigned char *)"\xfb\xff\xfe", 3, &n);
	CHECK(h != NULL && strcmp(h, "{\"result\":\"+//+\"}\n") == 0, "standard alphabet");
	free(h);

	for (int e = BCHAT_OK; e <= BCHAT_GROUP_NOT_FOUND; e++)
		CHECK(bchat_error_str((enum bchat_error)e)[0] != '\0', "error text %d", e);
}

int main(void)
{
	test_actions();
	test_app_forms();
	test_parameters();
	test_endpoint_and_request();
	test_bencode();
	test_devices();
	test_replies();
	return test_done();
}
