"""Several apps of one platform on one pipeline (docs/config.md, section apps): two APNs apps
(production with the section's key, sandbox with its own key, key id and topic at the mock's
/sandbox URL) and two FCM projects (two service accounts). ingress-onion serves the default apps
on /beldex/ with its section key and a second service on /loki/ and /oxen/ with its own key, id
and apps; a third service on /session/ takes Session's ids ("05…") by its own id_prefix, which
neither of the others accepts. Each registration belongs to the app of the service it came in on; each token is
delivered by its own app's sender with that app's credentials (the topic, the JWT key id, the
project path and the service account the mock saw); a notify or an unregister touches only its
service's apps; a dead token of one app leaves the other app's registrations alone; the
mass-invalidation guard of one app trips while the other app keeps delivering."""
import json, os, subprocess, sys, time
import urllib.request
from lib.harness import BIN, Checks, Pipeline

A = "bd" + "1" * 64          # registered on the default service
B = "bd" + "2" * 64          # registered on the session service
C = "bd" + "3" * 64          # one id with a token in each service
A_IOS, B_IOS, C_IOS1, C_IOS2 = "a1" * 32, "b1" * 32, "c1" * 32, "c2" * 32
G_IOS = ["e%d" % i * 32 for i in range(1, 7)]  # guard test tokens (sandbox app)
A_FCM, B_FCM = "fcm:app-a", "fcm:app-b"
S, S_IOS, X_IOS, S_ROUTE = "05" + "5" * 64, "d1" * 32, "d2" * 32, "/session/v2/lsrpc"  # id_prefix "05" service
SBX_KID = "SBXKEY4567"

t = Checks()
p = Pipeline(keep="-k" in sys.argv)


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def ctl(*args):
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, *args], capture_output=True, text=True, timeout=10)
    return r.returncode, r.stdout


def session(*args, v4=False, route=None):
    """A request through the session service (or another service's route): its own server key."""
    route = route or ("/oxen/v4/lsrpc" if v4 else "/loki/v2/lsrpc")
    cmd = [os.path.join(BIN, "pushctl"), "send", "-u", f"http://127.0.0.1:{p.http}", "-K", key2_pub, "-r", route]
    if v4:
        cmd.append("-4")
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout.strip()


def ok200(provider):
    return [r for r in p.requests() if r["provider"] == provider and r["status"] == 200]


def apns_for(token):
    return [r for r in ok200("apns") if r["path"].endswith("/3/device/" + token)]


def fcm_for(token):
    return [r for r in ok200("fcm") if json.loads(r["body"])["message"]["token"] == token]


def mock(path, body=None):
    req = urllib.request.Request(f"https://127.0.0.1:{p.mock_port}{path}", data=body, method="POST" if body is not None else "GET")
    import ssl
    ctx = ssl.create_default_context(cafile=os.path.join(p.dir, "mock", "ca.pem"))
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return r.read()


def exported():
    rc, out = ctl("export")
    return {r["token"]: r for r in (json.loads(line) for line in out.splitlines() if line.strip())}


try:
    m = os.path.join(p.dir, "mock")
    # The sandbox app's APNs key and the second project's service account.
    sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{m}/apns2.p8")
    sh("openssl", "pkey", "-in", f"{m}/apns2.p8", "-pubout", "-out", f"{m}/apns2_pub.pem")
    sh("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", f"{m}/fcm2.key")
    sh("openssl", "pkey", "-in", f"{m}/fcm2.key", "-pubout", "-out", f"{m}/fcm2_pub.pem")
    sa1 = json.load(open(f"{m}/fcm-service-account.json"))
    sa2 = dict(sa1, project_id="pushpipe-two", private_key_id="0123456789abcdef0123456789abcdef01234567",
               client_email="pusher@pushpipe-two.iam.gserviceaccount.com", private_key=open(f"{m}/fcm2.key").read())
    with open(f"{m}/fcm2.json", "w") as f:
        json.dump(sa2, f)
    os.chmod(f"{m}/fcm2.json", 0o600)
    keys2 = os.path.join(p.dir, "keys2")
    os.makedirs(keys2)
    sh(os.path.join(BIN, "pushctl"), "keygen", "-d", keys2)
    key2_pub = os.path.join(keys2, "server.pub")
    p.mock_args = ["--apns-extra-key", f"{SBX_KID}={m}/apns2_pub.pem", "--fcm-extra-key", f"{m}/fcm2_pub.pem",
                   "--fcm-project", sa1["project_id"], "--fcm-project", "pushpipe-two"]

    conf = json.load(open(p.config))
    mock_url = conf["apns_sender"]["url"]
    conf["apps"] = [
        {"name": "prod", "platform": "apns", "topic": "org.example.prod"},
        {"name": "sbx", "platform": "apns", "topic": "org.example.sbx", "url": mock_url + "/sandbox",
         "key_file": f"{m}/apns2.p8", "key_id": SBX_KID,
         "guard_window": 10, "guard_min_answers": 3, "guard_percent": 50},
        {"name": "one", "platform": "fcm"},
        {"name": "two", "platform": "fcm", "service_account_file": f"{m}/fcm2.json"},
    ]
    o = conf["ingress_onion"]
    o["v2_routes"] = ["/beldex/v2/lsrpc", "/loki/v2/lsrpc", "/session/v2/lsrpc"]
    o["v4_routes"] = ["/beldex/v4/lsrpc", "/oxen/v4/lsrpc"]
    o["services"] = [{"name": "session", "routes": ["/loki/", "/oxen/"], "key_file": os.path.join(keys2, "server.key"),
                      "apps": {"ios": "sbx", "android": "two"}},
                     # Same key and apps, but Session's ids ("05" + 64 hex digits) instead of the section's "bd".
                     {"name": "session05", "routes": ["/session/"], "key_file": os.path.join(keys2, "server.key"),
                      "id_prefix": "05", "apps": {"ios": "sbx"}}]
    with open(p.config, "w") as f:
        json.dump(conf, f, indent=1)

    rc, out = subprocess.run([os.path.join(BIN, "apns-sender"), "-c", p.config, "-n"], capture_output=True, text=True).returncode, ""
    t.check(rc != 0, "with two APNs apps, apns-sender without -a is refused")
    p.start_mock()
    for d in ("statsd", "router", "ingress-onion"):
        p.start(d)
    for app, d in (("prod", "apns-sender"), ("sbx", "apns-sender"), ("one", "fcm-sender"), ("two", "fcm-sender")):
        p.start(f"{d}#{app}", "-a", app, "-i", "1")
    p.wait_for(p.ingress_up, "ingress listening")
    p.wait_ingress_linked()
    p.wait_for(lambda: p.log("router").count("connected (pid") >= 4 + 2, "four senders connected")

    # Registrations: A through the default service, B through the session service, C through both.
    t.check(p.pushctl("register", f"token={A_IOS}", f"pubKey={A}")[0] == 0, "A's iOS token registered (default service)")
    t.check(p.pushctl("register", f"token={A_FCM}", f"pubKey={A}", "device=android")[0] == 0, "A's FCM token registered")
    t.check(session("register", f"token={B_IOS}", f"pubKey={B}")[0] == 0, "B's iOS token registered (session service)")
    t.check(session("register", f"token={B_FCM}", f"pubKey={B}", "device=android", v4=True)[0] == 0,
            "B's FCM token registered (session service, v4 on /oxen/)")
    t.check(p.pushctl("register", f"token={C_IOS1}", f"pubKey={C}")[0] == 0 and
            session("register", f"token={C_IOS2}", f"pubKey={C}")[0] == 0, "C has a token in each service")
    # A service's id_prefix: its ids are "05…" there, and only there.
    t.check(session("register", f"token={S_IOS}", f"pubKey={S}", route=S_ROUTE)[0] == 0,
            "a 05 id registered through the service whose id_prefix is 05")
    t.check(session("register", f"token={X_IOS}", f"pubKey={A}", route=S_ROUTE)[0] != 0,
            "a bd id refused by the service whose id_prefix is 05")
    t.check(p.pushctl("register", f"token={X_IOS}", f"pubKey={S}")[0] != 0,
            "a 05 id refused by the default service (the section's id_prefix, bd)")
    reg = exported()
    t.check(S_IOS in reg and reg[S_IOS]["app"] == "sbx" and X_IOS not in reg,
            "the 05 id stored with its service's app, the refused registrations not at all")
    t.check(reg[A_IOS]["app"] == "prod" and reg[B_IOS]["app"] == "sbx" and reg[A_FCM]["app"] == "one" and
            reg[B_FCM]["app"] == "two" and reg[C_IOS1]["app"] == "prod" and reg[C_IOS2]["app"] == "sbx",
            "each registration stored with its service's app: " + str({k: v["app"] for k, v in reg.items()}))

    # Notifies: each service reaches only its apps' tokens, each with its app's credentials.
    t.check(p.pushctl("notify", f"send_to={A}", "data=YQ==")[0] == 0, "notify A")
    t.check(session("notify", f"send_to={B}", "data=Yg==")[0] == 0, "notify B")
    p.wait_for(lambda: apns_for(A_IOS) and apns_for(B_IOS) and fcm_for(A_FCM) and fcm_for(B_FCM), "four deliveries")
    ra, rb = apns_for(A_IOS)[0], apns_for(B_IOS)[0]
    t.check(ra["path"].startswith("/3/device/") and ra["headers"]["apns-topic"] == "org.example.prod" and
            ra["auth_id"] == "MOCKKEY123", f"prod: production URL, its topic and key: {ra['path'][:12]} {ra['headers']['apns-topic']} {ra.get('auth_id')}")
    t.check(rb["path"].startswith("/sandbox/3/device/") and rb["headers"]["apns-topic"] == "org.example.sbx" and
            rb["auth_id"] == SBX_KID, f"sbx: sandbox URL, its topic and key: {rb['path'][:20]} {rb['headers']['apns-topic']} {rb.get('auth_id')}")
    fa, fb = fcm_for(A_FCM)[0], fcm_for(B_FCM)[0]
    t.check(fa["path"] == f"/v1/projects/{sa1['project_id']}/messages:send" and fa["auth_id"] == sa1["client_email"],
            f"FCM one: its project and service account: {fa['path']} {fa.get('auth_id')}")
    t.check(fb["path"] == "/v1/projects/pushpipe-two/messages:send" and fb["auth_id"] == sa2["client_email"],
            f"FCM two: its project and service account: {fb['path']} {fb.get('auth_id')}")
    t.check("of app prod" in p.log("apns-sender-prod") and "of app sbx" in p.log("apns-sender-sbx"),
            "each sender serves its app")

    n_before = len(ok200("apns"))
    t.check(p.pushctl("notify", f"send_to={C}", "data=Yw==")[0] == 0, "notify C on the default service")
    p.wait_for(lambda: apns_for(C_IOS1), "C's prod token delivered")
    t.check(session("notify", f"send_to={C}", "data=Yw==")[0] == 0, "notify C on the session service")
    p.wait_for(lambda: apns_for(C_IOS2), "C's sbx token delivered")
    time.sleep(1.0)
    t.check(len(apns_for(C_IOS1)) == 1 and len(apns_for(C_IOS2)) == 1 and len(ok200("apns")) == n_before + 2,
            "one id, two services: each notify reached only its service's token")
    t.check(apns_for(C_IOS1)[0]["headers"]["apns-topic"] == "org.example.prod" and
            apns_for(C_IOS2)[0]["headers"]["apns-topic"] == "org.example.sbx", "each with its own app's topic")
    # The default service knows nothing of B: a notify to B there reaches nobody, an unregister of
    # B's token there is refused and changes nothing.
    p.pushctl("notify", f"send_to={B}", "data=eA==")
    time.sleep(1.0)
    t.check(len(apns_for(B_IOS)) == 1 and len(fcm_for(B_FCM)) == 1, "a notify on another service does not reach B")
    p.pushctl("unregister", f"token={B_IOS}")
    t.check(B_IOS in exported(), "an unregister on another service leaves B's token")

    # A dead token of the sandbox app: removed; the production app's registrations stay and deliver.
    mock("/_mock/faults", json.dumps({"rules": [{"provider": "apns", "token": B_IOS, "count": 1, "status": 410,
                                                  "reason": "Unregistered", "timestamp": int(time.time() * 1000) + 5000}]}).encode())
    session("notify", f"send_to={B}", "data=ZA==")
    p.wait_for(lambda: B_IOS not in exported(), "B's dead token removed")
    reg = exported()
    t.check(A_IOS in reg and C_IOS1 in reg and C_IOS2 in reg and A_FCM in reg and B_FCM in reg,
            "only that token went: every other registration (both apps) is kept")
    mock("/_mock/reset", b"")
    before = len(apns_for(A_IOS))
    p.pushctl("notify", f"send_to={A}", "data=ZQ==")
    p.wait_for(lambda: len(apns_for(A_IOS)) > before, "A still delivered after B's token died")

    # The guard of the sandbox app (guard_window 10, at least 3 guarded answers, > 50 %): a burst of
    # BadDeviceToken pauses that app's sender; no token of it is removed; prod keeps delivering.
    mock("/_mock/faults", json.dumps({"rules": [{"provider": "apns", "token": g, "status": 400, "reason": "BadDeviceToken"}
                                                 for g in G_IOS]}).encode())
    G = "bd" + "4" * 64
    for g in G_IOS:
        session("register", f"token={g}", f"pubKey={G}")
    session("notify", f"send_to={G}", "data=Zg==")
    p.wait_for(lambda: "provider paused" in p.log("apns-sender-sbx"), "the sandbox app's guard pausing its sender", timeout=20)
    reg = exported()
    kept = [g for g in G_IOS if g in reg]
    # Until the guard trips, the answers remove their tokens (they are too few to be a mistake);
    # past it, every answer is taken as the app's configuration at fault and keeps its token.
    t.check(1 <= len(kept) < len(G_IOS), f"the guard tripped: {len(kept)} of {len(G_IOS)} sandbox tokens kept")
    t.check("mass-invalidation guard holds" in p.log("apns-sender-sbx") and
            "mass-invalidation" not in p.log("apns-sender-prod"), "the sandbox app's guard tripped, not the production app's")
    t.check("paused" not in p.log("apns-sender-prod"), "the production app's sender is not paused")
    before = len(apns_for(A_IOS))
    p.pushctl("notify", f"send_to={A}", "data=Zw==")
    p.wait_for(lambda: len(apns_for(A_IOS)) > before, "the production app delivers while the sandbox app is paused")
    t.check(True, "prod delivered during the sandbox app's pause")
except Exception as e:  # noqa: BLE001
    t.check(False, f"exception: {e}")
    print(p.logs())
finally:
    p.stop()
sys.exit(t.done())
