#!/bin/sh
# run-local.sh: starts the whole pipeline and the mock provider under runit, with a local
# configuration in var/ (see scripts/mkconfig.sh). Stays in the foreground; Ctrl-C stops
# everything it started. Re-runnable: keys, registry and statistics are kept in var/.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
var=${PUSHPIPE_VAR:-$top/var}
mkdir -p "$var"
var=$(cd "$var" && pwd)
shown=${var#"$top"/} # as printed: relative to the tree when inside it
HTTP_PORT=${HTTP_PORT:-5000} MOCK_PORT=${MOCK_PORT:-5443} STATS_PORT=${STATS_PORT:-5080} UWPX_PORT=${UWPX_PORT:-1997}
XMPP_PORT=${XMPP_PORT:-5347}

. "$top/scripts/runit-common.sh"
stop_previous
"$top/scripts/mkconfig.sh" "$var" "$HTTP_PORT" "$MOCK_PORT" "$STATS_PORT" "$UWPX_PORT" "$XMPP_PORT"
conf=$var/pushpipe.json
rm -rf "$var/service"
mkdir -p "$var/service"

mock_service "--hms-app-id $(sed -n 's/.*"app_id" *: *"\([^"]*\)".*/\1/p' "$var/mock/hms.json") --hms-app-secret $(cat "$var/mock/hms.secret")"
service statsd "$top/bin/statsd -c $conf"
service router "$top/bin/router -c $conf"
service ingress-onion "$top/bin/ingress-onion -c $conf"
service apns-sender-1 "$top/bin/apns-sender -c $conf -i 1"
service fcm-sender-1 "$top/bin/fcm-sender -c $conf -i 1"
service wns-sender-1 "$top/bin/wns-sender -c $conf -i 1"
service hms-sender-1 "$top/bin/hms-sender -c $conf -i 1"
service ingress-uwpx "$top/bin/ingress-uwpx -c $conf"
service ingress-xmpp "$top/bin/ingress-xmpp -c $conf" # waits for an XMPP server on $XMPP_PORT (docs/xmpp.md)

start_runit pushpipe
# Wait until the ingress answers (up to 10 s), then register a demo iOS device.
register_demo 100 50
cat <<MSG

pushpipe is running under runit (service directories in $shown/service).
  ingress:      http://127.0.0.1:$HTTP_PORT   (onion routes /beldex/v2/lsrpc, /beldex/v3/lsrpc, /beldex/v4/lsrpc)
  UWPX:         TLS 127.0.0.1:$UWPX_PORT   (registration; channels may point at the mock: https://127.0.0.1:$MOCK_PORT/?token=…)
  XMPP:         component push.localhost, connecting to an XMPP server at 127.0.0.1:$XMPP_PORT (secret in $shown/keys/component.secret)
  metrics:      http://127.0.0.1:$STATS_PORT/metrics, status page http://127.0.0.1:$STATS_PORT/
  server key:   $(cat "$var/keys/server.pub")   ($shown/keys/server.pub)
  logs:         $shown/log/<daemon>/current   (mock provider requests: $shown/log/mock-requests.jsonl)
  config:       $shown/pushpipe.json

A demo iOS device ($id, APNs token $token) is registered: $demo
Send it a first notification (the mock provider records the APNs request in $shown/log/mock-requests.jsonl):
  bin/pushctl send -u http://127.0.0.1:$HTTP_PORT -K $shown/keys/server.pub notify send_to=$id data=aGVsbG8gZnJvbSBwdXNocGlwZQ==

Ctrl-C stops everything.
MSG
wait
