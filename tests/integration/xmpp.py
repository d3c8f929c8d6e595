"""ingress-xmpp against a fake XMPP server and a fake router (xmpp_fakes.py): handshake,
disco, the exact Prosody publish to FRAME_XMPP_PUBLISH and back, every error reply, ad-hoc
registration, keepalive, restricted XML, reconnects, back-off after not-authorized, clean stop."""
import os, shutil, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import frames
from lib.harness import Checks
from lib.xmpp_fakes import *

PUB_ID = "882e50292ac8a575e12fe057ba06ba594f24297ea9e9dbd96507fe40c61b24af"


def prosody_publish(node="NODE123abc", secret="SECRETxyz789", iq_id=PUB_ID, frm="localhost", body="New Message!"):
    body_field = ("<field var='last-message-body' type='text-single'><value>%s</value></field>" % body
                  if body else "<field var='last-message-body' type='text-single'/>")
    return ("<iq id='%s' type='set' from='%s' to='push.localhost'>"
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='%s'><item>"
            "<notification xmlns='urn:xmpp:push:0'><x type='form' xmlns='jabber:x:data'>"
            "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:push:summary</value></field>"
            "<field var='message-count' type='text-single'><value>1</value></field>"
            "<field var='pending-subscription-count' type='text-single'/>"
            "<field var='last-message-sender' type='jid-single'/>%s"
            "</x></notification></item></publish><publish-options><x type='submit' xmlns='jabber:x:data'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
            "<field var='secret'><value>%s</value></field></x></publish-options></pubsub></iq>"
            % (iq_id, frm, node, body_field, secret))


class Script:
    """The fake router's answers: the next status for publishes, node/secret for registrations."""

    def __init__(self):
        self.status = OK
        self.silent = False

    def __call__(self, ftype, fid, fields):
        if self.silent:
            return []
        if ftype == XMPP_REGISTER:
            return [frames.encode(NODES, fid, [(TAG_ACCOUNT, frames.field(fields, TAG_ACCOUNT)), (TAG_NODE, "AdhocNode1"),
                                               (TAG_SECRET, "AdhocSecret1"), (frames.TAG_STATUS, self.status)])]
        return [frames.encode(frames.REPLY, fid, [(frames.TAG_STATUS, self.status)])]


def main():
    c = Checks()
    tmp = tempfile.mkdtemp(prefix="pushpipe-xmpp-")
    srv = FakeXmppServer()
    comp = Component(tmp, "127.0.0.1:%d" % srv.port, keepalive_s=1, router_timeout_ms=400, adhoc=True,
                     adhoc_services=["fcm", "apns"])
    script = Script()
    router = FakeRouter(comp.router_sock, script)
    conn = None
    try:
        comp.start()
        conn = srv.accept()
        c.check(conn is not None, "component connects to the server")
        ok, why = conn.handshake("s3cr3t", "push.localhost")
        c.check(ok, "handshake = hex SHA-1(stream id + secret) (%s)" % why)
        end = time.time() + 5
        while time.time() < end and not ("component authenticated" in comp.log() and router.connected()):
            time.sleep(0.05)
        c.check("component authenticated as push.localhost" in comp.log(), "authenticated (log)")
        c.check("adhoc is on with an empty adhoc_domains: any user of any federated XMPP server can register"
                in comp.log(), "ad-hoc open to every domain: warned at start-up")
        c.check(router.connected(), "router link up with a hello")

        # disco#info
        conn.send("<iq type='get' id='d1' from='alice@localhost/res' to='push.localhost'>"
                  "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        r = conn.recv()
        q = r.find("{http://jabber.org/protocol/disco#info}query") if r is not None else None
        ident = q.find("{http://jabber.org/protocol/disco#info}identity") if q is not None else None
        feats = [f.get("var") for f in q] if q is not None else []
        c.check(r is not None and r.get("type") == "result" and r.get("id") == "d1" and r.get("to") == "alice@localhost/res"
                and r.get("from") == "push.localhost", "disco#info result addressed back")
        c.check(ident is not None and ident.get("category") == "pubsub" and ident.get("type") == "push",
                "identity pubsub/push")
        c.check("urn:xmpp:push:0" in feats and "http://jabber.org/protocol/commands" in feats, "features: push, commands")
        conn.send("<iq type='get' id='d2' from='alice@localhost/res' to='push.localhost'>"
                  "<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>")
        r = conn.recv()
        nodes = [i.get("node") for i in r.iter("{http://jabber.org/protocol/disco#items}item")] if r is not None else []
        c.check(nodes == ["register-push-fcm", "unregister-push-fcm"],
                "command list: fcm only (apns has no credentials): %s" % nodes)
        conn.send("<iq type='get' id='p1' from='localhost' to='push.localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        r = conn.recv()
        c.check(r is not None and r.get("type") == "result" and r.get("id") == "p1" and len(r) == 0, "ping answered")

        # The exact publish of docs/xmpp.md "Publish".
        while router.next_frame(0.1):
            pass
        mark = len(conn.reader.raw)
        conn.send(prosody_publish())
        fr = router.next_frame()
        c.check(fr is not None and fr[0] == XMPP_PUBLISH, "FRAME_XMPP_PUBLISH sent to the router")
        if fr:
            f = fr[2]
            c.check(frames.field(f, TAG_NODE) == b"NODE123abc" and frames.field(f, TAG_SECRET) == b"SECRETxyz789",
                    "node and secret")
            c.check(frames.field(f, TAG_DOMAIN) == b"localhost", "domain of from")
            c.check(frames.field(f, TAG_MSG_COUNT) == 1 and frames.field(f, TAG_PENDING_COUNT) == 0, "counts 1 and 0")
            c.check(frames.field(f, frames.TAG_FLAGS) == F_HIGH, "F_HIGH for a non-empty body")
            c.check(all(b"New Message" not in (v if isinstance(v, bytes) else b"") for _, v in f), "no body in the frame")
        r = conn.recv()
        raw = conn.raw_since(mark).decode()
        c.check(r is not None and r.get("type") == "result" and r.get("id") == PUB_ID and len(r) == 0,
                "publish answered result")
        c.check("<iq type='result' from='push.localhost' to='localhost' id='%s'/>" % PUB_ID in raw,
                "result bytes exactly as Prosody accepts them")

        # Empty body: not high.
        conn.send(prosody_publish(iq_id="nb1", body=""))
        fr = router.next_frame()
        conn.recv()
        c.check(fr is not None and frames.field(fr[2], frames.TAG_FLAGS) == 0, "empty body: no F_HIGH")

        # Every router status → the IQ error docs/xmpp.md lists for it.
        for st, want in [(NOT_FOUND, ("cancel", "item-not-found")), (FORBIDDEN, ("auth", "forbidden")),
                         (UNAVAILABLE, ("wait", "recipient-unavailable")), (BUSY, ("wait", "recipient-unavailable")),
                         (ERROR, ("wait", "recipient-unavailable"))]:
            script.status = st
            conn.send(prosody_publish(iq_id="s%d" % st))
            r = conn.recv()
            c.check(r is not None and r.get("type") == "error" and r.get("id") == "s%d" % st and error_of(r) == want,
                    "router status %d → %s" % (st, want))
        script.status = OK
        script.silent = True
        t0 = time.time()
        conn.send(prosody_publish(iq_id="late"))
        r = conn.recv(timeout=3)
        c.check(r is not None and error_of(r) == ("wait", "recipient-unavailable") and time.time() - t0 >= 0.35,
                "router silent → recipient-unavailable (wait) after router_timeout_ms")
        script.silent = False
        c.check(router.next_frame(1) is not None, "the late publish did reach the router")
        while router.next_frame(0.1):
            pass

        # Checks made by the component itself.
        for name, stanza, want in [
            ("no secret", prosody_publish().replace("<field var='secret'><value>SECRETxyz789</value></field>", ""),
             ("auth", "forbidden")),
            ("from with a resource", prosody_publish(frm="localhost/res"), ("auth", "forbidden")),
            ("no publish", "<iq type='set' id='np' from='localhost' to='push.localhost'>"
                           "<pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>", ("modify", "bad-request")),
            ("unknown iq", "<iq type='get' id='uk' from='localhost' to='push.localhost'><query xmlns='jabber:iq:version'/></iq>",
             ("cancel", "service-unavailable")),
        ]:
            conn.send(stanza)
            r = conn.recv()
            c.check(r is not None and error_of(r) == want, "%s → %s" % (name, want))
        c.check(router.next_frame(0.3) is None, "nothing reached the router for those")
        conn.send("<message from='a@localhost' to='push.localhost'><body>x</body></message>"
                  "<iq type='result' id='x' from='localhost' to='push.localhost'/>")
        c.check(conn.recv(timeout=0.5) is None, "message and result ignored")

        # Ad-hoc registration and unregistration.
        conn.send("<iq type='set' id='cXo5bNCF6wgD' from='alice@example.org/Conversations.sAdA' to='push.localhost'>"
                  "<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='execute'>"
                  "<x xmlns='jabber:x:data' type='submit'><field var='token'><value>FCM-TOKEN:x_y-z</value></field>"
                  "<field var='device-id'><value>92afd7a91cdba9a0</value></field></x></command></iq>")
        fr = router.next_frame()
        c.check(fr is not None and fr[0] == XMPP_REGISTER, "FRAME_XMPP_REGISTER")
        if fr:
            f = fr[2]
            import hashlib
            c.check(frames.field(f, frames.TAG_PLATFORM) == frames.ANDROID and frames.field(f, frames.TAG_TOKEN) == b"FCM-TOKEN:x_y-z",
                    "platform android, token")
            c.check(frames.field(f, TAG_ACCOUNT) == b"575743d57bd2e395071f9f88adce7f8bba664ea2", "account hash (docs/xmpp.md, Ad-hoc registration)")
            c.check(frames.field(f, TAG_IDENTITY) == hashlib.sha256(b"alice@example.org\0" b"92afd7a91cdba9a0\0").digest(),
                    "identity hash")
            c.check(frames.field(f, TAG_DOMAIN) == b"example.org", "bound to example.org")
        r = conn.recv()
        cmd = r.find("{http://jabber.org/protocol/commands}command") if r is not None else None
        vals = form_values(cmd) if cmd is not None else {}
        c.check(r is not None and r.get("type") == "result" and cmd is not None and cmd.get("status") == "completed"
                and cmd.get("sessionid"), "register: status='completed'")
        c.check(vals == {"jid": "push.localhost", "node": "AdhocNode1", "secret": "AdhocSecret1"}, "form: jid, node, secret")
        conn.send("<iq type='set' id='u1' from='alice@example.org/Conversations.sAdA' to='push.localhost'>"
                  "<command xmlns='http://jabber.org/protocol/commands' node='unregister-push-fcm' action='execute'>"
                  "<x xmlns='jabber:x:data' type='submit'><field var='device-id'><value>92afd7a91cdba9a0</value></field>"
                  "</x></command></iq>")
        fr = router.next_frame()
        r = conn.recv()
        cmd = r.find("{http://jabber.org/protocol/commands}command") if r is not None else None
        c.check(fr is not None and fr[0] == XMPP_UNREGISTER and cmd is not None and cmd.get("status") == "completed",
                "unregister: frame and status='completed'")
        script.status = NOT_FOUND
        conn.send("<iq type='set' id='u2' from='alice@example.org/C' to='push.localhost'>"
                  "<command xmlns='http://jabber.org/protocol/commands' node='unregister-push-fcm'>"
                  "<x xmlns='jabber:x:data' type='submit'><field var='device-id'><value>other</value></field></x></command></iq>")
        r = conn.recv()
        c.check(r is not None and error_of(r) == ("cancel", "item-not-found"), "unregister unknown → item-not-found")
        script.status = OK
        conn.send("<iq type='set' id='a3' from='alice@example.org/C' to='push.localhost'>"
                  "<command xmlns='http://jabber.org/protocol/commands' node='register-push-apns'/></iq>")
        r = conn.recv()
        c.check(r is not None and error_of(r) == ("cancel", "item-not-found"), "apns not configured → item-not-found")
        conn.send("<iq type='set' id='a4' from='alice@example.org/C' to='push.localhost'>"
                  "<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='cancel'/></iq>")
        r = conn.recv()
        cmd = r.find("{http://jabber.org/protocol/commands}command") if r is not None else None
        c.check(cmd is not None and cmd.get("status") == "canceled", "cancel → status='canceled'")

        # Whitespace keepalive after keepalive_s idle.
        mark = len(conn.reader.raw)
        conn.wait(lambda: len(conn.raw_since(mark)) > 0, 3)
        c.check(conn.raw_since(mark).strip(b" ") == b"" and len(conn.raw_since(mark)) > 0, "whitespace keepalive")

        # Router gone: immediate wait errors; back: publishes flow again.
        router.close()
        time.sleep(0.3)
        conn.send(prosody_publish(iq_id="nr"))
        r = conn.recv()
        c.check(r is not None and error_of(r) == ("wait", "recipient-unavailable"), "router down → recipient-unavailable")
        router = FakeRouter(comp.router_sock, script)
        end = time.time() + 5
        while time.time() < end and not router.connected():
            time.sleep(0.05)
        conn.send(prosody_publish(iq_id="back"))
        r = conn.recv()
        c.check(r is not None and r.get("type") == "result", "router back → result")

        # Restricted XML: a comment → restricted-xml stream error, then a new connection.
        conn.send("<!-- no comments in XMPP -->")
        conn.closed_stream()
        raw = conn.reader.raw.decode(errors="replace")
        c.check("<restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in raw, "comment → restricted-xml")
        conn.close()
        t0 = time.time()
        conn = srv.accept(timeout=5)
        c.check(conn is not None and time.time() - t0 < 3, "reconnects after a stream error (%.1f s)" % (time.time() - t0))
        ok, why = conn.handshake("s3cr3t", "push.localhost") if conn else (False, "no connection")
        c.check(ok, "second handshake with a new stream id (%s)" % why)

        # Oversized stanza → policy-violation.
        conn.send("<iq type='get' id='big' from='localhost' to='push.localhost'><x>" + "y" * 70000 + "</x></iq>")
        conn.closed_stream()
        c.check("<policy-violation " in conn.reader.raw.decode(errors="replace"), "stanza over max_stanza → policy-violation")
        conn.close()

        # The server drops the connection: reconnect with back-off.
        conn = srv.accept(timeout=5)
        ok, _ = conn.handshake("s3cr3t", "push.localhost") if conn else (False, "")
        t_drop = time.time()
        conn.close()
        conn = srv.accept(timeout=10)
        dt = time.time() - t_drop
        c.check(conn is not None and 0.5 <= dt <= 6, "reconnects after the server dropped (%.1f s)" % dt)
        ok, _ = conn.handshake("s3cr3t", "push.localhost") if conn else (False, "")
        c.check(ok, "handshake after the drop")
        conn.send(prosody_publish(iq_id="again"))
        r = conn.recv()
        c.check(r is not None and r.get("type") == "result", "publishes work after reconnecting")

        # Clean shutdown: </stream:stream>, waits for ours, exits 0.
        def close_back():
            conn.wait(lambda: conn.reader.ended, 5)
            conn.send("</stream:stream>")
        import threading
        th = threading.Thread(target=close_back)
        th.start()
        rc, took = comp.stop()
        th.join()
        c.check(conn.reader.ended, "TERM → </stream:stream>")
        c.check(rc == 0 and took < 5, "exits 0 after the server's close (%.2f s)" % took)
        conn.close()

        # not-authorized: logged as a configuration error, maximum back-off.
        comp.start()
        conn = srv.accept()
        ok, _ = conn.handshake("s3cr3t", "push.localhost", error="not-authorized") if conn else (False, "")
        conn.eof(3)
        conn.close()
        t0 = time.time()
        again = srv.accept(timeout=3)
        c.check(again is None, "no reconnect within 3 s after not-authorized")
        if again:
            again.close()
        c.check("refused the component (not-authorized)" in comp.log(), "configuration error logged")
        c.check("s3cr3t" not in comp.log(), "secret never logged")
        c.check("New Message" not in comp.log(), "body never logged")
        comp.stop()

        # Ad-hoc limited to listed domains, or off: no warning about open registration.
        for name, opts in (("domains", {"adhoc": True, "adhoc_domains": ["localhost"]}), ("off", {"adhoc": False})):
            other = Component(os.path.join(tmp, "adhoc-" + name), "127.0.0.1:%d" % srv.port, **opts)
            other.start()
            extra = srv.accept(timeout=10)  # it has started once it connects
            started = "component push.localhost for xmpp server" in other.log()
            c.check(started and "empty adhoc_domains" not in other.log(),
                    "ad-hoc %s: no open-registration warning (started: %s)" % (name, started))
            other.stop()
            if extra:
                extra.close()

        # A server that never answers the stream header: the handshake times out after 15 s.
        comp.start()
        conn = srv.accept()
        t0 = time.time()
        closed = conn.eof(20) if conn else False
        dt = time.time() - t0
        c.check(closed and 14.5 <= dt <= 17, "handshake timeout closes the connection after 15 s (%.1f s)" % dt)
        conn.close()
        conn = srv.accept(timeout=5)
        c.check(conn is not None, "and tries again")
        comp.stop()
    finally:
        if conn:
            conn.close()
        if comp.proc:
            comp.stop()
        router.close()
        srv.close()
        if c.failed:
            print("--- ingress-xmpp log\n" + comp.log()[-4000:])
        shutil.rmtree(tmp, ignore_errors=True)
    return c.done()


if __name__ == "__main__":
    sys.exit(main())
