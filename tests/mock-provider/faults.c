/*
 * faults.c: the fault script tests install with POST /_mock/faults, the rest of the control
 * API (/_mock/reset, /_mock/stats, /_mock/faults GET, /_mock/reset-stats, /_mock/expire-tokens)
 * and the per-provider statistics it reports.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "mock.h"

static struct mock_rule *rules;
static size_t nrules;
static uint32_t max_streams = MOCK_DEFAULT_STREAMS;
static uint32_t streams_after_success;
static int wns_expires_in = MOCK_EXP_FLOW;
static int64_t wns_lifetime_s; /* 0 = the flow's default */

/* Statistics: answers per provider and HTTP status, and non-reply actions. */
static uint64_t st_status[MOCK_P_COUNT][600];
static uint64_t st_action[MOCK_P_COUNT][5];
static uint64_t st_total[MOCK_P_COUNT];
static uint64_t st_conn_accepted, st_conn_h2, st_conn_h1, st_conn_tls_fail, st_conn_refused;

static const char *const provider_names[MOCK_P_COUNT] = { "apns", "fcm", "oauth", "wns", "hms", "unknown" };
static const char *const action_names[] = { "reply", "goaway", "reset", "drop", "silent" };

const char *mock_provider_name(int provider)
{
	return provider >= 0 && provider < MOCK_P_COUNT ? provider_names[provider] : "any";
}

static void rule_free(struct mock_rule *r)
{
	free(r->token);
	free(r->reason);
	free(r->retry_after);
	free(r->continue_after);
	free(r->message);
	free(r->field);
	free(r->debug);
}

void faults_free(void)
{
	size_t i;

	for (i = 0; i < nrules; i++)
		rule_free(&rules[i]);
	free(rules);
	rules = NULL;
	nrules = 0;
}

const struct mock_rule *faults_match(int provider, const char *token)
{
	size_t i;
	struct mock_rule *r;

	for (i = 0; i < nrules; i++) {
		r = &rules[i];
		if (r->count == 0 || (r->provider >= 0 && r->provider != provider))
			continue;
		if (r->token && (!token || strcmp(r->token, token) != 0))
			continue;
		if (r->count > 0)
			r->count--;
		return r;
	}
	return NULL;
}

void faults_count(int provider, int status, int action)
{
	if (provider < 0 || provider >= MOCK_P_COUNT)
		return;
	st_total[provider]++;
	if (action == MOCK_ACT_REPLY && status >= 0 && status < 600)
		st_status[provider][status]++;
	else if (action > MOCK_ACT_REPLY && action <= MOCK_ACT_SILENT)
		st_action[provider][action]++;
}

void faults_count_conn(const char *what)
{
	if (strcmp(what, "accepted") == 0)
		st_conn_accepted++;
	else if (strcmp(what, "h2") == 0)
		st_conn_h2++;
	else if (strcmp(what, "http/1.1") == 0)
		st_conn_h1++;
	else if (strcmp(what, "tls_fail") == 0)
		st_conn_tls_fail++;
	else if (strcmp(what, "refused") == 0)
		st_conn_refused++;
}

uint32_t faults_max_streams(void)
{
	return max_streams;
}

int faults_wns_expires_in(void)
{
	return wns_expires_in;
}

int64_t faults_wns_token_lifetime(int64_t dflt)
{
	return wns_lifetime_s > 0 ? wns_lifetime_s : dflt;
}

uint32_t faults_streams_after_success(void)
{
	return streams_after_success;
}

/* A string field that may also be given as a number ("retry_after": 5). */
static int opt_str(json_t *o, const char *key, char **out)
{
	json_t *v = json_object_get(o, key);
	char num[32];

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		*out = strdup(json_string_value(v));
	} else if (json_is_integer(v)) {
		snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
		*out = strdup(num);
	} else {
		return -1;
	}
	return *out ? 0 : -1;
}

static int opt_int(json_t *o, const char *key, long long def, long long *out)
{
	json_t *v = json_object_get(o, key);

	*out = def;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return -1;
	*out = json_integer_value(v);
	return 0;
}

static int parse_provider(const char *s)
{
	int i;

	if (strcmp(s, "any") == 0 || strcmp(s, "*") == 0)
		return -1;
	for (i = 0; i < MOCK_P_UNKNOWN; i++)
		if (strcmp(s, provider_names[i]) == 0)
			return i;
	return -2;
}

static int parse_rule(json_t *o, struct mock_rule *r, const char **err)
{
	json_t *v;
	long long n;
	size_t i;

	memset(r, 0, sizeof *r);
	r->provider = -1;
	if (!json_is_object(o)) {
		*err = "rule is not an object";
		return -1;
	}
	v = json_object_get(o, "provider");
	if (v && (!json_is_string(v) || (r->provider = parse_provider(json_string_value(v))) == -2)) {
		*err = "provider must be apns, fcm, oauth, wns, hms or any";
		return -1;
	}
	if (opt_str(o, "token", &r->token) || opt_str(o, "reason", &r->reason) ||
	    opt_str(o, "retry_after", &r->retry_after) || opt_str(o, "continue_after", &r->continue_after) ||
	    opt_str(o, "message", &r->message) || opt_str(o, "field", &r->field) || opt_str(o, "debug", &r->debug)) {
		*err = "string field of the wrong type";
		return -1;
	}
	if (opt_int(o, "count", -1, &n) || n < -1) {
		*err = "count must be an integer >= -1";
		return -1;
	}
	r->count = (long)n;
	if (opt_int(o, "status", 0, &n) || (n != 0 && (n < 200 || n > 599))) {
		*err = "status must be 200..599";
		return -1;
	}
	r->status = (int)n;
	if (opt_int(o, "timestamp", 0, &n)) {
		*err = "timestamp must be an integer (ms)";
		return -1;
	}
	r->timestamp = n;
	if (opt_int(o, "delay_ms", 0, &n) || n < 0 || n > 3600000) {
		*err = "delay_ms must be 0..3600000";
		return -1;
	}
	r->delay_ms = n;
	if (opt_int(o, "error_code", NGHTTP2_INTERNAL_ERROR, &n) || n < 0 || n > 0xffffffffLL) {
		*err = "error_code must be an HTTP/2 error code";
		return -1;
	}
	r->error_code = (uint32_t)n;
	r->action = MOCK_ACT_REPLY;
	v = json_object_get(o, "action");
	if (v) {
		if (!json_is_string(v))
			goto bad_action;
		for (i = 0; i < sizeof action_names / sizeof action_names[0]; i++)
			if (strcmp(json_string_value(v), action_names[i]) == 0)
				break;
		if (i == sizeof action_names / sizeof action_names[0])
			goto bad_action;
		r->action = (int)i;
	}
	return 0;
bad_action:
	*err = "action must be reply, goaway, reset, drop or silent";
	return -1;
}

static void json_reply(struct mock_req *r, int status, const char *body)
{
	r->action = MOCK_ACT_REPLY;
	r->status = status;
	mock_buf_reset(&r->rbody);
	mock_buf_puts(&r->rbody, body);
	mock_req_set_resp_header(r, "content-type", "application/json");
}

static void control_faults(struct mock_req *r)
{
	json_error_t jerr;
	json_t *root = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, &jerr), *arr, *v;
	struct mock_rule *nr = NULL;
	const char *err = NULL;
	struct mock_buf msg = { 0 };
	long long n;
	size_t i, cnt = 0;
	uint32_t ms = MOCK_DEFAULT_STREAMS, sas = 0;
	int exp_mode = MOCK_EXP_FLOW;
	long long lifetime = 0;

	if (!root || !json_is_object(root)) {
		err = "body must be a JSON object";
		goto fail;
	}
	arr = json_object_get(root, "rules");
	if (arr && !json_is_array(arr)) {
		err = "rules must be an array";
		goto fail;
	}
	cnt = arr ? json_array_size(arr) : 0;
	nr = calloc(cnt ? cnt : 1, sizeof *nr);
	if (!nr) {
		err = "out of memory";
		goto fail;
	}
	for (i = 0; i < cnt; i++) {
		if (parse_rule(json_array_get(arr, i), &nr[i], &err) < 0) {
			cnt = i + 1;
			goto fail;
		}
	}
	if (opt_int(root, "max_concurrent_streams", MOCK_DEFAULT_STREAMS, &n) || n < 0 || n > 0x7fffffff) {
		err = "max_concurrent_streams must be an integer >= 0";
		goto fail;
	}
	ms = (uint32_t)n;
	if (opt_int(root, "streams_after_success", 0, &n) || n < 0 || n > 0x7fffffff) {
		err = "streams_after_success must be an integer >= 0";
		goto fail;
	}
	sas = (uint32_t)n;
	v = json_object_get(root, "wns_expires_in");
	if (v) {
		const char *m = json_is_string(v) ? json_string_value(v) : "";
		exp_mode = strcmp(m, "flow") == 0 ? MOCK_EXP_FLOW : strcmp(m, "number") == 0 ? MOCK_EXP_NUMBER :
			   strcmp(m, "string") == 0 ? MOCK_EXP_STRING : strcmp(m, "missing") == 0 ? MOCK_EXP_MISSING : -1;
		if (exp_mode < 0) {
			err = "wns_expires_in must be flow, number, string or missing";
			goto fail;
		}
	}
	if (opt_int(root, "wns_token_lifetime_s", 0, &lifetime) || lifetime < 0 || lifetime > 30 * 86400) {
		err = "wns_token_lifetime_s must be an integer from 0 to 2592000";
		goto fail;
	}
	v = json_object_get(root, "expire_tokens");
	if (json_is_true(v))
		routes_expire_tokens();
	faults_free();
	rules = nr;
	nrules = cnt;
	max_streams = ms;
	streams_after_success = sas;
	wns_expires_in = exp_mode;
	wns_lifetime_s = lifetime;
	json_decref(root);
	mock_buf_printf(&msg, "{\"ok\":true,\"rules\":%zu,\"max_concurrent_streams\":%u}", cnt, ms);
	json_reply(r, 200, msg.p);
	mock_buf_free(&msg);
	mock_log("info", "fault script replaced: %zu rules, max_concurrent_streams %u", cnt, ms);
	return;
fail:
	if (nr) {
		for (i = 0; i < cnt; i++)
			rule_free(&nr[i]);
		free(nr);
	}
	json_decref(root);
	mock_buf_puts(&msg, "{\"ok\":false,\"error\":");
	mock_buf_json_str(&msg, err, strlen(err));
	mock_buf_puts(&msg, "}");
	json_reply(r, 400, msg.p);
	mock_buf_free(&msg);
}

static void control_stats(struct mock_req *r)
{
	struct mock_buf b = { 0 };
	int p, s, a, first;

	mock_buf_puts(&b, "{");
	for (p = 0; p < MOCK_P_COUNT; p++) {
		mock_buf_printf(&b, "\"%s\":{\"total\":%llu,\"status\":{", provider_names[p],
				(unsigned long long)st_total[p]);
		first = 1;
		for (s = 0; s < 600; s++) {
			if (!st_status[p][s])
				continue;
			mock_buf_printf(&b, "%s\"%d\":%llu", first ? "" : ",", s, (unsigned long long)st_status[p][s]);
			first = 0;
		}
		mock_buf_puts(&b, "},\"actions\":{");
		first = 1;
		for (a = MOCK_ACT_GOAWAY; a <= MOCK_ACT_SILENT; a++) {
			if (!st_action[p][a])
				continue;
			mock_buf_printf(&b, "%s\"%s\":%llu", first ? "" : ",", action_names[a],
					(unsigned long long)st_action[p][a]);
			first = 0;
		}
		mock_buf_puts(&b, "}},");
	}
	mock_buf_printf(&b, "\"connections\":{\"open\":%zu,\"accepted\":%llu,\"h2\":%llu,\"http1\":%llu,"
			"\"tls_failures\":%llu,\"refused\":%llu},\"rules\":%zu}",
			conn_open_count(), (unsigned long long)st_conn_accepted, (unsigned long long)st_conn_h2,
			(unsigned long long)st_conn_h1, (unsigned long long)st_conn_tls_fail,
			(unsigned long long)st_conn_refused, nrules);
	json_reply(r, 200, b.p);
	mock_buf_free(&b);
}

static void put_opt(struct mock_buf *b, const char *key, const char *v)
{
	if (!v)
		return;
	mock_buf_printf(b, ",\"%s\":", key);
	mock_buf_json_str(b, v, strlen(v));
}

static void control_list(struct mock_req *r)
{
	struct mock_buf b = { 0 };
	const struct mock_rule *x;
	size_t i;

	mock_buf_puts(&b, "{\"rules\":[");
	for (i = 0; i < nrules; i++) {
		x = &rules[i];
		mock_buf_printf(&b, "%s{\"provider\":\"%s\",\"count\":%ld,\"status\":%d,\"action\":\"%s\","
				"\"delay_ms\":%lld", i ? "," : "", mock_provider_name(x->provider), x->count,
				x->status, action_names[x->action], (long long)x->delay_ms);
		put_opt(&b, "token", x->token);
		put_opt(&b, "reason", x->reason);
		put_opt(&b, "retry_after", x->retry_after);
		put_opt(&b, "continue_after", x->continue_after);
		mock_buf_puts(&b, "}");
	}
	mock_buf_printf(&b, "],\"max_concurrent_streams\":%u,\"streams_after_success\":%u}", max_streams,
			streams_after_success);
	json_reply(r, 200, b.p);
	mock_buf_free(&b);
}

/* Handles /_mock/...; returns 1 when r was a control request (answered in r), else 0. */
int faults_control(struct mock_req *r)
{
	const char *p = r->path;
	int post = strcmp(r->method, "POST") == 0, get = strcmp(r->method, "GET") == 0;

	if (strncmp(p, "/_mock/", 7) != 0)
		return 0;
	p += 7;
	if (strcmp(p, "faults") == 0 && post) {
		control_faults(r);
	} else if (strcmp(p, "faults") == 0 && get) {
		control_list(r);
	} else if (strcmp(p, "reset") == 0 && post) {
		faults_free();
		max_streams = MOCK_DEFAULT_STREAMS;
		streams_after_success = 0;
		wns_expires_in = MOCK_EXP_FLOW;
		wns_lifetime_s = 0;
		json_reply(r, 200, "{\"ok\":true}");
	} else if (strcmp(p, "stats") == 0 && get) {
		control_stats(r);
	} else if (strcmp(p, "reset-stats") == 0 && post) {
		memset(st_status, 0, sizeof st_status);
		memset(st_action, 0, sizeof st_action);
		memset(st_total, 0, sizeof st_total);
		json_reply(r, 200, "{\"ok\":true}");
	} else if (strcmp(p, "expire-tokens") == 0 && post) {
		routes_expire_tokens();
		json_reply(r, 200, "{\"ok\":true}");
	} else {
		json_reply(r, 404, "{\"ok\":false,\"error\":\"unknown control request\"}");
	}
	return 1;
}
