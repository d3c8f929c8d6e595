#!/bin/sh
# selftest.sh: end-to-end test of mock-provider with the curl CLI (HTTP/2 and HTTP/1.1 over
# TLS) and JWTs made by python3-cryptography. Prints each check, ends with "N passed, N failed"
# and exits non-zero on any failure. Usage: tests/mock-provider/selftest.sh [path/to/mock-provider]
# (default bin/mock-provider; MOCK_WRAPPER="valgrind --leak-check=full" runs the mock under valgrind).
set -u

here=$(cd "$(dirname "$0")" && pwd)
mock=${1:-${MOCK_PROVIDER:-$here/../../bin/mock-provider}}
passed=0 failed=0
tmp=$(mktemp -d)
pid=

cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { passed=$((passed + 1)); echo "ok - $1"; }
nok() { failed=$((failed + 1)); echo "FAIL - $1"; }
# check DESCRIPTION COMMAND...: runs the command, counts and prints the result
check() {
	d=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$d"; else nok "$d"; fi
}
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit $?
}

for tool in curl openssl python3; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		nok "$tool is installed (needed by this test)"
		finish
	fi
done
if ! python3 -c 'import cryptography' 2>/dev/null; then
	nok "python3-cryptography is installed (needed by this test)"
	finish
fi
if [ ! -x "$mock" ]; then
	nok "mock-provider binary at $mock"
	finish
fi

# ---- credentials and the JWT helper ----
sh "$here/mkcreds.sh" "$tmp/creds" https://127.0.0.1:8443 >/dev/null 2>&1
check "mkcreds.sh creates every file" test -s "$tmp/creds/ca.pem" -a -s "$tmp/creds/server.pem" \
	-a -s "$tmp/creds/apns.p8" -a -s "$tmp/creds/apns_pub.pem" -a -s "$tmp/creds/fcm-service-account.json" \
	-a -s "$tmp/creds/fcm_pub.pem" -a -s "$tmp/creds/wns.json" -a -s "$tmp/creds/apns.json"
check "private keys are mode 0600" test "$(stat -c %a "$tmp/creds/apns.p8" "$tmp/creds/server.key" \
	"$tmp/creds/fcm-service-account.json" | sort -u)" = 600
check "server certificate chains to the test CA" openssl verify -CAfile "$tmp/creds/ca.pem" "$tmp/creds/server.pem"

cat >"$tmp/jwt.py" <<'EOF'
import base64, json, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def seg(o):
    return b64(json.dumps(o, separators=(",", ":")).encode())

mode = sys.argv[1]
now = int(time.time())
if mode == "apns":  # apns KEYFILE KID TEAM IAT_OFFSET
    key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None)
    inp = seg({"alg": "ES256", "kid": sys.argv[3]}) + "." + seg({"iss": sys.argv[4], "iat": now + int(sys.argv[5])})
    r, s = decode_dss_signature(key.sign(inp.encode(), ec.ECDSA(hashes.SHA256())))
    print(inp + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
elif mode == "fcm":  # fcm SERVICE_ACCOUNT_JSON AUD LIFETIME [OTHER_KEYFILE]
    sa = json.load(open(sys.argv[2]))
    pem = open(sys.argv[5], "rb").read() if len(sys.argv) > 5 else sa["private_key"].encode()
    key = serialization.load_pem_private_key(pem, None)
    inp = seg({"alg": "RS256", "typ": "JWT", "kid": sa["private_key_id"]}) + "." + seg({
        "iss": sa["client_email"], "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": sys.argv[3], "iat": now, "exp": now + int(sys.argv[4])})
    print(inp + "." + b64(key.sign(inp.encode(), padding.PKCS1v15(), hashes.SHA256())))
EOF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/other_ec.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/other_rsa.pem" 2>/dev/null

# ---- start the mock on port 0 ----
c=$tmp/creds
# MOCK_WRAPPER (e.g. "valgrind --leak-check=full") runs the mock under a tool
${MOCK_WRAPPER:-} "$mock" -l 127.0.0.1:0 --cert "$c/server.pem" --key "$c/server.key" --record "$tmp/record.jsonl" \
	--apns-key "$c/apns_pub.pem" --apns-kid MOCKKEY123 --apns-team MOCKTEAM12 \
	--fcm-key "$c/fcm_pub.pem" --fcm-project pushpipe-test \
	--wns-client-id ms-app://s-1-15-2-mock --wns-client-secret mock-secret \
	--hms-app-id 104523987 --hms-app-secret hms-secret \
	--ready-file "$tmp/ready" 2>"$tmp/mock.log" &
pid=$!
i=0
while [ ! -s "$tmp/ready" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
port=$(cat "$tmp/ready" 2>/dev/null)
if [ -z "$port" ] || [ "$port" -eq 0 ] 2>/dev/null; then
	nok "mock writes the ready file"
	cat "$tmp/mock.log"
	finish
fi
ok "mock listening on port 0 -> $port (ready file)"
base=https://127.0.0.1:$port
check "log line format" grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z info mock-provider\[[0-9]+\]: listening' "$tmp/mock.log"

# req ARGS...: prints the HTTP status; body in $tmp/body, headers in $tmp/hdrs
req() {
	curl -s -o "$tmp/body" -D "$tmp/hdrs" -w '%{http_code}' --max-time 10 --cacert "$c/ca.pem" "$@"
}
has_header() { grep -qi "^$1:" "$tmp/hdrs"; }
body_has() { grep -qF -- "$1" "$tmp/body"; }
# jsonq EXPR FILE: evaluates a Python expression over the JSON document d
jsonq() { python3 -c 'import json,sys; d=json.load(open(sys.argv[2])); sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" "$2"; }

apns_jwt=$(python3 "$tmp/jwt.py" apns "$c/apns.p8" MOCKKEY123 MOCKTEAM12 0)
bad_jwt=$(python3 "$tmp/jwt.py" apns "$tmp/other_ec.pem" MOCKKEY123 MOCKTEAM12 0)
old_jwt=$(python3 "$tmp/jwt.py" apns "$c/apns.p8" MOCKKEY123 MOCKTEAM12 -7200)
badteam_jwt=$(python3 "$tmp/jwt.py" apns "$c/apns.p8" MOCKKEY123 OTHERTEAM1 0)
payload='{"aps":{"alert":{"title":"Bchat","body":"You'"'"'ve got a new message"},"badge":1,"sound":"default","mutable-content":1,"category":"SECRET"},"ENCRYPTED_DATA":"AAAA","remote":1}'
apns() { # apns TOKEN JWT [curl args]
	t=$1 j=$2
	shift 2
	req --http2 "$base/3/device/$t" -H "authorization: bearer $j" -H 'apns-topic: com.beldex.bchat' \
		-H 'apns-push-type: alert' -H 'apns-priority: 10' -H 'content-type: application/json' "$@"
}

# ---- APNs ----
s=$(apns aaaa0001 "$apns_jwt" -d "$payload")
check "APNs valid ES256 JWT -> 200" test "$s" = 200
check "APNs 200 has an apns-id header" has_header apns-id
check "APNs 200 body is empty" test ! -s "$tmp/body"
s=$(apns aaaa0001 "$apns_jwt" -d "$payload" -H 'apns-id: 123E4567-E89B-12D3-A456-4266554400A0')
check "APNs echoes the request's apns-id" grep -qi '^apns-id: 123E4567-E89B-12D3-A456-4266554400A0' "$tmp/hdrs"
s=$(apns aaaa0002 "$bad_jwt" -d "$payload")
check "APNs JWT signed by another key -> 403 InvalidProviderToken" test "$s" = 403 -a "$(cat "$tmp/body")" = '{"reason":"InvalidProviderToken"}'
s=$(apns aaaa0002 "$badteam_jwt" -d "$payload")
check "APNs JWT of another team -> 403 InvalidProviderToken" test "$s" = 403
s=$(apns aaaa0002 "$old_jwt" -d "$payload")
check "APNs JWT older than 1 h -> 403 ExpiredProviderToken" test "$s" = 403 -a "$(cat "$tmp/body")" = '{"reason":"ExpiredProviderToken"}'
s=$(req --http2 "$base/3/device/aaaa0002" -H 'apns-topic: com.beldex.bchat' -d "$payload")
check "APNs without authorization -> 403 MissingProviderToken" test "$s" = 403 -a "$(cat "$tmp/body")" = '{"reason":"MissingProviderToken"}'
s=$(req --http2 "$base/3/device/aaaa0002" -H "authorization: bearer $apns_jwt" -d "$payload")
check "APNs without apns-topic -> 400 MissingTopic" test "$s" = 400 -a "$(cat "$tmp/body")" = '{"reason":"MissingTopic"}'
s=$(apns aaaa0002 "$apns_jwt" -d "$payload" -H 'apns-priority: 7')
check "APNs apns-priority 7 -> 400 BadPriority" test "$s" = 400
s=$(apns aaaa0002 "$apns_jwt" --data-binary @/dev/null)
check "APNs empty body -> 400 PayloadEmpty" test "$s" = 400 -a "$(cat "$tmp/body")" = '{"reason":"PayloadEmpty"}'
python3 -c 'print("{\"aps\":{},\"x\":\"" + "a" * 4100 + "\"}")' >"$tmp/big.json"
s=$(apns aaaa0002 "$apns_jwt" --data-binary @"$tmp/big.json")
check "APNs 4.1 KB body -> 413 PayloadTooLarge" test "$s" = 413 -a "$(cat "$tmp/body")" = '{"reason":"PayloadTooLarge"}'
s=$(req --http2 -X GET "$base/3/device/aaaa0002" -H "authorization: bearer $apns_jwt")
check "APNs GET -> 405 MethodNotAllowed" test "$s" = 405

# ---- FCM: OAuth token exchange, then sends ----
sa=$c/fcm-service-account.json
assertion=$(python3 "$tmp/jwt.py" fcm "$sa" "$base/token" 3600)
s=$(req --http2 "$base/v1/projects/pushpipe-test/messages:send" -H 'authorization: Bearer ya29.unknown' \
	-H 'content-type: application/json' -d '{"message":{"token":"fcmtok1","data":{"ENCRYPTED_DATA":"AAAA"}}}')
check "FCM send with an unknown access token -> 401 UNAUTHENTICATED" test "$s" = 401
check "FCM 401 body is the Google error JSON" jsonq 'd["error"]["status"]=="UNAUTHENTICATED" and d["error"]["code"]==401' "$tmp/body"
s=$(req --http2 "$base/token" -d "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=$assertion")
check "OAuth token exchange with a valid RS256 assertion -> 200" test "$s" = 200
check "OAuth answer has ya29.mock- token, expires_in 3599, Bearer" \
	jsonq 'd["access_token"].startswith("ya29.mock-") and d["expires_in"]==3599 and d["token_type"]=="Bearer"' "$tmp/body"
fcm_token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$tmp/body" 2>/dev/null)
bad_assertion=$(python3 "$tmp/jwt.py" fcm "$sa" "$base/token" 3600 "$tmp/other_rsa.pem")
s=$(req --http1.1 "$base/token" -d "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=$bad_assertion")
check "OAuth assertion signed by another key -> 400 invalid_grant (HTTP/1.1)" test "$s" = 400
check "OAuth error body says invalid_grant" jsonq 'd["error"]=="invalid_grant"' "$tmp/body"
long_assertion=$(python3 "$tmp/jwt.py" fcm "$sa" "$base/token" 7200)
s=$(req --http2 "$base/token" -d "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=$long_assertion")
check "OAuth assertion with exp - iat > 3600 -> 400" test "$s" = 400

fcm() { # fcm BODY [curl args]
	b=$1
	shift
	req --http2 "$base/v1/projects/pushpipe-test/messages:send" -H "authorization: Bearer $fcm_token" \
		-H 'content-type: application/json' -d "$b" "$@"
}
s=$(fcm '{"message":{"token":"fcmtok1","data":{"ENCRYPTED_DATA":"AAAA"},"android":{"priority":"HIGH"}}}')
check "FCM send with the issued access token -> 200" test "$s" = 200
check "FCM 200 names projects/pushpipe-test/messages/..." jsonq 'd["name"].startswith("projects/pushpipe-test/messages/")' "$tmp/body"
s=$(fcm '{"message":{"token":"fcmtok1","data":{"n":1}}}')
check "FCM non-string data value -> 400 INVALID_ARGUMENT with FcmError" test "$s" = 400
check "FCM error detail FcmError INVALID_ARGUMENT, field message.data[0].value" jsonq \
	'd["error"]["details"][0]["errorCode"]=="INVALID_ARGUMENT" and d["error"]["details"][1]["fieldViolations"][0]["field"]=="message.data[0].value"' "$tmp/body"
s=$(fcm '{"message":{"token":"fcmtok1","data":{"google.x":"1"}}}')
check "FCM reserved data key -> 400" test "$s" = 400
s=$(req --http2 "$base/v1/projects/other-project/messages:send" -H "authorization: Bearer $fcm_token" \
	-d '{"message":{"token":"fcmtok1"}}')
check "FCM wrong project -> 404 NOT_FOUND without FcmError" test "$s" = 404
check "FCM 404 body has no details" jsonq '"details" not in d["error"] and d["error"]["status"]=="NOT_FOUND"' "$tmp/body"

# ---- WNS ----
s=$(req --http1.1 "$base/token" --data-urlencode grant_type=client_credentials \
	--data-urlencode client_id=ms-app://s-1-15-2-mock --data-urlencode client_secret=mock-secret \
	--data-urlencode scope=notify.windows.com)
check "WNS token (HTTP/1.1, form-urlencoded) -> 200" test "$s" = 200
check "WNS token answer: wns-mock-, bearer, 86400" \
	jsonq 'd["access_token"].startswith("wns-mock-") and d["token_type"]=="bearer" and d["expires_in"]==86400' "$tmp/body"
wns_token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$tmp/body" 2>/dev/null)
s=$(req --http2 "$base/token" -d 'grant_type=client_credentials&client_id=ms-app%3A%2F%2Fs-1-15-2-mock&client_secret=wrong&scope=notify.windows.com')
check "WNS token with a wrong secret -> 400 invalid_client" test "$s" = 400 -a "$(cat "$tmp/body")" = '{"error":"invalid_client"}'
wns() { # wns PATH BODY [curl args]
	p=$1 b=$2
	shift 2
	req --http2 "$base$p" -H "authorization: Bearer $wns_token" -H 'x-wns-type: wns/raw' \
		-H 'content-type: application/octet-stream' -H 'x-wns-requestforstatus: true' -H 'expect:' -d "$b" "$@"
}
s=$(wns '/wns/?token=AwYAAAB%2bchan1' '{"action":"test_push","version":2}')
check "WNS raw send -> 200" test "$s" = 200
check "WNS 200 has x-wns-status: received and x-wns-msg-id" sh -c "grep -qi '^x-wns-status: received' '$tmp/hdrs' && grep -qi '^x-wns-msg-id:' '$tmp/hdrs'"
s=$(req --http2 "$base/wns/?token=AwYAAAB%2bchan1" -H 'x-wns-type: wns/raw' -H 'content-type: application/octet-stream' -d 'x')
check "WNS without a token -> 401" test "$s" = 401
s=$(req --http2 "$base/wns/?token=AwYAAAB%2bchan1" -H "authorization: Bearer $wns_token" -H 'x-wns-type: wns/toast' \
	-H 'content-type: application/octet-stream' -d 'x')
check "WNS x-wns-type other than wns/raw -> 400" test "$s" = 400
python3 -c 'print("a" * 5001, end="")' >"$tmp/big.raw"
s=$(req --http2 "$base/wns/?token=AwYAAAB%2bchan1" -H "authorization: Bearer $wns_token" -H 'x-wns-type: wns/raw' \
	-H 'content-type: application/octet-stream' --data-binary @"$tmp/big.raw")
check "WNS 5001-byte body -> 413" test "$s" = 413
s=$(req --http2 "$base/?token=abc" -H "authorization: Bearer $wns_token" -H 'x-wns-type: wns/raw' \
	-H 'content-type: application/octet-stream' -H 'x-wns-requestforstatus: maybe' -d 'x')
check "WNS X-WNS-RequestForStatus other than true/false -> 400" test "$s" = 400
s=$(wns '/?token=abc' 'x' -H 'x-wns-cache-policy: sometimes')
check "WNS bad X-WNS-Cache-Policy -> 400" test "$s" = 400
s=$(wns '/?token=abc' 'x' -H 'x-wns-ttl: 1h')
check "WNS bad X-WNS-TTL -> 400" test "$s" = 400
s=$(wns '/?token=abc' 'x' -H 'x-wns-cache-policy: cache' -H 'x-wns-ttl: 600')
check "WNS channel URI /?token=abc with cache policy and TTL -> 200" test "$s" = 200
check "WNS asked for status: x-wns-deviceconnectionstatus" has_header x-wns-deviceconnectionstatus
s=$(req --http2 "$base/?token=abc" -H "authorization: Bearer $wns_token" -H 'x-wns-type: wns/raw' \
	-H 'content-type: application/octet-stream' -H 'expect:' -d 'x')
check "WNS not asked for status: no x-wns-deviceconnectionstatus" sh -c "test '$s' = 200 && ! grep -qi '^x-wns-deviceconnectionstatus' '$tmp/hdrs'"
s=$(wns '/?token=abc' 'x' -H 'content-length:')
check "WNS without Content-Length (HTTP/2) -> 411" test "$s" = 411
s=$(req --http1.1 "$base/?token=abc" -H "authorization: Bearer $wns_token" -H 'x-wns-type: wns/raw' \
	-H 'content-type: application/octet-stream' -H 'transfer-encoding: chunked' -d 'x')
check "WNS chunked body (HTTP/1.1) refused" test "$s" -ge 400
s=$(req --http1.1 "$base/?token=abc" -H "authorization: Bearer $wns_token" -H 'x-wns-type: wns/raw' \
	-H 'content-type: application/octet-stream' -H 'expect: 100-continue' -d 'x')
check "WNS Expect: 100-continue -> 417" test "$s" = 417
s=$(req --http1.1 "$base/?token=abc" -H "authorization: Bearer $wns_token" -H 'x-wns-type: wns/raw' \
	-H 'content-type: application/octet-stream' -H 'expect:' -d 'x')
check "WNS over HTTP/1.1 with Content-Length -> 200" test "$s" = 200
s=$(req --http2 "$base/accesstoken.srf" -H 'content-type: text/plain' -d 'grant_type=client_credentials&client_id=ms-app%3A%2F%2Fs-1-15-2-mock&client_secret=mock-secret&scope=notify.windows.com')
check "WNS token request not form-encoded -> 400 invalid_request" sh -c "test '$s' = 400 && grep -q invalid_request '$tmp/body'"
s=$(req --http2 "$base/accesstoken.srf" -d 'grant_type=client_credentials&client_id=ms-app%3A%2F%2Fs-1-15-2-mock&client_secret=mock-secret&scope=other')
check "WNS token with a wrong scope -> 400 invalid_scope" sh -c "test '$s' = 400 && grep -q invalid_scope '$tmp/body'"
s=$(req --http2 "$base/tenant1/oauth2/v2.0/token" -d 'grant_type=client_credentials&client_id=ms-app%3A%2F%2Fs-1-15-2-mock&client_secret=mock-secret&scope=https%3A%2F%2Fwns.windows.com%2F.default')
check "WNS Entra token: expires_in as a string" sh -c "test '$s' = 200" 
check "WNS Entra token body" jsonq 'd["expires_in"]=="86399" and d["token_type"]=="Bearer" and d["access_token"].startswith("wns-mock-")' "$tmp/body"
wnstok() { req --http2 "$base/accesstoken.srf" -d 'grant_type=client_credentials&client_id=ms-app%3A%2F%2Fs-1-15-2-mock&client_secret=mock-secret&scope=notify.windows.com'; }
req --http2 "$base/_mock/faults" -d '{"wns_expires_in":"string","wns_token_lifetime_s":120}' >/dev/null
s=$(wnstok)
check "fault script wns_expires_in string: live token says \"120\"" sh -c "test '$s' = 200 && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d[\"expires_in\"] != \"120\")' '$tmp/body'"
req --http2 "$base/_mock/faults" -d '{"wns_expires_in":"missing"}' >/dev/null
s=$(wnstok)
check "fault script wns_expires_in missing: no expires_in" jsonq '"expires_in" not in d and d["access_token"]' "$tmp/body"
req --http2 "$base/_mock/faults" -d '{"wns_expires_in":"number"}' >/dev/null
s=$(wnstok)
check "fault script wns_expires_in number: 86400" jsonq 'd["expires_in"]==86400' "$tmp/body"
s=$(req --http2 "$base/_mock/faults" -d '{"wns_expires_in":"often"}')
check "fault script: bad wns_expires_in -> 400" test "$s" = 400
req --http2 "$base/_mock/faults" -d '{"rules":[{"provider":"oauth","token":"wns","count":1,"status":503}]}' >/dev/null
s=$(wnstok)
check "fault: WNS token endpoint told to fail -> 503" test "$s" = 503
s=$(wnstok)
check "then it issues tokens again" test "$s" = 200
wns_rules='{"rules":[
 {"provider":"wns","token":"/?token=f401","count":1,"status":401},
 {"provider":"wns","token":"/?token=f404","count":1,"status":404},
 {"provider":"wns","token":"/?token=f410","count":1,"status":410},
 {"provider":"wns","token":"/?token=f500","count":1,"status":500},
 {"provider":"wns","token":"/?token=f503","count":1,"status":503,"retry_after":"7"},
 {"provider":"wns","token":"/?token=fdrop","count":1,"status":200,"reason":"dropped"}]}'
s=$(req --http2 "$base/_mock/faults" -d "$wns_rules")
check "WNS fault script accepted" test "$s" = 200
s=$(wns '/?token=f401' 'x')
check "fault: WNS 401 once" test "$s" = 401
s=$(wns '/?token=f401' 'x')
check "then 200" test "$s" = 200
for st in 404 410 500; do
	s=$(wns "/?token=f$st" 'x')
	check "fault: WNS $st" test "$s" = "$st"
done
s=$(wns '/?token=f503' 'x')
check "fault: WNS 503 with Retry-After: 7" sh -c "test '$s' = 503 && grep -qi '^retry-after: 7' '$tmp/hdrs'"
s=$(wns '/?token=fdrop' 'x')
check "fault: WNS 200 with x-wns-status: dropped" sh -c "test '$s' = 200 && grep -qi '^x-wns-status: dropped' '$tmp/hdrs'"
req --http2 "$base/_mock/reset" -d '' >/dev/null

# ---- fault injection ----
rules='{"rules":[
 {"provider":"apns","token":"dead0001","count":1,"status":410,"reason":"Unregistered","timestamp":1700000000000},
 {"provider":"apns","token":"busy0001","count":1,"status":503,"reason":"ServiceUnavailable","retry_after":"5"},
 {"provider":"apns","token":"gone0001","count":1,"action":"goaway","reason":"Shutdown"},
 {"provider":"fcm","token":"fcmdead1","count":1,"reason":"UNREGISTERED"},
 {"provider":"wns","token":"/wns/?token=slow","count":1,"status":406,"continue_after":"30"},
 {"provider":"apns","token":"slow0001","count":1,"delay_ms":300}]}'
s=$(req --http2 "$base/_mock/faults" -d "$rules")
check "POST /_mock/faults accepts a script of 6 rules" test "$s" = 200
s=$(req --http2 "$base/_mock/faults" -d '{"rules":[{"provider":"nope"}]}')
check "POST /_mock/faults rejects a bad rule (400) and keeps the script" test "$s" = 400
s=$(apns dead0001 "$apns_jwt" -d "$payload")
check "fault: APNs 410 Unregistered" test "$s" = 410
check "fault: 410 body carries reason and timestamp" test "$(cat "$tmp/body")" = '{"reason":"Unregistered","timestamp":1700000000000}'
s=$(apns dead0001 "$apns_jwt" -d "$payload")
check "fault with count 1 applies once, then 200" test "$s" = 200
s=$(apns busy0001 "$apns_jwt" -d "$payload")
check "fault: APNs 503 with Retry-After: 5" sh -c "test '$s' = 503 && grep -qi '^retry-after: 5' '$tmp/hdrs'"
s=$(fcm '{"message":{"token":"fcmdead1","data":{"a":"b"}}}')
check "fault: FCM 404 UNREGISTERED with FcmError" sh -c "test '$s' = 404" 
check "fault: FCM body has errorCode UNREGISTERED" jsonq 'd["error"]["details"][0]["errorCode"]=="UNREGISTERED"' "$tmp/body"
s=$(wns '/wns/?token=slow' 'x')
check "fault: WNS 406 with X-WNS-CONTINUE-AFTER" sh -c "test '$s' = 406 && grep -qi '^x-wns-continue-after: 30' '$tmp/hdrs'"
t0=$(date +%s%N)
s=$(apns slow0001 "$apns_jwt" -d "$payload")
t1=$(date +%s%N)
check "fault: delay_ms 300 delays a 200 by >= 300 ms" test "$s" = 200 -a $(((t1 - t0) / 1000000)) -ge 300
# GOAWAY: the first request on the connection succeeds (stream 1), the second (stream 3) gets
# GOAWAY with last-stream-id 1
curl -sv --http2 --max-time 10 --cacert "$c/ca.pem" -o /dev/null -H "authorization: bearer $apns_jwt" \
	-H 'apns-topic: com.beldex.bchat' -d "$payload" "$base/3/device/ok000001" "$base/3/device/gone0001" \
	>"$tmp/goaway.log" 2>&1
check "fault: GOAWAY received with last_stream=1" grep -q 'GOAWAY, error=0, last_stream=1' "$tmp/goaway.log"
s=$(apns after001 "$apns_jwt" -d "$payload")
check "mock still serves after the GOAWAY" test "$s" = 200

rules='{"rules":[{"provider":"apns","token":"rst00001","action":"reset"},
 {"provider":"apns","token":"sil00001","action":"silent"},{"provider":"apns","token":"drop0001","action":"drop"}],
 "max_concurrent_streams":1,"streams_after_success":50}'
s=$(req --http2 "$base/_mock/faults" -d "$rules")
check "POST /_mock/faults with reset/silent/drop rules and max_concurrent_streams 1" test "$s" = 200
apns rst00001 "$apns_jwt" -d "$payload" >/dev/null
check "fault: reset -> RST_STREAM (curl exit 92)" test $? = 92
apns sil00001 "$apns_jwt" -d "$payload" --max-time 1 >/dev/null
check "fault: silent -> no answer (curl times out, exit 28)" test $? = 28
apns drop0001 "$apns_jwt" -d "$payload" >/dev/null
rc=$?
check "fault: drop -> connection closed (curl exit 56 or 16)" test "$rc" = 56 -o "$rc" = 16
if command -v nghttp >/dev/null 2>&1; then
	printf '%s' "$payload" >"$tmp/payload.json"
	nghttp -nv -H "authorization: bearer $apns_jwt" -H 'apns-topic: com.beldex.bchat' -H 'apns-push-type: alert' \
		-d "$tmp/payload.json" "$base/3/device/ok000002" >"$tmp/nghttp.log" 2>&1
	check "SETTINGS_MAX_CONCURRENT_STREAMS 1 on a new connection" grep -q 'SETTINGS_MAX_CONCURRENT_STREAMS(0x03):1]' "$tmp/nghttp.log"
	check "streams_after_success: raised to 50 after the first 200" grep -q 'SETTINGS_MAX_CONCURRENT_STREAMS(0x03):50]' "$tmp/nghttp.log"
else
	echo "skip - nghttp (nghttp2-client) not installed: SETTINGS checks"
fi

# ---- control API and robustness ----
s=$(req --http2 "$base/_mock/stats")
check "GET /_mock/stats -> 200" test "$s" = 200
check "stats count APNs 200s and 410s, FCM, WNS, GOAWAY, reset, silent, drop" jsonq \
	'd["apns"]["status"]["200"]>=5 and d["apns"]["status"]["410"]==1 and d["fcm"]["status"]["404"]>=1 and d["wns"]["status"]["406"]==1 and d["apns"]["actions"]=={"goaway":1,"reset":1,"silent":1,"drop":1}' "$tmp/body"
s=$(req --http2 "$base/_mock/reset" -X POST)
check "POST /_mock/reset -> 200" test "$s" = 200
s=$(apns dead0001 "$apns_jwt" -d "$payload")
check "after reset no rule applies" test "$s" = 200

head -c 3000 /dev/urandom >"$tmp/garbage"
python3 - "$port" "$tmp/garbage" <<'EOF' >/dev/null 2>&1
import socket, sys, time
port, garbage = int(sys.argv[1]), open(sys.argv[2], "rb").read()
for data in (garbage, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    s.settimeout(0.5)
    try:
        s.recv(100)
    except Exception:
        pass
    s.close()
EOF
python3 - "$port" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x16\x03\x01\x02\x00\x01\x00")  # a ClientHello that never finishes
time.sleep(3)
EOF
stall=$!
sleep 0.2
s=$(apns alive001 "$apns_jwt" -d "$payload")
check "random bytes, plain HTTP and a stalled handshake do not stop the mock" test "$s" = 200
s=$(curl -s --http1.1 --max-time 10 --cacert "$c/ca.pem" -w '%{num_connects}' -o /dev/null "$base/_mock/stats" \
	-o /dev/null "$base/_mock/stats")
check "HTTP/1.1 keep-alive reuses the connection" test "$s" = 10
kill "$stall" 2>/dev/null
wait "$stall" 2>/dev/null

# ---- the record file ----
rec=$tmp/record.jsonl
check "record file lines are all JSON objects" python3 -c '
import json, sys
for line in open(sys.argv[1]):
    assert isinstance(json.loads(line), dict)' "$rec"
check "record: APNs success has headers, body, status, truncated authorization" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
r = [x for x in recs if x["path"] == "/3/device/aaaa0001"][0]
assert r["provider"] == "apns" and r["method"] == "POST" and r["status"] == 200 and r["fault"] is False
assert r["headers"]["apns-topic"] == "com.beldex.bchat" and r["headers"]["apns-push-type"] == "alert"
assert r["headers"]["authorization"] == "bearer " + sys.argv[2][:8] + "\u2026" and r["auth_ok"] is True
assert json.loads(r["body"])["ENCRYPTED_DATA"] == "AAAA" and r["seq"] >= 1 and r["time_ms"] > 0' "$rec" "$apns_jwt"
check "record: bad JWT has auth_ok false and reason InvalidProviderToken" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert any(x["reason"] == "InvalidProviderToken" and x["auth_ok"] is False for x in recs)' "$rec"
check "record: faulted 410 and GOAWAY are recorded with fault true" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert any(x["path"] == "/3/device/dead0001" and x["status"] == 410 and x["fault"] for x in recs)
assert any(x["path"] == "/3/device/gone0001" and x.get("action") == "goaway" and x["fault"] for x in recs)' "$rec"
check "record: control requests are not recorded" sh -c "! grep -q '/_mock/' '$rec'"
# ---- HMS (Huawei Push Kit) ----
s=$(req --http2 "$base/oauth2/v3/token" -d 'grant_type=client_credentials&client_id=104523987&client_secret=wrong')
check "HMS token with a wrong secret -> 400 invalid_client" sh -c "test '$s' = 400 && grep -q invalid_client '$tmp/body'"
s=$(req --http2 "$base/oauth2/v3/token" -d 'grant_type=client_credentials&client_id=104523987&client_secret=hms-secret')
check "HMS token answer: hms-mock-, Bearer, 3600" sh -c "test '$s' = 200" 
check "HMS token body" jsonq 'd["access_token"].startswith("hms-mock-") and d["expires_in"]==3600 and d["token_type"]=="Bearer"' "$tmp/body"
hms_token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$tmp/body" 2>/dev/null)
hms_msg='{"validate_only":false,"message":{"data":"{\"ENCRYPTED_DATA\":\"AAAA\"}","android":{"urgency":"HIGH"},"token":["hwtok1"]}}'
hms() { # hms PATH BODY [curl args]
	req --http2 "$base$1" -H "authorization: Bearer $hms_token" -H 'content-type: application/json' -d "$2"
}
s=$(req --http2 "$base/v1/104523987/messages:send" -H 'content-type: application/json' -d "$hms_msg")
check "HMS send without a token -> 401 code 80200003" sh -c "test '$s' = 401 && grep -q 80200003 '$tmp/body'"
s=$(hms /v1/104523987/messages:send "$hms_msg")
check "HMS send -> 200 code 80000000 with a requestId" sh -c "test '$s' = 200 && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not (d[\"code\"]==\"80000000\" and d[\"requestId\"]))' '$tmp/body'"
s=$(hms /v1/999/messages:send "$hms_msg")
check "HMS send for another app -> 403 code 80300002" sh -c "test '$s' = 403 && grep -q 80300002 '$tmp/body'"
s=$(hms /v1/104523987/messages:send '{"message":{"data":{"a":"b"},"token":["hwtok1"]}}')
check "HMS data that is not a string -> 400 code 80100003" sh -c "test '$s' = 400 && grep -q 80100003 '$tmp/body'"
big=$(python3 -c 'print("A" * 4100)')
s=$(hms /v1/104523987/messages:send "{\"message\":{\"data\":\"$big\",\"token\":[\"hwtok1\"]}}")
check "HMS message over 4096 bytes -> HTTP 200 code 80300008" sh -c "test '$s' = 200 && grep -q 80300008 '$tmp/body'"
req --http2 "$base/_mock/faults" -d '{"rules":[{"provider":"hms","token":"hwdead","count":1,"reason":"80100000"},
 {"provider":"hms","count":1,"reason":"80300007"},{"provider":"hms","token":"hw503","count":1,"status":503,"retry_after":"9"}]}' >/dev/null
s=$(hms /v1/104523987/messages:send "$(echo "$hms_msg" | sed 's/hwtok1/hwdead/')")
check "HMS fault 80100000: HTTP 200, the request's token in illegal_tokens" sh -c "test '$s' = 200 && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not (d[\"code\"]==\"80100000\" and json.loads(d[\"msg\"])[\"illegal_tokens\"]==[\"hwdead\"]))' '$tmp/body'"
s=$(hms /v1/104523987/messages:send "$hms_msg")
check "HMS fault 80300007 (all tokens invalid) in an HTTP 200" sh -c "test '$s' = 200 && grep -q 80300007 '$tmp/body'"
s=$(hms /v1/104523987/messages:send "$(echo "$hms_msg" | sed 's/hwtok1/hw503/')")
check "HMS fault 503 with Retry-After" sh -c "test '$s' = 503 && grep -qi '^retry-after: 9' '$tmp/hdrs'"
s=$(hms /v1/104523987/messages:send "$hms_msg")
check "then HMS accepts again" sh -c "test '$s' = 200 && grep -q 80000000 '$tmp/body'"
req --http2 "$base/_mock/reset" -d '' >/dev/null
s=$(req --http2 "$base/_mock/stats")
check "stats count HMS requests" jsonq 'd["hms"]["total"] >= 7 and d["hms"]["status"]["200"] >= 4' "$tmp/body"

check "record: FCM, OAuth and WNS requests are recorded" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
p = {x["provider"] for x in recs}
assert {"apns", "fcm", "oauth", "wns", "hms"} <= p' "$rec"
check "record: seq numbers are 1..N in order" python3 -c '
import json, sys
seqs = [json.loads(l)["seq"] for l in open(sys.argv[1])]
assert seqs == list(range(1, len(seqs) + 1))' "$rec"

# ---- --http1-only: ALPN offers http/1.1 alone (as WNS front ends) ----
"$mock" -l 127.0.0.1:0 --cert "$c/server.pem" --key "$c/server.key" --record /dev/null --http1-only \
	--ready-file "$tmp/ready1" 2>"$tmp/mock1.log" &
pid1=$!
i=0
while [ ! -s "$tmp/ready1" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
port1=$(cat "$tmp/ready1" 2>/dev/null)
v=$(curl -s -o /dev/null -w '%{http_version}' --max-time 10 --cacert "$c/ca.pem" --http2 "https://127.0.0.1:$port1/_mock/stats")
check "--http1-only: a client asking for h2 gets HTTP/1.1" test "$v" = 1.1
kill -TERM "$pid1"
wait "$pid1"

# ---- shutdown ----
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "SIGTERM: exit status 0" test "$rc" = 0
check "SIGTERM: a stop line is logged" grep -q 'info mock-provider\[[0-9]*\]: stopped' "$tmp/mock.log"
finish
