#!/bin/sh
# run-cluster.sh: the pipeline in cluster mode on this one machine (docs/cluster.md, "Operating a
# cluster"): three nats-server nodes clustered on 127.0.0.1 with JetStream, two onion ingresses
# sharing one server key, ingress-uwpx, ingress-xmpp, two routers each with its own database, two
# instances of each sender, statsd and the mock provider, all under runit in var/cluster/. Every
# daemon has its own configuration file (conf/<name>.json) with a "cluster" section and its own
# NATS user (nats/<user>.cred, from deploy/nats/permissions.json). Stays in the foreground;
# Ctrl-C stops everything it started. Re-runnable: keys, passwords, streams and registries are
# kept in var/cluster/.
# Ports (environment): HTTP_PORT and HTTP2_PORT (the two onion ingresses), MOCK_PORT, STATS_PORT,
# UWPX_PORT, XMPP_PORT as for make run; NATS_PORTS, NATS_CLUSTER_PORTS, NATS_HTTP_PORTS: the three
# nodes' client, route and monitoring ports, comma-separated.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
var=${PUSHPIPE_VAR:-$top/var}
mkdir -p "$var/cluster"
var=$(cd "$var/cluster" && pwd)
shown=${var#"$top"/}
HTTP_PORT=${HTTP_PORT:-5000} HTTP2_PORT=${HTTP2_PORT:-5001} MOCK_PORT=${MOCK_PORT:-5443} STATS_PORT=${STATS_PORT:-5080}
UWPX_PORT=${UWPX_PORT:-1997} XMPP_PORT=${XMPP_PORT:-5347}
NATS_PORTS=${NATS_PORTS:-4311,4312,4313} NATS_CLUSTER_PORTS=${NATS_CLUSTER_PORTS:-6311,6312,6313}
NATS_HTTP_PORTS=${NATS_HTTP_PORTS:-8311,8312,8313}

. "$top/scripts/runit-common.sh"
stop_previous
"$top/scripts/mkconfig.sh" "$var" "$HTTP_PORT" "$MOCK_PORT" "$STATS_PORT" "$UWPX_PORT" "$XMPP_PORT"
"$top/scripts/mknats.py" "$var/nats" "$top/deploy/nats/permissions.json" "$NATS_PORTS" "$NATS_CLUSTER_PORTS" "$NATS_HTTP_PORTS"
"$top/scripts/mkcluster.py" "$var" "$HTTP_PORT" "$HTTP2_PORT" "$NATS_PORTS" > /dev/null
rm -rf "$var/service"
mkdir -p "$var/service"

SVLOGD_OPTS="-tt "
for n in 1 2 3; do service nats-$n "nats-server -c $var/nats/nats-$n.conf"; done
mock_service
c=$var/conf
service statsd "$top/bin/statsd -c $c/statsd.json"
for n in 1 2; do
	service router-$n "$top/bin/router -c $c/router-$n.json"
	service ingress-onion-$n "$top/bin/ingress-onion -c $c/ingress-onion-$n.json -i $n" # -i: one instance lock each
	for p in apns fcm wns; do service $p-sender-$n "$top/bin/$p-sender -c $c/$p-sender-$n.json -i $n"; done
done
service ingress-uwpx "$top/bin/ingress-uwpx -c $c/ingress-uwpx.json"
service ingress-xmpp "$top/bin/ingress-xmpp -c $c/ingress-xmpp.json" # waits for an XMPP server on $XMPP_PORT

start_runit "the pushpipe cluster"

# The bus first: every node answers and JetStream has elected its meta leader (up to 30 s).
first_http=${NATS_HTTP_PORTS%%,*}
i=0
until curl -s "http://127.0.0.1:$first_http/jsz" 2>/dev/null | grep -q '"leader"' || [ $i -ge 300 ]; do sleep 0.1; i=$((i + 1)); done
jsleader=$(curl -s "http://127.0.0.1:$first_http/jsz" 2>/dev/null | sed -n 's/.*"leader": *"\([^"]*\)".*/\1/p' | head -n 1)
register_demo 150 75
if echo "$demo" | grep -q '"code": 1'; then
	demo="registered through ingress-onion-1: $demo"
else
	demo="NOT registered (the cluster is not ready: see $shown/log/router-1/current): $demo"
fi
cat <<MSG

pushpipe runs as a cluster under runit (service directories in $shown/service).
  NATS:         nats://127.0.0.1:{$NATS_PORTS} (nats-1..nats-3, cluster "pushpipe", JetStream meta leader: ${jsleader:-none yet})
                monitoring http://127.0.0.1:{$NATS_HTTP_PORTS}/jsz?streams=true&consumers=true, stores $shown/nats/store-N
                users and passwords: $shown/nats/<user>.cred (USER:PASSWORD, mode 0600)
  ingress:      http://127.0.0.1:$HTTP_PORT (ingress-onion-1) and http://127.0.0.1:$HTTP2_PORT (ingress-onion-2), one server key
  UWPX:         TLS 127.0.0.1:$UWPX_PORT
  XMPP:         component push.localhost, connecting to an XMPP server at 127.0.0.1:$XMPP_PORT
  routers:      router-1, router-2 (databases $shown/db/router-1, $shown/db/router-2)
  senders:      apns-sender-1/2, fcm-sender-1/2, wns-sender-1/2, hms-sender-1/2 -> mock provider https://127.0.0.1:$MOCK_PORT
  metrics:      http://127.0.0.1:$STATS_PORT/metrics, status page http://127.0.0.1:$STATS_PORT/
  server key:   $(cat "$var/keys/server.pub")   ($shown/keys/server.pub)
  logs:         $shown/log/<name>/current   (mock provider requests: $shown/log/mock-requests.jsonl)
  config:       $shown/conf/<name>.json (one per daemon), $shown/nats/nats-N.conf

A demo iOS device ($id, APNs token $token) is $demo
Notify it through the other ingress (the mock provider records the APNs request in $shown/log/mock-requests.jsonl):
  bin/pushctl send -u http://127.0.0.1:$HTTP2_PORT -K $shown/keys/server.pub notify send_to=$id data=aGVsbG8gZnJvbSBwdXNocGlwZQ==

Ctrl-C stops everything.
MSG
wait
