"""onion_env: shared helper of the onion integration tests (onion_interop.py,
onion_bad_input.py). Starts only statsd + router + ingress-onion through harness.Pipeline (no
senders, no mock provider) in a temporary directory, with the test-vector server key when
asked, and gives: encrypted round trips through the independent Python client
(tests/interop/bchat_client.py), raw HTTP, a fake sender on the router socket (to see which
jobs the router hands out), and a scan of the logs for secret key material. Loopback only."""
import base64, json, os, socket, struct, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "interop"))
import bchat_client as bc  # noqa: E402
from lib.harness import BIN, TOP, Checks, Pipeline  # noqa: E402

VECTORS = os.environ.get("PUSHPIPE_VECTORS") or os.path.join(TOP, "tests", "vectors", "bchat-onion-vectors.json")

SUCCESS = ("Success", 200, 1)
NOT_REGISTERED = ("Bchat id was not registered before.", 200, 0)
GROUP_UNKNOWN = ("Cannot find the closed group id on PN server.", 200, 0)
MISSING = ("Missing parameter", 400, 0)
INVALID = ("Invalid parameter", 400, 0)
BAD_ENDPOINT = ("Invalid endpoint", 400, 0)
BAD_REQUEST = ("Invalid request", 400, 0)
BUSY = ("Server busy", 400, 0)

V2 = "/beldex/v2/lsrpc"
V3 = "/beldex/v3/lsrpc"
V4 = "/beldex/v4/lsrpc"


def load_vectors():
    with open(VECTORS) as f:
        return json.load(f)


def inner_bytes(expect, v4):
    msg, status, code = expect
    return bc.inner_v4(status, code, msg) if v4 else bc.inner_v2(status, code, msg)


class OnionEnv:
    """statsd + router + ingress-onion. `edit(cfg_dict)` may change the generated JSON
    configuration before start; vector_key installs the test vectors' server key pair (docs/protocol.md §6.10)."""

    def __init__(self, edit=None, vector_key=False, keep=False):
        self.p = Pipeline(keep=keep)
        self.dir = self.p.dir
        self.port = self.p.http
        self.secrets = []           # every secret that must never reach a log
        self.statuses = []          # every HTTP status seen (for the "never 5xx" check)
        if vector_key:
            v = load_vectors()
            with open(os.path.join(self.dir, "keys", "server.key"), "w") as f:
                f.write(" \t" + v["server_x25519_priv"] + "\r\n")  # surrounding whitespace (docs/protocol.md §1)
            with open(os.path.join(self.dir, "keys", "server.pub"), "w") as f:
                f.write(v["server_x25519_pub"] + "\n")
        with open(os.path.join(self.dir, "keys", "server.key")) as f:
            self.server_sk = bytes.fromhex(f.read().strip())
        with open(self.p.pubkey_file) as f:
            self.server_pk = bytes.fromhex(f.read().strip())
        self.secrets.append(self.server_sk)
        self.edit_config(lambda c: c.update(log_level="debug"))
        if edit:
            self.edit_config(edit)

    # ------------------------------------------------------------ processes
    def edit_config(self, fn):
        with open(self.p.config) as f:
            cfg = json.load(f)
        fn(cfg)
        with open(self.p.config, "w") as f:
            json.dump(cfg, f, indent=1)

    def start(self):
        for d in ("statsd", "router", "ingress-onion"):
            self.p.start(d)
        self.p.wait_for(self.p.ingress_up, "ingress listening")
        self.wait_ready()

    def wait_ready(self, timeout=15.0):
        """Until the router answers through the ingress (an unknown-token unregister)."""
        with open(self.p.config) as f:
            salts = json.load(f).get("ingress_onion", {}).get("v2_salts") or ["BELDEX"]
        end = time.time() + timeout
        while time.time() < end:
            try:
                st, got = self.call(V2, "unregister", {"token": "probe-" + os.urandom(6).hex()}, salt=salts[0])
                if st == 200 and got == inner_bytes(NOT_REGISTERED, False):
                    self._wait_all_workers()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("ingress never got an answer from the router")

    def _wait_all_workers(self, timeout=5.0):
        """The probe reached one HTTP worker; each worker has its own link and logs one
        "connected to" line per (re)connection, so a whole round is a multiple of their number.
        Gives up quietly: the probe already showed the router answers."""
        with open(self.p.config) as f:
            workers = json.load(f).get("ingress_onion", {}).get("threads", 2)
        line = "connected to " + os.path.join(self.p.dir, "run", "router.sock")
        end = time.time() + timeout
        while time.time() < end:
            n = self.p.log("ingress-onion").count(line)
            if n >= workers and n % workers == 0:
                return
            time.sleep(0.05)

    def restart_ingress(self, edit=None):
        self.p.kill("ingress-onion")
        if edit:
            self.edit_config(edit)
        self.p.start("ingress-onion")
        self.p.wait_for(self.p.ingress_up, "ingress listening again")
        self.wait_ready()

    def proc(self, name="ingress-onion"):
        return self.p.procs.get(name)

    def alive(self, name="ingress-onion"):
        pr = self.proc(name)
        return pr is not None and pr.poll() is None

    def stop(self):
        self.p.stop()

    def logs(self):
        return self.p.logs()

    def log_text(self, name="ingress-onion"):
        try:
            with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------ requests
    def request(self, plaintext, target=V2, cipher=bc.AES_GCM, salt=None, **kw):
        if salt is None:
            salt = "BELDEX"
        r = bc.Request(self.server_pk, plaintext, target, cipher, salt, **kw)
        self.secrets.extend(r.secrets())
        return r

    def post(self, path, body, **kw):
        r = bc.http_post(self.port, path, body, **kw)
        self.statuses.append(r.status)
        return r

    def roundtrip(self, plaintext, target=V2, cipher=bc.AES_GCM, salt=None, chunked=False, **kw):
        """POSTs one encrypted request; returns (Request, Reply, inner plaintext or None)."""
        req = self.request(plaintext, target, cipher, salt, **kw)
        rep = self.post(target, req.body, chunked=chunked)
        inner = None
        if rep.status == 200:
            try:
                inner = req.open_reply(rep.body, v4="/v4/" in target)
            except Exception as e:  # reported by the caller as a mismatch
                inner = ("undecryptable: %r" % e).encode()
        return req, rep, inner

    def call(self, target, endpoint, args, cipher=bc.AES_GCM, style="plain", salt=None):
        """One action; returns (HTTP status, inner reply bytes or None)."""
        v4 = "/v4/" in target
        pt = bc.v4_plaintext(endpoint, args) if v4 else bc.v2_plaintext(endpoint, args, style)
        _, rep, inner = self.roundtrip(pt, target, cipher, salt)
        return rep.status, inner

    # ------------------------------------------------------------ statistics
    def stats(self):
        with open(os.path.join(self.dir, "keys", "stats.password")) as f:
            pw = f.read().strip()
        auth = base64.b64encode(b"any:" + pw.encode()).decode()
        r = bc.http_post(self.port, "/get_statistics_data", b"{}",
                         headers={"Authorization": "Basic " + auth, "Content-Type": "application/json"})
        return r.status, (json.loads(r.body) if r.status == 200 else r.body)

    # ------------------------------------------------------------ secrets in logs
    def leaked_secrets(self):
        """Names of log files containing any secret: its hex (either case), its base64
        (standard or URL-safe, padded or not), or any 12 hex digits of the server secret."""
        hexpats, b64pats = set(), set()
        for s in self.secrets:
            hexpats.add(s.hex())
            b = base64.b64encode(s).decode()
            b64pats.update([b, b.rstrip("="), base64.urlsafe_b64encode(s).decode().rstrip("=")])
        sk = self.server_sk.hex()
        for i in range(0, 64 - 12 + 1, 2):
            hexpats.add(sk[i:i + 12])
        bad = []
        for fn in sorted(os.listdir(self.dir)):
            if fn.endswith(".log"):
                with open(os.path.join(self.dir, fn), errors="replace") as f:
                    text = f.read()
                low = text.lower()
                if any(h in low for h in hexpats) or any(b in text for b in b64pats):
                    bad.append(fn)
        return bad


# ---------------------------------------------------------------- frames (common/frame.h)
FRAME_MAGIC, FRAME_VERSION = 0x5070, 8
FRAME_HELLO, FRAME_PUSH = 1, 20
TAG_ROLE, TAG_INSTANCE, TAG_PID, TAG_PLATFORM = 1, 2, 3, 4
TAG_TOKEN, TAG_DATA = 11, 15
ROLE_SENDER, PLATFORM_IOS, PLATFORM_ANDROID = 3, 1, 2


def frame(ftype, fields, fid=0):
    payload = b"".join(struct.pack("<HI", tag, len(v)) + v for tag, v in fields)
    return struct.pack("<HBBIQ", FRAME_MAGIC, FRAME_VERSION, ftype, len(payload), fid) + payload


def frame_fields(buf):
    magic, ver, ftype, n, fid = struct.unpack("<HBBIQ", buf[:16])
    pos, out = 16, []
    while pos < 16 + n:
        tag, ln = struct.unpack("<HI", buf[pos:pos + 6])
        out.append((tag, buf[pos + 6:pos + 6 + ln]))
        pos += 6 + ln
    return ftype, fid, out


class FakeSender:
    """Connects to router-sender.sock as a sender of one platform and records every push frame it is
    handed (never answers, so the jobs simply stay in flight)."""

    def __init__(self, env, platform=PLATFORM_IOS):
        self.pushes = []
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.connect(os.path.join(env.dir, "run", "router-sender.sock"))
        u32 = lambda v: struct.pack("<I", v)  # noqa: E731
        self.s.sendall(frame(FRAME_HELLO, [(TAG_ROLE, u32(ROLE_SENDER)), (TAG_PLATFORM, u32(platform)),
                                           (TAG_PID, u32(os.getpid())), (TAG_INSTANCE, b"fake")]))
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        self.s.settimeout(0.2)
        while not self.stop:
            try:
                b = self.s.recv(256 * 1024)
            except socket.timeout:
                continue
            except OSError:
                return
            if not b:
                return
            ftype, fid, fields = frame_fields(b)
            if ftype == FRAME_PUSH:
                d = dict(fields)
                self.pushes.append((d.get(TAG_TOKEN), d.get(TAG_DATA)))

    def datas(self):
        return [d for _, d in self.pushes]

    def close(self):
        self.stop = True
        self.t.join(2)
        self.s.close()
