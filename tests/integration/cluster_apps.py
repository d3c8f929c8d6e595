"""Several apps of one platform in cluster mode (docs/cluster.md, docs/config.md section apps):
three nats-server nodes, a router, an ingress-onion with a second onion service whose iOS app is
"sbx", and one apns-sender per app (its own NATS user, sender-apns-<app>, which may take only its
app's jobs). A notify's jobs go to each token's own app's subject, so each token is delivered by
its app's sender with that app's key and topic (the mock records the key id as auth_id); a dead
token reported through one app's sender removes that app's registration and leaves the other
app's alone, also when the token moved to the other app while the job was at the provider."""
import json, os, ssl, subprocess, sys, time, urllib.request
from lib.harness import BIN, Checks
from lib import cluster_env
from lib.cluster_env import Cluster

A = "bd" + "5" * 64   # registered on the default service (app prod)
B = "bd" + "6" * 64   # registered on the session service (app sbx)
A_IOS, B_IOS = "a5" * 32, "b6" * 32
SBX_KID = "SBXKEY4567"

cluster_env.SENDERS = cluster_env.SENDERS + ["apns-prod", "apns-sbx"]
t = Checks()
c = Cluster(keep="-k" in sys.argv)


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def mock(path, body):
    ctx = ssl.create_default_context(cafile=os.path.join(c.dir, "mock", "ca.pem"))
    req = urllib.request.Request(f"https://127.0.0.1:{c.mock_port}{path}", method="POST", data=body)
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return r.read()


def apns_for(token):
    return [r for r in c.requests() if r["provider"] == "apns" and r["status"] == 200 and r["path"].endswith("/3/device/" + token)]


def session(*args):
    cmd = [os.path.join(BIN, "pushctl"), "send", "-u", f"http://127.0.0.1:{c.http}", "-K", key2_pub, "-r", "/loki/v2/lsrpc"]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout.strip()


def exported():
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", rconf, "export"], capture_output=True, text=True, timeout=30)
    return {x["token"]: x for x in (json.loads(line) for line in r.stdout.splitlines() if line.strip())}


try:
    m = os.path.join(c.dir, "mock")
    sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{m}/apns2.p8")
    sh("openssl", "pkey", "-in", f"{m}/apns2.p8", "-pubout", "-out", f"{m}/apns2_pub.pem")
    keys2 = os.path.join(c.dir, "keys2")
    os.makedirs(keys2)
    sh(os.path.join(BIN, "pushctl"), "keygen", "-d", keys2)
    key2_pub = os.path.join(keys2, "server.pub")
    c.mock_args = ["--apns-extra-key", f"{SBX_KID}={m}/apns2_pub.pem"]
    conf = json.load(open(c.config))
    conf["apps"] = [
        {"name": "prod", "platform": "apns", "topic": "org.example.prod"},
        {"name": "sbx", "platform": "apns", "topic": "org.example.sbx", "url": conf["apns_sender"]["url"] + "/sandbox",
         "key_file": f"{m}/apns2.p8", "key_id": SBX_KID},
    ]
    o = conf["ingress_onion"]
    o["v2_routes"] = ["/beldex/v2/lsrpc", "/loki/v2/lsrpc"]
    o["services"] = [{"name": "session", "routes": ["/loki/"], "key_file": os.path.join(keys2, "server.key"),
                      "apps": {"ios": "sbx"}}]
    with open(c.config, "w") as f:
        json.dump(conf, f, indent=1)

    c.start_mock()
    for i in range(3):
        c.start_nats(i)
    rconf = c.conf("router-1", "router", router={"db_path": os.path.join(c.dir, "db", "r1")})
    c.start_c("router-1", "router", rconf)
    c.start_c("ingress-onion-1", "ingress-onion", c.conf("ingress-onion-1", "ingress"))
    for app in ("prod", "sbx"):
        c.start_c(f"apns-{app}", "apns-sender", c.conf(f"apns-{app}", f"sender-apns-{app}"), "-a", app, "-i", "1")
    c.wait_for(lambda: all("takes jobs from" in c.log(f"apns-{a}") for a in ("prod", "sbx")),
               "both apps' senders bound to their jobs consumers", timeout=30)
    c.wait_for(lambda: "registry copy at change" in c.log("router-1"), "the router on the bus", timeout=30)
    c.wait_for(c.ingress_up, "ingress listening")

    t.check(c.pushctl("register", f"token={A_IOS}", f"pubKey={A}")[0] == 0, "A's token registered (default service)")
    t.check(session("register", f"token={B_IOS}", f"pubKey={B}")[0] == 0, "B's token registered (session service)")
    reg = exported()
    t.check(reg.get(A_IOS, {}).get("app") == "prod" and reg.get(B_IOS, {}).get("app") == "sbx",
            "each registration stored with its service's app: " + str({k: v.get("app") for k, v in reg.items()}))

    t.check(c.pushctl("notify", f"send_to={A}", "data=YQ==")[0] == 0, "notify A")
    t.check(session("notify", f"send_to={B}", "data=Yg==")[0] == 0, "notify B")
    try:
        c.wait_for(lambda: apns_for(A_IOS) and apns_for(B_IOS), "both tokens delivered", timeout=30)
    except RuntimeError as e:
        print(e)
    ra, rb = (apns_for(A_IOS) or [{}])[0], (apns_for(B_IOS) or [{}])[0]
    t.check(ra.get("path", "").startswith("/3/device/") and ra.get("headers", {}).get("apns-topic") == "org.example.prod"
            and ra.get("auth_id") == "MOCKKEY123", f"prod's token: production URL, its topic and key ({ra.get('auth_id')})")
    t.check(rb.get("path", "").startswith("/sandbox/3/device/") and rb.get("headers", {}).get("apns-topic") == "org.example.sbx"
            and rb.get("auth_id") == SBX_KID, f"sbx's token: sandbox URL, its topic and key ({rb.get('auth_id')})")
    t.check("takes jobs from jobs-apns-sbx" in c.log("apns-sbx") and "takes jobs from jobs-apns-prod" in c.log("apns-prod"),
            "each sender takes its own app's jobs consumer")

    # A dead token of the sandbox app: removed; the production app's registration stays and delivers.
    mock("/_mock/faults", json.dumps({"rules": [{"provider": "apns", "token": B_IOS, "count": 1, "status": 410,
                                                  "reason": "Unregistered", "timestamp": int(time.time() * 1000) + 5000}]}).encode())
    session("notify", f"send_to={B}", "data=ZA==")
    try:
        c.wait_for(lambda: B_IOS not in exported(), "B's dead token removed", timeout=30)
    except RuntimeError as e:
        print(e)
    reg = exported()
    t.check(B_IOS not in reg and A_IOS in reg, "the sandbox app's dead token removed, the production app's kept")
    before = len(apns_for(A_IOS))
    c.pushctl("notify", f"send_to={A}", "data=ZQ==")
    try:
        c.wait_for(lambda: len(apns_for(A_IOS)) > before, "A still delivered", timeout=30)
    except RuntimeError as e:
        print(e)
    t.check(len(apns_for(A_IOS)) > before, "the production app still delivers after the sandbox app's token died")

    # The token moves to the other app while the sandbox app's job for it is at the provider; the
    # sandbox app's verdict that it is dead (with a provider timestamp after the move) must leave
    # the production app's registration alone: it is not that app's token any more.
    T = "c7" * 32
    mock("/_mock/reset", b"")
    t.check(session("register", f"token={T}", f"pubKey={B}")[0] == 0, "a token registered for the sandbox app")
    mock("/_mock/faults", json.dumps({"rules": [{"provider": "apns", "token": T, "count": 1, "status": 410, "delay_ms": 3000,
                                                  "reason": "Unregistered", "timestamp": int(time.time() * 1000) + 60000}]}).encode())
    session("notify", f"send_to={B}", "data=Zg==")
    time.sleep(1.0)  # the job at the mock, its answer held
    t.check(c.pushctl("register", f"token={T}", f"pubKey={B}")[0] == 0 and exported().get(T, {}).get("app") == "prod",
            "the token registered again through the default service: now the production app's")
    try:
        c.wait_for(lambda: any(r["provider"] == "apns" and r["status"] == 410 and r["path"].endswith(T) for r in c.requests()),
                   "the sandbox app's 410 for the moved token", timeout=20)
    except RuntimeError as e:
        print(e)
    time.sleep(3.0)  # its result through PP_RES and PP_REGISTRY
    t.check(any(r["provider"] == "apns" and r["status"] == 410 and r["path"].startswith("/sandbox/") and r["path"].endswith(T)
                for r in c.requests()), "the sandbox app's sender was told the token is dead")
    t.check(exported().get(T, {}).get("app") == "prod",
            "the sandbox app's verdict left the production app's registration of the token")
finally:
    c.stop()
t.done()
