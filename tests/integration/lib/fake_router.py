"""fake_router: plays the router towards the senders in integration tests. Listens on the
router-sender.sock path (SOCK_SEQPACKET), takes each sender's hello, sends it PUSH frames and reads
its RESULT frames (frames.py encodes and decodes them independently of the C code)."""
import os, select, socket, time
from lib import frames as F

PLATFORM_WNS = 4
KIND_BCHAT, KIND_WNS, KIND_XMPP = 1, 2, 3
ROLE_SENDER = 3
OUTCOMES = {1: "delivered", 2: "token_dead", 3: "retry", 4: "message_failed", 5: "credentials", 6: "token_suspect"}


class FakeRouter:
    def __init__(self, path):
        if os.path.exists(path):
            os.unlink(path)
        self.ls = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.ls.bind(path)
        self.ls.listen(8)
        self.senders = {}   # platform -> connected socket
        self.hellos = {}    # platform -> hello fields
        self.results = {}   # (platform, id) -> result dict

    def accept(self, platform, timeout=15.0):
        """Waits until a sender of this platform has said hello; returns its hello fields."""
        end = time.time() + timeout
        while platform not in self.senders:
            left = end - time.time()
            if left <= 0:
                raise RuntimeError(f"no sender of platform {platform} said hello")
            r, _, _ = select.select([self.ls], [], [], left)
            if not r:
                continue
            c, _ = self.ls.accept()
            c.settimeout(5)
            ftype, _, fields = F.decode(c.recv(65536))
            if ftype != F.HELLO or F.field(fields, F.TAG_ROLE) != ROLE_SENDER:
                c.close()
                continue
            plat = F.field(fields, F.TAG_PLATFORM, 0)
            old = self.senders.pop(plat, None)
            if old:
                old.close()
            self.senders[plat] = c
            self.hellos[plat] = fields
        return self.hellos[platform]

    def forget(self, platform):
        c = self.senders.pop(platform, None)
        if c:
            c.close()

    def push(self, platform, fid, kind, token, data):
        self.senders[platform].send(F.encode(F.PUSH, fid, [(F.TAG_PLATFORM, platform), (F.TAG_KIND, kind),
                                                            (F.TAG_TOKEN, token), (F.TAG_DATA, data),
                                                            (F.TAG_ATTEMPT, 0)]))

    def result(self, platform, fid, timeout=15.0):
        """The RESULT for job fid: {"outcome": name, "retry_after", "reason", "status", "timestamp"}."""
        end = time.time() + timeout
        s = self.senders[platform]
        while (platform, fid) not in self.results:
            left = end - time.time()
            if left <= 0:
                raise RuntimeError(f"no result for job {fid}")
            r, _, _ = select.select([s], [], [], left)
            if not r:
                continue
            buf = s.recv(65536)
            if not buf:
                raise RuntimeError("sender closed the connection")
            ftype, rid, fields = F.decode(buf)
            assert ftype == F.RESULT, f"unexpected frame type {ftype}"
            reason = F.field(fields, F.TAG_REASON, b"")
            self.results[(platform, rid)] = {
                "outcome": OUTCOMES.get(F.field(fields, F.TAG_OUTCOME), "?"),
                "retry_after": F.field(fields, F.TAG_RETRY_AFTER, 0),
                "timestamp": F.field(fields, F.TAG_TIMESTAMP, 0),
                "reason": reason.decode(errors="replace") if isinstance(reason, bytes) else reason,
                "status": F.field(fields, F.TAG_STATUS, 0),
            }
        return self.results.pop((platform, fid))

    def close(self):
        for c in self.senders.values():
            c.close()
        self.ls.close()
