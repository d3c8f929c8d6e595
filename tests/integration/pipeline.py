"""End to end: onion request → ingress → router (LMDB) → apns/fcm sender → mock provider.
Registers an iOS token (register) and an Android token (register_legacy_groups_only),
sends notify, and checks the APNs and FCM requests against docs/protocol.md §6.6."""
import json, sys
from lib.harness import Checks, Pipeline

ID = "bd" + "1" * 64
GROUP = "bd" + "2" * 64
IOS = "a1" * 32
ANDROID = "fcmTok3n:APA91b-x_y"
DATA = "ZXhhbXBsZSB3cmFwcGVkIGVudmVsb3BlIGJ5dGVz"

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
try:
    p.start_all()
    rc, out = p.pushctl("register", f"token={IOS}", f"pubKey={ID}")
    t.check(rc == 0 and out == '{"status": 200, "body": {"code": 1, "message": "Success"}}', "register (iOS) answers Success: " + out)
    rc, out = p.pushctl("register_legacy_groups_only", f"token={ANDROID}", f"pubKey={ID}", "device=android",
                        f"legacyGroupPublicKeys={GROUP}")
    t.check(rc == 0, "register_legacy_groups_only (Android) answers Success: " + out)
    rc, out = p.pushctl("notify", f"send_to={ID}", f"data={DATA}")
    t.check(rc == 0, "notify answers Success: " + out)

    def both():
        r = p.requests()
        return any(x["provider"] == "apns" for x in r) and any(x["provider"] == "fcm" for x in r)
    try:
        p.wait_for(both, "APNs and FCM requests at the mock")
    except RuntimeError as e:
        print(e)
    reqs = p.requests()
    apns = [r for r in reqs if r["provider"] == "apns"]
    fcm = [r for r in reqs if r["provider"] == "fcm"]
    t.check(len(apns) == 1, f"exactly one APNs request ({len(apns)})")
    t.check(len(fcm) == 1, f"exactly one FCM request ({len(fcm)})")
    if apns:
        a = apns[0]
        h = a["headers"]
        t.check(a["path"] == "/3/device/" + IOS, "APNs path names the device token")
        t.check(a.get("status") == 200, "APNs mock accepted the request")
        t.check(a.get("auth_ok") is True, "APNs JWT verified by the mock")
        t.check(h.get("apns-topic") == "com.beldex.bchat", "apns-topic com.beldex.bchat")
        t.check(h.get("apns-push-type") == "alert", "apns-push-type alert")
        t.check(h.get("apns-priority") == "10", "apns-priority 10")
        t.check("apns-expiration" not in h and "apns-collapse-id" not in h, "no apns-expiration, no apns-collapse-id")
        b = json.loads(a["body"])
        aps = b.get("aps", {})
        t.check(aps.get("alert") == {"title": "Bchat", "body": "You've got a new message"}, "alert title and body")
        t.check(aps.get("badge") == 1 and aps.get("sound") == "default", "badge 1, sound default")
        t.check(aps.get("mutable-content") == 1 and aps.get("category") == "SECRET", "mutable-content 1, category SECRET")
        t.check(b.get("ENCRYPTED_DATA") == DATA, "ENCRYPTED_DATA is the notify data verbatim")
        t.check(b.get("remote") == 1, "remote 1")
    if fcm:
        f = fcm[0]
        t.check(f["path"] == "/v1/projects/pushpipe-test/messages:send", "FCM HTTP v1 send path: " + f["path"])
        t.check(f.get("status") == 200, "FCM mock accepted the request")
        t.check(f.get("auth_ok") is True, "FCM OAuth access token accepted by the mock")
        m = json.loads(f["body"]).get("message", {})
        t.check(m.get("token") == ANDROID, "message.token is the FCM token")
        t.check(m.get("data") == {"ENCRYPTED_DATA": DATA}, "data message with ENCRYPTED_DATA only")
        t.check(m.get("android") == {"priority": "HIGH"}, "android.priority HIGH")
        t.check("notification" not in m, "no notification block")
    oauth = [r for r in reqs if r["provider"] == "oauth"]
    t.check(len(oauth) >= 1 and oauth[0].get("status") == 200, "FCM sender exchanged its RS256 assertion for a token")
except Exception as e:  # a harness failure is a test failure, with the logs to show why
    t.check(False, f"pipeline test raised {e!r}")
finally:
    if t.failed:
        print(p.logs())
    p.stop()
sys.exit(t.done())
