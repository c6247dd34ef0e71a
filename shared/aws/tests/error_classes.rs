//! How the adapters name what AWS answers, against a fixture server (wiremock on
//! 127.0.0.1) giving the answers the emulators cannot: a DynamoDB transaction cancelled
//! for throttling, Cost Explorer's DataUnavailableException, an unreachable endpoint.
//! A wrong class is a real fault: an `Internal` is never retried, a `Transient` always is.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use revscale_aws::cost_explorer::{CostError, CostExplorerSource};
use revscale_aws::dynamo::DynamoStore;
use revscale_engine::money::FxRates;
use revscale_engine::ports::{StateStore, StoreError};
use revscale_engine::testing::seed_record;
use revscale_engine::{Config, Currency, SystemState};
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn sdk(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("t", "t", None, None, "tests"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

fn aws_error(status: u16, kind: &str, extra: serde_json::Value) -> ResponseTemplate {
    let mut body = serde_json::json!({"__type": kind, "message": "fixture"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.0")
        .insert_header("x-amzn-errortype", kind)
        .set_body_json(body)
}

async fn record_against(answer: ResponseTemplate) -> StoreError {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "DynamoDB_20120810.TransactWriteItems"))
        .respond_with(answer)
        .mount(&server)
        .await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk(&server.uri()).await), "t");
    let config = Config::default_config().unwrap();
    let state = SystemState::initial(&config, "2026-11-29".parse().unwrap());
    let record = seed_record("r", "2026-11-29T06:00:00Z".parse().unwrap());
    store.record_decision(&record, &state, Some(3)).await.expect_err("the fixture refuses the write")
}

fn cancelled(reasons: &[&str]) -> ResponseTemplate {
    let reasons: Vec<serde_json::Value> = reasons.iter().map(|c| serde_json::json!({"Code": c})).collect();
    aws_error(
        400,
        "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        serde_json::json!({"CancellationReasons": reasons}),
    )
}

#[tokio::test]
async fn a_transaction_cancelled_for_throttling_is_transient() {
    let err = record_against(cancelled(&["None", "ThrottlingError"])).await;
    assert!(matches!(err, StoreError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn a_transaction_cancelled_by_the_version_check_is_a_conflict_and_by_another_transaction_too() {
    // Items: the record by id, the record by time, the state.
    let err = record_against(cancelled(&["None", "None", "ConditionalCheckFailed"])).await;
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = record_against(cancelled(&["TransactionConflict", "None"])).await;
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn a_refused_write_that_is_not_throttling_is_not_retried() {
    let err = record_against(aws_error(
        400,
        "com.amazonaws.dynamodb.v20120810#ValidationException",
        serde_json::json!({}),
    ))
    .await;
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
}

async fn cost_against(endpoint: &str) -> CostError {
    let source = CostExplorerSource::new(
        &sdk(endpoint).await,
        "UnblendedCost",
        "revscale-component",
        Currency::EUR,
        FxRates::parse_list("USD=0.93").unwrap(),
    );
    source.snapshot("2026-11-29T05:00:00Z".parse().unwrap()).await.expect_err("the fixture refuses")
}

#[tokio::test]
async fn cost_explorer_data_not_ready_yet_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(400, "DataUnavailableException", serde_json::json!({})))
        .mount(&server)
        .await;
    let err = cost_against(&server.uri()).await;
    assert!(matches!(err, CostError::Transient(_)), "{err:?}");
    // The request left credits and refunds out.
    let sent = server.received_requests().await.unwrap_or_default();
    let body = String::from_utf8_lossy(&sent[0].body).to_string();
    assert!(
        body.contains(r#""Not":{"Dimensions":{"Key":"RECORD_TYPE","Values":["Credit","Refund"]}}"#),
        "{body}"
    );
}

#[tokio::test]
async fn cost_explorer_unreachable_or_failing_is_transient_and_a_refusal_is_not() {
    // Nothing listens on port 9 of 127.0.0.1: a connection error.
    let err = cost_against("http://127.0.0.1:9").await;
    assert!(matches!(err, CostError::Transient(_)), "{err:?}");
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(500, "InternalServerError", serde_json::json!({})))
        .mount(&server)
        .await;
    assert!(matches!(cost_against(&server.uri()).await, CostError::Transient(_)));
    let denied = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(400, "AccessDeniedException", serde_json::json!({})))
        .mount(&denied)
        .await;
    let err = cost_against(&denied.uri()).await;
    assert!(matches!(err, CostError::Api(_)), "{err:?}");
}
