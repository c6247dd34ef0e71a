//! The operator API (API Gateway HTTP API with IAM authorization): where the system
//! stands, what it decided, and the few changes a human may make: overrides with a
//! second person's approval, the breaker, the mode, approving a pending level change,
//! releasing a provisioning run that could not roll back once it is repaired by hand.
//!
//! Who is asking comes from the request context API Gateway fills after checking the
//! SigV4 signature (`requestContext.authorizer.iam.userArn`), never from the body, and
//! is normalised to a person ([`crate::auth`]) before any role check or two-person
//! rule. Every change is a conditional write of the state together with an audit record
//! saying who, when, what and why, under an id derived from the API request id: a
//! request is applied once, and a second write under the same id is a 409.
//!
//! The state item stays small whatever the traffic: closed overrides (cancelled,
//! rejected, expired) leave it at the next change (the audit trail keeps them), and at
//! most [`MAX_OPEN_OVERRIDES`] may be open at once.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use revscale_engine::evaluation::{EvaluationOutcome, billed_history, production_history, run_evaluation_on};
use revscale_engine::model::{ComponentState, Mode};
use revscale_engine::ports::{AuditRecord, EventBus, Notifier, Store, StoreError, Versioned, Written};
use revscale_engine::provisioning::run::{self, RunError};
use revscale_engine::rules::{Inputs, evaluate};
use revscale_engine::state::{BreakerStatus, Override, SystemState};
use revscale_engine::{ComponentId, Config, Decision, Event};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::{Caller, Role, Roles};

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
    pub roles: Roles,
    /// The schedule's IANA time zone (`SCHEDULE_TIMEZONE`): "today" for the API is the
    /// date the collectors and the evaluator use. `None`: UTC.
    pub timezone: Option<String>,
}

impl<B, N> Deps<B, N> {
    /// The date of `now` in the schedule's time zone.
    fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        self.timezone
            .as_deref()
            .and_then(|zone| revscale_aws::lambda::local_date(now, zone).ok())
            .unwrap_or_else(|| now.date_naive())
    }
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

/// The caller, as API Gateway's IAM authorizer verified it, normalised to a person.
pub fn caller(req: &Request) -> Result<Caller, ApiError> {
    let arn = context(req)
        .and_then(|ctx| ctx.authorizer)
        .and_then(|a| a.iam)
        .and_then(|iam| iam.user_arn)
        .filter(|arn| !arn.trim().is_empty())
        .ok_or_else(|| {
            ApiError::Forbidden(
                "no IAM identity in the request: sign it with SigV4 (e.g. `revscale status`)".into(),
            )
        })?;
    Caller::from_principal(&arn).map_err(|e| ApiError::Forbidden(e.to_string()))
}

/// The time API Gateway received the request: the clock of any decision it triggers.
fn request_time(req: &Request) -> DateTime<Utc> {
    context(req)
        .and_then(|ctx| DateTime::from_timestamp_millis(ctx.time_epoch))
        .filter(|t| t.timestamp() > 0)
        .unwrap_or_else(Utc::now)
}

/// API Gateway's id of the request: every id a request creates derives from it.
fn request_id(req: &Request) -> Result<String, ApiError> {
    context(req)
        .and_then(|ctx| ctx.request_id)
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| ApiError::BadRequest("the request has no API Gateway request id".into()))
}

/// A short, URL-safe tag of the request id (API Gateway's ids may hold `=` or `/`).
fn request_tag(request_id: &str) -> String {
    let digest = Sha256::digest(request_id.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// One request, as every change sees it.
struct Ctx<'a> {
    caller: &'a Caller,
    now: DateTime<Utc>,
    request_id: &'a str,
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

/// The method and role each route needs, or 404.
fn route_of(segments: &[&str], path: &str) -> Result<(&'static str, Role), ApiError> {
    Ok(match segments {
        ["status"] | ["decisions"] => ("GET", Role::Reader),
        ["overrides"] | ["breaker", "reset"] | ["mode"] | ["provisioning", "release"] | ["evaluate"] => {
            ("POST", Role::Operator)
        }
        ["overrides", _] => ("DELETE", Role::Operator),
        ["overrides", _, "approve" | "reject"] | ["pending", "approve" | "reject"] => {
            ("POST", Role::Approver)
        }
        _ => return Err(ApiError::NotFound(format!("no route {path}"))),
    })
}

/// Query parameters a route accepts: anything else is a mistake worth a 400.
fn only_params(req: &Request, allowed: &[&str]) -> Result<(), ApiError> {
    let params = req.query_string_parameters();
    if let Some((name, _)) = params.iter().find(|(name, _)| !allowed.contains(name)) {
        let accepted = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
        return Err(ApiError::BadRequest(format!("unknown query parameter '{name}' (accepted: {accepted})")));
    }
    Ok(())
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
    // Routes are matched first, so an unknown route is a 404 and a known one with the
    // wrong method a 405, before any identity check.
    let (allowed, role) = route_of(&segments, &path)?;
    if method.as_str() != allowed {
        return Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            path: path.clone(),
            allow: allowed,
        });
    }
    let caller = caller(req)?;
    if !deps.roles.allows(&caller, role) {
        return Err(ApiError::Forbidden(format!(
            "{} (as {}) lacks the {role} role: {method} {path} needs a principal listed in {}",
            caller.principal,
            caller.person,
            role.variable()
        )));
    }
    let request_id = request_id(req)?;
    let ctx = Ctx { caller: &caller, now: request_time(req), request_id: &request_id };
    let now = ctx.now;
    let evaluation_store = store_for(&request_id);
    match (method, segments.as_slice()) {
        (Method::GET, ["status"]) => {
            only_params(req, &[])?;
            status(deps, store, now).await
        }
        (Method::GET, ["decisions"]) => decisions(store, req).await,
        (Method::POST, ["overrides"]) => request_override(deps, store, req, &ctx).await,
        (Method::POST, ["overrides", id, "approve"]) => {
            approve_override(deps, store, &evaluation_store, id, &ctx).await
        }
        (Method::POST, ["overrides", id, "reject"]) => {
            close_override(deps, store, id, &ctx, Close::Reject).await
        }
        (Method::DELETE, ["overrides", id]) => close_override(deps, store, id, &ctx, Close::Cancel).await,
        (Method::POST, ["breaker", "reset"]) => {
            change(deps, store, &ctx, "breaker-reset", "reset the circuit breaker", |s| {
                s.breaker = Default::default();
                Ok(())
            })
            .await?;
            Ok(ok(StatusCode::OK, json!({"breaker": "closed"})))
        }
        (Method::POST, ["mode"]) => {
            let ModeRequest { mode } = body(req)?;
            change(deps, store, &ctx, "mode", &format!("set the mode to {mode}"), |s| {
                s.mode = Some(mode);
                Ok(())
            })
            .await?;
            Ok(ok(StatusCode::OK, json!({"mode": mode})))
        }
        (Method::POST, ["pending", "approve"]) => approve_pending(deps, store, &evaluation_store, &ctx).await,
        (Method::POST, ["pending", "reject"]) => reject_pending(deps, store, req, &ctx).await,
        (Method::POST, ["provisioning", "release"]) => release_stuck_run(deps, store, req, &ctx).await,
        (Method::POST, ["evaluate"]) => {
            only_params(req, &["dry_run"])?;
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
    today: NaiveDate,
) -> Result<(SystemState, Option<u64>), ApiError> {
    Ok(match store.load_state().await? {
        Some(Versioned { value, version }) => (value, Some(version)),
        None => (SystemState::initial(deps_config, today), None),
    })
}

/// Applies `edit` to the current state and stores it with an audit record; retries
/// on a concurrent write (the edit is re-applied to the fresh state).
async fn change<S: Store, B, N>(
    deps: &Deps<B, N>,
    store: &S,
    ctx: &Ctx<'_>,
    kind: &str,
    what: &str,
    edit: impl Fn(&mut SystemState) -> Result<(), ApiError>,
) -> Result<SystemState, ApiError> {
    change_with_events(deps, store, ctx, kind, what, |s| edit(s).map(|()| Vec::new())).await
}

/// Drops the overrides that can no longer act (cancelled, rejected, or past their last
/// day): the audit trail keeps them, and the state item stays small.
fn prune_closed_overrides(state: &mut SystemState, today: NaiveDate) {
    state.overrides.retain(|o| !o.cancelled && o.until >= today);
}

/// [`change`], for an edit whose consequences (the breaker opening...) are events the
/// audit record keeps.
async fn change_with_events<S: Store, B, N>(
    deps: &Deps<B, N>,
    store: &S,
    ctx: &Ctx<'_>,
    kind: &str,
    what: &str,
    edit: impl Fn(&mut SystemState) -> Result<Vec<Event>, ApiError>,
) -> Result<SystemState, ApiError> {
    // Time first, so the trail sorts by time; the request's tag makes it unique.
    let id = format!("{}-{kind}-{}", ctx.now.format("%Y-%m-%dT%H:%M:%S%.3fZ"), request_tag(ctx.request_id));
    for _ in 0..3 {
        let (mut state, version) = load(&deps.config, store, deps.today(ctx.now)).await?;
        let events = edit(&mut state)?;
        prune_closed_overrides(&mut state, deps.today(ctx.now));
        let record = AuditRecord {
            id: id.clone(),
            at: ctx.now,
            kind: kind.into(),
            actor: ctx.caller.principal.clone(),
            decision: None,
            events,
            note: what.into(),
            state_version: None,
        };
        match store.record_decision(&record, &state, version).await {
            Ok(Written::Created) => {
                tracing::info!(actor = %ctx.caller.principal, person = %ctx.caller.person, kind, what, audit_id = %id, "change recorded");
                return Ok(state);
            }
            Ok(Written::AlreadyExists) => {
                return Err(ApiError::Conflict(format!(
                    "request {} was already applied (audit record {id}); nothing was changed again",
                    ctx.request_id
                )));
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
    ctx: &Ctx<'_>,
) -> Result<Response<Body>, ApiError> {
    let ReleaseRequest { decision_id, components, reason } = body(req)?;
    let reason = checked_reason(&reason)?;
    let declared: Vec<String> = components.iter().map(|(c, s)| format!("{c}={s}")).collect();
    let what = format!(
        "released provisioning run {decision_id} after a manual repair: {} ({reason})",
        declared.join(", ")
    );
    let today = deps.today(ctx.now);
    let state = change_with_events(deps, store, ctx, "provisioning-release", &what, |s| {
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
    let (state, _) = load(&deps.config, store, deps.today(now)).await?;
    let today = deps.today(now);
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
    let today = deps.today(now);
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

/// The longest audit id (a provisioning record's: a decision id and a step suffix).
const MAX_AUDIT_ID_CHARS: usize = 128;

async fn decisions<S: Store>(store: &S, req: &Request) -> Result<Response<Body>, ApiError> {
    only_params(req, &["limit", "before"])?;
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
    let before = match params.first("before") {
        None => None,
        Some(raw) => {
            let valid = !raw.is_empty()
                && raw.chars().count() <= MAX_AUDIT_ID_CHARS
                && raw.chars().all(|c| c.is_ascii_alphanumeric() || "-:._".contains(c));
            if !valid {
                return Err(ApiError::BadRequest(format!(
                    "query parameter 'before' must be an audit id (the 'next' of a previous page), got '{raw}'"
                )));
            }
            Some(raw.to_string())
        }
    };
    let records = store.recent_audit(limit, before).await?;
    let next = if records.len() == limit { records.last().map(|r| r.id.clone()) } else { None };
    Ok(ok(StatusCode::OK, json!({"decisions": records, "next": next})))
}

async fn request_override<S: Store, B, N>(
    deps: &Deps<B, N>,
    store: &S,
    req: &Request,
    ctx: &Ctx<'_>,
) -> Result<Response<Body>, ApiError> {
    let OverrideRequest { level, until, reason } = body(req)?;
    let today = deps.today(ctx.now);
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
    let id = format!("ovr-{}-{}", today.format("%Y%m%d"), request_tag(ctx.request_id));
    let created = Override {
        id: id.clone(),
        level,
        until,
        reason: reason.clone(),
        requested_by: ctx.caller.person.clone(),
        requested_on: today,
        approved_by: None,
        cancelled: false,
    };
    let what = format!("requested override {id}: pin L{level} until {until} ({reason})");
    change(deps, store, ctx, "override-request", &what, |s| {
        if s.overrides.iter().any(|o| o.id == id) {
            return Err(ApiError::Conflict(format!("override {id} already exists")));
        }
        let open = s.overrides.iter().filter(|o| !o.cancelled && o.until >= today).count();
        if open >= MAX_OPEN_OVERRIDES {
            return Err(ApiError::Conflict(format!(
                "{open} overrides are open already (at most {MAX_OPEN_OVERRIDES}): approve, reject or cancel some first"
            )));
        }
        s.overrides.push(created.clone());
        Ok(())
    })
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"override": created, "next": format!("another person must approve it: POST /overrides/{id}/approve")}),
    ))
}

async fn approve_override<S: Store, B: EventBus, N: Notifier>(
    deps: &Deps<B, N>,
    store: &S,
    evaluation_store: &S,
    id: &str,
    ctx: &Ctx<'_>,
) -> Result<Response<Body>, ApiError> {
    let today = deps.today(ctx.now);
    let caller = ctx.caller;
    let state = change(deps, store, ctx, "override-approve", &format!("approved override {id}"), |s| {
        let o = open_override(s, id, today)?;
        if caller.is_same_person_as(&o.requested_by) {
            return Err(ApiError::Forbidden(format!(
                "{} is the person who requested override {id} ({}) and cannot approve it: another person must",
                caller.principal, caller.person
            )));
        }
        if let Some(by) = &o.approved_by {
            return Err(ApiError::Conflict(format!("override {id} is already approved by {by}")));
        }
        o.approved_by = Some(caller.person.clone());
        Ok(())
    })
    .await?;
    let evaluation = evaluate_now(deps, evaluation_store, ctx.now).await?;
    let approved = state.overrides.iter().find(|o| o.id == id).cloned();
    Ok(ok(StatusCode::OK, json!({"override": approved, "evaluation": evaluation})))
}

/// The override `id`, if it can still be approved, rejected or cancelled.
fn open_override<'a>(
    s: &'a mut SystemState,
    id: &str,
    today: NaiveDate,
) -> Result<&'a mut Override, ApiError> {
    let o = s.overrides.iter_mut().find(|o| o.id == id).ok_or_else(|| {
        ApiError::NotFound(format!("no open override {id} (closed ones are in the audit trail)"))
    })?;
    if o.cancelled {
        return Err(ApiError::Conflict(format!("override {id} was cancelled")));
    }
    if o.until < today {
        return Err(ApiError::Conflict(format!("override {id} expired on {}", o.until)));
    }
    Ok(o)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// The requester (or any operator) withdraws it.
    Cancel,
    /// An approver refuses it.
    Reject,
}

async fn close_override<S: Store, B, N>(
    deps: &Deps<B, N>,
    store: &S,
    id: &str,
    ctx: &Ctx<'_>,
    how: Close,
) -> Result<Response<Body>, ApiError> {
    let today = deps.today(ctx.now);
    let (kind, verb) = match how {
        Close::Cancel => ("override-cancel", "cancelled"),
        Close::Reject => ("override-reject", "rejected"),
    };
    let closed = std::sync::Mutex::new(None);
    change(deps, store, ctx, kind, &format!("{verb} override {id}"), |s| {
        let o = open_override(s, id, today)?;
        if how == Close::Reject
            && let Some(by) = &o.approved_by
        {
            return Err(ApiError::Conflict(format!(
                "override {id} is already approved by {by}: an operator may cancel it"
            )));
        }
        o.cancelled = true;
        if let Ok(mut c) = closed.lock() {
            *c = Some(o.clone());
        }
        Ok(())
    })
    .await?;
    let closed = closed.into_inner().ok().flatten();
    Ok(ok(StatusCode::OK, json!({"override": closed, verb: true})))
}

async fn approve_pending<S: Store, B: EventBus, N: Notifier>(
    deps: &Deps<B, N>,
    store: &S,
    evaluation_store: &S,
    ctx: &Ctx<'_>,
) -> Result<Response<Body>, ApiError> {
    let person = ctx.caller.person.clone();
    let state = change(deps, store, ctx, "pending-approve", "approved the pending level change", |s| {
        let p = s
            .pending_approval
            .as_mut()
            .ok_or_else(|| ApiError::NotFound("no level change waits for approval".into()))?;
        if let Some(by) = &p.approved_by {
            return Err(ApiError::Conflict(format!("already approved by {by}")));
        }
        p.approved_by = Some(person.clone());
        Ok(())
    })
    .await?;
    let evaluation = evaluate_now(deps, evaluation_store, ctx.now).await?;
    Ok(ok(StatusCode::OK, json!({"pending_approval": state.pending_approval, "evaluation": evaluation})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectRequest {
    reason: String,
}

/// Refuses the level change waiting for approval. The engine proposes it again while
/// its reasons hold, so a rejection is a "not now", recorded with why.
async fn reject_pending<S: Store, B, N>(
    deps: &Deps<B, N>,
    store: &S,
    req: &Request,
    ctx: &Ctx<'_>,
) -> Result<Response<Body>, ApiError> {
    let RejectRequest { reason } = body(req)?;
    let reason = checked_reason(&reason)?;
    let rejected = std::sync::Mutex::new(None);
    change(
        deps,
        store,
        ctx,
        "pending-reject",
        &format!("rejected the pending level change ({reason})"),
        |s| {
            let p = s
                .pending_approval
                .take()
                .ok_or_else(|| ApiError::NotFound("no level change waits for approval".into()))?;
            if let Ok(mut r) = rejected.lock() {
                *r = Some(p);
            }
            Ok(())
        },
    )
    .await?;
    Ok(ok(StatusCode::OK, json!({"rejected": rejected.into_inner().ok().flatten(), "reason": reason})))
}

/// An approval the engine acts on at once: evaluate now rather than at the next
/// schedule, through the same use case as the evaluator.
async fn evaluate_now<S: Store, B: EventBus, N: Notifier>(
    deps: &Deps<B, N>,
    store: &S,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let outcome = run_evaluation_on(&deps.config, store, &deps.bus, &deps.notifier, now, deps.today(now))
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

/// Everything the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Env {
    pub table_name: String,
    pub event_bus_name: String,
    pub alert_topic_arn: String,
    pub roles: Roles,
    /// `SCHEDULE_TIMEZONE`, checked at cold start.
    pub timezone: Option<String>,
    pub config: Config,
}

impl Env {
    pub fn from_vars<F: Fn(&str) -> Option<String>>(
        vars: &revscale_aws::env::Vars<F>,
    ) -> Result<Env, revscale_aws::env::EnvError> {
        use crate::auth::Patterns;
        // Readers default to anyone the API's IAM authorizer let in; who may change
        // things and who may approve must be said.
        let roles = Roles {
            readers: Patterns::parse(&vars.optional("READER_PRINCIPALS").unwrap_or_else(|| "*".into())),
            operators: Patterns::parse(&vars.required(Role::Operator.variable())?),
            approvers: Patterns::parse(&vars.required(Role::Approver.variable())?),
        };
        let timezone = vars.optional("SCHEDULE_TIMEZONE");
        if let Some(zone) = &timezone {
            revscale_aws::lambda::local_date(Utc::now(), zone).map_err(|e| {
                revscale_aws::env::EnvError::Invalid { name: "SCHEDULE_TIMEZONE", message: e.to_string() }
            })?;
        }
        Ok(Env {
            table_name: vars.required("TABLE_NAME")?,
            event_bus_name: vars.required("EVENT_BUS_NAME")?,
            alert_topic_arn: vars.required("ALERT_TOPIC_ARN")?,
            roles,
            timezone,
            config: revscale_aws::env::load_config(vars)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use revscale_aws::env::from_pairs;

    #[test]
    fn env_needs_the_operator_and_approver_patterns_and_lets_any_caller_read_by_default() {
        let base = [("TABLE_NAME", "t"), ("EVENT_BUS_NAME", "b"), ("ALERT_TOPIC_ARN", "a")];
        let err = Env::from_vars(&from_pairs(&base)).unwrap_err();
        assert_eq!(err.to_string(), "environment variable OPERATOR_PRINCIPALS is not set");
        let mut all = base.to_vec();
        all.extend([
            ("OPERATOR_PRINCIPALS", "arn:aws:iam::123456789012:role/Operator"),
            ("APPROVER_PRINCIPALS", "arn:aws:iam::123456789012:user/*"),
        ]);
        let env = Env::from_vars(&from_pairs(&all)).unwrap();
        let stranger = Caller::from_principal("arn:aws:sts::123456789012:assumed-role/Other/x").unwrap();
        assert!(env.roles.allows(&stranger, Role::Reader));
        assert!(!env.roles.allows(&stranger, Role::Operator));
    }

    #[test]
    fn request_tags_are_short_stable_and_url_safe() {
        assert_eq!(request_tag("JKJaXmPLvHcESHA="), request_tag("JKJaXmPLvHcESHA="));
        assert_ne!(request_tag("JKJaXmPLvHcESHA="), request_tag("JKJaXmPLvHcESHB="));
        assert_eq!(request_tag("a/b=").len(), 12);
        assert!(request_tag("a/b=").chars().all(|c| c.is_ascii_hexdigit()));
    }
}
