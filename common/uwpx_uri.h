/*
 * uwpx_uri: the WNS channel URI allowlist (docs/uwpx.md, "Channel URIs"). A pure function over
 * bytes, so the unit tests and the fuzzer call it without TLS or a router. This check is what keeps
 * the registration protocol from making the WNS sender POST to arbitrary URLs. ingress-uwpx checks
 * each channel URI when it arrives; the router checks it again before storing it or handing a job
 * to a sender, and wns-sender before it sends the access token anywhere.
 */
#ifndef UWPX_URI_H
#define UWPX_URI_H
#include <stddef.h>

#define UWPX_URI_MAX 2048

struct uwpx_uri_rules {
	const char *const *suffixes; /* host suffixes, e.g. ".notify.windows.com" (case-insensitive) */
	size_t nsuffixes;
	const char *const *paths;    /* accepted paths, exact, e.g. "/" */
	size_t npaths;
	int allow_loopback;	     /* also http(s) to 127.0.0.1, [::1], localhost, any port (tests) */
};

struct config;
/* The rules the configuration sets (ingress_uwpx.channel_suffixes, channel_paths,
 * allow_loopback_channels); r points into c, which must outlive it. */
void uwpx_uri_rules_from_config(struct uwpx_uri_rules *r, const struct config *c);
/* 1 when uri[0..len) is an acceptable channel URI under the rules, else 0. */
int uwpx_uri_valid(const struct uwpx_uri_rules *r, const char *uri, size_t len);
/* The host part of an accepted URI (for log lines: it is not secret, the token is). */
size_t uwpx_uri_host(const char *uri, size_t len, const char **host);
#endif
