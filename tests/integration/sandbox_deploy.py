"""Deployment files: the runit tree (deploy/runit) and the supervisord configuration
(deploy/supervisord/pushpipe.conf) name real daemons, run them the shipped way, and log the
shipped way. Then the runit tree itself runs the pipeline (two apns-sender instances) and a
notify gets through. supervisord need not be installed: its file is checked with configparser."""
import configparser, glob, os, re, shlex, stat, subprocess, sys
from lib.harness import TOP, BIN, Checks, daemons_in_tree
from lib.soak_env import RUNIT_TREE, RunitPipeline

t = Checks()



# The daemons of the design (docs/architecture.md); those not in this tree yet are reported.
DESIGN = {"ingress-onion", "ingress-uwpx", "ingress-xmpp", "router", "apns-sender", "fcm-sender", "wns-sender", "hms-sender", "statsd"}
built = set(daemons_in_tree())
t.check(built <= DESIGN, f"every daemon of the tree is a design daemon ({sorted(built - DESIGN)})")

# ---- runit ----
services = sorted(os.listdir(RUNIT_TREE))
seen = set()
for s in services:
    d = os.path.join(RUNIT_TREE, s)
    run, logrun = os.path.join(d, "run"), os.path.join(d, "log", "run")
    for f in (run, logrun):
        ok = os.path.isfile(f) and os.stat(f).st_mode & stat.S_IXUSR
        t.check(bool(ok), f"runit {s}: {os.path.relpath(f, d)} exists and is executable")
        if ok:
            t.check(subprocess.run(["sh", "-n", f]).returncode == 0, f"runit {s}: {os.path.relpath(f, d)} is valid sh")
    if not os.path.isfile(run):
        continue
    text = open(run).read()
    m = re.search(r'^daemon=\$\{SBIN:-\$PREFIX/sbin\}/pushpipe-([a-z-]+)$', text, re.M)
    t.check(m is not None, f"runit {s}: run names the installed daemon $SBIN/pushpipe-<daemon>")
    e = re.search(r'^exec "\$daemon" -c "\$CONFIG"(.*)$', text, re.M)
    t.check(e is not None, f"runit {s}: run execs the daemon -c $CONFIG")
    if not m or not e:
        continue
    binary, rest = m.group(1), e.group(1)
    # a sender's check also names its app when the directory does (apns-sender-APP-N)
    chk = re.search(r'^if ! err=\$\("\$daemon" -n -c "\$CONFIG"( \$\{app:\+-a "\$app"\})? 2>&1\); then$', text, re.M)
    t.check(chk is not None and chk.start() < e.start() and 'sv down "$PWD"' in text[chk.start():e.start()],
            f"runit {s}: checks the configuration (-n) before exec, takes the service down when broken")
    seen.add(binary)
    t.check(binary in DESIGN, f"runit {s}: runs a pushpipe daemon ({binary})")
    t.check(s == binary or re.fullmatch(re.escape(binary) + r"-\d+", s) is not None, f"runit {s}: named after {binary}")
    if binary in built:
        t.check(os.access(os.path.join(BIN, binary), os.X_OK), f"runit {s}: bin/{binary} is built")
    else:
        print(f"# runit {s}: {binary} is not in this tree yet")
    if binary.endswith("-sender"):
        t.check('-i "$instance"' in rest and f'instance=${{PWD##*/{binary}-}}' in text,
                f"runit {s}: sender instance named by its directory (-i)")
    t.check(text.startswith("#!/bin/sh") and "exec 2>&1" in text, f"runit {s}: stderr goes to the log service")
    lt = open(logrun).read() if os.path.isfile(logrun) else ""
    # One time stamp per line: the daemon's own, so svlogd adds none (no -t).
    t.check(re.search(r'^exec svlogd "\$LOGDIR/\$svc"$', lt, re.M) is not None, f"runit {s}: log/run execs svlogd, no -t")
    t.check(re.search(r"^LOGUSER=_runit-log$", lt, re.M) is not None and
            re.search(r'^\s+exec chpst -u "\$LOGUSER" svlogd "\$LOGDIR/\$svc"$', lt, re.M) is not None,
            f"runit {s}: svlogd runs as Debian's _runit-log user")
t.check(seen == DESIGN, f"runit: a service for every daemon ({sorted(DESIGN - seen)} missing)")
for snd in ("apns-sender", "fcm-sender", "wns-sender", "hms-sender"):
    n = len([s for s in services if re.fullmatch(snd + r"-\d+", s)])
    t.check(n >= 2, f"runit: {n} instances of {snd}")

# ---- supervisord ----
conf = os.path.join(TOP, "deploy", "supervisord", "pushpipe.conf")
cp = configparser.RawConfigParser()
try:
    cp.read(conf)
    t.check(True, "supervisord: pushpipe.conf parses")
except configparser.Error as e:
    t.check(False, f"supervisord: pushpipe.conf parses ({e})")
progs = [s[len("program:"):] for s in cp.sections() if s.startswith("program:")]
t.check(set(progs) == DESIGN, f"supervisord: one program per daemon ({sorted(set(progs) ^ DESIGN)})")
group = [g.strip() for g in cp.get("group:pushpipe", "programs", fallback="").split(",")]
t.check(sorted(group) == sorted(progs), "supervisord: the pushpipe group lists every program")
logs = set()
for p in progs:
    sec = cp["program:" + p]
    n = int(sec.get("numprocs", "1"))
    start = int(sec.get("numprocs_start", "0"))
    for k in range(start, start + n):
        keys = {"program_name": p, "process_num": k, "group_name": "pushpipe", "here": os.path.dirname(conf)}
        try:
            cmd = shlex.split(sec["command"] % keys)
            name = sec.get("process_name", "%(program_name)s") % keys
            log = sec["stdout_logfile"] % keys
        except (KeyError, ValueError) as e:
            t.check(False, f"supervisord {p}: expands ({e!r})")
            continue
        logs.add(log)
        t.check(cmd[0] == "/usr/sbin/pushpipe-" + p and cmd[1:3] == ["-c", "/etc/pushpipe/pushpipe.json"],
                f"supervisord {name}: runs /usr/sbin/pushpipe-{p} -c CONFIG")
        if n > 1:
            t.check(cmd[3:] == ["-i", str(k)] and name == f"{p}-{k}", f"supervisord {name}: instance {k} (-i {k})")
    t.check(not p.endswith("-sender") or n >= 2, f"supervisord {p}: numprocs {n}")
    t.check(sec.get("redirect_stderr") == "true", f"supervisord {p}: stderr into its log")
    t.check(sec.get("autorestart") == "true", f"supervisord {p}: restarted when it dies")
t.check(len(logs) == sum(int(cp["program:" + p].get("numprocs", "1")) for p in progs),
        f"supervisord: a log file per process ({len(logs)})")

# ---- the runit tree runs the pipeline ----
ID = "bd" + "9" * 64
DATA = "cnVuaXQgdHJlZQ=="
p = RunitPipeline(keep="-k" in sys.argv)
try:
    p.start_all()
    p.wait_for(lambda: 'sender apns instance "1" connected' in p.log("router") and
               'sender apns instance "2" connected' in p.log("router"),
               "both apns-sender instances connected", 30)
    t.check(True, "runit: apns-sender-1 and apns-sender-2 connected to the router as instances 1 and 2")
    rc, out = p.pushctl("register", "token=" + "d4" * 32, f"pubKey={ID}")
    t.check(rc == 0, "runit: register answers Success: " + out)
    rc, out = p.pushctl("notify", f"send_to={ID}", f"data={DATA}")
    t.check(rc == 0, "runit: notify answers Success: " + out)
    p.wait_for(lambda: any(DATA in r.get("body", "") and r.get("status") == 200 for r in p.requests()), "delivery", 30)
    t.check(True, "runit: the notify reached the mock")
    for s in p.services:
        t.check(os.path.getsize(os.path.join(p.logdir, s, "current")) > 0, f"runit: svlogd wrote log/{s}/current")
except Exception as e:
    t.check(False, f"runit pipeline raised {e!r}")
finally:
    if t.failed:
        print(p.logs())
    p.stop()
sys.exit(t.done())
