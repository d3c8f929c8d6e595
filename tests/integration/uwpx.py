"""ingress-uwpx end to end over real TLS (Python's ssl module as the client) with a scripted
fake router (uwpx_fake.py) on the router's SEQPACKET socket: every action and every error
string of docs/uwpx.md ("Errors"), NUL framing (split messages, two in one write, BOM, empty
message, the size cap), one TLS record per reply, the first-message and idle timeouts, the
connection cap, the router being down or going away while a client waits, the test-push
deadline, counters, IPv6, and no secret or channel token in the log."""
import sys
sys.dont_write_bytecode = True
import json, os, shutil, signal, socket, ssl, subprocess, tempfile, time
from lib.harness import BIN, TOP, Checks, free_port
from lib import uwpx_fake as fk
from lib.uwpx_fake import dev

t = Checks()
keep = "-k" in sys.argv
d = tempfile.mkdtemp(prefix="pushpipe-uwpx-")
PORT = free_port()
CERT, KEY = os.path.join(d, "uwpx.pem"), os.path.join(d, "uwpx.key")
MAX_MESSAGE, FIRST_S, IDLE_S, MAX_CONN, DEADLINE_MS, ROUTER_MS = 8192, 3, 2, 4, 800, 500
TOKEN = "AwYAAAD%2bsecretchanneltoken%3d"
URI = "https://db5p.notify.windows.com/?token=" + TOKEN
ACC1 = "f9d4bb421963be0703134afcff4760790da19bbec398bdbb591014009074db2a"
ACC_BAD = "ee" * 32
OK_REPLY = b'{"action":"response","status":1,"version":2}\0'
ERR = {
    "malformed": "Malformed JSON.",
    "unsupported": "Unsupported message type.",
    "invalid": "Invalid JSON message.",
    "unknown": "Device id unknown.",
    "uri": "Invalid channel URI. Has to use the domain 'notify.windows.com'.",
    "test": "Failed to send test push. Something went wrong...",
    "internal": "Internal server error... Failed to process received JSON message.",
}
CTR_UWPX_REQUESTS, CTR_UWPX_ERRORS, CTR_UWPX_TEST_PUSHES = 25, 26, 27


def err(kind):
    return b'{"action":"response","error":"' + ERR[kind].encode() + b'","status":0,"version":2}\0'


def setup():
    subprocess.run([os.path.join(TOP, "scripts", "mkconfig.sh"), d, str(free_port()), str(free_port()), str(free_port())],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", KEY, "-out", CERT, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def write_config(listen):
    path = os.path.join(d, "pushpipe.json")
    with open(path) as f:
        c = json.load(f)
    c["log_level"] = "debug"
    c["ingress_uwpx"] = {"listen": listen, "cert_file": CERT, "key_file": KEY, "max_message": MAX_MESSAGE,
                         "first_timeout_s": FIRST_S, "idle_timeout_s": IDLE_S, "max_connections": MAX_CONN,
                         "test_push_deadline_ms": DEADLINE_MS, "router_timeout_ms": ROUTER_MS,
                         "allow_loopback_channels": True}
    c["ingress_xmpp"] = {"domain": "push.example.org"}
    with open(path, "w") as f:
        json.dump(c, f, indent=1)
    return path


class Daemon:
    def __init__(self, listen):
        self.log = os.path.join(d, "ingress-uwpx.log")
        self.p = subprocess.Popen([os.path.join(BIN, "ingress-uwpx"), "-c", write_config(listen)], stderr=open(self.log, "ab"))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()


def context(tls12=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(CERT)
    if tls12:  # the UWPX client pins TLS 1.2
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def connect(tls12=True, host="127.0.0.1"):
    raw = socket.create_connection((host, PORT), timeout=3)
    s = context(tls12).wrap_socket(raw, server_hostname="localhost")
    s.settimeout(3)  # the client waits 3 s for a reply
    return s


TALLY = {"replies": 0, "errors": 0}


def tally(buf):
    """Counts the replies the clients received, to compare with the daemon's counters."""
    TALLY["replies"] += buf.count(b"\0")
    TALLY["errors"] += buf.count(b'"status":0')
    return buf


def read_reply(s, n=1):
    """Reads until n NULs have arrived (or EOF/timeout); returns the bytes."""
    buf = b""
    try:
        while buf.count(b"\0") < n:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    return tally(buf)


def ask(msg, tls12=True):
    if isinstance(msg, dict):
        msg = json.dumps(msg, indent=2).replace("\n", "\r\n").encode()  # the client pretty-prints
    s = connect(tls12)
    s.sendall(msg + b"\0")
    r = read_reply(s)
    s.close()
    return r


def closed_by_server(s, within):
    """True when the server closes s within `within` seconds."""
    s.settimeout(within)
    try:
        return s.recv(4096) == b""
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def channel(device, uri=URI, version=2):
    return {"version": version, "action": "set_channel_uri", "device_id": device, "channel_uri": uri}


def accounts(device, accs, version=2):
    return {"version": version, "action": "set_push_accounts", "device_id": device,
            "accounts": [{"account_id": a} for a in accs]}


def test_push(device):
    return {"version": 2, "action": "request_test_push", "device_id": device}


def accounts_reply(accs, status):
    out = []
    for a in accs:
        if status.get(a, True):
            node, secret = fk.node_for(a)
            out.append({"account_id": a, "node": node, "secret": secret, "success": True})
        else:
            out.append({"account_id": a, "node": "", "secret": "", "success": False})
    return (json.dumps({"accounts": out, "action": "response", "push_bare_jid": "push.example.org", "status": 1, "version": 2},
                       separators=(",", ":"), sort_keys=True) + "\0").encode()


def records_client(msg):
    """A TLS 1.2 client over memory BIOs, to see the records: returns (decrypted reply,
    number of application-data records the server sent after the handshake)."""
    raw = socket.create_connection(("127.0.0.1", PORT), timeout=3)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context().wrap_bio(inc, out, server_hostname="localhost")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            raw.sendall(out.read())
            data = raw.recv(65536)
            if not data:
                raise RuntimeError("closed during handshake")
            inc.write(data)
    raw.sendall(out.read())
    obj.write(msg + b"\0")
    raw.sendall(out.read())
    stream, reply = b"", b""
    while not reply.endswith(b"\0"):
        data = raw.recv(65536)
        if not data:
            break
        stream += data
        inc.write(data)
        try:
            while True:
                reply += obj.read(65536)
        except ssl.SSLWantReadError:
            pass
    raw.close()
    tally(reply)
    records, pos = 0, 0
    while pos + 5 <= len(stream):
        ctype, length = stream[pos], int.from_bytes(stream[pos + 3:pos + 5], "big")
        records += ctype == 23
        pos += 5 + length
    return reply, records


def actions(router):
    # set_channel_uri: success, the device id lowercased, the URI exactly as sent.
    r = ask(channel(dev("A")))
    t.check(r == OK_REPLY, f"set_channel_uri → success {r!r}")
    ftype, f = router.last()
    t.check(ftype == fk.CHANNEL and f[fk.TAG_DEVICE_ID] == [dev("a").encode()] and f[fk.TAG_URI] == [URI.encode()],
            "router got FRAME_UWPX_CHANNEL with the lowercase device id and the URI")
    t.check(ask(channel(dev("a"), "http://127.0.0.1:8443/?token=x")) == OK_REPLY, "loopback channel accepted (test switch on)")
    n = router.count()
    t.check(ask(channel(dev("a"), "https://a.b.notify.windows.com/?token=x")) == err("uri"), "bad channel URI → URI error")
    t.check(ask(channel(dev("a"), "https://db5p.notify.windows.com:443/?token=x")) == err("uri"), "explicit port → URI error")
    t.check(router.count() == n, "refused URIs never reach the router")
    t.check(ask(channel(dev("2"))) == err("internal"), "set_channel_uri, router BUSY → internal error")
    t.check(ask(channel(dev("3"))) == err("internal"), "set_channel_uri, router ERROR → internal error")
    t0 = time.time()
    r = ask(channel(dev("4")))
    t.check(r == err("internal") and time.time() - t0 >= ROUTER_MS / 1000 - 0.05,
            f"set_channel_uri, no router answer → internal error after router_timeout_ms ({time.time() - t0:.2f} s)")

    # set_push_accounts: nodes, a failed account, duplicates collapsed, version passed on.
    accs = [ACC1, ACC_BAD, "0" * 63 + "1"]
    r = ask(accounts(dev("a"), accs + [ACC1.upper(), ACC1], version=1))
    t.check(r == accounts_reply(accs, {ACC_BAD: False}), f"set_push_accounts → exact accounts reply {r!r}")
    ftype, f = router.last()
    t.check(ftype == fk.ACCOUNTS and f[fk.TAG_ACCOUNT] == [a.encode() for a in accs] and f[fk.TAG_VERSION] == [1],
            "router got distinct accounts in request order and the version")
    r = ask(accounts(dev("a"), [ACC1.upper()]))
    t.check(r == accounts_reply([ACC1.upper()], {}), "account_id echoed exactly as received")
    t.check(ask(accounts(dev("a"), [])) == b'{"accounts":[],"action":"response","push_bare_jid":"push.example.org","status":1,"version":2}\0',
            "empty account list → accounts []")
    t.check(ask(accounts(dev("7"), [])) == b'{"accounts":[],"action":"response","push_bare_jid":"push.example.org","status":1,"version":2}\0',
            "empty account list confirmed with a plain OK → accounts []")
    t.check(ask(accounts(dev("1"), [ACC1])) == err("unknown"), "set_push_accounts, NOT_FOUND → Device id unknown.")
    t.check(ask(accounts(dev("2"), [ACC1])) == err("internal"), "set_push_accounts, BUSY → internal error")
    t.check(ask(accounts(dev("3"), [ACC1])) == err("internal"), "set_push_accounts, ERROR → internal error")
    t.check(ask(accounts(dev("4"), [ACC1])) == err("internal"), "set_push_accounts, no answer → internal error")
    t.check(ask(accounts(dev("8"), [ACC1, "0" * 64])) == err("internal"), "set_push_accounts, nodes in the wrong order → internal error")
    t.check(ask(accounts(dev("9"), [ACC1])) == err("internal"), "set_push_accounts, a malformed node → internal error")
    # More entries than accounts asked, also at the cap (64): refused, nothing written past them.
    for n in (1, 64):
        many = ["%064x" % (0x100 + i) for i in range(n)]
        t.check(ask(accounts(dev("b"), many)) == err("internal"),
                f"set_push_accounts, {n} accounts answered with {n + 1} nodes → internal error")
    t.check(ask(channel(dev("a"))) == OK_REPLY, "still serving after the oversized nodes answers")
    t.check(ask(accounts(dev("a"), ["%064x" % i for i in range(65)])) == err("invalid"), "65 accounts → Invalid JSON message.")

    # request_test_push.
    t.check(ask(test_push(dev("a"))) == OK_REPLY, "request_test_push, OK → success")
    t.check(router.last()[0] == fk.TEST, "router got FRAME_UWPX_TEST")
    t.check(ask(test_push(dev("5"))) == err("test"), "request_test_push, FAILED → test-push error")
    t.check(ask(test_push(dev("1"))) == err("unknown"), "request_test_push, NOT_FOUND → Device id unknown.")
    t.check(ask(test_push(dev("2"))) == err("internal"), "request_test_push, BUSY → internal error")
    t.check(ask(test_push(dev("6"))) == OK_REPLY, "request_test_push, answer after 0.3 s → success")
    t0 = time.time()
    r = ask(test_push(dev("4")))
    el = time.time() - t0
    t.check(r == OK_REPLY and DEADLINE_MS / 1000 - 0.05 <= el < 2.5, f"request_test_push, no outcome → success at the deadline ({el:.2f} s)")


def errors():
    D = dev("a")
    t.check(ask(b"not json") == err("malformed"), "not JSON → Malformed JSON.")
    t.check(ask(b'{"version":2,"action":"request_test_push","device_id":"\xff"}') == err("malformed"), "invalid UTF-8 → Malformed JSON.")
    t.check(ask(b"[1]") == err("malformed"), "not an object → Malformed JSON.")
    t.check(ask({"version": "2", "action": "request_test_push", "device_id": D}) == err("malformed"), "version as a string → Malformed JSON.")
    t.check(ask({"version": 2, "action": "response", "status": 1}) == err("unsupported"), "action response → Unsupported message type.")
    t.check(ask({"version": 2, "action": "register_push", "device_id": D}) == err("malformed"), "unknown action → Malformed JSON.")
    t.check(ask({"version": 3, "action": "request_test_push", "device_id": D}) == err("invalid"), "version 3 → Invalid JSON message.")
    t.check(ask({"version": 2, "action": "request_test_push", "device_id": "abc"}) == err("invalid"), "short device_id → Invalid JSON message.")
    t.check(ask({"version": 2, "action": "set_channel_uri", "device_id": D}) == err("invalid"), "no channel_uri → Invalid JSON message.")
    t.check(ask({"version": 1, "action": "request_test_push", "device_id": D}) == OK_REPLY, "version 1 accepted")
    t.check(ask(channel(D), tls12=False) == OK_REPLY, "TLS 1.3 (or the best the client offers) works too")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    refused = True
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", PORT), timeout=3)) as s:
            refused = False
    except (ssl.SSLError, OSError):
        pass
    t.check(refused, "TLS 1.1 is refused")


def framing(router):
    msg = json.dumps(test_push(dev("a"))).encode()
    # One message split across several TLS records.
    s = connect()
    for part in (msg[:5], msg[5:30], msg[30:], b"\0"):
        s.sendall(part)
        time.sleep(0.1)
    t.check(read_reply(s) == OK_REPLY, "a message split across four TLS records → one reply")
    # Connection kept open after the reply: a second message on it.
    s.sendall(msg + b"\0")
    t.check(read_reply(s) == OK_REPLY, "the connection stays open for another message")
    s.close()
    # Two messages in one write, answered in order (the second waits for the first).
    s = connect()
    s.sendall(json.dumps(accounts(dev("a"), [ACC1])).encode() + b"\0" + b"nope\0")
    r = read_reply(s, 2)
    t.check(r == accounts_reply([ACC1], {}) + err("malformed"), f"two messages in one write → two replies in order {r!r}")
    s.close()
    # A slow message then a fast one in one write: order still kept.
    s = connect()
    s.sendall(json.dumps(test_push(dev("6"))).encode() + b"\0" + json.dumps(test_push(dev("5"))).encode() + b"\0")
    t.check(read_reply(s, 2) == OK_REPLY + err("test"), "a message waiting for the router holds back the next one")
    s.close()
    # BOM, and an empty message ignored.
    t.check(ask(b"\xef\xbb\xbf" + msg) == OK_REPLY, "leading UTF-8 BOM skipped")
    s = connect()
    s.sendall(b"\0")
    s.sendall(msg + b"\0")
    t.check(read_reply(s, 1) == OK_REPLY, "an empty message is ignored (the next one is answered)")
    s.settimeout(0.3)
    try:
        extra = s.recv(4096)
    except socket.timeout:
        extra = None
    t.check(extra is None, "nothing more was sent")
    s.close()
    # Exactly the cap is fine; one byte more is Malformed JSON and the connection closes.
    pad = MAX_MESSAGE - len(msg)  # msg[:-1] + pad spaces + "}" = MAX_MESSAGE bytes
    t.check(ask(msg[:-1] + b" " * pad + b"}") == OK_REPLY, f"a message of exactly max_message ({MAX_MESSAGE}) bytes is accepted")
    s = connect()
    s.sendall(msg[:-1] + b" " * (pad + 1) + b"}\0")
    r = read_reply(s)
    t.check(r == err("malformed"), f"max_message + 1 bytes → Malformed JSON. {r!r}")
    t.check(closed_by_server(s, 2), "… and the connection is closed")
    s.close()
    s = connect()
    s.sendall(b"x" * (MAX_MESSAGE + 500))
    t.check(read_reply(s) == err("malformed") and closed_by_server(s, 2), "an endless message without a NUL → Malformed JSON., closed")
    s.close()
    # One TLS record per reply, and the whole reply in one read.
    for name, m, want in (("success", msg, OK_REPLY), ("error", b"nope", err("malformed")),
                          ("accounts", json.dumps(accounts(dev("a"), [ACC1, "0" * 64])).encode(), accounts_reply([ACC1, "0" * 64], {}))):
        reply, records = records_client(m)
        t.check(reply == want and records == 1, f"{name} reply in exactly one TLS record ({records})")
    s = connect()
    s.sendall(msg + b"\0")
    time.sleep(0.3)
    t.check(tally(s.recv(4096)) == OK_REPLY, "the reply, NUL included, arrives in one read")
    s.close()


def timeouts():
    # Idle: open for a while after a reply, closed after idle_timeout_s.
    s = connect()
    s.sendall(json.dumps(test_push(dev("a"))).encode() + b"\0")
    read_reply(s)
    t0 = time.time()
    t.check(closed_by_server(s, IDLE_S + 2) and IDLE_S - 0.3 <= time.time() - t0, f"idle connection closed after {time.time() - t0:.1f} s")
    s.close()
    # First message: a handshake and nothing else, or half a message, for first_timeout_s.
    s = connect()
    t0 = time.time()
    t.check(closed_by_server(s, FIRST_S + 2) and FIRST_S - 0.3 <= time.time() - t0, f"no message → closed after {time.time() - t0:.1f} s")
    s.close()
    s = connect()
    t0 = time.time()
    for _ in range(5):
        s.sendall(b" ")
        time.sleep(0.5)
    t.check(closed_by_server(s, FIRST_S + 2) and time.time() - t0 < FIRST_S + 1.5, "trickling bytes does not extend the first-message timeout")
    s.close()
    raw = socket.create_connection(("127.0.0.1", PORT), timeout=3)
    t0 = time.time()
    raw.settimeout(FIRST_S + 2)
    try:
        gone = raw.recv(10) == b""
    except (ConnectionResetError, socket.timeout):
        gone = False
    t.check(gone and time.time() - t0 >= FIRST_S - 0.3, "no TLS handshake → closed after first_timeout_s")
    raw.close()


def connection_cap():
    time.sleep(0.3)  # the earlier connections are gone
    held = [connect() for _ in range(MAX_CONN)]
    refused = False
    try:
        extra = connect()
        extra.sendall(b"x")
        refused = extra.recv(10) == b""
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError):
        refused = True
    t.check(refused, f"connection {MAX_CONN + 1} is refused")
    held[0].sendall(json.dumps(test_push(dev("a"))).encode() + b"\0")
    t.check(read_reply(held[0]) == OK_REPLY, "the held connections still work")
    for s in held:
        s.close()
    time.sleep(0.3)
    t.check(ask(test_push(dev("a"))) == OK_REPLY, "after they close, new connections are served")


def router_outages(router, daemon):
    # The router goes away while a client waits: internal error at once, not at the deadline.
    s = connect()
    s.sendall(json.dumps(test_push(dev("4"))).encode() + b"\0")
    time.sleep(0.2)
    t0 = time.time()
    router.drop_connections()
    r = read_reply(s)
    t.check(r == err("internal") and time.time() - t0 < DEADLINE_MS / 1000 - 0.2,
            f"router lost while waiting → internal error at once ({time.time() - t0:.2f} s)")
    s.close()
    t.check(fk.wait_for(lambda: router.hellos >= 2), "ingress reconnected to the router")
    t.check(ask(channel(dev("a"))) == OK_REPLY, "works again after the reconnection")
    # Router down entirely.
    router.stop()
    time.sleep(0.2)
    for m, what in ((channel(dev("a")), "set_channel_uri"), (accounts(dev("a"), [ACC1]), "set_push_accounts"),
                    (test_push(dev("a")), "request_test_push")):
        t0 = time.time()
        r = ask(m)
        t.check(r == err("internal") and time.time() - t0 < 1, f"router down: {what} → internal error at once")
    router.start()
    t.check(fk.wait_for(lambda: router.hellos >= 3), "ingress reconnects when the router is back")
    t.check(ask(channel(dev("a"))) == OK_REPLY, "served again")


def main():
    setup()
    router = fk.FakeRouter(os.path.join(d, "run", "router.sock"))
    statsd = fk.FakeStatsd(os.path.join(d, "run", "statsd.sock"))
    router.start()
    daemon = Daemon(f"127.0.0.1:{PORT}")
    try:
        t.check(fk.wait_for(lambda: router.hellos >= 1), "ingress-uwpx says hello to the router")
        actions(router)
        errors()
        framing(router)
        timeouts()
        connection_cap()
        router_outages(router, daemon)
        time.sleep(0.3)
        sums = statsd.poll()
        tests = sum(1 for ftype, _ in router.requests if ftype == fk.TEST) + 1  # + 1 sent while the router was down
        got = (sums.get(CTR_UWPX_REQUESTS), sums.get(CTR_UWPX_ERRORS), sums.get(CTR_UWPX_TEST_PUSHES))
        t.check(got == (TALLY["replies"], TALLY["errors"], tests),
                f"counters reach statsd: requests, errors, test pushes {got} = {(TALLY['replies'], TALLY['errors'], tests)}")
        rc = daemon.stop()
        t.check(rc == 0, f"clean stop ({rc})")
        log = daemon.text()
        node, secret = fk.node_for(ACC1)
        t.check(TOKEN not in log and "secretchanneltoken" not in log and secret not in log,
                "no channel token and no secret in the log")
        # IPv6 literal listen address.
        if socket.has_ipv6:
            try:
                socket.socket(socket.AF_INET6).bind(("::1", 0))
                v6 = True
            except OSError:
                v6 = False
            if v6:
                daemon = Daemon(f"[::1]:{PORT}")
                t.check(fk.wait_for(lambda: router.hellos >= 4), "IPv6 instance reached the router")
                s = None
                for _ in range(50):
                    try:
                        s = connect(host="::1")
                        break
                    except OSError:
                        time.sleep(0.1)
                s.sendall(json.dumps(channel(dev("a"))).encode() + b"\0")
                t.check(read_reply(s) == OK_REPLY, "listening on [::1] works")
                s.close()
                daemon.stop()
            else:
                print("note: no ::1 on this machine; IPv6 not tested")
    except Exception as e:  # a crash in the test is a failure, with the daemon's log
        import traceback
        traceback.print_exc()
        t.check(False, f"test raised {e!r}")
    finally:
        daemon.stop()
        if t.failed:
            print(daemon.text()[-4000:])
        if not keep:
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(t.done())


main()
