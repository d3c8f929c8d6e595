"""Apps (docs/config.md, "Apps"): an `apps` entry's keys override its platform's section for the
sender serving it (here the APNs topic, seen by the mock on the wire); -a picks the app (may be
omitted where the platform has one); the lock and the router's duplicate check are per (platform,
app, instance); the router refuses a sender of an app its configuration does not have; -a on a daemon
that is no sender, or naming no app, is refused at start. The single-section configuration (app
"default") is what every other test runs."""
import json, os, subprocess, sys
from lib.harness import BIN, Checks, Pipeline

ID = "bd" + "7" * 64
IOS = "ab" * 32
t = Checks()
p = Pipeline(keep="-k" in sys.argv)


def delivered(provider, token):
    return [r for r in p.requests() if r["provider"] == provider and token in (r["path"] + r.get("body", "")) and r["status"] == 200]


def run(*args, config=None):
    r = subprocess.run([os.path.join(BIN, args[0]), "-c", config or p.config, *args[1:]], capture_output=True, text=True, timeout=10)
    return r.returncode, r.stdout + r.stderr


try:
    with open(p.config) as f:
        conf = json.load(f)
    conf["apps"] = [{"name": "one", "platform": "apns", "topic": "org.example.appone"},
                    {"name": "droid", "platform": "fcm", "_note": "the fcm_sender section's keys as they are"},
                    {"name": "hw", "platform": "hms", "app_secret_file": conf["hms_sender"]["app_secret_file"]},
                    {"name": "uwp", "platform": "wns", "client_secret_file": os.path.join(p.dir, "nonexistent.secret")}]
    with open(p.config, "w") as f:
        json.dump(conf, f, indent=1)
    other = os.path.join(p.dir, "other.json")
    conf["apps"][0]["name"] = "two"
    with open(other, "w") as f:
        json.dump(conf, f, indent=1)

    rc, out = run("apns-sender", "-n", "-a", "one")
    t.check(rc == 0 and "configuration OK" in out, f"apns-sender -n -a one: {out.strip()}")
    rc, out = run("apns-sender", "-n", "-a", "nosuch")
    t.check(rc != 0 and "-a nosuch: no apns app" in out, f"-a naming no app is refused: {out.strip()}")
    rc, out = run("hms-sender", "-n", "-a", "hw")
    t.check(rc == 0 and "configuration OK" in out, f"hms-sender -n -a hw: {out.strip()}")
    rc, out = run("hms-sender", "-n", "-a", "one")
    t.check(rc != 0 and "-a one: no hms app" in out, f"an APNs app's name is no HMS app: {out.strip()}")
    rc, out = run("wns-sender", "-n")
    t.check(rc != 0 and "nonexistent.secret" in out, f"wns-sender -n checks its app's keys, not only the section's: {out.strip()}")
    rc, out = run("router", "-n", "-a", "one")
    t.check(rc != 0 and "only a sender serves an app" in out, f"-a on the router is refused: {out.strip()}")

    p.start_all()  # the senders without -a: their platform's one app
    p.pushctl("register", f"token={IOS}", f"pubKey={ID}")
    p.pushctl("register", "token=fcm:apps", f"pubKey={ID}", "device=android")
    rc, _ = p.pushctl("notify", f"send_to={ID}", "data=YXBwcw==")
    t.check(rc == 0, "notify accepted")
    p.wait_for(lambda: delivered("apns", IOS) and delivered("fcm", "fcm:apps"), "both deliveries", timeout=15)
    topics = {r["headers"].get("apns-topic") for r in delivered("apns", IOS)}
    t.check(topics == {"org.example.appone"}, f"APNs request carries the app's topic, not the section's: {topics}")
    t.check("of app one" in p.log("apns-sender") and "of app droid" in p.log("fcm-sender"),
            "each sender says which app it serves")
    t.check(", app one)" in p.log("router") and ", app droid)" in p.log("router"), "the router logs each sender's app")

    # A second instance of the same app, named: connects; the same name again: the lock refuses.
    p.start("apns-sender#2", "-a", "one", "-i", "2")
    p.wait_for(lambda: "sender apns instance \"2\" connected" in p.log("router") and "app one)" in p.log("router"), "instance 2 of app one")
    rc, out = run("apns-sender", "-a", "one", "-i", "2")
    t.check(rc != 0 and "already running" in out, f"a second apns-sender -a one -i 2: {out.strip()[-120:]}")
    t.check(os.path.exists(os.path.join(p.dir, "run", "apns-sender-one-2.lock")), "the lock file names the app")

    # A sender of another app (its own configuration file): the router's configuration has no app "two".
    log = open(os.path.join(p.dir, "apns-sender-3.log"), "ab")
    p.procs["apns-sender#3"] = subprocess.Popen([os.path.join(BIN, "apns-sender"), "-c", other, "-i", "3"], stderr=log)
    p.wait_for(lambda: "serves app \"two\"" in p.log("router"), "the router refusing app two")
    t.check("refused: it serves app \"two\", which is no apns app of this router's configuration" in p.log("router"),
            "a sender of an app the configuration does not have is refused")
    before = len(delivered("apns", IOS))
    for i in range(4):
        p.pushctl("notify", f"send_to={ID}", f"data=bW9yZS{i}")
    p.wait_for(lambda: len(delivered("apns", IOS)) >= before + 4, "deliveries by app one's instances", timeout=15)
    t.check({r["headers"].get("apns-topic") for r in delivered("apns", IOS)} == {"org.example.appone"},
            "every APNs delivery was made with app one's credentials")
except Exception as e:  # noqa: BLE001
    t.check(False, f"exception: {e}")
    print(p.logs())
finally:
    p.stop()
sys.exit(t.done())
