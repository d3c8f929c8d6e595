"""The senders' own HTTP/2 connections (common/sender/provider_http*.c), apns-sender against the mock with
bench/sender_feed playing the router: the server's stream limit is respected; thousands of
streams share one connection with no GOAWAY and no request sent twice; an idle connection is
kept alive by PINGs and a provider that stops answering them is left for a new connection; a
dropped connection and reset streams lose nothing."""
import json, os, signal, ssl, subprocess, sys, time, urllib.request
from collections import defaultdict
from lib.harness import BIN, Checks, Pipeline

TOKEN = "d7" * 32
t = Checks()
p = Pipeline(keep="-k" in sys.argv)
ctx = ssl.create_default_context(cafile=os.path.join(p.dir, "mock", "ca.pem"))
SOCK = os.path.join(p.dir, "run", "router-sender.sock")


def mock(path, body=None):
    post = body is not None or "reset" in path
    req = urllib.request.Request(f"https://127.0.0.1:{p.mock_port}{path}", method="POST" if post else "GET",
                                 data=json.dumps(body).encode() if body is not None else b"" if post else None)
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def feed(n, window):
    """Plays the router for n jobs; returns (results, delivered) once they are all answered."""
    out = subprocess.run([os.path.join(BIN, "sender_feed"), SOCK, "1", TOKEN, str(n), str(window)],
                         capture_output=True, text=True, timeout=120).stdout.split()
    r = {out[i]: out[i + 1] for i in range(0, len(out) - 1, 2)}
    return int(r.get("results", -1)), int(r.get("delivered", -1))


def apns_since(base):
    mock("/_mock/stats")  # flushes the record file
    return [r for r in p.requests()[base:] if r["provider"] == "apns"]


def max_concurrent(recs, hold_ms):
    """The most requests one connection had open at once, each answered hold_ms after arrival."""
    worst = 0
    by_conn = defaultdict(list)
    for r in recs:
        by_conn[r["conn"]].append(r["time_ms"])
    for times in by_conn.values():
        for x in times:
            worst = max(worst, sum(1 for y in times if x - hold_ms < y <= x))
    return worst


try:
    cfg = json.load(open(p.config))
    cfg["apns_sender"].update({"connections": 1, "max_streams": 500, "ping_idle_ms": 1000})
    json.dump(cfg, open(p.config, "w"), indent=1)
    os.makedirs(os.path.dirname(SOCK), exist_ok=True)
    p.start_mock()

    # 1. The server allows 4 streams; each answer takes 300 ms: never more than 4 at once.
    mock("/_mock/faults", {"max_concurrent_streams": 4, "rules": [{"provider": "apns", "delay_ms": 300}]})
    base = len(p.requests())
    f = subprocess.Popen([os.path.join(BIN, "sender_feed"), SOCK, "1", TOKEN, "16", "16"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.2)
    p.start("apns-sender")
    res = f.communicate(timeout=60)[0]
    recs = apns_since(base)
    t.check("delivered 16" in res, f"16 pushes delivered through a 4-stream limit ({res.strip()})")
    t.check(len(recs) == 16 and max_concurrent(recs, 250) == 4,
            f"the server's limit of 4 streams held and was used ({len(recs)} requests, at most "
            f"{max_concurrent(recs, 250)} open at once)")
    p.kill("apns-sender")

    # 2. 3000 pushes, 300 in flight, one connection: no GOAWAY, each request sent once.
    mock("/_mock/reset")
    base = len(p.requests())
    f = subprocess.Popen([os.path.join(BIN, "sender_feed"), SOCK, "1", TOKEN, "3000", "300"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.2)
    p.start("apns-sender")
    res = f.communicate(timeout=120)[0]
    recs = apns_since(base)
    conns = {r["conn"] for r in recs}
    stats = mock("/_mock/stats")
    t.check("delivered 3000" in res, f"3000 pushes delivered ({res.strip()})")
    t.check(len(recs) == 3000 and len(conns) == 1,
            f"3000 requests on one connection, none sent twice ({len(recs)} requests, {len(conns)} connections)")
    t.check(stats["apns"].get("actions", {}).get("goaway", 0) == 0 and "GOAWAY" not in p.log("apns-sender"),
            "no GOAWAY on a connection that carried 3000 streams")
    first_conn = conns.pop() if conns else None

    # 3. Idle for 3.5 s with PINGs every second: the same connection carries the next pushes.
    time.sleep(3.5)
    base = len(p.requests())
    t.check(feed(5, 5) == (5, 5), "5 pushes delivered after the idle time")
    recs = apns_since(base)
    t.check([r["conn"] for r in recs] == [first_conn] * 5 and "PING" not in p.log("apns-sender"),
            "the idle connection stayed up, its PINGs answered")

    # 4. The provider stops (SIGSTOP): its PING goes unanswered, the connection is given up.
    mock_proc = p.procs["mock-provider"]
    mock_proc.send_signal(signal.SIGSTOP)
    try:
        p.wait_for(lambda: "no answer to a PING" in p.log("apns-sender"), "the PING timeout", timeout=8)
        pinged = True
    except RuntimeError:
        pinged = False
    mock_proc.send_signal(signal.SIGCONT)
    t.check(pinged, "a provider that stopped answering is found out by an unanswered PING")
    base = len(p.requests())
    t.check(feed(5, 5) == (5, 5), "5 pushes delivered once the provider is back")
    recs = apns_since(base)
    t.check(len(recs) == 5 and first_conn not in {r["conn"] for r in recs}, "on a new connection")

    # 5. A dropped connection, then reset streams: each request without an answer is resent
    # once, so every push is still delivered (the router would retry any that were not).
    mock("/_mock/faults", {"rules": [{"provider": "apns", "count": 1, "action": "drop"}]})
    got = feed(200, 100)
    t.check(got == (200, 200), f"200 pushes delivered across a dropped connection (results, delivered: {got})")
    t.check("closed by the server" in p.log("apns-sender"), "the dropped connection is logged")
    mock("/_mock/faults", {"rules": [{"provider": "apns", "count": 3, "action": "reset"}]})
    got = feed(200, 100)
    t.check(got == (200, 200), f"200 pushes delivered across 3 reset streams (results, delivered: {got})")
except Exception as e:  # noqa: BLE001 — reported as a failure with the logs below
    t.check(False, f"unexpected: {e!r}")
finally:
    if t.failed:
        print(p.logs())
    p.stop()
sys.exit(t.done())
