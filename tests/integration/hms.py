"""hms-sender end to end: a Huawei device registered through the onion ingress gets its
notification through Huawei Push Kit at the mock — the client-credentials token first, then
messages:send with that token, the data map as a JSON string; a token the answer names as
illegal is removed and only that one; "all tokens invalid" on a fresh sender (a wrong App ID
makes every token look so) trips the mass-invalidation guard and deletes nothing; Huawei
deliveries count with Android in the statistics."""
import base64, json, os, ssl, subprocess, sys, time, urllib.error, urllib.request
from lib.harness import BIN, Checks, Pipeline

ID, ID2 = "bd" + "7" * 64, "bd" + "8" * 64
HW1, HW2 = "IQAAAACy0kYkAAD-hms-first_token", "IQAAAACy0kYkAAD-hms-doomed_token"
HWG = ["IQAAAACy0kYkAAD-hms-guard-%d" % i for i in range(3)]
DATA = "ZXhhbXBsZSB3cmFwcGVkIGVudmVsb3BlIGZvciBodWF3ZWk="

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
p.DAEMONS = ["statsd", "router", "ingress-onion", "hms-sender"]
ctx = ssl.create_default_context(cafile=os.path.join(p.dir, "mock", "ca.pem"))
hms = json.load(open(os.path.join(p.dir, "mock", "hms.json")))


def mock(path, body=None):
    post = body is not None or "reset" in path or "expire" in path
    req = urllib.request.Request(f"https://127.0.0.1:{p.mock_port}{path}", method="POST" if post else "GET",
                                 data=json.dumps(body).encode() if body is not None else b"" if post else None)
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def counts():
    out = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "counts"], capture_output=True, text=True).stdout
    return dict(line.split() for line in out.splitlines())


def registered(token):
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "lookup", token], capture_output=True, text=True)
    return r.returncode == 0 and token in r.stdout


def sends(token):
    out = []
    for r in p.requests():
        if r["provider"] != "hms":
            continue
        try:
            if token in json.loads(r["body"])["message"]["token"]:
                out.append(r)
        except (ValueError, KeyError, TypeError):
            pass
    return out


def stats():
    with open(os.path.join(p.dir, "keys", "stats.password")) as f:
        pw = f.read().strip()
    req = urllib.request.Request(f"http://127.0.0.1:{p.http}/get_statistics_data", data=b"{}", method="POST",
                                 headers={"Authorization": "Basic " + base64.b64encode(b"any:" + pw.encode()).decode(),
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError:  # 503 until the ingress has reached statsd
        return {}


try:
    p.start_all()
    # 1. A Huawei device, registered the way the app does, gets the notification through HMS.
    rc, out = p.pushctl("register", f"token={HW1}", f"pubKey={ID}", "device=huawei")
    t.check(rc == 0, "register (device huawei) answers Success: " + out)
    rc, out = p.pushctl("notify", f"send_to={ID}", f"data={DATA}")
    t.check(rc == 0, "notify answers Success: " + out)
    try:
        p.wait_for(lambda: sends(HW1), "the HMS request at the mock")
    except RuntimeError as e:
        print(e)
    got = sends(HW1)
    t.check(len(got) == 1, f"exactly one HMS request for the token ({len(got)})")
    if got:
        r = got[0]
        t.check(r["path"] == f"/v1/{hms['app_id']}/messages:send", "messages:send under the App ID: " + r["path"])
        t.check(r.get("auth_ok") is True and r["headers"].get("authorization", "").startswith("Bearer hms-mock"),
                "Bearer access token issued by the HMS token endpoint")
        t.check(r.get("status") == 200 and r.get("reason") == "" and r.get("fault") is False,
                f"the mock accepted it ({r.get('status')} {r.get('reason')})")
        b = json.loads(r["body"])
        m = b.get("message", {})
        t.check(b.get("validate_only") is False, "validate_only false")
        t.check(m.get("token") == [HW1], "one token in the token list")
        t.check(m.get("android") == {"urgency": "HIGH"}, "android urgency HIGH")
        t.check(isinstance(m.get("data"), str) and json.loads(m["data"]) == {"ENCRYPTED_DATA": DATA},
                "data is the FCM data map as a JSON string")
    tok = [r for r in p.requests() if r["provider"] == "oauth" and r["path"].startswith("/oauth2/v3/token")]
    t.check(len(tok) >= 1 and tok[0].get("status") == 200 and tok[0].get("auth_ok") is True,
            "client credentials (App ID and App Secret) accepted at the token endpoint")
    t.check(hms["app_secret"] not in p.log("hms-sender") and "hms-mock-" not in p.log("hms-sender"),
            "neither the App Secret nor the access token is logged")
    def pn():
        rows = stats().get("data", {}).get("data", [])
        return sum(r.get("android_pn_number", 0) for r in rows), sum(r.get("ios_pn_number", 0) for r in rows)
    try:
        p.wait_for(lambda: pn()[0] >= 1, "statistics", timeout=10)
    except RuntimeError as e:
        print(e)
    st = stats().get("data", {})
    t.check(pn() == (1, 0), f"the Huawei delivery counts as Android in the statistics (android, ios: {pn()})")
    t.check(st.get("android_device_number") == 1, "the Huawei device counts as an Android device")

    # An expired access token: Push Kit answers 80200003; a new token, the same job resent.
    tokens_before = len([r for r in p.requests() if r["path"].startswith("/oauth2/v3/token")])
    mock("/_mock/expire-tokens")
    p.pushctl("notify", f"send_to={ID}", "data=cmVmcmVzaA==")

    def refreshed():
        return [r for r in sends(HW1) if json.loads(json.loads(r["body"])["message"]["data"]).get("ENCRYPTED_DATA") == "cmVmcmVzaA=="]
    try:
        p.wait_for(lambda: any(r["status"] == 200 for r in refreshed()), "the resend after a new token", timeout=15)
    except RuntimeError as e:
        print(e)
    got = refreshed()
    t.check([(r["status"], r["reason"]) for r in got] == [(401, "80200003"), (200, "")],
            f"80200003 (token expired), then the same job resent once and accepted {[(r['status'], r['reason']) for r in got]}")
    t.check(len([r for r in p.requests() if r["path"].startswith("/oauth2/v3/token")]) == tokens_before + 1,
            "exactly one new access token fetched")

    # 2. A dead token: the answer names it among illegal_tokens; only it is removed.
    p.pushctl("register", f"token={HW2}", f"pubKey={ID2}", "device=huawei")
    mock("/_mock/faults", {"rules": [{"provider": "hms", "token": HW2, "count": 1, "reason": "80100000"}]})
    p.pushctl("notify", f"send_to={ID2}", "data=ZGVhZA==")
    p.wait_for(lambda: not registered(HW2), "the dead token's removal", timeout=10)
    t.check(not registered(HW2) and registered(HW1), "the illegal token is removed, the other Huawei token kept")
    dead = sends(HW2)
    t.check(len(dead) == 1 and dead[0]["status"] == 200 and dead[0]["reason"] == "80100000",
            "the failure came in an HTTP 200 (code 80100000)")

    # 3. The guard: a fresh sender whose every answer is "all tokens invalid" deletes nothing.
    p.kill("hms-sender")
    for tk in HWG:
        p.pushctl("register", f"token={tk}", f"pubKey={ID}", "device=huawei")
    before = counts()
    mock("/_mock/faults", {"rules": [{"provider": "hms", "count": -1, "reason": "80300007"}]})
    p.start("hms-sender")
    p.pushctl("notify", f"send_to={ID}", "data=c3Rvcm0=")
    p.wait_for(lambda: len([r for r in p.requests() if r["provider"] == "hms" and r.get("reason") == "80300007"]) >= 1,
               "an all-tokens-invalid answer", timeout=15)
    time.sleep(1.0)
    after = counts()
    t.check(after.get("android") == before.get("android") == "4" and all(registered(tk) for tk in HWG + [HW1]),
            f"no Huawei token deleted by 'all tokens invalid' on a fresh sender ({before} -> {after})")
    t.check(int(after.get("outbox_jobs", "0")) > 0, "the jobs stay queued while HMS is paused")
    log = p.log("hms-sender")
    t.check("80300007" in log and "HMS" in log, "the pause is logged with its reason")
    mock("/_mock/reset")

    # 4. Without hms_sender.app_id the router gives Huawei tokens no job (stored and counted only).
    p.kill("router")
    with open(p.config) as f:
        cfg = json.load(f)
    cfg["hms_sender"]["app_id"] = ""
    with open(p.config, "w") as f:
        json.dump(cfg, f, indent=1)
    p.start("router")
    jobs = int(counts().get("outbox_jobs", "0"))
    box = {}
    p.wait_for(lambda: box.update(r=p.pushctl("notify", f"send_to={ID}", "data=c2tpcA==")) or box["r"][0] == 0,
               "notify accepted by the restarted router", timeout=15)

    def skipped():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{p.stats_port}/metrics", timeout=5) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("pushpipe_huawei_skipped_total "):
                        return int(float(line.split()[1]))
        except OSError:
            pass
        return 0
    p.wait_for(lambda: skipped() >= 4, "the huawei_skipped counter", timeout=10)
    t.check(skipped() == 4 and int(counts().get("outbox_jobs", "0")) == jobs,
            f"not configured: the four Huawei tokens of the id are counted as skipped, no job queued ({skipped()})")
except Exception as e:  # a harness failure is a test failure, with the logs to show why
    t.check(False, f"hms test raised {e!r}")
finally:
    if t.failed:
        print(p.logs())
    p.stop()
sys.exit(t.done())
