/* statsd's metrics: datagram parsing and its limits, gauges per daemon, the Prometheus text,
 * the loopback-only listen address, and the status page's charts. (Its HTTP requests are
 * libmicrohttpd's: tests/integration/metrics.py sends them raw.) */
#include "../../statsd/http.h"
#include "../../statsd/metrics.h"
#include "../../statsd/page.h"
#include "frame.h"
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint8_t buf[FRAME_MAX];

static size_t dgram(const uint32_t *ids, const uint64_t *vals, int n)
{
	struct frame_writer w;
	frame_begin(&w, buf, FRAME_COUNTER, 0);
	for (int i = 0; i < n; i++) {
		frame_put_u32(&w, TAG_COUNTER, ids[i]);
		frame_put_u64(&w, TAG_DELTA, vals[i]);
	}
	return (size_t)frame_end(&w);
}

/* A datagram that names its instance first (counters_set_instance). */
static size_t dgram_inst(const char *inst, const uint32_t *ids, const uint64_t *vals, int n)
{
	struct frame_writer w;
	frame_begin(&w, buf, FRAME_COUNTER, 0);
	frame_put_bytes(&w, TAG_INSTANCE, inst, strlen(inst));
	for (int i = 0; i < n; i++) {
		frame_put_u32(&w, TAG_COUNTER, ids[i]);
		frame_put_u64(&w, TAG_DELTA, vals[i]);
	}
	return (size_t)frame_end(&w);
}

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

static int listen_ok(const char *s)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256];
	return statsd_listen_parse(s, &ss, &len, err, sizeof err) == 0;
}

int main(void)
{
	static struct metrics m;
	char dir[] = "/tmp/test_metrics.XXXXXX", path[300], num[32];
	struct periods p;
	char err[256];
	size_t len;
	char *text;

	CHECK(metrics_init(&m) == 0, "init");
	{
		uint32_t ids[] = {CTR_MESSAGES_TOTAL,
				  CTR_MAX, /* unknown plain id */
				  METRIC_HTTP_ID(HTTP_ROUTE_ONION, 200),
				  METRIC_HTTP_ID(HTTP_ROUTE_ONION, 99), /* not a status */
				  METRIC_HTTP_ID(HTTP_ROUTE_MAX, 200),	/* unknown route */
				  METRIC_HIST_ID(HIST_ONION_ROUTER_REPLY, 0),
				  METRIC_HIST_ID(HIST_ONION_ROUTER_REPLY, 2),
				  METRIC_HIST_ID(HIST_ONION_ROUTER_REPLY, HIST_SUM_BUCKET),
				  METRIC_HIST_ID(HIST_ONION_ROUTER_REPLY, HIST_BOUNDS + 1), /* no such bucket */
				  METRIC_HIST_ID(HIST_MAX, 0),
				  METRIC_GAUGE_ID(SRC_ROUTER, GAUGE_OUTBOX_JOBS),
				  METRIC_GAUGE_ID(SRC_MAX, GAUGE_OUTBOX_JOBS),
				  0x7f000001u};
		uint64_t vals[] = {2, 1, 3, 1, 1, 1, 2, 4000, 1, 1, 17, 1, 1};
		size_t n = dgram(ids, vals, 13);
		CHECK(metrics_take(&m, buf, n, 42, 1000) == 6, "six valid pairs of thirteen");
	}
	CHECK(metrics_value(&m, CTR_MESSAGES_TOTAL) == 2, "pending plain counter visible");
	CHECK(metrics_value(&m, METRIC_HTTP_ID(HTTP_ROUTE_ONION, 200)) == 3, "pending HTTP answer visible");
	CHECK(m.ngauges == 1 && m.gauges[0].pid == 42 && m.gauges[0].value == 17 && m.gauges[0].src == SRC_ROUTER &&
		  m.gauges[0].instance[0] == '\0', "gauge by daemon, no instance name");
	{
		uint32_t id = METRIC_GAUGE_ID(SRC_ROUTER, GAUGE_OUTBOX_JOBS);
		uint64_t v = 5;
		size_t n = dgram(&id, &v, 1);
		metrics_take(&m, buf, n, 42, 2000);
		CHECK(m.ngauges == 1 && m.gauges[0].value == 5, "a gauge is replaced, not summed");
		metrics_take(&m, buf, n, 43, 9000);
		CHECK(m.ngauges == 1 && m.gauges[0].pid == 43, "a restarted daemon (same name, new pid) replaces its gauges");
		n = dgram_inst("2", &id, &v, 1);
		metrics_take(&m, buf, n, 44, 9000);
		CHECK(m.ngauges == 2 && strcmp(m.gauges[1].instance, "2") == 0, "another instance name is another daemon");
		n = dgram_inst("bad\"name", &id, &v, 1);
		CHECK(metrics_take(&m, buf, n, 45, 9000) == -1 && m.ngauges == 2, "an instance name unfit for a label is refused");
		m.rejected = 0;
		metrics_expire(&m, 9000 + GAUGE_STALE_MS + 1500);
		CHECK(m.ngauges == 0, "a silent daemon's gauges expire");
		n = dgram(&id, &v, 1);
		metrics_take(&m, buf, n, 43, 9000);
	}
	memcpy(buf, "garbage", 7);
	CHECK(metrics_take(&m, buf, 7, 1, 1) == -1 && m.rejected == 1, "a non-frame is rejected and counted");

	metrics_fmt_seconds(num, sizeof num, 500);
	CHECK(strcmp(num, "0.0005") == 0, "0.0005 (%s)", num);
	metrics_fmt_seconds(num, sizeof num, 60000000);
	CHECK(strcmp(num, "60") == 0, "60 (%s)", num);
	metrics_fmt_seconds(num, sizeof num, 2500000);
	CHECK(strcmp(num, "2.5") == 0, "2.5 (%s)", num);
	metrics_fmt_seconds(num, sizeof num, 0);
	CHECK(strcmp(num, "0") == 0, "0 (%s)", num);

	text = metrics_prometheus(&m, 1800000000, 43200, &len);
	CHECK(text != NULL && strlen(text) == len, "rendered");
	CHECK(has_line(text, "# TYPE pushpipe_messages_total counter") && has_line(text, "pushpipe_messages_total 2"),
	      "plain counter with its type");
	CHECK(has_line(text, "pushpipe_ios_delivered_total 0"), "zero counters are listed too");
	CHECK(has_line(text, "pushpipe_http_requests_total{route=\"onion\",status=\"200\"} 3"), "HTTP answers by route and status");
	CHECK(has_line(text, "pushpipe_onion_router_reply_seconds_bucket{le=\"0.0005\"} 1") &&
		  has_line(text, "pushpipe_onion_router_reply_seconds_bucket{le=\"0.001\"} 1") &&
		  has_line(text, "pushpipe_onion_router_reply_seconds_bucket{le=\"0.0025\"} 3") &&
		  has_line(text, "pushpipe_onion_router_reply_seconds_bucket{le=\"+Inf\"} 3"),
	      "histogram buckets are cumulative");
	CHECK(has_line(text, "pushpipe_onion_router_reply_seconds_sum 0.004") && has_line(text, "pushpipe_onion_router_reply_seconds_count 3"),
	      "histogram sum in seconds and count");
	CHECK(has_line(text, "pushpipe_outbox_jobs{daemon=\"router\",daemon_instance=\"default\"} 5"),
	      "gauge labelled with daemon and instance name, not pid");
	CHECK(strstr(text, "pid=") == NULL, "no pid label anywhere");
	CHECK(has_line(text, "# TYPE pushpipe_deliveries_total counter") &&
		  has_line(text, "pushpipe_deliveries_total{provider=\"apns\",app=\"default\",outcome=\"delivered\"} 0") &&
		  has_line(text, "pushpipe_deliveries_total{provider=\"wns\",app=\"default\",outcome=\"failed\"} 0"),
	      "deliveries in one vocabulary by provider, app and outcome");
	CHECK(has_line(text, "# TYPE pushpipe_provider_requests_in_flight gauge") &&
		  has_line(text, "# TYPE pushpipe_provider_paused gauge"), "in-flight gauge named as such; the paused gauge");
	CHECK(strstr(text, "\npushpipe_build_info{version=\"") != NULL, "build info");
	CHECK(has_line(text, "pushpipe_statsd_period_seconds 43200"), "period");
	free(text);

	/* Commit, reopen, load: the totals come back. */
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof path, "%s/s", dir);
	CHECK(periods_open(&p, path, 60, 0, err, sizeof err) == 0, "open store");
	CHECK(metrics_dirty(&m) && metrics_commit(&m, &p, 1800000000) == 0 && !metrics_dirty(&m), "commit");
	CHECK(metrics_value(&m, METRIC_HTTP_ID(HTTP_ROUTE_ONION, 200)) == 3, "committed value still visible");
	metrics_free(&m);
	CHECK(metrics_init(&m) == 0 && metrics_load(&m, &p) == 0, "load");
	CHECK(metrics_value(&m, CTR_MESSAGES_TOTAL) == 2 && metrics_value(&m, METRIC_HTTP_ID(HTTP_ROUTE_ONION, 200)) == 3 &&
		  metrics_value(&m, METRIC_HIST_ID(HIST_ONION_ROUTER_REPLY, HIST_SUM_BUCKET)) == 4000,
	      "totals loaded from the store");

	/* The status page: four charts, self-contained. */
	{
		struct period_row rows[3];
		struct page_input in = {.m = &m, .rows = rows, .nrows = 3, .now_s = 1800000200, .started_s = 1800000000, .period_s = 60};
		memset(rows, 0, sizeof rows);
		for (int i = 0; i < 3; i++) {
			rows[i].start = 1800000000 + 60 * (uint64_t)i;
			rows[i].end = rows[i].start + 60;
			rows[i].v[CTR_IOS_DELIVERED] = 10 * (uint64_t)i;
			rows[i].v[CTR_ANDROID_FAILED] = (uint64_t)i;
			rows[i].v[CTR_MESSAGES_TOTAL] = 5;
		}
		text = page_render(&in, &len);
		CHECK(text && strstr(text, "<svg id=\"chart-ios\"") && strstr(text, "<svg id=\"chart-android\"") &&
			  strstr(text, "<svg id=\"chart-wns\"") && strstr(text, "<svg id=\"chart-messages\""),
		      "one chart per provider and one for messages");
		CHECK(text && strstr(text, "<title>20 delivered</title>") && strstr(text, "<polyline"), "bars and line carry the values");
		CHECK(text && !strstr(text, "<script") && !strstr(text, "src=") && !strstr(text, "<link"), "no script, no external asset");
		free(text);
		in.nrows = 0;
		text = page_render(&in, &len);
		CHECK(text && strstr(text, "no data yet"), "empty store still renders");
		free(text);
	}
	/* The tables start with one page and grow: every status of two routes, pending, then committed. */
	metrics_free(&m);
	CHECK(metrics_init(&m) == 0 && m.pend_x.cap == METRICS_SLOTS_FIRST && m.totals.cap == METRICS_SLOTS_FIRST,
	      "tables start small");
	for (uint32_t st = 100; st < 600; st += 50) {
		uint32_t ids[100];
		uint64_t vals[100];
		for (int i = 0; i < 100; i++) {
			ids[i] = METRIC_HTTP_ID(i < 50 ? HTTP_ROUTE_ONION : HTTP_ROUTE_STATS, st + (uint32_t)(i % 50));
			vals[i] = st + (uint32_t)(i % 50);
		}
		metrics_take(&m, buf, dgram(ids, vals, 100), 1, 1);
	}
	{
		int all = 1;
		for (uint32_t st = 100; st < 600; st++)
			all &= metrics_value(&m, METRIC_HTTP_ID(HTTP_ROUTE_ONION, st)) == st &&
			       metrics_value(&m, METRIC_HTTP_ID(HTTP_ROUTE_STATS, st)) == st;
		CHECK(all && m.pend_x.n == 1000 && m.pend_x.cap == 2048, "1000 pending ids kept as the table grew (%zu of %zu)",
		      m.pend_x.n, m.pend_x.cap);
		CHECK(metrics_commit(&m, &p, 1800000000) == 0 && m.pend_x.n == 0 && m.totals.n == 1000, "committed");
		all = 1;
		for (uint32_t st = 100; st < 600; st++)
			all &= metrics_value(&m, METRIC_HTTP_ID(HTTP_ROUTE_STATS, st)) == st;
		CHECK(all, "committed values kept as the totals grew");
		text = metrics_prometheus(&m, 1800000000, 60, &len);
		CHECK(text && has_line(text, "pushpipe_http_requests_total{route=\"get_statistics_data\",status=\"599\"} 599") &&
			  has_line(text, "pushpipe_http_requests_total{route=\"onion\",status=\"100\"} 100"),
		      "all of them rendered");
		free(text);
	}
	periods_close(&p);
	metrics_free(&m);
	snprintf(path, sizeof path, "%s/s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/s/lock.mdb", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/s", dir);
	rmdir(path);
	rmdir(dir);

	{
		/* /healthz: the router reports, and every sender is connected to it. */
		struct metrics h;
		unsigned code = 0;
		size_t blen;
		char *body;
		char *want_wns[] = {"wns-sender"}, *want_apns[] = {"apns-sender", "fcm-sender:2"};
		uint32_t rid = METRIC_GAUGE_ID(SRC_ROUTER, GAUGE_OUTBOX_JOBS);
		uint32_t aid = METRIC_GAUGE_ID(SRC_APNS_SENDER, GAUGE_ROUTER_CONNECTED);
		uint32_t fid = METRIC_GAUGE_ID(SRC_FCM_SENDER, GAUGE_ROUTER_CONNECTED);
		uint64_t zero = 0, one = 1;

		metrics_init(&h);
		body = metrics_health(&h, NULL, 0, &code, &blen);
		CHECK(body && code == 503 && strstr(body, "\"router\":false"), "no router reporting: 503 (%s)", body);
		free(body);
		metrics_take(&h, buf, dgram(&rid, &zero, 1), 10, 100);
		metrics_take(&h, buf, dgram(&aid, &one, 1), 11, 100);
		metrics_take(&h, buf, dgram_inst("2", &fid, &zero, 1), 12, 100);
		body = metrics_health(&h, NULL, 0, &code, &blen);
		CHECK(body && code == 503 && strstr(body, "\"instance\":\"2\"") && strstr(body, "\"router_connected\":false"),
		      "a sender not connected to the router: 503 (%s)", body);
		free(body);
		metrics_take(&h, buf, dgram_inst("2", &fid, &one, 1), 12, 200);
		body = metrics_health(&h, want_apns, 2, &code, &blen);
		CHECK(body && code == 200 && strstr(body, "\"status\":\"ok\"") && strlen(body) == blen,
		      "router and every sender connected, the expected ones present: 200 (%s)", body);
		free(body);
		body = metrics_health(&h, want_wns, 1, &code, &blen);
		CHECK(body && code == 503 && strstr(body, "\"missing\":[\"wns-sender\"]"), "an expected sender missing: 503 (%s)", body);
		free(body);
		metrics_free(&h);
	}

	CHECK(listen_ok("127.0.0.1:5080") && listen_ok("127.1.2.3:1") && listen_ok("localhost:5080") && listen_ok("[::1]:5080"),
	      "loopback addresses accepted");
	CHECK(!listen_ok("0.0.0.0:5080") && !listen_ok("192.168.1.10:5080") && !listen_ok("[::]:5080") &&
		  !listen_ok("[2001:db8::1]:5080") && !listen_ok("example.com:5080"),
	      "other addresses refused");
	CHECK(!listen_ok("127.0.0.1") && !listen_ok("127.0.0.1:0") && !listen_ok("127.0.0.1:65536") && !listen_ok("127.0.0.1:80x") &&
		  !listen_ok(":5080") && !listen_ok("[::1]5080"),
	      "malformed addresses refused");
	return test_done();
}
