"""pushctl moves a registry between one machine and a cluster (docs/cluster.md): registrations
and closed-group memberships made on a single-machine router are published by `pushctl
cluster-import` into a fresh three-node cluster, both cluster routers end with the same tokens;
closed groups work in cluster mode (subscribe and unsubscribe through a cluster ingress, a notify
to the group reaches exactly its members' tokens, migrated or not), and `pushctl cluster-export`
gives back a single-machine registry with the cluster's tokens. Registration times and
consecutive-failure counts survive both moves (a token FCM answered UNSPECIFIED_ERROR once keeps its
failure), and an import run again changes nothing."""
import json, os, ssl, subprocess, sys, time, urllib.request
from lib.harness import Checks, BIN, free_port
from lib.cluster_env import Cluster

ID1, ID2, GROUP = "bd" + "a" * 64, "bd" + "b" * 64, "bd" + "c" * 64
IOS, ANDROID = "c1" * 32, "fcmMigrate:APA91b-m"
ID3, ID4, IOS3, IOS4 = "bd" + "d" * 64, "bd" + "e" * 64, "c3" * 32, "c4" * 32
ID5, FCM5 = "bd" + "f" * 64, "fcmSuspect:APA91b-s"


def pushctl(*args):
    r = subprocess.run([os.path.join(BIN, "pushctl"), *args], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def tokens(conf):
    rc, out, _ = pushctl("-c", conf, "export")
    rows = [json.loads(l) for l in out.splitlines() if l.strip()]
    return rc, sorted((r["id"], r["token"], r["device"], r["legacy_groups_only"]) for r in rows)


def full(conf):
    """Every exported field, registration time and failure count included."""
    rc, out, _ = pushctl("-c", conf, "export")
    return sorted(json.dumps(json.loads(l), sort_keys=True) for l in out.splitlines() if l.strip())


def failures(conf, token):
    rc, out, _ = pushctl("-c", conf, "export")
    return [json.loads(l)["failures"] for l in out.splitlines() if l.strip() and json.loads(l)["token"] == token]


def mock(c, path, body):
    ctx = ssl.create_default_context(cafile=os.path.join(c.dir, "mock", "ca.pem"))
    req = urllib.request.Request(f"https://127.0.0.1:{c.mock_port}{path}", method="POST", data=json.dumps(body).encode())
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return json.loads(r.read() or b"{}")


t = Checks()
c = Cluster(keep="-k" in sys.argv)
try:
    # One machine: two ids, one in a closed group.
    c.start_all()
    for args in (("register", f"token={IOS}", f"pubKey={ID1}"),
                 ("register_legacy_groups_only", f"token={ANDROID}", f"pubKey={ID2}", "device=android",
                  f"legacyGroupPublicKeys={GROUP}"),
                 ("subscribe_closed_group", f"closedGroupPublicKey={GROUP}", f"pubKey={ID1}")):
        rc, out = c.pushctl(*args)
        t.check(rc == 0 and "Success" in out, f"single machine: {args[0]} answers Success")
    # A token with one consecutive failure: FCM answers its notify 400 UNSPECIFIED_ERROR once.
    rc, out = c.pushctl("register", f"token={FCM5}", f"pubKey={ID5}", "device=android")
    t.check(rc == 0 and "Success" in out, "single machine: register a token FCM will call suspect")
    mock(c, "/_mock/faults", {"rules": [{"provider": "fcm", "token": FCM5, "count": 1, "status": 400,
                                         "reason": "UNSPECIFIED_ERROR"}]})
    rc, out = c.pushctl("notify", f"send_to={ID5}", "data=c3VzcGVjdA==")
    t.check(rc == 0 and "Success" in out, "single machine: notify to the suspect token's id")
    try:
        c.wait_for(lambda: failures(c.config, FCM5) == [1], "the failure counted on one machine", timeout=15)
    except RuntimeError as e:
        print(e)
    t.check(failures(c.config, FCM5) == [1], f"one machine counted one failure ({failures(c.config, FCM5)})")
    for d in list(c.procs):
        if d != "mock-provider":
            c.kill(d)
    rc, single = tokens(c.config)
    t.check(rc == 0 and len(single) == 3, f"the single-machine registry exports 3 tokens ({len(single)})")
    single_full = full(c.config)

    # Into a fresh cluster.
    for i in range(3):
        c.start_nats(i)
    r1 = c.conf("router-1", "router", router={"db_path": os.path.join(c.dir, "db", "r1")})
    r2 = c.conf("router-2", "router", router={"db_path": os.path.join(c.dir, "db", "r2")})
    c.start_c("router-1", "router", r1)
    c.start_c("router-2", "router", r2)
    c.wait_for(lambda: all("registry copy at change" in c.log(r) for r in ("router-1", "router-2")),
               "both routers on the bus", timeout=30)
    admin = c.conf("admin", "admin")  # router.db_path: the single-machine registry
    rc, out, err = pushctl("-c", admin, "cluster-import")
    t.check(rc == 0 and "3 registrations and 2 closed-group memberships" in out,
            f"cluster-import publishes 3 registrations and 2 memberships: {out.strip()} {err.strip()}")
    try:
        c.wait_for(lambda: tokens(r1)[1] == single and tokens(r2)[1] == single, "both routers applied the import",
                   timeout=15)
    except RuntimeError as e:
        print(e)
    t.check(tokens(r1)[1] == single and tokens(r2)[1] == single, "both cluster routers hold the single-machine tokens")
    try:
        c.wait_for(lambda: full(r1) == single_full and full(r2) == single_full, "times and failures imported",
                   timeout=10)
    except RuntimeError as e:
        print(e)
    t.check(full(r1) == single_full and full(r2) == single_full,
            "both cluster routers hold each registration's time and failure count as on one machine")
    if full(r1) != single_full:
        print("router-1:", full(r1), "\none machine:", single_full)
    # Run again, nothing changes (within the dedupe window or not: an imported registration never
    # replaces one registered at its time or later).
    rc, out, err = pushctl("-c", admin, "cluster-import")
    t.check(rc == 0, f"cluster-import again: {out.strip()} {err.strip()}")
    time.sleep(2)
    t.check(full(r1) == single_full and full(r2) == single_full, "an import run twice changes nothing")

    # The memberships came too: a notify to the group reaches both members' tokens.
    http = free_port()
    i1 = c.conf("ingress-onion-1", "ingress", ingress_onion={"listen": f"127.0.0.1:{http}"})
    ap = c.conf("apns-sender", "sender-apns-default")
    fc = c.conf("fcm-sender", "sender-fcm-default")
    c.start_c("ingress-onion-1", "ingress-onion", i1)
    c.start_c("apns-sender", "apns-sender", ap)
    c.start_c("fcm-sender", "fcm-sender", fc)
    c.http = http
    c.wait_for(c.ingress_up, "cluster ingress listening")
    c.wait_for(lambda: "takes jobs from" in c.log("apns-sender") and "takes jobs from" in c.log("fcm-sender"),
               "senders bound", timeout=30)
    # A third member joins through the cluster (register, subscribe_closed_group as registry
    # changes); a fourth joins and leaves again.
    for args in (("register", f"token={IOS3}", f"pubKey={ID3}"),
                 ("subscribe_closed_group", f"closedGroupPublicKey={GROUP}", f"pubKey={ID3}"),
                 ("register", f"token={IOS4}", f"pubKey={ID4}"),
                 ("subscribe_closed_group", f"closedGroupPublicKey={GROUP}", f"pubKey={ID4}"),
                 ("unsubscribe_closed_group", f"closedGroupPublicKey={GROUP}", f"pubKey={ID4}")):
        rc, out = c.pushctl(*args)
        t.check(rc == 0 and "Success" in out, f"cluster: {args[0]} answers Success")
    before = len(c.requests())
    rc, out = c.pushctl("notify", f"send_to={GROUP}", "data=Z3JvdXA=")
    t.check(rc == 0 and "Success" in out, "notify to the closed group through the cluster: " + out)

    def got():
        return sorted(r["path"].rsplit("/", 1)[-1] if r["provider"] == "apns" else "fcm"
                      for r in c.requests()[before:] if "Z3JvdXA=" in r["body"])
    want = sorted([IOS, IOS3, "fcm"])
    try:
        c.wait_for(lambda: got() == want, "the group notify at APNs and FCM", timeout=20)
    except RuntimeError as e:
        print(e)
    time.sleep(0.5)
    t.check(got() == want, f"the migrated members and the one who joined through the cluster got the notify, "
                           f"not the one who left ({got()})")

    # And back: a cluster router's copy becomes a single-machine registry.
    back = os.path.join(c.dir, "db", "back")
    os.makedirs(back)
    rc, out, err = pushctl("-c", r1, "cluster-export", back)
    t.check(rc == 0, f"cluster-export: {out.strip()} {err.strip()}")
    with open(c.config) as f:
        j = json.load(f)
    j["router"]["db_path"] = back
    single_back = os.path.join(c.dir, "back.json")
    with open(single_back, "w") as f:
        json.dump(j, f)
    t.check(tokens(single_back)[1] == tokens(r1)[1] and len(tokens(r1)[1]) == 5,
            "the exported registry holds the cluster's tokens (the 3 migrated and the 2 added)")
    t.check(full(single_back) == full(r1) and set(single_full) <= set(full(single_back)),
            "the exported registry keeps every registration time and failure count")
except Exception as e:
    import traceback
    traceback.print_exc()
    t.check(False, f"unexpected error: {e!r}")
finally:
    if t.failed:
        print(c.logs())
    c.stop()
sys.exit(t.done())
