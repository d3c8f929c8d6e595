"""registry_limits: the registry's bounds (docs/registry.md, "Caps and the map"), against the
real router, statsd and ingress-onion with small settings:
  * tokens per id, groups per id and members per group are capped; a request over a cap
    changes nothing and is answered STATUS_LIMIT, which the app sees as "Invalid parameter";
  * registrations stop once the LMDB map passes router.map_full_percent, with a loud log line;
    notifies and results go on; the map's use shows in /metrics."""
import json, os, socket, sys, time, urllib.request
from lib import frames as F
from lib.harness import Checks, Pipeline

LIMIT = 7
MAP_MB = 2
t = Checks()
p = Pipeline(keep="-k" in sys.argv)
sock_path = os.path.join(p.dir, "run", "router.sock")


def idn(i):
    return "bd" + f"{i:064x}"


class Ingress:
    def __init__(self):
        self.s = F.connect(sock_path, F.ROLE_INGRESS, instance="limits")
        self.s.settimeout(10)
        self.next = 1

    def send(self, ftype, fields):
        fid = self.next
        self.next += 1
        self.s.send(F.encode(ftype, fid, fields))
        return fid

    def replies(self, fids):
        """{fid: status} for every fid."""
        got = {}
        while len(got) < len(fids):
            for rtype, rid, rf in F.decode_all(self.s.recv(1 << 20)):
                got[rid] = F.field(rf, F.TAG_STATUS, None) if rtype == F.REPLY else rf
        return got

    def request(self, ftype, fields):
        fid = self.send(ftype, fields)
        return self.replies([fid])[fid]


def register(ing, i, token, groups=()):
    return ing.request(F.REGISTER, [(F.TAG_ID, idn(i)), (F.TAG_TOKEN, token), (F.TAG_DEVICE, F.ANDROID)] +
                       [(F.TAG_GROUP, idn(g)) for g in groups])


def metrics():
    with urllib.request.urlopen(f"http://127.0.0.1:{p.stats_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("pushpipe_registry_map_"):
            name, v = line.rsplit(" ", 1)
            out[name.split("{")[0]] = float(v)
    return out


try:
    with open(p.config) as f:
        cfg = json.load(f)
    cfg["router"].update(map_size_mb=MAP_MB, max_tokens_per_id=3, max_groups_per_id=4, max_group_members=5,
                         map_warn_percent=60, map_full_percent=80)
    with open(p.config, "w") as f:
        json.dump(cfg, f, indent=2)
    p.start("statsd")
    p.start("router")
    p.start("ingress-onion")
    p.wait_for(p.ingress_up, "ingress listening")
    p.wait_ingress_linked()
    ing = Ingress()

    # --- caps ---
    t.check([register(ing, 1, f"cap-token-{k}") for k in range(3)] == [F.OK] * 3, "three tokens for one id")
    t.check(register(ing, 1, "cap-token-3") == LIMIT, "a fourth token for it: STATUS_LIMIT")
    t.check(register(ing, 1, "cap-token-2") == F.OK, "re-registering one it holds is fine")
    t.check([ing.request(F.SUBSCRIBE, [(F.TAG_GROUP, idn(100 + g)), (F.TAG_ID, idn(1))]) for g in range(4)] == [F.OK] * 4,
            "four groups for one id")
    t.check(ing.request(F.SUBSCRIBE, [(F.TAG_GROUP, idn(104)), (F.TAG_ID, idn(1))]) == LIMIT,
            "a fifth group for it: STATUS_LIMIT")
    t.check(register(ing, 2, "member-2", groups=[100 + g for g in range(5)]) == LIMIT,
            "a registration with five groups: STATUS_LIMIT...")
    t.check(ing.request(F.UNREGISTER, [(F.TAG_TOKEN, "member-2")]) == F.NOT_FOUND, "...and its token was not kept")
    members = [ing.request(F.SUBSCRIBE, [(F.TAG_GROUP, idn(100)), (F.TAG_ID, idn(10 + m))]) for m in range(4)]
    t.check(members == [F.OK] * 4, "a group filled to five members")
    t.check(ing.request(F.SUBSCRIBE, [(F.TAG_GROUP, idn(100)), (F.TAG_ID, idn(20))]) == LIMIT,
            "a sixth member: STATUS_LIMIT")
    rc, out = p.pushctl("register", "token=cap-token-9", f"pubKey={idn(1)}", "device=android")
    t.check('"message": "Invalid parameter"' in out, "the app is told Invalid parameter (not the retryable Server busy): " + out)
    t.check("registration refused: too many" in p.log("router"), "the router logs the refusal")

    # --- a full map ---
    sender = F.connect(os.path.join(p.dir, "run", "router-sender.sock"), F.ROLE_SENDER, F.ANDROID, "limits")
    sender.settimeout(0.3)
    big = "T" * 1000
    n, statuses, start = 0, [], time.time()
    while time.time() - start < 60:
        fids = [ing.send(F.REGISTER, [(F.TAG_ID, idn(1000 + n + k)), (F.TAG_TOKEN, f"{big}-{n + k}"),
                                      (F.TAG_DEVICE, F.ANDROID)]) for k in range(10)]
        got = ing.replies(fids)
        n += 10
        statuses += [got[f] for f in fids]
        if LIMIT in statuses:
            break
        time.sleep(0.02)
    t.check(LIMIT in statuses, f"registrations stop with STATUS_LIMIT once the {MAP_MB} MiB map passes 80 % ({n} sent)")
    t.check(statuses.count(F.OK) > 500, f"...after {statuses.count(F.OK)} were taken")
    t.check(F.ERROR not in statuses, "no registration failed with a store error on the way")
    log = p.log("router")
    t.check("REGISTRY MAP" in log and "raise router.map_size_mb" in log, "a loud log line before it is full")
    t.check(register(ing, 999999, "one-more") == LIMIT, "a new registration is still refused")

    # Notifies and results go on.
    ok, delivered = 0, 0
    for k in range(30):
        if ing.request(F.NOTIFY, [(F.TAG_ID, idn(1000 + k)), (F.TAG_DATA, "ZGF0YQ==" * 50)]) == F.OK:
            ok += 1
        end = time.time() + 2
        while time.time() < end:
            try:
                buf = sender.recv(1 << 20)
            except socket.timeout:
                continue
            jobs = [fid for ftype, fid, _ in F.decode_all(buf) if ftype == F.PUSH]
            for fid in jobs:
                sender.send(F.encode(F.RESULT, fid, [(F.TAG_OUTCOME, F.DELIVERED)]))
            delivered += len(jobs)
            if jobs:
                break
    t.check(ok == 30, f"notifies to registered ids are accepted on a full map ({ok} of 30)")
    t.check(delivered == 30, f"...their jobs reach the sender and its results are taken ({delivered})")
    t.check(ing.request(F.UNREGISTER, [(F.TAG_TOKEN, f"{big}-0")]) == F.OK, "unregistering still works")

    def gauges():
        try:
            m = metrics()
        except OSError:
            return None
        return m if "pushpipe_registry_map_size_bytes" in m and "pushpipe_registry_map_used_bytes" in m else None
    p.wait_for(lambda: gauges() is not None, "the map gauges in /metrics")
    m = gauges()
    t.check(m["pushpipe_registry_map_size_bytes"] == MAP_MB << 20, f"/metrics: map size {m}")
    t.check(m["pushpipe_registry_map_used_bytes"] >= 0.75 * (MAP_MB << 20),
            f"/metrics: map use shows it nearly full ({m['pushpipe_registry_map_used_bytes']:.0f} bytes)")
except Exception as e:  # a crash is a failure, with the logs
    t.check(False, f"exception: {e!r}")
    print(p.logs())
finally:
    p.stop()
sys.exit(t.done())
