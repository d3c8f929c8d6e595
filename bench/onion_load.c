/*
 * onion_load: the onion ingress benchmark. Pre-builds N notify requests, each with its own
 * ephemeral X25519 key (the per-request key agreement is the physical bound), replays them
 * over C keep-alive HTTP/1.1 connections, and reports accepted notifies per second, the
 * ingress's CPU seconds (from /proc), ack latency p50/p99, and the machine's raw X25519 rate
 * on one core measured in the same run.
 *
 *   onion_load -p PORT -k PUBKEY_FILE -i INGRESS_PID [-n N] [-c CONNS] [-t send_to]
 *              [-r RATE] [-o ACKS_FILE] [-d DATA_PREFIX]
 *
 * -r paces request starts to RATE per second (for latency at a given load); -o gives every
 * request its own notify data ("load-<index>") and writes "index sent_time_ms" lines (wall
 * clock) of the acknowledged ones, so bench/e2e.py can match each request with the provider
 * request it caused. -d replaces "load" in that data, so that several runs can be told apart.
 */
#include "bench.h"
#include "../pushctl/onion_client.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct req {
	char *http;
	size_t len;
	double sent, done;
	double sent_ms; /* wall clock */
	int ok;
	struct onion_key key; /* to open the reply */
};

static double wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

struct conn {
	int fd;
	long cur;	/* request index in flight, -1 none */
	size_t off;	/* bytes of it written */
	char in[4096];
	size_t inlen;
};

/* CPU seconds of a process so far, user + system; *sys gets the system part. */
static double cpu_of(long pid, double *sys)
{
	char path[64], buf[1024];
	FILE *f;
	unsigned long ut = 0, st = 0;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof buf, f)) {
		char *p = strrchr(buf, ')');
		if (p)
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
	}
	fclose(f);
	*sys = (double)st / (double)sysconf(_SC_CLK_TCK);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double x25519_rate(double seconds)
{
	unsigned char sk[32], pk[32], out[32];
	long n = 0;
	double start = now_s(), t;
	randombytes_buf(sk, 32);
	crypto_scalarmult_base(pk, sk);
	do {
		for (int i = 0; i < 200; i++) {
			if (crypto_scalarmult(out, sk, pk) != 0)
				out[0] = 1;
			pk[0] ^= out[0] | 1; /* a different point each time */
		}
		n += 200;
	} while ((t = now_s() - start) < seconds);
	return (double)n / t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int open_conn(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

int main(int argc, char **argv)
{
	int port = 5000, conns = 16, ch;
	long n = 20000, pid = 0;
	double rate = 0;
	const char *acks_file = NULL, *prefix = "load";
	const char *keyfile = "var/keys/server.pub", *to = "bd1111111111111111111111111111111111111111111111111111111111111111";
	unsigned char pk[32];
	char hex[80];
	FILE *f;

	while ((ch = getopt(argc, argv, "p:k:i:n:c:t:r:o:d:")) != -1) {
		switch (ch) {
		case 'p': port = atoi(optarg); break;
		case 'k': keyfile = optarg; break;
		case 'i': pid = atol(optarg); break;
		case 'n': n = atol(optarg); break;
		case 'c': conns = atoi(optarg); break;
		case 't': to = optarg; break;
		case 'r': rate = atof(optarg); break;
		case 'o': acks_file = optarg; break;
		case 'd': prefix = optarg; break;
		default: return 2;
		}
	}
	if (sodium_init() < 0 || (f = fopen(keyfile, "r")) == NULL || !fgets(hex, sizeof hex, f) ||
	    sodium_hex2bin(pk, 32, hex, 64, NULL, NULL, NULL) != 0) {
		fprintf(stderr, "onion_load: cannot read %s\n", keyfile);
		return 1;
	}
	fclose(f);

	struct req *reqs = calloc((size_t)n, sizeof *reqs);
	char pt[512];
	for (long i = 0; i < n; i++) {
		char data[64];
		if (acks_file)
			snprintf(data, sizeof data, "%.40s-%ld", prefix, i);
		else
			snprintf(data, sizeof data, "ZXhhbXBsZSB3cmFwcGVkIGVudmVsb3BlIGJ5dGVz");
		int ptlen = snprintf(pt, sizeof pt,
				     "{\"body\":\"{\\\"data\\\":\\\"%s\\\",\\\"send_to\\\":\\\"%s\\\"}\","
				     "\"endpoint\":\"notify\",\"method\":\"POST\",\"headers\":{\"Content-Type\":\"application/json\"}}",
				     data, to);
		struct onion_key k;
		size_t blen;
		unsigned char *body = onion_client_build(pk, ONION_AES_GCM, "BELDEX", "/beldex/v2/lsrpc", (unsigned char *)pt,
							 (size_t)ptlen, &k, &blen);
		reqs[i].key = k;
		char head[256];
		int hl = snprintf(head, sizeof head,
				  "POST /beldex/v2/lsrpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
				  "Content-Length: %zu\r\n\r\n",
				  blen);
		reqs[i].http = malloc((size_t)hl + blen);
		memcpy(reqs[i].http, head, (size_t)hl);
		memcpy(reqs[i].http + hl, body, blen);
		reqs[i].len = (size_t)hl + blen;
		free(body);
	}

	struct conn *cs = calloc((size_t)conns, sizeof *cs);
	struct pollfd *pf = calloc((size_t)conns, sizeof *pf);
	long next = 0, done = 0, okc = 0;
	for (int i = 0; i < conns; i++) {
		cs[i].fd = open_conn(port);
		cs[i].cur = -1;
		if (cs[i].fd < 0) {
			fprintf(stderr, "onion_load: connect: %s\n", strerror(errno));
			return 1;
		}
	}
	double sys0 = 0, sys1 = 0, cpu0 = pid ? cpu_of(pid, &sys0) : 0, t0 = now_s(), last_progress = t0;
	while (done < n) {
		for (int i = 0; i < conns; i++) {
			struct conn *c = &cs[i];
			if (c->cur < 0 && next < n && (rate <= 0 || now_s() >= t0 + (double)next / rate)) {
				c->cur = next++;
				c->off = 0;
				c->inlen = 0;
				reqs[c->cur].sent = now_s();
				reqs[c->cur].sent_ms = wall_ms();
			}
			pf[i].fd = c->fd;
			pf[i].events = c->cur >= 0 ? (c->off < reqs[c->cur].len ? POLLOUT : POLLIN) : 0;
		}
		int pr = poll(pf, (nfds_t)conns, rate > 0 ? 1 : 5000);
		if (pr > 0)
			last_progress = now_s();
		if (pr < 0 || (next > done && now_s() - last_progress > 5.0)) {
			fprintf(stderr, "onion_load: stalled\n");
			break;
		}
		for (int i = 0; i < conns; i++) {
			struct conn *c = &cs[i];
			if (c->cur < 0 || !pf[i].revents)
				continue;
			struct req *r = &reqs[c->cur];
			if (pf[i].revents & POLLOUT) {
				ssize_t w = write(c->fd, r->http + c->off, r->len - c->off);
				if (w > 0)
					c->off += (size_t)w;
				continue;
			}
			ssize_t rd = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen - 1);
			if (rd <= 0) {
				/* The server closed: reconnect and resend this request. */
				close(c->fd);
				c->fd = open_conn(port);
				c->off = 0;
				c->inlen = 0;
				continue;
			}
			c->inlen += (size_t)rd;
			c->in[c->inlen] = '\0';
			char *hend = strstr(c->in, "\r\n\r\n"), *cl = strcasestr(c->in, "content-length:");
			if (hend == NULL || cl == NULL)
				continue;
			size_t want = (size_t)(hend + 4 - c->in) + (size_t)atol(cl + 15);
			if (c->inlen < want)
				continue;
			r->done = now_s();
			/* Accepted: the sealed inner reply says Success (an HTTP 200 may carry Server busy). */
			if (strncmp(c->in, "HTTP/1.1 200", 12) == 0) {
				size_t ptl;
				unsigned char *in = onion_client_open_reply(&r->key, 0, (unsigned char *)hend + 4,
									    want - (size_t)(hend + 4 - c->in), &ptl);
				r->ok = in != NULL && memmem(in, ptl, "\"code\": 1, \"message\": \"Success\"", 31) != NULL;
				free(in);
			}
			okc += r->ok;
			done++;
			c->cur = -1;
		}
	}
	double elapsed = now_s() - t0, cpu = pid ? cpu_of(pid, &sys1) - cpu0 : 0, sys = sys1 - sys0;
	double *lat = malloc((size_t)n * sizeof *lat);
	long m = 0;
	for (long i = 0; i < n; i++)
		if (reqs[i].done > 0)
			lat[m++] = (reqs[i].done - reqs[i].sent) * 1000.0;
	qsort(lat, (size_t)m, sizeof *lat, cmp_double);
	if (acks_file) {
		FILE *af = fopen(acks_file, "w");
		for (long i = 0; af && i < n; i++)
			if (reqs[i].ok)
				fprintf(af, "%ld %.3f\n", i, reqs[i].sent_ms);
		if (af)
			fclose(af);
	}
	/* The machine's rate is the best of four half-second runs: a neighbour busy during one of
	 * them must not lower the baseline (which would flatter the ratio). */
	double raw = 0;
	for (int i = 0; i < 4; i++) {
		double r = x25519_rate(0.5);
		if (r > raw)
			raw = r;
	}
	printf("requests %ld ok %ld elapsed_s %.3f rate_per_s %.0f ingress_cpu_s %.3f ingress_sys_cpu_s %.3f "
	       "per_ingress_core_per_s %.0f ingress_us_per_notify %.1f ingress_sys_us_per_notify %.1f "
	       "p50_ms %.3f p99_ms %.3f x25519_per_core_per_s %.0f x25519_us %.1f ratio %.3f\n",
	       n, okc, elapsed, (double)okc / elapsed, cpu, sys, cpu > 0 ? (double)okc / cpu : 0,
	       okc ? cpu / (double)okc * 1e6 : 0, okc ? sys / (double)okc * 1e6 : 0, m ? lat[m / 2] : 0,
	       m ? lat[m * 99 / 100] : 0, raw, raw > 0 ? 1e6 / raw : 0, cpu > 0 ? (double)okc / cpu / raw : 0);
	return okc == n ? 0 : 1;
}
