#!/usr/bin/env bash
# Starts or stops the emulators the integration tests use, on 127.0.0.1:
#   moto (AWS) on $MOTO_PORT (default 5055), localstripe on $LOCALSTRIPE_PORT (8420).
# Installs them, pinned, into .venv inside the checkout. PIDs live in .ci/.state/.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
LOCALSTRIPE_VERSION=1.15.10
MOTO_PORT=${MOTO_PORT:-5055}
LOCALSTRIPE_PORT=${LOCALSTRIPE_PORT:-8420}
STATE=.ci/.state
mkdir -p "$STATE"

install() {
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if ! .venv/bin/python -c "import moto, localstripe" >/dev/null 2>&1 \
     || [ "$(.venv/bin/python -c 'import moto; print(moto.__version__)')" != "$MOTO_VERSION" ]; then
    .venv/bin/pip install --quiet --disable-pip-version-check \
      "moto[server]==$MOTO_VERSION" "localstripe==$LOCALSTRIPE_VERSION"
  fi
}

wait_for() { # name url
  for _ in $(seq 1 100); do
    # Any HTTP answer (localstripe answers 401 without a key) means the server is up.
    if .venv/bin/python - "$2" >/dev/null 2>&1 <<'PY'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
PY
    then return 0; fi
    sleep 0.2
  done
  echo "$1 did not start; its log:" >&2
  cat "$STATE/$1.log" >&2 || true
  return 1
}

start() {
  install
  stop >/dev/null 2>&1 || true
  .venv/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" > "$STATE/moto.log" 2>&1 &
  echo $! > "$STATE/moto.pid"
  # localstripe takes only a port; it is reached through 127.0.0.1 only.
  .venv/bin/localstripe --port "$LOCALSTRIPE_PORT" > "$STATE/localstripe.log" 2>&1 &
  echo $! > "$STATE/localstripe.pid"
  wait_for moto "http://127.0.0.1:$MOTO_PORT/moto-api/"
  wait_for localstripe "http://127.0.0.1:$LOCALSTRIPE_PORT/v1/customers"
  echo "emulators up: moto 127.0.0.1:$MOTO_PORT, localstripe 127.0.0.1:$LOCALSTRIPE_PORT"
}

stop() {
  for name in moto localstripe; do
    if [ -f "$STATE/$name.pid" ]; then
      pid=$(cat "$STATE/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$STATE/$name.pid"
    fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
