"""libcurl's HTTP/2 defect, checked again on every `make bench` (never in `make check`, which must
not break the day Debian's libcurl is fixed): bench/curl_resets POSTs N requests, 100 at a time,
through libcurl's multi interface over one HTTP/2 connection at a time to the mock provider
(nghttp2 with the rapid-reset defence, as APNs and FCM front ends have). libcurl 7.88 resets
every stream it has finished, the mock answers about every thousand resets with GOAWAY, and
libcurl opens a new connection and sends again what the GOAWAY cut off: connections > 1 and
requests at the mock > N show the defect (docs/senders.md says why apns-sender and fcm-sender
stay on nghttp2). Prints "name value" pairs on one line."""
import json, os, ssl, subprocess, sys, urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from lib.harness import BIN, Pipeline  # noqa: E402

N = int(os.environ.get("BENCH_CURL_N", "5000"))

p = Pipeline()
out = {"curl_requests": str(N)}
try:
    p.start_mock()
    ca = os.path.join(p.dir, "mock", "ca.pem")
    r = subprocess.run([os.path.join(BIN, "curl_resets"), f"https://127.0.0.1:{p.mock_port}/3/device/" + "d4" * 32,
                        ca, str(N), "100"], capture_output=True, text=True, timeout=300)
    w = r.stdout.split()
    out.update({"curl_" + w[i]: w[i + 1] for i in range(0, len(w) - 1, 2)})
    ctx = ssl.create_default_context(cafile=ca)
    urllib.request.urlopen(f"https://127.0.0.1:{p.mock_port}/_mock/stats", context=ctx, timeout=5).read()  # flushes
    out["curl_mock_received"] = str(sum(1 for x in p.requests() if x.get("provider") == "apns"))
    out["curl_libcurl"] = subprocess.run(["curl-config", "--version"], capture_output=True, text=True).stdout.split()[-1] \
        if os.path.exists("/usr/bin/curl-config") else "?"
    conns = int(out.get("curl_connections", "0"))
    out["curl_defect"] = "shown" if conns > 1 or int(out["curl_mock_received"]) > N else "not_shown"
finally:
    p.stop()
print(" ".join(f"{k} {v}" for k, v in out.items()))
