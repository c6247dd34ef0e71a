//! The state item stays small whatever the traffic: 1,000 override requests, most of
//! them closed again, some left open up to the cap, then every route still answers.
//! The in-memory store keeps exactly what the DynamoDB store writes (the state and its
//! version); tests/override_api.rs runs the same traffic, shorter, on DynamoDB (moto).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use lambda_http::{Body, Request};
use override_api::auth::Roles;
use override_api::handler::{Deps, MAX_OPEN_OVERRIDES, handle};
use revscale_engine::Config;
use revscale_engine::ports::StateStore;
use revscale_engine::testing::{MemoryBus, MemoryNotifier, MemoryStore};
use serde_json::{Value, json};

const BOB: &str = "arn:aws:iam::123456789012:user/bob";

/// A fixture of events/override-api/ under a request id of its own, optionally signed
/// by another principal or with another body.
fn request(name: &str, id: &str, principal: Option<&str>, body: Option<String>) -> Request {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let path = format!("{}/../../events/override-api/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap().replace("OVERRIDE_ID", id).replace("APPROVAL_ID", id);
    let mut event: Value = serde_json::from_str(&text).unwrap();
    event["requestContext"]["requestId"] = format!("req-{}", NEXT.fetch_add(1, Ordering::SeqCst)).into();
    if let Some(principal) = principal {
        event["requestContext"]["authorizer"]["iam"]["userArn"] = principal.into();
    }
    if let Some(body) = body {
        event["body"] = body.into();
    }
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

struct Api {
    deps: Deps<Arc<MemoryStore>, MemoryBus, MemoryNotifier>,
    store: Arc<MemoryStore>,
}

impl Api {
    async fn call(&self, req: Request) -> (u16, Value) {
        let response = handle(&self.deps, req).await.unwrap();
        let status = response.status().as_u16();
        let body = match response.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (status, body)
    }

    /// The state item as the DynamoDB store writes it (`pk`, `sk`, `version`, `state`),
    /// in JSON.
    async fn state_item_bytes(&self) -> usize {
        let stored = self.store.load_state().await.unwrap().unwrap();
        let item = json!({"pk": "STATE", "sk": "CURRENT", "version": stored.version, "state": stored.value});
        serde_json::to_vec(&item).unwrap().len()
    }
}

#[tokio::test]
async fn a_thousand_override_requests_keep_the_state_item_small_and_every_route_working() {
    let store = Arc::new(MemoryStore::default());
    let api = Api {
        deps: Deps {
            config: Config::default_config().unwrap(),
            store: store.clone(),
            bus: MemoryBus::default(),
            notifier: MemoryNotifier::default(),
            roles: Roles::everyone(),
            timezone: Default::default(),
            executions: std::sync::Arc::new(revscale_engine::testing::MemoryExecutions::default()),
        },
        store,
    };
    let long_reason = "r".repeat(500);
    let body = || Some(format!(r#"{{"level": 3, "until": "2026-12-15", "reason": "{long_reason}"}}"#));
    let (mut created, mut refused, mut largest) = (0, 0, 0);
    let mut open: VecDeque<String> = VecDeque::new();
    for i in 0..1000 {
        let (mut status, mut answer) = api.call(request("override-request", "", None, body())).await;
        if status == 409 {
            // The cap: an operator cancels the oldest open override, then asks again.
            refused += 1;
            assert!(answer["error"].as_str().unwrap().contains("at most 20"), "{answer}");
            let oldest = open.pop_front().expect("20 open overrides");
            assert_eq!(api.call(request("override-cancel", &oldest, None, None)).await.0, 200);
            (status, answer) = api.call(request("override-request", "", None, body())).await;
        }
        assert_eq!(status, 201, "request {i}: {answer}");
        created += 1;
        let id = answer["override"]["id"].as_str().unwrap().to_string();
        // Most are closed again at once (cancelled by the requester, rejected by an
        // approver); one in ten stays open.
        let closed = match i % 10 {
            9 => {
                open.push_back(id);
                200
            }
            n if n % 2 == 0 => api.call(request("override-cancel", &id, None, None)).await.0,
            _ => api.call(request("override-reject", &id, Some(BOB), None)).await.0,
        };
        assert_eq!(closed, 200);
        largest = largest.max(api.state_item_bytes().await);
    }
    let size = api.state_item_bytes().await;
    eprintln!(
        "1,000 override requests: {created} created, {refused} refused at first ({MAX_OPEN_OVERRIDES} open at most); \
         state item {size} bytes after, {largest} at most"
    );
    assert_eq!(created, 1000);
    assert!(refused > 0, "the cap was reached");
    assert!(largest < 64 * 1024, "the state item stays under 64 KB: {largest}");

    // Every route still works.
    let (status, state) = api.call(request("status", "", None, None)).await;
    assert_eq!(status, 200);
    assert_eq!(state["overrides"]["pending"].as_array().unwrap().len(), MAX_OPEN_OVERRIDES);
    let first = open.pop_front().unwrap();
    let (status, approved) = api.call(request("override-approve-other", &first, None, None)).await;
    assert_eq!(status, 200, "{approved}");
    for (name, want) in [
        ("decisions", 200),
        ("mode-shadow", 200),
        ("breaker-reset", 200),
        ("evaluate-dry-run", 200),
        ("pending-approve", 404),
        ("pending-reject", 404),
    ] {
        assert_eq!(api.call(request(name, "", None, None)).await.0, want, "{name}");
    }
    let second = open.pop_front().unwrap();
    assert_eq!(api.call(request("override-cancel", &second, None, None)).await.0, 200);
    assert_eq!(api.call(request("override-request", "", None, body())).await.0, 201, "a place is free again");
    assert!(api.state_item_bytes().await < 64 * 1024);
}
