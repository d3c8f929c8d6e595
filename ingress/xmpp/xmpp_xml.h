/*
 * xmpp_xml: the XML side of the XEP-0114 component (docs/xmpp.md, "XML handling"). An incremental,
 * namespace-aware expat stream reader that enforces XMPP's restricted XML and the caps (stanza
 * bytes, element depth, attributes per element) and hands every complete top-level element as a
 * small tree; and an output buffer that escapes text and attribute values.
 * No sockets here: bytes in, trees out, so tests and fuzzers drive it directly.
 */
#ifndef XMPP_XML_H
#define XMPP_XML_H
#include <stddef.h>
#include <stdint.h>

#define XNS_STREAM "http://etherx.jabber.org/streams"
#define XNS_STREAMS_ERR "urn:ietf:params:xml:ns:xmpp-streams"
#define XNS_STANZAS_ERR "urn:ietf:params:xml:ns:xmpp-stanzas"
#define XML_MAX_DEPTH 32 /* elements below the stream element */
#define XML_MAX_ATTRS 64

/* ---- output ---- */

/* A growable byte buffer with a hard bound; a write past the bound sets full and is dropped. */
struct xbuf {
	char *p;
	size_t len, cap, max;
	int full;
};

void xb_init(struct xbuf *b, size_t max);
void xb_free(struct xbuf *b);
void xb_raw(struct xbuf *b, const char *s, size_t n);
void xb_str(struct xbuf *b, const char *s);
/* Escaped character data (& < >) and attribute values (& < > ' "). */
void xb_text(struct xbuf *b, const char *s);
void xb_attr(struct xbuf *b, const char *s);
/* Writes ` name='escaped value'`. */
void xb_kv(struct xbuf *b, const char *name, const char *value);
/* Drops the first n bytes (after they were written to a socket). */
void xb_consume(struct xbuf *b, size_t n);
/* 1 when s is UTF-8 made only of characters allowed in XML 1.0 (safe to echo), else 0. */
int xml_valid_chars(const char *s);

/* ---- stanza tree ---- */

struct xseg;
struct xattr {
	const char *name; /* "local" or "namespace|local" */
	const char *value;
};
struct xnode {
	const char *ns;	  /* "" when none */
	const char *name; /* local name */
	struct xattr *attrs;
	int nattrs;
	struct xnode *parent, *first, *last, *next;
	struct xseg *seg_head, *seg_tail; /* character data, joined on demand */
	size_t text_len;
	const char *text; /* joined when the element ends */
};

/* Attribute without namespace, or NULL. */
const char *xnode_attr(const struct xnode *n, const char *name);
/* First child with this namespace (NULL = any) and local name (NULL = any), or NULL. */
struct xnode *xnode_child(const struct xnode *n, const char *ns, const char *name);
/* Next sibling after c with this namespace and name (same matching), or NULL. */
struct xnode *xnode_next(const struct xnode *c, const char *ns, const char *name);
/* The element's character data, all pieces joined ("" when none); never NULL. */
const char *xnode_text(struct xnode *n);
/* 1 when n is element ns|name. */
int xnode_is(const struct xnode *n, const char *ns, const char *name);

/* ---- stream reader ---- */

enum xml_err {
	XERR_NONE = 0,
	XERR_RESTRICTED,    /* DOCTYPE, entity declaration, PI, comment: restricted-xml */
	XERR_POLICY,	    /* a cap was passed: policy-violation */
	XERR_NOT_WELL_FORMED, /* expat's verdict: not-well-formed */
	XERR_BAD_STREAM,    /* the root is not <stream:stream>: invalid-namespace */
	XERR_HANDLER,	    /* a callback asked to stop */
	XERR_MEMORY,	    /* out of memory: internal-server-error */
};

struct xml_reader;
struct xml_callbacks {
	void *ctx;
	/* The stream header: its attributes (NULL-terminated name/value pairs, expat's form).
	 * Return -1 to stop. */
	int (*stream_start)(void *ctx, const char **attrs);
	/* A complete top-level element; the tree lives until this returns. -1 stops. */
	int (*element)(void *ctx, struct xnode *top);
	/* </stream:stream> */
	void (*stream_end)(void *ctx);
};

/* max_stanza: bytes from a top-level element's first to last byte, and the most input that
 * may wait inside expat unparsed. NULL on out of memory. */
struct xml_reader *xml_reader_new(size_t max_stanza, const struct xml_callbacks *cb);
void xml_reader_free(struct xml_reader *r);
/* Parses n more bytes. 0, or -1 once an error stopped the reader (see xml_reader_error). */
int xml_reader_feed(struct xml_reader *r, const void *buf, size_t n);
enum xml_err xml_reader_error(const struct xml_reader *r, const char **detail);
/* 1 when this expat lets handlers run without waiting for more input (reparse deferral off
 * or absent). */
int xml_reparse_deferral_disabled(const struct xml_reader *r);
#endif
