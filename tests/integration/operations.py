"""What an operator relies on (docs/operations.md): --help and --version on every program,
`-n` refusing every broken configuration a start would refuse, one process per daemon and
instance (the lock in state_dir, and the router refusing a second sender of the same name),
SIGHUP re-reading the log level, the statistics password and ingress-uwpx's certificate
without stopping anything, and the log lines an operator reads (errno, sender names)."""
import base64, copy, hashlib, http.client, json, os, signal, socket, ssl, subprocess, sys, time
from lib.harness import BIN, TOP, Checks, Pipeline
from lib import frames as F

DAEMONS = ["router", "statsd", "ingress-onion", "ingress-uwpx", "ingress-xmpp", "apns-sender", "fcm-sender", "wns-sender"]

t = Checks()
p = Pipeline(keep="-k" in sys.argv)


def run(*cmd, timeout=20):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def write_config(conf, name):
    path = os.path.join(p.dir, name)
    with open(path, "w") as f:
        json.dump(conf, f)
    return path


def alive(name):
    pr = p.procs.get(name)
    return pr is not None and pr.poll() is None


def post_stats(password):
    c = http.client.HTTPConnection("127.0.0.1", p.http, timeout=10)
    h = {"Authorization": "Basic " + base64.b64encode(f":{password}".encode()).decode()}
    c.request("POST", "/get_statistics_data", body=b"{}", headers=h)
    r = c.getresponse()
    r.read()
    return r.status


def uwpx_cert_der():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", p.uwpx_port), timeout=5) as s:
        with ctx.wrap_socket(s) as ts:
            return ts.getpeercert(binary_form=True)


def pem_der(path):
    return ssl.PEM_cert_to_DER_cert(open(path).read())


try:
    version = open(os.path.join(TOP, "build", ".version")).read().strip()
    # ---------------------------------------------------------------- --help, --version
    for d in DAEMONS + ["pushctl"]:
        rc, out, err = run(os.path.join(BIN, d), "--help")
        t.check(rc == 0 and out.startswith("usage: " + d) and err == "", f"{d} --help: usage on stdout, exit 0 ({rc})")
        rc, out, err = run(os.path.join(BIN, d), "--version")
        t.check(rc == 0 and out.strip() == f"{d} (pushpipe) {version}", f"{d} --version: the build's version ({out.strip()!r})")

    # ---------------------------------------------------------------- -n
    good = json.load(open(p.config))
    for d in DAEMONS:
        rc, out, err = run(os.path.join(BIN, d), "-c", p.config, "-n")
        t.check(rc == 0 and out.strip() == "configuration OK", f"{d} -n accepts the test configuration ({rc}: {err.strip()[-200:]})")
    garbage = os.path.join(p.dir, "garbage.p8")
    with open(garbage, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    broken = [
        ("ingress-onion", ("ingress_onion", "key_file", os.path.join(p.dir, "keys", "missing.key")), "ingress_onion.key_file"),
        ("ingress-onion", ("ingress_onion", "key_file", ""), "ingress_onion.key_file: required"),
        ("ingress-onion", ("ingress_onion", "listen", "127.0.0.1:99999"), "ingress_onion.listen"),
        ("ingress-onion", ("ingress_onion", "stats_password_hash", "sha256:nothex"), "ingress_onion.stats_password_hash"),
        ("ingress-onion", ("ingress_onion", "stats_password_hash", "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"), "ingress_onion.stats_password_hash"),
        ("ingress-uwpx", ("ingress_uwpx", "listen", "127.0.0.1"), "ingress_uwpx.listen"),
        ("statsd", ("statsd", "listen", "0.0.0.0:%d" % p.stats_port), "loopback"),
        ("apns-sender", ("apns_sender", "auth", "tokn"), "apns_sender.auth"),
        ("apns-sender", ("apns_sender", "key_file", os.path.join(p.dir, "nowhere.p8")), "apns_sender.key_file"),
        ("apns-sender", ("apns_sender", "key_file", p.dir), "apns_sender.key_file"),
        ("apns-sender", ("apns_sender", "key_file", garbage), "apns_sender.key_file"),
        ("router", (None, "user", "no-such-pushpipe-user"), "no such user"),
        ("apns-sender", (None, "user", "no-such-pushpipe-user"), "no such user"),
    ]
    for d, (sec, key, val), want in broken:
        conf = copy.deepcopy(good)
        (conf.setdefault(sec, {}) if sec else conf)[key] = val
        path = write_config(conf, "broken.json")
        rc, out, err = run(os.path.join(BIN, d), "-c", path, "-n")
        t.check(rc != 0 and "configuration OK" not in out and want in err,
                f"{d} -n refuses {sec + '.' if sec else ''}{key} = {val!r} ({rc}: {err.strip()[-160:]})")

    # ---------------------------------------------------------------- not reachable, with errno
    p.start("ingress-onion")
    p.wait_for(lambda: "not reachable (" in p.log("ingress-onion"), "ingress-onion: router not reachable")
    t.check("router.sock not reachable (No such file or directory)" in p.log("ingress-onion"),
            "a 'not reachable' line says why (errno)")
    p.kill("ingress-onion")

    # ---------------------------------------------------------------- the pipeline, with a uwpx certificate of its own
    conf = copy.deepcopy(good)
    m = os.path.join(p.dir, "mock")
    for ext in ("pem", "key"):
        with open(os.path.join(m, "server." + ext)) as src, open(os.path.join(p.dir, "uwpx." + ext), "w") as dst:
            dst.write(src.read())
    conf["ingress_uwpx"]["cert_file"] = os.path.join(p.dir, "uwpx.pem")
    conf["ingress_uwpx"]["key_file"] = os.path.join(p.dir, "uwpx.key")
    write_config(conf, "pushpipe.json")
    p.DAEMONS = ["statsd", "router", "ingress-onion", "ingress-uwpx", "apns-sender", "fcm-sender"]
    p.start_all()
    p.wait_for(lambda: 'sender apns instance "" connected' in p.log("router") and 'sender fcm instance "" connected' in p.log("router"),
               "both senders connected")
    t.check('sender apns instance "" connected (pid %d,' % p.procs["apns-sender"].pid in p.log("router"),
            "the router names a sender's provider, instance and pid on connect")

    # ---------------------------------------------------------------- pushctl
    pushctl = os.path.join(BIN, "pushctl")
    rc, out, err = run(pushctl, "send")
    t.check(rc == 2 and "ACTION" in err and "is missing" in err, f"pushctl send without an action names it: {err.splitlines()[:1]}")
    rc, out, err = run(pushctl)
    t.check(rc == 2 and "the command" in err and "is missing" in err, "pushctl alone names the missing command")
    rc, out, err = run(pushctl, "counts")
    t.check(rc == 2 and "-c CONFIG is missing" in err, "pushctl counts without -c names the missing -c CONFIG")
    rc, out, err = run(pushctl, "-c", p.config, "lookup")
    t.check(rc == 2 and "ID_OR_TOKEN" in err and "is missing" in err, "pushctl lookup names the missing ID_OR_TOKEN")
    rc, out, err = run(pushctl, "-c", p.config, "import-legacy")
    t.check(rc == 2 and "FILE is missing" in err, "pushctl import-legacy names the missing FILE")
    rc, out, err = run(pushctl, "send", "-K", os.path.join(p.dir, "keys", "nope.pub"), "register", "token=x")
    t.check(rc != 0 and "nope.pub: No such file or directory" in err, f"a missing key file says so: {err.strip()[:120]}")
    rc, out, err = run(pushctl, "send", "-u", "http://127.0.0.1:%d" % p.xmpp_port, "-K", p.pubkey_file, "register", "token=x")
    t.check(rc != 0 and "failed: " in err and ("refused" in err.lower() or "connect" in err.lower()),
            f"a failed send says why: {err.strip()[:160]}")
    rc, out, err = run(pushctl, "send", "-c", p.config, "register", "token=" + "d1" * 32, "pubKey=bd" + "d" * 64)
    t.check(rc == 0 and out.strip() == '{"status": 200, "body": {"code": 1, "message": "Success"}}',
            f"pushctl send -c CONFIG takes the key and URL from the configuration ({rc}: {out.strip()} {err.strip()[:100]})")
    rc, out, err = run(pushctl, "send", "register", "-c", p.config, "-4", "token=" + "d2" * 32, "pubKey=bd" + "d" * 64)
    t.check(rc == 0 and out.strip() == '{"status": 200, "body": {"code": 1, "message": "Success"}}',
            f"options after the subcommand; -4 decodes the reply ({rc}: {out.strip()} {err.strip()[:100]})")
    rc, out, err = run(pushctl, "send", "unregister", "-c", p.config, "-4", "token=" + "d9" * 32)
    t.check(rc == 1 and '"code": 0' in out and "refused" in err, f"a refused request says so ({rc}: {out.strip()} / {err.strip()})")
    rc, out, err = run(pushctl, "counts", "-c", p.config)
    t.check(rc == 0 and out.strip() != "", "pushctl counts -c CONFIG (-c after the command): " + " / ".join(out.split("\n")[:2]))

    # ---------------------------------------------------------------- one process per name
    router_pid = p.procs["router"].pid
    start = time.time()
    rc, out, err = run(os.path.join(BIN, "router"), "-c", p.config)
    t.check(rc != 0 and f"already running (pid {router_pid}" in err and time.time() - start < 5,
            f"a second router with the same configuration refuses at once: {err.strip()[-160:]}")
    t.check(alive("router") and os.path.exists(os.path.join(p.dir, "run", "router.sock")),
            "the first router keeps running and its socket is still there")
    rc, out, err = run(os.path.join(BIN, "apns-sender"), "-c", p.config)
    t.check(rc != 0 and "already running (pid %d" % p.procs["apns-sender"].pid in err,
            f"a second apns-sender without -i refuses: {err.strip()[-120:]}")
    p.start("apns-sender#2", "-i", "2")
    p.wait_for(lambda: 'sender apns instance "2" connected' in p.log("router"), "apns-sender -i 2 connected")
    rc, out, err = run(os.path.join(BIN, "apns-sender"), "-c", p.config, "-i", "2")
    t.check(rc != 0 and "already running (pid %d" % p.procs["apns-sender#2"].pid in err,
            "a second apns-sender -i 2 refuses while the first runs")
    t.check(alive("apns-sender") and alive("apns-sender#2"), "instances of different names run side by side")
    sock_path = os.path.join(p.dir, "run", "router-sender.sock")

    def hello(name):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(sock_path)
        s.send(F.encode(F.HELLO, 0, [(F.TAG_ROLE, F.ROLE_SENDER), (F.TAG_PID, os.getpid()), (F.TAG_PLATFORM, F.ANDROID),
                                      (F.TAG_INSTANCE, name)]))
        return s
    a = hello("dup")
    p.wait_for(lambda: 'sender fcm instance "dup" connected (pid %d,' % os.getpid() in p.log("router"), "first 'dup' sender")
    # The second "dup" is another process (the router knows processes by their socket credentials).
    child = os.fork()
    if child == 0:
        try:
            b = hello("dup")
            b.settimeout(5)
            os._exit(0 if b.recv(65536) == b"" else 1)
        except OSError:
            os._exit(0)
        os._exit(2)
    _, status = os.waitpid(child, 0)
    t.check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and
            'sender fcm instance "dup" (pid %d) refused' % child in p.log("router") and
            'sender fcm instance "dup" connected (pid %d,' % child not in p.log("router"),
            "the router refuses a second sender process of the same platform and instance name, and logs it")
    a.close()

    # ---------------------------------------------------------------- SIGHUP
    pw = "hup-" + base64.b32encode(os.urandom(10)).decode()
    old_pw = open(os.path.join(p.dir, "keys", "stats.password")).read().strip()
    t.check(post_stats(old_pw) == 200, "statistics answer the configured password before HUP")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", os.path.join(p.dir, "uwpx.key"), "-out", os.path.join(p.dir, "uwpx.pem"),
                    "-days", "2", "-subj", "/CN=renewed.localhost"], check=True, capture_output=True)
    before = uwpx_cert_der()
    t.check(before == pem_der(os.path.join(m, "server.pem")), "ingress-uwpx serves the first certificate")
    conf["log_level"] = "debug"
    conf["ingress_onion"]["stats_password_hash"] = "sha256:" + hashlib.sha256(pw.encode()).hexdigest()
    write_config(conf, "pushpipe.json")
    names = [n for n in p.procs if n != "mock-provider"]
    for n in names:
        p.procs[n].send_signal(signal.SIGHUP)
    for n in names:
        p.wait_for(lambda: "HUP: re-read" in p.log(n.replace("#", "-")), n + " logs its reload")
    time.sleep(0.3)
    t.check(all(alive(n) for n in names), "every daemon is still running after HUP: " + ", ".join(
        f"{n}={p.procs[n].poll()}" for n in names))
    t.check(all("log level debug" in p.log(n.replace("#", "-")) for n in names), "every daemon logs the new log level")
    t.check("statistics password hash re-read" in p.log("ingress-onion"), "ingress-onion logs the statistics password reload")
    t.check(post_stats(pw) == 200 and post_stats(old_pw) == 401, "after HUP the new statistics password is accepted, the old refused")
    t.check("TLS certificate and key re-read" in p.log("ingress-uwpx"), "ingress-uwpx logs the certificate reload")
    t.check(uwpx_cert_der() == pem_der(os.path.join(p.dir, "uwpx.pem")), "after HUP ingress-uwpx serves the renewed certificate")
    # A broken file on HUP: logged, the running configuration kept.
    with open(p.config, "w") as f:
        f.write("{ not json")
    p.procs["router"].send_signal(signal.SIGHUP)
    p.wait_for(lambda: "keeping the running configuration" in p.log("router"), "router logs the broken file")
    write_config(conf, "pushpipe.json")
    ID = "bd" + "4" * 64
    rc, out = p.pushctl("register", "token=" + "c4" * 32, f"pubKey={ID}")
    t.check(rc == 0 and '"code": 1' in out, "the pipeline still registers after the HUPs: " + out)
    rc, out = p.pushctl("notify", f"send_to={ID}", "data=aGk=")
    t.check(rc == 0, "and notifies: " + out)
    got = lambda: any(r["provider"] == "apns" and r["path"].endswith("c4" * 32) for r in p.requests())  # noqa: E731
    try:
        p.wait_for(got, "APNs request")
    except RuntimeError:
        pass
    t.check(got(), "the notify reached the mock APNs after the HUPs")
except Exception as e:  # noqa: BLE001
    t.check(False, f"exception: {e!r}")
    print(p.logs())
finally:
    p.stop()
sys.exit(t.done())
