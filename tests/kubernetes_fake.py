"""A Kubernetes-API-shaped server for the emulator tests, served by tests/router.py under
/apis/ and /api/v1/: moto's EKS clusters have no Kubernetes API, and none can be installed on these
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
- Server-side apply (PATCH `application/apply-patch+yaml`, `fieldManager` required, `force`,
  `dryRun=All` checking everything and storing nothing) of workloads and of the namespaced
  kinds a component's manifests may hold (ConfigMap, Service, ServiceAccount,
  PersistentVolumeClaim, PodDisruptionBudget, NetworkPolicy, Ingress): the object's name
  and namespace must be the path's (400), its namespace must exist (404 `namespaces "x"
  not found`), a `metadata.resourceVersion` other than the object's (or on an object that
  does not exist) is a 409, a workload whose selector does not match its template's labels
  is a 422, and an apply by another field manager without `force` over fields one owns is
  a 409 naming the manager. Each object has a `uid` and a `resourceVersion`.
- DELETE with `DeleteOptions` preconditions (`uid`, `resourceVersion`: 409 when they no
  longer match); the object is gone at once (no finalizers).
- HorizontalPodAutoscalers (autoscaling/v2): those a test adds (`{"hpa": {"namespace", "name",
  "target": {"kind", "name"}}}`), else an empty list. KEDA's ScaledObjects: a 404,
  as on a cluster without KEDA's CRDs.
- Namespaces: `default`, `ledger`, `vault` and `tee` exist, as an operator would have
  created them for the shipped configuration; `escrow` does not, so that applying
  full_escrow's manifests is refused for real (the provisioner test's rejected call).
- Errors are `Status` objects. Every request needs `Authorization: Bearer k8s-aws-v1.`
  + the base64url of a presigned STS GetCallerIdentity URL that signs the
  `x-k8s-aws-id` header, for 60 seconds, signed less than 15 minutes ago; anything else
  is a 401. (Which cluster a token is for is inside its signature: the Rust contract
  test, tests/drivers/kubernetes_workload.rs, recomputes it.)

EKS access entries, which moto does not implement, are answered here too (the router
sends EKS's `/clusters/NAME/access-entries...` calls): CreateAccessEntry (a second one for
a principal is a 409 `ResourceInUseException`, as EKS answers) and AssociateAccessPolicy
(associating a policy again replaces its scope), ListAssociatedAccessPolicies and
DisassociateAccessPolicy, in the shapes of botocore's EKS model. `access_calls` lists
each call answered ("Operation principal [policy]").
Deleting a cluster in moto drops its entries. `GET /_kubernetes` lists them under
`access_entries`: {cluster: {principal: {policy: scope}}}.

Control: `POST /_kubernetes` with `{"namespace", "kind": "Deployment"|"StatefulSet",
"name", "replicas", "labels"}` creates or replaces a workload, settled at its replicas;
with `{"clear": [namespaces]}` removes every object in those namespaces; with `{"hpa": ...}`
adds an HPA.
`GET /_kubernetes` lists each workload's replicas, ready pods and the writes it got
(its replica counts, from the scale subresource or an apply), the other objects by
path, and the deletions.
"""

import base64
import json
import re
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, unquote, urlparse

from aiohttp import web

PLURALS = {"deployments": "Deployment", "statefulsets": "StatefulSet"}
WORKLOAD = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/(deployments|statefulsets)/([^/]+)(/scale)?$")
# The other kinds a component's manifests may hold: (group/version, plural) -> kind.
OTHERS = {
    ("v1", "configmaps"): "ConfigMap", ("v1", "services"): "Service",
    ("v1", "serviceaccounts"): "ServiceAccount", ("v1", "persistentvolumeclaims"): "PersistentVolumeClaim",
    ("policy/v1", "poddisruptionbudgets"): "PodDisruptionBudget",
    ("networking.k8s.io/v1", "networkpolicies"): "NetworkPolicy", ("networking.k8s.io/v1", "ingresses"): "Ingress",
}
OTHER = re.compile(r"^/(?:api/(v1)|apis/([^/]+/[^/]+))/namespaces/([^/]+)/([^/]+)/([^/]+)$")
APPLY = "application/apply-patch+yaml"
HPAS = re.compile(r"^/apis/autoscaling/v2/namespaces/([^/]+)/horizontalpodautoscalers$")
SCALED_OBJECTS = re.compile(r"^/apis/keda\.sh/v1alpha1/namespaces/([^/]+)/scaledobjects(/[^/]+)?$")

# (namespace, plural, name) -> the workload's state
workloads = {}
# path -> {"object", "resource_version", "manager"}: the other kinds
objects = {}
namespaces = {"default", "kube-system", "ledger", "vault", "tee"}
# namespace -> the HorizontalPodAutoscalers there
hpas = {}
# cluster -> principal ARN -> policy ARN -> access scope
access_entries = {}
ACCESS_ENTRIES = re.compile(r"^/clusters/([^/]+)/access-entries(?:/([^/]+)/access-policies(?:/([^/]+))?)?$")
# Each access-entry call answered, as "Operation principal [policy]".
access_calls = []
deleted = []
requests_seen = {"accepted": 0, "unauthorized": 0, "applied": 0, "dry_runs": 0}
next_version = [5000]


def bump():
    next_version[0] += 1
    return next_version[0]


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
    spec = dict(w.get("spec", {}))
    spec["replicas"] = w["replicas"]
    return {
        "apiVersion": "apps/v1",
        "kind": PLURALS[plural],
        "metadata": {"name": name, "namespace": namespace, "labels": w["labels"], "uid": w["uid"],
                     "generation": w["generation"], "resourceVersion": str(w["resource_version"])},
        "spec": spec,
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
        if "hpa" in spec:
            hpa = spec["hpa"]
            hpas.setdefault(hpa["namespace"], []).append({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": hpa["name"], "namespace": hpa["namespace"]},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", **hpa["target"]},
                         "minReplicas": 1, "maxReplicas": 5}})
            return web.json_response({"ok": True})
        if "clear" in spec:
            for key in [k for k in workloads if k[0] in spec["clear"]]:
                del workloads[key]
            for path in [p for p, o in objects.items() if o["object"]["metadata"]["namespace"] in spec["clear"]]:
                del objects[path]
            return web.json_response({"ok": True})
        plural = {v: k for k, v in PLURALS.items()}[spec["kind"]]
        replicas = spec.get("replicas", 1)
        namespaces.add(spec["namespace"])
        workloads[(spec["namespace"], plural, spec["name"])] = {
            "replicas": replicas, "ready": replicas, "generation": 1, "observed_generation": 1,
            "resource_version": bump(), "labels": spec.get("labels", {}), "writes": [],
            "uid": f"uid-{bump()}", "manager": None,
        }
        return web.json_response({"ok": True})
    listing = [
        {"namespace": ns, "kind": PLURALS[plural], "name": name, "replicas": w["replicas"],
         "ready": w["ready"], "writes": w["writes"]}
        for (ns, plural, name), w in sorted(workloads.items())
    ]
    return web.json_response({"workloads": listing, "objects": sorted(objects), "deleted": deleted,
                              "access_entries": access_entries, "access_calls": access_calls,
                              "requests": requests_seen})


def eks_error(code, error_type, message):
    return web.json_response({"message": message}, status=code, headers={"x-amzn-ErrorType": error_type})


async def access_entry_call(request):
    """CreateAccessEntry, ListAssociatedAccessPolicies, AssociateAccessPolicy or
    DisassociateAccessPolicy, or None for another EKS call."""
    # The principal ARN is one path segment, its "/" escaped: match before unescaping.
    match = ACCESS_ENTRIES.match(request.rel_url.raw_path)
    if not match or request.method not in ("POST", "GET", "DELETE"):
        return None
    cluster, principal = match.group(1), match.group(2) and unquote(match.group(2))
    policy_in_path = match.group(3) and unquote(match.group(3))
    body = json.loads(await request.read() or b"{}")
    now = time.time()
    if request.method == "GET" and principal is not None and policy_in_path is None:
        access_calls.append(f"ListAssociatedAccessPolicies {principal}")
        if principal not in access_entries.get(cluster, {}):
            return eks_error(404, "ResourceNotFoundException", "The specified principalArn could not be found.")
        return web.json_response({"clusterName": cluster, "principalArn": principal, "associatedAccessPolicies": [
            {"policyArn": policy, "accessScope": scope, "associatedAt": now, "modifiedAt": now}
            for policy, scope in access_entries[cluster][principal].items()]})
    if request.method == "DELETE" and policy_in_path is not None:
        access_calls.append(f"DisassociateAccessPolicy {principal} {policy_in_path}")
        policies = access_entries.get(cluster, {}).get(principal)
        if policies is None or policy_in_path not in policies:
            return eks_error(404, "ResourceNotFoundException", "The specified policy is not associated.")
        del policies[policy_in_path]
        return web.json_response({})
    if request.method != "POST" or policy_in_path is not None:
        return None
    if principal is None:
        access_calls.append(f"CreateAccessEntry {body.get('principalArn', '')}")
        principal = body.get("principalArn", "")
        entries = access_entries.setdefault(cluster, {})
        if principal in entries:
            return eks_error(409, "ResourceInUseException",
                             f"The specified access entry resource is already in use on this cluster.")
        entries[principal] = {}
        return web.json_response({"accessEntry": {
            "clusterName": cluster, "principalArn": principal, "kubernetesGroups": [], "type": "STANDARD",
            "accessEntryArn": f"arn:aws:eks:eu-west-1:123456789012:access-entry/{cluster}/role/123456789012/x/0",
            "createdAt": now, "modifiedAt": now, "tags": {}, "username": principal}})
    entries = access_entries.get(cluster, {})
    if principal not in entries:
        return eks_error(404, "ResourceNotFoundException", f"The specified principalArn could not be found.")
    policy, scope = body.get("policyArn"), body.get("accessScope")
    access_calls.append(f"AssociateAccessPolicy {principal} {policy}")
    if not policy or not scope or scope.get("type") not in ("cluster", "namespace"):
        return eks_error(400, "InvalidParameterException", "policyArn and accessScope are required")
    entries[principal][policy] = scope
    return web.json_response({"clusterName": cluster, "principalArn": principal, "associatedAccessPolicy": {
        "policyArn": policy, "accessScope": scope, "associatedAt": now, "modifiedAt": now}})


def cluster_deleted(request):
    """Forgets a cluster's access entries when moto is asked to delete it."""
    match = re.match(r"^/clusters/([^/]+)$", request.path)
    if request.method == "DELETE" and match:
        access_entries.pop(match.group(1), None)


def problem_with(obj, kind, namespace, name):
    """Why the API server would refuse `obj` at this path, as (code, reason, message)."""
    metadata = obj.get("metadata") or {}
    if obj.get("kind") != kind:
        return 400, "BadRequest", f"the kind of the object ({obj.get('kind')}) does not match the path ({kind})"
    if metadata.get("name") != name:
        return 400, "BadRequest", (f"the name of the object ({metadata.get('name')}) does not match the name "
                                   f"on the URL ({name})")
    if metadata.get("namespace", namespace) != namespace:
        return 400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request"
    if namespace not in namespaces:
        return 404, "NotFound", f'namespaces "{namespace}" not found'
    if kind in ("Deployment", "StatefulSet"):
        spec = obj.get("spec") or {}
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            return 422, "Invalid", (f'{kind}.apps "{name}" is invalid: spec.template.metadata.labels: Invalid '
                                    "value: `selector` does not match template `labels`")
    return None


async def server_side_apply(request, kind, namespace, name, current, current_version, current_manager):
    """Checks an apply; the object to store, or the error answer."""
    if request.headers.get("Content-Type") != APPLY:
        return None, status(415, "UnsupportedMediaType", "the body of the request was in an unknown format")
    manager = request.query.get("fieldManager")
    if not manager:
        return None, status(422, "Invalid", "PatchOptions.meta.k8s.io is invalid: fieldManager: Required value: "
                            "is required for apply patch")
    try:
        obj = json.loads(await request.read())
    except ValueError:
        return None, status(400, "BadRequest", "the body of the request does not parse")
    refused = problem_with(obj, kind, namespace, name)
    if refused:
        return None, status(*refused)
    carried = (obj.get("metadata") or {}).get("resourceVersion")
    if carried is not None and (current is None or carried != str(current_version)):
        return None, status(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": the object has '
                            "been modified; please apply your changes to the latest version and try again")
    if current is not None and current_manager not in (None, manager) and request.query.get("force") != "true":
        return None, status(409, "Conflict", f"Apply failed with 1 conflict: conflict with \"{current_manager}\"")
    if request.query.get("dryRun") == "All":
        requests_seen["dry_runs"] += 1
    else:
        requests_seen["applied"] += 1
    return obj, None


def preconditions_fail(request_body, uid, version):
    wanted = (request_body or {}).get("preconditions") or {}
    if wanted.get("uid") not in (None, uid):
        return f"Precondition failed: UID in precondition: {wanted['uid']}, UID in object meta: {uid}"
    if wanted.get("resourceVersion") not in (None, str(version)):
        return (f"Precondition failed: ResourceVersion in precondition: {wanted['resourceVersion']}, "
                f"ResourceVersion in object meta: {version}")
    return None


async def delete_body(request):
    raw = await request.read()
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


async def other_kind(request, match):
    core, group, namespace, plural, name = match.groups()
    version = core or group
    kind = OTHERS.get((version, plural))
    if kind is None:
        return status(404, "NotFound", f"the server could not find the requested resource ({request.path})")
    path = request.path
    stored = objects.get(path)
    if request.method == "GET":
        if stored is None:
            return status(404, "NotFound", f'{plural} "{name}" not found')
        return web.json_response(stored["object"])
    if request.method == "PATCH":
        obj, refused = await server_side_apply(request, kind, namespace, name, stored,
                                               stored and stored["resource_version"], stored and stored["manager"])
        if refused:
            return refused
        version = bump() if request.query.get("dryRun") != "All" else (stored or {}).get("resource_version", 0)
        metadata = dict(obj.get("metadata") or {})
        metadata.update({"namespace": namespace, "resourceVersion": str(version),
                         "uid": stored["object"]["metadata"]["uid"] if stored else f"uid-{bump()}"})
        applied = dict(obj, metadata=metadata)
        if request.query.get("dryRun") != "All":
            objects[path] = {"object": applied, "resource_version": version,
                             "manager": request.query.get("fieldManager")}
        return web.json_response(applied)
    if request.method == "DELETE":
        if stored is None:
            return status(404, "NotFound", f'{plural} "{name}" not found')
        failed = preconditions_fail(await delete_body(request), stored["object"]["metadata"]["uid"],
                                    stored["resource_version"])
        if failed:
            return status(409, "Conflict", failed)
        del objects[path]
        deleted.append(path)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"})
    return status(405, "MethodNotAllowed", f"{request.method} is not supported on {path}")


async def handle(request):
    if not well_formed_eks_token(request.headers.get("Authorization")):
        requests_seen["unauthorized"] += 1
        return status(401, "Unauthorized", "Unauthorized")
    requests_seen["accepted"] += 1
    path = request.path
    if HPAS.match(path) and request.method == "GET":
        return web.json_response({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscalerList",
                                  "metadata": {}, "items": hpas.get(HPAS.match(path).group(1), [])})
    if SCALED_OBJECTS.match(path):
        return status(404, "NotFound", "the server could not find the requested resource")
    match = WORKLOAD.match(path)
    if not match and OTHER.match(path):
        return await other_kind(request, OTHER.match(path))
    if not match:
        return status(404, "NotFound", f"the server could not find the requested resource ({path})")
    namespace, plural, name, scale = match.groups()
    key = (namespace, plural, name)
    w = workloads.get(key)
    if request.method == "PATCH" and not scale:
        return await apply_workload(request, key, w)
    if w is None:
        return status(404, "NotFound", f'{plural}.apps "{name}" not found')
    if request.method == "DELETE" and not scale:
        failed = preconditions_fail(await delete_body(request), w["uid"], w["resource_version"])
        if failed:
            return status(409, "Conflict", failed)
        del workloads[key]
        deleted.append(request.path)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"})
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


async def apply_workload(request, key, w):
    """Server-side apply of a Deployment or StatefulSet: created at the replicas it
    names (1 when it names none), or its spec, labels and replicas updated."""
    namespace, plural, name = key
    obj, refused = await server_side_apply(request, PLURALS[plural], namespace, name, w,
                                           w and w["resource_version"], w and w["manager"])
    if refused:
        return refused
    spec = dict(obj.get("spec") or {})
    replicas = spec.pop("replicas", w["replicas"] if w else 1)
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if request.query.get("dryRun") == "All":
        preview = {"replicas": replicas, "ready": 0, "generation": 1, "observed_generation": 0,
                   "resource_version": w["resource_version"] if w else 0, "labels": labels, "spec": spec,
                   "uid": w["uid"] if w else "", "writes": []}
        return web.json_response(workload_object(key, preview))
    if w is None:
        w = workloads[key] = {"replicas": replicas, "ready": 0, "generation": 1, "observed_generation": 0,
                              "resource_version": bump(), "labels": labels, "spec": spec, "writes": [replicas],
                              "uid": f"uid-{bump()}", "manager": request.query.get("fieldManager")}
    else:
        if spec != w.get("spec") or replicas != w["replicas"]:
            w["generation"] += 1
        if replicas != w["replicas"]:
            w["writes"].append(replicas)
        w.update({"replicas": replicas, "labels": labels, "spec": spec, "resource_version": bump(),
                  "manager": request.query.get("fieldManager")})
    return web.json_response(workload_object(key, w))
