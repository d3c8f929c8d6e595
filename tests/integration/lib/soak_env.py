"""soak_env: runs the pipeline from the shipped runit tree (deploy/runit) in a test directory,
as an operator would: runsvdir over copies of the service directories, a runit.conf pointing
at this build, svlogd logs per service. runsv restarts a daemon that dies, so tests can
kill -9 freely. Loopback only; the mock provider and configuration come from harness.Pipeline."""
import json, os, shutil, signal, ssl, subprocess, time, http.client
from lib.harness import TOP, BIN, Pipeline

RUNIT_TREE = os.path.join(TOP, "deploy", "runit")


class RunitPipeline(Pipeline):
    """Pipeline whose daemons run under runsvdir from deploy/runit."""

    SERVICES = ["statsd", "router", "ingress-onion", "apns-sender-1", "apns-sender-2", "fcm-sender-1"]

    def __init__(self, services=None, keep=False):
        super().__init__(keep=keep)
        self.services = services or self.SERVICES
        self.svdir = os.path.join(self.dir, "service")
        self.logdir = os.path.join(self.dir, "log")
        self.runsvdir = None

    def edit_config(self, fn):
        with open(self.config) as f:
            c = json.load(f)
        fn(c)
        with open(self.config, "w") as f:
            json.dump(c, f, indent=2)

    def start_runit(self):
        os.makedirs(self.svdir, exist_ok=True)
        conf = os.path.join(self.dir, "runit.conf")
        # The run files exec the installed names ($SBIN/pushpipe-<daemon>): link them to this build.
        sbin = os.path.join(self.dir, "sbin")
        os.makedirs(sbin, exist_ok=True)
        for name in os.listdir(BIN):
            if not os.path.exists(os.path.join(sbin, "pushpipe-" + name)):
                os.symlink(os.path.join(BIN, name), os.path.join(sbin, "pushpipe-" + name))
        # svlogd runs as _runit-log (deploy/runit/*/log/run): it must reach LOGDIR in this directory.
        os.chmod(self.dir, 0o711)
        with open(conf, "w") as f:
            f.write(f"SBIN={sbin}\nCONFIG={self.config}\nLOGDIR={self.logdir}\n")
            if os.geteuid() != 0:  # only root can hand the log directory to _runit-log
                f.write("LOGUSER=\n")
        for s in self.services:
            shutil.copytree(os.path.join(RUNIT_TREE, s), os.path.join(self.svdir, s))
        env = dict(os.environ, PUSHPIPE_RUNIT_CONF=conf)
        # Its own session, so stopping it never signals the test.
        self.runsvdir = subprocess.Popen(["runsvdir", "-P", self.svdir], env=env, start_new_session=True,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start_all(self):
        self.start_mock()
        self.start_runit()
        self.wait_for(self.ingress_up, "ingress listening", 30)
        sock = os.path.join(self.dir, "run", "router.sock")
        self.wait_for(lambda: "connected to " + sock in self.log("ingress-onion"), "ingress connected to the router", 30)

    def log(self, name):
        try:
            with open(os.path.join(self.logdir, name, "current"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return super().log(name)

    def pid(self, service):
        try:
            with open(os.path.join(self.svdir, service, "supervise", "pid")) as f:
                v = f.read().strip()
            return int(v) if v else None
        except (FileNotFoundError, ValueError):
            return None

    def kill9(self, service, timeout=20.0):
        """kill -9 the service's daemon and wait until runsv has started a new one."""
        old = self.pid(service)
        if old:
            os.kill(old, signal.SIGKILL)
        self.wait_for(lambda: self.pid(service) not in (None, old) and os.path.exists(f"/proc/{self.pid(service)}"),
                      f"{service} restarted by runsv", timeout)
        return old, self.pid(service)

    def rss_kb(self, service):
        p = self.pid(service)
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return p, int(line.split()[1])
        except (FileNotFoundError, TypeError):
            pass
        return p, None

    def mock_control(self, method, path, body=None):
        ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "mock", "ca.pem"))
        c = http.client.HTTPSConnection("127.0.0.1", self.mock_port, context=ctx, timeout=10)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"content-type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def _ours(self):
        """Pids of runsv/svlogd/daemons started from our service directory (found via /proc)."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                if os.readlink(f"/proc/{d}/cwd").startswith(self.svdir):
                    out.append(int(d))
            except OSError:
                pass
        return out

    def stop(self):
        if self.runsvdir and self.runsvdir.poll() is None:
            dirs = [os.path.join(self.svdir, s) for s in self.services]
            subprocess.run(["sv", "-w", "15", "force-stop"] + dirs, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run(["sv", "exit"] + dirs + [d + "/log" for d in dirs],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.runsvdir.send_signal(signal.SIGHUP)
            try:
                self.runsvdir.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.runsvdir.kill()
                self.runsvdir.wait()
            end = time.time() + 5
            while self._ours() and time.time() < end:
                time.sleep(0.1)
            for p in self._ours():  # anything left is ours: end it by its pid
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        super().stop()

    def logs(self):
        out = []
        for s in self.services:
            out.append(f"--- {s}\n" + self.log(s)[-3000:])
        out.append("--- mock\n" + super().log("mock")[-2000:])
        return "\n".join(out)
