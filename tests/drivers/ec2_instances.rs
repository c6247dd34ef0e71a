//! `ec2_instances` on moto, through the driver's own signed Query calls: the contract
//! by ids and by a tag filter, an instance replaced behind revscale's back (found by
//! the filter, reported as drift until it is switched), a terminated instance, and an
//! instance whose `revscale-component` tag does not name the component.
//!
//! moto stops and starts an instance at once (AWS shows `stopping` and `pending`
//! first) and reports both status checks `ok` as soon as it runs (AWS says
//! `initializing` for a few minutes): the unit tests of
//! `revscale_aws::drivers::ec2_instances` cover those states.

use std::collections::BTreeMap;

use revscale_aws::ec2::{Ec2Client, Selection};
use revscale_engine::drivers::{COMPONENT_TAG, Ec2Instances};
use revscale_engine::model::ComponentState::{Cold, Hot, Warm};
use revscale_engine::ports::{Apply, ComponentDriver, DriverError, DriverStatus};
use revscale_integration_tests::unique;

use crate::contract::{component, drivers, keeps_the_contract, until_ready};

pub const KIND: &str = "ec2_instances";

async fn ec2() -> Ec2Client {
    Ec2Client::new(&revscale_integration_tests::sdk().await)
}

/// `count` new instances carrying `tags`; returns their ids.
async fn launch(ec2: &Ec2Client, count: u32, tags: &[(&str, &str)]) -> Vec<String> {
    let mut params = vec![
        ("ImageId".to_owned(), "ami-12c6146b".to_owned()),
        ("InstanceType".to_owned(), "t3.micro".to_owned()),
        ("MinCount".to_owned(), count.to_string()),
        ("MaxCount".to_owned(), count.to_string()),
    ];
    if !tags.is_empty() {
        params.push(("TagSpecification.1.ResourceType".into(), "instance".into()));
        for (n, (key, value)) in tags.iter().enumerate() {
            params.push((format!("TagSpecification.1.Tag.{}.Key", n + 1), (*key).into()));
            params.push((format!("TagSpecification.1.Tag.{}.Value", n + 1), (*value).into()));
        }
    }
    let xml = ec2.call("RunInstances", &params).await.unwrap();
    let ids: Vec<String> = xml
        .split("<instanceId>")
        .skip(1)
        .filter_map(|rest| rest.split("</instanceId>").next())
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), count as usize, "{xml}");
    ids
}

/// Each instance's state, by id.
async fn states(ec2: &Ec2Client, ids: &[String]) -> BTreeMap<String, String> {
    ec2.describe_instances(Selection::Ids(ids)).await.unwrap().into_iter().map(|i| (i.id, i.state)).collect()
}

async fn tags_of(ec2: &Ec2Client, id: &str) -> BTreeMap<String, String> {
    let found = ec2.describe_instances(Selection::Ids(&[id.to_owned()])).await.unwrap();
    found.into_iter().next().unwrap().tags
}

fn by_ids(ids: &[String]) -> Ec2Instances {
    Ec2Instances { instance_ids: ids.to_vec(), ..Default::default() }
}

#[tokio::test]
async fn ec2_instances_by_id_keep_the_contract() {
    let ec2 = ec2().await;
    let ids = launch(&ec2, 2, &[(COMPONENT_TAG, "ec2-contract")]).await;
    ec2.stop_instances(&ids).await.unwrap();
    let c = component("ec2-contract", by_ids(&ids));
    let first = ids[0].clone();
    let ec2_ref = &ec2;
    let tags = || {
        let first = first.clone();
        async move { Some(tags_of(ec2_ref, &first).await) }
    };
    let seen = keeps_the_contract(&c, tags).await;
    assert_eq!(seen[1].1.actual, "2 running", "{seen:?}");
    assert_eq!(seen[3].1.actual, "2 stopped", "{seen:?}");
    for (id, state) in states(&ec2, &ids).await {
        assert_eq!(state, "stopped", "{id}: COLD stops, never terminates");
    }
    assert_eq!(tags_of(&ec2, &ids[1]).await.get("revscale:managed").map(String::as_str), Some("true"));
}

#[tokio::test]
async fn instances_found_by_a_tag_filter_keep_the_contract_and_a_replacement_is_found() {
    let ec2 = ec2().await;
    let role = unique("batch");
    let ids = launch(&ec2, 2, &[(COMPONENT_TAG, "ec2-filter"), ("role", &role)]).await;
    ec2.stop_instances(&ids).await.unwrap();
    let spec = Ec2Instances { tag_filter: [("role".to_owned(), role.clone())].into(), ..Default::default() };
    let c = component("ec2-filter", spec);
    let first = ids[0].clone();
    let ec2_ref = &ec2;
    let tags = || {
        let first = first.clone();
        async move { Some(tags_of(ec2_ref, &first).await) }
    };
    keeps_the_contract(&c, tags).await;

    // Someone terminates one and launches its replacement, running: the filter finds
    // the new one, the old one is gone, and the pair is split (drift).
    ec2.call("TerminateInstances", &[("InstanceId.1".into(), ids[0].clone())]).await.unwrap();
    let replacement = launch(&ec2, 1, &[(COMPONENT_TAG, "ec2-filter"), ("role", &role)]).await;
    let drivers = drivers().await;
    let observed = drivers.observe(&c).await.unwrap();
    assert!(observed.states.is_empty() && !observed.moving && !observed.absent, "{observed:?}");
    assert_eq!(observed.actual, "1 running, 1 stopped");
    // WARM again takes the replacement down too.
    drivers.apply(Apply { component: &c, target: Warm, saved: None }).await.unwrap();
    until_ready(&drivers, &c, Warm).await;
    assert_eq!(states(&ec2, &replacement).await[&replacement[0]], "stopped");
    assert_eq!(drivers.observe(&c).await.unwrap().states, [Cold, Warm]);
}

#[tokio::test]
async fn a_terminated_instance_is_reported_as_drift_and_refused_without_panicking() {
    let ec2 = ec2().await;
    let ids = launch(&ec2, 2, &[(COMPONENT_TAG, "ec2-gone")]).await;
    ec2.call("TerminateInstances", &[("InstanceId.1".into(), ids[1].clone())]).await.unwrap();
    let c = component("ec2-gone", by_ids(&ids));
    let drivers = drivers().await;
    let observed = drivers.observe(&c).await.unwrap();
    assert!(observed.states.is_empty() && observed.absent, "{observed:?}");
    assert!(observed.actual.contains(&ids[1]) && observed.actual.contains("terminated"), "{observed:?}");
    match drivers.apply(Apply { component: &c, target: Hot, saved: None }).await {
        Err(DriverError::Rejected(why)) => {
            assert!(why.starts_with("ec2-gone: EC2 instances") && why.contains(&ids[1]), "{why}")
        }
        other => panic!("{other:?}"),
    }
    match drivers.status(&c, Hot).await.unwrap() {
        DriverStatus::Failed(why) => assert!(why.contains(&ids[1]), "{why}"),
        other => panic!("{other:?}"),
    }
    // An id EC2 never issued: the same, not an error.
    let never = component("ec2-never", by_ids(&["i-0123456789abcdef0".to_owned()]));
    let observed = drivers.observe(&never).await.unwrap();
    assert!(observed.absent && observed.actual.contains("i-0123456789abcdef0"), "{observed:?}");
    // A filter matching nothing names the filter.
    let none = component(
        "ec2-none",
        Ec2Instances { tag_filter: [("role".to_owned(), unique("nobody"))].into(), ..Default::default() },
    );
    let observed = drivers.observe(&none).await.unwrap();
    assert!(observed.actual.starts_with("no instance carries role=nobody"), "{observed:?}");
}

#[tokio::test]
async fn an_instance_not_tagged_for_the_component_is_refused_and_left_as_it_is() {
    let ec2 = ec2().await;
    let tagged = launch(&ec2, 1, &[(COMPONENT_TAG, "ec2-typo")]).await;
    let other = launch(&ec2, 1, &[(COMPONENT_TAG, "billing")]).await;
    let untagged = launch(&ec2, 1, &[]).await;
    let all: Vec<String> = [tagged, other.clone(), untagged.clone()].concat();
    ec2.stop_instances(&all).await.unwrap();
    let drivers = drivers().await;
    for (ids, expect) in [
        (vec![all[0].clone(), other[0].clone()], "carries revscale-component=billing, not ec2-typo"),
        (vec![all[0].clone(), untagged[0].clone()], "tag it revscale-component=ec2-typo"),
    ] {
        let c = component("ec2-typo", by_ids(&ids));
        match drivers.apply(Apply { component: &c, target: Hot, saved: None }).await {
            Err(DriverError::Rejected(why)) => assert!(why.contains(expect), "{why}"),
            other => panic!("{other:?}"),
        }
    }
    for (id, state) in states(&ec2, &all).await {
        assert_eq!(state, "stopped", "{id}: nothing started");
    }
    assert!(!tags_of(&ec2, &all[0]).await.contains_key("revscale:managed"), "nothing tagged either");
}
