/*
 * stats_cmd: `pushctl -c CONFIG stats [--start DATE] [--end DATE]` asks statsd over its query
 * socket for the statistics windows (as /get_statistics_data does) and prints them as an
 * aligned table, oldest first, with a total line. Dates are local time, "YYYY-mm-dd" or
 * "YYYY-mm-dd HH:MM:SS"; a window is listed when it starts at or after --start and ends at or
 * before --end.
 */
#include "stats_row.h"
#include "config.h"
#include "frame.h"
#include "bchat/stats_date.h"
#include "pushctl.h"
#include "sock.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const struct column {
	const char *head;
	uint32_t id;
} columns[] = {
	{"messages", CTR_MESSAGES_TOTAL},    {"one_to_one", CTR_MESSAGES_ONE_TO_ONE}, {"group", CTR_MESSAGES_CLOSED_GROUP},
	{"untracked", CTR_MESSAGES_UNTRACKED}, {"ios", CTR_IOS_DELIVERED},	    {"ios_failed", CTR_IOS_FAILED},
	{"android", CTR_ANDROID_DELIVERED},  {"android_failed", CTR_ANDROID_FAILED}, {"wns", CTR_WNS_DELIVERED},
	{"wns_failed", CTR_WNS_FAILED},
};
#define NCOL (sizeof columns / sizeof columns[0])

/* Sends the query and waits (5 s at most) for the rows frame; its length or -1. */
static long ask(const char *sock_path, uint64_t from, uint64_t to, uint8_t *buf)
{
	struct frame_writer w;
	struct pollfd pfd;
	uint64_t deadline = (uint64_t)time(NULL) + 5;
	int fd = sock_connect(sock_path, SOCK_SEQPACKET);
	long n;

	if (fd < 0) {
		fprintf(stderr, "pushctl: cannot reach statsd at %s: %s\n", sock_path, strerror(errno));
		return -1;
	}
	frame_begin(&w, buf, FRAME_STATS_QUERY, 1);
	frame_put_u64(&w, TAG_START, from);
	if (to)
		frame_put_u64(&w, TAG_END, to);
	n = frame_end(&w);
	if (sock_hello(fd, ROLE_TOOL, 0, NULL) < 0 || n < 0 || sock_send(fd, buf, (size_t)n) < 0) {
		fprintf(stderr, "pushctl: sending to statsd: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t r;
		pfd.fd = fd;
		pfd.events = POLLIN;
		if ((uint64_t)time(NULL) > deadline || poll(&pfd, 1, 1000) < 0) {
			fprintf(stderr, "pushctl: statsd did not answer\n");
			close(fd);
			return -1;
		}
		r = sock_recv(fd, buf);
		if (r < 0 && errno == EAGAIN)
			continue;
		close(fd);
		if (r <= 0) {
			fprintf(stderr, "pushctl: statsd closed the connection\n");
			return -1;
		}
		return (long)r;
	}
}

int pushctl_stats(const char *conf, int argc, char **argv)
{
	struct config c;
	struct frame f;
	char err[512], path[256], cell[NCOL + 2][32];
	uint64_t from = 0, to = 0, total[NCOL];
	size_t width[NCOL + 2], nrows = 0;
	struct period_row *rows = NULL;
	uint8_t *buf;
	long n;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && (strcmp(argv[i], "--start") == 0 || strcmp(argv[i], "--end") == 0)) {
			if (stats_date_parse(argv[i + 1], argv[i][2] == 's' ? &from : &to) < 0) {
				fprintf(stderr, "pushctl: %s: expected YYYY-mm-dd or \"YYYY-mm-dd HH:MM:SS\"\n", argv[i + 1]);
				return 2;
			}
			i++;
		} else {
			fprintf(stderr, "usage: pushctl -c CONFIG stats [--start DATE] [--end DATE]\n");
			return 2;
		}
	}
	if (config_load(&c, conf, err, sizeof err) < 0) {
		fprintf(stderr, "pushctl: %s\n", err);
		return 1;
	}
	if (config_socket(&c, "statsd-query.sock", path, sizeof path) == NULL) {
		fprintf(stderr, "pushctl: state_dir too long for a socket path\n");
		config_free(&c);
		return 1;
	}
	config_free(&c);
	if ((buf = malloc(FRAME_MAX)) == NULL)
		return 1;
	if ((n = ask(path, from, to, buf)) < 0 || frame_parse(buf, (size_t)n, &f, NULL) < 0 || f.type != FRAME_STATS_ROWS) {
		if (n >= 0)
			fprintf(stderr, "pushctl: unexpected answer from statsd\n");
		free(buf);
		return 1;
	}
	if (stats_rows_read(&f, &rows, &nrows) < 0) {
		fprintf(stderr, "pushctl: malformed statistics rows from statsd\n");
		free(buf);
		return 1;
	}
	free(buf);

	/* Two passes over the same cells: measure the widths, then print. */
	memset(total, 0, sizeof total);
	for (size_t i = 0; i < nrows; i++)
		for (size_t k = 0; k < NCOL; k++)
			total[k] += rows[i].v[columns[k].id];
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i <= nrows + 1; i++) {
			/* i = 0 heading, 1..nrows rows, nrows + 1 total */
			for (size_t k = 0; k < NCOL + 2; k++) {
				if (i == 0)
					snprintf(cell[k], sizeof cell[k], "%s", k == 0 ? "start" : k == 1 ? "end" : columns[k - 2].head);
				else if (i == nrows + 1)
					snprintf(cell[k], sizeof cell[k], "%s", k == 0 ? "total" : "");
				else if (k < 2)
					stats_date_format(cell[k], sizeof cell[k], k == 0 ? rows[i - 1].start : rows[i - 1].end);
				if (k >= 2 && i > 0)
					snprintf(cell[k], sizeof cell[k], "%llu",
						 (unsigned long long)(i == nrows + 1 ? total[k - 2] : rows[i - 1].v[columns[k - 2].id]));
				if (pass == 0) {
					size_t l = strlen(cell[k]);
					if (i == 0 || l > width[k])
						width[k] = i == 0 ? l : l > width[k] ? l : width[k];
				} else {
					/* Dates left-aligned, numbers right-aligned. */
					printf(k < 2 ? "%-*s" : "%*s", (int)width[k], cell[k]);
					printf(k + 1 < NCOL + 2 ? "  " : "\n");
				}
			}
		}
	}
	free(rows);
	return 0;
}
