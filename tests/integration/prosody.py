"""ingress-xmpp against a real Prosody + mod_cloud_notify (prosody_peer.py) with a fake router
(xmpp_fakes.py): the component authenticates, alice enables push and goes offline, bob writes
to her, Prosody publishes, the component sends FRAME_XMPP_PUBLISH with Prosody's node, secret
and counts and answers result; a registration whose secret the router refuses gets forbidden,
which Prosody counts; while the component is away Prosody bounces with wait; it comes back."""
import os, shutil, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import frames
from lib.harness import Checks
from lib.prosody_peer import ProsodyPeer, XmppClient, ensure_prosody
from lib.xmpp_fakes import *

NODE, SECRET = "NODE123abc", "SECRETxyz789"
BAD_NODE = "NODEwrongSecret"


class SecretCheckingRouter:
    """Knows one node and its secret; answers like the router's checks 5 and 7."""

    def __init__(self, nodes):
        self.nodes = nodes

    def __call__(self, ftype, fid, fields):
        st = ERROR
        if ftype == XMPP_PUBLISH:
            node = frames.field(fields, TAG_NODE).decode()
            secret = frames.field(fields, TAG_SECRET).decode()
            st = NOT_FOUND if node not in self.nodes else OK if self.nodes[node] == secret else FORBIDDEN
        return [frames.encode(frames.REPLY, fid, [(frames.TAG_STATUS, st)])]


def publishes(router, timeout):
    """Every FRAME_XMPP_PUBLISH arriving within timeout, by node."""
    got, end = {}, time.time() + timeout
    while time.time() < end:
        fr = router.next_frame(0.2)
        if fr and fr[0] == XMPP_PUBLISH:
            got.setdefault(frames.field(fr[2], TAG_NODE).decode(), []).append(fr[2])
    return got


def main():
    c = Checks()
    ok, why = ensure_prosody()
    if not c.check(ok, "Prosody with mod_cloud_notify available (%s)" % why):
        print("cannot run the Prosody interoperability test: " + why)
        return c.done()
    tmp = tempfile.mkdtemp(prefix="pushpipe-prosody-")
    peer = ProsodyPeer(tmp)
    comp = Component(tmp, peer.component_server, secret=peer.component_secret)
    router = FakeRouter(comp.router_sock, SecretCheckingRouter({NODE: SECRET, BAD_NODE: "theRightOne"}))
    try:
        peer.start()
        comp.start()
        c.check(peer.wait_log("External component successfully authenticated", 15), "Prosody: component authenticated")
        end = time.time() + 10
        while time.time() < end and not ("component authenticated" in comp.log() and router.connected()):
            time.sleep(0.1)
        c.check("component authenticated as push.localhost" in comp.log(), "component: authenticated")

        # disco#info through Prosody, as a client would ask it.
        with XmppClient(peer.c2s_port, "alice", "alicepw") as alice:
            c.check(alice.jid == "alice@localhost/lab", "alice bound as %s" % alice.jid)
            r = alice.iq("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>", to="push.localhost")
            ident = r.find(".//{http://jabber.org/protocol/disco#info}identity")
            c.check(ident is not None and ident.get("category") == "pubsub" and ident.get("type") == "push",
                    "disco#info via Prosody: pubsub/push")
            alice.enable_push("push.localhost", NODE, SECRET, hidden=True)
            c.check(peer.wait_log("Push notifications enabled for alice@localhost/lab (push.localhost<%s)" % NODE, 5),
                    "Prosody: push enabled")
        while router.next_frame(0.1):
            pass

        # bob writes to offline alice → one publish.
        mark = len(peer.log())
        with XmppClient(peer.c2s_port, "bob", "bobpw") as bob:
            bob.message("alice@localhost", "Hello Alice")
            got = publishes(router, 5)
        f = got.get(NODE, [None])[0]
        c.check(len(got.get(NODE, [])) == 1, "one FRAME_XMPP_PUBLISH for the registration")
        if f:
            c.check(frames.field(f, TAG_SECRET) == SECRET.encode(), "secret from publish-options")
            c.check(frames.field(f, TAG_DOMAIN) == b"localhost", "domain of Prosody's from")
            c.check(frames.field(f, TAG_MSG_COUNT) == 1 and frames.field(f, TAG_PENDING_COUNT) == 0, "counts 1 and 0")
            c.check(frames.field(f, frames.TAG_FLAGS) == F_HIGH, "important message: F_HIGH")
        c.check(peer.wait_log("Sending important push notification for alice@localhost to push.localhost (%s)" % NODE, 5, mark),
                "Prosody: push sent")
        time.sleep(0.5)
        plog = peer.log()[mark:]
        c.check("type='result'" in plog and "Got error" not in plog, "Prosody: got result, no error")

        # A second registration whose secret the router refuses.
        with XmppClient(peer.c2s_port, "alice", "alicepw", resource="lab2") as alice:
            alice.enable_push("push.localhost", BAD_NODE, "notTheSecret")
        mark = len(peer.log())
        with XmppClient(peer.c2s_port, "bob", "bobpw") as bob:
            bob.message("alice@localhost", "Second")
            got = publishes(router, 5)
        c.check(len(got.get(NODE, [])) == 1 and len(got.get(BAD_NODE, [])) == 1, "a publish per registration")
        c.check(peer.wait_log("Got error <auth:forbidden:", 5, mark), "Prosody got forbidden (auth)")
        c.check(peer.wait_log("push.localhost<%s': error count for this identifier is now at 1" % BAD_NODE, 5, mark),
                "Prosody counted the error")

        # Component away: Prosody bounces with wait and counts nothing; back again: delivered.
        comp.stop()
        mark = len(peer.log())
        with XmppClient(peer.c2s_port, "bob", "bobpw") as bob:
            bob.message("alice@localhost", "While away")
            c.check(peer.wait_log("NOT increasing error count for this identifier", 5, mark),
                    "component away: Prosody bounces with wait, not counted")
        comp.start()
        c.check(peer.wait_log("External component successfully authenticated", 15, mark), "component reconnected")
        while router.next_frame(0.2):
            pass
        with XmppClient(peer.c2s_port, "bob", "bobpw") as bob:
            bob.message("alice@localhost", "Back")
            got = publishes(router, 5)
        c.check(len(got.get(NODE, [])) == 1, "delivered again after the component came back")
        c.check("SECRETxyz789" not in comp.log() and "Hello Alice" not in comp.log(), "no secret or body in our log")
    except Exception as e:  # a broken peer must fail the test, with its logs
        c.check(False, "exception: %r" % e)
    finally:
        if comp.proc:
            comp.stop()
        peer.stop()
        router.close()
        if c.failed:
            print("--- ingress-xmpp log\n" + comp.log()[-3000:])
            print("--- prosody log (tail)\n" + peer.log()[-6000:])
        shutil.rmtree(tmp, ignore_errors=True)
    return c.done()


if __name__ == "__main__":
    sys.exit(main())
