//! `/pending`: approving or refusing the level change the engine wants and that waits
//! for a human.

use revscale_api::{ApprovePendingResponse, ApproveRequest, RejectPendingRequest, RejectPendingResponse};
use revscale_engine::ports::{EventBus, Notifier, Store};

use super::{approve_as, change, checked_reason, evaluate_now};
use crate::context::{ApiError, Ctx, Deps};

pub(crate) async fn approve<S: Store, B: EventBus, N: Notifier>(
    deps: &Deps<S, B, N>,
    store: &S,
    evaluation_store: &S,
    ApproveRequest { id }: ApproveRequest,
    ctx: &Ctx<'_>,
) -> Result<ApprovePendingResponse, ApiError> {
    let today = deps.today(ctx.now);
    let what = format!("approved the pending level change {id}");
    let state = change(deps, store, ctx, "pending-approve", &what, |s| {
        let p = s
            .pending_approval
            .as_mut()
            .ok_or_else(|| ApiError::NotFound("no level change waits for approval".into()))?;
        approve_as(p, &deps.config, ctx, &id, today)
    })
    .await?;
    // Approving changes nothing else, so the stored state still holds the change.
    let pending_approval = state.pending_approval.as_ref().cloned().ok_or_else(|| {
        ApiError::Internal("the pending level change left the state as it was approved".into())
    })?;
    let evaluation = evaluate_now(deps, evaluation_store, ctx.now).await?;
    Ok(ApprovePendingResponse { pending_approval, evaluation })
}

/// Refuses the level change waiting for approval. The engine proposes it again while
/// its reasons hold, so a rejection is a "not now", recorded with why.
pub(crate) async fn reject<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    RejectPendingRequest { reason }: RejectPendingRequest,
    ctx: &Ctx<'_>,
) -> Result<RejectPendingResponse, ApiError> {
    let reason = checked_reason(&reason)?;
    let rejected = std::sync::Mutex::new(None);
    let what = format!("rejected the pending level change ({reason})");
    change(deps, store, ctx, "pending-reject", &what, |s| {
        let p = s
            .pending_approval
            .take()
            .ok_or_else(|| ApiError::NotFound("no level change waits for approval".into()))?;
        if let Ok(mut r) = rejected.lock() {
            *r = Some(p.clone());
        }
        Ok(())
    })
    .await?;
    let rejected =
        rejected.into_inner().ok().flatten().ok_or_else(|| {
            ApiError::Internal("the rejected level change was not kept for the answer".into())
        })?;
    Ok(RejectPendingResponse { rejected, reason })
}
