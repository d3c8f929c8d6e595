"""Every daemon under valgrind memcheck for one scripted run — register (iOS, Android),
notify, closed group, unregister; a UWPX device with an account and a test push through
ingress-uwpx and wns-sender — then a clean stop. Passes when each
daemon delivered its part, exited 0, and valgrind reports no errors and nothing definitely or
indirectly lost. (Still-reachable blocks of libraries' global state are not leaks.)"""
import glob, json, os, re, sys, time
from lib.harness import Checks, Pipeline
from lib.uwpx_client import pipeline_uwpx

ID, GROUP = "bd" + "3" * 64, "bd" + "4" * 64
IOS, ANDROID = "b2" * 32, "fcmTok3n:APA91b-valgrind"

t = Checks()
p = Pipeline(keep=True)
p.DAEMONS = Pipeline.DAEMONS + ["ingress-uwpx", "wns-sender"]
uwpx = pipeline_uwpx(p)
DEV = "c" * 64
ok_dir = False
# valgrind runs the daemon's code on its own core and makes system calls of its own, which the
# seccomp allowlists rightly refuse: memcheck runs are the one place the sandbox is switched off.
cfg = json.load(open(p.config))
cfg["sandbox"] = False
json.dump(cfg, open(p.config, "w"))
try:
    p.start_mock()
    for d in p.DAEMONS:
        p.start(d)
    p.wait_for(p.ingress_up, "ingress listening (valgrind)", timeout=120)
    p.wait_for(lambda: p.pushctl("register", f"token={IOS}", f"pubKey={ID}")[0] == 0, "first registration", timeout=120)
    rc, out = p.pushctl("register", f"token={ANDROID}", f"pubKey={ID}", "device=android")
    t.check(rc == 0, "register Android: " + out)
    rc, out = p.pushctl("subscribe_closed_group", f"closedGroupPublicKey={GROUP}", f"pubKey={ID}")
    t.check(rc == 0, "subscribe: " + out)
    rc, out = p.pushctl("notify", f"send_to={ID}", "data=aGk=")
    t.check(rc == 0, "notify: " + out)
    rc, out = p.pushctl("notify", f"send_to={GROUP}", "data=aGk=", v4=True)
    t.check(rc == 0, "notify to the group over v4: " + out)

    def delivered():
        r = p.requests()
        return sum(1 for x in r if x["provider"] == "apns") >= 2 and sum(1 for x in r if x["provider"] == "fcm") >= 2
    try:
        p.wait_for(delivered, "deliveries under valgrind", timeout=120)
    except RuntimeError as e:
        print(e)
    t.check(delivered(), "both notifies reached APNs and FCM at the mock")
    ch = f"https://127.0.0.1:{p.mock_port}/?token=valgrind"
    end = time.time() + 60
    while time.time() < end and uwpx({"version": 2, "action": "set_channel_uri", "device_id": DEV, "channel_uri": ch}).get("status") != 1:
        time.sleep(0.5)
    r = uwpx({"version": 2, "action": "set_push_accounts", "device_id": DEV, "accounts": [{"account_id": "d" * 64}]})
    t.check(r.get("status") == 1 and r.get("accounts", [{}])[0].get("success"), f"UWPX channel and account: {r}")
    r = uwpx({"version": 2, "action": "request_test_push", "device_id": DEV})
    t.check(r.get("status") == 1, f"UWPX test push: {r}")
    try:
        p.wait_for(lambda: any(x["provider"] == "wns" for x in p.requests()), "test push at the mock WNS", timeout=60)
    except RuntimeError as e:
        print(e)
    t.check(any(x["provider"] == "wns" and x["body"] == '{"action":"test_push","version":2}' for x in p.requests()),
            "the test push reached the mock WNS")
    rc, out = p.pushctl("unregister", f"token={ANDROID}")
    t.check(rc == 0, "unregister: " + out)
    time.sleep(1.5)
finally:
    codes = {}
    for name in list(p.procs):
        if name == "mock-provider":
            continue
        proc = p.kill(name)
        codes[name] = proc.returncode if proc else None
    p.kill("mock-provider")

for name, code in sorted(codes.items()):
    t.check(code == 0, f"{name} exited 0 after TERM under valgrind ({code})")
    report = os.path.join(p.dir, f"valgrind-{name}.txt")
    text = open(report, errors="replace").read() if os.path.exists(report) else ""
    errs = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    t.check(errs is not None and errs.group(1) == "0", f"{name}: valgrind reports 0 errors ({errs.group(1) if errs else 'no report'})")
    lost = re.findall(r"(definitely|indirectly) lost: ([\d,]+) bytes", text)
    t.check(all(n == "0" for _, n in lost) or "All heap blocks were freed" in text,
            f"{name}: nothing definitely or indirectly lost {lost}")
    if errs is None or errs.group(1) != "0":
        print(text[-4000:])
if t.failed == 0:
    p.keep = False
p.stop()
sys.exit(t.done())
