"""A Kubernetes-API-shaped server for the emulator tests, served by tests/router.py under
/apis/: moto's EKS clusters have no Kubernetes API, and none can be installed on these
machines (kind, k3s and envtest download their binaries). The provision and evaluate
Lambdas reach it through REVSCALE_KUBERNETES_ENDPOINT (tests/emulators.sh).

It follows the API's conventions where the kubernetes_workload driver leans on them:
- Deployments and StatefulSets under /apis/apps/v1/namespaces/NS/{deployments,statefulsets}/NAME,
  with `metadata.generation`, `metadata.resourceVersion` (bumped by every write) and a
  `status` the controller updates later: each read first observes the latest
  generation, then moves one pod towards `spec.replicas` (ready and updated together).
- The `scale` subresource: PATCH .../NAME/scale with a JSON merge patch
  (`application/merge-patch+json`, else 415); a `metadata.resourceVersion` other than
  the object's is a 409 Conflict; a negative or missing `spec.replicas` is a 422.
- HorizontalPodAutoscalers (autoscaling/v2): an empty list. KEDA's ScaledObjects: a 404,
  as on a cluster without KEDA's CRDs.
- Errors are `Status` objects. Every request needs `Authorization: Bearer k8s-aws-v1.`
  + the base64url of a presigned STS GetCallerIdentity URL that signs the
  `x-k8s-aws-id` header, for 60 seconds, signed less than 15 minutes ago; anything else
  is a 401. (Which cluster a token is for is inside its signature: the Rust contract
  test, tests/drivers/kubernetes_workload.rs, recomputes it.)

Control: `POST /_kubernetes` with `{"namespace", "kind": "Deployment"|"StatefulSet",
"name", "replicas", "labels"}` creates or replaces a workload, settled at its replicas;
`GET /_kubernetes` lists each workload's replicas, ready pods and the writes it got.
"""

import base64
import json
import re
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlparse

from aiohttp import web

PLURALS = {"deployments": "Deployment", "statefulsets": "StatefulSet"}
WORKLOAD = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/(deployments|statefulsets)/([^/]+)(/scale)?$")
HPAS = re.compile(r"^/apis/autoscaling/v2/namespaces/([^/]+)/horizontalpodautoscalers$")
SCALED_OBJECTS = re.compile(r"^/apis/keda\.sh/v1alpha1/namespaces/([^/]+)/scaledobjects(/[^/]+)?$")

# (namespace, plural, name) -> the workload's state
workloads = {}
requests_seen = {"accepted": 0, "unauthorized": 0}


def status(code, reason, message):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.json_response(body, status=code)


def well_formed_eks_token(authorization):
    if not authorization or not authorization.startswith("Bearer k8s-aws-v1."):
        return False
    body = authorization[len("Bearer k8s-aws-v1."):]
    if "=" in body:
        return False  # base64url without padding
    try:
        url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except ValueError:
        return False
    query = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    try:
        signed_at = datetime.strptime(query.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return False
    return (
        query.get("Action") == "GetCallerIdentity"
        and query.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256"
        and query.get("X-Amz-Expires") == "60"
        and query.get("X-Amz-SignedHeaders") == "host;x-k8s-aws-id"
        and query.get("X-Amz-Credential", "").endswith("/sts/aws4_request")
        and len(query.get("X-Amz-Signature", "")) == 64
        and 0 <= time.time() - signed_at.timestamp() < 900
    )


def workload_object(key, w):
    namespace, plural, name = key
    return {
        "apiVersion": "apps/v1",
        "kind": PLURALS[plural],
        "metadata": {"name": name, "namespace": namespace, "labels": w["labels"],
                     "generation": w["generation"], "resourceVersion": str(w["resource_version"])},
        "spec": {"replicas": w["replicas"]},
        "status": {"replicas": w["ready"], "readyReplicas": w["ready"], "updatedReplicas": w["ready"],
                   "observedGeneration": w["observed_generation"]},
    }


def catch_up(w):
    """The controller's progress between two reads."""
    if w["observed_generation"] < w["generation"]:
        w["observed_generation"] = w["generation"]
    elif w["ready"] < w["replicas"]:
        w["ready"] += 1
    elif w["ready"] > w["replicas"]:
        w["ready"] -= 1


async def control(request):
    if request.method == "POST":
        spec = await request.json()
        plural = {v: k for k, v in PLURALS.items()}[spec["kind"]]
        replicas = spec.get("replicas", 1)
        workloads[(spec["namespace"], plural, spec["name"])] = {
            "replicas": replicas, "ready": replicas, "generation": 1, "observed_generation": 1,
            "resource_version": 1000, "labels": spec.get("labels", {}), "writes": [],
        }
        return web.json_response({"ok": True})
    listing = [
        {"namespace": ns, "kind": PLURALS[plural], "name": name, "replicas": w["replicas"],
         "ready": w["ready"], "writes": w["writes"]}
        for (ns, plural, name), w in sorted(workloads.items())
    ]
    return web.json_response({"workloads": listing, "requests": requests_seen})


async def handle(request):
    if not well_formed_eks_token(request.headers.get("Authorization")):
        requests_seen["unauthorized"] += 1
        return status(401, "Unauthorized", "Unauthorized")
    requests_seen["accepted"] += 1
    path = request.path
    if HPAS.match(path) and request.method == "GET":
        return web.json_response({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscalerList",
                                  "metadata": {}, "items": []})
    if SCALED_OBJECTS.match(path):
        return status(404, "NotFound", "the server could not find the requested resource")
    match = WORKLOAD.match(path)
    if not match:
        return status(404, "NotFound", f"the server could not find the requested resource ({path})")
    namespace, plural, name, scale = match.groups()
    key = (namespace, plural, name)
    w = workloads.get(key)
    if w is None:
        return status(404, "NotFound", f'{plural}.apps "{name}" not found')
    if request.method == "GET" and not scale:
        catch_up(w)
        return web.json_response(workload_object(key, w))
    if request.method == "PATCH" and scale:
        if request.headers.get("Content-Type") != "application/merge-patch+json":
            return status(415, "UnsupportedMediaType", "the body of the request was in an unknown format")
        try:
            patch = json.loads(await request.read())
        except ValueError:
            return status(400, "BadRequest", "the body of the request does not parse")
        carried = (patch.get("metadata") or {}).get("resourceVersion")
        if carried is not None and carried != str(w["resource_version"]):
            return status(409, "Conflict", f'Operation cannot be fulfilled on {plural}.apps "{name}": the object '
                          "has been modified; please apply your changes to the latest version and try again")
        replicas = (patch.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            return status(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value')
        w["replicas"] = replicas
        w["generation"] += 1
        w["resource_version"] += 1
        w["writes"].append(replicas)
        return web.json_response({"kind": "Scale", "apiVersion": "autoscaling/v1",
                                  "metadata": {"name": name, "namespace": namespace,
                                               "resourceVersion": str(w["resource_version"])},
                                  "spec": {"replicas": replicas}, "status": {"replicas": w["ready"]}})
    return status(405, "MethodNotAllowed", f"{request.method} is not supported on {path}")
