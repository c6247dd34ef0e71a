//! What every revscale Lambda shares: JSON logs, stable error types, and the time of
//! a scheduled event.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use lambda_runtime::Diagnostic;

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
        // The full chain goes to the log; the runtime reports the stable type.
        tracing::error!(error_type = e.error_type(), error = %e, "invocation failed");
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

/// JSON logs on stdout, level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
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

/// The event id, used as the idempotency key of the invocation.
pub fn event_id<T: serde::Serialize + serde::de::DeserializeOwned>(
    event: &EventBridgeEvent<T>,
) -> Result<String, FunctionError> {
    event.id.clone().ok_or_else(|| FunctionError::InvalidInput("the event has no 'id'".into()))
}
