//! The operator API's wire format, route by route, as clients (the CLI, scripts,
//! tests/override_api.rs) read it: every fixture of events/override-api/ played in
//! order on one in-memory store, and each answer (status, the headers a client reads,
//! the body) compared with `wire_format.golden.json`. A change of field name or shape
//! fails here before it reaches a client. `UPDATE_GOLDEN=1` rewrites the file after a
//! deliberate change.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use revscale_engine::testing::seed_record;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use lambda_http::{Body, Request};
use override_api::auth::Roles;
use override_api::handler::{Deps, handle};
use revscale_engine::Config;
use revscale_engine::Money;
use revscale_engine::ports::{AuditRecord, StateStore};
use revscale_engine::state::{ComponentRecord, PendingApproval};
use revscale_engine::testing::{MemoryBus, MemoryNotifier, MemoryStore};
use revscale_engine::{ComponentId, ComponentState};
use serde_json::{Value, json};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wire_format.golden.json");

fn request(name: &str, id: &str, edit: impl FnOnce(&mut Value)) -> Request {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let path = format!("{}/../../events/override-api/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("OVERRIDE_ID", id)
        .replace("DECISION_ID", id)
        .replace("APPROVAL_ID", id);
    let mut event: Value = serde_json::from_str(&text).unwrap();
    event["requestContext"]["requestId"] = format!("req-wire-{}", NEXT.fetch_add(1, Ordering::SeqCst)).into();
    edit(&mut event);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

struct Api {
    deps: Deps<Arc<MemoryStore>, MemoryBus, MemoryNotifier>,
    store: Arc<MemoryStore>,
    answers: Vec<(String, Value)>,
}

impl Api {
    /// Plays a fixture and keeps its answer under `label`; returns the body.
    async fn play(&mut self, label: &str, name: &str, id: &str, edit: impl FnOnce(&mut Value)) -> Value {
        let response = handle(&self.deps, request(name, id, edit)).await.unwrap();
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
        let body: Value = match response.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("{label}: unexpected body {other:?}"),
        };
        let answer = json!({
            "status": response.status().as_u16(),
            "content-type": header("content-type"),
            "allow": header("allow"),
            "body": body,
        });
        self.answers.push((label.to_string(), answer));
        body
    }

    /// Stores `edit` of the current state, as the evaluator or the provisioner would.
    async fn seed(&self, edit: impl FnOnce(&mut revscale_engine::SystemState)) {
        let stored = self.store.load_state().await.unwrap().unwrap();
        let mut state = stored.value;
        edit(&mut state);
        let record = AuditRecord {
            kind: "seed".into(),
            ..seed_record(
                &format!("2026-11-29T05:00:00.000Z-seed-{}", state.version),
                "2026-11-29T05:00:00Z".parse().unwrap(),
            )
        };
        self.store.record_decision(&record, &state, Some(stored.version)).await.unwrap();
    }
}

fn pending(cost_minor: i64) -> PendingApproval {
    PendingApproval {
        from: 0,
        to: 1,
        cause: None,
        requested_on: "2026-11-29".parse().unwrap(),
        extra_monthly_cost: Money::from_minor(cost_minor, revscale_engine::Currency::EUR),
        approved_by: None,
        approved_on: None,
    }
}

async fn play_every_route(api: &mut Api) {
    let same = |_: &mut Value| {};
    api.play("status, fresh", "status", "", same).await;
    let created = api.play("override request", "override-request", "", same).await;
    let id = created["override"]["id"].as_str().unwrap().to_string();
    api.play("override approve", "override-approve-other", &id, same).await;
    api.play("override approve, again", "override-approve-other", &id, same).await;
    api.play("override approve, self", "override-approve-self", &id, same).await;
    let second = api.play("override request, second", "override-request", "", same).await;
    let second = second["override"]["id"].as_str().unwrap().to_string();
    api.play("override reject", "override-reject", &second, same).await;
    let third = api.play("override request, third", "override-request", "", same).await;
    let third = third["override"]["id"].as_str().unwrap().to_string();
    api.play("override cancel", "override-cancel", &third, same).await;
    api.play("override cancel, again", "override-cancel", &third, same).await;
    api.play("mode", "mode-shadow", "", same).await;
    api.play("breaker reset", "breaker-reset", "", same).await;
    api.play("evaluate dry run", "evaluate-dry-run", "", same).await;
    api.play("pending approve, nothing waits", "pending-approve", "", same).await;
    api.seed(|s| s.pending_approval = Some(pending(12_345))).await;
    api.play("pending approve, another change", "pending-approve", "pending-20261129-L1-L2-churn", same)
        .await;
    api.play("pending approve", "pending-approve", &pending(12_345).id(), same).await;
    api.seed(|s| s.pending_approval = Some(pending(500))).await;
    api.play("pending reject", "pending-reject", "", same).await;
    api.play("release, nothing stuck", "provisioning-release", "d-none", same).await;
    let stuck = "2026-11-28-L0-L1-stuck0000001";
    api.seed(|s| revscale_engine::testing::stick_run(s, stuck)).await;
    api.play("status, stuck run", "status", "", same).await;
    api.play("release", "provisioning-release", stuck, same).await;
    api.play("status, after", "status", "", same).await;
    api.play("decisions, page", "decisions", "", same).await;
    api.play("decisions, all", "decisions", "", |e| {
        e["rawQueryString"] = "limit=100".into();
        e["queryStringParameters"] = json!({"limit": "100"});
    })
    .await;
    // Level 2 running: the cluster, its workers and a flag, for the drain to take down.
    api.seed(|s| {
        s.level = 2;
        for id in ["eks_control_plane", "k8s_workers", "hume_ai"] {
            let since = "2026-11-01".parse().unwrap();
            s.components.insert(ComponentId::new(id), ComponentRecord::settled(ComponentState::Hot, since));
        }
    })
    .await;
    api.play("drain plan", "drain-plan", "", same).await;
    let requested = api.play("drain request", "drain-request", "", same).await;
    let drain: revscale_engine::state::Drain = serde_json::from_value(requested["drain"].clone()).unwrap();
    api.play("drain request, again", "drain-request", "", same).await;
    api.play("drain approve, self", "drain-approve-self", &drain.id(), same).await;
    api.play("drain approve, unnamed", "drain-approve-other", "", same).await;
    api.play("drain approve", "drain-approve-other", &drain.id(), same).await;
    api.play("status, drained", "status", "", same).await;
    api.play("drain cancel", "drain-cancel", "", same).await;
    api.play("cash set", "cash-set", "", same).await;
    for name in [
        "cash-set-future",
        "cash-set-malformed",
        "cash-set-other-currency",
        "decisions-bad-limit",
        "decisions-empty-before",
        "decisions-unknown-param",
        "evaluate-not-dry",
        "mode-bad",
        "override-request-bad-level",
        "override-request-malformed",
        "override-request-no-reason",
        "override-request-too-far",
        "override-request-unknown-field",
        "override-request-unsigned",
        "status-unsigned",
        "unknown-route",
        "wrong-method",
    ] {
        api.play(name, name, "", same).await;
    }
    api.play("too large", "override-request", "", |e| e["body"] = "x".repeat(17 * 1024).into()).await;
}

#[tokio::test]
async fn every_route_answers_in_the_wire_format_clients_read() {
    let store = Arc::new(MemoryStore::default());
    let mut api = Api {
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
        answers: Vec::new(),
    };
    play_every_route(&mut api).await;
    let answers: serde_json::Map<String, Value> = api.answers.into_iter().collect();
    let actual = serde_json::to_string_pretty(&Value::Object(answers)).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &actual).unwrap();
    }
    let golden = std::fs::read_to_string(GOLDEN).unwrap();
    assert!(actual == golden, "the wire format changed: diff {GOLDEN} with\n{actual}");
}
