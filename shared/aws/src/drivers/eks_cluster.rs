//! `eks_cluster`: COLD = no cluster (`DeleteCluster`); WARM and HOT = control plane
//! ACTIVE (`CreateCluster`).
//!
//! The cluster is created with access entries as its only authentication
//! (`authenticationMode: API`) and without an administrator for its creator: once it is
//! ACTIVE, the provisioner's role gets an access entry with the edit policy and the
//! evaluator's the view policy, both scoped to the namespaces of the configuration's
//! workloads, and nothing cluster-wide.

use aws_sdk_eks::types::{
    AccessScope, AccessScopeType, AuthenticationMode, ClusterStatus, CreateAccessConfigRequest,
    VpcConfigRequest,
};
use revscale_engine::config::Component;
use revscale_engine::drivers::EksCluster;
use revscale_engine::model::ComponentState;
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients, is_code, sdk_error};

/// EKS's codes for "another operation is under way".
pub(crate) const BUSY: &[&str] = &["ResourceInUseException", "ConflictException"];
pub(crate) const NOT_FOUND: &[&str] = &["ResourceNotFoundException"];

/// EKS's access policies revscale's roles get, in the workloads' namespaces.
pub const EDIT_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy";
pub const VIEW_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";

/// The roles that get access entries on the cluster revscale creates: the provisioner's
/// (`PROVISION_ROLE_ARN`, to scale and apply workloads) and the evaluator's
/// (`EVALUATE_ROLE_ARN`, whose daily drift check reads them). The template sets both;
/// without them (a local run) no entry is made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterAccess {
    pub provisioner: Option<String>,
    pub evaluator: Option<String>,
}

impl ClusterAccess {
    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &crate::env::Vars<F>) -> Self {
        ClusterAccess {
            provisioner: vars.optional("PROVISION_ROLE_ARN"),
            evaluator: vars.optional("EVALUATE_ROLE_ARN"),
        }
    }

    /// Each role with the policy it gets.
    fn grants(&self) -> impl Iterator<Item = (&str, &'static str)> {
        [(self.provisioner.as_deref(), EDIT_POLICY), (self.evaluator.as_deref(), VIEW_POLICY)]
            .into_iter()
            .filter_map(|(role, policy)| role.map(|r| (r, policy)))
    }
}

/// Gives revscale's roles their access entries on `spec`'s cluster (ACTIVE), each
/// policy scoped to the workloads' namespaces. Idempotent: an entry that exists is kept,
/// and associating a policy again sets its scope to today's namespaces.
pub async fn grant_access(aws: &Clients, spec: &EksCluster) -> Result<(), DriverError> {
    if spec.workload_namespaces.is_empty() {
        return Ok(());
    }
    let scope = AccessScope::builder()
        .r#type(AccessScopeType::Namespace)
        .set_namespaces(Some(spec.workload_namespaces.clone()))
        .build();
    for (role, policy) in aws.cluster_access.grants() {
        let created =
            aws.eks.create_access_entry().cluster_name(&spec.cluster_name).principal_arn(role).send().await;
        match created {
            Ok(_) => {}
            // The entry exists (made by an earlier step, or by hand): its policy is set below.
            Err(e) if is_code(&e, &["ResourceInUseException"]) => {}
            Err(e) => return Err(sdk_error(e, &["ConflictException"])),
        }
        aws.eks
            .associate_access_policy()
            .cluster_name(&spec.cluster_name)
            .principal_arn(role)
            .policy_arn(policy)
            .access_scope(scope.clone())
            .send()
            .await
            .map_err(|e| sdk_error(e, BUSY))?;
    }
    Ok(())
}

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
        &[
            "eks:CreateCluster",
            "eks:DescribeCluster",
            "eks:DeleteCluster",
            "eks:TagResource",
            "eks:CreateAccessEntry",
            "eks:AssociateAccessPolicy",
            "iam:PassRole",
        ]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        let found = cluster(aws, &self.cluster_name).await?;
        let status = found.as_ref().and_then(|c| c.status.clone());
        match (request.target, found.is_some()) {
            (ComponentState::Cold, true) => {
                aws.eks
                    .delete_cluster()
                    .name(&self.cluster_name)
                    .send()
                    .await
                    .map_err(|e| sdk_error(e, BUSY))?;
            }
            // ACTIVE (the step after the one that created it: WARM -> HOT, or any step
            // of a later run): the roles' access, for today's namespaces.
            (ComponentState::Warm | ComponentState::Hot, true) if status == Some(ClusterStatus::Active) => {
                grant_access(aws, self).await?;
            }
            (ComponentState::Warm | ComponentState::Hot, false) => {
                let vpc = VpcConfigRequest::builder()
                    .set_subnet_ids(Some(self.subnet_ids.clone()))
                    .set_security_group_ids(Some(self.security_group_ids.clone()))
                    .build();
                let tags =
                    aws.tags(request.component).into_iter().map(|(k, v)| (k.into(), v.into())).collect();
                // Access entries only, and no administrator for the creator: who may
                // do what inside is granted, namespace by namespace, once it is ACTIVE.
                let access = CreateAccessConfigRequest::builder()
                    .authentication_mode(AuthenticationMode::Api)
                    .bootstrap_cluster_creator_admin_permissions(false)
                    .build();
                aws.eks
                    .create_cluster()
                    .name(&self.cluster_name)
                    .role_arn(&self.role_arn)
                    .access_config(access)
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
