//! What every route shares: the dependencies built at cold start, one request as a
//! change sees it, the API's errors and limits. The routes and the handler both import
//! it, so neither imports the other.

use chrono::{DateTime, NaiveDate, Utc};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use revscale_api::ErrorResponse;
use revscale_aws::env::ScheduleZone;
use revscale_engine::Config;
use revscale_engine::ports::StoreError;
use sha2::{Digest, Sha256};

use crate::auth::{Caller, Roles};

/// Bodies are a few hundred bytes; anything this large is a mistake or an attack.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_OVERRIDE_DAYS: u64 = 30;
/// Open overrides (pending or active) at once; a request beyond is a 409.
pub const MAX_OPEN_OVERRIDES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String, allow: Method },
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        let error = match &self {
            // The chain goes to the log; the caller gets a generic message.
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error; see the function's logs".to_string()
            }
            other => other.to_string(),
        };
        // An error body is a single string: it always serialises.
        let body = serde_json::to_string(&ErrorResponse { error }).unwrap_or_default();
        let mut builder =
            Response::builder().status(self.status()).header("content-type", "application/json");
        if let ApiError::MethodNotAllowed { allow, .. } = &self {
            builder = builder.header("allow", allow.as_str());
        }
        builder.body(Body::from(body)).unwrap_or_else(|_| Response::new(Body::Empty))
    }
}

/// What the handler works with: built once per cold start.
pub struct Deps<S, B, N> {
    pub config: Config,
    /// Changes go to the store as is; an evaluation a request triggers goes through the
    /// store scoped to the request id, so it is recorded once per request.
    pub store: S,
    pub bus: B,
    pub notifier: N,
    pub roles: Roles,
    /// The schedule's time zone (`SCHEDULE_TIMEZONE`): "today" for the API is the date
    /// the collectors and the evaluator use.
    pub timezone: ScheduleZone,
    /// Whether a provisioning run's execution still runs: a stuck run is released only
    /// once Step Functions says its execution ended.
    pub executions: std::sync::Arc<dyn revscale_aws::executions::RunningExecutions>,
}

impl<S, B, N> Deps<S, B, N> {
    /// The date of `now` in the schedule's time zone.
    pub(crate) fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        self.timezone.today(now)
    }
}

/// A short, URL-safe tag of the request id (API Gateway's ids may hold `=` or `/`).
pub(crate) fn request_tag(request_id: &str) -> String {
    let digest = Sha256::digest(request_id.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// One request, as every change sees it.
pub(crate) struct Ctx<'a> {
    pub caller: &'a Caller,
    pub now: DateTime<Utc>,
    pub request_id: &'a str,
}

/// Query parameters a route accepts: anything else is a mistake worth a 400.
pub(crate) fn only_params(req: &Request, allowed: &[&str]) -> Result<(), ApiError> {
    let params = req.query_string_parameters();
    if let Some((name, _)) = params.iter().find(|(name, _)| !allowed.contains(name)) {
        let accepted = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
        return Err(ApiError::BadRequest(format!("unknown query parameter '{name}' (accepted: {accepted})")));
    }
    Ok(())
}
