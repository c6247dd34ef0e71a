#!/usr/bin/env bash
# The test command: starts the emulators, runs every test of the workspace (unit,
# property and integration), and stops the emulators whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
export MOTO_PORT=${MOTO_PORT:-5055} LOCALSTRIPE_PORT=${LOCALSTRIPE_PORT:-8420} ROUTER_PORT=${ROUTER_PORT:-5056} LAMBDA_PORT=${LAMBDA_PORT:-9001}
# What the tests need beyond Rust, checked (and installed where that can be done
# without asking) before anything builds: a missing piece found after a 20-minute build
# is a wasted build.
missing() { echo "tests/run.sh: $1" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || missing "python3 is missing (the emulators run on it): install Python 3"
command -v npm >/dev/null 2>&1 || missing "npm is missing (the report tests' checker runs on Node): install Node.js 18 or newer"
# The report tests drive headless Chromium (Debian's package: not pinned, since Debian
# replaces a version with its security fix and a pinned one would soon fail to install).
# CHROMIUM names another browser; else the checker looks for these (tests/browser/).
chromium_found() {
  [ -n "${CHROMIUM:-}" ] && [ -x "$CHROMIUM" ] && return 0
  for browser in /usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome; do
    [ -x "$browser" ] && return 0
  done
  return 1
}
if ! chromium_found; then
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    echo "tests/run.sh: installing headless Chromium (apt-get install chromium) for the report tests" >&2
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
  chromium_found || missing "no Chromium for the report tests: install it (Debian/Ubuntu: sudo apt-get install chromium; macOS: brew install --cask chromium) or set CHROMIUM=/path/to/chrome"
fi
# The pinned checker (puppeteer-core, no browser download).
[ -d tests/browser/node_modules/puppeteer-core ] || npm ci --prefix tests/browser --no-audit --no-fund --silent
trap 'bash tests/emulators.sh stop' EXIT
bash tests/emulators.sh start
cargo test --workspace --locked "$@"
