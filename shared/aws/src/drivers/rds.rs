//! `rds_instance` and `aurora_cluster`: WARM and COLD = stopped (`StopDBInstance`,
//! `StopDBCluster`; revscale never deletes a database), HOT = available
//! (`StartDBInstance`, `StartDBCluster`). Both read the database first: RDS refuses to
//! start what is not stopped and to stop what is not available, so a database already
//! on its way makes no call, and one busy with something else (a backup, a
//! modification) is refused as busy with its status. The database is tagged with
//! `AddTagsToResource` on its ARN when a tag is missing. Only a database whose
//! `revscale-component` tag names the component is started, stopped or tagged
//! ([`verify_component_tag`], on the `TagList` of the describe answer); the component
//! tag is never rewritten.
//!
//! AWS starts a database stopped for 7 days by itself: `observe` then says HOT, and the
//! drift check (`Kind::restarts_by_itself`) applies the recorded state again.
//!
//! The calls go through the signed Query client of [`crate::query`], which says why
//! not `aws-sdk-rds`.

use std::collections::BTreeMap;

use revscale_engine::config::Component;
use revscale_engine::drivers::{AuroraCluster, RdsInstance};
use revscale_engine::model::ComponentState;
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients, missing, query_error, verify_component_tag};
use crate::query::{self, child, child_text, members};

const INSTANCE_NOT_FOUND: &[&str] = &["DBInstanceNotFound", "DBInstanceNotFoundFault"];
const CLUSTER_NOT_FOUND: &[&str] = &["DBClusterNotFoundFault"];
/// RDS's "not in a state that allows this": the database moved between the read and
/// the call (another operation began), so this call changed nothing.
const INSTANCE_BUSY: &[&str] = &["InvalidDBInstanceState", "InvalidDBInstanceStateFault"];
const CLUSTER_BUSY: &[&str] = &["InvalidDBClusterStateFault", "InvalidDBInstanceState"];

/// A DB instance or cluster as RDS describes it.
#[derive(Debug, Clone, Default)]
struct Db {
    status: String,
    arn: Option<String>,
    tags: BTreeMap<String, String>,
    /// The DB cluster an instance belongs to (an Aurora or Multi-AZ cluster member):
    /// RDS starts and stops it only with its cluster.
    cluster: Option<String>,
}

/// Which describe call, and how its answer names things.
struct Describe {
    action: &'static str,
    identifier: &'static str,
    list: &'static str,
    member: &'static str,
    status: &'static str,
    arn: &'static str,
    not_found: &'static [&'static str],
}

const DESCRIBE_INSTANCE: Describe = Describe {
    action: "DescribeDBInstances",
    identifier: "DBInstanceIdentifier",
    list: "DBInstances",
    member: "DBInstance",
    status: "DBInstanceStatus",
    arn: "DBInstanceArn",
    not_found: INSTANCE_NOT_FOUND,
};

const DESCRIBE_CLUSTER: Describe = Describe {
    action: "DescribeDBClusters",
    identifier: "DBClusterIdentifier",
    list: "DBClusters",
    member: "DBCluster",
    status: "Status",
    arn: "DBClusterArn",
    not_found: CLUSTER_NOT_FOUND,
};

/// The database of a `DescribeDBInstances` / `DescribeDBClusters` answer
/// (`<{Action}Response><{Action}Result><DBInstances><DBInstance>...`), if it lists one.
fn parse_db(describe: &Describe, xml: &str) -> Result<Option<Db>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let root = query::root(&doc, &format!("{}Response", describe.action))?;
    let result = child(root, &format!("{}Result", describe.action))
        .ok_or_else(|| format!("no <{}Result>", describe.action))?;
    let Some(db) = members(result, describe.list, describe.member).next() else { return Ok(None) };
    let tags = members(db, "TagList", "Tag")
        .filter_map(|t| {
            Some((child_text(t, "Key")?.to_owned(), child_text(t, "Value").unwrap_or_default().to_owned()))
        })
        .collect();
    Ok(Some(Db {
        status: child_text(db, describe.status)
            .ok_or_else(|| format!("a {} without {}", describe.member, describe.status))?
            .to_owned(),
        arn: child_text(db, describe.arn).map(str::to_owned),
        tags,
        // An instance's cluster (a cluster answer has no such field).
        cluster: child_text(db, "DBClusterIdentifier")
            .filter(|_| describe.member == "DBInstance")
            .map(str::to_owned),
    }))
}

async fn describe(aws: &Clients, describe: &Describe, id: &str) -> Result<Option<Db>, DriverError> {
    match aws.rds.call(describe.action, &[(describe.identifier.to_owned(), id.to_owned())]).await {
        Ok(xml) => parse_db(describe, &xml)
            .map_err(|what| query_error(aws.rds.bad_answer(describe.action, what), &[])),
        Err(e) if e.code().is_some_and(|code| describe.not_found.contains(&code)) => Ok(None),
        Err(e) => Err(query_error(e, &[])),
    }
}

async fn instance(aws: &Clients, id: &str) -> Result<Option<Db>, DriverError> {
    describe(aws, &DESCRIBE_INSTANCE, id).await
}

async fn cluster(aws: &Clients, id: &str) -> Result<Option<Db>, DriverError> {
    describe(aws, &DESCRIBE_CLUSTER, id).await
}

/// What `apply` does to a database in `status` to reach `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbAction {
    Start,
    Stop,
    /// Already there or on its way.
    Nothing,
    /// Another operation is under way: RDS would refuse the call.
    Busy,
    /// The database is in a failed state that no start or stop repairs.
    Broken,
}

/// Statuses in which the database is up and serving (RDS bills it as running), though
/// busy with something that does not interrupt it. It cannot be stopped until that
/// ends.
const UP: &[&str] = &[
    "available",
    "backing-up",
    "storage-optimization",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
];

/// Whether RDS reports a state that waiting does not end: an operator must act.
pub fn is_broken(status: &str) -> bool {
    status.starts_with("incompatible-")
        || status.starts_with("inaccessible-encryption-credentials")
        || matches!(
            status,
            "failed"
                | "storage-full"
                | "restore-error"
                | "insufficient-capacity"
                | "cloning-failed"
                | "migration-failed"
                | "deleting"
                | "delete-precheck"
        )
}

/// HOT wants the database up; every other state wants it stopped.
fn wants_up(target: ComponentState) -> bool {
    target == ComponentState::Hot
}

/// What `apply` does with a database in `status` (as `DescribeDBInstances` or
/// `DescribeDBClusters` says) for `target`.
pub fn db_action(status: &str, target: ComponentState) -> DbAction {
    match (status, wants_up(target)) {
        _ if is_broken(status) => DbAction::Broken,
        ("stopped", true) => DbAction::Start,
        ("available", false) => DbAction::Stop,
        ("starting", true) | ("stopped" | "stopping", false) => DbAction::Nothing,
        (s, true) if UP.contains(&s) => DbAction::Nothing,
        _ => DbAction::Busy,
    }
}

/// Progress of a database in `status` towards `target`.
pub fn db_progress(status: &str, target: ComponentState) -> DriverStatus {
    if is_broken(status) {
        return DriverStatus::Failed(format!("the database is {status}"));
    }
    match (status, wants_up(target)) {
        ("stopped", false) => DriverStatus::Ready,
        (s, true) if UP.contains(&s) => DriverStatus::Ready,
        // Starting, stopping, modifying, rebooting...; and a start or stop RDS has
        // accepted but does not show yet.
        _ => DriverStatus::InProgress,
    }
}

/// Where a database in `status` is; `what` names it ("DB instance orders").
pub fn db_observed(what: &str, status: &str) -> Observed {
    use ComponentState::{Cold, Hot, Warm};
    if status == "stopped" {
        Observed::at(&[Cold, Warm], format!("{what} stopped"))
    } else if UP.contains(&status) {
        Observed::at(&[Hot], format!("{what} {status}"))
    } else if is_broken(status) {
        Observed::at(&[], format!("{what} {status}"))
    } else {
        // "in progress": the drift check takes it for a database on its way.
        Observed::moving(format!("{what} {status} (operation in progress)"))
    }
}

/// The action for `db`, or why `apply` refuses it.
fn plan(component: &Component, db: Option<&Db>, target: ComponentState) -> Result<DbAction, DriverError> {
    let Some(db) = db else { return Err(missing(component)) };
    let resource = component.driver.as_kind().resource();
    if let Some(cluster) = &db.cluster {
        return Err(DriverError::Rejected(format!(
            "{}: {resource} is a member of DB cluster {cluster}, which RDS starts and stops only as a \
             whole: switch the cluster with kind aurora_cluster (db_cluster_identifier: {cluster})",
            component.id
        )));
    }
    verify_component_tag(component, db.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    match db_action(&db.status, target) {
        DbAction::Busy => Err(DriverError::Busy(format!(
            "{}: {resource} is {}: RDS cannot {} it until that ends",
            component.id,
            db.status,
            if wants_up(target) { "start" } else { "stop" }
        ))),
        DbAction::Broken => Err(DriverError::Rejected(format!(
            "{}: {resource} is {}: neither a start nor a stop repairs that",
            component.id, db.status
        ))),
        action => Ok(action),
    }
}

/// Tags the database with what it lacks of revscale's tags (never the component tag:
/// `plan` has checked it names the component).
async fn tag(aws: &Clients, component: &Component, db: &Db) -> Result<(), DriverError> {
    let lacking = aws.missing_tags(component, db.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let Some(arn) = db.arn.as_ref().filter(|_| !lacking.is_empty()) else { return Ok(()) };
    let mut params = vec![("ResourceName".to_owned(), arn.clone())];
    for (n, (key, value)) in lacking.iter().enumerate() {
        params.push((format!("Tags.Tag.{}.Key", n + 1), (*key).to_owned()));
        params.push((format!("Tags.Tag.{}.Value", n + 1), (*value).to_owned()));
    }
    aws.rds.call("AddTagsToResource", &params).await.map_err(|e| query_error(e, &[]))?;
    Ok(())
}

/// A start or stop of the database `id`: one deleted since it was read is missing.
async fn switch(
    aws: &Clients,
    component: &Component,
    action: &'static str,
    (identifier, id): (&str, &str),
    not_found: &[&str],
    busy: &[&str],
) -> Result<(), DriverError> {
    match aws.rds.call(action, &[(identifier.to_owned(), id.to_owned())]).await {
        Ok(_) => Ok(()),
        Err(e) if e.code().is_some_and(|code| not_found.contains(&code)) => Err(missing(component)),
        Err(e) => Err(query_error(e, busy)),
    }
}

/// `status` of a database `found` (or not).
fn progress(component: &Component, found: Option<Db>, target: ComponentState) -> DriverStatus {
    match found {
        Some(db) => db_progress(&db.status, target),
        None => DriverStatus::Failed(format!(
            "{} does not exist (deleted outside revscale?)",
            component.driver.as_kind().resource()
        )),
    }
}

impl AwsKind for RdsInstance {
    fn iam_actions(&self) -> &'static [&'static str] {
        &["rds:DescribeDBInstances", "rds:StartDBInstance", "rds:StopDBInstance", "rds:AddTagsToResource"]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        let id = &self.db_instance_identifier;
        let found = instance(aws, id).await?;
        let action = plan(request.component, found.as_ref(), request.target)?;
        if let Some(db) = &found {
            tag(aws, request.component, db).await?;
        }
        let call = match action {
            DbAction::Start => "StartDBInstance",
            DbAction::Stop => "StopDBInstance",
            _ => return Ok(()),
        };
        let target = ("DBInstanceIdentifier", id.as_str());
        switch(aws, request.component, call, target, INSTANCE_NOT_FOUND, INSTANCE_BUSY).await
    }

    async fn status(
        &self,
        aws: &Clients,
        component: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        Ok(progress(component, instance(aws, &self.db_instance_identifier).await?, target))
    }

    async fn observe(&self, aws: &Clients, _: &Component) -> Result<Observed, DriverError> {
        let id = &self.db_instance_identifier;
        Ok(match instance(aws, id).await? {
            Some(db) => db_observed(&format!("DB instance {id}"), &db.status),
            None => Observed::absent(format!("no DB instance {id} (deleted outside revscale?)")),
        })
    }
}

impl AwsKind for AuroraCluster {
    fn iam_actions(&self) -> &'static [&'static str] {
        &["rds:DescribeDBClusters", "rds:StartDBCluster", "rds:StopDBCluster", "rds:AddTagsToResource"]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        let id = &self.db_cluster_identifier;
        let found = cluster(aws, id).await?;
        let action = plan(request.component, found.as_ref(), request.target)?;
        if let Some(db) = &found {
            tag(aws, request.component, db).await?;
        }
        let call = match action {
            DbAction::Start => "StartDBCluster",
            DbAction::Stop => "StopDBCluster",
            _ => return Ok(()),
        };
        let target = ("DBClusterIdentifier", id.as_str());
        switch(aws, request.component, call, target, CLUSTER_NOT_FOUND, CLUSTER_BUSY).await
    }

    async fn status(
        &self,
        aws: &Clients,
        component: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        Ok(progress(component, cluster(aws, &self.db_cluster_identifier).await?, target))
    }

    async fn observe(&self, aws: &Clients, _: &Component) -> Result<Observed, DriverError> {
        let id = &self.db_cluster_identifier;
        Ok(match cluster(aws, id).await? {
            Some(db) => db_observed(&format!("DB cluster {id}"), &db.status),
            None => Observed::absent(format!("no DB cluster {id} (deleted outside revscale?)")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::{Cold, Hot, Warm};
    use revscale_engine::drivers::COMPONENT_TAG;

    /// Every status the RDS user guide lists for DB instances and Aurora clusters.
    const TRANSITIONAL: &[&str] = &[
        "starting",
        "stopping",
        "modifying",
        "rebooting",
        "creating",
        "maintenance",
        "upgrading",
        "renaming",
        "resetting-master-credentials",
        "moving-to-vpc",
        "converting-to-vpc",
        "storage-initialization",
        "storage-config-upgrade",
        "failing-over",
        "backtracking",
        "promoting",
        "migrating",
        "update-iam-db-auth",
    ];
    const BROKEN: &[&str] = &[
        "failed",
        "storage-full",
        "incompatible-network",
        "incompatible-option-group",
        "incompatible-parameters",
        "incompatible-restore",
        "incompatible-credentials",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "restore-error",
        "insufficient-capacity",
        "cloning-failed",
        "migration-failed",
        "deleting",
    ];

    #[test]
    fn an_available_database_is_ready_for_hot_and_a_stopped_one_for_warm_and_cold() {
        assert_eq!(db_progress("available", Hot), DriverStatus::Ready);
        assert_eq!(db_progress("stopped", Warm), DriverStatus::Ready);
        assert_eq!(db_progress("stopped", Cold), DriverStatus::Ready);
    }

    #[test]
    fn a_start_or_stop_not_visible_yet_is_in_progress() {
        assert_eq!(db_progress("stopped", Hot), DriverStatus::InProgress);
        assert_eq!(db_progress("available", Warm), DriverStatus::InProgress);
    }

    #[test]
    fn a_database_between_states_is_in_progress_whatever_the_target() {
        for status in TRANSITIONAL {
            for target in [Cold, Warm, Hot] {
                assert_eq!(db_progress(status, target), DriverStatus::InProgress, "{status} -> {target}");
            }
        }
    }

    #[test]
    fn a_failed_database_fails_the_step_naming_its_status() {
        for status in BROKEN {
            for target in [Cold, Warm, Hot] {
                let DriverStatus::Failed(why) = db_progress(status, target) else {
                    panic!("{status} -> {target} should fail");
                };
                assert!(why.contains(status), "{why}");
            }
        }
    }

    #[test]
    fn a_database_up_and_busy_with_a_backup_serves_hot_but_cannot_be_stopped_yet() {
        for status in ["backing-up", "storage-optimization", "configuring-log-exports"] {
            assert_eq!(db_progress(status, Hot), DriverStatus::Ready, "{status}");
            assert_eq!(db_progress(status, Warm), DriverStatus::InProgress, "{status}");
            assert_eq!(db_action(status, Hot), DbAction::Nothing, "{status}");
            assert_eq!(db_action(status, Warm), DbAction::Busy, "{status}");
            assert!(db_observed("DB instance a", status).agrees_with(Hot), "{status}");
        }
    }

    #[test]
    fn apply_calls_only_what_rds_accepts_in_that_status() {
        assert_eq!(db_action("stopped", Hot), DbAction::Start);
        assert_eq!(db_action("available", Warm), DbAction::Stop);
        assert_eq!(db_action("available", Cold), DbAction::Stop, "COLD stops too: never a delete");
        // Already there or on its way: no call (RDS answers InvalidDBInstanceState).
        assert_eq!(db_action("available", Hot), DbAction::Nothing);
        assert_eq!(db_action("starting", Hot), DbAction::Nothing);
        assert_eq!(db_action("stopped", Warm), DbAction::Nothing);
        assert_eq!(db_action("stopping", Cold), DbAction::Nothing);
        // The wrong way, or another operation: busy.
        assert_eq!(db_action("stopping", Hot), DbAction::Busy);
        assert_eq!(db_action("starting", Warm), DbAction::Busy);
        for status in ["modifying", "rebooting", "upgrading", "maintenance"] {
            assert_eq!(db_action(status, Hot), DbAction::Busy, "{status}");
            assert_eq!(db_action(status, Warm), DbAction::Busy, "{status}");
        }
        for status in BROKEN {
            assert_eq!(db_action(status, Hot), DbAction::Broken, "{status}");
            assert_eq!(db_action(status, Warm), DbAction::Broken, "{status}");
        }
    }

    #[test]
    fn a_stopped_database_is_warm_and_cold_an_available_one_hot_and_others_none() {
        let stopped = db_observed("DB instance a", "stopped");
        assert_eq!(stopped.states, vec![Cold, Warm]);
        assert_eq!(db_observed("DB cluster a", "available").states, vec![Hot]);
        for status in TRANSITIONAL {
            let o = db_observed("DB instance a", status);
            assert!(o.states.is_empty(), "{status}");
            assert!(o.actual.contains(status) && o.actual.contains("in progress"), "{}", o.actual);
        }
        for status in BROKEN {
            let o = db_observed("DB instance a", status);
            assert!(o.states.is_empty(), "{status}");
            assert!(o.actual.contains(status) && !o.actual.contains("progress"), "{}", o.actual);
        }
    }

    fn component(spec: impl Into<revscale_engine::config::DriverSpec>) -> Component {
        let zero = revscale_engine::Money::parse("0", revscale_engine::Currency::EUR)
            .unwrap_or_else(|e| panic!("{e}"));
        Component {
            id: revscale_engine::ComponentId::new("db"),
            driver: spec.into(),
            billing: revscale_engine::config::Billing::Aws,
            hot_cost: zero,
            warm_cost: zero,
            depends_on: vec![],
            level: 1,
        }
    }

    #[test]
    fn apply_refuses_a_cluster_member_and_names_aurora_cluster() {
        let c = component(RdsInstance { db_instance_identifier: "orders-1".into() });
        let member = Db { status: "available".into(), cluster: Some("orders".into()), ..Db::default() };
        let Err(DriverError::Rejected(why)) = plan(&c, Some(&member), Warm) else { panic!("not refused") };
        assert!(
            why.contains("aurora_cluster") && why.contains("orders-1") && why.contains("orders"),
            "{why}"
        );
    }

    #[test]
    fn apply_on_a_busy_database_is_busy_naming_its_status_and_on_a_missing_one_refused() {
        let c = component(RdsInstance { db_instance_identifier: "orders".into() });
        let tags = BTreeMap::from([(COMPONENT_TAG.to_owned(), "db".to_owned())]);
        let busy = Db { status: "backing-up".into(), tags, ..Db::default() };
        let Err(DriverError::Busy(why)) = plan(&c, Some(&busy), Warm) else { panic!("not busy") };
        assert!(why.contains("backing-up") && why.contains("orders"), "{why}");
        let Err(DriverError::Rejected(why)) = plan(&c, None, Hot) else { panic!("not refused") };
        assert!(why.contains("RDS instance orders") && why.contains("does not exist"), "{why}");
        let DriverStatus::Failed(why) = progress(&c, None, Warm) else { panic!("not failed") };
        assert!(why.contains("orders"), "{why}");
    }

    #[test]
    fn apply_refuses_a_database_whose_component_tag_does_not_name_the_component() {
        let c = component(RdsInstance { db_instance_identifier: "orders".into() });
        let other = BTreeMap::from([(COMPONENT_TAG.to_owned(), "billing".to_owned())]);
        for (tags, expected) in [
            (other, "RDS instance orders carries revscale-component=billing, not db"),
            (BTreeMap::new(), "tag it revscale-component=db"),
        ] {
            let db = Db { status: "available".into(), tags, ..Db::default() };
            let Err(DriverError::Rejected(why)) = plan(&c, Some(&db), Warm) else { panic!("not refused") };
            assert!(why.contains(expected), "{why}");
        }
    }

    #[test]
    fn an_instance_is_read_from_rdss_answer_with_its_tags_and_cluster() {
        // DescribeDBInstances as the RDS API reference shows it (trimmed).
        let xml = r#"<DescribeDBInstancesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">
  <DescribeDBInstancesResult>
    <DBInstances>
      <DBInstance>
        <DBInstanceIdentifier>orders-1</DBInstanceIdentifier>
        <DBInstanceStatus>stopped</DBInstanceStatus>
        <DBInstanceArn>arn:aws:rds:eu-west-1:123456789012:db:orders-1</DBInstanceArn>
        <DBClusterIdentifier>orders</DBClusterIdentifier>
        <ReadReplicaDBInstanceIdentifiers/>
        <TagList>
          <Tag><Key>revscale:managed</Key><Value>true</Value></Tag>
          <Tag><Key>team</Key></Tag>
        </TagList>
      </DBInstance>
    </DBInstances>
  </DescribeDBInstancesResult>
  <ResponseMetadata><RequestId>01b2685a</RequestId></ResponseMetadata>
</DescribeDBInstancesResponse>"#;
        let db = parse_db(&DESCRIBE_INSTANCE, xml).unwrap().unwrap();
        assert_eq!(db.status, "stopped");
        assert_eq!(db.arn.as_deref(), Some("arn:aws:rds:eu-west-1:123456789012:db:orders-1"));
        assert_eq!(db.cluster.as_deref(), Some("orders"));
        assert_eq!(db.tags.get("revscale:managed").map(String::as_str), Some("true"));
        assert_eq!(db.tags.get("team").map(String::as_str), Some(""));
    }

    #[test]
    fn a_cluster_is_read_from_its_own_answer_and_an_empty_list_is_no_database() {
        let xml = r#"<DescribeDBClustersResponse><DescribeDBClustersResult><DBClusters><DBCluster>
          <DBClusterIdentifier>analytics</DBClusterIdentifier><Status>available</Status>
          <DBClusterArn>arn:aws:rds:eu-west-1:123456789012:cluster:analytics</DBClusterArn>
          <DBClusterMembers><DBClusterMember><DBInstanceIdentifier>a-1</DBInstanceIdentifier></DBClusterMember></DBClusterMembers>
        </DBCluster></DBClusters></DescribeDBClustersResult></DescribeDBClustersResponse>"#;
        let db = parse_db(&DESCRIBE_CLUSTER, xml).unwrap().unwrap();
        assert_eq!((db.status.as_str(), db.cluster), ("available", None));
        let empty = "<DescribeDBClustersResponse><DescribeDBClustersResult><DBClusters/></DescribeDBClustersResult></DescribeDBClustersResponse>";
        assert_eq!(parse_db(&DESCRIBE_CLUSTER, empty).unwrap().map(|d| d.status), None);
        assert!(parse_db(&DESCRIBE_INSTANCE, empty).unwrap_err().contains("DescribeDBClustersResponse"));
    }
}
