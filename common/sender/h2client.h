/*
 * h2client: the senders' HTTP client, single-threaded, on the caller's loop (loop.h): its
 * sockets and its timer are the loop's, and h2c_run() is called at the end of every turn (it
 * starts what the turn queued and sets the next wake-up). Requests multiplex over a few long-lived HTTP/2 connections per origin (HTTP/1.1,
 * one request at a time per connection, where the server chooses it and allow_http1 is set, as
 * Huawei Push Kit needs; wns-sender has libcurl's client instead); every request has a deadline; each submitted request gets exactly one
 * completion. A connection on which H2C_RECYCLE_EXPIRIES requests ran out of their deadline
 * takes no new requests. The connections: provider_http.h.
 */
#ifndef H2CLIENT_H
#define H2CLIENT_H
#include "loop.h"
#include <stddef.h>
#include <stdint.h>

#define H2C_BODY_MAX (64 * 1024)  /* response bodies are cut here (flagged, never an error) */
#define H2C_HEADERS_MAX 8192	  /* response header bytes kept */
#define H2C_RECYCLE_EXPIRIES 2	  /* deadline expiries on one connection before it is recycled */
#define H2C_ORIGINS_MAX 16	  /* origins with connections at once (a provider's push and token hosts) */

/* h2c_response.error */
enum { H2C_OK, H2C_ERR_TRANSPORT, H2C_ERR_TIMEOUT, H2C_ERR_ABORTED };

struct h2c;

struct h2c_opts {
	long connections;	   /* per origin */
	long max_streams;	   /* per connection (the server's SETTINGS may lower it) */
	long deadline_ms;	   /* whole request, waiting for a stream included */
	long ping_idle_ms;	   /* direct connections: PING after this much silence (0: 30 s) */
	size_t max_in_flight;	   /* h2c_submit refuses more with EAGAIN */
	const char *ca_file;	   /* NULL or "" = the system trust store */
	const char *cert_file;	   /* TLS client certificate (PEM) or NULL */
	const char *key_file;	   /* its key, or NULL */
	int allow_plain_http;	   /* test mode only: http:// to a loopback host, h2 prior knowledge */
	int allow_http1;	   /* HTTP/1.1 when the server prefers it (ALPN), else HTTP/2 only */
	const char *push_origin;   /* NULL, or a URL whose origin is set up (TLS context) and checked
				      at h2c_new(); other origins are set up at their first request */
};

struct h2c_response {
	long status;		   /* HTTP status; 0 when no complete answer arrived */
	int error;		   /* H2C_OK when an answer was received, else H2C_ERR_* */
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

/* A client whose sockets and timer are lp's. NULL on failure (logged). */
struct h2c *h2c_new(const struct h2c_opts *o, struct loop *lp);
/* Completes every request still in flight as aborted, then frees everything. */
void h2c_free(struct h2c *h);
/* At the end of every turn of the loop: deadlines and connection timers that are due, queued
 * requests onto connections, pending writes; then arms the loop's timer for the next (never
 * blocks). */
void h2c_run(struct h2c *h);
/* POSTs body to url with extra headers ("Name: value", NULL-terminated list); the body and
 * headers are copied. 0, or -1 with errno (EAGAIN at max_in_flight or with H2C_ORIGINS_MAX
 * origins busy, EPROTONOSUPPORT for a refused URL, ENOMEM): then done is not called. */
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
