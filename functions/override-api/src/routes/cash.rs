//! `POST /cash`: an operator sets the company's cash on a day, for the runway guard.
//! Audited like every change; refused (400) in another currency than the
//! configuration's, negative, malformed, or dated after today.

use revscale_api::{SetCashRequest, SetCashResponse};
use revscale_engine::Money;
use revscale_engine::ports::Store;

use super::{change, plan_with_runway};
use crate::context::{ApiError, Ctx, Deps};

pub(crate) async fn set<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    SetCashRequest { amount, currency, as_of }: SetCashRequest,
    ctx: &Ctx<'_>,
) -> Result<SetCashResponse, ApiError> {
    let expected = deps.config.currency;
    if let Some(given) =
        currency.as_deref().map(str::trim).filter(|c| !c.eq_ignore_ascii_case(expected.as_str()))
    {
        return Err(ApiError::BadRequest(format!(
            "field 'currency': cash is in {given}, the configuration in {expected}: give it in {expected} (no rate converts a balance)"
        )));
    }
    let amount = Money::parse(amount.trim(), expected).map_err(|e| {
        ApiError::BadRequest(format!("field 'amount': '{amount}' is not an amount in {expected}: {e}"))
    })?;
    let today = deps.today(ctx.now);
    let what = format!("set the cash to {amount} as of {as_of}");
    let state = change(deps, store, ctx, "cash", &what, |s| {
        s.set_cash(&deps.config, amount, as_of, &ctx.caller.person, today)
            .map_err(|refused| ApiError::BadRequest(refused.to_string()))
    })
    .await?;
    let cash = state.cash.clone().ok_or_else(|| ApiError::Internal("the cash was not stored".into()))?;
    let (_, _, runway) = plan_with_runway(deps, store, ctx.now).await?;
    Ok(SetCashResponse { cash, runway })
}
