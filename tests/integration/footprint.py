"""The libraries the idle-footprint work keeps out of the daemons (docs/benchmarks.md, "Idle
memory"): all nine daemons started in the single-machine configuration, one registration made;
then no daemon maps libnats or protobuf-c (loaded with dlopen in cluster mode only), the router
and statsd map no libcrypto, and only the daemons that make TLS connections map libssl. Then one
notify still reaches the mock provider."""
import os, sys
from lib.harness import Checks, Pipeline

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
p.DAEMONS = Pipeline.DAEMONS + ["ingress-uwpx", "ingress-xmpp", "wns-sender", "hms-sender"]
ID = "bd" + "7" * 64
TOKEN = "c4" * 32
TLS = {"ingress-uwpx", "apns-sender", "fcm-sender", "wns-sender", "hms-sender"}


def mapped(pid):
    """Base names of the files a process maps."""
    with open(f"/proc/{pid}/maps") as f:
        return {os.path.basename(line.split()[5]) for line in f if len(line.split()) > 5}


def has(libs, stem):
    return any(x.startswith(stem + ".so") or x.startswith(stem + "-") for x in libs)


try:
    p.start_all()
    t.check(p.wait_for(lambda: p.pushctl("register", f"token={TOKEN}", f"pubKey={ID}")[0] == 0, "registration"),
            "a registration goes through")
    for name in p.DAEMONS:
        pr = p.procs[name]
        t.check(pr.poll() is None, f"{name} is running")
        libs = mapped(pr.pid)
        t.check(not has(libs, "libnats") and not has(libs, "libprotobuf-c"),
                f"{name} maps neither libnats nor protobuf-c")
        if name in ("router", "statsd"):
            t.check(not has(libs, "libcrypto"), f"{name} maps no libcrypto")
        t.check(has(libs, "libssl") == (name in TLS), f"{name} maps libssl only if it makes TLS connections ({name in TLS})")
    rc, out = p.pushctl("notify", f"send_to={ID}", "data=Zm9vdHByaW50")
    t.check(rc == 0, f"a notify is accepted ({out[-120:]})")
    t.check(p.wait_for(lambda: any(r.get("provider") == "apns" for r in p.requests()), "delivery", timeout=30),
            "and reaches the mock provider")
except Exception as e:
    t.check(False, f"unexpected: {e}\n{p.logs()}")
finally:
    p.stop()
sys.exit(t.done())
