//! The operator API (API Gateway HTTP API with IAM authorization): where the system
//! stands, what it decided, and the few changes a human may make: overrides with a
//! second person's approval, the breaker, the mode, approving a pending level change,
//! releasing a provisioning run that could not roll back once it is repaired by hand.
//!
//! This module is the plumbing every route shares: the route table, who is asking,
//! request bodies, refusals. The routes themselves are in [`crate::routes`], and their
//! request and response bodies in `revscale-api`, the crate the CLI reads them with.
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

use chrono::{DateTime, Utc};
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use revscale_aws::SdkConfig;
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::env::{EnvError, ScheduleZone, Vars};
use revscale_aws::lambda::{FromEnv, FunctionError};
use revscale_aws::publish::{EventBridgeBus, SnsNotifier};
use revscale_aws::runtime_config::ConfigSource;
use revscale_engine::ports::{EventBus, Notifier, ScopedStore, Store};
use serde::Serialize;

use crate::auth::{Caller, Role, Roles};
pub use crate::context::{
    ApiError, Deps, MAX_BODY_BYTES, MAX_OPEN_OVERRIDES, MAX_OVERRIDE_DAYS, MAX_REASON_CHARS,
};
use crate::context::{Ctx, only_params};
use crate::routes::{cash, drain, operations, overrides, pending, status};

impl Deps<DynamoStore, EventBridgeBus, SnsNotifier> {
    pub async fn on_aws(env: Env, sdk: &SdkConfig) -> Result<Self, FunctionError> {
        Ok(Deps {
            config: env.config.load(sdk).await?.config,
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), env.table_name),
            bus: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(sdk), env.event_bus_name),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(sdk), env.alert_topic_arn),
            roles: env.roles,
            timezone: env.timezone,
            executions: std::sync::Arc::new(revscale_aws::executions::StepFunctionsExecutions::new(
                aws_sdk_sfn::Client::new(sdk),
                env.provision_state_machine_arn,
            )),
        })
    }
}

/// A typed answer as JSON.
fn respond<T: Serialize>(status: StatusCode, body: &T) -> Result<Response<Body>, ApiError> {
    let text = serde_json::to_string(body).map_err(|e| ApiError::Internal(format!("response body: {e}")))?;
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(text))
        .map_err(|e| ApiError::Internal(format!("response: {e}")))
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

/// The request body as `T` (one of `revscale-api`'s requests); a 400 names the field.
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

/// Every route, with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Status,
    Decisions,
    RequestOverride,
    ApproveOverride { id: String },
    RejectOverride { id: String },
    CancelOverride { id: String },
    ApprovePending,
    RejectPending,
    ResetBreaker,
    SetMode,
    ReleaseRun,
    DryRun,
    DrainPlan,
    RequestDrain,
    ApproveDrain,
    CancelDrain,
    SetCash,
}

/// One row of the route table: a path template (`{id}` is one path segment), the one
/// method it answers, the role it needs, and the route it names.
pub struct RouteSpec {
    pub path: &'static str,
    pub method: Method,
    pub role: Role,
    route: fn(&str) -> Route,
}

impl RouteSpec {
    /// The route for `segments` if they fit this template.
    fn resolve(&self, segments: &[&str]) -> Option<Route> {
        let template: Vec<&str> = self.path.split('/').filter(|s| !s.is_empty()).collect();
        if template.len() != segments.len() {
            return None;
        }
        let mut id = "";
        for (want, got) in template.iter().zip(segments) {
            match *want {
                "{id}" => id = got,
                literal if literal == *got => {}
                _ => return None,
            }
        }
        Some((self.route)(id))
    }
}

/// The route table: every route the API answers, and the only place a route is
/// declared, so that a test can walk every one of them (the two-person gate's matrix
/// in `tests/approval_gate.rs` does).
pub static ROUTES: &[RouteSpec] = &[
    RouteSpec { path: "/status", method: Method::GET, role: Role::Reader, route: |_| Route::Status },
    RouteSpec { path: "/decisions", method: Method::GET, role: Role::Reader, route: |_| Route::Decisions },
    RouteSpec {
        path: "/overrides",
        method: Method::POST,
        role: Role::Operator,
        route: |_| Route::RequestOverride,
    },
    RouteSpec {
        path: "/overrides/{id}",
        method: Method::DELETE,
        role: Role::Operator,
        route: |id| Route::CancelOverride { id: id.into() },
    },
    RouteSpec {
        path: "/overrides/{id}/approve",
        method: Method::POST,
        role: Role::Approver,
        route: |id| Route::ApproveOverride { id: id.into() },
    },
    RouteSpec {
        path: "/overrides/{id}/reject",
        method: Method::POST,
        role: Role::Approver,
        route: |id| Route::RejectOverride { id: id.into() },
    },
    RouteSpec {
        path: "/pending/approve",
        method: Method::POST,
        role: Role::Approver,
        route: |_| Route::ApprovePending,
    },
    RouteSpec {
        path: "/pending/reject",
        method: Method::POST,
        role: Role::Approver,
        route: |_| Route::RejectPending,
    },
    RouteSpec {
        path: "/breaker/reset",
        method: Method::POST,
        role: Role::Operator,
        route: |_| Route::ResetBreaker,
    },
    RouteSpec { path: "/mode", method: Method::POST, role: Role::Operator, route: |_| Route::SetMode },
    RouteSpec {
        path: "/provisioning/release",
        method: Method::POST,
        role: Role::Operator,
        route: |_| Route::ReleaseRun,
    },
    RouteSpec { path: "/evaluate", method: Method::POST, role: Role::Operator, route: |_| Route::DryRun },
    RouteSpec { path: "/cash", method: Method::POST, role: Role::Operator, route: |_| Route::SetCash },
    RouteSpec { path: "/drain/plan", method: Method::GET, role: Role::Reader, route: |_| Route::DrainPlan },
    RouteSpec { path: "/drain", method: Method::POST, role: Role::Operator, route: |_| Route::RequestDrain },
    RouteSpec {
        path: "/drain/approve",
        method: Method::POST,
        role: Role::Approver,
        route: |_| Route::ApproveDrain,
    },
    RouteSpec {
        path: "/drain/cancel",
        method: Method::POST,
        role: Role::Operator,
        route: |_| Route::CancelDrain,
    },
];

impl Route {
    /// A path's route, the one method it answers and the role it needs, from the
    /// route table. `None`: no such route (a 404).
    pub fn resolve(path: &str) -> Option<(Route, Method, Role)> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        ROUTES.iter().find_map(|spec| Some((spec.resolve(&segments)?, spec.method.clone(), spec.role)))
    }
}

/// Serves one request; every failure becomes a response with its status code, so the
/// function itself never fails (`Err` is never returned).
pub async fn handle<S, B: EventBus, N: Notifier>(
    deps: &Deps<S, B, N>,
    req: Request,
) -> Result<Response<Body>, FunctionError>
where
    S: Store + ScopedStore<Scoped = S>,
{
    Ok(match serve(deps, &req).await {
        Ok(response) => response,
        Err(e) => {
            if !matches!(e, ApiError::Internal(_)) {
                tracing::info!(status = e.status().as_u16(), error = %e, path = req.raw_http_path(), "request refused");
            }
            e.into_response()
        }
    })
}

/// The checks every route passes, in order: size, route (404), method (405), identity
/// and role (403); then the route itself.
async fn serve<S, B: EventBus, N: Notifier>(
    deps: &Deps<S, B, N>,
    req: &Request,
) -> Result<Response<Body>, ApiError>
where
    S: Store + ScopedStore<Scoped = S>,
{
    if req.body().as_ref().len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let path = req.raw_http_path().trim_end_matches('/').to_string();
    // The route is matched before any identity check, so an unknown route is a 404 and
    // a known one with the wrong method a 405 whoever asks.
    let (route, method, role) =
        Route::resolve(&path).ok_or_else(|| ApiError::NotFound(format!("no route {path}")))?;
    if req.method() != method {
        return Err(ApiError::MethodNotAllowed { method: req.method().to_string(), path, allow: method });
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
    dispatch(deps, req, &ctx, route).await
}

/// Runs `route`'s handler with its typed input, and answers with its typed output.
async fn dispatch<S, B: EventBus, N: Notifier>(
    deps: &Deps<S, B, N>,
    req: &Request,
    ctx: &Ctx<'_>,
    route: Route,
) -> Result<Response<Body>, ApiError>
where
    S: Store + ScopedStore<Scoped = S>,
{
    let ok = StatusCode::OK;
    let store = &deps.store;
    match route {
        Route::Status => {
            only_params(req, &[])?;
            respond(ok, &status::status(deps, store, ctx.now).await?)
        }
        Route::Decisions => respond(ok, &status::decisions(store, status::decisions_query(req)?).await?),
        Route::RequestOverride => {
            respond(StatusCode::CREATED, &overrides::request(deps, store, body(req)?, ctx).await?)
        }
        Route::ApproveOverride { id } => {
            let evaluation_store = store.for_invocation(ctx.request_id);
            respond(ok, &overrides::approve(deps, store, &evaluation_store, &id, ctx).await?)
        }
        Route::RejectOverride { id } => respond(ok, &overrides::reject(deps, store, &id, ctx).await?),
        Route::CancelOverride { id } => respond(ok, &overrides::cancel(deps, store, &id, ctx).await?),
        Route::ApprovePending => {
            let evaluation_store = store.for_invocation(ctx.request_id);
            respond(ok, &pending::approve(deps, store, &evaluation_store, body(req)?, ctx).await?)
        }
        Route::RejectPending => respond(ok, &pending::reject(deps, store, body(req)?, ctx).await?),
        Route::ResetBreaker => respond(ok, &operations::reset_breaker(deps, store, ctx).await?),
        Route::SetMode => respond(ok, &operations::set_mode(deps, store, body(req)?, ctx).await?),
        Route::SetCash => respond(ok, &cash::set(deps, store, body(req)?, ctx).await?),
        Route::ReleaseRun => respond(ok, &operations::release(deps, store, body(req)?, ctx).await?),
        Route::DryRun => {
            operations::check_dry_run(req)?;
            respond(ok, &operations::dry_run(deps, store, ctx.now).await?)
        }
        Route::DrainPlan => {
            only_params(req, &[])?;
            respond(ok, &drain::dry_run(deps, store, ctx.now).await?)
        }
        Route::RequestDrain => {
            respond(StatusCode::CREATED, &drain::request(deps, store, body(req)?, ctx).await?)
        }
        Route::ApproveDrain => {
            let evaluation_store = store.for_invocation(ctx.request_id);
            respond(ok, &drain::approve(deps, store, &evaluation_store, body(req)?, ctx).await?)
        }
        Route::CancelDrain => respond(ok, &drain::cancel(deps, store, ctx).await?),
    }
}

/// Everything the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Env {
    pub table_name: String,
    pub event_bus_name: String,
    pub alert_topic_arn: String,
    pub roles: Roles,
    /// `SCHEDULE_TIMEZONE`, parsed at cold start.
    pub timezone: ScheduleZone,
    /// `PROVISION_STATE_MACHINE_ARN`: the provisioning runs' state machine, whose
    /// executions are named after their decision ids.
    pub provision_state_machine_arn: String,
    pub config: ConfigSource,
}

impl FromEnv for Env {
    fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Env, EnvError> {
        use crate::auth::Patterns;
        // Readers default to anyone the API's IAM authorizer let in; who may change
        // things and who may approve must be said.
        let patterns = |name: &'static str, list: String| {
            Patterns::parse(&list).map_err(|e| EnvError::Invalid { name, message: e.to_string() })
        };
        let roles = Roles {
            readers: patterns(
                Role::Reader.variable(),
                vars.optional("READER_PRINCIPALS").unwrap_or_else(|| "*".into()),
            )?,
            operators: patterns(Role::Operator.variable(), vars.required(Role::Operator.variable())?)?,
            approvers: patterns(Role::Approver.variable(), vars.required(Role::Approver.variable())?)?,
        };
        let timezone = ScheduleZone::from_vars(vars)?;
        Ok(Env {
            table_name: vars.required("TABLE_NAME")?,
            event_bus_name: vars.required("EVENT_BUS_NAME")?,
            alert_topic_arn: vars.required("ALERT_TOPIC_ARN")?,
            roles,
            timezone,
            // Releasing a stuck run asks whether its execution still runs.
            provision_state_machine_arn: vars.required("PROVISION_STATE_MACHINE_ARN")?,
            config: ConfigSource::from_vars(vars)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::request_tag;
    use revscale_aws::env::from_pairs;

    #[test]
    fn env_needs_the_operator_and_approver_patterns_and_lets_any_caller_read_by_default() {
        let base = [
            ("TABLE_NAME", "t"),
            ("EVENT_BUS_NAME", "b"),
            ("ALERT_TOPIC_ARN", "a"),
            ("PROVISION_STATE_MACHINE_ARN", "arn:aws:states:eu-west-1:123456789012:stateMachine:p"),
        ];
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
    fn every_route_resolves_to_its_one_method_and_role_with_its_path_parameters() {
        let o = || "ovr-20261129-0560bb33b1da".to_string();
        for (path, route, method, role) in [
            ("/status", Route::Status, Method::GET, Role::Reader),
            ("/decisions", Route::Decisions, Method::GET, Role::Reader),
            ("/overrides", Route::RequestOverride, Method::POST, Role::Operator),
            (
                "/overrides/ovr-20261129-0560bb33b1da",
                Route::CancelOverride { id: o() },
                Method::DELETE,
                Role::Operator,
            ),
            (
                "/overrides/ovr-20261129-0560bb33b1da/approve",
                Route::ApproveOverride { id: o() },
                Method::POST,
                Role::Approver,
            ),
            (
                "/overrides/ovr-20261129-0560bb33b1da/reject",
                Route::RejectOverride { id: o() },
                Method::POST,
                Role::Approver,
            ),
            ("/pending/approve", Route::ApprovePending, Method::POST, Role::Approver),
            ("/pending/reject", Route::RejectPending, Method::POST, Role::Approver),
            ("/breaker/reset", Route::ResetBreaker, Method::POST, Role::Operator),
            ("/mode", Route::SetMode, Method::POST, Role::Operator),
            ("/provisioning/release", Route::ReleaseRun, Method::POST, Role::Operator),
            ("/evaluate", Route::DryRun, Method::POST, Role::Operator),
        ] {
            assert_eq!(Route::resolve(path), Some((route, method, role)), "{path}");
        }
    }

    #[test]
    fn a_path_that_is_no_route_resolves_to_nothing() {
        for path in
            ["/", "/nope", "/status/x", "/overrides/a/b", "/overrides/a/approve/x", "/pending", "/breaker"]
        {
            assert_eq!(Route::resolve(path), None, "{path}");
        }
    }

    #[test]
    fn request_tags_are_short_stable_and_url_safe() {
        assert_eq!(request_tag("JKJaXmPLvHcESHA="), request_tag("JKJaXmPLvHcESHA="));
        assert_ne!(request_tag("JKJaXmPLvHcESHA="), request_tag("JKJaXmPLvHcESHB="));
        assert_eq!(request_tag("a/b=").len(), 12);
        assert!(request_tag("a/b=").chars().all(|c| c.is_ascii_hexdigit()));
    }
}
