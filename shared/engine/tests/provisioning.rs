//! Carrying out plans: commit on success, roll back completed steps on failure.

mod support;

use revscale_engine::decision::{Event, Outcome};
use revscale_engine::ports::memory::ScriptedDriver;
use revscale_engine::provisioning::{DriverError, DriverStatus, MAX_STATUS_CHECKS, execute};
use revscale_engine::state::{ComponentState, TransitionKind};
use support::*;

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
    assert_eq!(
        undone,
        vec![
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
        matches!(&events[..2], [Event::TransitionFailed { .. }, Event::Rollback { undone }] if undone.is_empty())
    );
    assert_eq!(s.component_state(&id("hume_ai")), ComponentState::Cold);
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
        matches!(&events[0], Event::TransitionFailed { error, .. } if error.contains("did not reach warm")),
        "{events:?}"
    );
}

#[test]
fn a_failed_rollback_step_is_reported_and_leaves_a_stable_state() {
    let (c, mut s, d) = level_2_decision();
    let driver = ScriptedDriver::default()
        .on_apply("k8s_workers", vec![Err(DriverError::Rejected("InvalidParameterException".into()))])
        // hume_ai: deploy, activate succeed; the rollback's deactivate fails.
        .on_apply("hume_ai", vec![Ok(()), Ok(()), Err(DriverError::Rejected("ParameterNotFound".into()))]);
    let events = pollster::block_on(execute(&c, &mut s, &d, &driver, day("2026-03-01")));
    assert!(events.iter().any(|e| matches!(e, Event::TransitionFailed { error, .. } if error.starts_with("rollback step failed"))), "{events:?}");
    assert_eq!(s.component_state(&id("hume_ai")), ComponentState::Hot);
    assert!(s.any_transitional().is_none());
}

#[test]
fn a_plan_naming_an_unknown_or_misplaced_component_fails_cleanly() {
    let (c, mut s, mut d) = level_2_decision();
    d.transitions.push(revscale_engine::Transition { component: id("kafka"), kind: TransitionKind::Deploy });
    let events = pollster::block_on(execute(&c, &mut s, &d, &ScriptedDriver::default(), day("2026-03-01")));
    assert!(events.iter().any(
        |e| matches!(e, Event::TransitionFailed { error, .. } if error.contains("not in the configuration"))
    ));
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
