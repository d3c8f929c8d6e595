"""POST /get_statistics_data (docs/protocol.md §6.7): auth, filters, flags and the exact
response shape, with rows from statsd and device counts from the router. Then the password
(ingress/onion/onion_stats.h): an Argon2id hash from `pushctl hash-password`; requests without
credentials are not failures; 5 wrong passwords a minute from one source, then 429 for that
source only (sources are 127.0.0.x loopback addresses); one hash check at a time (peak memory
of concurrent wrong passwords); the older sha256: form accepted with a start-up warning; a
malformed hash refused by -n and at start."""
import base64, concurrent.futures, http.client, json, os, subprocess, sys, time
from lib.harness import BIN, Checks, Pipeline

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
ID = "bd" + "8" * 64


def post(body=b"", user="", password=None, method="POST", src=None, auth=None):
    c = http.client.HTTPConnection("127.0.0.1", p.http, timeout=30, source_address=(src, 0) if src else None)
    h = {}
    if password is not None:
        h["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if auth is not None:
        h["Authorization"] = auth
    c.request(method, "/get_statistics_data", body=body, headers=h)
    r = c.getresponse()
    return r.status, dict(r.getheaders()), r.read()


def hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int([line.split()[1] for line in f if line.startswith("VmHWM:")][0])


def with_hash(h, path):
    cfg = json.load(open(p.config))
    cfg["ingress_onion"]["stats_password_hash"] = h
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def password_checks(pw):
    cfg = json.load(open(p.config))
    t.check(cfg["ingress_onion"]["stats_password_hash"].startswith("$argon2id$v=19$m=65536,t=2,p=1$"),
            "the test configuration holds an Argon2id hash from pushctl hash-password")
    # No credentials, or another scheme: 401 with WWW-Authenticate, never counted.
    got = [post(src="127.0.0.2") for _ in range(7)] + [post(src="127.0.0.2", auth="Bearer abc")]
    t.check(all(st == 401 and h.get("WWW-Authenticate") == 'Basic realm="Authentication Required"' for st, h, _ in got),
            f"8 requests without Basic credentials from one source: all 401 with WWW-Authenticate ({[g[0] for g in got]})")
    got = [post(src="127.0.0.2", password=f"wrong{i}") for i in range(5)]
    t.check(all(st == 401 and "WWW-Authenticate" in h for st, h, _ in got),
            f"5 wrong passwords from one source: 401 with WWW-Authenticate each ({[g[0] for g in got]})")
    st, h, b = post(src="127.0.0.2", password="wrong5")
    ra = h.get("Retry-After", "")
    t.check(st == 429 and ra.isdigit() and 1 <= int(ra) <= 60, f"the 6th wrong password from it → 429 with Retry-After ({st}, {ra!r})")
    st, _, _ = post(src="127.0.0.2", password=pw)
    t.check(st == 429, f"that source limited: even the right password → 429, unchecked ({st})")
    st, h, _ = post(src="127.0.0.2")
    t.check(st == 401 and "WWW-Authenticate" in h, f"that source without credentials: still 401 ({st})")
    st, _, _ = post(src="127.0.0.3", password=pw)
    t.check(st == 200, f"another source with the right password → 200 ({st})")

    # Concurrent wrong passwords from 8 sources, 4 workers: one Argon2id check (64 MiB) at a time.
    pid = p.procs["ingress-onion"].pid
    before = hwm_kib(pid)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        got = list(ex.map(lambda i: post(src=f"127.0.0.{10 + i}", password=f"bad{i}"), range(8)))
    grown = (hwm_kib(pid) - before) // 1024
    codes = [g[0] for g in got]
    t.check(all(st in (401, 503) for st in codes) and all(h.get("Retry-After") == "1" for st, h, _ in got if st == 503),
            f"8 concurrent wrong passwords: 401, or 503 with Retry-After while another check runs ({codes})")
    t.check(grown < 48, f"peak memory grew by {grown} MiB (< 48: never two 64 MiB checks at once)")

    # The older unsalted form: accepted, with a warning at start-up.
    import hashlib
    p.kill("ingress-onion")
    legacy = with_hash("sha256:" + hashlib.sha256(pw.encode()).hexdigest(), os.path.join(p.dir, "legacy.json"))
    saved, p.config = p.config, legacy
    p.start("ingress-onion")
    p.config = saved
    p.wait_for(p.ingress_up, "ingress (sha256: hash)")
    p.wait_for(lambda: "connected to " + os.path.join(p.dir, "run", "statsd-query.sock") in p.log("ingress-onion"),
               "ingress connected to statsd again", timeout=30)
    t.check("stats_password_hash is an unsalted SHA-256" in p.log("ingress-onion"), "sha256: hash: warning at start-up")
    st, _, _ = post(src="127.0.0.4", password=pw)
    t.check(st == 200, f"sha256: hash: the right password → 200 ({st})")
    st, _, _ = post(src="127.0.0.4", password=pw + "x")
    t.check(st == 401, f"sha256: hash: a wrong one → 401 ({st})")

    # Malformed hashes: refused by the configuration check and at start.
    for bad in ("sha256:abc", "$argon2id$v=19$m=65536,t=2,p=1$bm90IGEgaGFzaA", "$argon2i$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2E$" + "A" * 43, "plaintext-password"):
        path = with_hash(bad, os.path.join(p.dir, "bad.json"))
        r = subprocess.run([os.path.join(BIN, "ingress-onion"), "-c", path, "-n"], capture_output=True, text=True, timeout=30)
        t.check(r.returncode != 0 and "stats_password_hash" in r.stderr, f"-n refuses the hash {bad[:24]}... ({r.returncode})")
    r = subprocess.run([os.path.join(BIN, "ingress-onion"), "-c", path], capture_output=True, text=True, timeout=30)
    t.check(r.returncode != 0 and "stats_password_hash" in r.stderr, f"and ingress-onion refuses to start with it ({r.returncode})")

    # pushctl hash-password: salted (two runs differ), verifies; an empty password is refused.
    outs = [subprocess.run([os.path.join(BIN, "pushctl"), "hash-password"], input="s3cret\n", capture_output=True, text=True)
            for _ in range(2)]
    t.check(all(o.returncode == 0 and o.stdout.startswith("$argon2id$") for o in outs) and outs[0].stdout != outs[1].stdout,
            "pushctl hash-password: an Argon2id string, salted afresh each run")
    r = subprocess.run([os.path.join(BIN, "pushctl"), "hash-password"], input="", capture_output=True, text=True)
    t.check(r.returncode != 0 and r.stdout == "", "pushctl hash-password: an empty password is refused")


try:
    cfg = json.load(open(p.config))
    cfg["ingress_onion"]["threads"] = 4  # so that hash checks could overlap
    with open(p.config, "w") as f:
        json.dump(cfg, f)
    p.start_mock()
    for d in ("statsd", "router", "ingress-onion"):
        p.start(d)
    p.wait_for(p.ingress_up, "ingress")
    p.wait_for(lambda: "connected to " + os.path.join(p.dir, "run", "statsd-query.sock") in p.log("ingress-onion"),
               "ingress connected to statsd", timeout=30)
    pw = open(os.path.join(p.dir, "keys", "stats.password")).read().strip()
    p.wait_for(lambda: p.pushctl("register", "token=" + "ee" * 32, f"pubKey={ID}")[0] == 0, "router link", timeout=10)
    p.pushctl("register", "token=fcm:stats", f"pubKey={ID}", "device=android")
    p.pushctl("notify", f"send_to={ID}", "data=aGk=")
    p.pushctl("notify", "send_to=bd" + "9" * 64, "data=aGk=")
    time.sleep(1.5)  # statsd commits once a second

    st, h, b = post()
    t.check(st == 401 and b == b"Unauthorized Access" and h.get("WWW-Authenticate") == 'Basic realm="Authentication Required"', f"no auth → 401 ({st})")
    st, _, _ = post(password="wrong")
    t.check(st == 401, "wrong password → 401")
    st, _, _ = post(method="GET", password=pw)
    t.check(st == 405, f"GET → 405 ({st})")
    st, h, b = post(password=pw)
    t.check(st == 200 and h.get("Content-Type") == "application/json" and b.endswith(b"}\n"), f"empty username and empty body → 200 ({st})")
    doc = json.loads(b)
    t.check(b.decode().rstrip("\n") == json.dumps(doc, separators=(",", ":"), sort_keys=True), "compact JSON with sorted keys")
    d = doc["data"]
    t.check(doc["code"] == 0 and d["ios_device_number"] == 1 and d["android_device_number"] == 1 and d["total_bchat_id_number"] == 1,
            f"counts from the registry {d.get('ios_device_number')}/{d.get('android_device_number')}/{d.get('total_bchat_id_number')}")
    rows = d["data"]
    t.check(len(rows) >= 1, "at least the current window")
    row = rows[-1] if rows else {}
    t.check(set(row) == {"android_pn_number", "closed_group_message_number", "deduplicated_1_1_message_number", "end_date",
                         "ios_pn_number", "start_date", "total_message_number", "untracked_message_number"}, f"row keys {sorted(row)}")
    t.check(row.get("total_message_number") == 2 and row.get("deduplicated_1_1_message_number") == 1 and row.get("untracked_message_number") == 1,
            f"message counters {row}")
    st, _, b = post(b'{"ios_pn_number": 0, "android_pn_number": "0", "closed_group_message_number": false, "total_message_number": 0.5}', "admin", pw)
    r2 = json.loads(b)["data"]["data"][-1] if st == 200 else {}
    t.check(st == 200 and not ({"ios_pn_number", "android_pn_number", "closed_group_message_number", "total_message_number"} & set(r2)), f"flags equal to 0 remove their keys ({st})")
    st, _, b = post(b'{"ios_pn_number": 1, "android_pn_number": null}', "", pw)
    t.check(st == 200 and "ios_pn_number" in json.loads(b)["data"]["data"][-1], "non-zero and null flags keep their keys")
    st, h, b = post(b'{"ios_pn_number": "abc"}', "", pw)
    t.check(st == 400 and json.loads(b).get("code") == 1, f"non-integer flag → 400 JSON ({st})")
    st, _, b = post(b'{"start_date": "yesterday"}', "", pw)
    t.check(st == 400, "unparsable start_date → 400")
    st, _, b = post(b'{"end_date": "2001-01-01"}', "", pw)
    t.check(st == 200 and json.loads(b)["data"]["data"] == [], "end_date alone filters (legacy ignored it)")
    st, _, b = post(b'{"start_date": "2999-01-01 00:00:00"}', "", pw)
    t.check(st == 200 and json.loads(b)["data"]["data"] == [], "start_date in the future → no rows")
    st, _, b = post(b'[1]', "", pw)
    t.check(st == 400, "a body that is not an object → 400")
    password_checks(pw)
    p.kill("statsd")
    st, _, _ = post(password=pw)
    t.check(st == 503, f"statsd absent → 503 ({st})")
except Exception as e:
    t.check(False, f"statistics test raised {e!r}")
finally:
    if t.failed:
        print(p.logs())
    p.stop()
sys.exit(t.done())
