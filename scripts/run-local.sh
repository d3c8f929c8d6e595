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

# A previous run still going: stop it first.
if [ -f "$var/runsvdir.pid" ] && kill -0 "$(cat "$var/runsvdir.pid")" 2>/dev/null; then
	echo "stopping the previous run"
	kill -HUP "$(cat "$var/runsvdir.pid")" 2>/dev/null || true
	sleep 2
fi
"$top/scripts/mkconfig.sh" "$var" "$HTTP_PORT" "$MOCK_PORT" "$STATS_PORT" "$UWPX_PORT" "$XMPP_PORT"
conf=$var/pushpipe.json
rm -rf "$var/service"
mkdir -p "$var/service"

# service NAME COMMAND...: a runit service directory with its own svlogd log.
service() {
	name=$1; shift
	d=$var/service/$name
	mkdir -p "$d/log" "$var/log/$name"
	printf '#!/bin/sh\nexec 2>&1\nexec %s\n' "$*" > "$d/run"
	printf '#!/bin/sh\nexec svlogd %s\n' "$var/log/$name" > "$d/log/run"
	chmod +x "$d/run" "$d/log/run"
}
m=$var/mock
service mock-provider "$top/bin/mock-provider -l 127.0.0.1:$MOCK_PORT --cert $m/server.pem --key $m/server.key --record $var/log/mock-requests.jsonl --apns-key $m/apns_pub.pem --apns-kid MOCKKEY123 --apns-team MOCKTEAM12 --fcm-key $m/fcm_pub.pem --wns-client-id $(sed -n 's/.*"client_id" *: *"\([^"]*\)".*/\1/p' "$m/wns.json") --wns-client-secret $(cat "$m/wns.secret") --hms-app-id $(sed -n 's/.*"app_id" *: *"\([^"]*\)".*/\1/p' "$m/hms.json") --hms-app-secret $(cat "$m/hms.secret")"
service statsd "$top/bin/statsd -c $conf"
service router "$top/bin/router -c $conf"
service ingress-onion "$top/bin/ingress-onion -c $conf"
service apns-sender-1 "$top/bin/apns-sender -c $conf -i 1"
service fcm-sender-1 "$top/bin/fcm-sender -c $conf -i 1"
service wns-sender-1 "$top/bin/wns-sender -c $conf -i 1"
service hms-sender-1 "$top/bin/hms-sender -c $conf -i 1"
service ingress-uwpx "$top/bin/ingress-uwpx -c $conf"
service ingress-xmpp "$top/bin/ingress-xmpp -c $conf" # waits for an XMPP server on $XMPP_PORT (docs/xmpp.md)

# Its own session: Ctrl-C reaches only this script, which then stops runit in order.
setsid runsvdir -P "$var/service" 'log: ..........................................................' &
echo $! > "$var/runsvdir.pid"
stop() {
	trap - INT TERM
	echo
	echo "stopping pushpipe"
	kill -HUP "$(cat "$var/runsvdir.pid")" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -f "$var/runsvdir.pid"
	exit 0
}
trap stop INT TERM

# Wait until the ingress answers (up to 10 s), then register a demo iOS device.
i=0
while ! curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
id=bd$(printf '5%.0s' $(seq 64))
token=$(printf 'a1%.0s' $(seq 32))
# Until the ingress has reached the router it answers "Server busy" (retryable): retry.
i=0
until demo=$("$top/bin/pushctl" send -u "http://127.0.0.1:$HTTP_PORT" -K "$var/keys/server.pub" register token=$token pubKey=$id 2>&1) || [ $i -ge 50 ]; do
	sleep 0.2
	i=$((i + 1))
done
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
