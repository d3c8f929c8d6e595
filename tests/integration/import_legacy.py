"""pushctl import-legacy (docs/protocol.md §6.9): a legacy server's SQLite file with valid,
odd and invalid rows is imported into a running router and statsd; the registry and
/get_statistics_data then show exactly what the file meant, and bad rows are reported."""
import base64, http.client, json, os, sqlite3, subprocess, sys, time
from lib.harness import BIN, Checks, Pipeline

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
A, B, C, D = ("bd" + c * 64 for c in "abcd")
G = "bd" + "e" * 64
IOS = "a1" * 32                       # hex, 64 characters: iOS by the token rule
FCM = "fcm-token:APA91b" + "x" * 40   # not hex: Android by the token rule
MOVED = "cc" * 32                     # under two ids: the last row wins


def make_db(path):
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE token_pubkey_table (pubKey TEXT NOT NULL, token TEXT NOT NULL, device TEXT,
                                         legacy_groups_only BOOL DEFAULT 0 NOT NULL);
        CREATE TABLE closed_group_table (closedGroupPublicKey TEXT NOT NULL, pubKey TEXT NOT NULL);
        CREATE TABLE statistics_table (start_date REAL, end_date REAL, ios_pn_number INTEGER,
            android_pn_number INTEGER, total_message_number INTEGER, closed_group_message_number INTEGER,
            untracked_message_number INTEGER, deduplicated_1_1_message_number INTEGER);""")
    rows = [(A, IOS, "ios", 0), (B, FCM, None, 1), (C, "hw-token-1", "huawei", 0), (D, "dd" * 32, "unknown", 0),
            (A, MOVED, "ios", 0), (B, MOVED, "ios", 1),
            ("bd" + "z" * 64, "aa" * 32, "ios", 0),   # not hex: skipped
            ("05" + "1" * 64, "ab" * 32, "ios", 0),   # other prefix: skipped under bchat
            (C, "has space", "android", 0)]           # whitespace in a token: skipped
    db.executemany("INSERT INTO token_pubkey_table VALUES (?,?,?,?)", rows)
    db.executemany("INSERT INTO closed_group_table VALUES (?,?)", [(G, A), (G, B), ("nonsense", A)])
    db.executemany("INSERT INTO statistics_table VALUES (?,?,?,?,?,?,?,?)", [
        (1600000000.5, 1600043200.25, 11, 22, 40, 5, 3, 32),
        (1600043200.25, 1600086400.0, 1, 2, 3, 0, 0, 3),
        (None, 1600086400.0, 9, 9, 9, 9, 9, 9)])  # no start date: skipped
    db.commit()
    db.close()


def export():
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "export"], capture_output=True, text=True)
    return [json.loads(x) for x in r.stdout.splitlines() if x.strip()]


try:
    p.start_mock()
    for d in ("statsd", "router", "ingress-onion"):
        p.start(d)
    p.wait_for(p.ingress_up, "ingress")
    # /get_statistics_data needs the ingress's links to the router and to statsd.
    run = os.path.join(p.dir, "run")
    p.wait_for(lambda: "connected to " + os.path.join(run, "statsd-query.sock") in p.log("ingress-onion"), "ingress links", timeout=30)
    p.wait_ingress_linked(timeout=30)
    legacy = os.path.join(p.dir, "bchat_pn_server.db")
    make_db(legacy)
    os.chmod(legacy, 0o444)  # the import opens it read-only
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "import-legacy", legacy], capture_output=True, text=True, timeout=60)
    print(r.stdout + r.stderr)
    t.check(r.returncode == 0, f"import exits 0 ({r.returncode})")
    t.check("registry: 8 rows imported, 0 refused by the router, 4 skipped as invalid" in r.stdout,
            "6 registrations + 2 subscriptions imported, 4 rows skipped")
    t.check("statistics: 2 rows imported, 1 skipped" in r.stdout, "2 statistics rows imported, 1 skipped")
    t.check("token_pubkey_table row 7 skipped" in r.stderr and "token_pubkey_table row 9 skipped" in r.stderr
            and "closed_group_table row 3 skipped" in r.stderr, "skipped rows are reported by table and rowid")
    t.check("has space" not in r.stderr and IOS not in r.stderr, "no token in the report")

    ex = export()
    by_token = {e["token"]: e for e in ex}
    t.check(by_token.get(IOS, {}).get("id") == A and by_token[IOS]["device"] == "ios", "an iOS row is imported as iOS under its id")
    t.check(by_token.get(FCM, {}).get("device") == "android" and by_token[FCM]["legacy_groups_only"] is True,
            "device NULL: the token rule makes a non-hex token Android; legacy_groups_only kept")
    t.check(by_token.get("hw-token-1", {}).get("device") == "huawei", "huawei rows keep their platform")
    t.check(by_token.get("dd" * 32, {}).get("device") == "ios", "device 'unknown': the token rule applies")
    t.check(by_token.get(MOVED, {}).get("id") == B and sum(1 for e in ex if e["token"] == MOVED) == 1,
            "a token under two ids ends under the last row's id, once")
    t.check(len(ex) == 5, f"exactly the 5 valid tokens are registered ({len(ex)})")

    # The closed group resolves: a notify to it fans out to A's and B's tokens (as jobs).
    rc, out = p.pushctl("notify", f"send_to={G}", "data=aGk=")
    t.check(rc == 0, f"notify to the imported closed group succeeds ({out.strip()[:80]})")

    # Statistics history through /get_statistics_data, bounds kept as imported (whole seconds).
    pw = open(os.path.join(p.dir, "keys", "stats.password")).read().strip()
    c = http.client.HTTPConnection("127.0.0.1", p.http, timeout=10)
    c.request("POST", "/get_statistics_data", body=b'{"start_date": "2020-09-13 12:00:00", "end_date": "2020-09-15 00:00:00"}',
              headers={"Authorization": "Basic " + base64.b64encode(f":{pw}".encode()).decode()})
    resp = c.getresponse()
    body = resp.read()
    rows = json.loads(body)["data"]["data"] if resp.status == 200 else []
    t.check(resp.status == 200 and len(rows) == 2, f"the two imported periods are served ({resp.status}, {len(rows)} rows)")
    if len(rows) == 2:
        r0 = rows[0]
        t.check(r0["ios_pn_number"] == 11 and r0["android_pn_number"] == 22 and r0["total_message_number"] == 40
                and r0["closed_group_message_number"] == 5 and r0["untracked_message_number"] == 3
                and r0["deduplicated_1_1_message_number"] == 32, f"first period's counters {r0}")
        t.check(rows[1]["total_message_number"] == 3, "second period's counters")

    # Importing again changes nothing (registrations are idempotent).
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "import-legacy", legacy], capture_output=True, text=True, timeout=60)
    t.check(r.returncode == 0 and len(export()) == 5, "a second import leaves the same 5 registrations")
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "import-legacy", os.path.join(p.dir, "missing.db")],
                       capture_output=True, text=True, timeout=30)
    t.check(r.returncode != 0 and "missing.db" in r.stderr, "a missing file is a clear error")
finally:
    p.stop()
sys.exit(t.done())
