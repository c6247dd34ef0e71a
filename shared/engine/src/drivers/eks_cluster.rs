//! `eks_cluster`: COLD = no cluster; WARM and HOT = control plane ACTIVE.

use serde::{Deserialize, Serialize};

use super::{Kind, StackField, StackRule};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EksCluster {
    /// Left out, the deployment's (the stack's `EksClusterName`) is used.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    /// Left out, the deployment's (the stack's `EksClusterRoleArn`) is used.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role_arn: String,
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    pub kubernetes_version: String,
    /// The namespaces of the configuration's `kubernetes_workload`s (all on the stack's
    /// cluster), filled in when the configuration is checked: the access entries
    /// revscale gives its roles on the cluster it creates are scoped to them.
    #[serde(skip)]
    pub workload_namespaces: Vec<String>,
}

impl Kind for EksCluster {
    fn kind(&self) -> &'static str {
        "eks_cluster"
    }
    fn resource(&self) -> String {
        format!("EKS cluster {}", self.cluster_name)
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
                key: "role_arn",
                value: &mut self.role_arn,
                parameter: "EksClusterRoleArn",
                rule: StackRule::Equals,
            },
        ]
    }
    fn present_when_cold(&self) -> bool {
        false
    }
    /// A control plane takes 10 to 15 minutes to create, as long to delete.
    fn readiness_minutes(&self) -> u32 {
        60
    }
}
