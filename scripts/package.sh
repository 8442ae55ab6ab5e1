#!/usr/bin/env bash
# Builds the installable packages with the Tauri CLI (npm package @tauri-apps/cli@2):
# `scripts/package.sh` makes the .deb and the AppImage on Linux (the AppImage tools are
# downloaded by the CLI, so that one needs the internet); `scripts/package.sh --bundles deb`
# only the .deb. On macOS (`--bundles app,dmg`) and Windows (`--bundles msi,nsis`) the
# same command builds those, given the platform's toolchain (Xcode's command line tools;
# the MSVC build tools and WebView2). Packages land in target/release/bundle/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then source "$HOME/.cargo/env"; fi
command -v npm >/dev/null || { echo "protogate: packaging needs Node.js (npm)" >&2; exit 1; }
cli=$(mktemp -d)
trap 'rm -rf "$cli"' EXIT
(cd "$cli" && npm install --no-audit --no-fund --loglevel=error @tauri-apps/cli@2 >/dev/null)
"$cli/node_modules/.bin/tauri" build "$@"
ls -l target/release/bundle/*/* 2>/dev/null || true
