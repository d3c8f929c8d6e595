"""Cluster mode end to end (docs/cluster.md): three nats-server nodes, two routers (each its
own LMDB), two ingress-onion, one apns-sender and one fcm-sender, and the mock provider.
A registration through one ingress is used by a notify through the other (read-your-writes
across routers); notifies keep arriving while a router, then the PP_REQ stream leader, are
killed with SIGKILL; every notify answered Success reaches the mock; both routers' registries
export identically afterwards; a dead token reported by APNs leaves both registries."""
import base64, http.client, json, os, signal, ssl, subprocess, sys, time, urllib.request
from lib.harness import Checks, BIN
from lib.cluster_env import Cluster

ID = "bd" + "3" * 64
ID2 = "bd" + "4" * 64
IOS = "b2" * 32
ANDROID = "fcmClusterTok:APA91b-z"


def mock(c, path, body):
    ctx = ssl.create_default_context(cafile=os.path.join(c.dir, "mock", "ca.pem"))
    req = urllib.request.Request(f"https://127.0.0.1:{c.mock_port}{path}", method="POST", data=json.dumps(body).encode())
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def counts(conf):
    out = subprocess.run([os.path.join(BIN, "pushctl"), "-c", conf, "counts"], capture_output=True, text=True).stdout
    return dict(line.split() for line in out.splitlines() if len(line.split()) == 2)


def export(c, conf):
    r = subprocess.run([os.path.join(BIN, "pushctl"), "-c", conf, "export"], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout


t = Checks()
c = Cluster(keep="-k" in sys.argv)
try:
    c.start_mock()
    for i in range(3):
        c.start_nats(i)
    # Two statsd: statsd-1 takes this host's counters; statsd-2 (its own sockets and store, as on
    # another host) gets only what statsd-1 shares on the bus.
    stats2 = __import__("lib.harness", fromlist=["free_port"]).free_port()
    s1 = c.conf("statsd-1", "statsd")
    s2 = c.conf("statsd-2", "statsd", statsd={"db_path": os.path.join(c.dir, "db", "stats2"),
                                               "listen": f"127.0.0.1:{stats2}"})
    def second_host(conf):  # its own state_dir: sockets of "another host" (statsd-2)
        with open(conf) as f:
            j = json.load(f)
        j["state_dir"] = os.path.join(c.dir, "run2")
        os.makedirs(j["state_dir"], exist_ok=True)
        with open(conf, "w") as f:
            json.dump(j, f)
    second_host(s2)
    c.start_c("statsd-1", "statsd", s1, "-i", "1")
    c.start_c("statsd-2", "statsd", s2, "-i", "2")
    # A short APNs deadline makes the jobs consumer's AckWait short (3 x 1 s + 5 s), so the jobs
    # of a killed sender come again within the test.
    quick = {"deadline_ms": 1000}
    r1 = c.conf("router-1", "router", router={"db_path": os.path.join(c.dir, "db", "r1")}, apns_sender=quick)
    r2 = c.conf("router-2", "router", router={"db_path": os.path.join(c.dir, "db", "r2")}, apns_sender=quick)
    http2 = __import__("lib.harness", fromlist=["free_port"]).free_port()
    i1 = c.conf("ingress-onion-1", "ingress")
    i2 = c.conf("ingress-onion-2", "ingress", ingress_onion={"listen": f"127.0.0.1:{http2}"})
    second_host(i2)  # ingress-onion-2 counts to, and asks, statsd-2
    ap = c.conf("apns-sender", "sender-apns-default", apns_sender=quick)
    fc = c.conf("fcm-sender", "sender-fcm-default")
    c.start_c("router-1", "router", r1)
    c.start_c("router-2", "router", r2)
    c.start_c("ingress-onion-1", "ingress-onion", i1)
    c.start_c("ingress-onion-2", "ingress-onion", i2)
    c.start_c("apns-sender", "apns-sender", ap)
    c.start_c("fcm-sender", "fcm-sender", fc)
    c.wait_for(lambda: "takes jobs from" in c.log("apns-sender") and "takes jobs from" in c.log("fcm-sender"),
               "senders bound to their jobs consumers", timeout=30)
    c.wait_for(lambda: all("registry copy at change" in c.log(r) for r in ("router-1", "router-2")),
               "both routers on the bus", timeout=30)
    c.wait_for(c.ingress_up, "ingress listening")
    http1 = c.http

    def send(http, *args):
        c.http = http
        return c.pushctl(*args)

    def ok(out):
        return '"message": "Success"' in out

    rc, out = send(http1, "register", f"token={IOS}", f"pubKey={ID}")
    t.check(rc == 0 and ok(out), "register through ingress-onion-1 answers Success: " + out)
    rc, out = send(http2, "notify", f"send_to={ID}", "data=Zmlyc3Q=")
    t.check(rc == 0 and ok(out), "notify through ingress-onion-2 answers Success: " + out)
    try:
        c.wait_for(lambda: any(r["provider"] == "apns" and "Zmlyc3Q=" in r["body"] for r in c.requests()),
                   "the first notify at the mock")
    except RuntimeError as e:
        print(e)
    t.check(any(r["provider"] == "apns" and r["path"] == "/3/device/" + IOS for r in c.requests()),
            "a registration made through one ingress is used by a notify through the other")
    rc, out = send(http2, "register", f"token={ANDROID}", f"pubKey={ID2}", "device=android")
    t.check(rc == 0 and ok(out), "register (Android) through ingress-onion-2 answers Success: " + out)

    # Notifies under kills: each one answered Success must reach the mock.
    accepted = []
    events = {10: ("router-1", None), 18: ("apns-sender", None), 25: ("nats", None), 32: ("ingress-onion-1", None)}
    for n in range(40):
        if n in events:
            what = events[n][0]
            if what == "nats":
                leader = c.stream_leader("PP_REQ")
                t.check(leader is not None, f"the PP_REQ stream leader is known ({leader})")
                if leader:
                    c.kill_nats(leader)
            else:
                c.kill(what, signal.SIGKILL)
        if n == 21:
            c.start_c("apns-sender", "apns-sender", ap)  # back; its predecessor's jobs come again
        data = "bm90aWZ5LQ%03d" % n
        to = ID if n % 2 == 0 else ID2
        via = http1 if n % 2 == 0 and n < 32 else http2  # ingress-onion-1 is gone from 32 on
        rc, out = send(via, "notify", f"send_to={to}", f"data={data}")
        if rc == 0 and ok(out):
            accepted.append(data)
        else:
            print(f"notify {n}: {out}")
        time.sleep(0.05)
    t.check(len(accepted) >= 30, f"most notifies answered Success through the kills ({len(accepted)} of 40)")

    def delivered():
        bodies = [r["body"] for r in c.requests()]
        return [d for d in accepted if not any(d in b for b in bodies)]
    try:
        c.wait_for(lambda: not delivered(), "every accepted notify at the mock", timeout=60)
    except RuntimeError as e:
        print(e)
    missing = delivered()
    t.check(not missing, f"every notify answered Success reached the mock (missing {len(missing)}: {missing[:5]})")
    seen = {}
    for r in c.requests():
        for d in accepted:
            if d in r["body"]:
                seen[d] = seen.get(d, 0) + 1
    dups = sum(v - 1 for v in seen.values())
    t.check(dups <= max(1, len(accepted) // 100), f"duplicates at most 1 % ({dups})")

    c.start_c("ingress-onion-1", "ingress-onion", i1)
    c.wait_for(lambda: c.log("ingress-onion-1").count("listening on") == 2, "ingress-onion-1 back")

    # Results: an APNs 410 with a timestamp after the registration removes the token from
    # every router's copy; an FCM 503 with Retry-After is retried (nak with delay) and delivered.
    DEAD = "d3" * 32
    rc, out = send(http1, "register", f"token={DEAD}", f"pubKey={ID}")
    t.check(rc == 0 and ok(out), "register a token APNs will call dead: " + out)
    mock(c, "/_mock/faults", {"rules": [
        {"provider": "apns", "token": DEAD, "count": 1, "status": 410, "reason": "Unregistered",
         "timestamp": int(time.time() * 1000) + 60000},
        {"provider": "fcm", "count": 1, "status": 503, "reason": "UNAVAILABLE", "retry_after": "1"}]})
    rc, out = send(http2, "notify", f"send_to={ID}", "data=ZGVhZA==")
    t.check(rc == 0 and ok(out), "notify to the dead token's id: " + out)
    rc, out = send(http1, "notify", f"send_to={ID2}", "data=cmV0cnk=")
    t.check(rc == 0 and ok(out), "notify that FCM first answers 503: " + out)
    try:
        c.wait_for(lambda: counts(r2).get("ios") == "1", "the dead token gone from router-2's copy", timeout=20)
    except RuntimeError as e:
        print(e)
    t.check(counts(r2).get("ios") == "1", f"the dead token left the registry (router-2 counts {counts(r2)})")
    try:
        c.wait_for(lambda: any(r["provider"] == "fcm" and "cmV0cnk=" in r["body"] and r["status"] == 200
                               for r in c.requests()), "the retried FCM notify", timeout=20)
    except RuntimeError as e:
        print(e)
    fcm = [r["status"] for r in c.requests() if r["provider"] == "fcm" and "cmV0cnk=" in r["body"]]
    t.check(fcm[:1] == [503] and fcm[-1:] == [200], f"FCM 503 with Retry-After was retried and delivered ({fcm})")

    # Batches (docs/cluster.md, "Batching"): a burst through one ingress leaves as fewer request
    # messages than notifies; one job of a batch that FCM answers 503 is retried alone (its
    # batch is not sent again), and every notify of the burst is delivered exactly once.
    def req_last():
        for i in range(len(c.client)):  # a server still up (one was killed above)
            try:
                info = c.jsz(i)
            except OSError:
                continue
            for a in info.get("account_details", []):
                for st in a.get("stream_detail", []):
                    if st["name"] == "PP_REQ":
                        return st["state"]["last_seq"]
        return None

    def burst(prefix, n, unique):
        args = [os.path.join(BIN, "onion_load"), "-p", str(http1), "-k", c.pubkey_file, "-n", str(n), "-c", "16",
                "-t", ID2, "-d", prefix]
        if unique:
            args += ["-o", os.path.join(c.dir, "acks-" + prefix)]
        # A load tool: in a sanitizer build its leak report at exit would drop its unflushed output.
        env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
        r = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
        w = r.stdout.split()
        got = int(dict(zip(w[::2], w[1::2])).get("ok", 0))
        if got != n:
            print(f"onion_load {prefix}: rc {r.returncode}: {r.stdout.strip()[:300]} {r.stderr.strip()[-600:]}")
        return got

    def fcm_count(pat):
        import re
        out = {}
        for r in c.requests():
            if r["provider"] == "fcm" and r["status"] == 200:
                for m in re.findall(pat, r["body"]):
                    out[m] = out.get(m, 0) + 1
        return out

    mock(c, "/_mock/faults", {"rules": [{"provider": "fcm", "count": 1, "status": 503, "reason": "UNAVAILABLE",
                                         "retry_after": "1"}]})
    before = req_last()
    got = burst("btch", 300, True)
    after = req_last()
    t.check(got == 300, f"a burst of 300 notifies through one ingress answered Success ({got})")
    t.check(before is not None and after is not None and after - before < got,
            f"… stored as fewer request messages than notifies ({after - before if after and before else '?'})")
    try:
        c.wait_for(lambda: len(fcm_count(r"btch-(\d+)")) >= 300, "the burst at the mock", timeout=60)
    except RuntimeError as e:
        print(e)
    seen_b = fcm_count(r"btch-(\d+)")
    fails = [r for r in c.requests() if r["provider"] == "fcm" and r["status"] == 503 and "btch-" in r["body"]]
    t.check(len(seen_b) == 300 and len(fails) == 1,
            f"every notify of the burst delivered, one after a 503 ({len(seen_b)} delivered, {len(fails)} 503)")
    t.check(all(v == 1 for v in seen_b.values()),
            f"… each once: the retried job's batch was not sent again ({sum(v - 1 for v in seen_b.values())} twice)")
    # The same notify sent 200 times at once (a client's resends) goes out once, though the
    # copies travel inside batches whose own ids differ.
    got = burst("same", 200, False)
    t.check(got == 200, f"the same notify sent 200 times answered Success each time ({got})")
    time.sleep(3)
    same = fcm_count(r"(ZXhhbXBsZSB3cmFwcGVkIGVudmVsb3BlIGJ5dGVz)").get("ZXhhbXBsZSB3cmFwcGVkIGVudmVsb3BlIGJ5dGVz", 0)
    t.check(same == 1, f"… and reached FCM once ({same})")

    # Statistics: the counts of this host reach the other statsd through the bus; each /metrics
    # shows the cluster's streams and consumers.
    def metric(port, name):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None, ""
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1]), text
        return None, text
    # statsd-2 has no daemon of its own: every count it shows came from statsd-1 over the bus.
    def same():
        a, b = metric(c.stats_port, "pushpipe_jobs_queued_total")[0], metric(stats2, "pushpipe_jobs_queued_total")[0]
        return a is not None and a >= 10 and a == b
    try:
        c.wait_for(same, "statsd-2 showing the jobs queued on this host", timeout=20)
    except RuntimeError as e:
        print(e)
    q1, text1 = metric(c.stats_port, "pushpipe_jobs_queued_total")
    q2, text2 = metric(stats2, "pushpipe_jobs_queued_total")
    t.check(q1 is not None and q1 >= 10 and q1 == q2,
            f"the other statsd shows the jobs queued here: cluster-wide counts ({q1} here, {q2} there)")
    # /get_statistics_data through the other host's ingress: device numbers from the routers'
    # registry, message counts from every host.
    pw = open(os.path.join(c.dir, "keys", "stats.password")).read().strip()

    def statistics():
        conn = http.client.HTTPConnection("127.0.0.1", http2, timeout=10)
        conn.request("POST", "/get_statistics_data", body=b"",
                     headers={"Authorization": "Basic " + base64.b64encode(f":{pw}".encode()).decode()})
        resp = conn.getresponse()
        body = resp.read()
        doc = json.loads(body) if resp.status == 200 else {}
        return resp.status, doc.get("data", {})
    try:  # each statsd stores what it receives once a second
        c.wait_for(lambda: (statistics()[1].get("data") or [{}])[-1].get("total_message_number") ==
                   metric(c.stats_port, "pushpipe_messages_total")[0], "statsd-2's window catching up", timeout=10)
    except RuntimeError as e:
        print(e)
    status, d = statistics()
    row = (d.get("data") or [{}])[-1]
    m1 = metric(c.stats_port, "pushpipe_messages_total")[0]
    resp = type("r", (), {"status": status})
    t.check(d.get("ios_device_number") == 1 and d.get("android_device_number") == 1 and d.get("total_bchat_id_number") == 2,
            f"/get_statistics_data device numbers from the replicated registry ({resp.status}: "
            f"{d.get('ios_device_number')}/{d.get('android_device_number')}/{d.get('total_bchat_id_number')})")
    t.check(m1 is not None and row.get("total_message_number") == m1 and m1 >= len(accepted),
            f"/get_statistics_data on the other host counts every notify of the cluster ({row.get('total_message_number')} = {m1})")
    t.check('pushpipe_cluster_stream_last_seq{stream="PP_REGISTRY"}' in text2 and
            'pushpipe_cluster_consumer_ack_pending{consumer="jobs-apns-default"}' in text2,
            "/metrics shows the cluster's streams and consumers")

    # The killed router comes back and catches up; both copies export the same.
    c.start_nats(int(leader.split("-")[1]) - 1 if leader else 0)
    c.start_c("router-1", "router", r1)
    c.wait_for(lambda: c.log("router-1").count("registry copy at change") == 2, "router-1 back on the bus", timeout=30)
    rc, out = send(http1, "unregister", f"token={ANDROID}")
    t.check(rc == 0 and ok(out), "unregister (Android) after the restarts answers Success: " + out)
    time.sleep(2.0)
    c.kill("router-1")
    c.kill("router-2")
    e1, e2 = export(c, r1), export(c, r2)
    t.check(e1[0] == 0 and e2[0] == 0 and e1[1] == e2[1] and IOS in e1[1] and ANDROID not in e1[1] and DEAD not in e1[1],
            "both routers' registries export identically (iOS token kept, Android token unregistered, dead token gone)")
except Exception as e:
    import traceback
    traceback.print_exc()
    t.check(False, f"unexpected error: {e!r}")
finally:
    if t.failed:
        print(c.logs())
    c.stop()
sys.exit(t.done())
