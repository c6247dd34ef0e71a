//! Every fixture of events/override-api/ is what API Gateway (HTTP API, payload 2.0, IAM
//! authorization) sends, read with the type the handler is invoked with
//! (`lambda_http::Request`, as `lambda_http::run` builds it): one with a base64 body, as
//! API Gateway sends a body it does not take for text, and one with the whole IAM
//! authorizer context (an Identity Center session: assumed-role ARN, organisation id,
//! `cognitoIdentity: null`), after aws_lambda_events' example-apigw-v2-request-iam.json.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};

fn fixture(name: &str) -> Request {
    let path = format!("{}/../../events/override-api/{name}", env!("CARGO_MANIFEST_DIR"));
    lambda_http::request::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn bytes(body: &Body) -> &[u8] {
    body.as_ref()
}

#[test]
fn every_api_gateway_sample_parses_as_the_request_the_handler_is_given() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/override-api");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let request = fixture(&name);
        assert!(
            matches!(request.request_context(), RequestContext::ApiGatewayV2(_)),
            "{name}: an HTTP API (payload 2.0) request"
        );
        count += 1;
    }
    assert!(count >= 30, "{count} samples");
}

#[test]
fn a_base64_body_reaches_the_handler_as_the_same_bytes_as_the_plain_one() {
    let encoded = fixture("override-request-base64.json");
    let plain = fixture("override-request.json");
    assert!(matches!(encoded.body(), Body::Binary(_)), "lambda_http decodes it: {:?}", encoded.body());
    assert_eq!(bytes(encoded.body()), bytes(plain.body()));
    let raw: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/override-api/override-request-base64.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(raw["isBase64Encoded"], true);
    assert_ne!(raw["body"].as_str().unwrap().as_bytes(), bytes(plain.body()), "the sample is encoded");
}

#[test]
fn the_full_iam_authorizer_context_names_the_signing_principal() {
    let request = fixture("status-full-iam.json");
    let RequestContext::ApiGatewayV2(context) = request.request_context() else {
        panic!("an HTTP API request");
    };
    let iam = context.authorizer.and_then(|a| a.iam).expect("the IAM authorizer's context");
    assert_eq!(
        iam.user_arn.as_deref(),
        Some(
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_RevscaleOperator_0123456789abcdef/alice@example.com"
        )
    );
    assert_eq!(iam.principal_org_id.as_deref(), Some("o-a1b2c3d4e5"));
    assert_eq!(iam.caller_id.as_deref(), Some("AROAEXAMPLEROLEID:alice@example.com"));
}

/// The handler itself answers the base64 request as it answers the plain one.
#[tokio::test]
async fn the_handler_answers_a_base64_request_as_it_answers_the_plain_one() {
    use override_api::auth::Roles;
    use override_api::handler::{Deps, handle};
    use revscale_engine::Config;
    use revscale_engine::testing::{MemoryBus, MemoryNotifier, MemoryStore};
    let mut answers = Vec::new();
    for name in ["override-request.json", "override-request-base64.json"] {
        let deps = Deps {
            config: Config::default_config().unwrap(),
            store: std::sync::Arc::new(MemoryStore::default()),
            bus: MemoryBus::default(),
            notifier: MemoryNotifier::default(),
            roles: Roles::everyone(),
            timezone: Default::default(),
            executions: std::sync::Arc::new(revscale_engine::testing::MemoryExecutions::default()),
        };
        let response = handle(&deps, fixture(name)).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(bytes(response.body())).unwrap();
        answers.push((
            response.status().as_u16(),
            body["override"]["level"].clone(),
            body["override"]["reason"].clone(),
        ));
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].0 < 300, "{answers:?}");
    assert_eq!(answers[0].1, 3, "{answers:?}");
}
