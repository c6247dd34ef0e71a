//! `rds_instance` and `aurora_cluster` on moto: the contract from a stopped database,
//! the re-stop of a database AWS started behind revscale's back, a deleted database,
//! an Aurora member switched as an instance, and a database whose `revscale-component`
//! tag does not name the component.
//!
//! moto changes a database's status at once (no `starting` or `stopping`): the
//! transitional statuses are covered by the unit tests of `revscale_aws::drivers::rds`.

use std::collections::BTreeMap;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::Tag;
use revscale_engine::drivers::{AuroraCluster, COMPONENT_TAG, RdsInstance};
use revscale_engine::model::ComponentState::{self, Cold, Hot, Warm};
use revscale_engine::ports::{Apply, ComponentDriver, DriverError, DriverStatus};
use revscale_engine::testing::day;
use revscale_integration_tests::unique;

use crate::contract::{component, drivers, keeps_the_contract, until_ready};

pub const INSTANCE_KIND: &str = "rds_instance";
pub const CLUSTER_KIND: &str = "aurora_cluster";

async fn rds() -> Client {
    Client::new(&revscale_integration_tests::sdk().await)
}

/// `revscale-component=<component>` (none: `None`).
fn component_tag(component: Option<&str>) -> Option<Vec<Tag>> {
    component.map(|c| vec![Tag::builder().key(COMPONENT_TAG).value(c).build()])
}

/// A PostgreSQL instance, available, tagged `revscale-component=<tag>` (untagged:
/// `None`); returns its ARN.
async fn instance(rds: &Client, id: &str, tag: Option<&str>) -> String {
    let created = rds
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("revscale")
        .master_user_password("not-a-secret-0")
        .set_tags(component_tag(tag))
        .send()
        .await
        .unwrap();
    created.db_instance.unwrap().db_instance_arn.unwrap()
}

async fn instance_status(rds: &Client, id: &str) -> String {
    let out = rds.describe_db_instances().db_instance_identifier(id).send().await.unwrap();
    out.db_instances()[0].db_instance_status().unwrap().to_owned()
}

/// An Aurora PostgreSQL cluster, available (moto says `creating` once), tagged
/// `revscale-component=<tag>` (untagged: `None`); returns its ARN.
async fn cluster(rds: &Client, id: &str, tag: Option<&str>) -> String {
    let created = rds
        .create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .master_username("revscale")
        .master_user_password("not-a-secret-0")
        .set_tags(component_tag(tag))
        .send()
        .await
        .unwrap();
    for _ in 0..10 {
        if cluster_status(rds, id).await == "available" {
            return created.db_cluster.unwrap().db_cluster_arn.unwrap();
        }
    }
    panic!("cluster {id} never available");
}

async fn cluster_status(rds: &Client, id: &str) -> String {
    let out = rds.describe_db_clusters().db_cluster_identifier(id).send().await.unwrap();
    out.db_clusters()[0].status().unwrap().to_owned()
}

async fn tags(rds: &Client, arn: &str) -> Option<BTreeMap<String, String>> {
    let out = rds.list_tags_for_resource().resource_name(arn).send().await.unwrap();
    Some(
        out.tag_list()
            .iter()
            .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect(),
    )
}

/// What the contract observed at each step: HOT is available, WARM and COLD stopped.
fn states_seen(
    seen: &[(ComponentState, revscale_engine::ports::Observed)],
) -> Vec<(ComponentState, Vec<ComponentState>)> {
    seen.iter().map(|(target, o)| (*target, o.states.clone())).collect()
}

const EXPECTED: [(ComponentState, &[ComponentState]); 4] =
    [(Warm, &[Cold, Warm]), (Hot, &[Hot]), (Warm, &[Cold, Warm]), (Cold, &[Cold, Warm])];

#[tokio::test]
async fn an_rds_instance_keeps_the_contract() {
    let rds = rds().await;
    let id = unique("db");
    let arn = instance(&rds, &id, Some("orders-db")).await;
    rds.stop_db_instance().db_instance_identifier(&id).send().await.unwrap();
    let c = component("orders-db", RdsInstance { db_instance_identifier: id.clone() });
    let seen = keeps_the_contract(&c, || tags(&rds, &arn)).await;
    let expected: Vec<_> = EXPECTED.iter().map(|(t, s)| (*t, s.to_vec())).collect();
    assert_eq!(states_seen(&seen), expected);
    assert_eq!(instance_status(&rds, &id).await, "stopped", "COLD stops, never deletes");
}

#[tokio::test]
async fn an_aurora_cluster_keeps_the_contract() {
    let rds = rds().await;
    let id = unique("aurora");
    let arn = cluster(&rds, &id, Some("orders-aurora")).await;
    rds.stop_db_cluster().db_cluster_identifier(&id).send().await.unwrap();
    let c = component("orders-aurora", AuroraCluster { db_cluster_identifier: id.clone() });
    let seen = keeps_the_contract(&c, || tags(&rds, &arn)).await;
    let expected: Vec<_> = EXPECTED.iter().map(|(t, s)| (*t, s.to_vec())).collect();
    assert_eq!(states_seen(&seen), expected);
    assert_eq!(cluster_status(&rds, &id).await, "stopped", "COLD stops, never deletes");
}

/// AWS starts a database stopped for 7 days: `observe` says HOT, which disagrees with
/// the recorded WARM, and the drift check (which re-applies the recorded state for
/// this kind) stops it again.
#[tokio::test]
async fn a_warm_database_started_behind_revscales_back_is_seen_hot_and_stopped_again() {
    let rds = rds().await;
    let drivers = drivers().await;
    let instance_id = unique("db");
    instance(&rds, &instance_id, Some("restarted-db")).await;
    let cluster_id = unique("aurora");
    cluster(&rds, &cluster_id, Some("restarted-aurora")).await;
    let components = [
        component("restarted-db", RdsInstance { db_instance_identifier: instance_id.clone() }),
        component("restarted-aurora", AuroraCluster { db_cluster_identifier: cluster_id.clone() }),
    ];
    for c in &components {
        drivers.apply(Apply { component: c, target: Warm, saved: None }).await.unwrap();
        until_ready(&drivers, c, Warm).await;
    }
    // AWS's automatic start after 7 days.
    rds.start_db_instance().db_instance_identifier(&instance_id).send().await.unwrap();
    rds.start_db_cluster().db_cluster_identifier(&cluster_id).send().await.unwrap();

    for c in &components {
        let observed = drivers.observe(c).await.unwrap();
        assert_eq!(observed.states, vec![Hot], "{}: {observed:?}", c.id);
        assert!(!observed.agrees_with(Warm));
        assert!(
            revscale_engine::drift::restores(
                c,
                &revscale_engine::state::ComponentRecord::settled(Warm, day("2026-11-20")),
                &observed,
                revscale_engine::Mode::Auto,
                day("2026-12-06"),
            ),
            "{}: the drift check re-stops it (stopped for 7 days and more)",
            c.id
        );
        drivers.apply(Apply { component: c, target: Warm, saved: None }).await.unwrap();
        until_ready(&drivers, c, Warm).await;
        assert!(drivers.observe(c).await.unwrap().agrees_with(Warm), "{}", c.id);
    }
    assert_eq!(instance_status(&rds, &instance_id).await, "stopped");
    assert_eq!(cluster_status(&rds, &cluster_id).await, "stopped");
}

#[tokio::test]
async fn a_deleted_database_has_no_state_is_refused_by_name_and_fails_its_status() {
    let rds = rds().await;
    let drivers = drivers().await;
    let id = unique("db");
    instance(&rds, &id, Some("deleted-db")).await;
    rds.delete_db_instance().db_instance_identifier(&id).skip_final_snapshot(true).send().await.unwrap();
    // A cluster that was never there (moto's cluster deletion wants more set-up).
    let cluster_id = unique("aurora");
    let components = [
        component("deleted-db", RdsInstance { db_instance_identifier: id.clone() }),
        component("deleted-aurora", AuroraCluster { db_cluster_identifier: cluster_id.clone() }),
    ];
    for (c, name) in components.iter().zip([&id, &cluster_id]) {
        let observed = drivers.observe(c).await.unwrap();
        assert!(observed.states.is_empty(), "{observed:?}");
        assert!(
            observed.actual.contains(name.as_str()) && observed.actual.contains("deleted outside"),
            "{observed:?}"
        );
        for target in [Hot, Warm] {
            match drivers.apply(Apply { component: c, target, saved: None }).await {
                Err(DriverError::Rejected(why)) => assert!(why.contains(name.as_str()), "{why}"),
                other => panic!("{}: apply {target} on a deleted database: {other:?}", c.id),
            }
            match drivers.status(c, target).await.unwrap() {
                DriverStatus::Failed(why) => assert!(why.contains(name.as_str()), "{why}"),
                other => panic!("{}: status {target} of a deleted database: {other:?}", c.id),
            }
        }
    }
}

#[tokio::test]
async fn an_aurora_member_switched_as_an_instance_is_refused_and_pointed_at_aurora_cluster() {
    let rds = rds().await;
    let drivers = drivers().await;
    let cluster_id = unique("aurora");
    cluster(&rds, &cluster_id, None).await;
    let member = unique("member");
    rds.create_db_instance()
        .db_instance_identifier(&member)
        .db_cluster_identifier(&cluster_id)
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .set_tags(component_tag(Some("member-db")))
        .send()
        .await
        .unwrap();
    let c = component("member-db", RdsInstance { db_instance_identifier: member.clone() });
    for target in [Warm, Hot] {
        match drivers.apply(Apply { component: &c, target, saved: None }).await {
            Err(DriverError::Rejected(why)) => {
                assert!(why.contains("aurora_cluster") && why.contains(&cluster_id), "{why}");
            }
            other => panic!("apply {target} on an Aurora member: {other:?}"),
        }
    }
    assert_eq!(instance_status(&rds, &member).await, "available", "nothing was called");
}

/// A typo in the configured identifier must not start or stop another component's
/// database: one tagged for another component is refused by name, one without the tag
/// is refused with how to tag it; none is started, stopped or tagged.
#[tokio::test]
async fn a_database_not_tagged_for_the_component_is_refused_and_left_untouched() {
    let rds = rds().await;
    let drivers = drivers().await;
    // Stopped instances (HOT would start them), available clusters (WARM would stop
    // them), each tagged for another component or untagged.
    let mut cases = Vec::new();
    for tag in [Some("billing"), None] {
        let id = unique("db");
        let arn = instance(&rds, &id, tag).await;
        rds.stop_db_instance().db_instance_identifier(&id).send().await.unwrap();
        let c = component("typo-db", RdsInstance { db_instance_identifier: id.clone() });
        cases.push((c, id, arn, tag, Hot, "stopped"));
        let id = unique("aurora");
        let arn = cluster(&rds, &id, tag).await;
        let c = component("typo-aurora", AuroraCluster { db_cluster_identifier: id.clone() });
        cases.push((c, id, arn, tag, Warm, "available"));
    }
    for (c, id, arn, tag, target, status) in &cases {
        let expected = match tag {
            Some(other) => format!("carries revscale-component={other}, not {}", c.id),
            None => format!("tag it revscale-component={}", c.id),
        };
        match drivers.apply(Apply { component: c, target: *target, saved: None }).await {
            Err(DriverError::Rejected(why)) => {
                assert!(why.contains(id.as_str()) && why.contains(&expected), "{why}")
            }
            other => panic!("{}: apply {target} to {id}: {other:?}", c.id),
        }
        let now = match c.driver.kind() {
            INSTANCE_KIND => instance_status(&rds, id).await,
            _ => cluster_status(&rds, id).await,
        };
        assert_eq!(&now, status, "{id}: left as it was");
        let kept: BTreeMap<String, String> =
            tag.iter().map(|t| (COMPONENT_TAG.to_owned(), (*t).to_owned())).collect();
        assert_eq!(tags(&rds, arn).await, Some(kept), "{id}: its tags unchanged");
        // Reading is no switching: observe still reports where the database is.
        assert!(!drivers.observe(c).await.unwrap().states.is_empty(), "{id}");
    }
}
