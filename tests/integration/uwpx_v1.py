"""UWPX protocol version 1 (docs/uwpx.md) end to end with the real daemons: set_channel_uri with
version 1 is answered with version 1; set_accounts with bare JIDs, in the bare_jid spelling and
the earlier bareJid one (and both in one request), is answered in the spelling it used; the
account ids derived from the JIDs are the v2 client's, so a device moving between the two forms
keeps its nodes and secrets; a version-2 set_accounts stays an error; a publish to a node handed
out in version 1 reaches the mock WNS with the v2 account id."""
import hashlib, json, os, socket, sys, time
from lib import frames as F
from lib.harness import Checks, Pipeline, waited
from lib.uwpx_client import pipeline_uwpx

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
p.DAEMONS = ["statsd", "router", "ingress-uwpx", "wns-sender"]
uwpx = pipeline_uwpx(p)
DEV = "b5facd81c7ac2efc96d7bf09d33c7aff9e3bea9ebd236db28a074d55437f62cd"
ALICE, BOB = "alice@example.org", "bob@example.org"


def acc(jid):
    return hashlib.sha256((DEV + jid).encode()).hexdigest()


def publish(node, secret, count=1):
    return F.xmpp_publish(os.path.join(p.dir, "run", "router.sock"), node, secret, count=count)


try:
    t.check(acc(ALICE) == "f9d4bb421963be0703134afcff4760790da19bbec398bdbb591014009074db2a", "the documented account id vector")
    p.start_mock()
    for d in p.DAEMONS:
        p.start(d)

    def uwpx_up():
        try:
            socket.create_connection(("127.0.0.1", p.uwpx_port), timeout=0.2).close()
            return True
        except OSError:
            return False
    p.wait_for(uwpx_up, "ingress-uwpx listening")
    ch = f"https://127.0.0.1:{p.mock_port}/?token=v1chan"
    box = {}
    waited(lambda: box.update(r=uwpx({"version": 1, "action": "set_channel_uri", "device_id": DEV, "channel_uri": ch}))
           or (box["r"] or {}).get("status") == 1)
    t.check(box.get("r") == {"action": "response", "status": 1, "version": 1}, f"set_channel_uri v1 → version-1 success {box.get('r')}")
    r = uwpx({"version": 1, "action": "set_channel_uri", "device_id": DEV, "channel_uri": "https://evil.example/?token=x"})
    t.check(r == {"action": "response", "error": "Invalid channel URI. Has to use the domain 'notify.windows.com'.",
                  "status": 0, "version": 1}, f"a v1 set_channel_uri error is version 1 too {r}")

    # Version 1, bare_jid spelling.
    r = uwpx({"version": 1, "action": "set_accounts", "device_id": DEV, "accounts": [{"bare_jid": ALICE}]})
    a = (r.get("accounts") or [{}])[0]
    t.check(r.get("status") == 1 and r.get("version") == 1 and r.get("push_bare_jid") == "push.localhost"
            and set(r) == {"accounts", "action", "push_bare_jid", "status", "version"}
            and set(a) == {"bare_jid", "node", "secret"} and a.get("bare_jid") == ALICE,
            f"set_accounts v1 (bare_jid) → version-1 reply with bare_jid, node, secret, push_bare_jid {r}")
    node, secret = a.get("node", ""), a.get("secret", "")
    t.check(len(node) == 24 and node.isalnum() and len(secret) == 24, "a node and secret for alice")

    # The same device in version 2, account id computed as the client does: same node and secret.
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV, "accounts": [{"account_id": acc(ALICE)}]})
    a2 = (r.get("accounts") or [{}])[0]
    t.check(r.get("version") == 2 and a2.get("account_id") == acc(ALICE) and a2.get("node") == node and a2.get("secret") == secret
            and a2.get("success") is True, f"v1 → v2: the device keeps alice's node and secret {r}")

    # Back to version 1 in the earlier spelling, with a second account.
    r = uwpx({"version": 1, "action": "set_accounts", "device_id": DEV, "accounts": [{"bareJid": ALICE}, {"bareJid": BOB}]})
    accs = r.get("accounts") or []
    t.check(r.get("version") == 1 and r.get("push_bareJid") == "push.localhost" and "push_bare_jid" not in r
            and [x.get("bareJid") for x in accs] == [ALICE, BOB] and all("bare_jid" not in x for x in accs),
            f"bareJid request → bareJid / push_bareJid reply {r}")
    t.check(accs and accs[0].get("node") == node and accs[0].get("secret") == secret, "v2 → v1: alice keeps her node and secret")
    bob = accs[1] if len(accs) > 1 else {}
    t.check(bob.get("node") and bob.get("node") != node, "bob gets a node of his own")

    # Mixed spellings in one request: each account answered as it came.
    r = uwpx({"version": 1, "action": "set_accounts", "device_id": DEV, "accounts": [{"bare_jid": BOB}, {"bareJid": ALICE}]})
    accs = r.get("accounts") or [{}, {}]
    t.check(r.get("push_bare_jid") == "push.localhost" and accs[0].get("bare_jid") == BOB and accs[1].get("bareJid") == ALICE
            and accs[0].get("node") == bob.get("node") and accs[1].get("node") == node,
            f"mixed spellings: per-account spelling, same nodes {r}")
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV,
              "accounts": [{"account_id": acc(ALICE)}, {"account_id": acc(BOB)}]})
    t.check([x.get("node") for x in r.get("accounts", [])] == [node, bob.get("node")], "and version 2 sees both the same")

    # A version-2 set_accounts stays an error, and changes nothing.
    r = uwpx({"version": 2, "action": "set_accounts", "device_id": DEV, "accounts": [{"bare_jid": ALICE}]})
    t.check(r == {"action": "response", "error": "Malformed JSON.", "status": 0, "version": 2}, f"set_accounts v2 → Malformed JSON. {r}")
    r = uwpx({"version": 1, "action": "set_accounts", "device_id": DEV, "accounts": [{"bare_jid": ALICE + "/phone"}]})
    t.check(r == {"action": "response", "error": "Invalid JSON message.", "status": 0, "version": 1}, f"a full JID is refused {r}")

    # A publish to the node handed out in version 1 wakes the device with the v2 account id.
    t.check(publish(node, secret, count=5) == F.OK, "publish to alice's node accepted")
    want = json.dumps({"account_id": acc(ALICE), "action": "push", "message_count": 5, "pending_subscription_count": 0,
                       "version": 2}, separators=(",", ":"))
    t.check(waited(lambda: any(x["provider"] == "wns" and x["body"] == want and x["path"].endswith("token=v1chan")
                               for x in p.requests())), "the raw notification reaches the mock WNS: " + want)

    # Removing alice in version 1 removes her node.
    r = uwpx({"version": 1, "action": "set_accounts", "device_id": DEV, "accounts": [{"bare_jid": BOB}]})
    t.check(r.get("status") == 1 and publish(node, secret) == F.NOT_FOUND, "an account left out in version 1 loses its node")
    log = p.log("ingress-uwpx") + p.log("router")
    t.check(secret not in log, "no secret in the logs")
except Exception as e:
    t.check(False, f"uwpx v1 test raised {e!r}")
finally:
    if t.failed:
        print(p.logs())
    p.stop()
sys.exit(t.done())
