"""harness: starts a whole pushpipe pipeline (mock provider and every daemon) in a
temporary directory for integration tests, and gives them small helpers. Loopback only."""
import glob, json, os, random, shutil, signal, socket, subprocess, sys, tempfile, time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.join(TOP, "bin")


def daemons_in_tree():
    """The daemon names this tree builds, sorted: ingress/X/main.c -> ingress-X, D/main.c -> D."""
    names = {"ingress-" + os.path.basename(os.path.dirname(f)) for f in glob.glob(os.path.join(TOP, "ingress", "*", "main.c"))}
    for d in glob.glob(os.path.join(TOP, "*", "main.c")):
        n = os.path.basename(os.path.dirname(d))
        if n != "pushctl":
            names.add(n)
    return sorted(names)


def waited(cond, timeout=15.0):
    """True once cond() holds, False when timeout seconds pass first."""
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Checks:
    """Counts assertions; done() prints the closing line and gives the exit status."""

    def __init__(self):
        self.passed = self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
            print("ok   " + what)
        else:
            self.failed += 1
            print("FAIL " + what)
        sys.stdout.flush()
        return cond

    def done(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.passed > 0 else 1


class Pipeline:
    DAEMONS = ["statsd", "router", "ingress-onion", "apns-sender", "fcm-sender"]

    def __init__(self, keep=False):
        self.dir = tempfile.mkdtemp(prefix="pushpipe-test-")
        self.keep = keep
        self.http = free_port()
        self.mock_port = free_port()
        self.stats_port = free_port()
        self.uwpx_port = free_port()
        self.xmpp_port = free_port()  # where a test's XMPP server takes the component
        self.procs = {}
        self.mock_args = []  # more mock-provider options (a test's extra keys and projects)
        subprocess.run([os.path.join(TOP, "scripts", "mkconfig.sh"), self.dir, str(self.http),
                        str(self.mock_port), str(self.stats_port), str(self.uwpx_port), str(self.xmpp_port)], check=True)
        self.config = os.path.join(self.dir, "pushpipe.json")
        self.record = os.path.join(self.dir, "mock-requests.jsonl")
        self.pubkey_file = os.path.join(self.dir, "keys", "server.pub")

    def start_mock(self):
        m = os.path.join(self.dir, "mock")
        ready = os.path.join(self.dir, "mock.port")
        cmd = [os.path.join(BIN, "mock-provider"), "-l", f"127.0.0.1:{self.mock_port}",
               "--cert", f"{m}/server.pem", "--key", f"{m}/server.key", "--record", self.record,
               "--apns-key", f"{m}/apns_pub.pem", "--apns-kid", "MOCKKEY123", "--apns-team", "MOCKTEAM12",
               "--fcm-key", f"{m}/fcm_pub.pem", "--ready-file", ready]
        wns = json.load(open(f"{m}/wns.json"))
        cmd += ["--wns-client-id", wns["client_id"], "--wns-client-secret", wns["client_secret"]]
        hms = json.load(open(f"{m}/hms.json"))
        cmd += ["--hms-app-id", hms["app_id"], "--hms-app-secret", hms["app_secret"]]
        cmd += self.mock_args
        self.procs["mock-provider"] = subprocess.Popen(cmd, stderr=open(os.path.join(self.dir, "mock.log"), "ab"))
        self.wait_for(lambda: os.path.exists(ready), "mock provider ready")

    def start(self, name, *extra):
        binary = name if name in self.DAEMONS else name.rsplit("#", 1)[0]
        log = open(os.path.join(self.dir, name.replace("#", "-") + ".log"), "ab")
        cmd = [os.path.join(BIN, binary), "-c", self.config, *extra]
        if os.environ.get("PUSHPIPE_VALGRIND"):  # tests/integration/valgrind.sh
            vlog = os.path.join(self.dir, "valgrind-" + name.replace("#", "-") + ".txt")
            cmd = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                   "--show-leak-kinds=definite,indirect", "--track-fds=no", "--log-file=" + vlog] + cmd
        self.procs[name] = subprocess.Popen(cmd, stderr=log)

    def start_all(self):
        self.start_mock()
        for d in self.DAEMONS:
            self.start(d)
        self.wait_for(self.ingress_up, "ingress listening")
        self.wait_ingress_linked()

    def wait_ingress_linked(self, timeout=15.0):
        """Requests before the ingress reaches the router are answered "Server busy" (retryable):
        waits until every HTTP worker of ingress-onion (each has its own link) is connected."""
        with open(self.config) as f:
            workers = json.load(f).get("ingress_onion", {}).get("threads", 2)
        line = "connected to " + os.path.join(self.dir, "run", "router.sock")
        self.wait_for(lambda: self.log("ingress-onion").count(line) >= workers,
                      f"all {workers} ingress workers connected to the router", timeout)

    def log(self, name):
        try:
            with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def ingress_up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.http), timeout=0.2):
                return True
        except OSError:
            return False

    def wait_for(self, cond, what, timeout=15.0):
        end = time.time() + timeout
        while time.time() < end:
            if cond():
                return True
            time.sleep(0.05)
        raise RuntimeError("timed out waiting for " + what)

    def kill(self, name, sig=signal.SIGTERM):
        p = self.procs.pop(name, None)
        if p and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p

    def pushctl(self, *args, v4=False, xchacha=False):
        cmd = [os.path.join(BIN, "pushctl"), "send", "-u", f"http://127.0.0.1:{self.http}", "-K", self.pubkey_file]
        if v4:
            cmd.append("-4")
        if xchacha:
            cmd.append("-x")
        r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout.strip()

    def requests(self):
        try:
            with open(self.record) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def stop(self):
        for name in list(self.procs):
            self.kill(name)
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self):
        out = []
        for fn in sorted(os.listdir(self.dir)):
            if fn.endswith(".log"):
                with open(os.path.join(self.dir, fn), errors="replace") as f:
                    out.append(f"--- {fn}\n" + f.read()[-3000:])
        return "\n".join(out)


def raw_exchange(port, data, timeout=5.0, source=None):
    """Sends data on a new connection to 127.0.0.1:port (from source, an address on loopback,
    when given) and reads until the server closes it or `timeout` passes without a byte;
    returns (the bytes read, whether the server closed the connection)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    out, closed = b"", False
    try:
        s.sendall(data)
        while True:
            b = s.recv(65536)
            if not b:
                closed = True
                break
            out += b
    except socket.timeout:
        pass
    except OSError:
        closed = True
    finally:
        s.close()
    return out, closed
