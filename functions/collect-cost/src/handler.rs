//! Daily: spend from Cost Explorer -> one cost snapshot per day, with per-component
//! actual costs and the number of (billed) Cost Explorer requests made.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, NaiveDate, Utc};
use lambda_runtime::LambdaEvent;
use revscale_aws::SdkConfig;
use revscale_aws::cost_explorer::{CostError, CostExplorerSource};
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::env::{EnvError, Vars, revenue_currency_and_fx};
use revscale_aws::lambda::{Daily, FromEnv, FunctionError, answers, event_date, event_time, with_causes};
use revscale_aws::metrics;
use revscale_engine::Currency;
use revscale_engine::money::FxRates;
use revscale_engine::ports::{
    Snapshot, SnapshotKind, SnapshotStore, StoreError, Written, backfill_window, days_to_backfill,
};
use serde_json::{Value, json};
use std::time::Duration;

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

/// Collects and stores the day's cost, for the schedule's event or for each one of a
/// queued batch (an error fails the batch, and the queue delivers it again: the days
/// already written are then found and left alone).
pub async fn handle<S: SnapshotStore>(
    deps: &Deps<S>,
    event: LambdaEvent<Daily>,
) -> Result<Value, FunctionError> {
    let mut collected = Vec::new();
    for scheduled in event.payload.events()? {
        collected.push(collect(deps, &scheduled, event.context.deadline).await?);
    }
    Ok(answers(collected))
}

/// Time kept back from the Lambda's deadline when filling missed days: a day is not
/// started with less left, so the backfill ends, logged, before the function times out
/// (the queue would otherwise run the day's collection again).
pub const BACKFILL_MARGIN: Duration = Duration::from_secs(10);

/// Whether the Lambda (deadline `deadline_ms`, ms since the epoch, 0 when not run by
/// Lambda) has more than [`BACKFILL_MARGIN`] left at `now`.
pub fn time_left(deadline_ms: u64, now: std::time::SystemTime) -> bool {
    let now_ms = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    deadline_ms == 0 || u128::from(deadline_ms) > now_ms + BACKFILL_MARGIN.as_millis()
}

/// Why the days the collector missed could not be filled this time.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("cannot read or write the cost snapshots")]
    Store(#[source] StoreError),
    #[error("cannot read the missed day {day} from Cost Explorer")]
    CostExplorer {
        day: NaiveDate,
        #[source]
        source: CostError,
    },
}

/// Fills the days of the look-back ([`revscale_engine::ports::BACKFILL_DAYS`]) this collector missed, each with
/// the snapshot the collector would have taken that day (one `GetCostAndUsage`, the
/// month-to-date run-rate: see `past_snapshot`), written only if still absent and
/// marked `cost-explorer`. Returns the days filled. A failure is logged and counted
/// (`backfill_failed_count`), not returned: the day just collected stands, the days
/// filled before it stay, and the next day's run tries the rest again.
async fn backfill<S: SnapshotStore>(
    deps: &Deps<S>,
    today: NaiveDate,
    now: DateTime<Utc>,
    lambda_deadline_ms: u64,
) -> Vec<NaiveDate> {
    let mut filled = Vec::new();
    let result = try_backfill(deps, today, now, lambda_deadline_ms, &mut filled).await;
    if !filled.is_empty() {
        println!("{}", metrics::days_backfilled(now, "collect-cost", filled.len()));
        tracing::info!(days = ?filled, "missed cost days filled from Cost Explorer");
    }
    if let Err(e) = result {
        println!("{}", metrics::backfill_failed(now, "collect-cost"));
        tracing::warn!(error = %with_causes(&e), "missed cost days not filled; the next run tries again");
    }
    filled
}

async fn try_backfill<S: SnapshotStore>(
    deps: &Deps<S>,
    today: NaiveDate,
    now: DateTime<Utc>,
    lambda_deadline_ms: u64,
    filled: &mut Vec<NaiveDate>,
) -> Result<(), BackfillError> {
    let Deps { store, source } = deps;
    let (from, to) = backfill_window(today);
    let stored = store.snapshot_days(SnapshotKind::Cost, from, to).await.map_err(BackfillError::Store)?;
    for day in days_to_backfill(&stored, today) {
        if !time_left(lambda_deadline_ms, std::time::SystemTime::now()) {
            tracing::warn!(%day, "no time left to fill the missed cost days; the next run goes on");
            return Ok(());
        }
        let snapshot = source
            .past_snapshot(now, day)
            .await
            .map_err(|source| BackfillError::CostExplorer { day, source })?;
        if store.put_backfilled(&Snapshot::Cost(snapshot)).await.map_err(BackfillError::Store)?
            == Written::Created
        {
            filled.push(day);
        }
    }
    Ok(())
}

async fn collect<S: SnapshotStore>(
    deps: &Deps<S>,
    event: &EventBridgeEvent<Value>,
    lambda_deadline_ms: u64,
) -> Result<Value, FunctionError> {
    let Deps { store, source } = deps;
    let now = event_time(event)?;
    // The schedule's local date, as the revenue collector and the evaluator date it.
    let today = event_date(event)?;
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
    // Only once the day is stored (or found): missed days never hold up the day's own.
    let backfilled = backfill(deps, today, now, lambda_deadline_ms).await;
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
        "backfilled": backfilled,
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
    fn a_missed_day_is_not_started_with_less_than_the_margin_left() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000);
        assert!(time_left(1_000_000 + 30_000, now));
        assert!(!time_left(1_000_000 + 10_000, now), "exactly the margin is not enough");
        assert!(!time_left(900_000, now));
        assert!(time_left(0, now), "not run by Lambda");
    }

    #[test]
    fn cost_errors_map_to_stable_error_types() {
        assert_eq!(cost_error(CostError::Transient("x".into())).error_type(), "Transient");
        assert_eq!(cost_error(CostError::Malformed("x".into())).error_type(), "UpstreamData");
    }

    /// Every sample in events/collect-cost/ is what the handler is invoked with: parsed with its
    /// own type, and dated with the schedule's local date (the samples' stack runs in
    /// Asia/Kolkata, where 05:00 is 23:30 UTC the day before) or the day it names.
    #[test]
    fn every_sample_event_parses_with_the_handlers_type_and_is_dated_with_the_local_or_named_day() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/collect-cost");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let daily: Daily = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let events = daily.events().unwrap();
            assert_eq!(events.len(), 1, "{name}");
            let expected = if name == "backfill.json" { "2026-11-20" } else { "2026-11-29" };
            assert_eq!(event_date(&events[0]).unwrap().to_string(), expected, "{name}");
            assert!(event_time(&events[0]).is_ok(), "{name}: a sample has its time");
            seen.push(name);
        }
        seen.sort();
        assert_eq!(seen, ["backfill.json", "queued.json", "scheduled.json"]);
        let scheduled: EventBridgeEvent<Value> =
            serde_json::from_str(include_str!("../../../events/collect-cost/scheduled.json")).unwrap();
        assert_eq!(
            event_time(&scheduled).unwrap().to_rfc3339(),
            "2026-11-28T23:30:00+00:00",
            "not the UTC date"
        );
    }
}
