#!/usr/bin/env bash
# Installs the system packages Protogate needs on Debian/Ubuntu.
#   scripts/install-deps.sh build   what `cargo build` needs: a C toolchain, and for the desktop
#                                   app (the default feature) WebKitGTK, appindicator and librsvg
#   scripts/install-deps.sh test    plus the test tools: browsers (Chromium, Firefox, WebKit's
#                                   WebDriver), a real Secret Service, Xvfb, xclip, Node.js,
#                                   Python (for OpenAI's ChatKit SDK), espeak-ng, sox and
#                                   ffmpeg (speech for the voice tests, and WebM/OGG from it)
#                                   and Windows' (mingw-w64, Wine, NSIS: the Windows build run
#                                   under Wine, tests/windows_wine.rs), and a Prometheus server
#                                   that scrapes /metrics (tests/metrics.rs)
# Idempotent: packages already present are skipped, so a second run costs a second.
# On macOS there is no apt: it checks for Xcode's command line tools and Rust, and says
# what to install (the tests there use the login keychain, Safari's safaridriver, Chrome).
set -euo pipefail

if [[ "$(uname -s)" == Darwin ]]; then
  if ! xcode-select -p >/dev/null 2>&1; then
    echo "protogate: Xcode's command line tools are missing: run  xcode-select --install  and try again" >&2
    exit 1
  fi
  if ! command -v cargo >/dev/null 2>&1 && [[ ! -x "$HOME/.cargo/bin/cargo" ]]; then
    echo "protogate: Rust is missing: install it from https://rustup.rs, then open a new terminal" >&2
    exit 1
  fi
  if [[ "${1:-build}" == "test" ]]; then
    command -v node >/dev/null 2>&1 || echo "protogate: Node.js is missing (the JavaScript tests need it): https://nodejs.org or  brew install node" >&2
    [[ -x /usr/bin/safaridriver ]] && ! safaridriver --version >/dev/null 2>&1 &&
      echo "protogate: for the Safari tests, run once:  sudo safaridriver --enable" >&2
  fi
  exit 0
fi

want=(build-essential pkg-config curl ca-certificates
      libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev)
if [[ "${1:-build}" == "test" ]]; then
  want+=(chromium firefox-esr webkit2gtk-driver gnome-keyring dbus dbus-x11 libsecret-tools libnss3-tools xvfb xauth xclip x11-utils python3 python3-venv
        espeak-ng sox ffmpeg gcc-mingw-w64-x86-64 wine wine64 nsis prometheus redis-server)
  # Node.js runs the bundler and SDK clients of the JavaScript tests; keep one already there.
  command -v node >/dev/null 2>&1 || want+=(nodejs npm)
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

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "protogate: installing Rust with rustup (https://rustup.rs)" >&2
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >&2
  echo "protogate: Rust installed; open a new shell or run: source \$HOME/.cargo/env" >&2
  export PATH="$HOME/.cargo/bin:$PATH"
fi
# The desktop window's end-to-end tests drive the app through Tauri's WebDriver server.
if [[ "${1:-build}" == "test" ]] && ! command -v tauri-driver >/dev/null 2>&1; then
  echo "protogate: installing tauri-driver (cargo install, about two minutes)" >&2
  cargo install tauri-driver --locked --quiet >&2
fi
