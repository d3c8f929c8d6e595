"""metrics_util: helpers for the statsd tests — a statsd of its own (short windows, the test
clock), metric datagrams built here (the ids of common/counters.h), a strict parser of the
Prometheus text format 0.0.4, and period rows read over the query socket."""
import http.client, json, os, re, signal, socket, struct, subprocess, time
from lib import frames
from lib.harness import BIN, TOP, Pipeline

COUNTER, STATS_QUERY, STATS_ROWS = 30, 31, 32
TAG_COUNTER, TAG_DELTA, TAG_START, TAG_END = 40, 41, 42, 43
HTTP, HIST, GAUGE = 1, 2, 3
HIST_BOUNDS, HIST_SUM = 16, 0xFF


def counter_names():
    """{id: name} from the names table in common/counters.c, and the enum order from counters.h."""
    src = open(os.path.join(TOP, "common", "counters.h")).read()
    enum = src[src.index("enum counter_id {"):src.index("CTR_MAX")]
    ids = re.findall(r"^\s*(CTR_[A-Z0-9_]+)", enum, re.M)
    table = dict(re.findall(r'\[(CTR_[A-Z0-9_]+)\] = "([a-z0-9_]+)"', open(os.path.join(TOP, "common", "counters.c")).read()))
    return {i + 1: table[name] for i, name in enumerate(ids)}


def http_id(route, status):
    return HTTP << 24 | route << 16 | status


def hist_id(h, bucket):
    return HIST << 24 | h << 8 | bucket


def gauge_id(src, g):
    return GAUGE << 24 | src << 16 | g


def datagram(pairs):
    fields = []
    for cid, v in pairs:
        fields += [(TAG_COUNTER, struct.pack("<I", cid)), (TAG_DELTA, struct.pack("<Q", v))]
    return frames.encode(COUNTER, 0, fields)


class Statsd:
    """One statsd in a pipeline directory, with the test clock and its own period."""

    def __init__(self, period_s=None, clock=None, listen=None, keep=False):
        self.p = Pipeline(keep=keep)
        # statsd accepts the test clock only inside state_dir (common/sandbox.c)
        self.clock_file = os.path.join(self.p.dir, "run", "clock")
        cfg = json.load(open(self.p.config))
        if period_s:
            cfg["statsd"]["period_s"] = period_s
        if listen:
            cfg["statsd"]["listen"] = listen
        json.dump(cfg, open(self.p.config, "w"), indent=2)
        self.port = self.p.stats_port
        self.sock = os.path.join(self.p.dir, "run", "statsd.sock")
        self.qsock = os.path.join(self.p.dir, "run", "statsd-query.sock")
        self.proc = None
        if clock is not None:
            self.set_clock(clock)

    def set_clock(self, t):
        with open(self.clock_file + ".tmp", "w") as f:
            f.write(f"{int(t)}\n")
        os.replace(self.clock_file + ".tmp", self.clock_file)

    def start(self, wait=True):
        env = dict(os.environ, PUSHPIPE_TEST_CLOCK_FILE=self.clock_file) if os.path.exists(self.clock_file) else None
        log = open(os.path.join(self.p.dir, "statsd.log"), "ab")
        self.proc = subprocess.Popen([os.path.join(BIN, "statsd"), "-c", self.p.config], stderr=log, env=env)
        if wait:
            self.p.wait_for(lambda: self.get("/metrics")[0] == 200, "statsd HTTP")
        return self.proc

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def close(self):
        self.stop()
        self.p.stop()

    def send(self, pairs):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(datagram(pairs), self.sock)
        s.close()

    def get(self, path, method="GET"):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            c.request(method, path)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        except OSError:
            return 0, {}, b""

    def metrics(self):
        st, h, b = self.get("/metrics")
        assert st == 200, f"/metrics answered {st}"
        return parse_prometheus(b.decode())

    def rows(self, start=0, end=0):
        """[(start, end, [v0, v1, ...])] from the query socket."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(5)
        s.connect(self.qsock)
        f = [(TAG_START, struct.pack("<Q", start))]
        if end:
            f.append((TAG_END, struct.pack("<Q", end)))
        s.send(frames.encode(STATS_QUERY, 7, f))
        ftype, fid, fields = frames.decode(s.recv(1 << 20))
        s.close()
        assert ftype == STATS_ROWS and fid == 7
        # A row is TAG_START, TAG_END, then a (TAG_COUNTER, TAG_DELTA) pair per counter that is
        # not zero; the values come back as a list indexed by counter id.
        out, counter = [], None
        for tag, v in fields:
            if tag == TAG_START:
                out.append([struct.unpack("<Q", v)[0], None, [0] * 256])
            elif tag == TAG_END:
                out[-1][1] = struct.unpack("<Q", v)[0]
            elif tag == TAG_COUNTER:
                counter = struct.unpack("<I", v)[0]
            elif tag == TAG_DELTA:
                out[-1][2][counter] = struct.unpack("<Q", v)[0]
        return [tuple(r) for r in out]


NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(\{{(?:{LABEL})(?:,{LABEL})*\}})? (\S+)(?: (-?\d+))?$")
VALUE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]Inf|NaN)$")


def parse_prometheus(text):
    """Checks every line against the text format 0.0.4 and returns
    {"samples": {(name, ((label, value), ...)): float}, "types": {family: type}, "help": {family: text}}.
    Raises ValueError naming the first bad line."""
    if not text.endswith("\n"):
        raise ValueError("the exposition must end with a line feed")
    samples, types, helps = {}, {}, {}
    seen_family, sampled = [], set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            parts = line[7:].split(" ", 1)
            if not re.fullmatch(NAME, parts[0]) or parts[0] in helps:
                raise ValueError(f"line {n}: bad or repeated HELP: {line!r}")
            helps[parts[0]] = parts[1] if len(parts) > 1 else ""
            continue
        if line.startswith("# TYPE "):
            parts = line[7:].split(" ")
            if len(parts) != 2 or not re.fullmatch(NAME, parts[0]) or parts[1] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                raise ValueError(f"line {n}: bad TYPE: {line!r}")
            if parts[0] in types:
                raise ValueError(f"line {n}: second TYPE for {parts[0]}")
            if parts[0] in sampled:
                raise ValueError(f"line {n}: TYPE after samples of {parts[0]}")
            types[parts[0]] = parts[1]
            seen_family.append(parts[0])
            continue
        if line.startswith("#") or line == "":
            if line != "" and not line.startswith("# "):
                raise ValueError(f"line {n}: bad comment {line!r}")
            continue
        m = SAMPLE.match(line)
        if not m or not VALUE.match(m.group(3)):
            raise ValueError(f"line {n}: not a sample: {line!r}")
        labels = tuple(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        key = (m.group(1), labels)
        if key in samples:
            raise ValueError(f"line {n}: repeated sample {line!r}")
        samples[key] = float(m.group(3))
        fam = m.group(1)
        for suffix in ("_bucket", "_sum", "_count"):
            if fam.endswith(suffix) and types.get(fam[:-len(suffix)]) == "histogram":
                fam = fam[:-len(suffix)]
        if fam not in types:
            raise ValueError(f"line {n}: sample of {fam} without a TYPE line")
        sampled.add(fam)
        if seen_family and seen_family[-1] != fam:
            raise ValueError(f"line {n}: sample of {fam} away from its family")
    for fam, t in types.items():
        if t == "histogram":
            buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in samples.items() if k[0] == fam + "_bucket"))
            if not buckets or buckets[-1][0] != float("inf"):
                raise ValueError(f"{fam}: no +Inf bucket")
            if any(nxt[1] < prev[1] for prev, nxt in zip(buckets, buckets[1:])):
                raise ValueError(f"{fam}: buckets not cumulative")
            if samples.get((fam + "_count", ())) != buckets[-1][1]:
                raise ValueError(f"{fam}: _count differs from the +Inf bucket")
    return {"samples": samples, "types": types, "help": helps}


def value(parsed, name, **labels):
    """A sample's value; labels in the order statsd writes them."""
    return parsed["samples"].get((name, tuple(labels.items())))
