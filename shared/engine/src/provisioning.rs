//! Carrying out a decision's transitions through a [`ComponentDriver`], with rollback
//! of completed steps on failure, and the bookkeeping of success and failure (level,
//! breaker). The Step Functions provisioner performs the same steps one Lambda call at a
//! time; the simulator runs them here in one go.

use std::future::Future;

use chrono::{Days, NaiveDate};

use crate::config::{Component, Config};
use crate::decision::{Decision, Event};
use crate::state::{BreakerStatus, ComponentState, SystemState, Transition};

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
    /// The change cannot be made; the plan must be rolled back.
    #[error("{0}")]
    Rejected(String),
}

/// The port every component driver implements (EKS cluster, node group, SSM flag...).
/// `apply` starts the change and returns quickly; `status` reports progress. Waiting
/// happens in the caller (the state machine's Wait state), never inside a driver.
pub trait ComponentDriver {
    fn apply(
        &self,
        component: &Component,
        target: ComponentState,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;
    fn status(
        &self,
        component: &Component,
        target: ComponentState,
    ) -> impl Future<Output = Result<DriverStatus, DriverError>> + Send;
}

/// How many `status` checks a step may take before it counts as failed.
pub const MAX_STATUS_CHECKS: u32 = 60;

async fn run_step<D: ComponentDriver>(
    driver: &D,
    component: &Component,
    target: ComponentState,
) -> Result<(), String> {
    driver.apply(component, target).await.map_err(|e| e.to_string())?;
    for _ in 0..MAX_STATUS_CHECKS {
        match driver.status(component, target).await {
            Ok(DriverStatus::Ready) => return Ok(()),
            Ok(DriverStatus::InProgress) | Err(DriverError::Transient(_)) => continue,
            Ok(DriverStatus::Failed(why)) => return Err(why),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("{} did not reach {target} after {MAX_STATUS_CHECKS} checks", component.id))
}

/// Runs `decision.transitions` in order. On the first failure, undoes every completed
/// transition newest first, so no component is left half-way; then records the
/// failure. On success commits the level and resets the breaker.
pub async fn execute<D: ComponentDriver>(
    config: &Config,
    state: &mut SystemState,
    decision: &Decision,
    driver: &D,
    today: NaiveDate,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut done: Vec<Transition> = Vec::new();
    for t in &decision.transitions {
        let Some(component) = config.component(&t.component) else {
            events.push(failed(t, format!("{} is not in the configuration", t.component)));
            events.extend(undo(config, state, &done, driver, today).await);
            events.extend(record_failure(config, state, today));
            return events;
        };
        if let Err(e) = state.start(t, today) {
            events.push(failed(t, e.to_string()));
            events.extend(undo(config, state, &done, driver, today).await);
            events.extend(record_failure(config, state, today));
            return events;
        }
        match run_step(driver, component, t.kind.to_state()).await {
            Ok(()) => {
                // start() succeeded, so the component is in t's transitional state.
                let _ = state.commit(t, today);
                done.push(t.clone());
            }
            Err(why) => {
                let _ = state.abort(t, today);
                events.push(failed(t, why));
                events.extend(undo(config, state, &done, driver, today).await);
                events.extend(record_failure(config, state, today));
                return events;
            }
        }
    }
    events.extend(record_success(state, decision, today));
    events
}

fn failed(t: &Transition, error: String) -> Event {
    Event::TransitionFailed { component: t.component.clone(), transition: t.kind, error }
}

async fn undo<D: ComponentDriver>(
    config: &Config,
    state: &mut SystemState,
    done: &[Transition],
    driver: &D,
    today: NaiveDate,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut undone = Vec::new();
    for t in done.iter().rev() {
        let inverse = Transition { component: t.component.clone(), kind: t.kind.inverse() };
        let Some(component) = config.component(&t.component) else {
            continue;
        };
        if state.start(&inverse, today).is_err() {
            continue;
        }
        match run_step(driver, component, inverse.kind.to_state()).await {
            Ok(()) => {
                let _ = state.commit(&inverse, today);
                undone.push(inverse);
            }
            Err(why) => {
                // The component stays where the forward step left it (a stable state),
                // and the failure is reported for a human.
                let _ = state.abort(&inverse, today);
                events.push(failed(&inverse, format!("rollback step failed: {why}")));
            }
        }
    }
    events.insert(0, Event::Rollback { undone });
    events
}

/// A plan completed: the new level holds from today and the breaker closes.
pub fn record_success(state: &mut SystemState, decision: &Decision, today: NaiveDate) -> Vec<Event> {
    state.breaker = Default::default();
    state.pending_approval = None;
    if decision.to_level == state.level {
        return Vec::new();
    }
    let from = state.level;
    state.level = decision.to_level;
    state.level_since = today;
    vec![Event::LevelChanged {
        from,
        to: decision.to_level,
        cause: decision.cause.unwrap_or(crate::decision::Cause::Growth),
    }]
}

/// A plan failed and was rolled back: one more consecutive failure; the breaker opens
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
