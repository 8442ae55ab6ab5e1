#!/usr/bin/env bash
# Cross-builds Protogate for Windows (x86_64-pc-windows-gnu) on Linux with mingw-w64:
# the headless gateway (a console program) and the desktop app (GUI subsystem), both
# release, into target/cross (its own target dir, so a long cross build never holds the
# lock of the everyday `cargo build`/`cargo test`). The two executables are copied to
# target/cross/windows/protogate-headless.exe and target/cross/windows/protogate.exe,
# where tests/windows_wine.rs runs them under Wine. Needs: rustup's target (added here),
# Debian's gcc-mingw-w64-x86-64 (scripts/install-deps.sh test installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then source "$HOME/.cargo/env"; fi
target=x86_64-pc-windows-gnu
command -v x86_64-w64-mingw32-gcc >/dev/null || {
  echo "protogate: the Windows build needs mingw-w64 (Debian/Ubuntu: sudo apt install gcc-mingw-w64-x86-64)" >&2
  exit 1
}
rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target" >&2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/cross}"
out="$CARGO_TARGET_DIR/windows"
mkdir -p "$out"
built="$CARGO_TARGET_DIR/$target/release/protogate.exe"
SECONDS=0
cargo build --locked --release --target "$target" --no-default-features
cp "$built" "$out/protogate-headless.exe"
cargo build --locked --release --target "$target"
cp "$built" "$out/protogate.exe"
# The GNU build loads WebView2 through WebView2Loader.dll (the MSVC build links it in):
# it must sit beside the app, as Tauri's NSIS installer puts it; without it Windows
# refuses to start the app at all.
cp "$CARGO_TARGET_DIR/$target/release/WebView2Loader.dll" "$out/"
echo "protogate: Windows build in ${SECONDS}s:" >&2
ls -l "$out"/*.exe "$out"/*.dll >&2
