#!/usr/bin/env bash
# Builds Protogate and starts it, on a fresh Debian/Ubuntu machine: installs what the
# build needs, builds the release binary, and starts the tray app (its window opens on
# the first launch), or the headless gateway where there is no display, printing the
# endpoint. Extra arguments go to `protogate` (`scripts/run.sh serve --port 0`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
# A Rust installed just now by rustup is not on PATH yet.
if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then source "$HOME/.cargo/env"; fi
cargo build --release --locked
# No subcommand: the tray app where there is a display, else the headless gateway.
exec target/release/protogate "$@"
