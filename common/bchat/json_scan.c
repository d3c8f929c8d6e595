/*
 * json_scan: validation in one pass with an explicit stack (no recursion, so a deep document
 * costs a bit per level, not a stack frame), then reading in place. The readers trust the
 * document to be valid: they are only ever given spans that jscan_object() accepted.
 */
#include "json_scan.h"
#include "hex.h"
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
	while (i < n && is_ws((unsigned char)s[i]))
		i++;
	return i;
}

/* Length of the strict UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, nothing
 * above U+10FFFF), or 0 when there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t need;
	uint32_t cp;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 1;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 2;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 3;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n - 1 < need)
		return 0;
	for (size_t k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need + 1;
}

static int hex4(const char *s, size_t n, size_t i, unsigned *v)
{
	*v = 0;
	if (n < 4 || i > n - 4)
		return -1;
	for (size_t k = 0; k < 4; k++) {
		int d = hex_value((unsigned char)s[i + k]);
		if (d < 0)
			return -1;
		*v = *v << 4 | (unsigned)d;
	}
	return 0;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
/* Whether all 8 bytes of v are plain string characters: ASCII, not a control character, not
 * '"' or '\\'. Once no byte has its high bit set, x - k * ONES sets a byte's high bit only where
 * that byte of x is below k, or a lower byte was (SWAR). */
static int plain8(uint64_t v)
{
	uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');
	return ((v | (v - ONES * 0x20) | (q - ONES) | (b - ONES)) & HIGHS) == 0;
}

/* A string starting at s[i] == '"'; the index after its closing quote, or 0. */
static size_t check_string(const char *s, size_t n, size_t i, int nul_ok)
{
	for (i++; i < n;) {
		unsigned char c;
		unsigned cp, lo;
		size_t k;
		uint64_t v;
		/* Runs of plain characters, 8 at a time. */
		while (n - i >= 8 && (memcpy(&v, s + i, 8), plain8(v)))
			i += 8;
		if (i >= n)
			break;
		c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			i++;
			continue;
		}
		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (c != '\\') {
			if ((k = utf8_seq((const unsigned char *)s + i, n - i)) == 0)
				return 0;
			i += k;
			continue;
		}
		if (i + 1 >= n)
			return 0;
		c = (unsigned char)s[i + 1];
		if (c != 'u') {
			if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' && c != 'r' &&
			    c != 't')
				return 0;
			i += 2;
			continue;
		}
		if (hex4(s, n, i + 2, &cp) < 0)
			return 0;
		i += 6;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (i + 1 >= n || s[i] != '\\' || s[i + 1] != 'u' || hex4(s, n, i + 2, &lo) < 0 ||
			    lo < 0xdc00 || lo > 0xdfff)
				return 0;
			i += 6;
		} else if ((cp >= 0xdc00 && cp <= 0xdfff) || (cp == 0 && !nul_ok)) {
			return 0;
		}
	}
	return 0;
}

/* A number starting at s[i]; the index after it, or 0. As with strtod, a number too large for
 * a double is refused (underflow to zero is not). */
static size_t check_number(const char *s, size_t n, size_t i)
{
	size_t st = i;
	int plain = 1;
	if (s[i] == '-')
		i++;
	if (i >= n)
		return 0;
	if (s[i] == '0') {
		i++;
		if (i < n && is_digit((unsigned char)s[i]))
			return 0;
	} else if (is_digit((unsigned char)s[i])) {
		while (i < n && is_digit((unsigned char)s[i]))
			i++;
	} else {
		return 0;
	}
	if (i < n && s[i] == '.') {
		if (++i >= n || !is_digit((unsigned char)s[i]))
			return 0;
		while (i < n && is_digit((unsigned char)s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		plain = 0;
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit((unsigned char)s[i]))
			return 0;
		while (i < n && is_digit((unsigned char)s[i]))
			i++;
	}
	if (!plain || i - st > 300) {
		char small[64], *copy = i - st < sizeof small ? small : malloc(i - st + 1);
		double d;
		int over;
		if (copy == NULL)
			return 0;
		memcpy(copy, s + st, i - st);
		copy[i - st] = '\0';
		errno = 0;
		d = strtod(copy, NULL);
		over = errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL);
		if (copy != small)
			free(copy);
		if (over)
			return 0;
	}
	return i;
}

static size_t check_literal(const char *s, size_t n, size_t i)
{
	static const char *const lits[] = {"true", "false", "null"};
	for (size_t k = 0; k < 3; k++) {
		size_t l = strlen(lits[k]);
		if (n - i >= l && memcmp(s + i, lits[k], l) == 0)
			return i + l;
	}
	return 0;
}

int jscan_object(const char *s, size_t n, unsigned flags, struct jval *root)
{
	unsigned char is_obj[JSCAN_MAX_DEPTH / 8 + 1]; /* a bit per open container */
	size_t depth = 0, i = skip_ws(s, n, 0), start = i, end = 0;
	int nul_ok = (flags & JSCAN_ALLOW_NUL) != 0;
	enum { VALUE, KEY, AFTER } st = VALUE;

	if (i >= n || s[i] != '{')
		return -1;
	for (;;) {
		i = skip_ws(s, n, i);
		if (st == AFTER && depth == 0)
			break;
		if (i >= n)
			return -1;
		unsigned char c = (unsigned char)s[i];
		if (st == KEY) {
			if (c != '"' || (i = check_string(s, n, i, 0)) == 0)
				return -1;
			i = skip_ws(s, n, i);
			if (i >= n || s[i] != ':')
				return -1;
			i++;
			st = VALUE;
		} else if (st == AFTER) {
			int obj = is_obj[(depth - 1) / 8] >> ((depth - 1) % 8) & 1;
			if (c == ',') {
				st = obj ? KEY : VALUE;
				i++;
			} else if (c == (obj ? '}' : ']')) {
				depth--;
				end = ++i;
			} else {
				return -1;
			}
		} else if (c == '{' || c == '[') {
			if (depth == JSCAN_MAX_DEPTH)
				return -1;
			if (c == '{')
				is_obj[depth / 8] = (unsigned char)(is_obj[depth / 8] | 1u << (depth % 8));
			else
				is_obj[depth / 8] = (unsigned char)(is_obj[depth / 8] & ~(1u << (depth % 8)));
			depth++;
			i = skip_ws(s, n, i + 1);
			if (i < n && s[i] == (c == '{' ? '}' : ']')) {
				depth--;
				end = ++i;
				st = AFTER;
			} else {
				st = c == '{' ? KEY : VALUE;
			}
		} else {
			if (c == '"')
				i = check_string(s, n, i, nul_ok);
			else if (c == '-' || is_digit(c))
				i = check_number(s, n, i);
			else
				i = check_literal(s, n, i);
			if (i == 0)
				return -1;
			st = AFTER;
		}
	}
	if (i != n)
		return -1;
	root->type = J_OBJECT;
	root->p = s + start;
	root->n = end - start;
	return 0;
}

/* ---- reading a validated document ---- */

/* The index after the string at s[i] == '"': its closing quote is the first one not escaped,
 * that is, not preceded by an odd run of backslashes (the opening quote ends any run). */
static size_t skip_string(const char *s, size_t n, size_t i)
{
	const char *p = s + i + 1, *end = s + n, *q;
	for (;; p = q + 1) {
		size_t bs = 0;
		q = memchr(p, '"', (size_t)(end - p));
		while (q[-1 - (ptrdiff_t)bs] == '\\')
			bs++;
		if (bs % 2 == 0)
			return (size_t)(q - s) + 1;
	}
}

/* The index after the value at s[i] (s ends at n). */
static size_t skip_value(const char *s, size_t n, size_t i)
{
	size_t d = 0;
	if (s[i] == '"')
		return skip_string(s, n, i);
	if (s[i] != '{' && s[i] != '[') {
		while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws((unsigned char)s[i]))
			i++;
		return i;
	}
	for (;;) {
		char c = s[i];
		if (c == '"') {
			i = skip_string(s, n, i);
			continue;
		}
		if (c == '{' || c == '[')
			d++;
		else if ((c == '}' || c == ']') && --d == 0)
			return i + 1;
		i++;
	}
}

static struct jval value_at(const char *s, size_t n, size_t i)
{
	struct jval v = {J_NUMBER, s + i, skip_value(s, n, i) - i};
	switch (s[i]) {
	case '"':
		v.type = J_STRING;
		break;
	case '{':
		v.type = J_OBJECT;
		break;
	case '[':
		v.type = J_ARRAY;
		break;
	case 't':
		v.type = J_TRUE;
		break;
	case 'f':
		v.type = J_FALSE;
		break;
	case 'n':
		v.type = J_NULL;
		break;
	}
	return v;
}

/* Decodes the character at *p (inside a string's quotes) into out; returns its byte count and
 * moves *p past it. A surrogate pair is one character. */
static size_t unescape_one(const char **p, char out[4])
{
	const char *s = *p;
	unsigned cp, lo;
	if (s[0] != '\\') {
		out[0] = s[0];
		*p = s + 1;
		return 1;
	}
	*p = s + 2;
	switch (s[1]) {
	case 'b': out[0] = '\b'; return 1;
	case 'f': out[0] = '\f'; return 1;
	case 'n': out[0] = '\n'; return 1;
	case 'r': out[0] = '\r'; return 1;
	case 't': out[0] = '\t'; return 1;
	case 'u': break;
	default: out[0] = s[1]; return 1;
	}
	hex4(s, 6, 2, &cp);
	*p = s + 6;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		hex4(s, 12, 8, &lo);
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		*p = s + 12;
	}
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Whether the string whose raw bytes (quotes included) are s[0..n) unescapes to lit[0..ln). */
static int string_eq(const char *s, size_t n, const char *lit, size_t ln)
{
	const char *p = s + 1, *end = s + n - 1;
	size_t off = 0;
	if (memchr(p, '\\', (size_t)(end - p)) == NULL)
		return (size_t)(end - p) == ln && memcmp(p, lit, ln) == 0;
	while (p < end) {
		char ch[4];
		size_t k = unescape_one(&p, ch);
		if (ln - off < k || memcmp(lit + off, ch, k) != 0)
			return 0;
		off += k;
	}
	return off == ln;
}

struct jval jscan_get(struct jval obj, const char *key)
{
	struct jval found = {J_ABSENT, NULL, 0};
	const char *s = obj.p;
	size_t n = obj.n, kl = strlen(key), i;
	if (obj.type != J_OBJECT)
		return found;
	for (i = skip_ws(s, n, 1); s[i] == '"';) {
		size_t ke = skip_string(s, n, i);
		int match = string_eq(s + i, ke - i, key, kl);
		i = skip_ws(s, n, skip_ws(s, n, ke) + 1); /* past the ':' */
		struct jval v = value_at(s, n, i);
		if (match)
			found = v;
		i = skip_ws(s, n, i + v.n);
		if (s[i] != ',')
			break;
		i = skip_ws(s, n, i + 1);
	}
	return found;
}

size_t jscan_str(struct jval v, char *out)
{
	const char *p = v.p + 1, *end = v.p + v.n - 1;
	size_t off = 0;
	if (v.type != J_STRING)
		return 0;
	while (p < end) {
		const char *bs = memchr(p, '\\', (size_t)(end - p));
		size_t run = (size_t)((bs != NULL ? bs : end) - p);
		memcpy(out + off, p, run);
		off += run;
		p += run;
		if (p < end)
			off += unescape_one(&p, out + off);
	}
	return off;
}

int jscan_str_is(struct jval v, const char *lit)
{
	return v.type == J_STRING && string_eq(v.p, v.n, lit, strlen(lit));
}

int jscan_next(struct jval v, size_t *pos, struct jval *elem)
{
	const char *s = v.p;
	size_t n = v.n, i;
	if (v.type != J_ARRAY)
		return 0;
	i = skip_ws(s, n, *pos == 0 ? 1 : *pos);
	if (*pos != 0) {
		if (s[i] != ',')
			return 0;
		i = skip_ws(s, n, i + 1);
	}
	if (s[i] == ']')
		return 0;
	*elem = value_at(s, n, i);
	*pos = i + elem->n;
	return 1;
}
