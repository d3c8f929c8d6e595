/*
 * mock.h: shared declarations of mock-provider, a loopback stand-in for APNs, FCM (with its
 * OAuth token endpoint), WNS and Huawei Push Kit (HMS, with its token endpoint) speaking HTTP/2 (and HTTP/1.1) over TLS. One process, one
 * thread, one epoll loop; see main.c for the command line.
 */
#ifndef MOCK_H
#define MOCK_H
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <nghttp2/nghttp2.h>
#include <jansson.h>

enum { MOCK_MAX_CONNS = 1024 };            /* open connections; more are closed at accept */
enum { MOCK_MAX_BODY = 1 << 20 };          /* request bodies are cut (and refused) past this */
enum { MOCK_MAX_HEADERS = 128 };           /* request header fields kept per request */
enum { MOCK_HANDSHAKE_MS = 10000 };        /* TLS handshake deadline */
enum { MOCK_LINGER_MS = 2000 };            /* drain time after a graceful close */
enum { MOCK_DEFAULT_STREAMS = 1000 };      /* SETTINGS_MAX_CONCURRENT_STREAMS by default */

enum mock_provider { MOCK_P_APNS, MOCK_P_FCM, MOCK_P_OAUTH, MOCK_P_WNS, MOCK_P_HMS, MOCK_P_UNKNOWN, MOCK_P_COUNT };
enum mock_action { MOCK_ACT_REPLY, MOCK_ACT_GOAWAY, MOCK_ACT_RESET, MOCK_ACT_DROP, MOCK_ACT_SILENT };
enum mock_conn_state { MOCK_CS_HANDSHAKE, MOCK_CS_H2, MOCK_CS_H1, MOCK_CS_LINGER };
/* How a connection is to be closed: after flushing (close_notify, then a short drain), at once,
 * or at once with a TCP RST. */
enum mock_close { MOCK_CLOSE_NONE, MOCK_CLOSE_GRACEFUL, MOCK_CLOSE_NOW, MOCK_CLOSE_ABORT };

/* Growable byte buffer, always NUL-terminated when p != NULL. */
struct mock_buf {
	char *p;
	size_t len, cap;
};

struct mock_hdr {
	char *name;  /* lowercase */
	char *value;
};

/* Configuration from the command line (main.c) and keys loaded from it. */
struct mock_config {
	const char *listen;
	const char *cert, *key, *record;
	const char *apns_key_file, *apns_kid, *apns_team;
	const char *fcm_key_file, *fcm_project;
	const char *wns_client_id, *wns_client_secret;
	const char *hms_app_id, *hms_app_secret; /* Huawei Push Kit: checked when given */
	const char *ready_file;
	int http1_only;                      /* ALPN offers http/1.1 only (WNS front ends do) */
	EVP_PKEY *apns_key, *fcm_key;
	/* Several apps (pushpipe's apps list): more APNs keys, each with its key id, more FCM
	 * service-account keys, and the FCM projects accepted besides --fcm-project. */
#define MOCK_EXTRA_MAX 4
	const char *apns_extra_kid[MOCK_EXTRA_MAX], *apns_extra_file[MOCK_EXTRA_MAX];
	EVP_PKEY *apns_extra_key[MOCK_EXTRA_MAX];
	size_t napns_extra;
	const char *fcm_extra_file[MOCK_EXTRA_MAX];
	EVP_PKEY *fcm_extra_key[MOCK_EXTRA_MAX];
	size_t nfcm_extra;
	const char *fcm_projects[MOCK_EXTRA_MAX];
	size_t nfcm_projects;
};
extern struct mock_config mock_cfg;

/* One request on a connection: an HTTP/2 stream or one HTTP/1.1 exchange. */
struct mock_req {
	struct mock_conn *conn;
	struct mock_req *cprev, *cnext;      /* the connection's request list */
	struct mock_req *tprev, *tnext;      /* the delay timer list */
	int in_timer;
	int64_t due_ms;                      /* monotonic */
	int32_t stream_id;                   /* 0 for HTTP/1.1 */
	char *method, *path;
	struct mock_hdr hdrs[MOCK_MAX_HEADERS];
	size_t nhdrs;
	struct mock_buf body;
	int body_overflow;
	int dispatched;
	/* the answer chosen by routes_dispatch() */
	int action;                          /* enum mock_action */
	int status;
	uint32_t rst_code;
	struct mock_hdr rhdrs[8];
	size_t nrhdrs;
	struct mock_buf rbody;
	size_t rbody_off;
	struct mock_buf goaway_data;
	int success;                         /* a provider push that succeeded */
};

struct mock_conn {
	int fd;
	uint64_t id;
	SSL *ssl;
	int state;                           /* enum mock_conn_state */
	int64_t deadline_ms;                 /* handshake or linger deadline, monotonic; 0 = none */
	nghttp2_session *h2;
	int raised_streams;                  /* streams_after_success applied */
	struct mock_buf in;                  /* HTTP/1.1 input not yet parsed */
	struct mock_req *h1_req;             /* HTTP/1.1 request being answered */
	int h1_keepalive;
	struct mock_buf out;                 /* TLS plaintext waiting for SSL_write */
	size_t out_off;
	int want_close;                      /* enum mock_close */
	int h1_continue_sent;                /* "100 Continue" sent for the request being read */
	int epoll_out;
	struct mock_req *reqs;
	struct mock_conn *prev, *next;
};

/* util.c */
void mock_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t mock_now_ms(void);
int64_t mock_mono_ms(void);
int mock_buf_reserve(struct mock_buf *b, size_t extra);
int mock_buf_append(struct mock_buf *b, const void *p, size_t n);
int mock_buf_puts(struct mock_buf *b, const char *s);
int mock_buf_printf(struct mock_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mock_buf_json_str(struct mock_buf *b, const char *s, size_t n);
void mock_buf_reset(struct mock_buf *b);
void mock_buf_free(struct mock_buf *b);
void mock_random_hex(char *out, size_t nbytes);
void mock_uuid(char out[37]);
int mock_is_uuid(const char *s);
int mock_b64url_decode(const char *in, size_t len, struct mock_buf *out);
int mock_url_decode(const char *in, size_t len, struct mock_buf *out);
const char *mock_req_header(const struct mock_req *r, const char *name);
size_t mock_req_header_count(const struct mock_req *r, const char *name);
int mock_req_add_header(struct mock_req *r, const char *name, size_t nlen, const char *value, size_t vlen);
int mock_req_set_resp_header(struct mock_req *r, const char *name, const char *value);
const char *mock_reason_phrase(int status);

/* jwt.c */
int jwt_load_key(const char *path, EVP_PKEY **out);
int jwt_verify(const char *token, const char *alg, EVP_PKEY *key, json_t **header, json_t **claims,
	       const char **err);

/* record.c */
int record_open(const char *path);
void record_request(const struct mock_req *r, int provider, int fault, const char *reason, int auth_ok,
		    int64_t auth_iat, const char *auth_id);
void record_flush(void);
int record_dirty(void);
void record_close(void);

/* faults.c: the fault script, the control API and statistics */
struct mock_rule {
	int provider;                        /* -1 = any */
	char *token;                         /* NULL = any */
	long count;                          /* -1 = forever */
	int status;                          /* 0 = not set */
	char *reason, *retry_after, *continue_after, *message, *field, *debug;
	int64_t timestamp;                   /* 0 = now */
	int64_t delay_ms;
	int action;
	uint32_t error_code;
};
const struct mock_rule *faults_match(int provider, const char *token);
int faults_control(struct mock_req *r);
void faults_count(int provider, int status, int action);
void faults_count_conn(const char *what);
uint32_t faults_max_streams(void);
uint32_t faults_streams_after_success(void);
/* WNS token answers: expires_in as MOCK_EXP_FLOW (live a number, Entra a string), always a
 * number, always a string, or left out; and the tokens' lifetime in seconds. */
enum { MOCK_EXP_FLOW, MOCK_EXP_NUMBER, MOCK_EXP_STRING, MOCK_EXP_MISSING };
int faults_wns_expires_in(void);
int64_t faults_wns_token_lifetime(int64_t dflt);
void faults_free(void);
const char *mock_provider_name(int provider);

/* routes.c: provider behaviour */
int routes_init(void);
int64_t routes_dispatch(struct mock_req *r);
void routes_expire_tokens(void);
void routes_free(void);

/* conn.c: connections, TLS, timers */
int conn_tls_init(void);
void conn_tls_free(void);
void conn_setup(int epfd, size_t max_conns);
int conn_out_append(struct mock_conn *c, const void *data, size_t len);
void conn_accept_all(int lfd);
void conn_on_event(struct mock_conn *c, uint32_t events);
void conn_dispatch(struct mock_req *r);
void conn_execute(struct mock_req *r);
void conn_after_io(struct mock_conn *c);
void conn_sweep(int64_t now_mono);
void conn_close_all(void);
size_t conn_open_count(void);
struct mock_req *req_new(struct mock_conn *c);
void req_free(struct mock_req *r);
void timers_run(int64_t now_mono);
int64_t timers_next_due(void);

/* h2.c */
int h2_session_init(struct mock_conn *c);
int h2_recv(struct mock_conn *c, const unsigned char *data, size_t len);
int h2_fill_output(struct mock_conn *c);
int h2_respond(struct mock_req *r);
int h2_raise_streams(struct mock_conn *c, uint32_t n);
void h2_free_callbacks(void);

/* http1.c */
int http1_recv(struct mock_conn *c, const unsigned char *data, size_t len);
int http1_process(struct mock_conn *c);
int http1_respond(struct mock_req *r);

#endif
