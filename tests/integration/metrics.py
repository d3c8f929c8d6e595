"""statsd on its own: windows rolling over at their boundary (short and default periods, with
the test clock), restarts without loss (TERM and kill -9), every metric's name and value in
/metrics, the Prometheus text format line by line, and a non-loopback listener refused."""
import os, signal, socket, sys, time
from lib.harness import Checks, free_port, raw_exchange
from lib.metrics_util import (Statsd, counter_names, gauge_id, hist_id, http_id, parse_prometheus, value,
                          HIST_BOUNDS, HIST_SUM)

t = Checks()
B = 1800000000 - 1800000000 % 43200  # a 12 h boundary, hence also a minute's
MSG = 1  # CTR_MESSAGES_TOTAL
keep = "-k" in sys.argv
made = []


def statsd(**kw):
    s = Statsd(keep=keep, **kw)
    made.append(s)
    return s


def until(cond, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def row(sd, start):
    for r in sd.rows():
        if r[0] == start:
            return r
    return None


def total(sd, name="pushpipe_messages_total"):
    return value(sd.metrics(), name)


try:
    # --- a listener beyond loopback is refused at start-up
    for listen in (f"0.0.0.0:{free_port()}", f"192.0.2.1:{free_port()}", f"[::]:{free_port()}"):
        sd = statsd(listen=listen)
        p = sd.start(wait=False)
        try:
            rc = p.wait(timeout=10)
        except Exception:
            rc = None
        sd.proc = None
        log = sd.p.log("statsd")
        t.check(rc == 1 and "loopback" in log, f"statsd refuses to listen on {listen} (exit {rc})")

    # --- windows of 60 s: counts land in the window of the moment they are committed
    sd = statsd(period_s=60, clock=B + 58)
    sd.start()
    sd.send([(MSG, 3)])
    t.check(until(lambda: (row(sd, B) or (0, 0, [0, 0]))[2][MSG] == 3), "3 in the window [B, B+60) at B+58")
    sd.set_clock(B + 59)
    sd.send([(MSG, 1)])
    t.check(until(lambda: (row(sd, B) or (0, 0, [0, 0]))[2][MSG] == 4), "the last second of the window still counts in it")
    sd.set_clock(B + 60)
    sd.send([(MSG, 5)])
    t.check(until(lambda: row(sd, B + 60) is not None and row(sd, B + 60)[2][MSG] == 5), "at B+60 the next window opens with 5")
    r0 = row(sd, B)
    t.check(r0 is not None and r0[1] == B + 60 and r0[2][MSG] == 4, f"the closed window keeps 4 and ends at B+60 ({r0 and r0[:2]})")
    t.check(total(sd) == 9, "/metrics total 9 across both windows")
    sd.set_clock(B + 200)
    t.check(until(lambda: row(sd, B + 180) is not None), "an idle window gets its (empty) row")
    t.check(row(sd, B + 180)[2][MSG] == 0 and row(sd, B + 180)[1] == B + 200, "the open idle window is empty and ends now")
    t.check([r[0] for r in sd.rows(start=B + 60)] == [B + 60, B + 180], "rows from a start date")

    # --- restarts: nothing committed is ever lost
    extra = [(http_id(1, 200), 4), (hist_id(1, 3), 2), (hist_id(1, HIST_SUM), 6000)]
    sd.send([(MSG, 10)] + extra)
    time.sleep(1.5)  # statsd commits once a second
    sd.stop(signal.SIGTERM)
    sd.start()
    m = sd.metrics()
    t.check(value(m, "pushpipe_messages_total") == 19, f"after TERM: 19 ({value(m, 'pushpipe_messages_total')})")
    t.check(value(m, "pushpipe_http_requests_total", route="onion", status="200") == 4 and
            value(m, "pushpipe_onion_router_reply_seconds_count") == 2 and
            value(m, "pushpipe_onion_router_reply_seconds_sum") == 0.006, "HTTP answers and histograms survive a restart")
    sd.send([(MSG, 20)])
    time.sleep(1.5)
    sd.stop(signal.SIGKILL)
    sd.start()
    t.check(total(sd) == 39, f"after kill -9 past a flush: nothing lost (39: {total(sd)})")
    sd.send([(MSG, 7)])
    sd.stop(signal.SIGKILL)
    sd.start()
    got = total(sd)
    t.check(got in (39, 46), f"kill -9 right after sending loses at most the last second ({got})")
    base = got
    sd.send([(MSG, 8)])
    time.sleep(0.1)
    sd.stop(signal.SIGTERM)
    sd.start()
    t.check(total(sd) == base + 8, "TERM right after sending: counted before stopping")
    t.check(row(sd, B + 180)[2][MSG] == base + 8 - 9, "all of it in the current window")
    sd.close()

    # --- the default period, 12 h
    sd = statsd(clock=B + 43199)
    sd.start()
    sd.send([(MSG, 2)])
    t.check(until(lambda: row(sd, B) is not None and row(sd, B)[2][MSG] == 2), "12 h window [B, B+43200) gets 2 at its last second")
    sd.set_clock(B + 43200)
    sd.send([(MSG, 3)])
    t.check(until(lambda: row(sd, B + 43200) is not None and row(sd, B + 43200)[2][MSG] == 3), "the next 12 h window starts at B+43200")
    t.check(row(sd, B)[1] == B + 43200 and row(sd, B)[2][MSG] == 2, "the first keeps its 2")
    st, _, page = sd.get("/")
    t.check(st == 200 and b"TEST CLOCK" in page, "the status page says the test clock is on")
    sd.close()

    # --- every metric by name, with its value, in a valid exposition
    sd = statsd()
    sd.start()
    names = counter_names()
    pairs = [(i, i * 10) for i in names]
    pairs += [(http_id(0, 404), 1), (http_id(1, 200), 5), (http_id(1, 400), 2), (http_id(2, 401), 3), (http_id(2, 503), 1)]
    pairs += [(hist_id(2, 0), 1), (hist_id(2, 5), 2), (hist_id(2, HIST_BOUNDS), 1), (hist_id(2, HIST_SUM), 70000000 + 30000 + 400)]
    pairs += [(gauge_id(1, 1), 12), (gauge_id(2, 2), 3), (gauge_id(2, 3), 2), (gauge_id(2, 4), 1)]
    sd.send(pairs)
    sd.send([(999999, 1)])  # an unknown id is ignored
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"not a frame", sd.sock)
    s.close()
    time.sleep(1.3)
    st, h, body = sd.get("/metrics")
    t.check(st == 200 and h.get("Content-Type", "").startswith("text/plain; version=0.0.4"), f"/metrics content type {h.get('Content-Type')}")
    try:
        m = parse_prometheus(body.decode())
        nlines = body.count(b"\n")
        t.check(nlines > 150, f"every one of {nlines} lines is valid text format 0.0.4")
    except ValueError as e:
        m = {"samples": {}, "types": {}, "help": {}}
        t.check(False, f"Prometheus format: {e}")
    def prom(n):  # one _total suffix, never two
        return f"pushpipe_{n}" if n.endswith("_total") else f"pushpipe_{n}_total"
    bad = [n for i, n in names.items() if value(m, prom(n)) != i * 10 or m["types"].get(prom(n)) != "counter"
           or not m["help"].get(prom(n))]
    t.check(not bad and len(names) >= 39, f"all {len(names)} counters as pushpipe_<name>_total with HELP, TYPE and value ({bad[:5]})")
    t.check(value(m, "pushpipe_http_requests_total", route="unknown", status="404") == 1 and
            value(m, "pushpipe_http_requests_total", route="onion", status="200") == 5 and
            value(m, "pushpipe_http_requests_total", route="onion", status="400") == 2 and
            value(m, "pushpipe_http_requests_total", route="get_statistics_data", status="401") == 3 and
            value(m, "pushpipe_http_requests_total", route="get_statistics_data", status="503") == 1,
            "HTTP answers by route and status")
    H = "pushpipe_job_provider_answer_seconds"
    t.check(m["types"].get(H) == "histogram" and value(m, H + "_bucket", le="0.0005") == 1 and value(m, H + "_bucket", le="0.01") == 1 and
            value(m, H + "_bucket", le="0.025") == 3 and value(m, H + "_bucket", le="60") == 3 and value(m, H + "_bucket", le="+Inf") == 4 and
            value(m, H + "_count") == 4 and abs(value(m, H + "_sum") - 70.0304) < 1e-9, "histogram buckets, sum and count")
    # Gauges by daemon and instance name (no -i: "default"), not pid (docs/observability.md).
    inst = "default"
    t.check(value(m, "pushpipe_outbox_jobs", daemon="router", daemon_instance=inst) == 12 and
            value(m, "pushpipe_jobs_in_flight", daemon="apns-sender", daemon_instance=inst) == 3 and
            value(m, "pushpipe_provider_requests_in_flight", daemon="apns-sender", daemon_instance=inst) == 2 and
            value(m, "pushpipe_router_connected", daemon="apns-sender", daemon_instance=inst) == 1,
            "gauges labelled with the reporting daemon and instance name")
    t.check(value(m, "pushpipe_provider_requests", daemon="apns-sender", daemon_instance=inst) == 2 and
            "Deprecated" in m["help"].get("pushpipe_provider_requests", ""), "the renamed gauge's old name stays as a deprecated alias")
    t.check(value(m, "pushpipe_statsd_datagrams_rejected_total") == 1 and value(m, "pushpipe_statsd_datagrams_total") == 3,
            "the bad datagram is counted as rejected")
    t.check(not any("999999" in str(k) for k in m["samples"]), "an unknown id leaves no trace")
    t.check(sd.get("/nothing")[0] == 404 and sd.get("/metrics", "POST")[0] == 405 and sd.get("/metrics", "HEAD")[0] == 200,
            "404 elsewhere, 405 for POST, HEAD allowed")
    # Raw requests, as scrapers and browsers (and worse) send them: libmicrohttpd parses the
    # head, statsd answers by method and path only, one request per connection.
    def raw(data):
        return raw_exchange(sd.port, data)[0]

    def status(out):
        try:
            return int(out.split(b" ", 2)[1])
        except Exception:
            return None
    for what, data, want in [
            ("GET with headers", b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n", 200),
            ("HEAD, HTTP/1.0, query string cut off", b"HEAD /?refresh=1 HTTP/1.0\r\n\r\n", 200),
            ("the path is percent-decoded", b"GET /m%65trics HTTP/1.1\r\nHost: x\r\n\r\n", 200),
            ("an empty line first, bare LF line ends", b"\r\nGET /metrics HTTP/1.1\nHost: x\n\n", 200),
            ("POST with a body", b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 405),
            ("a lower-case method", b"get / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
            ("a path without the leading /", b"GET metrics HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            ("a NUL escaped in the path", b"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            ("HTTP/2.0", b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            ("a header line without a colon", b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400),
            ("a 20 KB header (431, or closed before the client reads it)",
             b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", (431, None))]:
        out = raw(data)
        t.check(status(out) in (want if isinstance(want, tuple) else (want,)), f"raw HTTP: {what} → {want} ({out[:40]!r})")
    out = raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head = out.partition(b"\r\n\r\n")[0].lower()
    t.check(b"connection: close" in head and b"cache-control: no-store" in head and b"x-content-type-options: nosniff" in head,
            "every answer: Connection: close, Cache-Control: no-store, X-Content-Type-Options: nosniff")
    s1 = socket.create_connection(("127.0.0.1", sd.port), timeout=1)
    s1.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    started = time.time()
    while time.time() - started < 15:
        try:
            s1.send(b"a")  # a byte a second: never idle, never done
            if s1.recv(4096) == b"":
                break
        except socket.timeout:
            continue
        except OSError:
            break
    el = time.time() - started
    s1.close()
    t.check(9 <= el < 12, f"a connection trickling its head is closed 10 s after accept, however often it sends ({el:.1f} s)")
except Exception as e:
    t.check(False, f"exception: {e!r}")
    for s in made:
        print(s.p.logs())
finally:
    for s in made:
        try:
            s.close()
        except Exception:
            pass
sys.exit(t.done())
