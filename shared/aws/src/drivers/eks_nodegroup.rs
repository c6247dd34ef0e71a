//! `eks_nodegroup`: COLD = no node group (`DeleteNodegroup`); WARM = min = desired = 0;
//! HOT = the configured min / desired / max (`UpdateNodegroupConfig`).

use aws_sdk_eks::types::{NodegroupScalingConfig, NodegroupStatus};
use revscale_engine::config::Component;
use revscale_engine::drivers::EksNodegroup;
use revscale_engine::model::{Capacity, ComponentState};
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::eks_cluster::{BUSY, NOT_FOUND};
use super::{AwsKind, Clients, is_code, sdk_error};

/// The node group as EKS describes it, or `None` when it (or its cluster) does not
/// exist.
async fn nodegroup(
    aws: &Clients,
    spec: &EksNodegroup,
) -> Result<Option<aws_sdk_eks::types::Nodegroup>, DriverError> {
    match aws
        .eks
        .describe_nodegroup()
        .cluster_name(&spec.cluster_name)
        .nodegroup_name(&spec.nodegroup_name)
        .send()
        .await
    {
        Ok(out) => Ok(out.nodegroup),
        Err(e) if is_code(&e, NOT_FOUND) => Ok(None),
        Err(e) => Err(sdk_error(e, BUSY)),
    }
}

fn sizes_of(nodegroup: &aws_sdk_eks::types::Nodegroup) -> Option<(i32, i32, i32)> {
    nodegroup
        .scaling_config
        .as_ref()
        .map(|s| (s.min_size.unwrap_or(0), s.desired_size.unwrap_or(0), s.max_size.unwrap_or(0)))
}

impl AwsKind for EksNodegroup {
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "eks:CreateNodegroup",
            "eks:DescribeNodegroup",
            "eks:UpdateNodegroupConfig",
            "eks:DeleteNodegroup",
            "eks:TagResource",
            "iam:PassRole",
        ]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        let exists = nodegroup(aws, self).await?.is_some();
        let Some((min, desired, max)) = nodegroup_sizes(self, request.target) else {
            if exists {
                aws.eks
                    .delete_nodegroup()
                    .cluster_name(&self.cluster_name)
                    .nodegroup_name(&self.nodegroup_name)
                    .send()
                    .await
                    .map_err(|e| sdk_error(e, BUSY))?;
            }
            return Ok(());
        };
        let scaling =
            NodegroupScalingConfig::builder().min_size(min).desired_size(desired).max_size(max).build();
        if exists {
            aws.eks
                .update_nodegroup_config()
                .cluster_name(&self.cluster_name)
                .nodegroup_name(&self.nodegroup_name)
                .scaling_config(scaling)
                .send()
                .await
                .map_err(|e| sdk_error(e, BUSY))?;
        } else {
            aws.eks
                .create_nodegroup()
                .cluster_name(&self.cluster_name)
                .nodegroup_name(&self.nodegroup_name)
                .node_role(&self.node_role_arn)
                .set_subnets(Some(self.subnet_ids.clone()))
                .set_instance_types(Some(self.instance_types.clone()))
                .scaling_config(scaling)
                .set_tags(Some(
                    aws.tags(request.component).into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
                ))
                .send()
                .await
                .map_err(|e| sdk_error(e, BUSY))?;
        }
        Ok(())
    }

    async fn status(
        &self,
        aws: &Clients,
        _: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        let found = nodegroup(aws, self).await?;
        let status = found.as_ref().and_then(|n| n.status.clone());
        let sizes = found.as_ref().and_then(sizes_of);
        Ok(nodegroup_progress(status.as_ref(), sizes, nodegroup_sizes(self, target), target))
    }

    async fn observe(&self, aws: &Clients, _: &Component) -> Result<Observed, DriverError> {
        let Some(found) = nodegroup(aws, self).await? else {
            return Ok(Observed::at(&[ComponentState::Cold], "no node group"));
        };
        let sizes = sizes_of(&found).unwrap_or_default();
        let capacity = Capacity {
            desired: sizes.1.max(0) as u32,
            min: Some(sizes.0.max(0) as u32),
            max: Some(sizes.2.max(0) as u32),
        };
        let actual = format!("node group {}, {capacity}", found.status.as_ref().map_or("?", |s| s.as_str()));
        let observed = match found.status {
            Some(NodegroupStatus::Active) if capacity.is_zero() => {
                Observed::at(&[ComponentState::Warm], actual)
            }
            // Any size above 0 is HOT: cluster-autoscaler moves desired within min and
            // max, and that is not drift.
            Some(NodegroupStatus::Active) => Observed::at(&[ComponentState::Hot], actual),
            _ => Observed::moving(actual),
        };
        Ok(observed.with_capacity(capacity))
    }
}

/// The (min, desired, max) a node group must reach for `target`.
pub fn nodegroup_sizes(spec: &EksNodegroup, target: ComponentState) -> Option<(i32, i32, i32)> {
    let max = spec.max_size.max(1) as i32;
    match target {
        ComponentState::Hot => Some((spec.min_size as i32, spec.desired_size as i32, max)),
        ComponentState::Warm => Some((0, 0, max)),
        _ => None,
    }
}

/// Maps a node group's status and sizes to progress towards `target`.
pub fn nodegroup_progress(
    status: Option<&NodegroupStatus>,
    sizes: Option<(i32, i32, i32)>,
    wanted: Option<(i32, i32, i32)>,
    target: ComponentState,
) -> DriverStatus {
    match (status, target) {
        (None, ComponentState::Cold) => DriverStatus::Ready,
        (None, _) => DriverStatus::Failed("the node group does not exist".into()),
        (Some(NodegroupStatus::Creating | NodegroupStatus::Updating), _) => DriverStatus::InProgress,
        (Some(NodegroupStatus::Deleting), ComponentState::Cold) => DriverStatus::InProgress,
        (Some(NodegroupStatus::Deleting), _) => {
            DriverStatus::Failed("the node group is being deleted".into())
        }
        (Some(NodegroupStatus::CreateFailed), _) => DriverStatus::Failed("node group CREATE_FAILED".into()),
        (Some(NodegroupStatus::DeleteFailed), _) => DriverStatus::Failed("node group DELETE_FAILED".into()),
        (Some(NodegroupStatus::Degraded), _) => DriverStatus::Failed("node group DEGRADED".into()),
        (Some(NodegroupStatus::Active), ComponentState::Cold) => DriverStatus::InProgress,
        (Some(NodegroupStatus::Active), _) => {
            if sizes == wanted {
                DriverStatus::Ready
            } else {
                // The update request may not be visible yet.
                DriverStatus::InProgress
            }
        }
        (Some(other), _) => DriverStatus::Failed(format!("unexpected node group status {}", other.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::{Cold, Hot, Warm};

    #[test]
    fn every_nodegroup_status_maps_to_progress() {
        use NodegroupStatus as N;
        let hot = Some((2, 2, 4));
        let warm = Some((0, 0, 4));
        assert_eq!(nodegroup_progress(None, None, None, Cold), DriverStatus::Ready);
        assert!(matches!(nodegroup_progress(None, None, hot, Hot), DriverStatus::Failed(_)));
        assert_eq!(nodegroup_progress(Some(&N::Active), hot, hot, Hot), DriverStatus::Ready);
        assert_eq!(
            nodegroup_progress(Some(&N::Active), hot, warm, Warm),
            DriverStatus::InProgress,
            "still scaled up"
        );
        assert_eq!(nodegroup_progress(Some(&N::Active), warm, warm, Warm), DriverStatus::Ready);
        assert_eq!(nodegroup_progress(Some(&N::Active), warm, None, Cold), DriverStatus::InProgress);
        for s in [N::Creating, N::Updating] {
            assert_eq!(nodegroup_progress(Some(&s), None, hot, Hot), DriverStatus::InProgress);
        }
        assert_eq!(nodegroup_progress(Some(&N::Deleting), None, None, Cold), DriverStatus::InProgress);
        for s in [N::Deleting, N::CreateFailed, N::DeleteFailed, N::Degraded, N::from("NEW")] {
            assert!(matches!(nodegroup_progress(Some(&s), None, hot, Hot), DriverStatus::Failed(_)), "{s:?}");
        }
    }

    #[test]
    fn node_group_sizes_follow_the_state() {
        let spec = EksNodegroup {
            cluster_name: "c".into(),
            nodegroup_name: "n".into(),
            node_role_arn: "r".into(),
            subnet_ids: vec![],
            instance_types: vec![],
            min_size: 2,
            desired_size: 3,
            max_size: 5,
        };
        assert_eq!(nodegroup_sizes(&spec, Hot), Some((2, 3, 5)));
        assert_eq!(nodegroup_sizes(&spec, Warm), Some((0, 0, 5)), "the ADR's 'deployed, replicas 0'");
        assert_eq!(nodegroup_sizes(&spec, Cold), None);
    }
}
