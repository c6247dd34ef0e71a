//! A cold start that fails keeps its type: a throttled SSM or Secrets Manager read is
//! `Transient`, a refused one `Configuration`, and either reaches the Runtime API's init
//! error endpoint under that name (the function crates' `tests/cold_start.rs` starts a
//! real binary against the same kind of server).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use revscale_aws::lambda::{FunctionError, report_init_error};
use revscale_aws::secrets::{SecretRef, read_secret};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn sdk(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_ssm::config::Credentials::new("t", "t", None, None, "tests"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

fn aws_error(status: u16, kind: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .insert_header("x-amzn-errortype", kind)
        .set_body_json(serde_json::json!({"__type": kind, "message": "fixture"}))
}

/// What `Deps::on_aws` makes of a secret read that the fixture answers with `answer`.
async fn read_answered_with(target: &str, secret: SecretRef, answer: ResponseTemplate) -> FunctionError {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(header("x-amz-target", target)).respond_with(answer).mount(&server).await;
    let err =
        read_secret(&sdk(&server.uri()).await, &secret).await.expect_err("the fixture refuses the read");
    FunctionError::from(err)
}

#[tokio::test]
async fn a_throttled_ssm_or_secrets_manager_read_is_transient() {
    let ssm = read_answered_with(
        "AmazonSSM.GetParameter",
        SecretRef::Ssm("/revscale/stripe".into()),
        aws_error(400, "ThrottlingException"),
    )
    .await;
    assert_eq!(ssm.error_type(), "Transient", "{ssm}");
    assert!(ssm.to_string().contains("/revscale/stripe"), "the message names the secret: {ssm}");
    assert!(ssm.to_string().contains("ThrottlingException"), "and the cause: {ssm}");
    let sm = read_answered_with(
        "secretsmanager.GetSecretValue",
        SecretRef::SecretsManager("stripe".into()),
        aws_error(503, "ServiceUnavailable"),
    )
    .await;
    assert_eq!(sm.error_type(), "Transient", "{sm}");
}

#[tokio::test]
async fn a_refused_or_missing_secret_is_a_configuration_error() {
    let denied = read_answered_with(
        "AmazonSSM.GetParameter",
        SecretRef::Ssm("/revscale/stripe".into()),
        aws_error(400, "AccessDeniedException"),
    )
    .await;
    assert_eq!(denied.error_type(), "Configuration", "{denied}");
    let missing = read_answered_with(
        "secretsmanager.GetSecretValue",
        SecretRef::SecretsManager("stripe".into()),
        aws_error(400, "ResourceNotFoundException"),
    )
    .await;
    assert_eq!(missing.error_type(), "Configuration", "{missing}");
}

#[tokio::test]
async fn a_cold_start_error_is_posted_to_the_init_error_endpoint_under_its_type() {
    let runtime = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2018-06-01/runtime/init/error"))
        .and(header("Lambda-Runtime-Function-Error-Type", "Transient"))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&runtime)
        .await;
    let api = runtime.uri().trim_start_matches("http://").to_string();
    let err = FunctionError::Transient("cannot read the configuration parameter: throttled".into());
    report_init_error(&api, &err).await.unwrap();
    let received = runtime.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["errorType"], "Transient");
    assert_eq!(body["errorMessage"], "cannot read the configuration parameter: throttled");
}

#[tokio::test]
async fn a_runtime_api_that_refuses_the_report_is_an_error_not_a_silent_success() {
    let runtime = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&runtime).await;
    let api = runtime.uri().trim_start_matches("http://").to_string();
    let err = report_init_error(&api, &FunctionError::Configuration("x".into())).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 500"), "{err}");
}
