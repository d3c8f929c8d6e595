"""cluster_env: a small pushpipe cluster for integration tests (docs/cluster.md): three
nats-server nodes clustered on 127.0.0.1 (own server_name, one cluster name, own store, free
ports, one NATS user per role with the subjects of deploy/nats/permissions.json) and, on top
of harness.Pipeline's configuration, one configuration file per daemon instance with a
"cluster" section. Loopback only."""
import base64, importlib.util, json, os, shutil, signal, subprocess, time
from lib.harness import TOP, BIN, Pipeline, free_port

# The users and their subjects exactly as make run-cluster's generator makes them.
_spec = importlib.util.spec_from_file_location("mknats", os.path.join(TOP, "scripts", "mknats.py"))
mknats = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mknats)

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
SENDERS = ["apns-default", "fcm-default", "wns-default", "hms-default"]


def q(s):
    return '"%s"' % s


class Cluster(Pipeline):
    def __init__(self, keep=False, nodes=3):
        super().__init__(keep=keep)
        self.ndir = os.path.join(self.dir, "nats")
        os.makedirs(self.ndir)
        self.client = [free_port() for _ in range(nodes)]
        self.route = [free_port() for _ in range(nodes)]
        self.mon = [free_port() for _ in range(nodes)]
        self.nats = {}
        self.write_nats()

    def write_nats(self):
        perms = {k: v for k, v in json.load(open(os.path.join(TOP, "deploy", "nats", "permissions.json"))).items()
                 if not k.startswith("_")}
        users = mknats.users_from(perms, SENDERS)
        auth = ["authorization {", "  users: ["]
        for name, p in users:
            pw = base64.urlsafe_b64encode(os.urandom(18)).decode()
            with open(os.path.join(self.ndir, name + ".cred"), "w") as f:
                f.write(f"{name}:{pw}\n")
            auth.append("    {user: %s, password: %s, permissions: {publish: {allow: [%s]}, subscribe: {allow: [%s]}}}"
                        % (q(name), q(pw), ", ".join(q(s) for s in p["publish"]), ", ".join(q(s) for s in p["subscribe"])))
        auth += ["  ]", "}"]
        n = len(self.client)
        for i in range(n):
            routes = ", ".join("nats-route://127.0.0.1:%d" % self.route[j] for j in range(n) if j != i)
            with open(os.path.join(self.ndir, f"nats-{i + 1}.conf"), "w") as f:
                f.write(f"server_name: nats-{i + 1}\nlisten: 127.0.0.1:{self.client[i]}\n"
                        f"http: 127.0.0.1:{self.mon[i]}\n"
                        f"jetstream {{ store_dir: {q(os.path.join(self.ndir, 'store-%d' % (i + 1)))}, "
                        f"max_memory_store: 64MB, max_file_store: 1GB }}\n"
                        f"cluster {{ name: pushpipe-test, listen: 127.0.0.1:{self.route[i]}, routes: [{routes}] }}\n"
                        + "\n".join(auth) + "\n")

    def start_nats(self, i):
        name = f"nats-{i + 1}"
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        self.nats[name] = subprocess.Popen([NATS, "-c", os.path.join(self.ndir, name + ".conf")], stderr=log, stdout=log)

    def conf(self, name, user, **sections):
        """Writes conf-<name>.json: the pipeline's configuration, the cluster section for user,
        and sections merged in (e.g. router={"db_path": ...})."""
        c = json.load(open(self.config))
        c["log_level"] = os.environ.get("PUSHPIPE_CLUSTER_LOG", "info")
        c["cluster"] = {"servers": ["nats://127.0.0.1:%d" % p for p in self.client], "replicas": 3,
                        "credentials": os.path.join(self.ndir, user + ".cred"), "publish_wait_ms": 1000}
        for k, v in sections.items():
            c.setdefault(k, {}).update(v)
        path = os.path.join(self.dir, f"conf-{name}.json")
        with open(path, "w") as f:
            json.dump(c, f, indent=1)
        return path

    def start_c(self, name, binary, conf, *extra):
        """Starts binary as instance name (-i: one lock each in a shared state_dir)."""
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        if "-i" not in extra:
            extra = ("-i", name) + extra
        self.procs[name] = subprocess.Popen([os.path.join(BIN, binary), "-c", conf, *extra], stderr=log)

    def jsz(self, i=0):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.mon[i]}/jsz?streams=true&consumers=true", timeout=2) as r:
            return json.load(r)

    def stream_leader(self, stream):
        for i in range(len(self.client)):
            if f"nats-{i + 1}" not in self.nats:
                continue
            try:
                for acc in self.jsz(i).get("account_details", []):
                    for s in acc.get("stream_detail", []):
                        if s["name"] == stream and s.get("cluster", {}).get("leader"):
                            return s["cluster"]["leader"]
            except OSError:
                pass
        return None

    def kill_nats(self, name, sig=signal.SIGKILL):
        p = self.nats.pop(name, None)
        if p:
            p.send_signal(sig)
            p.wait()

    def stop(self):
        for name in list(self.procs):
            self.kill(name)
        for name in list(self.nats):
            self.kill_nats(name, signal.SIGTERM)
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
