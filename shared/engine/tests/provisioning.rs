//! Carrying out plans: commit on success, roll back completed steps on failure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use revscale_engine::decision::{Event, Outcome};
use revscale_engine::model::{ComponentState, TransitionKind};
use revscale_engine::ports::{DriverError, DriverStatus};
use revscale_engine::provisioning::{MAX_STATUS_CHECKS, execute};
use revscale_engine::testing::ScriptedDriver;
use revscale_test_support::*;

fn level_2_decision() -> (revscale_engine::Config, revscale_engine::SystemState, revscale_engine::Decision) {
    let c = config();
    let s = at_level(&c, 1, "2026-01-01");
    let mut h = months(&[("2025-12", 1000), ("2026-01", 1000), ("2026-02", 1000)], 50);
    fill(&mut h, "2026-03-01", "2026-03-01", 1000, 50);
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.outcome, Outcome::Execute);
    (c, s, d)
}

#[test]
fn a_successful_plan_commits_every_component_and_the_level_and_closes_the_breaker() {
    let (c, mut s, d) = level_2_decision();
    s.breaker.consecutive_failures = 2;
    let driver = ScriptedDriver::default()
        .on_status("k8s_workers", vec![Ok(DriverStatus::InProgress), Ok(DriverStatus::InProgress)]);
    let events = pollster::block_on(execute(&c, &mut s, &d, &driver, day("2026-03-01")));
    assert_eq!(events, vec![Event::LevelChanged { from: 1, to: 2, cause: revscale_engine::Cause::Growth }]);
    assert_eq!(s.level, 2);
    assert_eq!(s.level_since, day("2026-03-01"));
    assert_eq!(s.breaker.consecutive_failures, 0);
    for comp in ["hume_ai", "k8s_workers"] {
        assert_eq!(s.component_state(&id(comp)), ComponentState::Hot);
    }
    assert_eq!(
        driver.calls(),
        vec!["hume_ai -> warm", "hume_ai -> hot", "k8s_workers -> warm", "k8s_workers -> hot"]
    );
}

#[test]
fn a_failed_step_rolls_back_every_completed_step_newest_first_and_leaves_nothing_warming() {
    let (c, mut s, d) = level_2_decision();
    let before = s.clone();
    let driver = ScriptedDriver::default()
        .on_status("k8s_workers", vec![Ok(DriverStatus::Failed("nodegroup CREATE_FAILED".into()))]);
    let events = pollster::block_on(execute(&c, &mut s, &d, &driver, day("2026-03-01")));
    assert!(
        matches!(&events[0], Event::TransitionFailed { component, transition: TransitionKind::Deploy, error }
        if component.as_str() == "k8s_workers" && error == "nodegroup CREATE_FAILED")
    );
    let Event::Rollback { undone } = &events[1] else { panic!("expected a rollback, got {events:?}") };
    let undone: Vec<(String, TransitionKind)> =
        undone.iter().map(|t| (t.component.to_string(), t.kind)).collect();
    // As the state machine undoes it: the half-done step first, then the committed
    // ones newest first.
    assert_eq!(
        undone,
        vec![
            ("k8s_workers".into(), TransitionKind::Deploy),
            ("hume_ai".into(), TransitionKind::Deactivate),
            ("hume_ai".into(), TransitionKind::Decommission)
        ]
    );
    assert_eq!(s.level, 1);
    assert_eq!(s.breaker.consecutive_failures, 1);
    assert!(s.any_transitional().is_none());
    for (comp, record) in &before.components {
        assert_eq!(s.component_state(comp), record.state, "{comp} is back where it was");
    }
}

#[test]
fn an_apply_error_fails_the_step() {
    let (c, mut s, d) = level_2_decision();
    let driver = ScriptedDriver::default()
        .on_apply("hume_ai", vec![Err(DriverError::Rejected("AccessDenied".into()))]);
    let events = pollster::block_on(execute(&c, &mut s, &d, &driver, day("2026-03-01")));
    assert!(
        matches!(&events[..2], [Event::TransitionFailed { error, .. }, Event::Rollback { undone }]
            if error == "AccessDenied" && undone.len() == 1),
        "{events:?}"
    );
    assert_eq!(s.component_state(&id("hume_ai")), ComponentState::Cold);
    assert!(s.provisioning.is_none(), "the lock is released");
}

#[test]
fn transient_status_errors_are_retried_but_a_step_that_never_finishes_fails() {
    let (c, mut s, d) = level_2_decision();
    let driver = ScriptedDriver::default().on_status(
        "hume_ai",
        vec![Err(DriverError::Transient("Throttling".into())), Ok(DriverStatus::Ready)],
    );
    let events = pollster::block_on(execute(&c, &mut s, &d, &driver, day("2026-03-01")));
    assert!(matches!(events[..], [Event::LevelChanged { .. }]), "{events:?}");

    let (c, mut s, d) = level_2_decision();
    let forever = vec![Ok(DriverStatus::InProgress); MAX_STATUS_CHECKS as usize + 1];
    let driver = ScriptedDriver::default().on_status("hume_ai", forever);
    let events = pollster::block_on(execute(&c, &mut s, &d, &driver, day("2026-03-01")));
    assert!(
        matches!(&events[0], Event::TransitionFailed { error, .. } if error == &format!("not there after {MAX_STATUS_CHECKS} checks")),
        "{events:?}"
    );
}

#[test]
fn a_failed_rollback_step_keeps_the_lock_for_an_operator_as_the_state_machine_does() {
    let (c, mut s, d) = level_2_decision();
    let driver = ScriptedDriver::default()
        .on_apply("k8s_workers", vec![Err(DriverError::Rejected("InvalidParameterException".into()))])
        // hume_ai: deploy, activate succeed; the rollback's deactivate fails.
        .on_apply("hume_ai", vec![Ok(()), Ok(()), Err(DriverError::Rejected("ParameterNotFound".into()))]);
    let events = pollster::block_on(execute(&c, &mut s, &d, &driver, day("2026-03-01")));
    assert!(events.iter().any(|e| matches!(e, Event::TransitionFailed { error, .. } if error.starts_with("rollback step failed"))), "{events:?}");
    // RollbackFailed: nothing more is driven until an operator repairs hume_ai and
    // releases the run (`revscale provisioning release`).
    assert_eq!(s.component_state(&id("hume_ai")), ComponentState::Cooling);
    assert!(s.provisioning.is_some(), "the run holds its lock");
}

#[test]
fn a_plan_naming_an_unknown_or_misplaced_component_fails_cleanly() {
    let (c, mut s, mut d) = level_2_decision();
    d.transitions.push(revscale_engine::Transition { component: id("kafka"), kind: TransitionKind::Deploy });
    let driver = ScriptedDriver::default();
    let events = pollster::block_on(execute(&c, &mut s, &d, &driver, day("2026-03-01")));
    // Refused at begin, as the state machine's first step refuses it: nothing moves.
    assert!(
        matches!(&events[..], [Event::TransitionFailed { error, .. }] if error.ends_with("is stale: kafka: not a configured component")),
        "{events:?}"
    );
    assert!(driver.calls().is_empty(), "nothing was driven");
    assert!(s.provisioning.is_none() && s.any_transitional().is_none());
    assert_eq!(s.level, 1);

    let (c, mut s, mut d) = level_2_decision();
    // Activating a COLD component is illegal: the state refuses the step.
    d.transitions
        .insert(0, revscale_engine::Transition { component: id("dat_iq"), kind: TransitionKind::Activate });
    let events = pollster::block_on(execute(&c, &mut s, &d, &ScriptedDriver::default(), day("2026-03-01")));
    assert!(
        matches!(&events[0], Event::TransitionFailed { error, .. } if error.contains("cannot start Activate from cold")),
        "{events:?}"
    );
}
