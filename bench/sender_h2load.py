"""apns-sender against h2load, same mock provider, same run (issue target: ≥ 0.8).

The sender alone: bench/sender_feed plays the router and keeps 1000 jobs in flight; the
apns-sender (2 connections × up to 500 streams, as configured by default) delivers them to
the mock provider. The baseline: h2load (Debian nghttp2-client) replays the very request the
sender made — same path, headers, provider token and body, taken from the mock's record —
with the same 2 connections and 500 streams each. Both are counted as answered requests per
second, each over N requests (the clocks include each side's connection set-up). The two
alternate for ROUNDS rounds against the same mock, so a busy moment of the machine falls on
one round rather than on one side; the figures reported are each round's, and the median
ratio. Also reports the sender's resident and anonymous memory after its last round.
Prints "name value" pairs on one line."""
import json, os, re, resource, statistics, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from lib.harness import BIN, Pipeline  # noqa: E402

N = int(os.environ.get("BENCH_SENDER_N", "150000"))
ROUNDS = int(os.environ.get("BENCH_SENDER_ROUNDS", "5"))


def cpu_s(pid):
    """User + system CPU seconds of a live process so far."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def provider_token(p):
    """The ES256 provider token, rebuilt the way the sender builds it (same key): the mock
    records the Authorization header in full only for its auth checks."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    import base64
    cfg = json.load(open(p.config))["apns_sender"]
    key = serialization.load_pem_private_key(open(cfg["key_file"], "rb").read(), None)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    head = b64(json.dumps({"alg": "ES256", "kid": cfg["key_id"]}).encode())
    claims = b64(json.dumps({"iss": cfg["team_id"], "iat": int(time.time())}).encode())
    r_, s_ = utils.decode_dss_signature(key.sign(f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{head}.{claims}.{b64(r_.to_bytes(32, 'big') + s_.to_bytes(32, 'big'))}"


def sender_round(p, out):
    """One apns-sender run of N jobs; its deliveries per second."""
    sock = os.path.join(p.dir, "run", "router-sender.sock")
    os.makedirs(os.path.dirname(sock), exist_ok=True)
    feed = subprocess.Popen([os.path.join(BIN, "sender_feed"), sock, "1", TOKEN, str(N), "1000"],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    p.start("apns-sender")
    pids = (("sender", p.procs["apns-sender"].pid), ("mock", p.procs["mock-provider"].pid))
    cpu0 = {n: cpu_s(pid) for n, pid in pids}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    fo, _ = feed.communicate(timeout=300)
    wall = time.time() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the feed, reaped just now
    # Cores each process kept busy while the sender ran (the last round's are reported).
    for n, pid in pids:
        out[f"cpu_{n}"] = f"{(cpu_s(pid) - cpu0[n]) / wall:.2f}"
    out["cpu_feed"] = f"{(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall:.2f}"
    w = fo.split()
    res = {w[i]: w[i + 1] for i in range(0, len(w) - 1, 2)}
    st = open(f"/proc/{p.procs['apns-sender'].pid}/status").read()
    out["sender_rss_kb"] = re.search(r"VmRSS:\s+(\d+)", st).group(1)
    out["sender_anon_kb"] = re.search(r"RssAnon:\s+(\d+)", st).group(1)
    p.kill("apns-sender")
    return float(res.get("per_s", "0"))


def h2load_round(p, args, out):
    """One h2load run of N requests replaying the sender's; its answered requests per second."""
    base = len(p.requests())
    h = subprocess.run(["h2load", "-n", str(N), "-c", "2", "-m", "500", *args],
                       capture_output=True, text=True, timeout=300)
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", h.stdout)
    ok = re.search(r"status codes: (\d+) 2xx", h.stdout)
    if not m:
        print(h.stdout[-2000:], h.stderr[-2000:], file=sys.stderr)
        return 0.0
    out["h2load_2xx"] = str(min(int(out.get("h2load_2xx", N)), int(ok.group(1)) if ok else 0))
    time.sleep(0.2)
    auth = all(r.get("auth_ok") for r in p.requests()[base:base + 100])
    out["h2load_auth_ok"] = str(auth and out.get("h2load_auth_ok", "True") == "True")
    return float(m.group(3))


TOKEN = "d4" * 32
p = Pipeline()
out = {}
try:
    p.start_mock()
    senders, h2loads = [], []
    args = None
    for _ in range(ROUNDS):
        senders.append(sender_round(p, out))
        if args is None:
            rec = next(r for r in p.requests() if r["provider"] == "apns")
            body = os.path.join(p.dir, "body.json")
            open(body, "w").write(rec["body"])
            args = ["-d", body, "-H", f"authorization: bearer {provider_token(p)}"]
            for k, v in rec["headers"].items():
                if not (k.startswith(":") or k in ("content-length", "authorization")):
                    args += ["-H", f"{k}: {v}"]
            args.append(f"https://127.0.0.1:{p.mock_port}{rec['path']}")
        h2loads.append(h2load_round(p, args, out))
    ratios = [s / h if h else 0.0 for s, h in zip(senders, h2loads)]
    out["requests_per_round"] = str(N)
    out["rounds"] = str(ROUNDS)
    out["sender_per_s"] = "/".join(f"{s:.0f}" for s in senders)
    out["h2load_per_s"] = "/".join(f"{h:.0f}" for h in h2loads)
    out["round_ratios"] = "/".join(f"{r:.2f}" for r in ratios)
    out["sender_median_per_s"] = f"{statistics.median(senders):.0f}"
    out["h2load_median_per_s"] = f"{statistics.median(h2loads):.0f}"
    out["ratio"] = f"{statistics.median(ratios):.2f}"
finally:
    p.stop()
print(" ".join(f"{k} {v}" for k, v in out.items()))
