//! Component drivers on AWS, behind the engine's `ComponentDriver` port.
//!
//! | driver | COLD | WARM | HOT |
//! | --- | --- | --- | --- |
//! | `eks_cluster` | no cluster (`DeleteCluster`) | control plane ACTIVE (`CreateCluster`) | same as WARM |
//! | `eks_nodegroup` | no node group (`DeleteNodegroup`) | node group with min = desired = 0 | the configured min / desired / max (`UpdateNodegroupConfig`) |
//! | `ssm_flag` | parameter = `off` | parameter = `warm` | parameter = `on` |
//! | `always_on` | never switched | never switched | always |
//!
//! `apply` starts the change and returns at once; `status` reads where the resource is.
//! Waiting is the state machine's job (its Wait state), never a sleep in a Lambda.

use aws_sdk_eks::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_eks::types::{ClusterStatus, NodegroupScalingConfig, NodegroupStatus, VpcConfigRequest};
use revscale_engine::config::{Component, DriverSpec};
use revscale_engine::model::ComponentState;
use revscale_engine::ports::{ComponentDriver, DriverError, DriverStatus};

/// What every resource a driver creates carries: `revscale status --orphans` lists by
/// the first, and the second names the component (and is the cost allocation tag).
pub const MANAGED_TAG: (&str, &str) = ("revscale:managed", "true");
pub const COMPONENT_TAG: &str = "revscale-component";
/// The stack whose provisioner made the resource, so that two stacks in one account
/// do not take each other's resources for orphans.
pub const STACK_TAG: &str = "revscale:stack";

pub struct AwsDrivers {
    eks: aws_sdk_eks::Client,
    ssm: aws_sdk_ssm::Client,
    stack: Option<String>,
}

impl AwsDrivers {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        AwsDrivers { eks: aws_sdk_eks::Client::new(sdk), ssm: aws_sdk_ssm::Client::new(sdk), stack: None }
    }

    /// Tags what the drivers create with the stack's name too.
    pub fn for_stack(mut self, stack: Option<String>) -> Self {
        self.stack = stack;
        self
    }

    /// Every tag a created resource carries.
    fn tags<'a>(&'a self, component: &'a Component) -> Vec<(&'a str, &'a str)> {
        let mut tags = vec![MANAGED_TAG, (COMPONENT_TAG, component.id.as_str())];
        if let Some(stack) = &self.stack {
            tags.push((STACK_TAG, stack.as_str()));
        }
        tags
    }

    /// The cluster as EKS describes it, or `None` when it does not exist.
    async fn cluster(&self, name: &str) -> Result<Option<aws_sdk_eks::types::Cluster>, DriverError> {
        match self.eks.describe_cluster().name(name).send().await {
            Ok(out) => Ok(out.cluster),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// The node group as EKS describes it, or `None` when it (or its cluster) does not
    /// exist.
    async fn nodegroup(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<Option<aws_sdk_eks::types::Nodegroup>, DriverError> {
        match self.eks.describe_nodegroup().cluster_name(cluster).nodegroup_name(name).send().await {
            Ok(out) => Ok(out.nodegroup),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(sdk_error(e)),
        }
    }
}

/// The flag value the application reads for each state.
pub fn flag_value(target: ComponentState) -> &'static str {
    match target {
        ComponentState::Hot => "on",
        ComponentState::Warm => "warm",
        _ => "off",
    }
}

fn sdk_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E, aws_sdk_eks::config::http::HttpResponse>,
) -> DriverError {
    // A 5xx is the service's own trouble, whatever its error code says.
    let server_side = e.raw_response().is_some_and(|r| r.status().is_server_error());
    let transient = server_side
        || matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_))
        || matches!(
            e.code(),
            Some(
                "ThrottlingException"
                    | "TooManyRequestsException"
                    | "ServerException"
                    | "ServiceUnavailableException"
            )
        );
    let message = DisplayErrorContext(&e).to_string();
    if transient {
        DriverError::Transient(message)
    } else if matches!(e.code(), Some("ResourceInUseException" | "ConflictException")) {
        DriverError::Busy(message)
    } else {
        DriverError::Rejected(message)
    }
}

fn is_not_found<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e.code(), Some("ResourceNotFoundException" | "ParameterNotFound"))
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

/// The (min, desired, max) a node group must reach for `target`.
pub fn nodegroup_sizes(spec: &DriverSpec, target: ComponentState) -> Option<(i32, i32, i32)> {
    let DriverSpec::EksNodegroup { min_size, desired_size, max_size, .. } = spec else { return None };
    let max = (*max_size).max(1) as i32;
    match target {
        ComponentState::Hot => Some((*min_size as i32, *desired_size as i32, max)),
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

impl ComponentDriver for AwsDrivers {
    async fn apply(&self, component: &Component, target: ComponentState) -> Result<(), DriverError> {
        match &component.driver {
            DriverSpec::AlwaysOn => Ok(()),
            DriverSpec::SsmFlag { parameter_name } => {
                let tags = self
                    .tags(component)
                    .into_iter()
                    .map(|(key, value)| aws_sdk_ssm::types::Tag::builder().key(key).value(value).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| DriverError::Rejected(format!("tag for {parameter_name}: {e}")))?;
                // The value is written by the last call: a refused call leaves the flag as
                // it was, which is what a refusal promises (its undo restores the state
                // alone and calls no driver). A first write creates the parameter with its
                // tags; PutParameter takes no tags when it overwrites, so an existing one
                // is tagged first (idempotent, so `status --orphans` finds it), then
                // written.
                let created = self
                    .ssm
                    .put_parameter()
                    .name(parameter_name)
                    .value(flag_value(target))
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await;
                match created {
                    Ok(_) => return Ok(()),
                    Err(e) if e.code() == Some("ParameterAlreadyExists") => {}
                    Err(e) => return Err(sdk_error(e)),
                }
                self.ssm
                    .add_tags_to_resource()
                    .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
                    .resource_id(parameter_name)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(sdk_error)?;
                self.ssm
                    .put_parameter()
                    .name(parameter_name)
                    .value(flag_value(target))
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .overwrite(true)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Ok(())
            }
            DriverSpec::EksCluster {
                cluster_name,
                role_arn,
                subnet_ids,
                security_group_ids,
                kubernetes_version,
            } => {
                let exists = self.cluster(cluster_name).await?.is_some();
                match (target, exists) {
                    (ComponentState::Cold, true) => {
                        self.eks.delete_cluster().name(cluster_name).send().await.map_err(sdk_error)?;
                    }
                    (ComponentState::Warm | ComponentState::Hot, false) => {
                        let vpc = VpcConfigRequest::builder()
                            .set_subnet_ids(Some(subnet_ids.clone()))
                            .set_security_group_ids(Some(security_group_ids.clone()))
                            .build();
                        let tags =
                            self.tags(component).into_iter().map(|(k, v)| (k.into(), v.into())).collect();
                        self.eks
                            .create_cluster()
                            .name(cluster_name)
                            .role_arn(role_arn)
                            .version(kubernetes_version)
                            .resources_vpc_config(vpc)
                            .set_tags(Some(tags))
                            .send()
                            .await
                            .map_err(sdk_error)?;
                    }
                    _ => {}
                }
                Ok(())
            }
            spec @ DriverSpec::EksNodegroup {
                cluster_name,
                nodegroup_name,
                node_role_arn,
                subnet_ids,
                instance_types,
                ..
            } => {
                let exists = self.nodegroup(cluster_name, nodegroup_name).await?.is_some();
                let Some((min, desired, max)) = nodegroup_sizes(spec, target) else {
                    if exists {
                        self.eks
                            .delete_nodegroup()
                            .cluster_name(cluster_name)
                            .nodegroup_name(nodegroup_name)
                            .send()
                            .await
                            .map_err(sdk_error)?;
                    }
                    return Ok(());
                };
                let scaling = NodegroupScalingConfig::builder()
                    .min_size(min)
                    .desired_size(desired)
                    .max_size(max)
                    .build();
                if exists {
                    self.eks
                        .update_nodegroup_config()
                        .cluster_name(cluster_name)
                        .nodegroup_name(nodegroup_name)
                        .scaling_config(scaling)
                        .send()
                        .await
                        .map_err(sdk_error)?;
                } else {
                    self.eks
                        .create_nodegroup()
                        .cluster_name(cluster_name)
                        .nodegroup_name(nodegroup_name)
                        .node_role(node_role_arn)
                        .set_subnets(Some(subnet_ids.clone()))
                        .set_instance_types(Some(instance_types.clone()))
                        .scaling_config(scaling)
                        .set_tags(Some(
                            self.tags(component).into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
                        ))
                        .send()
                        .await
                        .map_err(sdk_error)?;
                }
                Ok(())
            }
        }
    }

    async fn status(
        &self,
        component: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        match &component.driver {
            DriverSpec::AlwaysOn => Ok(DriverStatus::Ready),
            DriverSpec::SsmFlag { parameter_name } => {
                let out = self.ssm.get_parameter().name(parameter_name).send().await;
                let value = match out {
                    Ok(o) => o.parameter.and_then(|p| p.value),
                    Err(e) if is_not_found(&e) => None,
                    Err(e) => return Err(sdk_error(e)),
                };
                Ok(match value.as_deref() {
                    Some(v) if v == flag_value(target) => DriverStatus::Ready,
                    None if target == ComponentState::Cold => DriverStatus::Ready,
                    _ => DriverStatus::InProgress,
                })
            }
            DriverSpec::EksCluster { cluster_name, .. } => {
                let status = self.cluster(cluster_name).await?.and_then(|c| c.status);
                Ok(cluster_progress(status.as_ref(), target))
            }
            spec @ DriverSpec::EksNodegroup { cluster_name, nodegroup_name, .. } => {
                let nodegroup = self.nodegroup(cluster_name, nodegroup_name).await?;
                let status = nodegroup.as_ref().and_then(|n| n.status.clone());
                let sizes = nodegroup
                    .as_ref()
                    .and_then(|n| n.scaling_config.as_ref())
                    .map(|s| (s.min_size.unwrap_or(0), s.desired_size.unwrap_or(0), s.max_size.unwrap_or(0)));
                Ok(nodegroup_progress(status.as_ref(), sizes, nodegroup_sizes(spec, target), target))
            }
        }
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
        let spec = DriverSpec::EksNodegroup {
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
        assert_eq!(nodegroup_sizes(&DriverSpec::AlwaysOn, Hot), None);
    }

    #[test]
    fn flags_read_off_warm_on() {
        assert_eq!((flag_value(Cold), flag_value(Warm), flag_value(Hot)), ("off", "warm", "on"));
    }
}
