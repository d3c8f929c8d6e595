"""`make install` and `make deb` (issue: production operation, item 6).
* make install DESTDIR=… PREFIX=/usr/local installs the daemons as sbin/pushpipe-<daemon>,
  pushctl, a man page per daemon plus pushctl(8) and pushpipe.json(5), the example and the
  deploy trees (pointed at that prefix), units and tmpfiles.d; no bench tool, no mock, no
  generic bin/router.
* make deb builds the package from a temporary copy; dpkg-deb -c shows the same layout under
  /usr, the maintainer scripts create the user and start nothing, lintian reports no error or
  warning (docs/packaging.md lists what it says).
* mkdeb.sh refuses a sanitizer build."""
import glob, os, re, shutil, subprocess, sys, tempfile
from lib.harness import TOP, BIN, Checks, daemons_in_tree

t = Checks()



DAEMONS = daemons_in_tree()
BENCH = {os.path.basename(f) for f in os.listdir(BIN)} - set(DAEMONS) - {"pushctl", "tests"}
tmp = tempfile.mkdtemp(prefix="pushpipe-package-")
try:
    # ---- make install ----
    stage = os.path.join(tmp, "stage")
    r = subprocess.run(["make", "--no-print-directory", "-C", TOP, "install", "DESTDIR=" + stage, "PREFIX=/usr/local"],
                       capture_output=True, text=True, timeout=600)
    t.check(r.returncode == 0, "make install DESTDIR PREFIX=/usr/local" + ("" if r.returncode == 0 else ": " + r.stderr[-800:]))
    files = sorted(os.path.relpath(os.path.join(d, f), stage) for d, _, fs in os.walk(stage) for f in fs)
    t.check(all(f.startswith("usr/local/") for f in files), "everything under DESTDIR$PREFIX")
    sbin = sorted(os.listdir(os.path.join(stage, "usr/local/sbin")))
    t.check(sbin == sorted("pushpipe-" + d for d in DAEMONS), f"sbin holds pushpipe-<daemon> for every daemon ({sbin})")
    t.check(os.listdir(os.path.join(stage, "usr/local/bin")) == ["pushctl"], "bin holds only pushctl")
    leaked = [f for f in files if os.path.basename(f) in BENCH | {"router", "mock-provider"}]
    t.check(not leaked and BENCH, f"no bench tool, mock or generic daemon name installed ({sorted(BENCH)} absent; {leaked})")
    men = {os.path.basename(f) for f in files if "/share/man/" in f}
    want = {f"pushpipe-{d}.8" for d in DAEMONS} | {"pushctl.8", "pushpipe.json.5"}
    t.check(men == want, f"man pages: one per daemon, pushctl(8), pushpipe.json(5) ({sorted(men ^ want)})")
    for m in sorted(men):
        p = [f for f in files if f.endswith("/" + m)][0]
        sect = m.rsplit(".", 1)[1]
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", os.path.join(stage, p)], capture_output=True, text=True)
        t.check(r.returncode == 0 and not r.stderr.strip() and p.endswith(f"man{sect}/{m}"), f"man {m} renders without warnings {r.stderr.strip()[:300]}")
    src = open(os.path.join(TOP, "common", "config.c")).read()
    keys = set(re.findall(r'\{(?:NULL|"[a-z_]+"), "([a-z0-9_]+)", C_', src))
    page = open([os.path.join(stage, f) for f in files if f.endswith("/pushpipe.json.5")][0]).read()
    missing = sorted(k for k in keys if not re.search(r"^\.BR " + k + " ", page, re.M))
    t.check(not missing, f"pushpipe.json(5) describes every key of common/config.c ({len(keys)}; missing {missing})")
    share = os.path.join(stage, "usr/local/share/pushpipe")
    t.check(os.path.isfile(os.path.join(share, "pushpipe.json.example")), "the example configuration is installed")
    runs = glob.glob(os.path.join(share, "runit/*/run"))
    t.check(len(runs) == len(os.listdir(os.path.join(TOP, "deploy/runit"))) and
            all("\nPREFIX=/usr/local\n" in open(f).read() and os.access(f, os.X_OK) for f in runs),
            f"runit tree installed, executable, PREFIX=/usr/local ({len(runs)} services)")
    sup = open(os.path.join(share, "supervisord/pushpipe.conf")).read()
    t.check("command=/usr/local/sbin/pushpipe-router " in sup and "command=/usr/sbin/" not in sup, "supervisord file points at /usr/local/sbin")
    units = glob.glob(os.path.join(stage, "usr/local/lib/systemd/system/*"))
    t.check(len(units) == len(glob.glob(os.path.join(TOP, "deploy/systemd/*.service"))) + 1 and
            all("/usr/sbin/" not in open(u).read() for u in units) and
            "ExecStart=/usr/local/sbin/pushpipe-router -c" in open(os.path.join(stage, "usr/local/lib/systemd/system/pushpipe-router.service")).read(),
            f"systemd units installed, pointing at /usr/local/sbin ({len(units)})")
    t.check(os.path.isfile(os.path.join(stage, "usr/local/lib/tmpfiles.d/pushpipe.conf")), "tmpfiles.d/pushpipe.conf installed")

    # ---- make deb ----
    out = os.path.join(tmp, "deb")
    r = subprocess.run(["make", "--no-print-directory", "-C", TOP, "deb", "DEBDIR=" + out], capture_output=True, text=True, timeout=900)
    debs = glob.glob(os.path.join(out, "pushpipe_*.deb"))
    t.check(r.returncode == 0 and len(debs) == 1, "make deb builds one package" + ("" if r.returncode == 0 else ": " + (r.stdout + r.stderr)[-1500:]))
    t.check(not os.path.exists(os.path.join(os.path.dirname(TOP), "pushpipe_0.1.0_amd64.deb")) and
            not glob.glob(os.path.join(os.path.dirname(TOP), "pushpipe_*.changes")), "nothing written next to the tree")
    if debs:
        blog = open(os.path.join(out, "build.log"), errors="replace").read()
        t.check("make check" not in blog and "run-tests.sh" not in blog and "-fsanitize" not in blog,
                "the package build runs no test and no sanitizer")
        t.check(not re.search(r"cc .*-o bin/(tests/|mock-provider|onion_load|registry_bench|router_load|sender_feed|floor_server)", blog),
                "the package build compiles only the daemons and pushctl")
        c = subprocess.run(["dpkg-deb", "-c", debs[0]], capture_output=True, text=True).stdout
        paths = [l.split()[5].lstrip(".") for l in c.splitlines()]
        for d in DAEMONS:
            t.check(f"/usr/sbin/pushpipe-{d}" in paths and f"/usr/share/man/man8/pushpipe-{d}.8.gz" in paths, f"deb: /usr/sbin/pushpipe-{d} and its man page")
        t.check("/usr/bin/pushctl" in paths and "/usr/share/man/man8/pushctl.8.gz" in paths and "/usr/share/man/man5/pushpipe.json.5.gz" in paths,
                "deb: pushctl, pushctl(8), pushpipe.json(5)")
        t.check(not [p for p in paths if os.path.basename(p) in BENCH | {"router", "mock-provider"}], "deb: no bench tool, mock or /usr/bin/router")
        for u in ["pushpipe-router.service", "pushpipe-statsd.service", "pushpipe-ingress-onion.service", "pushpipe-apns-sender@.service",
                  "pushpipe-fcm-sender@.service", "pushpipe-wns-sender@.service", "pushpipe.target"]:
            t.check(f"/lib/systemd/system/{u}" in paths, f"deb: unit {u}")
        t.check("/usr/lib/tmpfiles.d/pushpipe.conf" in paths, "deb: tmpfiles.d/pushpipe.conf")
        t.check("/usr/share/pushpipe/runit/router/run" in paths and "/usr/share/pushpipe/runit/router/log/run" in paths and
                "/usr/share/pushpipe/supervisord/pushpipe.conf" in paths and "/usr/share/pushpipe/pushpipe.json.example" in paths,
                "deb: runit tree, supervisord file, example configuration")
        t.check(not [p for p in paths if p.startswith("/etc/pushpipe/pushpipe.json")], "deb: ships no configuration (nothing starts until one is written)")
        ctl = os.path.join(tmp, "control")
        subprocess.run(["dpkg-deb", "-e", debs[0], ctl], check=True)
        pi = open(os.path.join(ctl, "postinst")).read()
        t.check(re.search(r"adduser --system --group .*pushpipe", pi, re.S) is not None, "postinst creates the pushpipe system user")
        t.check("install -d -o pushpipe -g pushpipe -m 0750" in pi and "systemd-tmpfiles" in pi and "/etc/pushpipe/keys" in pi,
                "postinst creates the directories (and runs tmpfiles)")
        t.check("deb-systemd-invoke" not in pi and "deb-systemd-helper enable" not in pi.split("was-enabled")[0],
                "postinst starts and enables nothing")
        control = open(os.path.join(ctl, "control")).read()
        t.check(re.search(r"^Depends:.*\badduser\b", control, re.M) is not None, "Depends: adduser")
        r = subprocess.run(["lintian", "--no-tag-display-limit", debs[0]], capture_output=True, text=True, timeout=300)
        tags = [l for l in r.stdout.splitlines() if re.match(r"[EW]: ", l)]
        t.check(not tags, f"lintian: no error or warning {tags}")

    # ---- the sanitizer pass never builds a package ----
    for env in ({"SANITIZE": "address,undefined"}, {"MAKEFLAGS": "-j2 -- SANITIZE=address,undefined"}):
        r = subprocess.run([os.path.join(TOP, "scripts", "mkdeb.sh"), os.path.join(tmp, "never")], capture_output=True, text=True,
                           env=dict(os.environ, **env), timeout=60)
        t.check(r.returncode != 0 and "SANITIZE" in r.stderr and not os.path.exists(os.path.join(tmp, "never")),
                f"mkdeb.sh refuses {env}")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(t.done())
