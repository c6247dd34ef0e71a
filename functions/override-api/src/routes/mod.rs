//! The routes, one file per group, and what they share: reading the state, changing it
//! with an audit record, the engine's view of today, and the engine's state parts as
//! the API shows them (`revscale-api`'s types).

pub(crate) mod cash;
pub(crate) mod drain;
pub(crate) mod operations;
pub(crate) mod overrides;
pub(crate) mod pending;
pub(crate) mod status;

use chrono::{DateTime, NaiveDate, Utc};
use revscale_api::{BreakerState, BreakerView, Evaluation, RunwayView};
use revscale_aws::lambda::record_decision_id;
use revscale_engine::approval::{self, Approvable, ApprovalRefused};
use revscale_engine::evaluation::{EvaluationOutcome, billed_history, production_history, run_evaluation_on};
use revscale_engine::ports::{AuditRecord, EventBus, Notifier, Store, StoreError, Versioned, Written};
use revscale_engine::runway::Runway;
use revscale_engine::state::BreakerStatus;
use revscale_engine::{Config, Decision, Event, Inputs, SystemState, evaluate};

use crate::context::{ApiError, Ctx, Deps, MAX_REASON_CHARS, request_tag};

/// The one way a route approves anything: the engine's two-person gate
/// ([`revscale_engine::approval::approve`]), with its refusals as the API answers them:
/// the requester approving is a 403, anything else stale or repeated a 409.
fn approve_as<A: Approvable + ?Sized>(
    item: &mut A,
    deps_config: &Config,
    ctx: &Ctx<'_>,
    presented_id: &str,
    today: NaiveDate,
) -> Result<(), ApiError> {
    approval::approve(item, &ctx.caller.person, presented_id, deps_config, today).map_err(|refused| {
        match refused {
            ApprovalRefused::SamePerson { .. } if ctx.caller.principal != ctx.caller.person => {
                ApiError::Forbidden(format!(
                    "{refused} ({} signed as {}, and persons are compared, not principals)",
                    ctx.caller.person, ctx.caller.principal
                ))
            }
            ApprovalRefused::SamePerson { .. } | ApprovalRefused::Indistinct { .. } => {
                ApiError::Forbidden(refused.to_string())
            }
            other => ApiError::Conflict(other.to_string()),
        }
    })
}

fn checked_reason(reason: &str) -> Result<String, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::BadRequest(format!(
            "field 'reason': required, at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(reason.to_string())
}

async fn load<S: Store>(
    config: &Config,
    store: &S,
    today: NaiveDate,
) -> Result<(SystemState, Option<u64>), ApiError> {
    Ok(match store.load_state().await? {
        Some(Versioned { value, version }) => (value, Some(version)),
        None => (SystemState::initial(config, today), None),
    })
}

/// Applies `edit` to the current state and stores it with an audit record; retries
/// on a concurrent write (the edit is re-applied to the fresh state).
async fn change<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    ctx: &Ctx<'_>,
    kind: &str,
    what: &str,
    edit: impl Fn(&mut SystemState) -> Result<(), ApiError>,
) -> Result<SystemState, ApiError> {
    change_with_events(deps, store, ctx, kind, what, |s| edit(s).map(|()| Vec::new())).await
}

/// Drops the overrides that can no longer act (cancelled, rejected, or past their last
/// day): the audit trail keeps them, and the state item stays small.
fn prune_closed_overrides(state: &mut SystemState, today: NaiveDate) {
    state.overrides.retain(|o| !o.cancelled && o.until >= today);
}

/// [`change`], for an edit whose consequences (the breaker opening...) are events the
/// audit record keeps.
async fn change_with_events<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    ctx: &Ctx<'_>,
    kind: &str,
    what: &str,
    edit: impl Fn(&mut SystemState) -> Result<Vec<Event>, ApiError>,
) -> Result<SystemState, ApiError> {
    // Time first, so the trail sorts by time; the request's tag makes it unique.
    let id = format!("{}-{kind}-{}", ctx.now.format("%Y-%m-%dT%H:%M:%S%.3fZ"), request_tag(ctx.request_id));
    for _ in 0..3 {
        let (mut state, version) = load(&deps.config, store, deps.today(ctx.now)).await?;
        state.settle_mode(&deps.config);
        let events = edit(&mut state)?;
        prune_closed_overrides(&mut state, deps.today(ctx.now));
        let record = AuditRecord {
            id: id.clone(),
            at: ctx.now,
            kind: kind.into(),
            actor: ctx.caller.principal.clone(),
            decision: None,
            events,
            note: what.into(),
            state_version: None,
        };
        match store.record_decision(&record, &state, version).await {
            Ok(Written::Created) => {
                tracing::info!(actor = %ctx.caller.principal, person = %ctx.caller.person, kind, what, audit_id = %id, "change recorded");
                return Ok(state);
            }
            Ok(Written::AlreadyExists) => {
                return Err(ApiError::Conflict(format!(
                    "request {} was already applied (audit record {id}); nothing was changed again",
                    ctx.request_id
                )));
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("the state kept changing under this request; retry".into()))
}

/// The state, and what the engine would decide on it today.
async fn plan<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    now: DateTime<Utc>,
) -> Result<(SystemState, Decision), ApiError> {
    let (state, decision, _) = plan_with_runway(deps, store, now).await?;
    Ok((state, decision))
}

/// [`plan`], and the runway as the guard sees it today (when the configuration has a
/// runway section).
async fn plan_with_runway<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    now: DateTime<Utc>,
) -> Result<(SystemState, Decision, Option<RunwayView>), ApiError> {
    let (state, _) = load(&deps.config, store, deps.today(now)).await?;
    let today = deps.today(now);
    // The same production cost as the evaluator's: Cost Explorer plus external bills.
    let billed =
        billed_history(&deps.config, store, today).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let history = production_history(&deps.config, &state, &billed);
    let decision = evaluate(&Inputs { config: &deps.config, state: &state, history: &history }, today);
    let runway = runway_view(&deps.config, &state, &history, today);
    Ok((state, decision, runway))
}

/// The runway for `GET /status` and `POST /cash`.
fn runway_view(
    config: &revscale_engine::Config,
    state: &SystemState,
    history: &revscale_engine::History,
    today: NaiveDate,
) -> Option<RunwayView> {
    let min_months = config.runway.as_ref()?.min_months;
    let set = state.cash.clone();
    Some(match revscale_engine::rules::runway(config, state, history, today) {
        Some(Runway::Known { cash, net_burn, months, .. }) => RunwayView {
            min_months,
            months: Some(months),
            cash: Some(cash),
            net_burn: Some(net_burn),
            set,
            unknown_because: None,
        },
        Some(Runway::Unknown { why }) => RunwayView {
            min_months,
            months: None,
            cash: None,
            net_burn: None,
            set,
            unknown_because: Some(why),
        },
        None => RunwayView {
            min_months,
            months: None,
            cash: None,
            net_burn: None,
            set,
            unknown_because: Some(format!("no revenue and cost snapshot for {today} yet")),
        },
    })
}

/// An approval the engine acts on at once: evaluate now rather than at the next
/// schedule, through the same use case as the evaluator.
async fn evaluate_now<S: Store, B: EventBus, N: Notifier>(
    deps: &Deps<S, B, N>,
    store: &S,
    now: DateTime<Utc>,
) -> Result<Evaluation, ApiError> {
    let outcome = run_evaluation_on(&deps.config, store, &deps.bus, &deps.notifier, now, deps.today(now))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(match outcome {
        EvaluationOutcome::Recorded { decision, published, .. } => {
            record_decision_id(&decision.id);
            Evaluation::Recorded {
                decision_id: decision.id,
                from_level: decision.from_level,
                to_level: decision.to_level,
                outcome: decision.outcome,
                published,
                reasons: decision.reasons,
            }
        }
        EvaluationOutcome::Replay { decision_id, republished } => {
            record_decision_id(&decision_id);
            Evaluation::Replay { decision_id, published: republished }
        }
    })
}

fn breaker_view(config: &Config, state: &SystemState, today: NaiveDate) -> BreakerView {
    BreakerView {
        consecutive_failures: state.breaker.consecutive_failures,
        opened_on: state.breaker.opened_on,
        state: match state.breaker.status(config, today) {
            BreakerStatus::Closed => BreakerState::Closed,
            BreakerStatus::Open { until } => BreakerState::Open { until },
            BreakerStatus::HalfOpen => BreakerState::HalfOpen,
        },
    }
}
