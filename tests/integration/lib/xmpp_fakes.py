"""xmpp_fakes: test doubles around ingress-xmpp, all on loopback:

* FakeRouter: a SEQPACKET listener on the router socket path that records every frame the
  ingress sends and answers through a scripted function (frames.py encoding);
* FakeXmppServer: the XMPP server side of a XEP-0114 component connection (accepts the stream,
  checks the handshake, sends stanzas, parses the component's replies into elements);
* Component: writes an ingress-xmpp configuration and runs the daemon.
"""
import hashlib, json, os, queue, select, socket, subprocess, threading, time, uuid
import xml.etree.ElementTree as ET

from lib import frames

def form_values(el):
    """The fields of the XEP-0004 data forms under el, as {var: value text or None}."""
    out = {}
    for f in el.iter("{jabber:x:data}field"):
        v = f.find("{jabber:x:data}value")
        out[f.get("var")] = v.text if v is not None else None
    return out


# Frame types and tags of the XMPP and UWPX contract (common/frame.h), beyond frames.py's.
NODES, XMPP_PUBLISH, XMPP_REGISTER, XMPP_UNREGISTER = 43, 44, 45, 46
TAG_ACCOUNT, TAG_NODE, TAG_SECRET, TAG_DOMAIN = 52, 53, 54, 55
TAG_MSG_COUNT, TAG_PENDING_COUNT, TAG_IDENTITY, TAG_CHANNEL = 57, 58, 59, 60
OK, NOT_FOUND, BUSY, ERROR, FORBIDDEN, UNAVAILABLE, FAILED = 0, 1, 2, 3, 4, 5, 6
F_HIGH = 0x2
frames.U32 |= {TAG_MSG_COUNT, TAG_PENDING_COUNT}

NS_ACCEPT = "jabber:component:accept"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def handshake_hex(stream_id, secret):
    return hashlib.sha1((stream_id + secret).encode()).hexdigest()


class FakeRouter:
    """answer(ftype, fid, fields) returns a list of frames (bytes) to send back, or []."""

    def __init__(self, path, answer=None):
        self.path = path
        self.answer = answer or (lambda t, i, f: [frames.encode(frames.REPLY, i, [(frames.TAG_STATUS, OK)])])
        self.frames = queue.Queue()
        self.hellos = 0
        self.stop_flag = False
        if os.path.exists(path):
            os.unlink(path)
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lsock.bind(path)
        self.lsock.listen(8)
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_flag:
            rl, _, _ = select.select([self.lsock] + self.conns, [], [], 0.05)
            for s in rl:
                if s is self.lsock:
                    c, _ = self.lsock.accept()
                    self.conns.append(c)
                    continue
                try:
                    buf = s.recv(200000)
                except OSError:
                    buf = b""
                if not buf:
                    self.conns.remove(s)
                    s.close()
                    continue
                # Requests come one per message or several in a FRAME_BATCH, as to the router.
                for ftype, fid, fields in frames.decode_all(buf):
                    if ftype == frames.HELLO:
                        self.hellos += 1
                        continue
                    self.frames.put((ftype, fid, fields))
                    for out in self.answer(ftype, fid, fields):
                        try:
                            s.send(out)
                        except OSError:
                            pass

    def connected(self):
        return len(self.conns) > 0 and self.hellos > 0

    def next_frame(self, timeout=5.0):
        try:
            return self.frames.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self):
        self.stop_flag = True
        self.thread.join(2)
        for c in self.conns:
            c.close()
        self.conns = []
        self.lsock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


class StanzaReader:
    """Splits a byte stream into depth-1 elements (and notes the stream's start and end)."""

    def __init__(self):
        self.p = ET.XMLPullParser(events=("start", "end", "start-ns"))
        self.depth = 0
        self.header = None
        self.ended = False
        self.raw = b""

    def feed(self, data):
        self.raw += data
        self.p.feed(data)
        out = []
        for ev, el in self.p.read_events():
            if ev == "start":
                self.depth += 1
                if self.depth == 1:
                    self.header = el
            elif ev == "end":
                self.depth -= 1
                if self.depth == 1:
                    out.append(el)
                elif self.depth == 0:
                    self.ended = True
        return out


class XmppConn:
    def __init__(self, sock):
        self.sock = sock
        self.reader = StanzaReader()
        self.pending = []
        self.stream_id = None

    def _read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return None
        self.pending += self.reader.feed(data)
        return True

    def wait(self, cond, timeout=5.0):
        end = time.time() + timeout
        while not cond():
            left = end - time.time()
            if left <= 0 or self._read(min(left, 0.2)) is None:
                return cond()
        return True

    def handshake(self, secret, domain, error=None, stream_id=None):
        """Plays the server side; error: a stream error condition to answer instead of success.
        Returns (ok, detail)."""
        if not self.wait(lambda: self.reader.header is not None):
            return False, "no stream header"
        h = self.reader.header
        if h.tag != "{%s}stream" % NS_STREAM or h.get("to") != domain:
            return False, "bad stream header %r %r" % (h.tag, h.attrib)
        self.stream_id = stream_id or str(uuid.uuid4())
        self.send("<?xml version='1.0'?><stream:stream xml:lang='en' from='%s' xmlns='jabber:component:accept' "
                  "id='%s' xmlns:stream='http://etherx.jabber.org/streams'>" % (domain, self.stream_id))
        el = self.recv(timeout=5)
        if el is None or el.tag != "{%s}handshake" % NS_ACCEPT:
            return False, "no handshake element"
        want = handshake_hex(self.stream_id, secret)
        if error:
            self.send("<stream:error><%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>" % error)
            return (el.text or "") == want, "sent " + error
        if (el.text or "") != want:
            self.send("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text "
                      "xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Given token does not match calculated token</text>"
                      "</stream:error></stream:stream>")
            return False, "handshake %r, expected %r" % (el.text, want)
        self.send("<handshake/>")
        return True, "ok"

    def send(self, s):
        self.sock.sendall(s.encode() if isinstance(s, str) else s)

    def recv(self, timeout=5.0):
        self.wait(lambda: len(self.pending) > 0, timeout)
        return self.pending.pop(0) if self.pending else None

    def raw_since(self, mark):
        return self.reader.raw[mark:]

    def closed_stream(self, timeout=5.0):
        return self.wait(lambda: self.reader.ended, timeout)

    def eof(self, timeout=5.0):
        end = time.time() + timeout
        while time.time() < end:
            r = self._read(0.2)
            if r is None:
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class FakeXmppServer:
    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]

    def accept(self, timeout=10.0):
        self.lsock.settimeout(timeout)
        try:
            s, _ = self.lsock.accept()
        except socket.timeout:
            return None
        return XmppConn(s)

    def close(self):
        self.lsock.close()


def error_of(el):
    """(type, condition) of an IQ error, or None."""
    e = el.find("{%s}error" % NS_ACCEPT)
    if e is None:
        return None
    conds = [c.tag.split("}")[1] for c in e if c.tag.startswith("{%s}" % NS_STANZAS)]
    return e.get("type"), conds[0] if conds else None


class Component:
    """Configuration and process of one ingress-xmpp."""

    def __init__(self, tmpdir, server, domain="push.localhost", secret="s3cr3t", **xmpp):
        self.dir = tmpdir
        os.makedirs(os.path.join(tmpdir, "run"), exist_ok=True)
        self.secret_file = os.path.join(tmpdir, "component.secret")
        with open(self.secret_file, "w") as f:
            f.write(secret + "\n")
        self.config = os.path.join(tmpdir, "ingress-xmpp.json")
        self.log_path = os.path.join(tmpdir, "ingress-xmpp.log")
        section = {"server": server, "domain": domain, "secret_file": self.secret_file}
        section.update(xmpp)
        extra = section.pop("extra", {})
        cfg = {"state_dir": os.path.join(tmpdir, "run"), "log_level": "info", "ingress_xmpp": section}
        cfg.update(extra)
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=1)
        self.proc = None

    @property
    def router_sock(self):
        return os.path.join(self.dir, "run", "router.sock")

    def start(self):
        self.proc = subprocess.Popen([os.path.join(TOP, "bin", "ingress-xmpp"), "-c", self.config],
                                     stderr=open(self.log_path, "ab"))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self, timeout=10):
        """SIGTERM, wait; returns (exit code, seconds taken)."""
        if self.proc is None:
            return None, 0
        t0 = time.time()
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc, time.time() - t0
