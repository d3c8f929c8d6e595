"""nats_raw: a minimal NATS protocol client over a plain socket (CONNECT, PUB, HPUB, SUB, PING),
and helpers to start a local nats-server cluster from scripts/mknats.py's configuration.
Enough for the cluster tests to check what the server allows and refuses, without a client
library. Trusts the server it talks to (a local test server); bounded waits everywhere."""
import json
import os
import re
import socket
import subprocess
import time
import urllib.request


class NatsError(Exception):
    pass


class Conn:
    def __init__(self, port, user=None, password=None, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.inbox = "_INBOX_%s" % user if user else "_INBOX"  # the user's own inboxes (docs/cluster.md)
        self.buf = b""
        self.errors = []     # every -ERR line the server sent, in order
        self.msgs = []       # (subject, sid, reply, headers bytes or None, payload)
        self.sid = 0
        line = self._line()
        if not line.startswith(b"INFO "):
            raise NatsError("no INFO from the server: %r" % line)
        self.info = json.loads(line[5:])
        c = {"verbose": False, "pedantic": False, "protocol": 1, "headers": True,
             "no_responders": True, "name": "nats_raw"}
        if user is not None:
            c["user"], c["pass"] = user, password
        self._send(b"CONNECT " + json.dumps(c).encode() + b"\r\n")
        self.ping()  # raises on an authorization error

    def _send(self, b):
        self.sock.sendall(b)

    def _fill(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NatsError("timed out")
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                raise NatsError("timed out")
            if not d:
                raise NatsError("connection closed by the server (errors: %s)" % self.errors)
            self.buf += d
            return

    def _line(self, deadline=None):
        deadline = deadline or time.monotonic() + 5
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n, deadline):
        while len(self.buf) < n + 2:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _read_one(self, deadline):
        """Reads one protocol line (and a message's payload); returns its verb."""
        line = self._line(deadline)
        if line.startswith(b"MSG "):
            p = line.split()
            subj, sid = p[1].decode(), p[2].decode()
            reply = p[3].decode() if len(p) == 5 else None
            self.msgs.append((subj, sid, reply, None, self._bytes(int(p[-1]), deadline)))
            return "MSG"
        if line.startswith(b"HMSG "):
            p = line.split()
            subj, sid = p[1].decode(), p[2].decode()
            reply = p[3].decode() if len(p) == 6 else None
            hlen, tlen = int(p[-2]), int(p[-1])
            data = self._bytes(tlen, deadline)
            self.msgs.append((subj, sid, reply, data[:hlen], data[hlen:]))
            return "MSG"
        if line == b"PING":
            self._send(b"PONG\r\n")
            return "PING"
        if line == b"PONG":
            return "PONG"
        if line.startswith(b"-ERR"):
            self.errors.append(line.decode(errors="replace"))
            return "ERR"
        if line.startswith(b"INFO ") or line == b"+OK":
            return "INFO"
        raise NatsError("unexpected line from the server: %r" % line)

    def ping(self, timeout=5.0):
        """Round trip: everything the server sent before its PONG has been read."""
        self._send(b"PING\r\n")
        deadline = time.monotonic() + timeout
        while True:
            v = self._read_one(deadline)
            if v == "PONG":
                return
            if v == "ERR" and ("Authorization" in self.errors[-1] or "Authentication" in self.errors[-1]):
                raise NatsError(self.errors[-1])

    def pub(self, subject, payload=b"", reply=None, headers=None):
        """Publishes and waits for the round trip; returns the -ERR lines this publish caused."""
        n = len(self.errors)
        r = (" " + reply) if reply else ""
        if headers:
            h = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers.items()) + b"\r\n"
            self._send(b"HPUB %s%s %d %d\r\n%s%s\r\n" % (subject.encode(), r.encode(), len(h), len(h) + len(payload), h, payload))
        else:
            self._send(b"PUB %s%s %d\r\n%s\r\n" % (subject.encode(), r.encode(), len(payload), payload))
        self.ping()
        return self.errors[n:]

    def sub(self, subject):
        """Subscribes; returns (sid, the -ERR lines this subscription caused)."""
        self.sid += 1
        n = len(self.errors)
        self._send(b"SUB %s %d\r\n" % (subject.encode(), self.sid))
        self.ping()
        return str(self.sid), self.errors[n:]

    def wait_msgs(self, sid, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len([m for m in self.msgs if m[1] == sid]) < count:
            try:
                self._read_one(deadline)
            except NatsError:
                break
        return [m for m in self.msgs if m[1] == sid]

    def request(self, subject, payload=b"", timeout=5.0):
        """Core request/reply through a fresh inbox; returns the reply payload, or None."""
        inbox = "%s.raw%d%d" % (self.inbox, os.getpid(), self.sid + 1)
        sid, err = self.sub(inbox)
        if err:
            raise NatsError(err[0])
        err = self.pub(subject, payload, reply=inbox)
        if err:
            raise NatsError(err[0])
        got = self.wait_msgs(sid, 1, timeout)
        self._send(b"UNSUB %s\r\n" % sid.encode())
        return got[0][4] if got else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def read_cred(path):
    with open(path) as f:
        user, pw = f.readline().strip().split(":", 1)
    return user, pw


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Cluster:
    """N nats-server nodes started from scripts/mknats.py's files in DIR (not under runit)."""

    def __init__(self, top, d, n=3):
        self.d, self.n = d, n
        p = free_ports(3 * n)
        self.client, self.route, self.http = p[:n], p[n:2 * n], p[2 * n:]
        subprocess.run([os.path.join(top, "scripts/mknats.py"), d,
                        os.path.join(top, "deploy/nats/permissions.json"),
                        ",".join(map(str, self.client)), ",".join(map(str, self.route)),
                        ",".join(map(str, self.http))], check=True)
        self.procs = {}
        for i in range(1, n + 1):
            self.start(i)

    def start(self, i):
        log = open(os.path.join(self.d, "nats-%d.log" % i), "ab")
        self.procs[i] = subprocess.Popen(["nats-server", "-c", os.path.join(self.d, "nats-%d.conf" % i)],
                                         stdout=log, stderr=log)

    def cred(self, user):
        return read_cred(os.path.join(self.d, user + ".cred"))

    def conn(self, user, node=1):
        u, pw = self.cred(user)
        return Conn(self.client[node - 1], u, pw)

    def jsz(self, node=1):
        with urllib.request.urlopen("http://127.0.0.1:%d/jsz?streams=true&consumers=true" % self.http[node - 1], timeout=3) as r:
            return json.load(r)

    def wait_ready(self, timeout=30.0):
        """Until every node answers and JetStream has a meta leader (R3 streams can be made)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ok = all(self.jsz(i).get("meta_cluster", {}).get("leader") for i in range(1, self.n + 1))
                if ok:
                    return True
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        return False

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
        for p in self.procs.values():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def js_api(conn, what, body, timeout=10.0, retries=20):
    """A JetStream API call ($JS.API.<what>) through conn; returns the decoded answer.
    Retries while the cluster answers "no responders" / times out (no leader yet)."""
    last = None
    for _ in range(retries):
        try:
            r = conn.request("$JS.API." + what, json.dumps(body).encode() if body is not None else b"", timeout)
        except NatsError as e:
            last = str(e)
            r = None
        if r:
            ans = json.loads(r)
            err = ans.get("error")
            if not err or err.get("code") not in (503, 500):
                return ans
            last = err
        time.sleep(0.5)
    raise NatsError("JetStream API %s: no answer (%s)" % (what, last))


def parse_err(lines):
    return " | ".join(lines)


PERM_RE = re.compile(r"Permissions Violation")
