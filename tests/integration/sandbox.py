"""Sandbox: the whole pipeline runs with "sandbox": true and delivers a notify; every running
daemon (every thread) shows Seccomp: 2 and NoNewPrivs: 1; then, per daemon, actions its role
may not take fail once sandboxed and succeed with the sandbox off (PUSHPIPE_SANDBOX_SELFTEST:
the daemon tries the action right after entering its sandbox, logs the outcome and exits
3 = denied, 4 = allowed). File checks need Landlock; without it they are reported, not run."""
import json, os, shutil, socket, subprocess, sys, time
from lib.harness import BIN, Checks, Pipeline

DENIED, ALLOWED = 3, 4
ID = "bd" + "7" * 64
IOS = "c3" * 32
ANDROID = "fcmSandbox:APA91b-sbx"
DATA = "c2FuZGJveGVkIG5vdGlmeQ=="

t = Checks()
p = Pipeline(keep=True)
keep = "-k" in sys.argv


def write_config(path, sandbox):
    with open(p.config) as f:
        c = json.load(f)
    c["sandbox"] = sandbox
    with open(path, "w") as f:
        json.dump(c, f, indent=2)


def proc_status(pid):
    """Seccomp and NoNewPrivs of every thread of pid, as a set of (seccomp, nnp) pairs."""
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                kv = dict(line.split(":", 1) for line in f if ":" in line)
            out.add((kv["Seccomp"].strip(), kv["NoNewPrivs"].strip()))
        except FileNotFoundError:
            pass
    return out


def selftest(daemon, config, action, log):
    env = dict(os.environ, PUSHPIPE_SANDBOX_SELFTEST=action)
    with open(log, "ab") as lf:
        r = subprocess.run([os.path.join(BIN, daemon), "-c", config], env=env, stderr=lf, timeout=30)
    return r.returncode


def pushctl_patient(*args, within=60.0):
    """pushctl, sent again while the answer is "Server busy" (as the apps do: it is retryable),
    so a slow machine (a sanitizer build, a stalled disk) is not taken for a broken sandbox. A
    sandbox that breaks the router's work is still busy after `within` seconds."""
    end, busy = time.time() + within, 0
    while True:
        rc, out = p.pushctl(*args)
        if "Server busy" not in out or time.time() > end:
            break
        busy += 1
        time.sleep(0.5)
    if busy:
        print(f"# {args[0]}: answered Server busy {busy} times before this answer")
    return rc, out


try:
    write_config(p.config, True)
    p.start_all()
    rc, out = pushctl_patient("register", f"token={IOS}", f"pubKey={ID}")
    t.check(rc == 0 and '"code": 1' in out, "register (iOS) under the sandbox: " + out)
    rc, out = pushctl_patient("register_legacy_groups_only", f"token={ANDROID}", f"pubKey={ID}", "device=android",
                              "legacyGroupPublicKeys=" + "bd" + "8" * 64)
    t.check(rc == 0 and '"code": 1' in out, "register_legacy_groups_only (Android) under the sandbox: " + out)
    rc, out = pushctl_patient("notify", f"send_to={ID}", f"data={DATA}")
    t.check(rc == 0 and '"code": 1' in out, "notify under the sandbox: " + out)

    def delivered():
        r = p.requests()
        return (any(x["provider"] == "apns" and x.get("status") == 200 and DATA in x.get("body", "") for x in r) and
                any(x["provider"] == "fcm" and x.get("status") == 200 and DATA in x.get("body", "") for x in r))
    try:
        p.wait_for(delivered, "APNs and FCM deliveries", timeout=30.0)
    except RuntimeError as e:
        print(e)
    t.check(delivered(), "the notify reached the mock through APNs and FCM (200 each)")
    if t.failed:  # shown here, next to the failure, as well as in full at the end
        for d in ("ingress-onion", "router"):
            print(f"--- {d}.log (last lines)\n" + "\n".join(p.log(d).splitlines()[-12:]))

    for d in Pipeline.DAEMONS:
        st = proc_status(p.procs[d].pid)
        t.check(st == {("2", "1")}, f"{d}: every thread has Seccomp: 2 and NoNewPrivs: 1 ({sorted(st)})")
        t.check(f"sandbox: {d}: seccomp allowlist" in p.log(d), f"{d} logged its sandbox")
    landlock = "Landlock ABI" in p.log("router")
    if landlock:  # its HTTP threads (and their libmicrohttpd daemons) start inside the sandbox and inherit it
        ntask = len(os.listdir(f"/proc/{p.procs['ingress-onion'].pid}/task"))
        t.check("threads already run" not in p.log("ingress-onion") and ntask >= 3,
                f"ingress-onion: its {ntask - 1} HTTP threads started after Landlock, so they inherit it (none restricted afterwards)")
    abi_line = [l for l in p.log("router").splitlines() if "sandbox: router" in l]
    print("# Landlock " + ("present: " + abi_line[0].split("seccomp allowlist, ", 1)[1] if landlock and abi_line
                          else "absent in this kernel: file checks below are reported, not asserted"))
    for name in list(p.procs):
        p.kill(name)

    # Per daemon: forbidden actions, sandboxed and not.
    on, off = os.path.join(p.dir, "sandbox-on.json"), os.path.join(p.dir, "sandbox-off.json")
    write_config(on, True)
    write_config(off, False)
    registry = os.path.join(p.dir, "db", "registry", "data.mdb")
    statsdb = os.path.join(p.dir, "db", "stats", "data.mdb")
    apns_key = os.path.join(p.dir, "mock", "apns.p8")
    fcm_account = os.path.join(p.dir, "mock", "fcm-service-account.json")
    server_key = os.path.join(p.dir, "keys", "server.key")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    lport = listener.getsockname()[1]
    # Another process of the same user, which no sandboxed daemon may signal (SIGCONT is sent:
    # harmless to it, so the unsandboxed runs leave it asleep for the next case).
    victim = subprocess.Popen(["sleep", "600"])
    vpid = victim.pid
    every_signal = [f"{how}:{vpid}" for how in ("kill", "tkill", "tgkill", "sigqueue", "tgsigqueue", "pidfd")]
    seccomp_cases = {
        "router": ["inet", f"connect:127.0.0.1:{lport}", "fork", f"kill:{vpid}", f"tgkill:{vpid}"],
        "ingress-onion": [f"connect:127.0.0.1:{lport}", "fork", f"kill:{vpid}", f"tgkill:{vpid}"],
        # bind-udp: a UDP port with a 128-byte address (issue 15 item 10)
        "apns-sender": ["listen:127.0.0.1:0", "bind:0.0.0.0:0", "bind-udp:127.0.0.1:0", "fork"] + every_signal,
        "fcm-sender": ["listen:127.0.0.1:0", "bind:0.0.0.0:0", "bind-udp:127.0.0.1:0", "fork", f"tgkill:{vpid}"],
        "statsd": ["bind:0.0.0.0:0", f"connect:127.0.0.1:{lport}", "fork", f"kill:{vpid}", f"tgkill:{vpid}"],
    }
    landlock_cases = {
        "router": [f"open:{server_key}", f"open:{apns_key}", f"open:{statsdb}"],
        "ingress-onion": [f"open:{registry}", f"open:{statsdb}", f"open:{apns_key}"],
        "apns-sender": [f"open:{registry}", f"open:{server_key}", f"open:{fcm_account}"],
        "fcm-sender": [f"open:{registry}", f"open:{server_key}", f"open:{apns_key}"],
        "statsd": [f"open:{registry}", f"open:{server_key}", f"write:{os.path.join(p.dir, 'keys', 'planted')}"],
    }
    for d in Pipeline.DAEMONS:
        log = os.path.join(p.dir, f"selftest-{d}.log")
        for action in seccomp_cases[d] + landlock_cases[d]:
            short = action.replace(p.dir, "DIR")
            off_rc = selftest(d, off, action, log)
            on_rc = selftest(d, on, action, log)
            t.check(off_rc == ALLOWED, f"{d} without sandbox: {short} succeeds (exit {off_rc})")
            if action in landlock_cases[d] and not landlock:
                print(f"# {d}: {short} with sandbox: exit {on_rc} (not asserted: no Landlock)")
                continue
            t.check(on_rc == DENIED, f"{d} with sandbox: {short} is denied (exit {on_rc})")
        # What each role needs must still work once sandboxed.
        needed = {"router": f"open:{registry}", "statsd": f"open:{statsdb}", "ingress-onion": f"open:{server_key}",
                  "apns-sender": f"open:{apns_key}", "fcm-sender": f"connect:127.0.0.1:{lport}"}[d]
        rc = selftest(d, on, needed, log)
        t.check(rc == ALLOWED, f"{d} with sandbox: {needed.replace(p.dir, 'DIR')} still allowed (exit {rc})")
        # Signals to itself (raise, abort, pthread_kill) still work.
        for action in (("kill:self", "tgkill:self") if d != "apns-sender" else
                       ("kill:self", "tkill:self", "tgkill:self", "sigqueue:self", "tgsigqueue:self")):
            rc = selftest(d, on, action, log)
            t.check(rc == ALLOWED, f"{d} with sandbox: {action} still allowed (exit {rc})")
    t.check(victim.poll() is None, "the other process was never stopped by a signal")
    victim.kill()
    victim.wait()
    listener.close()
except Exception as e:  # a harness failure is a test failure, with the logs to show why
    t.check(False, f"sandbox test raised {e!r}")
finally:
    if t.failed:
        print(p.logs())
    p.stop()
    if not keep:
        shutil.rmtree(p.dir, ignore_errors=True)
sys.exit(t.done())
