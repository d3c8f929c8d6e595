"""Interop with a real XMPP server, every pushpipe daemon real: Prosody 0.12 + mod_cloud_notify,
ingress-xmpp as its component, ingress-uwpx, the router, wns-sender and fcm-sender, and the mock
provider standing in for WNS and FCM.

1. A UWPX device registers its channel and an account over TLS; alice enables push with the
   returned push JID, node and secret; bob writes to alice while she is offline; the mock WNS
   receives the raw notification with her account id and the counts.
2. A registration with a wrong secret: Prosody gets forbidden (auth) and no push goes out for it.
3. A registration with an unknown node: Prosody gets item-not-found.
4. XEP-0050: a Conversations-style client registers an FCM token with the component, enables push
   with the node and secret it got, and bob's next message reaches the mock FCM as a p2-style
   data message with the account hash."""
import hashlib, json, os, socket, ssl, sys, time
import xml.etree.ElementTree as ET
from lib.harness import Checks, Pipeline
from lib.uwpx_client import pipeline_uwpx
from lib.prosody_peer import ProsodyPeer, XmppClient, ensure_prosody
from lib.xmpp_fakes import form_values

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
p.DAEMONS = ["statsd", "router", "ingress-uwpx", "ingress-xmpp", "wns-sender", "fcm-sender"]
uwpx = pipeline_uwpx(p)
DEV = "b5facd81c7ac2efc96d7bf09d33c7aff9e3bea9ebd236db28a074d55437f62cd"
ACC = "f9d4bb421963be0703134afcff4760790da19bbec398bdbb591014009074db2a"
ACC2 = "0" * 63 + "2"
FCM_TOKEN = "conv-fcm-token:APA91b_xmpp-1"
CMDS = "http://jabber.org/protocol/commands"


def waited(cond, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if cond():
                return True
        except OSError:  # a listener not up yet
            pass
        time.sleep(0.1)
    return False


def wns():
    return [r for r in p.requests() if r["provider"] == "wns" and "token=ch_" in r["path"]]


def fcm():
    return [r for r in p.requests() if r["provider"] == "fcm"]



peer = None
try:
    ok, why = ensure_prosody()
    if not t.check(ok, f"Prosody with mod_cloud_notify available ({why})"):
        raise SystemExit
    secret_file = os.path.join(p.dir, "keys", "component.secret")
    peer = ProsodyPeer(p.dir, comp_secret=open(secret_file).read().strip())
    cfg = json.load(open(p.config))
    cfg["ingress_xmpp"]["server"] = peer.component_server
    cfg["ingress_xmpp"]["domain"] = peer.comp_domain
    json.dump(cfg, open(p.config, "w"), indent=1)
    peer.start()
    p.start_mock()
    for d in p.DAEMONS:
        p.start(d)
    t.check(peer.wait_log("External component successfully authenticated", 20), "Prosody accepted our component")
    # A publish that comes before the component reaches the router is answered "wait"; the
    # steps below need both links up.
    sock = os.path.join(p.dir, "run", "router.sock")
    t.check(waited(lambda: "connected to " + sock in p.log("ingress-xmpp")), "the component reached the router")
    t.check(waited(lambda: uwpx({"version": 2, "action": "set_channel_uri", "device_id": DEV,
                                 "channel_uri": f"https://127.0.0.1:{p.mock_port}/?token=ch_alice"}).get("status") == 1),
            "UWPX set_channel_uri through the router")
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV, "accounts": [{"account_id": ACC}, {"account_id": ACC2}]})
    acc = (r.get("accounts") or [{}])[0]
    node2 = (r.get("accounts") or [{}, {}])[-1].get("node", "")
    t.check(r.get("status") == 1 and r.get("push_bare_jid") == "push.localhost" and acc.get("success"),
            f"UWPX set_push_accounts → push JID, node and secret ({r.get('push_bare_jid')})")
    node, secret = acc.get("node", ""), acc.get("secret", "")

    # 1. UWPX registration used by a real XMPP server.
    with XmppClient(peer.c2s_port, "alice", "alicepw") as alice:
        alice.enable_push(r.get("push_bare_jid"), node, secret, hidden=True)  # UWPX marks its fields hidden
    t.check(peer.wait_log(f"Push notifications enabled for alice@localhost/lab (push.localhost<{node})", 5), "alice enabled push")
    mark = len(peer.log())
    with XmppClient(peer.c2s_port, "bob", "bobpw") as bob:
        bob.message("alice@localhost", "Hello Alice")
    want = json.dumps({"account_id": ACC, "action": "push", "message_count": 1, "pending_subscription_count": 0, "version": 2},
                      separators=(",", ":"))
    t.check(waited(lambda: any(x["body"] == want for x in wns())), "the mock WNS got the raw notification: " + want)
    got = [x for x in wns() if x["body"] == want]
    t.check(got and got[0]["auth_ok"] and got[0]["headers"].get("x-wns-type") == "wns/raw", "with a valid bearer token, wns/raw")
    t.check(peer.wait_log("Sending important push notification for alice@localhost to push.localhost", 5, mark)
            and "Got error" not in peer.log()[mark:], "Prosody got result for the publish")

    # 2 and 3. Wrong secret → forbidden, unknown node → item-not-found, neither pushes anything.
    # (Prosody keys a registration by JID and node: the wrong secret goes with the second node.)
    with XmppClient(peer.c2s_port, "alice", "alicepw", resource="lab2") as alice:
        alice.enable_push("push.localhost", node2, "notTheSecret0000", hidden=True)
    with XmppClient(peer.c2s_port, "alice", "alicepw", resource="lab3") as alice:
        alice.enable_push("push.localhost", "NoSuchNode0000000000000", "whatever00000000", hidden=True)
    before = len(wns())
    mark = len(peer.log())
    with XmppClient(peer.c2s_port, "bob", "bobpw") as bob:
        bob.message("alice@localhost", "Second")
    t.check(peer.wait_log("Got error <auth:forbidden:", 10, mark), "wrong secret: Prosody got forbidden (auth)")
    t.check(peer.wait_log("item-not-found", 10, mark), "unknown node: Prosody got item-not-found")
    time.sleep(1.5)
    t.check(waited(lambda: len(wns()) >= before + 1, 10) and len(wns()) == before + 1,
            f"exactly one more WNS push: the good registration's ({len(wns()) - before})")
    t.check(not any(ACC2 in x["body"] for x in wns()), "nothing pushed for the wrong-secret registration")

    # 4. XEP-0050: register an FCM token with the component, enable push with what it returns.
    with XmppClient(peer.c2s_port, "alice", "alicepw", resource="conv") as alice:
        res = alice.iq("set", f"<command xmlns='{CMDS}' node='register-push-fcm' action='execute'>"
                              "<x xmlns='jabber:x:data' type='submit'>"
                              f"<field var='token'><value>{FCM_TOKEN}</value></field>"
                              "<field var='device-id'><value>92afd7a91cdba9a0</value></field></x></command>", to="push.localhost")
        cmd = res.find(f"{{{CMDS}}}command")
        vals = form_values(res)
        t.check(cmd is not None and cmd.get("status") == "completed" and vals.get("jid") == "push.localhost"
                and vals.get("node") and vals.get("secret"), f"register-push-fcm → completed with jid/node/secret {vals}")
        alice.enable_push(vals.get("jid"), vals.get("node"), vals.get("secret"))
    account = hashlib.sha1(b"alice@localhost\0" + b"92afd7a91cdba9a0").hexdigest()
    with XmppClient(peer.c2s_port, "bob", "bobpw") as bob:
        bob.message("alice@localhost", "Via FCM")

    def fcm_push():
        for x in fcm():
            try:
                m = json.loads(x["body"])["message"]
            except (ValueError, KeyError):
                continue
            if m.get("token") == FCM_TOKEN:
                return m
        return None
    t.check(waited(fcm_push), "the mock FCM got a push for the ad-hoc registration")
    m = fcm_push() or {}
    t.check(m.get("data") == {"account": account} and m.get("android", {}).get("priority") == "HIGH"
            and m.get("android", {}).get("collapse_key") == account[:6] and "notification" not in m,
            f"p2-style data message: account {account}, HIGH, collapse key ({m})")
    def sandboxed(pid):
        st = open(f"/proc/{pid}/status").read()
        return "Seccomp:\t2" in st and "NoNewPrivs:\t1" in st
    unsandboxed = [d for d in p.DAEMONS if not sandboxed(p.procs[d].pid)]
    t.check(not unsandboxed, f"every daemon ran under its seccomp sandbox with no_new_privs {unsandboxed}")
    logs = "".join(p.log(d) for d in p.DAEMONS)
    t.check("Hello Alice" not in logs and "bob@localhost" not in logs and secret not in logs,
            "no message body, sender JID or secret in any pushpipe log")
except SystemExit:
    pass
except Exception as e:  # a broken peer fails the test, with its logs
    t.check(False, f"exception: {e!r}")
finally:
    if t.failed and peer:
        print("--- prosody log (tail)\n" + peer.log()[-4000:])
        print("--- ingress-xmpp log (tail)\n" + p.log("ingress-xmpp")[-3000:])
    p.stop()
    if peer:
        peer.stop()
sys.exit(t.done())
