//! The operator's levers: the mode, the breaker, releasing a stuck provisioning run,
//! and a dry run of the engine.

use chrono::{DateTime, Utc};
use lambda_http::{Request, RequestExt};
use revscale_api::{
    BreakerPosition, DryRunResponse, ReleaseRunRequest, ReleaseRunResponse, ResetBreakerResponse,
    SetModeRequest, SetModeResponse,
};
use revscale_aws::lambda::record_decision_id;
use revscale_engine::ports::Store;
use revscale_engine::provisioning::run::{self, RunError};

use super::{breaker_view, change, change_with_events, checked_reason, plan};
use crate::context::{ApiError, Ctx, Deps, only_params};

pub(crate) async fn reset_breaker<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    ctx: &Ctx<'_>,
) -> Result<ResetBreakerResponse, ApiError> {
    change(deps, store, ctx, "breaker-reset", "reset the circuit breaker", |s| {
        s.breaker = Default::default();
        Ok(())
    })
    .await?;
    Ok(ResetBreakerResponse { breaker: BreakerPosition::Closed })
}

pub(crate) async fn set_mode<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    SetModeRequest { mode }: SetModeRequest,
    ctx: &Ctx<'_>,
) -> Result<SetModeResponse, ApiError> {
    change(deps, store, ctx, "mode", &format!("set the mode to {mode}"), |s| {
        s.set_mode(mode, &deps.config);
        Ok(())
    })
    .await?;
    Ok(SetModeResponse { mode, deployed_mode: deps.config.mode })
}

/// Releases the lock of a run that could neither finish nor roll back, once its
/// execution has ended and an operator has repaired its components by hand and says
/// where each one stands (only the run's own components: the engine refuses others).
pub(crate) async fn release<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    ReleaseRunRequest { decision_id, components, reason }: ReleaseRunRequest,
    ctx: &Ctx<'_>,
) -> Result<ReleaseRunResponse, ApiError> {
    record_decision_id(&decision_id);
    let reason = checked_reason(&reason)?;
    // The run's own execution may still be moving its components (a rollback under
    // way, a step retrying): releasing it then would leave two writers. Only once Step
    // Functions says it ended is the operator's word about the components taken.
    let running =
        deps.executions.is_running(&decision_id).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    if running {
        return Err(ApiError::Conflict(format!(
            "the provisioning execution {decision_id} is still running: let it end (or stop it in Step Functions) before releasing it"
        )));
    }
    let declared: Vec<String> = components.iter().map(|(c, s)| format!("{c}={s}")).collect();
    let what = format!(
        "released provisioning run {decision_id} after a manual repair: {} ({reason})",
        declared.join(", ")
    );
    let today = deps.today(ctx.now);
    let state = change_with_events(deps, store, ctx, "provisioning-release", &what, |s| {
        let (_, events) = run::release_after_repair(&deps.config, s, &decision_id, &components, today)
            .map_err(|e| match e {
                RunError::NoRun(_) => ApiError::Conflict(e.to_string()),
                other => ApiError::BadRequest(other.to_string()),
            })?;
        Ok(events)
    })
    .await?;
    let breaker = breaker_view(&deps.config, &state, today);
    Ok(ReleaseRunResponse { released: decision_id, components, breaker })
}

/// `?dry_run=true` is required: real evaluations run on the schedule only.
pub(crate) fn check_dry_run(req: &Request) -> Result<(), ApiError> {
    only_params(req, &["dry_run"])?;
    if req.query_string_parameters().first("dry_run") != Some("true") {
        return Err(ApiError::BadRequest(
            "query parameter 'dry_run' must be true: real evaluations run on the schedule".into(),
        ));
    }
    Ok(())
}

pub(crate) async fn dry_run<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    now: DateTime<Utc>,
) -> Result<DryRunResponse, ApiError> {
    let (state, decision) = plan(deps, store, now).await?;
    Ok(DryRunResponse { level: state.level, decision })
}
