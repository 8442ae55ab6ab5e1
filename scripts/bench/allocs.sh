#!/usr/bin/env bash
# Heap allocations per forwarded request, counted rather than timed: unlike a timing it
# does not move with the machine, so it shows a small change to the hot path for sure.
# By hand, as root (uprobes); not part of CI. Builds an unstripped release binary under
# target/symbols/, forwards one connection's requests (wrk -c1, non-streaming) to the
# mock upstream, counts calls into the allocator with a uprobe, and divides by the
# requests served. With --callers, also lists where the allocations come from.
#   scripts/bench/allocs.sh [--callers]
set -euo pipefail
cd "$(dirname "$0")/../.."
callers=0
[[ "${1:-}" == --callers ]] && callers=1
command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
source scripts/bench/counted.sh
trap 'kill $(jobs -p) 2>/dev/null || true; perf probe -q -d "probe_protogate:*" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(free_port)
PROTOGATE_SECRET_BENCH=sk-bench-not-a-secret "$bin/protogate" serve --no-https --port "$port" \
  --config "$work/settings.json" > "$work/protogate.log" 2>&1 &
pid=$!
until curl -fs "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.1; done
url=http://127.0.0.1:$port/v1/chat/completions
wrk -t1 -c1 -d2s -s scripts/bench/post.lua "$url" >/dev/null # warm: pools, caches
# Plain calls for the usual alignments, aligned ones for stricter (src-tauri/allocator.rs);
# a call the build inlined or never makes has nothing to probe.
events=
for call in mi_malloc mi_zalloc mi_realloc mi_malloc_aligned mi_zalloc_aligned mi_realloc_aligned; do
  perf probe -q -x "$bin/protogate" -a "$call" 2>/dev/null && events+=${events:+,}probe_protogate:$call
done
if ((callers)); then
  perf record -q -e "$events" --call-graph dwarf,8192 -p "$pid" -o "$work/perf.data" 2>/dev/null &
else
  perf stat -x, -e "$events" -p "$pid" -o "$work/stat.csv" &
fi
recorder=$!
sleep 0.5
requests=$(wrk -t1 -c1 -d2s -s scripts/bench/post.lua "$url" | awk '/requests in/ {print $1}')
sleep 0.5
kill -INT "$recorder"
wait "$recorder" 2>/dev/null || true
if ((callers)); then
  perf script -i "$work/perf.data" -F ip,sym 2>/dev/null | python3 scripts/bench/alloc_callers.py "$requests"
else
  allocs=$(awk -F, '/probe_protogate/ {n += $1} END {print n}' "$work/stat.csv")
  python3 -c "print(f'{$allocs / $requests:.1f} allocations per forwarded request ($allocs in $requests requests)')"
fi
