"""Router side of UWPX and XMPP, played with frames against the real router: a fake ingress
sends the UWPX and XMPP frames, fake wns/fcm/apns senders answer the pushes with chosen
results. Covers nodes and secrets, the publish checks in order, the exact WNS body, dead
channels (410 → recipient-unavailable, queued jobs dropped, revival by a new channel), test-push
answers, ad-hoc registrations and their dead tokens, kill -9 after acknowledged changes, device
expiry, and WNS 406: a channel backing off keeps one pending job, the newest, sent when the
back-off ends, while other channels go on; the back-off and the waiting job survive kill -9."""
import json, os, re, signal, socket, subprocess, sys, time
from lib import frames as F
from lib.harness import BIN, Checks, Pipeline

# Frame numbers beyond frames.py (common/frame.h).
UWPX_CHANNEL, UWPX_ACCOUNTS, UWPX_TEST, NODES = 40, 41, 42, 43
XMPP_PUBLISH, XMPP_REGISTER, XMPP_UNREGISTER = 44, 45, 46
TAG_DEVICE_ID, TAG_URI, TAG_ACCOUNT, TAG_NODE, TAG_SECRET, TAG_DOMAIN = 50, 51, 52, 53, 54, 55
TAG_VERSION, TAG_MSG_COUNT, TAG_PENDING_COUNT, TAG_IDENTITY, TAG_CHANNEL = 56, 57, 58, 59, 60
F.U32.update({TAG_VERSION, TAG_MSG_COUNT, TAG_PENDING_COUNT})
WNS = 4
KIND_BCHAT, KIND_WNS, KIND_XMPP = 1, 2, 3
OK, NOT_FOUND, BUSY, ERROR, FORBIDDEN, UNAVAILABLE, FAILED = 0, 1, 2, 3, 4, 5, 6
F_HIGH = 2

DEV1 = "b5facd81c7ac2efc96d7bf09d33c7aff9e3bea9ebd236db28a074d55437f62cd"
DEV2, DEV3, DEV_OLD = "2" * 64, "3" * 64, "0" * 64
ACC1 = "f9d4bb421963be0703134afcff4760790da19bbec398bdbb591014009074db2a"
ACC2 = "a" * 64
URI1 = "https://db5p.notify.windows.com/?token=AwYAAAD%2bx9%3d"
URI2 = "https://wns2-par02p.notify.windows.com/?token=BQYAAAAG_x"
URI3 = "https://db5p.notify.windows.com/?token=third"
ADHOC_ACC = "575743d57bd2e395071f9f88adce7f8bba664ea2"
ROOM_CH = "30be82eb00f86644993eaeda4c46ecf51c42715c"
ALNUM24 = re.compile(r"^[0-9A-Za-z]{24}$")

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
sock_path = os.path.join(p.dir, "run", "router.sock")
sender_sock = os.path.join(p.dir, "run", "router-sender.sock")
started = time.time()


def try_connect():
    try:
        F.connect(sock_path, F.ROLE_INGRESS).close()
        return True
    except OSError:
        return False


def start_router():
    p.start("router")
    p.wait_for(lambda: os.path.exists(sock_path) and try_connect(), "router socket")


class Ingress:
    def __init__(self):
        self.s = F.connect(sock_path, F.ROLE_INGRESS, instance="test")
        self.next = 1

    def send(self, ftype, fields):
        fid = self.next
        self.next += 1
        self.s.send(F.encode(ftype, fid, fields))
        return fid

    def wait(self, fid, timeout=10.0):
        """(frame type, fields) of the answer to fid, or None when nothing came in time."""
        end = time.time() + timeout
        while time.time() < end:
            self.s.settimeout(max(0.01, end - time.time()))
            try:
                rtype, rid, rf = F.decode(self.s.recv(1 << 20))
            except socket.timeout:
                return None
            if rid == fid:
                return rtype, rf
        return None

    def request(self, ftype, fields, timeout=10.0):
        """The status of a FRAME_REPLY, or the fields of another answer."""
        got = self.wait(self.send(ftype, fields), timeout)
        if got is None:
            return None
        return F.field(got[1], F.TAG_STATUS) if got[0] == F.REPLY else got[1]

    def channel(self, dev, uri):
        return self.request(UWPX_CHANNEL, [(TAG_DEVICE_ID, dev), (TAG_URI, uri)])

    def accounts(self, dev, accs):
        return self.request(UWPX_ACCOUNTS, [(TAG_DEVICE_ID, dev), (TAG_VERSION, 2)] + [(TAG_ACCOUNT, a) for a in accs])

    def publish(self, node, secret, domain="example.org", msgs=1, pending=0, flags=0):
        return self.request(XMPP_PUBLISH, [(TAG_NODE, node), (TAG_SECRET, secret), (TAG_DOMAIN, domain),
                                           (TAG_MSG_COUNT, msgs), (TAG_PENDING_COUNT, pending), (F.TAG_FLAGS, flags)])

    def xregister(self, platform, ident, token, account, channel=None, domain="example.org"):
        f = [(F.TAG_PLATFORM, platform), (TAG_IDENTITY, ident), (F.TAG_TOKEN, token), (TAG_DOMAIN, domain), (TAG_ACCOUNT, account)]
        if channel:
            f.append((TAG_CHANNEL, channel))
        return self.request(XMPP_REGISTER, f)


def groups(fields):
    """FRAME_NODES fields → [(account, node, secret, status)]."""
    if not isinstance(fields, list):
        return None
    acc = [v.decode() for tg, v in fields if tg == TAG_ACCOUNT]
    nodes = [v.decode() for tg, v in fields if tg == TAG_NODE]
    secrets = [v.decode() for tg, v in fields if tg == TAG_SECRET]
    st = [v for tg, v in fields if tg == F.TAG_STATUS]
    order = [tg for tg, _ in fields]
    if order != [TAG_ACCOUNT, TAG_NODE, TAG_SECRET, F.TAG_STATUS] * len(acc):
        return "fields out of order"
    return list(zip(acc, nodes, secrets, st))


class Sender:
    def __init__(self, platform, name):
        self.s = F.connect(sender_sock, F.ROLE_SENDER, platform, name)
        self.s.settimeout(0.2)

    def take(self, wait=1.0, want=None):
        """Push frames until the socket is quiet for `wait` s (or `want` of them have come)."""
        got, end = [], time.time() + wait
        while time.time() < end and (want is None or len(got) < want):
            try:
                buf = self.s.recv(1 << 20)
            except socket.timeout:
                continue
            if not buf:
                break
            ftype, fid, fl = F.decode(buf)
            if ftype == F.PUSH:
                got.append({"id": fid, "platform": F.field(fl, F.TAG_PLATFORM), "kind": F.field(fl, F.TAG_KIND),
                            "token": F.field(fl, F.TAG_TOKEN).decode(), "data": F.field(fl, F.TAG_DATA).decode(),
                            "attempt": F.field(fl, F.TAG_ATTEMPT, 0)})
                end = time.time() + wait
        return got

    def one(self, wait=5.0):
        got = self.take(wait, want=1)
        return got[0] if got else None

    def result(self, fid, outcome, retry_after=None, reason=None, status=None):
        fields = [(F.TAG_OUTCOME, outcome)]
        if retry_after is not None:
            fields.append((F.TAG_RETRY_AFTER, retry_after))
        if reason:
            fields.append((F.TAG_REASON, reason))
        if status is not None:
            fields.append((F.TAG_STATUS, status))
        self.s.send(F.encode(F.RESULT, fid, fields))


def outbox_jobs():
    """Jobs in the router's outbox, read the way an operator would (pushctl counts)."""
    out = subprocess.run([os.path.join(BIN, "pushctl"), "-c", p.config, "counts"], capture_output=True, text=True).stdout
    m = re.search(r"^outbox_jobs (\d+)$", out, re.M)
    return int(m.group(1)) if m else None


def wns_body(acc, msgs=1, pending=0):
    return ('{"account_id":"%s","action":"push","message_count":%d,"pending_subscription_count":%d,"version":2}'
            % (acc, msgs, pending))


TEST_BODY = '{"action":"test_push","version":2}'

try:
    start_router()
    ing = Ingress()
    # A device that nothing refreshes: expired at the end.
    t.check(ing.channel(DEV_OLD, URI1) == OK, "channel for the device that will expire")
    old = groups(ing.accounts(DEV_OLD, [ACC2]))
    old_node, old_secret = old[0][1], old[0][2]

    # --- registration ---
    t.check(ing.accounts(DEV1, [ACC1]) == NOT_FOUND, "accounts before any channel: NOT_FOUND")
    t.check(ing.request(UWPX_TEST, [(TAG_DEVICE_ID, DEV1)]) == NOT_FOUND, "test push before any channel: NOT_FOUND")
    t.check(ing.channel(DEV1, URI1) == OK, "set_channel_uri acknowledged")
    g = groups(ing.accounts(DEV1, [ACC1, ACC2]))
    t.check(isinstance(g, list) and len(g) == 2 and [x[0] for x in g] == [ACC1, ACC2] and all(x[3] == OK for x in g),
            f"FRAME_NODES: one OK group per account in request order {g}")
    t.check(all(ALNUM24.match(x[1]) and ALNUM24.match(x[2]) for x in g), "24-character alphanumeric nodes and secrets")
    node1, sec1 = g[0][1], g[0][2]
    node2, sec2 = g[1][1], g[1][2]
    g2 = groups(ing.accounts(DEV1, [ACC2, ACC1]))
    t.check(g2 == [(ACC2, node2, sec2, OK), (ACC1, node1, sec1, OK)], "same accounts again: same nodes and secrets")
    t.check(groups(ing.accounts(DEV2, [])) is None and ing.accounts(DEV2, []) == NOT_FOUND, "empty list for an unknown device: NOT_FOUND")

    # --- publish checks, in order ---
    wns = Sender(WNS, "wns-a")
    t.check(ing.publish("NoSuchNode0000000000000", sec1) == NOT_FOUND, "unknown node: NOT_FOUND")
    t.check(ing.publish(node1, "x" * 24) == FORBIDDEN, "wrong secret: FORBIDDEN")
    t.check(ing.publish(node1, sec1[:-1]) == FORBIDDEN, "short secret: FORBIDDEN")
    t.check(ing.publish(node1, sec1, msgs=1, pending=0) == OK, "publish with the right secret: OK")
    job = wns.one()
    t.check(job is not None and job["platform"] == WNS and job["kind"] == KIND_WNS and job["token"] == URI1,
            f"WNS job to the channel URI {job and (job['platform'], job['kind'], job['token'])}")
    t.check(job is not None and job["data"] == wns_body(ACC1), f"exact WNS body {job and job['data']}")
    wns.result(job["id"], F.DELIVERED)
    t.check(ing.publish(node1, sec1, domain="other.org") == NOT_FOUND, "node bound to its first domain: other domain NOT_FOUND")
    t.check(ing.publish(node1, "wrong-secret", domain="other.org") == NOT_FOUND, "domain is checked before the secret")
    t.check(ing.publish(node2, sec2, domain="other.org", msgs=3, pending=2) == OK, "the other node binds to its own domain")
    job = wns.one()
    t.check(job is not None and job["data"] == wns_body(ACC2, 3, 2), "counts reach the WNS body")
    wns.result(job["id"], F.DELIVERED)
    t.check(ing.publish(node2, sec2, domain="example.org") == NOT_FOUND, "...and refuses the first one's domain")

    # --- CREDENTIALS on a normal WNS job: retried with backoff, not dropped ---
    t.check(ing.publish(node1, sec1) == OK, "publish for the credentials test")
    job = wns.one()
    wns.result(job["id"], F.CREDENTIALS)
    again = wns.one(wait=5.0)
    t.check(again is not None and again["id"] == job["id"] and again["attempt"] == 1,
            f"CREDENTIALS: the same job comes back after a backoff {again and again['attempt']}")
    wns.result(again["id"], F.DELIVERED)

    # --- test pushes ---
    fid = ing.send(UWPX_TEST, [(TAG_DEVICE_ID, DEV1)])
    job = wns.one()
    t.check(job is not None and job["data"] == TEST_BODY and job["token"] == URI1, "test push body to the channel")
    t.check(ing.wait(fid, 0.5) is None, "no answer before the sender's result")
    wns.result(job["id"], F.DELIVERED)
    got = ing.wait(fid, 5)
    t.check(got is not None and got[0] == F.REPLY and F.field(got[1], F.TAG_STATUS) == OK, "test push delivered: OK")
    fid = ing.send(UWPX_TEST, [(TAG_DEVICE_ID, DEV1)])
    job = wns.one()
    wns.result(job["id"], F.RETRY, retry_after=200)
    t.check(ing.wait(fid, 0.8) is None, "retryable result: no answer")
    job = wns.one(wait=5.0)
    t.check(job is not None and job["data"] == TEST_BODY, "the test push is retried")
    wns.result(job["id"], F.MESSAGE_FAILED)
    got = ing.wait(fid, 5)
    t.check(got is not None and F.field(got[1], F.TAG_STATUS) == FAILED, "test push refused: FAILED")

    # --- 410: channel dead, nothing deleted, queued jobs dropped ---
    wns.s.close()
    time.sleep(0.2)
    t.check(ing.publish(node1, sec1) == OK and ing.publish(node1, sec1) == OK, "two publishes queued without a sender")
    wns = Sender(WNS, "wns-b")
    jobs = wns.take(1.0)
    t.check(len(jobs) == 2, f"both reach the new sender ({len(jobs)})")
    wns.result(jobs[0]["id"], F.TOKEN_DEAD, reason="410")
    time.sleep(0.3)
    t.check(ing.publish(node1, sec1) == UNAVAILABLE, "publish to a dead channel: UNAVAILABLE")
    t.check(ing.publish(node2, sec2, domain="other.org") == UNAVAILABLE, "every node of the device: UNAVAILABLE")
    t.check(ing.accounts(DEV1, [ACC1]) == NOT_FOUND, "accounts on a dead channel: NOT_FOUND")
    t.check(ing.request(UWPX_TEST, [(TAG_DEVICE_ID, DEV1)]) == NOT_FOUND, "test push on a dead channel: NOT_FOUND")
    wns.s.close()  # the second job goes back to the queue...
    wns = Sender(WNS, "wns-c")
    t.check(wns.take(1.5) == [], "...and is dropped, not sent to the dead channel")
    t.check("dropped" in p.log("router"), "the drop is logged")

    # --- revival ---
    t.check(ing.channel(DEV1, URI2) == OK, "new channel")
    t.check(ing.publish(node1, sec1) == OK, "publish after revival: OK (same node and secret)")
    job = wns.one()
    t.check(job is not None and job["token"] == URI2 and job["data"] == wns_body(ACC1), "the job goes to the new URI")
    # A dead answer for a URI the device no longer has is ignored.
    t.check(ing.channel(DEV1, URI3) == OK, "channel replaced while a job for the old one is in flight")
    wns.result(job["id"], F.TOKEN_DEAD, reason="404")
    time.sleep(0.3)
    t.check(ing.publish(node1, sec1) == OK, "404 for the old URI does not kill the new channel")
    job = wns.one()
    t.check(job is not None and job["token"] == URI3, "next job to the newest URI")
    wns.result(job["id"], F.DELIVERED)
    # Test push whose channel WNS declares dead: FAILED, channel dead.
    fid = ing.send(UWPX_TEST, [(TAG_DEVICE_ID, DEV1)])
    job = wns.one()
    wns.result(job["id"], F.TOKEN_DEAD, reason="410")
    got = ing.wait(fid, 5)
    t.check(got is not None and F.field(got[1], F.TAG_STATUS) == FAILED, "test push to a dead channel: FAILED")
    t.check(ing.publish(node1, sec1) == UNAVAILABLE, "...and the channel is dead")
    t.check(ing.channel(DEV1, URI1) == OK, "revived again")

    # --- ad-hoc (XEP-0050) registrations ---
    ident_a, ident_b = bytes([0xa1]) * 32, bytes([0xb2]) * 32
    g = groups(ing.xregister(F.ANDROID, ident_a, "fcm:token-1", ADHOC_ACC))
    t.check(isinstance(g, list) and len(g) == 1 and g[0][0] == ADHOC_ACC and g[0][3] == OK and ALNUM24.match(g[0][1] or ""),
            f"XMPP register: one group {g}")
    xnode, xsec = g[0][1], g[0][2]
    g = groups(ing.xregister(F.ANDROID, ident_a, "fcm:token-2", ADHOC_ACC))
    t.check(g == [(ADHOC_ACC, xnode, xsec, OK)], "same identity again: same node and secret")
    fcm = Sender(F.ANDROID, "fcm-a")
    t.check(ing.publish(xnode, xsec, domain="other.org") == NOT_FOUND, "ad-hoc node bound at registration")
    t.check(ing.publish(xnode, xsec, flags=F_HIGH) == OK, "publish to the fcm node")
    job = fcm.one()
    t.check(job is not None and job["kind"] == KIND_XMPP and job["platform"] == F.ANDROID and job["token"] == "fcm:token-2",
            "FCM job with the updated token")
    t.check(job is not None and job["data"] == '{"account":"%s","high":true}' % ADHOC_ACC, f"FCM job data {job and job['data']}")
    fcm.result(job["id"], F.DELIVERED)
    g = groups(ing.xregister(F.IOS, ident_b, "abcd" * 16, ADHOC_ACC, channel=ROOM_CH, domain="conference.example.org"))
    bnode, bsec = g[0][1], g[0][2]
    apns = Sender(F.IOS, "apns-a")
    t.check(ing.publish(bnode, bsec, domain="conference.example.org") == OK, "publish to the apns room node")
    job = apns.one()
    t.check(job is not None and job["kind"] == KIND_XMPP and job["token"] == "abcd" * 16 and
            job["data"] == '{"account":"%s","channel":"%s","high":false}' % (ADHOC_ACC, ROOM_CH), f"APNs room job {job}")
    apns.result(job["id"], F.DELIVERED)
    # Token dead → NOT_FOUND; nothing deleted in the Bchat sense; re-registration revives.
    t.check(ing.publish(xnode, xsec) == OK, "publish before the dead token")
    job = fcm.one()
    fcm.result(job["id"], F.TOKEN_DEAD, reason="UNREGISTERED")
    time.sleep(0.3)
    t.check(ing.publish(xnode, xsec) == NOT_FOUND, "dead token: NOT_FOUND")
    g = groups(ing.xregister(F.ANDROID, ident_a, "fcm:token-3", ADHOC_ACC))
    t.check(g == [(ADHOC_ACC, xnode, xsec, OK)] and ing.publish(xnode, xsec) == OK, "re-registration clears the dead mark")
    job = fcm.one()
    t.check(job is not None and job["token"] == "fcm:token-3", "new token used")
    fcm.result(job["id"], F.DELIVERED)
    t.check(ing.request(XMPP_UNREGISTER, [(F.TAG_PLATFORM, F.ANDROID), (TAG_IDENTITY, ident_a)]) == OK, "unregister: OK")
    t.check(ing.request(XMPP_UNREGISTER, [(F.TAG_PLATFORM, F.ANDROID), (TAG_IDENTITY, ident_a)]) == NOT_FOUND, "again: NOT_FOUND")
    t.check(ing.publish(xnode, xsec) == NOT_FOUND, "publish to an unregistered node: NOT_FOUND")

    # --- removal by the client ---
    g = groups(ing.accounts(DEV1, [ACC2]))
    t.check(g == [(ACC2, node2, sec2, OK)], "ACC1 left out")
    t.check(ing.publish(node1, sec1) == NOT_FOUND, "its node is gone: NOT_FOUND")
    t.check(ing.publish(node2, sec2, domain="other.org") == OK, "the listed one still works")
    wns.result(wns.one()["id"], F.DELIVERED)

    # --- WNS 406: the channel backs off for X-WNS-CONTINUE-AFTER; one pending job, the newest ---
    DEV4, URI4 = "4" * 64, "https://db5p.notify.windows.com/?token=throttled"
    t.check(ing.channel(DEV4, URI4) == OK, "channel for the throttle test")
    g5 = groups(ing.accounts(DEV4, [ACC1]))
    tnode, tsec = g5[0][1], g5[0][2]
    t.check(ing.publish(tnode, tsec, msgs=1) == OK, "publish to the channel WNS will throttle")
    first = wns.one()
    t0 = time.time()
    wns.result(first["id"], F.RETRY, retry_after=3000, status=406, reason="channel throttled (406)")
    time.sleep(0.3)
    t.check(all(ing.publish(tnode, tsec, msgs=n) == OK for n in (2, 3, 4)), "three more publishes while it backs off")
    t.check(ing.publish(node2, sec2, domain="other.org") == OK, "and one for another channel")
    early = wns.take(1.0)
    t.check([j["token"] for j in early] == [URI1], f"the other channel is sent at once, nothing to the throttled one "
            f"before the back-off ends ({[j['token'] for j in early]})")
    for j in early:
        wns.result(j["id"], F.DELIVERED)
    t.check(outbox_jobs() == 1, "while it backs off, one job waits for the channel")
    late = wns.one(wait=6.0)
    waited_s = time.time() - t0
    t.check(late is not None and late["token"] == URI4 and late["data"] == wns_body(ACC1, 4),
            f"when the back-off ends, the newest notification is sent {late and late['data']}")
    t.check(waited_s >= 2.9, f"...not before X-WNS-CONTINUE-AFTER's 3 s ({waited_s:.2f} s)")
    if late:
        wns.result(late["id"], F.DELIVERED)
    t.check(wns.take(1.5) == [], "only that one: nothing sent twice, the older ones never")
    sup = re.findall(r"WNS job (\d+) superseded by job (\d+)", p.log("router"))
    t.check(len(sup) == 3 and sup[0][0] == str(first["id"]) and late and sup[-1][1] == str(late["id"])
            and len({a for a, _ in sup}) == 3, f"the three older jobs (the 406'd one first) end as superseded, logged {sup}")
    t.check(outbox_jobs() == 0, "none left in the outbox: each job delivered or superseded")

    # --- kill -9 right after acknowledged changes ---
    t.check(ing.channel(DEV3, URI2) == OK, "channel for the kill test")
    g3 = groups(ing.accounts(DEV3, [ACC1]))
    t.check(ing.channel(DEV2, URI3) == OK, "another device acknowledged just before the kill")
    g4 = groups(ing.accounts(DEV2, [ACC1]))
    dead_fid = ing.send(UWPX_TEST, [(TAG_DEVICE_ID, DEV2)])
    job = wns.one()
    wns.result(job["id"], F.TOKEN_DEAD, reason="410")
    got = ing.wait(dead_fid, 5)
    t.check(got is not None and F.field(got[1], F.TAG_STATUS) == FAILED, "DEV2's channel declared dead")
    p.kill("router", signal.SIGKILL)
    wns.s.close()
    start_router()
    ing = Ingress()
    t.check(groups(ing.accounts(DEV3, [ACC1])) == g3, "after kill -9: the same node and secret")
    t.check(ing.publish(g3[0][1], g3[0][2]) == OK, "after kill -9: publish accepted")
    t.check(ing.publish(g4[0][1], g4[0][2]) == UNAVAILABLE, "after kill -9: the dead mark survived")
    t.check(ing.publish(bnode, bsec, domain="conference.example.org") == OK, "after kill -9: the ad-hoc node survived")
    t.check(ing.publish(node2, sec2, domain="example.org") == NOT_FOUND, "after kill -9: the binding survived")
    wns = Sender(WNS, "wns-d")
    job = wns.one()
    t.check(job is not None and job["token"] == URI2, "the job acknowledged after the restart is delivered")
    wns.result(job["id"], F.DELIVERED)
    apns = Sender(F.IOS, "apns-b")
    job = apns.one()
    t.check(job is not None and job["kind"] == KIND_XMPP, "the XMPP job too")
    apns.result(job["id"], F.DELIVERED)

    # --- device expiry (router.device_expiry_s = 60, the minimum) ---
    t.check(ing.publish(old_node, old_secret) == OK, "the old device works before its expiry")
    wns.result(wns.one()["id"], F.MESSAGE_FAILED)  # no refresh
    wait = 62 - (time.time() - started)
    if wait > 0:
        time.sleep(wait)
    p.kill("router")
    cfg = json.load(open(p.config))
    cfg["router"]["device_expiry_s"] = 60
    json.dump(cfg, open(p.config, "w"))
    start_router()
    ing = Ingress()
    t.check(ing.channel(DEV3, URI2) == OK, "DEV3 refreshed")
    p.wait_for(lambda: "devices expired" in p.log("router"), "the expiry sweep", timeout=20)
    t.check(ing.publish(old_node, old_secret) == NOT_FOUND, "expired device: its node is gone")
    t.check(ing.accounts(DEV_OLD, [ACC2]) == NOT_FOUND, "expired device: unknown")
    t.check(ing.publish(g3[0][1], g3[0][2]) == OK, "a refreshed device is kept")
    # --- 406 without X-WNS-CONTINUE-AFTER: 60 s; back-off and waiting job survive kill -9 ---
    wns = Sender(WNS, "wns-e")
    job = wns.one()
    t.check(job is not None and job["token"] == URI2, "DEV3's job")
    wns.result(job["id"], F.RETRY, status=406)
    t.check(p.wait_for(lambda: "throttled (406, 1 in a row): backing off for 60 s" in p.log("router"), "the back-off"),
            "406 without the header: the channel backs off 60 s")
    t.check(ing.publish(g3[0][1], g3[0][2]) == OK and wns.take(1.5) == [], "a newer publish waits")
    p.kill("router", signal.SIGKILL)
    wns.s.close()
    start_router()
    ing = Ingress()
    wns = Sender(WNS, "wns-f")
    t.check(ing.publish(g3[0][1], g3[0][2]) == OK, "a publish after kill -9 of the router")
    t.check(wns.take(1.5) == [], "after kill -9: still backing off (stored with the device)")
    sup = re.findall(r"WNS job (\d+) superseded by job (\d+)", p.log("router"))
    t.check(len(sup) == 5 and sup[3][0] == str(job["id"]) and sup[4][0] == sup[3][1],
            f"the waiting job survived the kill and the newest replaced it {sup[3:]}")
    t.check(outbox_jobs() == 1, "one job waits for the channel, the newest")
    log = p.log("router")
    t.check(sec1 not in log and xsec not in log and "AwYAAAD" not in log and "fcm:token" not in log,
            "no secret, channel token or device token in the router log")
except Exception as e:
    import traceback
    traceback.print_exc()
    t.check(False, f"router UWPX test raised {e!r}")
finally:
    if t.failed:
        print(p.logs())
    p.stop()
sys.exit(t.done())
