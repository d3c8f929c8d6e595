"""ingress-onion's GET /healthz covers the senders (docs/observability.md, "Health"): 200 naming
the connected senders while all are connected; a sender stopped -> 503 naming it (the router
remembers every sender that has been connected); started again -> 200; a sender named in
statsd.health_senders that never connected -> 503 naming it from the start; without the router
-> 503. Each worker asks the router over its own link, so every answer is checked on a fresh
connection several times (both workers)."""
import http.client, json, time
from lib.harness import Pipeline, Checks

t = Checks()


def get(port, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, "/healthz")
    r = c.getresponse()
    return r.status, r.read().decode(errors="replace")


def settled(p, want, timeout=15.0, naming=()):
    """Asks until four answers in a row have status want and name every sender in naming (a
    sender the router has not seen yet is not listed); the last answer."""
    end, streak, last = time.time() + timeout, 0, None
    while time.time() < end:
        last = get(p.http)
        ok = last[0] == want and all(n in last[1] for n in naming)
        streak = streak + 1 if ok else 0
        if streak >= 4:
            break
        time.sleep(0.1)
    return last


p = Pipeline()
try:
    p.start_all()
    st, b = settled(p, 200, naming=("apns-sender", "fcm-sender"))
    t.check(st == 200 and b.startswith("ok: connected to the router") and "apns-sender" in b and "fcm-sender" in b,
            f"all connected: 200 naming the senders ({st} {b!r})")
    st, _ = get(p.http, "HEAD")
    t.check(st == 200, "HEAD /healthz: 200")

    p.kill("fcm-sender")
    st, b = settled(p, 503)
    t.check(st == 503 and "not connected" in b and "fcm-sender" in b and "apns-sender" not in b,
            f"fcm-sender stopped: 503 naming it, and only it ({st} {b!r})")

    p.start("fcm-sender")
    st, b = settled(p, 200)
    t.check(st == 200 and "fcm-sender" in b, f"fcm-sender started again: 200 ({st} {b!r})")

    p.kill("router")
    st, b = settled(p, 503)
    t.check(st == 503 and "not connected to the router" in b, f"without the router: 503 ({st} {b!r})")
finally:
    p.stop()

# A sender the operator lists in statsd.health_senders counts before it has ever connected.
p = Pipeline()
try:
    with open(p.config) as f:
        cfg = json.load(f)
    cfg.setdefault("statsd", {})["health_senders"] = ["apns-sender", "fcm-sender", "hms-sender"]
    with open(p.config, "w") as f:
        json.dump(cfg, f)
    p.start_all()
    st, b = settled(p, 503)
    t.check(st == 503 and "hms-sender" in b and "fcm-sender" not in b,
            f"hms-sender listed in health_senders, not running: 503 naming it ({st} {b!r})")
    p.start("hms-sender")
    st, b = settled(p, 200)
    t.check(st == 200 and "hms-sender" in b, f"hms-sender started: 200 ({st} {b!r})")
finally:
    p.stop()
raise SystemExit(t.done())
