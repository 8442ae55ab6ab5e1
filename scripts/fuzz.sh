#!/usr/bin/env bash
# Fuzzes the parsers that read what others send (fuzz/fuzz_targets/: upstream event
# streams, client request bodies, the origin and Host allowlists) with cargo-fuzz and
# libFuzzer, each for SECONDS (default 30): `scripts/fuzz.sh [SECONDS] [TARGET...]`.
# Installs cargo-fuzz when missing. A crash stops the run and leaves its input in
# fuzz/artifacts/TARGET/; keep it as a test beside the code it broke once it is fixed.
#
# libFuzzer needs unstable compiler flags (sanitizers, coverage). Rather than a nightly
# toolchain, which cannot be fetched on every machine, the stable compiler is told to
# accept them (RUSTC_BOOTSTRAP=1), for this build only.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(upstream_events client_requests origin_patterns)
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "protogate: installing cargo-fuzz (cargo install, under a minute)" >&2
  cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
cargo fuzz build -O
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
  # A working corpus outside git, started from the committed seeds.
  corpus=corpus/$target
  mkdir -p "$corpus"
  echo "fuzz: $target for ${seconds}s" >&2
  status=0
  cargo fuzz run -O "$target" "$corpus" "seeds/$target" -- \
    -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" >&2 || true
  if ((status)); then
    grep -A 2 -m 1 'panicked' "$log" >&2 || true
    grep -A 4 -m 1 'Failing input' "$log" >&2 || tail -n 40 "$log" >&2
    echo "fuzz: $target failed; its input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
