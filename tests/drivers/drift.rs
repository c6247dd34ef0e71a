//! The daily drift check with the real drivers on moto: resources changed behind
//! revscale's back are reported with both states and left alone, except a database AWS
//! started again by itself, which is stopped again; the alert and the audit entry say
//! so, once.

use revscale_engine::drift::{self, Finding};
use revscale_engine::drivers::COMPONENT_TAG;
use revscale_engine::model::ComponentState::{Hot, Warm};
use revscale_engine::ports::{AuditStore, StateStore};
use revscale_engine::state::{ComponentRecord, SystemState};
use revscale_engine::testing::{MemoryNotifier, MemoryStore, at, day, seed_record};
use revscale_engine::{ComponentId, Config};
use revscale_integration_tests::{report, sdk, unique};

/// Level 1 of the shipped configuration switches three components of ours.
fn config(cluster: &str, service: &str, db: &str, group: &str) -> Config {
    let mut tree: serde_norway::Value = serde_norway::from_str(revscale_engine::DEFAULT_CONFIG_YAML).unwrap();
    let levels = tree["levels"].as_mapping_mut().unwrap();
    for (i, (_, level)) in levels.iter_mut().enumerate() {
        level["auto_enable"] = serde_norway::from_str(match i {
            0 => "[]",
            1 => "[worker, reports, batch]",
            _ => "[]",
        })
        .unwrap();
    }
    tree["components"] = serde_norway::from_str(&format!(
        "worker: {{billing: aws, cost: {{hot: 0, warm: 0}}, driver: {{kind: ecs_service, cluster: {cluster}, service: {service}, desired_count: 2}}}}\n\
         reports: {{billing: aws, cost: {{hot: 0, warm: 0}}, driver: {{kind: rds_instance, db_instance_identifier: {db}}}}}\n\
         batch: {{billing: aws, cost: {{hot: 0, warm: 0}}, driver: {{kind: autoscaling_group, group_name: {group}, min_size: 1, desired_capacity: 1, max_size: 2}}}}\n"
    ))
    .unwrap();
    Config::from_yaml(&serde_norway::to_string(&tree).unwrap()).unwrap()
}

#[tokio::test]
async fn resources_changed_behind_revscales_back_are_reported_and_only_a_restarted_database_is_stopped_again()
{
    let sdk = sdk().await;
    let (cluster, service, db, group) =
        (unique("drift"), unique("worker"), unique("reports"), unique("batch"));
    // The worker HOT at 2 tasks, the database stopped (WARM), the group HOT at 1.
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    ecs.create_cluster().cluster_name(&cluster).send().await.unwrap();
    let container =
        aws_sdk_ecs::types::ContainerDefinition::builder().name("w").image("nginx").memory(256).build();
    ecs.register_task_definition().family(&service).container_definitions(container).send().await.unwrap();
    ecs.create_service()
        .cluster(&cluster)
        .service_name(&service)
        .task_definition(&service)
        .desired_count(0)
        .send()
        .await
        .unwrap();
    ecs.update_service().cluster(&cluster).service(&service).desired_count(2).send().await.unwrap();
    let rds = aws_sdk_rds::Client::new(&sdk);
    rds.create_db_instance()
        .db_instance_identifier(&db)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("revscale")
        .master_user_password("not-a-secret-0")
        // The drift check stops it again: it must carry its component's tag.
        .tags(aws_sdk_rds::types::Tag::builder().key(COMPONENT_TAG).value("reports").build())
        .send()
        .await
        .unwrap();
    rds.stop_db_instance().db_instance_identifier(&db).send().await.unwrap();
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    asg.create_launch_configuration()
        .launch_configuration_name(&group)
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .unwrap();
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&group)
        .launch_configuration_name(&group)
        .availability_zones("eu-west-1a")
        .min_size(1)
        .desired_capacity(1)
        .max_size(2)
        .send()
        .await
        .unwrap();

    let config = config(&cluster, &service, &db, &group);
    let store = MemoryStore::default();
    // Recorded since November 20th: the database has been stopped for the 7 days after
    // which AWS starts it.
    let mut state = SystemState::initial(&config, day("2026-11-20"));
    state.level = 1;
    for (id, s) in [("worker", Hot), ("reports", Warm), ("batch", Hot)] {
        state.components.insert(ComponentId::new(id), ComponentRecord::settled(s, day("2026-11-20")));
    }
    store.record_decision(&seed_record("seed", at("2026-11-20")), &state, None).await.unwrap();
    let drivers = revscale_aws::drivers::AwsDrivers::new(&sdk);

    // Nothing changed yet: everything agrees.
    let report_before = drift::check(&config, &store, &drivers, day("2026-12-05"), &[]).await.unwrap();
    assert_eq!(report_before.drifted().count(), 0, "{report_before:?}");

    // Behind revscale's back: someone scales the HOT worker to 0, AWS starts the stopped
    // database after its 7 days, someone deletes the group. (A HOT service at another
    // count than the configured one is no drift: Application Auto Scaling moves it.)
    ecs.update_service().cluster(&cluster).service(&service).desired_count(0).send().await.unwrap();
    rds.start_db_instance().db_instance_identifier(&db).send().await.unwrap();
    asg.delete_auto_scaling_group().auto_scaling_group_name(&group).force_delete(true).send().await.unwrap();

    let found = drift::check(&config, &store, &drivers, day("2026-12-06"), &[]).await.unwrap();
    let found =
        drift::restore(&config, &store, &drivers, found, at("2026-12-06"), day("2026-12-06")).await.unwrap();
    let drifted: Vec<&str> = found.drifted().map(|d| d.component.as_str()).collect();
    assert_eq!(drifted, ["batch", "reports", "worker"], "{found:?}");
    let restored: Vec<&str> = found.restored().map(|d| d.component.as_str()).collect();
    assert_eq!(restored, ["reports"], "only the database AWS restarted is taken back");
    assert!(found.components.iter().all(|c| !matches!(c.finding, Finding::Unreadable { .. })));
    let status = rds.describe_db_instances().db_instance_identifier(&db).send().await.unwrap();
    assert_eq!(status.db_instances()[0].db_instance_status(), Some("stopped"));
    let services = ecs.describe_services().cluster(&cluster).services(&service).send().await.unwrap();
    assert_eq!(services.services()[0].desired_count(), 0, "drift is never fixed silently");

    let notifier = MemoryNotifier::default();
    assert!(drift::record(&store, &notifier, &found, at("2026-12-06"), day("2026-12-06")).await.unwrap());
    assert!(!drift::record(&store, &notifier, &found, at("2026-12-06"), day("2026-12-06")).await.unwrap());
    let sent = notifier.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "one alert, whatever the retries");
    report(&format!("drift alert: {}\n{}", sent[0].subject, sent[0].message));
    for needle in [
        "worker (ecs_service): recorded hot, actually desiredCount 0",
        "reports (rds_instance): recorded warm, actually DB instance",
        "taken back to warm",
        "batch (autoscaling_group): recorded hot, actually no group",
    ] {
        assert!(sent[0].message.contains(needle), "{needle}: {}", sent[0].message);
    }
    let trail = store.recent_audit(5, None).await.unwrap();
    assert_eq!(trail.iter().filter(|r| r.kind == "drift" && r.id == "drift-2026-12-06").count(), 1);
}
