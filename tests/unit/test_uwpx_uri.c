/*
 * test_uwpx_uri: the channel URI allowlist (docs/uwpx.md, "Channel URIs"): every sample, each rule
 * on its own, configured suffixes and paths, and the loopback test switch.
 */
#include "uwpx_uri.h"
#include "testlib.h"
#include <string.h>

static const char *const dflt_sfx[] = {".notify.windows.com"};
static const char *const dflt_paths[] = {"/"};
static const struct uwpx_uri_rules dflt = {dflt_sfx, 1, dflt_paths, 1, 0};
static const struct uwpx_uri_rules loop = {dflt_sfx, 1, dflt_paths, 1, 1};
static const char *const w_paths[] = {"/", "/w/"};
static const struct uwpx_uri_rules wpath = {dflt_sfx, 1, w_paths, 2, 0};
static const char *const two_sfx[] = {".notify.windows.com", "wns.example.test"};
static const struct uwpx_uri_rules twosfx = {two_sfx, 2, dflt_paths, 1, 0};

static int ok(const struct uwpx_uri_rules *r, const char *u)
{
	return uwpx_uri_valid(r, u, strlen(u));
}

#define ACCEPT(r, u) CHECK(ok(r, u) == 1, "accepts %s", u)
#define REJECT(r, u) CHECK(ok(r, u) == 0, "rejects %s", u)

int main(void)
{
	char big[2100];
	const char *host;
	size_t hl;

	/* docs/uwpx.md "Channel URIs" samples, default configuration. */
	ACCEPT(&dflt, "https://db5p.notify.windows.com/?token=AwYAAAD%2bx9%3d");
	ACCEPT(&dflt, "https://wns2-par02p.notify.windows.com/?token=BQYAAAAG_x");
	REJECT(&dflt, "https://a.b.notify.windows.com/?token=x");
	REJECT(&dflt, "https://db5p.notify.windows.com.evil.example/?token=x");
	REJECT(&dflt, "http://db5p.notify.windows.com/?token=x");
	REJECT(&dflt, "https://db5p.notify.windows.com:443/?token=x");
	REJECT(&dflt, "https://db5p.notify.windows.com/?token=x&a=b");
	REJECT(&dflt, "https://db5p.notify.windows.com/w/?token=x");
	ACCEPT(&wpath, "https://db5p.notify.windows.com/w/?token=x");
	ACCEPT(&wpath, "https://db5p.notify.windows.com/?token=x");
	REJECT(&dflt, "http://127.0.0.1:8443/?token=x");
	ACCEPT(&loop, "http://127.0.0.1:8443/?token=x");

	/* Rule 1: length and ASCII. */
	memcpy(big, "https://db5p.notify.windows.com/?token=", 39);
	memset(big + 39, 'A', 2048 - 39);
	big[2048] = '\0';
	ACCEPT(&dflt, big);
	big[2048] = 'A';
	big[2049] = '\0';
	REJECT(&dflt, big);
	REJECT(&dflt, "");
	REJECT(&dflt, "https://db5p.notify.windows.com/?token=a\xc3\xa9");
	REJECT(&dflt, "https://db5p.notify.windows.com/?token=a b");
	CHECK(uwpx_uri_valid(&dflt, "https://db5p.notify.windows.com/?token=ab\0c", 42) == 0, "rejects an embedded NUL");
	/* Rule 2: scheme, userinfo, port, fragment. */
	ACCEPT(&dflt, "HTTPS://DB5P.NOTIFY.WINDOWS.COM/?token=x");
	REJECT(&dflt, "https://user@db5p.notify.windows.com/?token=x");
	REJECT(&dflt, "https://user:pw@db5p.notify.windows.com/?token=x");
	REJECT(&dflt, "https://db5p.notify.windows.com:/?token=x");
	REJECT(&dflt, "https://db5p.notify.windows.com/?token=x#frag");
	REJECT(&dflt, "https://db5p.notify.windows.com/#?token=x");
	REJECT(&dflt, "ftp://db5p.notify.windows.com/?token=x");
	REJECT(&dflt, "https:/db5p.notify.windows.com/?token=x");
	REJECT(&dflt, "//db5p.notify.windows.com/?token=x");
	/* Rule 3: exactly one label before the suffix. */
	REJECT(&dflt, "https://notify.windows.com/?token=x");
	REJECT(&dflt, "https://.notify.windows.com/?token=x");
	REJECT(&dflt, "https://-db5p.notify.windows.com/?token=x");
	REJECT(&dflt, "https://db5p-.notify.windows.com/?token=x");
	REJECT(&dflt, "https://db_5p.notify.windows.com/?token=x");
	REJECT(&dflt, "https://db5p.notify.windows.com./?token=x");
	REJECT(&dflt, "https://db5pnotify.windows.com/?token=x");
	REJECT(&dflt, "https://db%35p.notify.windows.com/?token=x");
	ACCEPT(&dflt, "https://a123456789012345678901234567890123456789012345678901234567890bc.notify.windows.com/?token=x");
	REJECT(&dflt, "https://a1234567890123456789012345678901234567890123456789012345678901bc.notify.windows.com/?token=x");
	REJECT(&dflt, "https://db5p.notify.windows.com\\@evil.example/?token=x");
	REJECT(&dflt, "https://db5p.evil.example/?token=x");
	ACCEPT(&twosfx, "https://db5p.wns.example.test/?token=x");
	REJECT(&dflt, "https://db5p.wns.example.test/?token=x");
	REJECT(&twosfx, "https://db5pwns.example.test/?token=x");
	/* Rule 4: the path. */
	REJECT(&dflt, "https://db5p.notify.windows.com?token=x");
	REJECT(&dflt, "https://db5p.notify.windows.com//?token=x");
	REJECT(&dflt, "https://db5p.notify.windows.com/a?token=x");
	REJECT(&dflt, "https://db5p.notify.windows.com/%2e?token=x");
	/* Rule 5: the query. */
	REJECT(&dflt, "https://db5p.notify.windows.com/");
	REJECT(&dflt, "https://db5p.notify.windows.com/?");
	REJECT(&dflt, "https://db5p.notify.windows.com/?token=");
	REJECT(&dflt, "https://db5p.notify.windows.com/?token");
	REJECT(&dflt, "https://db5p.notify.windows.com/?Token=x");
	REJECT(&dflt, "https://db5p.notify.windows.com/?token=a+b");
	REJECT(&dflt, "https://db5p.notify.windows.com/?token=a/b");
	REJECT(&dflt, "https://db5p.notify.windows.com/?token=a=b");
	REJECT(&dflt, "https://db5p.notify.windows.com/?token=a-b");
	REJECT(&dflt, "https://db5p.notify.windows.com/?a=b&token=x");
	REJECT(&dflt, "https://db5p.notify.windows.com/?token=x?token=y");
	ACCEPT(&dflt, "https://db5p.notify.windows.com/?token=Az09_%2F%3D");

	/* The loopback switch: hosts, ports, schemes, and still the path and query rules. */
	ACCEPT(&loop, "https://127.0.0.1:8443/?token=x");
	ACCEPT(&loop, "http://127.0.0.1/?token=x");
	ACCEPT(&loop, "http://[::1]:9000/?token=x");
	ACCEPT(&loop, "https://[::1]/?token=x");
	ACCEPT(&loop, "http://localhost:1/?token=x");
	ACCEPT(&loop, "http://LocalHost:65535/?token=x");
	ACCEPT(&loop, "https://db5p.notify.windows.com/?token=x");
	REJECT(&loop, "http://db5p.notify.windows.com/?token=x");
	REJECT(&loop, "https://db5p.notify.windows.com:443/?token=x");
	REJECT(&loop, "http://127.0.0.1:0/?token=x");
	REJECT(&loop, "http://127.0.0.1:65536/?token=x");
	REJECT(&loop, "http://127.0.0.1:/?token=x");
	REJECT(&loop, "http://127.0.0.1:80a/?token=x");
	REJECT(&loop, "http://127.0.0.2/?token=x");
	REJECT(&loop, "http://127.0.0.1.evil.example/?token=x");
	REJECT(&loop, "http://localhost.evil.example/?token=x");
	REJECT(&loop, "http://::1/?token=x");
	REJECT(&loop, "http://[::2]/?token=x");
	REJECT(&loop, "http://user@127.0.0.1/?token=x");
	REJECT(&loop, "http://127.0.0.1:8443/w/?token=x");
	REJECT(&loop, "http://127.0.0.1:8443/?token=x&y=1");
	REJECT(&loop, "http://127.0.0.1:8443?token=x");
	REJECT(&dflt, "https://localhost/?token=x");
	REJECT(&dflt, "https://[::1]/?token=x");
	REJECT(&dflt, "https://127.0.0.1/?token=x");

	/* The host shown in log lines. */
	hl = uwpx_uri_host("https://db5p.notify.windows.com/?token=x", 41, &host);
	CHECK(hl == 23 && memcmp(host, "db5p.notify.windows.com", 23) == 0, "host of a URI (%zu)", hl);
	return test_done();
}
