//! What every [`Store`] must do, checked the same way on each implementation: the
//! in-memory store (`revscale-engine`'s tests) and the DynamoDB one on moto
//! (`tests/store.rs`). Each check takes a fresh, empty store.

use chrono::Days;
use revscale_engine::history::Backfilled;
use revscale_engine::ports::{
    AuditRecord, CostSnapshot, RevenueSnapshot, ScopedStore, Snapshot, SnapshotKind, StateStore, Store,
    StoreError, Written,
};
use revscale_engine::{ComponentId, Config, Currency, Money, SystemState};

use crate::{at, day};

pub fn revenue(date: &str, mrr: i64) -> RevenueSnapshot {
    RevenueSnapshot {
        date: day(date),
        mrr: Money::whole(mrr, Currency::EUR),
        subscriptions_counted: 3,
        customers: 2,
        collected_at: at(date),
    }
}

pub fn cost(date: &str, eur: i64) -> CostSnapshot {
    CostSnapshot {
        date: day(date),
        monthly_run_rate: Money::whole(eur, Currency::EUR),
        month_to_date: Money::whole(eur / 2, Currency::EUR),
        previous_month: Money::whole(eur, Currency::EUR),
        per_component: [(ComponentId::new("k8s_workers"), Money::from_minor(1234, Currency::EUR))].into(),
        estimated: true,
        forecast_used: false,
        fx_rate: "0.93".into(),
        requests: 2,
        collected_at: at(date),
    }
}

/// An evaluation's audit record with nothing in it but its id.
pub fn record(id: &str) -> AuditRecord {
    AuditRecord {
        kind: "evaluation".into(),
        actor: "revscale".into(),
        ..crate::seed_record(id, at("2026-03-01"))
    }
}

fn initial_state() -> SystemState {
    let config = Config::default_config().expect("the shipped config is valid");
    SystemState::initial(&config, day("2026-03-01"))
}

pub async fn a_days_snapshot_is_written_once_and_a_replay_changes_nothing(s: &impl Store) {
    assert_eq!(s.put_revenue(&revenue("2026-03-01", 1000)).await.unwrap(), Written::Created);
    assert_eq!(s.put_revenue(&revenue("2026-03-01", 9999)).await.unwrap(), Written::AlreadyExists);
    assert_eq!(s.put_cost(&cost("2026-03-01", 100)).await.unwrap(), Written::Created);
    assert_eq!(s.put_cost(&cost("2026-03-01", 555)).await.unwrap(), Written::AlreadyExists);
    let h = s.history(day("2026-03-01"), day("2026-03-01")).await.unwrap();
    let snap = h.get(day("2026-03-01")).unwrap();
    assert_eq!(
        (snap.mrr, snap.cost),
        (Money::whole(1000, Currency::EUR), Some(Money::whole(100, Currency::EUR)))
    );
}

pub async fn history_is_a_bounded_query_of_revenue_days_with_their_cost_when_collected(s: &impl Store) {
    let start = day("2026-01-01");
    for i in 0..70u64 {
        let d = (start + Days::new(i)).to_string();
        s.put_revenue(&revenue(&d, 500 + i as i64)).await.unwrap();
        if i != 10 {
            s.put_cost(&cost(&d, 50)).await.unwrap();
        }
    }
    let h = s.history(day("2026-01-05"), day("2026-02-20")).await.unwrap();
    assert_eq!(h.len(), 47, "47 days in range");
    assert_eq!(h.get(day("2026-01-11")).unwrap().cost, None, "the day without a cost snapshot still counts");
    assert_eq!(h.get(day("2026-01-12")).unwrap().cost, Some(Money::whole(50, Currency::EUR)));
    assert_eq!(h.get(day("2026-02-20")).unwrap().mrr, Money::whole(550, Currency::EUR));
    assert!(
        h.get(day("2026-01-04")).is_none() && h.get(day("2026-02-21")).is_none(),
        "nothing outside the range"
    );
}

pub async fn a_backfilled_snapshot_never_overwrites_a_collected_day_and_history_carries_its_mark(
    s: &impl Store,
) {
    s.put_revenue(&revenue("2026-03-01", 1000)).await.unwrap();
    s.put_cost(&cost("2026-03-01", 100)).await.unwrap();
    s.put_revenue(&revenue("2026-03-03", 1000)).await.unwrap();
    // The 2nd was missed by both collectors; the 3rd only by the cost collector.
    let fill = |snapshot| async move { s.put_backfilled(&snapshot).await.unwrap() };
    assert_eq!(fill(Snapshot::Revenue(revenue("2026-03-01", 7))).await, Written::AlreadyExists);
    assert_eq!(fill(Snapshot::Cost(cost("2026-03-01", 7))).await, Written::AlreadyExists);
    assert_eq!(fill(Snapshot::Revenue(revenue("2026-03-02", 990))).await, Written::Created);
    assert_eq!(fill(Snapshot::Cost(cost("2026-03-02", 90))).await, Written::Created);
    assert_eq!(fill(Snapshot::Cost(cost("2026-03-03", 95))).await, Written::Created);
    assert_eq!(
        fill(Snapshot::Revenue(revenue("2026-03-02", 5))).await,
        Written::AlreadyExists,
        "filled once"
    );

    let h = s.history(day("2026-03-01"), day("2026-03-03")).await.unwrap();
    let one = h.get(day("2026-03-01")).unwrap();
    assert_eq!(
        (one.mrr, one.cost),
        (Money::whole(1000, Currency::EUR), Some(Money::whole(100, Currency::EUR)))
    );
    assert_eq!(h.get(day("2026-03-02")).unwrap().mrr, Money::whole(990, Currency::EUR));
    let marks: Vec<_> = h.backfilled(day("2026-03-01"), day("2026-03-03")).collect();
    assert_eq!(
        marks,
        [
            (day("2026-03-02"), Backfilled { revenue: true, cost: true }),
            (day("2026-03-03"), Backfilled { revenue: false, cost: true }),
        ]
    );
    let revenue_days =
        s.snapshot_days(SnapshotKind::Revenue, day("2026-02-28"), day("2026-03-02")).await.unwrap();
    assert_eq!(revenue_days.into_iter().collect::<Vec<_>>(), [day("2026-03-01"), day("2026-03-02")]);
    let cost_days = s.snapshot_days(SnapshotKind::Cost, day("2026-03-01"), day("2026-03-31")).await.unwrap();
    assert_eq!(cost_days.len(), 3);
}

pub async fn state_writes_are_versioned_and_a_stale_writer_gets_a_conflict(s: &impl Store) {
    let state = initial_state();
    assert!(s.load_state().await.unwrap().is_none());
    assert_eq!(s.record_decision(&record("d1"), &state, None).await.unwrap(), Written::Created);
    let loaded = s.load_state().await.unwrap().unwrap();
    assert_eq!((loaded.version, loaded.value.level), (1, 0));
    // A second first-writer, and a writer holding an old version, both lose.
    assert!(matches!(s.record_decision(&record("d2"), &state, None).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.record_decision(&record("d3"), &state, Some(1)).await.unwrap(), Written::Created);
    assert!(matches!(s.record_decision(&record("d4"), &state, Some(1)).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.load_state().await.unwrap().unwrap().version, 2);
    // A lost write leaves no audit record behind.
    assert!(s.audit_record("d2").await.unwrap().is_none());
    assert!(s.audit_record("d4").await.unwrap().is_none());
    // The cash figure (runway guard) is stored with the state, as it was set.
    let mut with_cash = state.clone();
    with_cash.cash = Some(revscale_engine::runway::CashBalance {
        amount: Money::from_minor(42_000_050, Currency::EUR),
        as_of: day("2026-12-01"),
        set_by: "arn:aws:iam::123456789012:user/ada".into(),
        set_on: day("2026-12-05"),
    });
    assert_eq!(s.record_decision(&record("d5"), &with_cash, Some(2)).await.unwrap(), Written::Created);
    assert_eq!(s.load_state().await.unwrap().unwrap().value.cash, with_cash.cash);
}

pub async fn the_audit_trail_is_append_only_and_read_newest_first(s: &impl Store) {
    let state = initial_state();
    s.record_decision(&record("2026-03-01-L0-L0-aaa"), &state, None).await.unwrap();
    s.record_decision(&record("2026-03-02-L0-L0-bbb"), &state, Some(1)).await.unwrap();
    // The same id again is never overwritten, whatever the state version.
    let mut changed = record("2026-03-02-L0-L0-bbb");
    changed.note = "rewritten".into();
    assert_eq!(s.record_decision(&changed, &state, Some(2)).await.unwrap(), Written::AlreadyExists);
    assert_eq!(s.load_state().await.unwrap().unwrap().version, 2, "a replay does not move the state");
    let audit = s.recent_audit(10, None).await.unwrap();
    let ids: Vec<&str> = audit.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["2026-03-02-L0-L0-bbb", "2026-03-01-L0-L0-aaa"]);
    assert_eq!(s.recent_audit(1, None).await.unwrap().len(), 1);
    let kept = s.audit_record("2026-03-02-L0-L0-bbb").await.unwrap().unwrap();
    assert_eq!(kept.note, "", "the first record stands");
    assert!(s.audit_record("2026-03-09-L0-L0-zzz").await.unwrap().is_none());
}

pub async fn the_audit_trail_pages_backwards_from_a_cursor(s: &impl Store) {
    let state = initial_state();
    for (i, d) in ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"].iter().enumerate() {
        let version = if i == 0 { None } else { Some(i as u64) };
        s.record_decision(&record(&format!("{d}-L0-L0-x")), &state, version).await.unwrap();
    }
    let first = s.recent_audit(2, None).await.unwrap();
    let ids = |v: &[AuditRecord]| v.iter().map(|r| r.id[..10].to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&first), ["2026-03-05", "2026-03-04"]);
    let second = s.recent_audit(2, Some(first[1].trail_key())).await.unwrap();
    assert_eq!(ids(&second), ["2026-03-03", "2026-03-02"]);
    let last = s.recent_audit(2, Some(second[1].trail_key())).await.unwrap();
    assert_eq!(ids(&last), ["2026-03-01"]);
}

/// The evaluator's ids start with the local date (`2026-03-01-L0-L1-…`), the API's with
/// a UTC time (`2026-03-01T05:59:00.000Z-…`), the provisioner's with the decision's:
/// the trail is in the order they were written all the same, and each is found by id.
pub async fn the_audit_trail_is_in_time_order_whoever_wrote_it(s: &impl Store) {
    let state = initial_state();
    let written = [
        ("2026-03-01T05:59:00.000Z-mode-1a2b3c", "2026-03-01T05:59:00Z"),
        ("2026-03-01-L0-L1-abc", "2026-03-01T06:00:00Z"),
        ("2026-03-01T06:10:00.000Z-drain-approve-4d5e6f", "2026-03-01T06:10:00Z"),
        ("2026-03-01-L0-L1-abc.finish", "2026-03-01T06:20:00Z"),
    ];
    for (i, (id, at)) in written.iter().enumerate() {
        let record = AuditRecord { at: at.parse().unwrap(), ..record(id) };
        let version = if i == 0 { None } else { Some(i as u64) };
        assert_eq!(s.record_decision(&record, &state, version).await.unwrap(), Written::Created);
    }
    let trail = s.recent_audit(10, None).await.unwrap();
    let ids: Vec<&str> = trail.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "2026-03-01-L0-L1-abc.finish",
            "2026-03-01T06:10:00.000Z-drain-approve-4d5e6f",
            "2026-03-01-L0-L1-abc",
            "2026-03-01T05:59:00.000Z-mode-1a2b3c"
        ]
    );
    let page = s.recent_audit(2, Some(trail[1].trail_key())).await.unwrap();
    assert_eq!(
        page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["2026-03-01-L0-L1-abc", "2026-03-01T05:59:00.000Z-mode-1a2b3c"]
    );
    for (id, _) in written {
        assert_eq!(s.audit_record(id).await.unwrap().map(|r| r.id), Some(id.to_string()));
    }
}

pub async fn a_replayed_invocation_writes_nothing<S: Store + ScopedStore>(s: &S) {
    let state = initial_state();
    let invocation = s.for_invocation("event-1");
    assert_eq!(invocation.record_decision(&record("x1"), &state, None).await.unwrap(), Written::Created);
    // The same invocation, even with another decision and the right version: no write.
    assert_eq!(
        invocation.record_decision(&record("x2"), &state, Some(1)).await.unwrap(),
        Written::AlreadyExists
    );
    assert_eq!(s.load_state().await.unwrap().unwrap().version, 1);
    assert_eq!(s.recent_audit(10, None).await.unwrap().len(), 1);
    // Another invocation writes.
    let next = s.for_invocation("event-2");
    assert_eq!(next.record_decision(&record("x3"), &state, Some(1)).await.unwrap(), Written::Created);
}
