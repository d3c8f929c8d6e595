/*
 * curl_resets: why apns-sender and fcm-sender do not use libcurl (docs/senders.md), shown
 * again on every `make bench` (bench/curl_resets.py). POSTs N small requests through libcurl's
 * multi interface to one URL, at most P at once, over one HTTP/2 connection at a time (as a
 * sender would: CURLMOPT_MAX_HOST_CONNECTIONS 1, CURLOPT_PIPEWAIT), and counts what came back:
 * answers, transfers that failed, and the connections libcurl had to open. libcurl 7.88 sends
 * RST_STREAM for every stream it has finished reading; a server with a rapid-reset defence
 * counts those and ends the connection with GOAWAY, so more than one connection and failed or
 * repeated requests show the defect, and one connection with every request answered shows it
 * fixed. Never part of `make check`. Trusts its arguments; talks only to the URL given (the
 * mock provider on loopback).
 *
 * usage: curl_resets URL CA_FILE N P
 * prints: "answered A failed F connections C per_s R first_error E"
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

static CURL *request(const char *url, const char *ca, struct curl_slist *hdrs)
{
	static const char body[] = "{\"aps\":{\"content-available\":1}}";
	CURL *e = curl_easy_init();

	if (e == NULL)
		return NULL;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CAINFO, ca);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(sizeof body - 1));
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 20000L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	return e;
}

int main(int argc, char **argv)
{
	long n, par, started = 0, answered = 0, failed = 0, conns = 0;
	char first_error[CURL_ERROR_SIZE] = "-";
	struct curl_slist *hdrs = NULL;
	struct timespec t0, t1;
	CURLM *m;
	int running = 1;

	if (argc != 5 || (n = atol(argv[3])) <= 0 || (par = atol(argv[4])) <= 0) {
		fprintf(stderr, "usage: curl_resets URL CA_FILE N P\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
	curl_multi_setopt(m, CURLMOPT_MAX_CONCURRENT_STREAMS, par);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (running || started < n) {
		CURLMsg *msg;
		int left;

		while (started < n && started - answered - failed < par) {
			CURL *e = request(argv[1], argv[2], hdrs);
			if (e == NULL || curl_multi_add_handle(m, e) != CURLM_OK)
				return 1;
			started++;
		}
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			long status = 0, nc = 0;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_NUM_CONNECTS, &nc);
			conns += nc;
			if (msg->data.result == CURLE_OK && status > 0) {
				answered++;
			} else {
				if (failed++ == 0)
					snprintf(first_error, sizeof first_error, "%s", curl_easy_strerror(msg->data.result));
			}
			curl_multi_remove_handle(m, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
		}
		if (running || started < n)
			curl_multi_poll(m, NULL, 0, 100, NULL);
		running = running || answered + failed < started;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (char *p = first_error; *p; p++)
		if (*p == ' ')
			*p = '_';
	printf("answered %ld failed %ld connections %ld per_s %.0f first_error %s\n", answered, failed, conns,
	       (double)(answered + failed) / ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9),
	       first_error);
	curl_slist_free_all(hdrs);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	return 0;
}
