/*
 * page: see page.h. Every string on the page comes from statsd itself (metric names, numbers,
 * dates), never from a request or a datagram, so nothing needs escaping beyond what is here.
 */
#include "page.h"
#include "sbuf.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

#define C_OK "#2e7d32"
#define C_FAIL "#c62828"
#define C_MSG "#1565c0"
#define C_REQ "#8e24aa"

static const struct provider {
	const char *name, *id;
	uint32_t ok, fail;
} providers[] = {
	{"iOS (APNs)", "ios", CTR_IOS_DELIVERED, CTR_IOS_FAILED},
	{"Android (FCM)", "android", CTR_ANDROID_DELIVERED, CTR_ANDROID_FAILED},
	{"Windows (WNS)", "wns", CTR_WNS_DELIVERED, CTR_WNS_FAILED},
};

static void fmt_time(char *out, size_t n, uint64_t t, const char *fmt)
{
	time_t tt = (time_t)t;
	struct tm tm;
	localtime_r(&tt, &tm);
	strftime(out, n, fmt, &tm);
}

/* 1, 2, 5 × 10^k at or above v (at least 1). */
static uint64_t nice_max(uint64_t v)
{
	uint64_t p = 1;
	if (v < 1)
		return 1;
	for (;;) {
		if (v <= p)
			return p;
		if (v <= 2 * p)
			return 2 * p;
		if (v <= 5 * p)
			return 5 * p;
		p *= 10;
	}
}

#define CW 350
#define CH 200
#define ML 46
#define MR 10
#define MT 28
#define MB 34

static void axes(struct sbuf *b, uint64_t ymax, const struct period_row *rows, size_t n)
{
	int pw = CW - ML - MR, ph = CH - MT - MB;
	for (int k = 0; k <= 2; k++) {
		int y = MT + ph - ph * k / 2;
		sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>", ML, y, ML + pw, y);
		sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"ax\">%g</text>", ML - 4, y + 4,
			  (double)ymax * k / 2.0);
	}
	for (size_t i = 0; i < n; i++) {
		char lab[32];
		if (n > 7 && (n - 1 - i) % 2 != 0)
			continue; /* every other label when crowded, always the newest */
		fmt_time(lab, sizeof lab, rows[i].start, "%d %H:%M");
		sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"ax\">%s</text>",
			  ML + (int)((2 * i + 1) * (size_t)pw / (2 * n)), CH - MB + 16, lab);
	}
}

static void legend(struct sbuf *b, const char *c1, const char *l1, const char *c2, const char *l2)
{
	sb_printf(b, "<rect x=\"%d\" y=\"8\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"17\" class=\"ax\">%s</text>",
		  ML, c1, ML + 14, l1);
	sb_printf(b, "<rect x=\"%d\" y=\"8\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"17\" class=\"ax\">%s</text>",
		  ML + 110, c2, ML + 124, l2);
}

static void bar_chart(struct sbuf *b, const struct provider *pv, const struct period_row *rows, size_t n)
{
	int pw = CW - ML - MR, ph = CH - MT - MB;
	uint64_t top = 0;

	for (size_t i = 0; i < n; i++) {
		if (rows[i].v[pv->ok] > top)
			top = rows[i].v[pv->ok];
		if (rows[i].v[pv->fail] > top)
			top = rows[i].v[pv->fail];
	}
	top = nice_max(top);
	sb_printf(b, "<figure><figcaption>%s</figcaption><svg id=\"chart-%s\" class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		     "xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"%s deliveries and failures per window\">",
		  pv->name, pv->id, CW, CH, CW, CH, pv->name);
	legend(b, C_OK, "delivered", C_FAIL, "failed");
	axes(b, top, rows, n);
	for (size_t i = 0; i < n; i++) {
		/* Bars no wider than 24 px, the pair centred in its window's slot. */
		double gw = (double)pw / (double)n, bw = gw * 0.34 < 24 ? gw * 0.34 : 24, gap = gw * 0.04 < 4 ? gw * 0.04 : 4;
		double x = ML + gw * (double)i + (gw - 2 * bw - gap) / 2;
		uint64_t vals[2] = {rows[i].v[pv->ok], rows[i].v[pv->fail]};
		for (int k = 0; k < 2; k++) {
			double h = (double)ph * (double)vals[k] / (double)top;
			sb_printf(b, "<rect class=\"bar %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%llu %s</title></rect>",
				  k ? "failed" : "delivered", x + k * (bw + gap), MT + ph - h, bw, h < 0.5 && vals[k] ? 0.5 : h,
				  k ? C_FAIL : C_OK, (unsigned long long)vals[k], k ? "failed" : "delivered");
		}
	}
	if (n == 0)
		sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"ax\">no data yet</text>", ML + pw / 2, MT + ph / 2);
	sb_puts(b, "</svg></figure>");
}

static void line_chart(struct sbuf *b, const struct period_row *rows, size_t n)
{
	static const struct {
		uint32_t id;
		const char *color;
	} series[] = {{CTR_MESSAGES_TOTAL, C_MSG}, {CTR_ONION_REQUESTS, C_REQ}};
	int pw = CW - ML - MR, ph = CH - MT - MB;
	uint64_t top = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t s = 0; s < 2; s++)
			if (rows[i].v[series[s].id] > top)
				top = rows[i].v[series[s].id];
	top = nice_max(top);
	sb_printf(b, "<figure><figcaption>Messages per window</figcaption><svg id=\"chart-messages\" class=\"chart\" width=\"%d\" height=\"%d\" "
		     "viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"messages and onion requests per window\">",
		  CW, CH, CW, CH);
	legend(b, C_MSG, "notifies", C_REQ, "onion requests");
	axes(b, top, rows, n);
	for (size_t s = 0; s < 2; s++) {
		sb_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", series[s].color);
		for (size_t i = 0; i < n; i++)
			sb_printf(b, "%.1f,%.1f ", ML + (2.0 * (double)i + 1) * pw / (2.0 * (double)n),
				  MT + ph - (double)ph * (double)rows[i].v[series[s].id] / (double)top);
		sb_puts(b, "\"/>");
		for (size_t i = 0; i < n; i++)
			sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%llu</title></circle>",
				  ML + (2.0 * (double)i + 1) * pw / (2.0 * (double)n),
				  MT + ph - (double)ph * (double)rows[i].v[series[s].id] / (double)top, series[s].color,
				  (unsigned long long)rows[i].v[series[s].id]);
	}
	if (n == 0)
		sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"ax\">no data yet</text>", ML + pw / 2, MT + ph / 2);
	sb_puts(b, "</svg></figure>");
}

static void card(struct sbuf *b, const char *label, const char *value, const char *sub)
{
	sb_printf(b, "<div class=\"card\"><div class=\"lab\">%s</div><div class=\"val\">%s</div><div class=\"sub\">%s</div></div>", label,
		  value, sub);
}

static const struct gauge_entry *find_gauge(const struct metrics *m, uint32_t src, uint32_t pid, uint32_t g)
{
	for (size_t i = 0; i < m->ngauges; i++)
		if (m->gauges[i].src == src && m->gauges[i].pid == pid && m->gauges[i].gauge == g)
			return &m->gauges[i];
	return NULL;
}

static void gauges_table(struct sbuf *b, const struct metrics *m)
{
	sb_puts(b, "<table><tr><th>daemon</th><th>pid</th><th>outbox jobs</th><th>jobs in flight</th><th>provider requests</th>"
		   "<th>router link</th></tr>");
	for (size_t i = 0; i < m->ngauges; i++) {
		const struct gauge_entry *e = &m->gauges[i];
		size_t k;
		for (k = 0; k < i && !(m->gauges[k].src == e->src && m->gauges[k].pid == e->pid); k++)
			;
		if (k < i)
			continue; /* one line per daemon */
		sb_printf(b, "<tr><td>%s</td><td>%u</td>", counter_source_name(e->src), e->pid);
		for (uint32_t g = 1; g < GAUGE_MAX; g++) {
			const struct gauge_entry *x = find_gauge(m, e->src, e->pid, g);
			if (x == NULL)
				sb_puts(b, "<td class=\"dim\">–</td>");
			else if (g == GAUGE_ROUTER_CONNECTED)
				sb_printf(b, "<td class=\"%s\">%s</td>", x->value ? "good" : "bad", x->value ? "up" : "down");
			else
				sb_printf(b, "<td>%llu</td>", (unsigned long long)x->value);
		}
		sb_puts(b, "</tr>");
	}
	if (m->ngauges == 0)
		sb_puts(b, "<tr><td colspan=\"6\" class=\"dim\">no daemon has reported in the last 10 s</td></tr>");
	sb_puts(b, "</table>");
}

static const char *const hist_label[HIST_MAX] = {
	[HIST_ONION_ROUTER_REPLY] = "onion request → router verdict",
	[HIST_JOB_PROVIDER_ANSWER] = "job committed → provider answer",
};

static void latency_table(struct sbuf *b, const struct metrics *m)
{
	sb_puts(b, "<table><tr><th>latency</th><th>count</th><th>mean</th><th>p50 ≤</th><th>p95 ≤</th></tr>");
	for (uint32_t h = 1; h < HIST_MAX; h++) {
		uint64_t cnt[HIST_BOUNDS + 1], total = 0, sum = metrics_value(m, METRIC_HIST_ID(h, HIST_SUM_BUCKET));
		char q[2][32];
		for (uint32_t k = 0; k <= HIST_BOUNDS; k++)
			total += cnt[k] = metrics_value(m, METRIC_HIST_ID(h, k));
		for (int qi = 0; qi < 2; qi++) {
			uint64_t want = (total * (qi ? 95 : 50) + 99) / 100, acc = 0;
			uint32_t k = 0;
			for (; k <= HIST_BOUNDS; k++)
				if ((acc += cnt[k]) >= want && want > 0)
					break;
			if (total == 0)
				snprintf(q[qi], sizeof q[qi], "–");
			else if (k >= HIST_BOUNDS)
				snprintf(q[qi], sizeof q[qi], "&gt; %llu s", (unsigned long long)(hist_bounds_us[HIST_BOUNDS - 1] / 1000000));
			else
				snprintf(q[qi], sizeof q[qi], "%.1f ms", (double)hist_bounds_us[k] / 1000.0);
		}
		sb_printf(b, "<tr><td>%s</td><td>%llu</td>", hist_label[h] ? hist_label[h] : hist_name(h), (unsigned long long)total);
		if (total)
			sb_printf(b, "<td>%.1f ms</td>", (double)sum / (double)total / 1000.0);
		else
			sb_puts(b, "<td>–</td>");
		sb_printf(b, "<td>%s</td><td>%s</td></tr>", q[0], q[1]);
	}
	sb_puts(b, "</table>");
}

static void http_table(struct sbuf *b, const struct metrics *m)
{
	int any = 0;
	sb_puts(b, "<table><tr><th>route</th><th>status</th><th>answers</th></tr>");
	for (uint32_t r = 0; r < HTTP_ROUTE_MAX; r++)
		for (uint32_t st = 100; st < 600; st++) {
			uint64_t v = metrics_value(m, METRIC_HTTP_ID(r, st));
			if (v == 0)
				continue;
			any = 1;
			sb_printf(b, "<tr><td>%s</td><td class=\"%s\">%u</td><td>%llu</td></tr>", http_route_name(r),
				  st < 400 ? "good" : st < 500 ? "warn" : "bad", st, (unsigned long long)v);
		}
	if (!any)
		sb_puts(b, "<tr><td colspan=\"3\" class=\"dim\">none yet</td></tr>");
	sb_puts(b, "</table>");
}

char *page_render(const struct page_input *in, size_t *len)
{
	struct sbuf b = {0};
	const struct metrics *m = in->m;
	size_t n = in->nrows > PAGE_WINDOWS ? PAGE_WINDOWS : in->nrows;
	const struct period_row *rows = in->rows + (in->nrows - n);
	const struct period_row *cur = n ? &rows[n - 1] : NULL;
	uint64_t ok = 0, fail = 0, senders = 0, up = 0;
	const struct gauge_entry *outbox = NULL;
	char t1[64], t2[64], v[64], s[96];

	for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++) {
		ok += cur ? cur->v[providers[i].ok] : 0;
		fail += cur ? cur->v[providers[i].fail] : 0;
	}
	for (size_t i = 0; i < m->ngauges; i++) {
		if (m->gauges[i].gauge == GAUGE_ROUTER_CONNECTED) {
			senders++;
			up += m->gauges[i].value != 0;
		}
		if (m->gauges[i].gauge == GAUGE_OUTBOX_JOBS)
			outbox = &m->gauges[i];
	}
	fmt_time(t1, sizeof t1, in->now_s, "%Y-%m-%d %H:%M:%S %Z");
	sb_printf(&b,
		  "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>pushpipe status</title>"
		  "<meta http-equiv=\"refresh\" content=\"30\">"
		  "<style>body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#222}"
		  "header{background:#263238;color:#fff;padding:12px 24px}header h1{margin:0;font-size:20px}"
		  "header .meta{opacity:.8;font-size:12px}main{padding:16px 24px;max-width:1180px}"
		  "h2{font-size:16px;margin:20px 0 8px}.cards{display:flex;gap:12px;flex-wrap:wrap}"
		  ".card{background:#fff;border-radius:6px;padding:10px 14px;min-width:150px;box-shadow:0 1px 2px #0002}"
		  ".lab{font-size:12px;color:#666}.val{font-size:24px;font-weight:600}.sub{font-size:11px;color:#888}"
		  ".charts{display:flex;gap:12px;flex-wrap:wrap}figure{margin:0;background:#fff;border-radius:6px;padding:8px;"
		  "box-shadow:0 1px 2px #0002}figcaption{font-weight:600;margin:0 0 4px 4px}.ax{font-size:10px;fill:#555}"
		  "table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0002;margin-right:12px}"
		  "td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}th{background:#eceff1}"
		  "td:first-child,th:first-child{text-align:left}.good{color:" C_OK "}.bad{color:" C_FAIL "}.warn{color:#ef6c00}"
		  ".dim{color:#999}.tables{display:flex;flex-wrap:wrap;gap:0 24px;align-items:flex-start}</style></head><body>"
		  "<header><h1>pushpipe status</h1><div class=\"meta\">%s · windows of %llu s · statsd up since ",
		  t1, (unsigned long long)in->period_s);
	fmt_time(t2, sizeof t2, in->started_s, "%Y-%m-%d %H:%M:%S");
	sb_printf(&b, "%s%s · <a style=\"color:#cfd8dc\" href=\"/metrics\">/metrics</a></div></header><main>", t2,
		  in->test_clock ? " · <b>TEST CLOCK</b>" : "");

	sb_puts(&b, "<section id=\"now\"><h2>Current window</h2><div class=\"cards\">");
	if (cur) {
		fmt_time(t1, sizeof t1, cur->start, "since %m-%d %H:%M");
	} else {
		snprintf(t1, sizeof t1, "no window yet");
	}
	snprintf(v, sizeof v, "%llu", cur ? (unsigned long long)cur->v[CTR_MESSAGES_TOTAL] : 0ull);
	card(&b, "notifies", v, t1);
	snprintf(v, sizeof v, "%llu", (unsigned long long)ok);
	card(&b, "delivered", v, "iOS + Android + WNS");
	snprintf(v, sizeof v, "%llu", (unsigned long long)fail);
	snprintf(s, sizeof s, "%.1f%% of answered", ok + fail ? 100.0 * (double)fail / (double)(ok + fail) : 0.0);
	card(&b, "failed", v, s);
	if (outbox)
		snprintf(v, sizeof v, "%llu", (unsigned long long)outbox->value);
	else
		snprintf(v, sizeof v, "–");
	card(&b, "outbox jobs", v, outbox ? "router, live" : "router not reporting");
	snprintf(v, sizeof v, "%llu / %llu", (unsigned long long)up, (unsigned long long)senders);
	card(&b, "senders connected", v, "to the router, live");
	snprintf(v, sizeof v, "%llu", (unsigned long long)metrics_value(m, CTR_MESSAGES_TOTAL));
	card(&b, "notifies, all time", v, "since the first start");
	sb_puts(&b, "</div></section>");

	sb_puts(&b, "<section id=\"providers\"><h2>Deliveries and failures per provider</h2><div class=\"charts\">");
	for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++)
		bar_chart(&b, &providers[i], rows, n);
	sb_puts(&b, "</div></section>");

	/* Traffic beside the live state of the daemons. */
	sb_puts(&b, "<div class=\"tables\"><section id=\"messages\"><h2>Traffic</h2>");
	line_chart(&b, rows, n);
	sb_puts(&b, "</section><section id=\"gauges\"><h2>Live gauges</h2>");
	gauges_table(&b, m);
	sb_puts(&b, "</section></div><section id=\"details\"><h2>Latency and HTTP answers (all time)</h2><div class=\"tables\">");
	latency_table(&b, m);
	http_table(&b, m);
	sb_puts(&b, "</div></section></main></body></html>\n");
	return sb_take(&b, len);
}
