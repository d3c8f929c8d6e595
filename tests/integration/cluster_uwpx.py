"""UWPX and XMPP in cluster mode (docs/cluster.md "UWPX and XMPP"): three nats-server nodes, two
routers (each its own LMDB), ingress-uwpx, ingress-xmpp (against a fake XMPP server) and
wns-sender on the bus, the mock provider as WNS. set_channel_uri and set_push_accounts are
registry changes: the router that takes one draws the push nodes and secrets and carries their
seed in the change, so every copy stores the same. A router is killed with SIGKILL in between:
the other answers from its copy with the same node and secret; the killed one comes back and
catches up; both routers' UWPX tables (devices, links, nodes, identities) dump identically.
XEP-0357 publishes are checked by whichever router takes them and reach the mock WNS as the
device's raw notification; a wrong secret is refused. A Huawei registration through
ingress-onion is delivered by hms-sender from its own jobs consumer (jobs-hms-default).
Then, with two routers and two wns-senders: a WNS 406 backs the channel off in both copies and
only the newest of the publishes made meanwhile reaches WNS after X-WNS-CONTINUE-AFTER (the
others superseded in both copies); the 200 of that send ends the run of 406s; a node's domain
is bound by its first publish; test pushes refresh their device while the expiry sweep removes
a device nothing refreshed; both copies, the cluster_x table included, dump identically."""
import json, os, signal, socket, subprocess, sys, time
from lib.harness import Checks
from lib.cluster_env import Cluster
from lib.uwpx_client import uwpx as uwpx_raw
from lib.xmpp_fakes import FakeXmppServer, error_of, form_values

DEV = "b5facd81c7ac2efc96d7bf09d33c7aff9e3bea9ebd236db28a074d55437f62cd"
DEV2 = "c6" * 32
ACC = "f9d4bb421963be0703134afcff4760790da19bbec398bdbb591014009074db2a"
ACC2 = "0" * 63 + "1"
FCM_TOKEN = "fcmXmppClusterTok:APA91b-q"
HW = "IQAAAACy0clusterHuaweiToken" + "x" * 40
BID = "bd" + "7" * 64
TABLES = ("udev", "ulink", "xnodes", "xident")


def publish_iq(node, secret, iq_id, frm="localhost"):
    return ("<iq id='%s' type='set' from='%s' to='push.localhost'>"
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='%s'><item>"
            "<notification xmlns='urn:xmpp:push:0'><x type='form' xmlns='jabber:x:data'>"
            "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:push:summary</value></field>"
            "<field var='message-count' type='text-single'><value>1</value></field>"
            "</x></notification></item></publish><publish-options><x type='submit' xmlns='jabber:x:data'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
            "<field var='secret'><value>%s</value></field></x></publish-options></pubsub></iq>" % (iq_id, frm, node, secret))


def dump(db):
    """The UWPX tables of a router's LMDB (mdb_dump, lmdb-utils), or None."""
    out = []
    for tb in TABLES:
        r = subprocess.run(["mdb_dump", "-p", "-s", tb, db], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return None
        out.append(r.stdout)
    return out


t = Checks()
c = Cluster(keep="-k" in sys.argv)
fx = FakeXmppServer()
try:
    c.start_mock()
    for i in range(3):
        c.start_nats(i)
    db1, db2 = os.path.join(c.dir, "db", "r1"), os.path.join(c.dir, "db", "r2")
    r1 = c.conf("router-1", "router", router={"db_path": db1})
    r2 = c.conf("router-2", "router", router={"db_path": db2})
    iu = c.conf("ingress-uwpx", "ingress")
    ix = c.conf("ingress-xmpp", "ingress", ingress_xmpp={"server": f"127.0.0.1:{fx.port}"})
    ws = c.conf("wns-sender", "sender-wns-default")
    fs = c.conf("fcm-sender", "sender-fcm-default")
    hs = c.conf("hms-sender", "sender-hms-default")
    io = c.conf("ingress-onion", "ingress")
    c.start_c("router-1", "router", r1)
    c.start_c("router-2", "router", r2)
    c.start_c("ingress-uwpx", "ingress-uwpx", iu)
    c.start_c("ingress-xmpp", "ingress-xmpp", ix)
    c.start_c("wns-sender", "wns-sender", ws)
    c.start_c("fcm-sender", "fcm-sender", fs)
    c.start_c("hms-sender", "hms-sender", hs)
    c.start_c("ingress-onion", "ingress-onion", io)
    conn = fx.accept()
    ok, detail = conn.handshake(open(os.path.join(c.dir, "keys", "component.secret")).read().strip(), "push.localhost") \
        if conn else (False, "ingress-xmpp did not connect")
    t.check(ok, "ingress-xmpp authenticated with the fake XMPP server: " + detail)

    def xpublish(node, secret, iq_id, frm="localhost"):
        conn.send(publish_iq(node, secret, iq_id, frm))
        r = conn.recv(timeout=15)
        return r is not None and r.get("id") == iq_id, r
    c.wait_for(lambda: all("registry copy at change" in c.log(r) for r in ("router-1", "router-2")),
               "both routers on the bus", timeout=30)

    def up():
        try:
            socket.create_connection(("127.0.0.1", c.uwpx_port), timeout=0.2).close()
            return True
        except OSError:
            return False
    c.wait_for(up, "ingress-uwpx listening")
    ca = os.path.join(c.dir, "mock", "ca.pem")
    uwpx = lambda m: uwpx_raw(c.uwpx_port, ca, m) or {}
    chan = lambda tok: f"https://127.0.0.1:{c.mock_port}/?token={tok}"
    wns = lambda tok: [r for r in c.requests() if r["provider"] == "wns" and r["path"].endswith("token=" + tok)]

    c.wait_for(lambda: uwpx({"version": 2, "action": "set_channel_uri", "device_id": DEV, "channel_uri": chan("ch1")})
               .get("status") == 1, "set_channel_uri answered through the bus", timeout=20)
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV,
              "accounts": [{"account_id": ACC}, {"account_id": ACC2}]})
    accs = r.get("accounts", [])
    t.check(r.get("status") == 1 and [a["account_id"] for a in accs] == [ACC, ACC2] and all(a["success"] for a in accs)
            and all(len(a["node"]) == 24 and a["node"].isalnum() and len(a["secret"]) == 24 for a in accs),
            f"set_push_accounts in cluster mode: a node and secret for both accounts ({r.get('status')})")
    node, secret = (accs[0]["node"], accs[0]["secret"]) if accs else ("", "")

    got, r = xpublish(node, secret, "pub1")
    t.check(got and r.get("type") == "result", "an XEP-0357 publish answered result in cluster mode")
    try:
        c.wait_for(lambda: any(ACC in q["body"] for q in wns("ch1")), "the publish at the mock WNS", timeout=20)
    except RuntimeError as e:
        print(e)
    t.check(any('"action":"push"' in q["body"] and ACC in q["body"] for q in wns("ch1")),
            "the publish reached the device's channel at the mock WNS (through PP_JOBS and wns-sender)")
    got, r = xpublish(node, "X" * 24, "pub2")
    t.check(got and r.get("type") == "error" and error_of(r) == ("auth", "forbidden"),
            f"a publish with a wrong secret is refused (forbidden) ({error_of(r) if got else None})")

    # XEP-0050: an FCM registration is a registry change (its node and secret drawn from the
    # change's seed); a publish to its node becomes an FCM job.
    conn.send("<iq type='set' id='reg1' from='alice@example.org/conv' to='push.localhost'>"
              "<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='execute'>"
              "<x xmlns='jabber:x:data' type='submit'><field var='token'><value>%s</value></field>"
              "<field var='device-id'><value>92afd7a91cdba9a0</value></field></x></command></iq>" % FCM_TOKEN)
    r = conn.recv(timeout=15)
    vals = form_values(r) if r is not None else {}
    t.check(r is not None and r.get("type") == "result" and vals.get("node") and vals.get("secret"),
            f"an XEP-0050 FCM registration answered with a node and secret in cluster mode ({sorted(vals)})")
    got, r = xpublish(vals.get("node", "-"), vals.get("secret", "-"), "pub-fcm0")
    t.check(got and error_of(r) == ("cancel", "item-not-found"),
            f"a publish to that node from another domain than the registration's: item-not-found ({error_of(r) if got else None})")
    got, r = xpublish(vals.get("node", "-"), vals.get("secret", "-"), "pub-fcm", "example.org")
    t.check(got and r.get("type") == "result", "a publish to the registered FCM node answered result")
    try:
        c.wait_for(lambda: any(q["provider"] == "fcm" and FCM_TOKEN in q["body"] for q in c.requests()),
                   "the FCM push at the mock", timeout=20)
    except RuntimeError as e:
        print(e)
    t.check(any(q["provider"] == "fcm" and FCM_TOKEN in q["body"] for q in c.requests()),
            "the publish reached the mock FCM with the registered token")

    # hms-sender on the bus: a Huawei token's notify becomes a job on pp.job.hms.default.
    c.wait_for(c.ingress_up, "ingress-onion listening")
    rc, out = c.pushctl("register", f"token={HW}", f"pubKey={BID}", "device=huawei")
    t.check(rc == 0 and '"message": "Success"' in out, "register a Huawei token through ingress-onion: " + out)
    rc, out = c.pushctl("notify", f"send_to={BID}", "data=aHVhd2Vp")
    t.check(rc == 0 and '"message": "Success"' in out, "notify to the Huawei token's id: " + out)
    try:
        c.wait_for(lambda: any(q["provider"] == "hms" and HW in q["body"] for q in c.requests()), "the HMS push", timeout=20)
    except RuntimeError as e:
        print(e)
    t.check(any(q["provider"] == "hms" and HW in q["body"] and "aHVhd2Vp" in q["body"] for q in c.requests()),
            "hms-sender delivered the Huawei notify from its jobs consumer (jobs-hms-default)")

    c.kill("router-1", signal.SIGKILL)
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV, "accounts": [{"account_id": ACC}]})
    a = (r.get("accounts") or [{}])[0]
    t.check(r.get("status") == 1 and a.get("node") == node and a.get("secret") == secret,
            "with router-1 killed, the same account keeps its node and secret (the other copy agrees)")
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV2, "accounts": [{"account_id": ACC2}]})
    t.check(r.get("status") == 0, f"set_push_accounts for a device without a channel is refused ({r.get('status')})")
    r = uwpx({"version": 2, "action": "set_channel_uri", "device_id": DEV2, "channel_uri": chan("ch2")})
    t.check(r.get("status") == 1, "set_channel_uri of a second device while router-1 is down")
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV2, "accounts": [{"account_id": ACC}]})
    a2 = (r.get("accounts") or [{}])[0]
    t.check(r.get("status") == 1 and a2.get("success") and a2.get("node") not in ("", None, node),
            "the second device's account gets a node of its own")

    got, r = xpublish(a2.get("node", "-"), a2.get("secret", "-"), "pub3")
    t.check(got and r.get("type") == "result", "a publish for the second device's node, router-1 down")
    try:
        c.wait_for(lambda: wns("ch2"), "the second publish at the mock WNS", timeout=20)
    except RuntimeError as e:
        print(e)
    t.check(len(wns("ch2")) == 1, f"the second device's publish reached its channel once ({len(wns('ch2'))})")
    r = uwpx({"version": 2, "action": "request_test_push", "device_id": DEV2})
    # The mock writes its record every 50 ms: an answer relayed sooner than that after WNS
    # took the push may come before the push's line.
    test_pushed = lambda: any('"action":"test_push"' in q["body"] for q in wns("ch2"))
    try:
        c.wait_for(test_pushed, "the test push in the mock's record", timeout=2)
    except RuntimeError as e:
        print(e)
    t.check(r == {"action": "response", "status": 1, "version": 2} and test_pushed(),
            f"request_test_push answered success after WNS took the test push, router-1 down ({r})")
    # A 410 marks the channel dead in every copy: the next publish is refused recipient-unavailable.
    ctx = __import__("ssl").create_default_context(cafile=os.path.join(c.dir, "mock", "ca.pem"))
    req = __import__("urllib.request").request.Request(
        f"https://127.0.0.1:{c.mock_port}/_mock/faults", method="POST",
        data=b'{"rules": [{"provider": "wns", "token": "/?token=ch2", "count": 1, "status": 410}]}')
    __import__("urllib.request").request.urlopen(req, context=ctx, timeout=5).read()
    r = uwpx({"version": 2, "action": "request_test_push", "device_id": DEV2})
    t.check(r.get("status") == 0, f"a test push that WNS answers 410 is answered failed ({r})")

    def unavailable():
        got, el = xpublish(a2.get("node", "-"), a2.get("secret", "-"), "pub-dead-%f" % time.time())
        return got and error_of(el) == ("wait", "recipient-unavailable")
    try:
        c.wait_for(unavailable, "the dead channel in the routers' copies", timeout=15)
    except RuntimeError as e:
        print(e)
    t.check(unavailable(), "after the 410: a publish to that device is refused recipient-unavailable (wait)")
    c.start_c("router-1", "router", r1)
    c.wait_for(lambda: c.log("router-1").count("registry copy at change") == 2, "router-1 back on the bus", timeout=30)
    r = uwpx({"version": 2, "action": "set_channel_uri", "device_id": DEV, "channel_uri": chan("ch3")})
    t.check(r.get("status") == 1, "set_channel_uri after router-1 came back")
    time.sleep(2.0)  # an idle router checks the stream's last sequence every second
    # A stall: two of the three NATS servers gone, nothing can be stored; a publish is answered
    # with a `wait` error (recipient-unavailable), not left without an answer.
    c.kill_nats("nats-2")
    c.kill_nats("nats-3")
    t0 = time.time()
    got, r = xpublish(node, secret, "pub-stall")
    t.check(got and error_of(r) == ("wait", "recipient-unavailable"),
            f"with the bus stalled a publish gets a wait error ({error_of(r) if got else None}, {time.time() - t0:.1f} s)")
    c.kill("router-1", signal.SIGKILL)
    c.kill("router-2", signal.SIGKILL)
    d1, d2 = dump(db1), dump(db2)
    if d1 != d2:
        print("router-1:", d1, "\nrouter-2:", d2)
    t.check(d1 is not None and d1 == d2 and node in d1[2] and a2.get("node", "-") in d1[2] and "ch3" in d1[0]
            and vals.get("node", "-") in d1[2] and d1[3].count("\n") > 3,
            "both routers' UWPX/XMPP tables (devices, links, nodes, identities) dump identically, with the nodes drawn")

    # --- Part 2: the state of one machine in cluster mode (docs/cluster.md "UWPX and XMPP"),
    # with two routers and two wns-senders: a WNS 406 backs the channel off in every copy and
    # only the newest notification is sent when it ends (the others superseded), the 200 of that
    # send ends the run of 406s, a node's domain is bound by its first publish whichever router
    # takes it, and the device expiry sweep removes a device once, the same in every copy.
    c.start_nats(1)
    c.start_nats(2)
    x_router = {"device_expiry_s": 60}
    r1 = c.conf("router-1x", "router", router=dict(db_path=db1, **x_router), ingress_xmpp={"bind_domain": True})
    r2 = c.conf("router-2x", "router", router=dict(db_path=db2, **x_router), ingress_xmpp={"bind_domain": True})
    c.start_c("router-1", "router", r1)
    c.start_c("router-2", "router", r2)
    c.start_c("wns-sender-2", "wns-sender", ws)
    c.wait_for(lambda: c.log("router-1").count("registry copy at change") == 3 and
               c.log("router-2").count("registry copy at change") == 2, "both routers back on the bus", timeout=60)
    DEV3, DEV4, DEV5 = "d3" * 32, "d4" * 32, "d5" * 32
    t_expiry = time.time()
    c.wait_for(lambda: uwpx({"version": 2, "action": "set_channel_uri", "device_id": DEV5, "channel_uri": chan("ch7")})
               .get("status") == 1, "set_channel_uri after the restart", timeout=30)
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV5, "accounts": [{"account_id": ACC}]})
    a5 = (r.get("accounts") or [{}])[0]
    t.check(r.get("status") == 1 and a5.get("node"), "a device that nothing refreshes (for the expiry sweep)")

    # WNS 406 with X-WNS-CONTINUE-AFTER: 4 s.
    uwpx({"version": 2, "action": "set_channel_uri", "device_id": DEV3, "channel_uri": chan("ch5")})
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV3, "accounts": [{"account_id": ACC}]})
    a3 = (r.get("accounts") or [{}])[0]
    mock_rules = lambda rules: __import__("urllib.request").request.urlopen(__import__("urllib.request").request.Request(
        f"https://127.0.0.1:{c.mock_port}/_mock/faults", method="POST", data=json.dumps({"rules": rules}).encode()),
        context=ctx, timeout=5).read()
    mock_rules([{"provider": "wns", "token": "/?token=ch5", "count": 1, "status": 406, "continue_after": "4"}])

    def xpublish_n(node, secret, iq_id, count, frm="localhost"):
        conn.send(publish_iq(node, secret, iq_id, frm).replace("<value>1</value></field></x></notification>",
                                                               "<value>%d</value></field></x></notification>" % count))
        r = conn.recv(timeout=15)
        return r is not None and r.get("id") == iq_id and r.get("type") == "result"
    t.check(xpublish_n(a3.get("node", "-"), a3.get("secret", "-"), "thr1", 1), "publish 1 accepted (WNS answers it 406)")
    throttled = "throttled (406, 1 in a row): backing off for 4 s (X-WNS-CONTINUE-AFTER)"
    try:
        c.wait_for(lambda: throttled in c.log("router-1") and throttled in c.log("router-2"),
                   "the 406 in both copies", timeout=20)
    except RuntimeError as e:
        print(e)
    t.check(throttled in c.log("router-1") and throttled in c.log("router-2"),
            "the 406 (from either wns-sender) backs the channel off for X-WNS-CONTINUE-AFTER in both routers' copies")
    t406 = max([q["time_ms"] for q in wns("ch5") if q["status"] == 406] or [0])
    oks = [xpublish_n(a3.get("node", "-"), a3.get("secret", "-"), "thr%d" % k, k) for k in (2, 3, 4)]
    t.check(all(oks), "publishes 2, 3 and 4 during the back-off are accepted (whichever router takes them)")
    time.sleep(1.0)
    t.check(len(wns("ch5")) == 1, f"nothing reaches the channel while it backs off ({len(wns('ch5'))} requests)")
    try:
        c.wait_for(lambda: len(wns("ch5")) >= 2, "the newest job after the back-off", timeout=20)
    except RuntimeError as e:
        print(e)
    time.sleep(2.0)
    sent = wns("ch5")
    after = [q for q in sent if q["time_ms"] > t406]
    t.check(len(sent) == 2 and len(after) == 1 and '"message_count":4' in after[0]["body"] and after[0]["status"] == 200,
            "after the back-off exactly one job reaches WNS, the newest (publish 4): "
            f"{[(q['status'], q['body'][-60:]) for q in sent]}")
    t.check(after and after[0]["time_ms"] - t406 >= 3500,
            f"...not before X-WNS-CONTINUE-AFTER's 4 s ({(after[0]['time_ms'] - t406) / 1000 if after else None} s)")
    sup = [[ln for ln in c.log(n).splitlines() if "superseded by job" in ln] for n in ("router-1", "router-2")]
    t.check(all(len(s) == 3 for s in sup), f"both copies supersede the three older jobs ({[len(s) for s in sup]})")
    # The send after the back-off was a 200, which ends the run of 406s in every copy: the next
    # 406 (without X-WNS-CONTINUE-AFTER) is the first of a new run, 60 s, not the second (120 s).
    mock_rules([{"provider": "wns", "token": "/?token=ch5", "count": 1, "status": 406}])
    t.check(xpublish_n(a3.get("node", "-"), a3.get("secret", "-"), "thr5", 5), "publish 5 accepted (WNS answers it 406)")
    try:
        c.wait_for(lambda: len(wns("ch5")) >= 3, "the second 406", timeout=20)
        c.wait_for(lambda: all("(406, 1 in a row): backing off for 60 s" in c.log(n) or
                               "(406, 2 in a row)" in c.log(n) for n in ("router-1", "router-2")),
                   "the second back-off in both copies", timeout=20)
    except RuntimeError as e:
        print(e)
    t.check(all("(406, 1 in a row): backing off for 60 s" in c.log(n) for n in ("router-1", "router-2")) and
            not any("(406, 2 in a row)" in c.log(n) for n in ("router-1", "router-2")),
            "a 200 after a back-off ends the channel's run of 406s in both copies (the next 406 backs off 60 s)")

    # Domain binding on first publish (ingress_xmpp.bind_domain): the first domain binds the
    # node in every copy; publishes from another domain are refused whichever router takes them.
    uwpx({"version": 2, "action": "set_channel_uri", "device_id": DEV4, "channel_uri": chan("ch6")})
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV4, "accounts": [{"account_id": ACC2}]})
    a4 = (r.get("accounts") or [{}])[0]
    got, r = xpublish(a4.get("node", "-"), a4.get("secret", "-"), "bind1", "a.example")
    t.check(got and r.get("type") == "result", "the node's first publish, from a.example, is accepted")
    others = [xpublish(a4.get("node", "-"), a4.get("secret", "-"), "bind-b%d" % k, "b.example") for k in range(4)]
    t.check(all(g and error_of(el) == ("cancel", "item-not-found") for g, el in others),
            f"publishes from b.example are refused item-not-found by both routers ({[error_of(el) for g, el in others]})")
    got, r = xpublish(a4.get("node", "-"), a4.get("secret", "-"), "bind2", "A.example")
    t.check(got and r.get("type") == "result", "a.example (any case) still publishes")

    # A test push refreshes its device (a touch change, as its device's refresh is older than a
    # sixteenth of the expiry); the untouched device is removed by the sweep.
    last_test = [0.0]

    def gone():
        d = dump(db1)
        if d is not None and "d5d5d5d5" not in d[0]:
            return True
        if time.time() - last_test[0] >= 5:
            last_test[0] = time.time()
            uwpx({"version": 2, "action": "request_test_push", "device_id": DEV4})
        time.sleep(0.5)
        return False
    try:
        c.wait_for(gone, "the expiry sweep", timeout=150)
    except RuntimeError as e:
        print(e)
    waited = time.time() - t_expiry
    d1, d2 = dump(db1), dump(db2)
    t.check(d1 is not None and "d5d5d5d5" not in d1[0] and a5.get("node", "-") not in d1[2] and waited >= 60,
            f"the device not refreshed for device_expiry_s is removed with its nodes ({waited:.0f} s)")
    t.check(d1 is not None and "d4d4d4d4" in d1[0], "the device whose test pushes refreshed it is kept")
    exp = [c.log(n).count("UWPX devices expired") for n in ("router-1", "router-2")]
    t.check(all(e >= 1 for e in exp), f"both routers applied the sweep ({exp})")
    time.sleep(2.0)  # an idle router checks the stream's last sequence every second
    c.kill("router-1", signal.SIGKILL)
    c.kill("router-2", signal.SIGKILL)
    d1 = [dump(db1)] + [subprocess.run(["mdb_dump", "-p", "-s", "cluster_x", db1], capture_output=True, text=True).stdout]
    d2 = [dump(db2)] + [subprocess.run(["mdb_dump", "-p", "-s", "cluster_x", db2], capture_output=True, text=True).stdout]
    if d1 != d2:
        print("router-1:", d1, "\nrouter-2:", d2)
    t.check(d1 == d2 and d1[0] is not None and "a.example" in d1[0][2],
            "both routers' UWPX tables and cluster state (back-off, bound domain, sweep) dump identically")
except Exception as e:
    import traceback
    traceback.print_exc()
    t.check(False, f"unexpected error: {e!r}")
finally:
    if t.failed:
        print(c.logs())
    c.stop()
    fx.close()
sys.exit(t.done())
