#!/usr/bin/env bash
# Renders icons/ from icons/source/*.svg: the tray states with rsvg-convert, the app and
# bundle icons with the Tauri CLI's `icon` command (npm package @tauri-apps/cli@2).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v rsvg-convert >/dev/null || sudo apt-get install -y librsvg2-bin
for state in running stopped error; do
  rsvg-convert -w 32 -h 32 "icons/source/tray-$state.svg" -o "icons/tray-$state.png"
  rsvg-convert -w 64 -h 64 "icons/source/tray-$state.svg" -o "icons/tray-$state@2x.png"
done
cli=$(mktemp -d)
trap 'rm -rf "$cli"' EXIT
(cd "$cli" && npm install --no-audit --no-fund --loglevel=error @tauri-apps/cli@2 >/dev/null)
"$cli/node_modules/.bin/tauri" icon icons/source/protogate.svg -o "$cli/out" >/dev/null
for f in 32x32.png 64x64.png 128x128.png 128x128@2x.png icon.png icon.icns icon.ico; do
  cp "$cli/out/$f" "icons/$f"
done
echo "icons/ rendered from icons/source/"
