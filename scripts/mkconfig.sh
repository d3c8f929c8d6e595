#!/bin/sh
# mkconfig.sh DIR HTTP_PORT MOCK_PORT [STATS_PORT [UWPX_PORT [XMPP_COMPONENT_PORT]]]
# Writes a complete local configuration under DIR: the server key pair (DIR/keys), mock
# provider credentials and test CA (DIR/mock), a statistics password, and DIR/pushpipe.json
# pointing every provider at the local mock. Existing keys are kept, so re-running is safe.
set -eu
dir=$1 http=$2 mock=$3 stats=${4:-5080} uwpx=${5:-1997} xmpp=${6:-5347}
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir/keys" "$dir/run" "$dir/db" "$dir/mock" "$dir/log"
dir=$(cd "$dir" && pwd)
[ -f "$dir/keys/server.key" ] || "$top/bin/pushctl" keygen -d "$dir/keys" >/dev/null
"$top/tests/mock-provider/mkcreds.sh" "$dir/mock" "https://127.0.0.1:$mock" >/dev/null
if [ ! -f "$dir/keys/stats.password" ]; then
	umask 077
	head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/keys/stats.password"
fi
# Argon2id (pushctl hash-password); tests of the older "sha256:" form write their own.
hash=$("$top/bin/pushctl" hash-password < "$dir/keys/stats.password")
[ -f "$dir/keys/component.secret" ] || (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/keys/component.secret")
wns_id=$(sed -n 's/.*"client_id" *: *"\([^"]*\)".*/\1/p' "$dir/mock/wns.json")
(umask 077 && sed -n 's/.*"client_secret" *: *"\([^"]*\)".*/\1/p' "$dir/mock/wns.json" > "$dir/mock/wns.secret")
hms_id=$(sed -n 's/.*"app_id" *: *"\([^"]*\)".*/\1/p' "$dir/mock/hms.json")
(umask 077 && sed -n 's/.*"app_secret" *: *"\([^"]*\)".*/\1/p' "$dir/mock/hms.json" > "$dir/mock/hms.secret")
kid=$(sed -n 's/.*"key_id" *: *"\([^"]*\)".*/\1/p' "$dir/mock/apns.json")
team=$(sed -n 's/.*"team_id" *: *"\([^"]*\)".*/\1/p' "$dir/mock/apns.json")
cat > "$dir/pushpipe.json" <<JSON
{
  "state_dir": "$dir/run",
  "log_level": "info",
  "ingress_onion": {
    "listen": "127.0.0.1:$http",
    "key_file": "$dir/keys/server.key",
    "stats_password_hash": "$hash"
  },
  "ingress_uwpx": {
    "listen": "127.0.0.1:$uwpx",
    "cert_file": "$dir/mock/server.pem",
    "key_file": "$dir/mock/server.key",
    "allow_loopback_channels": true
  },
  "ingress_xmpp": {
    "server": "127.0.0.1:$xmpp",
    "domain": "push.localhost",
    "secret_file": "$dir/keys/component.secret",
    "adhoc": true
  },
  "router": { "db_path": "$dir/db/registry" },
  "apns_sender": {
    "url": "https://127.0.0.1:$mock",
    "ca_file": "$dir/mock/ca.pem",
    "key_file": "$dir/mock/apns.p8",
    "key_id": "$kid",
    "team_id": "$team",
    "xmpp_topic": "org.example.xmpp"
  },
  "fcm_sender": {
    "url": "https://127.0.0.1:$mock",
    "ca_file": "$dir/mock/ca.pem",
    "service_account_file": "$dir/mock/fcm-service-account.json"
  },
  "wns_sender": {
    "token_url": "https://127.0.0.1:$mock/accesstoken.srf",
    "ca_file": "$dir/mock/ca.pem",
    "client_id": "$wns_id",
    "client_secret_file": "$dir/mock/wns.secret"
  },
  "hms_sender": {
    "url": "https://127.0.0.1:$mock",
    "token_url": "https://127.0.0.1:$mock/oauth2/v3/token",
    "ca_file": "$dir/mock/ca.pem",
    "app_id": "$hms_id",
    "app_secret_file": "$dir/mock/hms.secret"
  },
  "statsd": { "db_path": "$dir/db/stats", "listen": "127.0.0.1:$stats" }
}
JSON
