"""POST /get_statistics_data (bchat-onion.md §10.3): auth, filters, flags and the exact
response shape, with rows from statsd and device counts from the router."""
import base64, http.client, json, os, sys, time
from harness import Checks, Pipeline

t = Checks()
p = Pipeline(keep="-k" in sys.argv)
ID = "bd" + "8" * 64


def post(body=b"", user="", password=None, method="POST"):
    c = http.client.HTTPConnection("127.0.0.1", p.http, timeout=10)
    h = {}
    if password is not None:
        h["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    c.request(method, "/get_statistics_data", body=body, headers=h)
    r = c.getresponse()
    return r.status, dict(r.getheaders()), r.read()


try:
    p.start_mock()
    for d in ("statsd", "router", "ingress-onion"):
        p.start(d)
    p.wait_for(p.ingress_up, "ingress")
    p.wait_for(lambda: "connected to " + os.path.join(p.dir, "run", "statsd-query.sock") in p.log("ingress-onion"),
               "ingress connected to statsd", timeout=30)
    pw = open(os.path.join(p.dir, "keys", "stats.password")).read().strip()
    p.wait_for(lambda: p.pushctl("register", "token=" + "ee" * 32, f"pubKey={ID}")[0] == 0, "router link", timeout=10)
    p.pushctl("register", "token=fcm:stats", f"pubKey={ID}", "device=android")
    p.pushctl("notify", f"send_to={ID}", "data=aGk=")
    p.pushctl("notify", "send_to=bd" + "9" * 64, "data=aGk=")
    time.sleep(1.5)  # statsd commits once a second

    st, h, b = post()
    t.check(st == 401 and b == b"Unauthorized Access" and h.get("WWW-Authenticate") == 'Basic realm="Authentication Required"', f"no auth → 401 ({st})")
    st, _, _ = post(password="wrong")
    t.check(st == 401, "wrong password → 401")
    st, _, _ = post(method="GET", password=pw)
    t.check(st == 405, f"GET → 405 ({st})")
    st, h, b = post(password=pw)
    t.check(st == 200 and h.get("Content-Type") == "application/json" and b.endswith(b"}\n"), f"empty username and empty body → 200 ({st})")
    doc = json.loads(b)
    t.check(b.decode().rstrip("\n") == json.dumps(doc, separators=(",", ":"), sort_keys=True), "compact JSON with sorted keys")
    d = doc["data"]
    t.check(doc["code"] == 0 and d["ios_device_number"] == 1 and d["android_device_number"] == 1 and d["total_bchat_id_number"] == 1,
            f"counts from the registry {d.get('ios_device_number')}/{d.get('android_device_number')}/{d.get('total_bchat_id_number')}")
    rows = d["data"]
    t.check(len(rows) >= 1, "at least the current window")
    row = rows[-1] if rows else {}
    t.check(set(row) == {"android_pn_number", "closed_group_message_number", "deduplicated_1_1_message_number", "end_date",
                         "ios_pn_number", "start_date", "total_message_number", "untracked_message_number"}, f"row keys {sorted(row)}")
    t.check(row.get("total_message_number") == 2 and row.get("deduplicated_1_1_message_number") == 1 and row.get("untracked_message_number") == 1,
            f"message counters {row}")
    st, _, b = post(b'{"ios_pn_number": 0, "android_pn_number": "0", "closed_group_message_number": false, "total_message_number": 0.5}', "admin", pw)
    r2 = json.loads(b)["data"]["data"][-1] if st == 200 else {}
    t.check(st == 200 and not ({"ios_pn_number", "android_pn_number", "closed_group_message_number", "total_message_number"} & set(r2)), f"flags equal to 0 remove their keys ({st})")
    st, _, b = post(b'{"ios_pn_number": 1, "android_pn_number": null}', "", pw)
    t.check(st == 200 and "ios_pn_number" in json.loads(b)["data"]["data"][-1], "non-zero and null flags keep their keys")
    st, h, b = post(b'{"ios_pn_number": "abc"}', "", pw)
    t.check(st == 400 and json.loads(b).get("code") == 1, f"non-integer flag → 400 JSON ({st})")
    st, _, b = post(b'{"start_date": "yesterday"}', "", pw)
    t.check(st == 400, "unparsable start_date → 400")
    st, _, b = post(b'{"end_date": "2001-01-01"}', "", pw)
    t.check(st == 200 and json.loads(b)["data"]["data"] == [], "end_date alone filters (legacy ignored it)")
    st, _, b = post(b'{"start_date": "2999-01-01 00:00:00"}', "", pw)
    t.check(st == 200 and json.loads(b)["data"]["data"] == [], "start_date in the future → no rows")
    st, _, b = post(b'[1]', "", pw)
    t.check(st == 400, "a body that is not an object → 400")
    p.kill("statsd")
    st, _, _ = post(password=pw)
    t.check(st == 503, f"statsd absent → 503 ({st})")
except Exception as e:
    t.check(False, f"statistics test raised {e!r}")
finally:
    if t.failed:
        print(p.logs())
    p.stop()
sys.exit(t.done())
