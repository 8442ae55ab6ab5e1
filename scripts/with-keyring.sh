#!/usr/bin/env bash
# Runs a command with a fresh gnome-keyring Secret Service, unlocked with a test password.
# Must run inside a D-Bus session (scripts/test.sh uses dbus-run-session). Nothing it
# stores outlives the command: the keyring lives in a temporary directory.
set -euo pipefail
XDG_DATA_HOME=$(mktemp -d) XDG_RUNTIME_DIR=$(mktemp -d)
export XDG_DATA_HOME XDG_RUNTIME_DIR
trap 'rm -rf "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR"' EXIT
printf %s protogate-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null
# Tests that need the keychain check this, so they fail with a clear word elsewhere.
export PROTOGATE_TEST_SECRET_SERVICE=1
"$@"
