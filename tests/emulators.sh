#!/usr/bin/env bash
# Starts or stops the emulators the integration tests use, on 127.0.0.1:
#   moto (AWS) on $MOTO_PORT (default 5055), localstripe on $LOCALSTRIPE_PORT (8420),
#   `cargo lambda watch` running the provision Lambda on $LAMBDA_PORT (9001), and
#   tests/router.py on $ROUTER_PORT (5056), where moto's Step Functions send their
#   Lambda invocations (moto is told so with MOTO_PORT=$ROUTER_PORT).
# Installs them, pinned, into .venv inside the checkout (`install` does only that).
# PIDs live in .ci/.state/. LAMBDA_NO_RELOAD=1 keeps the provision binary built at start
# (no rebuild on every edit of the tree, which a long chaos run cannot wait through).
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
LOCALSTRIPE_VERSION=1.15.10
CARGO_LAMBDA_VERSION=1.9.2
MOTO_PORT=${MOTO_PORT:-5055}
LOCALSTRIPE_PORT=${LOCALSTRIPE_PORT:-8420}
ROUTER_PORT=${ROUTER_PORT:-5056}
LAMBDA_PORT=${LAMBDA_PORT:-9001}
# The provision Lambda's environment under cargo lambda watch: the resources the
# provisioner tests create in moto under these fixed names. The daily-loop test replays
# days of 2026 against today's clock, so decisions may be months "old" there: the age
# limit is ten years here (its refusals are tested with the step tests' own clock).
E2E_PREFIX=revscale-e2e
STATE=.ci/.state
mkdir -p "$STATE"

install() {
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if ! .venv/bin/python -c "import moto, localstripe" >/dev/null 2>&1 \
     || [ "$(.venv/bin/python -c 'import moto; print(moto.__version__)')" != "$MOTO_VERSION" ] \
     || [ ! -x .venv/bin/cargo-lambda ]; then
    .venv/bin/pip install --quiet --disable-pip-version-check \
      "moto[server]==$MOTO_VERSION" "localstripe==$LOCALSTRIPE_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION"
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
  # The shipped config, with the manifests it names beside it.
  cp config/revenue_thresholds.yaml "$STATE/e2e-config.yaml"
  rm -rf "$STATE/examples" && mkdir -p "$STATE/examples" && cp -r config/examples/manifests "$STATE/examples/"
  # The shipped configuration plus a component of every other driver kind (their
  # resources are created by the test that climbs with them).
  .venv/bin/python - "$STATE/e2e-config.yaml" tests/drivers/e2e-components.yaml <<'PY'
import sys, yaml
config_path, extra_path = sys.argv[1:3]
config = yaml.safe_load(open(config_path))
extra = yaml.safe_load(open(extra_path))
for level, ids in extra["auto_enable"].items():
    config["levels"][level]["auto_enable"] += ids
config["components"].update(extra["components"])
open(config_path, "w").write(yaml.safe_dump(config, sort_keys=False))
PY
  cp tests/drivers/e2e-search.yaml "$STATE/e2e-search.yaml"
  # Built before watch starts, so the first state machine step does not wait for rustc.
  # Exactly as watch builds it (`cargo run --bin provision` at the workspace root, whose
  # features are unified over the workspace's default members): `-p provision` would
  # build another variant, and the first step would wait two minutes for this one.
  cargo build --quiet --locked --bin provision
  MOTO_PORT="$ROUTER_PORT" .venv/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" > "$STATE/moto.log" 2>&1 &
  echo $! > "$STATE/moto.pid"
  .venv/bin/python tests/router.py "$ROUTER_PORT" "$MOTO_PORT" "$LAMBDA_PORT" > "$STATE/router.log" 2>&1 &
  echo $! > "$STATE/router.pid"
  # The Lambda's own AWS calls go through the router too, where the chaos test injects
  # faults into them.
  env AWS_ENDPOINT_URL="http://127.0.0.1:$ROUTER_PORT" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    AWS_REGION=eu-west-1 TABLE_NAME="$E2E_PREFIX" EVENT_BUS_NAME="$E2E_PREFIX" \
    ALERT_TOPIC_ARN="arn:aws:sns:eu-west-1:123456789012:$E2E_PREFIX-alerts" MAX_STATUS_CHECKS=20 \
    MAX_DECISION_AGE_HOURS=87600 \
    REVSCALE_CONFIG="$PWD/$STATE/e2e-config.yaml" \
    EKS_CLUSTER_NAME=revscale EKS_CLUSTER_ROLE_ARN=arn:aws:iam::123456789012:role/revscale-eks-cluster \
    EKS_NODE_ROLE_ARN=arn:aws:iam::123456789012:role/revscale-eks-node FLAG_PREFIX=/ \
    CLOUDFORMATION_ROLE_ARN=arn:aws:iam::123456789012:role/revscale-e2e-cloudformation \
    CLOUDFORMATION_STACK_PREFIX=revscale-e2e- \
    REVSCALE_STACK_NAME="$E2E_PREFIX" \
    REVSCALE_KUBERNETES_ENDPOINT="http://127.0.0.1:$ROUTER_PORT" \
    PROVISION_ROLE_ARN=arn:aws:iam::123456789012:role/revscale-e2e-provision \
    EVALUATE_ROLE_ARN=arn:aws:iam::123456789012:role/revscale-e2e-evaluate \
    RUST_LOG=info PATH="$PWD/.venv/bin:$PATH" \
    setsid .venv/bin/cargo-lambda lambda watch ${LAMBDA_NO_RELOAD:+--ignore-changes} --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" \
    > "$STATE/lambda.log" 2>&1 &
  echo $! > "$STATE/lambda.pid"
  # localstripe from scratch, on 127.0.0.1, with nothing kept on disk between runs.
  .venv/bin/python tests/localstripe_server.py "$LOCALSTRIPE_PORT" > "$STATE/localstripe.log" 2>&1 &
  echo $! > "$STATE/localstripe.pid"
  wait_for moto "http://127.0.0.1:$MOTO_PORT/moto-api/"
  wait_for localstripe "http://127.0.0.1:$LOCALSTRIPE_PORT/v1/customers"
  wait_for router "http://127.0.0.1:$ROUTER_PORT/moto-api/"
  wait_for lambda "http://127.0.0.1:$LAMBDA_PORT/"
  # State machines really execute; Lambda tasks go through the router, not Docker.
  .venv/bin/python - "$MOTO_PORT" <<'PY'
import json, sys, urllib.request
body = json.dumps({"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/moto-api/config", data=body, method="POST",
                             headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=5)
PY
  echo "emulators up: moto 127.0.0.1:$MOTO_PORT (router :$ROUTER_PORT), localstripe :$LOCALSTRIPE_PORT, cargo lambda watch :$LAMBDA_PORT"
}

stop() {
  for name in lambda router moto localstripe; do
    if [ -f "$STATE/$name.pid" ]; then
      pid=$(cat "$STATE/$name.pid")
      # cargo lambda watch runs in its own session: stop its children with it.
      [ "$name" = lambda ] && kill -- -"$pid" 2>/dev/null || true
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
  install) install ;;
  *) echo "usage: $0 start|stop|install" >&2; exit 2 ;;
esac
