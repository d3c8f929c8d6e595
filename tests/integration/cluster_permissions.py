#!/usr/bin/python3
"""Trust on the bus (issue 18, item 7; docs/cluster.md): three nats-server nodes started with the
configuration make run-cluster generates (scripts/mknats.py from deploy/nats/permissions.json),
on free ports. Each role's user, with the password from its credential file, is checked against
the server: an ingress may publish requests but not jobs, results or registry changes; a sender
may take its own (platform, app)'s jobs and publish its results, nothing else; a wrong password
is refused. A raw NATS protocol client (nats_raw.py) talks to the server."""
import json
import os
import shutil
import stat
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import nats_raw  # noqa: E402

top = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + what)
    else:
        failed += 1
        print("FAIL " + what)


def refused(errs):
    return any("Permissions Violation" in e for e in errs)


d = tempfile.mkdtemp(prefix="pp-natsperm-")
cl = None
try:
    cl = nats_raw.Cluster(top, d)
    ready = cl.wait_ready()
    check(ready, "three nats-server nodes formed a JetStream cluster with a meta leader")
    users = open(os.path.join(d, "users.txt")).read().split()
    check(set(users) >= {"ingress", "router", "statsd", "admin", "sender-apns-default",
                         "sender-fcm-default", "sender-wns-default"},
          "one NATS user per role and per sender (platform, app): %s" % " ".join(users))
    modes = {u: stat.S_IMODE(os.stat(os.path.join(d, u + ".cred")).st_mode) for u in users}
    check(all(m == 0o600 for m in modes.values()), "credential files are mode 0600")
    check(stat.S_IMODE(os.stat(os.path.join(d, "authorization.conf")).st_mode) == 0o600,
          "the users' block of the server configuration (it holds the passwords) is mode 0600")
    check(all("password" not in open(os.path.join(d, "nats-%d.conf" % i)).read() for i in (1, 2, 3)),
          "the nodes' own files hold no password (they include the users' block)")
    pws = [nats_raw.read_cred(os.path.join(d, u + ".cred"))[1] for u in users]
    check(len(set(pws)) == len(pws) and min(len(p) for p in pws) >= 24, "every user has its own random password")

    # Wrong password, unknown user, no credentials: refused.
    u, pw = cl.cred("ingress")
    for desc, args in (("a wrong password", (u, pw[:-1] + ("x" if pw[-1] != "x" else "y"))),
                       ("an unknown user", ("nobody", pw)),
                       ("no credentials", (None, None))):
        try:
            c = nats_raw.Conn(cl.client[0], *args)
            c.close()
            check(False, "%s is refused (it connected)" % desc)
        except nats_raw.NatsError as e:
            check("Authorization Violation" in str(e) or "closed" in str(e),
                  "%s is refused: %s" % (desc, str(e)[:60]))

    # The streams as the routers make them (admin plays the router here): jobs work queue R3,
    # one consumer per (platform, app).
    admin = cl.conn("admin")
    a = nats_raw.js_api(admin, "STREAM.CREATE.PP_JOBS", {
        "name": "PP_JOBS", "subjects": ["pp.job.>"], "retention": "workqueue", "storage": "file",
        "num_replicas": 3, "max_age": 600 * 10**9, "duplicate_window": 120 * 10**9})
    check(a.get("config", {}).get("num_replicas") == 3, "admin made the R3 work-queue stream PP_JOBS: %s" % (a.get("error") or "ok"))
    for plat in ("apns", "fcm", "wns"):
        a = nats_raw.js_api(admin, "CONSUMER.DURABLE.CREATE.PP_JOBS.jobs-%s-default" % plat, {
            "stream_name": "PP_JOBS", "config": {
                "durable_name": "jobs-%s-default" % plat, "ack_policy": "explicit",
                "filter_subject": "pp.job.%s.default" % plat, "ack_wait": 30 * 10**9,
                "max_ack_pending": 1000}})
        check(a.get("name") == "jobs-%s-default" % plat, "consumer jobs-%s-default made: %s" % (plat, a.get("error") or "ok"))

    # The ingress: requests yes; jobs, registry changes, results, API no.
    watch_sid, _ = admin.sub("pp.>")
    ing = cl.conn("ingress", node=2)
    errs = ing.pub("pp.req.notify", b"req-1", reply="_INBOX_ingress.ing.1")
    check(not errs, "the ingress may publish a request (pp.req.notify): %s" % (nats_raw.parse_err(errs) or "no error"))
    got = admin.wait_msgs(watch_sid, 1)
    check(any(m[0] == "pp.req.notify" and m[4] == b"req-1" for m in got), "… and the request reached a subscriber")
    for subj in ("pp.job.apns.default", "pp.reg.x", "pp.res.apns.default", "pp.stats.x",
                 "$JS.API.STREAM.DELETE.PP_JOBS", "$JS.API.CONSUMER.MSG.NEXT.PP_JOBS.jobs-apns-default"):
        errs = ing.pub(subj, b"forged", reply="_INBOX_ingress.ing.2")
        check(refused(errs), "the ingress publishing %s is refused by the server: %s" % (subj, nats_raw.parse_err(errs)[:90]))
    _, errs = ing.sub("pp.job.>")
    check(refused(errs), "the ingress subscribing to jobs (pp.job.>) is refused: %s" % nats_raw.parse_err(errs)[:90])
    before = len([m for m in admin.msgs if m[1] == watch_sid])
    admin.wait_msgs(watch_sid, before + 1, timeout=0.5)
    forged = [m for m in admin.msgs if m[1] == watch_sid and m[4] == b"forged"]
    check(not forged, "none of the refused publishes was delivered (%d seen)" % len(forged))
    info = nats_raw.js_api(admin, "STREAM.INFO.PP_JOBS", None)
    check(info.get("state", {}).get("messages") == 0, "PP_JOBS holds no forged job (%s messages)" % info.get("state", {}).get("messages"))

    # A sender: its own jobs yes (fetch, ack, result); another app's or platform's no.
    errs = admin.pub("pp.job.apns.default", b"job-apns-1", headers={"Nats-Msg-Id": "job-apns-1"}, reply="_INBOX.adm.1")
    errs += admin.pub("pp.job.fcm.default", b"job-fcm-1", headers={"Nats-Msg-Id": "job-fcm-1"}, reply="_INBOX.adm.2")
    check(not errs, "the router role (admin here) queued one APNs and one FCM job")
    snd = cl.conn("sender-apns-default", node=3)
    inbox = "_INBOX_sender-apns-default.snd"
    sid, errs = snd.sub(inbox)
    check(not errs, "the APNs sender may subscribe to its own inbox (_INBOX_sender-apns-default.>): %s"
          % (nats_raw.parse_err(errs) or "no error"))
    errs = snd.pub("$JS.API.CONSUMER.MSG.NEXT.PP_JOBS.jobs-apns-default", json.dumps({"batch": 1, "expires": 2 * 10**9}).encode(), reply=inbox)
    check(not errs, "the APNs sender may fetch from jobs-apns-default: %s" % (nats_raw.parse_err(errs) or "no error"))
    got = [m for m in snd.wait_msgs(sid, 1, timeout=5) if m[4] == b"job-apns-1"]
    check(len(got) == 1 and got[0][2] and got[0][2].startswith("$JS.ACK.PP_JOBS.jobs-apns-default."),
          "… and receives its job, with an ack subject of its consumer")
    if got:
        errs = snd.pub(got[0][2], b"+ACK")
        check(not errs, "the APNs sender may acknowledge its job: %s" % (nats_raw.parse_err(errs) or "no error"))
    errs = snd.pub("pp.res.apns.default", b"result")
    check(not errs, "the APNs sender may publish its results (pp.res.apns.default)")
    for subj in ("$JS.API.CONSUMER.MSG.NEXT.PP_JOBS.jobs-fcm-default",
                 "$JS.API.CONSUMER.MSG.NEXT.PP_JOBS.jobs-apns-other",
                 "$JS.API.CONSUMER.DURABLE.CREATE.PP_JOBS.mine",
                 "$JS.API.STREAM.PURGE.PP_JOBS",
                 "pp.job.apns.default", "pp.reg.x", "pp.req.notify", "pp.res.fcm.default"):
        errs = snd.pub(subj, b"{}", reply=inbox)
        check(refused(errs), "the APNs sender publishing %s is refused: %s" % (subj, nats_raw.parse_err(errs)[:90]))
    _, errs = snd.sub("pp.job.fcm.default")
    check(refused(errs), "the APNs sender subscribing to FCM jobs is refused")
    info = nats_raw.js_api(admin, "CONSUMER.INFO.PP_JOBS.jobs-fcm-default", None)
    check(info.get("num_pending") == 1 and info.get("delivered", {}).get("stream_seq") == 0,
          "the FCM job is still waiting, never delivered (pending %s)" % info.get("num_pending"))
    info = nats_raw.js_api(admin, "STREAM.INFO.PP_JOBS", None)
    check(info.get("state", {}).get("messages") == 1, "the acknowledged APNs job left the work queue (%s left)" % info.get("state", {}).get("messages"))
    # Replies are private (docs/cluster.md, "Credentials"): the APNs sender may not listen on the
    # shared inbox space nor on the FCM sender's, the router's or the ingress's inboxes.
    spy_subs = []
    for subj in ("_INBOX.>", "_INBOX.*", ">", "_INBOX_sender-fcm-default.>", "_INBOX_sender-fcm-default.snd",
                 "_INBOX_router.>", "_INBOX_ingress.>", "_INBOX_*.>"):
        ssid, errs = snd.sub(subj)
        spy_subs.append(ssid)
        check(refused(errs), "the APNs sender subscribing to %s is refused: %s" % (subj, nats_raw.parse_err(errs)[:90]))
    _, errs = ing.sub("_INBOX.>")
    check(refused(errs), "the ingress subscribing to _INBOX.> is refused: %s" % nats_raw.parse_err(errs)[:90])
    fcm = cl.conn("sender-fcm-default")
    finbox = "_INBOX_sender-fcm-default.snd"
    fsid, errs = fcm.sub(finbox)
    check(not errs, "the FCM sender may subscribe to its own inbox")
    errs = fcm.pub("$JS.API.CONSUMER.MSG.NEXT.PP_JOBS.jobs-fcm-default", json.dumps({"batch": 1, "expires": 2 * 10**9}).encode(), reply=finbox)
    got = [m for m in fcm.wait_msgs(fsid, 1, timeout=5) if m[4] == b"job-fcm-1"]
    check(not errs and len(got) == 1, "the FCM sender takes the FCM job")
    # … and the APNs sender, for all its tries above, saw none of it.
    snd.wait_msgs("none", 1, timeout=0.5)
    leaked = [m for m in snd.msgs if m[1] in spy_subs or m[4] == b"job-fcm-1"]
    check(not leaked, "the FCM sender's fetched job reached no other user (%d leaked)" % len(leaked))
    for c in (admin, ing, snd, fcm):
        c.close()
except Exception as e:  # a crash is a failure, with its reason
    check(False, "the test ran to its end: %s: %s" % (type(e).__name__, e))
finally:
    if cl:
        cl.stop()
    if failed:
        for i in (1, 2, 3):
            p = os.path.join(d, "nats-%d.log" % i)
            if os.path.exists(p):
                print("--- nats-%d.log (last lines)" % i)
                print("".join(open(p, errors="replace").readlines()[-8:]), end="")
    shutil.rmtree(d, ignore_errors=True)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
