//! `revscale doctor` against a stack on moto with every fault a real account hides set
//! up on purpose, then each mended: every check fails (or warns) first, then passes.
//!
//! moto answers the AWS calls but three, which tests/router.py answers in the shapes
//! AWS documents: Cost Explorer's cost allocation tags (moto has no ListCostAllocationTags
//! nor UpdateCostAllocationTagsStatus), IAM's SimulatePrincipalPolicy (moto does not
//! evaluate policies), and STS's GetCallerIdentity (moto names every caller
//! `arn:aws:sts::123456789012:user/moto`, which is no IAM principal the API could
//! authorise). Stripe is a Stripe-shaped wiremock server: localstripe accepts any key
//! for any endpoint, so it cannot answer a restricted key's 403.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::process::Output;

use aws_sdk_cloudformation::types::Parameter;
use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target};
use chrono::{Days, Utc};
use revscale_aws::dynamo::DynamoStore;
use revscale_engine::ports::{AuditRecord, CostSnapshot, RevenueSnapshot, StateStore};
use revscale_engine::{Currency, Money};
use revscale_integration_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHIPPED: &str = include_str!("../config/revenue_thresholds.yaml");

/// Everything the stack names, made in moto under one unique name.
struct Setup {
    stack: String,
    table: String,
    topic: String,
    dlq: String,
    managed_topic: String,
    config_parameter: String,
    stripe: MockServer,
}

async fn post_answers(answers: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_answers", router_url()))
        .json(&answers)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

async fn router_hits(operation: &str, contains: &str) -> usize {
    let all: Value = reqwest::get(format!("{}/_answers", router_url())).await.unwrap().json().await.unwrap();
    all["answers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["hits"].as_array().cloned().unwrap_or_default())
        .filter(|h| h.as_str().is_some_and(|h| h.contains(operation) && h.contains(contains)))
        .count()
}

fn stripe_list(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"object": "list", "data": data, "has_more": false, "url": "/v1/x"}))
}

async fn setup(sdk: &aws_config::SdkConfig) -> Setup {
    let stack = unique("dr").replace('-', "x");
    let table = table(sdk).await;
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic = sns.create_topic().name(format!("{stack}-alerts")).send().await.unwrap().topic_arn.unwrap();
    // A resource revscale manages, tagged as such, without the component tag.
    let managed_topic = sns
        .create_topic()
        .name(format!("{stack}-managed"))
        .tags(aws_sdk_sns::types::Tag::builder().key("revscale:managed").value("true").build().unwrap())
        .tags(aws_sdk_sns::types::Tag::builder().key("revscale:stack").value(&stack).build().unwrap())
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let (dlq, _) = queue(sdk, &format!("{stack}-dlq")).await;
    aws_sdk_sqs::Client::new(sdk).send_message().queue_url(&dlq).message_body("{}").send().await.unwrap();
    let secret = aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(format!("{stack}-stripe"))
        .secret_string("sk_test_full_secret_key")
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let role = format!("arn:aws:iam::123456789012:role/{stack}-provision");
    let config_parameter = format!("/revscale/{stack}/config");
    let schedules = ["revenue", "cost", "evaluate"].map(|s| format!("{stack}-{s}"));
    let template = json!({
        "Parameters": {
            "Mode": {"Type": "String"}, "RevenueCurrency": {"Type": "String"}, "FxRates": {"Type": "String"},
            "StripeSecretArn": {"Type": "String"}, "ScheduleTimezone": {"Type": "String"},
            "CostTagKey": {"Type": "String"}, "EksClusterName": {"Type": "String"},
            "EksClusterRoleArn": {"Type": "String"}, "EksNodeRoleArn": {"Type": "String"},
            "FlagPrefix": {"Type": "String"}, "ReaderPrincipals": {"Type": "String"},
            "OperatorPrincipals": {"Type": "String"}, "ApproverPrincipals": {"Type": "String"},
        },
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "ConfigParameterName": {"Value": config_parameter},
            "ApiUrl": {"Value": "http://127.0.0.1:9"},
            "TableName": {"Value": table},
            "AlertTopicArn": {"Value": topic},
            "DailyDeadLetterQueueUrl": {"Value": dlq},
            "ScheduleNames": {"Value": schedules.join(",")},
            "ProvisionRoleArn": {"Value": role},
        },
    });
    let p = |k: &str, v: &str| Parameter::builder().parameter_key(k).parameter_value(v).build();
    aws_sdk_cloudformation::Client::new(sdk)
        .create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .parameters(p("Mode", "shadow"))
        .parameters(p("RevenueCurrency", "EUR"))
        .parameters(p("FxRates", "USD=0.93"))
        .parameters(p("StripeSecretArn", &secret))
        .parameters(p("ScheduleTimezone", "Europe/Rome"))
        .parameters(p("CostTagKey", "revscale-component"))
        .parameters(p("EksClusterName", "revscale"))
        .parameters(p("EksClusterRoleArn", "arn:aws:iam::123456789012:role/revscale-eks-cluster"))
        .parameters(p("EksNodeRoleArn", "arn:aws:iam::123456789012:role/revscale-eks-node"))
        .parameters(p("FlagPrefix", "/revscale/flags"))
        .parameters(p("ReaderPrincipals", ""))
        .parameters(p("OperatorPrincipals", "arn:aws:iam::123456789012:user/alice"))
        // One approver: no one can approve what alice asks for.
        .parameters(p("ApproverPrincipals", "arn:aws:iam::123456789012:user/alice"))
        .send()
        .await
        .unwrap();
    let stripe = MockServer::start().await;
    Setup { stack, table, topic, dlq, managed_topic, config_parameter, stripe }
}

/// `revscale doctor --stack S --json`, with the three calls moto lacks sent to the router.
fn doctor(s: &Setup, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["doctor", "--stack", &s.stack, "--json", "--stripe-api-base"];
    let base = s.stripe.uri();
    args.push(&base);
    args.extend_from_slice(extra);
    let output = revscale_command(&args)
        .env("AWS_ENDPOINT_URL_COST_EXPLORER", router_url())
        .env("AWS_ENDPOINT_URL_IAM", router_url())
        .env("AWS_ENDPOINT_URL_STS", router_url())
        .env_remove("STRIPE_API_KEY")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    });
    (output, report)
}

/// The verdict of the check named `name` (the first whose name starts so).
fn verdict<'a>(report: &'a Value, area: &str, name: &str) -> (&'a str, &'a str) {
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["area"] == area && c["name"].as_str().unwrap().starts_with(name))
        .unwrap_or_else(|| panic!("no check {area}/{name} in {report:#}"));
    (check["verdict"].as_str().unwrap(), check["found"].as_str().unwrap())
}

fn table_of(report: &Value) -> String {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}/{}: {}\n", c["verdict"], c["area"], c["name"], c["found"]))
        .collect()
}

async fn schedule(
    sdk: &aws_config::SdkConfig,
    name: &str,
    timezone: Option<&str>,
    state: ScheduleState,
    update: bool,
) {
    let client = aws_sdk_scheduler::Client::new(sdk);
    let target = Target::builder()
        .arn("arn:aws:sqs:eu-west-1:123456789012:q")
        .role_arn("arn:aws:iam::123456789012:role/scheduler")
        .build()
        .unwrap();
    let window = FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off).build().unwrap();
    if update {
        client
            .update_schedule()
            .name(name)
            .schedule_expression("cron(0 5 * * ? *)")
            .set_schedule_expression_timezone(timezone.map(String::from))
            .state(state)
            .target(target)
            .flexible_time_window(window)
            .send()
            .await
            .unwrap();
    } else {
        client
            .create_schedule()
            .name(name)
            .schedule_expression("cron(0 5 * * ? *)")
            .set_schedule_expression_timezone(timezone.map(String::from))
            .state(state)
            .target(target)
            .flexible_time_window(window)
            .send()
            .await
            .unwrap();
    }
}

fn revenue(date: chrono::NaiveDate) -> RevenueSnapshot {
    let eur = |minor| Money::from_minor(minor, Currency::EUR);
    RevenueSnapshot {
        date,
        mrr: eur(50_000),
        subscriptions_counted: 3,
        customers: 3,
        collected_at: Utc::now(),
    }
}

fn cost(date: chrono::NaiveDate) -> CostSnapshot {
    let eur = |minor| Money::from_minor(minor, Currency::EUR);
    CostSnapshot {
        date,
        monthly_run_rate: eur(10_000),
        month_to_date: eur(3_000),
        previous_month: eur(9_000),
        per_component: Default::default(),
        estimated: false,
        forecast_used: false,
        fx_rate: "0.93".into(),
        requests: 1,
        collected_at: Utc::now(),
    }
}

#[tokio::test]
async fn doctor_fails_each_fault_set_up_on_purpose_then_passes_once_each_is_mended() {
    let sdk = sdk().await;
    let s = setup(&sdk).await;
    let tag_key = "revscale-component".to_string();
    let today = Utc::now().date_naive();

    // ---- the faults ----
    // Billing knows the component tag but it is inactive; revscale:stack it knows too,
    // inactive as well.
    post_answers(json!({"answers": [
        {"service": "ce", "operation": "CostAllocationTags", "body_contains": tag_key,
         "cost_allocation_tags": {
             tag_key.clone(): {"Status": "Inactive", "LastUpdatedDate": "2026-01-01T00:00:00Z", "LastUsedDate": "2026-01-01T00:00:00Z"},
             "revscale:stack": {"Status": "Inactive", "LastUpdatedDate": "2026-01-01T00:00:00Z", "LastUsedDate": "2026-01-01T00:00:00Z"},
         }},
        // Cost Explorer not enabled yet: its answer to an account that just launched it.
        {"service": "ce", "operation": "GetCostAndUsage", "body_contains": tag_key, "status": 400,
         "error_type": "DataUnavailableException",
         "body": json!({"__type": "DataUnavailableException", "Message": "Data is not available. Please try to adjust the time period. If you just enabled Cost Explorer, data might not be ingested yet"}).to_string()},
        // The provisioner's role lacks eks:CreateCluster and may not create the EKS service-linked role.
        {"service": "iam", "operation": "SimulatePrincipalPolicy", "body_contains": s.stack,
         "simulate_deny": ["eks:CreateCluster", "iam:CreateServiceLinkedRole"]},
        {"service": "sts", "operation": "GetCallerIdentity", "body_contains": "GetCallerIdentity",
         "content_type": "text/xml",
         "body": "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/alice</Arn><UserId>AIDA</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>"},
    ]}))
    .await;
    // Stripe: a subscription in GBP (no rate), and a key without the coupon permission.
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .respond_with(stripe_list(json!([
            {"id": "sub_1", "object": "subscription", "status": "active", "currency": "gbp"},
            // A canceled subscription's currency is none of the collector's business.
            {"id": "sub_0", "object": "subscription", "status": "canceled", "currency": "jpy"},
        ])))
        .mount(&s.stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/coupons"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": {
            "message": "The provided key 'rk_test_***abc' does not have the required permissions for this endpoint on account 'acct_1'. Having the 'rak_coupon_read' permission would allow this request to continue.",
            "type": "invalid_request_error"}})))
        .mount(&s.stripe)
        .await;
    for endpoint in ["subscription_items", "prices", "plans", "invoices"] {
        Mock::given(method("GET"))
            .and(path(format!("/v1/{endpoint}")))
            .respond_with(stripe_list(json!([])))
            .mount(&s.stripe)
            .await;
    }
    // Schedules: one disabled, one in UTC, one missing.
    schedule(&sdk, &format!("{}-revenue", s.stack), Some("Europe/Rome"), ScheduleState::Disabled, false)
        .await;
    schedule(&sdk, &format!("{}-cost", s.stack), None, ScheduleState::Enabled, false).await;
    // A configuration in another currency than the stack's, with a service that does not exist.
    let wrong = SHIPPED.replace("currency: EUR", "currency: USD").replace(
        "driver: { kind: ssm_flag, parameter_name: /revscale/flags/hume_ai }",
        &format!("driver: {{ kind: ecs_service, cluster: {}, service: missing, desired_count: 1 }}", s.stack),
    );
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    ssm.put_parameter()
        .name(&s.config_parameter)
        .value(&wrong)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    // A state with the breaker open, a lock held for three hours and a change waiting ten days.
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &s.table);
    let config = revscale_engine::Config::from_yaml(SHIPPED).unwrap();
    let mut state = serde_json::to_value(revscale_test_support::at_level(&config, 0, "2026-01-01")).unwrap();
    state["breaker"] = json!({"consecutive_failures": 3, "opened_on": (today - Days::new(2)).to_string()});
    state["pending_approval"] = json!({"from": 0, "to": 1, "requested_on": (today - Days::new(10)).to_string(),
        "extra_monthly_cost": {"minor": 6800, "currency": "EUR"}});
    state["provisioning"] = json!({"decision_id": "dec-1", "from_level": 0, "to_level": 1, "transitions": [],
        "committed": 0, "started_at": (Utc::now() - chrono::Duration::hours(3)).to_rfc3339()});
    let faulty: revscale_engine::SystemState = serde_json::from_value(state).unwrap();
    let record = |id: &str, at| AuditRecord {
        id: id.into(),
        at,
        kind: "evaluation".into(),
        actor: "revscale".into(),
        decision: None,
        events: vec![],
        note: String::new(),
        state_version: None,
    };
    store
        .record_decision(&record("e1", Utc::now() - chrono::Duration::days(5)), &faulty, None)
        .await
        .unwrap();

    // Snapshots from 40 to 10 days ago: the collectors stopped ten days ago.
    for day in (today - Days::new(40)).iter_days().take(31) {
        store.import_day(&revenue(day), &cost(day), "test").await.unwrap();
    }

    let (output, report) = doctor(&s, &["--config", "config/revenue_thresholds.yaml"]);
    let listing = table_of(&report);
    eprintln!("{listing}");
    assert_eq!(output.status.code(), Some(1), "a FAIL exits 1:\n{listing}");
    for (area, name, expected, says) in [
        ("cost", "CostTagKey", "PASS", "the key the drivers tag with"),
        ("cost", "Cost Explorer", "FAIL", "If you just enabled Cost Explorer"),
        ("cost", &format!("cost allocation tag {tag_key}"), "FAIL", "inactive"),
        ("cost", "cost allocation tag revscale:stack", "WARN", "inactive"),
        ("cost", "managed resources tagged", "FAIL", &s.managed_topic),
        ("stripe", "Stripe key kind", "WARN", "full secret key"),
        ("stripe", "Stripe GET /v1/coupons", "FAIL", "rak_coupon_read"),
        ("stripe", "Stripe GET /v1/subscriptions", "PASS", "answers"),
        ("stripe", "Stripe currencies", "FAIL", "GBP billed"),
        ("schedules", &format!("schedule {}-revenue", s.stack), "FAIL", "disabled"),
        ("schedules", &format!("schedule {}-cost", s.stack), "FAIL", "runs in UTC"),
        ("schedules", &format!("schedule {}-evaluate", s.stack), "FAIL", "does not exist"),
        ("schedules", "failed daily runs", "FAIL", "1 daily run"),
        ("alerts", "alert subscriptions", "FAIL", "none"),
        ("data", "snapshots of the last 90 days", "FAIL", "missing or incomplete: "),
        ("data", "history for the debounce", "WARN", "cannot pass before"),
        ("schedules", "last revenue snapshot", "FAIL", "10 days ago"),
        ("schedules", "last evaluation", "FAIL", "5 days ago"),
        ("config", "configuration /revscale/", "FAIL", "currency USD differs"),
        (
            "config",
            "config/revenue_thresholds.yaml against the stack's",
            "WARN",
            "differs: currency: USD in the stack's, EUR in the file; components.hume_ai.driver.kind: ecs_service in the stack's, ssm_flag in the file",
        ),
        ("components", "hume_ai (ecs_service) exists", "FAIL", "missing"),
        (
            "components",
            "eks_control_plane (eks_cluster) permissions",
            "FAIL",
            "eks:CreateCluster (implicitDeny)",
        ),
        ("components", "k8s_workers (eks_nodegroup) permissions", "PASS", "may do all"),
        ("components", "service-linked role AWSServiceRoleForAmazonEKS", "FAIL", "may not create it"),
        (
            "components",
            "service-linked role AWSServiceRoleForAmazonEKSNodegroup",
            "FAIL",
            "may not create it",
        ),
        ("api", "your roles", "PASS", "user/alice: approver, operator"),
        (
            "api",
            "a second approver",
            "FAIL",
            "only arn:aws:iam::123456789012:user/alice, who is every operator too",
        ),
        ("state", "mode", "PASS", "shadow (the stack's Mode parameter)"),
        ("state", "circuit breaker", "FAIL", "open since"),
        ("state", "provisioning lock", "FAIL", "held by dec-1"),
        ("state", "pending change", "WARN", "10 days"),
    ] {
        let (got, found) = verdict(&report, area, name);
        assert_eq!(got, expected, "{area}/{name}: {found}\n{listing}");
        assert!(found.contains(says), "{area}/{name} should say {says:?}: {found}");
    }

    // The same as an operator reads it.
    let text = revscale_command(&["doctor", "--stack", &s.stack, "--stripe-api-base", &s.stripe.uri()])
        .env("AWS_ENDPOINT_URL_COST_EXPLORER", router_url())
        .env("AWS_ENDPOINT_URL_IAM", router_url())
        .env("AWS_ENDPOINT_URL_STS", router_url())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    println!("{text}");
    assert!(text.contains(&format!("  FAIL  cost allocation tag {tag_key}: inactive")), "{text}");
    assert!(text.contains("        --fix: activate the cost allocation tag(s)"), "{text}");
    assert!(
        text.contains(
            "        fix: Stripe Dashboard > Developers > API keys > the restricted key > Edit: Coupons: Read"
        ),
        "{text}"
    );
    assert!(text.trim_end().ends_with("skipped"), "{text}");

    // ---- --fix: the safe, reversible fix, applied without asking ----
    let (output, report) = doctor(&s, &["--fix", "--yes"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("done: activate the cost allocation tag(s) {tag_key}, revscale:stack")),
        "{stderr}"
    );
    assert_eq!(
        router_hits("UpdateCostAllocationTagsStatus", &tag_key).await,
        1,
        "one call activates both keys"
    );
    assert_eq!(verdict(&report, "cost", &format!("cost allocation tag {tag_key}")).0, "PASS");
    let (age, found) = verdict(&report, "cost", &format!("cost by {tag_key}"));
    assert_eq!(age, "WARN", "activated today: the past is not grouped ({found})");

    // ---- each fault mended ----
    // Cost Explorer answers again (the recorded refusal goes, so the call reaches moto);
    // the tags stay active, the role is granted everything, the caller is the same.
    reqwest::Client::new().delete(format!("{}/_answers", router_url())).send().await.unwrap();
    post_answers(json!({"answers": [
        {"service": "ce", "operation": "CostAllocationTags", "body_contains": tag_key,
         "cost_allocation_tags": {
             tag_key.clone(): {"Status": "Active", "LastUpdatedDate": "2026-01-01T00:00:00Z"},
             "revscale:stack": {"Status": "Active", "LastUpdatedDate": "2026-01-01T00:00:00Z"}}},
        {"service": "iam", "operation": "SimulatePrincipalPolicy", "body_contains": s.stack, "simulate_deny": []},
        {"service": "sts", "operation": "GetCallerIdentity", "body_contains": "GetCallerIdentity", "content_type": "text/xml",
         "body": "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/alice</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>"},
    ]}))
    .await;
    aws_sdk_sns::Client::new(&sdk)
        .tag_resource()
        .resource_arn(&s.managed_topic)
        .tags(aws_sdk_sns::types::Tag::builder().key(&tag_key).value("hume_ai").build().unwrap())
        .send()
        .await
        .unwrap();
    let secretsmanager = aws_sdk_secretsmanager::Client::new(&sdk);
    let secret = aws_sdk_cloudformation::Client::new(&sdk)
        .describe_stacks()
        .stack_name(&s.stack)
        .send()
        .await
        .unwrap();
    let secret_arn = secret.stacks()[0]
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some("StripeSecretArn"))
        .unwrap()
        .parameter_value()
        .unwrap()
        .to_string();
    secretsmanager
        .put_secret_value()
        .secret_id(&secret_arn)
        .secret_string("rk_live_restricted")
        .send()
        .await
        .unwrap();
    s.stripe.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .respond_with(stripe_list(json!([{"id": "sub_1", "object": "subscription", "currency": "usd"}])))
        .mount(&s.stripe)
        .await;
    for endpoint in ["subscription_items", "prices", "plans", "invoices", "coupons"] {
        Mock::given(method("GET"))
            .and(path(format!("/v1/{endpoint}")))
            .respond_with(stripe_list(json!([])))
            .mount(&s.stripe)
            .await;
    }
    schedule(&sdk, &format!("{}-revenue", s.stack), Some("Europe/Rome"), ScheduleState::Enabled, true).await;
    schedule(&sdk, &format!("{}-cost", s.stack), Some("Europe/Rome"), ScheduleState::Enabled, true).await;
    schedule(&sdk, &format!("{}-evaluate", s.stack), Some("Europe/Rome"), ScheduleState::Enabled, false)
        .await;
    aws_sdk_sqs::Client::new(&sdk).purge_queue().queue_url(&s.dlq).send().await.unwrap();
    let subscription = aws_sdk_sns::Client::new(&sdk)
        .subscribe()
        .topic_arn(&s.topic)
        .protocol("sqs")
        .endpoint("arn:aws:sqs:eu-west-1:123456789012:ops")
        .send()
        .await
        .unwrap();
    assert!(subscription.subscription_arn.is_some());
    ssm.put_parameter()
        .name(&s.config_parameter)
        .value(SHIPPED)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    // 150 days of snapshots, the last one yesterday (the days already there are kept),
    // and an evaluation today.
    for day in (today - Days::new(150)).iter_days().take(150) {
        store.import_day(&revenue(day), &cost(day), "test").await.unwrap();
    }
    let clean = revscale_test_support::at_level(&config, 0, "2026-01-01");
    store.record_decision(&record("e2", Utc::now()), &clean, Some(1)).await.unwrap();
    // A second approver, and the EKS service-linked role.
    aws_sdk_cloudformation::Client::new(&sdk)
        .update_stack()
        .stack_name(&s.stack)
        .use_previous_template(true)
        .set_parameters(Some(
            secret.stacks()[0]
                .parameters()
                .iter()
                .map(|p| match p.parameter_key() {
                    Some("ApproverPrincipals") => Parameter::builder()
                        .parameter_key("ApproverPrincipals")
                        .parameter_value(
                            "arn:aws:iam::123456789012:user/alice,arn:aws:iam::123456789012:user/bob",
                        )
                        .build(),
                    _ => p.clone(),
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    let iam = revscale_aws::query::QueryClient::new(&sdk, revscale_aws::query::IAM);
    // As AWS names it (moto's CreateServiceLinkedRole names it AWSServiceRoleForeks);
    // made already if this moto served an earlier run.
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    for (role, service) in [
        ("AWSServiceRoleForAmazonEKS", "eks.amazonaws.com"),
        ("AWSServiceRoleForAmazonEKSNodegroup", "eks-nodegroup.amazonaws.com"),
    ] {
        let made = iam
            .call(
                "CreateRole",
                &[
                    ("RoleName".into(), role.into()),
                    ("Path".into(), format!("/aws-service-role/{service}/")),
                    ("AssumeRolePolicyDocument".into(), trust.to_string()),
                ],
            )
            .await;
        assert!(
            made.is_ok() || made.as_ref().is_err_and(|e| e.code() == Some("EntityAlreadyExists")),
            "{made:?}"
        );
    }

    let (output, report) = doctor(&s, &["--config", "config/revenue_thresholds.yaml"]);
    let listing = table_of(&report);
    eprintln!("{listing}");
    assert_eq!(output.status.code(), Some(0), "nothing fails once mended:\n{listing}");
    let text = revscale_command(&["doctor", "--stack", &s.stack, "--stripe-api-base", &s.stripe.uri()])
        .env("AWS_ENDPOINT_URL_COST_EXPLORER", router_url())
        .env("AWS_ENDPOINT_URL_IAM", router_url())
        .env("AWS_ENDPOINT_URL_STS", router_url())
        .output()
        .unwrap();
    println!("{}", String::from_utf8_lossy(&text.stdout));
    assert!(text.status.success());
    assert_eq!(report["counts"]["fail"], 0, "{listing}");
    for (area, name) in [
        ("cost", "Cost Explorer"),
        ("cost", "managed resources tagged"),
        ("stripe", "Stripe key kind"),
        ("stripe", "Stripe GET /v1/coupons"),
        ("stripe", "Stripe currencies"),
        ("schedules", &format!("schedule {}-revenue", s.stack)),
        ("schedules", &format!("schedule {}-cost", s.stack)),
        ("schedules", &format!("schedule {}-evaluate", s.stack)),
        ("schedules", "failed daily runs"),
        ("alerts", "alert subscriptions"),
        ("data", "snapshots of the last 90 days"),
        ("data", "history for the debounce"),
        ("schedules", "last revenue snapshot"),
        ("schedules", "last evaluation"),
        ("config", "configuration /revscale/"),
        ("config", "config/revenue_thresholds.yaml against the stack's"),
        ("components", "eks_control_plane (eks_cluster) permissions"),
        ("components", "service-linked role AWSServiceRoleForAmazonEKS"),
        ("components", "service-linked role AWSServiceRoleForAmazonEKSNodegroup"),
        ("api", "a second approver"),
        ("state", "circuit breaker"),
        ("state", "provisioning lock"),
        ("state", "pending change"),
    ] {
        let (got, found) = verdict(&report, area, name);
        assert_eq!(got, "PASS", "{area}/{name}: {found}\n{listing}");
    }
}
