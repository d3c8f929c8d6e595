"""Cluster benchmark for `make bench` (bench/cluster.sh writes its section of docs/benchmarks.md).

1. make run-cluster on free ports (three nats-server nodes with JetStream, two onion ingresses,
   two routers, two of each sender, statsd, the mock provider; all on this machine).
2. The baseline, on that same bus: bench/nats_bench (admin user) publishes N 200-byte messages
   asynchronously to a fresh R3 work-queue stream, each with its own Nats-Msg-Id, fetches and
   acks them; then both at once (bus_per_s: the rate a message is stored and taken).
3. Cluster end to end: one iOS device registered; N notifies sent by two bench/onion_load runs at
   once, one per ingress (16 connections each, a fresh X25519 key per request); the rate counts
   notifies that reached the mock provider, from the first request to the last delivery.
4. Single-machine end to end in the same run, the same way (the harness's pipeline: one
   ingress-onion, router, apns-sender, statsd; one onion_load with 32 connections).
Prints "name value" pairs on one line."""
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from lib import runcluster_env as cluster_env  # noqa: E402
from lib import nats_raw  # noqa: E402
from lib.harness import Pipeline  # noqa: E402

N = int(os.environ.get("BENCH_CLUSTER_N", "20000"))
BUS_N = int(os.environ.get("BENCH_BUS_N", "100000"))
ID = "bd" + "7" * 64
TOKEN = "d4" * 32
BIN = cluster_env.BIN


def kv(line):
    w = line.split()
    return {w[i]: w[i + 1] for i in range(0, len(w) - 1, 2)}


def cpu_s(pid):
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


GROUPS = ("nats", "ingress-onion", "router", "apns-sender", "statsd", "mock-provider")


def cluster_cpu(c):
    """CPU seconds so far per group of run-cluster's services (nats-1..3 summed, ...)."""
    out = dict.fromkeys(GROUPS, 0.0)
    for svc in os.listdir(os.path.join(c.dir, "service")):
        for g in GROUPS:
            if svc.startswith(g):
                out[g] += cpu_s(c.pid(svc))
    return out


def nats_msgs(c):
    """Messages the three servers received so far (clients and routes, /varz in_msgs summed):
    the servers' work counted in messages, which the machine's other load does not change."""
    n = 0
    for port in c.nats_http:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/varz" % port, timeout=5) as f:
                n += json.load(f).get("in_msgs", 0)
        except (OSError, ValueError):
            pass
    return n


def stream_seqs(c):
    """Last sequence of each stream (from the first server that answers): messages stored so far."""
    for port in c.nats_http:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/jsz?streams=true" % port, timeout=5) as f:
                d = json.load(f)
        except (OSError, ValueError):
            continue
        return {st["name"]: st["state"]["last_seq"] for a in d.get("account_details", [])
                for st in a.get("stream_detail", [])}
    return {}


def deliveries(records, prefixes):
    first = {}
    for r in records:
        if r.get("provider") != "apns" or r.get("status") != 200:
            continue
        try:
            d = json.loads(r.get("body") or "{}").get("ENCRYPTED_DATA") or ""
        except ValueError:
            continue
        if d.split("-")[0] in prefixes and d not in first:
            first[d] = r["time_ms"]
    return first


def load(port, pubkey, n, conns, prefix, tmp, out):
    acks = os.path.join(tmp, "acks-" + prefix)
    r = subprocess.run([os.path.join(BIN, "onion_load"), "-p", str(port), "-k", pubkey, "-n", str(n), "-c", str(conns),
                        "-t", ID, "-o", acks, "-d", prefix], capture_output=True, text=True)
    res = kv(r.stdout)
    t0 = None
    try:
        with open(acks) as f:
            t0 = min(float(line.split()[1]) for line in f) / 1000.0  # wall clock ms
    except (OSError, ValueError):
        pass
    out[prefix] = (int(res.get("ok", 0)), t0)


def e2e(requests, ports, pubkey, tmp, tag, conns):
    """N notifies split over the given ingress ports, at once; the delivered rate."""
    out, threads = {}, []
    for i, port in enumerate(ports):
        t = threading.Thread(target=load, args=(port, pubkey, N // len(ports), conns, "%s%d" % (tag, i), tmp, out))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    ok = sum(v[0] for v in out.values())
    t0 = min(v[1] for v in out.values() if v[1] is not None) if any(v[1] for v in out.values()) else None
    end = time.time() + 180
    first = {}
    while time.time() < end:
        first = deliveries(requests(), set(out))
        if len(first) >= ok:
            break
        time.sleep(0.5)
    if not first or t0 is None:
        return 0, ok, 0
    last = max(first.values()) / 1000.0
    return round(len(first) / (last - t0)), ok, len(first)


res = {"cluster_notifies": N}
c = cluster_env.Cluster(prefix="pp-bench-cluster-")
try:
    c.start()
    admin = nats_raw.read_cred(os.path.join(c.dir, "nats", "admin.cred"))
    nats0, msgs0 = cluster_cpu(c)["nats"], nats_msgs(c)
    r = subprocess.run([os.path.join(BIN, "nats_bench"), "-s", ",".join("nats://127.0.0.1:%d" % p for p in c.nats),
                        "-u", admin[0], "-p", admin[1], "-n", str(BUS_N)], capture_output=True, text=True, timeout=600)
    b = kv(r.stdout)
    # The servers' CPU per message crossing the bus (nats_bench stores and takes 2 x BUS_N).
    res["bus_nats_cpu_us_per_msg"] = "%.0f" % ((cluster_cpu(c)["nats"] - nats0) * 1e6 / (2 * BUS_N))
    res["bus_nats_msgs_per_msg"] = "%.1f" % ((nats_msgs(c) - msgs0) / (2 * BUS_N))
    if r.returncode != 0:
        sys.stderr.write("nats_bench: %s\n" % r.stderr.strip())
    for k in ("publish_per_s", "fetch_ack_per_s", "bus_per_s", "messages"):
        res["bus_" + k] = b.get(k, "n/a")
    if c.demo_registered():
        rc, o = c.pushctl("register", "token=" + TOKEN, "pubKey=" + ID)
        time.sleep(1)
        cpu0, t0, msgs0, seq0 = cluster_cpu(c), time.time(), nats_msgs(c), stream_seqs(c)
        rate, ok, got = e2e(c.requests, [c.http, c.http2], c.pubkey_file, c.tmp, "c", 16)
        cpu1, t1, msgs1, seq1 = cluster_cpu(c), time.time(), nats_msgs(c), stream_seqs(c)
        # Replicated messages stored per notify: requests (PP_REQ) and jobs (PP_JOBS).
        for st, key in (("PP_REQ", "req"), ("PP_JOBS", "jobs")):
            res["cluster_%s_msgs_per_notify" % key] = "%.3f" % ((seq1.get(st, 0) - seq0.get(st, 0)) / max(1, got))
        res["cluster_nats_msgs_per_notify"] = "%.1f" % ((msgs1 - msgs0) / max(1, got))
        res.update(cluster_e2e_per_s=rate, cluster_acked=ok, cluster_delivered=got)
        res["cluster_nats_cpu_us_per_notify"] = "%.0f" % ((cpu1["nats"] - cpu0["nats"]) * 1e6 / max(1, got))
        # Where the two cores went (the load generators' share is the rest), in CPU seconds.
        res["cluster_cpu_wall_s"] = "%.1f" % (t1 - t0)
        for g in GROUPS:
            res["cluster_cpu_" + g.replace("-", "_")] = "%.1f" % (cpu1[g] - cpu0[g])
    else:
        res.update(cluster_e2e_per_s="n/a", cluster_acked=0, cluster_delivered=0)
finally:
    c.stop()

p = Pipeline()
try:
    p.start_all()
    p.wait_for(lambda: p.pushctl("register", f"token={TOKEN}", f"pubKey={ID}")[0] == 0, "registration")
    rate, ok, got = e2e(p.requests, [p.http], p.pubkey_file, p.dir, "s", 32)
    res.update(single_e2e_per_s=rate, single_acked=ok, single_delivered=got)
finally:
    p.stop()
bus = res.get("bus_bus_per_s")
try:
    res["cluster_to_bus_ratio"] = "%.2f" % (float(res["cluster_e2e_per_s"]) / float(bus))
    res["cluster_to_single_ratio"] = "%.2f" % (float(res["cluster_e2e_per_s"]) / float(res["single_e2e_per_s"]))
except (ValueError, TypeError, ZeroDivisionError):
    res["cluster_to_bus_ratio"] = res["cluster_to_single_ratio"] = "n/a"
print(" ".join("%s %s" % (k, v) for k, v in res.items()))
