"""deploy/pushpipe.json.example is a complete production configuration that every daemon
accepts: each section of common/config.c is in it, and `<daemon> -n -c FILE` answers
`configuration OK` for every daemon of the tree. The secrets it names are stubbed: the file's
/etc/pushpipe, /run/pushpipe and /var/lib/pushpipe paths are moved into a temporary directory
that holds test credentials of the right format (tests/mock-provider/mkcreds.sh). Also: every
path of the example is one docs/operations.md creates, and the paths docs/config.md gives as
defaults are the code's."""
import glob, json, os, re, shutil, subprocess, sys, tempfile
from lib.harness import TOP, BIN, Checks, daemons_in_tree

t = Checks()
EXAMPLE = os.path.join(TOP, "deploy", "pushpipe.json.example")
ROOTS = ("/etc/pushpipe", "/run/pushpipe", "/var/lib/pushpipe")



text = open(EXAMPLE).read()
try:
    conf = json.loads(text)
    t.check(True, "the example is JSON")
except ValueError as e:
    t.check(False, f"the example is JSON ({e})")
    sys.exit(t.done())

src = open(os.path.join(TOP, "common", "config.c")).read()
sections = set(re.findall(r'\{"([a-z_]+)", "[a-z0-9_]+", C_', src))
missing = sorted(sections - set(conf))
t.check(not missing, f"the example has every section of common/config.c ({len(sections)}; missing {missing})")
comments = [k for k in conf if k.startswith("_")] + [k for s in conf.values() if isinstance(s, dict) for k in s if k.startswith("_")]
t.check(len(comments) >= len(sections), f"the example is commented ({len(comments)} '_' keys)")
t.check(conf.get("user") == "pushpipe", "the example drops to the pushpipe user")

# Every absolute path of the example, and where it goes in the stub tree.
paths = sorted(set(re.findall(r'"(/(?:etc|run|var)/[^"\s*]*)"', text)))
t.check(all(p.startswith(ROOTS) for p in paths), f"every path is under {', '.join(ROOTS)} ({paths})")
ops = open(os.path.join(TOP, "docs", "operations.md")).read()
for p in paths:
    t.check(p in ops, f"docs/operations.md names {p}")
cdoc = open(os.path.join(TOP, "docs", "config.md")).read()
for key, dflt in re.findall(r'"(state_dir|db_path)", C_STR, [TS]\([a-z_, ]+\), "([^"]*)"', src):
    t.check(dflt.startswith(ROOTS) and f'`"{dflt}"`' in cdoc, f"{key} default {dflt} is an FHS path and docs/config.md says so")
    t.check(dflt in ops, f"docs/operations.md names {dflt}")

tmp = tempfile.mkdtemp(prefix="pushpipe-example-")
try:
    stub = text
    for r in ROOTS:
        stub = stub.replace('"' + r, '"' + tmp + r)
    keys = os.path.join(tmp, "etc", "pushpipe", "keys")
    os.makedirs(keys)
    for r in ROOTS[1:]:
        os.makedirs(tmp + r)
    creds = os.path.join(tmp, "creds")
    subprocess.run([os.path.join(TOP, "tests", "mock-provider", "mkcreds.sh"), creds], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([os.path.join(BIN, "pushctl"), "keygen", "-d", keys], check=True, stdout=subprocess.DEVNULL)
    for src_name, dst in (("apns.p8", "apns.p8"), ("fcm-service-account.json", "fcm-service-account.json"),
                          ("server.pem", "uwpx.pem"), ("server.key", "uwpx.key")):
        shutil.copy(os.path.join(creds, src_name), os.path.join(keys, dst))
    for name in ("wns.secret", "component.secret", "hms.secret"):
        with open(os.path.join(keys, name), "w") as f:
            f.write("stub-secret-for-the-test\n")
    stubbed = json.loads(stub)
    # The service user may not exist on a build host: any existing system user will do for -n.
    if subprocess.run(["getent", "passwd", "pushpipe"], stdout=subprocess.DEVNULL).returncode != 0:
        stubbed["user"] = "nobody"
    # The layout of docs/operations.md: secrets root:<user's group> 0640 in directories 0750.
    if os.geteuid() == 0:
        import pwd
        gid = pwd.getpwnam(stubbed["user"]).pw_gid
        os.chmod(tmp, 0o711)
        for d in (os.path.join(tmp, "etc"), os.path.join(tmp, "etc", "pushpipe"), keys):
            os.chown(d, 0, gid)
            os.chmod(d, 0o750)
        for f in os.listdir(keys):
            os.chown(os.path.join(keys, f), 0, gid)
            os.chmod(os.path.join(keys, f), 0o640)
    cfg = os.path.join(tmp, "pushpipe.json")
    with open(cfg, "w") as f:
        json.dump(stubbed, f, indent=2)
    named = sorted(set(re.findall(r'"(' + re.escape(tmp) + r'/etc/pushpipe/keys/[^"\s*]*)"', stub)))
    t.check(all(os.path.isfile(p) for p in named), f"every secret the example names is stubbed ({len(named)})")

    for d in daemons_in_tree():
        exe = os.path.join(BIN, d)
        if not os.access(exe, os.X_OK):
            t.check(False, f"bin/{d} is built")
            continue
        r = subprocess.run([exe, "-n", "-c", cfg], capture_output=True, text=True, timeout=30)
        t.check(r.returncode == 0 and "configuration OK" in r.stdout,
                f"{d} -n accepts the example: {(r.stdout + r.stderr).strip()}")

    # The check can fail: a comment without its '_' is an unknown key.
    bad = dict(stubbed)
    bad["router"] = dict(stubbed["router"], comment="no underscore")
    badf = os.path.join(tmp, "bad.json")
    with open(badf, "w") as f:
        json.dump(bad, f)
    r = subprocess.run([os.path.join(BIN, "router"), "-n", "-c", badf], capture_output=True, text=True, timeout=30)
    t.check(r.returncode != 0 and "router.comment: unknown key" in r.stderr, f"router -n refuses a key without its '_': {r.stderr.strip()}")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(t.done())
