"""A small router in front of moto, so moto's Step Functions call our real Lambdas, and
a fault injector for the chaos test.

moto executes state machines and invokes Lambda tasks on http://localhost:$MOTO_PORT.
This router listens there: Lambda invocations (/2015-03-31/functions/*/invocations)
go to `cargo lambda watch`, which runs the real Rust binaries; everything else goes to
moto itself. The provision Lambda sends its own AWS calls (DynamoDB, EKS, SSM, SNS...)
here too, so a fault can be injected into any of them.

Faults: `POST /_faults` with `{"faults": [{"service": "lambda", "operation": "...",
"skip": 3, "times": 1, "kind": "throttle"}]}` replaces the list; `GET /_faults` says
which fired; `DELETE /_faults` clears it. A fault matches requests to `service` (the
SigV4 signing name: lambda, dynamodb, eks, ssm...) whose operation (`X-Amz-Target`, or
`METHOD /path` for REST APIs) contains `operation`; it lets `skip` of them through, then
answers the next `times` itself. `"exact": true` matches the operation exactly (so
`DELETE /clusters/revscale` is not also the node group's deletion); a fault with
`"after": NAME` is armed only once the fault named NAME (its `"name"`) has fired, so a
fault can be placed at a point of the run (after the cluster is gone, during the
rollback). Kinds:

- `throttle`: for Lambda, what Step Functions reports when Invoke answers 429
  (`Lambda.TooManyRequestsException`); the function does not run. For DynamoDB, a
  ThrottlingException (or, for TransactWriteItems, a transaction cancelled for
  throttling).
- `service_error`: for Lambda, the function runs but its answer is lost
  (`Lambda.ServiceException`, Invoke's HTTP 500); for other services an HTTP 500.
- `rejected`: a 400 the caller cannot retry (InvalidParameterException).
- `pass`: the request goes through untouched; only recorded as fired (a marker for
  `after`, or a tally of calls a test counts, such as creations during a drain).

Recorded answers, for calls moto does not implement (Cost Explorer's cost allocation
tags, IAM's policy simulation), in the shapes AWS documents for them (botocore's service
models): `POST /_answers` with `{"answers": [{"service": "ce", "operation":
"ListCostAllocationTags", "body_contains": "rsx123", "status": 200, "content_type":
"application/x-amz-json-1.1", "body": "..."}]}` puts them before those already there (the
newest answers first), so that concurrent tests, each naming its own resources in
`body_contains`, do not see each other's. An answer matches a request to `service` whose
operation (`X-Amz-Target`, or a Query body's `Action=`) contains `operation` and whose body
contains `body_contains`. An answer with `"simulate_deny": [actions]` is IAM's policy
simulation of the actions asked, each allowed but those; one with
`"cost_allocation_tags": {key: {"Status", "LastUpdatedDate"}}` is Billing's cost
allocation tags, listed and updated (operation `CostAllocationTags` matches both calls).
`GET /_answers` lists the requests each answer got (`hits`: each
request's operation and body), so a test can check what was sent.

moto's Step Functions names an error from a failed Invoke call "Exception", where AWS
names it `Lambda.<code>`: the router therefore answers a Lambda fault as a function
error whose errorType is the name AWS would give, which is what the state machine's
Retry rules see in AWS.

The Kubernetes API of every EKS cluster (moto's have none) is served here too, under
`/apis/` and `/api/v1/`, with its control at `/_kubernetes`, and EKS's access entries
(moto has none): tests/kubernetes_fake.py.

Usage: router.py LISTEN_PORT MOTO_PORT LAMBDA_PORT (all on 127.0.0.1).
"""

import json
import re
import sys
import time
from urllib.parse import parse_qsl, unquote

import aiohttp

import kubernetes_fake
from aiohttp import web

LISTEN, MOTO, LAMBDA = (int(p) for p in sys.argv[1:4])
INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
SIGNING_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}

faults: list = []
fired: list = []
answers: list = []


def function_name(raw: str) -> str:
    """`arn:aws:lambda:eu-west-1:123456789012:function:provision[:alias]` -> `provision`."""
    name = unquote(raw)
    if name.startswith("arn:"):
        name = name.split(":function:", 1)[1].split(":", 1)[0]
    return name


def service_and_operation(request: web.Request) -> tuple:
    match = SIGNING_SERVICE.search(request.headers.get("Authorization", ""))
    service = match.group(1) if match else ""
    if INVOKE.match(request.path):
        service = "lambda"
    operation = request.headers.get("X-Amz-Target") or f"{request.method} {request.path}"
    return service, operation


def take_fault(service: str, operation: str):
    """The fault that answers this request, if one is due."""
    fired_names = {f.get("name") for f in fired if f.get("name")}
    for fault in faults:
        wanted = fault.get("operation", "")
        matches = operation == wanted if fault.get("exact") else wanted in operation
        if fault["service"] != service or not matches:
            continue
        if fault.get("after") and fault["after"] not in fired_names:
            continue
        if fault.get("skip", 0) > 0:
            fault["skip"] -= 1
            continue
        if fault.get("times", 1) > 0:
            fault["times"] = fault.get("times", 1) - 1
            fired.append(
                {"service": service, "operation": operation, "kind": fault["kind"], "name": fault.get("name")}
            )
            if fault["kind"] == "pass":
                continue  # goes through; a later fault may still answer it
            return fault
    return None


def function_error(error_type: str, message: str) -> web.Response:
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    headers = {"X-Amz-Function-Error": "Unhandled", "Content-Type": "application/json"}
    return web.Response(status=200, body=body, headers=headers)


def service_fault(service: str, operation: str, kind: str) -> web.Response:
    if kind == "throttle" and service == "dynamodb" and "TransactWriteItems" in operation:
        body = {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [ThrottlingError, ThrottlingError]",
            "CancellationReasons": [
                {"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity of your table or index."},
                {"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity of your table or index."},
            ],
        }
        status, code = 400, "TransactionCanceledException"
    elif kind == "throttle":
        body = {"__type": "ThrottlingException", "message": "Rate exceeded (injected)"}
        status, code = 400, "ThrottlingException"
    elif kind == "service_error":
        body = {"__type": "InternalServerError", "message": "injected server error"}
        status, code = 500, "InternalServerError"
    else:
        body = {"__type": "InvalidParameterException", "message": "injected rejection"}
        status, code = 400, "InvalidParameterException"
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    return web.Response(status=status, body=json.dumps(body).encode(), headers=headers)


async def control(request: web.Request) -> web.Response:
    global faults, fired
    if request.method == "POST":
        faults = (await request.json()).get("faults", [])
        fired = []
    elif request.method == "DELETE":
        faults, fired = [], []
    return web.json_response({"fired": fired, "pending": faults})


def recorded_answer(service: str, operation: str, body: bytes):
    """The recorded answer to this request, if a test gave one."""
    text = body.decode("utf-8", "replace")
    for answer in answers:
        wanted = answer.get("operation", "")
        if answer["service"] != service or not (wanted in operation or f"Action={wanted}" in text):
            continue
        if answer.get("body_contains", "") not in text:
            continue
        answer.setdefault("hits", []).append(f"{operation} {text}")
        if "simulate_deny" in answer:
            return simulation(text, answer["simulate_deny"])
        if "cost_allocation_tags" in answer:
            return cost_allocation_tags(operation, text, answer["cost_allocation_tags"])
        headers = {"Content-Type": answer.get("content_type", "application/x-amz-json-1.1")}
        if answer.get("status", 200) >= 400 and answer.get("error_type"):
            headers["x-amzn-ErrorType"] = answer["error_type"]
        return web.Response(status=answer.get("status", 200), body=answer["body"].encode(), headers=headers)
    return None


def simulation(form: str, denied: list) -> web.Response:
    """IAM's SimulatePrincipalPolicy answer for the actions asked: each `allowed`, but
    those in `denied` (`implicitDeny`), as a policy granting all but those would."""
    asked = [v for k, v in parse_qsl(form) if k.startswith("ActionNames.member.")]
    members = "".join(
        f"<member><EvalResourceName>*</EvalResourceName><EvalActionName>{a}</EvalActionName>"
        f"<EvalDecision>{'implicitDeny' if a in denied else 'allowed'}</EvalDecision><MatchedStatements/></member>"
        for a in asked
    )
    body = (
        '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
        f"<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>{members}</EvaluationResults>"
        "</SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>recorded</RequestId></ResponseMetadata>"
        "</SimulatePrincipalPolicyResponse>"
    )
    return web.Response(status=200, body=body.encode(), headers={"Content-Type": "text/xml"})


def cost_allocation_tags(operation: str, body: str, tags: dict) -> web.Response:
    """Cost Explorer's ListCostAllocationTags and UpdateCostAllocationTagsStatus over
    `tags` ({key: {"Status": "Active"|"Inactive", "LastUpdatedDate": ...}}): Billing
    knows only these keys, and an update changes them as AWS would."""
    request = json.loads(body or "{}")
    if "UpdateCostAllocationTagsStatus" in operation:
        errors = []
        for entry in request.get("CostAllocationTagsStatus", []):
            key = entry["TagKey"]
            if key not in tags:
                errors.append({"TagKey": key, "Code": "TagKeysNotFoundException", "Message": f"Tag key {key} not found"})
                continue
            tags[key]["Status"] = entry["Status"]
            tags[key]["LastUpdatedDate"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        answer = {"Errors": errors}
    else:
        wanted = request.get("TagKeys") or list(tags)
        answer = {
            "CostAllocationTags": [
                {"TagKey": k, "Type": "UserDefined", **tags[k]} for k in wanted if k in tags
            ]
        }
    return web.Response(status=200, body=json.dumps(answer).encode(), headers={"Content-Type": "application/x-amz-json-1.1"})


async def answers_control(request: web.Request) -> web.Response:
    global answers
    if request.method == "POST":
        answers = (await request.json()).get("answers", []) + answers
    elif request.method == "DELETE":
        answers = []
    return web.json_response({"answers": answers})


async def upstream(request: web.Request, url: str, body: bytes, invoke: bool):
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    timeout = aiohttp.ClientTimeout(total=900)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        async with session.request(request.method, url, headers=headers, data=body) as answer:
            payload = await answer.read()
            out_headers = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
            status = answer.status
            if invoke and status >= 500 and b'"errorType"' in payload:
                # cargo lambda answers a function error with HTTP 500; the Lambda Invoke API
                # answers 200 with X-Amz-Function-Error, which is what Step Functions reads
                # the error name (errorType) from.
                status = 200
                out_headers["X-Amz-Function-Error"] = "Unhandled"
                out_headers["Content-Type"] = "application/json"
            return web.Response(status=status, body=payload, headers=out_headers)


async def forward(request: web.Request) -> web.Response:
    if request.path == "/_faults":
        return await control(request)
    if request.path == "/_answers":
        return await answers_control(request)
    # The clusters' Kubernetes API (tests/kubernetes_fake.py says what it follows).
    if request.path == "/_kubernetes":
        return await kubernetes_fake.control(request)
    if request.path.startswith(("/apis/", "/api/v1/")):
        return await kubernetes_fake.handle(request)
    match = INVOKE.match(request.path)
    if match:
        url = f"http://127.0.0.1:{LAMBDA}/2015-03-31/functions/{function_name(match.group(1))}/invocations"
    else:
        url = f"http://127.0.0.1:{MOTO}{request.path_qs}"
    service, operation = service_and_operation(request)
    # EKS's access entries, which moto lacks (tests/kubernetes_fake.py).
    if service == "eks":
        kubernetes_fake.cluster_deleted(request)
        answered = await kubernetes_fake.access_entry_call(request)
        if answered is not None:
            return answered
    body = await request.read()
    recorded = recorded_answer(service, operation, body)
    if recorded is not None:
        return recorded
    fault = take_fault(service, operation)
    if fault and match:
        if fault["kind"] == "throttle":
            return function_error("Lambda.TooManyRequestsException", "Rate Exceeded. (injected)")
        # The function runs; its answer is lost on the way back.
        await upstream(request, url, body, invoke=True)
        return function_error("Lambda.ServiceException", "injected service error after the function ran")
    if fault:
        return service_fault(service, operation, fault["kind"])
    return await upstream(request, url, body, invoke=bool(match))


app = web.Application(client_max_size=64 * 1024 * 1024)
app.router.add_route("*", "/{tail:.*}", forward)
web.run_app(app, host="127.0.0.1", port=LISTEN, print=None)
