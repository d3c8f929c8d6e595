"""XEP-0050 registrations naming an app, end to end (docs/config.md, section apps): the real
router, ingress-xmpp as the component of a fake XMPP server, one apns-sender per APNs app and
the mock provider. A form whose `application` is in ingress_xmpp.applications is accepted and its
registration belongs to that app: a publish to its node is delivered by that app's sender with
that app's key at its URL (the mock records the key id as auth_id); a form without the field
belongs to the default app; a form naming an app not in the list is refused (bad-request) and
registers nothing."""
import json, os, subprocess, sys, time
from lib.harness import Checks, Pipeline
from lib.xmpp_fakes import FakeXmppServer, error_of, form_values
from xmpp import prosody_publish

CMDS = "http://jabber.org/protocol/commands"
SBX_KID = "SBXKEY4567"
T_SBX, T_PROD, T_BAD = "5b" * 32, "9d" * 32, "ba" * 32

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
srv = FakeXmppServer()


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def apns_for(token):
    return [r for r in p.requests() if r["provider"] == "apns" and r["status"] == 200 and r["path"].endswith("/3/device/" + token)]


def register(conn, iq, jid, token, app=None):
    field = f"<field var='application'><value>{app}</value></field>" if app is not None else ""
    conn.send(f"<iq type='set' id='{iq}' from='{jid}' to='push.localhost'>"
              f"<command xmlns='{CMDS}' node='register-push-apns' action='execute'>"
              "<x xmlns='jabber:x:data' type='submit'>"
              f"<field var='token'><value>{token}</value></field>"
              f"<field var='device-id'><value>dev{iq}</value></field>{field}</x></command></iq>")
    r = conn.recv(timeout=10)
    return r, (form_values(r) if r is not None else {})


conn = None
try:
    m = os.path.join(p.dir, "mock")
    sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{m}/apns2.p8")
    sh("openssl", "pkey", "-in", f"{m}/apns2.p8", "-pubout", "-out", f"{m}/apns2_pub.pem")
    p.mock_args = ["--apns-extra-key", f"{SBX_KID}={m}/apns2_pub.pem"]
    conf = json.load(open(p.config))
    conf["apps"] = [
        {"name": "prod", "platform": "apns", "topic": "org.example.prod"},
        {"name": "sbx", "platform": "apns", "topic": "org.example.sbx", "url": conf["apns_sender"]["url"] + "/sandbox",
         "key_file": f"{m}/apns2.p8", "key_id": SBX_KID},
    ]
    conf["ingress_xmpp"]["server"] = f"127.0.0.1:{srv.port}"
    conf["ingress_xmpp"]["applications"] = ["sbx"]
    with open(p.config, "w") as f:
        json.dump(conf, f, indent=1)
    secret = open(conf["ingress_xmpp"]["secret_file"]).read().strip()

    p.start_mock()
    for d in ("statsd", "router", "ingress-xmpp"):
        p.start(d)
    for app in ("prod", "sbx"):
        p.start(f"apns-sender#{app}", "-a", app, "-i", "1")
    conn = srv.accept()
    t.check(conn is not None, "ingress-xmpp connects to the XMPP server")
    ok, why = conn.handshake(secret, "push.localhost")
    t.check(ok, "component handshake: " + why)
    p.wait_for(lambda: "component authenticated" in p.log("ingress-xmpp"), "component authenticated")
    p.wait_for(lambda: p.log("router").count("connected (pid") >= 3, "ingress-xmpp and both senders connected")

    r, sbx = register(conn, "r1", "alice@localhost/phone", T_SBX, app="sbx")
    t.check(r is not None and r.get("type") == "result" and sbx.get("node") and sbx.get("secret"),
            f"a form naming an allowlisted app (sbx) is accepted: {sbx}")
    r, prod = register(conn, "r2", "bob@localhost/phone", T_PROD)
    t.check(r is not None and r.get("type") == "result" and prod.get("node"), "a form without application is accepted")
    r, _ = register(conn, "r3", "carol@localhost/phone", T_BAD, app="nope")
    t.check(r is not None and r.get("type") == "error" and error_of(r) == ("modify", "bad-request"),
            f"a form naming an app not in the list is refused: {error_of(r) if r is not None else None}")

    conn.send(prosody_publish(node=sbx.get("node"), secret=sbx.get("secret"), iq_id="p1"))
    conn.send(prosody_publish(node=prod.get("node"), secret=prod.get("secret"), iq_id="p2"))
    try:
        p.wait_for(lambda: apns_for(T_SBX) and apns_for(T_PROD), "both XMPP pushes at the mock", timeout=20)
    except RuntimeError as e:
        print(e)
    rs, rp = (apns_for(T_SBX) or [{}])[0], (apns_for(T_PROD) or [{}])[0]
    t.check(rs.get("path", "").startswith("/sandbox/3/device/") and rs.get("auth_id") == SBX_KID,
            f"the sbx registration is delivered by the sbx app's sender with its key ({rs.get('path', '')[:18]} {rs.get('auth_id')})")
    t.check(rp.get("path", "").startswith("/3/device/") and rp.get("auth_id") == "MOCKKEY123",
            f"the registration without application belongs to the default app ({rp.get('auth_id')})")
    t.check("of app sbx" in p.log("apns-sender-sbx"), "the sbx sender serves its app")
    time.sleep(0.5)
    t.check(not apns_for(T_BAD), "the refused registration reached nobody")
finally:
    if conn:
        conn.close()
    p.stop()
    srv.close()
t.done()
