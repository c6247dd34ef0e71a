//! The operator API (API Gateway HTTP API with IAM authorization): where the system
//! stands, what it decided, and the few changes a human may make: overrides with a
//! second person's approval, the breaker, the mode, approving a pending level change,
//! releasing a provisioning run that could not roll back once it is repaired by hand.
//!
//! Who is asking comes from the request context API Gateway fills after checking the
//! SigV4 signature (`requestContext.authorizer.iam.userArn`), never from the body. Every
//! change is a conditional write of the state together with an audit record saying who,
//! when, what and why.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use revscale_engine::cycle::{EvaluationOutcome, billed_history, production_history, run_evaluation};
use revscale_engine::engine::{Inputs, evaluate};
use revscale_engine::ports::{AuditRecord, EventBus, Notifier, Store, StoreError, Versioned, Written};
use revscale_engine::run::{self, RunError};
use revscale_engine::state::{BreakerStatus, ComponentState, Mode, Override, SystemState};
use revscale_engine::{ComponentId, Config, Decision, Event};
use serde::Deserialize;
use serde_json::{Value, json};

/// Bodies are a few hundred bytes; anything this large is a mistake or an attack.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_OVERRIDE_DAYS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String, allow: &'static str },
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
    fn status(&self) -> StatusCode {
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

    fn into_response(self) -> Response<Body> {
        let status = self.status();
        let message = match &self {
            // The chain goes to the log; the caller gets a generic message.
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error; see the function's logs".to_string()
            }
            other => other.to_string(),
        };
        let mut builder = Response::builder().status(status).header("content-type", "application/json");
        if let ApiError::MethodNotAllowed { allow, .. } = &self {
            builder = builder.header("allow", *allow);
        }
        builder
            .body(Body::from(json!({"error": message}).to_string()))
            .unwrap_or_else(|_| Response::new(Body::Empty))
    }
}

pub struct Deps<B, N> {
    pub config: Config,
    pub bus: B,
    pub notifier: N,
}

fn ok(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

fn context(req: &Request) -> Option<lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext> {
    #[allow(unreachable_patterns)]
    match req.request_context() {
        RequestContext::ApiGatewayV2(ctx) => Some(ctx),
        _ => None,
    }
}

/// The caller's IAM principal, as API Gateway's IAM authorizer verified it.
pub fn principal(req: &Request) -> Result<String, ApiError> {
    context(req)
        .and_then(|ctx| ctx.authorizer)
        .and_then(|a| a.iam)
        .and_then(|iam| iam.user_arn.or(iam.caller_id))
        .filter(|arn| !arn.trim().is_empty())
        .ok_or_else(|| {
            ApiError::Forbidden(
                "no IAM identity in the request: sign it with SigV4 (e.g. `revscale status`)".into(),
            )
        })
}

/// The time API Gateway received the request: the clock of any decision it triggers.
fn request_time(req: &Request) -> DateTime<Utc> {
    context(req)
        .and_then(|ctx| DateTime::from_timestamp_millis(ctx.time_epoch))
        .filter(|t| t.timestamp() > 0)
        .unwrap_or_else(Utc::now)
}

fn request_id(req: &Request) -> String {
    context(req)
        .and_then(|ctx| ctx.request_id)
        .unwrap_or_else(|| format!("req-{}", request_time(req).timestamp_millis()))
}

fn body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.is_empty() {
        return Err(ApiError::BadRequest("a JSON body is required".into()));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() || inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest(format!("malformed body: {inner}"))
        } else {
            ApiError::BadRequest(format!("field '{path}': {inner}"))
        }
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideRequest {
    level: u8,
    until: NaiveDate,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeRequest {
    mode: Mode,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseRequest {
    decision_id: String,
    /// Where each component the run may have touched really stands, after the repair.
    components: BTreeMap<ComponentId, ComponentState>,
    reason: String,
}

fn checked_reason(reason: &str) -> Result<String, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::BadRequest(format!(
            "field 'reason': required, at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(reason.to_string())
}

/// Serves one request; every failure becomes a response with its status code.
/// Changes go through `store`; an evaluation the request triggers goes through
/// `store_for(request id)`, so that evaluation is recorded once per request.
pub async fn handle<S: Store, B: EventBus, N: Notifier>(
    deps: &Deps<B, N>,
    store: &S,
    store_for: impl Fn(&str) -> S,
    req: Request,
) -> Response<Body> {
    match route(deps, store, &store_for, &req).await {
        Ok(response) => response,
        Err(e) => {
            if !matches!(e, ApiError::Internal(_)) {
                tracing::info!(status = e.status().as_u16(), error = %e, path = req.raw_http_path(), "request refused");
            }
            e.into_response()
        }
    }
}

async fn route<S: Store, B: EventBus, N: Notifier>(
    deps: &Deps<B, N>,
    store: &S,
    store_for: &impl Fn(&str) -> S,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    if req.body().as_ref().len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let path = req.raw_http_path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    let not_allowed = |allow: &'static str| ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: path.clone(),
        allow,
    };
    // Routes are matched first, so an unknown route is a 404 and a known one with the
    // wrong method a 405, before any identity check.
    let allowed = match segments.as_slice() {
        ["status"] | ["decisions"] => "GET",
        ["overrides"]
        | ["overrides", _, "approve"]
        | ["breaker", "reset"]
        | ["mode"]
        | ["pending", "approve"]
        | ["provisioning", "release"]
        | ["evaluate"] => "POST",
        ["overrides", _] => "DELETE",
        _ => return Err(ApiError::NotFound(format!("no route {path}"))),
    };
    if method.as_str() != allowed {
        return Err(not_allowed(allowed));
    }
    let who = principal(req)?;
    let now = request_time(req);
    let evaluation_store = store_for(&request_id(req));
    match (method, segments.as_slice()) {
        (Method::GET, ["status"]) => status(deps, store, now).await,
        (Method::GET, ["decisions"]) => decisions(store, req).await,
        (Method::POST, ["overrides"]) => request_override(deps, store, req, &who, now).await,
        (Method::POST, ["overrides", id, "approve"]) => {
            approve_override(deps, store, &evaluation_store, id, &who, now).await
        }
        (Method::DELETE, ["overrides", id]) => cancel_override(deps, store, id, &who, now).await,
        (Method::POST, ["breaker", "reset"]) => {
            change(deps, store, &who, now, "breaker-reset", "reset the circuit breaker", |s| {
                s.breaker = Default::default();
                Ok(())
            })
            .await?;
            Ok(ok(StatusCode::OK, json!({"breaker": "closed"})))
        }
        (Method::POST, ["mode"]) => {
            let ModeRequest { mode } = body(req)?;
            change(deps, store, &who, now, "mode", &format!("set the mode to {mode}"), |s| {
                s.mode = Some(mode);
                Ok(())
            })
            .await?;
            Ok(ok(StatusCode::OK, json!({"mode": mode})))
        }
        (Method::POST, ["pending", "approve"]) => {
            approve_pending(deps, store, &evaluation_store, &who, now).await
        }
        (Method::POST, ["provisioning", "release"]) => release_stuck_run(deps, store, req, &who, now).await,
        (Method::POST, ["evaluate"]) => {
            let dry_run = req.query_string_parameters().first("dry_run").map(str::to_string);
            if dry_run.as_deref() != Some("true") {
                return Err(ApiError::BadRequest(
                    "query parameter 'dry_run' must be true: real evaluations run on the schedule".into(),
                ));
            }
            let (state, decision) = plan(deps, store, now).await?;
            Ok(ok(StatusCode::OK, json!({"level": state.level, "decision": decision})))
        }
        _ => Err(ApiError::NotFound(format!("no route {path}"))),
    }
}

async fn load<S: Store>(
    deps_config: &Config,
    store: &S,
    now: DateTime<Utc>,
) -> Result<(SystemState, Option<u64>), ApiError> {
    Ok(match store.load_state().await? {
        Some(Versioned { value, version }) => (value, Some(version)),
        None => (SystemState::initial(deps_config, now.date_naive()), None),
    })
}

/// Applies `edit` to the current state and stores it with an audit record; retries
/// on a concurrent write (the edit is re-applied to the fresh state).
async fn change<S: Store, B, N>(
    deps: &Deps<B, N>,
    store: &S,
    who: &str,
    now: DateTime<Utc>,
    kind: &str,
    what: &str,
    edit: impl Fn(&mut SystemState) -> Result<(), ApiError>,
) -> Result<SystemState, ApiError> {
    change_with_events(deps, store, who, now, kind, what, |s| edit(s).map(|()| Vec::new())).await
}

/// [`change`], for an edit whose consequences (the breaker opening...) are events the
/// audit record keeps.
async fn change_with_events<S: Store, B, N>(
    deps: &Deps<B, N>,
    store: &S,
    who: &str,
    now: DateTime<Utc>,
    kind: &str,
    what: &str,
    edit: impl Fn(&mut SystemState) -> Result<Vec<Event>, ApiError>,
) -> Result<SystemState, ApiError> {
    for _ in 0..3 {
        let (mut state, version) = load(&deps.config, store, now).await?;
        let events = edit(&mut state)?;
        let record = AuditRecord {
            id: format!("{}-{kind}-{}", now.format("%Y-%m-%dT%H:%M:%S%.3fZ"), now.timestamp_subsec_nanos()),
            at: now,
            kind: kind.into(),
            actor: who.into(),
            decision: None,
            events,
            note: what.into(),
            state_version: None,
        };
        match store.record_decision(&record, &state, version).await {
            Ok(Written::Created) | Ok(Written::AlreadyExists) => {
                tracing::info!(actor = who, kind, what, "change recorded");
                return Ok(state);
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("the state kept changing under this request; retry".into()))
}

/// Releases the lock of a run that could neither finish nor roll back, once an
/// operator has repaired its components by hand and says where each one stands.
async fn release_stuck_run<S: Store, B, N>(
    deps: &Deps<B, N>,
    store: &S,
    req: &Request,
    who: &str,
    now: DateTime<Utc>,
) -> Result<Response<Body>, ApiError> {
    let ReleaseRequest { decision_id, components, reason } = body(req)?;
    let reason = checked_reason(&reason)?;
    let declared: Vec<String> = components.iter().map(|(c, s)| format!("{c}={s}")).collect();
    let what = format!(
        "released provisioning run {decision_id} after a manual repair: {} ({reason})",
        declared.join(", ")
    );
    let today = now.date_naive();
    let state = change_with_events(deps, store, who, now, "provisioning-release", &what, |s| {
        let (_, events) = run::release_after_repair(&deps.config, s, &decision_id, &components, today)
            .map_err(|e| match e {
                RunError::NoRun(_) => ApiError::Conflict(e.to_string()),
                other => ApiError::BadRequest(other.to_string()),
            })?;
        Ok(events)
    })
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({"released": decision_id, "components": components, "breaker": breaker_json(deps, &state, today)}),
    ))
}

async fn plan<S: Store, B, N>(
    deps: &Deps<B, N>,
    store: &S,
    now: DateTime<Utc>,
) -> Result<(SystemState, Decision), ApiError> {
    let (state, _) = load(&deps.config, store, now).await?;
    let today = now.date_naive();
    // The same production cost as the evaluator's: Cost Explorer plus external bills.
    let billed =
        billed_history(&deps.config, store, today).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let history = production_history(&deps.config, &state, &billed);
    let decision = evaluate(&Inputs { config: &deps.config, state: &state, history: &history }, today);
    Ok((state, decision))
}

fn breaker_json<B, N>(deps: &Deps<B, N>, state: &SystemState, today: NaiveDate) -> Value {
    let status = match state.breaker.status(&deps.config, today) {
        BreakerStatus::Closed => json!({"status": "closed"}),
        BreakerStatus::Open { until } => json!({"status": "open", "until": until}),
        BreakerStatus::HalfOpen => json!({"status": "half_open"}),
    };
    json!({"consecutive_failures": state.breaker.consecutive_failures, "opened_on": state.breaker.opened_on, "state": status})
}

async fn status<S: Store, B, N>(
    deps: &Deps<B, N>,
    store: &S,
    now: DateTime<Utc>,
) -> Result<Response<Body>, ApiError> {
    let (state, decision) = plan(deps, store, now).await?;
    let today = now.date_naive();
    let (active, pending): (Vec<&Override>, Vec<&Override>) =
        state.overrides.iter().filter(|o| !o.cancelled && today <= o.until).partition(|o| o.is_active(today));
    Ok(ok(
        StatusCode::OK,
        json!({
            "date": today,
            "level": state.level,
            "level_since": state.level_since,
            "mode": state.mode(&deps.config),
            "mrr": decision.figures.mrr,
            "average_3m": decision.figures.average_3m,
            "cost": decision.figures.cost,
            "ratio_pct": decision.figures.ratio.map(|r| r.as_percent()),
            "components": state.components.iter().map(|(id, r)| (id.to_string(), json!({"state": r.state, "since": r.since}))).collect::<serde_json::Map<_, _>>(),
            "breaker": breaker_json(deps, &state, today),
            "overrides": {"active": active, "pending": pending},
            "pending_approval": state.pending_approval,
            "provisioning": state.provisioning.as_ref().map(|r| json!({"decision_id": r.decision_id, "from_level": r.from_level, "to_level": r.to_level, "started_at": r.started_at})),
            "next": {"would_do": decision.outcome, "to_level": decision.to_level, "reasons": decision.reasons},
        }),
    ))
}

async fn decisions<S: Store>(store: &S, req: &Request) -> Result<Response<Body>, ApiError> {
    let params = req.query_string_parameters();
    let limit = match params.first("limit") {
        None => 20,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "query parameter 'limit' must be 1 to 100 (got '{raw}')"
                )));
            }
        },
    };
    let before = params.first("before").map(str::to_string);
    let records = store.recent_audit(limit, before).await?;
    let next = if records.len() == limit { records.last().map(|r| r.id.clone()) } else { None };
    Ok(ok(StatusCode::OK, json!({"decisions": records, "next": next})))
}

async fn request_override<S: Store, B, N>(
    deps: &Deps<B, N>,
    store: &S,
    req: &Request,
    who: &str,
    now: DateTime<Utc>,
) -> Result<Response<Body>, ApiError> {
    let OverrideRequest { level, until, reason } = body(req)?;
    let today = now.date_naive();
    if level > deps.config.top_level() {
        return Err(ApiError::BadRequest(format!(
            "field 'level': {level} is not a configured level (0 to {})",
            deps.config.top_level()
        )));
    }
    let latest = today + Days::new(MAX_OVERRIDE_DAYS);
    if until < today || until > latest {
        return Err(ApiError::BadRequest(format!(
            "field 'until': {until} must be between {today} and {latest} (at most {MAX_OVERRIDE_DAYS} days ahead)"
        )));
    }
    let reason = checked_reason(&reason)?;
    let id = format!("ovr-{}", now.format("%Y%m%d%H%M%S%3f"));
    let created = Override {
        id: id.clone(),
        level,
        until,
        reason: reason.clone(),
        requested_by: who.into(),
        requested_on: today,
        approved_by: None,
        cancelled: false,
    };
    let what = format!("requested override {id}: pin L{level} until {until} ({reason})");
    change(deps, store, who, now, "override-request", &what, |s| {
        if !s.overrides.iter().any(|o| o.id == id) {
            s.overrides.push(created.clone());
        }
        Ok(())
    })
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"override": created, "next": "another principal must approve it: POST /overrides/{id}/approve"}),
    ))
}

async fn approve_override<S: Store, B: EventBus, N: Notifier>(
    deps: &Deps<B, N>,
    store: &S,
    evaluation_store: &S,
    id: &str,
    who: &str,
    now: DateTime<Utc>,
) -> Result<Response<Body>, ApiError> {
    let today = now.date_naive();
    let state = change(deps, store, who, now, "override-approve", &format!("approved override {id}"), |s| {
        let o = s
            .overrides
            .iter_mut()
            .find(|o| o.id == id)
            .ok_or_else(|| ApiError::NotFound(format!("no override {id}")))?;
        if o.requested_by == who {
            return Err(ApiError::Forbidden(format!(
                "{who} requested override {id} and cannot approve it: another principal must"
            )));
        }
        if o.cancelled {
            return Err(ApiError::Conflict(format!("override {id} was cancelled")));
        }
        if o.until < today {
            return Err(ApiError::Conflict(format!("override {id} expired on {}", o.until)));
        }
        if let Some(by) = &o.approved_by {
            return Err(ApiError::Conflict(format!("override {id} is already approved by {by}")));
        }
        o.approved_by = Some(who.into());
        Ok(())
    })
    .await?;
    let evaluation = evaluate_now(deps, evaluation_store, now).await?;
    let approved = state.overrides.iter().find(|o| o.id == id).cloned();
    Ok(ok(StatusCode::OK, json!({"override": approved, "evaluation": evaluation})))
}

async fn cancel_override<S: Store, B, N>(
    deps: &Deps<B, N>,
    store: &S,
    id: &str,
    who: &str,
    now: DateTime<Utc>,
) -> Result<Response<Body>, ApiError> {
    let state = change(deps, store, who, now, "override-cancel", &format!("cancelled override {id}"), |s| {
        let o = s
            .overrides
            .iter_mut()
            .find(|o| o.id == id)
            .ok_or_else(|| ApiError::NotFound(format!("no override {id}")))?;
        o.cancelled = true;
        Ok(())
    })
    .await?;
    Ok(ok(StatusCode::OK, json!({"override": state.overrides.iter().find(|o| o.id == id)})))
}

async fn approve_pending<S: Store, B: EventBus, N: Notifier>(
    deps: &Deps<B, N>,
    store: &S,
    evaluation_store: &S,
    who: &str,
    now: DateTime<Utc>,
) -> Result<Response<Body>, ApiError> {
    let state = change(deps, store, who, now, "pending-approve", "approved the pending level change", |s| {
        let p = s
            .pending_approval
            .as_mut()
            .ok_or_else(|| ApiError::NotFound("no level change waits for approval".into()))?;
        if let Some(by) = &p.approved_by {
            return Err(ApiError::Conflict(format!("already approved by {by}")));
        }
        p.approved_by = Some(who.into());
        Ok(())
    })
    .await?;
    let evaluation = evaluate_now(deps, evaluation_store, now).await?;
    Ok(ok(StatusCode::OK, json!({"pending_approval": state.pending_approval, "evaluation": evaluation})))
}

/// An approval the engine acts on at once: evaluate now rather than at the next
/// schedule, through the same use case as the evaluator.
async fn evaluate_now<S: Store, B: EventBus, N: Notifier>(
    deps: &Deps<B, N>,
    store: &S,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let outcome = run_evaluation(&deps.config, store, &deps.bus, &deps.notifier, now)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(match outcome {
        EvaluationOutcome::Recorded { decision, published, .. } => json!({
            "decision_id": decision.id, "from_level": decision.from_level, "to_level": decision.to_level,
            "outcome": decision.outcome, "published": published, "reasons": decision.reasons,
        }),
        EvaluationOutcome::Replay { decision_id } => json!({"decision_id": decision_id, "published": false}),
    })
}
