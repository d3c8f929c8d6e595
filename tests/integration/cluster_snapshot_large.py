"""A registry snapshot larger than the servers' flow-control window (docs/cluster.md, "Compacting
the registry stream" and "Credentials"), on a three-node cluster: 20 000 registrations published
straight to the registry stream with cluster.snapshot_changes 19 000 make a snapshot of about
3.6 MB (14 chunks; a router that catches up with the stream while the registrations are still
being published takes it later, never smaller than 19 000 registrations); a router that joins with an empty copy loads it whole, comes up within 30 s
and exports exactly what the first router exports. The routers' ordered consumers answer the
servers' flow-control requests: no server logs a refused $JS.FC publish (without that rule the
load stalled after about 2 MiB and the new router retried it forever)."""
import os, subprocess, sys, time
from lib.harness import Checks, BIN
from lib.cluster_env import Cluster
from lib import frames, nats_raw
from lib.runcluster_env import sanitized

NTOK = 20000
EVERY = NTOK - NTOK // 20   # cluster.snapshot_changes: one snapshot, of at least 19 000 entries
# Waits stretch in a sanitizer build (replaying and loading run several times slower there); a
# stalled load never ends, so it still fails.
SLOW = 4 if sanitized() else 1


def counts(conf):
    out = subprocess.run([os.path.join(BIN, "pushctl"), "-c", conf, "counts"], capture_output=True, text=True,
                         timeout=30).stdout
    return dict(l.split() for l in out.splitlines() if len(l.split()) == 2)


def export(conf):
    return subprocess.run([os.path.join(BIN, "pushctl"), "-c", conf, "export"], capture_output=True, text=True,
                          timeout=60).stdout


t = Checks()
c = Cluster(keep="-k" in sys.argv)
try:
    for i in range(3):
        c.start_nats(i)
    r1 = c.conf("router-1", "router", router={"db_path": os.path.join(c.dir, "db", "r1")},
                cluster={"snapshot_changes": EVERY})
    r2 = c.conf("router-2", "router", router={"db_path": os.path.join(c.dir, "db", "r2")},
                cluster={"snapshot_changes": EVERY})
    c.start_c("router-1", "router", r1)
    c.wait_for(lambda: "registry copy at change" in c.log("router-1"), "router-1 on the bus", timeout=60 * SLOW)

    # The registrations, straight to the registry stream (as routers publish them), 500 a round trip.
    user, pw = open(os.path.join(c.ndir, "admin.cred")).read().strip().split(":", 1)
    conn = nats_raw.Conn(c.client[0], user, pw)
    buf = b""
    for i in range(NTOK):
        f = frames.encode(frames.REGISTER, 0, [(frames.TAG_ID, "bd" + "%064x" % i),
                                               (frames.TAG_TOKEN, "%064x" % (i + 7)), (frames.TAG_DEVICE, 1)])
        buf += b"PUB pp.reg.register %d\r\n%s\r\n" % (len(f), f)
        if i % 500 == 499:
            conn._send(buf)
            buf = b""
            conn.ping(30)
    conn.ping(30)
    c.wait_for(lambda: counts(r1).get("ios") == str(NTOK), "router-1 applied every registration", timeout=60 * SLOW)
    c.wait_for(lambda: "registry snapshot at change" in c.log("router-1"), "a snapshot", timeout=60 * SLOW)
    wrote = [l for l in c.log("router-1").splitlines() if "registry snapshot at change" in l]
    chunks = int(wrote[0].split("(")[1].split()[0]) if wrote and "(" in wrote[0] else 0
    t.check(chunks > 8, f"the snapshot is larger than the flow-control window: {chunks} chunks ({wrote[:1]})")

    t0 = time.time()
    c.start_c("router-2", "router", r2)
    try:
        c.wait_for(lambda: "registry copy at change" in c.log("router-2"), "router-2 on the bus", timeout=30 * SLOW)
    except RuntimeError as e:
        print(e)
    up = "registry copy at change" in c.log("router-2")
    t.check(up, "router-2, with an empty copy, came up within %d s (%.1f s)" % (30 * SLOW, time.time() - t0))
    t.check("loaded from the snapshot at change" in c.log("router-2"), "router-2 loaded the snapshot")
    t.check("did not come" not in c.log("router-2"), "no snapshot chunk went missing")
    if up:
        try:
            c.wait_for(lambda: counts(r2).get("ios") == str(NTOK), "router-2 holds every registration", timeout=30 * SLOW)
        except RuntimeError as e:
            print(e)
        e1, e2 = export(r1), export(r2)
        t.check(e1 == e2 and len(e1.splitlines()) == NTOK,
                f"router-1 and router-2 export identically ({len(e1.splitlines())} and {len(e2.splitlines())} tokens)")
    refused = [l for i in range(3) for l in open(os.path.join(c.dir, f"nats-{i + 1}.log"), errors="replace")
               if "Publish Violation" in l and "$JS.FC." in l]
    t.check(not refused, f"no server refused a router's flow-control answer ({refused[:1]})")
except Exception as e:
    t.check(False, f"unexpected error: {e!r}")
finally:
    c.stop()
t.done()
