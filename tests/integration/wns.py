"""wns-sender (and the XMPP ad-hoc path of apns-sender and fcm-sender) against the real mock
provider, with a fake router in Python: the exact raw body and headers WNS receives, the OAuth
token flow (string expires_in, one new token and one resend after a 401, credentials after a
second 401 or when no token can be had), every row of the WNS answer table, a stuck HTTP/2
connection recycled after two deadline expiries, WNS over HTTP/1.1, a token endpoint by host
name (libcurl's resolver thread in the sandbox), and the p2-style FCM and
APNs payloads of docs/senders.md ("Job kinds")."""
import json, os, socket, ssl, subprocess, sys, time, urllib.request
from lib.harness import BIN, Checks, Pipeline, free_port
from lib.fake_router import FakeRouter, KIND_BCHAT, KIND_WNS, KIND_XMPP, PLATFORM_WNS
from lib import frames as F

CLIENT_ID, SECRET = "ms-app://s-1-15-2-mock", "mock-secret"
BODY = (b'{"account_id":"f9d4bb421963be0703134afcff4760790da19bbec398bdbb591014009074db2a","action":"push",'
        b'"message_count":1,"pending_subscription_count":0,"version":2}')
TEST_BODY = b'{"action":"test_push","version":2}'
ACC, ROOM = "575743d57bd2e395071f9f88adce7f8bba664ea2", "30be82eb00f86644993eaeda4c46ecf51c42715c"
XMPP_TOPIC = "org.example.chat"

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
ctx = ssl.create_default_context(cafile=os.path.join(p.dir, "mock", "ca.pem"))
router = None
ports = {"main": p.mock_port}


def start_mock(name, port, *extra):
    m = os.path.join(p.dir, "mock")
    ready = os.path.join(p.dir, name + ".port")
    record = p.record if name == "mock-provider" else os.path.join(p.dir, name + ".jsonl")
    cmd = [os.path.join(BIN, "mock-provider"), "-l", f"127.0.0.1:{port}", "--cert", f"{m}/server.pem",
           "--key", f"{m}/server.key", "--record", record, "--apns-key", f"{m}/apns_pub.pem",
           "--apns-kid", "MOCKKEY123", "--apns-team", "MOCKTEAM12", "--fcm-key", f"{m}/fcm_pub.pem",
           "--wns-client-id", CLIENT_ID, "--wns-client-secret", SECRET, "--ready-file", ready, *extra]
    p.procs[name] = subprocess.Popen(cmd, stderr=open(os.path.join(p.dir, name + ".log"), "ab"))
    p.wait_for(lambda: os.path.exists(ready), name + " ready")


def mock(path, body=None, port=None):
    post = body is not None or "reset" in path or "expire" in path
    req = urllib.request.Request(f"https://127.0.0.1:{port or ports['main']}{path}", method="POST" if post else "GET",
                                 data=json.dumps(body).encode() if body is not None else b"" if post else None)
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def records(provider, path=None, record=None):
    mock("/_mock/stats")  # flushes the record file
    if record:
        with open(record) as f:
            recs = [json.loads(line) for line in f if line.strip()]
    else:
        recs = p.requests()
    return [r for r in recs if r["provider"] == provider and (path is None or r["path"] == path)]


def configure(**wns):
    with open(p.config) as f:
        cfg = json.load(f)
    secret = os.path.join(p.dir, "keys", "wns.secret")
    with open(secret, "w") as f:
        f.write(SECRET + "\n")
    cfg["wns_sender"] = {"token_url": f"https://127.0.0.1:{ports['main']}/accesstoken.srf",
                         "ca_file": os.path.join(p.dir, "mock", "ca.pem"), "client_id": CLIENT_ID,
                         "client_secret_file": secret, "connections": 1, "deadline_ms": 2000}
    cfg["wns_sender"].update(wns)
    cfg["apns_sender"]["xmpp_topic"] = XMPP_TOPIC
    with open(p.config, "w") as f:
        json.dump(cfg, f, indent=2)


def restart(name, platform):
    p.kill(name)
    router.forget(platform)
    p.start(name)
    router.accept(platform)


def chan(token, port=None):
    return f"https://127.0.0.1:{port or ports['main']}/?token={token}"


next_id = [100]


def send(platform, kind, token, data, timeout=15.0):
    next_id[0] += 1
    router.push(platform, next_id[0], kind, token, data)
    return router.result(platform, next_id[0], timeout=timeout)


def wns(token, data=BODY, **kw):
    return send(PLATFORM_WNS, KIND_WNS, chan(token), data, **kw)


try:
    start_mock("mock-provider", ports["main"])
    configure()
    router = FakeRouter(os.path.join(p.dir, "run", "router-sender.sock"))
    # Tokens come with expires_in as a string ("86400") from the start.
    mock("/_mock/faults", {"wns_expires_in": "string"})
    p.start("wns-sender")
    hello = router.accept(PLATFORM_WNS)
    t.check(F.field(hello, F.TAG_ROLE) == 3 and F.field(hello, F.TAG_PLATFORM) == PLATFORM_WNS,
            "wns-sender says hello as a sender of PLATFORM_WNS")

    # 1. One raw notification: delivered; exact body and headers at WNS; one token request.
    r = wns("abc")
    t.check(r["outcome"] == "delivered" and r["reason"] == "", f"raw notification delivered {r}")
    recs = records("wns", "/?token=abc")
    t.check(len(recs) == 1, "exactly one request to the channel")
    h = recs[0]["headers"] if recs else {}
    t.check(recs and recs[0]["body"] == BODY.decode() and recs[0]["method"] == "POST", "the exact raw body, POSTed")
    t.check(h.get("content-type") == "application/octet-stream" and h.get("x-wns-type") == "wns/raw"
            and h.get("x-wns-requestforstatus") == "true", f"Content-Type, X-WNS-Type, X-WNS-RequestForStatus {h}")
    t.check(h.get("content-length") == str(len(BODY)) and "transfer-encoding" not in h and "expect" not in h,
            "Content-Length, no chunked encoding, no Expect")
    t.check(h.get("authorization", "").startswith("Bearer wns-mock") and recs[0]["auth_ok"] is True,
            "Authorization: Bearer with the mock's access token")
    t.check("x-wns-cache-policy" not in h and "x-wns-ttl" not in h, "no cache policy or TTL by default")
    toks = records("oauth")
    t.check(len(toks) == 1 and toks[0]["auth_ok"] is True and toks[0]["status"] == 200, "one token request, accepted")
    form = toks[0]["body"] if toks else ""
    t.check(form == "grant_type=client_credentials&client_id=ms-app%3A%2F%2Fs-1-15-2-mock&client_secret=mock-secret"
            "&scope=notify.windows.com", f"token form, percent-encoded: {form}")
    t.check(toks and toks[0]["path"] == "/accesstoken.srf" and
            toks[0]["headers"].get("content-type") == "application/x-www-form-urlencoded", "token URL and form type")
    log = p.log("wns-sender")
    t.check("expires in 86400 s" in log and "assuming" not in log and "mock-secret" not in log,
            "string expires_in accepted; the secret is never logged")
    t.check("wns-mock-" not in log, "the access token is never logged")

    # 1b. A frame carrying a channel URI outside the allowlist: never sent, so the access token
    # goes nowhere else (the router checks it too; this is the sender's own check).
    for bad in (f"https://127.0.0.1:{ports['main']}/evil?token=abc", "https://evil.example.com/?token=abc",
                f"https://127.0.0.1:{ports['main']}/?token=abc&x=1", "https://db5p.notify.windows.com.evil.org/?token=a"):
        r = send(PLATFORM_WNS, KIND_WNS, bad, BODY)
        t.check(r["outcome"] == "message_failed" and "allowlist" in r["reason"], f"outside URI {bad}: message_failed {r}")
    t.check(records("wns", "/evil?token=abc") == [] and len(records("wns")) == 1,
            "nothing was sent for them (one WNS request in all)")

    # 2. Every row of the answer table.
    mock("/_mock/faults", {"rules": [
        {"provider": "wns", "token": "/?token=f404", "count": 1, "status": 404},
        {"provider": "wns", "token": "/?token=f410", "count": 1, "status": 410},
        {"provider": "wns", "token": "/?token=f406", "count": 1, "status": 406, "continue_after": "120"},
        {"provider": "wns", "token": "/?token=f406b", "count": 1, "status": 406},
        {"provider": "wns", "token": "/?token=f503", "count": 1, "status": 503, "retry_after": "7"},
        {"provider": "wns", "token": "/?token=f500", "count": 1, "status": 500},
        {"provider": "wns", "token": "/?token=f413", "count": 1, "status": 413},
        {"provider": "wns", "token": "/?token=f400", "count": 1, "status": 400},
        {"provider": "wns", "token": "/?token=f403", "count": 1, "status": 403},
        {"provider": "wns", "token": "/?token=fdrop", "count": 1, "status": 200, "reason": "dropped"}]})
    before = int(time.time() * 1000)
    for st in ("404", "410"):
        r = wns("f" + st)
        t.check(r["outcome"] == "token_dead" and r["status"] == int(st) and r["timestamp"] >= before - 1000,
                f"{st} -> token_dead with the send's time {r}")
    r = wns("f406")
    t.check(r["outcome"] == "retry" and r["retry_after"] == 120000 and r["status"] == 406, f"406 -> retry after X-WNS-CONTINUE-AFTER {r}")
    r = wns("f406b")
    t.check(r["outcome"] == "retry" and r["retry_after"] == 0 and r["status"] == 406,
            f"406 without the header -> retry with no retry_after: the router's 60 s doubling back-off applies {r}")
    r = wns("f503")
    t.check(r["outcome"] == "retry" and r["retry_after"] == 7000 and r["status"] == 503, f"503 -> retry after Retry-After {r}")
    r = wns("f500")
    t.check(r["outcome"] == "retry" and r["status"] == 500, f"500 -> retry {r}")
    for st in ("413", "400", "403"):
        r = wns("f" + st)
        t.check(r["outcome"] == "message_failed" and r["status"] == int(st), f"{st} -> message_failed {r}")
    r = wns("fdrop")
    t.check(r["outcome"] == "delivered" and r["reason"] == "dropped", f"200 dropped -> delivered, reason dropped {r}")
    t.check(all(len(records("wns", "/?token=" + x)) == 1 for x in
                ("f404", "f410", "f406", "f503", "f500", "f413", "f400", "f403", "fdrop")), "none of them resent")
    log = p.log("wns-sender")
    t.check("X-WNS-Status dropped" in log and "X-WNS-Msg-ID" in log, "the X-WNS-* diagnostic headers are logged")
    t.check("?token=f404" not in log, "channel URIs are logged redacted only")
    r = send(PLATFORM_WNS, KIND_XMPP, chan("abc"), b'{"account":"' + ACC.encode() + b'"}')
    t.check(r["outcome"] == "message_failed", f"a KIND_XMPP job is refused by wns-sender {r}")
    r = wns("big", b"x" * 5001)
    t.check(r["outcome"] == "message_failed" and not records("wns", "/?token=big"), "a body over 5000 bytes is never sent")

    # 3. An expired access token: 401, exactly one new token, one resend, delivered.
    mock("/_mock/reset")
    n_tok = len(records("oauth"))
    mock("/_mock/expire-tokens")
    r = wns("e401", TEST_BODY)
    recs = records("wns", "/?token=e401")
    t.check(r["outcome"] == "delivered", f"delivered after a 401 {r}")
    t.check([x["status"] for x in recs] == [401, 200] and recs[1]["auth_ok"] and recs[1]["body"] == TEST_BODY.decode(),
            f"one 401, then one resend with a new token ({[x['status'] for x in recs]})")
    t.check(len(records("oauth")) == n_tok + 1, "exactly one new token was requested")

    # 4. A connection whose requests run out of their deadline twice is recycled.
    mock("/_mock/faults", {"rules": [{"provider": "wns", "token": "/?token=stuck", "count": -1, "action": "silent"}]})
    r = wns("stuck", timeout=10)
    t.check(r["outcome"] == "retry" and "deadline" in r["reason"], f"a silent WNS -> retry at the deadline {r}")
    wns("same")
    r = wns("stuck", timeout=10)
    t.check(r["outcome"] == "retry", "a second deadline expiry")
    wns("fresh")
    stuck = [x["conn"] for x in records("wns", "/?token=stuck")]
    same = [x["conn"] for x in records("wns", "/?token=same")]
    fresh = [x["conn"] for x in records("wns", "/?token=fresh")]
    t.check(len(stuck) == 2 and stuck[0] == stuck[1] == same[0], f"one expiry keeps the connection ({stuck}, {same})")
    t.check(fresh and fresh[0] != stuck[1], f"after two expiries new requests go to a new connection ({fresh})")
    mock("/_mock/reset")

    # 5. A second 401 on the resend: credentials (the provider pauses; checked last on this sender).
    n_tok = len(records("oauth"))
    mock("/_mock/faults", {"rules": [{"provider": "wns", "token": "/?token=twice", "count": 2, "status": 401}]})
    r = wns("twice")
    t.check(r["outcome"] == "credentials" and r["status"] == 401, f"second 401 -> credentials {r}")
    t.check(len(records("wns", "/?token=twice")) == 2 and len(records("oauth")) == n_tok + 1,
            "one new token, one resend, no more")

    # 6. The token endpoint refuses: jobs answered credentials (the router retries them).
    mock("/_mock/faults", {"rules": [{"provider": "oauth", "token": "wns", "count": -1, "status": 400,
                                      "reason": "invalid_client"}]})
    restart("wns-sender", PLATFORM_WNS)
    r = wns("nocred")
    t.check(r["outcome"] == "credentials" and "no WNS access token" in r["reason"], f"no token obtainable -> credentials {r}")
    r = wns("nocred2")
    t.check(r["outcome"] == "credentials" and 0 < r["retry_after"] <= 10000,
            f"while backing off: credentials at once, retry when the next token request is due {r}")
    t.check(not records("wns", "/?token=nocred") and not records("wns", "/?token=nocred2"), "nothing sent without a token")
    t.check("next try in 10 s" in p.log("wns-sender"), "the token request is retried after 10 s")

    # 7. WNS answering HTTP/1.1 only, Entra flow (string expires_in), cache policy and TTL.
    ports["h1"] = free_port()
    start_mock("mock-h1", ports["h1"], "--http1-only")
    configure(auth_flow="entra", tenant="contoso", token_url=f"https://127.0.0.1:{ports['h1']}/contoso/oauth2/v2.0/token",
              cache_policy=True, ttl_s=600)
    restart("wns-sender", PLATFORM_WNS)
    r = send(PLATFORM_WNS, KIND_WNS, chan("h1", ports["h1"]), BODY)
    h1rec = os.path.join(p.dir, "mock-h1.jsonl")
    recs = records("wns", "/?token=h1", record=h1rec) if r else []
    mock("/_mock/stats", port=ports["h1"])
    recs = records("wns", "/?token=h1", record=h1rec)
    t.check(r["outcome"] == "delivered" and recs and recs[0]["proto"] == "http/1.1", f"delivered over HTTP/1.1 {r}")
    h = recs[0]["headers"] if recs else {}
    t.check(h.get("x-wns-cache-policy") == "cache" and h.get("x-wns-ttl") == "600" and h.get("content-length") == str(len(BODY))
            and "expect" not in h and "transfer-encoding" not in h, f"cache policy, TTL, Content-Length over HTTP/1.1 {h}")
    toks = records("oauth", record=h1rec)
    t.check(toks and toks[0]["path"] == "/contoso/oauth2/v2.0/token" and "scope=https%3A%2F%2Fwns.windows.com%2F.default" in toks[0]["body"],
            "Entra flow: tenant token URL and scope")

    # 7b. A host name, not an address: libcurl resolves it with getaddrinfo on its resolver
    # thread (clone, /etc/hosts, nsswitch), inside the sandbox (seccomp and Landlock are on
    # here). "localhost" would not do: libcurl answers that one itself. The machine's own name
    # is used when it resolves to loopback, with a mock certificate made for it.
    host = socket.gethostname()
    try:
        by_name = socket.gethostbyname(host).startswith("127.") and "." not in host and len(host) < 60
    except OSError:
        by_name = False
    if not by_name:
        print(f"note host name resolution not checked: {host!r} does not resolve to loopback")
    else:
        m = os.path.join(p.dir, "mock")
        ext = os.path.join(p.dir, "byname.ext")
        with open(ext, "w") as f:
            f.write(f"basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:{host},IP:127.0.0.1\n")
        key, csr, pem = (os.path.join(p.dir, "byname." + x) for x in ("key", "csr", "pem"))
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", f"/CN={host}", "-out", csr], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", f"{m}/ca.pem", "-CAkey", f"{m}/ca.key",
                        "-CAcreateserial", "-CAserial", os.path.join(p.dir, "byname.srl"), "-days", "2",
                        "-extfile", ext, "-out", pem], check=True, capture_output=True)
        ports["byname"] = free_port()
        ready = os.path.join(p.dir, "mock-byname.port")
        p.procs["mock-byname"] = subprocess.Popen(
            [os.path.join(BIN, "mock-provider"), "-l", f"127.0.0.1:{ports['byname']}", "--cert", pem, "--key", key,
             "--record", os.path.join(p.dir, "mock-byname.jsonl"), "--apns-key", f"{m}/apns_pub.pem", "--apns-kid",
             "MOCKKEY123", "--apns-team", "MOCKTEAM12", "--fcm-key", f"{m}/fcm_pub.pem", "--wns-client-id", CLIENT_ID,
             "--wns-client-secret", SECRET, "--ready-file", ready],
            stderr=open(os.path.join(p.dir, "mock-byname.log"), "ab"))
        p.wait_for(lambda: os.path.exists(ready), "mock-byname ready")
        configure(token_url=f"https://{host}:{ports['byname']}/accesstoken.srf")
        restart("wns-sender", PLATFORM_WNS)
        r = send(PLATFORM_WNS, KIND_WNS, chan("byname", ports["byname"]), BODY)
        log = p.log("wns-sender")
        t.check(r["outcome"] == "delivered" and "access token obtained" in log.split(f"from https://{host}:")[-1]
                and "sandbox: wns-sender" in log, f"a token endpoint by host name ({host}), resolved inside the sandbox {r}")

    # 8. XMPP ad-hoc pushes through fcm-sender and apns-sender (docs/senders.md, "Job kinds").
    p.start("fcm-sender")
    p.start("apns-sender")
    router.accept(F.ANDROID)
    router.accept(F.IOS)
    data_hi = json.dumps({"account": ACC, "high": True}, separators=(",", ":")).encode()
    data_room = json.dumps({"account": ACC, "channel": ROOM, "high": False}, separators=(",", ":")).encode()
    r1 = send(F.ANDROID, KIND_XMPP, "fcm:xmpp-one", data_hi)
    r2 = send(F.ANDROID, KIND_XMPP, "fcm:xmpp-room", data_room)
    t.check(r1["outcome"] == "delivered" and r2["outcome"] == "delivered", f"FCM XMPP pushes delivered {r1} {r2}")
    fb = [x["body"] for x in records("fcm") if "xmpp-one" in x["body"]]
    t.check(fb == ['{"message":{"token":"fcm:xmpp-one","data":{"account":"' + ACC + '"},'
                   '"android":{"priority":"HIGH","collapse_key":"575743"}}}'], f"FCM high: exact message {fb}")
    fb = [x["body"] for x in records("fcm") if "xmpp-room" in x["body"]]
    t.check(fb == ['{"message":{"token":"fcm:xmpp-room","data":{"account":"' + ACC + '","channel":"' + ROOM + '"},'
                   '"android":{"priority":"NORMAL","collapse_key":"30be82"}}}'], f"FCM room, normal: exact message {fb}")
    hi, lo, bchat = "a1" * 32, "b2" * 32, "c3" * 32
    r1 = send(F.IOS, KIND_XMPP, hi, data_hi)
    r2 = send(F.IOS, KIND_XMPP, lo, data_room)
    r3 = send(F.IOS, KIND_BCHAT, bchat, b"QUJD")
    t.check(r1["outcome"] == r2["outcome"] == r3["outcome"] == "delivered", f"APNs pushes delivered {r1} {r2} {r3}")
    a = records("apns", "/3/device/" + hi)
    t.check(a and a[0]["body"] == '{"aps":{"alert":{"title":"New message"},"sound":"default"}}' and
            a[0]["headers"].get("apns-push-type") == "alert" and a[0]["headers"].get("apns-priority") == "10" and
            a[0]["headers"].get("apns-topic") == XMPP_TOPIC, f"APNs high: alert, 10, the XMPP topic {a[:1]}")
    a = records("apns", "/3/device/" + lo)
    t.check(a and a[0]["body"] == '{"aps":{"content-available":1}}' and
            a[0]["headers"].get("apns-push-type") == "background" and a[0]["headers"].get("apns-priority") == "5" and
            a[0]["headers"].get("apns-topic") == XMPP_TOPIC, f"APNs otherwise: background, 5 {a[:1]}")
    a = records("apns", "/3/device/" + bchat)
    t.check(a and '"ENCRYPTED_DATA":"QUJD"' in a[0]["body"] and a[0]["headers"].get("apns-topic") == "com.beldex.bchat"
            and a[0]["headers"].get("apns-push-type") == "alert", "the Bchat path is unchanged")
    r = send(F.IOS, KIND_WNS, hi, BODY)
    t.check(r["outcome"] == "message_failed", "a KIND_WNS job is refused by apns-sender")
    r = send(F.ANDROID, KIND_XMPP, "fcm:bad", b'{"account":"xyz"}')
    t.check(r["outcome"] == "message_failed", "unreadable XMPP data -> message_failed")
except Exception as e:
    import traceback
    traceback.print_exc()
    t.check(False, f"wns test raised {e!r}")
finally:
    if t.failed:
        print(p.logs())
    if router:
        router.close()
    p.stop()
sys.exit(t.done())
