#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use serde_json::Value;

use super::*;

/// The Lambda's answers, route by route (functions/override-api/tests/wire_format.rs).
const GOLDEN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../functions/override-api/tests/wire_format.golden.json"
));

fn answer(label: &str) -> Value {
    let all: Value = serde_json::from_str(GOLDEN).unwrap();
    let body = all[label]["body"].clone();
    assert!(body.is_object(), "no answer '{label}' in the golden file");
    body
}

const ID: &str = "ovr-20261129-0560bb33b1da";

/// Every command, with the golden answer its route gives.
fn every_call() -> Vec<(Call, &'static str)> {
    let id = || ID.to_string();
    vec![
        (Call::Status, "status, stuck run"),
        (Call::Override(OverrideCommand::List), "status, after"),
        (Call::Decisions { limit: 2, before: None }, "decisions, page"),
        (
            Call::Override(OverrideCommand::Request {
                level: 3,
                until: "2026-12-15".parse().unwrap(),
                reason: "pilot".into(),
            }),
            "override request",
        ),
        (Call::Override(OverrideCommand::Approve { id: id() }), "override approve"),
        (Call::Override(OverrideCommand::Reject { id: id() }), "override reject"),
        (Call::Override(OverrideCommand::Cancel { id: id() }), "override cancel"),
        (Call::BreakerReset, "breaker reset"),
        (Call::Mode("shadow".into()), "mode"),
        (Call::Plan, "evaluate dry run"),
        (Call::ShowMode, "status, fresh"),
        (Call::StatusWithOrphans, "status, drained"),
        (Call::DrainPlan, "drain plan"),
        (Call::DrainRequest { reason: "teardown".into() }, "drain request"),
        (
            Call::Drain(DrainCommand::Approve { id: Some("drain-20261129-ddc32467c8c55d8d".into()) }),
            "drain approve",
        ),
        (Call::Drain(DrainCommand::Cancel), "drain cancel"),
        (Call::PendingApprove { id: Some("pending-20261129-L0-L1-change".into()) }, "pending approve"),
        (Call::PendingReject { reason: "not before the board meeting".into() }, "pending reject"),
        (
            Call::Cash(CashCommand::Set {
                amount: "420000".into(),
                currency: None,
                as_of: "2026-11-01".parse().unwrap(),
            }),
            "cash set",
        ),
        (
            Call::Provisioning(ProvisioningCommand::Release {
                decision_id: "2026-11-28-L0-L1-stuck0000001".into(),
                components: vec![(ComponentId::new("eks_control_plane"), ComponentState::Cold)],
                reason: "fixed".into(),
            }),
            "release",
        ),
    ]
}

#[test]
fn the_status_shows_the_runway_known_or_why_not_and_cash_set_what_it_recorded() {
    let with_runway = |runway: Value| {
        let mut body = answer("status, fresh");
        body["runway"] = runway;
        output(&Call::Status, &body.to_string(), false).unwrap()
    };
    let set = serde_json::json!({
        "amount": {"minor": 42_000_000, "currency": "EUR"},
        "as_of": "2026-11-01", "set_by": "arn:aws:iam::1:user/ada", "set_on": "2026-11-29"
    });
    let known = with_runway(serde_json::json!({
        "min_months": 12, "months": {"tenths": 118},
        "cash": {"minor": 39_376_438, "currency": "EUR"}, "net_burn": {"minor": 3_336_000, "currency": "EUR"},
        "set": set, "unknown_because": null
    }));
    assert!(
        known.contains("runway     11.8 months (minimum 12, UNDER THE MINIMUM): cash EUR 393,764.38, net burn EUR 33,360 a month, from EUR 420,000 as of 2026-11-01 (set by arn:aws:iam::1:user/ada)"),
        "{known}"
    );
    let unknown = with_runway(serde_json::json!({
        "min_months": 12, "months": null, "cash": null, "net_burn": null, "set": null,
        "unknown_because": "no cash figure is set"
    }));
    assert!(
        unknown.contains(
            "runway     unknown (minimum 12): no cash figure is set; no activation passes until it is known"
        ),
        "{unknown}"
    );
    let profitable = with_runway(serde_json::json!({
        "min_months": 12, "months": "unlimited",
        "cash": {"minor": 1, "currency": "EUR"}, "net_burn": {"minor": -5, "currency": "EUR"},
        "set": null, "unknown_because": null
    }));
    assert!(profitable.contains("runway     unlimited (minimum 12): cash EUR 0.01"), "{profitable}");
    assert!(!output(&Call::Status, &answer("status, fresh").to_string(), false).unwrap().contains("runway"));
    let recorded = output(
        &Call::Cash(CashCommand::Set {
            amount: "1".into(),
            currency: None,
            as_of: "2026-11-01".parse().unwrap(),
        }),
        &answer("cash set").to_string(),
        false,
    )
    .unwrap();
    assert_eq!(
        recorded,
        "cash       EUR 420,000 as of 2026-11-01, recorded (set by arn:aws:iam::123456789012:user/bob)\n"
    );
}

#[test]
fn every_command_prints_its_answer_as_json_exactly_as_the_api_gave_it() {
    for (call, label) in every_call() {
        let body = answer(label);
        let printed = output(&call, &body.to_string(), true).unwrap_or_else(|e| panic!("{label}: {e:#}"));
        let reread: Value = serde_json::from_str(&printed).unwrap();
        assert_eq!(reread, body, "{label}");
    }
}

#[test]
fn every_command_prints_a_table_or_a_summary_never_raw_json() {
    for (call, label) in every_call() {
        let table =
            output(&call, &answer(label).to_string(), false).unwrap_or_else(|e| panic!("{label}: {e:#}"));
        assert!(!table.trim_start().starts_with('{'), "{label}: {table}");
        assert!(table.ends_with('\n') && table.lines().count() >= 1, "{label}: {table:?}");
    }
}

#[test]
fn the_summaries_of_changes_say_what_changed() {
    let printed = |call: Call, label: &str| output(&call, &answer(label).to_string(), false).unwrap();
    let approved = printed(Call::Override(OverrideCommand::Approve { id: ID.into() }), "override approve");
    assert!(
        approved.starts_with(&format!("override   {ID} approved by arn:aws:iam::123456789012:user/bob: L3"))
    );
    assert!(approved.contains("execute L0 -> L3, level change requested"), "{approved}");
    let rejected = printed(Call::Override(OverrideCommand::Reject { id: ID.into() }), "override reject");
    assert!(rejected.contains(" rejected: L3 until 2026-12-15"), "{rejected}");
    let released = printed(
        Call::Provisioning(ProvisioningCommand::Release {
            decision_id: "d".into(),
            components: vec![],
            reason: "x".into(),
        }),
        "release",
    );
    assert!(released.lines().any(|l| l.contains("eks_control_plane") && l.contains("cold")), "{released}");
    assert!(released.contains("breaker    closed (1 consecutive failure(s))"), "{released}");
    let mode = printed(Call::Mode("shadow".into()), "mode");
    assert!(
        mode.starts_with("mode       shadow (holds until a deploy changes the stack's Mode, now "),
        "{mode}"
    );
    let plan = printed(Call::DrainPlan, "drain plan");
    let steps: Vec<&str> =
        plan.lines().filter(|l| l.contains("deactivate") || l.contains("decommission")).collect();
    assert_eq!(steps.len(), 6, "{plan}");
    assert!(
        steps[0].contains("k8s_workers") && steps[5].contains("eks_control_plane"),
        "node groups first: {plan}"
    );
    let approved = printed(
        Call::Drain(DrainCommand::Approve { id: Some("drain-20261129-ddc32467c8c55d8d".into()) }),
        "drain approve",
    );
    assert!(approved.contains("approved by arn:aws:iam::123456789012:user/bob"), "{approved}");
    assert!(approved.contains("execute L2 -> L0, level change requested"), "{approved}");
    let drained = printed(Call::Status, "status, drained");
    assert!(
        drained.contains(
            "drain      drain-20261129-ddc32467c8c55d8d requested by arn:aws:iam::123456789012:user/alice"
        ),
        "{drained}"
    );
    let status = printed(Call::Status, "status, stuck run");
    assert!(
        status
            .contains("provisioning 2026-11-28-L0-L1-stuck0000001 (L0 -> L1, started 2026-11-28T06:00:00Z)"),
        "{status}"
    );
}

#[test]
fn an_answer_missing_a_field_is_an_error_and_not_a_blank_in_the_table() {
    for (call, field) in [(Call::Status, "level"), (Call::Status, "mrr"), (Call::Status, "provisioning")] {
        let mut body = answer("status, fresh");
        body.as_object_mut().unwrap().remove(field);
        let err = output(&call, &body.to_string(), false).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("not the StatusResponse")
                && message.contains(&format!("missing field `{field}`")),
            "{message}"
        );
    }
    let mut renamed = answer("override request");
    let o = renamed.as_object_mut().unwrap().remove("override").unwrap();
    renamed["overide"] = o;
    let call = Call::Override(OverrideCommand::Request {
        level: 3,
        until: "2026-12-15".parse().unwrap(),
        reason: "x".into(),
    });
    assert!(output(&call, &renamed.to_string(), true).is_err(), "--json reads the answer too");
}

#[test]
fn each_command_sends_its_route_with_the_typed_request_body() {
    let (method, path, body) = request_of(&every_call()[3].0).unwrap();
    assert_eq!((method, path.as_str()), ("POST", "/overrides"));
    let sent: CreateOverrideRequest = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!(sent.level, 3);
    let (_, path, body) = request_of(&Call::Decisions { limit: 5, before: Some("a:b".into()) }).unwrap();
    assert_eq!((path.as_str(), body), ("/decisions?limit=5&before=a:b", None));
    let (_, _, body) = request_of(every_call().last().map(|(c, _)| c).unwrap()).unwrap();
    let sent: Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!(sent["components"], serde_json::json!({"eks_control_plane": "cold"}));
    assert_eq!(sent["decision_id"], "2026-11-28-L0-L1-stuck0000001");
    assert!(request_of(&Call::Mode("yolo".into())).is_err(), "an unknown mode is refused before sending");
    let cash = Call::Cash(CashCommand::Set {
        amount: "420000.50".into(),
        currency: Some("EUR".into()),
        as_of: "2026-11-01".parse().unwrap(),
    });
    let (method, path, body) = request_of(&cash).unwrap();
    assert_eq!((method, path.as_str()), ("POST", "/cash"));
    let sent: SetCashRequest = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!((sent.amount.as_str(), sent.currency.as_deref()), ("420000.50", Some("EUR")));
}

#[test]
fn a_repaired_component_is_declared_cold_warm_or_hot() {
    assert_eq!(
        declared_state("eks_control_plane=warm"),
        Ok((ComponentId::new("eks_control_plane"), ComponentState::Warm))
    );
    assert!(declared_state("eks_control_plane=warming").unwrap_err().contains("cold, warm or hot"));
    assert!(declared_state("eks_control_plane").unwrap_err().contains("expected COMPONENT=STATE"));
}

#[test]
fn an_approval_without_an_id_names_what_status_shows_waiting_and_refuses_when_nothing_waits() {
    let drained: StatusResponse = serde_json::from_value(answer("status, drained")).unwrap();
    let Ok(Call::Drain(DrainCommand::Approve { id: Some(id) })) =
        approval_of(Call::Drain(DrainCommand::Approve { id: None }), &drained)
    else {
        panic!("the drain waiting is named")
    };
    assert_eq!(Some(&id), drained.drain_id.as_ref());
    assert_eq!(id, drained.drain.as_ref().unwrap().id());
    let Err(nothing) = approval_of(Call::PendingApprove { id: None }, &drained) else {
        panic!("nothing waits for approval in that status")
    };
    assert_eq!(nothing, "no level change waits for approval");
    // An id given on the command line is sent as it is.
    let Ok(Call::PendingApprove { id }) =
        approval_of(Call::PendingApprove { id: Some("x".into()) }, &drained)
    else {
        panic!()
    };
    assert_eq!(id.as_deref(), Some("x"));
}
