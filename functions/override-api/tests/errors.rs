//! Internal failures: a generic 500 for the caller, the whole chain in the log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use chrono::NaiveDate;
use override_api::handler::{Deps, handle};
use revscale_engine::ports::{
    AuditRecord, AuditStore, CostSnapshot, RevenueSnapshot, ScopedStore, SnapshotStore, StateStore,
    StoreError, Versioned, Written,
};
use revscale_engine::testing::{MemoryBus, MemoryNotifier};
use revscale_engine::{Config, History, SystemState};

/// A store whose every call fails the way a broken table would.
#[derive(Clone, Copy)]
struct BrokenStore;

impl ScopedStore for BrokenStore {
    type Scoped = BrokenStore;
    fn for_invocation(&self, _invocation_id: &str) -> Self::Scoped {
        *self
    }
}

fn broken<T>() -> Result<T, StoreError> {
    Err(StoreError::Other(
        "ResourceNotFoundException: Requested resource not found: Table: revscale not found".into(),
    ))
}

impl SnapshotStore for BrokenStore {
    async fn put_revenue(&self, _: &RevenueSnapshot) -> Result<Written, StoreError> {
        broken()
    }
    async fn put_cost(&self, _: &CostSnapshot) -> Result<Written, StoreError> {
        broken()
    }
    async fn put_backfilled(&self, _: &revscale_engine::ports::Snapshot) -> Result<Written, StoreError> {
        broken()
    }
    async fn snapshot_days(
        &self,
        _: revscale_engine::ports::SnapshotKind,
        _: NaiveDate,
        _: NaiveDate,
    ) -> Result<std::collections::BTreeSet<NaiveDate>, StoreError> {
        broken()
    }
    async fn history(&self, _: NaiveDate, _: NaiveDate) -> Result<History, StoreError> {
        broken()
    }
}

impl StateStore for BrokenStore {
    async fn load_state(&self) -> Result<Option<Versioned<SystemState>>, StoreError> {
        broken()
    }
    async fn record_decision(
        &self,
        _: &AuditRecord,
        _: &SystemState,
        _: Option<u64>,
    ) -> Result<Written, StoreError> {
        broken()
    }
}

impl AuditStore for BrokenStore {
    async fn recent_audit(&self, _: usize, _: Option<String>) -> Result<Vec<AuditRecord>, StoreError> {
        broken()
    }
    async fn audit_record(&self, _: &str) -> Result<Option<AuditRecord>, StoreError> {
        broken()
    }
    async fn recorded_by_invocation(&self) -> Result<Option<String>, StoreError> {
        broken()
    }
    async fn mark_published(&self, _: &str) -> Result<(), StoreError> {
        broken()
    }
    async fn is_published(&self, _: &str) -> Result<bool, StoreError> {
        broken()
    }
}

#[test]
fn an_internal_error_is_a_generic_500_that_leaks_nothing() {
    let deps = Deps {
        config: Config::default_config().unwrap(),
        store: BrokenStore,
        bus: MemoryBus::default(),
        notifier: MemoryNotifier::default(),
        roles: override_api::auth::Roles::everyone(),
        timezone: Default::default(),
        executions: std::sync::Arc::new(revscale_engine::testing::MemoryExecutions::default()),
    };
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/override-api/status.json"
    ))
    .unwrap();
    let request = lambda_http::request::from_str(&text).unwrap();
    let response = pollster::block_on(handle(&deps, request)).unwrap();
    assert_eq!(response.status().as_u16(), 500);
    let body = match response.body() {
        lambda_http::Body::Text(t) => t.clone(),
        other => panic!("unexpected body {other:?}"),
    };
    assert_eq!(body, r#"{"error":"internal error; see the function's logs"}"#);
}
