//! A provisioning run as the Step Functions state machine drives it, one step per
//! Lambda call: begin (take the lock), then per transition start / check / commit,
//! then finish; on failure, undo what was done, newest first, then fail.
//!
//! Everything here is a pure change of [`SystemState`]; the provisioner Lambda loads
//! the state, applies one step, calls the driver, and stores the state under its
//! version. What was done is read from the stored run, never from the execution's
//! payload, so a rollback undoes exactly what happened.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, Duration, NaiveDate, Utc};

use crate::config::Config;
use crate::decision::{Event, Outcome, RecordedDecision};
use crate::model::{Capacity, Cause, ComponentId, ComponentState, DecisionId, Mode, Transition};
use crate::ports::{AuditRecord, LevelChangeRequested};
use crate::state::{BreakerStatus, ComponentRecord, ProvisioningRun, RunFailure, SystemState, Undo};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// Another run holds the lock (or this one already started): a duplicate start.
    #[error("provisioning of {held_by} is in progress; {requested} cannot start")]
    LockHeld { held_by: DecisionId, requested: DecisionId },
    /// The state moved on since the decision: nothing is done.
    #[error("decision {decision_id} is stale: {why}")]
    StaleDecision { decision_id: DecisionId, why: String },
    #[error("no provisioning run is in progress for {0}")]
    NoRun(DecisionId),
    #[error("step {index} of {decision_id} is out of order (next is {next})")]
    OutOfOrder { decision_id: DecisionId, index: usize, next: usize },
    #[error("{0}")]
    Illegal(String),
}

/// Why the provisioner refuses to act on a `Level Change Requested` event. Nothing is
/// locked or changed; the operators are alerted. An event is only a request: what
/// revscale acts on is the decision it recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("decision {0} is not in the audit trail: the event was not published by revscale")]
    NotRecorded(DecisionId),
    #[error("decision {id} was recorded as {outcome:?}, not as a change to execute")]
    NotExecutable { id: DecisionId, outcome: Outcome },
    #[error(
        "decision {id} was taken at {at}, {age_minutes} minutes ago: a decision older than {max_hours} h is not executed (a redelivered event?)"
    )]
    Expired { id: DecisionId, at: DateTime<Utc>, age_minutes: i64, max_hours: i64 },
    #[error("the event for decision {id} differs from the recorded decision in its {what}")]
    Mismatch { id: DecisionId, what: &'static str },
    #[error("revscale is in shadow mode: decision {id} is recorded but never executed")]
    Shadow { id: DecisionId },
    /// Something the decision rested on changed between the decision and its run.
    #[error("decision {id} no longer holds: {why}")]
    NoLongerHolds { id: DecisionId, why: String },
}

/// Checks a provisioning request against the decision the audit trail recorded under
/// its id: it must exist, be an `Execute` of the same levels and transitions, be
/// younger than `max_age`, and the mode must not be shadow.
pub fn verify_request(
    request: &LevelChangeRequested,
    recorded: Option<&AuditRecord>,
    mode: Mode,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<(), Refusal> {
    let id = request.decision_id.clone();
    let Some((record, decision)) = recorded.and_then(|r| r.decision.as_ref().map(|d| (r, d))) else {
        return Err(Refusal::NotRecorded(id));
    };
    if decision.outcome != Outcome::Execute {
        return Err(Refusal::NotExecutable { id, outcome: decision.outcome });
    }
    let mismatch = |what| Err(Refusal::Mismatch { id: id.clone(), what });
    if decision.id != request.decision_id {
        return mismatch("id");
    }
    if (decision.from_level, decision.to_level) != (request.from_level, request.to_level) {
        return mismatch("levels");
    }
    if decision.transitions != request.transitions {
        return mismatch("transitions");
    }
    if decision.cause != request.cause {
        return mismatch("cause");
    }
    let age = now - record.at;
    if age > max_age {
        return Err(Refusal::Expired {
            id,
            at: record.at,
            age_minutes: age.num_minutes(),
            max_hours: max_age.num_hours(),
        });
    }
    // An approved drain acts in every mode (it only removes); anything else in shadow
    // mode is recorded, never executed.
    let shadow = mode == Mode::Shadow || request.mode == Mode::Shadow || decision.mode == Mode::Shadow;
    if shadow && decision.cause != Some(Cause::Drain) {
        return Err(Refusal::Shadow { id });
    }
    Ok(())
}

/// Re-checks, when its run begins, every condition of a decision that can change after
/// it was taken: the drain it executes (or that now overrides it), the override it
/// executes (cancelled, expired or replaced since) or that now pins the level, the mode
/// (shadow, or approval for a change no person approved), and the breaker. The evaluator
/// decided on the state of 06:00; the run begins later, and an operator may have acted
/// in between. `today` is the schedule's local date of the run.
pub fn recheck(
    decision: &RecordedDecision,
    state: &SystemState,
    config: &Config,
    today: NaiveDate,
) -> Result<(), Refusal> {
    let refuse = |why: String| Err(Refusal::NoLongerHolds { id: decision.id.clone(), why });
    let drain_active = state.drain.as_ref().is_some_and(|d| d.is_active());
    let pin = state.active_override(today);
    match decision.cause {
        Some(Cause::Drain) if !drain_active => {
            return refuse("the drain it executes was cancelled since".into());
        }
        Some(Cause::Drain) => return Ok(()),
        // A drain overrides every other decision (the rules try it first).
        _ if drain_active => {
            return refuse("a drain was approved since: everything goes cold instead".into());
        }
        Some(Cause::Override) => match pin {
            None => return refuse("the override it executes was cancelled or has expired since".into()),
            Some(o) if o.level.min(config.top_level()) != decision.to_level => {
                return refuse(format!(
                    "override {} now pins the level to L{}, not L{}",
                    o.id, o.level, decision.to_level
                ));
            }
            Some(_) => {}
        },
        _ => {
            if let Some(o) = pin {
                return refuse(format!(
                    "override {} was approved since and pins the level to L{}",
                    o.id, o.level
                ));
            }
            if let BreakerStatus::Open { until } = state.breaker.status(config, today) {
                return refuse(format!(
                    "the circuit breaker opened since: nothing automatic starts before {until}"
                ));
            }
        }
    }
    let manual = matches!(decision.cause, Some(Cause::Override | Cause::Drain));
    match state.mode(config) {
        Mode::Shadow => refuse("revscale was switched to shadow mode since".into()),
        // Taken in auto mode, the change may never have been approved; approval mode now
        // asks for a person. A step-down for cost or runway was approved in every mode.
        Mode::Approval
            if decision.mode == Mode::Auto
                && !manual
                && decision.from_level != decision.to_level
                && !decision.cause.is_some_and(Cause::is_proposed_only) =>
        {
            refuse(
                "revscale was switched to approval mode since: the change needs a person's approval".into(),
            )
        }
        _ => Ok(()),
    }
}

/// When a step runs: the instant, and the day it belongs to in the schedule's time zone
/// (component `since` dates, `level_since`, the breaker's `opened_on`), so that the
/// provisioner dates what it changes as the evaluator dates its decisions. A bare UTC
/// instant is its own day in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub now: DateTime<Utc>,
    pub today: NaiveDate,
}

impl From<DateTime<Utc>> for Clock {
    fn from(now: DateTime<Utc>) -> Self {
        Clock { now, today: now.date_naive() }
    }
}

fn run_for<'a>(
    state: &'a mut SystemState,
    decision_id: &DecisionId,
) -> Result<&'a mut ProvisioningRun, RunError> {
    match state.provisioning.as_mut() {
        Some(run) if run.decision_id == *decision_id => Ok(run),
        _ => Err(RunError::NoRun(decision_id.clone())),
    }
}

/// Checks that the decision still applies and takes the lock.
pub fn begin(
    state: &mut SystemState,
    request: &LevelChangeRequested,
    at: impl Into<Clock>,
) -> Result<(), RunError> {
    let Clock { now, today } = at.into();
    if let Some(run) = &state.provisioning {
        return Err(RunError::LockHeld {
            held_by: run.decision_id.clone(),
            requested: request.decision_id.clone(),
        });
    }
    let stale = |why: String| RunError::StaleDecision { decision_id: request.decision_id.clone(), why };
    if state.level != request.from_level {
        return Err(stale(format!("the level is L{}, not L{}", state.level, request.from_level)));
    }
    if let Some((id, record)) = state.any_transitional() {
        return Err(stale(format!("{id} is {}", record.state)));
    }
    // A drain acts past shadow mode and the breaker: only while it is still approved.
    if request.cause == Some(Cause::Drain) && !state.drain.as_ref().is_some_and(|d| d.is_active()) {
        return Err(stale("the drain was cancelled since the decision".into()));
    }
    // Every step must be legal from today's component states.
    let mut rehearsal = state.clone();
    for t in &request.transitions {
        rehearsal
            .start(t, today)
            .and_then(|_| rehearsal.commit(t, today))
            .map_err(|e| stale(e.to_string()))?;
    }
    state.provisioning = Some(ProvisioningRun {
        decision_id: request.decision_id.clone(),
        from_level: request.from_level,
        to_level: request.to_level,
        cause: request.cause,
        transitions: request.transitions.clone(),
        committed: 0,
        started_at: now,
        step_started_at: None,
        failure: None,
        undoing: None,
        undone: Vec::new(),
    });
    Ok(())
}

/// Puts transition `index` in flight (WARMING or COOLING). Returns it and the state
/// the driver must reach.
pub fn start_step(
    state: &mut SystemState,
    decision_id: &DecisionId,
    index: usize,
    at: impl Into<Clock>,
) -> Result<(Transition, ComponentState), RunError> {
    let Clock { now, today } = at.into();
    let run = run_for(state, decision_id)?;
    if index != run.committed {
        return Err(RunError::OutOfOrder { decision_id: decision_id.clone(), index, next: run.committed });
    }
    let t =
        run.transitions.get(index).cloned().ok_or_else(|| RunError::Illegal(format!("no step {index}")))?;
    let target = t.kind.to_state();
    // A retried call (the driver call failed transiently after the state was stored)
    // finds the step already started: nothing more to record.
    if state.components.get(&t.component).and_then(|r| r.in_flight) == Some(t.kind) {
        return Ok((t, target));
    }
    let Some(run) = state.provisioning.as_mut() else { return Err(RunError::NoRun(decision_id.clone())) };
    run.step_started_at = Some(now);
    state.start(&t, today).map_err(|e| RunError::Illegal(e.to_string()))?;
    Ok((t, target))
}

/// Whether step `t` must first read the resource's capacity and save it: its target is
/// not HOT (so it may scale the resource to 0), and its kind restores a capacity (an ECS
/// service's count, an Auto Scaling group's sizes). Not only when leaving HOT: a
/// service that already ran before revscale adopted it is recorded COLD, and its first
/// step (COLD -> WARM) is the one that takes it to 0.
pub fn saves_capacity(config: &Config, t: &Transition) -> bool {
    t.kind.to_state() != ComponentState::Hot
        && config.component(&t.component).is_some_and(|c| c.driver.as_kind().saves_capacity())
}

/// Keeps `observed` as the capacity HOT restores for `t`'s component; a capacity of 0
/// is never saved (a retried step finds the resource already scaled down).
pub fn save_capacity(state: &mut SystemState, t: &Transition, observed: Option<Capacity>) -> bool {
    state.components.get_mut(&t.component).is_some_and(|r| r.save_capacity(observed))
}

/// The capacity saved for `component`, which HOT restores unless the configuration
/// fixes one.
pub fn saved_capacity(state: &SystemState, component: &ComponentId) -> Option<Capacity> {
    state.components.get(component).and_then(|r| r.saved_capacity)
}

/// The transition `index` (for status checks).
pub fn step(
    state: &SystemState,
    decision_id: &DecisionId,
    index: usize,
) -> Result<(Transition, ComponentState), RunError> {
    let run = state.provisioning.as_ref().filter(|r| r.decision_id == *decision_id);
    let run = run.ok_or_else(|| RunError::NoRun(decision_id.clone()))?;
    let t =
        run.transitions.get(index).cloned().ok_or_else(|| RunError::Illegal(format!("no step {index}")))?;
    let target = t.kind.to_state();
    Ok((t, target))
}

/// Commits transition `index`; returns it and how long it took.
pub fn commit_step(
    state: &mut SystemState,
    decision_id: &DecisionId,
    index: usize,
    at: impl Into<Clock>,
) -> Result<(Transition, f64), RunError> {
    let Clock { now, today } = at.into();
    let run = run_for(state, decision_id)?;
    if index + 1 == run.committed {
        // A retried call: already committed.
        return Ok((run.transitions[index].clone(), 0.0));
    }
    if index != run.committed || index >= run.transitions.len() {
        return Err(RunError::OutOfOrder { decision_id: decision_id.clone(), index, next: run.committed });
    }
    let t = run.transitions[index].clone();
    let seconds = run.step_started_at.map_or(0.0, |s| (now - s).num_milliseconds() as f64 / 1000.0);
    run.committed += 1;
    run.step_started_at = None;
    state.commit(&t, today).map_err(|e| RunError::Illegal(e.to_string()))?;
    Ok((t, seconds))
}

/// Every step is committed: the new level holds, the breaker closes, the lock goes.
pub fn finish(
    state: &mut SystemState,
    decision_id: &DecisionId,
    at: impl Into<Clock>,
) -> Result<Vec<Event>, RunError> {
    let Clock { now: _, today } = at.into();
    let run = run_for(state, decision_id)?.clone();
    if run.committed != run.transitions.len() {
        return Err(RunError::OutOfOrder {
            decision_id: decision_id.clone(),
            index: run.transitions.len(),
            next: run.committed,
        });
    }
    state.provisioning = None;
    state.breaker = Default::default();
    state.pending_approval = None;
    if run.to_level == state.level {
        return Ok(Vec::new());
    }
    let from = state.level;
    state.level = run.to_level;
    state.level_since = today;
    Ok(vec![Event::LevelChanged { from, to: run.to_level, cause: run.cause.unwrap_or(Cause::Growth) }])
}

/// Records the failure (first call only) and picks the next undo step: the half-done
/// transition first, then committed ones newest first. `None` when nothing is left.
///
/// A drain only goes forward: what it took down stays down (undoing it would create
/// and start again what two people asked to remove), and only its half-done step is
/// put back, in the state alone. The next evaluation, the drain still approved,
/// proposes what is left.
pub fn next_undo(
    state: &mut SystemState,
    decision_id: &DecisionId,
    failure: RunFailure,
    at: impl Into<Clock>,
) -> Result<Option<(Transition, ComponentState)>, RunError> {
    let Clock { now: _, today } = at.into();
    let in_flight = state
        .components
        .iter()
        .find_map(|(id, r)| r.in_flight.map(|kind| Transition { component: id.clone(), kind }));
    let run = run_for(state, decision_id)?;
    run.failure.get_or_insert(failure);
    if let Some(undo) = &run.undoing {
        return Ok(Some(undo.target()));
    }
    let undo = match in_flight {
        Some(transition) if run.transitions.contains(&transition) => Undo::Abort { transition },
        Some(other) => {
            return Err(RunError::Illegal(format!("{} is mid-transition outside this run", other.component)));
        }
        None if run.committed > 0 && !forward_only(run) => {
            Undo::Reverse { transition: run.transitions[run.committed - 1].clone() }
        }
        None => return Ok(None),
    };
    run.undoing = Some(undo.clone());
    if let Undo::Reverse { .. } = &undo {
        let (inverse, _) = undo.target();
        state.start(&inverse, today).map_err(|e| RunError::Illegal(e.to_string()))?;
    }
    Ok(Some(undo.target()))
}

/// Whether the undo step in progress needs the driver: the one rule every rollback path
/// (the provision Lambda's RollbackStart and RollbackCheck, the simulator's `execute`)
/// asks. Undo never creates: an undo that needs no driver restores the state alone,
/// whatever the resource's state, and never asks the driver for anything.
///
/// - A step the driver refused to start (`TransitionRejected`: a refused call changed
///   nothing) needs no driver; calling it again would only be refused again.
/// - A drain's half-done removal needs none either: driving it back would create again
///   what may already be half deleted (`CreateCluster` on a cluster that is DELETING).
///   What it leaves behind, the next drain run removes.
pub fn undo_needs_driver(state: &SystemState, decision_id: &DecisionId) -> bool {
    let Some(run) = state.provisioning.as_ref().filter(|r| r.decision_id == *decision_id) else {
        return true;
    };
    let refused = run.failure.as_ref().is_some_and(|f| f.error == "TransitionRejected");
    !((refused || forward_only(run)) && matches!(run.undoing, Some(Undo::Abort { .. })))
}

/// A run whose committed steps are never reversed: a drain.
fn forward_only(run: &ProvisioningRun) -> bool {
    run.cause == Some(Cause::Drain)
}

/// The undo step in progress (for status checks).
pub fn current_undo(
    state: &SystemState,
    decision_id: &DecisionId,
) -> Result<Option<(Transition, ComponentState)>, RunError> {
    let run = state.provisioning.as_ref().filter(|r| r.decision_id == *decision_id);
    let run = run.ok_or_else(|| RunError::NoRun(decision_id.clone()))?;
    Ok(run.undoing.as_ref().map(Undo::target))
}

/// The driver reached the undo step's target: record it.
pub fn complete_undo(
    state: &mut SystemState,
    decision_id: &DecisionId,
    at: impl Into<Clock>,
) -> Result<Transition, RunError> {
    let Clock { now: _, today } = at.into();
    let run = run_for(state, decision_id)?;
    let undo = run.undoing.take().ok_or_else(|| RunError::Illegal("no undo step in progress".into()))?;
    let (moved, _) = undo.target();
    match &undo {
        Undo::Abort { transition } => {
            run.undone.push(transition.clone());
            state.abort(transition, today).map_err(|e| RunError::Illegal(e.to_string()))?;
        }
        Undo::Reverse { .. } => {
            run.committed -= 1;
            run.undone.push(moved.clone());
            state.commit(&moved, today).map_err(|e| RunError::Illegal(e.to_string()))?;
        }
    }
    Ok(moved)
}

/// Rollback is complete: one more failure for the breaker, the lock goes. Returns the
/// run (for the audit record and the alert) and the events.
pub fn fail(
    config: &Config,
    state: &mut SystemState,
    decision_id: &DecisionId,
    at: impl Into<Clock>,
) -> Result<(ProvisioningRun, Vec<Event>), RunError> {
    let Clock { now: _, today } = at.into();
    let run = run_for(state, decision_id)?.clone();
    let reversed = run.committed == 0 || forward_only(&run);
    if run.undoing.is_some() || !reversed || state.any_transitional().is_some() {
        return Err(RunError::Illegal(format!("rollback of {decision_id} is not complete")));
    }
    state.provisioning = None;
    let mut events = vec![Event::Rollback { undone: run.undone.clone() }];
    events.extend(record_failure(config, state, today));
    Ok((run, events))
}

/// After a run that could neither finish nor roll back (`RollbackFailed`, or an
/// execution stopped by hand), an operator repairs the components by hand and declares
/// where each one the run may have touched really stands. This records that, releases
/// the lock, and counts the run as failed for the breaker. Nothing is driven: the
/// declaration is the operator's word, and the audit record carries it. Only the run's
/// own components may be declared: a release is no way to rewrite the rest of the state.
/// (Whether the run's execution has ended is the caller's to check first.)
pub fn release_after_repair(
    config: &Config,
    state: &mut SystemState,
    decision_id: &DecisionId,
    declared: &BTreeMap<ComponentId, ComponentState>,
    today: NaiveDate,
) -> Result<(ProvisioningRun, Vec<Event>), RunError> {
    let run = run_for(state, decision_id)?.clone();
    let touched: BTreeSet<&ComponentId> = run.transitions.iter().map(|t| &t.component).collect();
    let undeclared: Vec<&str> =
        touched.iter().filter(|c| !declared.contains_key(**c)).map(|c| c.as_str()).collect();
    if !undeclared.is_empty() {
        return Err(RunError::Illegal(format!(
            "declare where {} stand(s): run {decision_id} may have changed them",
            undeclared.join(", ")
        )));
    }
    let mut repaired = state.clone();
    for (component, &declared_state) in declared {
        if declared_state.is_transitional() {
            return Err(RunError::Illegal(format!(
                "{component} cannot be declared {declared_state}: say where it stands (cold, warm or hot)"
            )));
        }
        let Some(record) = repaired.components.get_mut(component) else {
            return Err(RunError::Illegal(format!("no component {component} in the configuration")));
        };
        if !touched.contains(component) {
            return Err(RunError::Illegal(format!(
                "{component} is not one of run {decision_id}'s components: only those it touched are released"
            )));
        }
        if record.state != declared_state || record.in_flight.is_some() {
            *record =
                ComponentRecord { state: declared_state, in_flight: None, since: today, ..record.clone() };
        }
    }
    if let Some((component, record)) = repaired.any_transitional() {
        return Err(RunError::Illegal(format!("{component} is still {}: declare it too", record.state)));
    }
    repaired.provisioning = None;
    let events = record_failure(config, &mut repaired, today);
    *state = repaired;
    Ok((run, events))
}

/// A run failed and was rolled back: one more consecutive failure; the breaker opens
/// at the configured count, or at once after a failed half-open attempt.
pub fn record_failure(config: &Config, state: &mut SystemState, today: NaiveDate) -> Vec<Event> {
    let half_open = state.breaker.status(config, today) == BreakerStatus::HalfOpen;
    state.breaker.consecutive_failures += 1;
    if half_open || state.breaker.consecutive_failures >= config.breaker.failures {
        state.breaker.opened_on = Some(today);
        return vec![Event::BreakerOpened {
            consecutive_failures: state.breaker.consecutive_failures,
            until: today + Days::new(u64::from(config.breaker.cooldown_days)),
        }];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ComponentId;
    use crate::model::{Mode, TransitionKind};

    fn now(s: &str) -> DateTime<Utc> {
        format!("{s}Z").parse().unwrap()
    }

    fn t(c: &str, kind: TransitionKind) -> Transition {
        Transition { component: ComponentId::new(c), kind }
    }

    fn request(id: &str) -> LevelChangeRequested {
        use TransitionKind::*;
        LevelChangeRequested {
            decision_id: id.into(),
            from_level: 0,
            to_level: 1,
            transitions: vec![t("eks_control_plane", Deploy), t("eks_control_plane", Activate)],
            reasons: vec![],
            mode: Mode::Auto,
            cause: Some(Cause::Growth),
        }
    }

    fn setup() -> (Config, SystemState) {
        let c = Config::default_config().unwrap();
        let s = SystemState::initial(&c, "2026-03-01".parse().unwrap());
        (c, s)
    }

    /// The audit record the evaluator writes for a decision to execute `request`.
    fn recorded(request: &LevelChangeRequested, at: &str) -> AuditRecord {
        AuditRecord { state_version: Some(7), ..crate::testing::recorded_execute(request, now(at)) }
    }

    const SIX_HOURS: fn() -> Duration = || Duration::hours(6);

    #[test]
    fn a_request_matching_a_recent_recorded_execute_decision_is_accepted() {
        let r = request("d1");
        let record = recorded(&r, "2026-03-01T06:00:00");
        assert_eq!(
            verify_request(&r, Some(&record), Mode::Auto, now("2026-03-01T06:00:05"), SIX_HOURS()),
            Ok(())
        );
        assert_eq!(
            verify_request(&r, Some(&record), Mode::Approval, now("2026-03-01T11:59:59"), SIX_HOURS()),
            Ok(())
        );
    }

    #[test]
    fn a_forged_request_for_a_decision_missing_from_the_audit_trail_is_refused() {
        let r = request("2026-03-01-L0-L4-forged000001");
        let err = verify_request(&r, None, Mode::Auto, now("2026-03-01T06:00:00"), SIX_HOURS()).unwrap_err();
        assert_eq!(err, Refusal::NotRecorded("2026-03-01-L0-L4-forged000001".into()));
        // An id that names an API change (an audit record without a decision) is no better.
        let mut other = recorded(&r, "2026-03-01T06:00:00");
        other.decision = None;
        assert!(matches!(
            verify_request(&r, Some(&other), Mode::Auto, now("2026-03-01T06:00:00"), SIX_HOURS()),
            Err(Refusal::NotRecorded(_))
        ));
    }

    #[test]
    fn a_forged_request_that_differs_from_the_recorded_decision_is_refused() {
        let genuine = request("d1");
        let record = recorded(&genuine, "2026-03-01T06:00:00");
        let at = now("2026-03-01T06:01:00");
        let mut higher = genuine.clone();
        higher.to_level = 4;
        let mut more = genuine.clone();
        more.transitions.push(t("tee", TransitionKind::Deploy));
        let mut cause = genuine.clone();
        cause.cause = Some(Cause::Override);
        for (forged, what) in [(higher, "levels"), (more, "transitions"), (cause, "cause")] {
            assert_eq!(
                verify_request(&forged, Some(&record), Mode::Auto, at, SIX_HOURS()),
                Err(Refusal::Mismatch { id: "d1".into(), what }),
            );
        }
    }

    #[test]
    fn a_stale_request_for_a_decision_older_than_six_hours_is_refused() {
        let r = request("d1");
        let record = recorded(&r, "2026-03-01T06:00:00");
        let err = verify_request(&r, Some(&record), Mode::Auto, now("2026-03-01T12:00:01"), SIX_HOURS())
            .unwrap_err();
        assert!(matches!(err, Refusal::Expired { age_minutes: 360, max_hours: 6, .. }), "{err:?}");
        assert!(err.to_string().contains("older than 6 h"), "{err}");
    }

    fn drain_run(s: &mut SystemState) -> LevelChangeRequested {
        use TransitionKind::*;
        let since = "2026-03-01".parse().unwrap();
        for id in ["eks_control_plane", "k8s_workers"] {
            s.components.insert(
                ComponentId::new(id),
                crate::state::ComponentRecord::settled(ComponentState::Hot, since),
            );
        }
        s.level = 2;
        s.drain = Some(crate::state::Drain {
            reason: "teardown".into(),
            requested_by: "alice".into(),
            requested_on: since,
            approved_by: Some("bob".into()),
        });
        LevelChangeRequested {
            decision_id: "d-drain".into(),
            from_level: 2,
            to_level: 0,
            transitions: vec![
                t("k8s_workers", Deactivate),
                t("k8s_workers", Decommission),
                t("eks_control_plane", Deactivate),
                t("eks_control_plane", Decommission),
            ],
            reasons: vec![],
            mode: Mode::Shadow,
            cause: Some(Cause::Drain),
        }
    }

    #[test]
    fn a_failed_drain_keeps_what_it_took_down_and_creates_nothing_again() {
        let (c, mut s) = setup();
        let r = drain_run(&mut s);
        let at = now("2026-03-01T06:00:00");
        begin(&mut s, &r, at).unwrap();
        for i in 0..3 {
            start_step(&mut s, &r.decision_id, i, at).unwrap();
            commit_step(&mut s, &r.decision_id, i, at).unwrap();
        }
        start_step(&mut s, &r.decision_id, 3, at).unwrap();
        let failure =
            RunFailure { error: "TransitionFailed".into(), cause: "the cluster did not delete".into() };
        let undo = next_undo(&mut s, &r.decision_id, failure.clone(), at).unwrap();
        assert!(matches!(&undo, Some((t, _)) if t.component.as_str() == "eks_control_plane"), "{undo:?}");
        assert!(!undo_needs_driver(&s, &r.decision_id), "no driver call that could create the cluster again");
        complete_undo(&mut s, &r.decision_id, at).unwrap();
        assert_eq!(
            next_undo(&mut s, &r.decision_id, failure, at).unwrap(),
            None,
            "nothing committed is reversed"
        );
        fail(&c, &mut s, &r.decision_id, at).unwrap();
        assert_eq!(s.component_state(&ComponentId::new("k8s_workers")), ComponentState::Cold);
        assert_eq!(s.component_state(&ComponentId::new("eks_control_plane")), ComponentState::Warm);
        assert!(s.provisioning.is_none() && s.any_transitional().is_none());
    }

    fn override_to(level: u8, until: &str) -> crate::state::Override {
        crate::state::Override {
            id: "o1".into(),
            level,
            until: until.parse().unwrap(),
            reason: "launch".into(),
            requested_by: "alice".into(),
            requested_on: "2026-03-01".parse().unwrap(),
            approved_by: Some("bob".into()),
            cancelled: false,
        }
    }

    fn decided(cause: Cause, from: u8, to: u8) -> RecordedDecision {
        let mut r = request("d1");
        (r.cause, r.from_level, r.to_level) = (Some(cause), from, to);
        recorded(&r, "2026-03-01T06:00:00").decision.unwrap()
    }

    fn day(d: &str) -> NaiveDate {
        d.parse().unwrap()
    }

    #[test]
    fn recheck_accepts_a_decision_whose_conditions_still_hold() {
        let (c, mut s) = setup();
        assert_eq!(recheck(&decided(Cause::Growth, 0, 1), &s, &c, day("2026-03-01")), Ok(()));
        s.overrides.push(override_to(1, "2026-03-05"));
        assert_eq!(recheck(&decided(Cause::Override, 0, 1), &s, &c, day("2026-03-05")), Ok(()));
    }

    #[test]
    fn recheck_refuses_an_override_run_whose_override_was_cancelled_expired_or_replaced() {
        let (c, mut s) = setup();
        let d = decided(Cause::Override, 0, 1);
        let why = |s: &SystemState, today| recheck(&d, s, &c, day(today)).unwrap_err().to_string();
        assert!(why(&s, "2026-03-01").contains("cancelled or has expired"), "no override at all");
        s.overrides.push(override_to(1, "2026-03-05"));
        assert!(why(&s, "2026-03-06").contains("cancelled or has expired"), "expired the day after its last");
        s.overrides[0].cancelled = true;
        assert!(why(&s, "2026-03-02").contains("cancelled or has expired"));
        s.overrides[0].cancelled = false;
        s.overrides[0].level = 2;
        assert!(why(&s, "2026-03-02").contains("now pins the level to L2"), "{}", why(&s, "2026-03-02"));
    }

    #[test]
    fn recheck_refuses_an_automatic_change_once_an_override_pins_the_level() {
        let (c, mut s) = setup();
        s.overrides.push(override_to(0, "2026-03-05"));
        let err = recheck(&decided(Cause::Growth, 0, 1), &s, &c, day("2026-03-01")).unwrap_err();
        assert!(err.to_string().contains("override o1 was approved since"), "{err}");
    }

    #[test]
    fn recheck_refuses_a_drain_run_once_the_drain_is_cancelled_and_anything_else_once_one_is_approved() {
        let (c, mut s) = setup();
        let drain = decided(Cause::Drain, 2, 0);
        let err = recheck(&drain, &s, &c, day("2026-03-01")).unwrap_err();
        assert!(err.to_string().contains("the drain it executes was cancelled"), "{err}");
        s.drain = Some(crate::state::Drain {
            reason: "teardown".into(),
            requested_by: "alice".into(),
            requested_on: day("2026-03-01"),
            approved_by: Some("bob".into()),
        });
        assert_eq!(recheck(&drain, &s, &c, day("2026-03-01")), Ok(()));
        let err = recheck(&decided(Cause::Growth, 0, 1), &s, &c, day("2026-03-01")).unwrap_err();
        assert!(err.to_string().contains("a drain was approved since"), "{err}");
    }

    #[test]
    fn recheck_refuses_an_automatic_change_while_the_breaker_is_open_not_once_it_is_half_open() {
        let (c, mut s) = setup();
        s.breaker.consecutive_failures = c.breaker.failures;
        s.breaker.opened_on = Some(day("2026-03-01"));
        let growth = decided(Cause::Growth, 0, 1);
        let err = recheck(&growth, &s, &c, day("2026-03-01")).unwrap_err();
        assert!(err.to_string().contains("circuit breaker opened"), "{err}");
        let half_open = day("2026-03-01") + Days::new(u64::from(c.breaker.cooldown_days));
        assert_eq!(recheck(&growth, &s, &c, half_open), Ok(()), "one attempt is allowed");
        s.overrides.push(override_to(1, "2026-03-05"));
        assert_eq!(
            recheck(&decided(Cause::Override, 0, 1), &s, &c, day("2026-03-01")),
            Ok(()),
            "an approved override passes the breaker, as the rules let it"
        );
    }

    #[test]
    fn recheck_refuses_once_the_mode_is_shadow_or_approval_for_an_unapproved_change() {
        let (c, mut s) = setup();
        let growth = decided(Cause::Growth, 0, 1);
        s.set_mode(Mode::Shadow, &c);
        let err = recheck(&growth, &s, &c, day("2026-03-01")).unwrap_err();
        assert!(err.to_string().contains("shadow mode"), "{err}");
        s.set_mode(Mode::Approval, &c);
        let err = recheck(&growth, &s, &c, day("2026-03-01")).unwrap_err();
        assert!(err.to_string().contains("approval mode"), "{err}");
        let mut approved = growth.clone();
        approved.mode = Mode::Approval;
        assert_eq!(recheck(&approved, &s, &c, day("2026-03-01")), Ok(()), "decided under approval: approved");
        assert_eq!(recheck(&decided(Cause::CostOverrun, 1, 0), &s, &c, day("2026-03-01")), Ok(()));
    }

    #[test]
    fn undo_never_creates_a_drains_and_a_refused_steps_undo_need_no_driver_a_failed_climbs_does() {
        let at = now("2026-03-01T06:00:00");
        let undo_after = |mut s: SystemState, r: &LevelChangeRequested, steps: usize, error: &str| {
            begin(&mut s, r, at).unwrap();
            for i in 0..steps {
                start_step(&mut s, &r.decision_id, i, at).unwrap();
                commit_step(&mut s, &r.decision_id, i, at).unwrap();
            }
            start_step(&mut s, &r.decision_id, steps, at).unwrap();
            let failure = RunFailure { error: error.into(), cause: "x".into() };
            next_undo(&mut s, &r.decision_id, failure, at).unwrap().unwrap();
            undo_needs_driver(&s, &r.decision_id)
        };
        let (_, s) = setup();
        assert!(
            undo_after(s.clone(), &request("d1"), 1, "TransitionFailed"),
            "a failed climb is driven back"
        );
        assert!(
            !undo_after(s.clone(), &request("d1"), 1, "TransitionRejected"),
            "a refused step changed nothing"
        );
        for steps in 0..4 {
            for error in ["TransitionFailed", "TransitionTimedOut", "TransitionRejected"] {
                let mut s = s.clone();
                let r = drain_run(&mut s);
                assert!(!undo_after(s, &r, steps, error), "drain step {steps} ({error})");
            }
        }
    }

    #[test]
    fn a_drain_cancelled_before_its_run_starts_changes_nothing() {
        let (_, mut s) = setup();
        let r = drain_run(&mut s);
        s.drain = None;
        let before = s.clone();
        let err = begin(&mut s, &r, now("2026-03-01T06:00:00")).unwrap_err();
        assert!(err.to_string().contains("the drain was cancelled"), "{err}");
        assert_eq!(s, before);
    }

    #[test]
    fn an_approved_drain_is_executed_in_shadow_mode_too_and_nothing_else_is() {
        let mut r = request("d1");
        r.cause = Some(Cause::Drain);
        let mut record = recorded(&r, "2026-03-01T06:00:00");
        if let Some(d) = record.decision.as_mut() {
            d.mode = Mode::Shadow;
        }
        let at = now("2026-03-01T06:00:01");
        assert_eq!(verify_request(&r, Some(&record), Mode::Shadow, at, SIX_HOURS()), Ok(()));
        r.cause = Some(Cause::Override);
        if let Some(d) = record.decision.as_mut() {
            d.cause = Some(Cause::Override);
        }
        assert_eq!(
            verify_request(&r, Some(&record), Mode::Shadow, at, SIX_HOURS()),
            Err(Refusal::Shadow { id: "d1".into() })
        );
    }

    #[test]
    fn a_request_in_shadow_mode_or_for_a_decision_not_to_execute_is_refused() {
        let r = request("d1");
        let record = recorded(&r, "2026-03-01T06:00:00");
        let at = now("2026-03-01T06:00:01");
        assert_eq!(
            verify_request(&r, Some(&record), Mode::Shadow, at, SIX_HOURS()),
            Err(Refusal::Shadow { id: "d1".into() })
        );
        let mut pending = record.clone();
        if let Some(d) = pending.decision.as_mut() {
            d.outcome = Outcome::AwaitingApproval;
        }
        assert_eq!(
            verify_request(&r, Some(&pending), Mode::Auto, at, SIX_HOURS()),
            Err(Refusal::NotExecutable { id: "d1".into(), outcome: Outcome::AwaitingApproval })
        );
    }

    #[test]
    fn a_run_starts_checks_commits_and_finishes_at_the_new_level() {
        let (_, mut s) = setup();
        begin(&mut s, &request("d1"), now("2026-03-01T06:00:00")).unwrap();
        for i in 0..2 {
            let (tr, target) = start_step(&mut s, &"d1".into(), i, now("2026-03-01T06:00:10")).unwrap();
            assert_eq!(s.component_state(&tr.component), ComponentState::Warming);
            assert_eq!(step(&s, &"d1".into(), i).unwrap(), (tr.clone(), target));
            let (_, secs) = commit_step(&mut s, &"d1".into(), i, now("2026-03-01T06:12:40")).unwrap();
            assert_eq!(secs, 750.0);
        }
        let events = finish(&mut s, &"d1".into(), now("2026-03-01T06:13:00")).unwrap();
        assert_eq!(events, vec![Event::LevelChanged { from: 0, to: 1, cause: Cause::Growth }]);
        assert_eq!(s.level, 1);
        assert!(s.provisioning.is_none());
        assert_eq!(s.component_state(&ComponentId::new("eks_control_plane")), ComponentState::Hot);
    }

    #[test]
    fn a_duplicate_start_is_refused() {
        let (_, mut s) = setup();
        begin(&mut s, &request("d1"), now("2026-03-01T06:00:00")).unwrap();
        assert!(matches!(
            begin(&mut s, &request("d1"), now("2026-03-01T06:00:01")),
            Err(RunError::LockHeld { .. })
        ));
        assert!(matches!(
            begin(&mut s, &request("d2"), now("2026-03-01T06:00:01")),
            Err(RunError::LockHeld { .. })
        ));
    }

    #[test]
    fn a_stale_decision_changes_nothing() {
        let (_, mut s) = setup();
        let mut r = request("d1");
        r.from_level = 2;
        let before = s.clone();
        assert!(matches!(begin(&mut s, &r, now("2026-03-01T06:00:00")), Err(RunError::StaleDecision { .. })));
        let mut r = request("d1");
        r.transitions = vec![t("eks_control_plane", TransitionKind::Activate)];
        assert!(
            begin(&mut s, &r, now("2026-03-01T06:00:00"))
                .unwrap_err()
                .to_string()
                .contains("cannot start Activate from cold")
        );
        assert_eq!(s, before);
    }

    #[test]
    fn steps_must_come_in_order() {
        let (_, mut s) = setup();
        begin(&mut s, &request("d1"), now("2026-03-01T06:00:00")).unwrap();
        assert!(matches!(
            start_step(&mut s, &"d1".into(), 1, now("2026-03-01T06:00:00")),
            Err(RunError::OutOfOrder { .. })
        ));
        assert!(matches!(
            commit_step(&mut s, &"d1".into(), 1, now("2026-03-01T06:00:00")),
            Err(RunError::OutOfOrder { .. })
        ));
        // Retried calls are no-ops, not errors.
        start_step(&mut s, &"d1".into(), 0, now("2026-03-01T06:00:00")).unwrap();
        let started = s.clone();
        start_step(&mut s, &"d1".into(), 0, now("2026-03-01T06:00:09")).unwrap();
        assert_eq!(s, started);
        commit_step(&mut s, &"d1".into(), 0, now("2026-03-01T06:01:00")).unwrap();
        let committed = s.clone();
        commit_step(&mut s, &"d1".into(), 0, now("2026-03-01T06:01:05")).unwrap();
        assert_eq!(s, committed);
        assert!(matches!(
            finish(&mut s, &"d1".into(), now("2026-03-01T06:00:00")),
            Err(RunError::OutOfOrder { .. })
        ));
        assert!(matches!(
            start_step(&mut s, &"other".into(), 0, now("2026-03-01T06:00:00")),
            Err(RunError::NoRun(_))
        ));
    }

    #[test]
    fn rollback_aborts_the_half_done_step_then_reverses_committed_ones_newest_first() {
        let (c, mut s) = setup();
        let before = s.clone();
        begin(&mut s, &request("d1"), now("2026-03-01T06:00:00")).unwrap();
        start_step(&mut s, &"d1".into(), 0, now("2026-03-01T06:00:00")).unwrap();
        commit_step(&mut s, &"d1".into(), 0, now("2026-03-01T06:05:00")).unwrap();
        start_step(&mut s, &"d1".into(), 1, now("2026-03-01T06:05:00")).unwrap();
        let failure = RunFailure { error: "TransitionFailed".into(), cause: "boom".into() };

        // 1. The activation that failed half-way goes back to WARM.
        let (moved, target) =
            next_undo(&mut s, &"d1".into(), failure.clone(), now("2026-03-01T06:06:00")).unwrap().unwrap();
        assert_eq!((moved.kind, target), (TransitionKind::Activate, ComponentState::Warm));
        assert_eq!(
            next_undo(&mut s, &"d1".into(), failure.clone(), now("2026-03-01T06:06:00")).unwrap(),
            Some((moved, target)),
            "idempotent"
        );
        assert_eq!(current_undo(&s, &"d1".into()).unwrap().unwrap().1, ComponentState::Warm);
        complete_undo(&mut s, &"d1".into(), now("2026-03-01T06:07:00")).unwrap();
        // 2. The committed deployment is reversed: WARM -> COOLING -> COLD.
        let (moved, target) =
            next_undo(&mut s, &"d1".into(), failure.clone(), now("2026-03-01T06:07:00")).unwrap().unwrap();
        assert_eq!((moved.kind, target), (TransitionKind::Decommission, ComponentState::Cold));
        assert_eq!(s.component_state(&ComponentId::new("eks_control_plane")), ComponentState::Cooling);
        complete_undo(&mut s, &"d1".into(), now("2026-03-01T06:20:00")).unwrap();
        assert_eq!(next_undo(&mut s, &"d1".into(), failure, now("2026-03-01T06:20:00")).unwrap(), None);

        let (run, events) = fail(&c, &mut s, &"d1".into(), now("2026-03-01T06:20:00")).unwrap();
        assert_eq!(run.failure.unwrap().error, "TransitionFailed");
        assert!(matches!(&events[0], Event::Rollback { undone } if undone.len() == 2));
        assert_eq!(s.breaker.consecutive_failures, 1);
        assert!(s.provisioning.is_none());
        // Every component back where it was (the deploy that was undone stays on
        // record: the cluster was really created).
        let states = |s: &SystemState| -> Vec<_> {
            s.components.iter().map(|(k, v)| (k.clone(), v.state, v.in_flight)).collect()
        };
        assert_eq!(states(&s), states(&before));
        assert_eq!(s.level, 0);
    }

    #[test]
    fn fail_refuses_while_rollback_is_unfinished() {
        let (c, mut s) = setup();
        begin(&mut s, &request("d1"), now("2026-03-01T06:00:00")).unwrap();
        start_step(&mut s, &"d1".into(), 0, now("2026-03-01T06:00:00")).unwrap();
        assert!(fail(&c, &mut s, &"d1".into(), now("2026-03-01T06:00:00")).is_err());
        assert!(complete_undo(&mut s, &"d1".into(), now("2026-03-01T06:00:00")).is_err());
    }

    fn declared(pairs: &[(&str, ComponentState)]) -> BTreeMap<ComponentId, ComponentState> {
        pairs.iter().map(|(c, s)| (ComponentId::new(*c), *s)).collect()
    }

    #[test]
    fn a_stuck_run_is_released_on_the_operators_word_and_counts_as_a_failure() {
        let (c, mut s) = setup();
        begin(&mut s, &request("d1"), now("2026-03-01T06:00:00")).unwrap();
        start_step(&mut s, &"d1".into(), 0, now("2026-03-01T06:00:00")).unwrap();
        let failure = RunFailure { error: "TransitionFailed".into(), cause: "boom".into() };
        next_undo(&mut s, &"d1".into(), failure, now("2026-03-01T06:01:00")).unwrap();
        // Aborting the half-done deployment failed too (RollbackFailed): the control
        // plane is stuck half-made, WARMING.
        assert_eq!(s.component_state(&ComponentId::new("eks_control_plane")), ComponentState::Warming);

        let today: NaiveDate = "2026-03-02".parse().unwrap();
        let repaired = declared(&[("eks_control_plane", ComponentState::Cold)]);
        let (run, events) = release_after_repair(&c, &mut s, &"d1".into(), &repaired, today).unwrap();

        assert_eq!(run.decision_id, "d1");
        assert!(events.is_empty(), "one failure does not open the breaker: {events:?}");
        assert!(s.provisioning.is_none() && s.any_transitional().is_none());
        let record = &s.components[&ComponentId::new("eks_control_plane")];
        assert_eq!((record.state, record.in_flight, record.since), (ComponentState::Cold, None, today));
        assert_eq!(s.breaker.consecutive_failures, 1);
        assert_eq!(s.level, 0);
    }

    #[test]
    fn releasing_rewrites_only_the_components_the_run_touched() {
        let (c, mut s) = setup();
        begin(&mut s, &request("d1"), now("2026-03-01T06:00:00")).unwrap();
        start_step(&mut s, &"d1".into(), 0, now("2026-03-01T06:00:00")).unwrap();
        let before = s.clone();
        let today: NaiveDate = "2026-03-02".parse().unwrap();
        let beyond =
            declared(&[("eks_control_plane", ComponentState::Cold), ("hume_ai", ComponentState::Hot)]);
        let err = release_after_repair(&c, &mut s, &"d1".into(), &beyond, today).unwrap_err();
        assert!(err.to_string().contains("hume_ai is not one of run d1's components"), "{err}");
        assert_eq!(s, before, "nothing rewritten");
        let own = declared(&[("eks_control_plane", ComponentState::Cold)]);
        release_after_repair(&c, &mut s, &"d1".into(), &own, today).unwrap();
        assert_eq!(
            s.components[&ComponentId::new("hume_ai")],
            before.components[&ComponentId::new("hume_ai")]
        );
    }

    #[test]
    fn releasing_needs_every_touched_component_declared_in_a_stable_state() {
        let (c, mut s) = setup();
        begin(&mut s, &request("d1"), now("2026-03-01T06:00:00")).unwrap();
        start_step(&mut s, &"d1".into(), 0, now("2026-03-01T06:00:00")).unwrap();
        let before = s.clone();
        let today: NaiveDate = "2026-03-02".parse().unwrap();

        let err = release_after_repair(&c, &mut s, &"d1".into(), &declared(&[]), today).unwrap_err();
        assert_eq!(err.to_string(), "declare where eks_control_plane stand(s): run d1 may have changed them");
        let halfway = declared(&[("eks_control_plane", ComponentState::Warming)]);
        let err = release_after_repair(&c, &mut s, &"d1".into(), &halfway, today).unwrap_err();
        assert!(err.to_string().starts_with("eks_control_plane cannot be declared warming"), "{err}");
        let unknown =
            declared(&[("eks_control_plane", ComponentState::Cold), ("mainframe", ComponentState::Hot)]);
        let err = release_after_repair(&c, &mut s, &"d1".into(), &unknown, today).unwrap_err();
        assert_eq!(err.to_string(), "no component mainframe in the configuration");
        let fine = declared(&[("eks_control_plane", ComponentState::Cold)]);
        assert!(matches!(
            release_after_repair(&c, &mut s, &"other".into(), &fine, today),
            Err(RunError::NoRun(_))
        ));
        assert_eq!(s, before, "a refused release changes nothing");
    }
}
