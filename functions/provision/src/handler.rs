//! The provisioner: one step of a provisioning run per call, as the state machine in
//! `infra/statemachine/provision.asl.json` drives it. Each step loads the state, applies
//! one pure change from `revscale_engine::provisioning::run`, stores it under its version with an audit
//! record whose id names the step (so a retried call writes nothing twice), and only
//! then calls the driver.

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use revscale_aws::SdkConfig;
use revscale_aws::drivers::AwsDrivers;
use revscale_aws::drivers::eks_cluster::ClusterAccess;
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::env::{EnvError, ScheduleZone, Vars};
use revscale_aws::kubernetes::TestEndpoint;
use revscale_aws::lambda::{FromEnv, FunctionError, record_decision_id};
use revscale_aws::metrics;
use revscale_aws::publish::{EventBridgeBus, SnsNotifier};
use revscale_aws::runtime_config::ConfigSource;
use revscale_engine::config::Component;
use revscale_engine::decision::Event;
use revscale_engine::model::{ComponentState, Transition};
use revscale_engine::ports::{
    Alert, AuditRecord, EventBus, LEVEL_CHANGED, LevelChangeRequested, Notifier, Store, StoreError, Versioned,
};
use revscale_engine::ports::{Apply, ComponentDriver, DriverError, DriverStatus, Written};
use revscale_engine::provisioning::run::{self, RunError};
use revscale_engine::provisioning::{self, StepFailure};
use revscale_engine::state::RunFailure;
use revscale_engine::state::SystemState;
use revscale_engine::{Config, DecisionId};
use serde::Deserialize;
use serde_json::{Value, json};

/// What the state machine passes; `now` is `$$.State.EnteredTime`.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    Begin {
        request: LevelChangeRequested,
        now: DateTime<Utc>,
    },
    Start {
        decision_id: DecisionId,
        index: usize,
        now: DateTime<Utc>,
    },
    Check {
        decision_id: DecisionId,
        index: usize,
        #[serde(default)]
        checks: u32,
        now: DateTime<Utc>,
    },
    Commit {
        decision_id: DecisionId,
        index: usize,
        now: DateTime<Utc>,
    },
    Finish {
        decision_id: DecisionId,
        now: DateTime<Utc>,
    },
    RollbackStart {
        decision_id: DecisionId,
        error: StepError,
        now: DateTime<Utc>,
    },
    RollbackCheck {
        decision_id: DecisionId,
        #[serde(default)]
        checks: u32,
        now: DateTime<Utc>,
    },
    Fail {
        decision_id: DecisionId,
        error: StepError,
        now: DateTime<Utc>,
    },
    /// The run can neither finish nor roll back: it keeps its lock, and a person must
    /// repair it. Says so, with what stands where.
    Stuck {
        decision_id: DecisionId,
        error: StepError,
        now: DateTime<Utc>,
    },
}

/// A caught error, as Step Functions hands it to a Catch's ResultPath.
#[derive(Debug, Clone, Deserialize)]
pub struct StepError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl StepError {
    /// A Lambda error's Cause is a JSON document; its message is what a person reads.
    fn message(&self) -> String {
        serde_json::from_str::<Value>(&self.cause)
            .ok()
            .and_then(|v| v["errorMessage"].as_str().map(String::from))
            .unwrap_or_else(|| self.cause.clone())
    }
}

pub struct Deps<S, D, B, N> {
    pub config: Config,
    pub store: S,
    pub driver: D,
    pub bus: B,
    pub notifier: N,
    /// Status checks allowed per step before it counts as timed out: `None` (the
    /// default), each kind's own limit (`provisioning::status_checks_for`).
    pub max_checks: Option<u32>,
    /// How old a recorded decision may be when its run begins (`MAX_DECISION_AGE_HOURS`).
    pub max_decision_age: chrono::Duration,
    /// The schedules' time zone (`SCHEDULE_TIMEZONE`), for the dates of changes.
    pub timezone: ScheduleZone,
}

impl Deps<DynamoStore, AwsDrivers, EventBridgeBus, SnsNotifier> {
    pub async fn on_aws(env: Env, sdk: &SdkConfig) -> Result<Self, FunctionError> {
        Ok(Deps {
            config: env.config.load(sdk).await?.config,
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), env.table_name),
            driver: AwsDrivers::new(sdk)
                .for_stack(env.stack_name)
                .with_kubernetes_endpoint(env.kubernetes_endpoint)
                .with_cluster_access(env.cluster_access),
            bus: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(sdk), env.event_bus_name),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(sdk), env.alert_topic_arn),
            max_checks: env.max_checks,
            max_decision_age: env.max_decision_age,
            timezone: env.timezone,
        })
    }
}

/// The default of `MAX_DECISION_AGE_HOURS`: a run begins seconds after its decision;
/// an event delivered hours later is a redelivery or a replay.
pub const DEFAULT_MAX_DECISION_AGE_HOURS: u32 = 6;

fn run_error(e: RunError) -> FunctionError {
    match e {
        RunError::LockHeld { .. } => FunctionError::LockHeld(e.to_string()),
        RunError::StaleDecision { .. } => FunctionError::StaleDecision(e.to_string()),
        RunError::NoRun(_) | RunError::OutOfOrder { .. } | RunError::Illegal(_) => {
            FunctionError::Internal(e.to_string())
        }
    }
}

/// A transient driver error is retried by the state machine; a refusal becomes the
/// step's own error.
fn driver_error(e: DriverError, refused: impl FnOnce(String) -> FunctionError) -> FunctionError {
    match e {
        DriverError::Transient(m) => FunctionError::Transient(m),
        DriverError::Rejected(m) | DriverError::Busy(m) => refused(m),
    }
}

fn store_error(e: StoreError) -> FunctionError {
    // A conflict means another writer moved the state: retrying reloads it.
    FunctionError::from(e)
}

async fn load<S: Store>(store: &S) -> Result<Versioned<SystemState>, FunctionError> {
    store
        .load_state()
        .await
        .map_err(store_error)?
        .ok_or_else(|| FunctionError::Internal("no state is stored yet: nothing to provision".into()))
}

async fn save<S: Store>(
    store: &S,
    state: &SystemState,
    version: u64,
    id: String,
    now: DateTime<Utc>,
    events: Vec<Event>,
    note: String,
) -> Result<(), FunctionError> {
    let record = AuditRecord {
        id,
        at: now,
        kind: "provisioning".into(),
        actor: "revscale-provisioner".into(),
        decision: None,
        events,
        note,
        state_version: None,
    };
    match store.record_decision(&record, state, Some(version)).await.map_err(store_error)? {
        Written::Created => Ok(()),
        // The record exists, so this call wrote no state. That is success only if the
        // record is this very step's, whose transaction wrote the state with it (a
        // retried call whose first attempt landed); a record of another write under
        // the same id means this step's state write never happened.
        Written::AlreadyExists => {
            let existing = store.audit_record(&record.id).await.map_err(store_error)?;
            match existing {
                Some(e) if e.kind == record.kind && e.note == record.note && e.events == record.events => {
                    Ok(())
                }
                _ => Err(FunctionError::Internal(format!(
                    "audit record {} exists but records another write: this step's state write did not happen",
                    record.id
                ))),
            }
        }
    }
}

fn component<'a>(
    config: &'a Config,
    id: &revscale_engine::ComponentId,
) -> Result<&'a revscale_engine::config::Component, FunctionError> {
    config.component(id).ok_or_else(|| FunctionError::Internal(format!("{id} is not in the configuration")))
}

/// Records the undo in progress as done, audited as `<decision>.undo.<n>.done`.
async fn complete_undo<S: Store>(
    store: &S,
    state: &mut SystemState,
    version: u64,
    decision_id: &DecisionId,
    now: DateTime<Utc>,
    timezone: ScheduleZone,
) -> Result<Transition, FunctionError> {
    let undone = state.provisioning.as_ref().map_or(0, |r| r.undone.len());
    let moved = run::complete_undo(state, decision_id, clock(timezone, now)).map_err(run_error)?;
    save(store, state, version, format!("{decision_id}.undo.{undone}.done"), now, vec![], moved.to_string())
        .await?;
    Ok(moved)
}

/// Whether a component reached `target`: the engine's readiness rule (the one the
/// simulator follows too), its failure named by the caller (`what` prefixes the
/// message: the transition, or the undo).
fn readiness(
    status: DriverStatus,
    checks: u32,
    max_checks: u32,
    what: &str,
    target: ComponentState,
    failed: fn(String) -> FunctionError,
    timed_out: fn(String) -> FunctionError,
) -> Result<bool, FunctionError> {
    provisioning::readiness(status, checks, max_checks).map_err(|f| match f {
        StepFailure::TimedOut(_) => timed_out(format!("{what}not {target} after {} checks", checks + 1)),
        other => failed(format!("{what}{}", other.message())),
    })
}

/// `now`, and its day in the schedule's time zone (`SCHEDULE_TIMEZONE`; UTC without it):
/// the provisioner dates what it changes as the evaluator dates its decisions.
fn clock(timezone: ScheduleZone, now: DateTime<Utc>) -> run::Clock {
    run::Clock { now, today: timezone.today(now) }
}

/// Asks the driver where `c` stands: whether it reached `target` within the allowed
/// checks, or an error of the step's kind (`failed`, `timed_out`) prefixed with `what`.
async fn reached<S, D: ComponentDriver, B, N>(
    deps: &Deps<S, D, B, N>,
    c: &Component,
    target: ComponentState,
    checks: u32,
    what: &str,
    failed: fn(String) -> FunctionError,
    timed_out: fn(String) -> FunctionError,
) -> Result<bool, FunctionError> {
    let status = match deps.driver.status(c, target).await {
        Ok(status) => status,
        // A throttled or timed-out read says nothing about the resource: it counts as
        // "not ready yet", within the check limit. Failing the step instead would let a
        // minute of throttling (the state machine's Transient retrier) delete a cluster
        // fifteen minutes into its creation, or leave a rollback holding the lock.
        Err(DriverError::Transient(m)) => {
            tracing::warn!(error = %m, checks, "status read failed transiently: not ready yet");
            DriverStatus::InProgress
        }
        Err(e) => return Err(driver_error(e, |m| failed(format!("{what}{m}")))),
    };
    let max_checks = deps.max_checks.unwrap_or_else(|| provisioning::status_checks_for(c));
    readiness(status, checks, max_checks, what, target, failed, timed_out)
}

/// Whether the driver reports the change towards `target` as started or done.
async fn under_way<D: ComponentDriver>(driver: &D, c: &Component, target: ComponentState) -> bool {
    matches!(driver.status(c, target).await, Ok(DriverStatus::InProgress | DriverStatus::Ready))
}

/// Records what happened in the audit trail without changing the state (it is written
/// back as it was, under its version). Best effort: the caller's outcome (a refusal, an
/// alert about a stuck run) stands whether or not the record could be written, and an
/// existing record means a retried call already wrote it.
async fn audit_only<S: Store, D, B, N>(
    deps: &Deps<S, D, B, N>,
    state: &SystemState,
    version: u64,
    id: String,
    now: DateTime<Utc>,
    note: String,
) {
    if let Err(e) = save(&deps.store, state, version, id.clone(), now, vec![], note).await {
        tracing::error!(error = %e, audit = %id, "the audit record could not be written");
    }
}

/// Refuses, before any lock, an event that does not name a recent decision revscale
/// recorded to execute exactly this, or that arrives in shadow mode; the operators
/// are told, since a refused event is either a replay or someone else's doing.
async fn verify<S: Store, D, B, N: Notifier>(
    deps: &Deps<S, D, B, N>,
    Versioned { value: state, version }: &Versioned<SystemState>,
    request: &LevelChangeRequested,
    now: DateTime<Utc>,
) -> Result<(), FunctionError> {
    let recorded = deps.store.audit_record(request.decision_id.as_str()).await.map_err(store_error)?;
    let mode = state.mode(&deps.config);
    let today = deps.timezone.today(now);
    let verdict =
        run::verify_request(request, recorded.as_ref(), mode, now, deps.max_decision_age).and_then(|()| {
            match recorded.as_ref().and_then(|r| r.decision.as_ref()) {
                // What the decision rested on may have changed since it was taken.
                Some(decision) => run::recheck(decision, state, &deps.config, today),
                None => Ok(()),
            }
        });
    let Err(refusal) = verdict else {
        return Ok(());
    };
    let alert = Alert {
        subject: format!("revscale: refused to provision {}", request.decision_id),
        message: format!(
            "A Level Change Requested event asked for L{} -> L{} ({} transition(s)) as decision {}.\n\
             Nothing was done, and no lock was taken: {refusal}.\n\
             If nobody on the team published it, check who may put events on the bus (CloudTrail: events:PutEvents).",
            request.from_level,
            request.to_level,
            request.transitions.len(),
            request.decision_id,
        ),
    };
    if let Err(e) = deps.notifier.notify(&alert).await {
        tracing::error!(error = %e, "the refusal alert could not be sent");
    }
    // The trail says so too: the state is written back unchanged (a store writes an
    // audit record only with the state), so no lock is taken.
    let note = format!("refused L{} -> L{}: {refusal}", request.from_level, request.to_level);
    audit_only(deps, state, *version, format!("{}.refused", request.decision_id), now, note).await;
    tracing::error!(%refusal, "provisioning request refused");
    Err(FunctionError::DecisionRefused(refusal.to_string()))
}

pub async fn handle<S: Store, D: ComponentDriver, B: EventBus, N: Notifier>(
    deps: &Deps<S, D, B, N>,
    event: LambdaEvent<Value>,
) -> Result<Value, FunctionError> {
    let action: Action = serde_json::from_value(event.payload)
        .map_err(|e| FunctionError::InvalidInput(format!("not a provisioning step: {e}")))?;
    record_decision_id(&action.decision_id());
    step(deps, action).await
}

impl Action {
    /// The run the step belongs to (the execution's name).
    pub fn decision_id(&self) -> &DecisionId {
        match self {
            Action::Begin { request, .. } => &request.decision_id,
            Action::Start { decision_id, .. }
            | Action::Check { decision_id, .. }
            | Action::Commit { decision_id, .. }
            | Action::Finish { decision_id, .. }
            | Action::RollbackStart { decision_id, .. }
            | Action::RollbackCheck { decision_id, .. }
            | Action::Fail { decision_id, .. }
            | Action::Stuck { decision_id, .. } => decision_id,
        }
    }
}

/// One state-machine step: each action is a function of its own below.
pub async fn step<S: Store, D: ComponentDriver, B: EventBus, N: Notifier>(
    deps: &Deps<S, D, B, N>,
    action: Action,
) -> Result<Value, FunctionError> {
    match action {
        Action::Begin { request, now } => begin(deps, request, now).await,
        Action::Start { decision_id, index, now } => start(deps, &decision_id, index, now).await,
        Action::Check { decision_id, index, checks, now: _ } => {
            check(deps, &decision_id, index, checks).await
        }
        Action::Commit { decision_id, index, now } => commit(deps, &decision_id, index, now).await,
        Action::Finish { decision_id, now } => finish(deps, &decision_id, now).await,
        Action::RollbackStart { decision_id, error, now } => {
            rollback_start(deps, &decision_id, error, now).await
        }
        Action::RollbackCheck { decision_id, checks, now } => {
            rollback_check(deps, &decision_id, checks, now).await
        }
        Action::Fail { decision_id, error, now } => fail(deps, &decision_id, error, now).await,
        Action::Stuck { decision_id, error, now } => stuck(deps, &decision_id, error, now).await,
    }
}

/// Takes the lock for a verified decision (or finds its own lock on a retry).
async fn begin<S: Store, D: ComponentDriver, B: EventBus, N: Notifier>(
    deps: &Deps<S, D, B, N>,
    request: LevelChangeRequested,
    now: DateTime<Utc>,
) -> Result<Value, FunctionError> {
    let timezone = deps.timezone;
    let loaded = load(&deps.store).await?;
    let Versioned { value: mut state, version } = loaded.clone();
    let id = request.decision_id.clone();
    let already = state.provisioning.as_ref().is_some_and(|r| {
        r.decision_id == id && r.committed == 0 && r.step_started_at.is_none() && r.failure.is_none()
    });
    // A retried Begin finds its own lock; it must ask for exactly what was begun.
    if let Some(run) = state.provisioning.as_ref().filter(|_| already)
        && (run.from_level, run.to_level, &run.transitions, run.cause)
            != (request.from_level, request.to_level, &request.transitions, request.cause)
    {
        return Err(FunctionError::DecisionRefused(format!(
            "decision {id} has begun with other transitions than this event's"
        )));
    }
    if !already {
        verify(deps, &loaded, &request, now).await?;
        run::begin(&mut state, &request, clock(timezone, now)).map_err(run_error)?;
        let note = format!(
            "L{} -> L{}: {} transition(s)",
            request.from_level,
            request.to_level,
            request.transitions.len()
        );
        save(&deps.store, &state, version, format!("{id}.begin"), now, vec![], note).await?;
    }
    tracing::info!(transitions = request.transitions.len(), "provisioning begins");
    Ok(json!({"decision_id": id, "index": 0, "count": request.transitions.len()}))
}

/// Marks step `index` as started, then asks the driver for it.
async fn start<S: Store, D: ComponentDriver, B: EventBus, N: Notifier>(
    deps: &Deps<S, D, B, N>,
    decision_id: &DecisionId,
    index: usize,
    now: DateTime<Utc>,
) -> Result<Value, FunctionError> {
    let config = &deps.config;
    let timezone = deps.timezone;
    let Versioned { value: mut state, version } = load(&deps.store).await?;
    let retried = run::step(&state, decision_id, index)
        .ok()
        .and_then(|(t, _)| state.components.get(&t.component).map(|r| r.in_flight == Some(t.kind)))
        .unwrap_or(false);
    let (t, target) =
        run::start_step(&mut state, decision_id, index, clock(timezone, now)).map_err(run_error)?;
    let c = component(config, &t.component)?;
    if run::saves_capacity(config, &t) {
        // HOT's capacity is read before it is given up, and stored with the start mark,
        // so that HOT (or this step's undo) restores exactly what ran. An unreadable
        // resource stops the step here, before anything changed.
        let observed = deps
            .driver
            .observe(c)
            .await
            .map_err(|e| driver_error(e, |m| FunctionError::TransitionRejected(format!("{t}: {m}"))))?;
        if run::save_capacity(&mut state, &t, observed.capacity) {
            tracing::info!(component = %t.component, capacity = ?observed.capacity, "HOT capacity saved");
        }
    }
    save(&deps.store, &state, version, format!("{decision_id}.start.{index}"), now, vec![], t.to_string())
        .await?;
    let saved = run::saved_capacity(&state, &t.component);
    match deps.driver.apply(Apply { component: c, target, saved }).await {
        Ok(()) => {}
        // A retried call whose first attempt was accepted (and then timed out) is
        // refused because that change is under way: EKS takes one update at a
        // time. Only a "busy" refusal of a retried call can mean that, and the
        // resource, not the refusal, says whether anything changed.
        Err(DriverError::Busy(m)) if retried && under_way(&deps.driver, c, target).await => {
            tracing::warn!(index, transition = %t, refusal = %m, "retried start refused: the first call's change is under way");
        }
        // A retried call refused as busy: the first call may have been accepted even
        // though the resource does not show it yet. That is no proof that nothing
        // changed, so it is a failure (its undo drives the resource back), not a
        // refusal (whose undo restores the state alone).
        Err(DriverError::Busy(m)) if retried => {
            return Err(FunctionError::TransitionFailed(format!(
                "{t}: retried start refused ({m}) and its first call may have been accepted"
            )));
        }
        Err(e) => {
            return Err(driver_error(e, |m| FunctionError::TransitionRejected(format!("{t}: {m}"))));
        }
    }
    tracing::info!(index, transition = %t, "step started");
    Ok(json!({"component": t.component, "target": target, "checks": 0}))
}

/// Asks the driver whether step `index` reached its target.
async fn check<S: Store, D: ComponentDriver, B: EventBus, N: Notifier>(
    deps: &Deps<S, D, B, N>,
    decision_id: &DecisionId,
    index: usize,
    checks: u32,
) -> Result<Value, FunctionError> {
    let config = &deps.config;
    let Versioned { value: state, .. } = load(&deps.store).await?;
    let (t, target) = run::step(&state, decision_id, index).map_err(run_error)?;
    let c = component(config, &t.component)?;
    let what = format!("{t}: ");
    let ready = reached(
        deps,
        c,
        target,
        checks,
        &what,
        FunctionError::TransitionFailed,
        FunctionError::TransitionTimedOut,
    )
    .await?;
    Ok(json!({"ready": ready, "checks": checks + 1}))
}

/// Records step `index` as done.
async fn commit<S: Store, D: ComponentDriver, B: EventBus, N: Notifier>(
    deps: &Deps<S, D, B, N>,
    decision_id: &DecisionId,
    index: usize,
    now: DateTime<Utc>,
) -> Result<Value, FunctionError> {
    let timezone = deps.timezone;
    let Versioned { value: mut state, version } = load(&deps.store).await?;
    let (t, seconds) =
        run::commit_step(&mut state, decision_id, index, clock(timezone, now)).map_err(run_error)?;
    save(&deps.store, &state, version, format!("{decision_id}.commit.{index}"), now, vec![], t.to_string())
        .await?;
    println!("{}", metrics::provisioning_duration(now, t.component.as_str(), seconds));
    let record = state.components.get(&t.component).map(|r| r.state);
    if let Some(s) = record {
        println!("{}", metrics::activation_state(now, t.component.as_str(), s));
    }
    tracing::info!(index, transition = %t, seconds, "step committed");
    // A bare number: the state machine stores it as the next index.
    Ok(json!(index + 1))
}

/// Commits the new level, releases the lock and announces the change.
async fn finish<S: Store, D: ComponentDriver, B: EventBus, N: Notifier>(
    deps: &Deps<S, D, B, N>,
    decision_id: &DecisionId,
    now: DateTime<Utc>,
) -> Result<Value, FunctionError> {
    let timezone = deps.timezone;
    let Versioned { value: mut state, version } = load(&deps.store).await?;
    if state.provisioning.as_ref().is_none_or(|r| r.decision_id != *decision_id) {
        // A retried call after the run was closed.
        return Ok(json!({"level": state.level}));
    }
    // Level Changed goes out before the write that closes the run, not after: a
    // failed publish then leaves the run open, and the state machine's retry of Finish
    // publishes again. Published after the close, a failure would be lost, since a
    // retry finds the run closed and returns. A publish repeated because the write
    // failed afterwards is harmless: the event names its decision id.
    if let Some(run) = &state.provisioning {
        let detail = json!({
            "decision_id": decision_id,
            "from_level": run.from_level,
            "to_level": run.to_level,
            "cause": run.cause,
            "transitions": run.transitions,
            "seconds": (now - run.started_at).num_seconds(),
        });
        deps.bus
            .publish(LEVEL_CHANGED, &detail)
            .await
            .map_err(|e| FunctionError::Transient(e.to_string()))?;
    }
    let events = run::finish(&mut state, decision_id, clock(timezone, now)).map_err(run_error)?;
    save(&deps.store, &state, version, format!("{decision_id}.finish"), now, events.clone(), String::new())
        .await?;
    for (id, record) in &state.components {
        println!("{}", metrics::activation_state(now, id.as_str(), record.state));
    }
    tracing::info!(level = state.level, "provisioning finished");
    Ok(json!({"level": state.level}))
}

/// Begins the next undo of a failed run, newest first; `done` once nothing is left.
async fn rollback_start<S: Store, D: ComponentDriver, B: EventBus, N: Notifier>(
    deps: &Deps<S, D, B, N>,
    decision_id: &DecisionId,
    error: StepError,
    now: DateTime<Utc>,
) -> Result<Value, FunctionError> {
    let config = &deps.config;
    let timezone = deps.timezone;
    let Versioned { value: mut state, version } = load(&deps.store).await?;
    let failure = RunFailure { error: error.error.clone(), cause: error.message() };
    let undone = state.provisioning.as_ref().map_or(0, |r| r.undone.len());
    let next = run::next_undo(&mut state, decision_id, failure, clock(timezone, now)).map_err(run_error)?;
    if let Some((t, target)) = &next
        && !run::undo_needs_driver(&state, decision_id)
    {
        // Undo never creates: a refused step changed nothing, and a drain's half-done
        // removal must not be driven back (that would create the cluster it was
        // deleting). Only the state is restored, whatever the resource says, and the
        // driver is not asked (the simulator follows the same rule).
        let moved = complete_undo(&deps.store, &mut state, version, decision_id, now, timezone).await?;
        tracing::warn!(undo = %moved, "state restored without a driver call");
        return Ok(json!({"done": false, "component": t.component, "target": target, "checks": 0}));
    }
    save(
        &deps.store,
        &state,
        version,
        format!("{decision_id}.undo.{undone}.start"),
        now,
        vec![],
        error.message(),
    )
    .await?;
    let Some((t, target)) = next else { return Ok(json!({"done": true})) };
    let c = component(config, &t.component)?;
    let saved = run::saved_capacity(&state, &t.component);
    deps.driver
        .apply(Apply { component: c, target, saved })
        .await
        .map_err(|e| driver_error(e, |m| FunctionError::RollbackFailed(format!("undoing {t}: {m}"))))?;
    tracing::warn!(undo = %t, %target, "rolling back");
    Ok(json!({"done": false, "component": t.component, "target": target, "checks": 0}))
}

/// Asks the driver whether the undo in progress reached its target.
async fn rollback_check<S: Store, D: ComponentDriver, B: EventBus, N: Notifier>(
    deps: &Deps<S, D, B, N>,
    decision_id: &DecisionId,
    checks: u32,
    now: DateTime<Utc>,
) -> Result<Value, FunctionError> {
    let config = &deps.config;
    let timezone = deps.timezone;
    let Versioned { value: mut state, version } = load(&deps.store).await?;
    let Some((t, target)) = run::current_undo(&state, decision_id).map_err(run_error)? else {
        return Ok(json!({"ready": true, "checks": checks + 1}));
    };
    if !run::undo_needs_driver(&state, decision_id) {
        // The same rule as RollbackStart's: such an undo is the state alone.
        complete_undo(&deps.store, &mut state, version, decision_id, now, timezone).await?;
        return Ok(json!({"ready": true, "checks": checks + 1}));
    }
    let c = component(config, &t.component)?;
    let what = format!("undoing {t}: ");
    let ready =
        reached(deps, c, target, checks, &what, FunctionError::RollbackFailed, FunctionError::RollbackFailed)
            .await?;
    if ready {
        complete_undo(&deps.store, &mut state, version, decision_id, now, timezone).await?;
    }
    Ok(json!({"ready": ready, "checks": checks + 1}))
}

/// Closes a rolled-back run as a failure (the breaker counts it) and alerts.
async fn fail<S: Store, D: ComponentDriver, B: EventBus, N: Notifier>(
    deps: &Deps<S, D, B, N>,
    decision_id: &DecisionId,
    error: StepError,
    now: DateTime<Utc>,
) -> Result<Value, FunctionError> {
    let config = &deps.config;
    let timezone = deps.timezone;
    let Versioned { value: mut state, version } = load(&deps.store).await?;
    if state.provisioning.as_ref().is_none_or(|r| r.decision_id != *decision_id) {
        return Ok(json!({"error": error.error, "recorded": false}));
    }
    let (run, events) =
        run::fail(config, &mut state, decision_id, clock(timezone, now)).map_err(run_error)?;
    let failure =
        run.failure.clone().unwrap_or(RunFailure { error: error.error.clone(), cause: error.message() });
    save(
        &deps.store,
        &state,
        version,
        format!("{decision_id}.fail"),
        now,
        events.clone(),
        failure.cause.clone(),
    )
    .await?;
    let undone: Vec<String> = run.undone.iter().map(ToString::to_string).collect();
    let alert = Alert {
        subject: format!(
            "revscale: provisioning {decision_id} failed ({}) and was rolled back",
            failure.error
        ),
        message: format!(
            "Decision {decision_id} (L{} -> L{}) failed with {}: {}\n\
             Rolled back, newest first: {}.\nEvery component is back in its prior state; the level stays L{}.\n\
             Circuit breaker: {} consecutive failure(s){}.",
            run.from_level,
            run.to_level,
            failure.error,
            failure.cause,
            if undone.is_empty() { "nothing had completed".to_string() } else { undone.join("; ") },
            state.level,
            state.breaker.consecutive_failures,
            state.breaker.opened_on.map(|d| format!(", open since {d}")).unwrap_or_default(),
        ),
    };
    deps.notifier.notify(&alert).await.map_err(|e| FunctionError::Transient(e.to_string()))?;
    tracing::error!(error = %failure.error, cause = %failure.cause, "provisioning failed and was rolled back");
    Ok(json!({"error": failure.error, "cause": failure.cause, "recorded": true}))
}

/// Alerts the operators about a run that can neither finish nor roll back.
async fn stuck<S: Store, D: ComponentDriver, B: EventBus, N: Notifier>(
    deps: &Deps<S, D, B, N>,
    decision_id: &DecisionId,
    error: StepError,
    now: DateTime<Utc>,
) -> Result<Value, FunctionError> {
    let Versioned { value: state, version } = load(&deps.store).await?;
    let alert = stuck_alert(&state, decision_id, &error);
    deps.notifier.notify(&alert).await.map_err(|e| FunctionError::Transient(e.to_string()))?;
    // Audited as well as alerted: the trail shows the run stuck, and why, next to its
    // steps (the state is written back unchanged).
    let note = format!("{}\n{}", alert.subject, alert.message);
    audit_only(deps, &state, version, format!("{decision_id}.stuck"), now, note).await;
    tracing::error!(error = %error.error, cause = %error.message(), "provisioning is stuck: a person must repair and release it");
    Ok(json!({"alerted": true}))
}

/// The alert for a run that keeps its lock: what failed, where every component the
/// run touched stands according to the state, and how to release it.
fn stuck_alert(state: &SystemState, decision_id: &DecisionId, error: &StepError) -> Alert {
    let run = state.provisioning.as_ref().filter(|r| r.decision_id == *decision_id);
    let touched: Vec<String> = run
        .map(|r| {
            let mut ids: Vec<&revscale_engine::ComponentId> =
                r.transitions.iter().map(|t| &t.component).collect();
            ids.dedup();
            ids.iter().map(|id| format!("{id}: {}", state.component_state(id))).collect()
        })
        .unwrap_or_default();
    if run.is_none() {
        return Alert {
            subject: format!("revscale: provisioning {decision_id} did not start ({})", error.error),
            message: format!(
                "Decision {decision_id} could not begin: {}: {}\nIt holds no lock and changed nothing; \
                 the next evaluation decides again.",
                error.error,
                error.message(),
            ),
        };
    }
    Alert {
        subject: format!(
            "revscale: provisioning {decision_id} is stuck ({}) and holds its lock",
            error.error
        ),
        message: format!(
            "Decision {decision_id} could neither finish nor roll back: {}: {}\n\
             The state says: {}.\n\
             No other level change can run until a person checks each component in AWS, repairs it, \
             and releases the run: revscale provisioning release {decision_id} --component NAME=STATE ... --reason TEXT",
            error.error,
            error.message(),
            if touched.is_empty() { "no run in progress".to_string() } else { touched.join(", ") },
        ),
    }
}

/// Everything the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Env {
    pub table_name: String,
    pub event_bus_name: String,
    pub alert_topic_arn: String,
    /// `MAX_STATUS_CHECKS`, which replaces every kind's own limit when set (the
    /// emulator tests compress the waits with it).
    pub max_checks: Option<u32>,
    /// `MAX_DECISION_AGE_HOURS` (default 6).
    pub max_decision_age: chrono::Duration,
    /// `SCHEDULE_TIMEZONE`, parsed at cold start.
    pub timezone: ScheduleZone,
    /// `REVSCALE_STACK_NAME`: what the drivers tag their resources with.
    pub stack_name: Option<String>,
    /// `REVSCALE_KUBERNETES_ENDPOINT`: the emulator tests' Kubernetes API (loopback only).
    pub kubernetes_endpoint: Option<TestEndpoint>,
    /// `PROVISION_ROLE_ARN` and `EVALUATE_ROLE_ARN`: the roles that get access entries
    /// on the cluster revscale creates.
    pub cluster_access: ClusterAccess,
    pub config: ConfigSource,
}

impl FromEnv for Env {
    fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Env, EnvError> {
        Ok(Env {
            table_name: vars.required("TABLE_NAME")?,
            event_bus_name: vars.required("EVENT_BUS_NAME")?,
            alert_topic_arn: vars.required("ALERT_TOPIC_ARN")?,
            max_checks: match vars.optional("MAX_STATUS_CHECKS") {
                None => None,
                Some(_) => Some(vars.parsed("MAX_STATUS_CHECKS", None)?),
            },
            max_decision_age: chrono::Duration::hours(i64::from(
                vars.parsed("MAX_DECISION_AGE_HOURS", Some(DEFAULT_MAX_DECISION_AGE_HOURS))?,
            )),
            timezone: ScheduleZone::from_vars(vars)?,
            stack_name: vars.optional("REVSCALE_STACK_NAME"),
            kubernetes_endpoint: TestEndpoint::from_vars(vars)?,
            cluster_access: ClusterAccess::from_vars(vars),
            // The provisioner acts on the stack's cluster and roles: it needs them.
            config: {
                vars.required("EKS_CLUSTER_NAME")?;
                ConfigSource::from_vars(vars)?
            },
        })
    }
}
