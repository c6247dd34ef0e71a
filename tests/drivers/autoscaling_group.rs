//! `autoscaling_group` on moto: the contract, HOT restoring exactly the sizes saved when
//! it left HOT (WARM keeps max), a group deleted behind revscale's back, HOT refused
//! without any sizes, and a group whose `revscale-component` tag does not name the
//! component refused.
//!
//! moto launches and terminates a group's instances the moment its desired capacity
//! changes, straight to InService (AWS goes through Pending and Terminating, which the
//! unit tests of `revscale_aws::drivers::autoscaling_group` cover), and deletes a group
//! at once (AWS shows "Delete in progress" first).

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types::{LifecycleState, Tag};
use revscale_engine::drivers::{AutoscalingGroup, COMPONENT_TAG};
use revscale_engine::model::{Capacity, ComponentState};
use revscale_engine::ports::{Apply, ComponentDriver, DriverError, DriverStatus};
use revscale_integration_tests::unique;

use crate::contract::{component, drivers, keeps_the_contract, take};

pub const KIND: &str = "autoscaling_group";

async fn autoscaling() -> aws_sdk_autoscaling::Client {
    aws_sdk_autoscaling::Client::new(&revscale_integration_tests::sdk().await)
}

/// A new group (with its launch configuration) at min / desired / max, tagged
/// `revscale-component=<tag>` (untagged: `None`); returns its name.
async fn group(
    asg: &aws_sdk_autoscaling::Client,
    (min, desired, max): (i32, i32, i32),
    tag: Option<&str>,
) -> String {
    let (config, name) = (unique("launch"), unique("workers"));
    asg.create_launch_configuration()
        .launch_configuration_name(&config)
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .unwrap();
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&name)
        .launch_configuration_name(&config)
        .availability_zones("eu-west-1a")
        .min_size(min)
        .desired_capacity(desired)
        .max_size(max)
        .set_tags(tag.map(|id| {
            vec![
                Tag::builder()
                    .resource_id(&name)
                    .resource_type("auto-scaling-group")
                    .key(COMPONENT_TAG)
                    .value(id)
                    .propagate_at_launch(false)
                    .build(),
            ]
        }))
        .send()
        .await
        .unwrap();
    name
}

/// (min, desired, max, InService instances) as Auto Scaling describes the group.
async fn sizes(asg: &aws_sdk_autoscaling::Client, name: &str) -> (i32, i32, i32, usize) {
    let out = asg.describe_auto_scaling_groups().auto_scaling_group_names(name).send().await.unwrap();
    let g = &out.auto_scaling_groups()[0];
    let in_service =
        g.instances().iter().filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService)).count();
    (g.min_size.unwrap_or(-1), g.desired_capacity.unwrap_or(-1), g.max_size.unwrap_or(-1), in_service)
}

/// The group's tags.
async fn tags_of(asg: &aws_sdk_autoscaling::Client, name: &str) -> BTreeMap<String, String> {
    let out = asg.describe_auto_scaling_groups().auto_scaling_group_names(name).send().await.unwrap();
    out.auto_scaling_groups()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
        .collect()
}

#[tokio::test]
async fn an_autoscaling_group_keeps_the_contract() {
    let asg = autoscaling().await;
    let name = group(&asg, (0, 0, 3), Some("asg-contract")).await;
    let spec = AutoscalingGroup {
        group_name: name.clone(),
        min_size: Some(1),
        desired_capacity: Some(2),
        max_size: Some(3),
    };
    let c = component("asg-contract", spec);
    let tags = || async {
        let out = asg.describe_auto_scaling_groups().auto_scaling_group_names(&name).send().await.unwrap();
        let group = &out.auto_scaling_groups()[0];
        for t in group.tags() {
            assert_eq!(t.propagate_at_launch, Some(false), "revscale's tags stay on the group: {t:?}");
        }
        Some(
            group
                .tags()
                .iter()
                .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let seen = keeps_the_contract(&c, tags).await;
    let (_, hot) = &seen[1];
    assert_eq!(hot.capacity, Some(Capacity { desired: 2, min: Some(1), max: Some(3) }), "{hot:?}");
    assert_eq!(sizes(&asg, &name).await, (0, 0, 3, 0), "COLD keeps the group and its max");
}

#[tokio::test]
async fn hot_restores_exactly_the_sizes_the_group_had_before_it_went_warm() {
    use ComponentState::{Hot, Warm};
    let asg = autoscaling().await;
    let name = group(&asg, (1, 3, 5), Some("asg-saved")).await;
    assert_eq!(sizes(&asg, &name).await, (1, 3, 5, 3), "moto starts the instances at once");
    let c = component("asg-saved", AutoscalingGroup { group_name: name.clone(), ..Default::default() });
    let drivers = drivers().await;
    assert_eq!(drivers.observe(&c).await.unwrap().states, [Hot]);

    let saved = take(&drivers, &c, Hot, Warm, None).await;
    assert_eq!(saved, Some(Capacity { desired: 3, min: Some(1), max: Some(5) }));
    assert_eq!(sizes(&asg, &name).await, (0, 0, 5, 0), "WARM keeps max");

    take(&drivers, &c, Warm, Hot, saved).await;
    assert_eq!(sizes(&asg, &name).await, (1, 3, 5, 3), "the saved sizes, exactly");
}

#[tokio::test]
async fn a_group_deleted_outside_revscale_is_reported_and_refused_without_panicking() {
    use ComponentState::{Hot, Warm};
    let asg = autoscaling().await;
    let name = group(&asg, (0, 0, 2), Some("asg-gone")).await;
    asg.delete_auto_scaling_group().auto_scaling_group_name(&name).force_delete(true).send().await.unwrap();
    let spec = AutoscalingGroup {
        group_name: name.clone(),
        min_size: Some(1),
        desired_capacity: Some(1),
        max_size: Some(2),
    };
    let c = component("asg-gone", spec);
    let drivers = drivers().await;
    let observed = drivers.observe(&c).await.unwrap();
    assert!(observed.states.is_empty(), "drift: {observed:?}");
    assert!(observed.actual.contains("no group") && observed.actual.contains(&name), "{observed:?}");
    for target in [Warm, Hot] {
        match drivers.apply(Apply { component: &c, target, saved: None }).await {
            Err(DriverError::Rejected(why)) => {
                assert!(why.contains(&name) && why.contains("does not exist"), "{why}")
            }
            other => panic!("{target}: {other:?}"),
        }
        match drivers.status(&c, target).await.unwrap() {
            DriverStatus::Failed(why) => assert!(why.contains("does not exist"), "{why}"),
            other => panic!("{target}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn hot_without_saved_or_configured_sizes_is_refused() {
    let asg = autoscaling().await;
    let name = group(&asg, (0, 0, 4), Some("asg-no-sizes")).await;
    let c = component("asg-no-sizes", AutoscalingGroup { group_name: name.clone(), ..Default::default() });
    let drivers = drivers().await;
    match drivers.apply(Apply { component: &c, target: ComponentState::Hot, saved: None }).await {
        Err(DriverError::Rejected(why)) => {
            assert!(
                why.contains("asg-no-sizes") && why.contains(&name) && why.contains("desired_capacity"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sizes(&asg, &name).await, (0, 0, 4, 0), "left as it was");
}

/// A typo in the configured group name must not scale another component's group: one
/// tagged for another component is refused by name, one without the tag is refused
/// with how to tag it; neither is resized nor tagged.
#[tokio::test]
async fn a_group_not_tagged_for_the_component_is_refused_and_left_untouched() {
    use ComponentState::{Hot, Warm};
    let asg = autoscaling().await;
    let drivers = drivers().await;
    let other = group(&asg, (1, 2, 4), Some("billing")).await;
    let untagged = group(&asg, (1, 2, 4), None).await;
    let sizes_wanted = |name: &str| AutoscalingGroup {
        group_name: name.to_owned(),
        min_size: Some(1),
        desired_capacity: Some(3),
        max_size: Some(4),
    };
    let typo = component("asg-typo", sizes_wanted(&other));
    let bare = component("asg-untagged", sizes_wanted(&untagged));
    for target in [Warm, Hot] {
        match drivers.apply(Apply { component: &typo, target, saved: None }).await {
            Err(DriverError::Rejected(why)) => assert!(
                why.contains(&other) && why.contains("carries revscale-component=billing, not asg-typo"),
                "{why}"
            ),
            other => panic!("{target}: {other:?}"),
        }
        match drivers.apply(Apply { component: &bare, target, saved: None }).await {
            Err(DriverError::Rejected(why)) => assert!(
                why.contains(&untagged) && why.contains("tag it revscale-component=asg-untagged"),
                "{why}"
            ),
            other => panic!("{target}: {other:?}"),
        }
    }
    for name in [&other, &untagged] {
        assert_eq!(sizes(&asg, name).await, (1, 2, 4, 2), "{name}: sizes unchanged");
    }
    let billing = BTreeMap::from([(COMPONENT_TAG.to_string(), "billing".to_string())]);
    assert_eq!(tags_of(&asg, &other).await, billing, "its tag kept, nothing added");
    assert_eq!(tags_of(&asg, &untagged).await, BTreeMap::new(), "not tagged");
    // Reading is no switching: observe still reports where the group is.
    assert_eq!(drivers.observe(&typo).await.unwrap().states, [Hot]);
}
