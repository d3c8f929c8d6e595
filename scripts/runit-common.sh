# runit-common.sh: what run-local.sh and run-cluster.sh share, sourced by them (not run): stopping
# a run still going in $var, a runit service directory with its own svlogd log, the mock
# provider's service, runsvdir in its own session with Ctrl-C stopping it, and the demo
# registration. Expects top, var, HTTP_PORT and MOCK_PORT to be set.

# A previous run still going: stop it first.
stop_previous() {
	if [ -f "$var/runsvdir.pid" ] && kill -0 "$(cat "$var/runsvdir.pid")" 2>/dev/null; then
		echo "stopping the previous run"
		kill -HUP "$(cat "$var/runsvdir.pid")" 2>/dev/null || true
		sleep 2
	fi
}

# service NAME COMMAND...: a runit service directory with its own svlogd log (svlogd options in
# SVLOGD_OPTS, e.g. "-tt " for timestamps).
service() {
	name=$1; shift
	d=$var/service/$name
	mkdir -p "$d/log" "$var/log/$name"
	printf '#!/bin/sh\nexec 2>&1\nexec %s\n' "$*" > "$d/run"
	printf '#!/bin/sh\nexec svlogd %s%s\n' "${SVLOGD_OPTS:-}" "$var/log/$name" > "$d/log/run"
	chmod +x "$d/run" "$d/log/run"
}

# mock_service [EXTRA ARGS]: the mock provider on MOCK_PORT with the keys mkconfig.sh made.
mock_service() {
	m=$var/mock
	service mock-provider "$top/bin/mock-provider -l 127.0.0.1:$MOCK_PORT --cert $m/server.pem --key $m/server.key --record $var/log/mock-requests.jsonl --apns-key $m/apns_pub.pem --apns-kid MOCKKEY123 --apns-team MOCKTEAM12 --fcm-key $m/fcm_pub.pem --wns-client-id $(sed -n 's/.*"client_id" *: *"\([^"]*\)".*/\1/p' "$m/wns.json") --wns-client-secret $(cat "$m/wns.secret") $*"
}

# start_runit WHAT: runsvdir in its own session, so Ctrl-C reaches only this script, which then
# stops runit ("stopping WHAT").
start_runit() {
	stopping=$1
	setsid runsvdir -P "$var/service" 'log: ..........................................................' &
	echo $! > "$var/runsvdir.pid"
	trap stop INT TERM
}
stop() {
	trap - INT TERM
	echo
	echo "stopping $stopping"
	kill -HUP "$(cat "$var/runsvdir.pid")" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -f "$var/runsvdir.pid"
	exit 0
}

# register_demo WAIT_TENTHS TRIES: waits until the ingress on HTTP_PORT answers (up to
# WAIT_TENTHS tenths of a second), then registers the demo iOS device (id, token; pushctl's
# answer in demo). Until the ingress has reached the router it answers "Server busy"
# (retryable): up to TRIES tries, 0.2 s apart.
register_demo() {
	i=0
	while ! curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" && [ $i -lt "$1" ]; do sleep 0.1; i=$((i + 1)); done
	id=bd$(printf '5%.0s' $(seq 64))
	token=$(printf 'a1%.0s' $(seq 32))
	i=0
	until demo=$("$top/bin/pushctl" send -u "http://127.0.0.1:$HTTP_PORT" -K "$var/keys/server.pub" register token=$token pubKey=$id 2>&1) || [ $i -ge "$2" ]; do
		sleep 0.2
		i=$((i + 1))
	done
}
