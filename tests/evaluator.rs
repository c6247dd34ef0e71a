//! The evaluate Lambda's handler against moto: DynamoDB state and history, a real
//! EventBridge bus whose rule targets SQS (to capture events), and an SNS topic with an
//! SQS subscription (to capture alerts).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::sync::Arc;

use aws_config::SdkConfig;
use chrono::{Days, NaiveDate};
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::metrics::RequestCounter;
use revscale_aws::publish::{EventBridgeBus, SnsNotifier};
use revscale_engine::Config;
use revscale_engine::ports::{AuditStore, CostSnapshot, RevenueSnapshot, SnapshotStore, StateStore};
use revscale_engine::{Currency, Money};
use revscale_integration_tests::{
    capture_level_change_requests, drain, report, scheduled, sdk, table, topic_with_inbox, unique,
};
use serde_json::Value;

struct Rig {
    dynamo_requests: RequestCounter,
    sdk: SdkConfig,
    store: DynamoStore,
    bus: EventBridgeBus,
    notifier: SnsNotifier,
    events_queue: String,
    alerts_queue: String,
}

async fn rig() -> Rig {
    let sdk = sdk().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);

    let bus_name = unique("revscale-bus");
    events.create_event_bus().name(&bus_name).send().await.unwrap();
    let events_queue = capture_level_change_requests(&sdk, &bus_name).await;
    let (topic, alerts_queue) = topic_with_inbox(&sdk, &unique("alerts")).await;

    let dynamo_requests = RequestCounter::default();
    let dynamo = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(dynamo_requests.clone()).build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(dynamo), table(&sdk).await);
    Rig {
        dynamo_requests,
        bus: EventBridgeBus::new(events.clone(), &bus_name),
        notifier: SnsNotifier::new(sns.clone(), &topic),
        sdk,
        store,
        events_queue,
        alerts_queue,
    }
}

async fn seed(store: &DynamoStore, from: &str, days: u64, mrr: i64, cost: i64) {
    let start: NaiveDate = from.parse().unwrap();
    for i in 0..days {
        let date = start + Days::new(i);
        let collected_at = format!("{date}T05:00:00Z").parse().unwrap();
        store
            .put_revenue(&RevenueSnapshot {
                date,
                mrr: Money::whole(mrr, Currency::EUR),
                subscriptions_counted: 2,
                customers: 2,
                collected_at,
            })
            .await
            .unwrap();
        let c = Money::whole(cost, Currency::EUR);
        store
            .put_cost(&CostSnapshot {
                date,
                monthly_run_rate: c,
                month_to_date: c,
                previous_month: c,
                per_component: Default::default(),
                estimated: true,
                forecast_used: true,
                fx_rate: "0.93".into(),
                requests: 2,
                collected_at,
            })
            .await
            .unwrap();
    }
}

async fn evaluate(rig: &Rig, config: &Config, id: &str, time: &str) -> Value {
    let deps = evaluate::handler::Deps {
        config: config.clone(),
        store: rig.store.clone(),
        bus: rig.bus.clone(),
        notifier: rig.notifier.clone(),
        driver: revscale_aws::drivers::AwsDrivers::new(&rig.sdk),
    };
    evaluate::handler::handle(&deps, scheduled(id, time)).await.expect("evaluation succeeds")
}

#[tokio::test]
async fn a_level_change_is_published_once_on_the_bus_and_a_replay_publishes_nothing() {
    let rig = rig().await;
    let config = Config::default_config().unwrap();
    seed(&rig.store, "2025-11-01", 121, 1000, 100).await;

    let before = rig.dynamo_requests.get();
    let out = evaluate(&rig, &config, "eval-2026-03-01", "2026-03-01T06:00:00Z").await;
    let used = rig.dynamo_requests.get() - before;
    report(&format!(
        "daily run requests: DynamoDB {used} (evaluate: Query the trail for unpublished changes, GetItem state, Query revenue, Query cost, TransactWriteItems, PutItem the publish mark; the drift check: GetItem state)"
    ));
    assert_eq!(used, 7);
    assert_eq!(
        (out["from_level"].as_u64(), out["to_level"].as_u64(), out["published"].as_bool()),
        (Some(0), Some(2), Some(true))
    );
    let replay = evaluate(&rig, &config, "eval-2026-03-01", "2026-03-01T06:00:00Z").await;
    assert_eq!(replay["replay"], true);

    let events = drain(&rig.sdk, &rig.events_queue).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["source"], "revscale");
    assert_eq!(event["detail-type"], "Level Change Requested");
    let detail = &event["detail"];
    assert_eq!(detail["decision_id"], out["decision_id"]);
    assert_eq!((detail["from_level"].as_u64(), detail["to_level"].as_u64()), (Some(0), Some(2)));
    assert_eq!(detail["mode"], "auto");
    let order: Vec<String> = detail["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}:{}", t["component"].as_str().unwrap(), t["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        order,
        [
            "eks_control_plane:deploy",
            "eks_control_plane:activate",
            "hume_ai:deploy",
            "hume_ai:activate",
            "k8s_workers:deploy",
            "k8s_workers:activate"
        ]
    );
    assert!(!detail["reasons"].as_array().unwrap().is_empty());

    // The decision is in the audit trail with the state written under version 1.
    let audit = rig.store.recent_audit(5, None).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].id, out["decision_id"].as_str().unwrap());
    assert_eq!(rig.store.load_state().await.unwrap().unwrap().version, 1);
}

#[tokio::test]
async fn concurrent_evaluations_of_the_same_state_publish_exactly_one_event() {
    let rig = Arc::new(rig().await);
    let config = Arc::new(Config::default_config().unwrap());
    seed(&rig.store, "2025-11-01", 121, 1000, 100).await;

    let runs: Vec<_> = (0..6)
        .map(|i| {
            let (rig, config) = (rig.clone(), config.clone());
            tokio::spawn(async move {
                evaluate(&rig, &config, &format!("concurrent-{i}"), "2026-03-01T06:00:00Z").await
            })
        })
        .collect();
    let mut published = 0;
    for run in runs {
        if run.await.unwrap()["published"] == true {
            published += 1;
        }
    }
    let events = drain(&rig.sdk, &rig.events_queue).await;
    report(&format!(
        "6 concurrent evaluations: {published} reported publishing, {} event(s) on the bus",
        events.len()
    ));
    assert_eq!(published, 1);
    assert_eq!(events.len(), 1);
    assert_eq!(rig.store.recent_audit(10, None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_eighty_percent_cost_ratio_reaches_the_sns_subscription_with_the_figures() {
    let rig = rig().await;
    let config = Config::default_config().unwrap();
    seed(&rig.store, "2026-05-14", 1, 1000, 700).await;
    seed(&rig.store, "2026-05-15", 1, 1000, 820).await;
    let out = evaluate(&rig, &config, "eval-2026-05-15", "2026-05-15T06:00:00Z").await;
    assert_eq!(out["alerts_sent"], 1);

    let alerts = drain(&rig.sdk, &rig.alerts_queue).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["Subject"], "revscale WARNING: cost is 82% of MRR");
    let message = alerts[0]["Message"].as_str().unwrap();
    assert!(message.contains("the monthly cost run-rate EUR 820 is 82% of MRR EUR 1,000"), "{message}");
    assert!(message.contains("at or above the 80% threshold"), "{message}");

    // The next day at the same ratio: no new e-mail (the alert fired when crossed).
    seed(&rig.store, "2026-05-16", 1, 1000, 820).await;
    let again = evaluate(&rig, &config, "eval-2026-05-16", "2026-05-16T06:00:00Z").await;
    assert_eq!(again["alerts_sent"], 0);
    assert!(drain(&rig.sdk, &rig.alerts_queue).await.is_empty());
}
