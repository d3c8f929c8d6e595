#!/bin/sh
# bench/cluster.sh: the cluster part of make bench (bench/cluster.py), run by bench/run.sh after
# the single-machine benchmarks, or alone. Replaces the "## Cluster mode" section at the end of
# docs/benchmarks.md with the numbers of this run.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
load_before=$(cut -d' ' -f1 /proc/loadavg)
out=$(/usr/bin/python3 bench/cluster.py)
echo "cluster: $out"
cv() { echo "$out" | tr ' ' '\n' | sed -n "/^$1\$/{n;p}"; }
[ -f docs/benchmarks.md ] || echo "# Benchmarks" > docs/benchmarks.md
sed -i '/^## Cluster mode/,$d' docs/benchmarks.md
kept=$(cat docs/benchmarks.md)
printf '%s\n\n' "$kept" > docs/benchmarks.md
cat >> docs/benchmarks.md <<MD
## Cluster mode (issue target: cluster pipeline ≥ 0.6 × the bus's rate)

Measured by \`bench/cluster.sh\` ($(date -u +%Y-%m-%d), $(nproc) cores, load average $load_before at the start), everything on this one
machine: \`make run-cluster\` on free ports (three nats-server 2.9 nodes with JetStream, two
onion ingresses, two routers, two of each sender, statsd, the mock provider). The baseline is
the bus itself, measured on the same three nodes in the same run by \`bench/nats_bench\`
(libnats): $(cv bus_messages) messages of 200 bytes published asynchronously to a fresh R3
work-queue stream, each with its own \`Nats-Msg-Id\`, then fetched (batch 512) and acknowledged by
one durable pull consumer; then both at once, which is the rate a message is stored and taken
once. Cluster end to end: $(cv cluster_notifies) notifies sent by two \`bench/onion_load\` runs at
once, one per ingress (16 connections each, a fresh X25519 key per request), counted when they
reach the mock provider, from the first request to the last delivery. Single-machine end to
end: the same, in the same run, through the single-machine pipeline (Unix sockets, one ingress,
32 connections). A notify crosses the bus twice (request to a router, job to a sender), but
not in a message of its own: an ingress gathers the notifies that arrive while its previous
request message waits for its PubAck into one message, and a router puts the jobs of a round
into one message per (platform, app) (docs/cluster.md, "Batching").

| measure | value |
|---|---|
| bus: async publishes acknowledged per second (R3) | $(cv bus_publish_per_s) |
| bus: fetch + ack per second | $(cv bus_fetch_ack_per_s) |
| **bus: publish and fetch + ack at once, messages per second** (baseline) | **$(cv bus_bus_per_s)** |
| cluster: notifies delivered per second, end to end (acknowledged / delivered) | $(cv cluster_e2e_per_s) ($(cv cluster_acked) / $(cv cluster_delivered)) |
| single machine: notifies delivered per second, same run (acknowledged / delivered) | $(cv single_e2e_per_s) ($(cv single_acked) / $(cv single_delivered)) |
| CPU seconds during the cluster run of $(cv cluster_cpu_wall_s) s (delivery wait included): nats-server ×3 / ingress-onion ×2 / router ×2 / apns-sender ×2 / statsd / mock provider | $(cv cluster_cpu_nats) / $(cv cluster_cpu_ingress_onion) / $(cv cluster_cpu_router) / $(cv cluster_cpu_apns_sender) / $(cv cluster_cpu_statsd) / $(cv cluster_cpu_mock_provider) |
| nats-server CPU (three servers summed) per message of the baseline / per notify of the cluster run (µs) | $(cv bus_nats_cpu_us_per_msg) / $(cv cluster_nats_cpu_us_per_notify) |
| messages the servers received (clients and routes, \`/varz\` \`in_msgs\` of the three summed) per message of the baseline / per notify of the cluster run | $(cv bus_nats_msgs_per_msg) / $(cv cluster_nats_msgs_per_notify) |
| replicated messages stored per notify: requests (\`PP_REQ\`) / jobs (\`PP_JOBS\`) | $(cv cluster_req_msgs_per_notify) / $(cv cluster_jobs_msgs_per_notify) |
| **cluster / bus** (target ≥ 0.6) | **$(cv cluster_to_bus_ratio)** |
| cluster / single machine | $(cv cluster_to_single_ratio) |
| target ≥ 0.6 met | $(echo "$(cv cluster_to_bus_ratio)" | awk '{print ($1 != "n/a" && $1 >= 0.6) ? "yes" : "**no**"}') |

How to read it: the baseline counts one message stored (R3) and taken once; a notify is stored
twice, as its share of a request message and of a job message, so its server cost is the cost of
those shares plus what each round adds (a router's read-your-writes \`STREAM.INFO\`, its job
messages' PubAcks, the acks, one per message; a pull request serves many rounds, docs/cluster.md
"Pulling"). The stored messages per notify (the row above) show
how much the batching shares: with one request message in flight per ingress, about half of
its 16 closed-loop connections wait in each batch, so a request message carries about 8
notifies. The servers' CPU per notify falls less than their messages: on this virtual machine
about half of nats-server's CPU is the kernel switching tasks, so a message of a
latency-bound exchange (a PubAck, a pull, an ack, a Raft append) costs the servers several
times a message of the baseline's bulk publishing. The rest of a notify's cost is the
pipeline's own work on the same two cores (the ingress's X25519 and HTTP, the load generators,
the router's registry lookup, the mock provider).
End-to-end rates on this shared 2-core machine vary by a factor of two between runs with the
other work on it (\`bench/cluster.sh\` prints the load it ran under), so compare runs made back
to back.
MD
echo "docs/benchmarks.md: cluster section written"
