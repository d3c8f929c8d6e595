/*
 * provider_http_int: the provider HTTP client's insides, shared by provider_http.c (the requests), provider_http_conn.c (one connection:
 * socket, TLS, nghttp2 session) and provider_http_h1.c (HTTP/1.1 on a connection whose server chose
 * it).
 */
#ifndef H2DIRECT_INT_H
#define H2DIRECT_INT_H
#include "provider_http.h"
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#define H2D_CONNS_MAX 32   /* connections per origin */
#define H2D_NV_MAX 24	   /* header fields per request, pseudo-headers included */
#define H2D_FREE_MAX 4096  /* request structures kept for reuse */
#define H2D_OUT_BATCH 65536 /* bytes gathered from nghttp2 before one write */

enum { H2D_ANSWERED, H2D_FAILED, H2D_TIMED_OUT, H2D_ABORTED };
enum { H2D_IDLE, H2D_CONNECTING, H2D_HANDSHAKE, H2D_READY, H2D_DRAINING };

struct h2d_conn;
struct h2d_tab;

struct h2d_req {
	struct h2d_conn *c;	     /* on a stream of c, or NULL while pending */
	int32_t stream_id;
	int pending;		     /* in the queue for a stream */
	struct h2d_req *prev, *next; /* all requests, in deadline order; free list (next only) */
	struct h2d_req *pprev, *pnext; /* the queue */
	uint64_t deadline;
	nghttp2_nv nv[H2D_NV_MAX];
	size_t nnv;
	char *buf;		     /* header names and values, then the body */
	size_t buf_cap;
	char *body;
	size_t body_len, body_off;
	long status;
	int complete;		     /* the answer ended with END_STREAM */
	char *rbody;
	size_t rbody_len, rbody_cap;
	int rbody_truncated;
	char *rhdrs;		     /* "name: value\r\n" lines */
	size_t rhdrs_len, rhdrs_cap;
	h2c_done_fn *done;
	void *ctx;
};

struct h2d_conn {
	struct h2d *d;
	unsigned slot;
	int state;
	int fd;
	SSL *ssl;
	nghttp2_session *ng;
	struct h2d_tab *tab;	     /* its streams: stream id → request */
	unsigned open;		     /* streams opened and not yet closed */
	unsigned remote_max;	     /* the server's SETTINGS_MAX_CONCURRENT_STREAMS */
	unsigned expiries;	     /* requests that ran out of their deadline on it */
	unsigned epoll_events;	     /* as registered */
	struct loop_fd *lh;	     /* its socket in the loop, or NULL */
	uint64_t started;	     /* connect began */
	uint64_t last_read, ping_sent;
	uint64_t retry_at;	     /* IDLE: not before */
	unsigned backoff_ms;
	char *out;
	size_t out_len, out_off, out_cap;
	/* HTTP/1.1 (provider_http_h1.c): one request at a time. */
	int h1;
	struct h2d_req *cur;	     /* the request on it, or NULL */
	int h1_phase, h1_keep_alive, h1_close;
	uint64_t h1_left;	     /* body bytes (or chunk bytes) still to come */
	char *in;		     /* unparsed input */
	size_t in_len, in_cap;
};

struct h2d {
	struct h2c_opts o;
	struct loop *lp;	     /* the sender's loop, which watches its sockets */
	int plain;
	char origin[300], authority[280], host[256], port[8];
	size_t origin_len;
	SSL_CTX *tls;
	unsigned max_conns, nslots, max_streams;
	uint64_t deadline_ms, ping_idle_ms, ping_timeout_ms;
	struct h2d_conn slot[2 * H2D_CONNS_MAX];
	struct h2d_req *all_head, *all_tail, *pend_head, *pend_tail, *free_list;
	size_t in_flight, nfree;
};

/* provider_http.c */
void h2d_finish(struct h2d *d, struct h2d_req *r, int how, const char *why);

/* provider_http_conn.c: appends n bytes at p to *buf, keeping at most max - 1 and a NUL; *cut (if
 * given) is set when bytes were dropped. */
void h2d_keep(char **buf, size_t *len, size_t *cap, size_t max, const void *p, size_t n, int *cut);

/* provider_http_h1.c */
/* Writes r as an HTTP/1.1 request into c->out; -1 when memory ran out. */
int h2d_h1_start(struct h2d_conn *c, struct h2d_req *r);
/* Bytes from the server; -1 on a malformed answer (close the connection). A complete answer
 * finishes c->cur; c->h1_close then says whether the connection must close. */
int h2d_h1_input(struct h2d_conn *c, const uint8_t *p, size_t n);
/* The server closed: 1 when that completed the answer on it (a body that ends with the
 * connection), else 0. */
int h2d_h1_eof(struct h2d_conn *c);

/* provider_http_conn.c */
void h2d_conn_open(struct h2d_conn *c, uint64_t now);
/* Closes c; why non-NULL: a failure, its requests complete with it and a reconnect backs off. */
void h2d_conn_close(struct h2d_conn *c, const char *why);
int h2d_conn_start(struct h2d_conn *c, struct h2d_req *r);
void h2d_conn_cancel(struct h2d_conn *c, struct h2d_req *r);
void h2d_conn_event(struct h2d_conn *c, uint32_t events);
void h2d_conn_timers(struct h2d_conn *c, uint64_t now);
void h2d_conn_flush(struct h2d_conn *c);
/* When c next needs h2d_run() for its own timers (UINT64_MAX: never). */
uint64_t h2d_conn_due(const struct h2d_conn *c);
#endif
