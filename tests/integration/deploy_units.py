"""Service files beyond the runit tree's pipeline run (sandbox_deploy.py):
* systemd (deploy/systemd): a unit per daemon, a template per sender, each verified by
  systemd-analyze when it is installed (else checked structurally), with the directives the
  issue of production operation asks for; tmpfiles.d creates the shared directories.
* runit: a run file given a broken configuration logs the error and takes its service down
  (sv down) instead of crash-looping; fixed and `sv up`, the daemon runs."""
import configparser, glob, os, re, shlex, shutil, subprocess, sys, tempfile, time
from lib.harness import TOP, BIN, Checks
from lib.soak_env import RunitPipeline

t = Checks()
UNITS = os.path.join(TOP, "deploy", "systemd")
DAEMONS = ["router", "statsd", "ingress-onion", "ingress-uwpx", "ingress-xmpp"]
SENDERS = ["apns-sender", "fcm-sender", "wns-sender", "hms-sender"]


def unit_sections(path):
    cp = configparser.RawConfigParser(strict=False, delimiters=("=",))
    cp.optionxform = str
    cp.read(path)
    return cp


def template_argv(line, inst):
    """The command a template's Exec line runs for instance inst: systemd's specifiers and $$
    resolved, the /bin/sh wrapper run with its exec replaced by a printer of its arguments."""
    words = shlex.split(line.replace("%i", inst).replace("%%", "%").replace("$$", "$"))
    if words[:2] != ["/bin/sh", "-c"]:
        return words
    script = re.sub(r"\bexec (\S+)", r'exec printf "%s\\n" \1', words[2])
    r = subprocess.run(["/bin/sh", "-c", script] + words[3:], capture_output=True, text=True, timeout=10)
    return r.stdout.splitlines() if r.returncode == 0 else ["failed: " + r.stderr]


# ---- systemd ----
names = sorted(os.path.basename(f) for f in glob.glob(os.path.join(UNITS, "*.service")))
want = sorted([f"pushpipe-{d}.service" for d in DAEMONS] + [f"pushpipe-{s}@.service" for s in SENDERS])
t.check(names == want, f"systemd: a unit per daemon and a template per sender ({sorted(set(names) ^ set(want))})")
for n in names:
    u = unit_sections(os.path.join(UNITS, n))
    d = re.sub(r"^pushpipe-|@?\.service$", "", n)
    svc = u["Service"] if u.has_section("Service") else {}
    exe = f"/usr/sbin/pushpipe-{d}"
    if n.endswith("@.service"):
        # A template: @N runs -i N, @APP-N runs -a APP -i N (the pre-start check: -a APP).
        for inst, pre, run in (("2", [], ["-i", "2"]), ("sbx-3", ["-a", "sbx"], ["-a", "sbx", "-i", "3"]),
                               ("prod2-10", ["-a", "prod2"], ["-a", "prod2", "-i", "10"])):
            got_pre, got = template_argv(svc.get("ExecStartPre", ""), inst), template_argv(svc.get("ExecStart", ""), inst)
            t.check(got_pre == [exe, "-n", "-c", "/etc/pushpipe/pushpipe.json"] + pre,
                    f"systemd {n}@{inst}: ExecStartPre checks the configuration ({got_pre})")
            t.check(got == [exe, "-c", "/etc/pushpipe/pushpipe.json"] + run, f"systemd {n}@{inst}: ExecStart runs {got}")
    else:
        t.check(svc.get("ExecStart") == f"{exe} -c /etc/pushpipe/pushpipe.json", f"systemd {n}: ExecStart runs {exe}")
        t.check(svc.get("ExecStartPre") == f"{exe} -n -c /etc/pushpipe/pushpipe.json", f"systemd {n}: ExecStartPre checks the configuration")
    t.check(svc.get("Restart") == "on-failure", f"systemd {n}: Restart=on-failure")
    t.check("RuntimeDirectory" not in svc and "StateDirectory" not in svc, f"systemd {n}: no per-unit RuntimeDirectory/StateDirectory")
    t.check(u.get("Unit", "ConditionPathExists", fallback="") == "/etc/pushpipe/pushpipe.json",
            f"systemd {n}: starts only once configured (ConditionPathExists)")
    t.check(svc.get("ProtectSystem") == "strict" and "/run/pushpipe" in svc.get("ReadWritePaths", "").split(),
            f"systemd {n}: read-only system, /run/pushpipe writable")
    needs_db = d in ("router", "statsd")
    t.check(("/var/lib/pushpipe" in svc.get("ReadWritePaths", "").split()) == needs_db,
            f"systemd {n}: /var/lib/pushpipe writable only for the LMDB owners ({needs_db})")
    fam = svc.get("RestrictAddressFamilies", "").split()
    t.check(fam == ["AF_UNIX"] if d == "router" else set(fam) == {"AF_UNIX", "AF_INET", "AF_INET6"},
            f"systemd {n}: address families {fam}")
    caps = set(svc.get("CapabilityBoundingSet", "").split())
    t.check({"CAP_SETUID", "CAP_SETGID"} <= caps and "CAP_SYS_ADMIN" not in caps and "CAP_NET_RAW" not in caps,
            f"systemd {n}: capabilities bounded to dropping privileges")
    for k in ("NoNewPrivileges", "SystemCallFilter"):  # the daemon's own: no_new_privs after setuid, seccomp
        t.check(k not in svc, f"systemd {n}: leaves {k} to the daemon's own sandbox")

tmpf = open(os.path.join(UNITS, "pushpipe.tmpfiles")).read()
lines = [l.split() for l in tmpf.splitlines() if l.strip() and not l.startswith("#")]
t.check(all(len(l) == 6 and l[0] == "d" and l[2] == "0750" and l[3:5] == ["pushpipe", "pushpipe"] for l in lines),
        "tmpfiles: directories owned by pushpipe, mode 0750")
made = {l[1] for l in lines}
src = open(os.path.join(TOP, "common", "config.c")).read()
dflts = re.findall(r'"(?:state_dir|db_path)", C_STR, [TS]\([a-z_, ]+\), "([^"]*)"', src)
t.check(len(dflts) == 3 and set(dflts) <= made, f"tmpfiles: creates every default path of common/config.c ({dflts})")

sa = shutil.which("systemd-analyze")
if sa:
    # Verify copies whose executables point into a staged tree (the host has no /usr/sbin/pushpipe-*).
    tmp = tempfile.mkdtemp(prefix="pushpipe-units-")
    try:
        sbin = os.path.join(tmp, "sbin")
        os.makedirs(sbin)
        for d in DAEMONS + SENDERS:
            if os.path.exists(os.path.join(BIN, d)):
                os.symlink(os.path.join(BIN, d), os.path.join(sbin, "pushpipe-" + d))
            else:  # a daemon another branch adds: its unit is still checked
                shutil.copy("/bin/true", os.path.join(sbin, "pushpipe-" + d))
        copies = []
        for n in names + ["pushpipe.target"]:
            with open(os.path.join(UNITS, n)) as f:
                text = f.read().replace("/usr/sbin/", sbin + "/")
            copies.append(os.path.join(tmp, n))
            with open(copies[-1], "w") as f:
                f.write(text)
        r = subprocess.run([sa, "verify", "--man=no"] + copies, capture_output=True, text=True, timeout=60)
        ours = [l for l in (r.stdout + r.stderr).splitlines() if "pushpipe" in l]
        t.check(r.returncode == 0 and not ours, f"systemd-analyze verify: every unit and the target clean {ours}")
        # It can fail: a misspelt directive is reported.
        with open(copies[0]) as f:
            bad = f.read().replace("Restart=on-failure", "Restart=on-failur")
        with open(os.path.join(tmp, "pushpipe-bad.service"), "w") as f:
            f.write(bad)
        r = subprocess.run([sa, "verify", "--man=no", os.path.join(tmp, "pushpipe-bad.service")], capture_output=True, text=True, timeout=60)
        t.check("on-failur" in r.stderr, "systemd-analyze verify reports a broken unit")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
else:
    print("# systemd-analyze not installed: units checked structurally only")

# ---- runit: a broken configuration takes the service down ----
p = RunitPipeline(services=["router"], keep="-k" in sys.argv)
try:
    good = open(p.config).read()
    p.edit_config(lambda c: c["router"].update(outbox_maxx=5))
    p.start_runit()
    p.wait_for(lambda: "not started, service taken down" in p.log("router"), "the run file's error line", 20)
    log = p.log("router")
    t.check("router.outbox_maxx: unknown key" in log, "runit: the configuration error is in the service's log")
    sv = lambda: subprocess.run(["sv", "status", os.path.join(p.svdir, "router")], capture_output=True, text=True).stdout
    p.wait_for(lambda: sv().startswith("down:"), "sv status down", 10)
    time.sleep(3)  # runsv would have restarted it three times by now
    st = sv()
    t.check(st.startswith("down:") and "normally up" in st, f"runit: the service stays down: {st.strip()}")
    n = p.log("router").count("not started, service taken down")
    t.check(n == 1, f"runit: tried once, no crash loop ({n} attempts in 3 s)")
    with open(p.config, "w") as f:
        f.write(good)
    subprocess.run(["sv", "up", os.path.join(p.svdir, "router")], capture_output=True)
    p.wait_for(lambda: sv().startswith("run:") and p.pid("router") and
               os.path.exists(os.path.join(p.dir, "run", "router.sock")), "router running after sv up", 20)
    t.check(True, "runit: fixed and `sv up`, the router runs: " + sv().strip())
except Exception as e:
    t.check(False, f"runit broken-configuration run raised {e!r}")
finally:
    if t.failed:
        print(p.logs())
    p.stop()
sys.exit(t.done())
