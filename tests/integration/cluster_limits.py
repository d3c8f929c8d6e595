"""Bounds of a cluster's streams (docs/cluster.md, "Compacting the registry stream" and "Bounded
request and job streams"), on a three-node cluster:

  * with cluster.snapshot_changes N, after many registry changes the routers have written
    snapshots and PP_REGISTRY's first changes were dropped: it keeps at most about 2 N (the N
    before the newest snapshot and those after it; checked against 4 N);
  * a router that joins with an empty copy starts from the newest snapshot (not from change 1),
    exports exactly what the first router exports (every database dumps identically), and serves: a notify to an id the snapshot
    holds reaches APNs, an unregister of a token it holds answers Success (the token index came
    with the snapshot's hash key);
  * a router that was down while more than N changes were made and compacted loads the newest one on
    restart and exports identically again;
  * router.outbox_max M bounds PP_JOBS and PP_REQ: with no sender taking jobs, notifies are
    answered Success until both hold M messages, then "Server busy"; once a sender is back every
    notify answered Success reaches APNs."""
import base64, json, os, subprocess, sys, time
from lib.harness import Checks, BIN
from lib.cluster_env import Cluster

N = 15         # cluster.snapshot_changes
M = 6          # router.outbox_max
GROUP = "bd" + "9" * 64


def ident(i):
    return "bd" + ("%064x" % (0xC0FFEE00 + i))


def token(i):
    return "%064x" % (0xAB000000 + i)


def export(conf):
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", conf, "export"], capture_output=True, text=True, timeout=30)
    return sorted(json.dumps(json.loads(l), sort_keys=True) for l in r.stdout.splitlines() if l.strip())


def dump(conf):
    """Every database of a router's LMDB (mdb_dump -a, lmdb-utils): the copy byte for byte."""
    db = json.load(open(conf))["router"]["db_path"]
    r = subprocess.run(["mdb_dump", "-a", "-p", db], capture_output=True, text=True, timeout=30)
    return r.stdout if r.returncode == 0 else None


def stream(c, name):
    """The stream's state as a node that is up sees it: messages, first_seq, last_seq."""
    for i in range(len(c.client)):
        if f"nats-{i + 1}" not in c.nats:
            continue
        try:
            for acc in c.jsz(i).get("account_details", []):
                for s in acc.get("stream_detail", []):
                    if s["name"] == name and s.get("cluster", {}).get("leader"):
                        return s["state"]
        except OSError:
            pass
    return {}


t = Checks()
c = Cluster(keep="-k" in sys.argv)
try:
    c.start_mock()
    for i in range(3):
        c.start_nats(i)
    routers = {}
    for name in ("router-1", "router-2"):
        routers[name] = c.conf(name, "router", router={"db_path": os.path.join(c.dir, "db", name), "outbox_max": M},
                               cluster={"snapshot_changes": N})
    r1, r2 = routers["router-1"], routers["router-2"]
    i1 = c.conf("ingress-onion-1", "ingress", ingress_onion={"router_timeout_ms": 2000})
    ap = c.conf("apns-sender", "sender-apns-default")
    c.start_c("router-1", "router", r1)
    c.start_c("ingress-onion-1", "ingress-onion", i1)
    c.start_c("apns-sender", "apns-sender", ap)
    c.wait_for(lambda: "registry copy at change" in c.log("router-1"), "router-1 on the bus", timeout=30)
    c.wait_for(c.ingress_up, "ingress listening")
    c.wait_for(lambda: "takes jobs from" in c.log("apns-sender"), "apns-sender bound", timeout=30)

    def ok(out):
        return '"message": "Success"' in out

    def change(*args):
        rc, out = c.pushctl(*args)
        return rc == 0 and ok(out)

    # Many changes: registrations, unregistrations, closed-group memberships.
    good = 0
    for i in range(40):
        good += change("register", f"token={token(i)}", f"pubKey={ident(i)}")
    for i in range(0, 40, 4):
        good += change("unregister", f"token={token(i)}")
    for i in range(1, 40, 5):
        good += change("subscribe_closed_group", f"closedGroupPublicKey={GROUP}", f"pubKey={ident(i)}")
    t.check(good == 58, f"58 registry changes answered Success ({good})")

    def compacted():
        s = stream(c, "PP_REGISTRY")
        return s.get("first_seq", 0) > 1
    try:
        c.wait_for(compacted, "PP_REGISTRY compacted", timeout=30)
    except RuntimeError as e:
        print(e)
    reg = stream(c, "PP_REGISTRY")
    t.check(c.log("router-1").count("registry snapshot at change") >= 1,
            "router-1 wrote snapshots (%d)" % c.log("router-1").count("registry snapshot at change"))
    t.check(reg.get("last_seq", 0) >= 58 and reg.get("first_seq", 0) > 1,
            f"PP_REGISTRY's first changes were dropped ({reg})")
    snap = stream(c, "PP_REGSNAP")
    t.check(0 < snap.get("messages", 0) <= 12, f"PP_REGSNAP holds a few messages only ({snap})")

    # A new router starts from the newest snapshot and ends with the same copy.
    c.start_c("router-2", "router", r2)
    c.wait_for(lambda: "registry copy at change" in c.log("router-2"), "router-2 on the bus", timeout=30)
    t.check("loaded from the snapshot at change" in c.log("router-2"), "router-2 started from a snapshot")
    try:
        c.wait_for(lambda: export(r1) == export(r2), "both copies equal", timeout=15)
    except RuntimeError as e:
        print(e)
    e1, e2 = export(r1), export(r2)
    t.check(e1 == e2 and len(e1) == 30, f"router-1 and router-2 export identically ({len(e1)} and {len(e2)} tokens)")
    t.check(dump(r1) is not None and dump(r1) == dump(r2),
            "every database of the two copies dumps identically (groups, hash key and meta included)")

    # router-2 alone serves from its loaded copy.
    c.kill("router-1")
    before = len(c.requests())
    rc, out = c.pushctl("notify", f"send_to={ident(1)}", "data=c25hcA==")
    t.check(rc == 0 and ok(out), "notify to an id the snapshot holds, router-2 alone: " + out)
    try:
        c.wait_for(lambda: any(r["path"].endswith(token(1)) for r in c.requests()[before:]), "the notify at APNs")
    except RuntimeError as e:
        print(e)
    t.check(any(r["path"].endswith(token(1)) for r in c.requests()[before:]), "it reached APNs for its token")
    t.check(change("unregister", f"token={token(2)}"), "unregister of a token the snapshot holds answers Success")

    # router-1 misses more changes than the stream keeps, then catches up from a snapshot.
    good = 0
    for i in range(40, 40 + 4 * N):
        good += change("register", f"token={token(i)}", f"pubKey={ident(i)}")
    t.check(good == 4 * N, f"{4 * N} more registrations answered Success ({good})")
    try:
        c.wait_for(lambda: stream(c, "PP_REGISTRY").get("first_seq", 0) > 60, "PP_REGISTRY compacted again",
                   timeout=30)
    except RuntimeError as e:
        print(e)
    c.start_c("router-1", "router", r1)
    try:
        c.wait_for(lambda: "loaded from the snapshot at change" in c.log("router-1"), "router-1 loads a snapshot",
                   timeout=30)
    except RuntimeError as e:
        print(e)
    t.check("loaded from the snapshot at change" in c.log("router-1"),
            "router-1, behind by more than the stream keeps, loaded the newest snapshot")
    try:
        c.wait_for(lambda: export(r1) == export(r2), "both copies equal again", timeout=15)
    except RuntimeError as e:
        print(e)
    e1, e2 = export(r1), export(r2)
    t.check(e1 == e2 and len(e1) == 29 + 4 * N, f"both export identically again ({len(e1)} and {len(e2)} tokens)")
    t.check(dump(r1) is not None and dump(r1) == dump(r2), "every database of the two copies dumps identically again")
    reg = stream(c, "PP_REGISTRY")
    t.check(reg.get("last_seq", 0) >= 59 + 4 * N and reg.get("messages", 10 ** 9) <= 4 * N,
            f"PP_REGISTRY keeps at most 4 x {N} of its {reg.get('last_seq')} changes ({reg})")

    # Bounded queues: no sender takes jobs; notifies fill PP_JOBS, then PP_REQ, then are refused.
    c.kill("apns-sender")
    before = len(c.requests())
    accepted, busy = [], False
    for n in range(4 * M):
        data = base64.b64encode(b"limit%03d" % n).decode()
        rc, out = c.pushctl("notify", f"send_to={ident(5)}", f"data={data}")
        if rc == 0 and ok(out):
            accepted.append(data)
        elif "Server busy" in out:
            busy = True
            break
        else:
            t.check(False, f"notify {n}: neither Success nor busy: {out}")
            break
    jobs, req = stream(c, "PP_JOBS"), stream(c, "PP_REQ")
    t.check(busy, f"past the bound a notify is answered Server busy (after {len(accepted)} accepted)")
    t.check(M <= len(accepted) <= 2 * M + 2, f"about 2 x outbox_max notifies were accepted first ({len(accepted)})")
    t.check(jobs.get("messages", 10 ** 9) <= M and req.get("messages", 10 ** 9) <= M,
            f"PP_JOBS and PP_REQ hold at most outbox_max {M} messages each ({jobs.get('messages')}, {req.get('messages')})")
    c.start_c("apns-sender", "apns-sender", ap)

    def delivered():
        return {d for d in accepted if any(d in r["body"] for r in c.requests()[before:])}
    try:
        c.wait_for(lambda: delivered() == set(accepted), "the accepted notifies at APNs", timeout=40)
    except RuntimeError as e:
        print(e)
    t.check(delivered() == set(accepted), f"every notify answered Success reached APNs ({len(delivered())} of {len(accepted)})")
    t.check(change("notify", f"send_to={ident(5)}", "data=YWdhaW4="), "with the sender back, a notify is accepted again")
except Exception as e:
    import traceback
    traceback.print_exc()
    t.check(False, f"unexpected error: {e!r}")
finally:
    if t.failed:
        print(c.logs())
    c.stop()
sys.exit(t.done())
