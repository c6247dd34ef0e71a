//! `kubernetes_workload`, through the whole AWS side: the cluster is read from moto
//! (`DescribeCluster`), the token is minted from the SDK's credentials, and the
//! Kubernetes API is a fake that follows the API's conventions where the driver leans
//! on them: `resourceVersion` bumped by every write and a 409 for a write carrying an
//! older one, the `scale` subresource (merge patch), `generation` and
//! `observedGeneration`, pods that become ready one read at a time, a `Status` object
//! for every error, and a bearer token checked to be an EKS token signed for this
//! cluster with the tests' credentials (anything else is a 401). moto's clusters have
//! no Kubernetes API, and none can be installed here (kind, k3s and envtest download
//! their binaries).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use revscale_aws::drivers::AwsDrivers;
use revscale_aws::kubernetes::{TOKEN_PREFIX, TestEndpoint, eks_token};
use revscale_engine::drivers::KubernetesWorkload;
use revscale_engine::drivers::kubernetes_workload::WorkloadKind;
use revscale_engine::model::ComponentState::{Cold, Hot, Warm};
use revscale_engine::ports::{Apply, ComponentDriver, DriverError};
use serde_json::json;
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::contract::{component, take, until_ready};

pub const KIND: &str = "kubernetes_workload";

/// The StatefulSet `vault/vault` as the API server keeps it.
#[derive(Debug)]
struct Cluster {
    name: String,
    replicas: i64,
    /// Pods running and ready: one step towards `replicas` per read.
    ready: i64,
    generation: i64,
    observed_generation: i64,
    resource_version: u64,
    label: Option<String>,
    /// The scale writes accepted, e.g. `replicas 3`.
    writes: Vec<String>,
    /// Someone else writes the object between the driver's read and its write.
    concurrent_write: bool,
}

fn status(code: u16, reason: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": reason, "message": message, "code": code,
    }))
}

/// Whether `authorization` is an EKS token for `cluster`, signed with the tests'
/// credentials within the last 15 minutes, as the API server's authenticator would
/// have STS check it.
fn token_is_for(authorization: Option<&str>, cluster: &str) -> bool {
    let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else { return false };
    let Some(body) = token.strip_prefix(TOKEN_PREFIX) else { return false };
    let Ok(url) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body) else { return false };
    let Ok(url) = reqwest::Url::parse(&String::from_utf8_lossy(&url)) else { return false };
    let query = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    if query("Action").as_deref() != Some("GetCallerIdentity")
        || query("X-Amz-SignedHeaders").as_deref() != Some("host;x-k8s-aws-id")
    {
        return false;
    }
    let Some(signed_at) = query("X-Amz-Date")
        .and_then(|d| chrono::NaiveDateTime::parse_from_str(&d, "%Y%m%dT%H%M%SZ").ok())
        .and_then(|d| u64::try_from(d.and_utc().timestamp()).ok())
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
    else {
        return false;
    };
    if SystemTime::now().duration_since(signed_at).is_ok_and(|age| age > Duration::from_secs(900)) {
        return false;
    }
    // Signed again for this cluster: another cluster's name gives another signature.
    let identity: aws_smithy_runtime_api::client::identity::Identity =
        aws_sdk_eks::config::Credentials::new("test", "test", None, None, "tests").into();
    let sts = format!("{}://{}/", url.scheme(), url.host_str().unwrap_or_default());
    let sts = match url.port() {
        Some(port) => format!("{}:{port}/", sts.trim_end_matches('/')),
        None => sts,
    };
    let expected = eks_token(&identity, "eu-west-1", &sts, cluster, signed_at).unwrap_or_default();
    expected == token
}

fn object(c: &Cluster) -> serde_json::Value {
    let labels = match &c.label {
        Some(id) => json!({"revscale-component": id, "app": "vault"}),
        None => json!({"app": "vault"}),
    };
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "vault", "namespace": "vault", "labels": labels,
                     "generation": c.generation, "resourceVersion": c.resource_version.to_string()},
        "spec": {"replicas": c.replicas, "serviceName": "vault"},
        "status": {"replicas": c.ready, "readyReplicas": c.ready, "updatedReplicas": c.ready,
                   "currentReplicas": c.ready, "observedGeneration": c.observed_generation},
    })
}

fn respond(cluster: &Mutex<Cluster>, request: &Request) -> ResponseTemplate {
    let mut c = cluster.lock().unwrap();
    let authorization = request.headers.get("authorization").and_then(|v| v.to_str().ok());
    if !token_is_for(authorization, &c.name) {
        return status(401, "Unauthorized", "Unauthorized");
    }
    let path = request.url.path();
    let workload = "/apis/apps/v1/namespaces/vault/statefulsets/vault";
    match (request.method.as_str(), path) {
        ("GET", p) if p == workload => {
            // The controller catches up: the spec observed, then one pod at a time.
            if c.observed_generation < c.generation {
                c.observed_generation = c.generation;
            } else if c.ready < c.replicas {
                c.ready += 1;
            } else if c.ready > c.replicas {
                c.ready -= 1;
            }
            ResponseTemplate::new(200).set_body_json(object(&c))
        }
        ("GET", "/apis/autoscaling/v2/namespaces/vault/horizontalpodautoscalers") => {
            ResponseTemplate::new(200).set_body_json(
                json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscalerList", "items": []}),
            )
        }
        // KEDA is not installed: its resource is unknown to the API server.
        ("GET", "/apis/keda.sh/v1alpha1/namespaces/vault/scaledobjects") => {
            status(404, "NotFound", "the server could not find the requested resource")
        }
        ("PATCH", p) if p == format!("{workload}/scale") => {
            if request.headers.get("content-type").and_then(|v| v.to_str().ok())
                != Some("application/merge-patch+json")
            {
                return status(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format",
                );
            }
            if std::mem::take(&mut c.concurrent_write) {
                c.resource_version += 1;
                c.generation += 1;
            }
            let Ok(patch) = request.body_json::<serde_json::Value>() else {
                return status(400, "BadRequest", "the body does not parse");
            };
            let carried = patch["metadata"]["resourceVersion"].as_str().map(str::to_owned);
            if carried.is_some_and(|rv| rv != c.resource_version.to_string()) {
                return status(
                    409,
                    "Conflict",
                    "Operation cannot be fulfilled on statefulsets.apps \"vault\": the object has been \
                     modified; please apply your changes to the latest version and try again",
                );
            }
            let Some(replicas) = patch["spec"]["replicas"].as_i64().filter(|n| *n >= 0) else {
                return status(
                    422,
                    "Invalid",
                    "Scale.autoscaling \"vault\" is invalid: spec.replicas: Invalid value",
                );
            };
            c.replicas = replicas;
            c.generation += 1;
            c.resource_version += 1;
            c.writes.push(format!("replicas {replicas}"));
            ResponseTemplate::new(200).set_body_json(json!({
                "kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": "vault", "namespace": "vault", "resourceVersion": c.resource_version.to_string()},
                "spec": {"replicas": replicas}, "status": {"replicas": c.ready},
            }))
        }
        _ => status(404, "NotFound", &format!("{path} not found")),
    }
}

/// An ACTIVE cluster on moto, its API on a fake serving one StatefulSet at 0 replicas.
async fn cluster(label: Option<&str>) -> (MockServer, Arc<Mutex<Cluster>>, AwsDrivers, String) {
    let name = revscale_integration_tests::unique("k8s");
    let sdk = revscale_integration_tests::sdk().await;
    aws_sdk_eks::Client::new(&sdk)
        .create_cluster()
        .name(&name)
        .role_arn("arn:aws:iam::123456789012:role/revscale-eks-cluster")
        .resources_vpc_config(aws_sdk_eks::types::VpcConfigRequest::builder().subnet_ids("subnet-1").build())
        .send()
        .await
        .unwrap();
    let server = MockServer::start().await;
    let state = Arc::new(Mutex::new(Cluster {
        name: name.clone(),
        replicas: 0,
        ready: 0,
        generation: 1,
        observed_generation: 1,
        resource_version: 100,
        label: label.map(str::to_owned),
        writes: vec![],
        concurrent_write: false,
    }));
    let shared = Arc::clone(&state);
    Mock::given(path_regex("^/apis/"))
        .respond_with(move |request: &Request| respond(&shared, request))
        .mount(&server)
        .await;
    let drivers = crate::contract::drivers()
        .await
        .with_kubernetes_endpoint(Some(TestEndpoint::parse(&server.uri()).unwrap()));
    (server, state, drivers, name)
}

fn spec(cluster: &str, replicas: Option<u32>) -> KubernetesWorkload {
    KubernetesWorkload {
        cluster_name: cluster.into(),
        namespace: "vault".into(),
        workload_kind: WorkloadKind::StatefulSet,
        name: "vault".into(),
        replicas,
        ..KubernetesWorkload::default()
    }
}

#[tokio::test]
async fn a_workload_keeps_the_contract_warm_at_zero_replicas_hot_at_its_own() {
    let (_server, state, drivers, name) = cluster(Some("vault_ha")).await;
    let c = component("vault_ha", spec(&name, Some(3)));
    assert!(drivers.observe(&c).await.unwrap().agrees_with(Cold));
    let mut at = Cold;
    let mut seen = Vec::new();
    for target in [Warm, Hot, Warm, Cold] {
        take(&drivers, &c, at, target, None).await;
        let observed = drivers.observe(&c).await.unwrap();
        assert!(observed.agrees_with(target), "at {target}: {observed:?}");
        drivers.apply(Apply { component: &c, target, saved: None }).await.unwrap();
        seen.push((target, observed.actual));
        at = target;
    }
    assert_eq!(
        seen,
        [
            (Warm, "replicas 0, ready 0, updated 0".to_string()),
            (Hot, "replicas 3, ready 3, updated 3".to_string()),
            (Warm, "replicas 0, ready 0, updated 0".to_string()),
            (Cold, "replicas 0, ready 0, updated 0".to_string()),
        ]
    );
    // One write up and one down: WARM from COLD, COLD from WARM and repeats write nothing.
    assert_eq!(state.lock().unwrap().writes, ["replicas 3", "replicas 0"]);
}

#[tokio::test]
async fn hot_without_configured_replicas_restores_the_count_saved_when_it_went_warm() {
    let (_server, state, drivers, name) = cluster(Some("vault_ha")).await;
    state.lock().unwrap().replicas = 5; // scaled by the company's CD, and running
    let c = component("vault_ha", spec(&name, None));
    until_ready(&drivers, &c, Hot).await;
    let saved = take(&drivers, &c, Hot, Warm, None).await;
    assert_eq!(saved.map(|s| s.desired), Some(5));
    take(&drivers, &c, Warm, Hot, saved).await;
    assert_eq!(state.lock().unwrap().writes, ["replicas 0", "replicas 5"]);
}

#[tokio::test]
async fn a_write_racing_another_is_a_conflict_retried_and_the_retry_lands() {
    let (_server, state, drivers, name) = cluster(Some("vault_ha")).await;
    let c = component("vault_ha", spec(&name, Some(2)));
    state.lock().unwrap().concurrent_write = true;
    match drivers.apply(Apply { component: &c, target: Hot, saved: None }).await {
        Err(DriverError::Busy(why)) => assert!(why.contains("409 Conflict"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(state.lock().unwrap().writes.is_empty(), "nothing written over the other change");
    drivers.apply(Apply { component: &c, target: Hot, saved: None }).await.unwrap();
    until_ready(&drivers, &c, Hot).await;
    assert_eq!(state.lock().unwrap().writes, ["replicas 2"]);
}

#[tokio::test]
async fn a_workload_not_labelled_for_the_component_or_on_another_cluster_is_never_written() {
    let (_server, state, drivers, name) = cluster(Some("search")).await;
    let c = component("vault_ha", spec(&name, Some(3)));
    match drivers.apply(Apply { component: &c, target: Hot, saved: None }).await {
        Err(DriverError::Rejected(why)) => {
            assert!(why.contains("revscale-component=search, not vault_ha"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // A cluster moto does not have: refused before any token is minted.
    let elsewhere = component("vault_ha", spec("no-such-cluster", Some(3)));
    match drivers.apply(Apply { component: &elsewhere, target: Hot, saved: None }).await {
        Err(DriverError::Rejected(why)) => {
            assert!(why.contains("EKS cluster no-such-cluster does not exist"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(state.lock().unwrap().writes.is_empty());
}

#[tokio::test]
async fn a_token_signed_for_another_cluster_is_refused_by_the_api_server() {
    // The fake serves `name`; the component says another cluster moto also has, so the
    // driver's token names that one.
    let (_server, state, drivers, _name) = cluster(Some("vault_ha")).await;
    let (_other_server, _other, _, other_name) = cluster(Some("vault_ha")).await;
    let c = component("vault_ha", spec(&other_name, Some(3)));
    match drivers.apply(Apply { component: &c, target: Hot, saved: None }).await {
        Err(DriverError::Rejected(why)) => {
            assert!(why.contains("did not accept revscale's token (401)"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(state.lock().unwrap().writes.is_empty());
}
