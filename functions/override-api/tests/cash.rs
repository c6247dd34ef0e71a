//! `POST /cash` and the runway in `GET /status`, with a configuration that guards the
//! runway: the figure is stored with who set it, audited, and the status shows today's
//! estimate, the net burn and the months; an operator that sets nothing sees why the
//! runway is unknown.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::sync::Arc;

use lambda_http::{Body, Request};
use override_api::auth::Roles;
use override_api::handler::{Deps, handle};
use revscale_api::{SetCashResponse, StatusResponse};
use revscale_engine::ports::{AuditStore, SnapshotStore};
use revscale_engine::runway::RunwayMonths;
use revscale_engine::testing::{MemoryBus, MemoryNotifier, MemoryStore};
use revscale_engine::{Config, DEFAULT_CONFIG_YAML, Money};
use revscale_test_support::store_contract::{cost, revenue};
use serde_json::Value;

fn request(name: &str) -> Request {
    let path = format!("{}/../../events/override-api/{name}.json", env!("CARGO_MANIFEST_DIR"));
    lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn api() -> (Deps<Arc<MemoryStore>, MemoryBus, MemoryNotifier>, Arc<MemoryStore>) {
    let yaml = format!("{DEFAULT_CONFIG_YAML}\nrunway: {{ min_months: 12, monthly_fixed_burn: 30000 }}\n");
    let store = Arc::new(MemoryStore::default());
    // The fixtures are dated 2026-11-29: MRR 2,000 and cost 500 that day.
    store.put_revenue(&revenue("2026-11-29", 2_000)).await.unwrap();
    store.put_cost(&cost("2026-11-29", 500)).await.unwrap();
    let deps = Deps {
        config: Config::from_yaml(&yaml).unwrap(),
        store: store.clone(),
        bus: MemoryBus::default(),
        notifier: MemoryNotifier::default(),
        roles: Roles::everyone(),
        timezone: Default::default(),
        executions: Arc::new(revscale_engine::testing::MemoryExecutions::default()),
    };
    (deps, store)
}

async fn call(deps: &Deps<Arc<MemoryStore>, MemoryBus, MemoryNotifier>, name: &str) -> (u16, Value) {
    let response = handle(deps, request(name)).await.unwrap();
    let body = match response.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("{name}: {other:?}"),
    };
    (response.status().as_u16(), body)
}

#[tokio::test]
async fn the_status_says_why_the_runway_is_unknown_until_cash_is_set() {
    let (deps, _) = api().await;
    let (status, body) = call(&deps, "status").await;
    assert_eq!(status, 200, "{body}");
    let answer: StatusResponse = serde_json::from_value(body).unwrap();
    let runway = answer.runway.expect("a runway section is configured");
    assert_eq!((runway.min_months, runway.months), (12, None));
    assert!(runway.unknown_because.unwrap().contains("no cash figure is set"));
}

#[tokio::test]
async fn cash_set_by_an_operator_is_audited_and_the_status_shows_the_runway_it_gives() {
    let (deps, store) = api().await;
    let (status, body) = call(&deps, "cash-set").await;
    assert_eq!(status, 200, "{body}");
    let set: SetCashResponse = serde_json::from_value(body).unwrap();
    assert_eq!(set.cash.amount, Money::whole(420_000, deps.config.currency));
    assert_eq!(set.cash.set_by, "arn:aws:iam::123456789012:user/bob");
    // Set as of November 1st; the days before the 29th have no snapshot and count at
    // the 29th's figures: 30,000 + 500 - 2,000 = 28,500 a month for 28 days.
    let runway = set.runway.unwrap();
    let burned = (28_500 * 100 * 12 * 28 + 364) / 365;
    assert_eq!(runway.cash, Some(Money::from_minor(42_000_000 - burned, deps.config.currency)));
    assert_eq!(runway.net_burn, Some(Money::whole(28_500, deps.config.currency)));
    // 393,764.38 / 28,500 = 13.8.
    assert_eq!(runway.months, Some(RunwayMonths::Tenths(138)), "{runway:?}");

    let (_, body) = call(&deps, "status").await;
    let answer: StatusResponse = serde_json::from_value(body).unwrap();
    assert_eq!(answer.runway.unwrap().months, Some(RunwayMonths::Tenths(138)));

    let trail = store.recent_audit(5, None).await.unwrap();
    let record = trail.iter().find(|r| r.kind == "cash").expect("an audit record of the change");
    assert_eq!(record.note, "set the cash to EUR 420,000 as of 2026-11-01");
    assert_eq!(record.actor, "arn:aws:iam::123456789012:user/bob");
}

#[tokio::test]
async fn cash_in_another_currency_in_the_future_or_malformed_is_refused_and_nothing_is_stored() {
    let (deps, store) = api().await;
    for (name, says) in [
        ("cash-set-other-currency", "cash is in USD, the configuration in EUR"),
        ("cash-set-future", "is in the future (today is 2026-11-29)"),
        ("cash-set-malformed", "'420,000' is not an amount in EUR"),
    ] {
        let (status, body) = call(&deps, name).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert!(body["error"].as_str().unwrap().contains(says), "{name}: {body}");
    }
    assert!(store.recent_audit(5, None).await.unwrap().iter().all(|r| r.kind != "cash"));
}
