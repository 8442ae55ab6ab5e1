#!/usr/bin/env bash
# Measures the gateway against a direct call to the same fast mock upstream, in the same
# run, on this machine: added latency at 1 connection, throughput at 64 connections,
# time to first token when streaming, memory idle and with 64 open streams, and start
# time. Installs wrk, builds release binaries (headless), prints a Markdown report.
#   scripts/bench.sh [seconds per wrk run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
scripts/install-deps.sh build
command -v wrk >/dev/null || { sudo_cmd=(); [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo); "${sudo_cmd[@]}" apt-get install -y -qq wrk >/dev/null; }
cargo build --release --locked --no-default-features --bin protogate --example bench_upstream --example bench_client 2>&1 | tail -1

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
bin=target/release/protogate
client=target/release/examples/bench_client

target/release/examples/bench_upstream 0 > "$work/upstream.port" &
pids+=($!)
sleep 0.3
up=$(cat "$work/upstream.port")
cat > "$work/settings.json" <<JSON
{
  "port": 0,
  "default_provider": "bench",
  "providers": [{"id": "bench", "kind": "openai", "base_url": "http://127.0.0.1:$up/v1", "default_model": "bench"}],
  "limits": {"requests_per_minute": 4000000000, "burst": 4000000000, "max_concurrent_streams": 4096},
  "log": {"dir": "$work/logs"}
}
JSON
PROTOGATE_SECRET_BENCH=sk-bench-not-a-secret "$bin" serve --no-https --config "$work/settings.json" > "$work/gateway.out" 2>/dev/null &
gw_pid=$!
pids+=($gw_pid)
for _ in $(seq 50); do grep -q listening "$work/gateway.out" 2>/dev/null && break; sleep 0.1; done
gw=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/gateway.out")
direct="http://127.0.0.1:$up"
sleep 0.5
rss_idle=$(awk '/VmRSS/ {print $2}' /proc/$gw_pid/status)

# wrk prints "50%  123.00us"; convert to microseconds.
to_us() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v*1000} else {sub(/s$/,"",v); print v*1000000}}'; }
run_wrk() { # url connections threads -> "p50_us p99_us rps"
  local out; out=$(wrk -t"$3" -c"$2" -d"${secs}s" --latency -s scripts/bench/post.lua "$1/v1/chat/completions")
  local p50 p99 rps
  p50=$(echo "$out" | awk '$1=="50%" {print $2}' | to_us)
  p99=$(echo "$out" | awk '$1=="99%" {print $2}' | to_us)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  echo "$p50 $p99 $rps"
}
read -r d1_p50 d1_p99 _ <<< "$(run_wrk "$direct" 1 1)"
read -r g1_p50 g1_p99 _ <<< "$(run_wrk "$gw" 1 1)"
read -r _ _ d64_rps <<< "$(run_wrk "$direct" 64 2)"
read -r _ _ g64_rps <<< "$(run_wrk "$gw" 64 2)"
read -r dt_p50 dt_p99 <<< "$("$client" ttft "$direct" 500)"
read -r gt_p50 gt_p99 <<< "$("$client" ttft "$gw" 500)"
read -r rq_p50 _ <<< "$("$client" sequential "$direct" 2000)"
rss_64=$("$client" streams "$gw" 64 "$gw_pid")
start_ms=$("$client" startup "$bin" "$work/settings.json" 20)

calc() { awk "BEGIN {printf \"%.3f\", $1}"; }
cat <<REPORT
## Protogate benchmark ($(date -u +%Y-%m-%d), $(nproc) cores; client, mock upstream and gateway on one machine)

| measure | direct | through Protogate | Protogate adds / ratio | target |
| --- | --- | --- | --- | --- |
| latency, 1 connection, median | $(calc "$d1_p50/1000") ms | $(calc "$g1_p50/1000") ms | +$(calc "($g1_p50-$d1_p50)/1000") ms | < 0.1 ms |
| latency, 1 connection, p99 | $(calc "$d1_p99/1000") ms | $(calc "$g1_p99/1000") ms | +$(calc "($g1_p99-$d1_p99)/1000") ms | < 0.5 ms |
| throughput, 64 connections | $d64_rps req/s | $g64_rps req/s | $(calc "100*$g64_rps/$d64_rps") % of direct | ≥ 40 % |
| time to first token (stream), median | $(calc "$dt_p50/1000") ms | $(calc "$gt_p50/1000") ms | +$(calc "($gt_p50-$dt_p50)/1000") ms | < 0.2 ms |
| time to first token (stream), p99 | $(calc "$dt_p99/1000") ms | $(calc "$gt_p99/1000") ms | +$(calc "($gt_p99-$dt_p99)/1000") ms | |
| for reference: reqwest alone → upstream, median | $(calc "$d1_p50/1000") ms (wrk) | $(calc "$rq_p50/1000") ms | +$(calc "($rq_p50-$d1_p50)/1000") ms | (the gateway's own upstream client) |
| resident memory, idle | | $(calc "$rss_idle/1024") MB | | < 20 MB |
| resident memory, 64 open streams | | $(calc "$rss_64/1024") MB | | < 60 MB |
| start to listening, median | | $start_ms ms | | < 100 ms |
REPORT
