/*
 * provider_http: the provider HTTP client, HTTP/2 and HTTP/1.1 (functions h2direct_*): the requests
 * of one origin over connections of their own: HTTP/2 on nghttp2, TLS
 * by OpenSSL, or HTTP/1.1 where the server chooses it (Push Kit may) and the client allows it. Part
 * of h2client (h2client.h is the API the senders use), which keeps one of these per origin.
 * Why not libcurl: docs/senders.md.
 */
#ifndef H2DIRECT_H
#define H2DIRECT_H
#include "h2client.h"
#include <openssl/ssl.h>
#include "loop.h"
#include <stdint.h>

#define H2D_PING_IDLE_MS 30000	    /* a connection silent this long is PINGed (h2c_opts) */
#define H2D_PING_TIMEOUT_MS 10000   /* and closed when the PING is not answered within this or
				       the idle time, whichever is shorter */
#define H2D_CONNECT_TIMEOUT_MS 10000 /* TCP and TLS handshakes together */
#define H2D_BACKOFF_MIN_MS 100	    /* reconnect after a failure: doubling, with jitter */
#define H2D_BACKOFF_MAX_MS 30000

struct h2d;

/* The TLS context every origin of a client shares: TLS 1.2 or later, the peer verified against
 * o->ca_file (or the system store), o's client certificate. NULL on failure (logged). */
SSL_CTX *h2d_tls_ctx(const struct h2c_opts *o);
/* url's origin: "https://host[:port]" (or "http://" when o->allow_plain_http: HTTP/2 with
 * prior knowledge, loopback only, checked by the caller). Its sockets are watched by lp, each
 * connection calling back on its own; tls (not owned) is used for https. NULL on failure. */
struct h2d *h2d_new(const struct h2c_opts *o, const char *url, struct loop *lp, SSL_CTX *tls);
/* Completes everything in flight as aborted and frees. */
void h2d_free(struct h2d *d);
/* Does url belong to this origin? */
int h2d_owns(const struct h2d *d, const char *url);
/* Queues a POST; 0, or -1 with errno (ENOMEM, E2BIG). Never calls done itself. */
int h2d_submit(struct h2d *d, const char *url, const char *const *headers, const void *body, size_t len,
	       h2c_done_fn *done, void *ctx);
/* Timers, new requests onto connections, pending writes: at the end of every turn. */
void h2d_run(struct h2d *d);
int h2d_timeout_ms(const struct h2d *d);
size_t h2d_in_flight(const struct h2d *d);
#endif
