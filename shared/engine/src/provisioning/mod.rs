//! Carrying out a decision's transitions through a [`ComponentDriver`]. There is one
//! implementation of a run, [`run`]: pure changes of the state, one step at a time.
//! The Step Functions provisioner performs those steps one Lambda call at a time;
//! [`execute`] performs the very same steps in one go, for the simulator. The readiness
//! rule and the status-check limit are shared by both.

pub mod run;

use chrono::NaiveDate;

use crate::config::Config;
use crate::decision::{Decision, Event};
use crate::model::{ComponentId, Transition, TransitionKind};
use crate::ports::{Apply, ComponentDriver, DriverError, DriverStatus, LevelChangeRequested};
use crate::state::{RunFailure, SystemState};

/// How many `status` checks a step may take before it counts as failed: with the state
/// machine's 30 s wait, an hour. Each kind has its own limit ([`status_checks_for`]);
/// this one is the simulator's.
pub const MAX_STATUS_CHECKS: u32 = 120;

/// The state machine's wait between two status checks (`Wait` in provision.asl.json).
pub const CHECK_INTERVAL_SECONDS: u32 = 30;

/// How many status checks `component`'s kind may take: its readiness limit (an RDS
/// start takes 10+ minutes, a CloudFormation stack longer) over the check interval.
pub fn status_checks_for(component: &crate::config::Component) -> u32 {
    (component.driver.as_kind().readiness_minutes() * 60).div_ceil(CHECK_INTERVAL_SECONDS).max(1)
}

/// Whether a component reached its target, from the driver's status after `checks`
/// earlier checks: `Err` ends the step, with `TransitionFailed` or `TransitionTimedOut`.
/// The provision Lambda's Check and RollbackCheck steps and the simulator both decide
/// with this.
pub fn readiness(status: DriverStatus, checks: u32, max_checks: u32) -> Result<bool, StepFailure> {
    match status {
        DriverStatus::Ready => Ok(true),
        DriverStatus::Failed(why) => Err(StepFailure::Failed(why)),
        DriverStatus::InProgress if checks + 1 >= max_checks => {
            Err(StepFailure::TimedOut(format!("not there after {} checks", checks + 1)))
        }
        DriverStatus::InProgress => Ok(false),
    }
}

/// Why a step did not reach its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepFailure {
    /// The driver refused to start the change.
    Rejected(String),
    Failed(String),
    TimedOut(String),
}

impl StepFailure {
    /// The stable error name the state machine's Catch matches.
    pub fn error_type(&self) -> &'static str {
        match self {
            StepFailure::Rejected(_) => "TransitionRejected",
            StepFailure::Failed(_) => "TransitionFailed",
            StepFailure::TimedOut(_) => "TransitionTimedOut",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            StepFailure::Rejected(m) | StepFailure::Failed(m) | StepFailure::TimedOut(m) => m,
        }
    }
}

/// Asks the driver for `target`, then checks until it is there, as the state
/// machine's Start, Wait and Check states do (a transient error is checked again).
async fn drive<D: ComponentDriver>(driver: &D, request: Apply<'_>) -> Result<(), StepFailure> {
    let (component, target) = (request.component, request.target);
    driver.apply(request).await.map_err(|e| StepFailure::Rejected(e.to_string()))?;
    let mut checks = 0;
    loop {
        let status = match driver.status(component, target).await {
            Ok(status) => status,
            Err(DriverError::Transient(_)) => DriverStatus::InProgress,
            Err(e) => return Err(StepFailure::Failed(e.to_string())),
        };
        if readiness(status, checks, status_checks_for(component))? {
            return Ok(());
        }
        checks += 1;
    }
}

/// Carries out a decision in one go through the provisioning run the Lambda drives one
/// step per call ([`run`]): begin, then per transition start, drive, commit, then
/// finish; on the first failure, undo what was done, newest first, then fail. A run
/// that cannot begin, or whose undo fails, ends where the state machine would end it:
/// refused, or holding its lock (`RollbackFailed`) for an operator's release.
pub async fn execute<D: ComponentDriver>(
    config: &Config,
    state: &mut SystemState,
    decision: &Decision,
    driver: &D,
    today: NaiveDate,
) -> Vec<Event> {
    let now = today.and_hms_opt(6, 0, 0).unwrap_or_default().and_utc();
    let request = LevelChangeRequested::for_decision(decision);
    let id = &request.decision_id;
    let mut events = Vec::new();
    let failed = |t: &Transition, error: String| Event::TransitionFailed {
        component: t.component.clone(),
        transition: t.kind,
        error,
    };
    if let Err(e) = run::begin(state, &request, now) {
        if let Some(t) = request.transitions.first() {
            events.push(failed(t, e.to_string()));
        }
        return events;
    }
    let mut failure = None;
    for index in 0..request.transitions.len() {
        let outcome = match run::start_step(state, id, index, now) {
            Ok((t, target)) => match config.component(&t.component) {
                Some(c) => {
                    // As the provisioner does: HOT's capacity is read and kept before it
                    // is given up.
                    if run::saves_capacity(config, &t)
                        && let Ok(observed) = driver.observe(c).await
                    {
                        run::save_capacity(state, &t, observed.capacity);
                    }
                    let saved = run::saved_capacity(state, &c.id);
                    drive(driver, Apply { component: c, target, saved }).await.map_err(|f| (t, f))
                }
                None => Err((
                    t.clone(),
                    StepFailure::Rejected(format!("{} is not in the configuration", t.component)),
                )),
            },
            Err(e) => {
                let t = request.transitions[index].clone();
                Err((t, StepFailure::Rejected(e.to_string())))
            }
        };
        match outcome.and_then(|()| {
            run::commit_step(state, id, index, now)
                .map(|_| ())
                .map_err(|e| (request.transitions[index].clone(), StepFailure::Failed(e.to_string())))
        }) {
            Ok(()) => {}
            Err((t, f)) => {
                events.push(failed(&t, f.message().to_string()));
                failure = Some(RunFailure { error: f.error_type().into(), cause: f.message().to_string() });
                break;
            }
        }
    }
    let Some(failure) = failure else {
        events.extend(run::finish(state, id, now).unwrap_or_default());
        return events;
    };
    loop {
        match run::next_undo(state, id, failure.clone(), now) {
            Ok(Some((moved, target))) => {
                let driven = match config.component(&moved.component) {
                    // A refused step changed nothing: only the state is restored.
                    _ if !run::undo_needs_driver(state, id) => Ok(()),
                    Some(c) => {
                        let saved = run::saved_capacity(state, &c.id);
                        drive(driver, Apply { component: c, target, saved }).await
                    }
                    None => {
                        Err(StepFailure::Rejected(format!("{} is not in the configuration", moved.component)))
                    }
                };
                if let Err(f) = driven.and_then(|()| {
                    run::complete_undo(state, id, now)
                        .map(|_| ())
                        .map_err(|e| StepFailure::Failed(e.to_string()))
                }) {
                    // RollbackFailed: the run keeps its lock until an operator repairs
                    // the component and releases it.
                    events.push(failed(&moved, format!("rollback step failed: {}", f.message())));
                    return events;
                }
            }
            Ok(None) => break,
            Err(e) => {
                events.push(Event::TransitionFailed {
                    component: ComponentId::new("-"),
                    transition: TransitionKind::Deploy,
                    error: format!("rollback cannot go on: {e}"),
                });
                return events;
            }
        }
    }
    match run::fail(config, state, id, now) {
        Ok((_, more)) => events.extend(more),
        Err(e) => events.push(Event::TransitionFailed {
            component: ComponentId::new("-"),
            transition: TransitionKind::Deploy,
            error: format!("rollback cannot end: {e}"),
        }),
    }
    events
}
