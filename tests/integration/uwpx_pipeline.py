"""UWPX end to end with every real daemon: a device registers over TLS with ingress-uwpx, the
router stores it, an XEP-0357 publish (sent here as the XMPP ingress would send it) becomes a
WNS raw notification that wns-sender posts to the mock WNS with a token from the mock's token
endpoint. Then the dead-channel cycle (410 → recipient-unavailable → new channel revives the
same node), a test push, durability across kill -9 of the router, a 406 that holds the channel
(only the newest notification is sent when the back-off ends), and the channel allowlist."""
import json, os, signal, socket, ssl, sys, time, urllib.request
from lib import frames as F
from lib.harness import Checks, Pipeline, waited
from lib.uwpx_client import pipeline_uwpx

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
p.DAEMONS = ["statsd", "router", "ingress-uwpx", "wns-sender"]
uwpx = pipeline_uwpx(p)
DEV = "b5facd81c7ac2efc96d7bf09d33c7aff9e3bea9ebd236db28a074d55437f62cd"
ACC = "f9d4bb421963be0703134afcff4760790da19bbec398bdbb591014009074db2a"
ACC2 = "0" * 63 + "1"
mctx = ssl.create_default_context(cafile=os.path.join(p.dir, "mock", "ca.pem"))


def chan(tok):
    return f"https://127.0.0.1:{p.mock_port}/?token={tok}"


def mock(path, body=None):
    req = urllib.request.Request(f"https://127.0.0.1:{p.mock_port}{path}", method="POST",
                                 data=json.dumps(body).encode() if body is not None else b"")
    with urllib.request.urlopen(req, context=mctx, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def publish(node, secret, domain="example.org", count=1, pending=0):
    return F.xmpp_publish(os.path.join(p.dir, "run", "router.sock"), node, secret, domain, count, pending)


def wns_requests(token=None):
    return [r for r in p.requests() if r["provider"] == "wns" and (token is None or r["path"].endswith("token=" + token))]


try:
    p.start_mock()
    for d in p.DAEMONS:
        p.start(d)

    def uwpx_up():
        try:
            socket.create_connection(("127.0.0.1", p.uwpx_port), timeout=0.2).close()
            return True
        except OSError:
            return False
    p.wait_for(uwpx_up, "ingress-uwpx listening")
    p.wait_for(lambda: (uwpx({"version": 2, "action": "set_channel_uri", "device_id": DEV, "channel_uri": chan("ch1")}) or {})
               .get("status") == 1, "first set_channel_uri through the router")
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV, "accounts": [{"account_id": ACC}, {"account_id": ACC2}]})
    accs = (r or {}).get("accounts", [])
    t.check(r and r["status"] == 1 and r["push_bare_jid"] == "push.localhost" and [a["account_id"] for a in accs] == [ACC, ACC2]
            and all(a["success"] for a in accs), f"set_push_accounts → nodes for both accounts {r}")
    node, secret = accs[0]["node"], accs[0]["secret"]
    t.check(len(node) == 24 and len(secret) == 24 and node.isalnum() and secret.isalnum(), "24-character alphanumeric node and secret")
    r2 = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV, "accounts": [{"account_id": ACC}]})
    t.check(r2 and r2["accounts"][0]["node"] == node and r2["accounts"][0]["secret"] == secret, "the same account keeps its node and secret")
    t.check(publish(accs[1]["node"], accs[1]["secret"]) == F.NOT_FOUND, "the account dropped from the list: its node is gone (item-not-found)")

    # Test push: the exact test body reaches the mock WNS; the client is told success.
    r = uwpx({"version": 2, "action": "request_test_push", "device_id": DEV})
    t.check(r == {"action": "response", "status": 1, "version": 2}, f"request_test_push → success {r}")
    t.check(waited(lambda: wns_requests("ch1")), "test push at the mock")
    w = (wns_requests("ch1") or [{"body": "", "headers": {}, "auth_ok": False}])[0]
    h = w["headers"]
    t.check(w["body"] == '{"action":"test_push","version":2}', f"test push body {w['body']}")
    t.check(h.get("x-wns-type") == "wns/raw" and h.get("content-type") == "application/octet-stream" and w["auth_ok"]
            and h.get("x-wns-requestforstatus") == "true", "WNS headers and a bearer token from the token endpoint")

    # Publish → raw notification with the account id and counts.
    t.check(publish(node, "wrong" + secret[5:]) == F.FORBIDDEN, "wrong secret → forbidden")
    t.check(publish(node, secret, count=3, pending=1) == F.OK, "publish accepted")
    want = json.dumps({"account_id": ACC, "action": "push", "message_count": 3, "pending_subscription_count": 1,
                       "version": 2}, separators=(",", ":"))
    t.check(waited(lambda: any(x["body"] == want for x in wns_requests("ch1"))), "raw notification at the mock, body exact: " + want)
    t.check(publish(node, secret, domain="other.example") == F.NOT_FOUND, "the node is bound to the first publishing domain")

    # Durability: acknowledged registrations survive kill -9 of the router.
    p.kill("router", signal.SIGKILL)
    p.start("router")
    # Until the ingress has reconnected it answers the internal error (retryable): ask again.
    box = {}
    waited(lambda: box.update(r=uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV,
                                       "accounts": [{"account_id": ACC}]})) or (box["r"] or {}).get("status") == 1, 15)
    r = box.get("r")
    t.check(r and r["status"] == 1 and r["accounts"][0]["node"] == node, "after kill -9 of the router: same node")

    # Dead channel: 410 marks it dead, publishes get recipient-unavailable, nothing deleted.
    mock("/_mock/faults", {"rules": [{"provider": "wns", "token": "/?token=ch1", "count": 1, "status": 410}]})
    t.check(publish(node, secret) == F.OK, "publish accepted (WNS will answer 410)")
    t.check(waited(lambda: publish(node, secret) == F.UNAVAILABLE), "after 410: publish → recipient-unavailable (wait), not item-not-found")
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV, "accounts": [{"account_id": ACC}]})
    t.check(r == {"action": "response", "error": "Device id unknown.", "status": 0, "version": 2}, f"dead channel → Device id unknown. {r}")
    r = uwpx({"version": 2, "action": "set_channel_uri", "device_id": DEV, "channel_uri": chan("ch2")})
    t.check(r == {"action": "response", "status": 1, "version": 2}, "a new channel revives the device")
    t.check(publish(node, secret, count=2) == F.OK, "publish on the revived device accepted with the same node and secret")
    want2 = want.replace('"message_count":3', '"message_count":2').replace('"pending_subscription_count":1', '"pending_subscription_count":0')
    t.check(waited(lambda: any(x["body"] == want2 for x in wns_requests("ch2"))), "delivered to the new channel")

    # WNS 406 with X-WNS-CONTINUE-AFTER: 2: the router holds the channel for 2 s; of the publishes
    # meanwhile only the newest is sent when the back-off ends, even across kill -9 of wns-sender.
    mock("/_mock/faults", {"rules": [{"provider": "wns", "token": "/?token=ch2", "count": 1, "status": 406,
                                      "continue_after": "2"}]})
    t.check(publish(node, secret, count=11) == F.OK, "publish accepted (WNS will answer 406)")
    t.check(waited(lambda: "backing off for 2 s (X-WNS-CONTINUE-AFTER)" in p.log("router")),
            "WNS's 406 backs the channel off for X-WNS-CONTINUE-AFTER")
    t.check(all(publish(node, secret, count=n) == F.OK for n in (12, 13, 14)), "three publishes while it backs off")
    p.kill("wns-sender", signal.SIGKILL)
    p.start("wns-sender")
    want14 = want2.replace('"message_count":2', '"message_count":14')
    t.check(waited(lambda: any(x["body"] == want14 for x in wns_requests("ch2"))),
            "after the back-off (and a wns-sender killed meanwhile) the newest notification is sent")
    time.sleep(1.0)
    reqs = wns_requests("ch2")
    thr = [x for x in reqs if x["status"] == 406]
    after = [x for x in reqs if thr and x["seq"] > thr[0]["seq"]]
    t.check(len(thr) == 1 and [x["body"] for x in after] == [want14],
            f"only the newest after the 406: the others never reach WNS ({[x['body'][-40:] for x in after]})")
    t.check(thr and after and after[0]["time_ms"] - thr[0]["time_ms"] >= 1900,
            f"...and not before the 2 s ({after and thr and after[0]['time_ms'] - thr[0]['time_ms']} ms)")
    t.check(p.log("router").count("superseded by job") == 3, "the three older ones end as superseded")

    # The allowlist: never a bearer token to an arbitrary host.
    r = uwpx({"version": 2, "action": "set_channel_uri", "device_id": DEV, "channel_uri": "https://db5p.notify.windows.com.evil.example/?token=x"})
    t.check(r and r.get("error") == "Invalid channel URI. Has to use the domain 'notify.windows.com'.", "a foreign host is refused")
    log = p.log("wns-sender") + p.log("router") + p.log("ingress-uwpx")
    t.check(secret not in log and "ch1" not in log.replace("…", ""), "no secret or channel token in the logs")
finally:
    p.stop()
sys.exit(t.done())
