//! Carrying out plans: commit on success, roll back completed steps on failure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use revscale_engine::decision::{Event, Outcome};
use revscale_engine::model::{ComponentState, TransitionKind};
use revscale_engine::ports::{DriverError, DriverStatus};
use revscale_engine::provisioning::{execute, status_checks_for};
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
    // Each kind has its own limit: an SSM flag is written in seconds.
    let limit = status_checks_for(c.component(&id("hume_ai")).unwrap());
    assert_eq!(limit, 10, "5 minutes at one check per 30 s");
    let forever = vec![Ok(DriverStatus::InProgress); limit as usize + 1];
    let driver = ScriptedDriver::default().on_status("hume_ai", forever);
    let events = pollster::block_on(execute(&c, &mut s, &d, &driver, day("2026-03-01")));
    assert!(
        matches!(&events[0], Event::TransitionFailed { error, .. } if error == &format!("not there after {limit} checks")),
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

/// The shipped configuration with hume_ai (level 2) an ECS service whose HOT count is
/// not configured: HOT restores what ran.
fn with_ecs_service() -> revscale_engine::Config {
    config_with(|v| {
        v["components"]["hume_ai"]["driver"] =
            serde_norway::from_str("{kind: ecs_service, cluster: prod, service: search}").unwrap();
    })
}

#[test]
fn leaving_hot_saves_the_capacity_that_ran_and_hot_restores_exactly_it() {
    use revscale_engine::model::Capacity;
    use revscale_engine::ports::Observed;
    let c = with_ecs_service();
    // At level 2 (hume_ai HOT with 3 tasks), churn: level 1, hume_ai WARM.
    let mut s = at_level(&c, 2, "2026-01-01");
    let mut h = months(&[("2026-01", 1000), ("2026-02", 1000), ("2026-03", 1000)], 100);
    fill(&mut h, "2026-04-01", "2026-04-30", 700, 100);
    let down = eval(&c, &s, &h, "2026-04-07");
    assert_eq!((down.to_level, down.outcome), (1, Outcome::Execute));
    let three = Capacity { desired: 3, min: None, max: None };
    let driver = ScriptedDriver::default().on_observe(
        "hume_ai",
        vec![Ok(Observed::at(&[ComponentState::Hot], "desiredCount 3").with_capacity(three))],
    );
    pollster::block_on(execute(&c, &mut s, &down, &driver, day("2026-04-07")));
    assert_eq!(s.level, 1);
    assert_eq!(s.components[&id("hume_ai")].saved_capacity, Some(three));
    // Revenue comes back: HOT is given the 3 tasks that ran, not a number from the file.
    let mut h = months(&[("2026-05", 1000), ("2026-06", 1000), ("2026-07", 1000)], 100);
    fill(&mut h, "2026-08-01", "2026-08-01", 1000, 100);
    let s_before = s.clone();
    let up = eval(&c, &s_before, &h, "2026-08-01");
    assert_eq!((up.to_level, up.outcome), (2, Outcome::Execute), "{:?}", up.reasons);
    let driver = ScriptedDriver::default();
    pollster::block_on(execute(&c, &mut s, &up, &driver, day("2026-08-01")));
    let calls = driver.calls();
    let saved = driver.saved();
    let hot = calls.iter().position(|c| c == "hume_ai -> hot").expect("hume_ai goes HOT");
    assert_eq!(saved[hot], Some(three), "{calls:?} {saved:?}");
}

#[test]
fn a_component_seen_at_zero_when_it_leaves_hot_keeps_what_was_saved_before() {
    use revscale_engine::model::Capacity;
    use revscale_engine::ports::Observed;
    let c = with_ecs_service();
    let mut s = at_level(&c, 2, "2026-01-01");
    let two = Capacity { desired: 2, min: None, max: None };
    s.components.get_mut(&id("hume_ai")).unwrap().saved_capacity = Some(two);
    let mut h = months(&[("2026-01", 1000), ("2026-02", 1000), ("2026-03", 1000)], 100);
    fill(&mut h, "2026-04-01", "2026-04-30", 700, 100);
    let down = eval(&c, &s, &h, "2026-04-07");
    // Scaled to 0 by hand before revscale got there: 0 is never HOT's capacity.
    let zero = Capacity { desired: 0, min: None, max: None };
    let driver = ScriptedDriver::default().on_observe(
        "hume_ai",
        vec![Ok(Observed::at(&[ComponentState::Warm], "desiredCount 0").with_capacity(zero))],
    );
    pollster::block_on(execute(&c, &mut s, &down, &driver, day("2026-04-07")));
    assert_eq!(s.components[&id("hume_ai")].saved_capacity, Some(two));
}

#[test]
fn a_service_that_ran_before_revscale_adopted_it_keeps_its_count_through_its_first_deploy() {
    use revscale_engine::model::Capacity;
    use revscale_engine::ports::Observed;
    let c = with_ecs_service();
    // Level 1, hume_ai recorded COLD, though the service already runs 4 tasks.
    let mut s = at_level(&c, 1, "2026-01-01");
    let mut h = months(&[("2026-01", 1000), ("2026-02", 1000), ("2026-03", 1000)], 50);
    fill(&mut h, "2026-04-01", "2026-04-01", 1000, 50);
    let up = eval(&c, &s, &h, "2026-04-01");
    assert_eq!((up.to_level, up.outcome), (2, Outcome::Execute), "{:?}", up.reasons);
    let four = Capacity { desired: 4, min: None, max: None };
    let driver = ScriptedDriver::default().on_observe(
        "hume_ai",
        vec![Ok(Observed::at(&[ComponentState::Hot], "desiredCount 4").with_capacity(four))],
    );
    pollster::block_on(execute(&c, &mut s, &up, &driver, day("2026-04-01")));
    let calls = driver.calls();
    let hot = calls.iter().position(|c| c == "hume_ai -> hot").expect("hume_ai goes HOT");
    assert_eq!(driver.saved()[hot], Some(four), "COLD -> WARM took it to 0; HOT gives back its 4: {calls:?}");
}
