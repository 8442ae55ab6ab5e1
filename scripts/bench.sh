#!/usr/bin/env bash
# Measures Protogate side by side with the gateways a user would pick instead, against a
# direct call to the same fast mock upstream, in one run on this machine (see
# scripts/bench/run.py for what is measured). Installs wrk, builds the release binaries
# (headless), installs the peers pinned (LiteLLM's proxy in a venv, Portkey's gateway
# from npm, both under target/bench-peers/), and writes bench/results/<date>.json,
# docs/benchmarks.md and docs/benchmarks.svg.
#   scripts/bench.sh [seconds per wrk run, default 10]
#   scripts/bench.sh --quick      Protogate and direct only, 1 s runs, nothing written
#   scripts/bench.sh --no-peers   Protogate and direct only, written as usual
#   scripts/bench.sh --features-on  adds a Protogate row with the per-request features on
#                                 (provider limit, metrics, traces, cache missing; issue #27)
#   scripts/bench.sh --settings='{"metrics": {"enabled": true}}'
#                                 JSON merged into Protogate's settings: the cost of a feature
# Combine them: scripts/bench.sh --quick --features-on.
set -euo pipefail
cd "$(dirname "$0")/.."
LITELLM_VERSION=1.106.12
PORTKEY_VERSION=1.15.2
secs=10 quick=() peers=1 extra=() features=()
for arg in "$@"; do
  case "$arg" in
    --quick) quick=(--quick) peers=0 ;;
    --no-peers) peers=0 ;;
    --settings=*) extra=(--settings "${arg#--settings=}") ;;
    --features-on) features=(--features-on) ;;
    *) secs=$arg ;;
  esac
done
scripts/install-deps.sh build
command -v wrk >/dev/null || { sudo_cmd=(); [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo); "${sudo_cmd[@]}" apt-get install -y -qq wrk >/dev/null; }
cargo build --release --locked --no-default-features --bin protogate --example bench_upstream --example bench_client --example bench_floor --example bench_inprocess 2>&1 | tail -1

# The hyper the bare proxy (and Protogate) is built with, from the lock file.
hyper_version() { awk '/^name = "hyper"$/ {getline; gsub(/[^0-9.]/, ""); print}' Cargo.lock; }

peer_args=()
if ((peers)); then
  dir=target/bench-peers
  mkdir -p "$dir"
  if [[ ! -x "$dir/litellm/bin/litellm" || "$(cat "$dir/litellm/.version" 2>/dev/null)" != "$LITELLM_VERSION" ]]; then
    echo "bench: installing LiteLLM $LITELLM_VERSION" >&2
    rm -rf "$dir/litellm"
    /usr/bin/python3 -m venv "$dir/litellm"
    "$dir/litellm/bin/pip" install --quiet --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION"
    echo "$LITELLM_VERSION" > "$dir/litellm/.version"
  fi
  if [[ ! -f "$dir/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" || "$(cat "$dir/portkey/.version" 2>/dev/null)" != "$PORTKEY_VERSION" ]]; then
    echo "bench: installing Portkey's gateway $PORTKEY_VERSION" >&2
    rm -rf "$dir/portkey" && mkdir -p "$dir/portkey"
    (cd "$dir/portkey" && npm install --no-audit --no-fund --loglevel=error "@portkey-ai/gateway@$PORTKEY_VERSION" >/dev/null)
    echo "$PORTKEY_VERSION" > "$dir/portkey/.version"
  fi
  peer_args=(--litellm "$dir/litellm/bin/litellm" --litellm-version "$LITELLM_VERSION"
             --portkey "$dir/portkey/node_modules/@portkey-ai/gateway/build/start-server.js"
             --portkey-version "$PORTKEY_VERSION")
fi

exec python3 -B scripts/bench/run.py --secs "$secs" \
  --protogate target/release/protogate \
  --upstream target/release/examples/bench_upstream \
  --client target/release/examples/bench_client \
  --inprocess target/release/examples/bench_inprocess \
  --floor target/release/examples/bench_floor --hyper-version "$(hyper_version)" \
  "${peer_args[@]}" "${quick[@]}" "${extra[@]}" "${features[@]}"
