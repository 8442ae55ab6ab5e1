#!/usr/bin/env bash
# Screenshots of every view of the window, light and dark, in headless Chromium with the
# app stood in by tests/ui/mock-tauri.js: `tests/ui/preview.sh OUTDIR`.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-docs/screenshots}
mkdir -p "$out"
site=$(mktemp -d)
cp -r ui/. "$site/"
cp tests/ui/mock-tauri.js "$site/"
sed -i 's#<script type="module" src="js/app.js"></script>#<script src="mock-tauri.js"></script>\n  <script type="module" src="js/app.js"></script>#' "$site/index.html"
python3 -m http.server 8399 --bind 127.0.0.1 --directory "$site" >/dev/null 2>&1 &
server=$!
trap 'kill $server; rm -rf "$site"' EXIT
sleep 0.5
# The chat is shown with a searched answer (the mock answers the gateway's routes too).
extra() { [[ $1 == chat ]] && echo "&search=1&ask=Cold%20brew%20or%20iced%20coffee%3F" || true; }
for view in endpoint providers logs usage chat settings; do
  for scheme in light dark; do
    flags=()
    [[ $scheme == dark ]] && flags=(--force-dark-mode --blink-settings=preferredColorScheme=0)
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
      --disable-background-networking --disable-component-update --disable-sync \
      --user-data-dir="$(mktemp -d)" --window-size=920,640 --hide-scrollbars \
      --virtual-time-budget=2000 "${flags[@]}" \
      --screenshot="$out/$view-$scheme.png" "http://127.0.0.1:8399/index.html?view=$view$(extra "$view")" >/dev/null 2>&1
  done
done
echo "screenshots in $out"
