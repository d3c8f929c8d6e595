/* record.c: the record file, one JSON object per provider request (JSON Lines). Lines are
 * gathered in a 1 MiB buffer and written with write(2) in whole lines (readers never see half a
 * line); main.c flushes every 50 ms, after control requests and on exit. No fsync. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mock.h"

enum { REC_BUF_MAX = 1 << 20 };

static int rec_fd = -1;
static struct mock_buf rec_line, rec_value, rec_pending;
static uint64_t rec_seq;

int record_open(const char *path)
{
	rec_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	return rec_fd < 0 ? -1 : 0;
}

/* "bearer eyJhbGci…": the scheme and the first 8 characters of the credential. */
static int put_authorization(struct mock_buf *b, const char *v)
{
	struct mock_buf tmp = { 0 };
	const char *sp = strchr(v, ' ');
	size_t cred_len;
	int rc;

	if (!sp) {
		cred_len = strlen(v);
		rc = mock_buf_append(&tmp, v, cred_len > 8 ? 8 : cred_len);
	} else {
		rc = mock_buf_append(&tmp, v, (size_t)(sp - v) + 1);
		while (*sp == ' ')
			sp++;
		cred_len = strlen(sp);
		rc |= mock_buf_append(&tmp, sp, cred_len > 8 ? 8 : cred_len);
	}
	rc |= mock_buf_puts(&tmp, "\xE2\x80\xA6"); /* U+2026 HORIZONTAL ELLIPSIS */
	if (rc == 0)
		rc = mock_buf_json_str(b, tmp.p, tmp.len);
	mock_buf_free(&tmp);
	return rc;
}

void record_request(const struct mock_req *r, int provider, int fault, const char *reason, int auth_ok,
		    int64_t auth_iat, const char *auth_id)
{
	struct mock_buf *b = &rec_line;
	const char *status_reason = reason ? reason : "";
	size_t i, j;
	int rc = 0, first;

	if (rec_fd < 0)
		return;
	mock_buf_reset(b);
	rc |= mock_buf_printf(b, "{\"seq\":%llu,\"time_ms\":%lld,\"provider\":\"%s\",\"method\":",
			      (unsigned long long)++rec_seq, (long long)mock_now_ms(), mock_provider_name(provider));
	rc |= mock_buf_json_str(b, r->method ? r->method : "", r->method ? strlen(r->method) : 0);
	rc |= mock_buf_puts(b, ",\"path\":");
	rc |= mock_buf_json_str(b, r->path ? r->path : "", r->path ? strlen(r->path) : 0);
	rc |= mock_buf_puts(b, ",\"headers\":{");
	for (i = 0, first = 1; i < r->nhdrs; i++) {
		for (j = 0; j < i && strcmp(r->hdrs[j].name, r->hdrs[i].name) != 0; j++)
			;
		if (j < i)
			continue; /* repeated field: already written, joined with ", " */
		rc |= mock_buf_puts(b, first ? "" : ",");
		first = 0;
		rc |= mock_buf_json_str(b, r->hdrs[i].name, strlen(r->hdrs[i].name));
		rc |= mock_buf_puts(b, ":");
		if (strcmp(r->hdrs[i].name, "authorization") == 0) {
			rc |= put_authorization(b, r->hdrs[i].value);
			continue;
		}
		mock_buf_reset(&rec_value);
		for (j = i; j < r->nhdrs; j++) {
			if (strcmp(r->hdrs[j].name, r->hdrs[i].name) != 0)
				continue;
			rc |= mock_buf_puts(&rec_value, j == i ? "" : ", ");
			rc |= mock_buf_puts(&rec_value, r->hdrs[j].value);
		}
		rc |= mock_buf_json_str(b, rec_value.p, rec_value.len);
	}
	rc |= mock_buf_puts(b, "},\"body\":");
	rc |= mock_buf_json_str(b, r->body.p ? r->body.p : "", r->body.len);
	rc |= mock_buf_printf(b, ",\"status\":%d,\"reason\":", r->action == MOCK_ACT_REPLY ? r->status : 0);
	rc |= mock_buf_json_str(b, status_reason, strlen(status_reason));
	rc |= mock_buf_printf(b, ",\"fault\":%s,\"auth_ok\":%s", fault ? "true" : "false", auth_ok ? "true" : "false");
	if (auth_iat)
		rc |= mock_buf_printf(b, ",\"auth_iat\":%lld", (long long)auth_iat);
	if (auth_id && auth_id[0]) {
		rc |= mock_buf_puts(b, ",\"auth_id\":");
		rc |= mock_buf_json_str(b, auth_id, strlen(auth_id));
	}
	if (r->action != MOCK_ACT_REPLY) {
		static const char *const names[] = { "reply", "goaway", "reset", "drop", "silent" };
		rc |= mock_buf_printf(b, ",\"action\":\"%s\"", names[r->action]);
	}
	rc |= mock_buf_printf(b, ",\"proto\":\"%s\",\"conn\":%llu,\"stream\":%d}\n",
			      r->stream_id ? "h2" : "http/1.1", (unsigned long long)r->conn->id, (int)r->stream_id);
	if (rc != 0)
		return;
	if (rec_pending.len + b->len > REC_BUF_MAX)
		record_flush();
	mock_buf_append(&rec_pending, b->p, b->len);
}

void record_flush(void)
{
	size_t off = 0;
	ssize_t n;

	while (rec_fd >= 0 && off < rec_pending.len) {
		n = write(rec_fd, rec_pending.p + off, rec_pending.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			mock_log("error", "record file write failed: %s", n < 0 ? strerror(errno) : "short write");
			break;
		}
		off += (size_t)n;
	}
	mock_buf_reset(&rec_pending);
}

int record_dirty(void)
{
	return rec_pending.len > 0;
}

void record_close(void)
{
	record_flush();
	if (rec_fd >= 0)
		close(rec_fd);
	rec_fd = -1;
	mock_buf_free(&rec_line);
	mock_buf_free(&rec_value);
	mock_buf_free(&rec_pending);
}
