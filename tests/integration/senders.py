"""Senders against the scripted mock provider, with the router in the loop: each provider
answer class ends with the right outcome at the router and nothing lost — 410 deletes exactly
that token, a wrong-topic storm (BadDeviceToken for every token) deletes nothing, retryable
answers and GOAWAY still deliver, an expired OAuth token is refreshed."""
import json, os, ssl, subprocess, sys, time, urllib.request
from lib.harness import BIN, Checks, Pipeline

ID = "bd" + "6" * 64
t = Checks()
p = Pipeline(keep="-k" in sys.argv)
ctx = ssl.create_default_context(cafile=os.path.join(p.dir, "mock", "ca.pem"))


def mock(path, body=None):
    req = urllib.request.Request(f"https://127.0.0.1:{p.mock_port}{path}", method="POST" if body is not None or "reset" in path or "expire" in path else "GET",
                                 data=json.dumps(body).encode() if body is not None else b"" if "reset" in path or "expire" in path else None)
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def counts():
    out = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "counts"], capture_output=True, text=True).stdout
    return dict(line.split() for line in out.splitlines())


def delivered(provider, token):
    return [r for r in p.requests() if r["provider"] == provider and token in (r["path"] + r.get("body", "")) and r["status"] == 200]


def ios_tok(n):
    return f"{n:02x}" * 32


try:
    p.start_all()
    # 1. APNs 410 Unregistered with a timestamp after registration: exactly that token goes.
    for n in (1, 2):
        p.pushctl("register", f"token={ios_tok(n)}", f"pubKey={ID}")
    p.pushctl("register", "token=fcm:first", f"pubKey={ID}", "device=android")
    mock("/_mock/faults", {"rules": [{"provider": "apns", "token": ios_tok(1), "count": 1, "status": 410,
                                      "reason": "Unregistered", "timestamp": int(time.time() * 1000) + 60000}]})
    rc, out = p.pushctl("notify", f"send_to={ID}", "data=b25l")
    t.check(rc == 0, "notify accepted")
    p.wait_for(lambda: counts().get("ios") == "1", "token deletion", timeout=10)
    t.check(counts().get("ios") == "1" and counts().get("android") == "1", f"410 removed one iOS token, nothing else {counts()}")
    # The deletion may come before the other deliveries (the FCM sender fetches its OAuth token first).
    try:
        p.wait_for(lambda: delivered("apns", ios_tok(2)) and delivered("fcm", "fcm:first"), "the other deliveries", timeout=10)
    except RuntimeError:
        pass  # checked just below
    got = (len(delivered("apns", ios_tok(2))), len(delivered("fcm", "fcm:first")))
    t.check(got == (1, 1), f"the other tokens got the notification once each (APNs, FCM: {got})")

    # 2. Retryable answers: FCM 503 with Retry-After, APNs 500 — delivered afterwards.
    mock("/_mock/faults", {"rules": [{"provider": "fcm", "count": 1, "status": 503, "reason": "UNAVAILABLE", "retry_after": "1"},
                                     {"provider": "apns", "count": 1, "status": 500, "reason": "InternalServerError"}]})
    p.pushctl("notify", f"send_to={ID}", "data=dHdv")
    p.wait_for(lambda: len(delivered("fcm", "fcm:first")) == 2 and len(delivered("apns", ios_tok(2))) == 2, "delivery after retries", timeout=15)
    t.check(True, "FCM 503 and APNs 500 retried and delivered")

    # 3. GOAWAY mid-batch: every job still delivered (at least once).
    mock("/_mock/faults", {"rules": [{"provider": "apns", "count": 1, "action": "goaway"}]})
    for i in range(20):
        p.pushctl("notify", f"send_to={ID}", f"data=Z29hd2F5LXt{i:02d}")
    p.wait_for(lambda: len(delivered("apns", ios_tok(2))) >= 22, "delivery across GOAWAY", timeout=15)
    got = {json.loads(r["body"])["ENCRYPTED_DATA"] for r in delivered("apns", ios_tok(2))}
    t.check(all(f"Z29hd2F5LXt{i:02d}" in got for i in range(20)), "all 20 notifies delivered across a GOAWAY")

    # 4. An expired OAuth access token: 401, refresh, delivered.
    oauth_before = len([r for r in p.requests() if r["provider"] == "oauth"])
    mock("/_mock/expire-tokens")
    p.pushctl("notify", f"send_to={ID}", "data=cmVmcmVzaA==")
    p.wait_for(lambda: any(json.loads(r["body"]).get("message", {}).get("data", {}).get("ENCRYPTED_DATA") == "cmVmcmVzaA==" for r in delivered("fcm", "fcm:first")), "FCM delivery after refresh", timeout=15)
    t.check(len([r for r in p.requests() if r["provider"] == "oauth"]) > oauth_before, "a new OAuth token was fetched after the 401")

    # 5. Wrong topic or environment: BadDeviceToken for every token on a fresh sender must not
    #    wipe the registry (mass-invalidation guard).
    p.kill("apns-sender")
    for n in range(3, 8):
        p.pushctl("register", f"token={ios_tok(n)}", f"pubKey={ID}")
    before = counts()
    mock("/_mock/faults", {"rules": [{"provider": "apns", "count": -1, "status": 400, "reason": "BadDeviceToken"}]})
    p.start("apns-sender")
    for i in range(3):
        p.pushctl("notify", f"send_to={ID}", f"data=c3Rvcm0{i}")
    p.wait_for(lambda: len([r for r in p.requests() if r["provider"] == "apns" and r.get("reason") == "BadDeviceToken"]) >= 6, "BadDeviceToken answers", timeout=15)
    time.sleep(1.0)
    after = counts()
    t.check(after.get("ios") == before.get("ios") == "6", f"no iOS token deleted by a BadDeviceToken storm ({before} → {after})")
    t.check(int(after.get("outbox_jobs", "0")) > 0, "the jobs stay queued while the provider is paused")
    log = open(os.path.join(p.dir, "apns-sender.log")).read()
    t.check("BadDeviceToken" in log, "the pause is logged with its reason")
    # Once the provider is fixed, the queued jobs are delivered (the probe ends the pause).
    mock("/_mock/reset")
except Exception as e:
    t.check(False, f"sender test raised {e!r}")
finally:
    if t.failed:
        print(p.logs())
    p.stop()
sys.exit(t.done())
