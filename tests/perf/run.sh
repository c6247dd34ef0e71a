#!/usr/bin/env bash
# The performance figures of docs/performance.md: builds the five functions for this machine with
# the release profile (the one deployed, here for x86_64, since the arm64 build cannot
# run here), then runs tests/perf/perf.py (cold start against Python 3 + boto3, peak
# memory, one real invocation each against moto and localstripe, zip sizes when
# `cargo lambda build` has left them in target/lambda).
#   tests/perf/run.sh [--profile dev|release] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=release
runs=20
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: tests/perf/run.sh [--profile dev|release] [--runs N]" >&2; exit 2 ;;
  esac
done
FUNCTIONS=(collect-revenue collect-cost evaluate provision override-api)
packages=()
for f in "${FUNCTIONS[@]}"; do packages+=(-p "$f"); done
if [ "$profile" = dev ]; then
  # As `cargo lambda watch` built them for the emulator tests (the default members'
  # feature set): the dependencies are compiled already, only the functions link.
  cargo build --quiet --locked --bins
else
  # As deployed: each function's own feature set.
  cargo build --quiet --locked --profile "$profile" "${packages[@]}"
fi
bin_dir=target/$([ "$profile" = dev ] && echo debug || echo "$profile")
# The emulators' pinned virtualenv (moto, localstripe, boto3 for the Python side).
bash tests/emulators.sh install
zip_args=()
[ -d target/lambda ] && zip_args=(--zip-dir target/lambda)
.venv/bin/python tests/perf/perf.py --bin-dir "$bin_dir" --runs "$runs" "${zip_args[@]}" \
  --json ".ci/.state/perf-$profile.json"
