//! `eks_cluster`: COLD = no cluster (`DeleteCluster`); WARM and HOT = control plane
//! ACTIVE (`CreateCluster`).

use aws_sdk_eks::types::{ClusterStatus, VpcConfigRequest};
use revscale_engine::config::Component;
use revscale_engine::drivers::EksCluster;
use revscale_engine::model::ComponentState;
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients, is_code, sdk_error};

/// EKS's codes for "another operation is under way".
pub(crate) const BUSY: &[&str] = &["ResourceInUseException", "ConflictException"];
pub(crate) const NOT_FOUND: &[&str] = &["ResourceNotFoundException"];

/// The cluster as EKS describes it, or `None` when it does not exist.
async fn cluster(aws: &Clients, name: &str) -> Result<Option<aws_sdk_eks::types::Cluster>, DriverError> {
    match aws.eks.describe_cluster().name(name).send().await {
        Ok(out) => Ok(out.cluster),
        Err(e) if is_code(&e, NOT_FOUND) => Ok(None),
        Err(e) => Err(sdk_error(e, BUSY)),
    }
}

impl AwsKind for EksCluster {
    fn iam_actions(&self) -> &'static [&'static str] {
        &["eks:CreateCluster", "eks:DescribeCluster", "eks:DeleteCluster", "eks:TagResource", "iam:PassRole"]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        let exists = cluster(aws, &self.cluster_name).await?.is_some();
        match (request.target, exists) {
            (ComponentState::Cold, true) => {
                aws.eks
                    .delete_cluster()
                    .name(&self.cluster_name)
                    .send()
                    .await
                    .map_err(|e| sdk_error(e, BUSY))?;
            }
            (ComponentState::Warm | ComponentState::Hot, false) => {
                let vpc = VpcConfigRequest::builder()
                    .set_subnet_ids(Some(self.subnet_ids.clone()))
                    .set_security_group_ids(Some(self.security_group_ids.clone()))
                    .build();
                let tags =
                    aws.tags(request.component).into_iter().map(|(k, v)| (k.into(), v.into())).collect();
                aws.eks
                    .create_cluster()
                    .name(&self.cluster_name)
                    .role_arn(&self.role_arn)
                    .version(&self.kubernetes_version)
                    .resources_vpc_config(vpc)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(|e| sdk_error(e, BUSY))?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn status(
        &self,
        aws: &Clients,
        _: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        let status = cluster(aws, &self.cluster_name).await?.and_then(|c| c.status);
        Ok(cluster_progress(status.as_ref(), target))
    }

    async fn observe(&self, aws: &Clients, _: &Component) -> Result<Observed, DriverError> {
        Ok(match cluster(aws, &self.cluster_name).await?.and_then(|c| c.status) {
            None => Observed::at(&[ComponentState::Cold], "no cluster"),
            Some(ClusterStatus::Active) => {
                Observed::at(&[ComponentState::Warm, ComponentState::Hot], "cluster ACTIVE")
            }
            Some(other) => Observed::moving(format!("cluster {}", other.as_str())),
        })
    }
}

/// Maps an EKS cluster status to progress towards `target`.
pub fn cluster_progress(status: Option<&ClusterStatus>, target: ComponentState) -> DriverStatus {
    match (status, target) {
        (None, ComponentState::Cold) => DriverStatus::Ready,
        (None, _) => DriverStatus::Failed("the cluster does not exist".into()),
        (Some(ClusterStatus::Active), ComponentState::Warm | ComponentState::Hot) => DriverStatus::Ready,
        (Some(ClusterStatus::Creating | ClusterStatus::Updating | ClusterStatus::Pending), _) => {
            DriverStatus::InProgress
        }
        (Some(ClusterStatus::Deleting), ComponentState::Cold) => DriverStatus::InProgress,
        (Some(ClusterStatus::Deleting), _) => DriverStatus::Failed("the cluster is being deleted".into()),
        (Some(ClusterStatus::Failed), _) => DriverStatus::Failed("the cluster is FAILED".into()),
        // Still there after a delete was requested: the deletion has not begun yet.
        (Some(ClusterStatus::Active), _) => DriverStatus::InProgress,
        (Some(other), _) => DriverStatus::Failed(format!("unexpected cluster status {}", other.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::{Cold, Hot, Warm};

    #[test]
    fn every_cluster_status_maps_to_progress() {
        use ClusterStatus as C;
        assert_eq!(cluster_progress(None, Cold), DriverStatus::Ready);
        assert!(matches!(cluster_progress(None, Warm), DriverStatus::Failed(_)));
        assert_eq!(cluster_progress(Some(&C::Active), Warm), DriverStatus::Ready);
        assert_eq!(cluster_progress(Some(&C::Active), Hot), DriverStatus::Ready);
        assert_eq!(cluster_progress(Some(&C::Active), Cold), DriverStatus::InProgress);
        for s in [C::Creating, C::Updating, C::Pending] {
            assert_eq!(cluster_progress(Some(&s), Warm), DriverStatus::InProgress, "{s:?}");
        }
        assert_eq!(cluster_progress(Some(&C::Deleting), Cold), DriverStatus::InProgress);
        assert!(matches!(cluster_progress(Some(&C::Deleting), Warm), DriverStatus::Failed(_)));
        assert!(matches!(cluster_progress(Some(&C::Failed), Warm), DriverStatus::Failed(_)));
        assert!(matches!(cluster_progress(Some(&C::from("SOMETHING_NEW")), Warm), DriverStatus::Failed(_)));
    }
}
