//! `lambda_provisioned_concurrency`. moto has no provisioned concurrency API (5.2.5, and
//! its main branch at the time of writing: `moto/awslambda/urls.py` routes no
//! `/2019-09-30/functions/{name}/provisioned-concurrency`), so Put, Get and
//! DeleteProvisionedConcurrencyConfig answer a bare HTML 404 there and the contract
//! cannot run on moto. It runs instead against a fake of those three calls (wiremock)
//! that answers as the Lambda API reference describes them: the same paths and
//! `Qualifier`, 202 / 200 / 204, the JSON fields, and errors named in
//! `x-amzn-ErrorType`; an allocation is IN_PROGRESS for two reads, then READY. What it
//! checks beyond the unit tests is the wire: the requests the SDK sends and the answers
//! and error codes the driver reads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, SdkConfig};
use revscale_aws::drivers::AwsDrivers;
use revscale_engine::drivers::LambdaProvisionedConcurrency;
use revscale_engine::model::ComponentState::{Cold, Hot, Warm};
use revscale_engine::ports::{Apply, ComponentDriver, DriverError, DriverStatus};
use serde_json::json;
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::contract::{component, take, until_ready};

pub const KIND: &str = "lambda_provisioned_concurrency";

const FUNCTION: &str = "api";
/// The function's alias and published version; anything else does not exist.
const QUALIFIERS: [&str; 2] = ["live", "1"];

/// One alias's or version's provisioned concurrency.
#[derive(Debug, Clone, Copy)]
struct Pc {
    requested: i64,
    allocated: i64,
    reads: u32,
}

#[derive(Debug, Default)]
struct Lambda {
    configs: BTreeMap<String, Pc>,
    /// The changing calls received, e.g. `PUT live 3`.
    changes: Vec<String>,
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-ErrorType", code)
        .set_body_json(json!({"Type": "User", "message": message}))
}

fn config_json(pc: &Pc) -> serde_json::Value {
    json!({
        "RequestedProvisionedConcurrentExecutions": pc.requested,
        "AllocatedProvisionedConcurrentExecutions": pc.allocated,
        "AvailableProvisionedConcurrentExecutions": pc.allocated,
        "Status": if pc.allocated == pc.requested { "READY" } else { "IN_PROGRESS" },
        "LastModified": "2026-01-01T00:00:00.000+0000",
    })
}

fn respond(lambda: &Mutex<Lambda>, request: &Request) -> ResponseTemplate {
    let function = request.url.path_segments().and_then(|mut s| s.nth(2)).unwrap_or_default().to_owned();
    let qualifier = request
        .url
        .query_pairs()
        .find(|(k, _)| k == "Qualifier")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if function != FUNCTION || !QUALIFIERS.contains(&qualifier.as_str()) {
        let arn = format!("arn:aws:lambda:eu-west-1:123456789012:function:{function}:{qualifier}");
        return error(404, "ResourceNotFoundException", &format!("Function not found: {arn}"));
    }
    let mut lambda = lambda.lock().unwrap();
    match request.method.as_str() {
        "PUT" => {
            let body: serde_json::Value = request.body_json().unwrap();
            let requested = body["ProvisionedConcurrentExecutions"].as_i64().unwrap();
            let pc = Pc { requested, allocated: 0, reads: 0 };
            lambda.configs.insert(qualifier.clone(), pc);
            lambda.changes.push(format!("PUT {qualifier} {requested}"));
            ResponseTemplate::new(202).set_body_json(config_json(&pc))
        }
        "GET" => match lambda.configs.get_mut(&qualifier) {
            None => error(
                404,
                "ProvisionedConcurrencyConfigNotFoundException",
                "No Provisioned Concurrency Config found for this function",
            ),
            Some(pc) => {
                pc.reads += 1;
                if pc.reads > 2 {
                    pc.allocated = pc.requested;
                }
                ResponseTemplate::new(200).set_body_json(config_json(pc))
            }
        },
        "DELETE" => {
            lambda.configs.remove(&qualifier);
            lambda.changes.push(format!("DELETE {qualifier}"));
            ResponseTemplate::new(204)
        }
        other => error(405, "InvalidParameterValueException", other),
    }
}

async fn fake_lambda() -> (MockServer, Arc<Mutex<Lambda>>, AwsDrivers) {
    let server = MockServer::start().await;
    let lambda = Arc::new(Mutex::new(Lambda::default()));
    let state = Arc::clone(&lambda);
    Mock::given(path_regex(r"^/2019-09-30/functions/[^/]+/provisioned-concurrency$"))
        .respond_with(move |request: &Request| respond(&state, request))
        .mount(&server)
        .await;
    let sdk: SdkConfig = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(server.uri())
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await;
    (server, lambda, AwsDrivers::new(&sdk))
}

fn spec(qualifier: &str, amount: u32) -> LambdaProvisionedConcurrency {
    LambdaProvisionedConcurrency {
        function_name: FUNCTION.into(),
        qualifier: qualifier.into(),
        provisioned_concurrent_executions: amount,
    }
}

/// The contract of `contract::keeps_the_contract` (which runs on moto), without tags:
/// the function is the user's and the driver tags nothing.
#[tokio::test]
async fn provisioned_concurrency_keeps_the_contract_on_a_fake_shaped_like_the_lambda_api() {
    let (_server, lambda, drivers) = fake_lambda().await;
    let c = component("api-warmth", spec("live", 3));
    assert!(drivers.observe(&c).await.unwrap().agrees_with(Cold));
    let mut at = Cold;
    let mut seen = Vec::new();
    for target in [Warm, Hot, Warm, Cold] {
        take(&drivers, &c, at, target, None).await;
        let observed = drivers.observe(&c).await.unwrap();
        assert!(observed.agrees_with(target), "at {target}: {observed:?}");
        drivers.apply(Apply { component: &c, target, saved: None }).await.unwrap();
        until_ready(&drivers, &c, target).await;
        assert_eq!(
            drivers.observe(&c).await.unwrap().states,
            observed.states,
            "a repeated {target} moved it"
        );
        seen.push((target, observed.states));
        at = target;
    }
    assert_eq!(
        seen,
        vec![(Warm, vec![Cold, Warm]), (Hot, vec![Hot]), (Warm, vec![Cold, Warm]), (Cold, vec![Cold, Warm])]
    );
    // One allocation and one removal: nothing for WARM from COLD, COLD from WARM or a
    // repeated request.
    assert_eq!(lambda.lock().unwrap().changes, ["PUT live 3", "DELETE live"]);
}

#[tokio::test]
async fn an_allocation_under_way_is_moving_and_another_amount_is_drift_that_hot_corrects() {
    let (_server, lambda, drivers) = fake_lambda().await;
    let c = component("api-warmth", spec("1", 5));
    drivers.apply(Apply { component: &c, target: Hot, saved: None }).await.unwrap();
    let moving = drivers.observe(&c).await.unwrap();
    assert!(moving.states.is_empty() && moving.actual.starts_with("IN_PROGRESS"), "{moving:?}");
    until_ready(&drivers, &c, Hot).await;
    // Set to 2 by hand.
    lambda.lock().unwrap().configs.insert("1".into(), Pc { requested: 2, allocated: 2, reads: 3 });
    let drift = drivers.observe(&c).await.unwrap();
    assert!(drift.states.is_empty(), "{drift:?}");
    assert!(drift.actual.contains("READY with 2") && drift.actual.contains("configured 5"), "{drift:?}");
    drivers.apply(Apply { component: &c, target: Hot, saved: None }).await.unwrap();
    until_ready(&drivers, &c, Hot).await;
    assert_eq!(lambda.lock().unwrap().changes, ["PUT 1 5", "PUT 1 5"]);
}

#[tokio::test]
async fn a_missing_alias_has_no_state_is_refused_by_name_and_fails_its_status() {
    let (_server, lambda, drivers) = fake_lambda().await;
    let c = component("api-warmth", spec("gone", 3));
    let observed = drivers.observe(&c).await.unwrap();
    assert!(observed.states.is_empty() && observed.actual.contains("api:gone"), "{observed:?}");
    for target in [Hot, Warm, Cold] {
        match drivers.apply(Apply { component: &c, target, saved: None }).await {
            Err(DriverError::Rejected(why)) => assert!(why.contains("api") && why.contains("gone"), "{why}"),
            other => panic!("apply {target} on a missing alias: {other:?}"),
        }
        match drivers.status(&c, target).await.unwrap() {
            DriverStatus::Failed(why) => assert!(why.contains("api:gone"), "{why}"),
            other => panic!("status {target} of a missing alias: {other:?}"),
        }
    }
    assert!(lambda.lock().unwrap().changes.is_empty());
}
