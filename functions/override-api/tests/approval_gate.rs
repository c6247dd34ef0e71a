//! The two-person gate, route by route: every route of the route table is called by
//! every identity, on a state where another (or the same) identity asked for an
//! override and a drain and the engine proposed a level change. Whatever the route,
//! nothing may end up approved by the person who asked for it; and every approve route
//! must approve for a second person, so the matrix cannot pass by approving nothing.
//!
//! Who is the same person is written here by hand, per identity, not computed by the
//! code under test. A route added to the table is walked with no change here; an
//! approve route that needs a body this file does not know fails the second check.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use lambda_http::{Body, Request};
use override_api::auth::Roles;
use override_api::handler::{Deps, ROUTES, handle};
use revscale_engine::Config;
use revscale_engine::model::Cause;
use revscale_engine::ports::StateStore;
use revscale_engine::state::PendingApproval;
use revscale_engine::testing::{MemoryBus, MemoryNotifier, MemoryStore, seed_record};
use serde_json::{Value, json};

/// Every kind of principal the IAM authorizer passes, with the person it is for the
/// two-person rule (by hand: the table of docs/iam.md).
const IDENTITIES: &[(&str, &str)] = &[
    ("arn:aws:iam::123456789012:user/alice", "iam user alice"),
    // IAM user names are unique regardless of case: one user.
    ("arn:aws:iam::123456789012:user/Alice", "iam user alice"),
    ("arn:aws:iam::123456789012:user/bob", "iam user bob"),
    // Every session of a role is the role: its session names are chosen by the caller.
    ("arn:aws:sts::123456789012:assumed-role/Operator/alice", "role Operator"),
    ("arn:aws:sts::123456789012:assumed-role/Operator/bob", "role Operator"),
    ("arn:aws:sts::123456789012:assumed-role/Approver/carol", "role Approver"),
    // An Identity Center user is one person under every permission set.
    ("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_RevscaleOperator_0a1b2c/alice", "sso alice"),
    ("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_RevscaleApprover_9f8e7d/alice", "sso alice"),
    ("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_RevscaleApprover_9f8e7d/dave", "sso dave"),
    // Federated users' names are chosen by whoever called GetFederationToken.
    ("arn:aws:sts::123456789012:federated-user/alice", "federated users"),
    ("arn:aws:sts::123456789012:federated-user/eve", "federated users"),
    ("arn:aws:iam::123456789012:root", "root"),
    ("arn:aws:sts::210987654321:assumed-role/Operator/alice", "other account role Operator"),
    // Identity Center users belong to the organisation: alice in another account is alice.
    ("arn:aws:sts::210987654321:assumed-role/AWSReservedSSO_RevscaleApprover_77aa66/alice", "sso alice"),
    // Another partition is another identity store.
    (
        "arn:aws-us-gov:sts::123456789012:assumed-role/AWSReservedSSO_RevscaleApprover_1/alice",
        "gov sso alice",
    ),
    ("arn:aws-us-gov:iam::123456789012:user/alice", "gov iam user alice"),
];

fn person(principal: &str) -> &'static str {
    IDENTITIES.iter().find(|(p, _)| *p == principal).map(|(_, person)| *person).unwrap()
}

const TODAY: &str = "2026-11-29";

/// A request of API Gateway's shape, on `path` with `method`, signed by `principal`.
fn request(method: &str, path: &str, query: &str, principal: &str, body: Option<String>) -> Request {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let file = format!("{}/../../events/override-api/status.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["requestId"] = format!("req-gate-{}", NEXT.fetch_add(1, Ordering::SeqCst)).into();
    event["requestContext"]["authorizer"]["iam"]["userArn"] = principal.into();
    event["rawQueryString"] = query.into();
    if let Some((k, v)) = query.split_once('=') {
        event["queryStringParameters"] = json!({ k: v });
    }
    if let Some(body) = body {
        event["body"] = body.into();
    }
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

struct World {
    deps: Deps<Arc<MemoryStore>, MemoryBus, MemoryNotifier>,
    store: Arc<MemoryStore>,
}

impl World {
    fn new() -> World {
        let store = Arc::new(MemoryStore::default());
        World {
            deps: Deps {
                config: Config::default_config().unwrap(),
                store: store.clone(),
                bus: MemoryBus::default(),
                notifier: MemoryNotifier::default(),
                roles: Roles::everyone(),
                timezone: Default::default(),
                executions: std::sync::Arc::new(revscale_engine::testing::MemoryExecutions::default()),
            },
            store,
        }
    }

    async fn call(&self, req: Request) -> (u16, Value) {
        let response = handle(&self.deps, req).await.unwrap();
        let body = match response.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (response.status().as_u16(), body)
    }

    async fn state(&self) -> revscale_engine::SystemState {
        self.store.load_state().await.unwrap().unwrap().value
    }

    /// `requester` asks for an override and a drain; the engine proposes L0 -> L1.
    async fn seeded_by(requester: &str) -> (World, String) {
        let world = World::new();
        let body = json!({"level": 2, "until": "2026-12-15", "reason": "pilot"}).to_string();
        let (status, created) = world.call(request("POST", "/overrides", "", requester, Some(body))).await;
        assert_eq!(status, 201, "{created}");
        let override_id = created["override"]["id"].as_str().unwrap().to_string();
        let body = json!({"reason": "teardown"}).to_string();
        let (status, drain) = world.call(request("POST", "/drain", "", requester, Some(body))).await;
        assert_eq!(status, 201, "{drain}");
        let stored = world.store.load_state().await.unwrap().unwrap();
        let mut state = stored.value;
        state.pending_approval = Some(PendingApproval {
            from: 0,
            to: 1,
            cause: Some(Cause::Growth),
            requested_on: TODAY.parse().unwrap(),
            extra_monthly_cost: world.deps.config.zero(),
            approved_by: None,
            approved_on: None,
        });
        let record = seed_record("2026-11-29T05:00:00.000Z-seed", "2026-11-29T05:00:00Z".parse().unwrap());
        world.store.record_decision(&record, &state, Some(stored.version)).await.unwrap();
        (world, override_id)
    }
}

/// The body a route of the table takes, for a request on the seeded state.
fn body_for(template: &str, state: &revscale_engine::SystemState) -> Option<String> {
    let id = |id: Option<String>| Some(json!({ "id": id.unwrap_or_default() }).to_string());
    match template {
        "/overrides" => Some(json!({"level": 1, "until": "2026-12-01", "reason": "another"}).to_string()),
        "/pending/approve" => id(state.pending_approval.as_ref().map(|p| p.id())),
        "/drain/approve" => id(state.drain.as_ref().map(|d| d.id())),
        "/pending/reject" => Some(json!({"reason": "not now"}).to_string()),
        "/mode" => Some(json!({"mode": "auto"}).to_string()),
        "/cash" => Some(json!({"amount": "420000", "as_of": "2026-11-01"}).to_string()),
        "/drain" => Some(json!({"reason": "again"}).to_string()),
        "/provisioning/release" => {
            Some(json!({"decision_id": "none", "components": {}, "reason": "repaired"}).to_string())
        }
        _ => None,
    }
}

/// Who approved the requester's override and drain, and whether the pending change is.
fn approvals(state: &revscale_engine::SystemState) -> (Option<String>, Option<String>, bool) {
    (
        state.overrides.iter().find_map(|o| o.approved_by.clone()),
        state.drain.as_ref().and_then(|d| d.approved_by.clone()),
        state.pending_approval.as_ref().is_some_and(|p| p.approved_by.is_some()),
    )
}

/// Federated users cannot be told apart from the IAM user who made them: they may
/// neither approve nor have their requests approved.
fn indistinct(principal: &str) -> bool {
    person(principal) == "federated users"
}

#[tokio::test]
async fn no_route_lets_anyone_approve_their_own_request_and_every_approve_route_approves_for_a_second_person()
{
    // route template -> (approvals granted, cells) over pairs of two persons
    let mut granted: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    let (mut cells, mut refusals, mut expected_refusals) = (0, 0, 0);
    for (requester, _) in IDENTITIES {
        for (actor, _) in IDENTITIES {
            let same_person = person(requester) == person(actor);
            for spec in ROUTES {
                let (world, override_id) = World::seeded_by(requester).await;
                let before = world.state().await;
                let path = spec.path.replace("{id}", &override_id);
                let query = if spec.path == "/evaluate" { "dry_run=true" } else { "" };
                let body = body_for(spec.path, &before);
                let (status, answer) =
                    world.call(request(spec.method.as_str(), &path, query, actor, body)).await;
                assert!(status < 500, "{} {path} by {actor}: {status} {answer}", spec.method);
                let after = world.state().await;
                // The requester's override and drain: whatever the route, approved only
                // by another person who can be told apart from the requester.
                let (before_override, before_drain, _) = approvals(&before);
                let (after_override, after_drain, _) = approvals(&after);
                let requests_newly_approved =
                    (after_override, after_drain) != (before_override, before_drain);
                let may_approve_requests = !same_person && !indistinct(requester) && !indistinct(actor);
                assert!(
                    may_approve_requests || !requests_newly_approved,
                    "{} {path}: {actor} approved what {requester} asked for: {answer}",
                    spec.method
                );
                let newly_approved = approvals(&after) != approvals(&before);
                if spec.path.ends_with("/approve") {
                    // The pending change was proposed by the engine: only who approves counts.
                    let refused = if spec.path == "/pending/approve" {
                        indistinct(actor)
                    } else {
                        !may_approve_requests
                    };
                    if refused {
                        expected_refusals += 1;
                        assert_eq!(
                            status, 403,
                            "{} {path} by {actor} for {requester}: {answer}",
                            spec.method
                        );
                        assert!(!newly_approved, "{} {path} by {actor} for {requester}", spec.method);
                        refusals += 1;
                    }
                }
                if may_approve_requests {
                    let entry = granted.entry(spec.path).or_default();
                    entry.1 += 1;
                    if newly_approved {
                        entry.0 += 1;
                    }
                }
                cells += 1;
            }
        }
    }
    for (template, (approved, pairs)) in &granted {
        if template.ends_with("/approve") {
            assert_eq!(approved, pairs, "{template} approved for {approved} of {pairs} pairs of two persons");
        }
    }
    let approving = granted.values().filter(|(approved, _)| *approved > 0).count();
    assert_eq!(approving, 3, "exactly the three approve routes approve anything: {granted:?}");
    let pairs = IDENTITIES.len() * IDENTITIES.len();
    assert_eq!(cells, pairs * ROUTES.len());
    // Same-person pairs (by hand, above) and pairs with a federated user, on the two
    // approve routes with a requester, plus federated approvers of the pending change.
    let same_or_indistinct = IDENTITIES
        .iter()
        .flat_map(|(r, _)| IDENTITIES.iter().map(move |(a, _)| (*r, *a)))
        .filter(|(r, a)| person(r) == person(a) || indistinct(r) || indistinct(a))
        .count();
    let federated = IDENTITIES.iter().filter(|(p, _)| indistinct(p)).count();
    assert_eq!(refusals, expected_refusals);
    assert_eq!(refusals, 2 * same_or_indistinct + federated * IDENTITIES.len());
    eprintln!(
        "approval gate matrix: {} routes x {} identity pairs = {cells} cells; {refusals} approvals refused with 403",
        ROUTES.len(),
        pairs
    );
}
