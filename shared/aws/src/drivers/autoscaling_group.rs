//! `autoscaling_group`: an EC2 Auto Scaling group the user owns. WARM and COLD = min =
//! desired = 0, max kept (so that HOT restores exactly what was saved); HOT = the
//! configured min/desired/max, else the ones saved when it last left HOT
//! (`UpdateAutoScalingGroup`). revscale never creates nor deletes the group.
//!
//! Ready when as many instances are InService as desired (and, at 0, none is still
//! launching or terminating).
//!
//! `apply` switches only a group whose `revscale-component` tag names the component
//! ([`verify_component_tag`], on the group's `Tags`), and adds only the tags of
//! revscale's it lacks, never rewriting the component tag.
//!
//! The three calls go through the signed Query client ([`crate::query`] says why not
//! the SDK's client).

use revscale_engine::config::{Component, Kind};
use revscale_engine::drivers::AutoscalingGroup;
use revscale_engine::model::{Capacity, ComponentState};
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients, missing, query_error, verify_component_tag};
use crate::query::{self, child_text, child_value, member_list, members};

/// Another scaling activity or update is under way: this call changed nothing.
const BUSY: &[&str] = &["ScalingActivityInProgress", "ResourceInUse"];

/// What `Status` says of a group being deleted.
const DELETING: &str = "Delete in progress";

/// A group as `DescribeAutoScalingGroups` answers: what the pure functions read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub min_size: u32,
    pub desired_capacity: u32,
    pub max_size: u32,
    /// Each instance's lifecycle state (`InService`, `Pending`, `Terminating:Wait`...).
    pub instances: Vec<String>,
    pub tags: Vec<(String, String)>,
    /// Set only while the group is being deleted.
    pub status: Option<String>,
}

/// The groups of a `DescribeAutoScalingGroups` answer.
pub fn parse_groups(xml: &str) -> Result<Vec<Group>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let result = query::result(&doc, "DescribeAutoScalingGroups")?;
    let size = |node, name: &str| -> Result<u32, String> {
        let text = child_text(node, name).ok_or_else(|| format!("a group without <{name}>"))?;
        text.parse().map_err(|_| format!("<{name}>{text}</{name}> is no size"))
    };
    members(result, "AutoScalingGroups", "member")
        .map(|g| {
            Ok(Group {
                name: child_text(g, "AutoScalingGroupName").ok_or("a group without a name")?.to_owned(),
                min_size: size(g, "MinSize")?,
                desired_capacity: size(g, "DesiredCapacity")?,
                max_size: size(g, "MaxSize")?,
                instances: members(g, "Instances", "member")
                    .filter_map(|i| child_text(i, "LifecycleState"))
                    .map(str::to_owned)
                    .collect(),
                tags: members(g, "Tags", "member")
                    .filter_map(|t| {
                        Some((
                            child_text(t, "Key")?.to_owned(),
                            child_value(t, "Value").unwrap_or("").to_owned(),
                        ))
                    })
                    .collect(),
                status: child_text(g, "Status").filter(|s| !s.is_empty()).map(str::to_owned),
            })
        })
        .collect()
}

/// The group as Auto Scaling describes it, or `None` when it does not exist (an empty
/// list, not an error) or is being deleted.
async fn group(aws: &Clients, spec: &AutoscalingGroup) -> Result<Option<Group>, DriverError> {
    const ACTION: &str = "DescribeAutoScalingGroups";
    let params = member_list("AutoScalingGroupNames", std::slice::from_ref(&spec.group_name));
    let xml = aws.autoscaling.call(ACTION, &params).await.map_err(|e| query_error(e, BUSY))?;
    let groups =
        parse_groups(&xml).map_err(|what| query_error(aws.autoscaling.bad_answer(ACTION, what), &[]))?;
    Ok(groups
        .into_iter()
        .find(|g| g.name == spec.group_name)
        .filter(|g| g.status.as_deref() != Some(DELETING)))
}

impl AwsKind for AutoscalingGroup {
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:UpdateAutoScalingGroup",
            "autoscaling:CreateOrUpdateTags",
        ]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        let Some(found) = group(aws, self).await? else {
            return Err(missing(request.component));
        };
        let current = capacity_of(&found);
        let Some(wanted) = sizes_for(request.target, request.hot_capacity(), current) else {
            return Err(DriverError::Rejected(format!(
                "{}: no HOT sizes for {}: set min_size, desired_capacity and max_size in the configuration, \
                 or let revscale see it HOT once",
                request.component.id,
                self.resource()
            )));
        };
        let existing = found.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        verify_component_tag(request.component, existing.clone())?;
        // Tagged first with what it lacks, so that `status --orphans` finds it; the
        // sizes are the last call, so a refused one leaves the group as it was.
        let lacking = aws.missing_tags(request.component, existing);
        if !lacking.is_empty() {
            let mut params = Vec::new();
            for (n, (key, value)) in lacking.into_iter().enumerate() {
                let tag = format!("Tags.member.{}", n + 1);
                params.extend([
                    (format!("{tag}.ResourceId"), self.group_name.clone()),
                    (format!("{tag}.ResourceType"), "auto-scaling-group".to_owned()),
                    (format!("{tag}.Key"), key.to_owned()),
                    (format!("{tag}.Value"), value.to_owned()),
                    (format!("{tag}.PropagateAtLaunch"), "false".to_owned()),
                ]);
            }
            aws.autoscaling.call("CreateOrUpdateTags", &params).await.map_err(|e| query_error(e, BUSY))?;
        }
        if wanted == current {
            return Ok(());
        }
        let mut params = vec![
            ("AutoScalingGroupName".to_owned(), self.group_name.clone()),
            ("DesiredCapacity".to_owned(), wanted.desired.to_string()),
        ];
        params.extend(wanted.min.map(|min| ("MinSize".to_owned(), min.to_string())));
        params.extend(wanted.max.map(|max| ("MaxSize".to_owned(), max.to_string())));
        aws.autoscaling.call("UpdateAutoScalingGroup", &params).await.map_err(|e| query_error(e, BUSY))?;
        Ok(())
    }

    async fn status(
        &self,
        aws: &Clients,
        _: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        Ok(match group(aws, self).await? {
            Some(found) => group_progress(&found, target),
            None => DriverStatus::Failed(format!(
                "{} does not exist (deleted outside revscale?)",
                self.resource()
            )),
        })
    }

    async fn observe(&self, aws: &Clients, _: &Component) -> Result<Observed, DriverError> {
        Ok(match group(aws, self).await? {
            Some(found) => group_observed(&found),
            None => Observed::absent(format!("no group {} (deleted outside revscale?)", self.group_name)),
        })
    }
}

/// The sizes `target` asks of a group now at `current`: WARM and COLD min = desired =
/// 0 with max kept; HOT the given capacity (configured, else saved) exactly, a size it
/// lacks kept as it is. `None` when HOT has no capacity (never 0).
pub fn sizes_for(target: ComponentState, hot: Option<Capacity>, current: Capacity) -> Option<Capacity> {
    match target {
        ComponentState::Hot => {
            let hot = hot.filter(|c| c.desired > 0)?;
            let max = hot.max.or(current.max).map(|max| max.max(hot.desired));
            let min = hot.min.or(current.min).map(|min| min.min(hot.desired));
            Some(Capacity { desired: hot.desired, min, max })
        }
        _ => Some(Capacity { desired: 0, min: Some(0), max: current.max }),
    }
}

/// min / desired / max as the group reports them.
pub fn capacity_of(group: &Group) -> Capacity {
    Capacity { desired: group.desired_capacity, min: Some(group.min_size), max: Some(group.max_size) }
}

/// (InService, launching or terminating) instances.
fn instances(group: &Group) -> (u32, u32) {
    let mut counts = (0, 0);
    for state in &group.instances {
        match state.as_str() {
            "InService" => counts.0 += 1,
            s if ["Pending", "Terminating", "Detaching", "EnteringStandby"]
                .iter()
                .any(|p| s.starts_with(p)) =>
            {
                counts.1 += 1
            }
            _ => {}
        }
    }
    counts
}

fn stopped(group: &Group) -> bool {
    let c = capacity_of(group);
    c.desired == 0 && c.min == Some(0) && instances(group) == (0, 0)
}

fn full(group: &Group) -> bool {
    let desired = capacity_of(group).desired;
    desired > 0 && instances(group).0 == desired
}

/// "min 0 / desired 0 / max 4, 0 InService".
fn describe(group: &Group) -> String {
    let (in_service, moving) = instances(group);
    let moving = match moving {
        0 => String::new(),
        n => format!(", {n} launching or terminating"),
    };
    format!("{}, {in_service} InService{moving}", capacity_of(group))
}

/// Progress of an existing group towards `target`.
pub fn group_progress(group: &Group, target: ComponentState) -> DriverStatus {
    let ready = match target {
        ComponentState::Hot => full(group),
        _ => stopped(group),
    };
    // Sizes not updated yet, or instances still launching or terminating.
    if ready { DriverStatus::Ready } else { DriverStatus::InProgress }
}

/// Where an existing group is, with its sizes (what HOT restores).
pub fn group_observed(group: &Group) -> Observed {
    let actual = describe(group);
    let observed = if stopped(group) {
        Observed::at(&[ComponentState::Cold, ComponentState::Warm], actual)
    } else if full(group) {
        Observed::at(&[ComponentState::Hot], actual)
    } else {
        Observed::moving(actual)
    };
    observed.with_capacity(capacity_of(group))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::{Cold, Hot, Warm};

    fn group(min: u32, desired: u32, max: u32, states: &[&str]) -> Group {
        Group {
            name: "workers".into(),
            min_size: min,
            desired_capacity: desired,
            max_size: max,
            instances: states.iter().map(|s| (*s).to_owned()).collect(),
            ..Group::default()
        }
    }

    fn sizes(min: u32, desired: u32, max: u32) -> Capacity {
        Capacity { desired, min: Some(min), max: Some(max) }
    }

    const IN_SERVICE: &str = "InService";
    const PENDING: &str = "Pending";
    const TERMINATED: &str = "Terminated";
    const TERMINATING_WAIT: &str = "Terminating:Wait";

    #[test]
    fn a_group_with_every_desired_instance_in_service_is_hot() {
        let g = group(1, 2, 4, &[IN_SERVICE, IN_SERVICE]);
        assert_eq!(group_progress(&g, Hot), DriverStatus::Ready);
        let observed = group_observed(&g);
        assert_eq!(observed.states, [Hot]);
        assert_eq!(observed.capacity, Some(sizes(1, 2, 4)));
        assert_eq!(observed.actual, "min 1 / desired 2 / max 4, 2 InService");
    }

    #[test]
    fn a_group_still_launching_instances_is_not_ready() {
        let g = group(1, 2, 4, &[IN_SERVICE, PENDING]);
        assert_eq!(group_progress(&g, Hot), DriverStatus::InProgress);
        let observed = group_observed(&g);
        assert!(observed.states.is_empty(), "{observed:?}");
        assert_eq!(observed.actual, "min 1 / desired 2 / max 4, 1 InService, 1 launching or terminating");
        assert_eq!(observed.capacity, Some(sizes(1, 2, 4)), "what leaving HOT now would save");
        assert_eq!(
            group_progress(&group(0, 0, 4, &[]), Hot),
            DriverStatus::InProgress,
            "update not seen yet"
        );
    }

    #[test]
    fn a_group_at_zero_with_no_instance_left_is_warm_and_cold() {
        let g = group(0, 0, 4, &[TERMINATED]);
        assert_eq!(group_progress(&g, Warm), DriverStatus::Ready);
        assert_eq!(group_progress(&g, Cold), DriverStatus::Ready);
        assert_eq!(group_observed(&g).states, [Cold, Warm]);
    }

    #[test]
    fn a_group_still_terminating_instances_is_not_warm_yet() {
        for g in [
            group(0, 0, 4, &[TERMINATING_WAIT]),
            group(0, 0, 4, &[IN_SERVICE]),
            group(1, 1, 4, &[IN_SERVICE]),
        ] {
            assert_eq!(group_progress(&g, Warm), DriverStatus::InProgress, "{g:?}");
        }
        assert!(group_observed(&group(0, 0, 4, &[TERMINATING_WAIT])).states.is_empty());
    }

    #[test]
    fn a_group_short_of_instances_after_a_scale_up_is_moving() {
        let g = group(2, 3, 6, &[IN_SERVICE]);
        assert!(group_observed(&g).states.is_empty());
        assert_eq!(group_progress(&g, Hot), DriverStatus::InProgress);
    }

    #[test]
    fn warm_keeps_max_and_hot_restores_the_saved_sizes_exactly() {
        let now = sizes(2, 3, 6);
        assert_eq!(sizes_for(Warm, Some(now), now), Some(sizes(0, 0, 6)), "max kept");
        assert_eq!(sizes_for(Cold, None, now), Some(sizes(0, 0, 6)));
        assert_eq!(sizes_for(Hot, Some(now), sizes(0, 0, 6)), Some(now));
        assert_eq!(sizes_for(Hot, None, sizes(0, 0, 6)), None, "nothing to restore");
        assert_eq!(sizes_for(Hot, Some(sizes(0, 0, 6)), sizes(0, 0, 6)), None, "never 0 for HOT");
    }

    #[test]
    fn a_capacity_without_min_or_max_keeps_the_groups_own_within_desired() {
        let desired_only = Capacity { desired: 5, min: None, max: None };
        assert_eq!(sizes_for(Hot, Some(desired_only), sizes(0, 0, 4)), Some(sizes(0, 5, 5)));
        assert_eq!(sizes_for(Hot, Some(desired_only), sizes(1, 0, 10)), Some(sizes(1, 5, 10)));
    }
}

#[cfg(test)]
mod answers {
    use super::*;

    /// As the Auto Scaling API reference shows DescribeAutoScalingGroups' answer.
    const ANSWER: &str = r#"<DescribeAutoScalingGroupsResponse xmlns="https://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingGroupsResult>
    <AutoScalingGroups>
      <member>
        <AutoScalingGroupName>workers</AutoScalingGroupName>
        <MinSize>1</MinSize>
        <MaxSize>4</MaxSize>
        <DesiredCapacity>2</DesiredCapacity>
        <Instances>
          <member><InstanceId>i-1</InstanceId><LifecycleState>InService</LifecycleState><HealthStatus>Healthy</HealthStatus></member>
          <member><InstanceId>i-2</InstanceId><LifecycleState>Pending</LifecycleState><HealthStatus>Healthy</HealthStatus></member>
        </Instances>
        <Tags>
          <member><ResourceId>workers</ResourceId><ResourceType>auto-scaling-group</ResourceType><Key>revscale-component</Key><Value>workers</Value><PropagateAtLaunch>false</PropagateAtLaunch></member>
          <member><Key>empty</Key><Value/></member>
        </Tags>
      </member>
      <member>
        <AutoScalingGroupName>old</AutoScalingGroupName>
        <MinSize>0</MinSize><MaxSize>0</MaxSize><DesiredCapacity>0</DesiredCapacity>
        <Instances/><Tags/>
        <Status>Delete in progress</Status>
      </member>
    </AutoScalingGroups>
  </DescribeAutoScalingGroupsResult>
  <ResponseMetadata><RequestId>0b2dd4d6</RequestId></ResponseMetadata>
</DescribeAutoScalingGroupsResponse>"#;

    #[test]
    fn a_describe_answer_gives_each_groups_sizes_instances_tags_and_status() {
        let groups = parse_groups(ANSWER).unwrap();
        assert_eq!(groups.len(), 2);
        let workers = &groups[0];
        assert_eq!(capacity_of(workers), Capacity { desired: 2, min: Some(1), max: Some(4) });
        assert_eq!(workers.instances, ["InService", "Pending"]);
        assert_eq!(
            workers.tags,
            [("revscale-component".to_owned(), "workers".to_owned()), ("empty".to_owned(), String::new())]
        );
        assert_eq!(workers.status, None);
        assert_eq!(groups[1].status.as_deref(), Some(DELETING));
    }

    #[test]
    fn an_answer_of_another_shape_is_an_error_not_an_empty_list() {
        assert!(parse_groups("<ErrorResponse/>").is_err());
        let no_size = ANSWER.replace("<MinSize>1</MinSize>", "");
        assert!(parse_groups(&no_size).unwrap_err().contains("MinSize"));
        let bad_size = ANSWER.replace("<MaxSize>4</MaxSize>", "<MaxSize>-1</MaxSize>");
        assert!(parse_groups(&bad_size).unwrap_err().contains("is no size"));
        let none = "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups/></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>";
        assert_eq!(parse_groups(none).unwrap(), []);
    }
}
