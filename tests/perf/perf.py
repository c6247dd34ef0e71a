"""Performance figures of the revscale functions: cold start, peak memory, zip size.

    .venv/bin/python tests/perf/perf.py --bin-dir target/release [--runs 20] [--zip-dir target/lambda]

- Cold start: the time from exec of a function's binary until it asks a local Lambda
  Runtime API stub for its first event, median of --runs runs; in the same run, runs
  interleaved, a Python 3 + boto3 handler doing the same client set-up
  (tests/perf/python_handler.py), and the ratio of the two medians.
- Peak memory: the maximum resident set size of each function's process (the kernel's
  VmHWM, read while the process waits for its next event) across its cold start and
  one real invocation, with the sample event from events/, against moto and localstripe on 127.0.0.1 which this script
  starts and stops itself.
- Zip size: each function's bootstrap.zip under --zip-dir (what `cargo lambda build
  --output-format zip` leaves), when given.

The binaries must run on this machine: a host build (`cargo build --release`), not the
arm64 deployment build. Prints a Markdown table; --json writes the figures too.
"""

import argparse
import base64
import http.server
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3

ROOT = pathlib.Path(__file__).resolve().parents[2]
FUNCTIONS = ["collect-revenue", "collect-cost", "evaluate", "provision", "override-api"]
REGION = "eu-west-1"
PREFIX = "revscale-perf"
STRIPE_KEY = "sk_test_perf"
# The provisioner's measured run: level 0 -> 1, the EKS control plane.
PERF_DECISION = "2026-11-29-L0-L1-perf"
PERF_TRANSITIONS = [
    {"component": "eks_control_plane", "kind": "deploy"},
    {"component": "eks_control_plane", "kind": "activate"},
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- a Lambda Runtime API stub -----------------------------------------------------------


class Invocation:
    """One process's conversation with the Runtime API: the events it is handed, in
    order, and what it answered."""

    def __init__(self, events):
        self.events = list(events)
        self.first_poll = threading.Event()
        self.first_poll_at = None
        self.answers = []
        self.finished = threading.Event()
        self.handed_at = None
        self.durations = []


class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RuntimeApiHandler)
        self.current = None
        self.seq = 0


class RuntimeApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        now = time.perf_counter()
        run = self.server.current
        if not self.path.endswith("/runtime/invocation/next") or run is None:
            return self.reply(404, b"{}")
        if not run.first_poll.is_set():
            run.first_poll_at = now
            run.first_poll.set()
        if not run.events:
            # Nothing more to hand out: the process stays parked here until it is killed.
            run.finished.set()
            time.sleep(60)
            return
        event = run.events.pop(0)
        self.server.seq += 1
        body = json.dumps(event).encode()
        run.handed_at = time.perf_counter()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", f"perf-{self.server.seq}")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
        self.send_header(
            "Lambda-Runtime-Invoked-Function-Arn", f"arn:aws:lambda:{REGION}:123456789012:function:perf"
        )
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        run = self.server.current
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if run is not None and run.handed_at is not None:
            run.durations.append(time.perf_counter() - run.handed_at)
        kind = self.path.rsplit("/", 1)[-1]  # response, error (or init/error)
        if run is not None:
            run.answers.append((kind, body.decode(errors="replace")))
            if kind == "error" and "/init/" in self.path:
                run.first_poll.set()
                run.finished.set()
        self.reply(202, b"{}")

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def vm_hwm_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def run_process(api, command, env, events, log_path=None):
    """Starts `command` against the stub, hands it `events`, and kills it once it asks
    for more (or right after its first poll when there are none). Returns the seconds
    from exec to first poll, the process's peak RSS in KiB, and the invocation."""
    run = Invocation(events)
    api.current = run
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        for flag, what, timeout in [(run.first_poll, "poll the Runtime API", 60), (run.finished, "finish", 120)]:
            deadline = time.monotonic() + timeout
            while not flag.wait(0.01):
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError(f"{command[0]} did not {what} (log: {log_path})")
        # VmHWM, not wait4's ru_maxrss: the latter keeps the high-water mark of the
        # process image before exec, which here is this Python process.
        peak_kib = vm_hwm_kib(proc.pid)
        proc.kill()
        proc.wait()
    finally:
        if log_path:
            out.close()
        api.current = None
    if run.first_poll_at is None:
        # The runtime reported an init error instead of polling: say so, with its words.
        raise RuntimeError(f"{command[0]} failed to start: {run.answers} (log: {log_path})")
    return run.first_poll_at - started, peak_kib, run


# ---- emulators and their contents ------------------------------------------------------


def wait_http(url):
    for _ in range(150):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def stripe(base, path, form):
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(f"{base}{path}", data=data)
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{STRIPE_KEY}:".encode()).decode())
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def seed(moto, stripe_base):
    """The resources the functions' environments name, in moto and localstripe."""
    aws = dict(endpoint_url=moto, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    boto3.client("dynamodb", **aws).create_table(
        TableName=PREFIX,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    topic = boto3.client("sns", **aws).create_topic(Name=f"{PREFIX}-alerts")["TopicArn"]
    boto3.client("events", **aws).create_event_bus(Name=PREFIX)
    secret = boto3.client("secretsmanager", **aws).create_secret(Name=f"{PREFIX}/stripe", SecretString=STRIPE_KEY)[
        "ARN"
    ]
    # The decision the provisioner's measured run begins: it acts only on a decision the
    # audit trail holds (as the evaluator records it: an Execute, minutes old).
    boto3.resource("dynamodb", **aws).Table(PREFIX).put_item(
        Item={
            "pk": "AUDIT",
            "sk": PERF_DECISION,
            "id": PERF_DECISION,
            "at": "2026-11-29T06:00:00Z",
            "kind": "evaluation",
            "actor": "revscale",
            "decision": {
                "id": PERF_DECISION,
                "date": "2026-11-29",
                "mode": "auto",
                "from_level": 0,
                "to_level": 1,
                "cause": "growth",
                "outcome": "execute",
                "transitions": PERF_TRANSITIONS,
                "reasons": [],
                "figures": {"mrr": None, "average_3m": None, "cost": None, "ratio": None},
            },
            "events": [],
            "note": "",
        }
    )
    # Month to date: two tagged components, in USD, as Cost Explorer groups them.
    groups = [
        {"Keys": [f"revscale-component${c}"], "Metrics": {"UnblendedCost": {"Amount": a, "Unit": "USD"}}}
        for c, a in [("ollama", "12.3456789"), ("sqlite", "0.0000012")]
    ]
    ce = {"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-29"}, "Total": {}, "Groups": groups, "Estimated": True}
    request = urllib.request.Request(
        f"{moto}/moto-api/static/ce/cost-and-usage-results",
        data=json.dumps({"results": [ce]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request).read()
    # One paying customer at EUR 320 a month (localstripe starts empty).
    plan = f"perf-{os.getpid()}-{time.time_ns()}"
    stripe(stripe_base, "/v1/plans", {"id": plan, "amount": "32000", "currency": "eur", "interval": "month", "product[name]": plan})
    card = {"card[number]": "4242424242424242", "card[exp_month]": "12", "card[exp_year]": "2030", "card[cvc]": "123"}
    token = stripe(stripe_base, "/v1/tokens", card)["id"]
    customer = stripe(stripe_base, "/v1/customers", {"email": "perf@example.com", "source": token})["id"]
    stripe(stripe_base, "/v1/subscriptions", {"customer": customer, "items[0][plan]": plan})
    return topic, secret


def events_for(function):
    """The invocation measured for each function: the shipped sample event, except for
    the provisioner, which begins a level 0 -> 1 run (the shipped sample starts at
    level 1) and then starts its first step, a real EKS CreateCluster."""
    def load(path):
        return json.loads((ROOT / "events" / path).read_text())

    if function == "provision":
        begin = load("provision/begin.json")
        begin["request"].update(
            decision_id=PERF_DECISION, from_level=0, to_level=1, transitions=PERF_TRANSITIONS, cause="growth"
        )
        start = {"action": "start", "decision_id": PERF_DECISION, "index": 0, "now": "2026-11-29T06:00:07Z"}
        return [begin, start]
    sample = {
        "collect-revenue": "collect-revenue/scheduled.json",
        "collect-cost": "collect-cost/scheduled.json",
        "evaluate": "evaluate/scheduled.json",
        "override-api": "override-api/status.json",
    }[function]
    return [load(sample)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", required=True, type=pathlib.Path, help="host-built binaries, one per function")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--zip-dir", type=pathlib.Path, help="cargo lambda's output: <function>/bootstrap.zip")
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures here")
    parser.add_argument("--functions", nargs="+", choices=FUNCTIONS, default=FUNCTIONS,
                        help="measure only these (e.g. one function before and after a change)")
    args = parser.parse_args()

    venv_bin = pathlib.Path(sys.executable).parent
    log_dir = ROOT / ".ci" / ".state" / "perf"
    log_dir.mkdir(parents=True, exist_ok=True)
    moto_port, stripe_port = free_port(), free_port()
    servers = [
        subprocess.Popen(
            [venv_bin / "moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
            stdout=open(log_dir / "moto.log", "wb"), stderr=subprocess.STDOUT,
        ),
        # localstripe from scratch, on 127.0.0.1, with nothing kept on disk.
        subprocess.Popen(
            [venv_bin / "python", ROOT / "tests" / "localstripe_server.py", str(stripe_port)],
            stdout=open(log_dir / "localstripe.log", "wb"), stderr=subprocess.STDOUT,
        ),
    ]
    api = RuntimeApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        moto, stripe_base = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{stripe_port}"
        wait_http(f"{moto}/moto-api/")
        wait_http(f"{stripe_base}/v1/customers")
        topic, secret = seed(moto, stripe_base)
        config = ROOT / "config" / "revenue_thresholds.yaml"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": "perf",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/perf",
            "AWS_LAMBDA_LOG_STREAM_NAME": "perf",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_ENDPOINT_URL": moto,
            "TABLE_NAME": PREFIX,
            "EVENT_BUS_NAME": PREFIX,
            "ALERT_TOPIC_ARN": topic,
            "STRIPE_SECRET_ARN": secret,
            "STRIPE_API_BASE": stripe_base,
            "COST_TAG_KEY": "revscale-component",
            "FX_RATES": "USD=0.93",
            # The operator API's roles (its sample request is a GET /status by alice).
            "OPERATOR_PRINCIPALS": "arn:aws:iam::123456789012:user/*",
            "APPROVER_PRINCIPALS": "arn:aws:iam::123456789012:user/*",
            "SCHEDULE_TIMEZONE": "Europe/Rome",
            # The stack's cluster, roles and flag prefix, as the template sets them.
            "EKS_CLUSTER_NAME": "revscale",
            "EKS_CLUSTER_ROLE_ARN": "arn:aws:iam::123456789012:role/revscale-eks-cluster",
            "EKS_NODE_ROLE_ARN": "arn:aws:iam::123456789012:role/revscale-eks-node",
            "FLAG_PREFIX": "/revscale/flags",
            # The operator API releases a provisioning run only after asking the state
            # machine; the status request measured here never calls it.
            "PROVISION_STATE_MACHINE_ARN": f"arn:aws:states:{REGION}:123456789012:stateMachine:{PREFIX}-provision",
            "RUST_LOG": "info",
            # The Rust functions use the configuration built into them, the Python
            # counterpart parses the same file.
            "REVSCALE_CONFIG_FOR_PYTHON": str(config),
        }
        rows = []
        # The provisioner acts on the state the evaluator stores (its first evaluation
        # creates it): measured alone, it would measure its "no state" refusal.
        functions = [f for f in FUNCTIONS if f in args.functions or (f == "evaluate" and "provision" in args.functions)]
        for function in functions:
            binary = args.bin_dir / function
            if not binary.exists():
                raise SystemExit(f"{binary} is missing: build the functions for this machine first")
            rust_cmd = [str(binary)]
            python_cmd = [sys.executable, str(ROOT / "tests" / "perf" / "python_handler.py"), function]
            rust_times, python_times, python_kib = [], [], 0
            for _ in range(args.runs):
                rust_times.append(run_process(api, rust_cmd, env, [], log_dir / f"{function}.cold.log")[0])
                seconds, kib, _ = run_process(api, python_cmd, env, [], log_dir / f"{function}.py.log")
                python_times.append(seconds)
                python_kib = max(python_kib, kib)
            peak_kib, answers, durations = 0, [], []
            for event in events_for(function):
                _, rss, run = run_process(api, rust_cmd, env, [event], log_dir / f"{function}.invoke.log")
                peak_kib = max(peak_kib, rss)
                answers += run.answers
                durations += run.durations
            zip_path = args.zip_dir / function / "bootstrap.zip" if args.zip_dir else None
            rows.append({
                "function": function,
                "rust_cold_start_ms": statistics.median(rust_times) * 1000,
                "python_cold_start_ms": statistics.median(python_times) * 1000,
                "peak_rss_mib": peak_kib / 1024,
                "python_init_rss_mib": python_kib / 1024,
                "invocation_ms": [round(d * 1000, 1) for d in durations],
                "answers": [kind + (": " + body[:160] if kind != "response" else "") for kind, body in answers],
                "zip_bytes": zip_path.stat().st_size if zip_path and zip_path.exists() else None,
            })
            print(f"measured {function}", file=sys.stderr, flush=True)
    finally:
        api.shutdown()
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(10)

    print(f"\nBinaries: {args.bin_dir}. Cold start = exec until the first poll of the Runtime API,"
          f" median of {args.runs} runs; peak RSS over a cold start plus one invocation"
          " (provision: begin, then start).\n")
    print("| function | Rust cold start | Python 3 + boto3 | ratio | Rust peak RSS | Python RSS after init"
          " | invocation | answer | zip |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        zip_text = f"{r['zip_bytes'] / 1e6:.2f} MB" if r["zip_bytes"] is not None else "-"
        print(
            f"| {r['function']} | {r['rust_cold_start_ms']:.1f} ms | {r['python_cold_start_ms']:.1f} ms"
            f" | {r['python_cold_start_ms'] / r['rust_cold_start_ms']:.1f}x | {r['peak_rss_mib']:.1f} MiB"
            f" | {r['python_init_rss_mib']:.1f} MiB"
            f" | {' + '.join(f'{d} ms' for d in r['invocation_ms'])} | {'; '.join(r['answers'])} | {zip_text} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    failed = [r["function"] for r in rows if any(not a.startswith("response") for a in r["answers"])]
    if failed:
        raise SystemExit(f"these functions answered with an error: {', '.join(failed)} (logs in {log_dir})")


if __name__ == "__main__":
    main()
