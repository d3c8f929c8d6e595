/*
 * h2client: a small HTTP/2 client core on libcurl multi, single-threaded, driven by the
 * caller's epoll loop: add h2c_fd() to it for EPOLLIN, bound epoll_wait by h2c_timeout_ms(),
 * and call h2c_run() on every turn. Requests multiplex over a few long-lived connections per
 * host (HTTP/1.1 when the server offers nothing else, as WNS may); every request has a
 * deadline; each submitted request gets exactly one completion. A connection on which
 * H2C_RECYCLE_EXPIRIES requests ran out of their deadline is recycled: new requests go to new
 * connections (h2client.c, note_expiry()).
 */
#ifndef H2CLIENT_H
#define H2CLIENT_H
#include <stddef.h>
#include <stdint.h>

#define H2C_BODY_MAX (64 * 1024)  /* response bodies are cut here (flagged, never an error) */
#define H2C_HEADERS_MAX 8192	  /* response header bytes kept */
#define H2C_RECYCLE_EXPIRIES 2	  /* deadline expiries on one connection before it is recycled */
#define H2C_EXPIRY_SLOTS 16	  /* connections whose expiries are remembered */

struct h2c;

struct h2c_opts {
	long connections;	   /* per host */
	long max_streams;	   /* per connection (the server's SETTINGS may lower it) */
	long deadline_ms;	   /* whole request, waiting for a stream included */
	long ping_idle_ms;	   /* direct connections: PING after this much silence (0: 30 s) */
	size_t max_in_flight;	   /* h2c_submit refuses more with EAGAIN */
	const char *ca_file;	   /* NULL or "" = the system trust store */
	const char *cert_file;	   /* TLS client certificate (PEM) or NULL */
	const char *key_file;	   /* its key, or NULL */
	int allow_plain_http;	   /* test mode only: http:// to a loopback host, h2 prior knowledge */
	const char *direct_origin; /* requests to this URL's origin go over HTTP/2 on nghttp2 directly
				      (h2direct.h); the rest, and all when NULL, over libcurl */
};

struct h2c_response {
	long status;		   /* HTTP status; 0 when no complete answer arrived */
	int error;		   /* CURLcode: 0 when an answer was received */
	int timed_out;		   /* the deadline passed */
	int aborted;		   /* h2c_free() ran first */
	const char *error_text;	   /* for logs */
	const char *body;	   /* NUL-terminated, at most H2C_BODY_MAX bytes */
	size_t body_len;
	int body_truncated;
	const char *headers;	   /* raw "name: value\r\n" lines; read with h2c_header() */
	size_t headers_len;
};

/* Called once per submitted request, from h2c_run() or h2c_free(); r lives until it returns.
 * The callback may submit new requests. */
typedef void h2c_done_fn(void *ctx, const struct h2c_response *r);

/* NULL on failure (logged). */
struct h2c *h2c_new(const struct h2c_opts *o);
/* Completes every request still in flight as aborted, then frees everything. */
void h2c_free(struct h2c *h);
/* The fd to watch for EPOLLIN in the caller's loop. */
int h2c_fd(const struct h2c *h);
/* Milliseconds until h2c_run() must be called again, or -1 for no timer. */
int h2c_timeout_ms(const struct h2c *h);
/* Handles ready sockets, due timers and finished requests (never blocks). */
void h2c_run(struct h2c *h);
/* POSTs body to url with extra headers ("Name: value", NULL-terminated list); the body and
 * headers are copied. 0, or -1 with errno (EAGAIN at max_in_flight, EPROTONOSUPPORT for a
 * refused URL scheme, ENOMEM): then done is not called. */
int h2c_submit(struct h2c *h, const char *url, const char *const *headers, const void *body, size_t len,
	       h2c_done_fn *done, void *ctx);
size_t h2c_in_flight(const struct h2c *h);
/* Copies the trimmed value of the first response header called name (any case) into buf;
 * returns buf, or NULL when absent. */
const char *h2c_header(const struct h2c_response *r, const char *name, char *buf, size_t buflen);
/* A Retry-After value (seconds, or an HTTP date) as milliseconds from now_wall_ms; 0 when
 * absent, past or unreadable; capped at one day. */
uint64_t h2c_retry_after_ms(const char *value, uint64_t now_wall_ms);
#endif
