//! Daily: MRR from Stripe -> one revenue snapshot per day.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, NaiveDate, Utc};
use lambda_runtime::LambdaEvent;
use revscale_aws::SdkConfig;
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::env::{EnvError, Vars, revenue_currency_and_fx};
use revscale_aws::lambda::{Daily, FromEnv, FunctionError, answers, event_date, event_time, with_causes};
use revscale_aws::metrics;
use revscale_aws::secrets::{SecretRef, read_secret};
use revscale_aws::stripe::{MrrSummary, StripeError, StripeSource};
use revscale_engine::Currency;
use revscale_engine::money::FxRates;
use revscale_engine::ports::{
    RevenueSnapshot, Snapshot, SnapshotKind, SnapshotStore, StoreError, Written, backfill_window,
    days_to_backfill,
};
use serde_json::{Value, json};
use std::time::Duration;

pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";

/// Everything the function reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Env {
    pub table_name: String,
    /// `STRIPE_SECRET_ARN` (Secrets Manager) or `STRIPE_API_KEY_PARAMETER` (SSM).
    pub stripe_key: SecretRef,
    pub stripe_api_base: String,
    pub currency: Currency,
    pub fx: FxRates,
}

impl FromEnv for Env {
    fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Env, EnvError> {
        let stripe_key = match (vars.optional("STRIPE_SECRET_ARN"), vars.optional("STRIPE_API_KEY_PARAMETER"))
        {
            (Some(arn), _) => SecretRef::SecretsManager(arn),
            (None, Some(name)) => SecretRef::Ssm(name),
            (None, None) => return Err(EnvError::Missing("STRIPE_SECRET_ARN (or STRIPE_API_KEY_PARAMETER)")),
        };
        let (currency, fx) = revenue_currency_and_fx(vars)?;
        Ok(Env {
            table_name: vars.required("TABLE_NAME")?,
            stripe_key,
            stripe_api_base: vars
                .optional("STRIPE_API_BASE")
                .unwrap_or_else(|| DEFAULT_STRIPE_API_BASE.into()),
            currency,
            fx,
        })
    }
}

/// Stable error types for the Stripe failures, with the whole cause chain in the
/// message (a timeout, a DNS failure and Stripe's own words read differently).
pub fn stripe_error(e: StripeError) -> FunctionError {
    let message = with_causes(&e);
    match e {
        _ if e.is_transient() => FunctionError::Transient(message),
        _ if e.is_unauthorised() => FunctionError::Configuration(message),
        StripeError::Fx(_) | StripeError::BadBaseUrl { .. } | StripeError::Client { .. } => {
            FunctionError::Configuration(message)
        }
        StripeError::Network { .. }
        | StripeError::Exhausted { .. }
        | StripeError::OutOfTime { .. }
        | StripeError::Api { .. }
        | StripeError::Malformed(_)
        | StripeError::Unsupported { .. } => FunctionError::UpstreamData(message),
    }
}

/// What the handler works with: built once per cold start (the Stripe key is read
/// from its secret then, not on every collection).
pub struct Deps<S> {
    pub store: S,
    pub stripe: StripeSource,
}

impl Deps<DynamoStore> {
    pub async fn on_aws(env: Env, sdk: &SdkConfig) -> Result<Self, FunctionError> {
        let api_key = read_secret(sdk, &env.stripe_key).await?;
        let stripe =
            StripeSource::new(&env.stripe_api_base, api_key, env.currency, env.fx).map_err(stripe_error)?;
        Ok(Deps { store: DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), env.table_name), stripe })
    }
}

/// Collects and stores the day's MRR, for the schedule's event or for each one of a
/// queued batch (an error fails the batch, and the queue delivers it again: the days
/// already written are then found and left alone). A replay of the same event finds the
/// day's snapshot already there and changes nothing.
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

/// Time kept back from the Lambda's deadline when filling missed days: the backfill
/// must end, logged, before the function times out, or the queue would run the day's
/// collection again for a failure that is not the day's.
pub const BACKFILL_MARGIN: Duration = Duration::from_secs(5);

/// How long the backfill may take once the day is collected: what is left of the
/// Lambda's time (`deadline_ms`, ms since the epoch, 0 when not run by Lambda) less
/// [`BACKFILL_MARGIN`].
pub fn backfill_time(deadline_ms: u64, now: std::time::SystemTime) -> Duration {
    if deadline_ms == 0 {
        return Duration::MAX;
    }
    let now_ms = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let left = u128::from(deadline_ms).saturating_sub(now_ms);
    Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX)).saturating_sub(BACKFILL_MARGIN)
}

/// Why the days the collector missed could not be filled this time.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("cannot read or write the revenue snapshots")]
    Store(#[source] StoreError),
    #[error("cannot rebuild the missed days from Stripe's invoices")]
    Stripe(#[source] StripeError),
}

/// Fills the days of the look-back ([`revscale_engine::ports::BACKFILL_DAYS`]) this collector missed, with MRR
/// rebuilt from Stripe's invoices, each written only if still absent and marked
/// `stripe-invoices`. Returns the days filled. A failure is logged and counted
/// (`backfill_failed_count`), not returned: the day just collected stands, and the next
/// day's run tries again.
async fn backfill<S: SnapshotStore>(
    deps: &Deps<S>,
    today: NaiveDate,
    now: DateTime<Utc>,
    within: Duration,
) -> Vec<NaiveDate> {
    match try_backfill(deps, today, now, within).await {
        Ok(filled) => {
            if !filled.is_empty() {
                println!("{}", metrics::days_backfilled(now, "collect-revenue", filled.len()));
                tracing::info!(days = ?filled, "missed revenue days filled from Stripe invoices");
            }
            filled
        }
        Err(e) => {
            println!("{}", metrics::backfill_failed(now, "collect-revenue"));
            tracing::warn!(error = %with_causes(&e), "missed revenue days not filled; the next run tries again");
            Vec::new()
        }
    }
}

async fn try_backfill<S: SnapshotStore>(
    deps: &Deps<S>,
    today: NaiveDate,
    now: DateTime<Utc>,
    within: Duration,
) -> Result<Vec<NaiveDate>, BackfillError> {
    let Deps { store, stripe } = deps;
    let (from, to) = backfill_window(today);
    let stored = store.snapshot_days(SnapshotKind::Revenue, from, to).await.map_err(BackfillError::Store)?;
    let missed = days_to_backfill(&stored, today);
    let (Some(first), Some(last)) = (missed.first(), missed.last()) else { return Ok(Vec::new()) };
    // One invoice listing for every missed day: the reconstruction covers them all.
    let rebuilt = stripe.past_mrr(*first, *last, within).await.map_err(BackfillError::Stripe)?;
    let mut filled = Vec::new();
    for day in missed {
        let Some(mrr) = rebuilt.days.get(&day).copied() else { continue };
        let counts = rebuilt.counts.get(&day).copied().unwrap_or_default();
        let snapshot = RevenueSnapshot {
            date: day,
            mrr,
            subscriptions_counted: counts.subscriptions,
            customers: counts.customers,
            collected_at: now,
        };
        let written =
            store.put_backfilled(&Snapshot::Revenue(snapshot)).await.map_err(BackfillError::Store)?;
        if written == Written::Created {
            filled.push(day);
        }
    }
    Ok(filled)
}

async fn collect<S: SnapshotStore>(
    deps: &Deps<S>,
    event: &EventBridgeEvent<Value>,
    lambda_deadline_ms: u64,
) -> Result<Value, FunctionError> {
    let Deps { store, stripe } = deps;
    let now = event_time(event)?;
    let MrrSummary { mrr, subscriptions_counted, customers } = stripe.mrr().await.map_err(stripe_error)?;
    let snapshot = RevenueSnapshot {
        date: event_date(event)?,
        mrr,
        subscriptions_counted,
        customers,
        collected_at: now,
    };
    let written = store.put_revenue(&snapshot).await?;
    println!("{}", metrics::mrr_gauge(now, mrr));
    tracing::info!(date = %snapshot.date, mrr = %mrr, subscriptions_counted, customers, ?written, "revenue collected");
    // Only once the day is stored (or found): missed days never hold up the day's own.
    let within = backfill_time(lambda_deadline_ms, std::time::SystemTime::now());
    let backfilled = backfill(deps, snapshot.date, now, within).await;
    Ok(json!({
        "date": snapshot.date,
        "mrr": mrr.to_decimal().to_string(),
        "currency": mrr.currency,
        "subscriptions_counted": subscriptions_counted,
        "customers": customers,
        "written": written == Written::Created,
        "backfilled": backfilled,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    use revscale_aws::env::from_pairs as vars;

    #[test]
    fn env_reads_the_secret_reference_and_the_fx_rates() {
        let env = Env::from_vars(&vars(&[
            ("TABLE_NAME", "revscale"),
            ("STRIPE_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:stripe"),
            ("FX_RATES", "USD=0.93"),
        ]))
        .unwrap();
        assert_eq!(
            env.stripe_key,
            SecretRef::SecretsManager("arn:aws:secretsmanager:eu-west-1:1:secret:stripe".into())
        );
        assert_eq!(env.stripe_api_base, DEFAULT_STRIPE_API_BASE);
        assert_eq!(env.currency, Currency::EUR);
        let ssm =
            Env::from_vars(&vars(&[("TABLE_NAME", "t"), ("STRIPE_API_KEY_PARAMETER", "/revscale/stripe")]))
                .unwrap();
        assert_eq!(ssm.stripe_key, SecretRef::Ssm("/revscale/stripe".into()));
    }

    #[test]
    fn env_names_what_is_missing_or_wrong() {
        let err = Env::from_vars(&vars(&[("TABLE_NAME", "t")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable STRIPE_SECRET_ARN (or STRIPE_API_KEY_PARAMETER) is not set"
        );
        let err = Env::from_vars(&vars(&[("STRIPE_SECRET_ARN", "x")])).unwrap_err();
        assert_eq!(err, EnvError::Missing("TABLE_NAME"));
        let err =
            Env::from_vars(&vars(&[("TABLE_NAME", "t"), ("STRIPE_SECRET_ARN", "x"), ("FX_RATES", "USD")]))
                .unwrap_err();
        assert!(err.to_string().starts_with("environment variable FX_RATES is invalid"), "{err}");
    }

    #[test]
    fn the_backfill_has_what_is_left_of_the_lambdas_time_less_a_margin() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(backfill_time(1_000_000 + 30_000, now), Duration::from_secs(25));
        assert_eq!(backfill_time(1_000_000 + 3_000, now), Duration::ZERO, "less than the margin: nothing");
        assert_eq!(backfill_time(900_000, now), Duration::ZERO, "past the deadline");
        assert_eq!(backfill_time(0, now), Duration::MAX, "not run by Lambda: the source's own budget");
    }

    #[test]
    fn stripe_errors_map_to_stable_error_types() {
        let api = |status: u16| StripeError::Api {
            endpoint: "GET /v1/subscriptions".into(),
            status,
            code: None,
            message: "m".into(),
            request_id: None,
        };
        let exhausted = StripeError::Exhausted { attempts: 4, source: Box::new(api(429)) };
        assert_eq!(stripe_error(exhausted).error_type(), "Transient");
        assert_eq!(stripe_error(api(401)).error_type(), "Configuration");
        assert_eq!(stripe_error(api(403)).error_type(), "Configuration");
        assert_eq!(stripe_error(api(400)).error_type(), "UpstreamData");
        assert_eq!(stripe_error(StripeError::Malformed("x".into())).error_type(), "UpstreamData");
    }

    /// Every sample in events/collect-revenue/ is what the handler is invoked with: parsed with its
    /// own type, and dated with the schedule's local date (the samples' stack runs in
    /// Asia/Kolkata, where 05:00 is 23:30 UTC the day before) or the day it names.
    #[test]
    fn every_sample_event_parses_with_the_handlers_type_and_is_dated_with_the_local_or_named_day() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/collect-revenue");
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
            serde_json::from_str(include_str!("../../../events/collect-revenue/scheduled.json")).unwrap();
        assert_eq!(
            event_time(&scheduled).unwrap().to_rfc3339(),
            "2026-11-28T23:30:00+00:00",
            "not the UTC date"
        );
    }
}
