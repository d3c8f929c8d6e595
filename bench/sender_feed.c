/*
 * sender_feed: stands in for the router in front of one sender, to measure the sender alone.
 *
 *   sender_feed SOCKET_PATH PLATFORM TOKEN N [WINDOW]
 *
 * Listens on SOCKET_PATH (where the sender expects router-sender.sock), accepts one sender, and
 * keeps WINDOW push jobs (default 1000; KIND_WNS for PLATFORM_WNS, else KIND_BCHAT) in flight until
 * N results have come back. Prints
 * "results N delivered D seconds S per_s R" — deliveries per second through the sender into
 * whatever provider it is configured for (the mock, in make bench).
 */
#include "bench.h"
#include "frame.h"
#include "sock.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static uint8_t out[FRAME_MAX], in[FRAME_MAX];
	struct frame_writer w;
	struct frame f;
	const char *why;
	long n, window, sent = 0, results = 0, delivered = 0;
	uint32_t platform;
	double t0 = 0;
	int lfd, fd = -1;

	if (argc < 5 || (n = atol(argv[4])) <= 0) {
		fprintf(stderr, "usage: sender_feed SOCKET_PATH PLATFORM TOKEN N [WINDOW]\n");
		return 2;
	}
	platform = (uint32_t)atoi(argv[2]);
	window = argc > 5 ? atol(argv[5]) : 1000;
	if ((lfd = sock_listen(argv[1], SOCK_SEQPACKET)) < 0) {
		fprintf(stderr, "sender_feed: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (double until = now_s() + 30; fd < 0; usleep(10000)) {
		fd = sock_accept(lfd);
		if (now_s() > until) {
			fprintf(stderr, "sender_feed: no sender connected in 30 s\n");
			return 1;
		}
	}
	while (results < n) {
		struct pollfd p = {fd, POLLIN | (sent - results < window && sent < n ? POLLOUT : 0), 0};
		if (poll(&p, 1, 10000) <= 0) {
			fprintf(stderr, "sender_feed: stalled at %ld results\n", results);
			return 1;
		}
		while (t0 > 0 && sent - results < window && sent < n) {
			char data[32];
			int dl = snprintf(data, sizeof data, "feed-%ld", sent);
			frame_begin(&w, out, FRAME_PUSH, (uint64_t)sent + 1);
			frame_put_u32(&w, TAG_PLATFORM, platform);
			frame_put_u32(&w, TAG_KIND, platform == PLATFORM_WNS ? KIND_WNS : KIND_BCHAT);
			frame_put_bytes(&w, TAG_TOKEN, argv[3], strlen(argv[3]));
			frame_put_bytes(&w, TAG_DATA, data, (size_t)dl);
			frame_put_u32(&w, TAG_ATTEMPT, 0);
			long len = frame_end(&w);
			if (sock_send(fd, out, (size_t)len) < 0)
				break;
			sent++;
		}
		for (;;) {
			ssize_t r = sock_recv(fd, in);
			if (r < 0 && errno == EAGAIN)
				break;
			if (r <= 0) {
				fprintf(stderr, "sender_feed: the sender went away\n");
				return 1;
			}
			if (frame_parse(in, (size_t)r, &f, &why) < 0)
				continue;
			if (f.type == FRAME_HELLO && t0 == 0) {
				t0 = now_s(); /* the clock starts when the sender is ready */
				continue;
			}
			if (f.type != FRAME_RESULT)
				continue;
			results++;
			delivered += frame_u32(&f, TAG_OUTCOME, 0) == OUTCOME_DELIVERED;
		}
	}
	double el = now_s() - t0;
	printf("results %ld delivered %ld seconds %.2f per_s %.0f\n", results, delivered, el, delivered / el);
	close(fd);
	unlink(argv[1]);
	return delivered == n ? 0 : 1;
}
