"""End-to-end benchmark for `make bench`: onion notify → ingress → router (durable job) →
apns-sender → mock provider (HTTP/2 over TLS), on this machine, one run.

1. Throughput: N notifies from bench/onion_load as fast as 32 connections go; the rate is
   notifies that reached the mock per second, from the first request to the last delivery.
2. Latency at a fixed rate (half the legacy-free target unless told): every notify carries its
   own data; the mock records when it received each one (wall clock), onion_load when each was
   acknowledged; accept → provider is the difference, p50 and p99.
3. Idle memory of the whole pipeline: after the load, all daemons idle for 2 s: resident set
   summed, and the pipeline's real footprint (private pages + each shared mapping counted once).
Prints "name value" pairs on one line."""
import json, os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from harness import BIN, Pipeline  # noqa: E402

N = int(os.environ.get("BENCH_E2E_N", "30000"))
RATE = float(os.environ.get("BENCH_E2E_RATE", "6000"))
LAT_N = int(os.environ.get("BENCH_E2E_LAT_N", str(int(RATE * 5))))
ID = "bd" + "5" * 64
TOKEN = "c3" * 32


def kv(line):
    w = line.split()
    return {w[i]: w[i + 1] for i in range(0, len(w) - 1, 2)}


def mock_records():
    return p.requests()


def footprint(pids):
    """Resident set summed over pids, and the pages they occupy together: private pages of
    each, plus each shared file mapping (same inode and offset) counted once."""
    rss = private = 0
    shared = {}
    for pid in pids:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
        key = None
        for line in open(f"/proc/{pid}/smaps"):
            f = line.split()
            if not f[0].endswith(":"):
                key = (f[3], f[4], f[2])  # device, inode, offset
                continue
            if f[0] in ("Private_Clean:", "Private_Dirty:"):
                private += int(f[1])
            elif f[0] in ("Shared_Clean:", "Shared_Dirty:"):
                shared[key + (f[0],)] = max(shared.get(key + (f[0],), 0), int(f[1]))
    return rss, private + sum(shared.values())


p = Pipeline()
out = {}
try:
    p.start_all()
    p.wait_for(lambda: p.pushctl("register", f"token={TOKEN}", f"pubKey={ID}")[0] == 0, "registration")
    time.sleep(0.5)
    base = len(mock_records())
    ing = p.procs["ingress-onion"].pid
    t0 = time.time()
    r = subprocess.run([os.path.join(BIN, "onion_load"), "-p", str(p.http), "-k", p.pubkey_file, "-i", str(ing),
                        "-n", str(N), "-c", "32", "-t", ID], capture_output=True, text=True)
    load = kv(r.stdout)
    p.wait_for(lambda: len(mock_records()) >= base + int(load.get("ok", 0)), "deliveries", timeout=120)
    recs = mock_records()[base:]
    last = max(x["time_ms"] for x in recs) / 1000.0
    out["e2e_notifies"] = len(recs)
    out["e2e_rate_per_s"] = round(len(recs) / (last - t0))
    out["e2e_ack_rate_per_s"] = load.get("rate_per_s")

    # Latency at a fixed rate.
    acks = os.path.join(p.dir, "acks.txt")
    base = len(mock_records())
    r = subprocess.run([os.path.join(BIN, "onion_load"), "-p", str(p.http), "-k", p.pubkey_file, "-i", str(ing),
                        "-n", str(LAT_N), "-c", "32", "-t", ID, "-r", str(RATE), "-o", acks], capture_output=True, text=True)
    ack = {}
    for line in open(acks):
        i, ms = line.split()
        ack["load-" + i] = float(ms)
    p.wait_for(lambda: len(mock_records()) >= base + len(ack), "paced deliveries", timeout=120)
    lat = []
    for x in mock_records()[base:]:
        body = json.loads(x["body"])
        key = body.get("ENCRYPTED_DATA")
        if key in ack:
            lat.append(x["time_ms"] - ack[key])
    lat.sort()
    out["lat_rate_per_s"] = int(RATE)
    out["lat_matched"] = len(lat)
    out["lat_p50_ms"] = round(lat[len(lat) // 2], 1) if lat else -1
    out["lat_p99_ms"] = round(lat[len(lat) * 99 // 100], 1) if lat else -1

    time.sleep(2)
    pids = [pr.pid for n, pr in p.procs.items() if n != "mock-provider"]
    rss, real = footprint(pids)
    out["idle_daemons"] = len(pids)
    out["idle_rss_sum_kb"] = rss
    out["idle_footprint_kb"] = real
finally:
    p.stop()
print(" ".join(f"{k} {v}" for k, v in out.items()))
