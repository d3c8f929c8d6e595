"""runcluster_env: make run-cluster (scripts/run-cluster.sh) started for a test or a benchmark, on
free ports in a temporary directory, with what they need to drive it: the ports, each runit
service's pid, signals to services, the NATS monitoring (/jsz), the mock provider's records,
pushctl against either ingress or router. Stops everything it started (runsvdir by its pid)."""
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

from lib import nats_raw

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.join(TOP, "bin")


def sanitized():
    """A SANITIZE= build (as tests/integration/make_run.sh tells it)."""
    r = subprocess.run(["ldd", os.path.join(BIN, "router")], capture_output=True, text=True)
    return "libasan" in r.stdout or "libubsan" in r.stdout


class Cluster:
    def __init__(self, prefix="pp-cluster-"):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.var = os.path.join(self.tmp, "var")
        self.dir = os.path.join(self.var, "cluster")
        p = nats_raw.free_ports(15)
        self.http, self.http2, self.mock, self.stats, self.uwpx, self.xmpp = p[:6]
        self.nats, self.nats_route, self.nats_http = p[6:9], p[9:12], p[12:15]
        self.out = os.path.join(self.tmp, "run-cluster.out")
        self.proc = None
        self.summary = ""

    def start(self, timeout=90.0):
        env = dict(os.environ, PUSHPIPE_VAR=self.var, HTTP_PORT=str(self.http), HTTP2_PORT=str(self.http2),
                   MOCK_PORT=str(self.mock), STATS_PORT=str(self.stats), UWPX_PORT=str(self.uwpx),
                   XMPP_PORT=str(self.xmpp), NATS_PORTS=",".join(map(str, self.nats)),
                   NATS_CLUSTER_PORTS=",".join(map(str, self.nats_route)),
                   NATS_HTTP_PORTS=",".join(map(str, self.nats_http)))
        if sanitized():
            # LeakSanitizer's exit-time tracer can stall a daemon runsv stops (make_run.sh).
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        self.proc = subprocess.Popen([os.path.join(TOP, "scripts", "run-cluster.sh")], env=env,
                                     stdout=open(self.out, "w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        end = time.time() + timeout
        while time.time() < end:
            with open(self.out) as f:
                self.summary = f.read()
            if "Ctrl-C stops everything" in self.summary or self.proc.poll() is not None:
                break
            time.sleep(0.2)
        return "Ctrl-C stops everything" in self.summary

    def demo_registered(self):
        return "is registered through ingress-onion-1" in self.summary

    @property
    def pubkey_file(self):
        return os.path.join(self.dir, "keys", "server.pub")

    def conf(self, name):
        return os.path.join(self.dir, "conf", name + ".json")

    def pid(self, service):
        try:
            with open(os.path.join(self.dir, "service", service, "supervise", "pid")) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def signal(self, service, sig):
        pid = self.pid(service)
        if pid:
            os.kill(pid, sig)
        return pid

    def control(self, service, ch):
        """runit's sv control of a service: "o" run once (not restarted when it ends), "u" up."""
        fd = os.open(os.path.join(self.dir, "service", service, "supervise", "control"), os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, ch.encode())
        finally:
            os.close(fd)

    def wait_restarted(self, service, old_pid, timeout=15.0):
        end = time.time() + timeout
        while time.time() < end:
            p = self.pid(service)
            if p and p != old_pid:
                return p
            time.sleep(0.1)
        return 0

    def jsz(self, node, timeout=3.0):
        url = "http://127.0.0.1:%d/jsz?streams=true&consumers=true&config=true" % self.nats_http[node - 1]
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)

    def streams(self, nodes=(1, 2, 3)):
        """{stream name: {"leader": server_name, "replicas": n, "config": {...}, "consumers": [...]}}
        from the first of the nodes that answers."""
        for n in nodes:
            try:
                j = self.jsz(n)
            except (OSError, ValueError):
                continue
            out = {}
            for acc in j.get("account_details") or []:
                for s in acc.get("stream_detail") or []:
                    cl = s.get("cluster") or {}
                    out[s["name"]] = {"leader": cl.get("leader"), "replicas": len(cl.get("replicas") or []) + 1,
                                      "config": s.get("config") or {}, "consumers": s.get("consumer_detail") or [],
                                      "state": s.get("state") or {}}
            return out
        return {}

    def pushctl(self, *args, port=None, timeout=30):
        cmd = [os.path.join(BIN, "pushctl"), "send", "-u", "http://127.0.0.1:%d" % (port or self.http),
               "-K", self.pubkey_file] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return r.returncode, (r.stdout + r.stderr).strip()

    def export(self, router):
        r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", self.conf(router), "export"],
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def requests(self):
        try:
            with open(os.path.join(self.dir, "log", "mock-requests.jsonl")) as f:
                out = []
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass  # a line being written
                return out
        except FileNotFoundError:
            return []

    def logs(self, lines=8):
        out = []
        ld = os.path.join(self.dir, "log")
        for name in sorted(os.listdir(ld)) if os.path.isdir(ld) else []:
            p = os.path.join(ld, name, "current")
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out.append("--- %s\n%s" % (name, "".join(f.readlines()[-lines:])))
        return "".join(out)

    def stop(self):
        pidf = os.path.join(self.dir, "runsvdir.pid")
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        # Anything of this run still there (a stopped process, a slow exit): ended by its pid.
        for service in os.listdir(os.path.join(self.dir, "service")) if os.path.isdir(os.path.join(self.dir, "service")) else []:
            pid = self.pid(service)
            if pid:
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
        end = time.time() + 30
        while time.time() < end:
            r = subprocess.run(["pgrep", "-f", self.var + "/"], capture_output=True, text=True)
            if not r.stdout.strip():
                break
            time.sleep(0.3)
        r = subprocess.run(["pgrep", "-f", self.var + "/"], capture_output=True, text=True)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        if os.path.exists(pidf):
            os.unlink(pidf)
