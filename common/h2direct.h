/*
 * h2direct: HTTP/2 straight on nghttp2 and OpenSSL, for the one origin a sender pushes to
 * (APNs, FCM). Part of h2client (h2client.h is the API the senders use); h2client hands it
 * every request for that origin and keeps libcurl for the rest (OAuth endpoints, WNS, which may
 * answer HTTP/1.1). Why: libcurl 7.88 cannot PING an idle connection, resets every stream it
 * has finished reading (which a server's rapid-reset defence counts as an attack and answers
 * with GOAWAY), and spends several times what the request costs on each one; see
 * docs/senders.md.
 */
#ifndef H2DIRECT_H
#define H2DIRECT_H
#include "h2client.h"
#include <stdint.h>

#define H2D_EV_TAG (1ULL << 32)	    /* epoll data of h2direct's sockets: H2D_EV_TAG | slot */
#define H2D_PING_IDLE_MS 30000	    /* a connection silent this long is PINGed (h2c_opts) */
#define H2D_PING_TIMEOUT_MS 10000   /* and closed when the PING is not answered within this or
				       the idle time, whichever is shorter */
#define H2D_CONNECT_TIMEOUT_MS 10000 /* TCP and TLS handshakes together */
#define H2D_BACKOFF_MIN_MS 100	    /* reconnect after a failure: doubling, with jitter */
#define H2D_BACKOFF_MAX_MS 30000

struct h2d;

/* origin: "https://host[:port]" (or "http://" when o->allow_plain_http: HTTP/2 with prior
 * knowledge, loopback only, checked by the caller). Sockets go into epfd. NULL on failure. */
struct h2d *h2d_new(const struct h2c_opts *o, const char *origin, int epfd);
/* Completes everything in flight as aborted and frees. */
void h2d_free(struct h2d *d);
/* Does url belong to this origin? */
int h2d_owns(const struct h2d *d, const char *url);
/* Queues a POST; 0, or -1 with errno (ENOMEM). Never calls done itself. */
int h2d_submit(struct h2d *d, const char *url, const char *const *headers, const void *body, size_t len,
	       h2c_done_fn *done, void *ctx);
/* An epoll event on one of its sockets (data.u64 & 0xffffffff is the slot). */
void h2d_event(struct h2d *d, uint32_t slot, uint32_t events);
/* Timers, new requests onto connections, pending writes. */
void h2d_run(struct h2d *d);
int h2d_timeout_ms(const struct h2d *d);
size_t h2d_in_flight(const struct h2d *d);
#endif
