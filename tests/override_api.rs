//! The operator API's handler, fed the API Gateway fixtures in events/override-api/
//! (two identities, valid and invalid requests), against the DynamoDB store on moto.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use lambda_http::{Body, Request};
use override_api::auth::{Patterns, Roles};
use override_api::handler::{Deps, handle};
use revscale_aws::dynamo::DynamoStore;
use revscale_engine::Config;
use revscale_engine::ports::{AuditStore, StateStore};
use revscale_engine::testing::{MemoryBus, MemoryNotifier};
use revscale_integration_tests::{report, sdk, table, unique};
use serde_json::Value;

const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
const BOB: &str = "arn:aws:iam::123456789012:user/bob";

/// A fixture's text with its placeholder (`OVERRIDE_ID`, `DECISION_ID` or `APPROVAL_ID`) replaced by
/// `id`, under a request id of its own, as API Gateway gives every request.
fn fixture_text(name: &str, id: &str) -> String {
    let path = format!("{}/../events/override-api/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .replace("OVERRIDE_ID", id)
        .replace("DECISION_ID", id)
        .replace("APPROVAL_ID", id);
    let request_id = format!("\"requestId\": \"{}\"", unique("req"));
    let start = text.find("\"requestId\": \"").unwrap_or_else(|| panic!("{name} has no requestId"));
    let end = start + text[start..].find("\",").expect("requestId ends") + 1;
    format!("{}{request_id}{}", &text[..start], &text[end..])
}

fn fixture(name: &str, id: &str) -> Request {
    lambda_http::request::from_str(&fixture_text(name, id)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `fixture`, signed by another principal.
fn fixture_as(name: &str, id: &str, principal: &str) -> Request {
    let text = fixture_text(name, id)
        .replace("arn:aws:iam::123456789012:user/alice", principal)
        .replace("arn:aws:iam::123456789012:user/bob", principal);
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

struct Api {
    deps: Deps<DynamoStore, MemoryBus, MemoryNotifier>,
    store: DynamoStore,
}

impl Api {
    async fn new() -> Api {
        let sdk = sdk().await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table(&sdk).await);
        let deps = Deps {
            config: Config::default_config().unwrap(),
            store: store.clone(),
            bus: MemoryBus::default(),
            notifier: MemoryNotifier::default(),
            roles: Roles::everyone(),
            timezone: Default::default(),
            executions: std::sync::Arc::new(revscale_engine::testing::MemoryExecutions::default()),
        };
        Api { deps, store }
    }

    async fn call(&self, req: Request) -> (u16, Value) {
        let response = handle(&self.deps, req).await.unwrap();
        let status = response.status().as_u16();
        let body = match response.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            Body::Binary(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
            Body::Empty => Value::Null,
            _ => Value::Null,
        };
        (status, body)
    }

    async fn fixture(&self, name: &str, id: &str) -> (u16, Value) {
        self.call(fixture(name, id)).await
    }

    async fn snapshot(&self) -> (Option<u64>, String, usize) {
        let state = self.store.load_state().await.unwrap();
        let audit = self.store.recent_audit(100, None).await.unwrap();
        (
            state.as_ref().map(|s| s.version),
            serde_json::to_string(&state.map(|s| s.value)).unwrap(),
            audit.len(),
        )
    }
}

#[tokio::test]
async fn every_bad_request_is_refused_with_its_status_and_changes_nothing() {
    let api = Api::new().await;
    // Some state and a pending override to refuse things against.
    let (status, created) = api.fixture("override-request", "").await;
    assert_eq!(status, 201, "{created}");
    let id = created["override"]["id"].as_str().unwrap().to_string();

    let mut oversized = fixture("override-request", &id);
    *oversized.body_mut() = Body::Text(format!("{{\"reason\": \"{}\"}}", "x".repeat(20_000)));

    let cases: Vec<(&str, Request, u16, &str)> = vec![
        ("unsigned request (no identity)", fixture("status-unsigned", &id), 403, "no IAM identity"),
        ("unsigned change", fixture("override-request-unsigned", &id), 403, "no IAM identity"),
        ("self-approval", fixture("override-approve-self", &id), 403, "cannot approve it"),
        (
            "empty 'before'",
            fixture("decisions-empty-before", &id),
            400,
            "'before' must be the 'next' of a previous page",
        ),
        (
            "unknown query parameter",
            fixture("decisions-unknown-param", &id),
            400,
            "unknown query parameter 'page'",
        ),
        (
            "a principal that is not an ARN",
            fixture_as("status", &id, "alice"),
            403,
            "is not an IAM principal ARN",
        ),
        ("override beyond 30 days", fixture("override-request-too-far", &id), 400, "field 'until'"),
        (
            "level outside the configured levels",
            fixture("override-request-bad-level", &id),
            400,
            "field 'level': 9 is not a configured level",
        ),
        ("empty reason", fixture("override-request-no-reason", &id), 400, "field 'reason'"),
        ("malformed body", fixture("override-request-malformed", &id), 400, "malformed body"),
        ("unknown field", fixture("override-request-unknown-field", &id), 400, "unknown field `approved_by`"),
        ("unknown mode", fixture("mode-bad", &id), 400, "field 'mode'"),
        ("limit out of range", fixture("decisions-bad-limit", &id), 400, "'limit' must be 1 to 100"),
        ("evaluate without dry_run", fixture("evaluate-not-dry", &id), 400, "'dry_run' must be true"),
        (
            "approve an unknown override",
            fixture("override-approve-other", "ovr-nope"),
            404,
            "no open override ovr-nope",
        ),
        ("approve with nothing pending", fixture("pending-approve", &id), 404, "no level change waits"),
        ("unknown route", fixture("unknown-route", &id), 404, "no route /nope"),
        ("wrong method", fixture("wrong-method", &id), 405, "method DELETE is not allowed on /status"),
        ("oversized body", oversized, 413, "larger than 16384 bytes"),
    ];
    report(&format!("{:<40} {:>6}  message", "bad input", "status"));
    for (what, req, want, message) in cases {
        let before = api.snapshot().await;
        let (status, body) = api.call(req).await;
        let error = body["error"].as_str().unwrap_or_default().to_string();
        report(&format!("{what:<40} {status:>6}  {error}"));
        assert_eq!(status, want, "{what}: {body}");
        assert!(error.contains(message), "{what}: '{error}' lacks '{message}'");
        assert_eq!(api.snapshot().await, before, "{what}: the state and the audit trail are unchanged");
    }
}

#[tokio::test]
async fn an_override_needs_a_second_principal_and_acts_at_once_once_approved() {
    let api = Api::new().await;
    let (status, created) = api.fixture("override-request", "").await;
    assert_eq!(status, 201);
    let o = &created["override"];
    assert_eq!((o["level"].as_u64(), o["requested_by"].as_str()), (Some(3), Some(ALICE)));
    let id = o["id"].as_str().unwrap().to_string();

    let (status, body) = api.fixture("status", &id).await;
    assert_eq!(status, 200);
    assert_eq!(body["overrides"]["pending"][0]["id"], id.as_str());
    assert!(body["overrides"]["active"].as_array().unwrap().is_empty());

    let (status, approved) = api.fixture("override-approve-other", &id).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["override"]["approved_by"], BOB);
    // The approval triggered an evaluation at once: the override pins L3.
    assert_eq!(approved["evaluation"]["to_level"], 3, "{approved}");
    assert_eq!(approved["evaluation"]["published"], true);
    let published = api.deps.bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(
        (published[0].0.as_str(), published[0].1["to_level"].as_u64()),
        ("Level Change Requested", Some(3))
    );

    let (status, again) = api.fixture("override-approve-other", &id).await;
    assert_eq!((status, again["error"].as_str().map(|e| e.contains("already approved"))), (409, Some(true)));

    let (status, cancelled) = api.fixture("override-cancel", &id).await;
    assert_eq!((status, cancelled["override"]["cancelled"].as_bool()), (200, Some(true)));
    let (status, refused) = api.fixture("override-approve-other", &id).await;
    assert_eq!(status, 404, "a cancelled override has left the state: {refused}");

    // Every change is in the audit trail with who did it, newest first.
    let (status, decisions) = api.fixture("decisions", &id).await;
    assert_eq!(status, 200);
    let page = decisions["decisions"].as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert!(decisions["next"].is_string(), "a full page points to the next one");
    // Following `next` page by page gives the whole trail, newest (latest time) first.
    let mut ids: Vec<String> = page.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    let mut next = decisions["next"].as_str().map(String::from);
    while let Some(cursor) = next {
        let more = api.store.recent_audit(2, Some(cursor)).await.unwrap();
        next = (more.len() == 2).then(|| more[1].trail_key());
        ids.extend(more.into_iter().map(|r| r.id));
    }
    let trail = api.store.recent_audit(100, None).await.unwrap();
    let all: Vec<String> = trail.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, all);
    assert!(trail.windows(2).all(|w| w[0].trail_key() > w[1].trail_key()));
    assert!(trail.windows(2).all(|w| w[0].at >= w[1].at), "by time, whoever wrote them");
    let audit = api.store.recent_audit(10, None).await.unwrap();
    let kinds: Vec<(&str, &str)> = audit.iter().map(|r| (r.kind.as_str(), r.actor.as_str())).collect();
    assert!(
        kinds.contains(&("override-request", ALICE)) && kinds.contains(&("override-approve", BOB)),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|(k, _)| *k == "evaluation"), "the triggered evaluation is audited too");
}

#[tokio::test]
async fn an_expired_override_cannot_be_approved() {
    let api = Api::new().await;
    let (_, created) = api.fixture("override-request", "").await;
    let id = created["override"]["id"].as_str().unwrap().to_string();
    // The same approval, one month after the override's last day.
    let mut req = fixture("override-approve-other", &id);
    let late = 1_795_932_000_000i64 + 40 * 86_400_000;
    let text = std::fs::read_to_string(format!(
        "{}/../events/override-api/override-approve-other.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("OVERRIDE_ID", &id)
    .replace("1795932000000", &late.to_string());
    req = lambda_http::request::from_str(&text).unwrap_or(req);
    let (status, body) = api.call(req).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("expired on 2026-12-15"));
}

#[tokio::test]
async fn mode_breaker_and_dry_run_work_and_status_reports_them() {
    let api = Api::new().await;
    let (status, body) = api.fixture("mode-shadow", "").await;
    assert_eq!((status, body["mode"].as_str()), (200, Some("shadow")));
    let (status, _) = api.fixture("breaker-reset", "").await;
    assert_eq!(status, 200);
    let (status, plan) = api.fixture("evaluate-dry-run", "").await;
    assert_eq!(status, 200);
    assert_eq!(plan["decision"]["outcome"], "hold", "no snapshot today: nothing to do");
    let before = api.snapshot().await;
    let (_, status_body) = api.fixture("status", "").await;
    assert_eq!(status_body["mode"], "shadow");
    assert_eq!(status_body["breaker"]["state"]["status"], "closed");
    assert_eq!(status_body["level"], 0);
    assert!(status_body["next"]["reasons"][0].as_str().unwrap().starts_with("no snapshot for 2026-11-29"));
    assert_eq!(api.snapshot().await, before, "reads change nothing");
}

#[tokio::test]
async fn a_run_whose_rollback_failed_is_released_once_repaired_by_hand() {
    use revscale_engine::model::ComponentState;
    use revscale_engine::{ComponentId, SystemState};

    let api = Api::new().await;
    // The run's deployment of the control plane failed, and so did its undo
    // (RollbackFailed): the component is stuck WARMING and the lock is held.
    let id = "2026-11-28-L0-L1-stuck0000001";
    let mut state = SystemState::initial(&api.deps.config, "2026-11-01".parse().unwrap());
    revscale_engine::testing::stick_run(&mut state, id);
    let seed = revscale_engine::testing::seed_record(
        "2026-11-28T06:00:00.000Z-seed",
        "2026-11-28T06:00:00Z".parse().unwrap(),
    );
    api.store.record_decision(&seed, &state, None).await.unwrap();

    let before = api.snapshot().await;
    let (status, body) = api.fixture("provisioning-release", "2026-11-28-L0-L1-other").await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no provisioning run is in progress"), "{body}");
    let mut undeclared = fixture("provisioning-release", id);
    *undeclared.body_mut() =
        Body::Text(format!(r#"{{"decision_id": "{id}", "components": {{}}, "reason": "fixed"}}"#));
    let (status, body) = api.call(undeclared).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some(
                format!("declare where eks_control_plane stand(s): run {id} may have changed them").as_str()
            )
        )
    );
    assert_eq!(api.snapshot().await, before, "refusals change nothing");

    let (status, body) = api.fixture("provisioning-release", id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["breaker"]["consecutive_failures"], 1, "a run that did not finish is a failure");
    let stored = api.store.load_state().await.unwrap().unwrap().value;
    assert!(stored.provisioning.is_none(), "the lock is released");
    assert_eq!(stored.component_state(&ComponentId::new("eks_control_plane")), ComponentState::Cold);
    let audit = api.store.recent_audit(1, None).await.unwrap();
    assert_eq!((audit[0].kind.as_str(), audit[0].actor.as_str()), ("provisioning-release", ALICE));
    assert!(audit[0].note.contains("eks_control_plane=cold"), "{}", audit[0].note);
    report(&format!("released a stuck run: {}", audit[0].note));
}

const OPERATOR_A: &str = "arn:aws:sts::123456789012:assumed-role/Operator/a";
const OPERATOR_B: &str = "arn:aws:sts::123456789012:assumed-role/Operator/b";
const CAROL_SSO: &str =
    "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Approver_0a1b2c3d/carol@example.com";

#[tokio::test]
async fn an_override_approved_by_another_session_of_the_same_role_is_a_self_approval_and_refused() {
    let api = Api::new().await;
    let (status, created) = api.call(fixture_as("override-request", "", OPERATOR_A)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["override"]["requested_by"], "arn:aws:iam::123456789012:role/Operator");
    let id = created["override"]["id"].as_str().unwrap().to_string();
    let before = api.snapshot().await;
    let (status, body) = api.call(fixture_as("override-approve-other", &id, OPERATOR_B)).await;
    assert_eq!(status, 403, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("cannot approve it: another person must"), "{error}");
    report(&format!("self-approval by a second session of the same role: 403 {error}"));
    assert_eq!(api.snapshot().await, before, "nothing changed");
    // A person of their own (an Identity Center user) may.
    let (status, body) = api.call(fixture_as("override-approve-other", &id, CAROL_SSO)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["override"]["approved_by"], CAROL_SSO);
}

#[tokio::test]
async fn a_caller_without_the_role_a_route_needs_gets_a_403_naming_that_role() {
    let mut api = Api::new().await;
    api.deps.roles = Roles {
        readers: Patterns::parse("").unwrap(),
        operators: Patterns::parse("arn:aws:iam::123456789012:role/Operator").unwrap(),
        approvers: Patterns::parse("arn:aws:iam::123456789012:user/bob").unwrap(),
    };
    let cases = [
        ("status", ALICE, 403, "lacks the reader role"),
        (
            "override-request",
            ALICE,
            403,
            "lacks the operator role: POST /overrides needs a principal listed in OPERATOR_PRINCIPALS",
        ),
        ("mode-shadow", BOB, 403, "lacks the operator role"),
        ("breaker-reset", BOB, 403, "lacks the operator role"),
        (
            "pending-approve",
            OPERATOR_A,
            403,
            "lacks the approver role: POST /pending/approve needs a principal listed in APPROVER_PRINCIPALS",
        ),
        ("status", BOB, 200, ""),
        ("status", OPERATOR_B, 200, ""),
        ("mode-shadow", OPERATOR_A, 200, ""),
    ];
    for (name, who, want, message) in cases {
        let (status, body) = api.call(fixture_as(name, "x", who)).await;
        assert_eq!(status, want, "{name} as {who}: {body}");
        if want == 403 {
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(message), "{name} as {who}: '{error}' lacks '{message}'");
            report(&format!("{name} as {who}: 403 {error}"));
        }
    }
}

#[tokio::test]
async fn the_same_request_applied_twice_is_a_409_never_a_silent_success() {
    let api = Api::new().await;
    let text = fixture_text("mode-shadow", "");
    let once = lambda_http::request::from_str(&text).unwrap();
    assert_eq!(api.call(once).await.0, 200);
    let before = api.snapshot().await;
    let (status, body) = api.call(lambda_http::request::from_str(&text).unwrap()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("was already applied"), "{body}");
    assert_eq!(api.snapshot().await, before);
    // The same for an override request: its id comes from the request id.
    let text = fixture_text("override-request", "");
    assert_eq!(api.call(lambda_http::request::from_str(&text).unwrap()).await.0, 201);
    let (status, body) = api.call(lambda_http::request::from_str(&text).unwrap()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("already exists"), "{body}");
}

/// The state item's size as stored, attribute names and values as JSON.
async fn state_item_bytes(api: &Api) -> usize {
    let sdk = sdk().await;
    let item = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(api.store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("STATE".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("CURRENT".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let value: Value = serde_dynamo::aws_sdk_dynamodb_1::from_item(item).unwrap();
    serde_json::to_vec(&value).unwrap().len()
}

/// The same traffic as the in-memory test of 1,000 requests
/// (functions/override-api/tests/bounded_state.rs), on DynamoDB: long enough to reach
/// the cap of open overrides and go past it, short enough for CI.
const REQUESTS_ON_DYNAMODB: usize = 300;

#[tokio::test]
async fn hundreds_of_override_requests_keep_the_state_item_small_and_every_route_working_on_dynamodb() {
    let api = Api::new().await;
    let long_reason = "r".repeat(500);
    let (mut created, mut refused, mut largest) = (0, 0, 0);
    let mut open: std::collections::VecDeque<String> = Default::default();
    for i in 0..REQUESTS_ON_DYNAMODB {
        let request = || {
            let mut req = fixture("override-request", "");
            *req.body_mut() =
                Body::Text(format!(r#"{{"level": 3, "until": "2026-12-15", "reason": "{long_reason}"}}"#));
            req
        };
        let (mut status, mut body) = api.call(request()).await;
        if status == 409 {
            // The cap: an operator cancels the oldest open override, then asks again.
            refused += 1;
            assert!(body["error"].as_str().unwrap().contains("at most 20"), "{body}");
            let oldest = open.pop_front().expect("20 open overrides");
            assert_eq!(api.fixture("override-cancel", &oldest).await.0, 200);
            (status, body) = api.call(request()).await;
        }
        assert_eq!(status, 201, "request {i}: {body}");
        created += 1;
        let id = body["override"]["id"].as_str().unwrap().to_string();
        // Most are closed again at once (cancelled by the requester, rejected by an
        // approver); one in ten stays open.
        let closed = match i % 10 {
            9 => {
                open.push_back(id.clone());
                200
            }
            n if n % 2 == 0 => api.fixture("override-cancel", &id).await.0,
            _ => api.call(fixture_as("override-reject", &id, BOB)).await.0,
        };
        assert_eq!(closed, 200, "closing {id}");
        if i % 100 == 99 {
            largest = largest.max(state_item_bytes(&api).await);
        }
    }
    let size = state_item_bytes(&api).await;
    largest = largest.max(size);
    report(&format!(
        "{REQUESTS_ON_DYNAMODB} override requests on DynamoDB: {created} created, {refused} refused at first (20 open at most); state item {size} bytes after, {largest} at most"
    ));
    assert!(largest < 64 * 1024, "the state item stays under 64 KB: {largest}");
    assert_eq!(created, REQUESTS_ON_DYNAMODB);
    assert!(refused > 0, "the cap was reached");

    // Every route still works.
    let (status, body) = api.fixture("status", "").await;
    assert_eq!(status, 200);
    let pending = body["overrides"]["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 20);
    let open = pending[0]["id"].as_str().unwrap().to_string();
    assert_eq!(api.fixture("decisions", "").await.0, 200);
    assert_eq!(api.fixture("mode-shadow", "").await.0, 200);
    assert_eq!(api.fixture("breaker-reset", "").await.0, 200);
    assert_eq!(api.fixture("evaluate-dry-run", "").await.0, 200);
    assert_eq!(api.fixture("pending-approve", "").await.0, 404, "nothing waits for approval");
    let (status, body) = api.fixture("override-approve-other", &open).await;
    assert_eq!(status, 200, "{body}");
    let next = pending[1]["id"].as_str().unwrap().to_string();
    assert_eq!(api.fixture("override-cancel", &next).await.0, 200);
    let (status, _) = api.fixture("override-request", "").await;
    assert_eq!(status, 201, "a place is free again");
    assert!(state_item_bytes(&api).await < 64 * 1024);
}
