#!/usr/bin/env bash
# Installs the system packages Protogate needs on Debian/Ubuntu.
#   scripts/install-deps.sh build   what `cargo build` needs (headless gateway: nothing beyond a C toolchain)
#   scripts/install-deps.sh test    plus the test tools: Chromium, a real Secret Service, Xvfb
# Idempotent: packages already present are skipped, so a second run costs a second.
set -euo pipefail

want=(build-essential pkg-config curl ca-certificates)
if [[ "${1:-build}" == "test" ]]; then
  want+=(chromium gnome-keyring dbus dbus-x11 libsecret-tools xvfb xauth)
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "protogate: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "protogate: cargo not found; install Rust from https://rustup.rs (1.85 or newer)" >&2
  exit 1
fi
