#!/bin/sh
# make bench: runs the benchmarks on this machine and rewrites docs/benchmarks.md with the
# numbers of this run. Each result is a ratio against a baseline measured in the same run.
# Loopback only; bounded in time and size.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d)
trap 'pkill -f "$dir/" 2>/dev/null; rm -rf "$dir"' EXIT
http=$(port)
scripts/mkconfig.sh "$dir" "$http" "$(port)" "$(port)"
sed -i 's/"log_level": "info"/"log_level": "warn"/' "$dir/pushpipe.json"
for d in statsd router ingress-onion; do bin/$d -c "$dir/pushpipe.json" 2>>"$dir/$d.log" & done
sleep 0.5
id=bd$(printf '1%.0s' $(seq 64))
bin/pushctl send -u "http://127.0.0.1:$http" -K "$dir/keys/server.pub" register token=$(printf 'ab%.0s' $(seq 32)) pubKey=$id >/dev/null
ing=$(pgrep -f "ingress-onion -c $dir/pushpipe.json")
# Five runs against the same pipeline, each followed by a run against bench/floor_server (the
# least an onion server must do per request; started once, idle while the ingress runs), so that
# a busy moment of the machine falls on both alike. Each run measures X25519 too; every ratio is
# taken against the best of all the baselines (a busy moment during one baseline must not flatter
# its run), and the run with the median ratio is reported.
fport=$(port)
load_avg=$(cut -d' ' -f1-3 /proc/loadavg)
bin/floor_server -p "$fport" -k "$dir/keys/server.key" &
fpid=$!
sleep 0.3
runs="" floor_runs=""
for r in 1 2 3 4 5; do
	one=$(bin/onion_load -p "$http" -k "$dir/keys/server.pub" -i "$ing" -n "${BENCH_ONION_N:-60000}" -c 32 -t "$id")
	echo "onion run $r: $one"
	runs="$runs$one
"
	one=$(bin/onion_load -p "$fport" -k "$dir/keys/server.pub" -i "$fpid" -n "${BENCH_ONION_N:-60000}" -c 32 -t "$id")
	echo "floor run $r: $one"
	floor_runs="$floor_runs$one
"
done
kill "$fpid"
field() { tr ' ' '\n' | sed -n "/^$1\$/{n;p}"; }
best_x=$(printf '%s%s' "$runs" "$floor_runs" | while read -r l; do echo "$l" | field x25519_per_core_per_s; done |
	sort -n | tail -n 1)
# Prefixes each run with its ratio against best_x.
rated() {
	printf '%s' "$1" | while read -r l; do
		per=$(echo "$l" | field per_ingress_core_per_s)
		echo "$(awk -v a="$per" -v b="$best_x" 'BEGIN{printf "%.3f", a / b}') $l"
	done
}
runs=$(rated "$runs")
floor_runs=$(rated "$floor_runs")
onion=$(printf '%s\n' "$runs" | sort -n | sed -n 3p)
onion_ratios=$(printf '%s\n' "$runs" | cut -d' ' -f1 | tr '\n' ' ')
onion_ratio=${onion%% *}
onion=${onion#* }
floor=$(printf '%s\n' "$floor_runs" | sort -n | sed -n 3p)
floor_ratios=$(printf '%s\n' "$floor_runs" | cut -d' ' -f1 | tr '\n' ' ')
floor_ratio=${floor%% *}
floor=${floor#* }
echo "onion: ratio $onion_ratio (floor $floor_ratio) against the best X25519 baseline $best_x; $onion"
val() { echo "$onion" | field "$1"; }
fval() { echo "$floor" | field "$1"; }
cat > docs/benchmarks.md <<MD
# Benchmarks

Written by \`make bench\` ($(date -u +%Y-%m-%d), $(nproc) cores). Every figure is a ratio against a
baseline measured in the same run on the same machine; absolute numbers are given for context.

## Onion ingress vs raw X25519 (issue target: ≥ 0.7)

\`bench/onion_load\` pre-builds $(val requests) \`notify\` requests, each with its **own** ephemeral
X25519 key (so every request costs the server one key agreement), replays them over 32
keep-alive connections to a running ingress-onion (router and statsd running, one iOS token
registered, so each notify is durably committed as a job), and measures the ingress process's CPU
time from /proc. The baseline is libsodium's \`crypto_scalarmult\` on one core, measured in each
run (the best of four half-second runs); every run's ratio is taken against the best baseline of
the five runs, so a busy moment cannot lower the baseline and flatter a run (a busy moment during
a run lowers that run's ratio instead). The table shows the run with the median ratio (the five
ratios, in run order: $onion_ratios). The kernel row is the ingress's system
time: on loopback its replies' \`send()\` also runs the client's TCP receive and wake-up, which a
remote client's machine would do; a request costs at least one \`recv()\` and one \`send()\`.

| measure | value |
|---|---|
| accepted notifies per second (wall clock, whole pipeline on $(nproc) cores) | $(val rate_per_s) |
| ingress CPU seconds | $(val ingress_cpu_s) |
| accepted notifies per ingress CPU second | $(val per_ingress_core_per_s) |
| raw X25519 operations per second, one core (best of the five runs) | $best_x |
| **ratio** | **$onion_ratio** |
| ingress CPU per notify / of it in the kernel / one X25519 (µs) | $(val ingress_us_per_notify) / $(val ingress_sys_us_per_notify) / $(awk -v b="$best_x" 'BEGIN{printf "%.1f", 1e6 / b}') |
| ack latency p50 / p99 (ms) | $(val p50_ms) / $(val p99_ms) |
| target ≥ 0.7 met | $(echo "$onion_ratio" | awk '{print ($1 >= 0.7) ? "yes" : "**no**"}') |

**The floor on this machine.** \`bench/floor_server\` does the least an onion server must do per
request and nothing else: it reads the request from a keep-alive connection, opens the body as
ingress-onion does (framing, trailer, one X25519, the key derivation, AES-GCM) and sends the
sealed \`Success\` reply — one \`recv()\`, one X25519, one \`send()\`. No HTTP validation, no
inner JSON, no router, no durable commit. Measured the same way, each of its five runs right
after an ingress run (the five ratios: $floor_ratios):

| measure | value |
|---|---|
| requests per CPU second of the floor server | $(fval per_ingress_core_per_s) |
| **floor ratio** (what a server doing only this reaches here) | **$floor_ratio** |
| its CPU per request / of it in the kernel (µs) | $(fval ingress_us_per_notify) / $(fval ingress_sys_us_per_notify) |
| ingress-onion's ratio as a share of the floor's | $(awk -v a="$onion_ratio" -v b="$floor_ratio" 'BEGIN{printf "%.2f", a / b}') |

ingress-onion (libmicrohttpd) ÷ floor: $(awk -v a="$onion_ratio" -v b="$floor_ratio" 'BEGIN{printf "%.2f", a / b}')

Target ≥ 0.75 (issue "one house" §5): $(awk -v a="$onion_ratio" -v b="$floor_ratio" 'BEGIN{print (a / b >= 0.75) ? "met" : "**not met**"}'). The load average when this
section was measured: $load_avg (the machine's other work lowers both servers' ratios, not
always alike).
MD

# Registry and router: 1 M registrations (FCM-length tokens) in a fresh registry, lookups against
# raw mdb_get, then a router started on that registry for the group-commit rate and its RSS.
nreg=${BENCH_REGISTRATIONS:-1000000}
reg=$(bin/registry_bench "$dir/big" "$nreg")
echo "registry: $reg"
rv() { echo "$reg" | tr ' ' '\n' | sed -n "/^$1\$/{n;p}"; }
mkdir -p "$dir/big-run"
sed -e "s|\"db_path\": \"$dir/db/registry\"|\"db_path\": \"$dir/big\"|" -e "s|\"state_dir\": \"$dir/run\"|\"state_dir\": \"$dir/big-run\"|" \
    "$dir/pushpipe.json" > "$dir/big.json"
bin/router -c "$dir/big.json" 2>>"$dir/router-big.log" &
rpid=$!
sleep 1
load=$(bin/router_load "$dir/big-run/router.sock" "$(rv sample_id)" "${BENCH_ROUTER_N:-30000}" 256)
echo "router: $load"
lv() { echo "$load" | tr ' ' '\n' | sed -n "/^$1\$/{n;p}"; }
rss_kb=$(awk '/^VmRSS/{print $2}' /proc/$rpid/status)
anon_kb=$(awk '/^RssAnon/{print $2}' /proc/$rpid/status)
kill $rpid
cat >> docs/benchmarks.md <<MD

## Router registry (issue targets: lookups ≥ 0.5 × raw \`mdb_get\`; ≤ 2 × the id and token bytes)

\`bench/registry_bench\` fills a fresh registry with $(rv registrations) registrations (66-character
Bchat ids, 163-byte FCM-style tokens, 10 000 per commit), then resolves $(rv lookups) ids in a
scattered order through \`registry_resolve()\` (decode the id, read the record, walk its tokens)
and through raw \`mdb_get()\` of the same keys in the same database, same run, warm cache.

| measure | value |
|---|---|
| recipient lookups per second (\`registry_resolve\`) | $(rv registry_lookups_per_s) |
| raw \`mdb_get\` per second, same keys | $(rv raw_mdb_get_per_s) |
| **lookup ratio** (target ≥ 0.5) | **$(rv lookup_ratio)** |
| bytes in the registry's B-trees per registration | $(rv bytes_per_registration) |
| bytes of the id and token themselves | $(rv raw_id_token_bytes) |
| **bytes ratio** (target ≤ 2) | **$(rv bytes_ratio)** |
| file size per registration (includes free pages LMDB reuses) | $(rv file_bytes_per_registration) |
| router RSS with this registry open, after the load below (of which anonymous) | $(awk "BEGIN{printf \"%.1f MB (%.1f MB)\", $rss_kb/1024, $anon_kb/1024}") |

The router's resident size is mostly LMDB pages mapped from the file (shared, evictable page
cache); its anonymous memory is what the process itself allocates.

## Router group commit

\`bench/router_load\` keeps 256 notifies in flight to a router running on the registry above
and counts acknowledgements (each one durably committed before its reply). The baseline is one
registration per transaction, one fsync each, on the same file system in the same run.

| measure | value |
|---|---|
| acknowledged notifies per second (group commit) | $(lv acked_per_s) |
| durable single commits per second | $(rv single_commits_per_s) |
| ratio | $(echo "$(lv acked_per_s) $(rv single_commits_per_s)" | awk '{printf "%.1f", $1 / $2}') |
MD

# The whole pipeline end to end, and the sender against h2load (each in its own pipeline).
e2e=$(/usr/bin/python3 bench/e2e.py)
echo "e2e: $e2e"
ev() { echo "$e2e" | tr ' ' '\n' | sed -n "/^$1\$/{n;p}"; }
snd=$(/usr/bin/python3 bench/sender_h2load.py)
echo "sender: $snd"
sv() { echo "$snd" | tr ' ' '\n' | sed -n "/^$1\$/{n;p}"; }
# libcurl's HTTP/2 resets, and wns-sender on libcurl: pick PAIRS NAME reads one value.
pick() { echo "$1" | tr ' ' '\n' | sed -n "/^$2\$/{n;p}"; }
crl=$(/usr/bin/python3 bench/curl_resets.py); echo "libcurl: $crl"
wsn=$(/usr/bin/python3 bench/wns_sender.py); echo "wns-sender: $wsn"
cv() { pick "$crl" "$1"; }
wv() { pick "$wsn" "$1"; }
cat >> docs/benchmarks.md <<MD

## End to end: onion notify → mock provider (issue targets: ≥ 12 000/s; p99 ≤ 20 ms at half load)

\`bench/e2e.py\` runs the whole pipeline (all eight daemons and the mock provider, all on this machine's $(nproc) cores), registers one iOS token and sends
$(ev e2e_notifies) notifies through \`bench/onion_load\` (32 connections, a fresh X25519 key per
request), three times; the table shows the run with the median rate (the three rates:
$(ev e2e_runs_per_s) /s). The rate counts notifies that reached the mock, from the first request
to the last delivery. Latency: $(ev lat_matched) notifies paced at $(ev lat_rate_per_s)/s, each with its own data,
matched at the mock; from the moment the client sent the request to the moment the mock received
the push (wall clock, both on this machine).

| measure | value |
|---|---|
| notifies delivered per second, end to end (median run) | $(ev e2e_rate_per_s) |
| notifies acknowledged per second by the ingress (same run) | $(ev e2e_ack_rate_per_s) |
| CPU seconds in that run of $(ev cpu_wall_s) s: ingress-onion / router / apns-sender / statsd / mock provider | $(ev cpu_ingress_onion) / $(ev cpu_router) / $(ev cpu_apns_sender) / $(ev cpu_statsd) / $(ev cpu_mock_provider) |
| provider requests for $(ev e2e_notifies) notifies (more when a lost answer made the sender resend) | $(ev e2e_provider_requests) |
| legacy server's push loop (fixed cap, for comparison) | 600 |
| ratio to the legacy cap | $(echo "$(ev e2e_rate_per_s)" | awk '{printf "%.1f", $1 / 600}') |
| request → provider p50 / p99 at $(ev lat_rate_per_s)/s (ms) | $(ev lat_p50_ms) / $(ev lat_p99_ms) |
| target ≥ 12 000/s met | $(echo "$(ev e2e_rate_per_s)" | awk '{print ($1 >= 12000) ? "yes" : "**no**"}') |
| target p99 ≤ 20 ms at $(ev lat_rate_per_s)/s met | $(echo "$(ev lat_p99_ms)" | awk '{print ($1 <= 20) ? "yes" : "**no**"}') |

## Idle memory of the whole pipeline (issue target: ≤ 20 MB; gorush: 28 MB)

All $(ev idle_daemons) daemons started, one registration made, then idle for 2 s; and again idle after the
load above (allocators keep some of what the peak needed). Each process's resident set counts
the shared libraries (libc, OpenSSL, …) again; the footprint counts each process's private
pages once and each shared page once, which is what the pipeline occupies.
\`BENCH_E2E_IDLE_ONLY=1 python3 bench/e2e.py\` measures the idle figure alone.

| measure | value |
|---|---|
| resident set, summed over the daemons | $(ev idle_rss_sum_kb) KiB |
| footprint (private + shared pages once) | $(ev idle_footprint_kb) KiB |
| target ≤ 20 MB met (footprint) | $(echo "$(ev idle_footprint_kb)" | awk '{print ($1 <= 20480) ? "yes" : "**no**"}') |
| after the load: resident set summed / footprint | $(ev after_rss_sum_kb) / $(ev after_footprint_kb) KiB |

Where it goes (measured 2026-12-07 with \`BENCH_E2E_IDLE_ONLY=1\`, 9 daemons, ~23.6 MB): every
daemon pays ~1 MB of its own, mostly libraries it cannot do without — libcrypto's relocated
read-only data (~390 KiB a process: every daemon maps OpenSSL, itself or through libnats),
OpenSSL's start-up and TLS context allocations (~370 KiB in each TLS client or server), its
own code (~150 KiB); wns-sender costs 3.7 MB, 2.1 MB of it libcurl and the 27 libraries it
brings (Kerberos, LDAP, SSH, RTMP, …; docs/senders.md says why WNS is on libcurl); GnuTLS and
its libraries (~2.8 MB together) are mapped because Debian's libmicrohttpd links them (and
libcurl's LDAP and RTMP in wns-sender), although neither statsd nor ingress-onion serves TLS; libnats and protobuf-c ~0.4 MB. Allocator knobs
change nothing worth having: \`malloc_trim(0)\` in every idle daemon gave back 64 KiB (the heaps
are live OpenSSL state, not freed memory), one malloc arena (\`glibc.malloc.arena_max=1\`) saves
~120 KiB in ingress-onion, the only daemon with threads, at the cost of its workers contending
for one arena. What would meet the target: wns-sender on the senders' own HTTP client
(common/sender/provider_http*.c, HTTP/2 and HTTP/1.1) instead of libcurl, a libmicrohttpd built without HTTPS, or libnats loaded only in cluster mode. Not
counted here (the bench gives every sender the mock's CA file): a sender on the system trust
store loads the whole CA bundle at start (\`SSL_CTX_set_default_verify_paths\`, ~0.9 MB of heap
in each of apns-, fcm- and hms-sender).

## apns-sender vs h2load (issue target: ≥ 0.8)

\`bench/sender_h2load.py\`: \`bench/sender_feed\` plays the router for one apns-sender (1000 jobs in
flight; the sender uses 2 connections of up to 500 streams) into the mock provider; then h2load
replays the request the sender made (same path, headers, ES256 provider token and body) with
the same 2 connections × 500 streams against the same mock. Each side runs $(sv requests_per_round)
requests a round, connection set-up included; the two alternate for $(sv rounds) rounds, and the
ratio is the median of the rounds' ratios. The cores row (last round) shows what limits the
sender's rate: a figure near 1.00 is a saturated core (the sender is one thread, and so is the mock).

| measure | value |
|---|---|
| apns-sender deliveries per second, each round | $(sv sender_per_s) |
| h2load requests per second, each round (2xx in every round: $(sv h2load_2xx) of $(sv requests_per_round); provider token accepted: $(sv h2load_auth_ok)) | $(sv h2load_per_s) |
| ratio, each round | $(sv round_ratios) |
| **ratio (median)** | **$(sv ratio)** |
| target ≥ 0.8 met | $(echo "$(sv ratio)" | awk '{print ($1 >= 0.8) ? "yes" : "**no**"}') |
| cores busy while the sender ran: apns-sender / sender_feed / mock provider | $(sv cpu_sender) / $(sv cpu_feed) / $(sv cpu_mock) |
| apns-sender resident / anonymous memory after the run | $(sv sender_rss_kb) / $(sv sender_anon_kb) KiB |

## libcurl's HTTP/2 resets (why apns-sender and fcm-sender stay on nghttp2)

\`bench/curl_resets.py\`: \`bench/curl_resets\` POSTs $(cv curl_requests) requests, 100 at a time,
through libcurl $(cv curl_libcurl)'s multi interface over one HTTP/2 connection at a time
(\`CURLMOPT_MAX_HOST_CONNECTIONS\` 1, \`CURLOPT_PIPEWAIT\`) to the mock provider, whose nghttp2
answers a flood of RST_STREAMs with GOAWAY (the CVE-2023-44487 defence APNs and FCM front ends
have too). A libcurl that resets every finished stream needs a new connection every thousand or
so requests and sends again what a GOAWAY cut off; one connection and exactly
$(cv curl_requests) requests at the mock would mean Debian's libcurl is fixed (docs/senders.md).

| measure | value |
|---|---|
| answered / failed (the first failure's error) | $(cv curl_answered) / $(cv curl_failed) ($(cv curl_first_error | tr _ ' ')) |
| connections libcurl opened | $(cv curl_connections) |
| requests the mock received (more than sent: sent twice after a GOAWAY) | $(cv curl_mock_received) |
| defect | $(cv curl_defect) |

## wns-sender on libcurl

\`bench/wns_sender.py\`: \`bench/sender_feed\` plays the router for one wns-sender (200 jobs in
flight: 2 connections of up to 100 streams, the defaults) into the mock provider, $(wv wns_requests_per_round) jobs a round,
$(wv wns_rounds) rounds, a fresh sender each (token request and connection set-up counted). WNS carries
UWPX wake-ups, far fewer than these rates; the figures are here so that a change of libcurl or
of \`wns-sender/curl_http.c\` shows (docs/senders.md has the one comparison with the former
hand-written client).

| measure | value |
|---|---|
| deliveries per second, each round | $(wv wns_per_s) |
| cores the sender kept busy, each round | $(wv wns_cores) |
| resident memory after the last round | $(wv wns_rss_kb) KiB |
| idle (2 s after start): resident / private | $(wv wns_idle_rss_kb) / $(wv wns_idle_private_kb) KiB |
MD
echo "docs/benchmarks.md written"
# Cluster mode: the bus alone and the pipeline on it (appends its own section).
bench/cluster.sh
