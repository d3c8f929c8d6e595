/*
 * xmpp_xml: expat stream reader with XMPP's restrictions and caps, the per-stanza tree, and the
 * escaping output buffer (see xmpp_xml.h).
 *
 * Memory is bounded three ways: expat never holds more than max_stanza unparsed bytes (checked
 * after every chunk fed, chunks are small), a top-level element may span at most max_stanza
 * bytes, and the tree of one element lives in an arena capped at a multiple of max_stanza; an
 * element whose tree would pass that cap (only contrived ones do) is a policy violation too.
 */
#include "xmpp_xml.h"
#include <expat.h>
#include <stdlib.h>
#include <string.h>

/*
 * Reparse deferral (expat >= 2.6.0, and Debian's patched 2.5.0) can hold handler calls back
 * until more input arrives, which stalls an interactive stream. The function is declared weak:
 * with an expat that has it, it is called; with one that lacks it, its address is NULL and
 * there is no deferral to turn off. This needs no configure step and follows the library
 * actually loaded at run time, not the headers the binary was built with.
 */
extern XML_Bool XML_SetReparseDeferralEnabled(XML_Parser parser, XML_Bool enabled) __attribute__((weak));

#define FEED_CHUNK 1024
#define ARENA_BLOCK 16384

/* ---------------------------------------------------------------- output buffer */

void xb_init(struct xbuf *b, size_t max)
{
	memset(b, 0, sizeof *b);
	b->max = max;
}

void xb_free(struct xbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

void xb_raw(struct xbuf *b, const char *s, size_t n)
{
	if (b->full)
		return;
	if (b->len + n + 1 > b->max) {
		b->full = 1;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->full = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void xb_str(struct xbuf *b, const char *s)
{
	xb_raw(b, s, strlen(s));
}

static void escape(struct xbuf *b, const char *s, int attr)
{
	const char *run = s;
	for (; *s; s++) {
		const char *rep = NULL;
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '\'': rep = attr ? "&apos;" : NULL; break;
		case '"': rep = attr ? "&quot;" : NULL; break;
		default: break;
		}
		if (rep) {
			xb_raw(b, run, (size_t)(s - run));
			xb_str(b, rep);
			run = s + 1;
		}
	}
	xb_raw(b, run, (size_t)(s - run));
}

void xb_text(struct xbuf *b, const char *s)
{
	escape(b, s, 0);
}

void xb_attr(struct xbuf *b, const char *s)
{
	escape(b, s, 1);
}

void xb_kv(struct xbuf *b, const char *name, const char *value)
{
	xb_raw(b, " ", 1);
	xb_str(b, name);
	xb_raw(b, "='", 2);
	xb_attr(b, value);
	xb_raw(b, "'", 1);
}

void xb_consume(struct xbuf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->p, b->p + n, b->len - n);
		b->len -= n;
	}
	if (b->p)
		b->p[b->len] = '\0';
}

int xml_valid_chars(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		uint32_t c;
		int n;
		if (*p < 0x80) {
			c = *p;
			n = 0;
		} else if ((*p & 0xe0) == 0xc0) {
			c = *p & 0x1f;
			n = 1;
		} else if ((*p & 0xf0) == 0xe0) {
			c = *p & 0x0f;
			n = 2;
		} else if ((*p & 0xf8) == 0xf0) {
			c = *p & 0x07;
			n = 3;
		} else {
			return 0;
		}
		p++;
		for (int i = 0; i < n; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			c = c << 6 | (*p & 0x3f);
		}
		/* Overlong forms, surrogates and out-of-range values are not characters. */
		if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) || (n == 3 && c < 0x10000) || c > 0x10ffff ||
		    (c >= 0xd800 && c <= 0xdfff))
			return 0;
		if (c < 0x20 && c != 0x9 && c != 0xa && c != 0xd)
			return 0;
		if (c == 0xfffe || c == 0xffff)
			return 0;
	}
	return 1;
}

/* ---------------------------------------------------------------- tree */

struct xseg {
	struct xseg *next;
	size_t len;
	char s[];
};

struct ablock {
	struct ablock *next;
	size_t used, size;
	char mem[];
};

struct arena {
	struct ablock *head; /* the first block is kept across resets */
	size_t total, cap;
	int over;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	struct ablock *b = a->head;
	n = (n + 15) & ~(size_t)15;
	if (b == NULL || b->size - b->used < n) {
		size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		if (a->total + size > a->cap || (b = malloc(sizeof *b + size)) == NULL) {
			a->over = 1;
			return NULL;
		}
		b->size = size;
		b->used = 0;
		b->next = a->head;
		a->head = b;
		a->total += size;
	}
	b->used += n;
	return b->mem + b->used - n;
}

static char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static void arena_reset(struct arena *a)
{
	struct ablock *b = a->head, *keep = NULL;
	while (b) {
		struct ablock *next = b->next;
		if (next == NULL && b->size == ARENA_BLOCK) {
			keep = b; /* the oldest block, always a standard one */
			keep->used = 0;
		} else {
			free(b);
		}
		b = next;
	}
	a->head = keep;
	a->total = keep ? keep->size : 0;
	a->over = 0;
}

static void arena_free(struct arena *a)
{
	struct ablock *b = a->head;
	while (b) {
		struct ablock *next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
}

const char *xnode_attr(const struct xnode *n, const char *name)
{
	for (int i = 0; i < n->nattrs; i++)
		if (strcmp(n->attrs[i].name, name) == 0)
			return n->attrs[i].value;
	return NULL;
}

int xnode_is(const struct xnode *n, const char *ns, const char *name)
{
	return n != NULL && (ns == NULL || strcmp(n->ns, ns) == 0) && (name == NULL || strcmp(n->name, name) == 0);
}

struct xnode *xnode_next(const struct xnode *c, const char *ns, const char *name)
{
	for (c = c ? c->next : NULL; c; c = c->next)
		if (xnode_is(c, ns, name))
			return (struct xnode *)c;
	return NULL;
}

struct xnode *xnode_child(const struct xnode *n, const char *ns, const char *name)
{
	struct xnode *c = n ? n->first : NULL;
	if (c == NULL || xnode_is(c, ns, name))
		return c;
	return xnode_next(c, ns, name);
}

/* ---------------------------------------------------------------- reader */

struct xml_reader {
	XML_Parser p;
	struct xml_callbacks cb;
	size_t max_stanza;
	struct arena arena;
	int depth; /* 0 before the stream element, 1 inside it, 2+ inside a top-level element */
	struct xnode *top, *cur;
	uint64_t fed, event_end, stanza_start;
	enum xml_err err;
	const char *detail;
	int deferral_off;
};

const char *xnode_text(struct xnode *n)
{
	return n->text ? n->text : "";
}

/* Joins an element's character data once it is complete; 0, or -1 when the arena is full. */
static int join_text(struct arena *a, struct xnode *n)
{
	char *t, *p;
	if (n->seg_head == NULL || n->seg_head == n->seg_tail) {
		n->text = n->seg_head ? n->seg_head->s : "";
		return 0;
	}
	if ((t = arena_alloc(a, n->text_len + 1)) == NULL)
		return -1;
	p = t;
	for (struct xseg *s = n->seg_head; s; s = s->next) {
		memcpy(p, s->s, s->len);
		p += s->len;
	}
	*p = '\0';
	n->text = t;
	return 0;
}

static void stop(struct xml_reader *r, enum xml_err e, const char *detail)
{
	if (r->err == XERR_NONE) {
		r->err = e;
		r->detail = detail;
	}
	XML_StopParser(r->p, XML_FALSE);
}

/* Records where the current event ends; enforces the span of the element being read. */
static int note_event(struct xml_reader *r)
{
	XML_Index idx = XML_GetCurrentByteIndex(r->p);
	int cnt = XML_GetCurrentByteCount(r->p);
	if (idx >= 0)
		r->event_end = (uint64_t)idx + (uint64_t)(cnt > 0 ? cnt : 0);
	if (r->depth >= 2 && r->event_end - r->stanza_start > r->max_stanza) {
		stop(r, XERR_POLICY, "stanza too large");
		return -1;
	}
	return 0;
}

static void split_name(struct xml_reader *r, const char *full, const char **ns, const char **local)
{
	const char *bar = strchr(full, '|');
	const struct xnode *parent = r->cur;
	if (bar == NULL) {
		*ns = "";
		*local = arena_strndup(&r->arena, full, strlen(full));
		return;
	}
	*local = arena_strndup(&r->arena, bar + 1, strlen(bar + 1));
	/* Children nearly always share their parent's namespace: store it once. */
	if (parent && strlen(parent->ns) == (size_t)(bar - full) && memcmp(parent->ns, full, (size_t)(bar - full)) == 0)
		*ns = parent->ns;
	else
		*ns = arena_strndup(&r->arena, full, (size_t)(bar - full));
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct xml_reader *r = ud;
	struct xnode *n;
	int na = 0;

	if (r->err || note_event(r) < 0)
		return;
	if (r->depth == 0) {
		if (strcmp(name, XNS_STREAM "|stream") != 0) {
			stop(r, XERR_BAD_STREAM, "root is not stream:stream");
			return;
		}
		r->depth = 1;
		if (r->cb.stream_start && r->cb.stream_start(r->cb.ctx, atts) < 0)
			stop(r, XERR_HANDLER, "stopped by the stream header handler");
		return;
	}
	if (r->depth - 1 >= XML_MAX_DEPTH) {
		stop(r, XERR_POLICY, "elements nested too deep");
		return;
	}
	while (atts[2 * na])
		na++;
	if (na > XML_MAX_ATTRS) {
		stop(r, XERR_POLICY, "too many attributes");
		return;
	}
	if (r->depth == 1) {
		arena_reset(&r->arena);
		r->top = r->cur = NULL;
		r->stanza_start = (uint64_t)XML_GetCurrentByteIndex(r->p);
	}
	n = arena_alloc(&r->arena, sizeof *n);
	if (n == NULL)
		goto over;
	memset(n, 0, sizeof *n);
	split_name(r, name, &n->ns, &n->name);
	if (na > 0 && (n->attrs = arena_alloc(&r->arena, (size_t)na * sizeof *n->attrs)) == NULL)
		goto over;
	for (int i = 0; i < na; i++) {
		n->attrs[i].name = arena_strndup(&r->arena, atts[2 * i], strlen(atts[2 * i]));
		n->attrs[i].value = arena_strndup(&r->arena, atts[2 * i + 1], strlen(atts[2 * i + 1]));
		if (n->attrs[i].name == NULL || n->attrs[i].value == NULL)
			goto over;
	}
	n->nattrs = na;
	if (n->name == NULL || n->ns == NULL)
		goto over;
	n->parent = r->cur;
	if (r->cur) {
		if (r->cur->last)
			r->cur->last->next = n;
		else
			r->cur->first = n;
		r->cur->last = n;
	} else {
		r->top = n;
	}
	r->cur = n;
	r->depth++;
	return;
over:
	stop(r, XERR_POLICY, "stanza tree too large");
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct xml_reader *r = ud;
	(void)name;
	if (r->err || note_event(r) < 0)
		return;
	if (r->depth == 1) {
		r->depth = 0;
		if (r->cb.stream_end)
			r->cb.stream_end(r->cb.ctx);
		return;
	}
	if (join_text(&r->arena, r->cur) < 0) {
		stop(r, XERR_POLICY, "stanza tree too large");
		return;
	}
	r->depth--;
	if (r->depth > 1) {
		r->cur = r->cur->parent;
		return;
	}
	if (r->cb.element && r->cb.element(r->cb.ctx, r->top) < 0)
		stop(r, XERR_HANDLER, "stopped by the element handler");
	r->top = r->cur = NULL;
	arena_reset(&r->arena);
}

static int all_space(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return 0;
	return 1;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct xml_reader *r = ud;
	struct xseg *seg;
	if (r->err || note_event(r) < 0)
		return;
	/* Text between top-level elements is whitespace keepalive; whitespace between child
	 * elements (pretty printing) carries nothing. */
	if (r->depth < 2 || (r->cur->first != NULL && all_space(s, len)))
		return;
	if ((seg = arena_alloc(&r->arena, sizeof *seg + (size_t)len + 1)) == NULL) {
		stop(r, XERR_POLICY, "stanza tree too large");
		return;
	}
	seg->next = NULL;
	seg->len = (size_t)len;
	memcpy(seg->s, s, (size_t)len);
	seg->s[len] = '\0';
	if (r->cur->seg_tail)
		r->cur->seg_tail->next = seg;
	else
		r->cur->seg_head = seg;
	r->cur->seg_tail = seg;
	r->cur->text_len += (size_t)len;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
			       int has_internal)
{
	(void)name, (void)sysid, (void)pubid, (void)has_internal;
	stop(ud, XERR_RESTRICTED, "DOCTYPE");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int pe, const XML_Char *value, int vlen,
			      const XML_Char *base, const XML_Char *sysid, const XML_Char *pubid,
			      const XML_Char *notation)
{
	(void)name, (void)pe, (void)value, (void)vlen, (void)base, (void)sysid, (void)pubid, (void)notation;
	stop(ud, XERR_RESTRICTED, "entity declaration");
}

static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
	(void)target, (void)data;
	stop(ud, XERR_RESTRICTED, "processing instruction");
}

static void XMLCALL on_comment(void *ud, const XML_Char *data)
{
	(void)data;
	stop(ud, XERR_RESTRICTED, "comment");
}

struct xml_reader *xml_reader_new(size_t max_stanza, const struct xml_callbacks *cb)
{
	struct xml_reader *r = calloc(1, sizeof *r);
	if (r == NULL)
		return NULL;
	/* The encoding is fixed: XMPP streams are UTF-8 whatever a declaration says. */
	r->p = XML_ParserCreateNS("UTF-8", '|');
	if (r->p == NULL) {
		free(r);
		return NULL;
	}
	r->cb = *cb;
	r->max_stanza = max_stanza;
	r->arena.cap = 8 * max_stanza + 4 * ARENA_BLOCK;
	XML_SetUserData(r->p, r);
	XML_SetElementHandler(r->p, on_start, on_end);
	XML_SetCharacterDataHandler(r->p, on_text);
	XML_SetStartDoctypeDeclHandler(r->p, on_doctype);
	XML_SetEntityDeclHandler(r->p, on_entity);
	XML_SetProcessingInstructionHandler(r->p, on_pi);
	XML_SetCommentHandler(r->p, on_comment);
	XML_SetParamEntityParsing(r->p, XML_PARAM_ENTITY_PARSING_NEVER);
#if (defined(XML_DTD) || defined(XML_GE)) &&                                                     \
	(XML_MAJOR_VERSION > 2 || (XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 4))
	/* No entity can be declared (DOCTYPE is refused), but keep the limits tight anyway. */
	XML_SetBillionLaughsAttackProtectionMaximumAmplification(r->p, 2.0f);
	XML_SetBillionLaughsAttackProtectionActivationThreshold(r->p, 1024 * 1024);
#endif
	if (XML_SetReparseDeferralEnabled != NULL)
		r->deferral_off = XML_SetReparseDeferralEnabled(r->p, XML_FALSE) == XML_TRUE;
	else
		r->deferral_off = 1; /* this expat predates deferral */
	return r;
}

void xml_reader_free(struct xml_reader *r)
{
	if (r == NULL)
		return;
	XML_ParserFree(r->p);
	arena_free(&r->arena);
	free(r);
}

int xml_reader_feed(struct xml_reader *r, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0 && r->err == XERR_NONE) {
		int k = n > FEED_CHUNK ? FEED_CHUNK : (int)n;
		if (XML_Parse(r->p, p, k, XML_FALSE) != XML_STATUS_OK && r->err == XERR_NONE) {
			enum XML_Error e = XML_GetErrorCode(r->p);
			r->err = e == XML_ERROR_NO_MEMORY ? XERR_MEMORY : XERR_NOT_WELL_FORMED;
			r->detail = XML_ErrorString(e);
		}
		r->fed += (uint64_t)k;
		p += k;
		n -= (size_t)k;
		if (r->err)
			break;
		/* Input expat holds without having reported it (a huge tag, deferred bytes). */
		if (r->fed - r->event_end > r->max_stanza)
			stop(r, XERR_POLICY, "too much unparsed input");
		else if (r->depth >= 2 && r->fed - r->stanza_start > r->max_stanza)
			stop(r, XERR_POLICY, "stanza too large");
	}
	return r->err == XERR_NONE ? 0 : -1;
}

enum xml_err xml_reader_error(const struct xml_reader *r, const char **detail)
{
	if (detail)
		*detail = r->detail ? r->detail : "";
	return r->err;
}

int xml_reparse_deferral_disabled(const struct xml_reader *r)
{
	return r->deferral_off;
}
