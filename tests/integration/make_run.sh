#!/bin/sh
# `make run` as an operator uses it: start the pipeline under runit (in a temporary var
# directory, on free ports), run the pushctl command it prints, check that the mock provider
# recorded the APNs request, then stop it and check that nothing is left running.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
pass=0 fail=0
check() { if eval "$1"; then pass=$((pass + 1)); echo "ok   $2"; else fail=$((fail + 1)); echo "FAIL $2"; fi; }
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d)
out=$dir/out.txt
# In a sanitizer build, LeakSanitizer's exit-time tracer can stall a sandboxed daemon that runsv
# is stopping (the tracer waits on a task it attached); nothing then kills it. Leaks are checked
# by the valgrind test of the plain build and by every other test, which kill what lingers.
if ldd bin/router 2>/dev/null | grep -q libasan; then
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
	export ASAN_OPTIONS
fi
PUSHPIPE_VAR=$dir/var HTTP_PORT=$(port) MOCK_PORT=$(port) STATS_PORT=$(port) UWPX_PORT=$(port) XMPP_PORT=$(port) setsid scripts/run-local.sh > "$out" 2>&1 &
pid=$!
i=0
while ! grep -q "Ctrl-C stops everything" "$out" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
check 'grep -q "Ctrl-C stops everything" "$out"' "run-local.sh started and printed its summary"
check 'grep -Eq "server key: +[0-9a-f]{64}" "$out"' "it prints the server public key"
check 'grep -q "is registered: {\"status\": 200, \"body\": {\"code\": 1" "$out"' "the demo device is registered"
check 'grep -Eq "^[0-9a-f]{64}$" "$dir/var/keys/server.pub"' "var/keys/server.pub is 64 lowercase hex and a newline"
check '[ $(ls -d "$dir"/var/service/*/log | wc -l) -ge 6 ] && grep -q svlogd "$dir/var/service/router/log/run"' "every service has a log/run with svlogd"
cmd=$(grep -E '^ +bin/pushctl send' "$out" | head -n 1 | sed 's/^ *//')
check '[ -n "$cmd" ]' "it prints a pushctl command"
reply=$(eval "$cmd" 2>&1)
check 'echo "$reply" | grep -q "\"code\": 1"' "the printed command is answered Success: $reply"
i=0
while ! grep -q '"provider":"apns"' "$dir/var/log/mock-requests.jsonl" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
check 'grep "\"provider\":\"apns\"" "$dir/var/log/mock-requests.jsonl" | grep -q "\"status\":200"' "the mock provider recorded the APNs request"
check '[ -s "$dir/var/log/router/current" ]' "the router has its own log (svlogd)"
# One time stamp per line (docs/operations.md, "Logs"): the daemon's own, svlogd adds none.
check 'head -n 1 "$dir/var/log/router/current" | grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z (debug|info|warn|error) router\["' "the router's svlogd lines carry exactly one time stamp: $(head -n 1 "$dir/var/log/router/current")"
if [ "$fail" != 0 ]; then
	for f in "$dir"/var/log/*/current; do echo "--- $f"; tail -n 15 "$f"; done
fi
kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
# Nothing of this run may be left: wait until two looks half a second apart find nothing (up to
# 60 s: under LeakSanitizer the router's exit scan of its LMDB map takes a while).
i=0 quiet=0
while [ $quiet -lt 2 ] && [ $i -lt 120 ]; do
	if pgrep -f "$dir/var" >/dev/null; then quiet=0; else quiet=$((quiet + 1)); fi
	sleep 0.5
	i=$((i + 1))
done
left=$(pgrep -fa "$dir/var")
check '[ -z "$left" ]' "stopping leaves nothing running $left"
pkill -f "$dir/var" 2>/dev/null
rm -rf "$dir"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
