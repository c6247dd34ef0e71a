//! `ecs_service` on moto: the contract, HOT restoring the count saved when it left HOT,
//! a service deleted behind revscale's back, HOT refused without any count, and a
//! service whose `revscale-component` tag does not name the component refused.
//!
//! moto differs from AWS here: it runs every task the moment `UpdateService` asks
//! (runningCount = desiredCount at once), and it writes the primary deployment (its
//! counts and `rolloutState`) only when the service is created: created at 0 tasks it
//! stays COMPLETED for good, created above 0 it stays IN_PROGRESS for good (AWS
//! completes it). So a service running before revscale is set up here as AWS would
//! show it after a scale-up: created at 0, then scaled by `UpdateService`. The
//! AWS-shaped answers (rollouts in progress or failed, tasks still starting, no
//! `rolloutState`) are the unit tests of `revscale_aws::drivers::ecs_service`.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{ContainerDefinition, Tag};
use revscale_engine::drivers::{COMPONENT_TAG, EcsService};
use revscale_engine::model::{Capacity, ComponentState};
use revscale_engine::ports::{Apply, ComponentDriver, DriverError, DriverStatus};
use revscale_integration_tests::unique;

use crate::contract::{component, drivers, keeps_the_contract, take};

pub const KIND: &str = "ecs_service";

async fn ecs() -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::new(&revscale_integration_tests::sdk().await)
}

/// A new cluster with a service of `count` tasks, tagged `revscale-component=<tag>`
/// (untagged: `None`); returns (cluster, service, ARN).
async fn service(ecs: &aws_sdk_ecs::Client, count: i32, tag: Option<&str>) -> (String, String, String) {
    let (cluster, family, name) = (unique("cluster"), unique("task"), unique("web"));
    ecs.create_cluster().cluster_name(&cluster).send().await.unwrap();
    let container = ContainerDefinition::builder().name("web").image("nginx:latest").memory(512).build();
    ecs.register_task_definition().family(&family).container_definitions(container).send().await.unwrap();
    let created = ecs
        .create_service()
        .cluster(&cluster)
        .service_name(&name)
        .task_definition(&family)
        .desired_count(0)
        .set_tags(tag.map(|id| vec![Tag::builder().key(COMPONENT_TAG).value(id).build()]))
        .send()
        .await
        .unwrap();
    let arn = created.service.and_then(|s| s.service_arn).unwrap();
    if count > 0 {
        // Scaled by its owner (see above for why not created at `count`).
        ecs.update_service().cluster(&cluster).service(&name).desired_count(count).send().await.unwrap();
    }
    (cluster, name, arn)
}

/// (desiredCount, runningCount) as ECS describes the service.
async fn counts(ecs: &aws_sdk_ecs::Client, cluster: &str, name: &str) -> (i32, i32) {
    let out = ecs.describe_services().cluster(cluster).services(name).send().await.unwrap();
    let s = &out.services()[0];
    (s.desired_count, s.running_count)
}

/// The service's tags.
async fn tags_of(ecs: &aws_sdk_ecs::Client, arn: &str) -> BTreeMap<String, String> {
    let out = ecs.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
    out.tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
        .collect()
}

#[tokio::test]
async fn an_ecs_service_keeps_the_contract() {
    let ecs = ecs().await;
    let (cluster, name, arn) = service(&ecs, 0, Some("ecs-contract")).await;
    let c = component(
        "ecs-contract",
        EcsService { cluster: cluster.clone(), service: name.clone(), desired_count: Some(2) },
    );
    let tags = || async { Some(tags_of(&ecs, &arn).await) };
    let seen = keeps_the_contract(&c, tags).await;
    let (_, hot) = &seen[1];
    assert_eq!(hot.capacity, Some(Capacity { desired: 2, min: None, max: None }), "{hot:?}");
    assert!(hot.actual.starts_with("desiredCount 2, running 2"), "{hot:?}");
    assert_eq!(
        counts(&ecs, &cluster, &name).await,
        (0, 0),
        "COLD leaves the service at 0 tasks, not deleted"
    );
}

#[tokio::test]
async fn hot_restores_the_count_the_service_ran_before_it_went_warm() {
    use ComponentState::{Hot, Warm};
    let ecs = ecs().await;
    let (cluster, name, _) = service(&ecs, 3, Some("ecs-saved")).await;
    let c = component(
        "ecs-saved",
        EcsService { cluster: cluster.clone(), service: name.clone(), desired_count: None },
    );
    let drivers = drivers().await;
    assert_eq!(drivers.observe(&c).await.unwrap().states, [Hot]);

    let saved = take(&drivers, &c, Hot, Warm, None).await;
    assert_eq!(saved, Some(Capacity { desired: 3, min: None, max: None }));
    assert_eq!(counts(&ecs, &cluster, &name).await, (0, 0));

    take(&drivers, &c, Warm, Hot, saved).await;
    assert_eq!(counts(&ecs, &cluster, &name).await, (3, 3), "the saved count, exactly");
}

#[tokio::test]
async fn a_service_deleted_outside_revscale_is_reported_and_refused_without_panicking() {
    use ComponentState::{Hot, Warm};
    let ecs = ecs().await;
    let (cluster, name, _) = service(&ecs, 0, Some("ecs-gone")).await;
    // Deleted (INACTIVE, still described for a while), never created (`failures`:
    // MISSING), and in a cluster that does not exist (ClusterNotFoundException).
    ecs.delete_service().cluster(&cluster).service(&name).send().await.unwrap();
    let gone = [
        EcsService { cluster: cluster.clone(), service: name.clone(), desired_count: Some(2) },
        EcsService { cluster: cluster.clone(), service: unique("never"), desired_count: Some(2) },
        EcsService { cluster: unique("no-cluster"), service: name.clone(), desired_count: Some(2) },
    ];
    let drivers = drivers().await;
    for spec in gone {
        let c = component("ecs-gone", spec.clone());
        let observed = drivers.observe(&c).await.unwrap();
        assert!(observed.states.is_empty(), "drift: {observed:?}");
        assert!(observed.actual.contains("no service"), "{observed:?}");
        for target in [Warm, Hot] {
            match drivers.apply(Apply { component: &c, target, saved: None }).await {
                Err(DriverError::Rejected(why)) => {
                    assert!(why.contains(&spec.service) && why.contains("does not exist"), "{why}")
                }
                other => panic!("{target}: {other:?}"),
            }
            match drivers.status(&c, target).await.unwrap() {
                DriverStatus::Failed(why) => assert!(why.contains("does not exist"), "{why}"),
                other => panic!("{target}: {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn hot_without_a_saved_or_configured_count_is_refused() {
    let ecs = ecs().await;
    let (cluster, name, _) = service(&ecs, 0, Some("ecs-no-count")).await;
    let c = component(
        "ecs-no-count",
        EcsService { cluster: cluster.clone(), service: name.clone(), desired_count: None },
    );
    let drivers = drivers().await;
    match drivers.apply(Apply { component: &c, target: ComponentState::Hot, saved: None }).await {
        Err(DriverError::Rejected(why)) => {
            assert!(
                why.contains("ecs-no-count") && why.contains(&name) && why.contains("desired_count"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(counts(&ecs, &cluster, &name).await, (0, 0), "left as it was");
}

/// A typo in the configured service must not scale another component's service: one
/// tagged for another component is refused by name, one without the tag is refused
/// with how to tag it; neither is scaled nor tagged.
#[tokio::test]
async fn a_service_not_tagged_for_the_component_is_refused_and_left_untouched() {
    use ComponentState::{Hot, Warm};
    let ecs = ecs().await;
    let drivers = drivers().await;
    let (cluster, other, other_arn) = service(&ecs, 2, Some("billing")).await;
    let typo = component(
        "ecs-typo",
        EcsService { cluster: cluster.clone(), service: other.clone(), desired_count: Some(3) },
    );
    let (untagged_cluster, untagged, untagged_arn) = service(&ecs, 2, None).await;
    let bare = component(
        "ecs-untagged",
        EcsService { cluster: untagged_cluster.clone(), service: untagged.clone(), desired_count: Some(3) },
    );
    for target in [Warm, Hot] {
        match drivers.apply(Apply { component: &typo, target, saved: None }).await {
            Err(DriverError::Rejected(why)) => assert!(
                why.contains(&other) && why.contains("carries revscale-component=billing, not ecs-typo"),
                "{why}"
            ),
            other => panic!("{target}: {other:?}"),
        }
        match drivers.apply(Apply { component: &bare, target, saved: None }).await {
            Err(DriverError::Rejected(why)) => assert!(
                why.contains(&untagged) && why.contains("tag it revscale-component=ecs-untagged"),
                "{why}"
            ),
            other => panic!("{target}: {other:?}"),
        }
    }
    assert_eq!(counts(&ecs, &cluster, &other).await, (2, 2), "count unchanged");
    assert_eq!(counts(&ecs, &untagged_cluster, &untagged).await, (2, 2), "count unchanged");
    let billing = BTreeMap::from([(COMPONENT_TAG.to_string(), "billing".to_string())]);
    assert_eq!(tags_of(&ecs, &other_arn).await, billing, "its tag kept, nothing added");
    assert_eq!(tags_of(&ecs, &untagged_arn).await, BTreeMap::new(), "not tagged");
    // Reading is no switching: observe still reports where the service is.
    assert_eq!(drivers.observe(&typo).await.unwrap().states, [Hot]);
}
