//! `ec2_instances`: EC2 instances the user owns, by id or by a tag filter. WARM and COLD
//! = stopped (`StopInstances`; revscale never terminates an instance, so its EBS
//! volumes and addresses stay and are still billed); HOT = running (`StartInstances`)
//! and ready once both status checks pass.
//!
//! Every call reads the instances first (`DescribeInstances`; with a tag filter, again
//! each time, so a replaced instance is found). `apply` switches only instances whose
//! `revscale-component` tag names the component, refuses an instance an Auto Scaling
//! group owns (the group would replace it: that is kind `autoscaling_group`), adds
//! only the tags of revscale's an instance lacks (`CreateTags`), and makes no call for
//! an instance already there or on its way. An instance still stopping cannot be
//! started (nor one still pending stopped): that is Busy, which the state machine
//! retries.
//!
//! The calls go through [`crate::ec2`] (the Query API, signed), not `aws-sdk-ec2`:
//! that module says why.

use std::collections::BTreeMap;

use revscale_engine::config::{Component, Kind};
use revscale_engine::drivers::{COMPONENT_TAG, Ec2Instances};
use revscale_engine::model::ComponentState;
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients, query_error, verify_component_tag};
use crate::ec2::{Instance, Selection, StatusChecks};
use crate::query::QueryError;

/// EC2's "no such instance" codes (a malformed id is refused by the configuration's
/// check first; one that slipped through is as absent).
const NOT_FOUND: &[&str] = &["InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"];
/// "The instance is not in a state that allows this": it moved between our read and
/// the call, which therefore changed nothing.
const BUSY: &[&str] = &["IncorrectInstanceState", "IncorrectState"];
/// The tag EC2 Auto Scaling puts on every instance it launches.
const AUTOSCALING_TAG: &str = "aws:autoscaling:groupName";

fn ec2_error(e: QueryError) -> DriverError {
    query_error(e, BUSY)
}

/// The instances, or what of them is missing.
enum Found {
    All(Vec<Instance>),
    Missing(String),
}

/// Terminated (or terminating) instances stay listed for about an hour: gone all the
/// same.
fn is_gone(instance: &Instance) -> bool {
    matches!(instance.state.as_str(), "terminated" | "shutting-down")
}

async fn instances(aws: &Clients, spec: &Ec2Instances) -> Result<Found, DriverError> {
    if spec.instance_ids.is_empty() {
        let found =
            aws.ec2.describe_instances(Selection::Tagged(&spec.tag_filter)).await.map_err(ec2_error)?;
        let found: Vec<Instance> = found.into_iter().filter(|i| !is_gone(i)).collect();
        if found.is_empty() {
            return Ok(Found::Missing(format!("no instance carries {}", tags_text(&spec.tag_filter))));
        }
        let limit = revscale_engine::drivers::ec2_instances::MAX_EC2_INSTANCES;
        if found.len() > limit {
            return Err(DriverError::Rejected(format!(
                "{} matches {} instances: at most {limit} per component (is the filter too wide?)",
                spec.resource(),
                found.len()
            )));
        }
        return Ok(Found::All(found));
    }
    let found = match aws.ec2.describe_instances(Selection::Ids(&spec.instance_ids)).await {
        Ok(found) => found,
        Err(e) if e.code().is_some_and(|code| NOT_FOUND.contains(&code)) => {
            return Ok(Found::Missing(e.to_string()));
        }
        Err(e) => return Err(ec2_error(e)),
    };
    let absent: Vec<&str> = spec
        .instance_ids
        .iter()
        .filter(|id| !found.iter().any(|i| &i.id == *id && !is_gone(i)))
        .map(String::as_str)
        .collect();
    if absent.is_empty() {
        Ok(Found::All(found))
    } else {
        Ok(Found::Missing(format!("{} terminated or deleted", absent.join(", "))))
    }
}

fn tags_text(tags: &BTreeMap<String, String>) -> String {
    tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

fn missing(component: &Component, what: &str) -> DriverError {
    DriverError::Rejected(format!(
        "{}: {}: {what} (deleted outside revscale?)",
        component.id,
        component.driver.as_kind().resource()
    ))
}

/// Whether `apply` may touch every instance, or why not.
fn may_switch(component: &Component, found: &[Instance]) -> Result<(), DriverError> {
    for instance in found {
        if let Some(group) = instance.tags.get(AUTOSCALING_TAG) {
            return Err(DriverError::Rejected(format!(
                "{}: instance {} belongs to Auto Scaling group {group}, which would replace it when stopped: \
                 switch the group with kind autoscaling_group (group_name: {group})",
                component.id, instance.id
            )));
        }
        verify_component_tag(component, instance.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| match e {
                DriverError::Rejected(why) => {
                    DriverError::Rejected(format!("{why} (instance {})", instance.id))
                }
                other => other,
            })?;
    }
    Ok(())
}

/// What `apply` does: the ids to start or stop, or why it must wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    Start(Vec<String>),
    Stop(Vec<String>),
    /// An instance is on its way the other way: EC2 would refuse the call.
    Busy(String),
}

/// The plan for instances in these states to reach `target`.
pub fn plan(found: &[Instance], target: ComponentState) -> Plan {
    let up = target == ComponentState::Hot;
    let (against, wanted_from) = if up { ("stopping", "stopped") } else { ("pending", "running") };
    if let Some(moving) = found.iter().find(|i| i.state == against) {
        return Plan::Busy(format!(
            "instance {} is {against}: EC2 cannot {} it until that ends",
            moving.id,
            if up { "start" } else { "stop" }
        ));
    }
    let ids = found.iter().filter(|i| i.state == wanted_from).map(|i| i.id.clone()).collect();
    if up { Plan::Start(ids) } else { Plan::Stop(ids) }
}

/// Progress towards `target` of instances in these states; HOT also needs the running
/// ones' status checks, read only once all are running.
pub fn progress(found: &[Instance], target: ComponentState, checks: Option<&[StatusChecks]>) -> DriverStatus {
    if target != ComponentState::Hot {
        return if found.iter().all(|i| i.state == "stopped") {
            DriverStatus::Ready
        } else {
            DriverStatus::InProgress
        };
    }
    if !found.iter().all(|i| i.state == "running") {
        return DriverStatus::InProgress;
    }
    let Some(checks) = checks else { return DriverStatus::InProgress };
    let passed = |check: &str| matches!(check, "ok" | "not-applicable");
    for instance in found {
        match checks.iter().find(|c| c.id == instance.id) {
            Some(c) if c.system == "impaired" || c.instance == "impaired" => {
                return DriverStatus::Failed(format!(
                    "instance {} failed its status checks (system {}, instance {})",
                    instance.id, c.system, c.instance
                ));
            }
            Some(c) if passed(&c.system) && passed(&c.instance) => {}
            // Initializing, insufficient data, or not listed yet.
            _ => return DriverStatus::InProgress,
        }
    }
    DriverStatus::Ready
}

/// Where instances in these states are: all stopped, all running, on their way, or
/// split (drift: some stopped and some running with none moving).
pub fn observed(found: &[Instance]) -> Observed {
    use ComponentState::{Cold, Hot, Warm};
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for instance in found {
        *counts.entry(instance.state.as_str()).or_default() += 1;
    }
    let actual = counts.iter().map(|(state, n)| format!("{n} {state}")).collect::<Vec<_>>().join(", ");
    let all = |state: &str| counts.len() == 1 && counts.contains_key(state);
    if all("stopped") {
        Observed::at(&[Cold, Warm], actual)
    } else if all("running") {
        Observed::at(&[Hot], actual)
    } else if counts.contains_key("pending") || counts.contains_key("stopping") {
        Observed::moving(actual)
    } else {
        Observed::at(&[], actual)
    }
}

impl AwsKind for Ec2Instances {
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceStatus",
            "ec2:StartInstances",
            "ec2:StopInstances",
            "ec2:CreateTags",
        ]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        let component = request.component;
        let found = match instances(aws, self).await? {
            Found::All(found) => found,
            Found::Missing(what) => return Err(missing(component, &what)),
        };
        may_switch(component, &found)?;
        let plan = plan(&found, request.target);
        if let Plan::Busy(why) = &plan {
            return Err(DriverError::Busy(format!("{}: {why}", component.id)));
        }
        // Tagged first, so that `status --orphans` finds them; the component tag is
        // never written (`may_switch` checked it names the component).
        let untagged: Vec<String> = found
            .iter()
            .filter(|i| {
                !aws.missing_tags(component, i.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))).is_empty()
            })
            .map(|i| i.id.clone())
            .collect();
        if !untagged.is_empty() {
            let ours: Vec<(&str, &str)> =
                aws.tags(component).into_iter().filter(|(key, _)| *key != COMPONENT_TAG).collect();
            aws.ec2.create_tags(&untagged, &ours).await.map_err(ec2_error)?;
        }
        match plan {
            Plan::Start(ids) if !ids.is_empty() => aws.ec2.start_instances(&ids).await.map_err(ec2_error),
            Plan::Stop(ids) if !ids.is_empty() => aws.ec2.stop_instances(&ids).await.map_err(ec2_error),
            _ => Ok(()),
        }
    }

    async fn status(
        &self,
        aws: &Clients,
        component: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        let found = match instances(aws, self).await? {
            Found::All(found) => found,
            Found::Missing(what) => {
                return Ok(DriverStatus::Failed(format!(
                    "{}: {what}",
                    component.driver.as_kind().resource()
                )));
            }
        };
        let all_running = found.iter().all(|i| i.state == "running");
        let checks = if target == ComponentState::Hot && all_running {
            let ids: Vec<String> = found.iter().map(|i| i.id.clone()).collect();
            Some(aws.ec2.describe_instance_status(&ids).await.map_err(ec2_error)?)
        } else {
            None
        };
        Ok(progress(&found, target, checks.as_deref()))
    }

    async fn observe(&self, aws: &Clients, _: &Component) -> Result<Observed, DriverError> {
        Ok(match instances(aws, self).await? {
            Found::All(found) => observed(&found),
            Found::Missing(what) => Observed::absent(format!("{what} (deleted outside revscale?)")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::{Cold, Hot, Warm};

    fn at(states: &[&str]) -> Vec<Instance> {
        states
            .iter()
            .enumerate()
            .map(|(n, s)| Instance {
                id: format!("i-{n}"),
                state: (*s).into(),
                tags: BTreeMap::new(),
                lifecycle: None,
            })
            .collect()
    }

    fn checks(pairs: &[(&str, &str)]) -> Vec<StatusChecks> {
        pairs
            .iter()
            .enumerate()
            .map(|(n, (system, instance))| StatusChecks {
                id: format!("i-{n}"),
                system: (*system).into(),
                instance: (*instance).into(),
            })
            .collect()
    }

    #[test]
    fn hot_starts_only_the_stopped_instances_and_warm_stops_only_the_running_ones() {
        let found = at(&["stopped", "running", "pending"]);
        assert_eq!(plan(&found, Hot), Plan::Start(vec!["i-0".into()]));
        let found = at(&["running", "stopped", "stopping"]);
        assert_eq!(plan(&found, Warm), Plan::Stop(vec!["i-0".into()]));
        assert_eq!(plan(&at(&["running", "running"]), Hot), Plan::Start(vec![]), "nothing to do");
    }

    #[test]
    fn an_instance_moving_the_other_way_makes_the_step_busy() {
        assert!(
            matches!(plan(&at(&["stopped", "stopping"]), Hot), Plan::Busy(why) if why.contains("i-1 is stopping"))
        );
        assert!(matches!(plan(&at(&["pending"]), Cold), Plan::Busy(why) if why.contains("cannot stop")));
    }

    #[test]
    fn hot_is_ready_only_when_every_instance_runs_and_passed_both_checks() {
        let running = at(&["running", "running"]);
        assert_eq!(progress(&at(&["running", "pending"]), Hot, None), DriverStatus::InProgress);
        assert_eq!(
            progress(&running, Hot, Some(&checks(&[("ok", "ok"), ("ok", "initializing")]))),
            DriverStatus::InProgress
        );
        assert_eq!(
            progress(&running, Hot, Some(&checks(&[("ok", "ok")]))),
            DriverStatus::InProgress,
            "one not listed yet"
        );
        assert_eq!(
            progress(&running, Hot, Some(&checks(&[("ok", "ok"), ("not-applicable", "ok")]))),
            DriverStatus::Ready
        );
        match progress(&running, Hot, Some(&checks(&[("ok", "ok"), ("impaired", "ok")]))) {
            DriverStatus::Failed(why) => {
                assert!(why.contains("i-1") && why.contains("system impaired"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn warm_and_cold_are_ready_when_every_instance_is_stopped() {
        assert_eq!(progress(&at(&["stopped", "stopped"]), Warm, None), DriverStatus::Ready);
        assert_eq!(progress(&at(&["stopped", "stopping"]), Cold, None), DriverStatus::InProgress);
    }

    #[test]
    fn split_instances_are_drift_and_moving_ones_are_not() {
        assert_eq!(observed(&at(&["stopped", "stopped"])).states, [Cold, Warm]);
        assert_eq!(observed(&at(&["running"])).states, [Hot]);
        let split = observed(&at(&["running", "stopped"]));
        assert!(split.states.is_empty() && !split.moving, "{split:?}");
        assert_eq!(split.actual, "1 running, 1 stopped");
        let moving = observed(&at(&["running", "pending"]));
        assert!(moving.states.is_empty() && moving.moving, "{moving:?}");
    }

    #[test]
    fn an_instance_of_an_autoscaling_group_or_tagged_for_another_component_is_refused() {
        let c = revscale_engine::config::Component {
            id: revscale_engine::ComponentId::new("batch"),
            driver: Ec2Instances { instance_ids: vec!["i-12345678".into()], ..Default::default() }.into(),
            billing: revscale_engine::config::Billing::Aws,
            hot_cost: revscale_engine::Money::zero(revscale_engine::Currency::EUR),
            warm_cost: revscale_engine::Money::zero(revscale_engine::Currency::EUR),
            depends_on: vec![],
            level: 1,
        };
        let mut found = at(&["running"]);
        found[0].tags.insert(COMPONENT_TAG.into(), "batch".into());
        assert_eq!(may_switch(&c, &found), Ok(()));
        found[0].tags.insert(AUTOSCALING_TAG.into(), "workers".into());
        match may_switch(&c, &found) {
            Err(DriverError::Rejected(why)) => assert!(why.contains("kind autoscaling_group"), "{why}"),
            other => panic!("{other:?}"),
        }
        let mut other = at(&["running"]);
        other[0].tags.insert(COMPONENT_TAG.into(), "web".into());
        match may_switch(&c, &other) {
            Err(DriverError::Rejected(why)) => {
                assert!(why.contains("not batch") && why.contains("(instance i-0)"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}
