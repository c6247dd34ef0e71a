//! `/drain`: the way out. An operator asks for everything revscale made to go COLD at
//! L0; an approver other than them approves, and the engine evaluates at once; the
//! provisioner then takes the components down, dependents first. While the drain
//! stands nothing starts; cancelling it hands the decisions back to revenue.

use chrono::{DateTime, Utc};
use revscale_api::{
    ApproveDrainResponse, ApproveRequest, CancelDrainResponse, Drain, DryRunResponse, RequestDrainRequest,
    RequestDrainResponse,
};
use revscale_engine::ports::{EventBus, Notifier, Store};
use revscale_engine::{Inputs, evaluate};

use super::{approve_as, change, checked_reason, evaluate_now, load};
use crate::context::{ApiError, Ctx, Deps};

/// What the engine would do today if the drain were approved: the dry run.
pub(crate) async fn dry_run<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    now: DateTime<Utc>,
) -> Result<DryRunResponse, ApiError> {
    let (mut state, _) = load(&deps.config, store, deps.today(now)).await?;
    state.drain = Some(Drain {
        reason: "dry run".into(),
        requested_by: "the requester".into(),
        requested_on: deps.today(now),
        approved_by: Some("an approver".into()),
    });
    // A drain needs no figures: the plan is the same whatever the history holds.
    let history = revscale_engine::History::new();
    let decision =
        evaluate(&Inputs { config: &deps.config, state: &state, history: &history }, deps.today(now));
    Ok(DryRunResponse { level: state.level, decision })
}

pub(crate) async fn request<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    RequestDrainRequest { reason }: RequestDrainRequest,
    ctx: &Ctx<'_>,
) -> Result<RequestDrainResponse, ApiError> {
    let reason = checked_reason(&reason)?;
    let drain = Drain {
        reason: reason.clone(),
        requested_by: ctx.caller.person.clone(),
        requested_on: deps.today(ctx.now),
        approved_by: None,
    };
    let what = format!("requested a drain: everything revscale made goes COLD ({reason})");
    change(deps, store, ctx, "drain-request", &what, |s| {
        if let Some(open) = &s.drain {
            return Err(ApiError::Conflict(format!(
                "a drain is already {} (requested by {} on {}): cancel it first",
                if open.approved_by.is_some() { "in force" } else { "waiting for approval" },
                open.requested_by,
                open.requested_on
            )));
        }
        s.drain = Some(drain.clone());
        Ok(())
    })
    .await?;
    Ok(RequestDrainResponse {
        drain,
        next: "another approver runs `revscale drain approve`; the components go COLD at once".into(),
        plan: dry_run(deps, store, ctx.now).await?,
    })
}

pub(crate) async fn approve<S: Store, B: EventBus, N: Notifier>(
    deps: &Deps<S, B, N>,
    store: &S,
    evaluation_store: &S,
    ApproveRequest { id }: ApproveRequest,
    ctx: &Ctx<'_>,
) -> Result<ApproveDrainResponse, ApiError> {
    let today = deps.today(ctx.now);
    let state = change(deps, store, ctx, "drain-approve", &format!("approved the drain {id}"), |s| {
        let d = s.drain.as_mut().ok_or_else(|| ApiError::NotFound("no drain was requested".into()))?;
        approve_as(d, &deps.config, ctx, &id, today)
    })
    .await?;
    let drain =
        state.drain.clone().ok_or_else(|| ApiError::Internal("the approved drain left the state".into()))?;
    let evaluation = evaluate_now(deps, evaluation_store, ctx.now).await?;
    Ok(ApproveDrainResponse { drain, evaluation })
}

pub(crate) async fn cancel<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    ctx: &Ctx<'_>,
) -> Result<CancelDrainResponse, ApiError> {
    let cancelled = std::sync::Mutex::new(None);
    change(deps, store, ctx, "drain-cancel", "cancelled the drain: revenue decides again", |s| {
        let d = s.drain.take().ok_or_else(|| ApiError::NotFound("no drain was requested".into()))?;
        if let Ok(mut c) = cancelled.lock() {
            *c = Some(d);
        }
        Ok(())
    })
    .await?;
    let cancelled = cancelled
        .into_inner()
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::Internal("the cancelled drain was not kept".into()))?;
    Ok(CancelDrainResponse { cancelled })
}
