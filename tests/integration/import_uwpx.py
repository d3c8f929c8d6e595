"""pushctl import-uwpx: a UWPX push server database, built here with the sqlite3 tool (tables
named unlike the originals, found by their columns; a decoy table beside them), moves into a
running pushpipe — devices, channels, nodes and secrets — read-only on the file, idempotent,
invalid rows reported by table and rowid without secrets; then a XEP-0357 publish to an
imported node, sent by an XMPP server to ingress-xmpp, reaches WNS at the mock, and the device
registering again in version 2 keeps its imported nodes."""
import hashlib, json, os, subprocess, sys, time
from lib.harness import BIN, Checks, Pipeline
from lib.uwpx_client import pipeline_uwpx
from xmpp import prosody_publish
from lib.xmpp_fakes import FakeXmppServer, error_of

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
p.DAEMONS = ["statsd", "router", "ingress-uwpx", "ingress-xmpp", "wns-sender"]
uwpx = pipeline_uwpx(p)
DEV1 = "b5facd81c7ac2efc96d7bf09d33c7aff9e3bea9ebd236db28a074d55437f62cd"
DEV2 = "c" * 64
DEV_NONE = "d" * 64
ACC1 = "f9d4bb421963be0703134afcff4760790da19bbec398bdbb591014009074db2a"
ACC2 = "1" * 64
ACC3 = "2" * 64
NODE1, SECRET1 = "ImpNode0000000000000001", "ImpSecret00000000000001"
NODE2, SECRET2 = "ImpNode0000000000000002", "ImpSecret00000000000002"
NODE3, SECRET3 = "ImpNode0000000000000003", "ImpSecret00000000000003"
SECRETS = [SECRET1, SECRET2, SECRET3, NODE1, NODE2, NODE3, "tokimp1", "tokimp2"]
srv = FakeXmppServer()


def q(s):
    return "'" + s.replace("'", "''") + "'"


def sqlite(db, sql):
    r = subprocess.run(["sqlite3", db], input=sql, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("sqlite3: " + r.stderr)


def import_uwpx(db, *opts):
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "import-uwpx", *opts, db],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


try:
    mock = f"https://127.0.0.1:{p.mock_port}/?token="
    db = os.path.join(p.dir, "uwpx_push.db")
    sqlite(db, f"""
CREATE TABLE "Channel Table" (id INTEGER PRIMARY KEY, deviceId TEXT NOT NULL, channelUri TEXT, timeStamp TEXT);
CREATE TABLE PushAccounts (deviceId TEXT, bareJidHash TEXT, domainPart TEXT, node TEXT, secret TEXT);
CREATE TABLE decoy (deviceId TEXT, node TEXT);
INSERT INTO "Channel Table" (deviceId, channelUri, timeStamp) VALUES
  ({q(DEV1.upper())}, {q(mock + 'tokimp1')}, '2024-05-01 10:00:00'),
  ('not-a-device', {q(mock + 'tokimp9')}, '2024-05-01 10:00:00'),
  ({q('e' * 64)}, 'https://evil.example/?token=x', '2024-05-01 10:00:00'),
  ({q(DEV2)}, {q(mock + 'tokimp2')}, '2024-05-02 10:00:00');
INSERT INTO PushAccounts VALUES
  ({q(DEV1)}, {q(ACC1)}, 'example.org', {q(NODE1)}, {q(SECRET1)}),
  ({q(DEV1)}, {q(ACC2)}, 'example.org', {q(NODE2)}, {q(SECRET2)}),
  ({q(DEV2)}, {q(ACC3)}, 'example.net', 'bad-node!', {q(SECRET3)}),
  ({q(DEV_NONE)}, {q(ACC3)}, 'example.net', {q(NODE3)}, {q(SECRET3)}),
  ({q(DEV2)}, 'xyz', 'example.net', {q(NODE3)}, {q(SECRET3)});
INSERT INTO decoy VALUES ('x', 'y');
""")
    before = digest(db)
    with open(p.config) as f:
        cfg = json.load(f)
    cfg["ingress_xmpp"]["server"] = f"127.0.0.1:{srv.port}"
    with open(p.config, "w") as f:
        json.dump(cfg, f, indent=1)
    p.start_mock()
    for d in p.DAEMONS:
        p.start(d)
    conn = srv.accept()
    with open(os.path.join(p.dir, "keys", "component.secret")) as f:
        comp_secret = f.read().strip()
    ok, why = conn.handshake(comp_secret, "push.localhost") if conn else (False, "no connection")
    t.check(ok, f"ingress-xmpp connects to the XMPP server as push.localhost ({why})")
    p.wait_for(lambda: "connected to " + os.path.join(p.dir, "run", "router.sock") in p.log("ingress-xmpp"),
               "ingress-xmpp at the router")
    # Step 4 asks ingress-uwpx, whose first try may come before the router's socket exists.
    p.wait_for(lambda: "connected to " + os.path.join(p.dir, "run", "router.sock") in p.log("ingress-uwpx"),
               "ingress-uwpx at the router")

    # 1. The import: tables found by their columns, invalid rows reported by rowid.
    rc, out, err = import_uwpx(db)
    t.check("devices (table Channel Table): 2 imported or already present, 0 refused by the router, 2 skipped as invalid" in out,
            "two devices imported, two channel rows skipped: " + out.strip())
    t.check("accounts (table PushAccounts): 2 imported or already present, 1 without a device, 0 in conflict, "
            "0 refused by the router, 2 skipped as invalid" in out, "two accounts imported, one without a device, two skipped")
    t.check("Channel Table row 2 skipped: deviceId" in err and "Channel Table row 3 skipped: the channel URI" in err
            and "PushAccounts row 3 skipped: node or secret" in err and "PushAccounts row 5 skipped: bareJidHash" in err
            and "PushAccounts row 4 not stored: its device has no channel" in err,
            "each refused row named by table and rowid:\n" + err)
    t.check(rc == 1, f"exit 1: a valid row (the account without a device) was not stored ({rc})")
    t.check(not any(s in out + err for s in SECRETS) and DEV1 not in out + err, "no node, secret, channel token or device id printed")
    t.check(digest(db) == before, "the database file is untouched (opened read-only)")

    # 2. Idempotent: the same file again changes nothing and says so.
    rc2, out2, err2 = import_uwpx(db, "--channels", "Channel Table", "--accounts", "PushAccounts")
    t.check(out2 == out and rc2 == 1, "a second run (tables named) gives the same counts")
    rc3, out3, err3 = import_uwpx(db, "--accounts", "decoy")
    t.check(rc3 == 1 and "table decoy has not the columns of the accounts table" in err3, "a named table without the columns is refused")

    # 3. A conflicting row: the account already has another node here.
    db2 = os.path.join(p.dir, "conflict.db")
    sqlite(db2, f"""
CREATE TABLE c (deviceId TEXT, channelUri TEXT, timeStamp TEXT);
CREATE TABLE a (deviceId TEXT, bareJidHash TEXT, domainPart TEXT, node TEXT, secret TEXT);
INSERT INTO c VALUES ({q(DEV1)}, {q(mock + 'other')}, '2024-06-01');
INSERT INTO a VALUES ({q(DEV1)}, {q(ACC1)}, 'example.org', 'SomeOtherNode0000000001', {q(SECRET1)});
INSERT INTO a VALUES ({q(DEV2)}, {q(ACC3)}, 'example.net', {q(NODE1)}, {q(SECRET3)});
""")
    rc, out, err = import_uwpx(db2)
    t.check("0 in conflict" not in out and "2 in conflict" in out and "a row 1 not stored: the account has another node" in err
            and "a row 2 not stored" in err, "an account with another node here, and a node taken by another registration: conflicts\n" + out)

    # 4. The imported device registers again in version 2: its imported nodes stay.
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV1, "accounts": [{"account_id": ACC1}, {"account_id": ACC2}]})
    t.check([(a.get("node"), a.get("secret")) for a in r.get("accounts", [])] == [(NODE1, SECRET1), (NODE2, SECRET2)],
            "set_push_accounts after the import hands out the imported nodes and secrets")

    # 5. A XEP-0357 publish from the user's server to an imported node wakes the device through WNS.
    conn.send(prosody_publish(node=NODE1, secret=SECRET1, iq_id="imp-pub-1", frm="example.org"))
    r = conn.recv(timeout=10)
    t.check(r is not None and r.get("type") == "result" and r.get("id") == "imp-pub-1", "the publish is answered with a result")
    want = json.dumps({"account_id": ACC1, "action": "push", "message_count": 1, "pending_subscription_count": 0,
                       "version": 2}, separators=(",", ":"))
    end = time.time() + 15
    while time.time() < end and not any(x["provider"] == "wns" and x["body"] == want for x in p.requests()):
        time.sleep(0.05)
    hits = [x for x in p.requests() if x["provider"] == "wns" and x["body"] == want]
    t.check(len(hits) == 1 and hits[0]["path"] == "/?token=tokimp1" and hits[0]["status"] == 200 and hits[0]["auth_ok"],
            "the raw notification reaches the mock WNS at the imported channel: " + want)
    conn.send(prosody_publish(node=NODE2, secret="WrongSecret", iq_id="imp-pub-2", frm="example.org"))
    r = conn.recv(timeout=10)
    t.check(r is not None and r.get("type") == "error" and error_of(r) == ("auth", "forbidden"),
            f"the imported secret is checked (wrong one: forbidden {error_of(r) if r is not None else None})")
    log = "".join(p.log(d) for d in p.DAEMONS)
    t.check(not any(s in log for s in (SECRET1, SECRET2, "tokimp1")), "no imported secret or channel token in the logs")
except Exception as e:
    t.check(False, f"import-uwpx test raised {e!r}")
finally:
    if t.failed:
        print(p.logs())
    p.stop()
    srv.close()
sys.exit(t.done())
