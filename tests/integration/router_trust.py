"""router_trust: the router's trust in its local peers (docs/operations.md, "Security model"),
played with frames against the real router:
  * one socket per role class (router.sock, router-sender.sock, router-tool.sock, mode 0600): a
    hello claiming another class's role is dropped and logged; with per-role users set, each
    socket belongs to its class's user, so the ingress user cannot even connect to the senders';
  * per-role users set: a peer whose uid may not take the role its hello claims is dropped and
    logged, the right uid is served (needs root to create the two users; they are removed);
  * a result is applied only for a job held by that connection, of its platform: a peer posing
    as an Android sender sends TOKEN_DEAD for iOS jobs it never held, and the token stays;
  * connections that never say hello are closed at the hello deadline, and hundreds of them
    do not keep a real ingress or sender out;
  * a WNS channel URI outside the allowlist is refused by the router, and a queued WNS job whose
    URI the allowlist no longer takes is never handed to a sender."""
import json, os, pwd, socket, subprocess, sys, time
from lib import frames as F
from lib.harness import Checks, Pipeline

ID = "bd" + "7" * 64
IOS_TOKEN = "a1" * 32
FCM_TOKEN = "fcm:trust-token_1"
UWPX_CHANNEL, UWPX_TEST = 40, 42
ROLE_TOOL = 5
TAG_DEVICE_ID, TAG_URI = 50, 51
DEV = "c" * 64
URI_OK = "https://db5p.notify.windows.com/?token=trust1"

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
sock_path = os.path.join(p.dir, "run", "router.sock")
SOCKS = {F.ROLE_INGRESS: sock_path, F.ROLE_SENDER: os.path.join(p.dir, "run", "router-sender.sock"),
         ROLE_TOOL: os.path.join(p.dir, "run", "router-tool.sock")}
users = []


def configure(**router):
    with open(p.config) as f:
        cfg = json.load(f)
    cfg["router"].update(router)
    if users:
        cfg["users"] = {"ingress": users[0], "sender": users[1]}
    with open(p.config, "w") as f:
        json.dump(cfg, f, indent=2)


def start_router():
    p.start("router")
    p.wait_for(lambda: os.path.exists(sock_path) and try_connect(), "router socket")
    with open(p.config) as f:
        router_user = json.load(f).get("users", {}).get("router")
    for role, path in SOCKS.items():
        st = os.stat(path)
        # No users.tool here: the tool socket belongs to the router's user, like its other files.
        owner = (pwd.getpwnam(users[role == F.ROLE_SENDER]).pw_uid if users and role != ROLE_TOOL
                 else pwd.getpwnam(router_user).pw_uid if router_user else os.geteuid())
        t.check(st.st_mode & 0o777 == 0o600 and st.st_uid == owner,
                f"{os.path.basename(path)} has mode 0600 and belongs to uid {owner} "
                f"(mode {st.st_mode & 0o777:o}, uid {st.st_uid})")
    if users:
        try:
            connect_as(users[0], F.ROLE_SENDER, F.IOS, "ingress-at-sender-socket").close()
            t.check(False, "the ingress user connected to router-sender.sock")
        except PermissionError:
            t.check(True, "the ingress user cannot connect to router-sender.sock (EACCES)")
        # The uid checks below need other users to reach every socket; the test opens the way.
        for path in SOCKS.values():
            os.chmod(path, 0o666)


def try_connect():
    try:
        F.connect(sock_path, F.ROLE_INGRESS).close()
        return True
    except OSError:
        return False


def connect_as(user, role, platform=0, instance="", path=None):
    """Connects to the socket of role's class (or path) with the effective uid of user
    (SO_PEERCRED records it at connect())."""
    path = path or SOCKS[role]
    if user is None:
        return F.connect(path, role, platform, instance)
    pw = pwd.getpwnam(user)
    os.setegid(pw.pw_gid)
    os.seteuid(pw.pw_uid)
    try:
        return F.connect(path, role, platform, instance)
    finally:
        os.seteuid(0)
        os.setegid(0)


def closed(s, wait=5.0):
    """Whether the router closes s within wait seconds (frames it sends first are read past)."""
    s.settimeout(wait)
    try:
        while s.recv(1 << 17):
            pass
        return True
    except socket.timeout:
        return False
    except OSError:
        return True


class Ingress:
    def __init__(self, user=None, instance="trust"):
        self.s = connect_as(user, F.ROLE_INGRESS, instance=instance)
        self.s.settimeout(10)
        self.next = 1

    def request(self, ftype, fields):
        fid = self.next
        self.next += 1
        self.s.send(F.encode(ftype, fid, fields))
        while True:
            buf = self.s.recv(1 << 20)
            if not buf:
                return None
            for rtype, rid, rf in F.decode_all(buf):
                if rid == fid:
                    return F.field(rf, F.TAG_STATUS, None) if rtype == F.REPLY else rf

    def counts(self):
        rf = self.request(F.COUNTS_QUERY, [])
        return F.field(rf, F.TAG_COUNT_IOS), F.field(rf, F.TAG_COUNT_ANDROID)


def take(s, wait=1.0):
    """Push frames that arrive until the socket has been quiet for wait seconds: [(id, token)]."""
    got, end = [], time.time() + wait
    s.settimeout(0.2)
    while time.time() < end:
        try:
            buf = s.recv(1 << 20)
        except socket.timeout:
            continue
        if not buf:
            break
        for ftype, fid, fl in F.decode_all(buf):
            if ftype == F.PUSH:
                got.append((fid, F.field(fl, F.TAG_TOKEN)))
                end = time.time() + wait
    return got


def make_users():
    if os.geteuid() != 0:
        return
    tag = str(os.getpid() % 100000)
    for name in ("pptr_i" + tag, "pptr_s" + tag, "pptr_r" + tag):
        r = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("cannot create user " + name + ": " + r.stderr.strip())
            return
        users.append(name)


try:
    make_users()
    t.check(len(users) == 3, "three role users created (the test runs as root)")
    if users:
        os.chmod(p.dir, 0o755)
        os.chmod(os.path.join(p.dir, "run"), 0o755)
    configure(hello_timeout_ms=600, max_unauthenticated=8)
    start_router()
    ING, SND = (users[0], users[1]) if len(users) == 3 else (None, None)

    # --- item 5: the role must match the socket's class ---
    s = connect_as(ING, F.ROLE_SENDER, F.IOS, "sender-on-ingress-socket", path=SOCKS[F.ROLE_INGRESS])
    t.check(closed(s), "a sender hello on router.sock is dropped")
    t.check("claimed the sender role on the ingress socket" in p.log("router"), "...and logged")
    s = connect_as(SND, F.ROLE_INGRESS, 0, "ingress-on-sender-socket", path=SOCKS[F.ROLE_SENDER])
    t.check(closed(s), "an ingress hello on router-sender.sock is dropped")
    t.check("claimed the ingress role on the sender socket" in p.log("router"), "...and logged")
    s = connect_as(SND, ROLE_TOOL, 0, "tool-on-sender-socket", path=SOCKS[F.ROLE_SENDER])
    t.check(closed(s), "a tool hello on router-sender.sock is dropped")
    s = connect_as(None, F.ROLE_SENDER, F.IOS, "sender-on-tool-socket", path=SOCKS[ROLE_TOOL])
    t.check(closed(s), "a sender hello on router-tool.sock is dropped, even from root")

    # --- item 5: the role must match the peer's uid ---
    if len(users) == 3:
        s = connect_as(ING, F.ROLE_SENDER, F.IOS, "posing-sender")
        t.check(closed(s), "the ingress user claiming the sender role is dropped")
        log = p.log("router")
        t.check(f"uid {pwd.getpwnam(ING).pw_uid}" in log and "claimed the sender role" in log,
                "...and the router logs who claimed what")
        s = connect_as(SND, F.ROLE_INGRESS, 0, "posing-ingress")
        t.check(closed(s), "the sender user claiming the ingress role is dropped")
        s = connect_as(SND, ROLE_TOOL, 0, "posing-tool")
        t.check(closed(s), "the sender user claiming the tool role is dropped")
        ing_as_user = Ingress(ING, "real-ingress")
        t.check(ing_as_user.request(F.COUNTS_QUERY, []) is not None, "the ingress user is served as an ingress")
        ing_as_user.s.close()

    ing = Ingress(ING)
    t.check(ing.request(F.REGISTER, [(F.TAG_ID, ID), (F.TAG_TOKEN, IOS_TOKEN), (F.TAG_DEVICE, F.IOS)]) == F.OK,
            "register an iOS token")
    t.check(ing.request(F.REGISTER, [(F.TAG_ID, ID), (F.TAG_TOKEN, FCM_TOKEN), (F.TAG_DEVICE, F.ANDROID)]) == F.OK,
            "register an Android token")

    # --- item 6: forged results ---
    # No iOS sender yet: the notify's iOS job waits in the outbox; job ids are small and
    # sequential, so the forger tries them all, as TOKEN_DEAD.
    forger = connect_as(SND, F.ROLE_SENDER, F.ANDROID, "forger")
    t.check(ing.request(F.NOTIFY, [(F.TAG_ID, ID), (F.TAG_DATA, "m1")]) == F.OK, "notify")
    own = take(forger, 1.0)
    t.check(len(own) == 1 and own[0][1] == FCM_TOKEN.encode(), f"the Android sender gets only the Android job {own}")
    for jid in range(1, 50):
        if not own or jid != own[0][0]:
            forger.send(F.encode(F.RESULT, jid, [(F.TAG_OUTCOME, F.TOKEN_DEAD)]))
    time.sleep(0.5)
    t.check(ing.counts() == (1, 1), f"forged TOKEN_DEAD for an iOS job nobody holds: the token stays {ing.counts()}")
    ios = connect_as(SND, F.ROLE_SENDER, F.IOS, "ios-real")
    held = take(ios, 1.0)
    t.check(len(held) == 1 and held[0][1] == IOS_TOKEN.encode(), "the real iOS sender gets the iOS job")
    if held:
        forger.send(F.encode(F.RESULT, held[0][0], [(F.TAG_OUTCOME, F.TOKEN_DEAD)]))
        time.sleep(0.5)
        t.check(ing.counts() == (1, 1), "forged TOKEN_DEAD for an iOS job the iOS sender holds: the token stays")
        t.check(not closed(forger, 0.2), "the forger is not served anything else either (still connected, ignored)")
        ios.send(F.encode(F.RESULT, held[0][0], [(F.TAG_OUTCOME, F.DELIVERED)]))
    if own:
        forger.send(F.encode(F.RESULT, own[0][0], [(F.TAG_OUTCOME, F.DELIVERED)]))
    time.sleep(0.3)
    ios.close()
    ios = connect_as(SND, F.ROLE_SENDER, F.IOS, "ios-b")
    t.check(take(ios, 1.0) == [], "the holder's own result ended the job (a new iOS sender gets nothing)")
    t.check("result for job" in p.log("router") and "does not hold, ignored" in p.log("router"),
            "ignored results are logged")

    # --- item 7: connections that never say hello ---
    idle = [socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(300)]
    for s in idle:
        s.connect(sock_path)
    ing2 = Ingress(ING, "after-flood")
    t.check(ing2.request(F.COUNTS_QUERY, []) is not None, "300 silent connections: a new ingress is still served")
    snd2 = connect_as(SND, F.ROLE_SENDER, F.ANDROID, "after-flood")
    t.check(ing2.request(F.NOTIFY, [(F.TAG_ID, ID), (F.TAG_DATA, "m2")]) == F.OK, "notify after the flood")
    got = [(snd2, j) for j in take(snd2, 1.0)] + [(forger, j) for j in take(forger, 0.2)]
    t.check(any(tok == FCM_TOKEN.encode() for _, (_, tok) in got), "...and the Android senders get the job")
    for s, (jid, _) in got:
        s.send(F.encode(F.RESULT, jid, [(F.TAG_OUTCOME, F.DELIVERED)]))
    start = time.time()
    gone = sum(closed(s, max(0.05, 3.0 - (time.time() - start))) for s in idle)
    t.check(gone == len(idle), f"all silent connections are closed within 3 s (hello deadline 600 ms): {gone}")
    for s in idle:
        s.close()
    t.check("connections closed without a hello" in p.log("router"), "...and summed up in one log line")
    late = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    late.connect(sock_path)
    time.sleep(1.2)
    try:
        late.send(F.encode(F.HELLO, 0, [(F.TAG_ROLE, F.ROLE_INGRESS), (F.TAG_PID, 0)]))
        was_closed = closed(late, 2.0)
    except OSError:  # closed already
        was_closed = True
    t.check(was_closed, "a hello after the deadline comes too late")

    # --- item 8: channel URIs ---
    for bad in ("https://evil.example.com/?token=x", "https://db5p.notify.windows.com.evil.org/?token=x",
                "https://db5p.notify.windows.com/other?token=x"):
        t.check(ing.request(UWPX_CHANNEL, [(TAG_DEVICE_ID, DEV), (TAG_URI, bad)]) == F.ERROR,
                f"the router refuses the channel URI {bad}")
    t.check(ing.request(UWPX_TEST, [(TAG_DEVICE_ID, DEV)]) == F.NOT_FOUND, "...and stores no channel for the device")
    t.check(ing.request(UWPX_CHANNEL, [(TAG_DEVICE_ID, DEV), (TAG_URI, URI_OK)]) == F.OK, "an allowed URI is taken")
    ing.s.send(F.encode(UWPX_TEST, 900, [(TAG_DEVICE_ID, DEV)]))  # no WNS sender: the job waits
    time.sleep(0.3)
    for s in (ing, ing2, ios, snd2, forger):
        s = s.s if isinstance(s, Ingress) else s
        s.close()
    p.kill("router")
    with open(p.config) as f:
        cfg = json.load(f)
    cfg.setdefault("ingress_uwpx", {})["channel_suffixes"] = [".example.net"]
    with open(p.config, "w") as f:
        json.dump(cfg, f, indent=2)
    start_router()
    wns = connect_as(SND, F.ROLE_SENDER, F.WNS, "wns")
    got = take(wns, 1.5)
    t.check(got == [], f"a queued WNS job whose URI the allowlist no longer takes is not handed out {got}")
    t.check("channel URI outside the allowlist, dropped" in p.log("router"), "...it is dropped and logged")
    wns.close()

    # --- the router drops to its own role's user (users.router) ---
    if len(users) == 3:
        p.kill("router")
        with open(p.config) as f:
            cfg = json.load(f)
        cfg["users"]["router"] = users[2]
        with open(p.config, "w") as f:
            json.dump(cfg, f, indent=2)
        start_router()
        with open(f"/proc/{p.procs['router'].pid}/status") as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        t.check(all(int(u) == pwd.getpwnam(users[2]).pw_uid for u in uids), f"the router runs as users.router {uids}")
        ing = Ingress(ING, "after-drop")
        t.check(ing.request(F.COUNTS_QUERY, []) is not None, "...and still serves the ingress user")
        ing.s.close()
except Exception as e:  # a crash is a failure, with the logs
    t.check(False, f"exception: {e!r}")
    print(p.logs())
finally:
    p.stop()
    for u in users:
        subprocess.run(["userdel", u], capture_output=True)
sys.exit(t.done())
