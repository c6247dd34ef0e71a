//! The whole daily loop, end to end on emulators: a Stripe account (localstripe) whose
//! MRR crosses level 1 and then level 2, a Cost Explorer history (moto), the real
//! collectors and evaluator run for each simulated day (the event `time` is the clock),
//! and every `Level Change Requested` event delivered twice to what the stack's rule
//! and dispatch state machine do (moto can run neither, so this test plays them): one
//! provisioning run per decision, named after it, which calls the real provisioner.
//! Then a churn drop, and the way back down.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use aws_sdk_sfn::types::ExecutionStatus;
use chrono::{Datelike, Days, NaiveDate};
use revscale_aws::cost_explorer::CostExplorerSource;
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::publish::{EventBridgeBus, SnsNotifier};
use revscale_aws::stripe::StripeSource;
use revscale_engine::model::ComponentState;
use revscale_engine::money::FxRates;
use revscale_engine::ports::{AuditRecord, AuditStore, StateStore};
use revscale_engine::state::Drain;
use revscale_engine::testing::seed_record;
use revscale_engine::{ComponentId, Config, Currency, YearMonth};
use revscale_integration_tests::{
    capture_level_change_requests, create_state_machine, drain, finished_execution, inject_cost_results,
    report, scheduled, sdk, stripe_customer, stripe_url, table_named, topic_with_inbox, unique,
};
use serde_json::{Value, json};

const PREFIX: &str = "revscale-e2e";
const KEY: &str = "sk_test_daily_loop";

async fn stripe(method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
    revscale_integration_tests::stripe(KEY, method, path, form).await
}

async fn subscribe(quantity: &str) -> String {
    let customer = stripe_customer(KEY, &format!("{}@example.com", unique("customer"))).await;
    let form =
        [("customer", customer.as_str()), ("items[0][plan]", "seat"), ("items[0][quantity]", quantity)];
    stripe(reqwest::Method::POST, "/v1/subscriptions", &form).await["id"].as_str().unwrap().to_string()
}

/// One Cost Explorer answer for `day`: month to date of `per_day` USD a day.
async fn inject_cost(tag_key: &str, day: NaiveDate, per_day: u32) {
    let month = YearMonth::of(day);
    let elapsed = day.day() - 1;
    let period = |start: NaiveDate, end: NaiveDate, amount: u32, estimated: bool| {
        json!({
            "TimePeriod": {"Start": start.to_string(), "End": end.to_string()},
            "Total": {},
            "Groups": [{"Keys": [format!("{tag_key}$")], "Metrics": {"UnblendedCost": {"Amount": amount.to_string(), "Unit": "USD"}}}],
            "Estimated": estimated,
        })
    };
    let previous = month.prev();
    let mut results =
        vec![period(previous.first_day(), month.first_day(), per_day * previous.last_day().day(), false)];
    if elapsed > 0 {
        results.push(period(month.first_day(), day, per_day * elapsed, true));
    }
    inject_cost_results(json!({"ResultsByTime": results, "DimensionValueAttributes": []})).await;
}

/// Plays the EventBridge rule and its target, the dispatch state machine (moto can run
/// neither: EventBridge cannot target Step Functions, and moto 5.2.5 passes a
/// `states:startExecution` task's parameters to boto3 un-normalised, failing on
/// 'StateMachineArn'). Each request is delivered twice, as an at-least-once delivery
/// may; as dispatch.asl.json does, each delivery starts a run named after the decision
/// id and takes ExecutionAlreadyExists as done. Returns each run and how it ended.
async fn deliver(
    sdk: &aws_config::SdkConfig,
    sfn: &aws_sdk_sfn::Client,
    machine: &str,
    requests_queue: &str,
) -> Vec<(String, ExecutionStatus)> {
    let mut runs = Vec::new();
    for request in drain(sdk, requests_queue).await {
        let detail = &request["detail"];
        let name = detail["decision_id"].as_str().unwrap().to_string();
        let input = json!({"detail": detail, "wait_seconds": 1}).to_string();
        for delivery in ["first", "redelivered"] {
            let started =
                sfn.start_execution().state_machine_arn(machine).name(&name).input(&input).send().await;
            // Step Functions answers a repeated name with the same input, while the
            // run is open, with that run; afterwards, with ExecutionAlreadyExists.
            match (delivery, started) {
                (_, Ok(_)) => {}
                ("redelivered", Err(e))
                    if aws_sdk_sfn::error::ProvideErrorMetadata::code(&e)
                        == Some("ExecutionAlreadyExists") => {}
                (delivery, Err(e)) => panic!("{delivery} delivery of {name}: {e:?}"),
            }
        }
        let arn = format!("{}:{name}", machine.replace(":stateMachine:", ":execution:"));
        let status = finished_execution(sfn, &arn).await.status;
        runs.push((name, status));
    }
    runs
}

#[tokio::test]
async fn revenue_climbs_two_levels_then_churn_brings_it_back_down_with_everything_provisioned_for_real() {
    let sdk = sdk().await;
    let config = Config::default_config().unwrap();
    // The resources the provision Lambda under `cargo lambda watch` was started with.
    table_named(&sdk, PREFIX).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), PREFIX);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    events.create_event_bus().name(PREFIX).send().await.ok();
    let requests_queue = capture_level_change_requests(&sdk, PREFIX).await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let (topic, alerts_queue) = topic_with_inbox(&sdk, &format!("{PREFIX}-alerts")).await;
    let eks = aws_sdk_eks::Client::new(&sdk);
    for ng in ["workers", "vault", "tee"] {
        eks.delete_nodegroup().cluster_name("revscale").nodegroup_name(ng).send().await.ok();
    }
    eks.delete_cluster().name("revscale").send().await.ok();
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    ssm.delete_parameter().name("/revscale/flags/hume_ai").send().await.ok();

    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let machine = create_state_machine(
        &sdk,
        "provision",
        ("${ProvisionFunctionArn}", "arn:aws:lambda:eu-west-1:123456789012:function:provision"),
    )
    .await;

    // Stripe: EUR 25 a seat. January 20 seats (EUR 500), February and March 40 (EUR
    // 1,000), then from April 2nd 10 (EUR 250).
    let flushed =
        reqwest::Client::new().delete(format!("{}/_config/data", stripe_url())).send().await.unwrap();
    assert!(flushed.status().is_success());
    stripe(
        reqwest::Method::POST,
        "/v1/plans",
        &[
            ("id", "seat"),
            ("amount", "2500"),
            ("currency", "eur"),
            ("interval", "month"),
            ("product[name]", "seat"),
        ],
    )
    .await;
    let first = subscribe("20").await;
    let mut second = None;

    let tag_key = unique("revscale-component");
    let stripe_src = StripeSource::new(&stripe_url(), KEY.into(), Currency::EUR, FxRates::new()).unwrap();
    let cost_src = CostExplorerSource::new(
        &sdk,
        "UnblendedCost",
        tag_key.clone(),
        Currency::EUR,
        FxRates::parse_list("USD=0.93").unwrap(),
    );
    let revenue = collect_revenue::handler::Deps { store: &store, stripe: stripe_src };
    let costs = collect_cost::handler::Deps { store: &store, source: cost_src };
    let evaluator = evaluate::handler::Deps {
        config,
        store: store.clone(),
        bus: EventBridgeBus::new(events.clone(), PREFIX),
        notifier: SnsNotifier::new(sns.clone(), &topic),
        // The daily drift check reads moto's EKS and SSM, as it would the account's.
        driver: revscale_aws::drivers::AwsDrivers::new(&sdk),
    };

    let start: NaiveDate = "2026-01-01".parse().unwrap();
    let end: NaiveDate = "2026-04-12".parse().unwrap();
    let mut runs: Vec<(String, String, ExecutionStatus)> = Vec::new();
    let mut day = start;
    while day <= end {
        if day == "2026-02-01".parse().unwrap() {
            second = Some(subscribe("20").await);
        }
        if day == "2026-04-02".parse().unwrap() {
            for sub in [Some(first.clone()), second.take()].into_iter().flatten() {
                stripe(reqwest::Method::DELETE, &format!("/v1/subscriptions/{sub}"), &[]).await;
            }
            subscribe("10").await;
        }
        let time = format!("{day}T05:00:00Z");
        collect_revenue::handler::handle(&revenue, scheduled(&format!("rev-{day}"), &time))
            .await
            .expect("revenue");
        // USD 2 a day; USD 8 a day in April: EUR 223 a month, 89% of the EUR 250 left.
        let per_day = if day >= "2026-04-01".parse().unwrap() { 8 } else { 2 };
        inject_cost(&tag_key, day, per_day).await;
        collect_cost::handler::handle(&costs, scheduled(&format!("cost-{day}"), &time)).await.expect("cost");
        let evaluated = evaluate::handler::handle(
            &evaluator,
            scheduled(&format!("eval-{day}"), &format!("{day}T06:00:00Z")),
        )
        .await
        .expect("evaluation");

        for (name, status) in deliver(&sdk, &sfn, &machine, &requests_queue).await {
            report(&format!(
                "{day}: {} -> {name}: {status:?}",
                evaluated["reasons"][0].as_str().unwrap_or_default()
            ));
            runs.push((day.to_string(), name, status));
        }
        day = day + Days::new(1);
    }

    // Ten deliveries, five runs: pre-warming L1 a week before three months of daily
    // MRR exist, L0 -> L1, pre-warming L2 a week before its window completes,
    // L1 -> L2, and the churn drop to L0.
    let executions = sfn.list_executions().state_machine_arn(&machine).send().await.unwrap().executions;
    assert_eq!(executions.len(), runs.len(), "one run per decision, whatever the deliveries");
    let summary: Vec<(String, String)> =
        runs.iter().map(|(d, n, _)| (d.clone(), n[11..17].to_string())).collect();
    report(&format!("provisioning runs: {summary:?}"));
    assert!(runs.iter().all(|(_, _, s)| *s == ExecutionStatus::Succeeded), "{runs:?}");
    assert_eq!(
        summary,
        [
            ("2026-03-15".to_string(), "L0-L0-".to_string()),
            ("2026-03-22".to_string(), "L0-L1-".to_string()),
            ("2026-03-24".to_string(), "L1-L1-".to_string()),
            ("2026-03-31".to_string(), "L1-L2-".to_string()),
            ("2026-04-08".to_string(), "L2-L0-".to_string()),
        ]
    );

    // Where everything stands: level 0, the dropped components WARM (kept for the
    // cool-down), in DynamoDB and for real in EKS and SSM.
    let state = store.load_state().await.unwrap().unwrap().value;
    assert_eq!(state.level, 0);
    for c in ["eks_control_plane", "hume_ai", "k8s_workers"] {
        assert_eq!(state.component_state(&ComponentId::new(c)), ComponentState::Warm, "{c}");
    }
    assert_eq!(state.component_state(&ComponentId::new("vault_ha")), ComponentState::Cold);
    assert!(state.provisioning.is_none() && state.any_transitional().is_none());
    let cluster = eks.describe_cluster().name("revscale").send().await.unwrap().cluster.unwrap();
    assert_eq!(cluster.status.unwrap().as_str(), "ACTIVE", "WARM keeps the control plane");
    let workers =
        eks.describe_nodegroup().cluster_name("revscale").nodegroup_name("workers").send().await.unwrap();
    let sc = workers.nodegroup.unwrap().scaling_config.unwrap();
    assert_eq!((sc.min_size, sc.desired_size), (Some(0), Some(0)), "WARM is a node group scaled to zero");
    let flag =
        ssm.get_parameter().name("/revscale/flags/hume_ai").send().await.unwrap().parameter.unwrap().value;
    assert_eq!(flag.as_deref(), Some("warm"));

    // The audit trail: an evaluation for every simulated day, and every provisioning step.
    let audit = store.recent_audit(1000, None).await.unwrap();
    let evaluations = audit.iter().filter(|r| r.kind == "evaluation").count();
    assert_eq!(evaluations, (end - start).num_days() as usize + 1);
    let finishes = audit.iter().filter(|r| r.id.ends_with(".finish")).count();
    assert_eq!(finishes, 5);
    // The alerts: once, when MRR shrinks to EUR 250. The production cost is Cost
    // Explorer's EUR 223.20 plus hume_ai's EUR 65 subscription, billed outside AWS:
    // EUR 288.20 is 115.28% of MRR, past 90% at once (Cost Explorer alone would have
    // read 89.28%, a mere warning).
    let alerts = drain(&sdk, &alerts_queue).await;
    let subjects: Vec<&str> = alerts.iter().filter_map(|a| a["Subject"].as_str()).collect();
    report(&format!("alerts: {subjects:?}"));
    assert_eq!(subjects, ["revscale CRITICAL: cost is 115.28% of MRR"]);

    // The way out: a drain requested by alice and approved by bob (recorded as the API
    // records it) takes everything revscale made down at the next evaluation, in
    // shadow mode too: node groups first, then the cluster, for real.
    let mut drained = store.load_state().await.unwrap().unwrap();
    drained.value.drain = Some(Drain {
        reason: "teardown".into(),
        requested_by: "arn:aws:iam::123456789012:user/alice".into(),
        requested_on: end,
        approved_by: Some("arn:aws:iam::123456789012:user/bob".into()),
    });
    drained.value.set_mode(revscale_engine::Mode::Shadow, &evaluator.config);
    let approval = AuditRecord {
        kind: "drain-approve".into(),
        ..seed_record("2026-04-12T12:00:00.000Z-drain-approve", "2026-04-12T12:00:00Z".parse().unwrap())
    };
    store.record_decision(&approval, &drained.value, Some(drained.version)).await.unwrap();
    let day = end + Days::new(1);
    evaluate::handler::handle(&evaluator, scheduled(&format!("eval-{day}"), &format!("{day}T06:00:00Z")))
        .await
        .expect("evaluation");
    let teardown = deliver(&sdk, &sfn, &machine, &requests_queue).await;
    report(&format!("drain: {teardown:?}"));
    assert!(
        matches!(teardown.as_slice(), [(name, ExecutionStatus::Succeeded)] if name.contains("-L0-L0-")),
        "{teardown:?}"
    );
    let state = store.load_state().await.unwrap().unwrap().value;
    for (id, record) in &state.components {
        let always_on = evaluator.config.components[id].is_always_on();
        assert_eq!(record.state == ComponentState::Cold, !always_on, "{id}: {:?}", record.state);
    }
    assert!(
        eks.describe_nodegroup().cluster_name("revscale").nodegroup_name("workers").send().await.is_err()
    );
    assert!(eks.describe_cluster().name("revscale").send().await.is_err(), "the cluster is gone");
    let flag =
        ssm.get_parameter().name("/revscale/flags/hume_ai").send().await.unwrap().parameter.unwrap().value;
    assert_eq!(flag.as_deref(), Some("off"));
    let tags = ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id("/revscale/flags/hume_ai")
        .send()
        .await
        .unwrap();
    let tagged =
        |key: &str, value: &str| tags.tag_list().iter().any(|t| t.key() == key && t.value() == value);
    assert!(
        tagged("revscale:managed", "true")
            && tagged("revscale:stack", PREFIX)
            && tagged("revscale-component", "hume_ai"),
        "what a driver makes carries the managed, stack and component tags: {tags:?}"
    );
}
