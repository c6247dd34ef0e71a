//! What every revscale Lambda shares: one way to start (JSON logs, a typed
//! environment, one SDK config), a span per invocation, stable error types, and the
//! time of a scheduled event.
//!
//! Every function's `main` reads the same:
//!
//! ```ignore
//! let deps = cold_start(async {
//!     let (env, sdk) = start::<Env>().await?;
//!     Deps::on_aws(env, &sdk).await
//! })
//! .await?;
//! run(service_fn(traced(&deps, handler::handle))).await
//! ```
//!
//! `cold_start` reports a failure of what it runs to the Runtime API's init error
//! endpoint under its stable type, so a throttled read at cold start reaches the
//! retriers as `Transient` and not as a bare runtime exit.

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

/// A cold start that could not finish; Lambda was told why, under the error's type.
#[derive(Debug, thiserror::Error)]
#[error("cold start failed ({}): {source}", source.error_type())]
pub struct ColdStartFailed {
    #[source]
    pub source: FunctionError,
}

/// The Runtime API did not take the report of a failed cold start.
#[derive(Debug, thiserror::Error)]
pub enum InitReportError {
    #[error("the Runtime API at {api} did not answer the init error report")]
    Unsent {
        api: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the Runtime API at {api} refused the init error report with HTTP {status}")]
    Refused { api: String, status: u16 },
}

/// Runs what `main` does before `run` (the environment, the SDK configuration, the
/// clients and any secret or parameter read once). If it fails, the error is logged and
/// posted to the Runtime API's init error endpoint with its stable type
/// (`Transient` for a throttled SSM or Secrets Manager read, `Configuration` for a
/// missing variable), so Lambda answers the invocation with that `errorType` and the
/// Step Functions retriers and alarms match it; a plain exit would surface only as
/// `Runtime.ExitError`. Outside Lambda (`AWS_LAMBDA_RUNTIME_API` unset) it only logs.
pub async fn cold_start<D>(
    init: impl Future<Output = Result<D, FunctionError>>,
) -> Result<D, ColdStartFailed> {
    let error = match init.await {
        Ok(deps) => return Ok(deps),
        Err(error) => error,
    };
    tracing::error!(error_type = error.error_type(), error = %error, "cold start failed");
    match std::env::var("AWS_LAMBDA_RUNTIME_API") {
        Ok(api) => {
            if let Err(e) = report_init_error(&api, &error).await {
                // The process still exits with the error; Lambda then reports a runtime exit.
                tracing::error!(error = %with_causes(&e), "the cold start failure could not be reported");
            }
        }
        Err(_) => tracing::warn!("AWS_LAMBDA_RUNTIME_API is not set (not on Lambda): nothing to report to"),
    }
    Err(ColdStartFailed { source: error })
}

/// `POST /2018-06-01/runtime/init/error` on the Runtime API at `runtime_api`
/// (`host:port`), with the error's stable type in `Lambda-Runtime-Function-Error-Type`
/// and in the body's `errorType`.
pub async fn report_init_error(runtime_api: &str, error: &FunctionError) -> Result<(), InitReportError> {
    let body = serde_json::json!({
        "errorType": error.error_type(),
        "errorMessage": error.to_string(),
        "stackTrace": [],
    });
    let response = reqwest::Client::new()
        .post(format!("http://{runtime_api}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", error.error_type())
        .json(&body)
        // The init phase has 10 s in all; a Runtime API that does not answer in 2 is gone.
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await
        .map_err(|source| InitReportError::Unsent { api: runtime_api.to_string(), source })?;
    if !response.status().is_success() {
        return Err(InitReportError::Refused {
            api: runtime_api.to_string(),
            status: response.status().as_u16(),
        });
    }
    Ok(())
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

/// A secret that cannot be read at cold start is a deployment problem (permission, name),
/// unless the read was throttled or unanswered: then the same start may succeed in a
/// moment, and the retriers must see `Transient`.
impl From<crate::secrets::SecretError> for FunctionError {
    fn from(e: crate::secrets::SecretError) -> Self {
        match e {
            crate::secrets::SecretError::Unavailable { .. } => FunctionError::Transient(with_causes(&e)),
            _ => FunctionError::Configuration(with_causes(&e)),
        }
    }
}

/// A missing or malformed variable: the deployment must change.
impl From<EnvError> for FunctionError {
    fn from(e: EnvError) -> Self {
        FunctionError::Configuration(e.to_string())
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

/// The event id (`<aws.scheduler.execution-id>` for a schedule): new for every attempt
/// the Scheduler makes, so no idempotency key; see [`idempotency_key`].
pub fn event_id<T: serde::Serialize + serde::de::DeserializeOwned>(
    event: &EventBridgeEvent<T>,
) -> Result<String, FunctionError> {
    event.id.clone().ok_or_else(|| FunctionError::InvalidInput("the event has no 'id'".into()))
}

/// The idempotency key of a daily invocation: one scheduled run, however many times it
/// is delivered. A schedule's event names the schedule (`resources[0]`,
/// `<aws.scheduler.schedule-arn>`) and its `time` (`<aws.scheduler.scheduled-time>`):
/// both are the same in every attempt the Scheduler makes, in every retry of Lambda's
/// asynchronous queue (which resends the same payload) and in every redelivery of an SQS
/// message, whereas the event id is a new execution id per Scheduler attempt. A backfill
/// naming its day (`detail.date`) adds the day. An event that names no schedule (a
/// person's invocation) is keyed by its id: sending the same id again is a replay.
pub fn idempotency_key(event: &EventBridgeEvent<serde_json::Value>) -> Result<String, FunctionError> {
    let schedule = event
        .resources
        .as_deref()
        .and_then(|r| r.first())
        .filter(|arn| event.source == "aws.scheduler" && arn.contains(":schedule/"));
    let key = match (schedule, event.time) {
        (Some(arn), Some(time)) => {
            format!("{arn}@{}", time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        }
        _ => return event_id(event),
    };
    Ok(match event.detail.get("date").and_then(|d| d.as_str()) {
        Some(date) => format!("{key}#{date}"),
        None => key,
    })
}

/// What a daily function is invoked with: the schedule's input itself (Scheduler ->
/// Lambda, or a person's `aws lambda invoke`), or that same input as the body of each
/// record of an SQS batch (Scheduler -> queue -> event source mapping, the path that
/// retries a failed collection for over an hour).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum Daily {
    // First: only a batch has `Records`, and an EventBridge event has no such field.
    Queued(aws_lambda_events::sqs::SqsEvent),
    Direct(EventBridgeEvent<serde_json::Value>),
}

impl From<EventBridgeEvent<serde_json::Value>> for Daily {
    fn from(event: EventBridgeEvent<serde_json::Value>) -> Self {
        Daily::Direct(event)
    }
}

impl Daily {
    /// The schedule inputs it carries: one when direct, one per record when queued. A
    /// record whose body is not a schedule's input is `InvalidInput`: no retry mends it,
    /// and the queue's redrive policy moves it to the dead-letter queue.
    pub fn events(self) -> Result<Vec<EventBridgeEvent<serde_json::Value>>, FunctionError> {
        match self {
            Daily::Direct(event) => Ok(vec![event]),
            Daily::Queued(batch) => batch
                .records
                .into_iter()
                .map(|record| {
                    let id = record.message_id.as_deref().unwrap_or("-").to_string();
                    let body = record.body.unwrap_or_default();
                    serde_json::from_str(&body).map_err(|e| {
                        FunctionError::InvalidInput(format!(
                            "SQS message {id} does not hold a schedule's input: {e}"
                        ))
                    })
                })
                .collect(),
        }
    }
}

/// A daily function's answer: the one event's answer, or the list of a batch's.
pub fn answers(mut each: Vec<serde_json::Value>) -> serde_json::Value {
    match each.len() {
        1 => each.pop().unwrap_or_default(),
        _ => serde_json::Value::Array(each),
    }
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

    fn sample(path: &str) -> serde_json::Value {
        let path = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    /// The Scheduler makes a new execution id for each attempt; the schedule and its
    /// scheduled time are the same in all of them.
    #[test]
    fn a_scheduler_retry_with_a_new_execution_id_has_the_same_idempotency_key() {
        let first: EventBridgeEvent<serde_json::Value> =
            serde_json::from_value(sample("evaluate/scheduled.json")).unwrap();
        let retry: EventBridgeEvent<serde_json::Value> =
            serde_json::from_value(sample("evaluate/scheduler-retry.json")).unwrap();
        assert_ne!(first.id, retry.id, "the samples must differ in their execution id");
        assert_eq!(idempotency_key(&first).unwrap(), idempotency_key(&retry).unwrap());
        assert_eq!(
            idempotency_key(&first).unwrap(),
            "arn:aws:scheduler:ap-south-1:123456789012:schedule/default/revscale-evaluate-daily@2026-11-29T00:30:00Z"
        );
    }

    #[test]
    fn the_next_days_run_another_schedule_and_a_named_day_have_other_keys_and_a_persons_event_is_keyed_by_its_id()
     {
        let base = sample("evaluate/scheduled.json");
        let key = |v: serde_json::Value| {
            idempotency_key(&serde_json::from_value::<EventBridgeEvent<serde_json::Value>>(v).unwrap())
                .unwrap()
        };
        let today = key(base.clone());
        let mut tomorrow = base.clone();
        tomorrow["time"] = "2026-11-30T00:30:00Z".into();
        let mut other = base.clone();
        other["resources"][0] = "arn:aws:scheduler:ap-south-1:123456789012:schedule/default/other".into();
        let mut named = base.clone();
        named["detail"]["date"] = "2026-11-20".into();
        let keys = [today.clone(), key(tomorrow), key(other), key(named)];
        let distinct: std::collections::BTreeSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), 4, "{keys:?}");
        assert_eq!(key(sample("evaluate/backfill.json")), "backfill-evaluate-2026-11-20");
        let mut anonymous = base;
        anonymous.as_object_mut().unwrap().remove("id");
        anonymous["resources"] = serde_json::json!([]);
        let err = idempotency_key(&serde_json::from_value(anonymous).unwrap()).unwrap_err();
        assert_eq!(err.error_type(), "InvalidInput");
    }

    /// Scheduler -> SQS -> event source mapping hands the collectors a batch whose body
    /// is the schedule's Input; Scheduler -> Lambda, or a person, hands the Input itself.
    #[test]
    fn a_daily_function_reads_the_same_event_directly_or_from_an_sqs_batch() {
        for name in ["collect-revenue", "collect-cost"] {
            let direct: Daily = serde_json::from_value(sample(&format!("{name}/scheduled.json"))).unwrap();
            let queued: Daily = serde_json::from_value(sample(&format!("{name}/queued.json"))).unwrap();
            assert!(matches!(queued, Daily::Queued(_)), "{name}: {queued:?}");
            assert!(matches!(direct, Daily::Direct(_)), "{name}: {direct:?}");
            assert_eq!(direct.events().unwrap(), queued.events().unwrap(), "{name}");
        }
    }

    #[test]
    fn an_sqs_record_that_is_not_a_schedules_input_is_invalid_input() {
        let mut batch = sample("collect-cost/queued.json");
        batch["Records"][0]["body"] = "hello".into();
        let daily: Daily = serde_json::from_value(batch).unwrap();
        let err = daily.events().unwrap_err();
        assert_eq!(err.error_type(), "InvalidInput");
        assert!(err.to_string().contains("d3a5c7e9-2b4d-4a6c-9e8f-0a1b3c5d7f92"), "{err}");
    }

    #[test]
    fn one_event_answers_alone_and_a_batch_answers_with_a_list() {
        assert_eq!(answers(vec![serde_json::json!(1)]), serde_json::json!(1));
        assert_eq!(answers(vec![serde_json::json!(1), serde_json::json!(2)]), serde_json::json!([1, 2]));
    }

    #[test]
    fn a_missing_or_malformed_variable_is_a_configuration_error() {
        let err = FunctionError::from(EnvError::Missing("TABLE_NAME"));
        assert_eq!(err.error_type(), "Configuration");
        assert_eq!(err.to_string(), "environment variable TABLE_NAME is not set");
    }
}
