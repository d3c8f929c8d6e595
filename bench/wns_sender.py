"""wns-sender (libcurl's multi interface, wns-sender/curl_http.c) alone against the mock provider:
bench/sender_feed plays the router and keeps 200 KIND_WNS jobs in flight (the default
2 connections × 100 streams), N jobs a round, ROUNDS rounds, each with a fresh sender (its
token request and connection set-up counted). Reports each round's deliveries per second, the
cores the sender kept busy and its resident memory after the last round, and its idle resident
and private memory before the first. Prints "name value" pairs on one line."""
import json, os, re, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from lib.harness import BIN, Pipeline  # noqa: E402

N = int(os.environ.get("BENCH_WNS_N", "20000"))
ROUNDS = int(os.environ.get("BENCH_WNS_ROUNDS", "3"))


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


p = Pipeline()
out = {"wns_requests_per_round": str(N), "wns_rounds": str(ROUNDS)}
rates, cores = [], []
try:
    p.start_mock()
    m = os.path.join(p.dir, "mock")
    wns = json.load(open(f"{m}/wns.json"))
    secret = os.path.join(p.dir, "keys", "wns.secret")
    with open(secret, "w") as f:
        f.write(wns["client_secret"] + "\n")
    cfg = json.load(open(p.config))
    cfg["wns_sender"] = {"token_url": f"https://127.0.0.1:{p.mock_port}/accesstoken.srf", "ca_file": f"{m}/ca.pem",
                         "client_id": wns["client_id"], "client_secret_file": secret}
    with open(p.config, "w") as f:
        json.dump(cfg, f)
    sock = os.path.join(p.dir, "run", "router-sender.sock")
    os.makedirs(os.path.dirname(sock), exist_ok=True)
    for rnd in range(ROUNDS):
        if rnd == 0:  # idle: started, connected to nothing, for 2 s
            p.start("wns-sender")
            time.sleep(2)
            pid = p.procs["wns-sender"].pid
            r = open(f"/proc/{pid}/smaps_rollup").read()
            g = lambda k: int(re.search(k + r":\s+(\d+)", r).group(1))  # noqa: E731
            out["wns_idle_rss_kb"] = str(g("Rss"))
            out["wns_idle_private_kb"] = str(g("Private_Clean") + g("Private_Dirty"))
            p.kill("wns-sender")
        feed = subprocess.Popen([os.path.join(BIN, "sender_feed"), sock, "4",
                                 f"https://127.0.0.1:{p.mock_port}/?token=bench", str(N), "200"],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        p.start("wns-sender")
        pid = p.procs["wns-sender"].pid
        c0, t0 = cpu_s(pid), time.time()
        fo, _ = feed.communicate(timeout=300)
        wall = time.time() - t0
        cores.append((cpu_s(pid) - c0) / wall)
        w = fo.split()
        res = {w[i]: w[i + 1] for i in range(0, len(w) - 1, 2)}
        rates.append(float(res.get("per_s", "0")) if res.get("delivered") == str(N) else 0.0)
        out["wns_rss_kb"] = re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1)
        p.kill("wns-sender")
    out["wns_per_s"] = "/".join(f"{x:.0f}" for x in rates)
    out["wns_cores"] = "/".join(f"{x:.2f}" for x in cores)
finally:
    p.stop()
print(" ".join(f"{k} {v}" for k, v in out.items()))
