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

use aws_sdk_autoscaling::types::{AutoScalingGroup as Group, LifecycleState};
use revscale_engine::config::{Component, Kind};
use revscale_engine::drivers::AutoscalingGroup;
use revscale_engine::model::{Capacity, ComponentState};
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients, missing, sdk_error, verify_component_tag};

/// Another scaling activity or update is under way: this call changed nothing.
const BUSY: &[&str] = &["ScalingActivityInProgress", "ResourceInUse"];

/// What `Status` says of a group being deleted.
const DELETING: &str = "Delete in progress";

/// The group as Auto Scaling describes it, or `None` when it does not exist (an empty
/// list, not an error) or is being deleted.
async fn group(aws: &Clients, spec: &AutoscalingGroup) -> Result<Option<Group>, DriverError> {
    let out = aws
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&spec.group_name)
        .send()
        .await
        .map_err(|e| sdk_error(e, BUSY))?;
    Ok(out
        .auto_scaling_groups
        .unwrap_or_default()
        .into_iter()
        .find(|g| g.auto_scaling_group_name.as_deref() == Some(spec.group_name.as_str()))
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
        let existing = found.tags().iter().filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())));
        verify_component_tag(request.component, existing.clone())?;
        // Tagged first with what it lacks, so that `status --orphans` finds it; the
        // sizes are the last call, so a refused one leaves the group as it was.
        let lacking: Vec<_> = aws
            .missing_tags(request.component, existing)
            .into_iter()
            .map(|(key, value)| {
                aws_sdk_autoscaling::types::Tag::builder()
                    .resource_id(&self.group_name)
                    .resource_type("auto-scaling-group")
                    .key(key)
                    .value(value)
                    .propagate_at_launch(false)
                    .build()
            })
            .collect();
        if !lacking.is_empty() {
            aws.autoscaling
                .create_or_update_tags()
                .set_tags(Some(lacking))
                .send()
                .await
                .map_err(|e| sdk_error(e, BUSY))?;
        }
        if wanted == current {
            return Ok(());
        }
        let to_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        aws.autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(&self.group_name)
            .set_min_size(wanted.min.map(to_i32))
            .desired_capacity(to_i32(wanted.desired))
            .set_max_size(wanted.max.map(to_i32))
            .send()
            .await
            .map_err(|e| sdk_error(e, BUSY))?;
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
    let size = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    Capacity {
        desired: size(group.desired_capacity),
        min: Some(size(group.min_size)),
        max: Some(size(group.max_size)),
    }
}

/// (InService, launching or terminating) instances.
fn instances(group: &Group) -> (u32, u32) {
    let mut counts = (0, 0);
    for state in group.instances().iter().filter_map(|i| i.lifecycle_state.as_ref()) {
        match state {
            LifecycleState::InService => counts.0 += 1,
            s if ["Pending", "Terminating", "Detaching", "EnteringStandby"]
                .iter()
                .any(|p| s.as_str().starts_with(p)) =>
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
    use aws_sdk_autoscaling::types::Instance;

    fn group(min: i32, desired: i32, max: i32, states: &[LifecycleState]) -> Group {
        Group::builder()
            .auto_scaling_group_name("workers")
            .min_size(min)
            .desired_capacity(desired)
            .max_size(max)
            .set_instances(Some(
                states
                    .iter()
                    .enumerate()
                    .map(|(n, s)| {
                        Instance::builder().instance_id(format!("i-{n}")).lifecycle_state(s.clone()).build()
                    })
                    .collect(),
            ))
            .build()
    }

    fn sizes(min: u32, desired: u32, max: u32) -> Capacity {
        Capacity { desired, min: Some(min), max: Some(max) }
    }

    use LifecycleState::{InService, Pending, Terminated, TerminatingWait};

    #[test]
    fn a_group_with_every_desired_instance_in_service_is_hot() {
        let g = group(1, 2, 4, &[InService, InService]);
        assert_eq!(group_progress(&g, Hot), DriverStatus::Ready);
        let observed = group_observed(&g);
        assert_eq!(observed.states, [Hot]);
        assert_eq!(observed.capacity, Some(sizes(1, 2, 4)));
        assert_eq!(observed.actual, "min 1 / desired 2 / max 4, 2 InService");
    }

    #[test]
    fn a_group_still_launching_instances_is_not_ready() {
        let g = group(1, 2, 4, &[InService, Pending]);
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
        let g = group(0, 0, 4, &[Terminated]);
        assert_eq!(group_progress(&g, Warm), DriverStatus::Ready);
        assert_eq!(group_progress(&g, Cold), DriverStatus::Ready);
        assert_eq!(group_observed(&g).states, [Cold, Warm]);
    }

    #[test]
    fn a_group_still_terminating_instances_is_not_warm_yet() {
        for g in
            [group(0, 0, 4, &[TerminatingWait]), group(0, 0, 4, &[InService]), group(1, 1, 4, &[InService])]
        {
            assert_eq!(group_progress(&g, Warm), DriverStatus::InProgress, "{g:?}");
        }
        assert!(group_observed(&group(0, 0, 4, &[TerminatingWait])).states.is_empty());
    }

    #[test]
    fn a_group_short_of_instances_after_a_scale_up_is_moving() {
        let g = group(2, 3, 6, &[InService]);
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
