/* conn_limit: the total and per-source connection caps of ingress-onion, their bookkeeping
 * under many sources (the table's deletion keeps every other source findable), IPv4-mapped
 * IPv6 addresses counted as IPv4, and non-inet addresses refused. */
#include "../../ingress/onion/conn_limit.h"
#include "testlib.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static struct sockaddr_in v4(unsigned a, unsigned b, unsigned c, unsigned d)
{
	struct sockaddr_in s;
	memset(&s, 0, sizeof s);
	s.sin_family = AF_INET;
	s.sin_addr.s_addr = htonl((a << 24) | (b << 16) | (c << 8) | d);
	return s;
}

#define SA(x) ((struct sockaddr *)&(x))

int main(void)
{
	struct conn_limit *l = conn_limit_new(8, 2);
	struct sockaddr_in a = v4(127, 0, 0, 2), b = v4(127, 0, 0, 3), many[300];
	struct sockaddr_in6 m;
	struct sockaddr un = {.sa_family = AF_UNIX};
	size_t total, n;
	int ok;

	CHECK(l != NULL, "created");
	CHECK(conn_limit_take(l, SA(a)) == 0 && conn_limit_take(l, SA(a)) == 0, "two from one source");
	CHECK(conn_limit_take(l, SA(a)) == -1, "a third from it is over the per-source cap");
	memset(&m, 0, sizeof m);
	m.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:127.0.0.2", &m.sin6_addr);
	CHECK(conn_limit_take(l, SA(m)) == -1, "the same address as IPv4-mapped IPv6 counts as the same source");
	CHECK(conn_limit_take(l, SA(b)) == 0, "another source is not affected");
	CHECK(conn_limit_count(l, SA(a), &total) == 2 && total == 3, "counts: 2 from the first source, 3 in all");
	conn_limit_put(l, SA(a));
	CHECK(conn_limit_take(l, SA(a)) == 0, "a place given back can be taken again");
	CHECK(conn_limit_take(l, &un) == -1, "a non-inet address is refused");
	for (int i = 0; i < 5; i++)
		many[i] = v4(10, 0, 0, (unsigned)i + 1);
	for (int i = 0; i < 5; i++)
		conn_limit_take(l, SA(many[i]));
	conn_limit_count(l, SA(a), &total);
	CHECK(total == 8 && conn_limit_take(l, SA(many[0])) == -1, "the total cap holds (8)");
	conn_limit_free(l);

	/* Many sources, taken and given back in a scattered order: every count stays exact. */
	l = conn_limit_new(600, 2);
	for (int i = 0; i < 300; i++) {
		many[i] = v4(10, (unsigned)(i * 7) & 255, (unsigned)i >> 8, (unsigned)(i * 13) & 255);
		conn_limit_take(l, SA(many[i]));
		conn_limit_take(l, SA(many[i]));
	}
	for (int i = 0; i < 300; i += 3)
		conn_limit_put(l, SA(many[i]));
	for (int i = 0; i < 300; i += 2)
		conn_limit_put(l, SA(many[i]));
	ok = 1;
	for (int i = 0; i < 300; i++) {
		size_t want = 2 - (i % 3 == 0) - (i % 2 == 0);
		if (conn_limit_count(l, SA(many[i]), NULL) != want)
			ok = 0;
	}
	n = 0;
	for (int i = 0; i < 300; i++)
		n += 2 - (i % 3 == 0) - (i % 2 == 0);
	conn_limit_count(l, SA(a), &total);
	CHECK(ok && total == n, "300 sources, some given back: every count exact (%zu open)", total);
	for (int i = 0; i < 300; i++)
		while (conn_limit_count(l, SA(many[i]), NULL) > 0)
			conn_limit_put(l, SA(many[i]));
	conn_limit_count(l, SA(a), &total);
	CHECK(total == 0 && conn_limit_take(l, SA(many[7])) == 0, "all given back: empty, and usable again");
	conn_limit_free(l);
	return test_done();
}
