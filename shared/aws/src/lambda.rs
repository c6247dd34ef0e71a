//! What every revscale Lambda shares: one way to start (JSON logs, a typed
//! environment, one SDK config), a span per invocation, stable error types, and the
//! time of a scheduled event.
//!
//! Every function's `main` reads the same:
//!
//! ```ignore
//! let (env, sdk) = revscale_aws::lambda::start::<Env>().await?;
//! let deps = Deps::on_aws(env, &sdk).await?;
//! run(service_fn(traced(&deps, handler::handle))).await
//! ```

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use lambda_http::RequestExt;
use lambda_runtime::{Diagnostic, LambdaEvent};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::env::{EnvError, Vars};

/// A function's environment, read and checked once at cold start.
pub trait FromEnv: Sized {
    fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Self, EnvError>;
}

/// The cold start every function shares: JSON logs, then the typed environment (a
/// missing or malformed variable stops the start and names the variable), then the one
/// SDK configuration every client of the function is built from.
pub async fn start<E: FromEnv>() -> Result<(E, aws_config::SdkConfig), EnvError> {
    init_tracing();
    let env = E::from_vars(&Vars::process())
        .inspect_err(|e| tracing::error!(error = %e, "cold start stopped: the environment is not usable"))?;
    Ok((env, crate::sdk_config().await))
}

/// What identifies one invocation in the logs.
pub trait Invocation {
    fn request_id(&self) -> &str;
}

impl<T> Invocation for LambdaEvent<T> {
    fn request_id(&self) -> &str {
        &self.context.request_id
    }
}

impl Invocation for lambda_http::Request {
    fn request_id(&self) -> &str {
        self.lambda_context_ref().map_or("-", |c| c.request_id.as_str())
    }
}

/// One invocation's work, boxed so that `traced` can log its failure inside its span.
pub type InvocationFuture<'d, T> = Pin<Box<dyn Future<Output = Result<T, FunctionError>> + Send + 'd>>;

/// Runs `handler` with the function's dependencies, each invocation inside its own
/// `invocation` span: every log line of it carries the request id, and the decision id
/// once the handler knows it ([`record_decision_id`]). A failure is logged there too,
/// with its stable type and whole message, before the runtime reports it.
pub fn traced<'d, D, E, T, Fut>(
    deps: &'d D,
    handler: impl Fn(&'d D, E) -> Fut,
) -> impl Fn(E) -> Instrumented<InvocationFuture<'d, T>>
where
    E: Invocation,
    Fut: Future<Output = Result<T, FunctionError>> + Send + 'd,
{
    move |event: E| {
        let span = tracing::info_span!(
            "invocation",
            request_id = %event.request_id(),
            decision_id = tracing::field::Empty
        );
        let work = handler(deps, event);
        let logged: Pin<Box<dyn Future<Output = Result<T, FunctionError>> + Send + 'd>> =
            Box::pin(async move {
                let result = work.await;
                if let Err(e) = &result {
                    tracing::error!(error_type = e.error_type(), error = %e, "invocation failed");
                }
                result
            });
        logged.instrument(span)
    }
}

/// Adds the decision an invocation works on to its span (and so to every later line).
pub fn record_decision_id(id: &impl Display) {
    tracing::Span::current().record("decision_id", tracing::field::display(id));
}

/// Errors a function returns, by stable name: the `errorType` the Step Functions
/// Retry/Catch rules and the CloudWatch alarms match.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// Throttling, timeouts, a busy dependency: retry as is.
    #[error("{0}")]
    Transient(String),
    /// The event itself is unusable: retrying will not help.
    #[error("{0}")]
    InvalidInput(String),
    /// A dependency answered with data that cannot be used (bad billing or cost data).
    #[error("{0}")]
    UpstreamData(String),
    /// Missing permission, secret or setting: a human must fix the deployment.
    #[error("{0}")]
    Configuration(String),
    #[error("{0}")]
    Internal(String),
    /// Provisioning: another run holds the lock, or this one already started.
    #[error("{0}")]
    LockHeld(String),
    /// Provisioning: the state moved on since the decision; nothing was done.
    #[error("{0}")]
    StaleDecision(String),
    /// Provisioning: the event names no decision revscale recorded to execute, differs
    /// from it, is too old, or arrived in shadow mode; nothing was done.
    #[error("{0}")]
    DecisionRefused(String),
    /// Provisioning: the driver refused the change (e.g. a node group without its cluster).
    #[error("{0}")]
    TransitionRejected(String),
    /// Provisioning: the resource reported a failure while changing.
    #[error("{0}")]
    TransitionFailed(String),
    /// Provisioning: the resource did not reach its state in the allowed checks.
    #[error("{0}")]
    TransitionTimedOut(String),
    /// Provisioning: a rollback step itself failed; a human must look.
    #[error("{0}")]
    RollbackFailed(String),
}

/// An error and every cause under it, `outer: inner: innermost`: what a log line or an
/// error message needs so that "request failed" still says it was a DNS failure.
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let line = c.to_string();
        // Some errors repeat their source in their own message; say it once.
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = c.source();
    }
    text
}

impl FunctionError {
    pub fn error_type(&self) -> &'static str {
        match self {
            FunctionError::Transient(_) => "Transient",
            FunctionError::InvalidInput(_) => "InvalidInput",
            FunctionError::UpstreamData(_) => "UpstreamData",
            FunctionError::Configuration(_) => "Configuration",
            FunctionError::Internal(_) => "Internal",
            FunctionError::LockHeld(_) => "LockHeld",
            FunctionError::StaleDecision(_) => "StaleDecision",
            FunctionError::DecisionRefused(_) => "DecisionRefused",
            FunctionError::TransitionRejected(_) => "TransitionRejected",
            FunctionError::TransitionFailed(_) => "TransitionFailed",
            FunctionError::TransitionTimedOut(_) => "TransitionTimedOut",
            FunctionError::RollbackFailed(_) => "RollbackFailed",
        }
    }
}

impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Diagnostic {
        // `traced` logged the whole message inside the invocation's span; the runtime
        // reports the stable type.
        Diagnostic { error_type: e.error_type().to_string(), error_message: e.to_string() }
    }
}

impl From<revscale_engine::ports::StoreError> for FunctionError {
    fn from(e: revscale_engine::ports::StoreError) -> Self {
        use revscale_engine::ports::StoreError as S;
        match e {
            S::Transient(_) | S::Conflict(_) => FunctionError::Transient(e.to_string()),
            S::Corrupt(_) => FunctionError::Internal(e.to_string()),
            S::Other(_) => FunctionError::Internal(e.to_string()),
        }
    }
}

/// A secret that cannot be read at cold start is a deployment problem (permission, name).
impl From<crate::secrets::SecretError> for FunctionError {
    fn from(e: crate::secrets::SecretError) -> Self {
        FunctionError::Configuration(with_causes(&e))
    }
}

/// JSON logs on stdout, level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        // The invocation span's fields (request id, decision id) on every line.
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .init();
}

/// The scheduled time of an EventBridge event: the clock of every decision, so a
/// replay decides exactly what the original did.
pub fn event_time<T: serde::Serialize + serde::de::DeserializeOwned>(
    event: &EventBridgeEvent<T>,
) -> Result<DateTime<Utc>, FunctionError> {
    event
        .time
        .ok_or_else(|| FunctionError::InvalidInput("the event has no 'time': it cannot be dated".into()))
}

/// The day a scheduled event is for: its time in the schedule's own time zone, which
/// the schedule passes as `detail.timezone` (an IANA name, e.g. `Asia/Kolkata`). The
/// collectors at 05:00 and the evaluator at 06:00 local time then agree on the date
/// wherever UTC midnight falls. `detail.date` (`YYYY-MM-DD`), when given, wins: a
/// backfill or a manual run names its day. Neither: the UTC date.
pub fn event_date(event: &EventBridgeEvent<serde_json::Value>) -> Result<chrono::NaiveDate, FunctionError> {
    if let Some(date) = event.detail.get("date").and_then(|d| d.as_str()) {
        return date.parse().map_err(|_| {
            FunctionError::InvalidInput(format!("detail.date '{date}' is not a YYYY-MM-DD date"))
        });
    }
    let time = event_time(event)?;
    match event.detail.get("timezone").and_then(|z| z.as_str()).filter(|z| !z.trim().is_empty()) {
        Some(zone) => local_date(time, zone),
        None => Ok(time.date_naive()),
    }
}

/// `time`'s date in the IANA time zone `zone`.
pub fn local_date(time: DateTime<Utc>, zone: &str) -> Result<chrono::NaiveDate, FunctionError> {
    let tz: chrono_tz::Tz = zone.trim().parse().map_err(|_| {
        FunctionError::InvalidInput(format!("'{zone}' is not an IANA time zone (e.g. Europe/Rome)"))
    })?;
    Ok(time.with_timezone(&tz).date_naive())
}

/// The event id, used as the idempotency key of the invocation.
pub fn event_id<T: serde::Serialize + serde::de::DeserializeOwned>(
    event: &EventBridgeEvent<T>,
) -> Result<String, FunctionError> {
    event.id.clone().ok_or_else(|| FunctionError::InvalidInput("the event has no 'id'".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log lines written to memory, for the span test.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn every_log_line_of_an_invocation_carries_its_request_id_and_then_its_decision_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        // The same format as `init_tracing`, written to memory.
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        async fn handler(deps: &&str, _event: LambdaEvent<serde_json::Value>) -> Result<(), FunctionError> {
            tracing::info!("before the decision is known");
            record_decision_id(deps);
            tracing::info!("after");
            Ok(())
        }
        let mut context = lambda_runtime::Context::default();
        context.request_id = "req-42".into();
        let serve = traced(&"2026-11-29-L1-L2-abc", handler);
        serve(LambdaEvent::new(serde_json::json!({}), context)).await.unwrap();

        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["span"]["request_id"], "req-42");
        assert!(lines[0]["span"].get("decision_id").is_none(), "{text}");
        assert_eq!(lines[1]["span"]["request_id"], "req-42");
        assert_eq!(lines[1]["span"]["decision_id"], "2026-11-29-L1-L2-abc");
    }

    #[tokio::test]
    async fn a_failed_invocation_is_logged_with_its_type_inside_its_span() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        async fn failing(_: &(), _event: LambdaEvent<serde_json::Value>) -> Result<(), FunctionError> {
            record_decision_id(&"2026-11-29-L1-L2-abc");
            Err(FunctionError::Transient("DynamoDB throttled the write".into()))
        }
        let mut context = lambda_runtime::Context::default();
        context.request_id = "req-7".into();
        let err = traced(&(), failing)(LambdaEvent::new(serde_json::json!({}), context)).await.unwrap_err();
        assert_eq!(err.error_type(), "Transient");
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(line["fields"]["message"], "invocation failed");
        assert_eq!(line["fields"]["error_type"], "Transient");
        assert_eq!(line["fields"]["error"], "DynamoDB throttled the write");
        assert_eq!(
            (line["span"]["request_id"].as_str(), line["span"]["decision_id"].as_str()),
            (Some("req-7"), Some("2026-11-29-L1-L2-abc"))
        );
    }

    fn scheduled(time: &str, detail: serde_json::Value) -> EventBridgeEvent<serde_json::Value> {
        serde_json::from_value(serde_json::json!({
            "version": "0", "id": "e", "detail-type": "Scheduled Event", "source": "aws.scheduler",
            "time": time, "detail": detail
        }))
        .unwrap()
    }

    /// Collectors at 05:00 and the evaluator at 06:00, local time, date the same day
    /// however far from UTC the zone is.
    #[test]
    fn collectors_and_evaluator_agree_on_the_local_date_at_utc_plus_5_30_plus_14_and_minus_10() {
        let cases = [
            // zone, collectors' UTC time (05:00 local), evaluator's (06:00 local), local date
            ("Asia/Kolkata", "2026-11-28T23:30:00Z", "2026-11-29T00:30:00Z", "2026-11-29"),
            ("Pacific/Kiritimati", "2026-11-28T15:00:00Z", "2026-11-28T16:00:00Z", "2026-11-29"),
            ("Pacific/Honolulu", "2026-11-29T15:00:00Z", "2026-11-29T16:00:00Z", "2026-11-29"),
            ("Asia/Dhaka", "2026-11-28T23:00:00Z", "2026-11-29T00:00:00Z", "2026-11-29"),
            // At UTC-10, schedules after 14:00 local fall on the next UTC day.
            ("Pacific/Honolulu", "2026-11-30T00:30:00Z", "2026-11-30T01:30:00Z", "2026-11-29"),
        ];
        for (zone, collect, evaluate, day) in cases {
            let detail = serde_json::json!({"timezone": zone});
            let collected = event_date(&scheduled(collect, detail.clone())).unwrap();
            let evaluated = event_date(&scheduled(evaluate, detail)).unwrap();
            assert_eq!(
                (collected.to_string(), evaluated.to_string()),
                (day.to_string(), day.to_string()),
                "{zone}"
            );
        }
        // Without the zone, the UTC dates differ at +5:30: the bug the zone fixes.
        let utc = |t| event_date(&scheduled(t, serde_json::json!({}))).unwrap();
        assert_ne!(utc("2026-11-28T23:30:00Z"), utc("2026-11-29T00:30:00Z"));
    }

    #[test]
    fn an_explicit_date_wins_and_bad_zones_or_dates_are_invalid_input() {
        let e = scheduled(
            "2026-11-29T05:00:00Z",
            serde_json::json!({"date": "2026-11-20", "timezone": "Asia/Kolkata"}),
        );
        assert_eq!(event_date(&e).unwrap().to_string(), "2026-11-20");
        let bad_zone = scheduled("2026-11-29T05:00:00Z", serde_json::json!({"timezone": "Mars/Olympus"}));
        assert_eq!(event_date(&bad_zone).unwrap_err().error_type(), "InvalidInput");
        let bad_date = scheduled("2026-11-29T05:00:00Z", serde_json::json!({"date": "29/11/2026"}));
        assert_eq!(event_date(&bad_date).unwrap_err().error_type(), "InvalidInput");
    }
}
