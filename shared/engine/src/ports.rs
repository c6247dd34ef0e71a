//! The ports the adapters implement: where snapshots, state and decisions are kept,
//! where events and alerts go, where revenue and cost come from. Each has an AWS (or
//! Stripe) implementation in `revscale-aws` and an in-memory one in `testing` (feature
//! `testing`), used by the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Component;
use crate::decision::{Event, RecordedDecision};
use crate::history::{Backfilled, DailySnapshot, History};
use crate::model::{Capacity, ComponentId, ComponentState, DecisionId};
use crate::money::Money;
use crate::state::SystemState;

/// MRR as the billing system reported it on one day, in the revenue currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevenueSnapshot {
    pub date: NaiveDate,
    pub mrr: Money,
    pub subscriptions_counted: u32,
    pub customers: u32,
    pub collected_at: DateTime<Utc>,
}

/// A snapshot of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snapshot {
    Revenue(RevenueSnapshot),
    Cost(CostSnapshot),
}

impl Snapshot {
    pub fn kind(&self) -> SnapshotKind {
        match self {
            Snapshot::Revenue(_) => SnapshotKind::Revenue,
            Snapshot::Cost(_) => SnapshotKind::Cost,
        }
    }

    pub fn date(&self) -> NaiveDate {
        match self {
            Snapshot::Revenue(r) => r.date,
            Snapshot::Cost(c) => c.date,
        }
    }
}

/// Spend as Cost Explorer reported it on one day, converted to the revenue currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostSnapshot {
    pub date: NaiveDate,
    /// The current month's expected total: Cost Explorer's forecast when it has one,
    /// else the month-to-date spend scaled to the whole month. This is the "cost" the
    /// rules compare with MRR.
    pub monthly_run_rate: Money,
    pub month_to_date: Money,
    pub previous_month: Money,
    /// Month-to-date spend per component, from the cost allocation tag.
    pub per_component: BTreeMap<ComponentId, Money>,
    /// Cost Explorer marks the current month's figures as estimated.
    pub estimated: bool,
    pub forecast_used: bool,
    /// Source currency per revenue-currency unit, e.g. `"0.93"` for USD -> EUR.
    pub fx_rate: String,
    /// Cost Explorer requests this collection made (each is billed USD 0.01).
    pub requests: u32,
    pub collected_at: DateTime<Utc>,
}

/// An entry of the append-only audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The decision id, or an id derived from it for provisioning records.
    pub id: String,
    pub at: DateTime<Utc>,
    /// `evaluation`, `override`, `provisioning`...
    pub kind: String,
    /// Who: `revscale` for scheduled runs, the IAM principal for API calls.
    pub actor: String,
    /// The decision without its state (see [`RecordedDecision`]).
    pub decision: Option<RecordedDecision>,
    pub events: Vec<Event>,
    pub note: String,
    /// The version of the state item written with this record: the state it produced.
    /// Set by the store when it writes the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_version: Option<u64>,
}

impl AuditRecord {
    /// Where the record stands in the trail: the UTC time it was written, to the
    /// millisecond, then its id. Every writer's records (the evaluator's decision ids,
    /// the API's request ids, the provisioner's step ids) sort by time with this one
    /// scheme, and `GET /decisions?before=` pages by it.
    pub fn trail_key(&self) -> String {
        format!("{}#{}", self.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"), self.id)
    }
}

/// A state read from the store, with the version a write must expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// Whether a conditional create wrote anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    /// The same key was already there: a replay, nothing changed.
    AlreadyExists,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer changed the record first (optimistic locking).
    #[error("conflict: {0} was changed by another writer")]
    Conflict(String),
    /// Throttling, timeouts: worth retrying.
    #[error("store temporarily unavailable: {0}")]
    Transient(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("store error: {0}")]
    Other(String),
}

/// The two kinds of daily snapshot, one per collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    Revenue,
    Cost,
}

impl SnapshotKind {
    /// Where a backfilled snapshot of this kind comes from, as its mark in the store says.
    pub fn backfill_source(self) -> &'static str {
        match self {
            SnapshotKind::Revenue => "stripe-invoices",
            SnapshotKind::Cost => "cost-explorer",
        }
    }
}

/// How many days before today a collector looks for days it missed. A week covers a
/// long outage (the queue gives up on a day after about an hour) while keeping the
/// look-back to one small query, and Cost Explorer and Stripe's invoices still know
/// those days exactly. A longer gap is for `revscale history fetch` and `import`.
pub const BACKFILL_DAYS: u32 = 7;

/// The days a collector reads back on `today` to find what it missed: from
/// [`BACKFILL_DAYS`] + 1 days before (the day a gap of the whole look-back starts
/// after) to yesterday.
pub fn backfill_window(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let back = |days: u32| today.checked_sub_days(chrono::Days::new(u64::from(days))).unwrap_or(today);
    (back(BACKFILL_DAYS + 1), back(1))
}

/// The days before `today`, at most [`BACKFILL_DAYS`] back, that have no snapshot in
/// `stored` (the days of [`backfill_window`] that do), oldest first. Only days after a
/// stored one: before its first collected day an installation did not exist, and
/// filling those would invent a history nobody collected (`history import` is for that).
pub fn days_to_backfill(stored: &BTreeSet<NaiveDate>, today: NaiveDate) -> Vec<NaiveDate> {
    let (from, to) = backfill_window(today);
    let Some(first) = stored.range(from..=to).next().copied() else { return Vec::new() };
    first.iter_days().skip(1).take_while(|d| *d <= to).filter(|d| !stored.contains(d)).collect()
}

/// Where the collectors put the day's figures and the evaluator reads them back.
pub trait SnapshotStore {
    fn put_revenue(
        &self,
        snapshot: &RevenueSnapshot,
    ) -> impl Future<Output = Result<Written, StoreError>> + Send;
    fn put_cost(&self, snapshot: &CostSnapshot) -> impl Future<Output = Result<Written, StoreError>> + Send;
    /// A missed day's snapshot, written by a later run of its collector from its source's
    /// record of that day: only if absent (a collected day is never overwritten), and
    /// marked as backfilled from [`SnapshotKind::backfill_source`]; `history` carries
    /// the mark.
    fn put_backfilled(&self, snapshot: &Snapshot)
    -> impl Future<Output = Result<Written, StoreError>> + Send;
    /// The days from `from` to `to` inclusive that have a snapshot of `kind`, collected,
    /// imported or backfilled.
    fn snapshot_days(
        &self,
        kind: SnapshotKind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<BTreeSet<NaiveDate>, StoreError>> + Send;
    /// Daily snapshots from `from` to `to` inclusive: one per day that has both a
    /// revenue and a cost snapshot.
    fn history(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<History, StoreError>> + Send;
}

/// The one state item: read it, and change it only together with the audit record
/// that explains the change.
pub trait StateStore {
    fn load_state(&self) -> impl Future<Output = Result<Option<Versioned<SystemState>>, StoreError>> + Send;
    /// Writes the decision's audit record and the new state atomically: the record
    /// only if its id is new, the state only if its version is still `expected_version`
    /// (`None` for the first write). `AlreadyExists` means a replay: nothing written.
    fn record_decision(
        &self,
        record: &AuditRecord,
        state: &SystemState,
        expected_version: Option<u64>,
    ) -> impl Future<Output = Result<Written, StoreError>> + Send;
}

/// The audit trail, read by the operators and by the provisioner before it acts.
pub trait AuditStore {
    /// Newest first, by [`AuditRecord::trail_key`]; `before` (a trail key: the `next`
    /// of a previous page) continues from a previous page.
    fn recent_audit(
        &self,
        limit: usize,
        before: Option<String>,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;
    /// The audit record `id`, if there is one (the provisioner checks a decision here
    /// before acting on an event that names it).
    fn audit_record(&self, id: &str) -> impl Future<Output = Result<Option<AuditRecord>, StoreError>> + Send;
    /// The decision this store's invocation recorded, if it is scoped to one
    /// ([`ScopedStore`]) that recorded any: a replayed invocation decides afresh on the
    /// state its first attempt left, so its own decision id is another; this one is the
    /// id of what was committed.
    fn recorded_by_invocation(&self) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Notes that the event of the decision `id` went out. A committed Execute without
    /// this mark is published again by the next replay of its invocation.
    fn mark_published(&self, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn is_published(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Everything the evaluator and the operator API use. Functions that need less ask
/// for less ([`SnapshotStore`] for the collectors...), so a test double implements
/// only the concern under test.
pub trait Store: SnapshotStore + StateStore + AuditStore {}

impl<T: SnapshotStore + StateStore + AuditStore> Store for T {}

/// Where a component stands relative to the state a driver was asked to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverStatus {
    Ready,
    InProgress,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// Worth retrying as is (throttling, a timeout).
    #[error("transient driver error: {0}")]
    Transient(String),
    /// The change cannot be made; the run must be rolled back.
    #[error("{0}")]
    Rejected(String),
    /// The resource is busy with another operation and refused this one (EKS's
    /// `ResourceInUseException`): this call changed nothing, but an earlier one may be
    /// under way.
    #[error("{0}")]
    Busy(String),
}

/// Where a resource is, as its driver reads it: the states it is consistent with (a
/// stopped database is both WARM and COLD; none while it is starting or stopping),
/// what it is in AWS's words, and its capacity when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub states: Vec<ComponentState>,
    /// "desiredCount 2, running 2", "stopped", "no stack".
    pub actual: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// On its way somewhere (starting, stopping, a rollout, instances launching): the
    /// drift check looks again tomorrow rather than report it. The driver says so; a
    /// resource with no state that is not moving (deleted, FAILED) is drift.
    #[serde(default)]
    pub moving: bool,
    /// The resource does not exist (deleted, terminated, never created): for a kind
    /// whose resource must exist, a configuration naming it is wrong (`revscale config
    /// push` refuses it), where a resource in a state of no level (split, FAILED) is
    /// only drift.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
}

impl Observed {
    pub fn at(states: &[ComponentState], actual: impl Into<String>) -> Self {
        Observed {
            states: states.to_vec(),
            actual: actual.into(),
            capacity: None,
            moving: false,
            absent: false,
        }
    }

    /// On its way somewhere (starting, stopping, updating): no state yet.
    pub fn moving(actual: impl Into<String>) -> Self {
        Observed { moving: true, ..Observed::at(&[], actual) }
    }

    /// Not there at all: no state (drift), and, for a resource that must exist, a
    /// configuration error.
    pub fn absent(actual: impl Into<String>) -> Self {
        Observed { absent: true, ..Observed::at(&[], actual) }
    }

    pub fn with_capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Whether the resource is where the state says `recorded` leaves it.
    pub fn agrees_with(&self, recorded: ComponentState) -> bool {
        self.states.contains(&recorded)
    }
}

/// What a driver is asked to do: take `component` to `target`. `saved` is the capacity
/// recorded when it last went WARM, which HOT restores unless the configuration fixes
/// one.
#[derive(Debug, Clone, Copy)]
pub struct Apply<'a> {
    pub component: &'a Component,
    pub target: ComponentState,
    pub saved: Option<Capacity>,
}

impl Apply<'_> {
    /// HOT's capacity: the configured one, else the saved one.
    pub fn hot_capacity(&self) -> Option<Capacity> {
        self.component.driver.as_kind().configured_capacity().or(self.saved)
    }
}

/// The port every component driver implements (EKS cluster, ECS service, RDS...).
/// `apply` starts the change and returns quickly; `status` reports progress towards a
/// state; `observe` reads where the resource is, for the drift check, the orphans
/// rule and the capacity saved before going WARM. Waiting happens in the caller (the
/// state machine's Wait state), never inside a driver.
pub trait ComponentDriver {
    fn apply(&self, request: Apply<'_>) -> impl Future<Output = Result<(), DriverError>> + Send;
    fn status(
        &self,
        component: &Component,
        target: ComponentState,
    ) -> impl Future<Output = Result<DriverStatus, DriverError>> + Send;
    fn observe(&self, component: &Component) -> impl Future<Output = Result<Observed, DriverError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PublishError(pub String);

/// Whether a provisioning run's execution is still running. The execution is named
/// after the run's decision id (the dispatch state machine names it so). Releasing a
/// stuck run while its execution still runs would let two writers move the same
/// components: an operator's release asks this first.
pub trait ProvisioningExecutions {
    /// `Ok(false)` when the execution has ended or never existed under that name.
    fn is_running(
        &self,
        decision_id: &DecisionId,
    ) -> impl Future<Output = Result<bool, ExecutionsError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("cannot tell whether the provisioning execution {decision_id} has ended: {message}")]
pub struct ExecutionsError {
    pub decision_id: DecisionId,
    pub message: String,
}

/// The `Level Change Requested` event the provisioner's state machine starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelChangeRequested {
    pub decision_id: DecisionId,
    pub from_level: u8,
    pub to_level: u8,
    pub transitions: Vec<crate::model::Transition>,
    pub reasons: Vec<String>,
    pub mode: crate::model::Mode,
    pub cause: Option<crate::model::Cause>,
}

impl LevelChangeRequested {
    /// The event a decision to execute publishes.
    pub fn for_decision(decision: &crate::decision::Decision) -> Self {
        Self::for_record(&crate::decision::RecordedDecision::from(decision))
    }

    /// The same event from the decision as the audit trail keeps it: what a replay
    /// publishes again.
    pub fn for_record(decision: &crate::decision::RecordedDecision) -> Self {
        LevelChangeRequested {
            decision_id: decision.id.clone(),
            from_level: decision.from_level,
            to_level: decision.to_level,
            transitions: decision.transitions.clone(),
            reasons: decision.reasons.clone(),
            mode: decision.mode,
            cause: decision.cause,
        }
    }
}

/// `detail-type` of the event that starts a provisioning run.
pub const LEVEL_CHANGE_REQUESTED: &str = "Level Change Requested";
/// `detail-type` of the event a successful run ends with.
pub const LEVEL_CHANGED: &str = "Level Changed";

pub trait EventBus {
    /// Publishes one event with source `revscale`.
    fn publish(
        &self,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// An operator-facing alert (SNS e-mail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub subject: String,
    pub message: String,
}

pub trait Notifier {
    fn notify(&self, alert: &Alert) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// Joins revenue and cost snapshots into the engine's daily view: every day with
/// revenue, with its cost when the cost collector ran that day too.
pub fn join_snapshots(revenue: &[RevenueSnapshot], cost: &[CostSnapshot]) -> History {
    let costs: BTreeMap<NaiveDate, Money> = cost.iter().map(|c| (c.date, c.monthly_run_rate)).collect();
    History::from_snapshots(revenue.iter().map(|r| DailySnapshot {
        date: r.date,
        mrr: r.mrr,
        cost: costs.get(&r.date).copied(),
    }))
}

/// [`join_snapshots`], keeping the marks of the days whose revenue or cost was
/// backfilled (the dates given).
pub fn join_marked(
    revenue: &[RevenueSnapshot],
    cost: &[CostSnapshot],
    revenue_backfilled: &BTreeSet<NaiveDate>,
    cost_backfilled: &BTreeSet<NaiveDate>,
) -> History {
    let mut history = join_snapshots(revenue, cost);
    for date in revenue_backfilled {
        history.mark_backfilled(*date, Backfilled { revenue: true, cost: false });
    }
    for date in cost_backfilled {
        history.mark_backfilled(*date, Backfilled { revenue: false, cost: true });
    }
    history
}

/// A shared or borrowed store is a store (handlers hold one per invocation; tests lend
/// theirs).
macro_rules! forward_stores {
    ($($wrapper:ty),+) => { $(
        impl<S: SnapshotStore + Send + Sync> SnapshotStore for $wrapper {
            fn put_revenue(
                &self,
                snapshot: &RevenueSnapshot,
            ) -> impl Future<Output = Result<Written, StoreError>> + Send {
                S::put_revenue(self, snapshot)
            }
            fn put_cost(&self, snapshot: &CostSnapshot) -> impl Future<Output = Result<Written, StoreError>> + Send {
                S::put_cost(self, snapshot)
            }
            fn put_backfilled(&self, snapshot: &Snapshot) -> impl Future<Output = Result<Written, StoreError>> + Send {
                S::put_backfilled(self, snapshot)
            }
            fn snapshot_days(
                &self,
                kind: SnapshotKind,
                from: NaiveDate,
                to: NaiveDate,
            ) -> impl Future<Output = Result<BTreeSet<NaiveDate>, StoreError>> + Send {
                S::snapshot_days(self, kind, from, to)
            }
            fn history(
                &self,
                from: NaiveDate,
                to: NaiveDate,
            ) -> impl Future<Output = Result<History, StoreError>> + Send {
                S::history(self, from, to)
            }
        }

        impl<S: StateStore + Send + Sync> StateStore for $wrapper {
            fn load_state(&self) -> impl Future<Output = Result<Option<Versioned<SystemState>>, StoreError>> + Send {
                S::load_state(self)
            }
            fn record_decision(
                &self,
                record: &AuditRecord,
                state: &SystemState,
                expected_version: Option<u64>,
            ) -> impl Future<Output = Result<Written, StoreError>> + Send {
                S::record_decision(self, record, state, expected_version)
            }
        }

        impl<S: AuditStore + Send + Sync> AuditStore for $wrapper {
            fn recorded_by_invocation(&self) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
                S::recorded_by_invocation(self)
            }
            fn mark_published(&self, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
                S::mark_published(self, id)
            }
            fn is_published(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send {
                S::is_published(self, id)
            }
            fn recent_audit(
                &self,
                limit: usize,
                before: Option<String>,
            ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send {
                S::recent_audit(self, limit, before)
            }
            fn audit_record(&self, id: &str) -> impl Future<Output = Result<Option<AuditRecord>, StoreError>> + Send {
                S::audit_record(self, id)
            }
        }
    )+ };
}

forward_stores!(std::sync::Arc<S>, &S);

/// A store whose writes can be scoped to one invocation: a replayed invocation (the same
/// event or request id) then writes nothing.
pub trait ScopedStore {
    type Scoped: Store;
    fn for_invocation(&self, invocation_id: &str) -> Self::Scoped;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::money::Currency;
    use crate::testing::{MemoryBus, MemoryNotifier, ScriptedDriver, at, day};

    fn revenue(d: &str, mrr: i64) -> RevenueSnapshot {
        RevenueSnapshot {
            date: day(d),
            mrr: Money::whole(mrr, Currency::EUR),
            subscriptions_counted: 1,
            customers: 1,
            collected_at: at(d),
        }
    }

    fn cost(d: &str, eur: i64) -> CostSnapshot {
        CostSnapshot {
            date: day(d),
            monthly_run_rate: Money::whole(eur, Currency::EUR),
            month_to_date: Money::whole(eur, Currency::EUR),
            previous_month: Money::whole(eur, Currency::EUR),
            per_component: BTreeMap::new(),
            estimated: false,
            forecast_used: true,
            fx_rate: "1".into(),
            requests: 2,
            collected_at: at(d),
        }
    }

    #[test]
    fn every_revenue_day_joins_history_with_its_cost_when_there_is_one() {
        let h = join_snapshots(
            &[revenue("2026-03-01", 10), revenue("2026-03-02", 20)],
            &[cost("2026-03-02", 5), cost("2026-03-03", 6)],
        );
        assert_eq!(h.len(), 2, "a day without revenue is not a day of history");
        assert_eq!(h.get(day("2026-03-01")).unwrap().cost, None, "a missing cost does not void the day");
        assert_eq!(h.get(day("2026-03-02")).unwrap().cost, Some(Money::whole(5, Currency::EUR)));
    }

    fn days(list: &[&str]) -> BTreeSet<NaiveDate> {
        list.iter().map(|d| day(d)).collect()
    }

    #[test]
    fn the_days_to_backfill_are_the_gaps_of_the_last_week_after_a_stored_day() {
        let today = day("2026-11-29");
        assert_eq!(backfill_window(today), (day("2026-11-21"), day("2026-11-28")));
        // Collected on the 21st to the 25th and the 27th: the 26th and the 28th are gaps.
        let stored =
            days(&["2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"]);
        assert_eq!(days_to_backfill(&stored, today), [day("2026-11-26"), day("2026-11-28")]);
        // Nothing since the 21st: the whole week is filled, and no day before it.
        assert_eq!(days_to_backfill(&days(&["2026-11-21"]), today).len(), 7);
        assert_eq!(days_to_backfill(&days(&["2026-11-21"]), today)[0], day("2026-11-22"));
        // Today's own snapshot and days older than the window are not the look-back's.
        assert!(days_to_backfill(&days(&["2026-11-29"]), today).is_empty());
        assert!(days_to_backfill(&days(&["2026-11-20"]), today).is_empty());
    }

    #[test]
    fn a_new_installation_backfills_nothing_before_its_first_day() {
        let today = day("2026-11-29");
        assert!(days_to_backfill(&BTreeSet::new(), today).is_empty(), "nothing collected yet");
        assert!(days_to_backfill(&days(&["2026-11-27"]), today) == [day("2026-11-28")]);
        assert!(days_to_backfill(&days(&["2026-11-28"]), today).is_empty(), "first collected yesterday");
    }

    #[test]
    fn joined_history_keeps_which_days_were_backfilled() {
        let h = join_marked(
            &[revenue("2026-03-01", 10), revenue("2026-03-02", 20)],
            &[cost("2026-03-01", 5), cost("2026-03-02", 5), cost("2026-03-03", 6)],
            &days(&["2026-03-02"]),
            &days(&["2026-03-02", "2026-03-03"]),
        );
        let marks: Vec<_> = h.backfilled(day("2026-03-01"), day("2026-03-03")).collect();
        assert_eq!(
            marks,
            [(day("2026-03-02"), Backfilled { revenue: true, cost: true })],
            "a cost without revenue is no day of history, and takes no mark"
        );
        assert_eq!(h.get(day("2026-03-02")).unwrap().mrr, Money::whole(20, Currency::EUR));
    }

    #[test]
    fn each_kind_names_the_source_it_is_backfilled_from() {
        assert_eq!(SnapshotKind::Revenue.backfill_source(), "stripe-invoices");
        assert_eq!(SnapshotKind::Cost.backfill_source(), "cost-explorer");
        assert_eq!(Snapshot::Cost(cost("2026-03-03", 6)).kind(), SnapshotKind::Cost);
        assert_eq!(Snapshot::Revenue(revenue("2026-03-01", 1)).date(), day("2026-03-01"));
    }

    #[test]
    fn the_memory_bus_and_notifier_keep_what_they_were_given() {
        let (bus, notifier) = (MemoryBus::default(), MemoryNotifier::default());
        pollster::block_on(async {
            bus.publish(LEVEL_CHANGED, &serde_json::json!({"to_level": 2})).await.unwrap();
            notifier.notify(&Alert { subject: "s".into(), message: "m".into() }).await.unwrap();
        });
        assert_eq!(bus.published.lock().unwrap()[0].0, "Level Changed");
        assert_eq!(notifier.sent.lock().unwrap()[0].subject, "s");
    }

    #[test]
    fn the_scripted_driver_answers_in_order_then_succeeds() {
        let config = Config::default_config().unwrap();
        let eks = &config.components[&crate::model::ComponentId::new("eks_control_plane")];
        let driver = ScriptedDriver::default()
            .on_apply("eks_control_plane", vec![Err(DriverError::Rejected("no".into()))])
            .on_status("eks_control_plane", vec![Ok(DriverStatus::InProgress)]);
        pollster::block_on(async {
            assert!(
                driver
                    .apply(Apply { component: eks, target: ComponentState::Warm, saved: None })
                    .await
                    .is_err()
            );
            assert!(
                driver
                    .apply(Apply { component: eks, target: ComponentState::Warm, saved: None })
                    .await
                    .is_ok()
            );
            assert_eq!(driver.status(eks, ComponentState::Warm).await.unwrap(), DriverStatus::InProgress);
            assert_eq!(driver.status(eks, ComponentState::Warm).await.unwrap(), DriverStatus::Ready);
        });
        assert_eq!(driver.calls(), ["eks_control_plane -> warm", "eks_control_plane -> warm"]);
    }
}
