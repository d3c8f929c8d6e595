/*
 * router_load: acknowledged notifies per second through a running router (group commit).
 *
 *   router_load ROUTER_SOCK ID N [WINDOW]
 *
 * Connects as an ingress, keeps WINDOW notifies for ID in flight (default 256), and counts
 * the replies with status OK until N have been acknowledged. Each acknowledgement means the
 * job was committed to LMDB (fsync) before the reply, so the rate is the router's durable
 * commit rate with batching; registry_bench's single_commits_per_s is the same work with one
 * fsync per change. Prints "acked N seconds S acked_per_s R".
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

int main(int argc, char **argv)
{
	static uint8_t out[FRAME_MAX], in[FRAME_MAX];
	struct frame_writer w;
	struct frame f;
	const char *why;
	long n, window, sent = 0, acked = 0, inflight = 0, busy = 0;
	double t0;
	int fd;

	if (argc < 4 || (n = atol(argv[3])) <= 0) {
		fprintf(stderr, "usage: router_load ROUTER_SOCK ID N [WINDOW]\n");
		return 2;
	}
	window = argc > 4 ? atol(argv[4]) : 256;
	if ((fd = sock_connect(argv[1], SOCK_SEQPACKET)) < 0 || sock_hello(fd, ROLE_INGRESS, 0, "router_load") < 0) {
		fprintf(stderr, "router_load: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	t0 = now_s();
	while (acked < n) {
		struct pollfd p = {fd, POLLIN, 0};
		while (inflight < window && sent < n + busy) {
			char data[32];
			int dl = snprintf(data, sizeof data, "bench-%ld", sent);
			frame_begin(&w, out, FRAME_NOTIFY, (uint64_t)sent + 1);
			frame_put_bytes(&w, TAG_ID, argv[2], strlen(argv[2]));
			frame_put_bytes(&w, TAG_DATA, data, (size_t)dl);
			long len = frame_end(&w);
			if (sock_send(fd, out, (size_t)len) < 0) {
				if (errno == EAGAIN)
					break;
				perror("router_load: send");
				return 1;
			}
			sent++;
			inflight++;
		}
		if (poll(&p, 1, 5000) <= 0) {
			fprintf(stderr, "router_load: no reply for 5 s (%ld acknowledged)\n", acked);
			return 1;
		}
		for (;;) {
			ssize_t r = sock_recv(fd, in);
			if (r < 0 && errno == EAGAIN)
				break;
			if (r <= 0) {
				fprintf(stderr, "router_load: router closed the connection\n");
				return 1;
			}
			if (frame_parse(in, (size_t)r, &f, &why) < 0 || f.type != FRAME_REPLY)
				continue;
			inflight--;
			if (frame_u32(&f, TAG_STATUS, STATUS_ERROR) == STATUS_OK)
				acked++;
			else
				busy++; /* resent: the goal is n acknowledged */
		}
	}
	double el = now_s() - t0;
	printf("acked %ld seconds %.2f acked_per_s %.0f\n", acked, el, acked / el);
	return 0;
}
