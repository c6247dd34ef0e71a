//! In-memory implementations of the ports, for tests and local runs. Built only with
//! the `testing` feature (or the crate's own tests), so no production binary ships
//! them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::Component;
use crate::decision::{Figures, Outcome, RecordedDecision};
use crate::history::History;
use crate::model::ComponentState;
use crate::ports::*;
use crate::state::SystemState;

/// A date from `YYYY-MM-DD`; panics on a typo, which fails the test that made it.
#[allow(clippy::panic)]
pub fn day(s: &str) -> NaiveDate {
    s.parse().unwrap_or_else(|_| panic!("bad date {s}"))
}

/// 05:00 UTC on `YYYY-MM-DD`: when the daily schedule runs.
#[allow(clippy::panic)]
pub fn at(s: &str) -> DateTime<Utc> {
    format!("{s}T05:00:00Z").parse().unwrap_or_else(|_| panic!("bad date {s}"))
}

/// An audit record with nothing in it: the first state write of a test needs one.
pub fn seed_record(id: &str, at: DateTime<Utc>) -> AuditRecord {
    AuditRecord {
        id: id.into(),
        at,
        kind: "test".into(),
        actor: "test".into(),
        decision: None,
        events: vec![],
        note: String::new(),
        state_version: None,
    }
}

/// `request` as the evaluator records it: an `Execute` decision taken at `at`. The
/// provisioner acts on nothing else.
pub fn recorded_execute(request: &LevelChangeRequested, at: DateTime<Utc>) -> AuditRecord {
    AuditRecord {
        id: request.decision_id.to_string(),
        at,
        kind: "evaluation".into(),
        actor: "revscale".into(),
        decision: Some(RecordedDecision {
            id: request.decision_id.clone(),
            date: at.date_naive(),
            mode: request.mode,
            from_level: request.from_level,
            to_level: request.to_level,
            cause: request.cause,
            outcome: Outcome::Execute,
            transitions: request.transitions.clone(),
            reasons: request.reasons.clone(),
            figures: Figures { mrr: None, average_3m: None, cost: None, ratio: None, runway: None },
        }),
        events: vec![],
        note: String::new(),
        state_version: None,
    }
}

/// Leaves `state` with a run that cannot go on: its deployment of the control plane
/// failed, and so did the undo (RollbackFailed). The component is stuck WARMING and the
/// run holds the lock until an operator releases it.
pub fn stick_run(state: &mut SystemState, id: &str) {
    use crate::model::{ComponentId, Mode, Transition, TransitionKind};
    use crate::provisioning::run;
    let control_plane = ComponentId::new("eks_control_plane");
    let request = LevelChangeRequested {
        decision_id: id.into(),
        from_level: 0,
        to_level: 1,
        transitions: [TransitionKind::Deploy, TransitionKind::Activate]
            .map(|kind| Transition { component: control_plane.clone(), kind })
            .to_vec(),
        reasons: vec![],
        mode: Mode::Auto,
        cause: None,
    };
    // 06:00 UTC, an hour after the schedule: when a run would have begun.
    let at = at("2026-11-28") + chrono::Duration::hours(1);
    let steps = run::begin(state, &request, at)
        .map_err(|e| e.to_string())
        .and_then(|_| run::start_step(state, &request.decision_id, 0, at).map_err(|e| e.to_string()))
        .and_then(|_| {
            let failure =
                crate::state::RunFailure { error: "TransitionFailed".into(), cause: "CREATE_FAILED".into() };
            run::next_undo(state, &request.decision_id, failure, at).map_err(|e| e.to_string())
        });
    assert!(steps.is_ok(), "a stuck run needs a state at level 0: {steps:?}");
}

#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: std::sync::Arc<Mutex<Inner>>,
    /// Set on a store scoped to one invocation: its second decision is a replay.
    invocation: Option<String>,
}

#[derive(Default)]
struct Inner {
    revenue: BTreeMap<NaiveDate, RevenueSnapshot>,
    cost: BTreeMap<NaiveDate, CostSnapshot>,
    /// The days whose revenue or cost snapshot was backfilled.
    backfilled: BTreeMap<SnapshotKind, std::collections::BTreeSet<NaiveDate>>,
    state: Option<Versioned<SystemState>>,
    audit: Vec<AuditRecord>,
    /// Invocation id -> the decision it recorded.
    invocations: BTreeMap<String, String>,
    /// Decisions whose event went out.
    published: std::collections::BTreeSet<String>,
}

impl MemoryStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner.lock().map_err(|_| StoreError::Other("memory store poisoned".into()))
    }

    pub fn audit_len(&self) -> usize {
        self.inner.lock().map(|i| i.audit.len()).unwrap_or(0)
    }
}

impl SnapshotStore for MemoryStore {
    async fn put_revenue(&self, snapshot: &RevenueSnapshot) -> Result<Written, StoreError> {
        let mut inner = self.lock()?;
        if inner.revenue.contains_key(&snapshot.date) {
            return Ok(Written::AlreadyExists);
        }
        inner.revenue.insert(snapshot.date, snapshot.clone());
        Ok(Written::Created)
    }
    async fn put_cost(&self, snapshot: &CostSnapshot) -> Result<Written, StoreError> {
        let mut inner = self.lock()?;
        if inner.cost.contains_key(&snapshot.date) {
            return Ok(Written::AlreadyExists);
        }
        inner.cost.insert(snapshot.date, snapshot.clone());
        Ok(Written::Created)
    }
    async fn put_backfilled(&self, snapshot: &Snapshot) -> Result<Written, StoreError> {
        let written = match snapshot {
            Snapshot::Revenue(r) => self.put_revenue(r).await?,
            Snapshot::Cost(c) => self.put_cost(c).await?,
        };
        if written == Written::Created {
            self.lock()?.backfilled.entry(snapshot.kind()).or_default().insert(snapshot.date());
        }
        Ok(written)
    }
    async fn snapshot_days(
        &self,
        kind: SnapshotKind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<std::collections::BTreeSet<NaiveDate>, StoreError> {
        let inner = self.lock()?;
        Ok(match kind {
            SnapshotKind::Revenue => inner.revenue.range(from..=to).map(|(d, _)| *d).collect(),
            SnapshotKind::Cost => inner.cost.range(from..=to).map(|(d, _)| *d).collect(),
        })
    }
    async fn history(&self, from: NaiveDate, to: NaiveDate) -> Result<History, StoreError> {
        let inner = self.lock()?;
        let revenue: Vec<RevenueSnapshot> = inner.revenue.range(from..=to).map(|(_, r)| r.clone()).collect();
        let cost: Vec<CostSnapshot> = inner.cost.range(from..=to).map(|(_, c)| c.clone()).collect();
        let marked = |kind| inner.backfilled.get(&kind).cloned().unwrap_or_default();
        Ok(join_marked(&revenue, &cost, &marked(SnapshotKind::Revenue), &marked(SnapshotKind::Cost)))
    }
}

impl StateStore for MemoryStore {
    async fn load_state(&self) -> Result<Option<Versioned<SystemState>>, StoreError> {
        Ok(self.lock()?.state.clone())
    }
    async fn record_decision(
        &self,
        record: &AuditRecord,
        state: &SystemState,
        expected_version: Option<u64>,
    ) -> Result<Written, StoreError> {
        let mut inner = self.lock()?;
        let replayed = self.invocation.as_ref().is_some_and(|id| inner.invocations.contains_key(id));
        if replayed || inner.audit.iter().any(|r| r.id == record.id) {
            return Ok(Written::AlreadyExists);
        }
        let current = inner.state.as_ref().map(|s| s.version);
        if current != expected_version {
            return Err(StoreError::Conflict("state".into()));
        }
        let version = expected_version.map_or(1, |v| v + 1);
        let mut stored = state.clone();
        stored.version = version;
        inner.state = Some(Versioned { value: stored, version });
        inner.audit.push(AuditRecord { state_version: Some(version), ..record.clone() });
        if let Some(id) = &self.invocation {
            inner.invocations.insert(id.clone(), record.id.clone());
        }
        Ok(Written::Created)
    }
}

impl AuditStore for MemoryStore {
    async fn mark_published(&self, id: &str) -> Result<(), StoreError> {
        self.lock()?.published.insert(id.to_string());
        Ok(())
    }
    async fn is_published(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock()?.published.contains(id))
    }
    async fn recorded_by_invocation(&self) -> Result<Option<String>, StoreError> {
        let inner = self.lock()?;
        Ok(self.invocation.as_ref().and_then(|id| inner.invocations.get(id).cloned()))
    }
    async fn audit_record(&self, id: &str) -> Result<Option<AuditRecord>, StoreError> {
        Ok(self.lock()?.audit.iter().find(|r| r.id == id).cloned())
    }
    async fn recent_audit(
        &self,
        limit: usize,
        before: Option<String>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut audit: Vec<AuditRecord> = self.lock()?.audit.clone();
        // Newest first, by trail key, as the DynamoDB sort key orders them.
        audit.sort_by_key(|r| std::cmp::Reverse(r.trail_key()));
        Ok(audit
            .into_iter()
            .filter(|r| before.as_ref().is_none_or(|b| r.trail_key() < *b))
            .take(limit)
            .collect())
    }
}

/// Keeps what was published, for assertions.
#[derive(Default)]
pub struct MemoryBus {
    pub published: Mutex<Vec<(String, serde_json::Value)>>,
    /// Publishes to refuse before the bus works again: an EventBridge outage.
    pub failures_left: std::sync::atomic::AtomicU32,
}

impl MemoryBus {
    /// A bus whose next `failures` publishes fail.
    pub fn failing(failures: u32) -> Self {
        MemoryBus { failures_left: failures.into(), ..MemoryBus::default() }
    }
}

impl EventBus for MemoryBus {
    async fn publish(&self, detail_type: &str, detail: &serde_json::Value) -> Result<(), PublishError> {
        use std::sync::atomic::Ordering;
        let failing = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
            .is_ok();
        if failing {
            return Err(PublishError("EventBridge is unavailable (injected)".into()));
        }
        let mut published = self.published.lock().map_err(|_| PublishError("bus poisoned".into()))?;
        published.push((detail_type.to_string(), detail.clone()));
        Ok(())
    }
}

/// Per component, the answers still to give.
type Script<T> = Mutex<Vec<(String, std::collections::VecDeque<Result<T, DriverError>>)>>;

/// A driver that answers from a script, per component: each call takes the next
/// answer; an empty script means success. Records every `apply`.
#[derive(Default)]
pub struct ScriptedDriver {
    apply: Script<()>,
    status: Script<DriverStatus>,
    observe: Script<Observed>,
    calls: Mutex<Vec<String>>,
    /// The capacity each `apply` was given as saved, in order.
    saved: Mutex<Vec<Option<crate::model::Capacity>>>,
}

impl ScriptedDriver {
    pub fn on_apply(self, component: &str, answers: Vec<Result<(), DriverError>>) -> Self {
        if let Ok(mut s) = self.apply.lock() {
            s.push((component.into(), answers.into()));
        }
        self
    }

    pub fn on_status(self, component: &str, answers: Vec<Result<DriverStatus, DriverError>>) -> Self {
        if let Ok(mut s) = self.status.lock() {
            s.push((component.into(), answers.into()));
        }
        self
    }

    pub fn on_observe(self, component: &str, answers: Vec<Result<Observed, DriverError>>) -> Self {
        if let Ok(mut s) = self.observe.lock() {
            s.push((component.into(), answers.into()));
        }
        self
    }

    /// The saved capacity every `apply` was given, in order.
    pub fn saved(&self) -> Vec<Option<crate::model::Capacity>> {
        self.saved.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// `component -> target` for every `apply`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn pop<T>(script: &Script<T>, component: &str) -> Option<Result<T, DriverError>> {
        let mut script = script.lock().ok()?;
        script.iter_mut().find(|(c, _)| c == component).and_then(|(_, answers)| answers.pop_front())
    }
}

impl ComponentDriver for ScriptedDriver {
    async fn apply(&self, request: Apply<'_>) -> Result<(), DriverError> {
        let Apply { component, target, saved } = request;
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(format!("{} -> {target}", component.id));
        }
        if let Ok(mut s) = self.saved.lock() {
            s.push(saved);
        }
        Self::pop(&self.apply, component.id.as_str()).unwrap_or(Ok(()))
    }

    /// Unscripted, a resource is seen nowhere in particular (no capacity, no state).
    async fn observe(&self, component: &Component) -> Result<Observed, DriverError> {
        Self::pop(&self.observe, component.id.as_str())
            .unwrap_or_else(|| Ok(Observed::moving("not scripted")))
    }

    async fn status(
        &self,
        component: &Component,
        _target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        Self::pop(&self.status, component.id.as_str()).unwrap_or(Ok(DriverStatus::Ready))
    }
}

/// The provisioning executions still running, by decision id: what Step Functions
/// would say.
#[derive(Default)]
pub struct MemoryExecutions {
    pub running: Mutex<std::collections::BTreeSet<crate::model::DecisionId>>,
}

impl MemoryExecutions {
    pub fn running(ids: &[&str]) -> Self {
        MemoryExecutions { running: Mutex::new(ids.iter().map(|id| (*id).into()).collect()) }
    }
}

impl ProvisioningExecutions for MemoryExecutions {
    async fn is_running(&self, decision_id: &crate::model::DecisionId) -> Result<bool, ExecutionsError> {
        let running = self.running.lock().map_err(|_| ExecutionsError {
            decision_id: decision_id.clone(),
            message: "executions poisoned".into(),
        })?;
        Ok(running.contains(decision_id))
    }
}

#[derive(Default)]
pub struct MemoryNotifier {
    pub sent: Mutex<Vec<Alert>>,
}

impl Notifier for MemoryNotifier {
    async fn notify(&self, alert: &Alert) -> Result<(), PublishError> {
        self.sent.lock().map_err(|_| PublishError("notifier poisoned".into()))?.push(alert.clone());
        Ok(())
    }
}

/// The same data, remembering the invocation as DynamoDB does: a second decision from
/// the same invocation is a replay and writes nothing.
impl ScopedStore for MemoryStore {
    type Scoped = MemoryStore;
    fn for_invocation(&self, invocation_id: &str) -> Self::Scoped {
        MemoryStore { inner: self.inner.clone(), invocation: Some(invocation_id.to_string()) }
    }
}

impl ScopedStore for std::sync::Arc<MemoryStore> {
    type Scoped = std::sync::Arc<MemoryStore>;
    fn for_invocation(&self, invocation_id: &str) -> Self::Scoped {
        std::sync::Arc::new(MemoryStore::for_invocation(self, invocation_id))
    }
}
