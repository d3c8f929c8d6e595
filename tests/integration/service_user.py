"""The production path of docs/operations.md ("Running as the service user"): the pipeline is
started as root with `user` set to an unprivileged system user (created here, removed at the
end), with the documented layout — state and database directories owned by the user, mode
0750; secrets root:<user>, mode 0640; CA bundles world-readable — and notifies go end to end.
Also: every daemon really runs as the user, its sockets belong to the user, and a HUP (which
re-reads files as the user) keeps everything running."""
import grp, json, os, pwd, signal, subprocess, sys, time
from lib.harness import BIN, Checks, Pipeline

t = Checks()
if os.geteuid() != 0:
    print("skipped: needs root (creates a system user)")
    t.check(True, "not root: nothing to check")
    sys.exit(t.done())

USER = "pptest%d" % (os.getpid() % 100000)
ID = "bd" + "5" * 64
IOS = "b5" * 32
ANDROID = "fcmUser:APA91b-ops"

r = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                    "/usr/sbin/nologin", USER], capture_output=True, text=True)
if r.returncode != 0:
    t.check(False, "useradd: " + r.stderr.strip())
    sys.exit(t.done())
p = None
try:
    pw = pwd.getpwnam(USER)
    uid, gid = pw.pw_uid, pw.pw_gid
    p = Pipeline(keep="-k" in sys.argv)
    d = p.dir
    conf = json.load(open(p.config))
    conf["user"] = USER
    p.DAEMONS = ["statsd", "router", "ingress-onion", "ingress-uwpx", "apns-sender", "fcm-sender", "wns-sender"]
    with open(p.config, "w") as f:
        json.dump(conf, f)

    # The layout an operator creates.
    os.chmod(d, 0o755)  # the test's own directory stands for /etc, /var/lib, /run
    for sub in ("run", "db"):
        os.chown(os.path.join(d, sub), uid, gid)
        os.chmod(os.path.join(d, sub), 0o750)
    for sub in ("keys", "mock"):
        os.chown(os.path.join(d, sub), 0, gid)
        os.chmod(os.path.join(d, sub), 0o750)
    secrets = [p.config, conf["ingress_onion"]["key_file"], conf["apns_sender"]["key_file"],
               conf["fcm_sender"]["service_account_file"], conf["wns_sender"]["client_secret_file"],
               conf["ingress_uwpx"]["cert_file"], conf["ingress_uwpx"]["key_file"]]
    for s in secrets:
        os.chown(s, 0, gid)
        os.chmod(s, 0o640)
    os.chmod(conf["apns_sender"]["ca_file"], 0o644)
    r = subprocess.run(["su", "-s", "/bin/sh", "-c", "cat " + conf["apns_sender"]["key_file"] + " >/dev/null", USER],
                       capture_output=True)
    t.check(r.returncode == 0, "the layout lets the user read a secret (root:%s 0640)" % USER)

    for dname in p.DAEMONS:
        r = subprocess.run([os.path.join(BIN, dname), "-c", p.config, "-n"], capture_output=True, text=True)
        t.check(r.returncode == 0, f"{dname} -n accepts the layout ({r.stderr.strip()[-160:]})")

    # A file re-read on HUP that the user cannot read: -n (as root) warns.
    os.chmod(p.config, 0o600)
    r = subprocess.run([os.path.join(BIN, "router"), "-c", p.config, "-n"], capture_output=True, text=True)
    t.check("warning: " in r.stderr and "not readable by user " + USER in r.stderr,
            f"-n warns of a configuration file the user could not re-read on HUP ({r.stderr.strip()[-160:]})")
    os.chmod(p.config, 0o640)
    os.chmod(conf["ingress_uwpx"]["key_file"], 0o600)
    r = subprocess.run([os.path.join(BIN, "ingress-uwpx"), "-c", p.config, "-n"], capture_output=True, text=True)
    t.check("ingress_uwpx.key_file" in r.stderr and "not readable by user" in r.stderr,
            f"-n warns of a UWPX key the user could not re-read on HUP ({r.stderr.strip()[-160:]})")
    os.chmod(conf["ingress_uwpx"]["key_file"], 0o640)
    r = subprocess.run([os.path.join(BIN, "ingress-uwpx"), "-c", p.config, "-n"], capture_output=True, text=True)
    t.check(r.returncode == 0 and "warning" not in r.stderr, "with the documented layout, no warning")

    p.start_all()
    p.wait_for(lambda: all(f'sender {x} instance "" connected' in p.log("router") for x in ("apns", "fcm", "wns")),
               "every sender connected to the router", 20)
    for name, proc in p.procs.items():
        if name == "mock-provider":
            continue
        with open(f"/proc/{proc.pid}/status") as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        t.check(all(int(u) == uid for u in uids), f"{name} runs as {USER} (uids {uids})")
    for sock in ("router.sock", "router-sender.sock", "router-tool.sock", "statsd.sock", "statsd-query.sock"):
        st = os.stat(os.path.join(d, "run", sock))
        t.check(st.st_uid == uid and st.st_gid == gid, f"{sock} belongs to {USER}")
    st = os.stat(conf["router"]["db_path"])
    t.check(st.st_uid == uid, "the registry's directory belongs to %s" % USER)

    rc, out = p.pushctl("register", f"token={IOS}", f"pubKey={ID}")
    t.check(rc == 0 and '"code": 1' in out, "register (iOS) as the service user: " + out)
    rc, out = p.pushctl("register", f"token={ANDROID}", f"pubKey={ID}", "device=android")
    t.check(rc == 0 and '"code": 1' in out, "register (Android): " + out)
    rc, out = p.pushctl("notify", f"send_to={ID}", "data=aGk=")
    t.check(rc == 0, "notify: " + out)

    def delivered():
        got = p.requests()
        return (any(x["provider"] == "apns" and x.get("status") == 200 for x in got) and
                any(x["provider"] == "fcm" and x.get("status") == 200 for x in got))
    try:
        p.wait_for(delivered, "APNs and FCM deliveries")
    except RuntimeError:
        pass
    t.check(delivered(), "the notify reached the mock APNs and FCM, every daemon running as %s" % USER)

    # HUP: files are re-read as the user (the configuration, the uwpx certificate).
    names = [n for n in p.procs if n != "mock-provider"]
    for n in names:
        p.procs[n].send_signal(signal.SIGHUP)
    for n in names:
        p.wait_for(lambda: "HUP: re-read" in p.log(n), n + " logs its reload")
    time.sleep(0.3)
    t.check(all(p.procs[n].poll() is None for n in names), "every daemon survives HUP as %s" % USER)
    t.check("TLS certificate and key re-read" in p.log("ingress-uwpx"), "ingress-uwpx re-reads its certificate as the user")
    for n in names:
        t.check("not readable" not in p.log(n) and "Permission denied" not in p.log(n), f"{n}: no permission error in its log")
except Exception as e:  # noqa: BLE001
    t.check(False, f"exception: {e!r}")
    if p:
        print(p.logs())
finally:
    if p:
        p.stop()
    subprocess.run(["userdel", USER], capture_output=True)
    try:
        grp.getgrnam(USER)
        subprocess.run(["groupdel", USER], capture_output=True)
    except KeyError:
        pass
    t.check(subprocess.run(["id", USER], capture_output=True).returncode != 0, f"the test user {USER} is removed")
sys.exit(t.done())
