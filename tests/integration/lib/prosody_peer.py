"""prosody_peer: a real Prosody with mod_cloud_notify on loopback as the test peer of the XMPP
component, and a minimal XMPP client (plain TCP, SASL PLAIN) to drive it. Reusable building
blocks for integration tests:

    ok, why = ensure_prosody()                # installs Debian prosody + prosody-modules if missing
    p = ProsodyPeer(tmpdir, users={"alice": "alicepw"}); p.start()
    comp = Component(tmpdir, p.component_server, secret=p.component_secret)   # xmpp_fakes.py
    with XmppClient(p.c2s_port, "alice", "alicepw") as a: a.enable_push("push.localhost", node, secret)
    p.stop()
"""
import base64, os, shutil, signal, socket, subprocess, time, uuid

from lib.xmpp_fakes import StanzaReader

NS_CLIENT = "jabber:client"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
CLOUD_NOTIFY = "/usr/lib/prosody/modules/mod_cloud_notify"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _installed():
    return shutil.which("prosody") is not None and shutil.which("prosodyctl") is not None and (
        os.path.isdir(CLOUD_NOTIFY) or os.path.exists(CLOUD_NOTIFY + ".lua"))


def ensure_prosody():
    """Installs prosody and prosody-modules with apt-get when missing. (ok, reason)."""
    if _installed():
        return True, "installed"
    if os.geteuid() != 0:
        return False, "prosody / prosody-modules are not installed and this is not root (apt-get install prosody prosody-modules)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prosody", "prosody-modules"],
                           env=env, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, "apt-get failed: %s" % e
    if r.returncode != 0 or not _installed():
        return False, "apt-get install prosody prosody-modules failed: %s" % (r.stderr or r.stdout)[-500:]
    return True, "installed now"


CONFIG = """-- loopback-only test peer for the push component
{run_as_root}
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
log = {{ debug = "{dir}/logs/prosody.log" }}

interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ {s2s} }}
component_ports = {{ {comp} }}
http_ports = {{ }}
https_ports = {{ }}
admins = {{ }}

authentication = "internal_plain"
storage = "internal"
c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = true -- test only

modules_enabled = {{
  "disco"; "roster"; "saslauth"; "carbons"; "pep"; "smacks"; "ping"; "offline";
}}
modules_disabled = {{ "s2s"; "tls"; "posix"; "http"; }}

VirtualHost "{vhost}"
  modules_enabled = {{ "cloud_notify" }}
  push_notification_important_body = "New Message!"
{vhost_extra}
Component "{comp_domain}"
  component_secret = "{comp_secret}"
"""


class ProsodyPeer:
    def __init__(self, tmpdir, users=None, vhost="localhost", comp_domain="push.localhost", comp_secret=None,
                 vhost_extra=""):
        self.dir = os.path.join(tmpdir, "prosody")
        for d in ("data", "logs", "certs"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        self.vhost = vhost
        self.comp_domain = comp_domain
        self.component_secret = comp_secret or uuid.uuid4().hex
        self.c2s_port, self.s2s_port, self.comp_port = free_port(), free_port(), free_port()
        self.users = users or {"alice": "alicepw", "bob": "bobpw"}
        self.cfg = os.path.join(self.dir, "prosody.cfg.lua")
        with open(self.cfg, "w") as f:
            f.write(CONFIG.format(dir=self.dir, c2s=self.c2s_port, s2s=self.s2s_port, comp=self.comp_port,
                                  vhost=vhost, vhost_extra=vhost_extra, comp_domain=comp_domain,
                                  comp_secret=self.component_secret,
                                  run_as_root="run_as_root = true" if os.geteuid() == 0 else ""))
        self.proc = None
        self.registered = False

    @property
    def component_server(self):
        return "127.0.0.1:%d" % self.comp_port

    @property
    def log_path(self):
        return os.path.join(self.dir, "logs", "prosody.log")

    def register_users(self):
        for user, pw in self.users.items():
            r = subprocess.run(["prosodyctl", "--config", self.cfg, "register", user, self.vhost, pw],
                               capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                raise RuntimeError("prosodyctl register %s: %s" % (user, r.stderr or r.stdout))

    def start(self, timeout=20):
        if not self.registered:
            self.register_users()
            self.registered = True
        self.proc = subprocess.Popen(["prosody", "--config", self.cfg, "-F"], stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.dir, "logs", "stdout.log"), "ab"),
                                     stderr=subprocess.STDOUT)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("prosody exited with %s: %s" % (self.proc.returncode, self.log()[-2000:]))
            if self._listening(self.c2s_port) and self._listening(self.comp_port):
                return
            time.sleep(0.1)
        raise RuntimeError("prosody not listening after %d s" % timeout)

    @staticmethod
    def _listening(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                return True
        except OSError:
            return False

    def stop(self):
        """SIGTERM to the PID we started, up to 5 s, then SIGKILL (never by name)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, text, timeout=10.0, since=0):
        end = time.time() + timeout
        while time.time() < end:
            if text in self.log()[since:]:
                return True
            time.sleep(0.1)
        return False


class XmppClient:
    """A c2s client: plain TCP, SASL PLAIN, resource binding, a few stanzas."""

    def __init__(self, port, user, password, domain="localhost", resource="lab", timeout=10.0):
        self.domain, self.user = domain, user
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.pending = []
        self.seq = 0
        self._open_stream()
        feats = self.expect("{%s}features" % NS_STREAM)
        mechs = [m.text for m in feats.iter("{%s}mechanism" % NS_SASL)]
        if "PLAIN" not in mechs:
            raise RuntimeError("no SASL PLAIN offered: %s" % mechs)
        cred = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, cred))
        r = self.expect(None)
        if r.tag != "{%s}success" % NS_SASL:
            raise RuntimeError("authentication failed: %s" % r.tag)
        self._open_stream()
        self.expect("{%s}features" % NS_STREAM)
        r = self.iq("set", "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind>" % resource)
        jid = r.find(".//{urn:ietf:params:xml:ns:xmpp-bind}jid")
        self.jid = jid.text if jid is not None else None

    def _open_stream(self):
        self.reader = StanzaReader()
        self.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='%s' to='%s' version='1.0'>"
                  % (NS_STREAM, self.domain))

    def send(self, s):
        self.sock.sendall(s.encode())

    def recv(self, timeout=None):
        end = time.time() + (timeout if timeout is not None else self.timeout)
        while not self.pending:
            left = end - time.time()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not data:
                return None
            self.pending += self.reader.feed(data)
        return self.pending.pop(0)

    def expect(self, tag, timeout=None):
        """The next element with this tag (None: any), skipping others (presence, messages)."""
        while True:
            el = self.recv(timeout)
            if el is None:
                raise RuntimeError("timed out waiting for %s" % tag)
            if tag is None or el.tag == tag:
                return el

    def iq(self, type_, payload, to=None):
        self.seq += 1
        iq_id = "%s%d" % (self.user, self.seq)
        self.send("<iq type='%s' id='%s'%s>%s</iq>" % (type_, iq_id, " to='%s'" % to if to else "", payload))
        while True:
            el = self.expect("{%s}iq" % NS_CLIENT)
            if el.get("id") == iq_id:
                if el.get("type") != "result":
                    raise RuntimeError("iq %s failed: %s" % (iq_id, el.get("type")))
                return el

    def enable_push(self, jid, node, secret, hidden=False):
        t = " type='hidden'" if hidden else ""
        return self.iq("set", "<enable xmlns='urn:xmpp:push:0' jid='%s' node='%s'><x xmlns='jabber:x:data' type='submit'>"
                              "<field var='FORM_TYPE'%s><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
                              "<field var='secret'%s><value>%s</value></field></x></enable>" % (jid, node, t, t, secret))

    def disable_push(self, jid, node=None):
        return self.iq("set", "<disable xmlns='urn:xmpp:push:0' jid='%s'%s/>" % (jid, " node='%s'" % node if node else ""))

    def message(self, to, body):
        self.seq += 1
        self.send("<message to='%s' type='chat' id='m%d'><body>%s</body></message>" % (to, self.seq, body))

    def close(self):
        try:
            self.send("</stream:stream>")
            self.sock.settimeout(2)
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
