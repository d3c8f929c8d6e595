/*
 * http1: the parts of HTTP/1.1 (RFC 9112) the two HTTP servers read from a client (the onion
 * ingress, and statsd's pages): the request head and a chunked body. Pure functions over
 * bytes, no I/O.
 */
#ifndef HTTP1_H
#define HTTP1_H
#include <stddef.h>
#include <stdint.h>

#define HTTP1_PATH_MAX 256

enum http1_method { HTTP1_OTHER, HTTP1_POST, HTTP1_HEAD, HTTP1_GET };

struct http1_head {
	enum http1_method method;
	char path[HTTP1_PATH_MAX]; /* percent-decoded, query cut; "" when it cannot name a route */
	int minor;		   /* HTTP/1.<minor> */
	int64_t content_length;	   /* -1 when absent */
	int chunked;
	int expect_continue;
	int keep_alive;		   /* HTTP/1.1 without Connection: close */
	const char *auth;	   /* Authorization value inside the parsed bytes, or NULL */
	size_t auth_len;
};

/* Looks for a complete head at the start of buf, resuming the search at *scanned (0 at first).
 * The head's length (request line, fields and the empty line), 0 while it is incomplete, -1
 * when it is malformed (answer 400 and close), or -2 when a well-formed request line names an
 * HTTP version other than 1.x (505, or 400 where a server does not tell the two apart). buf must not start with CR or LF: the
 * caller drops empty lines before a request line (RFC 9112 §2.2). */
long http1_parse_head(const char *buf, size_t len, size_t *scanned, struct http1_head *h);

/* A chunked body being read (RFC 9112 §7.1); zero it to start. */
struct http1_chunked {
	int state;
	int digits;
	uint64_t left;
	size_t line; /* bytes of the current extension or trailer line */
};

typedef void (*http1_sink)(void *ctx, const unsigned char *p, size_t n);

/* Decodes in, handing body bytes to sink. The bytes used (the body may end before len), or -1
 * when malformed. *done is set once the last chunk and the trailer have been read. */
long http1_chunked_feed(struct http1_chunked *c, const unsigned char *in, size_t len, int *done, http1_sink sink,
			void *ctx);
#endif
