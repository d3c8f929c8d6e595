#!/usr/bin/python3
"""nats_wq_dedupe.py [noid]: how the local nats-server treats a message sent again with its
Nats-Msg-Id on a replicated work-queue stream after a follower restarted (docs/cluster.md,
"Durability, stated honestly": the known limit of nats-server 2.9 behind the chaos test's rare
loss).

Three nats-server nodes (scripts/mknats.py) in a temporary directory; an R3 work-queue stream T
with a durable pull consumer. Ten messages (ids id0..id9) are stored, taken and acknowledged; a
follower is killed with SIGKILL and started again; id3 is sent again, then three new messages.
Prints each server's first and last sequence and message count after each step, and whether the
replicas still agree. With nats-server 2.9 the restarted follower no longer knows id3 (consumed,
gone from its store), stores the resend while the others call it a duplicate, and from then on
numbers every message one higher: its acknowledgements name other messages than the others'.
With "noid" the same messages carry no id: every replica stores the resend, and they agree.
Exit status 0 when the replicas agree at the end, 1 when they do not. About 20 s.
"""
import json
import os
import signal
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
from lib import nats_raw as nr  # noqa: E402

USE_ID = not (len(sys.argv) > 1 and sys.argv[1] == "noid")


class Client:
    def __init__(self, c, node):
        self.a = c.conn("admin", node)
        self.n = 0

    def inbox(self):
        self.n += 1
        return "%s.w%d" % (self.a.inbox, self.n)

    def pub(self, i):
        """Publishes message i (with id i unless noid) and returns its PubAck."""
        for _ in range(20):
            try:
                box = self.inbox()
                sid, _ = self.a.sub(box)
                self.a.pub("t.x", b"m%d" % i, reply=box, headers={"Nats-Msg-Id": "id%d" % i} if USE_ID else None)
                got = self.a.wait_msgs(sid, 1, 3.0)
                if got:
                    return json.loads(got[0][4])
            except nr.NatsError:
                pass
            time.sleep(0.3)
        return None

    def consume(self, n):
        """Takes up to n messages and acknowledges each; returns (data, stream sequence) pairs."""
        box = self.inbox()
        sid, _ = self.a.sub(box)
        self.a.pub("$JS.API.CONSUMER.MSG.NEXT.T.C", json.dumps({"batch": n, "expires": 2 * 10**9}).encode(),
                   reply=box)
        out = []
        for m in self.a.wait_msgs(sid, n, 3.0):
            if m[2]:
                self.a.pub(m[2], b"+ACK")
                out.append((m[4].decode(), int(m[2].split(".")[5])))
        return out


def states(c):
    view, lasts = [], set()
    for n in range(1, c.n + 1):
        det = [s for acc in c.jsz(n).get("account_details", []) for s in acc.get("stream_detail", [])
               if s["name"] == "T"]
        s = det[0]["state"] if det else {}
        view.append("nats-%d first %s last %s msgs %s" % (n, s.get("first_seq"), s.get("last_seq"), s.get("messages")))
        lasts.add((s.get("last_seq"), s.get("messages")))
    return "; ".join(view), len(lasts) == 1


def show(c, what):
    time.sleep(1)
    view, same = states(c)
    print("%-22s %s%s" % (what, view, "" if same else "  <- the replicas differ"))
    return same


def main():
    d = tempfile.mkdtemp(prefix="nats-wq-")
    c = nr.Cluster(TOP, d)
    try:
        if not c.wait_ready():
            print("the cluster did not come up")
            return 2
        cl = Client(c, 1)
        nr.js_api(cl.a, "STREAM.CREATE.T", {"name": "T", "subjects": ["t.>"], "retention": "workqueue",
                                             "storage": "file", "num_replicas": 3,
                                             "duplicate_window": 120 * 10**9})
        nr.js_api(cl.a, "CONSUMER.DURABLE.CREATE.T.C", {"stream_name": "T", "config": {
            "durable_name": "C", "ack_policy": "explicit", "ack_wait": 30 * 10**9}})
        for i in range(10):
            cl.pub(i)
        print("taken and acknowledged:", len(cl.consume(10)))
        show(c, "10 stored, consumed:")
        leader = nr.js_api(cl.a, "STREAM.INFO.T", None)["cluster"]["leader"]
        f = [n for n in range(1, c.n + 1) if "nats-%d" % n != leader][0]
        print("stream leader %s; kill -9 of follower nats-%d, then started again" % (leader, f))
        c.procs[f].send_signal(signal.SIGKILL)
        c.procs[f].wait()
        c.start(f)
        time.sleep(6)
        cl = Client(c, [n for n in range(1, c.n + 1) if n != f][0])
        show(c, "follower restarted:")
        print("id3 sent again (%s): %s" % ("with its Nats-Msg-Id" if USE_ID else "no id", cl.pub(3)))
        show(c, "after the resend:")
        for i in range(10, 13):
            cl.pub(i)
        same = show(c, "3 new messages:")
        print("taken and acknowledged:", cl.consume(1))
        same = show(c, "1 consumed:") and same
        print("the replicas %s" % ("agree" if same else "DIVERGED: acks by sequence remove different messages"))
        return 0 if same else 1
    finally:
        c.stop()


if __name__ == "__main__":
    sys.exit(main())
