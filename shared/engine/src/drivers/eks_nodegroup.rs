//! `eks_nodegroup`: COLD = no node group; WARM = min = desired = 0; HOT = the sizes
//! configured.

use serde::{Deserialize, Serialize};

use super::{Kind, StackField, StackRule};
use crate::model::Capacity;

/// The largest node group EKS lets a managed node group have.
pub const MAX_NODEGROUP_SIZE: u32 = 1_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EksNodegroup {
    /// Left out, the deployment's (the stack's `EksClusterName`) is used.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    pub nodegroup_name: String,
    /// Left out, the deployment's (the stack's `EksNodeRoleArn`) is used.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_role_arn: String,
    pub subnet_ids: Vec<String>,
    pub instance_types: Vec<String>,
    pub min_size: u32,
    pub desired_size: u32,
    pub max_size: u32,
}

impl Kind for EksNodegroup {
    fn kind(&self) -> &'static str {
        "eks_nodegroup"
    }
    fn resource(&self) -> String {
        format!("EKS node group {} of cluster {}", self.nodegroup_name, self.cluster_name)
    }
    fn check(&self) -> Vec<(String, String)> {
        let (min, desired, max) = (self.min_size, self.desired_size, self.max_size);
        if min <= desired && desired <= max && (1..=MAX_NODEGROUP_SIZE).contains(&max) {
            return vec![];
        }
        vec![(
            String::new(),
            format!(
                "node group sizes must satisfy min <= desired <= max and 1 <= max <= {MAX_NODEGROUP_SIZE} (got {min}/{desired}/{max})"
            ),
        )]
    }
    fn stack_fields(&mut self) -> Vec<StackField<'_>> {
        vec![
            StackField {
                key: "cluster_name",
                value: &mut self.cluster_name,
                parameter: "EksClusterName",
                rule: StackRule::Equals,
            },
            StackField {
                key: "node_role_arn",
                value: &mut self.node_role_arn,
                parameter: "EksNodeRoleArn",
                rule: StackRule::Equals,
            },
        ]
    }
    fn present_when_cold(&self) -> bool {
        false
    }
    fn readiness_minutes(&self) -> u32 {
        30
    }
    fn configured_capacity(&self) -> Option<Capacity> {
        Some(Capacity { desired: self.desired_size, min: Some(self.min_size), max: Some(self.max_size) })
    }
}
