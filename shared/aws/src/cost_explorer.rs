//! Real spend from Cost Explorer, in at most two billed requests a day (USD 0.01 each):
//! one `GetCostAndUsage` (MONTHLY, previous month and month to date, grouped by the
//! component cost allocation tag) and one `GetCostForecast` for the rest of the month.

use std::collections::BTreeMap;
use std::str::FromStr;

use aws_config::retry::RetryConfig;
use aws_sdk_costexplorer::Client;
use aws_sdk_costexplorer::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_costexplorer::types::{
    DateInterval, Dimension, DimensionValues, Expression, Granularity, GroupDefinition, GroupDefinitionType,
    Metric, ResultByTime,
};
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use revscale_engine::money::{FxError, FxRates};
use revscale_engine::ports::CostSnapshot;
use revscale_engine::{ComponentId, Currency, YearMonth};
use rust_decimal::Decimal;

use crate::metrics::RequestCounter;

const USAGE_ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("Cost Explorer request failed: {0}")]
    Api(String),
    #[error("Cost Explorer is throttling or unavailable: {0}")]
    Transient(String),
    #[error("unexpected Cost Explorer response: {0}")]
    Malformed(String),
    #[error(transparent)]
    Fx(#[from] FxError),
}

pub struct CostExplorerSource {
    client: Client,
    requests: RequestCounter,
    /// `UnblendedCost` by default.
    pub metric: String,
    /// The cost allocation tag whose value names a component, e.g. `revscale-component`.
    pub tag_key: String,
    pub target: Currency,
    pub fx: FxRates,
    /// `RECORD_TYPE` values left out of the spend (`Credit`, `Refund` by default): a
    /// credit or a refund is not a lower running cost, and must not let the cost guard
    /// see a component as free.
    pub excluded_record_types: Vec<String>,
}

/// Cost Explorer's record types revscale leaves out unless told otherwise.
pub const DEFAULT_EXCLUDED_RECORD_TYPES: [&str; 2] = ["Credit", "Refund"];

/// Whether a Cost Explorer error is worth retrying as is: throttling, data not ready
/// yet (`DataUnavailableException`), a 5xx, or no answer at all.
fn is_transient<E: ProvideErrorMetadata>(
    e: &aws_sdk_costexplorer::error::SdkError<E, aws_sdk_costexplorer::config::http::HttpResponse>,
) -> bool {
    use aws_sdk_costexplorer::error::SdkError;
    matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_))
        || e.raw_response().is_some_and(|r| r.status().is_server_error())
        || matches!(
            e.code(),
            Some(
                "LimitExceededException"
                    | "ThrottlingException"
                    | "DataUnavailableException"
                    | "RequestChangedException"
            )
        )
}

/// What one Cost Explorer response says, before conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostFigures {
    pub currency: Currency,
    pub previous_month: Decimal,
    pub month_to_date: Decimal,
    pub per_component: BTreeMap<ComponentId, Decimal>,
    pub estimated: bool,
}

/// Sums grouped (or total) results per period; the period starting at `current` is the
/// month to date, the one before it the previous month.
pub fn parse_results(
    results: &[ResultByTime],
    metric: &str,
    tag_key: &str,
    current: NaiveDate,
) -> Result<CostFigures, CostError> {
    let mut figures = CostFigures {
        currency: Currency::USD,
        previous_month: Decimal::ZERO,
        month_to_date: Decimal::ZERO,
        per_component: BTreeMap::new(),
        estimated: false,
    };
    let prefix = format!("{tag_key}$");
    for result in results {
        let (start, amounts) = amounts(result, metric, &prefix)?;
        let is_current = start >= current;
        for (component, value, currency) in amounts {
            figures.currency = currency;
            if is_current {
                figures.month_to_date += value;
                if let Some(c) = component {
                    *figures.per_component.entry(c).or_default() += value;
                }
                figures.estimated |= result.estimated();
            } else {
                figures.previous_month += value;
            }
        }
    }
    Ok(figures)
}

/// An amount of one result: the component its tag names (`None` untagged), the amount
/// and its currency.
type Amount = (Option<ComponentId>, Decimal, Currency);

/// One result's start date and its amounts, per group; the total when it has no groups.
fn amounts(result: &ResultByTime, metric: &str, prefix: &str) -> Result<(NaiveDate, Vec<Amount>), CostError> {
    let start = result
        .time_period()
        .map(|p| p.start())
        .ok_or_else(|| CostError::Malformed("a result has no TimePeriod".into()))?;
    let start = NaiveDate::from_str(start)
        .map_err(|_| CostError::Malformed(format!("TimePeriod.Start '{start}' is not a date")))?;
    let currency = |unit: Option<&str>| -> Result<Currency, CostError> {
        let unit = unit.unwrap_or("USD");
        unit.parse().map_err(|_| CostError::Malformed(format!("'{unit}' is not a currency code")))
    };
    let mut out = Vec::new();
    let groups = result.groups();
    if groups.is_empty()
        && let Some(v) = result.total().and_then(|t| t.get(metric))
    {
        out.push((None, amount(v.amount(), metric)?, currency(v.unit())?));
    }
    for group in groups {
        let component = group
            .keys()
            .first()
            .and_then(|k| k.strip_prefix(prefix))
            .filter(|v| !v.is_empty())
            .map(ComponentId::new);
        let v = group
            .metrics()
            .and_then(|m| m.get(metric))
            .ok_or_else(|| CostError::Malformed(format!("a group has no {metric} metric")))?;
        out.push((component, amount(v.amount(), metric)?, currency(v.unit())?));
    }
    Ok((start, out))
}

fn amount(raw: Option<&str>, metric: &str) -> Result<Decimal, CostError> {
    let raw = raw.ok_or_else(|| CostError::Malformed(format!("{metric} has no Amount")))?;
    // Cost Explorer reports sub-cent amounts ("0.0000012345"); Decimal keeps them exact.
    Decimal::from_str(raw)
        .or_else(|_| Decimal::from_scientific(raw))
        .map_err(|_| CostError::Malformed(format!("{metric} Amount '{raw}' is not a number")))
}

/// Cost Explorer's period from `from` to `until` (exclusive).
fn interval(from: NaiveDate, until: NaiveDate) -> Result<DateInterval, CostError> {
    DateInterval::builder()
        .start(from.to_string())
        .end(until.to_string())
        .build()
        .map_err(|e| CostError::Malformed(e.to_string()))
}

/// `UnblendedCost` -> `UNBLENDED_COST`, the forecast API's spelling.
fn forecast_metric(metric: &str) -> Metric {
    let mut upper = String::new();
    for (i, ch) in metric.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            upper.push('_');
        }
        upper.push(ch.to_ascii_uppercase());
    }
    Metric::from(upper.as_str())
}

impl CostExplorerSource {
    /// Builds its own client: every HTTP attempt is counted (Cost Explorer bills each),
    /// and `GetCostAndUsage` gets at most 3 attempts, leaving one for the forecast, so a
    /// daily run never exceeds 4 billed requests.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        metric: impl Into<String>,
        tag_key: impl Into<String>,
        target: Currency,
        fx: FxRates,
    ) -> Self {
        let requests = RequestCounter::default();
        let config = aws_sdk_costexplorer::config::Builder::from(sdk)
            .retry_config(RetryConfig::standard().with_max_attempts(USAGE_ATTEMPTS))
            .interceptor(requests.clone())
            .build();
        CostExplorerSource {
            client: Client::from_conf(config),
            requests,
            metric: metric.into(),
            tag_key: tag_key.into(),
            target,
            fx,
            excluded_record_types: DEFAULT_EXCLUDED_RECORD_TYPES.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// Collects the day's cost snapshot, dated in UTC. `now` is the scheduled event's time.
    pub async fn snapshot(&self, now: DateTime<Utc>) -> Result<CostSnapshot, CostError> {
        self.snapshot_for(now, now.date_naive()).await
    }

    /// The filter leaving out the excluded record types, if any are.
    fn record_type_filter(&self) -> Result<Option<Expression>, CostError> {
        if self.excluded_record_types.is_empty() {
            return Ok(None);
        }
        let types = DimensionValues::builder()
            .key(Dimension::RecordType)
            .set_values(Some(self.excluded_record_types.clone()))
            .build();
        Ok(Some(Expression::builder().not(Expression::builder().dimensions(types).build()).build()))
    }

    /// Collects the cost snapshot of `today`, the schedule's local date. `now` is the
    /// scheduled event's time.
    pub async fn snapshot_for(
        &self,
        now: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<CostSnapshot, CostError> {
        self.snapshot_on(now, today, true).await
    }

    /// The cost snapshot of a past `day` a collection missed, as the collector would
    /// have taken it that day: the previous month and the month to date up to the day
    /// before, in one `GetCostAndUsage`. Without a forecast: Cost Explorer forecasts
    /// only from today on, and a forecast made now is not the one of that day; the
    /// month-to-date run-rate, the collector's own fallback, stands in for it.
    pub async fn past_snapshot(&self, now: DateTime<Utc>, day: NaiveDate) -> Result<CostSnapshot, CostError> {
        self.snapshot_on(now, day, false).await
    }

    async fn snapshot_on(
        &self,
        now: DateTime<Utc>,
        today: NaiveDate,
        with_forecast: bool,
    ) -> Result<CostSnapshot, CostError> {
        let month = YearMonth::of(today);
        let current = month.first_day();
        let previous = current - Months::new(1);
        let requests_before = self.requests.get();

        // The end date is exclusive: up to yesterday, the last complete day. On the 1st,
        // that is the end of the previous month.
        let results = self.usage(previous, today, Granularity::Monthly).await?;
        let figures = parse_results(&results, &self.metric, &self.tag_key, current)?;

        let days_in_month = Decimal::from(month.last_day().day());
        let days_elapsed = Decimal::from(today.day() - 1);
        let mut forecast_used = false;
        let month_total = if with_forecast && today < month.last_day() {
            match self.forecast(today, month.next().first_day()).await {
                Ok(rest) => {
                    forecast_used = true;
                    figures.month_to_date + rest
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no cost forecast; using the month-to-date run-rate");
                    run_rate(&figures, days_elapsed, days_in_month)
                }
            }
        } else {
            run_rate(&figures, days_elapsed, days_in_month)
        };

        // Credits and refunds are filtered out; whatever still nets below zero (a
        // correction, a record type not excluded) is no negative running cost.
        let month_total = month_total.max(Decimal::ZERO);
        let convert = |d: Decimal| self.fx.convert(d.max(Decimal::ZERO), figures.currency, self.target);
        let rate = self.fx.rate(figures.currency, self.target)?;
        Ok(CostSnapshot {
            date: today,
            monthly_run_rate: convert(month_total)?,
            month_to_date: convert(figures.month_to_date)?,
            previous_month: convert(figures.previous_month)?,
            per_component: figures
                .per_component
                .iter()
                .map(|(c, v)| Ok((c.clone(), convert(*v)?)))
                .collect::<Result<_, FxError>>()?,
            estimated: figures.estimated,
            forecast_used,
            fx_rate: rate.normalize().to_string(),
            requests: (self.requests.get() - requests_before) as u32,
            collected_at: now,
        })
    }

    /// Daily spend from `from` up to, not including, `until`, with the collector's
    /// metric, record-type filter and component tag. `DAILY` data reaches 14 months
    /// back at most; an older `from` is refused by Cost Explorer, by name.
    pub async fn daily(&self, from: NaiveDate, until: NaiveDate) -> Result<DailyCosts, CostError> {
        let results = self.usage(from, until, Granularity::Daily).await?;
        parse_daily(&results, &self.metric, &self.tag_key)
    }

    /// Every page of `GetCostAndUsage` from `from` to `until` (exclusive), with the
    /// metric, the record-type filter and the grouping by the component tag.
    async fn usage(
        &self,
        from: NaiveDate,
        until: NaiveDate,
        granularity: Granularity,
    ) -> Result<Vec<ResultByTime>, CostError> {
        let mut results = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .get_cost_and_usage()
                .time_period(interval(from, until)?)
                .granularity(granularity.clone())
                .set_filter(self.record_type_filter()?)
                .metrics(&self.metric)
                .group_by(
                    GroupDefinition::builder().r#type(GroupDefinitionType::Tag).key(&self.tag_key).build(),
                )
                .set_next_page_token(token)
                .send()
                .await
                .map_err(|e| {
                    let text = DisplayErrorContext(&e).to_string();
                    if is_transient(&e) { CostError::Transient(text) } else { CostError::Api(text) }
                })?;
            results.extend(out.results_by_time().iter().cloned());
            token = out.next_page_token().map(String::from);
            if token.is_none() {
                return Ok(results);
            }
        }
    }

    /// Cost Explorer requests made so far (each is billed USD 0.01).
    pub fn requests(&self) -> usize {
        self.requests.get()
    }

    async fn forecast(&self, from: NaiveDate, to: NaiveDate) -> Result<Decimal, CostError> {
        let out = self
            .client
            .get_cost_forecast()
            .time_period(interval(from, to)?)
            .metric(forecast_metric(&self.metric))
            .granularity(Granularity::Monthly)
            .set_filter(self.record_type_filter()?)
            .customize()
            // Optional (the run-rate is the fallback): one attempt, never a retry.
            .config_override(
                aws_sdk_costexplorer::config::Builder::new()
                    .retry_config(RetryConfig::standard().with_max_attempts(1)),
            )
            .send()
            .await
            .map_err(|e| CostError::Api(DisplayErrorContext(&e).to_string()))?;
        amount(out.total().and_then(|t| t.amount()), "forecast")
    }
}

/// Daily spend from Cost Explorer, for `revscale history fetch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyCosts {
    /// Cost Explorer's currency (USD for almost every account).
    pub currency: Currency,
    /// Per day: the spend not tagged as a managed component, in `currency`.
    pub unmanaged: BTreeMap<NaiveDate, Decimal>,
    /// The spend tagged as managed components over the whole window, left out.
    pub managed_total: Decimal,
    /// Days Cost Explorer still marks as estimated (the last two or three).
    pub estimated_days: usize,
}

/// Sums `DAILY` results per day, keeping apart what carries the component tag: a
/// new installation's components do not exist yet, and the simulator adds the cost
/// of the ones it runs (the scenario's `cost` is everything else).
pub fn parse_daily(results: &[ResultByTime], metric: &str, tag_key: &str) -> Result<DailyCosts, CostError> {
    let mut out = DailyCosts {
        currency: Currency::USD,
        unmanaged: BTreeMap::new(),
        managed_total: Decimal::ZERO,
        estimated_days: 0,
    };
    let mut unit: Option<Currency> = None;
    let mut estimated = std::collections::BTreeSet::new();
    let prefix = format!("{tag_key}$");
    for result in results {
        let (day, amounts) = amounts(result, metric, &prefix)?;
        let spent = out.unmanaged.entry(day).or_default();
        for (component, value, currency) in amounts {
            // One account bills in one currency; two would need a rate between them.
            if unit.is_some_and(|seen| seen != currency) {
                return Err(CostError::Malformed(format!(
                    "{day}: amounts in {currency} and {}",
                    out.currency
                )));
            }
            unit = Some(currency);
            out.currency = currency;
            if component.is_some() {
                out.managed_total += value;
            } else {
                *spent += value;
            }
        }
        if result.estimated() {
            // A day split across pages is one day.
            estimated.insert(day);
        }
    }
    out.estimated_days = estimated.len();
    Ok(out)
}

/// The monthly cost each day of `from..=to` carries in the simulator's CSV: the total
/// of its calendar month, which is what the collector's forecast aims at (a month's
/// fixed charges, billed on the 1st, count once in their month rather than as a spike);
/// for a month not yet over on `to`, its spend so far scaled to the whole month, the
/// collector's fallback. Days Cost Explorer did not report count as nothing spent.
pub fn monthly_cost_per_day(
    daily: &BTreeMap<NaiveDate, Decimal>,
    from: NaiveDate,
    to: NaiveDate,
) -> BTreeMap<NaiveDate, Decimal> {
    let mut out = BTreeMap::new();
    let mut month = YearMonth::of(from);
    while month.first_day() <= to {
        let last = month.last_day();
        let known_until = last.min(to);
        let spent: Decimal = daily.range(month.first_day()..=known_until).map(|(_, v)| *v).sum();
        let value = if known_until == last {
            spent
        } else {
            let elapsed = Decimal::from(known_until.day());
            spent * Decimal::from(last.day()) / elapsed
        };
        for day in month.first_day().max(from).iter_days().take_while(|d| *d <= known_until) {
            out.insert(day, value.max(Decimal::ZERO));
        }
        month = month.next();
    }
    out
}

/// The month-to-date spend scaled to the whole month; on the 1st, last month's total.
pub fn run_rate(figures: &CostFigures, days_elapsed: Decimal, days_in_month: Decimal) -> Decimal {
    if days_elapsed.is_zero() {
        figures.previous_month
    } else {
        figures.month_to_date * days_in_month / days_elapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_costexplorer::types::{Group, MetricValue};

    fn result(start: &str, end: &str, estimated: bool, groups: &[(&str, &str)]) -> ResultByTime {
        let mut r = ResultByTime::builder()
            .time_period(DateInterval::builder().start(start).end(end).build().unwrap())
            .estimated(estimated);
        for (key, amount) in groups {
            r = r.groups(
                Group::builder()
                    .keys(*key)
                    .metrics("UnblendedCost", MetricValue::builder().amount(*amount).unit("USD").build())
                    .build(),
            );
        }
        r.build()
    }

    fn nov() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn daily_results_keep_only_untagged_spend_per_day() {
        let results = [
            result(
                "2026-10-01",
                "2026-10-02",
                false,
                &[("revscale-component$", "12.50"), ("revscale-component$k8s_workers", "3.10")],
            ),
            result("2026-10-02", "2026-10-03", true, &[("revscale-component$", "0.0000001")]),
        ];
        let daily = parse_daily(&results, "UnblendedCost", "revscale-component").unwrap();
        assert_eq!(daily.unmanaged[&day("2026-10-01")], Decimal::new(1250, 2));
        assert_eq!(daily.unmanaged[&day("2026-10-02")], Decimal::new(1, 7), "sub-cent amounts stay exact");
        assert_eq!(daily.managed_total, Decimal::new(310, 2));
        assert_eq!(daily.estimated_days, 1);
        assert_eq!(daily.currency, Currency::USD);
    }

    #[test]
    fn each_day_carries_its_month_s_total_and_the_month_not_over_is_scaled() {
        let mut daily = BTreeMap::new();
        // September: 30 days of 10 with a 300 fixed charge on the 1st: 600.
        for d in day("2026-09-01").iter_days().take(30) {
            daily.insert(d, Decimal::from(10));
        }
        *daily.get_mut(&day("2026-09-01")).unwrap() += Decimal::from(300);
        // October up to the 10th: 10 days of 20 = 200, scaled to 31 days: 620.
        for d in day("2026-10-01").iter_days().take(10) {
            daily.insert(d, Decimal::from(20));
        }
        let per_day = monthly_cost_per_day(&daily, day("2026-09-15"), day("2026-10-10"));
        assert_eq!(per_day.len(), 16 + 10);
        assert_eq!(
            per_day[&day("2026-09-15")],
            Decimal::from(600),
            "the whole month, though the window starts mid-month"
        );
        assert_eq!(per_day[&day("2026-09-30")], Decimal::from(600));
        assert_eq!(per_day[&day("2026-10-01")], Decimal::from(620));
        assert_eq!(per_day[&day("2026-10-10")], Decimal::from(620));
    }

    #[test]
    fn grouped_results_are_summed_per_period_and_per_component_exactly() {
        let results = [
            result(
                "2026-10-01",
                "2026-11-01",
                false,
                &[("revscale-component$", "100.10"), ("revscale-component$k8s_workers", "50.0000012")],
            ),
            result(
                "2026-11-01",
                "2026-11-29",
                true,
                &[
                    ("revscale-component$", "80.5"),
                    ("revscale-component$k8s_workers", "40.25"),
                    ("revscale-component$eks_control_plane", "0.0000001"),
                ],
            ),
        ];
        let f = parse_results(&results, "UnblendedCost", "revscale-component", nov()).unwrap();
        assert_eq!(f.previous_month, Decimal::from_str("150.1000012").unwrap());
        assert_eq!(f.month_to_date, Decimal::from_str("120.7500001").unwrap());
        assert_eq!(f.per_component[&ComponentId::new("k8s_workers")], Decimal::from_str("40.25").unwrap());
        assert_eq!(
            f.per_component[&ComponentId::new("eks_control_plane")],
            Decimal::from_str("0.0000001").unwrap()
        );
        assert!(f.estimated, "the current month is estimated");
        assert_eq!(f.currency, Currency::USD);
    }

    #[test]
    fn ungrouped_totals_are_read_too() {
        let r = ResultByTime::builder()
            .time_period(DateInterval::builder().start("2026-11-01").end("2026-11-29").build().unwrap())
            .total("UnblendedCost", MetricValue::builder().amount("1.5E+2").unit("USD").build())
            .build();
        let f = parse_results(&[r], "UnblendedCost", "revscale-component", nov()).unwrap();
        assert_eq!(f.month_to_date, Decimal::from(150));
    }

    #[test]
    fn malformed_amounts_are_a_clear_error() {
        let results = [result("2026-11-01", "2026-11-29", false, &[("revscale-component$", "lots")])];
        let err = parse_results(&results, "UnblendedCost", "revscale-component", nov()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected Cost Explorer response: UnblendedCost Amount 'lots' is not a number"
        );
        let no_metric = [result("2026-11-01", "2026-11-29", false, &[])];
        assert!(parse_results(&no_metric, "UnblendedCost", "t", nov()).unwrap().month_to_date.is_zero());
    }

    #[test]
    fn the_run_rate_scales_month_to_date_and_falls_back_to_last_month_on_the_first() {
        let f = CostFigures {
            currency: Currency::USD,
            previous_month: Decimal::from(300),
            month_to_date: Decimal::from(100),
            per_component: BTreeMap::new(),
            estimated: true,
        };
        assert_eq!(run_rate(&f, Decimal::from(10), Decimal::from(30)), Decimal::from(300));
        assert_eq!(run_rate(&f, Decimal::ZERO, Decimal::from(30)), Decimal::from(300));
    }

    #[test]
    fn forecast_metric_names_use_the_forecast_apis_spelling() {
        assert_eq!(forecast_metric("UnblendedCost"), Metric::UnblendedCost);
        assert_eq!(forecast_metric("AmortizedCost"), Metric::AmortizedCost);
    }
}
