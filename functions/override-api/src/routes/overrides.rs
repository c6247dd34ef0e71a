//! `/overrides`: asking to pin a level, a second person's approval or rejection, and
//! cancelling.

use chrono::{Days, NaiveDate};
use revscale_api::{
    ApproveOverrideResponse, CancelOverrideResponse, CreateOverrideRequest, CreateOverrideResponse,
    RejectOverrideResponse,
};
use revscale_engine::SystemState;
use revscale_engine::ports::{EventBus, Notifier, Store};
use revscale_engine::state::Override;

use super::{approve_as, change, checked_reason, evaluate_now};
use crate::context::{ApiError, Ctx, Deps, MAX_OPEN_OVERRIDES, MAX_OVERRIDE_DAYS, request_tag};

pub(crate) async fn request<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    CreateOverrideRequest { level, until, reason }: CreateOverrideRequest,
    ctx: &Ctx<'_>,
) -> Result<CreateOverrideResponse, ApiError> {
    let today = deps.today(ctx.now);
    if level > deps.config.top_level() {
        return Err(ApiError::BadRequest(format!(
            "field 'level': {level} is not a configured level (0 to {})",
            deps.config.top_level()
        )));
    }
    let latest = today + Days::new(MAX_OVERRIDE_DAYS);
    if until < today || until > latest {
        return Err(ApiError::BadRequest(format!(
            "field 'until': {until} must be between {today} and {latest} (at most {MAX_OVERRIDE_DAYS} days ahead)"
        )));
    }
    let reason = checked_reason(&reason)?;
    let id = format!("ovr-{}-{}", today.format("%Y%m%d"), request_tag(ctx.request_id));
    let created = Override {
        id: id.clone(),
        level,
        until,
        reason: reason.clone(),
        requested_by: ctx.caller.person.clone(),
        requested_on: today,
        approved_by: None,
        cancelled: false,
    };
    let what = format!("requested override {id}: pin L{level} until {until} ({reason})");
    change(deps, store, ctx, "override-request", &what, |s| {
        if s.overrides.iter().any(|o| o.id == id) {
            return Err(ApiError::Conflict(format!("override {id} already exists")));
        }
        let open = s.overrides.iter().filter(|o| !o.cancelled && o.until >= today).count();
        if open >= MAX_OPEN_OVERRIDES {
            return Err(ApiError::Conflict(format!(
                "{open} overrides are open already (at most {MAX_OPEN_OVERRIDES}): approve, reject or cancel some first"
            )));
        }
        s.overrides.push(created.clone());
        Ok(())
    })
    .await?;
    Ok(CreateOverrideResponse {
        r#override: created.clone(),
        next: format!("another person must approve it: POST /overrides/{id}/approve"),
    })
}

pub(crate) async fn approve<S: Store, B: EventBus, N: Notifier>(
    deps: &Deps<S, B, N>,
    store: &S,
    evaluation_store: &S,
    id: &str,
    ctx: &Ctx<'_>,
) -> Result<ApproveOverrideResponse, ApiError> {
    let today = deps.today(ctx.now);
    let state = change(deps, store, ctx, "override-approve", &format!("approved override {id}"), |s| {
        let o = open_override(s, id, today)?;
        approve_as(o, &deps.config, ctx, id, today)
    })
    .await?;
    // An approved override is open, so the stored state still holds it.
    let approved = state
        .overrides
        .iter()
        .find(|o| o.id == id)
        .cloned()
        .ok_or_else(|| ApiError::Internal(format!("override {id} left the state as it was approved")))?;
    let evaluation = evaluate_now(deps, evaluation_store, ctx.now).await?;
    Ok(ApproveOverrideResponse { r#override: approved, evaluation })
}

/// An approver refuses the override.
pub(crate) async fn reject<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    id: &str,
    ctx: &Ctx<'_>,
) -> Result<RejectOverrideResponse, ApiError> {
    let closed = close(deps, store, id, ctx, Close::Reject).await?;
    Ok(RejectOverrideResponse { r#override: closed, rejected: true })
}

/// The requester (or any operator) withdraws the override.
pub(crate) async fn cancel<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    id: &str,
    ctx: &Ctx<'_>,
) -> Result<CancelOverrideResponse, ApiError> {
    let closed = close(deps, store, id, ctx, Close::Cancel).await?;
    Ok(CancelOverrideResponse { r#override: closed, cancelled: true })
}

/// The override `id`, if it can still be approved, rejected or cancelled.
fn open_override<'a>(
    s: &'a mut SystemState,
    id: &str,
    today: NaiveDate,
) -> Result<&'a mut Override, ApiError> {
    let o = s.overrides.iter_mut().find(|o| o.id == id).ok_or_else(|| {
        ApiError::NotFound(format!("no open override {id} (closed ones are in the audit trail)"))
    })?;
    if o.cancelled {
        return Err(ApiError::Conflict(format!("override {id} was cancelled")));
    }
    if o.until < today {
        return Err(ApiError::Conflict(format!("override {id} expired on {}", o.until)));
    }
    Ok(o)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    Cancel,
    Reject,
}

/// Closes the override `id`; returns it as it was closed (it leaves the state with
/// this write, so the edit keeps it).
async fn close<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    id: &str,
    ctx: &Ctx<'_>,
    how: Close,
) -> Result<revscale_api::Override, ApiError> {
    let today = deps.today(ctx.now);
    let (kind, verb) = match how {
        Close::Cancel => ("override-cancel", "cancelled"),
        Close::Reject => ("override-reject", "rejected"),
    };
    let closed = std::sync::Mutex::new(None);
    change(deps, store, ctx, kind, &format!("{verb} override {id}"), |s| {
        let o = open_override(s, id, today)?;
        if how == Close::Reject
            && let Some(by) = &o.approved_by
        {
            return Err(ApiError::Conflict(format!(
                "override {id} is already approved by {by}: an operator may cancel it"
            )));
        }
        o.cancelled = true;
        if let Ok(mut c) = closed.lock() {
            *c = Some(o.clone());
        }
        Ok(())
    })
    .await?;
    closed
        .into_inner()
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::Internal(format!("override {id} was {verb} but not kept for the answer")))
}
