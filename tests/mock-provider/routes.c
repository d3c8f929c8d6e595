/*
 * routes.c: provider behaviour. Classifies each request by path (APNs /3/device/<token>, FCM
 * /v1/projects/<p>/messages:send, OAuth /token, WNS /wns/... or /?token=..., HMS
 * /v1/<app id>/messages:send with its token endpoint /oauth2/v3/token), checks
 * credentials (APNs ES256 JWTs, OAuth access tokens issued here), applies the fault script,
 * validates headers and payloads the way the real services do, fills in the answer and
 * records the request.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "mock.h"

enum { TOKEN_SLOTS = 64, JWT_CACHE_SLOTS = 16 };
enum { AUTH_OK, AUTH_MISSING, AUTH_INVALID, AUTH_EXPIRED };

static const char FCM_SCOPE[] = "https://www.googleapis.com/auth/firebase.messaging";
static const char WNS_SCOPE[] = "notify.windows.com";
static const char WNS_ENTRA_SCOPE[] = "https://wns.windows.com/.default";

struct token_slot {
	char tok[64];
	int64_t exp_ms;
	char who[128]; /* FCM: the service account (assertion iss) it was issued to */
};
static struct token_slot fcm_tokens[TOKEN_SLOTS], wns_tokens[TOKEN_SLOTS], hms_tokens[TOKEN_SLOTS];
static unsigned fcm_next, wns_next, hms_next;

/* Verified APNs JWTs: the signature and static claims only; the age is checked every time. */
struct jwt_slot {
	char *jwt;
	int valid;
	int64_t iat;
	char kid[64];
};
static struct jwt_slot jwt_cache[JWT_CACHE_SLOTS];
static unsigned jwt_next;

struct route_ctx {
	int provider;
	int fault;
	const char *reason;
	int auth_ok;
	int64_t auth_iat;
	char auth_id[128]; /* whose credentials: the APNs key id, the FCM service account */
	const struct mock_rule *rule;
};

int routes_init(void)
{
	return 0;
}

void routes_free(void)
{
	size_t i;

	for (i = 0; i < JWT_CACHE_SLOTS; i++) {
		free(jwt_cache[i].jwt);
		jwt_cache[i].jwt = NULL;
	}
}

void routes_expire_tokens(void)
{
	size_t i;

	for (i = 0; i < TOKEN_SLOTS; i++) {
		fcm_tokens[i].exp_ms = 0;
		wns_tokens[i].exp_ms = 0;
		hms_tokens[i].exp_ms = 0;
	}
}

static struct token_slot *issue_token(struct token_slot *set, unsigned *next, const char *prefix, int64_t lifetime_s,
				      char *out, size_t outlen)
{
	char hex[33];
	struct token_slot *s = &set[*next % TOKEN_SLOTS];

	mock_random_hex(hex, 16);
	snprintf(out, outlen, "%s%s", prefix, hex);
	snprintf(s->tok, sizeof s->tok, "%s", out);
	s->exp_ms = mock_now_ms() + lifetime_s * 1000;
	s->who[0] = '\0';
	(*next)++;
	return s;
}

static const struct token_slot *token_find(const struct token_slot *set, const char *tok)
{
	int64_t now = mock_now_ms();
	size_t i;

	for (i = 0; i < TOKEN_SLOTS; i++)
		if (set[i].tok[0] && set[i].exp_ms > now && strcmp(set[i].tok, tok) == 0)
			return &set[i];
	return NULL;
}

static int token_valid(const struct token_slot *set, const char *tok)
{
	return token_find(set, tok) != NULL;
}

/* The credential of "Bearer <cred>" (scheme case-insensitive), or NULL. */
static const char *bearer(const struct mock_req *r)
{
	const char *v = mock_req_header(r, "authorization");

	if (!v || strncasecmp(v, "bearer ", 7) != 0)
		return NULL;
	v += 7;
	while (*v == ' ')
		v++;
	return *v ? v : NULL;
}

/* ---- answer helpers ---- */

static void reply(struct mock_req *r, int status, const char *ctype, const char *body)
{
	r->action = MOCK_ACT_REPLY;
	r->status = status;
	mock_buf_reset(&r->rbody);
	if (body && *body) {
		mock_buf_puts(&r->rbody, body);
		if (ctype)
			mock_req_set_resp_header(r, "content-type", ctype);
	}
}

static void set_retry_headers(struct mock_req *r, const struct mock_rule *rule)
{
	if (rule && rule->retry_after)
		mock_req_set_resp_header(r, "retry-after", rule->retry_after);
}

static const char *const apns_reasons[][2] = {
	{ "BadCollapseId", "400" }, { "BadDeviceToken", "400" }, { "BadExpirationDate", "400" },
	{ "BadMessageId", "400" }, { "BadPriority", "400" }, { "BadTopic", "400" },
	{ "DeviceTokenNotForTopic", "400" }, { "DuplicateHeaders", "400" }, { "IdleTimeout", "400" },
	{ "InvalidPushType", "400" }, { "MissingDeviceToken", "400" }, { "MissingTopic", "400" },
	{ "PayloadEmpty", "400" }, { "TopicDisallowed", "400" }, { "BadCertificate", "403" },
	{ "BadCertificateEnvironment", "403" }, { "ExpiredProviderToken", "403" }, { "Forbidden", "403" },
	{ "InvalidProviderToken", "403" }, { "MissingProviderToken", "403" }, { "BadPath", "404" },
	{ "MethodNotAllowed", "405" }, { "ExpiredToken", "410" }, { "Unregistered", "410" },
	{ "PayloadTooLarge", "413" }, { "TooManyProviderTokenUpdates", "429" }, { "TooManyRequests", "429" },
	{ "InternalServerError", "500" }, { "ServiceUnavailable", "503" }, { "Shutdown", "503" },
};

static const char *const fcm_codes[][3] = {
	/* errorCode, HTTP status, default message */
	{ "UNSPECIFIED_ERROR", "400", "Unspecified error." },
	{ "INVALID_ARGUMENT", "400", "Request contains an invalid argument." },
	{ "UNREGISTERED", "404", "Requested entity was not found." },
	{ "SENDER_ID_MISMATCH", "403", "SenderId mismatch" },
	{ "QUOTA_EXCEEDED", "429", "Quota exceeded for the project." },
	{ "UNAVAILABLE", "503", "The service is currently unavailable." },
	{ "INTERNAL", "500", "Internal error encountered." },
	{ "THIRD_PARTY_AUTH_ERROR", "401", "Auth error from APNS or Web Push Service" },
};

static const char *const google_status[][3] = {
	{ "INVALID_ARGUMENT", "400", "Request contains an invalid argument." },
	{ "UNAUTHENTICATED", "401", "Request had invalid authentication credentials." },
	{ "PERMISSION_DENIED", "403", "The caller does not have permission" },
	{ "NOT_FOUND", "404", "Requested entity was not found." },
	{ "RESOURCE_EXHAUSTED", "429", "Quota exceeded." },
	{ "INTERNAL", "500", "Internal error encountered." },
	{ "UNAVAILABLE", "503", "The service is currently unavailable." },
	{ "DEADLINE_EXCEEDED", "504", "Deadline exceeded." },
};

static int reason_status(int provider, const char *reason)
{
	size_t i;

	if (provider == MOCK_P_APNS) {
		for (i = 0; i < sizeof apns_reasons / sizeof apns_reasons[0]; i++)
			if (strcmp(reason, apns_reasons[i][0]) == 0)
				return atoi(apns_reasons[i][1]);
	} else if (provider == MOCK_P_FCM) {
		for (i = 0; i < sizeof fcm_codes / sizeof fcm_codes[0]; i++)
			if (strcmp(reason, fcm_codes[i][0]) == 0)
				return atoi(fcm_codes[i][1]);
		for (i = 0; i < sizeof google_status / sizeof google_status[0]; i++)
			if (strcmp(reason, google_status[i][0]) == 0)
				return atoi(google_status[i][1]);
	}
	return 400;
}

static const char *apns_default_reason(int status)
{
	switch (status) {
	case 403: return "Forbidden";
	case 404: return "BadPath";
	case 405: return "MethodNotAllowed";
	case 410: return "Unregistered";
	case 413: return "PayloadTooLarge";
	case 429: return "TooManyRequests";
	case 500: return "InternalServerError";
	case 503: return "ServiceUnavailable";
	default: return "BadRequest";
	}
}

static void apns_error(struct mock_req *r, int status, const char *reason, int64_t ts)
{
	struct mock_buf b = { 0 };
	char id[37];
	const char *rid = mock_req_header(r, "apns-id");

	mock_buf_puts(&b, "{\"reason\":");
	mock_buf_json_str(&b, reason, strlen(reason));
	if (status == 410)
		mock_buf_printf(&b, ",\"timestamp\":%lld", (long long)(ts ? ts : mock_now_ms()));
	mock_buf_puts(&b, "}");
	reply(r, status, "application/json", b.p);
	mock_buf_free(&b);
	if (!rid || !mock_is_uuid(rid)) {
		mock_uuid(id);
		rid = id;
	}
	mock_req_set_resp_header(r, "apns-id", rid);
}

static const char *google_status_name(int http)
{
	size_t i;

	for (i = 0; i < sizeof google_status / sizeof google_status[0]; i++)
		if (atoi(google_status[i][1]) == http)
			return google_status[i][0];
	return http >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
}

/* The Google API error JSON; errcode adds an FcmError detail, field a BadRequest detail. */
static void fcm_error(struct mock_req *r, int http, const char *gstatus, const char *message,
		      const char *errcode, const char *field)
{
	struct mock_buf b = { 0 };

	mock_buf_printf(&b, "{\"error\":{\"code\":%d,\"message\":", http);
	mock_buf_json_str(&b, message, strlen(message));
	mock_buf_puts(&b, ",\"status\":");
	gstatus = gstatus ? gstatus : google_status_name(http);
	mock_buf_json_str(&b, gstatus, strlen(gstatus));
	if (errcode || field) {
		mock_buf_puts(&b, ",\"details\":[");
		if (errcode) {
			mock_buf_puts(&b, "{\"@type\":\"type.googleapis.com/google.firebase.fcm.v1.FcmError\","
					  "\"errorCode\":");
			mock_buf_json_str(&b, errcode, strlen(errcode));
			mock_buf_puts(&b, "}");
		}
		if (field) {
			mock_buf_puts(&b, errcode ? "," : "");
			mock_buf_puts(&b, "{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\","
					  "\"fieldViolations\":[{\"field\":");
			mock_buf_json_str(&b, field, strlen(field));
			mock_buf_puts(&b, ",\"description\":");
			mock_buf_json_str(&b, message, strlen(message));
			mock_buf_puts(&b, "}]}");
		}
		mock_buf_puts(&b, "]");
	}
	mock_buf_puts(&b, "}}");
	reply(r, http, "application/json; charset=UTF-8", b.p);
	mock_buf_free(&b);
}

static void oauth_error(struct mock_req *r, int status, const char *error, const char *desc)
{
	struct mock_buf b = { 0 };

	mock_buf_puts(&b, "{\"error\":");
	mock_buf_json_str(&b, error, strlen(error));
	if (desc) {
		mock_buf_puts(&b, ",\"error_description\":");
		mock_buf_json_str(&b, desc, strlen(desc));
	}
	mock_buf_puts(&b, "}");
	reply(r, status, "application/json", b.p);
	mock_buf_free(&b);
}

static void wns_answer(struct mock_req *r, int status, const char *wns_status, const char *desc)
{
	char id[17];

	reply(r, status, NULL, NULL);
	mock_random_hex(id, 8);
	for (char *p = id; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	mock_req_set_resp_header(r, "x-wns-msg-id", id);
	if (wns_status) {
		const char *rfs = mock_req_header(r, "x-wns-requestforstatus");
		mock_req_set_resp_header(r, "x-wns-status", wns_status);
		/* The device's connection status only when asked for. */
		if (rfs && strcasecmp(rfs, "true") == 0)
			mock_req_set_resp_header(r, "x-wns-deviceconnectionstatus", "connected");
	}
	if (desc)
		mock_req_set_resp_header(r, "x-wns-error-description", desc);
}

/* Push Kit answer codes: code, HTTP status, message. */
static const char *const hms_codes[][3] = {
	{ "80000000", "200", "Success" },
	{ "80100000", "200", "" }, /* partial success: msg is a JSON string */
	{ "80100003", "400", "Illegal payload" },
	{ "80200001", "401", "Oauth authentication error" },
	{ "80200003", "401", "Oauth Token expired." },
	{ "80300002", "403", "APP is forbidden to send." },
	{ "80300007", "200", "All the tokens are invalid" },
	{ "80300008", "200", "The message body size exceeds the default value" },
	{ "81000001", "500", "System inner error" },
};

/* {"code":…,"msg":…,"requestId":…}; code NULL: an empty body. */
static void hms_answer(struct mock_req *r, int status, const char *code, const char *msg)
{
	struct mock_buf b = { 0 };
	char id[25];

	if (!code) {
		reply(r, status, NULL, NULL);
		return;
	}
	mock_random_hex(id, 12);
	mock_buf_puts(&b, "{\"code\":");
	mock_buf_json_str(&b, code, strlen(code));
	mock_buf_puts(&b, ",\"msg\":");
	mock_buf_json_str(&b, msg ? msg : "", msg ? strlen(msg) : 0);
	mock_buf_printf(&b, ",\"requestId\":\"%s\"}", id);
	reply(r, status, "application/json;charset=UTF-8", b.p);
	mock_buf_free(&b);
	r->success = status == 200 && strcmp(code, "80000000") == 0;
}

/* The code's HTTP status and message (NULL when the code is not in the table). */
static const char *hms_code_info(const char *code, int *status)
{
	size_t i;

	for (i = 0; code && i < sizeof hms_codes / sizeof hms_codes[0]; i++)
		if (strcmp(code, hms_codes[i][0]) == 0) {
			*status = atoi(hms_codes[i][1]);
			return hms_codes[i][2];
		}
	return NULL;
}

/* ---- successes ---- */

static void apns_success(struct mock_req *r)
{
	char id[37];
	const char *rid = mock_req_header(r, "apns-id");

	reply(r, 200, NULL, NULL);
	if (!rid || !mock_is_uuid(rid)) {
		mock_uuid(id);
		rid = id;
	}
	mock_req_set_resp_header(r, "apns-id", rid);
	r->success = 1;
}

static void fcm_success(struct mock_req *r, const char *project, int validate_only)
{
	struct mock_buf b = { 0 };
	char hex[17];

	mock_random_hex(hex, 8);
	mock_buf_printf(&b, "{\"name\":\"projects/%s/messages/", project);
	if (validate_only)
		mock_buf_puts(&b, "fake_message_id\"}");
	else
		mock_buf_printf(&b, "0:%lld%%%s\"}", (long long)mock_now_ms(), hex);
	reply(r, 200, "application/json; charset=UTF-8", b.p);
	mock_buf_free(&b);
	r->success = 1;
}

/* ---- faults ---- */

/*
 * Looks up the fault script. Returns 1 when a rule decided the answer; 0 when no rule matched
 * or the matching rule only delays the normal answer (no status, no reason).
 */
static int apply_fault(struct mock_req *r, struct route_ctx *c, const char *token, const char *project)
{
	static const char *const action_reason[] = { "", "goaway", "reset", "drop", "silent" };
	const struct mock_rule *rule = faults_match(c->provider, token);
	const char *reason;
	int status;
	size_t i;

	if (!rule)
		return 0;
	c->rule = rule;
	c->fault = 1;
	if (rule->action != MOCK_ACT_REPLY) {
		r->action = rule->action;
		r->rst_code = rule->error_code;
		c->reason = rule->reason ? rule->reason : action_reason[rule->action];
		if (rule->debug) {
			mock_buf_puts(&r->goaway_data, rule->debug);
		} else if (rule->reason) {
			mock_buf_puts(&r->goaway_data, "{\"reason\":");
			mock_buf_json_str(&r->goaway_data, rule->reason, strlen(rule->reason));
			mock_buf_puts(&r->goaway_data, "}");
		}
		return 1;
	}
	if (!rule->status && !rule->reason)
		return 0;
	reason = rule->reason;
	status = rule->status ? rule->status : reason_status(c->provider, reason);
	c->reason = reason ? reason : "";
	switch (c->provider) {
	case MOCK_P_APNS:
		if (status == 200) {
			apns_success(r);
		} else {
			if (!reason)
				reason = apns_default_reason(status);
			apns_error(r, status, reason, rule->timestamp);
			c->reason = reason;
		}
		break;
	case MOCK_P_FCM:
		if (status == 200) {
			fcm_success(r, project ? project : "unknown", 0);
		} else {
			const char *code = NULL, *gst = NULL, *msg = NULL;
			for (i = 0; reason && i < sizeof fcm_codes / sizeof fcm_codes[0]; i++)
				if (strcmp(reason, fcm_codes[i][0]) == 0)
					code = reason, msg = fcm_codes[i][2];
			for (i = 0; reason && !code && i < sizeof google_status / sizeof google_status[0]; i++)
				if (strcmp(reason, google_status[i][0]) == 0)
					gst = reason, msg = google_status[i][2];
			if (code && strcmp(code, "INVALID_ARGUMENT") == 0 && rule->field &&
			    strcmp(rule->field, "message.token") == 0)
				msg = "The registration token is not a valid FCM registration token";
			if (rule->message)
				msg = rule->message;
			if (!msg)
				msg = status == 401 ? "Request had invalid authentication credentials." : "Request failed.";
			fcm_error(r, status, gst, msg, code, rule->field);
		}
		break;
	case MOCK_P_OAUTH:
		if (status == 200)
			return 0; /* a 200 rule: issue a token as usual */
		oauth_error(r, status, reason ? reason : status >= 500 ? "internal_failure" : "invalid_grant",
			    rule->message);
		break;
	case MOCK_P_WNS:
		if (status == 200) {
			wns_answer(r, 200, reason ? reason : "received", NULL);
			r->success = 1;
		} else {
			wns_answer(r, status, NULL, rule->message);
		}
		if (rule->continue_after)
			mock_req_set_resp_header(r, "x-wns-continue-after", rule->continue_after);
		break;
	case MOCK_P_HMS: {
		const char *code = reason, *msg;
		char partial[700];
		if (!code)
			code = status == 200 ? "80000000" : status == 401 ? "80200003" : status == 403 ? "80300002"
			     : status == 500 ? "81000001" : NULL;
		msg = hms_code_info(code, &status);
		status = rule->status ? rule->status : code && msg ? status : 400;
		if (code && strcmp(code, "80100000") == 0 && !rule->message) {
			/* by default the request's token is the illegal one */
			struct mock_buf t = { 0 };
			mock_buf_json_str(&t, token ? token : "", token ? strlen(token) : 0);
			snprintf(partial, sizeof partial, "{\"success\":0,\"failure\":1,\"illegal_tokens\":[%.600s]}",
				 t.p ? t.p : "\"\"");
			mock_buf_free(&t);
			msg = partial;
		}
		if (rule->message)
			msg = rule->message;
		hms_answer(r, status, code, msg ? msg : "unknown");
		c->reason = code ? code : "";
		break;
	}
	default:
		reply(r, status, NULL, NULL);
		break;
	}
	set_retry_headers(r, rule);
	return 1;
}

/* ---- APNs ---- */

static int apns_auth(struct mock_req *r, struct route_ctx *c)
{
	const char *v = mock_req_header(r, "authorization"), *jwt, *err;
	struct jwt_slot *s = NULL;
	json_t *h, *cl, *x;
	int64_t now;
	size_t i;

	if (!mock_cfg.apns_key) {
		c->auth_ok = v != NULL;
		return AUTH_OK;
	}
	if (!v)
		return AUTH_MISSING;
	jwt = bearer(r);
	if (!jwt)
		return AUTH_INVALID;
	for (i = 0; i < JWT_CACHE_SLOTS; i++)
		if (jwt_cache[i].jwt && strcmp(jwt_cache[i].jwt, jwt) == 0)
			s = &jwt_cache[i];
	if (!s) {
		s = &jwt_cache[jwt_next++ % JWT_CACHE_SLOTS];
		free(s->jwt);
		s->jwt = strdup(jwt);
		s->valid = 0;
		s->iat = 0;
		s->kid[0] = '\0';
		/* The key named by --apns-kid, or one of --apns-extra-key KID=FILE (several apps). */
		const char *want_kid = mock_cfg.apns_kid;
		int ok = jwt_verify(jwt, "ES256", mock_cfg.apns_key, &h, &cl, &err) == 0;
		for (i = 0; !ok && i < mock_cfg.napns_extra; i++)
			if (jwt_verify(jwt, "ES256", mock_cfg.apns_extra_key[i], &h, &cl, &err) == 0) {
				ok = 1;
				want_kid = mock_cfg.apns_extra_kid[i];
			}
		if (ok) {
			x = json_object_get(h, "kid");
			s->valid = json_is_string(x) && (!want_kid || strcmp(json_string_value(x), want_kid) == 0);
			if (json_is_string(x))
				snprintf(s->kid, sizeof s->kid, "%s", json_string_value(x));
			x = json_object_get(cl, "iss");
			s->valid &= json_is_string(x) && (!mock_cfg.apns_team || strcmp(json_string_value(x), mock_cfg.apns_team) == 0);
			x = json_object_get(cl, "iat");
			s->valid &= json_is_integer(x);
			s->iat = json_is_integer(x) ? json_integer_value(x) : 0;
			json_decref(h);
			json_decref(cl);
		}
	}
	c->auth_iat = s->iat;
	snprintf(c->auth_id, sizeof c->auth_id, "%s", s->kid);
	if (!s->valid)
		return AUTH_INVALID;
	now = mock_now_ms() / 1000;
	if (s->iat > now + 60)
		return AUTH_INVALID;
	if (now - s->iat > 3600)
		return AUTH_EXPIRED;
	c->auth_ok = 1;
	return AUTH_OK;
}

static int apns_headers_duplicated(const struct mock_req *r)
{
	size_t i, j;

	for (i = 0; i < r->nhdrs; i++) {
		if (strncmp(r->hdrs[i].name, "apns-", 5) != 0 && strcmp(r->hdrs[i].name, "authorization") != 0)
			continue;
		for (j = i + 1; j < r->nhdrs; j++)
			if (strcmp(r->hdrs[i].name, r->hdrs[j].name) == 0)
				return 1;
	}
	return 0;
}

static void apns_route(struct mock_req *r, struct route_ctx *c, const char *path)
{
	static const char *const push_types[] = { "alert", "background", "location", "voip", "complication",
						  "fileprovider", "mdm", "liveactivity", "pushtotalk" };
	char token[512];
	const char *q, *v, *type, *topic;
	size_t tlen, i;
	int auth, prio = 10, known;
	size_t limit = 4096;
	json_t *body;

	if (strncmp(path, "/3/device/", 10) != 0) {
		if (apply_fault(r, c, NULL, NULL) == 0)
			apns_error(r, 404, c->reason = "BadPath", 0);
		return;
	}
	q = path + 10;
	tlen = strcspn(q, "?/");
	snprintf(token, sizeof token, "%.*s", (int)(tlen < sizeof token ? tlen : sizeof token - 1), q);
	auth = apns_auth(r, c);
	if (apply_fault(r, c, token, NULL))
		return;
	if (strcmp(r->method, "POST") != 0) {
		apns_error(r, 405, c->reason = "MethodNotAllowed", 0);
		return;
	}
	if (q[tlen] == '/') {
		apns_error(r, 404, c->reason = "BadPath", 0);
		return;
	}
	if (!token[0]) {
		apns_error(r, 400, c->reason = "MissingDeviceToken", 0);
		return;
	}
	if (auth != AUTH_OK) {
		c->reason = auth == AUTH_MISSING ? "MissingProviderToken" :
			    auth == AUTH_EXPIRED ? "ExpiredProviderToken" : "InvalidProviderToken";
		apns_error(r, 403, c->reason, 0);
		return;
	}
	if (apns_headers_duplicated(r)) {
		apns_error(r, 400, c->reason = "DuplicateHeaders", 0);
		return;
	}
	topic = mock_req_header(r, "apns-topic");
	if (!topic || !*topic) {
		apns_error(r, 400, c->reason = "MissingTopic", 0);
		return;
	}
	type = mock_req_header(r, "apns-push-type");
	if (type) {
		for (i = 0, known = 0; i < sizeof push_types / sizeof push_types[0]; i++)
			known |= strcmp(type, push_types[i]) == 0;
		if (!known) {
			apns_error(r, 400, c->reason = "InvalidPushType", 0);
			return;
		}
		if (strcmp(type, "voip") == 0)
			limit = 5120;
	}
	v = mock_req_header(r, "apns-priority");
	if (v) {
		if (strcmp(v, "10") != 0 && strcmp(v, "5") != 0 && strcmp(v, "1") != 0) {
			apns_error(r, 400, c->reason = "BadPriority", 0);
			return;
		}
		prio = atoi(v);
	}
	if (type && strcmp(type, "background") == 0 && prio == 10) {
		apns_error(r, 400, c->reason = "BadPriority", 0);
		return;
	}
	v = mock_req_header(r, "apns-id");
	if (v && !mock_is_uuid(v)) {
		apns_error(r, 400, c->reason = "BadMessageId", 0);
		return;
	}
	v = mock_req_header(r, "apns-collapse-id");
	if (v && strlen(v) > 64) {
		apns_error(r, 400, c->reason = "BadCollapseId", 0);
		return;
	}
	v = mock_req_header(r, "apns-expiration");
	if (v && (!*v || strspn(v, "0123456789") != strlen(v))) {
		apns_error(r, 400, c->reason = "BadExpirationDate", 0);
		return;
	}
	if (r->body.len == 0) {
		apns_error(r, 400, c->reason = "PayloadEmpty", 0);
		return;
	}
	if (r->body.len > limit || r->body_overflow) {
		apns_error(r, 413, c->reason = "PayloadTooLarge", 0);
		return;
	}
	body = json_loadb(r->body.p, r->body.len, 0, NULL);
	if (!json_is_object(body)) {
		json_decref(body);
		apns_error(r, 400, c->reason = "PayloadEmpty", 0);
		return;
	}
	json_decref(body);
	apns_success(r);
}

/* ---- FCM ---- */

static int fcm_check_data(json_t *data, char *msg, size_t msglen, char *field, size_t fieldlen)
{
	const char *k;
	json_t *v;
	size_t idx = 0, total = 0;
	char *dump;

	if (!json_is_object(data)) {
		snprintf(msg, msglen, "Invalid value at 'message.data' (type.googleapis.com/google.firebase.fcm.v1.Message.DataEntry)");
		snprintf(field, fieldlen, "message.data");
		return -1;
	}
	json_object_foreach(data, k, v) {
		if (!json_is_string(v)) {
			dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
			snprintf(msg, msglen, "Invalid value at 'message.data[%zu].value' (TYPE_STRING), %s", idx,
				 dump ? dump : "?");
			free(dump);
			snprintf(field, fieldlen, "message.data[%zu].value", idx);
			return -1;
		}
		if (strcmp(k, "from") == 0 || strcmp(k, "message_type") == 0 || strncmp(k, "google.", 7) == 0 ||
		    strncmp(k, "gcm.", 4) == 0) {
			snprintf(msg, msglen, "Invalid data payload key: %s", k);
			snprintf(field, fieldlen, "message.data");
			return -1;
		}
		total += strlen(k) + json_string_length(v);
		idx++;
	}
	if (total > 4096) {
		snprintf(msg, msglen, "Android message is too big");
		snprintf(field, fieldlen, "message");
		return -1;
	}
	return 0;
}

static int fcm_check_android(json_t *a, char *msg, size_t msglen, char *field, size_t fieldlen)
{
	json_t *v;
	const char *s;
	double secs;
	char *end;

	if (!json_is_object(a)) {
		snprintf(msg, msglen, "Invalid value at 'message.android'");
		snprintf(field, fieldlen, "message.android");
		return -1;
	}
	v = json_object_get(a, "priority");
	if (v) {
		s = json_is_string(v) ? json_string_value(v) : "";
		if (strcmp(s, "HIGH") && strcmp(s, "NORMAL") && strcmp(s, "high") && strcmp(s, "normal")) {
			snprintf(msg, msglen, "Invalid value at 'message.android.priority' "
					      "(type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), \"%.64s\"", s);
			snprintf(field, fieldlen, "message.android.priority");
			return -1;
		}
	}
	v = json_object_get(a, "ttl");
	if (v) {
		s = json_is_string(v) ? json_string_value(v) : "";
		secs = strtod(s, &end);
		if (!*s || !isdigit((unsigned char)*s) || strcmp(end, "s") != 0 || secs < 0 || secs > 2419200) {
			snprintf(msg, msglen, "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), \"%.64s\"", s);
			snprintf(field, fieldlen, "message.android.ttl");
			return -1;
		}
	}
	v = json_object_get(a, "collapse_key");
	if (v && !json_is_string(v)) {
		snprintf(msg, msglen, "Invalid value at 'message.android.collapse_key' (TYPE_STRING)");
		snprintf(field, fieldlen, "message.android.collapse_key");
		return -1;
	}
	return 0;
}

/* 0 when the send body is valid; else msg (and field, possibly empty) describe the problem. */
static int fcm_validate(json_t *root, char *msg, size_t msglen, char *field, size_t fieldlen)
{
	static const char *const msg_keys[] = { "name", "data", "notification", "android", "webpush", "apns",
						"fcm_options", "token", "topic", "condition" };
	const char *k;
	json_t *v, *m;
	size_t i;
	int ok;

	field[0] = '\0';
	if (!json_is_object(root)) {
		snprintf(msg, msglen, "Invalid JSON payload received.");
		return -1;
	}
	json_object_foreach(root, k, v) {
		if (strcmp(k, "message") && strcmp(k, "validate_only")) {
			snprintf(msg, msglen, "Invalid JSON payload received. Unknown name \"%.64s\": Cannot find field.", k);
			return -1;
		}
	}
	m = json_object_get(root, "message");
	if (!json_is_object(m)) {
		snprintf(msg, msglen, "Request contains an invalid argument.");
		snprintf(field, fieldlen, "message");
		return -1;
	}
	json_object_foreach(m, k, v) {
		for (i = 0, ok = 0; i < sizeof msg_keys / sizeof msg_keys[0]; i++)
			ok |= strcmp(k, msg_keys[i]) == 0;
		if (!ok) {
			snprintf(msg, msglen, "Invalid JSON payload received. Unknown name \"%.64s\" at 'message': Cannot find field.", k);
			snprintf(field, fieldlen, "message");
			return -1;
		}
	}
	v = json_object_get(m, "token");
	if (!json_is_string(v) || json_string_length(v) == 0) {
		snprintf(msg, msglen, "Recipient of the message is not set.");
		return -1;
	}
	v = json_object_get(m, "data");
	if (v && fcm_check_data(v, msg, msglen, field, fieldlen) < 0)
		return -1;
	v = json_object_get(m, "android");
	if (v && fcm_check_android(v, msg, msglen, field, fieldlen) < 0)
		return -1;
	return 0;
}

/* One of the projects given after the first --fcm-project (several apps). */
static int fcm_project_extra(const char *project)
{
	for (size_t i = 0; i < mock_cfg.nfcm_projects; i++)
		if (strcmp(project, mock_cfg.fcm_projects[i]) == 0)
			return 1;
	return 0;
}

static void fcm_route(struct mock_req *r, struct route_ctx *c, const char *path)
{
	char project[256], msg[512], field[128];
	const char *p = strncmp(path, "/v1/projects/", 13) == 0 ? path + 13 : "", *tok, *token = NULL;
	size_t plen = strcspn(p, "/?");
	json_t *root = NULL, *m, *t;
	int validate_only;

	/* path = /v1/projects/<project>/messages:send */
	snprintf(project, sizeof project, "%.*s", (int)(plen < sizeof project ? plen : sizeof project - 1), p);
	tok = bearer(r);
	{
		const struct token_slot *ts = tok ? token_find(fcm_tokens, tok) : NULL;
		c->auth_ok = ts != NULL;
		if (ts)
			snprintf(c->auth_id, sizeof c->auth_id, "%s", ts->who);
	}
	if (r->body.len && !r->body_overflow)
		root = json_loadb(r->body.p, r->body.len, 0, NULL);
	m = json_object_get(root, "message");
	t = json_object_get(m, "token");
	if (json_is_string(t))
		token = json_string_value(t);
	if (apply_fault(r, c, token, project))
		goto out;
	if (!plen || strcmp(p + plen, "/messages:send") != 0 ||
	    strcmp(r->method, "POST") != 0) {
		fcm_error(r, 404, "NOT_FOUND", "Requested entity was not found.", NULL, NULL);
		c->reason = "NOT_FOUND";
		goto out;
	}
	if (!c->auth_ok) {
		fcm_error(r, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", NULL, NULL);
		c->reason = "UNAUTHENTICATED";
		goto out;
	}
	if (mock_cfg.fcm_project && strcmp(project, mock_cfg.fcm_project) != 0 && !fcm_project_extra(project)) {
		fcm_error(r, 404, "NOT_FOUND", "Requested entity was not found.", NULL, NULL);
		c->reason = "NOT_FOUND";
		goto out;
	}
	if (r->body_overflow) {
		fcm_error(r, 400, NULL, "Request payload size exceeds the limit.", "INVALID_ARGUMENT", NULL);
		c->reason = "INVALID_ARGUMENT";
		goto out;
	}
	if (fcm_validate(root, msg, sizeof msg, field, sizeof field) < 0) {
		fcm_error(r, 400, NULL, msg, "INVALID_ARGUMENT", field[0] ? field : NULL);
		c->reason = "INVALID_ARGUMENT";
		goto out;
	}
	validate_only = json_is_true(json_object_get(root, "validate_only"));
	fcm_success(r, project, validate_only);
out:
	json_decref(root);
}

/* ---- OAuth token endpoint ---- */

struct form {
	struct mock_buf grant_type, assertion, client_id, client_secret, scope;
};

static int form_parse(const char *s, size_t len, struct form *f)
{
	struct mock_buf key = { 0 }, val = { 0 }, *dst;
	const char *end = s + len, *amp, *eq;
	int rc = 0;

	while (s < end) {
		amp = memchr(s, '&', (size_t)(end - s));
		if (!amp)
			amp = end;
		eq = memchr(s, '=', (size_t)(amp - s));
		if (!eq)
			eq = amp;
		if (mock_url_decode(s, (size_t)(eq - s), &key) < 0 ||
		    mock_url_decode(eq < amp ? eq + 1 : amp, eq < amp ? (size_t)(amp - eq - 1) : 0, &val) < 0) {
			rc = -1;
			break;
		}
		dst = NULL;
		if (key.p && strcmp(key.p, "grant_type") == 0)
			dst = &f->grant_type;
		else if (key.p && strcmp(key.p, "assertion") == 0)
			dst = &f->assertion;
		else if (key.p && strcmp(key.p, "client_id") == 0)
			dst = &f->client_id;
		else if (key.p && strcmp(key.p, "client_secret") == 0)
			dst = &f->client_secret;
		else if (key.p && strcmp(key.p, "scope") == 0)
			dst = &f->scope;
		if (dst) {
			mock_buf_reset(dst);
			mock_buf_append(dst, val.p ? val.p : "", val.len);
		}
		s = amp + 1;
	}
	mock_buf_free(&key);
	mock_buf_free(&val);
	return rc;
}

static void form_free(struct form *f)
{
	mock_buf_free(&f->grant_type);
	mock_buf_free(&f->assertion);
	mock_buf_free(&f->client_id);
	mock_buf_free(&f->client_secret);
	mock_buf_free(&f->scope);
}

static int scope_has(const char *scopes, const char *want)
{
	size_t wl = strlen(want);
	const char *p = scopes;

	while (*p) {
		size_t l = strcspn(p, " ");
		if (l == wl && strncmp(p, want, wl) == 0)
			return 1;
		p += l;
		while (*p == ' ')
			p++;
	}
	return 0;
}

/* Checks an FCM service-account assertion (against --fcm-key or an --fcm-extra-key); NULL when
 * good, else the error description. who (may be NULL) receives its iss. */
static const char *fcm_assertion_problem(const char *assertion, char *who, size_t wholen)
{
	json_t *h = NULL, *cl = NULL, *iss, *scope, *aud, *iat, *exp;
	const char *err = NULL, *problem = NULL;
	int64_t now = mock_now_ms() / 1000, i, e;
	int ok = jwt_verify(assertion, "RS256", mock_cfg.fcm_key, &h, &cl, &err) == 0;

	for (size_t k = 0; !ok && k < mock_cfg.nfcm_extra; k++)
		ok = jwt_verify(assertion, "RS256", mock_cfg.fcm_extra_key[k], &h, &cl, &err) == 0;
	if (!ok)
		return strcmp(err, "bad JWT signature") == 0 ? "Invalid JWT Signature." : "Invalid JWT: malformed assertion.";
	iss = json_object_get(cl, "iss");
	if (who && json_is_string(iss))
		snprintf(who, wholen, "%s", json_string_value(iss));
	scope = json_object_get(cl, "scope");
	aud = json_object_get(cl, "aud");
	iat = json_object_get(cl, "iat");
	exp = json_object_get(cl, "exp");
	if (!json_is_string(iss) || !json_string_length(iss)) {
		problem = "Invalid grant: account not found";
	} else if (!json_is_string(scope) || !scope_has(json_string_value(scope), FCM_SCOPE)) {
		problem = "Invalid JWT: scope must include https://www.googleapis.com/auth/firebase.messaging.";
	} else if (!json_is_string(aud) || !json_string_length(aud)) {
		problem = "Invalid JWT: No audience claim.";
	} else if (!json_is_integer(iat) || !json_is_integer(exp)) {
		problem = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
			  "Check your iat and exp values in the JWT claim.";
	} else {
		i = json_integer_value(iat);
		e = json_integer_value(exp);
		if (e <= i || e - i > 3600 || e <= now || i > now + 60)
			problem = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
				  "timeframe. Check your iat and exp values in the JWT claim.";
	}
	json_decref(h);
	json_decref(cl);
	return problem;
}

static int form_typed(const struct mock_req *r)
{
	const char *v = mock_req_header(r, "content-type");
	static const char want[] = "application/x-www-form-urlencoded";

	return v && strncasecmp(v, want, sizeof want - 1) == 0 && (v[sizeof want - 1] == '\0' || v[sizeof want - 1] == ';');
}

/* Huawei's token endpoint: client credentials (the App ID and App Secret), no scope. */
static void hms_token_route(struct mock_req *r, struct route_ctx *c, const struct form *f)
{
	struct mock_buf b = { 0 };
	char tok[64];
	int cc = f->grant_type.p && strcmp(f->grant_type.p, "client_credentials") == 0;

	c->auth_ok = cc && f->client_id.p && f->client_secret.p &&
		     (!mock_cfg.hms_app_id || strcmp(f->client_id.p, mock_cfg.hms_app_id) == 0) &&
		     (!mock_cfg.hms_app_secret || strcmp(f->client_secret.p, mock_cfg.hms_app_secret) == 0);
	if (apply_fault(r, c, "hms", NULL))
		return;
	if (strcmp(r->method, "POST") != 0) {
		oauth_error(r, 405, c->reason = "invalid_request", "POST required");
		return;
	}
	if (!form_typed(r)) {
		oauth_error(r, 400, c->reason = "invalid_request", "Content-Type must be application/x-www-form-urlencoded");
		return;
	}
	if (!cc) {
		oauth_error(r, 400, c->reason = "unsupported_grant_type", NULL);
		return;
	}
	if (!c->auth_ok) {
		oauth_error(r, 400, c->reason = "invalid_client", "client id or secret is wrong");
		return;
	}
	issue_token(hms_tokens, &hms_next, "hms-mock-", faults_wns_token_lifetime(3600), tok, sizeof tok);
	mock_buf_printf(&b, "{\"access_token\":\"%s\",\"expires_in\":%lld,\"token_type\":\"Bearer\"}", tok,
			(long long)faults_wns_token_lifetime(3600));
	reply(r, 200, "application/json", b.p);
	mock_buf_free(&b);
}

static void oauth_route(struct mock_req *r, struct route_ctx *c)
{
	struct form f;
	struct mock_buf b = { 0 };
	const char *flow, *problem;
	char tok[64], exp[48];
	int jwt_flow, cc_flow, entra, exp_mode;
	int64_t now, lifetime;

	memset(&f, 0, sizeof f);
	form_parse(r->body.p ? r->body.p : "", r->body.len, &f);
	jwt_flow = f.grant_type.p && strcmp(f.grant_type.p, "urn:ietf:params:oauth:grant-type:jwt-bearer") == 0;
	cc_flow = f.grant_type.p && strcmp(f.grant_type.p, "client_credentials") == 0;
	if (strncmp(r->path, "/oauth2/v3/token", 16) == 0 && strchr("?", r->path[16])) {
		hms_token_route(r, c, &f);
		form_free(&f);
		return;
	}
	flow = jwt_flow ? "fcm" : cc_flow ? "wns" : f.grant_type.p ? f.grant_type.p : "";
	if (jwt_flow)
		c->auth_ok = f.assertion.p && fcm_assertion_problem(f.assertion.p, c->auth_id, sizeof c->auth_id) == NULL;
	else if (cc_flow)
		c->auth_ok = !mock_cfg.wns_client_id ||
			     (f.client_id.p && f.client_secret.p && strcmp(f.client_id.p, mock_cfg.wns_client_id) == 0 &&
			      strcmp(f.client_secret.p, mock_cfg.wns_client_secret ? mock_cfg.wns_client_secret : "") == 0);
	if (apply_fault(r, c, flow, NULL))
		goto out;
	if (strcmp(r->method, "POST") != 0) {
		oauth_error(r, 405, c->reason = "invalid_request", "POST required");
		goto out;
	}
	if (cc_flow && !form_typed(r)) {
		oauth_error(r, 400, c->reason = "invalid_request",
			    "Content-Type must be application/x-www-form-urlencoded");
		goto out;
	}
	if (jwt_flow) {
		problem = f.assertion.p ? fcm_assertion_problem(f.assertion.p, NULL, 0) : "Missing required parameter: assertion";
		if (problem) {
			oauth_error(r, 400, c->reason = "invalid_grant", problem);
			goto out;
		}
		snprintf(issue_token(fcm_tokens, &fcm_next, "ya29.mock-", 3599, tok, sizeof tok)->who, sizeof fcm_tokens[0].who,
			 "%s", c->auth_id);
		mock_buf_printf(&b, "{\"access_token\":\"%s\",\"expires_in\":3599,\"token_type\":\"Bearer\"}", tok);
		reply(r, 200, "application/json; charset=utf-8", b.p);
	} else if (cc_flow) {
		if (!c->auth_ok) {
			oauth_error(r, 400, c->reason = "invalid_client", NULL);
			goto out;
		}
		entra = f.scope.p && strcmp(f.scope.p, WNS_ENTRA_SCOPE) == 0;
		if (!entra && (!f.scope.p || strcmp(f.scope.p, WNS_SCOPE) != 0)) {
			oauth_error(r, 400, c->reason = "invalid_scope", NULL);
			goto out;
		}
		lifetime = faults_wns_token_lifetime(entra ? 86399 : 86400);
		issue_token(wns_tokens, &wns_next, "wns-mock-", lifetime, tok, sizeof tok);
		now = mock_now_ms() / 1000;
		exp_mode = faults_wns_expires_in();
		if (exp_mode == MOCK_EXP_FLOW)
			exp_mode = entra ? MOCK_EXP_STRING : MOCK_EXP_NUMBER;
		if (exp_mode == MOCK_EXP_NUMBER)
			snprintf(exp, sizeof exp, ",\"expires_in\":%lld", (long long)lifetime);
		else if (exp_mode == MOCK_EXP_STRING)
			snprintf(exp, sizeof exp, ",\"expires_in\":\"%lld\"", (long long)lifetime);
		else
			exp[0] = '\0';
		if (entra)
			mock_buf_printf(&b, "{\"token_type\":\"Bearer\"%s,\"ext_expires_in\":\"%lld\","
					"\"expires_on\":\"%lld\",\"not_before\":\"%lld\",\"access_token\":\"%s\"}",
					exp, (long long)lifetime, (long long)(now + lifetime), (long long)now, tok);
		else
			mock_buf_printf(&b, "{\"access_token\":\"%s\",\"token_type\":\"bearer\"%s}", tok, exp);
		reply(r, 200, "application/json", b.p);
	} else {
		oauth_error(r, 400, c->reason = "unsupported_grant_type", NULL);
	}
out:
	mock_buf_free(&b);
	form_free(&f);
}

/* ---- WNS ---- */

/* "", or why the request's framing is not what WNS takes: a Content-Length equal to the body
 * (no chunked encoding) and no "Expect: 100-continue". */
static const char *wns_framing_problem(const struct mock_req *r, int *status)
{
	const char *cl = mock_req_header(r, "content-length"), *ex = mock_req_header(r, "expect");
	char *end;
	unsigned long long n;

	*status = 400;
	if (mock_req_header(r, "transfer-encoding"))
		return "chunked transfer encoding not supported";
	if (ex && *ex) {
		*status = 417;
		return "Expect not supported";
	}
	if (!cl || !*cl) {
		*status = 411;
		return "Content-Length required";
	}
	n = strtoull(cl, &end, 10);
	if (*end || !isdigit((unsigned char)*cl) || n != r->body.len)
		return "Content-Length does not match the body";
	return "";
}

/* "", or which optional X-WNS-* header has a value WNS refuses. */
static const char *wns_option_problem(const struct mock_req *r)
{
	const char *v;

	v = mock_req_header(r, "x-wns-requestforstatus");
	if (v && strcasecmp(v, "true") != 0 && strcasecmp(v, "false") != 0)
		return "X-WNS-RequestForStatus must be true or false";
	v = mock_req_header(r, "x-wns-cache-policy");
	if (v && strcasecmp(v, "cache") != 0 && strcasecmp(v, "no-cache") != 0)
		return "X-WNS-Cache-Policy must be cache or no-cache";
	v = mock_req_header(r, "x-wns-ttl");
	if (v && (!*v || strspn(v, "0123456789") != strlen(v)))
		return "X-WNS-TTL must be a number of seconds";
	return "";
}

static void wns_route(struct mock_req *r, struct route_ctx *c)
{
	const char *tok = bearer(r), *v;
	int status;

	c->auth_ok = tok && token_valid(wns_tokens, tok);
	if (apply_fault(r, c, r->path, NULL))
		return;
	if (strcmp(r->method, "POST") != 0) {
		wns_answer(r, 405, NULL, "method not allowed");
		c->reason = "method not allowed";
		return;
	}
	if (*(v = wns_framing_problem(r, &status))) {
		wns_answer(r, status, NULL, v);
		c->reason = v;
		return;
	}
	if (!c->auth_ok) {
		wns_answer(r, 401, NULL, "invalid or expired token");
		c->reason = "invalid or expired token";
		return;
	}
	v = mock_req_header(r, "x-wns-type");
	if (!v || strcmp(v, "wns/raw") != 0 || mock_req_header_count(r, "x-wns-type") > 1) {
		wns_answer(r, 400, NULL, "X-WNS-Type must be wns/raw");
		c->reason = "bad X-WNS-Type";
		return;
	}
	v = mock_req_header(r, "content-type");
	if (!v || strcasecmp(v, "application/octet-stream") != 0) {
		wns_answer(r, 400, NULL, "Content-Type must be application/octet-stream");
		c->reason = "bad Content-Type";
		return;
	}
	if (*(v = wns_option_problem(r))) {
		wns_answer(r, 400, NULL, v);
		c->reason = v;
		return;
	}
	if (r->body.len == 0) {
		wns_answer(r, 400, NULL, "empty body");
		c->reason = "empty body";
		return;
	}
	if (r->body.len > 5000 || r->body_overflow) {
		wns_answer(r, 413, NULL, "payload too large");
		c->reason = "payload too large";
		return;
	}
	wns_answer(r, 200, "received", NULL);
	r->success = 1;
}

/* ---- HMS ---- */

/* 0 when the messages:send body is one Push Kit takes; else why not in msg, and *too_large
 * when only the message's size is at fault. */
static int hms_validate(json_t *root, char *msg, size_t msglen, int *too_large)
{
	const char *k, *u;
	json_t *v, *m, *t, *copy;
	size_t i;
	char *dump;

	*too_large = 0;
	if (!json_is_object(root)) {
		snprintf(msg, msglen, "body is not a JSON object");
		return -1;
	}
	json_object_foreach(root, k, v) {
		if (strcmp(k, "message") && strcmp(k, "validate_only")) {
			snprintf(msg, msglen, "unknown field %.64s", k);
			return -1;
		}
	}
	v = json_object_get(root, "validate_only");
	if (v && !json_is_boolean(v)) {
		snprintf(msg, msglen, "validate_only must be a boolean");
		return -1;
	}
	m = json_object_get(root, "message");
	if (!json_is_object(m)) {
		snprintf(msg, msglen, "message missing");
		return -1;
	}
	t = json_object_get(m, "token");
	if (!json_is_array(t) || json_array_size(t) == 0 || json_array_size(t) > 1000) {
		snprintf(msg, msglen, "message.token must be an array of 1 to 1000 tokens");
		return -1;
	}
	json_array_foreach(t, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0) {
			snprintf(msg, msglen, "message.token[%zu] is not a token", i);
			return -1;
		}
	}
	v = json_object_get(m, "data");
	if (v && !json_is_string(v)) {
		snprintf(msg, msglen, "message.data must be a string");
		return -1;
	}
	v = json_object_get(m, "android");
	if (v) {
		u = json_string_value(json_object_get(v, "urgency"));
		if (!json_is_object(v) || (json_object_get(v, "urgency") && (!u || (strcmp(u, "HIGH") && strcmp(u, "NORMAL"))))) {
			snprintf(msg, msglen, "message.android.urgency must be HIGH or NORMAL");
			return -1;
		}
	}
	copy = json_deep_copy(m);
	json_object_del(copy, "token");
	dump = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	if (!dump || strlen(dump) > 4096) {
		free(dump);
		*too_large = 1;
		snprintf(msg, msglen, "message body larger than 4096 bytes");
		return -1;
	}
	free(dump);
	return 0;
}

static void hms_route(struct mock_req *r, struct route_ctx *c, const char *path)
{
	char app[64], msg[256];
	const char *p = path + 4, *tok = bearer(r), *token = NULL;
	size_t alen = strcspn(p, "/?");
	json_t *root = NULL, *t;
	int too_large;

	/* path = /v1/<app id>/messages:send */
	snprintf(app, sizeof app, "%.*s", (int)(alen < sizeof app ? alen : sizeof app - 1), p);
	c->auth_ok = tok && token_valid(hms_tokens, tok);
	if (r->body.len && !r->body_overflow)
		root = json_loadb(r->body.p, r->body.len, 0, NULL);
	t = json_object_get(json_object_get(root, "message"), "token");
	if (json_is_array(t) && json_is_string(json_array_get(t, 0)))
		token = json_string_value(json_array_get(t, 0));
	if (apply_fault(r, c, token, NULL))
		goto out;
	if (!alen || strcmp(p + alen, "/messages:send") != 0 || strcmp(r->method, "POST") != 0) {
		reply(r, 404, "text/plain", "not found\n");
		c->reason = "not found";
		goto out;
	}
	if (!c->auth_ok) {
		hms_answer(r, 401, c->reason = "80200003", "Oauth Token expired.");
		goto out;
	}
	if (mock_cfg.hms_app_id && strcmp(app, mock_cfg.hms_app_id) != 0) {
		hms_answer(r, 403, c->reason = "80300002", "APP is forbidden to send.");
		goto out;
	}
	if (hms_validate(root, msg, sizeof msg, &too_large) < 0) {
		if (too_large)
			hms_answer(r, 200, c->reason = "80300008", msg);
		else
			hms_answer(r, 400, c->reason = "80100003", msg);
		goto out;
	}
	hms_answer(r, 200, "80000000", "Success");
out:
	json_decref(root);
}

/* ---- dispatch ---- */

static int classify(const char *path)
{
	size_t plen = strcspn(path, "?");
	static const char oauth_tail[] = "/oauth2/v2.0/token";
	size_t tl = sizeof oauth_tail - 1;

	if (strncmp(path, "/3/", 3) == 0 || strncmp(path, "/sandbox/3/", 11) == 0)
		return MOCK_P_APNS; /* /sandbox: the APNs development environment's stand-in */
	if (strncmp(path, "/v1/projects/", 13) == 0)
		return MOCK_P_FCM;
	if (strncmp(path, "/v1/", 4) == 0)
		return MOCK_P_HMS;
	if ((plen == 6 && strncmp(path, "/token", 6) == 0) || (plen == 16 && strncmp(path, "/accesstoken.srf", 16) == 0) ||
	    (plen > tl && strncmp(path + plen - tl, oauth_tail, tl) == 0) ||
	    (plen == 16 && strncmp(path, "/oauth2/v3/token", 16) == 0))
		return MOCK_P_OAUTH;
	if (strncmp(path, "/wns/", 5) == 0 || plen == 1)
		return MOCK_P_WNS;
	return MOCK_P_UNKNOWN;
}

/*
 * Decides the answer to r (fills r->action, status, headers, body), records it and counts it.
 * Returns the delay in ms before the answer is to be carried out (0 = now).
 */
int64_t routes_dispatch(struct mock_req *r)
{
	struct route_ctx c = { 0 };

	r->action = MOCK_ACT_REPLY;
	r->status = 500;
	if (!r->method || !r->path) {
		reply(r, 400, NULL, NULL);
		return 0;
	}
	if (faults_control(r)) {
		record_flush();
		return 0;
	}
	c.provider = classify(r->path);
	switch (c.provider) {
	case MOCK_P_APNS:
		apns_route(r, &c, strncmp(r->path, "/sandbox/", 9) == 0 ? r->path + 8 : r->path);
		break;
	case MOCK_P_FCM:
		fcm_route(r, &c, r->path);
		break;
	case MOCK_P_OAUTH:
		oauth_route(r, &c);
		break;
	case MOCK_P_WNS:
		wns_route(r, &c);
		break;
	case MOCK_P_HMS:
		hms_route(r, &c, r->path);
		break;
	default:
		reply(r, 404, "text/plain", "not found\n");
		c.reason = "not found";
		break;
	}
	record_request(r, c.provider, c.fault, c.reason, c.auth_ok, c.auth_iat, c.auth_id);
	faults_count(c.provider, r->status, r->action);
	return c.rule ? c.rule->delay_ms : 0;
}
