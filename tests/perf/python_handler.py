"""The Python 3 + boto3 counterpart of a revscale function's cold start, for tests/perf/perf.py.

It does what the Rust function's `main` does before asking for its first event: create
the same SDK clients (at module level, as Python Lambdas do), read the Stripe secret
for collect-revenue, parse the thresholds configuration for the functions that load
it. Then it polls the Lambda Runtime API as the managed runtime would, answering any
event with an empty response: only its start-up is compared, not its work.
"""

import json
import os
import sys
import urllib.request

import boto3
import yaml

FUNCTION = sys.argv[1]
CLIENTS = {
    "collect-revenue": ["dynamodb", "secretsmanager"],
    "collect-cost": ["dynamodb", "ce"],
    "evaluate": ["dynamodb", "events", "sns"],
    "provision": ["dynamodb", "eks", "ssm", "events", "sns"],
    "override-api": ["dynamodb", "events", "sns"],
}
LOADS_CONFIG = {"evaluate", "provision", "override-api"}

clients = {service: boto3.client(service) for service in CLIENTS[FUNCTION]}
if FUNCTION == "collect-revenue":
    stripe_key = clients["secretsmanager"].get_secret_value(SecretId=os.environ["STRIPE_SECRET_ARN"])[
        "SecretString"
    ]
if FUNCTION in LOADS_CONFIG:
    with open(os.environ["REVSCALE_CONFIG_FOR_PYTHON"], encoding="utf-8") as f:
        config = yaml.safe_load(f)

api = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation"
while True:
    with urllib.request.urlopen(f"{api}/next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        response.read()
    urllib.request.urlopen(urllib.request.Request(f"{api}/{request_id}/response", data=json.dumps({}).encode()))
