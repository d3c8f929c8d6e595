/*
 * http1.c: HTTP/1.1 for clients that do not pick h2 by ALPN (a sender posting to the OAuth or
 * WNS endpoints may). A minimal but correct server side: request line and header fields,
 * Content-Length bodies, "Expect: 100-continue", keep-alive (HTTP/1.1 default, "Connection:
 * close", HTTP/1.0), one request answered at a time; chunked request bodies are refused.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "mock.h"

enum { H1_MAX_HEAD = 65536 };

/* A protocol-level error answered without routing: the connection closes after it. */
static int h1_fail(struct mock_conn *c, int status)
{
	struct mock_buf b = { 0 };
	int rc;

	mock_buf_printf(&b, "HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n", status,
			mock_reason_phrase(status));
	rc = conn_out_append(c, b.p, b.len);
	mock_buf_free(&b);
	c->want_close = MOCK_CLOSE_GRACEFUL;
	mock_buf_reset(&c->in);
	return rc;
}

static const char *trim(char *s, char **end)
{
	while (*s == ' ' || *s == '\t')
		s++;
	while (*end > s && ((*end)[-1] == ' ' || (*end)[-1] == '\t'))
		(*end)--;
	**end = '\0';
	return s;
}

static int token_char(int ch)
{
	return ch > 32 && ch < 127 && !strchr("()<>@,;:\\\"/[]?={}", ch);
}

/* Parses one request from c->in if complete. 1 = a request was started, 0 = need more, -1 = error. */
static int h1_parse_one(struct mock_conn *c)
{
	char *buf = c->in.p, *head_end, *line, *eol, *colon, *sp1, *sp2, *vend;
	const char *name, *value;
	size_t skip = 0, head_len, body_len = 0;
	long long cl = -1, v;
	int http10 = 0, conn_close = 0, conn_keep = 0, expect_continue = 0, chunked = 0;
	struct mock_req *r;

	while (skip + 1 < c->in.len && buf[skip] == '\r' && buf[skip + 1] == '\n')
		skip += 2; /* empty lines before a request line are ignored */
	if (skip) {
		memmove(buf, buf + skip, c->in.len - skip);
		c->in.len -= skip;
		buf[c->in.len] = '\0';
	}
	if (c->in.len == 0)
		return 0;
	head_end = memmem(buf, c->in.len, "\r\n\r\n", 4);
	if (!head_end)
		return c->in.len > H1_MAX_HEAD ? (h1_fail(c, 431), -1) : 0;
	head_len = (size_t)(head_end - buf) + 4;
	if (memchr(buf, '\0', head_len))
		return h1_fail(c, 400), -1;

	/* pass 1: framing headers only, so that we know whether the body is complete */
	for (line = strstr(buf, "\r\n") + 2; line < head_end + 2; line = eol + 2) {
		eol = strstr(line, "\r\n");
		if (eol == line)
			break;
		colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon || colon == line)
			return h1_fail(c, 400), -1;
		for (char *p = line; p < colon; p++)
			if (!token_char((unsigned char)*p))
				return h1_fail(c, 400), -1;
		value = colon + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		if ((size_t)(colon - line) == 14 && strncasecmp(line, "content-length", 14) == 0) {
			char *e;
			if (!isdigit((unsigned char)*value))
				return h1_fail(c, 400), -1;
			v = strtoll(value, &e, 10);
			while (*e == ' ' || *e == '\t')
				e++;
			if (e != eol || (cl >= 0 && cl != v))
				return h1_fail(c, 400), -1;
			cl = v;
		} else if ((size_t)(colon - line) == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
			chunked = 1;
		} else if ((size_t)(colon - line) == 6 && strncasecmp(line, "expect", 6) == 0) {
			expect_continue = strncasecmp(value, "100-continue", 12) == 0;
		}
	}
	if (chunked)
		return h1_fail(c, 411), -1;
	if (cl > MOCK_MAX_BODY)
		return h1_fail(c, 413), -1;
	body_len = cl > 0 ? (size_t)cl : 0;
	if (c->in.len < head_len + body_len) {
		if (expect_continue && !c->h1_continue_sent) {
			c->h1_continue_sent = 1;
			if (conn_out_append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
				return -1;
		}
		return 0;
	}

	/* pass 2: the request itself */
	r = req_new(c);
	if (!r)
		return -1;
	eol = strstr(buf, "\r\n");
	*eol = '\0';
	sp1 = strchr(buf, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || sp1 == buf || sp2 == sp1 + 1 || strchr(sp2 + 1, ' ') ||
	    (strcmp(sp2 + 1, "HTTP/1.1") != 0 && strcmp(sp2 + 1, "HTTP/1.0") != 0)) {
		req_free(r);
		return h1_fail(c, 400), -1;
	}
	http10 = strcmp(sp2 + 1, "HTTP/1.0") == 0;
	r->method = strndup(buf, (size_t)(sp1 - buf));
	r->path = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	for (line = eol + 2; line < head_end + 2; line = eol + 2) {
		eol = strstr(line, "\r\n");
		if (eol == line)
			break;
		colon = memchr(line, ':', (size_t)(eol - line));
		*colon = '\0';
		vend = eol;
		value = trim(colon + 1, &vend);
		name = line;
		if (strcasecmp(name, "connection") == 0) {
			conn_close |= strcasestr(value, "close") != NULL;
			conn_keep |= strcasestr(value, "keep-alive") != NULL;
		}
		if (mock_req_add_header(r, name, strlen(name), value, strlen(value)) < 0) {
			req_free(r);
			return -1;
		}
	}
	if (!r->method || !r->path || mock_buf_append(&r->body, buf + head_len, body_len) < 0) {
		req_free(r);
		return -1;
	}
	c->h1_keepalive = http10 ? conn_keep && !conn_close : !conn_close;
	c->h1_continue_sent = 0;
	/* consume the request from the input buffer */
	memmove(c->in.p, c->in.p + head_len + body_len, c->in.len - head_len - body_len);
	c->in.len -= head_len + body_len;
	c->in.p[c->in.len] = '\0';
	c->h1_req = r;
	conn_dispatch(r); /* may answer (and free r) at once */
	return 1;
}

/* Parses and dispatches requests until one is pending, input runs out or the connection closes. */
int http1_process(struct mock_conn *c)
{
	int rc;

	while (!c->h1_req && !c->want_close && c->state == MOCK_CS_H1) {
		rc = h1_parse_one(c);
		if (rc < 0)
			return c->want_close ? 0 : -1;
		if (rc == 0)
			return 0;
	}
	return 0;
}

int http1_recv(struct mock_conn *c, const unsigned char *data, size_t len)
{
	if (c->in.len + len > (size_t)MOCK_MAX_BODY + H1_MAX_HEAD + 4096)
		return -1;
	if (mock_buf_append(&c->in, data, len) < 0)
		return -1;
	return http1_process(c);
}

int http1_respond(struct mock_req *r)
{
	struct mock_conn *c = r->conn;
	struct mock_buf b = { 0 };
	size_t i;
	int rc = 0;

	switch (r->action) {
	case MOCK_ACT_REPLY:
		mock_buf_printf(&b, "HTTP/1.1 %d %s\r\n", r->status, mock_reason_phrase(r->status));
		for (i = 0; i < r->nrhdrs; i++)
			mock_buf_printf(&b, "%s: %s\r\n", r->rhdrs[i].name, r->rhdrs[i].value);
		mock_buf_printf(&b, "content-length: %zu\r\n%s\r\n", r->rbody.len,
				c->h1_keepalive ? "" : "connection: close\r\n");
		if (r->rbody.len)
			mock_buf_append(&b, r->rbody.p, r->rbody.len);
		rc = b.p ? conn_out_append(c, b.p, b.len) : -1;
		mock_buf_free(&b);
		if (!c->h1_keepalive)
			c->want_close = MOCK_CLOSE_GRACEFUL;
		break;
	case MOCK_ACT_GOAWAY:
		c->want_close = MOCK_CLOSE_GRACEFUL;
		break;
	case MOCK_ACT_RESET:
	case MOCK_ACT_DROP:
		c->want_close = MOCK_CLOSE_ABORT;
		break;
	default:
		return 0; /* silent: the request stays pending, nothing else is read */
	}
	req_free(r); /* also clears c->h1_req */
	return rc;
}
