/*
 * xmpp_session: one XEP-0114 component stream without the socket (docs/xmpp.md).
 * The caller starts a stream, feeds it the server's bytes, writes out whatever the session put
 * in its output buffer, and hands it the router's frames. The session does the handshake,
 * answers disco and ping, validates publishes and ad-hoc commands, turns them into router
 * requests (through the submit callback: router_link.c in the daemon) and turns the router's
 * replies (or their absence: the link's deadline, a lost link) into IQ results and errors.
 * Time comes from the caller, so tests control it.
 */
#ifndef XMPP_SESSION_H
#define XMPP_SESSION_H
#include "../router_link.h"
#include "xmpp_xml.h"
#include <stddef.h>
#include <stdint.h>

#define XS_MAX_PENDING 1024 /* requests waiting for the router: the daemon's link holds this many */
#define XS_OUT_MAX (1u << 20)

struct xs_conf {
	const char *domain;	/* component domain */
	const char *secret;	/* shared component secret */
	size_t max_stanza;
	uint32_t router_timeout_ms;
	int adhoc;		/* XEP-0050 commands */
	int fcm, apns;		/* ad-hoc services enabled */
	const char *const *adhoc_domains; /* allowed user domains; n == 0: any */
	size_t n_adhoc_domains;
	/* XEP-0050 registrations' apps (docs/xmpp.md): a form's `application` must be one of these;
	 * without one, application ("" = the platform's default app, decided by the router). */
	const char *const *applications;
	size_t n_applications;
	const char *application;
};

/* Sends one request frame (its id is the transport's to set) to the router, as link_submit():
 * 0 when taken, and done(done_ctx, ..) then runs exactly once, later; -1 when the router
 * cannot take it now (done never runs; the session answers at once). */
typedef int (*xs_submit_fn)(void *ctx, uint8_t *frame, size_t len, link_done_fn done, void *done_ctx);

enum xs_state {
	XS_IDLE,	   /* not started */
	XS_WAIT_HEADER,	   /* our header sent, waiting for the server's */
	XS_WAIT_HANDSHAKE, /* <handshake> sent */
	XS_READY,	   /* authenticated */
	XS_CLOSING,	   /* we sent </stream:stream>, waiting for the server's */
	XS_CLOSED,	   /* over: see end_cond / end_reason; flush out and close the socket */
};

struct xs_pending;

struct xsess {
	struct xs_conf conf;
	xs_submit_fn submit;
	void *submit_ctx;
	struct xml_reader *rd;
	struct xbuf out;
	enum xs_state state;
	char stream_id[256];
	char end_cond[64];	/* stream error condition received from the server, or "" */
	const char *end_reason; /* why the stream ended, for logs */
	int stream_error_sent;	/* we sent a stream error (end_reason says which) */
	uint64_t now;		/* monotonic ms, set by the caller before each call */
	struct xs_pending *pend; /* this stream's requests waiting for the router, a list */
	size_t npend;
	uint8_t *fbuf;		/* FRAME_MAX, for building requests */
	unsigned ping_seq;
	char ping_id[32];	/* outstanding XEP-0199 ping, or "" */
	uint64_t session_seq;	/* ad-hoc session ids */
};

/* NULL on out of memory. conf's strings must outlive the session. */
struct xsess *xs_new(const struct xs_conf *conf, xs_submit_fn submit, void *ctx);
void xs_free(struct xsess *s);
/* A new stream: forgets any previous one (its pending requests will not be answered: their
 * IQs belonged to the old stream) and writes our stream header. -1 on out of memory. */
int xs_start(struct xsess *s);
/* Processes the server's bytes; returns the state afterwards. */
enum xs_state xs_feed(struct xsess *s, const void *buf, size_t n);
/* The server closed the connection (EOF or socket error). */
void xs_peer_gone(struct xsess *s, const char *why);
/* Clean shutdown: answers pending requests as failed, writes </stream:stream>. */
void xs_shutdown(struct xsess *s);
/* Sends an XEP-0199 ping to jid (when ready); its id is kept in ping_id until answered. */
void xs_ping(struct xsess *s, const char *jid);
size_t xs_pending_count(const struct xsess *s);

/* Lowercase hex SHA-1(stream id ‖ secret): the XEP-0114 handshake. */
void xmpp_handshake_hex(const char *stream_id, const char *secret, char out[41]);
/* SHA-1 (libcrypto) of a, then one NUL byte when nul_between, then b, as 40 lowercase hex
 * digits; 0, or -1 with out empty when libcrypto cannot compute it. */
int xmpp_sha1_hex(const char *a, const char *b, int nul_between, char out[41]);

/* Reconnect back-off (docs/xmpp.md, "What it does"): 1 s doubling to 60 s, ±20 % jitter, reset
 * after a connection stayed up 60 s; conflict → at least 30 s; not-authorized / host-unknown →
 * maximum. */
struct xmpp_backoff {
	uint32_t base_ms; /* 0 = initial */
};
/* The delay before the next attempt. cond: the stream error received ("" when none); up_ms: how
 * long the last connection was authenticated (0 if never); rnd: a uniform random 32-bit value. */
uint32_t xmpp_backoff_next(struct xmpp_backoff *b, const char *cond, uint64_t up_ms, uint32_t rnd);
#endif
