#!/usr/bin/env bash
# Instructions per forwarded request, counted by valgrind's callgrind rather than timed:
# the count does not move with the machine (this VM has no hardware counters, and its
# timings swing by a third from one run to the next), so it shows a change to the hot
# path for sure. Userland only: the syscalls per request are the same as the floor's
# (`strace -c`), so the kernel's share is not where Protogate differs.
# By hand; not part of CI. Builds unstripped release binaries under target/symbols/,
# forwards a few connections' requests (wrk, non-streaming) to the mock upstream through
# the floor (hyper alone, examples/bench_floor.rs) and through Protogate, each under
# callgrind, and divides the instructions counted by the requests served. With --stream,
# streamed requests instead (examples/bench_client.rs, one at a time; the mock's answer
# is 20 chunks).
#   scripts/bench/instructions.sh [--stream] [--top N] [--keep DIR] [--settings JSON]
#     --top N     also list the N costliest functions in Protogate's run
#     --keep DIR  keep Protogate's callgrind profile as DIR/protogate.out, to compare
#                 two builds with callgrind_annotate (exclusive costs)
#     --settings  JSON merged into Protogate's settings: a feature's cost in instructions
#                 (`{"metrics": {"enabled": true}}`); `"otlp_endpoint": "collector"` in
#                 `telemetry` starts a collector that takes the traces
set -euo pipefail
cd "$(dirname "$0")/../.."
top=0 stream=0 keep= settings=
while (($#)); do
  case "$1" in
    --stream) stream=1 ;;
    --top) top=${2:-30}; shift ;;
    --keep) keep=$2; shift ;;
    --settings) settings=$2; shift ;;
  esac
  shift
done
for tool in valgrind:valgrind wrk:wrk; do
  command -v "${tool%%:*}" >/dev/null || apt-get install -y -qq "${tool#*:}" >/dev/null
done
source scripts/bench/counted.sh --example bench_floor --example bench_client
# load PORT SECONDS: requests for that long (streams: a count for that long), prints how
# many were served.
load() {
  if ((stream)); then
    "$bin/examples/bench_client" ttft "http://127.0.0.1:$1" $(($2 * 40)) >/dev/null
    echo $(($2 * 40 + 20)) # and its 20 warm-up streams
  else
    wrk -t1 -c4 -d"$2"s -s scripts/bench/post.lua "http://127.0.0.1:$1/v1/chat/completions" |
      awk '/requests in/ {print $1}'
  fi
}

# count NAME PORT COMMAND...: prints "instructions requests" for COMMAND serving on PORT.
count() {
  local name=$1 port=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.%p" "$@" > "$work/$name.log" 2>&1 &
  local pid=$!
  until curl -fs -o /dev/null -XPOST -d '{"model":"bench","messages":[{"role":"user","content":"hi"}]}' \
      -H 'content-type: application/json' "http://127.0.0.1:$port/v1/chat/completions"; do sleep 0.2; done
  load "$port" 2 >/dev/null # warm: pools, caches
  callgrind_control -z "$pid" >/dev/null 2>&1
  local requests
  requests=$(load "$port" 5)
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local dump
  dump=$(ls "$work/$name".*.1)
  mv "$dump" "$work/$name.out"
  echo "$(callgrind_annotate "$work/$name.out" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}') $requests"
}

if [[ -n $settings ]]; then
  python3 -B scripts/bench/merge_settings.py "$work/settings.json" "$settings" "$work/ready" &
  until [[ -e $work/ready ]]; do sleep 0.1; done
fi
port=$(free_port)
read -r floor_ir floor_n < <(count floor "$port" "$bin/examples/bench_floor" "$upstream" "$port")
port=$(free_port)
read -r pg_ir pg_n < <(PROTOGATE_SECRET_BENCH=sk-bench-not-a-secret count protogate "$port" \
  "$bin/protogate" serve --no-https --port "$port" --config "$work/settings.json")
[[ -n $keep ]] && mkdir -p "$keep" && cp "$work/protogate.out" "$keep/protogate.out"
STREAM=$stream python3 - "$floor_ir" "$floor_n" "$pg_ir" "$pg_n" <<'EOF'
import sys
floor_ir, floor_n, pg_ir, pg_n = map(int, sys.argv[1:])
floor, pg = floor_ir / floor_n, pg_ir / pg_n
what = "streamed request" if __import__("os").environ.get("STREAM") == "1" else "request"
print(f"floor (hyper alone): {floor:8.0f} instructions per forwarded {what} ({floor_n})")
print(f"Protogate:           {pg:8.0f} instructions per forwarded {what} ({pg_n})")
print(f"Protogate / floor:   {pg / floor:8.2f}x; its own work: {pg - floor:.0f} per request")
EOF
if ((top)); then
  echo "Protogate's costliest functions (its own and its libraries'), inclusive, instructions per request:"
  callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$work/protogate.out" |
    python3 -c '
import re, sys
n, top, seen = int(sys.argv[1]), int(sys.argv[2]), {}
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) \(.*?\)\s+[^:\s]*:(<?[a-z_]+::\S+)", line)
    # The frames every request passes through (threads, the runtime, the server loop)
    # say nothing about where the work is.
    if m and not re.match(r"<?(std|core|alloc|tokio::runtime|hyper::proto::h1::dispatch|hyper_util::server)::", m[2]) \
            and "serve_with" not in m[2] and m[2] not in seen:
        seen[m[2]] = int(m[1].replace(",", "")) / n
for name, ir in sorted(seen.items(), key=lambda kv: -kv[1])[:top]:
    print(f"{ir:8.0f}  {name}")
' "$pg_n" "$top"
fi
