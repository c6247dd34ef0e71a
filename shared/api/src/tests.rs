#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::collections::BTreeMap;

use revscale_engine::{Cause, ComponentId, ComponentState, Currency, DecisionId, Mode, Money, Outcome};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::*;

/// The Lambda's answers, route by route (functions/override-api/tests/wire_format.rs).
const GOLDEN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../functions/override-api/tests/wire_format.golden.json"
));

fn golden_body(label: &str) -> Value {
    let all: Value = serde_json::from_str(GOLDEN).unwrap();
    let body = all[label]["body"].clone();
    assert!(body.is_object(), "no answer '{label}' in the golden file");
    body
}

/// Reads `json` as `T` and writes it back: the same JSON, field for field.
fn round_trips<T: Serialize + DeserializeOwned>(json: &Value) -> T {
    let typed: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("{} does not read {json}: {e}", std::any::type_name::<T>()));
    assert_eq!(&serde_json::to_value(&typed).unwrap(), json, "{}", std::any::type_name::<T>());
    typed
}

#[test]
fn every_answer_the_lambda_gives_reads_into_its_type_and_writes_back_identical() {
    for label in ["status, fresh", "status, stuck run", "status, after"] {
        round_trips::<StatusResponse>(&golden_body(label));
    }
    for label in ["decisions, page", "decisions, all"] {
        round_trips::<DecisionsResponse>(&golden_body(label));
    }
    for label in ["override request", "override request, second", "override request, third"] {
        round_trips::<CreateOverrideResponse>(&golden_body(label));
    }
    round_trips::<ApproveOverrideResponse>(&golden_body("override approve"));
    round_trips::<RejectOverrideResponse>(&golden_body("override reject"));
    round_trips::<CancelOverrideResponse>(&golden_body("override cancel"));
    round_trips::<ApprovePendingResponse>(&golden_body("pending approve"));
    round_trips::<RejectPendingResponse>(&golden_body("pending reject"));
    round_trips::<SetModeResponse>(&golden_body("mode"));
    round_trips::<ResetBreakerResponse>(&golden_body("breaker reset"));
    round_trips::<ReleaseRunResponse>(&golden_body("release"));
    round_trips::<DryRunResponse>(&golden_body("evaluate dry run"));
    for label in ["unknown-route", "wrong-method", "too large", "override approve, again"] {
        round_trips::<ErrorResponse>(&golden_body(label));
    }
}

#[test]
fn the_golden_answers_hold_what_the_clients_look_for() {
    let status: StatusResponse = round_trips(&golden_body("status, stuck run"));
    let run = status.provisioning.expect("the stuck run holds the lock");
    assert_eq!(run.decision_id, DecisionId("2026-11-28-L0-L1-stuck0000001".into()));
    assert_eq!(status.breaker.state, BreakerState::Closed);
    let approved: ApproveOverrideResponse = round_trips(&golden_body("override approve"));
    assert!(matches!(approved.evaluation, Evaluation::Recorded { to_level: 3, published: true, .. }));
    assert_eq!(approved.r#override.approved_by.as_deref(), Some("arn:aws:iam::123456789012:user/bob"));
}

fn an_override() -> Override {
    Override {
        id: "ovr-20261129-0560bb33b1da".into(),
        level: 3,
        until: "2026-12-15".parse().unwrap(),
        reason: "pilot".into(),
        requested_by: "arn:aws:iam::123456789012:user/alice".into(),
        requested_on: "2026-11-29".parse().unwrap(),
        approved_by: None,
        cancelled: false,
    }
}

#[test]
fn shapes_the_golden_run_does_not_reach_round_trip_too() {
    let replay = Evaluation::Replay { decision_id: DecisionId("d-1".into()), published: false };
    let json = serde_json::to_value(&replay).unwrap();
    assert_eq!(json, serde_json::json!({"decision_id": "d-1", "published": false}));
    assert_eq!(round_trips::<Evaluation>(&json), replay);
    let open = BreakerState::Open { until: "2026-12-01".parse().unwrap() };
    let json = serde_json::to_value(open).unwrap();
    assert_eq!(json, serde_json::json!({"status": "open", "until": "2026-12-01"}));
    assert_eq!(round_trips::<BreakerState>(&json), open);
    let pending = PendingApproval {
        from: 1,
        to: 2,
        cause: Some(Cause::Growth),
        requested_on: "2026-11-29".parse().unwrap(),
        extra_monthly_cost: Money::from_minor(120_000, Currency::EUR),
        approved_by: None,
        approved_on: None,
    };
    let json = serde_json::to_value(&pending).unwrap();
    assert_eq!(json["cause"], "growth");
    assert_eq!(round_trips::<PendingApproval>(&json), pending);
    let approved =
        Override { approved_by: Some("arn:aws:iam::123456789012:user/bob".into()), ..an_override() };
    assert_eq!(round_trips::<Override>(&serde_json::to_value(&approved).unwrap()), approved);
}

#[test]
fn every_request_body_round_trips_and_refuses_fields_it_does_not_know() {
    let create =
        CreateOverrideRequest { level: 2, until: "2026-12-15".parse().unwrap(), reason: "pilot".into() };
    round_trips::<CreateOverrideRequest>(&serde_json::to_value(&create).unwrap());
    round_trips::<SetModeRequest>(&serde_json::to_value(SetModeRequest { mode: Mode::Shadow }).unwrap());
    round_trips::<RejectPendingRequest>(&serde_json::json!({"reason": "not now"}));
    let release = ReleaseRunRequest {
        decision_id: DecisionId("d-1".into()),
        components: BTreeMap::from([(ComponentId::new("eks_control_plane"), ComponentState::Cold)]),
        reason: "fixed".into(),
    };
    let json = serde_json::to_value(&release).unwrap();
    assert_eq!(json["components"]["eks_control_plane"], "cold");
    round_trips::<ReleaseRunRequest>(&json);
    let forged = serde_json::json!({"level": 2, "until": "2026-12-15", "reason": "x", "approved_by": "me"});
    let err = serde_json::from_value::<CreateOverrideRequest>(forged).unwrap_err();
    assert!(err.to_string().contains("unknown field `approved_by`"), "{err}");
}

#[test]
fn an_answer_missing_a_field_is_an_error_even_where_the_field_may_be_null() {
    let status = golden_body("status, fresh");
    for field in ["level", "mode", "breaker", "next", "mrr", "ratio_pct", "pending_approval", "provisioning"]
    {
        let mut without = status.clone();
        without.as_object_mut().unwrap().remove(field);
        let err = serde_json::from_value::<StatusResponse>(without).unwrap_err();
        assert!(err.to_string().contains(&format!("missing field `{field}`")), "{field}: {err}");
    }
    let mut page = golden_body("decisions, page");
    page.as_object_mut().unwrap().remove("next");
    assert!(serde_json::from_value::<DecisionsResponse>(page).is_err(), "a page without its cursor");
}

#[test]
fn a_recorded_evaluation_is_never_read_as_a_replay() {
    let recorded = serde_json::json!({
        "decision_id": "d-1", "from_level": 0, "to_level": 1, "outcome": "execute",
        "published": true, "reasons": ["growth"],
    });
    let evaluation: Evaluation = round_trips(&recorded);
    assert!(matches!(evaluation, Evaluation::Recorded { outcome: Outcome::Execute, .. }));
    assert_eq!(evaluation.decision_id(), &DecisionId("d-1".into()));
}

#[test]
fn the_decisions_query_is_the_route_with_its_parameters() {
    assert_eq!(DecisionsQuery { limit: None, before: None }.path(), "/decisions");
    assert_eq!(
        DecisionsQuery { limit: Some(5), before: Some("2026-11-29T06:00:00.000Z-mode-ab12".into()) }.path(),
        "/decisions?limit=5&before=2026-11-29T06:00:00.000Z-mode-ab12"
    );
}
