#!/usr/bin/env bash
# Runs Protogate's whole test suite on a fresh Debian/Ubuntu machine: installs the test
# tools (Chromium, gnome-keyring, D-Bus, Node.js) and the tests' npm packages, starts a throwaway, unlocked Secret Service in
# its own D-Bus session, and runs `cargo test` inside it. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
# A Rust installed just now by rustup is not on PATH yet.
if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then source "$HOME/.cargo/env"; fi
# The npm packages of the tests that run JavaScript (browser pages, SDK clients), pinned
# by their lock files; skipped when already installed from the same lock file.
for dir in tests/*/; do
  [[ -f "$dir/package-lock.json" ]] || continue
  if [[ ! -f "$dir/node_modules/.package-lock.json" || "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
# The Python of the tests that run it, a venv per folder with a requirements.txt, remade
# when its pinned requirements change: OpenAI's ChatKit SDK (tests/chatkit), PocketSphinx
# and the OpenAI and Deepgram clients (tests/voice). Debian's Python, not whatever python3
# comes first on PATH.
for req in tests/*/requirements.txt; do
  venv="$(dirname "$req")/.venv"
  if [[ ! -f "$venv/.installed" || "$req" -nt "$venv/.installed" ]]; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    touch "$venv/.installed"
  fi
done
# With arguments (`--test cors`), only what they name runs; without, every target.
if (($#)); then targets=("$@"); else targets=(--all-targets); fi
# macOS: the login keychain and the system's browsers; no D-Bus, no gnome-keyring.
if [[ "$(uname -s)" == Darwin ]]; then exec cargo test --locked "${targets[@]}"; fi
# The Windows build that tests/windows_wine.rs runs under Wine (cross-built into
# target/cross; incremental after the first time). With arguments, only when they ask
# for that test; where Wine is missing the test says so and skips.
if command -v wine >/dev/null 2>&1 && { ((!$#)) || [[ " $* " == *windows_wine* ]]; }; then
  scripts/windows-build.sh
fi
exec dbus-run-session -- scripts/with-keyring.sh cargo test --locked "${targets[@]}"
