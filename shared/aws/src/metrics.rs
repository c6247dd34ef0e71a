//! CloudWatch metrics as Embedded Metric Format lines on stdout: no API call, no
//! latency, CloudWatch Logs extracts them. Names are ADR-017's.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub const NAMESPACE: &str = "revscale";

fn line(at: DateTime<Utc>, name: &str, unit: &str, value: f64, dimensions: &[(&str, &str)]) -> String {
    let mut doc = json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": [{"Name": name, "Unit": unit}],
            }],
        },
    });
    if let Value::Object(map) = &mut doc {
        for (k, v) in dimensions {
            map.insert((*k).to_string(), Value::from(*v));
        }
        map.insert(name.to_string(), Value::from(value));
    }
    doc.to_string()
}

/// `revenue_mrr_gauge` in major units of the revenue currency.
pub fn mrr_gauge(at: DateTime<Utc>, mrr: revscale_engine::Money) -> String {
    // Metrics are floats by nature; the exact amount stays in the snapshot.
    let value = mrr.minor as f64 / mrr.currency.minor_per_unit() as f64;
    line(at, "revenue_mrr_gauge", "None", value, &[("Currency", mrr.currency.as_str())])
}

/// `revenue_cost_ratio_percentage`, 0-100 (and beyond when cost exceeds revenue).
pub fn cost_ratio(at: DateTime<Utc>, ratio: revscale_engine::Ratio) -> String {
    line(at, "revenue_cost_ratio_percentage", "Percent", ratio.as_percent(), &[])
}

/// `component_activation_state`: 0 = cold, 1 = warm, 2 = hot, per component.
pub fn activation_state(
    at: DateTime<Utc>,
    component: &str,
    state: revscale_engine::ComponentState,
) -> String {
    line(
        at,
        "component_activation_state",
        "None",
        f64::from(state.metric_value()),
        &[("Component", component)],
    )
}

/// `circuit_breaker_open`: 1 while the breaker holds automatic transitions back.
pub fn breaker_open(at: DateTime<Utc>, open: bool) -> String {
    line(at, "circuit_breaker_open", "None", if open { 1.0 } else { 0.0 }, &[])
}

/// `notification_failed_count`: alert e-mails that could not be sent (the decision
/// and its event went out regardless), for an alarm.
pub fn notification_failed(at: DateTime<Utc>, count: usize) -> String {
    line(at, "notification_failed_count", "Count", count as f64, &[])
}

/// `backfill_failed_count`: a collector could not fill the days it missed (its source or
/// the table failed); the day it collected stands, and its next run tries again.
pub fn backfill_failed(at: DateTime<Utc>, collector: &str) -> String {
    line(at, "backfill_failed_count", "Count", 1.0, &[("Collector", collector)])
}

/// `days_backfilled_count`: missed days a collector filled from its source.
pub fn days_backfilled(at: DateTime<Utc>, collector: &str, days: usize) -> String {
    line(at, "days_backfilled_count", "Count", days as f64, &[("Collector", collector)])
}

/// `component_drift`: 1 when the daily drift check found the component elsewhere than
/// its recorded state, 0 when it agrees (no line when it could not be read).
pub fn component_drift(at: DateTime<Utc>, component: &str, drifted: bool) -> String {
    line(at, "component_drift", "None", if drifted { 1.0 } else { 0.0 }, &[("Component", component)])
}

/// `drift_restored_count`: components the drift check took back to their recorded
/// state (a database AWS restarted after 7 days stopped).
pub fn drift_restored(at: DateTime<Utc>, count: usize) -> String {
    line(at, "drift_restored_count", "Count", count as f64, &[])
}

/// `provisioning_duration_seconds` of one component transition.
pub fn provisioning_duration(at: DateTime<Utc>, component: &str, seconds: f64) -> String {
    line(at, "provisioning_duration_seconds", "Seconds", seconds, &[("Component", component)])
}

/// Counts the HTTP requests an SDK client sends, retries included: what AWS bills for
/// request-priced APIs such as Cost Explorer.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl RequestCounter {
    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl aws_sdk_costexplorer::config::Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_costexplorer::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_costexplorer::config::RuntimeComponents,
        _cfg: &mut aws_sdk_costexplorer::config::ConfigBag,
    ) -> Result<(), aws_sdk_costexplorer::error::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn each_metric_is_one_emf_document_with_its_adr_name() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let m = parse(&mrr_gauge(
            at,
            revscale_engine::Money::from_minor(123_456, revscale_engine::Currency::EUR),
        ));
        assert_eq!(m["revenue_mrr_gauge"], 1234.56);
        assert_eq!(m["Currency"], "EUR");
        assert_eq!(m["_aws"]["CloudWatchMetrics"][0]["Namespace"], "revscale");
        assert_eq!(m["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0], "Currency");
        assert_eq!(m["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let r = parse(&cost_ratio(at, revscale_engine::Ratio::from_basis_points(8125)));
        assert_eq!(r["revenue_cost_ratio_percentage"], 81.25);
        assert_eq!(r["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"], "Percent");
        let s = parse(&activation_state(at, "k8s_workers", revscale_engine::ComponentState::Warm));
        assert_eq!(
            (s["component_activation_state"].as_f64(), s["Component"].as_str()),
            (Some(1.0), Some("k8s_workers"))
        );
        assert_eq!(parse(&breaker_open(at, true))["circuit_breaker_open"], 1.0);
        let d = parse(&provisioning_duration(at, "tee", 93.5));
        assert_eq!(d["provisioning_duration_seconds"], 93.5);
    }
}
