#!/usr/bin/env bash
# Measures the desktop app as a user gets it: the .deb's size (built by
# scripts/package.sh --bundles deb), the time from launch to the tray icon and the resident
# memory once idle (examples/app_start.rs plays the tray host, under Xvfb in a D-Bus
# session of its own). Prints a Markdown table.
#   scripts/bench-app.sh [runs, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
scripts/package.sh --bundles deb >/dev/null
cargo build --release --locked --example app_start 2>&1 | tail -1
deb=$(ls target/release/bundle/deb/*.deb)
out=$(xvfb-run -a dbus-run-session -- target/release/examples/app_start target/release/protogate "$runs" 2>/dev/null)
read -r tray_ms idle_mb <<< "$(grep '^app_start:' <<< "$out" | cut -d' ' -f2-)"
cat <<REPORT
| the desktop app ($(date -u +%Y-%m-%d), $(nproc) cores, Xvfb) | measured |
| --- | --- |
| package size ($(basename "$deb")) | $(awk "BEGIN {printf \"%.1f\", $(stat -c %s "$deb")/1048576}") MB |
| installed binary | $(awk "BEGIN {printf \"%.1f\", $(stat -c %s target/release/protogate)/1048576}") MB |
| launch to tray icon, median of $runs | $tray_ms ms |
| resident memory, idle (5 s after start, window closed) | $idle_mb MB |
REPORT
