# Sourced by the counting scripts (allocs.sh, instructions.sh): an unstripped release
# build under target/symbols/ (function names for the probes and the reports), a work
# directory removed on exit, the mock upstream started, and settings for a Protogate
# that forwards to it. Sets `bin`, `work`, `upstream`; defines `free_port`.
#   source scripts/bench/counted.sh <cargo build targets...>
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/symbols} CARGO_PROFILE_RELEASE_STRIP=false \
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
cargo build --release --locked --no-default-features --bin protogate --example bench_upstream \
  "$@" 2>&1 | tail -1
bin=$CARGO_TARGET_DIR/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin/examples/bench_upstream" 0 > "$work/upstream.port" &
until [[ -s "$work/upstream.port" ]]; do sleep 0.1; done
upstream=$(cat "$work/upstream.port")
cat > "$work/settings.json" <<SETTINGS
{"port": 0, "https": {"enabled": false}, "default_provider": "bench",
 "providers": [{"id": "bench", "kind": "openai", "base_url": "http://127.0.0.1:$upstream/v1", "default_model": "bench"}],
 "limits": {"requests_per_minute": 4000000000, "burst": 4000000000},
 "log": {"dir": "$work/logs"}}
SETTINGS
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
