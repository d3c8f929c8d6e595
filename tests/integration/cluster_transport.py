"""Cluster mode end to end (docs/cluster.md): three nats-server nodes, two routers (each its
own LMDB), two ingress-onion, one apns-sender and one fcm-sender, and the mock provider.
A registration through one ingress is used by a notify through the other (read-your-writes
across routers); notifies keep arriving while a router, then the PP_REQ stream leader, are
killed with SIGKILL; every notify answered Success reaches the mock; both routers' registries
export identically afterwards; a dead token reported by APNs leaves both registries."""
import json, os, signal, ssl, subprocess, sys, time, urllib.request
from harness import Checks, BIN
from cluster_env import Cluster

ID = "bd" + "3" * 64
ID2 = "bd" + "4" * 64
IOS = "b2" * 32
ANDROID = "fcmClusterTok:APA91b-z"


def mock(c, path, body):
    ctx = ssl.create_default_context(cafile=os.path.join(c.dir, "mock", "ca.pem"))
    req = urllib.request.Request(f"https://127.0.0.1:{c.mock_port}{path}", method="POST", data=json.dumps(body).encode())
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def counts(conf):
    out = subprocess.run([os.path.join(BIN, "pushctl"), "-c", conf, "counts"], capture_output=True, text=True).stdout
    return dict(line.split() for line in out.splitlines() if len(line.split()) == 2)


def export(c, conf):
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", conf, "export"], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout


t = Checks()
c = Cluster(keep="-k" in sys.argv)
try:
    c.start_mock()
    c.start("statsd")
    for i in range(3):
        c.start_nats(i)
    # A short APNs deadline makes the jobs consumer's AckWait short (3 x 1 s + 5 s), so the jobs
    # of a killed sender come again within the test.
    quick = {"deadline_ms": 1000}
    r1 = c.conf("router-1", "router", router={"db_path": os.path.join(c.dir, "db", "r1")}, apns_sender=quick)
    r2 = c.conf("router-2", "router", router={"db_path": os.path.join(c.dir, "db", "r2")}, apns_sender=quick)
    http2 = __import__("harness").free_port()
    i1 = c.conf("ingress-onion-1", "ingress")
    i2 = c.conf("ingress-onion-2", "ingress", ingress_onion={"listen": f"127.0.0.1:{http2}"})
    ap = c.conf("apns-sender", "sender-apns-default", apns_sender=quick)
    fc = c.conf("fcm-sender", "sender-fcm-default")
    c.start_c("router-1", "router", r1)
    c.start_c("router-2", "router", r2)
    c.start_c("ingress-onion-1", "ingress-onion", i1)
    c.start_c("ingress-onion-2", "ingress-onion", i2)
    c.start_c("apns-sender", "apns-sender", ap)
    c.start_c("fcm-sender", "fcm-sender", fc)
    c.wait_for(lambda: "takes jobs from" in c.log("apns-sender") and "takes jobs from" in c.log("fcm-sender"),
               "senders bound to their jobs consumers", timeout=30)
    c.wait_for(lambda: all("registry copy at change" in c.log(r) for r in ("router-1", "router-2")),
               "both routers on the bus", timeout=30)
    c.wait_for(c.ingress_up, "ingress listening")
    http1 = c.http

    def send(http, *args):
        c.http = http
        return c.pushctl(*args)

    def ok(out):
        return '"message": "Success"' in out

    rc, out = send(http1, "register", f"token={IOS}", f"pubKey={ID}")
    t.check(rc == 0 and ok(out), "register through ingress-onion-1 answers Success: " + out)
    rc, out = send(http2, "notify", f"send_to={ID}", "data=Zmlyc3Q=")
    t.check(rc == 0 and ok(out), "notify through ingress-onion-2 answers Success: " + out)
    try:
        c.wait_for(lambda: any(r["provider"] == "apns" and "Zmlyc3Q=" in r["body"] for r in c.requests()),
                   "the first notify at the mock")
    except RuntimeError as e:
        print(e)
    t.check(any(r["provider"] == "apns" and r["path"] == "/3/device/" + IOS for r in c.requests()),
            "a registration made through one ingress is used by a notify through the other")
    rc, out = send(http2, "register", f"token={ANDROID}", f"pubKey={ID2}", "device=android")
    t.check(rc == 0 and ok(out), "register (Android) through ingress-onion-2 answers Success: " + out)

    # Notifies under kills: each one answered Success must reach the mock.
    accepted = []
    events = {10: ("router-1", None), 18: ("apns-sender", None), 25: ("nats", None), 32: ("ingress-onion-1", None)}
    for n in range(40):
        if n in events:
            what = events[n][0]
            if what == "nats":
                leader = c.stream_leader("PP_REQ")
                t.check(leader is not None, f"the PP_REQ stream leader is known ({leader})")
                if leader:
                    c.kill_nats(leader)
            else:
                c.kill(what, signal.SIGKILL)
        if n == 21:
            c.start_c("apns-sender", "apns-sender", ap)  # back; its predecessor's jobs come again
        data = "bm90aWZ5LQ%03d" % n
        to = ID if n % 2 == 0 else ID2
        via = http1 if n % 2 == 0 and n < 32 else http2  # ingress-onion-1 is gone from 32 on
        rc, out = send(via, "notify", f"send_to={to}", f"data={data}")
        if rc == 0 and ok(out):
            accepted.append(data)
        else:
            print(f"notify {n}: {out}")
        time.sleep(0.05)
    t.check(len(accepted) >= 30, f"most notifies answered Success through the kills ({len(accepted)} of 40)")

    def delivered():
        bodies = [r["body"] for r in c.requests()]
        return [d for d in accepted if not any(d in b for b in bodies)]
    try:
        c.wait_for(lambda: not delivered(), "every accepted notify at the mock", timeout=60)
    except RuntimeError as e:
        print(e)
    missing = delivered()
    t.check(not missing, f"every notify answered Success reached the mock (missing {len(missing)}: {missing[:5]})")
    seen = {}
    for r in c.requests():
        for d in accepted:
            if d in r["body"]:
                seen[d] = seen.get(d, 0) + 1
    dups = sum(v - 1 for v in seen.values())
    t.check(dups <= max(1, len(accepted) // 100), f"duplicates at most 1 % ({dups})")

    c.start_c("ingress-onion-1", "ingress-onion", i1)
    c.wait_for(lambda: c.log("ingress-onion-1").count("listening on") == 2, "ingress-onion-1 back")

    # Results: an APNs 410 with a timestamp after the registration removes the token from
    # every router's copy; an FCM 503 with Retry-After is retried (nak with delay) and delivered.
    DEAD = "d3" * 32
    rc, out = send(http1, "register", f"token={DEAD}", f"pubKey={ID}")
    t.check(rc == 0 and ok(out), "register a token APNs will call dead: " + out)
    mock(c, "/_mock/faults", {"rules": [
        {"provider": "apns", "token": DEAD, "count": 1, "status": 410, "reason": "Unregistered",
         "timestamp": int(time.time() * 1000) + 60000},
        {"provider": "fcm", "count": 1, "status": 503, "reason": "UNAVAILABLE", "retry_after": "1"}]})
    rc, out = send(http2, "notify", f"send_to={ID}", "data=ZGVhZA==")
    t.check(rc == 0 and ok(out), "notify to the dead token's id: " + out)
    rc, out = send(http1, "notify", f"send_to={ID2}", "data=cmV0cnk=")
    t.check(rc == 0 and ok(out), "notify that FCM first answers 503: " + out)
    try:
        c.wait_for(lambda: counts(r2).get("ios") == "1", "the dead token gone from router-2's copy", timeout=20)
    except RuntimeError as e:
        print(e)
    t.check(counts(r2).get("ios") == "1", f"the dead token left the registry (router-2 counts {counts(r2)})")
    try:
        c.wait_for(lambda: any(r["provider"] == "fcm" and "cmV0cnk=" in r["body"] and r["status"] == 200
                               for r in c.requests()), "the retried FCM notify", timeout=20)
    except RuntimeError as e:
        print(e)
    fcm = [r["status"] for r in c.requests() if r["provider"] == "fcm" and "cmV0cnk=" in r["body"]]
    t.check(fcm[:1] == [503] and fcm[-1:] == [200], f"FCM 503 with Retry-After was retried and delivered ({fcm})")

    # The killed router comes back and catches up; both copies export the same.
    c.start_nats(int(leader.split("-")[1]) - 1 if leader else 0)
    c.start_c("router-1", "router", r1)
    c.wait_for(lambda: c.log("router-1").count("registry copy at change") == 2, "router-1 back on the bus", timeout=30)
    rc, out = send(http1, "unregister", f"token={ANDROID}")
    t.check(rc == 0 and ok(out), "unregister (Android) after the restarts answers Success: " + out)
    time.sleep(2.0)
    c.kill("router-1")
    c.kill("router-2")
    e1, e2 = export(c, r1), export(c, r2)
    t.check(e1[0] == 0 and e2[0] == 0 and e1[1] == e2[1] and IOS in e1[1] and ANDROID not in e1[1] and DEAD not in e1[1],
            "both routers' registries export identically (iOS token kept, Android token unregistered, dead token gone)")
except Exception as e:
    t.check(False, f"unexpected error: {e!r}")
finally:
    if t.failed:
        print(c.logs())
    c.stop()
sys.exit(t.done())
