//! The provisioning state machine really executing in moto, calling the real `provision`
//! binary (run by `cargo lambda watch` behind tests/router.py), against moto's EKS, SSM,
//! DynamoDB, EventBridge and SNS. The provision Lambda's environment is fixed when
//! watch starts (tests/emulators.sh), so these scenarios share its resources and run
//! one after the other in a single test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use aws_config::SdkConfig;
use aws_sdk_sfn::types::ExecutionStatus;
use revscale_aws::dynamo::DynamoStore;
use revscale_engine::model::{ComponentState, Mode, Transition, TransitionKind};
use revscale_engine::ports::{LevelChangeRequested, StateStore};
use revscale_engine::state::ComponentRecord;
use revscale_engine::{Cause, ComponentId, Config, SystemState};
use revscale_integration_tests::{
    create_state_machine, drain, finished_execution, queue, report, sdk, table_named, topic_with_inbox,
};
use revscale_test_support::{record_request, seed_record};
use serde_json::json;

const PREFIX: &str = "revscale-e2e";
const PROVISION_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:provision";

struct Rig {
    sdk: SdkConfig,
    store: DynamoStore,
    state_machine: String,
    events_queue: String,
    alerts_queue: String,
}

async fn rig() -> Rig {
    let sdk = sdk().await;
    // The table, bus and topic the provision Lambda was started with (fixed names).
    table_named(&sdk, PREFIX).await;

    let events = aws_sdk_eventbridge::Client::new(&sdk);
    events.create_event_bus().name(PREFIX).send().await.ok();
    let (events_queue, events_arn) = queue(&sdk, &format!("{PREFIX}-events")).await;
    events
        .put_rule()
        .name(format!("{PREFIX}-level-changed"))
        .event_bus_name(PREFIX)
        .event_pattern(r#"{"source": ["revscale"], "detail-type": ["Level Changed"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(format!("{PREFIX}-level-changed"))
        .event_bus_name(PREFIX)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("capture").arn(events_arn).build().unwrap())
        .send()
        .await
        .unwrap();
    let (_, alerts_queue) = topic_with_inbox(&sdk, &format!("{PREFIX}-alerts")).await;
    let state_machine =
        create_state_machine(&sdk, "provision", ("${ProvisionFunctionArn}", PROVISION_ARN)).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), PREFIX);
    Rig { sdk, store, state_machine, events_queue, alerts_queue }
}

/// Removes what earlier scenarios created in moto and on the Kubernetes fake (the
/// shipped workloads' namespaces) and stores `state` as the current one.
async fn reset(rig: &Rig, state: &SystemState) {
    kubernetes(serde_json::json!({"clear": ["vault", "tee", "escrow"]})).await;
    let eks = aws_sdk_eks::Client::new(&rig.sdk);
    for ng in ["workers", "vault", "tee"] {
        eks.delete_nodegroup().cluster_name("revscale").nodegroup_name(ng).send().await.ok();
    }
    eks.delete_cluster().name("revscale").send().await.ok();
    let ssm = aws_sdk_ssm::Client::new(&rig.sdk);
    for flag in ["hume_ai", "dat_iq", "full_escrow"] {
        ssm.delete_parameter().name(format!("/revscale/flags/{flag}")).send().await.ok();
    }
    let ddb = aws_sdk_dynamodb::Client::new(&rig.sdk);
    store_state(rig, state, &ddb).await;
}

/// Stores `state` as the current one, touching nothing in AWS.
async fn store_state(rig: &Rig, state: &SystemState, ddb: &aws_sdk_dynamodb::Client) {
    ddb.delete_item()
        .table_name(PREFIX)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("STATE".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("CURRENT".into()))
        .send()
        .await
        .unwrap();
    let seed =
        seed_record(&revscale_integration_tests::unique("seed"), "2026-03-01T05:00:00Z".parse().unwrap());
    rig.store.record_decision(&seed, state, None).await.unwrap();
    drain(&rig.sdk, &rig.events_queue).await;
    drain(&rig.sdk, &rig.alerts_queue).await;
}

fn request(id: &str, from: u8, to: u8, transitions: &[(&str, TransitionKind)]) -> LevelChangeRequested {
    LevelChangeRequested {
        decision_id: id.into(),
        from_level: from,
        to_level: to,
        transitions: transitions
            .iter()
            .map(|(c, k)| Transition { component: ComponentId::new(*c), kind: *k })
            .collect(),
        reasons: vec!["test".into()],
        mode: Mode::Auto,
        cause: Some(Cause::Growth),
    }
}

/// Records `request` in the audit trail as the evaluator would (an `Execute` decision,
/// taken now): the provisioner acts on nothing else.
async fn record(rig: &Rig, request: &LevelChangeRequested) {
    record_request(&rig.store, request, chrono::Utc::now()).await
}

/// Records the decision, starts an execution named after it and waits for it to end.
async fn execute(
    rig: &Rig,
    request: &LevelChangeRequested,
) -> (ExecutionStatus, Option<String>, Vec<String>) {
    record(rig, request).await;
    execute_unrecorded(rig, request).await
}

/// Starts an execution named after the decision and waits for it to end; returns its
/// status, its error, and the names of the states it entered, in order.
async fn execute_unrecorded(
    rig: &Rig,
    request: &LevelChangeRequested,
) -> (ExecutionStatus, Option<String>, Vec<String>) {
    execute_waiting(rig, request, 1).await
}

async fn execute_waiting(
    rig: &Rig,
    request: &LevelChangeRequested,
    wait_seconds: u32,
) -> (ExecutionStatus, Option<String>, Vec<String>) {
    let sfn = aws_sdk_sfn::Client::new(&rig.sdk);
    let input = json!({"detail": request, "wait_seconds": wait_seconds});
    let arn = sfn
        .start_execution()
        .state_machine_arn(&rig.state_machine)
        .name(request.decision_id.as_str())
        .input(input.to_string())
        .send()
        .await
        .unwrap()
        .execution_arn;
    let ended = finished_execution(&sfn, &arn).await;
    let (status, error) = (ended.status, ended.error);
    let history = sfn.get_execution_history().execution_arn(&arn).max_results(1000).send().await.unwrap();
    let states = history
        .events
        .iter()
        .filter_map(|e| e.state_entered_event_details.as_ref().map(|d| d.name.clone()))
        .collect();
    (status, error, states)
}

async fn stored(rig: &Rig) -> SystemState {
    rig.store.load_state().await.unwrap().unwrap().value
}

async fn flag(rig: &Rig, name: &str) -> Option<String> {
    let out = aws_sdk_ssm::Client::new(&rig.sdk)
        .get_parameter()
        .name(format!("/revscale/flags/{name}"))
        .send()
        .await;
    out.ok().and_then(|o| o.parameter).and_then(|p| p.value)
}

/// The provision Lambda has one table, bus and topic: its scenarios run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn the_state_machine_provisions_rolls_back_and_refuses_duplicates_for_real() {
    use TransitionKind::{Activate, Deploy};
    let _serial = ONE_AT_A_TIME.lock().await;
    let rig = rig().await;
    let config = Config::default_config().unwrap();
    let eks = aws_sdk_eks::Client::new(&rig.sdk);

    // 1. Level 0 -> 2: the cluster, the Hume AI flag and the worker node group.
    reset(&rig, &SystemState::initial(&config, "2026-03-01".parse().unwrap())).await;
    let up = request(
        "2026-03-01-L0-L2-e2e000000001",
        0,
        2,
        &[
            ("eks_control_plane", Deploy),
            ("eks_control_plane", Activate),
            ("hume_ai", Deploy),
            ("hume_ai", Activate),
            ("k8s_workers", Deploy),
            ("k8s_workers", Activate),
        ],
    );
    let (status, error, states) = execute(&rig, &up).await;
    assert_eq!(status, ExecutionStatus::Succeeded, "{error:?}: {}", states.join(" -> "));
    report(&format!("happy path: {}", states.join(" -> ")));
    let s = stored(&rig).await;
    assert_eq!(s.level, 2);
    for c in ["eks_control_plane", "hume_ai", "k8s_workers"] {
        assert_eq!(s.component_state(&ComponentId::new(c)), ComponentState::Hot, "{c}");
    }
    let cluster = eks.describe_cluster().name("revscale").send().await.unwrap().cluster.unwrap();
    assert_eq!(cluster.status.unwrap().as_str(), "ACTIVE");
    let ng = eks
        .describe_nodegroup()
        .cluster_name("revscale")
        .nodegroup_name("workers")
        .send()
        .await
        .unwrap()
        .nodegroup
        .unwrap();
    let sc = ng.scaling_config.unwrap();
    assert_eq!((sc.min_size, sc.desired_size, sc.max_size), (Some(2), Some(2), Some(4)));
    assert_eq!(flag(&rig, "hume_ai").await.as_deref(), Some("on"));
    // The cluster revscale created gives its roles access to the workloads' namespaces
    // only (tests/emulators.sh names the roles; EKS's access entries are on the router).
    let scope = json!({"type": "namespace", "namespaces": ["escrow", "ledger", "tee", "vault"]});
    assert_eq!(
        kubernetes_state().await["access_entries"]["revscale"],
        json!({
            "arn:aws:iam::123456789012:role/revscale-e2e-provision":
                {"arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy": scope},
            "arn:aws:iam::123456789012:role/revscale-e2e-evaluate":
                {"arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy": scope},
        })
    );
    let changed = drain(&rig.sdk, &rig.events_queue).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(
        (changed[0]["detail-type"].as_str(), changed[0]["detail"]["to_level"].as_u64()),
        (Some("Level Changed"), Some(2))
    );

    // 2. The same decision again: Step Functions refuses a second execution name.
    let sfn = aws_sdk_sfn::Client::new(&rig.sdk);
    let again = sfn
        .start_execution()
        .state_machine_arn(&rig.state_machine)
        .name(up.decision_id.as_str())
        .input(json!({"detail": up, "wait_seconds": 1}).to_string())
        .send()
        .await;
    let refused = again.expect_err("a second execution with the decision's name must be refused");
    assert_eq!(aws_sdk_sfn::error::ProvideErrorMetadata::code(&refused), Some("ExecutionAlreadyExists"));

    // 3. A failure for real, three components into a four-component transition: the
    //    stored state says the control plane is HOT, but the cluster is gone, so
    //    creating the node group fails (ResourceNotFoundException). Everything done
    //    before it is undone, newest first.
    let mut drifted = SystemState::initial(&config, "2026-03-01".parse().unwrap());
    drifted.level = 1;
    drifted.components.insert(
        ComponentId::new("eks_control_plane"),
        ComponentRecord::settled(ComponentState::Hot, "2026-02-01".parse().unwrap()),
    );
    reset(&rig, &drifted).await;
    let down_before = stored(&rig).await;
    let climb = request(
        "2026-03-02-L1-L3-e2e000000002",
        1,
        3,
        &[
            ("hume_ai", Deploy),
            ("hume_ai", Activate),
            ("k8s_workers", Deploy),
            ("k8s_workers", Activate),
            ("dat_iq", Deploy),
            ("dat_iq", Activate),
            ("vault_ha", Deploy),
            ("vault_ha", Activate),
        ],
    );
    let (status, error, states) = execute(&rig, &climb).await;
    report(&format!("rollback run, states in order: {}", states.join(" -> ")));
    assert_eq!(status, ExecutionStatus::Failed);
    assert_eq!(error.as_deref(), Some("TransitionRejected"), "the run ends with the original error");
    assert!(
        states.contains(&"RollbackStart".to_string()) && states.last().map(String::as_str) == Some("Failed")
    );
    let s = stored(&rig).await;
    for (id, record) in &down_before.components {
        assert_eq!(s.component_state(id), record.state, "{id} is back in its prior state");
    }
    assert!(s.any_transitional().is_none(), "nothing is left WARMING");
    assert_eq!((s.level, s.breaker.consecutive_failures), (1, 1));
    assert!(s.provisioning.is_none());
    assert_eq!(flag(&rig, "hume_ai").await.as_deref(), Some("off"), "the flag was turned back off");
    let alerts = drain(&rig.sdk, &rig.alerts_queue).await;
    assert_eq!(alerts.len(), 1, "one alert: {alerts:?}");
    assert!(alerts[0]["Subject"].as_str().unwrap().contains("2026-03-02-L1-L3-e2e000000002"));
    assert!(
        alerts[0]["Message"].as_str().unwrap().contains("ResourceNotFoundException"),
        "{}",
        alerts[0]["Message"]
    );
    assert!(drain(&rig.sdk, &rig.events_queue).await.is_empty(), "no Level Changed");

    // 4. A rejected Kubernetes call, for real: level 3 -> 4 creates the TEE node group
    //    (in a cluster that exists this time) and applies the TEE workload, then
    //    applying full_escrow's manifests is refused: its namespace, escrow, does not
    //    exist on the cluster (tests/kubernetes_fake.py). Both are undone.
    let mut at_3 = SystemState::initial(&config, "2026-03-01".parse().unwrap());
    at_3.level = 3;
    for c in ["eks_control_plane", "hume_ai", "k8s_workers", "dat_iq", "vault_nodes", "vault_ha"] {
        at_3.components.insert(
            ComponentId::new(c),
            ComponentRecord::settled(ComponentState::Hot, "2026-02-01".parse().unwrap()),
        );
    }
    reset(&rig, &at_3).await;
    revscale_integration_tests::stack_cluster(&rig.sdk).await.unwrap();
    let top = request(
        "2026-03-03-L3-L4-e2e000000004",
        3,
        4,
        &[
            ("tee_nodes", Deploy),
            ("tee_nodes", Activate),
            ("tee", Deploy),
            ("tee", Activate),
            ("full_escrow", Deploy),
            ("full_escrow", Activate),
        ],
    );
    let (status, error, states) = execute(&rig, &top).await;
    assert_eq!(
        (status, error.as_deref()),
        (ExecutionStatus::Failed, Some("TransitionRejected")),
        "{}",
        states.join(" -> ")
    );
    let s = stored(&rig).await;
    assert_eq!(s.component_state(&ComponentId::new("tee")), ComponentState::Cold);
    assert_eq!(s.component_state(&ComponentId::new("full_escrow")), ComponentState::Cold);
    assert!(s.any_transitional().is_none());
    assert_eq!((s.level, s.breaker.consecutive_failures), (3, 1));
    let tee = eks.describe_nodegroup().cluster_name("revscale").nodegroup_name("tee").send().await;
    assert!(tee.is_err(), "the TEE node group was deleted again");
    let on_kubernetes = kubernetes_state().await;
    assert!(
        workload(&on_kubernetes, "enclave-host").is_null(),
        "the TEE workload was deleted: {on_kubernetes}"
    );
    assert!(
        on_kubernetes["deleted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/apis/apps/v1/namespaces/tee/deployments/enclave-host"),
        "{on_kubernetes}"
    );
    let alerts = drain(&rig.sdk, &rig.alerts_queue).await;
    assert_eq!(alerts.len(), 1);
    let message = alerts[0]["Message"].as_str().unwrap();
    assert!(
        message.contains("full_escrow") && message.contains("kubectl create namespace escrow"),
        "{message}"
    );

    // 5. A start while another run holds the lock is refused, and nothing changes.
    let mut locked = SystemState::initial(&config, "2026-03-01".parse().unwrap());
    revscale_engine::provisioning::run::begin(
        &mut locked,
        &request("other-run", 0, 1, &[("eks_control_plane", Deploy)]),
        "2026-03-03T05:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap(),
    )
    .unwrap();
    reset(&rig, &locked).await;
    let blocked = request(
        "2026-03-03-L0-L1-e2e000000003",
        0,
        1,
        &[("eks_control_plane", Deploy), ("eks_control_plane", Activate)],
    );
    let (status, error, states) = execute(&rig, &blocked).await;
    assert_eq!(
        (status, error.as_deref()),
        (ExecutionStatus::Failed, Some("LockHeld")),
        "{}",
        states.join(" -> ")
    );
    assert_eq!(states, ["Begin", "NotStarted"]);
    let s = stored(&rig).await;
    assert_eq!(s.provisioning.unwrap().decision_id, "other-run");
    assert!(eks.describe_cluster().name("revscale").send().await.is_err(), "no cluster was created");
    assert!(drain(&rig.sdk, &rig.alerts_queue).await.is_empty(), "a refused start is not a failed run");

    // 6. A forged event: anyone who may put events on the bus asks for L4 under a
    //    decision id revscale never recorded. Refused before the lock, with an alert.
    reset(&rig, &SystemState::initial(&config, "2026-03-01".parse().unwrap())).await;
    let forged = request(
        "2026-03-04-L0-L1-forged000001",
        0,
        1,
        &[("eks_control_plane", Deploy), ("eks_control_plane", Activate)],
    );
    let before = stored(&rig).await;
    let (status, error, states) = execute_unrecorded(&rig, &forged).await;
    assert_eq!((status, error.as_deref()), (ExecutionStatus::Failed, Some("DecisionRefused")));
    assert_eq!(states, ["Begin", "NotStarted"]);
    let mut after = stored(&rig).await;
    after.version = before.version; // written back unchanged, with the refusal's audit record
    assert_eq!(after, before, "no lock, no change");
    let audited =
        revscale_engine::ports::AuditStore::audit_record(&rig.store, "2026-03-04-L0-L1-forged000001.refused")
            .await
            .unwrap();
    assert!(audited.is_some_and(|r| r.note.contains("is not in the audit trail")), "the refusal is audited");
    assert!(eks.describe_cluster().name("revscale").send().await.is_err(), "no cluster was created");
    let alerts = drain(&rig.sdk, &rig.alerts_queue).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0]["Message"].as_str().unwrap().contains("is not in the audit trail"),
        "{}",
        alerts[0]["Message"]
    );
    report("forged event: Begin -> NotStarted (DecisionRefused), one alert, no lock");
}

/// The router's fault injector (tests/router.py): `faults` replaces its list.
async fn inject(faults: serde_json::Value) {
    let url = format!("{}/_faults", revscale_integration_tests::router_url());
    reqwest::Client::new().post(url).json(&json!({"faults": faults})).send().await.expect("router answers");
}

/// The faults that fired since the last `inject`.
async fn fired() -> Vec<serde_json::Value> {
    let url = format!("{}/_faults", revscale_integration_tests::router_url());
    let body: serde_json::Value =
        reqwest::get(url).await.expect("router answers").json().await.expect("JSON");
    body["fired"].as_array().cloned().unwrap_or_default()
}

/// Where each component of the three-component climb stands in moto's EKS and SSM, as
/// its own driver reads it (the drift check's reading).
async fn in_aws(rig: &Rig) -> Vec<(&'static str, revscale_engine::ports::Observed)> {
    use revscale_engine::ports::ComponentDriver;
    let config = lambda_config();
    let drivers = revscale_aws::drivers::AwsDrivers::new(&rig.sdk);
    let mut seen = Vec::new();
    for id in ["eks_control_plane", "k8s_workers", "hume_ai"] {
        let component = config.component(&ComponentId::new(id)).unwrap();
        seen.push((id, drivers.observe(component).await.unwrap()));
    }
    seen
}

/// Consecutive throttled status reads that stand for "3 minutes of throttling". Time is
/// compressed here (0 s waits, MAX_STATUS_CHECKS=20 in tests/emulators.sh): what counts is
/// that the run outlasts what the state machine's `Transient` retrier alone would absorb.
/// That retrier makes 6 attempts of a step (1 + 5 retries, about 62 s in AWS), and each
/// attempt's status read is itself tried 3 times by the SDK: 18 throttled answers in a row
/// used to fail the check and roll the climb back (or, in a rollback, hold the lock).
/// 30 is well past that, and still fits in the check limit (10 checks of 3 attempts).
const SUSTAINED_THROTTLES: u32 = 30;

/// A level rank for "no higher than": COLD < WARM < HOT.
fn rank(s: ComponentState) -> u8 {
    match s {
        ComponentState::Cold => 0,
        ComponentState::Warm | ComponentState::Warming | ComponentState::Cooling => 1,
        ComponentState::Hot => 2,
    }
}

/// The lowest state a resource is consistent with (a cluster is WARM and HOT); none
/// while it is on its way.
fn lowest(observed: &revscale_engine::ports::Observed) -> Option<u8> {
    observed.states.iter().map(|s| rank(*s)).min()
}

/// L2 with the three components HOT in DynamoDB and really there in moto, and an
/// approved drain: the state a drain run starts from.
async fn drained_at_level_2(rig: &Rig, config: &Config) -> SystemState {
    let mut s = SystemState::initial(config, "2026-03-01".parse().unwrap());
    s.level = 2;
    for c in ["eks_control_plane", "hume_ai", "k8s_workers"] {
        s.components.insert(
            ComponentId::new(c),
            ComponentRecord::settled(ComponentState::Hot, "2026-02-01".parse().unwrap()),
        );
    }
    s.drain = Some(revscale_engine::state::Drain {
        reason: "teardown".into(),
        requested_by: "alice".into(),
        requested_on: "2026-03-01".parse().unwrap(),
        approved_by: Some("bob".into()),
    });
    reset(rig, &s).await;
    let eks = aws_sdk_eks::Client::new(&rig.sdk);
    revscale_integration_tests::stack_cluster(&rig.sdk).await.unwrap();
    eks.create_nodegroup()
        .cluster_name("revscale")
        .nodegroup_name("workers")
        .node_role("arn:aws:iam::123456789012:role/revscale-eks-node")
        .subnets("subnet-1")
        .scaling_config(
            aws_sdk_eks::types::NodegroupScalingConfig::builder()
                .min_size(2)
                .desired_size(2)
                .max_size(4)
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws_sdk_ssm::Client::new(&rig.sdk)
        .put_parameter()
        .name("/revscale/flags/hume_ai")
        .value("on")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    s
}

/// Tallies of the calls that create a resource: a drain (and its undo) must make none.
fn creations() -> Vec<serde_json::Value> {
    vec![
        json!({"name": "created", "service": "eks", "operation": "POST /clusters", "exact": true, "kind": "pass", "times": 1000}),
        json!({"name": "created", "service": "eks", "operation": "POST /clusters/revscale/node-groups", "exact": true, "kind": "pass", "times": 1000}),
    ]
}

/// One drain scenario: a fault (or a marker and the fault it arms) placed at one step.
fn drain_faults(kind: &str, rng: &mut fastrand::Rng) -> Vec<serde_json::Value> {
    let reject = |service: &str, operation: &str, exact: bool, skip: u32| json!({"service": service, "operation": operation, "exact": exact, "kind": "rejected", "skip": skip});
    // The resource is gone, then its status read is refused: the step fails with
    // nothing left to put back but the state.
    let gone = |service: &str, deleted: &str, skip: u32, read: &str| {
        vec![
            json!({"name": "gone", "service": service, "operation": deleted, "exact": true, "kind": "pass", "skip": skip}),
            json!({"service": service, "operation": read, "exact": true, "kind": "rejected", "after": "gone"}),
        ]
    };
    match kind {
        "drain: rejected at step 0 (workers scale to 0)" => {
            vec![reject("eks", "POST /clusters/revscale/node-groups/workers/update-config", true, 0)]
        }
        "drain: rejected at step 1 (workers delete)" => {
            vec![reject("eks", "DELETE /clusters/revscale/node-groups/workers", true, 0)]
        }
        "drain: rejected at step 2 (flag warm)" => vec![reject("ssm", "PutParameter", false, 0)],
        "drain: rejected at step 3 (flag off)" => vec![reject("ssm", "PutParameter", false, 1)],
        // Deactivating the control plane writes nothing (WARM and HOT bill the same): its
        // one call is the read before it.
        "drain: rejected at step 4 (cluster read)" => {
            vec![
                json!({"name": "step4", "service": "eks", "operation": "DELETE /clusters/revscale/node-groups/workers", "exact": true, "kind": "pass"}),
                json!({"service": "eks", "operation": "GET /clusters/revscale", "exact": true, "kind": "rejected", "after": "step4", "skip": 0}),
            ]
        }
        "drain: rejected at step 5 (cluster delete)" => {
            vec![reject("eks", "DELETE /clusters/revscale", true, 0)]
        }
        "drain: node group gone, then its read refused" => gone(
            "eks",
            "DELETE /clusters/revscale/node-groups/workers",
            0,
            "GET /clusters/revscale/node-groups/workers",
        ),
        "drain: flag off, then its read refused" => vec![
            json!({"name": "gone", "service": "ssm", "operation": "AmazonSSM.PutParameter", "exact": true, "kind": "pass", "skip": 1}),
            json!({"service": "ssm", "operation": "GetParameter", "kind": "rejected", "after": "gone"}),
        ],
        "drain: cluster gone, then its read refused" => {
            gone("eks", "DELETE /clusters/revscale", 0, "GET /clusters/revscale")
        }
        "drain: lambda 429" => vec![json!({"service": "lambda", "kind": "throttle", "skip": rng.u32(0..16)})],
        "drain: dynamodb throttle" => {
            vec![
                json!({"service": "dynamodb", "kind": "throttle", "skip": rng.u32(0..40), "times": rng.u32(3..=5)}),
            ]
        }
        _ => vec![
            json!({"service": "eks", "kind": "service_error", "skip": rng.u32(0..10), "times": rng.u32(3..=5)}),
        ],
    }
}

/// What one chaos run left behind.
struct Ran {
    status: ExecutionStatus,
    error: Option<String>,
    states: Vec<String>,
    /// The faults that answered a request (markers and tallies left out).
    faults: usize,
    /// Named markers and tallies that fired (`created`: a resource was created).
    marks: Vec<String>,
    state: SystemState,
    alerts: Vec<serde_json::Value>,
}

async fn chaos_run(rig: &Rig, request: &LevelChangeRequested, faults: Vec<serde_json::Value>) -> Ran {
    record(rig, request).await;
    inject(json!(faults)).await;
    let (status, error, states) = execute_waiting(rig, request, 0).await;
    let fired = fired().await;
    inject(json!([])).await;
    let faults = fired.iter().filter(|f| f["kind"] != "pass").count();
    let marks = fired
        .iter()
        .filter(|f| f["kind"] == "pass")
        .filter_map(|f| f["name"].as_str().map(String::from))
        .collect();
    let state = stored(rig).await;
    let alerts = drain(&rig.sdk, &rig.alerts_queue).await;
    Ran { status, error, states, faults, marks, state, alerts }
}

/// Adds a run to the tally: kind -> [runs, fired, succeeded, rolled back, stuck].
fn count<'a>(tally: &mut std::collections::BTreeMap<&'a str, [u32; 5]>, kind: &'a str, ran: &Ran) {
    let succeeded = ran.status == ExecutionStatus::Succeeded;
    let stuck = ran.state.provisioning.is_some();
    let row = tally.entry(kind).or_default();
    row[0] += 1;
    row[1] += u32::from(ran.faults > 0);
    row[2] += u32::from(succeeded);
    row[3] += u32::from(!succeeded && !stuck);
    row[4] += u32::from(stuck);
}

#[tokio::test]
async fn chaos_faults_at_random_steps_never_leave_a_component_half_moved_or_a_silent_lock() {
    use TransitionKind::{Activate, Deactivate, Decommission, Deploy};
    let _serial = ONE_AT_A_TIME.lock().await;
    let rig = rig().await;
    let config = Config::default_config().unwrap();
    let seed: u64 = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_129);
    let runs: usize = std::env::var("CHAOS_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(50);
    let mut rng = fastrand::Rng::with_seed(seed);
    let climb = |id: String| {
        request(
            &id,
            0,
            2,
            &[
                ("eks_control_plane", Deploy),
                ("eks_control_plane", Activate),
                ("hume_ai", Deploy),
                ("hume_ai", Activate),
                ("k8s_workers", Deploy),
                ("k8s_workers", Activate),
            ],
        )
    };
    let kinds = [
        "lambda 429",
        "lambda 500",
        "dynamodb throttle",
        "driver 5xx (eks)",
        "driver 5xx (ssm)",
        "driver rejected (eks)",
        "driver rejected (ssm)",
    ];
    // After the random climbs, fixed ones: sustained throttling of status reads, during a
    // climb and during a rollback (the node group's creation refused, then every status
    // read of the flag being turned back throttled).
    let sustained = ["status reads throttled 3 min (climb)", "status reads throttled 3 min (rollback)"];
    let climbs: Vec<&str> = (0..runs)
        .map(|run| if run == 0 { "lambda 429" } else { kinds[rng.usize(..kinds.len())] })
        .chain(sustained)
        .collect();
    // kind -> [runs, fired, succeeded, rolled back, stuck]
    let mut tally: std::collections::BTreeMap<&str, [u32; 5]> = Default::default();
    report(&format!(
        "chaos: seed {seed}, {runs} runs of a three-component climb (L0 -> L2) with one fault each, 2 with sustained status-read throttling, and drains (L2 -> L0) with a fault at each step"
    ));
    for (run, &kind) in climbs.iter().enumerate() {
        // The first run is the issue's own case: the Lambda endpoint answers 429 once
        // mid-climb. The rest pick a fault and a step at random.
        let (service, fault, skip, times) = match kind {
            "lambda 429" => ("lambda", "throttle", if run == 0 { 8 } else { rng.u32(0..20) }, 1),
            "lambda 500" => ("lambda", "service_error", rng.u32(0..20), 1),
            // Three or more in a row outlast the SDK's own three attempts, so the
            // function's Transient error and the state machine's retry are exercised.
            "dynamodb throttle" => ("dynamodb", "throttle", rng.u32(0..50), rng.u32(3..=5)),
            "driver 5xx (eks)" => ("eks", "service_error", rng.u32(0..12), rng.u32(3..=5)),
            "driver 5xx (ssm)" => ("ssm", "service_error", rng.u32(0..4), rng.u32(3..=5)),
            "driver rejected (eks)" => ("eks", "rejected", rng.u32(0..12), 1),
            "driver rejected (ssm)" => ("ssm", "rejected", rng.u32(0..4), 1),
            _ => ("ssm", "throttle", 0, SUSTAINED_THROTTLES),
        };
        let faults = match kind {
            "status reads throttled 3 min (climb)" => vec![
                json!({"service": "ssm", "operation": "GetParameter", "kind": "throttle", "times": SUSTAINED_THROTTLES}),
            ],
            "status reads throttled 3 min (rollback)" => vec![
                json!({"name": "refused", "service": "eks", "operation": "POST /clusters/revscale/node-groups", "exact": true, "kind": "pass"}),
                json!({"service": "eks", "operation": "POST /clusters/revscale/node-groups", "exact": true, "kind": "rejected"}),
                json!({"service": "ssm", "operation": "GetParameter", "kind": "throttle", "times": SUSTAINED_THROTTLES, "after": "refused"}),
            ],
            _ => vec![json!({"service": service, "kind": fault, "skip": skip, "times": times})],
        };
        reset(&rig, &SystemState::initial(&config, "2026-03-01".parse().unwrap())).await;
        let before = stored(&rig).await;
        let up = climb(format!("2026-11-29-L0-L2-chaos-{seed}-{run:02}-{}", std::process::id()));
        let ran = chaos_run(&rig, &up, faults).await;
        let Ran { status, error, states, faults: fired, state: s, alerts, .. } = &ran;
        let context =
            format!("run {run} ({kind}, skip {skip}, times {times}, fired {fired}): {status:?} {error:?}");
        assert!(s.any_transitional().is_none(), "{context}: a component is left WARMING or COOLING");
        let stuck = s.provisioning.is_some();
        assert!(!stuck || !alerts.is_empty(), "{context}: the lock is held and nobody was told");
        for (component, actual) in in_aws(&rig).await {
            let recorded = s.component_state(&ComponentId::new(component));
            assert!(
                actual.agrees_with(recorded),
                "{context}: {component} is {recorded} in DynamoDB, {} in AWS",
                actual.actual
            );
        }
        let succeeded = *status == ExecutionStatus::Succeeded;
        if succeeded {
            assert_eq!(s.level, 2, "{context}");
            assert!(
                !states.iter().any(|n| n == "RollbackStart"),
                "{context}: no rollback on a run that succeeded"
            );
        } else if !stuck {
            for (id, record) in &before.components {
                assert_eq!(s.component_state(id), record.state, "{context}: {id} is back where it started");
            }
            assert_eq!((s.level, s.breaker.consecutive_failures), (0, 1), "{context}");
            assert_eq!(alerts.len(), 1, "{context}: one failed-run alert");
        }
        match kind {
            "status reads throttled 3 min (climb)" => {
                assert_eq!(*fired, SUSTAINED_THROTTLES as usize, "{context}: every throttle was answered");
                assert!(
                    succeeded,
                    "{context}: throttled status reads rolled the climb back: {}",
                    states.join(" -> ")
                );
            }
            "status reads throttled 3 min (rollback)" => {
                // The refusal plus every throttle.
                assert_eq!(
                    *fired,
                    SUSTAINED_THROTTLES as usize + 1,
                    "{context}: every throttle was answered"
                );
                assert!(!stuck, "{context}: throttled status reads left the rollback holding the lock");
                assert_eq!(
                    error.as_deref(),
                    Some("TransitionRejected"),
                    "{context}: {}",
                    states.join(" -> ")
                );
            }
            // A fault AWS retries for us must not fail a healthy climb.
            _ if !kind.contains("rejected") => {
                assert!(
                    succeeded,
                    "{context}: a transient fault rolled the climb back: {}",
                    states.join(" -> ")
                );
            }
            _ => {}
        }
        if run == 0 {
            assert_eq!(*fired, 1, "the 429 fired");
            report(&format!("one Lambda 429 mid-climb: {status:?}, no rollback ({} states)", states.len()));
        }
        count(&mut tally, kind, &ran);
    }

    // Drains (L2 -> L0): a refusal at each step, a status read refused after each
    // resource is gone, and transient faults. A drain only goes forward and its undo
    // never creates: no CreateCluster or CreateNodegroup may be seen.
    let drains = [
        "drain: rejected at step 0 (workers scale to 0)",
        "drain: rejected at step 1 (workers delete)",
        "drain: rejected at step 2 (flag warm)",
        "drain: rejected at step 3 (flag off)",
        "drain: rejected at step 4 (cluster read)",
        "drain: rejected at step 5 (cluster delete)",
        "drain: node group gone, then its read refused",
        "drain: flag off, then its read refused",
        "drain: cluster gone, then its read refused",
        "drain: lambda 429",
        "drain: dynamodb throttle",
        "drain: driver 5xx (eks)",
    ];
    for (run, &kind) in drains.iter().enumerate() {
        let before = drained_at_level_2(&rig, &config).await;
        let down = LevelChangeRequested {
            cause: Some(Cause::Drain),
            ..request(
                &format!("2026-11-30-L2-L0-chaos-{seed}-{run:02}-{}", std::process::id()),
                2,
                0,
                &[
                    ("k8s_workers", Deactivate),
                    ("k8s_workers", Decommission),
                    ("hume_ai", Deactivate),
                    ("hume_ai", Decommission),
                    ("eks_control_plane", Deactivate),
                    ("eks_control_plane", Decommission),
                ],
            )
        };
        let mut faults = drain_faults(kind, &mut rng);
        faults.extend(creations());
        let ran = chaos_run(&rig, &down, faults).await;
        let Ran { status, error, states, faults: fired, marks, state: s, alerts } = &ran;
        let context =
            format!("drain {run} ({kind}, fired {fired}): {status:?} {error:?}: {}", states.join(" -> "));
        assert!(!marks.iter().any(|m| m == "created"), "{context}: the drain created something: {marks:?}");
        assert!(s.any_transitional().is_none(), "{context}: a component is left WARMING or COOLING");
        let stuck = s.provisioning.is_some();
        assert!(!stuck, "{context}: a drain's undo needs no driver, so it cannot leave the lock held");
        let succeeded = *status == ExecutionStatus::Succeeded;
        let refused = kind.contains("rejected at");
        for (component, actual) in in_aws(&rig).await {
            let recorded = s.component_state(&ComponentId::new(component));
            if succeeded || refused {
                // A refused call changed nothing: the state says exactly what AWS shows.
                assert!(
                    actual.agrees_with(recorded),
                    "{context}: {component} is {recorded} in DynamoDB, {} in AWS",
                    actual.actual
                );
            } else {
                // A step that failed after its resource went is put back in the state
                // alone: AWS may be further down than recorded (the next drain run takes
                // it the rest of the way), never further up.
                assert!(
                    lowest(&actual).is_some_and(|r| r <= rank(recorded)),
                    "{context}: {component} is {} in AWS, above {recorded} in DynamoDB",
                    actual.actual
                );
            }
        }
        if succeeded {
            assert_eq!(s.level, 0, "{context}");
        } else {
            assert_eq!(s.breaker.consecutive_failures, before.breaker.consecutive_failures + 1, "{context}");
            assert_eq!(alerts.len(), 1, "{context}: one failed-run alert");
            assert!(*fired > 0, "{context}: the run failed without its fault");
        }
        if kind.contains("429") || kind.contains("throttle") || kind.contains("5xx") {
            assert!(succeeded, "{context}: a transient fault failed the drain");
        } else {
            assert!(!succeeded && *fired > 0, "{context}: the fault did not fire");
        }
        count(&mut tally, kind, &ran);
    }

    report(&format!(
        "{:<48} {:>5} {:>6} {:>10} {:>12} {:>6}",
        "fault", "runs", "fired", "succeeded", "rolled back", "stuck"
    ));
    let mut total = [0u32; 5];
    for (kind, row) in &tally {
        report(&format!(
            "{kind:<48} {:>5} {:>6} {:>10} {:>12} {:>6}",
            row[0], row[1], row[2], row[3], row[4]
        ));
        for (t, v) in total.iter_mut().zip(row) {
            *t += v;
        }
    }
    report(&format!(
        "{:<48} {:>5} {:>6} {:>10} {:>12} {:>6}",
        "total", total[0], total[1], total[2], total[3], total[4]
    ));
    report(
        "after every run: 0 components WARMING or COOLING, the lock released or an alert sent, DynamoDB = EKS and SSM (a failed drain: AWS never above DynamoDB), no creation during a drain",
    );
    assert!(total[1] >= total[0] * 3 / 4, "most faults fired: {total:?}");
    // One fault per run cannot fail both a step and its undo: no run may end holding
    // the lock, alert or not.
    assert_eq!(total[4], 0, "runs left holding the lock: {tally:?}");
}

/// The provision Lambda's configuration as it runs it: tests/emulators.sh writes the
/// file (the shipped one plus tests/drivers/e2e-components.yaml), and the Lambda fills
/// in the stack's parameters from its environment, as here.
fn lambda_config() -> Config {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/.state");
    let text = std::fs::read_to_string(dir.join("e2e-config.yaml")).expect("tests/emulators.sh wrote it");
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).map_err(|e| e.to_string());
    let deployment = revscale_engine::config::Deployment::from_parameters(|p| {
        Some(
            match p {
                "EksClusterName" => "revscale",
                "EksClusterRoleArn" => "arn:aws:iam::123456789012:role/revscale-eks-cluster",
                "EksNodeRoleArn" => "arn:aws:iam::123456789012:role/revscale-eks-node",
                "FlagPrefix" => "/",
                "CloudFormationRoleArn" => "arn:aws:iam::123456789012:role/revscale-e2e-cloudformation",
                "CloudFormationStackPrefix" => "revscale-e2e-",
                _ => return None,
            }
            .to_string(),
        )
    });
    Config::from_yaml_reading(&text, &read).unwrap().for_deployment(&deployment).unwrap()
}

/// The resources of tests/drivers/e2e-components.yaml in moto, at their COLD: an ECS
/// service and an Auto Scaling group at 0, a stopped database (each tagged
/// revscale-component, as the provisioner's policy requires), no search stack.
async fn every_kind_at_cold(rig: &Rig) {
    use aws_sdk_ecs::types::ContainerDefinition;
    let ecs = aws_sdk_ecs::Client::new(&rig.sdk);
    ecs.create_cluster().cluster_name("revscale-e2e").send().await.unwrap();
    let container = ContainerDefinition::builder().name("orders").image("nginx:latest").memory(512).build();
    ecs.register_task_definition().family("orders").container_definitions(container).send().await.unwrap();
    let existing = ecs.describe_services().cluster("revscale-e2e").services("orders").send().await.unwrap();
    if existing.services().iter().any(|s| s.status() == Some("ACTIVE")) {
        ecs.update_service().cluster("revscale-e2e").service("orders").desired_count(0).send().await.unwrap();
    } else {
        ecs.create_service()
            .cluster("revscale-e2e")
            .service_name("orders")
            .task_definition("orders")
            .desired_count(0)
            .tags(aws_sdk_ecs::types::Tag::builder().key("revscale-component").value("orders").build())
            .send()
            .await
            .unwrap();
    }
    let asg = aws_sdk_autoscaling::Client::new(&rig.sdk);
    asg.create_launch_configuration()
        .launch_configuration_name("revscale-e2e-batch")
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .ok();
    let groups = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("revscale-e2e-batch")
        .send()
        .await
        .unwrap();
    // The driver switches only a group whose revscale-component tag names its component.
    let batch_tag = aws_sdk_autoscaling::types::Tag::builder()
        .resource_id("revscale-e2e-batch")
        .resource_type("auto-scaling-group")
        .key("revscale-component")
        .value("batch")
        .propagate_at_launch(false)
        .build();
    if groups.auto_scaling_groups().is_empty() {
        asg.create_auto_scaling_group()
            .auto_scaling_group_name("revscale-e2e-batch")
            .launch_configuration_name("revscale-e2e-batch")
            .availability_zones("eu-west-1a")
            .min_size(0)
            .desired_capacity(0)
            .max_size(4)
            .tags(batch_tag)
            .send()
            .await
            .unwrap();
    } else {
        asg.create_or_update_tags().tags(batch_tag).send().await.unwrap();
        asg.update_auto_scaling_group()
            .auto_scaling_group_name("revscale-e2e-batch")
            .min_size(0)
            .desired_capacity(0)
            .max_size(4)
            .send()
            .await
            .unwrap();
    }
    let rds = aws_sdk_rds::Client::new(&rig.sdk);
    let found = rds.describe_db_instances().db_instance_identifier("revscale-e2e-reports").send().await;
    if found.is_err() {
        rds.create_db_instance()
            .db_instance_identifier("revscale-e2e-reports")
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("revscale")
            .master_user_password("not-a-secret-0")
            .tags(aws_sdk_rds::types::Tag::builder().key("revscale-component").value("reports_db").build())
            .send()
            .await
            .unwrap();
    }
    rds.stop_db_instance().db_instance_identifier("revscale-e2e-reports").send().await.ok();
    let cfn = aws_sdk_cloudformation::Client::new(&rig.sdk);
    cfn.delete_stack().stack_name("revscale-e2e-search").send().await.ok();
}

/// The stack's EKS cluster, ACTIVE in moto (`reset` deletes it), whose Kubernetes API is
/// tests/kubernetes_fake.py on the router; with `seed`, `ledger`'s Deployment there at
/// 0 replicas, labelled for its component.
async fn ledger_cluster(rig: &Rig, seed: bool) {
    // Kept when an earlier step left it.
    revscale_integration_tests::stack_cluster(&rig.sdk).await.ok();
    if seed {
        let workload = serde_json::json!({
            "namespace": "ledger", "kind": "Deployment", "name": "ledger", "replicas": 0,
            "labels": {"revscale-component": "ledger", "app": "ledger"},
        });
        let url = format!("{}/_kubernetes", revscale_integration_tests::router_url());
        let answer = reqwest::Client::new().post(url).json(&workload).send().await.unwrap();
        assert!(answer.status().is_success(), "{answer:?}");
    }
}

/// `ledger`'s replicas and ready pods on the Kubernetes fake, and the writes it got.
async fn ledger_on_kubernetes() -> serde_json::Value {
    workload(&kubernetes_state().await, "ledger")
}

/// What the Kubernetes fake holds: its workloads, other objects and deletions.
async fn kubernetes_state() -> serde_json::Value {
    let url = format!("{}/_kubernetes", revscale_integration_tests::router_url());
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// One workload of [`kubernetes_state`] by name; null when there is none.
fn workload(state: &serde_json::Value, name: &str) -> serde_json::Value {
    state["workloads"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["name"] == name).cloned())
        .unwrap_or_default()
}

/// Tells the Kubernetes fake `control` (tests/kubernetes_fake.py).
async fn kubernetes(control: serde_json::Value) {
    let url = format!("{}/_kubernetes", revscale_integration_tests::router_url());
    let answer = reqwest::Client::new().post(url).json(&control).send().await.unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
}

/// Every component of `ids` is where DynamoDB says, as its own driver reads it (the
/// drift check's comparison); returns what AWS showed, for the report.
async fn dynamodb_equals_aws(
    rig: &Rig,
    config: &Config,
    ids: &[&str],
    expected: ComponentState,
) -> Vec<String> {
    use revscale_engine::ports::ComponentDriver;
    let kubernetes =
        revscale_aws::kubernetes::TestEndpoint::parse(&revscale_integration_tests::router_url()).ok();
    let drivers = revscale_aws::drivers::AwsDrivers::new(&rig.sdk).with_kubernetes_endpoint(kubernetes);
    let s = stored(rig).await;
    let mut seen = Vec::new();
    for id in ids {
        let recorded = s.component_state(&ComponentId::new(*id));
        assert_eq!(recorded, expected, "{id} in DynamoDB");
        let component = config.component(&ComponentId::new(*id)).unwrap();
        let observed = drivers.observe(component).await.unwrap();
        assert!(observed.agrees_with(recorded), "{id}: DynamoDB says {recorded}, AWS shows {observed:?}");
        seen.push(format!("{id}={}", observed.actual));
    }
    seen
}

#[tokio::test]
async fn every_kind_climbs_with_the_real_state_machine_and_goes_back_by_churn_then_drains() {
    use TransitionKind::{Activate, Deactivate, Decommission, Deploy};
    let _serial = ONE_AT_A_TIME.lock().await;
    let rig = rig().await;
    let config = lambda_config();
    every_kind_at_cold(&rig).await;
    let kinds = ["orders", "batch", "reports_db", "search", "ledger"];
    reset(&rig, &SystemState::initial(&config, "2026-03-01".parse().unwrap())).await;
    ledger_cluster(&rig, true).await;
    dynamodb_equals_aws(&rig, &config, &kinds, ComponentState::Cold).await;

    let climb = |cause: Cause, id: &str, from: u8, to: u8, steps: Vec<(&str, TransitionKind)>| {
        let mut r = request(&format!("{id}-{}", std::process::id()), from, to, &steps);
        r.cause = Some(cause);
        r
    };
    let runs = [
        (
            climb(
                Cause::Growth,
                "2026-03-01-L0-L2-kinds",
                0,
                2,
                kinds.iter().flat_map(|c| [(*c, Deploy), (*c, Activate)]).collect(),
            ),
            vec![(&kinds[..], ComponentState::Hot)],
        ),
        (
            climb(
                Cause::Churn,
                "2026-04-07-L2-L1-kinds",
                2,
                1,
                vec![("reports_db", Deactivate), ("search", Deactivate), ("ledger", Deactivate)],
            ),
            vec![(&kinds[..2], ComponentState::Hot), (&kinds[2..], ComponentState::Warm)],
        ),
        (
            climb(
                Cause::Churn,
                "2026-05-07-L1-L0-kinds",
                1,
                0,
                vec![("orders", Deactivate), ("batch", Deactivate)],
            ),
            vec![(&kinds[..], ComponentState::Warm)],
        ),
    ];
    for (request, expected) in &runs {
        let started = std::time::Instant::now();
        let (status, error, states) = execute(&rig, request).await;
        assert_eq!(status, ExecutionStatus::Succeeded, "{error:?}: {}", states.join(" -> "));
        let mut seen = Vec::new();
        for (ids, state) in expected {
            seen.extend(dynamodb_equals_aws(&rig, &config, ids, *state).await);
        }
        let ledger = ledger_on_kubernetes().await;
        let replicas = if request.to_level == 2 { 2 } else { 0 };
        assert_eq!((ledger["replicas"].as_i64(), ledger["ready"].as_i64()), (Some(replicas), Some(replicas)));
        report(&format!(
            "every kind, L{} -> L{} ({:?}): {} steps in {:.1} s; AWS and Kubernetes: {}",
            request.from_level,
            request.to_level,
            request.cause.unwrap(),
            request.transitions.len(),
            started.elapsed().as_secs_f64(),
            seen.join(", ")
        ));
    }

    // The drain, approved by a second person: everything COLD, the database stopped (never
    // deleted), the service and the group at 0, the stack gone.
    let mut s = stored(&rig).await;
    s.drain = Some(revscale_engine::state::Drain {
        reason: "teardown".into(),
        requested_by: "alice".into(),
        requested_on: "2026-06-01".parse().unwrap(),
        approved_by: Some("bob".into()),
    });
    reset(&rig, &s).await;
    ledger_cluster(&rig, false).await;
    let drain = climb(
        Cause::Drain,
        "2026-06-01-L0-L0-kinds-drain",
        0,
        0,
        kinds.iter().map(|c| (*c, Decommission)).collect(),
    );
    let started = std::time::Instant::now();
    let (status, error, states) = execute(&rig, &drain).await;
    assert_eq!(status, ExecutionStatus::Succeeded, "{error:?}: {}", states.join(" -> "));
    let seen = dynamodb_equals_aws(&rig, &config, &kinds, ComponentState::Cold).await;
    let ledger = ledger_on_kubernetes().await;
    report(&format!(
        "every kind, drain: {} steps in {:.1} s; AWS and Kubernetes: {}; ledger's scale writes: {}",
        drain.transitions.len(),
        started.elapsed().as_secs_f64(),
        seen.join(", "),
        ledger["writes"]
    ));
    // Up once, down once: WARM from HOT and COLD from WARM wrote 0 once.
    assert_eq!(ledger["writes"], serde_json::json!([2, 0]), "{ledger}");
    let rds = aws_sdk_rds::Client::new(&rig.sdk);
    let db = rds.describe_db_instances().db_instance_identifier("revscale-e2e-reports").send().await.unwrap();
    assert_eq!(
        db.db_instances()[0].db_instance_status(),
        Some("stopped"),
        "a drain never deletes a database"
    );
}

/// Each shipped workload's replicas and ready pods on the Kubernetes fake ("-" when it
/// does not exist), for the report.
fn shipped_workloads(state: &serde_json::Value) -> String {
    ["vault", "enclave-host", "escrow-agent"]
        .iter()
        .map(|name| match workload(state, name) {
            serde_json::Value::Null => format!("{name} -"),
            w => format!("{name} {}/{}", w["ready"], w["replicas"]),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test]
async fn the_shipped_workloads_climb_to_l3_churn_to_l2_and_drain_applied_scaled_and_deleted_for_real() {
    use TransitionKind::{Activate, Deactivate, Decommission, Deploy};
    let _serial = ONE_AT_A_TIME.lock().await;
    let rig = rig().await;
    let config = lambda_config();
    reset(&rig, &SystemState::initial(&config, "2026-03-01".parse().unwrap())).await;
    let run = |cause: Cause, id: &str, from: u8, to: u8, steps: Vec<(&str, TransitionKind)>| {
        let mut r = request(&format!("{id}-{}", std::process::id()), from, to, &steps);
        r.cause = Some(cause);
        r
    };
    let up_to_3 = ["eks_control_plane", "hume_ai", "k8s_workers", "dat_iq", "vault_nodes", "vault_ha"];
    let vault_objects = [
        "/api/v1/namespaces/vault/configmaps/vault-config",
        "/api/v1/namespaces/vault/serviceaccounts/vault",
        "/api/v1/namespaces/vault/services/vault",
        "/apis/policy/v1/namespaces/vault/poddisruptionbudgets/vault",
    ];
    let steps = [
        (
            run(
                Cause::Growth,
                "2026-03-01-L0-L3-shipped",
                0,
                3,
                up_to_3.iter().flat_map(|c| [(*c, Deploy), (*c, Activate)]).collect(),
            ),
            3,
        ),
        (
            run(
                Cause::Churn,
                "2026-04-07-L3-L2-shipped",
                3,
                2,
                vec![("vault_ha", Deactivate), ("vault_nodes", Deactivate), ("dat_iq", Deactivate)],
            ),
            0,
        ),
    ];
    for (request, vault_replicas) in &steps {
        let started = std::time::Instant::now();
        let (status, error, states) = execute(&rig, request).await;
        assert_eq!(status, ExecutionStatus::Succeeded, "{error:?}: {}", states.join(" -> "));
        let on_kubernetes = kubernetes_state().await;
        let vault = workload(&on_kubernetes, "vault");
        assert_eq!(
            (vault["replicas"].as_i64(), vault["ready"].as_i64()),
            (Some(*vault_replicas), Some(*vault_replicas)),
            "{on_kubernetes}"
        );
        // WARM keeps what was applied: the configuration, the service, the budget.
        for object in vault_objects {
            assert!(
                on_kubernetes["objects"].as_array().unwrap().iter().any(|o| o == object),
                "{object}: {on_kubernetes}"
            );
        }
        let state = if request.to_level == 3 { ComponentState::Hot } else { ComponentState::Warm };
        let seen = dynamodb_equals_aws(&rig, &config, &["vault_nodes", "vault_ha"], state).await;
        report(&format!(
            "shipped workloads, L{} -> L{} ({:?}): {} steps in {:.1} s; {}; Kubernetes: {}",
            request.from_level,
            request.to_level,
            request.cause.unwrap(),
            request.transitions.len(),
            started.elapsed().as_secs_f64(),
            seen.join(", "),
            shipped_workloads(&on_kubernetes)
        ));
    }
    assert_eq!(workload(&kubernetes_state().await, "vault")["writes"], serde_json::json!([0, 3, 0]));

    // The drain, approved by a second person: the workload first (its manifests
    // deleted), then its nodes, then the rest, the cluster last.
    let mut s = stored(&rig).await;
    s.drain = Some(revscale_engine::state::Drain {
        reason: "teardown".into(),
        requested_by: "alice".into(),
        requested_on: "2026-06-01".parse().unwrap(),
        approved_by: Some("bob".into()),
    });
    store_state(&rig, &s, &aws_sdk_dynamodb::Client::new(&rig.sdk)).await;
    let order = ["vault_ha", "vault_nodes", "dat_iq", "k8s_workers", "hume_ai", "eks_control_plane"];
    // What is HOT goes WARM first; then each goes COLD.
    let steps = order
        .iter()
        .flat_map(|c| {
            let hot = !["vault_ha", "vault_nodes", "dat_iq"].contains(c);
            [hot.then_some((*c, Deactivate)), Some((*c, Decommission))].into_iter().flatten()
        })
        .collect();
    let drain = run(Cause::Drain, "2026-06-01-L2-L0-shipped-drain", 2, 0, steps);
    let started = std::time::Instant::now();
    let (status, error, states) = execute(&rig, &drain).await;
    assert_eq!(status, ExecutionStatus::Succeeded, "{error:?}: {}", states.join(" -> "));
    let on_kubernetes = kubernetes_state().await;
    assert!(workload(&on_kubernetes, "vault").is_null(), "{on_kubernetes}");
    let deleted: Vec<&str> = on_kubernetes["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .filter(|p| p.contains("/namespaces/vault/"))
        .collect();
    let mut expected = vec!["/apis/apps/v1/namespaces/vault/statefulsets/vault"];
    expected.extend([
        "/apis/policy/v1/namespaces/vault/poddisruptionbudgets/vault",
        "/api/v1/namespaces/vault/services/vault",
        "/api/v1/namespaces/vault/configmaps/vault-config",
        "/api/v1/namespaces/vault/serviceaccounts/vault",
    ]);
    assert_eq!(deleted, expected, "the StatefulSet first, then the rest, last applied first");
    let seen = dynamodb_equals_aws(&rig, &config, &order, ComponentState::Cold).await;
    report(&format!(
        "shipped workloads, drain: {} steps in {:.1} s; {}; Kubernetes: {}; deleted in vault: {}",
        drain.transitions.len(),
        started.elapsed().as_secs_f64(),
        seen.join(", "),
        shipped_workloads(&on_kubernetes),
        deleted.len()
    ));
}
