//! `POST /provisioning/release`: a stuck run is released only once Step Functions says
//! its execution ended, and only its own components are rewritten.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::sync::Arc;

use lambda_http::{Body, Request};
use override_api::auth::Roles;
use override_api::handler::{Deps, handle};
use revscale_engine::ports::StateStore;
use revscale_engine::testing::{
    MemoryBus, MemoryExecutions, MemoryNotifier, MemoryStore, seed_record, stick_run,
};
use revscale_engine::{ComponentId, Config, SystemState};
use serde_json::Value;

const STUCK: &str = "2026-11-28-L0-L1-stuck0000001";

fn release(id: &str, request_id: &str, components: &str) -> Request {
    let path = format!("{}/../../events/override-api/provisioning-release.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["requestContext"]["requestId"] = request_id.into();
    event["body"] =
        format!(r#"{{"decision_id": "{id}", "components": {components}, "reason": "repaired by hand"}}"#)
            .into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

async fn call(deps: &Deps<Arc<MemoryStore>, MemoryBus, MemoryNotifier>, req: Request) -> (u16, String) {
    let response = handle(deps, req).await.unwrap();
    let body = match response.body() {
        Body::Text(t) => t.clone(),
        _ => String::new(),
    };
    (response.status().as_u16(), body)
}

/// A state whose run `STUCK` holds the lock, its control plane half made; the
/// execution named after it still running or not.
async fn stuck(running: bool) -> Deps<Arc<MemoryStore>, MemoryBus, MemoryNotifier> {
    let config = Config::default_config().unwrap();
    let store = Arc::new(MemoryStore::default());
    let mut state = SystemState::initial(&config, "2026-11-28".parse().unwrap());
    stick_run(&mut state, STUCK);
    store
        .record_decision(&seed_record("seed", "2026-11-28T05:00:00Z".parse().unwrap()), &state, None)
        .await
        .unwrap();
    let executions = if running { MemoryExecutions::running(&[STUCK]) } else { MemoryExecutions::default() };
    Deps {
        config,
        store,
        bus: MemoryBus::default(),
        notifier: MemoryNotifier::default(),
        roles: Roles::everyone(),
        timezone: Default::default(),
        executions: Arc::new(executions),
    }
}

#[tokio::test]
async fn a_run_whose_execution_still_runs_is_not_released() {
    let deps = stuck(true).await;
    let before = deps.store.load_state().await.unwrap().unwrap();
    let (status, body) = call(&deps, release(STUCK, "req-1", r#"{"eks_control_plane": "cold"}"#)).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("is still running"), "{body}");
    assert_eq!(deps.store.load_state().await.unwrap().unwrap(), before, "nothing written, the lock held");

    // Once Step Functions says the execution ended, the same release goes through.
    let ended = stuck(false).await;
    let (status, body) = call(&ended, release(STUCK, "req-2", r#"{"eks_control_plane": "cold"}"#)).await;
    assert_eq!(status, 200, "{body}");
    assert!(ended.store.load_state().await.unwrap().unwrap().value.provisioning.is_none(), "released");
}

#[tokio::test]
async fn a_release_rewrites_only_the_components_of_the_run_it_releases() {
    let deps = stuck(false).await;
    let before = deps.store.load_state().await.unwrap().unwrap();
    let beyond = r#"{"eks_control_plane": "cold", "hume_ai": "hot"}"#;
    let (status, body) = call(&deps, release(STUCK, "req-3", beyond)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("hume_ai is not one of run"), "{body}");
    let after = deps.store.load_state().await.unwrap().unwrap();
    assert_eq!(after, before, "nothing rewritten");
    assert_eq!(
        after.value.component_state(&ComponentId::new("hume_ai")),
        before.value.component_state(&ComponentId::new("hume_ai"))
    );
}
