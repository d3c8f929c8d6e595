/*
 * h2.c: the nghttp2 server session of a connection. Collects each request stream (pseudo
 * headers, header fields, body) into a mock_req, hands it to conn_dispatch() at END_STREAM,
 * and turns the chosen answer into HEADERS/DATA, RST_STREAM or GOAWAY frames. Bytes go in
 * through nghttp2_session_mem_recv() and out through nghttp2_session_mem_send().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mock.h"

static nghttp2_session_callbacks *h2_callbacks;

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct mock_conn *c = ud;
	struct mock_req *r;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	r = req_new(c);
	if (!r)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	r->stream_id = f->hd.stream_id;
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, r);
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
		     const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	struct mock_req *r;
	char **dst = NULL;

	(void)flags;
	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (!r || r->dispatched)
		return 0;
	if (namelen == 7 && memcmp(name, ":method", 7) == 0)
		dst = &r->method;
	else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
		dst = &r->path;
	if (dst) {
		free(*dst);
		*dst = strndup((const char *)value, valuelen);
		return *dst ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	if (namelen && name[0] == ':' && !(namelen == 10 && memcmp(name, ":authority", 10) == 0))
		return 0; /* :scheme */
	if (mock_req_add_header(r, (const char *)name, namelen, (const char *)value, valuelen) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
			 void *ud)
{
	struct mock_req *r = nghttp2_session_get_stream_user_data(s, stream_id);

	(void)flags;
	(void)ud;
	if (!r || r->dispatched)
		return 0;
	if (r->body.len + len > MOCK_MAX_BODY) {
		r->body_overflow = 1;
		return 0;
	}
	return mock_buf_append(&r->body, data, len) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct mock_conn *c = ud;
	struct mock_req *r;

	if ((f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS) || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	if (c->want_close)
		return 0; /* after a GOAWAY or drop: not processed, not recorded */
	r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (r && !r->dispatched)
		conn_dispatch(r);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *ud)
{
	struct mock_req *r = nghttp2_session_get_stream_user_data(s, stream_id);

	(void)error_code;
	(void)ud;
	if (r) {
		nghttp2_session_set_stream_user_data(s, stream_id, NULL);
		req_free(r);
	}
	return 0;
}

static ssize_t body_read(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct mock_req *r = src->ptr;
	size_t left = r->rbody.len - r->rbody_off;

	(void)s;
	(void)stream_id;
	(void)ud;
	if (len > left)
		len = left;
	memcpy(buf, r->rbody.p + r->rbody_off, len);
	r->rbody_off += len;
	if (r->rbody_off == r->rbody.len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)len;
}

int h2_session_init(struct mock_conn *c)
{
	nghttp2_settings_entry iv[2] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, faults_max_streams() },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 },
	};

	if (!h2_callbacks) {
		if (nghttp2_session_callbacks_new(&h2_callbacks) != 0)
			return -1;
		nghttp2_session_callbacks_set_on_begin_headers_callback(h2_callbacks, on_begin_headers);
		nghttp2_session_callbacks_set_on_header_callback(h2_callbacks, on_header);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(h2_callbacks, on_data_chunk);
		nghttp2_session_callbacks_set_on_frame_recv_callback(h2_callbacks, on_frame_recv);
		nghttp2_session_callbacks_set_on_stream_close_callback(h2_callbacks, on_stream_close);
	}
	if (nghttp2_session_server_new(&c->h2, h2_callbacks, c) != 0)
		return -1;
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
	    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 1 << 24) != 0)
		return -1;
	return 0;
}

void h2_free_callbacks(void)
{
	nghttp2_session_callbacks_del(h2_callbacks);
	h2_callbacks = NULL;
}

int h2_recv(struct mock_conn *c, const unsigned char *data, size_t len)
{
	ssize_t rv = nghttp2_session_mem_recv(c->h2, data, len);

	if (rv < 0) {
		mock_log("warn", "connection %llu: HTTP/2 error: %s", (unsigned long long)c->id,
			 nghttp2_strerror((int)rv));
		return -1;
	}
	return 0;
}

int h2_fill_output(struct mock_conn *c)
{
	const uint8_t *data;
	ssize_t n;

	while (c->out.len - c->out_off < 65536) {
		n = nghttp2_session_mem_send(c->h2, &data);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (conn_out_append(c, data, (size_t)n) < 0)
			return -1;
	}
	return 0;
}

int h2_respond(struct mock_req *r)
{
	struct mock_conn *c = r->conn;
	nghttp2_nv nva[1 + sizeof r->rhdrs / sizeof r->rhdrs[0]];
	nghttp2_data_provider prd;
	char status[8];
	size_t i, n = 0;
	int32_t last;
	int rv = 0;

	switch (r->action) {
	case MOCK_ACT_REPLY:
		snprintf(status, sizeof status, "%d", r->status);
		nva[n++] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)status, 7, strlen(status), NGHTTP2_NV_FLAG_NONE };
		for (i = 0; i < r->nrhdrs; i++)
			nva[n++] = (nghttp2_nv){ (uint8_t *)r->rhdrs[i].name, (uint8_t *)r->rhdrs[i].value,
						 strlen(r->rhdrs[i].name), strlen(r->rhdrs[i].value), NGHTTP2_NV_FLAG_NONE };
		prd.source.ptr = r;
		prd.read_callback = body_read;
		rv = nghttp2_submit_response(c->h2, r->stream_id, nva, n, r->rbody.len ? &prd : NULL);
		break;
	case MOCK_ACT_RESET:
		rv = nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, r->stream_id, r->rst_code);
		break;
	case MOCK_ACT_GOAWAY:
		last = r->stream_id > 2 ? r->stream_id - 2 : 0;
		rv = nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR,
					   (const uint8_t *)r->goaway_data.p, r->goaway_data.len);
		c->want_close = MOCK_CLOSE_GRACEFUL;
		break;
	case MOCK_ACT_DROP:
		c->want_close = MOCK_CLOSE_ABORT;
		break;
	default: /* silent: the stream stays open until the client gives up */
		break;
	}
	if (rv != 0)
		mock_log("warn", "connection %llu stream %d: cannot answer: %s", (unsigned long long)c->id,
			 (int)r->stream_id, nghttp2_strerror(rv));
	return 0;
}

int h2_raise_streams(struct mock_conn *c, uint32_t n)
{
	nghttp2_settings_entry iv = { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, n };

	return nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, &iv, 1) == 0 ? 0 : -1;
}
