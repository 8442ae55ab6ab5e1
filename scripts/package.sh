#!/usr/bin/env bash
# Builds the installable packages with the Tauri CLI (npm package @tauri-apps/cli@2):
# `scripts/package.sh` makes the .deb and the AppImage on Linux (the AppImage tools are
# downloaded by the CLI, so that one needs the internet); `scripts/package.sh --bundles deb`
# only the .deb. On macOS (`--bundles app,dmg`) and Windows (`--bundles msi,nsis`) the
# same command builds those, given the platform's toolchain (Xcode's command line tools;
# the MSVC build tools and WebView2). Packages land in target/release/bundle/.
#
# `scripts/package.sh --target windows` cross-builds the Windows NSIS installer on Linux
# (x86_64-pc-windows-gnu with mingw-w64, Debian's `nsis` for makensis) into
# target/cross/x86_64-pc-windows-gnu/release/bundle/nsis/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
if [[ "${1:-}" == "--target" && "${2:-}" == "windows" ]]; then
  shift 2
  command -v makensis >/dev/null || { echo "protogate: the installer needs NSIS (Debian/Ubuntu: sudo apt install nsis)" >&2; exit 1; }
  rustup target list --installed | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu >&2
  export CARGO_TARGET_DIR="$PWD/target/cross"
  set -- --target x86_64-pc-windows-gnu --bundles nsis "$@"
fi
if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then source "$HOME/.cargo/env"; fi
command -v npm >/dev/null || { echo "protogate: packaging needs Node.js (npm)" >&2; exit 1; }
cli=$(mktemp -d)
trap 'rm -rf "$cli"' EXIT
(cd "$cli" && npm install --no-audit --no-fund --loglevel=error @tauri-apps/cli@2 >/dev/null)
"$cli/node_modules/.bin/tauri" build "$@"
ls -l "${CARGO_TARGET_DIR:-target}"/{,*/}release/bundle/*/* 2>/dev/null || true
