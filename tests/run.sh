#!/usr/bin/env bash
# The test command: starts the emulators, runs every test of the workspace (unit,
# property and integration), and stops the emulators whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
export MOTO_PORT=${MOTO_PORT:-5055} LOCALSTRIPE_PORT=${LOCALSTRIPE_PORT:-8420} ROUTER_PORT=${ROUTER_PORT:-5056} LAMBDA_PORT=${LAMBDA_PORT:-9001}
# The report test drives headless Chromium with the pinned checker (tests/browser/).
[ -d tests/browser/node_modules/puppeteer-core ] || npm ci --prefix tests/browser --no-audit --no-fund --silent
trap 'bash tests/emulators.sh stop' EXIT
bash tests/emulators.sh start
cargo test --workspace --locked "$@"
