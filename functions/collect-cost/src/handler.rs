//! Daily: spend from Cost Explorer -> one cost snapshot per day, with per-component
//! actual costs and the number of (billed) Cost Explorer requests made.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use revscale_aws::SdkConfig;
use revscale_aws::cost_explorer::{CostError, CostExplorerSource};
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::env::{EnvError, Vars, revenue_currency_and_fx};
use revscale_aws::lambda::{FromEnv, FunctionError, event_date, event_time};
use revscale_engine::Currency;
use revscale_engine::money::FxRates;
use revscale_engine::ports::{SnapshotStore, Written};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct Env {
    pub table_name: String,
    pub metric: String,
    pub tag_key: String,
    /// `COST_EXCLUDED_RECORD_TYPES` (default `Credit,Refund`; empty keeps every type).
    pub excluded_record_types: Vec<String>,
    pub currency: Currency,
    /// Must hold the rate from Cost Explorer's currency (USD) to the revenue currency.
    pub fx: FxRates,
}

impl FromEnv for Env {
    fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Env, EnvError> {
        let (currency, fx) = revenue_currency_and_fx(vars)?;
        // Fail at cold start, not at the first collection, when USD has no rate.
        fx.rate(Currency::USD, currency)
            .map_err(|e| EnvError::Invalid { name: "FX_RATES", message: e.to_string() })?;
        Ok(Env {
            table_name: vars.required("TABLE_NAME")?,
            metric: vars.optional("COST_METRIC").unwrap_or_else(|| "UnblendedCost".into()),
            tag_key: vars.optional("COST_TAG_KEY").unwrap_or_else(|| "revscale-component".into()),
            excluded_record_types: match (vars.0)("COST_EXCLUDED_RECORD_TYPES") {
                None => revscale_aws::cost_explorer::DEFAULT_EXCLUDED_RECORD_TYPES.map(String::from).to_vec(),
                Some(list) => {
                    list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect()
                }
            },
            currency,
            fx,
        })
    }
}

pub fn cost_error(e: CostError) -> FunctionError {
    match e {
        CostError::Transient(_) => FunctionError::Transient(e.to_string()),
        CostError::Api(_) => FunctionError::Configuration(e.to_string()),
        CostError::Malformed(_) => FunctionError::UpstreamData(e.to_string()),
        CostError::Fx(_) => FunctionError::Configuration(e.to_string()),
    }
}

/// What the handler works with: built once per cold start.
pub struct Deps<S> {
    pub store: S,
    pub source: CostExplorerSource,
}

impl Deps<DynamoStore> {
    pub async fn on_aws(env: Env, sdk: &SdkConfig) -> Result<Self, FunctionError> {
        let mut source = CostExplorerSource::new(sdk, env.metric, env.tag_key, env.currency, env.fx);
        source.excluded_record_types = env.excluded_record_types;
        Ok(Deps { store: DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), env.table_name), source })
    }
}

pub async fn handle<S: SnapshotStore>(
    deps: &Deps<S>,
    event: LambdaEvent<EventBridgeEvent<Value>>,
) -> Result<Value, FunctionError> {
    let Deps { store, source } = deps;
    let now = event_time(&event.payload)?;
    // The schedule's local date, as the revenue collector and the evaluator date it.
    let today = event_date(&event.payload)?;
    let snapshot = source.snapshot_for(now, today).await.map_err(cost_error)?;
    let written = store.put_cost(&snapshot).await?;
    tracing::info!(
        date = %snapshot.date,
        run_rate = %snapshot.monthly_run_rate,
        estimated = snapshot.estimated,
        forecast_used = snapshot.forecast_used,
        cost_explorer_requests = snapshot.requests,
        ?written,
        "cost collected"
    );
    Ok(json!({
        "date": snapshot.date,
        "monthly_run_rate": snapshot.monthly_run_rate.to_decimal().to_string(),
        "month_to_date": snapshot.month_to_date.to_decimal().to_string(),
        "currency": snapshot.monthly_run_rate.currency,
        "estimated": snapshot.estimated,
        "forecast_used": snapshot.forecast_used,
        "fx_rate": snapshot.fx_rate,
        "cost_explorer_requests": snapshot.requests,
        "written": written == Written::Created,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    use revscale_aws::env::from_pairs as vars;

    #[test]
    fn env_defaults_to_unblended_cost_and_the_component_tag() {
        let env = Env::from_vars(&vars(&[("TABLE_NAME", "t"), ("FX_RATES", "USD=0.93")])).unwrap();
        assert_eq!((env.metric.as_str(), env.tag_key.as_str()), ("UnblendedCost", "revscale-component"));
        assert_eq!(env.excluded_record_types, ["Credit", "Refund"], "credits and refunds are no lower cost");
        let all = Env::from_vars(&vars(&[
            ("TABLE_NAME", "t"),
            ("FX_RATES", "USD=0.93"),
            ("COST_EXCLUDED_RECORD_TYPES", ""),
        ]))
        .unwrap();
        assert!(all.excluded_record_types.is_empty(), "an empty list keeps every record type");
    }

    #[test]
    fn env_refuses_to_start_without_a_usd_rate() {
        let err = Env::from_vars(&vars(&[("TABLE_NAME", "t")])).unwrap_err().to_string();
        assert!(err.contains("FX_RATES is invalid: no FX rate for USD -> EUR"), "{err}");
    }

    #[test]
    fn cost_errors_map_to_stable_error_types() {
        assert_eq!(cost_error(CostError::Transient("x".into())).error_type(), "Transient");
        assert_eq!(cost_error(CostError::Malformed("x".into())).error_type(), "UpstreamData");
    }

    #[test]
    fn the_sample_event_parses_and_is_dated() {
        let event: EventBridgeEvent<Value> =
            serde_json::from_str(include_str!("../../../events/collect-cost/scheduled.json")).unwrap();
        assert_eq!(event_time(&event).unwrap().to_rfc3339(), "2026-11-29T05:00:00+00:00");
    }
}
