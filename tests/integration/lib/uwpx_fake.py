"""uwpx_fake: a scripted stand-in for the router as ingress-uwpx sees it (its SEQPACKET
socket, hello, FRAME_UWPX_* requests answered with FRAME_REPLY or FRAME_NODES), and a statsd
datagram sink that sums counters. The answer for a request is chosen by its device_id (see
BEHAVIOUR), so each test picks the router's behaviour by the device it registers."""
import os, select, socket, struct, threading, time
from lib import frames

CHANNEL, ACCOUNTS, TEST, NODES = 40, 41, 42, 43
TAG_DEVICE_ID, TAG_URI, TAG_ACCOUNT, TAG_NODE, TAG_SECRET, TAG_VERSION = 50, 51, 52, 53, 54, 56
OK, NOT_FOUND, BUSY, ERROR, FAILED = 0, 1, 2, 3, 6
COUNTER_FRAME, TAG_COUNTER, TAG_DELTA = 30, 40, 41
frames.U32.add(TAG_VERSION)


def dev(c):
    return c * 64


# device_id → what the router does: ("reply", status), ("nodes",), ("silent",), ("late", seconds, status)
BEHAVIOUR = {
    dev("a"): ("ok",),
    dev("1"): ("reply", NOT_FOUND),
    dev("2"): ("reply", BUSY),
    dev("3"): ("reply", ERROR),
    dev("4"): ("silent",),
    dev("5"): ("reply", FAILED),
    dev("6"): ("late", 0.3, OK),
    dev("8"): ("reversed",),   # NODES in the wrong order
    dev("9"): ("bad_node",),   # a node outside [0-9A-Za-z]
    dev("b"): ("extra",),      # NODES with one entry more than the accounts asked
}


def node_for(account):
    """A stable 24-character alphanumeric node and secret per account (like the router's)."""
    alpha = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    n = int(account, 16)
    node = "".join(alpha[(n >> (6 * i)) % 62] for i in range(24))
    secret = "".join(alpha[(n >> (6 * i + 3)) % 62] for i in range(24))[::-1]
    return "N" + node[1:], "S" + secret[1:]


class FakeRouter:
    def __init__(self, path):
        self.path = path
        self.requests = []      # (type, {tag: value or [values]})
        self.hellos = 0
        self.lsock = None
        self.conns = []
        self.lock = threading.Lock()
        self.running = False

    def start(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lsock.bind(self.path)
        self.lsock.listen(16)
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def stop(self):
        """The router goes away: listener and every connection closed."""
        self.running = False
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.conns = []
        self.lsock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def drop_connections(self):
        """Closes the ingress's connection but keeps listening (a router restart)."""
        with self.lock:
            for c in self.conns:
                c.shutdown(socket.SHUT_RDWR)

    def _send(self, conn, buf):
        try:
            conn.send(buf)
        except OSError:
            pass

    def _answer(self, conn, ftype, fid, fields):
        one = {}
        for tag, v in fields:
            one.setdefault(tag, []).append(v)
        with self.lock:
            self.requests.append((ftype, one))
        device = one.get(TAG_DEVICE_ID, [b""])[0].decode()
        b = BEHAVIOUR.get(device, ("ok",))
        if b[0] == "silent":
            return
        if b[0] == "late":
            reply = frames.encode(frames.REPLY, fid, [(frames.TAG_STATUS, b[2])])
            threading.Timer(b[1], self._send, (conn, reply)).start()
            return
        if b[0] == "reply":
            self._send(conn, frames.encode(frames.REPLY, fid, [(frames.TAG_STATUS, b[1])]))
            return
        if ftype != ACCOUNTS or (device == dev("7") and not one.get(TAG_ACCOUNT)):  # "7": plain OK for no accounts
            self._send(conn, frames.encode(frames.REPLY, fid, [(frames.TAG_STATUS, OK)]))
            return
        out = []
        accs = one.get(TAG_ACCOUNT, [])
        if b[0] == "reversed":
            accs = accs[::-1]
        if b[0] == "extra":
            accs = accs + [b"%064x" % (len(accs) + 0xe0)]
        for acc in accs:
            acc = acc.decode()
            if acc.lower().startswith("ee"):  # this account cannot be stored
                out += [(TAG_ACCOUNT, acc), (TAG_NODE, b""), (TAG_SECRET, b""), (frames.TAG_STATUS, ERROR)]
            else:
                node, secret = node_for(acc)
                if b[0] == "bad_node":
                    node = "bad node!"
                out += [(TAG_ACCOUNT, acc), (TAG_NODE, node), (TAG_SECRET, secret), (frames.TAG_STATUS, OK)]
        self._send(conn, frames.encode(NODES, fid, out))

    def _loop(self):
        hello_done = set()
        while self.running:
            socks = [self.lsock] + self.conns
            r, _, _ = select.select(socks, [], [], 0.05)
            for s in r:
                if s is self.lsock:
                    c, _ = self.lsock.accept()
                    with self.lock:
                        self.conns.append(c)
                    continue
                try:
                    buf = s.recv(65536)
                except OSError:
                    buf = b""
                if not buf:
                    with self.lock:
                        self.conns.remove(s)
                    hello_done.discard(s)
                    s.close()
                    continue
                # Requests come one per message or several in a FRAME_BATCH, as to the router.
                for ftype, fid, fields in frames.decode_all(buf):
                    if s not in hello_done and ftype == frames.HELLO:
                        hello_done.add(s)
                        with self.lock:
                            self.hellos += 1
                        continue
                    self._answer(s, ftype, fid, fields)

    def last(self):
        with self.lock:
            return self.requests[-1] if self.requests else (None, {})

    def count(self):
        with self.lock:
            return len(self.requests)


class FakeStatsd:
    """Binds the statsd datagram socket and sums every FRAME_COUNTER it receives."""

    def __init__(self, path):
        self.sums = {}
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if os.path.exists(path):
            os.unlink(path)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.lock = threading.Lock()
        self.running = True
        # Read all the time: the kernel queues only a few datagrams, the daemon drops the rest.
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def poll(self):
        with self.lock:
            return dict(self.sums)

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()

    def _loop(self):
        while self.running:
            try:
                buf = self.sock.recv(65536)
            except socket.timeout:
                continue
            pos, cur = frames.HEADER, None
            while pos + 6 <= len(buf):
                tag, flen = struct.unpack_from("<HI", buf, pos)
                v = buf[pos + 6:pos + 6 + flen]
                if tag == TAG_COUNTER:
                    cur = struct.unpack("<I", v)[0]
                elif tag == TAG_DELTA and cur is not None:
                    with self.lock:
                        self.sums[cur] = self.sums.get(cur, 0) + struct.unpack("<Q", v)[0]
                pos += 6 + flen


def wait_for(cond, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False
