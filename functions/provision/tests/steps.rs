//! The provisioner's actions, driven in the order the state machine drives them, against
//! the in-memory store and a scripted driver (which can show what no emulator can: a
//! failure at any chosen step).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use provision::handler::{Action, Deps, StepError, step};
use revscale_aws::lambda::FunctionError;
use revscale_engine::model::{ComponentState, Mode, Transition, TransitionKind};
use revscale_engine::ports::{AuditRecord, AuditStore, LevelChangeRequested, StateStore};
use revscale_engine::ports::{DriverError, DriverStatus};
use revscale_engine::testing::{MemoryBus, MemoryNotifier, MemoryStore, ScriptedDriver};
use revscale_engine::{Cause, ComponentId, Config, SystemState};
use revscale_test_support::{record_request, seed_record};
use serde_json::Value;

type TestDeps = Deps<Arc<MemoryStore>, ScriptedDriver, MemoryBus, MemoryNotifier>;

fn t0() -> DateTime<Utc> {
    "2026-03-01T06:00:00Z".parse().unwrap()
}

fn deps(driver: ScriptedDriver) -> TestDeps {
    let config = Config::default_config().unwrap();
    let store = Arc::new(MemoryStore::default());
    let initial = SystemState::initial(&config, t0().date_naive());
    let seed = seed_record("seed", t0());
    pollster::block_on(store.record_decision(&seed, &initial, None)).unwrap();
    Deps {
        config,
        store,
        driver,
        bus: MemoryBus::default(),
        notifier: MemoryNotifier::default(),
        max_checks: Some(5),
        max_decision_age: Duration::hours(6),
        timezone: Default::default(),
    }
}

/// Records `request` as the evaluator would have: an `Execute` decision in the audit
/// trail, taken at `at`. The provisioner acts on nothing else.
async fn record_at(deps: &TestDeps, request: &LevelChangeRequested, at: DateTime<Utc>) {
    record_request(&deps.store, request, at).await
}

async fn record(deps: &TestDeps, request: &LevelChangeRequested) {
    record_at(deps, request, t0()).await
}

/// `request`, recorded, as the Begin action the state machine sends.
async fn begin(deps: &TestDeps, request: LevelChangeRequested) -> Action {
    record(deps, &request).await;
    Action::Begin { request, now: t0() }
}

fn tr(c: &str, kind: TransitionKind) -> Transition {
    Transition { component: ComponentId::new(c), kind }
}

/// L0 -> L2: three components, six steps.
fn level_2(id: &str) -> LevelChangeRequested {
    use TransitionKind::{Activate, Deploy};
    LevelChangeRequested {
        decision_id: id.into(),
        from_level: 0,
        to_level: 2,
        transitions: vec![
            tr("eks_control_plane", Deploy),
            tr("eks_control_plane", Activate),
            tr("hume_ai", Deploy),
            tr("hume_ai", Activate),
            tr("k8s_workers", Deploy),
            tr("k8s_workers", Activate),
        ],
        reasons: vec![],
        mode: Mode::Auto,
        cause: Some(Cause::Growth),
    }
}

/// What the state machine does, in the same order, returning the state names visited
/// and the error name it ends with (None for success).
async fn drive(deps: &TestDeps, request: LevelChangeRequested) -> (Vec<String>, Option<String>) {
    let mut visited = vec!["Begin".to_string()];
    let mut now = t0();
    let mut tick = || {
        now += Duration::seconds(30);
        now
    };
    let id = request.decision_id.clone();
    let count = request.transitions.len();
    record(deps, &request).await;
    if let Err(e) = step(deps, Action::Begin { request, now: tick() }).await {
        visited.push("NotStarted".into());
        return (visited, Some(e.error_type().into()));
    }
    let mut failure: Option<FunctionError> = None;
    'steps: for index in 0..count {
        visited.push("StartTransition".into());
        if let Err(e) = step(deps, Action::Start { decision_id: id.clone(), index, now: tick() }).await {
            failure = Some(e);
            break;
        }
        let mut checks = 0;
        loop {
            visited.push("CheckTransition".into());
            match step(deps, Action::Check { decision_id: id.clone(), index, checks, now: tick() }).await {
                Ok(v) if v["ready"] == true => break,
                Ok(v) => checks = v["checks"].as_u64().unwrap() as u32,
                Err(e) => {
                    failure = Some(e);
                    break 'steps;
                }
            }
        }
        visited.push("CommitTransition".into());
        let next = step(deps, Action::Commit { decision_id: id.clone(), index, now: tick() }).await.unwrap();
        assert_eq!(next, Value::from(index + 1));
    }
    let Some(failure) = failure else {
        // Finish is retried on Transient, as the state machine's Retry does.
        for attempt in 1.. {
            visited.push("Finish".into());
            match step(deps, Action::Finish { decision_id: id.clone(), now: tick() }).await {
                Ok(_) => break,
                Err(e) if e.error_type() == "Transient" && attempt < 5 => continue,
                Err(e) => panic!("Finish failed: {e}"),
            }
        }
        return (visited, None);
    };
    let error = StepError {
        error: failure.error_type().into(),
        cause: format!("{{\"errorMessage\":\"{failure}\"}}"),
    };
    loop {
        visited.push("RollbackStart".into());
        let undo =
            step(deps, Action::RollbackStart { decision_id: id.clone(), error: error.clone(), now: tick() })
                .await
                .unwrap();
        if undo["done"] == true {
            break;
        }
        let mut checks = 0;
        loop {
            visited.push("RollbackCheck".into());
            let v = step(deps, Action::RollbackCheck { decision_id: id.clone(), checks, now: tick() })
                .await
                .unwrap();
            if v["ready"] == true {
                break;
            }
            checks = v["checks"].as_u64().unwrap() as u32;
        }
    }
    visited.push("RecordFailure".into());
    let out = step(deps, Action::Fail { decision_id: id, error: error.clone(), now: tick() }).await.unwrap();
    assert_eq!(out["error"], error.error);
    (visited, Some(error.error))
}

async fn state(deps: &TestDeps) -> SystemState {
    deps.store.load_state().await.unwrap().unwrap().value
}

#[tokio::test]
async fn a_run_moves_three_components_to_hot_and_publishes_level_changed() {
    let driver = ScriptedDriver::default()
        .on_status("eks_control_plane", vec![Ok(DriverStatus::InProgress), Ok(DriverStatus::InProgress)]);
    let deps = deps(driver);
    let (visited, error) = drive(&deps, level_2("d-happy")).await;
    assert_eq!(error, None);
    assert_eq!(
        visited.iter().filter(|s| *s == "CheckTransition").count(),
        8,
        "two extra checks while the cluster was CREATING"
    );
    let s = state(&deps).await;
    assert_eq!(s.level, 2);
    assert!(s.provisioning.is_none());
    for c in ["eks_control_plane", "hume_ai", "k8s_workers"] {
        assert_eq!(s.component_state(&ComponentId::new(c)), ComponentState::Hot);
    }
    let published = deps.bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].0, "Level Changed");
    assert_eq!(
        (published[0].1["from_level"].as_u64(), published[0].1["to_level"].as_u64()),
        (Some(0), Some(2))
    );
    assert!(deps.notifier.sent.lock().unwrap().is_empty());
    // Every step left an audit record.
    let audit = deps.store.recent_audit(50, None).await.unwrap();
    assert_eq!(audit.len(), 1 + 1 + 1 + 6 + 6 + 1, "seed, decision, begin, 6 starts, 6 commits, finish");
}

#[tokio::test]
async fn a_level_changed_event_that_fails_to_publish_is_published_by_the_retry_of_finish() {
    let mut deps = deps(ScriptedDriver::default());
    deps.bus = MemoryBus::failing(1);
    let (visited, error) = drive(&deps, level_2("d-bus-down")).await;
    assert_eq!(error, None);
    assert_eq!(visited.iter().filter(|s| *s == "Finish").count(), 2, "{visited:?}");
    let published = deps.bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0].0, "Level Changed");
    assert_eq!(published[0].1["decision_id"], "d-bus-down");
    let s = state(&deps).await;
    assert_eq!((s.level, s.provisioning.is_none()), (2, true), "the retry closed the run");
}

/// Every step of the three-component transition, made to fail in turn.
#[tokio::test]
async fn a_failure_at_any_step_rolls_everything_back_alerts_once_and_counts_for_the_breaker() {
    let steps = level_2("x").transitions;
    for (i, failing) in steps.iter().enumerate() {
        for how in ["rejected", "failed"] {
            let component = failing.component.as_str();
            // Earlier steps of the same component succeed first: skip their answers.
            let earlier = steps[..i].iter().filter(|t| t.component == failing.component).count();
            let driver = match how {
                "rejected" => {
                    let mut answers: Vec<Result<(), DriverError>> = vec![Ok(()); earlier];
                    answers.push(Err(DriverError::Rejected("InvalidParameterException".into())));
                    ScriptedDriver::default().on_apply(component, answers)
                }
                _ => {
                    let mut answers: Vec<Result<DriverStatus, DriverError>> =
                        vec![Ok(DriverStatus::Ready); earlier];
                    answers.push(Ok(DriverStatus::Failed("CREATE_FAILED".into())));
                    ScriptedDriver::default().on_status(component, answers)
                }
            };
            let deps = deps(driver);
            let before = state(&deps).await;
            let (visited, error) = drive(&deps, level_2(&format!("d-{i}-{how}"))).await;
            let expected = if how == "rejected" { "TransitionRejected" } else { "TransitionFailed" };
            assert_eq!(error.as_deref(), Some(expected), "step {i} {how}");
            let s = state(&deps).await;
            for (id, record) in &before.components {
                assert_eq!(s.component_state(id), record.state, "step {i} {how}: {id} is back where it was");
            }
            assert!(s.any_transitional().is_none(), "step {i} {how}: nothing left WARMING or COOLING");
            assert_eq!((s.level, s.breaker.consecutive_failures), (0, 1), "step {i} {how}");
            assert!(s.provisioning.is_none(), "the lock is released");
            let alerts = deps.notifier.sent.lock().unwrap();
            assert_eq!(alerts.len(), 1, "step {i} {how}: one alert");
            assert!(
                alerts[0].subject.contains(&format!("d-{i}-{how}")) && alerts[0].subject.contains(expected)
            );
            assert!(deps.bus.published.lock().unwrap().is_empty(), "no Level Changed");
            if i == 4 && how == "rejected" {
                println!("rollback after step {i} ({failing}) was {how}: {}", visited.join(" -> "));
            }
        }
    }
}

#[tokio::test]
async fn a_duplicate_start_is_refused_and_a_stale_decision_does_nothing() {
    let deps =
        deps(ScriptedDriver::default().on_status("eks_control_plane", vec![Ok(DriverStatus::InProgress); 3]));
    step(&deps, begin(&deps, level_2("d-1")).await).await.unwrap();
    step(&deps, Action::Start { decision_id: "d-1".into(), index: 0, now: t0() }).await.unwrap();
    let err = step(&deps, begin(&deps, level_2("d-2")).await).await.unwrap_err();
    assert_eq!(err.error_type(), "LockHeld");
    let err = step(&deps, Action::Begin { request: level_2("d-1"), now: t0() }).await.unwrap_err();
    assert_eq!(err.error_type(), "LockHeld", "the same decision mid-run is a duplicate too");

    let fresh = deps_at_level_1();
    let err = step(&fresh, begin(&fresh, level_2("d-stale")).await).await.unwrap_err();
    assert_eq!(err.error_type(), "StaleDecision");
}

fn deps_at_level_1() -> TestDeps {
    let d = deps(ScriptedDriver::default());
    let mut s = pollster::block_on(d.store.load_state()).unwrap().unwrap();
    s.value.level = 1;
    let rec = seed_record("lvl", t0());
    pollster::block_on(d.store.record_decision(&rec, &s.value, Some(s.version))).unwrap();
    d
}

#[tokio::test]
async fn retried_calls_do_not_repeat_their_writes() {
    let deps = deps(
        ScriptedDriver::default()
            .on_apply("eks_control_plane", vec![Err(DriverError::Transient("Throttling".into()))]),
    );
    step(&deps, begin(&deps, level_2("d-r")).await).await.unwrap();
    step(&deps, Action::Begin { request: level_2("d-r"), now: t0() }).await.unwrap();
    let err =
        step(&deps, Action::Start { decision_id: "d-r".into(), index: 0, now: t0() }).await.unwrap_err();
    assert_eq!(err.error_type(), "Transient", "the state machine retries Transient only");
    let version = deps.store.load_state().await.unwrap().unwrap().version;
    step(&deps, Action::Start { decision_id: "d-r".into(), index: 0, now: t0() }).await.unwrap();
    assert_eq!(
        deps.store.load_state().await.unwrap().unwrap().version,
        version,
        "the retry wrote nothing new"
    );
    step(&deps, Action::Commit { decision_id: "d-r".into(), index: 0, now: t0() }).await.unwrap();
    step(&deps, Action::Commit { decision_id: "d-r".into(), index: 0, now: t0() }).await.unwrap();
    assert_eq!(state(&deps).await.provisioning.unwrap().committed, 1);
}

/// A `Begin` refused before any lock: the named error, one alert, one audit record, the
/// state unchanged.
async fn assert_refused(deps: &TestDeps, action: Action, why: &str) {
    let before = deps.store.load_state().await.unwrap().unwrap();
    let id = action.decision_id().clone();
    let err = step(deps, action).await.unwrap_err();
    assert_eq!(err.error_type(), "DecisionRefused", "{err}");
    assert!(err.to_string().contains(why), "'{err}' lacks '{why}'");
    let mut after = deps.store.load_state().await.unwrap().unwrap().value;
    after.version = before.value.version; // written back, unchanged, with the audit record
    assert_eq!(after, before.value, "no lock, no change");
    let audited = deps.store.audit_record(&format!("{id}.refused")).await.unwrap();
    let audited = audited.expect("the refusal is in the audit trail");
    assert!(audited.note.contains(why), "the audit record says why: {}", audited.note);
    let alerts = deps.notifier.sent.lock().unwrap();
    assert_eq!(alerts.len(), 1, "one alert per refusal");
    assert!(alerts[0].subject.starts_with("revscale: refused to provision"), "{}", alerts[0].subject);
    assert!(deps.driver.calls().is_empty(), "no driver call");
}

#[tokio::test]
async fn a_forged_event_naming_no_recorded_decision_is_refused_with_an_alert_and_no_lock() {
    let deps = deps(ScriptedDriver::default());
    let mut forged = level_2("2026-03-01-L0-L4-forged000001");
    forged.to_level = 4;
    assert_refused(&deps, Action::Begin { request: forged, now: t0() }, "is not in the audit trail").await;
}

#[tokio::test]
async fn a_forged_event_that_changes_a_recorded_decision_is_refused() {
    let deps = deps(ScriptedDriver::default());
    let genuine = level_2("d-genuine");
    record(&deps, &genuine).await;
    let mut forged = genuine.clone();
    forged.transitions.truncate(2);
    forged.to_level = 1;
    assert_refused(&deps, Action::Begin { request: forged, now: t0() }, "differs from the recorded decision")
        .await;
}

#[tokio::test]
async fn a_stale_event_redelivered_seven_hours_after_its_decision_is_refused() {
    let deps = deps(ScriptedDriver::default());
    let request = level_2("d-old");
    record(&deps, &request).await;
    let late = t0() + Duration::hours(7);
    assert_refused(&deps, Action::Begin { request, now: late }, "older than 6 h").await;
}

#[tokio::test]
async fn an_event_arriving_in_shadow_mode_is_refused() {
    let deps = deps(ScriptedDriver::default());
    let mut current = deps.store.load_state().await.unwrap().unwrap();
    current.value.mode = Some(Mode::Shadow);
    let rec = AuditRecord { kind: "mode".into(), ..seed_record("mode", t0()) };
    deps.store.record_decision(&rec, &current.value, Some(current.version)).await.unwrap();
    let action = begin(&deps, level_2("d-shadow")).await;
    assert_refused(&deps, action, "shadow mode").await;
}

#[tokio::test]
async fn a_retried_start_refused_because_its_first_call_is_under_way_carries_on() {
    // The first Start was accepted by EKS, then the Lambda timed out; the retry is
    // refused (one update at a time), and the cluster says CREATING.
    let deps = deps(
        ScriptedDriver::default()
            .on_apply(
                "eks_control_plane",
                vec![
                    Err(DriverError::Transient("timed out".into())),
                    Err(DriverError::Busy("ResourceInUseException".into())),
                ],
            )
            .on_status("eks_control_plane", vec![Ok(DriverStatus::InProgress)]),
    );
    step(&deps, begin(&deps, level_2("d-inuse")).await).await.unwrap();
    let start = || Action::Start { decision_id: "d-inuse".into(), index: 0, now: t0() };
    assert_eq!(step(&deps, start()).await.unwrap_err().error_type(), "Transient");
    step(&deps, start()).await.expect("the change is under way: the step goes on to its checks");
    let s = state(&deps).await;
    assert_eq!(s.component_state(&ComponentId::new("eks_control_plane")), ComponentState::Warming);
}

#[tokio::test]
async fn a_retried_start_refused_for_another_reason_than_busy_stays_refused() {
    let deps = deps(
        ScriptedDriver::default()
            .on_apply(
                "eks_control_plane",
                vec![
                    Err(DriverError::Transient("timed out".into())),
                    Err(DriverError::Rejected("AccessDeniedException".into())),
                ],
            )
            .on_status("eks_control_plane", vec![Ok(DriverStatus::InProgress)]),
    );
    step(&deps, begin(&deps, level_2("d-denied")).await).await.unwrap();
    let start = || Action::Start { decision_id: "d-denied".into(), index: 0, now: t0() };
    assert_eq!(step(&deps, start()).await.unwrap_err().error_type(), "Transient");
    assert_eq!(step(&deps, start()).await.unwrap_err().error_type(), "TransitionRejected");
}

#[tokio::test]
async fn a_retried_begin_must_ask_for_what_was_begun() {
    let deps = deps(ScriptedDriver::default());
    step(&deps, begin(&deps, level_2("d-twice")).await).await.unwrap();
    let mut other = level_2("d-twice");
    other.transitions.truncate(2);
    other.to_level = 1;
    let err = step(&deps, Action::Begin { request: other, now: t0() }).await.unwrap_err();
    assert_eq!(err.error_type(), "DecisionRefused", "{err}");
    step(&deps, Action::Begin { request: level_2("d-twice"), now: t0() })
        .await
        .expect("the same Begin again");
}

#[tokio::test]
async fn a_first_start_that_is_refused_stays_refused_whatever_the_resource_says() {
    let deps = deps(
        ScriptedDriver::default()
            .on_apply("eks_control_plane", vec![Err(DriverError::Rejected("InvalidParameter".into()))])
            .on_status("eks_control_plane", vec![Ok(DriverStatus::InProgress)]),
    );
    step(&deps, begin(&deps, level_2("d-refused")).await).await.unwrap();
    let err = step(&deps, Action::Start { decision_id: "d-refused".into(), index: 0, now: t0() })
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "TransitionRejected");
}

#[tokio::test]
async fn a_retried_start_refused_as_busy_is_a_failure_whose_undo_drives_the_resource_back() {
    // Start's retry is refused and the resource does not look under way at that moment
    // (the run rolls back), but the first call may have been accepted: that is no
    // refusal proving nothing changed, so the undo drives the resource back instead of
    // restoring the state alone.
    let deps = deps(
        ScriptedDriver::default()
            .on_apply(
                "eks_control_plane",
                vec![
                    Err(DriverError::Transient("timed out".into())),
                    Err(DriverError::Busy("ResourceInUseException".into())),
                ],
            )
            .on_status("eks_control_plane", vec![Ok(DriverStatus::Failed("not there yet".into()))]),
    );
    step(&deps, begin(&deps, level_2("d-moved")).await).await.unwrap();
    let start = || Action::Start { decision_id: "d-moved".into(), index: 0, now: t0() };
    assert_eq!(step(&deps, start()).await.unwrap_err().error_type(), "Transient");
    let refused = step(&deps, start()).await.unwrap_err();
    assert_eq!(refused.error_type(), "TransitionFailed");
    let error = StepError { error: "TransitionFailed".into(), cause: refused.to_string() };
    let undo =
        step(&deps, Action::RollbackStart { decision_id: "d-moved".into(), error: error.clone(), now: t0() })
            .await
            .unwrap();
    assert_eq!(undo["done"], false);
    let calls = deps.driver.calls();
    assert_eq!(
        calls.last().map(String::as_str),
        Some("eks_control_plane -> cold"),
        "the undo drives the cluster back: {calls:?}"
    );
    let checked = step(&deps, Action::RollbackCheck { decision_id: "d-moved".into(), checks: 0, now: t0() })
        .await
        .unwrap();
    assert_eq!(checked["ready"], true);
    let done =
        step(&deps, Action::RollbackStart { decision_id: "d-moved".into(), error: error.clone(), now: t0() })
            .await
            .unwrap();
    assert_eq!(done["done"], true);
    step(&deps, Action::Fail { decision_id: "d-moved".into(), error, now: t0() }).await.unwrap();
    let s = state(&deps).await;
    assert!(s.any_transitional().is_none() && s.provisioning.is_none());
}

#[tokio::test]
async fn a_run_that_cannot_roll_back_alerts_and_audits_with_where_each_component_stands() {
    let deps = deps(ScriptedDriver::default());
    step(&deps, begin(&deps, level_2("d-stuck")).await).await.unwrap();
    step(&deps, Action::Start { decision_id: "d-stuck".into(), index: 0, now: t0() }).await.unwrap();
    let error = StepError {
        error: "RollbackFailed".into(),
        cause: r#"{"errorMessage":"undoing eks_control_plane: AccessDenied"}"#.into(),
    };
    step(&deps, Action::Stuck { decision_id: "d-stuck".into(), error, now: t0() }).await.unwrap();
    let audited = deps.store.audit_record("d-stuck.stuck").await.unwrap().expect("the stuck run is audited");
    assert!(audited.note.contains("undoing eks_control_plane: AccessDenied"), "{}", audited.note);
    assert!(deps.store.load_state().await.unwrap().unwrap().value.provisioning.is_some(), "the lock stays");
    let alerts = deps.notifier.sent.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].subject.contains("d-stuck is stuck (RollbackFailed)"), "{}", alerts[0].subject);
    assert!(alerts[0].message.contains("undoing eks_control_plane: AccessDenied"), "{}", alerts[0].message);
    assert!(alerts[0].message.contains("eks_control_plane: warming"), "{}", alerts[0].message);
    assert!(alerts[0].message.contains("revscale provisioning release d-stuck"), "{}", alerts[0].message);
    // A Begin that failed before taking the lock says so instead.
    let error = StepError { error: "Internal".into(), cause: "boom".into() };
    step(&deps, Action::Stuck { decision_id: "d-never".into(), error, now: t0() }).await.unwrap();
    let alerts = deps.notifier.sent.lock().unwrap();
    assert!(alerts[1].subject.contains("d-never did not start (Internal)"), "{}", alerts[1].subject);
}

#[tokio::test]
async fn the_provisioner_dates_its_changes_in_the_schedules_time_zone() {
    let mut deps = deps(ScriptedDriver::default());
    deps.timezone = revscale_aws::env::ScheduleZone::from_vars(&revscale_aws::env::from_pairs(&[(
        "SCHEDULE_TIMEZONE",
        "Pacific/Kiritimati",
    )]))
    .unwrap();
    // 16:00 UTC on 1 March is 06:00 on 2 March at UTC+14, when that evaluator runs.
    let at: DateTime<Utc> = "2026-03-01T16:00:00Z".parse().unwrap();
    let request = level_2("d-tz");
    record_at(&deps, &request, at).await;
    step(&deps, Action::Begin { request, now: at }).await.unwrap();
    step(&deps, Action::Start { decision_id: "d-tz".into(), index: 0, now: at }).await.unwrap();
    step(&deps, Action::Commit { decision_id: "d-tz".into(), index: 0, now: at }).await.unwrap();
    let s = state(&deps).await;
    let record = &s.components[&ComponentId::new("eks_control_plane")];
    assert_eq!(record.since.to_string(), "2026-03-02", "the local date, not UTC's 2026-03-01");
}

#[tokio::test]
async fn a_step_that_never_finishes_times_out() {
    let deps =
        deps(ScriptedDriver::default().on_status("eks_control_plane", vec![Ok(DriverStatus::InProgress); 5]));
    let (_, error) = drive(&deps, level_2("d-slow")).await;
    assert_eq!(error.as_deref(), Some("TransitionTimedOut"));
    assert_eq!(
        state(&deps).await.component_state(&ComponentId::new("eks_control_plane")),
        ComponentState::Cold
    );
}

#[tokio::test]
async fn a_malformed_step_is_invalid_input() {
    let deps = deps(ScriptedDriver::default());
    let event = lambda_runtime::LambdaEvent::new(
        serde_json::json!({"action": "explode"}),
        lambda_runtime::Context::default(),
    );
    let err = provision::handler::handle(&deps, event).await.unwrap_err();
    assert_eq!(err.error_type(), "InvalidInput");
}

#[test]
fn every_sample_event_is_a_valid_step() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/provision");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let action: Action = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen.push(format!("{action:?}").split([' ', '{']).next().unwrap().to_string());
    }
    seen.sort();
    assert_eq!(
        seen,
        ["Begin", "Check", "Commit", "Fail", "Finish", "RollbackCheck", "RollbackStart", "Start", "Stuck"]
    );
}

/// Stores `change(state)` as the current state, as an API change would.
async fn change_state(deps: &TestDeps, change: impl FnOnce(&mut SystemState)) {
    let mut current = deps.store.load_state().await.unwrap().unwrap();
    change(&mut current.value);
    let rec = seed_record(&format!("change-{}", current.version), t0());
    deps.store.record_decision(&rec, &current.value, Some(current.version)).await.unwrap();
}

/// L2 -> L0 under an approved drain: the node group, then the control plane, down.
async fn drained_at_level_2(deps: &TestDeps) -> LevelChangeRequested {
    use TransitionKind::{Deactivate, Decommission};
    change_state(deps, |s| {
        for c in ["eks_control_plane", "k8s_workers"] {
            s.components.insert(
                ComponentId::new(c),
                revscale_engine::state::ComponentRecord::settled(ComponentState::Hot, t0().date_naive()),
            );
        }
        s.level = 2;
        s.drain = Some(revscale_engine::state::Drain {
            reason: "teardown".into(),
            requested_by: "alice".into(),
            requested_on: t0().date_naive(),
            approved_by: Some("bob".into()),
        });
    })
    .await;
    LevelChangeRequested {
        decision_id: "d-drain".into(),
        from_level: 2,
        to_level: 0,
        transitions: vec![
            tr("k8s_workers", Deactivate),
            tr("k8s_workers", Decommission),
            tr("eks_control_plane", Deactivate),
            tr("eks_control_plane", Decommission),
        ],
        reasons: vec![],
        mode: Mode::Auto,
        cause: Some(Cause::Drain),
    }
}

#[tokio::test]
async fn a_drain_whose_cluster_deletion_fails_after_the_cluster_is_gone_never_calls_the_driver_to_undo() {
    // The cluster's deletion fails once the cluster is gone or DELETING: asked for WARM,
    // the resource says anything but ready. Undoing must not create it again.
    for (why, after) in [
        ("gone", Ok(DriverStatus::Failed("ResourceNotFoundException".into()))),
        ("deleting", Ok(DriverStatus::InProgress)),
        ("failed", Ok(DriverStatus::Failed("cluster FAILED".into()))),
        ("unreadable", Err(DriverError::Transient("Throttling".into()))),
    ] {
        let mut answers = vec![Ok(DriverStatus::Ready), Ok(DriverStatus::Failed("DELETE_FAILED".into()))];
        answers.extend(std::iter::repeat_n(after, 10));
        let deps = deps(ScriptedDriver::default().on_status("eks_control_plane", answers));
        let request = drained_at_level_2(&deps).await;
        let (visited, error) = drive(&deps, request).await;
        assert_eq!(error.as_deref(), Some("TransitionFailed"), "{why}: {}", visited.join(" -> "));
        let calls = deps.driver.calls();
        assert_eq!(
            calls,
            [
                "k8s_workers -> warm",
                "k8s_workers -> cold",
                "eks_control_plane -> warm",
                "eks_control_plane -> cold"
            ],
            "{why}: the undo called no driver"
        );
        let s = state(&deps).await;
        assert!(s.provisioning.is_none() && s.any_transitional().is_none(), "{why}: the lock is released");
        assert_eq!(s.component_state(&ComponentId::new("k8s_workers")), ComponentState::Cold, "{why}");
        assert_eq!(deps.notifier.sent.lock().unwrap().len(), 1, "{why}: one failed-run alert");
    }
}

#[tokio::test]
async fn a_status_read_that_fails_transiently_counts_as_not_ready_yet_within_the_check_limit() {
    let throttled = || Err(DriverError::Transient("ThrottlingException".into()));
    let mut answers: Vec<Result<DriverStatus, DriverError>> = (0..3).map(|_| throttled()).collect();
    answers.push(Ok(DriverStatus::Ready));
    let climbing = deps(ScriptedDriver::default().on_status("eks_control_plane", answers));
    let (visited, error) = drive(&climbing, level_2("d-throttled")).await;
    assert_eq!(error, None, "{}", visited.join(" -> "));
    assert!(!visited.iter().any(|s| s == "RollbackStart"));
    assert_eq!(state(&climbing).await.level, 2);

    // Past the limit it is a timeout like any other wait (max_checks is 5 here).
    let stalled =
        deps(ScriptedDriver::default().on_status("eks_control_plane", (0..5).map(|_| throttled()).collect()));
    let (_, error) = drive(&stalled, level_2("d-throttled-long")).await;
    assert_eq!(error.as_deref(), Some("TransitionTimedOut"));
}

#[tokio::test]
async fn a_rollback_status_read_that_fails_transiently_is_checked_again_and_the_lock_is_released() {
    let throttled = || Err(DriverError::Transient("ThrottlingException".into()));
    // The control plane is created, the flag fails; undoing the control plane's
    // deployment then meets three throttled reads before the cluster is gone.
    let mut answers = vec![Ok(DriverStatus::Ready), Ok(DriverStatus::Ready)];
    answers.extend((0..3).map(|_| throttled()));
    let deps = deps(
        ScriptedDriver::default()
            .on_status("eks_control_plane", answers)
            .on_status("hume_ai", vec![Ok(DriverStatus::Failed("read back off".into()))]),
    );
    let (visited, error) = drive(&deps, level_2("d-rollback-throttled")).await;
    assert_eq!(error.as_deref(), Some("TransitionFailed"), "{}", visited.join(" -> "));
    let s = state(&deps).await;
    assert!(s.provisioning.is_none() && s.any_transitional().is_none(), "no lock held");
    assert_eq!(s.component_state(&ComponentId::new("eks_control_plane")), ComponentState::Cold);
    assert!(visited.iter().filter(|s| *s == "RollbackCheck").count() >= 4, "{}", visited.join(" -> "));
}

#[tokio::test]
async fn an_override_cancelled_between_the_decision_and_the_run_is_refused_with_an_alert() {
    let deps = deps(ScriptedDriver::default());
    let mut request = level_2("d-override");
    request.cause = Some(Cause::Override);
    // The override was approved when the evaluator decided; it is gone now.
    let action = begin(&deps, request).await;
    assert_refused(&deps, action, "the override it executes was cancelled or has expired").await;
}

#[tokio::test]
async fn a_drain_cancelled_between_the_decision_and_the_run_is_refused_with_an_alert() {
    let deps = deps(ScriptedDriver::default());
    let request = drained_at_level_2(&deps).await;
    change_state(&deps, |s| s.drain = None).await;
    let action = begin(&deps, request).await;
    assert_refused(&deps, action, "the drain it executes was cancelled").await;
}

#[tokio::test]
async fn a_growth_run_after_the_breaker_opened_is_refused_with_an_alert() {
    let deps = deps(ScriptedDriver::default());
    change_state(&deps, |s| {
        s.breaker.consecutive_failures = 3;
        s.breaker.opened_on = Some(t0().date_naive());
    })
    .await;
    let action = begin(&deps, level_2("d-breaker")).await;
    assert_refused(&deps, action, "circuit breaker opened").await;
}

#[tokio::test]
async fn a_step_whose_audit_id_holds_another_write_fails_instead_of_reporting_a_state_write_that_never_happened()
 {
    let deps = deps(ScriptedDriver::default());
    step(&deps, begin(&deps, level_2("d-s")).await).await.unwrap();
    step(&deps, Action::Start { decision_id: "d-s".into(), index: 0, now: t0() }).await.unwrap();
    // Another write already holds the commit's audit id (with the state as it stood).
    let stored = deps.store.load_state().await.unwrap().unwrap();
    let foreign = AuditRecord { note: "another write".into(), ..seed_record("d-s.commit.0", t0()) };
    deps.store.record_decision(&foreign, &stored.value, Some(stored.version)).await.unwrap();
    let err =
        step(&deps, Action::Commit { decision_id: "d-s".into(), index: 0, now: t0() }).await.unwrap_err();
    assert!(err.to_string().contains("state write did not happen"), "{err}");
    assert_eq!(state(&deps).await.provisioning.unwrap().committed, 0, "nothing was committed");
}
