/*
 * json_scan: a strict JSON (RFC 8259) validator and reader that builds no tree and allocates
 * nothing, for the small documents on the onion hot path (the trailer, the v2 request and its
 * body, the v4 metadata). A document is validated once, whole; afterwards values are spans of
 * it, found by member name and read in place.
 *
 * It accepts exactly what jansson's json_loadb() accepts with JSON_DECODE_INT_AS_REAL (and
 * JSON_ALLOW_NUL when JSCAN_ALLOW_NUL is given) where the top-level value is an object:
 * nesting at most 2048 deep, strict UTF-8, escapes with paired surrogates only, \u0000 never in
 * a member name, numbers that overflow a double refused, duplicate names allowed (the last one
 * counts). tests/fuzz/fuzz_json_scan.c holds it to that against jansson itself.
 */
#ifndef JSON_SCAN_H
#define JSON_SCAN_H
#include <stddef.h>

enum jtype { J_ABSENT, J_NULL, J_FALSE, J_TRUE, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

/* A value inside a validated document: its type and its raw bytes (a string's with quotes). */
struct jval {
	enum jtype type;
	const char *p;
	size_t n;
};

#define JSCAN_ALLOW_NUL 1u /* \u0000 may appear in string values */
#define JSCAN_MAX_DEPTH 2048

/* Validates s[0..n) as one JSON text whose top-level value is an object; 0 and *root set, or
 * -1. Whitespace around the object is allowed, nothing else. */
int jscan_object(const char *s, size_t n, unsigned flags, struct jval *root);
/* The value of the last member of obj (J_OBJECT of a validated document) whose name is key
 * (compared after unescaping); type J_ABSENT when there is none. */
struct jval jscan_get(struct jval obj, const char *key);
/* The unescaped bytes of a J_STRING value into out, which has room for v.n bytes (never less
 * than needed); returns their number. They may include NUL bytes when JSCAN_ALLOW_NUL was given. */
size_t jscan_str(struct jval v, char *out);
/* The elements of a J_ARRAY in order: start with *pos = 0; 1 and *elem set while there is
 * one, then 0 (at once for any other type). */
int jscan_next(struct jval v, size_t *pos, struct jval *elem);
/* Exactly: a J_STRING whose unescaped bytes are lit (lit holds no NUL). */
int jscan_str_is(struct jval v, const char *lit);
#endif
