#!/usr/bin/env python3
"""Line coverage per crate, from `cargo llvm-cov report --summary-only` on stdin.

Prints one row per crate of the workspace. Fails (exit 1) when the engine is under its
enforced floor; crates under their target are named, not failed.
"""
import sys

ENGINE_FLOOR = 95.0
TARGET = 85.0
CRATES = [
    ("shared/engine/", "revscale-engine", ENGINE_FLOOR),
    ("shared/simulator/", "revscale-simulator", TARGET),
    ("shared/api/", "revscale-api", TARGET),
    ("shared/aws/", "revscale-aws", TARGET),
    ("shared/test-support/", "revscale-test-support", None),
    ("functions/collect-revenue/", "collect-revenue", TARGET),
    ("functions/collect-cost/", "collect-cost", TARGET),
    ("functions/evaluate/", "evaluate", TARGET),
    ("functions/provision/", "provision", TARGET),
    ("functions/override-api/", "override-api", TARGET),
    ("cli/", "revscale-cli", TARGET),
]

totals = {name: [0, 0] for _, name, _ in CRATES}
seen_rows = 0
for line in sys.stdin:
    fields = line.split()
    if len(fields) < 10 or fields[0] in ("Filename", "TOTAL") or not fields[0].endswith(".rs"):
        continue
    path = fields[0]
    try:
        lines, missed = int(fields[7]), int(fields[8])
    except ValueError:
        continue
    for prefix, name, _ in CRATES:
        if path.startswith(prefix) or f"/{prefix}" in path:
            totals[name][0] += lines
            totals[name][1] += missed
            seen_rows += 1
            break

if seen_rows == 0:
    print("no coverage rows read: is this the output of `cargo llvm-cov report --summary-only`?")
    sys.exit(1)

failed = False
print(f"{'crate':28} {'lines':>7} {'missed':>7} {'cover':>7}  floor/target")
for _, name, goal in CRATES:
    lines, missed = totals[name]
    if lines == 0:
        print(f"{name:28} {'-':>7} {'-':>7} {'-':>7}  (no instrumented lines)")
        # The engine's floor is enforced: no figures is a failure, not a pass.
        failed |= name == "revscale-engine"
        continue
    cover = 100.0 * (lines - missed) / lines
    note = ""
    if goal == ENGINE_FLOOR and name == "revscale-engine":
        note = f"enforced >= {goal:.0f}%"
        if cover < goal:
            note += "  FAILED"
            failed = True
    elif goal is not None:
        note = f"target {goal:.0f}%" + ("" if cover >= goal else "  (below target)")
    print(f"{name:28} {lines:7} {missed:7} {cover:6.2f}%  {note}")
sys.exit(1 if failed else 0)
