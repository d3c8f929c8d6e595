"""The whole pipeline reporting to statsd: a scripted run (register, notify, a bad request, an
unknown path) shows up in /metrics with the right names and values — counters, HTTP answers by
route and status, both latency histograms, the router's and the senders' live gauges — and in
`pushctl stats`."""
import http.client, os, re, subprocess, sys, time
from lib.harness import BIN, Checks, Pipeline
from lib.metrics_util import parse_prometheus, value

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
ID = "bd" + "4" * 64


def get(path, port=None, method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", port or p.stats_port, timeout=10)
    c.request(method, path, body=body)
    r = c.getresponse()
    return r.status, r.read()


def metrics():
    st, b = get("/metrics")
    return parse_prometheus(b.decode()) if st == 200 else None


def settled(cond, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        m = metrics()
        if m and cond(m):
            return m
        time.sleep(0.2)
    return metrics()


try:
    p.start_all()
    rc, out = p.pushctl("register", "token=" + "c3" * 32, f"pubKey={ID}")
    t.check(rc == 0, "register (iOS): " + out)
    rc, out = p.pushctl("register", "token=fcm:metrics", f"pubKey={ID}", "device=android")
    t.check(rc == 0, "register (Android): " + out)
    rc, out = p.pushctl("notify", f"send_to={ID}", "data=aGk=")
    t.check(rc == 0, "notify: " + out)
    t.check(get("/nowhere", p.http, "POST", b"x")[0] == 404, "unknown path on the ingress → 404")
    t.check(get("/beldex/v2/lsrpc", p.http, "POST", b"garbage")[0] == 400, "a bad onion body → 400")
    t.check(get("/get_statistics_data", p.http, "POST", b"")[0] == 401, "statistics without auth → 401")

    def done(m):
        return (value(m, "pushpipe_ios_delivered_total") == 1 and value(m, "pushpipe_android_delivered_total") == 1 and
                (value(m, "pushpipe_job_provider_answer_seconds_count") or 0) >= 2 and
                value(m, "pushpipe_http_requests_total", route="get_statistics_data", status="401") == 1)
    m = settled(done)
    t.check(m is not None and done(m), "deliveries, answers and latencies reach statsd")
    if m:
        t.check(value(m, "pushpipe_messages_total") == 1 and value(m, "pushpipe_registrations_total") == 2 and
                value(m, "pushpipe_onion_requests_total") == 4, "message, registration and request counters")
        t.check(value(m, "pushpipe_http_requests_total", route="onion", status="200") == 3,
                f"onion 200 answers counted ({value(m, 'pushpipe_http_requests_total', route='onion', status='200')})")
        t.check(value(m, "pushpipe_http_requests_total", route="unknown", status="404") == 1, "the 404 counted as route unknown")
        t.check(value(m, "pushpipe_http_requests_total", route="onion", status="400") == 1, "the bad onion body counted as an onion 400")
        t.check(value(m, "pushpipe_provider_answers_total", provider="apns", status="200") == 1 and
                value(m, "pushpipe_provider_answers_total", provider="fcm", status="200") == 1,
                "provider answers by provider and status (APNs 200, FCM 200)")
        t.check(value(m, "pushpipe_onion_router_reply_seconds_count") == 3, "onion request → router verdict latencies observed")
        t.check(value(m, "pushpipe_onion_router_reply_seconds_bucket", le="+Inf") == value(m, "pushpipe_onion_router_reply_seconds_count"),
                "+Inf bucket equals the count")

    def gauges(m):
        daemons = {dict(k[1]).get("daemon") for k in m["samples"] if k[0] == "pushpipe_router_connected" and m["samples"][k] == 1}
        return {"apns-sender", "fcm-sender"} <= daemons and any(k[0] == "pushpipe_outbox_jobs" for k in m["samples"])
    m = settled(gauges, 10)
    t.check(m is not None and gauges(m), "live gauges: the router's outbox, both senders connected to the router")
    if m:
        ob = [v for k, v in m["samples"].items() if k[0] == "pushpipe_outbox_jobs"]
        names = {dict(k[1]).get("daemon_instance") for k in m["samples"] if k[0] == "pushpipe_outbox_jobs"}
        t.check(ob == [0] and names == {"default"}, f"outbox empty after delivery, labelled with the router's instance name ({ob}, {names})")
        t.check(value(m, "pushpipe_deliveries_total", provider="apns", app="default", outcome="delivered") == 1 and
                value(m, "pushpipe_deliveries_total", provider="fcm", app="default", outcome="delivered") == 1 and
                value(m, "pushpipe_deliveries_total", provider="apns", app="default", outcome="failed") == 0,
                "deliveries by provider, app and outcome")
        t.check(value(m, "pushpipe_provider_paused", daemon="apns-sender", daemon_instance="default") == 0 and
                value(m, "pushpipe_provider_paused", daemon="fcm-sender", daemon_instance="default") == 0,
                "neither provider paused")
        bi = [dict(k[1]).get("version") for k in m["samples"] if k[0] == "pushpipe_build_info"]
        version = open(os.path.join(os.path.dirname(BIN), "build", ".version")).read().strip()
        t.check(bi == [version], f"pushpipe_build_info names the build ({bi})")

    # Health: statsd's /healthz (router and every sender connected) and the ingress's.
    st, b = get("/healthz")
    t.check(st == 200 and b'"status":"ok"' in b and b'"router":true' in b, f"statsd /healthz: 200 while all are connected ({st} {b[:200]!r})")
    st, b = get("/healthz", p.http)
    t.check(st == 200, f"ingress-onion /healthz: 200 while connected to the router ({st} {b!r})")

    st, page = get("/")
    t.check(st == 200 and page.count(b"<svg") >= 4 and b"router" in page and b"apns-sender" in page, "status page with charts and the daemons")

    time.sleep(1.2)
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "stats"], capture_output=True, text=True, timeout=20)
    lines = r.stdout.splitlines()
    t.check(r.returncode == 0 and len(lines) >= 3, f"pushctl stats prints a table ({r.returncode}, {r.stderr.strip()})")
    if len(lines) >= 3:
        head = lines[0].split()
        t.check(head[:4] == ["start", "end", "messages", "one_to_one"] and "ios" in head and "wns_failed" in head, f"heading {head}")
        cur = re.split(r"\s{2,}", lines[-2].strip())
        t.check(len(cur) == len(head) and cur[head.index("messages")] == "1" and cur[head.index("ios")] == "1" and
                cur[head.index("android")] == "1", f"current window row {cur}")
        t.check(lines[-1].startswith("total") and lines[-1].split()[head.index("messages") - 1] == "1", f"total line {lines[-1]!r}")
        t.check(len({len(x) for x in lines}) == 1, "columns aligned (every line the same width)")
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "stats", "--start", "2999-01-01"], capture_output=True, text=True, timeout=20)
    t.check(r.returncode == 0 and len(r.stdout.splitlines()) == 2, f"a start date in the future leaves heading and total ({r.stdout!r})")
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "stats", "--start", "tomorrow"], capture_output=True, text=True, timeout=20)
    t.check(r.returncode == 2, "a bad date is refused")
    p.kill("router")
    deadline = time.time() + 10
    while time.time() < deadline and get("/healthz")[0] != 503:
        time.sleep(0.2)
    st, b = get("/healthz")
    t.check(st == 503 and b'"router_connected":false' in b, f"statsd /healthz: 503 once the senders lose the router ({st} {b[:200]!r})")
    deadline = time.time() + 10
    while time.time() < deadline and get("/healthz", p.http)[0] != 503:
        time.sleep(0.2)
    t.check(get("/healthz", p.http)[0] == 503, "ingress-onion /healthz: 503 without the router")
    p.kill("statsd")
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "stats"], capture_output=True, text=True, timeout=20)
    t.check(r.returncode == 1 and "statsd" in r.stderr, f"statsd down: a clear error ({r.stderr.strip()})")
except Exception as e:
    t.check(False, f"exception: {e!r}")
    print(p.logs())
finally:
    p.stop()
sys.exit(t.done())
