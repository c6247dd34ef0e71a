//! The driver kinds: what a component's `driver:` may say. One module per kind holds
//! its spec (the YAML fields) and what can be checked without AWS; the adapters
//! (`revscale_aws::drivers`) hold one module per kind that carries it out.
//!
//! [`DriverSpec`] is the registry: a kind is added by writing its module, implementing
//! [`Kind`] for its spec and adding one line to `registry!` below. Everything else
//! (the `kind` tag, config checks, the stack's fields, what exists while COLD, the
//! readiness limit) is asked of the kind through the trait.

use serde::{Deserialize, Serialize};

use crate::model::Capacity;

/// What every kind's spec answers, so that no code outside its module lists kinds.
pub trait Kind {
    /// The `kind:` of the YAML (the serde tag).
    fn kind(&self) -> &'static str;
    /// The resource it switches, for messages: "ECS service web in cluster prod".
    fn resource(&self) -> String;
    /// Problems of the spec alone: (key under `driver`, message).
    fn check(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The fields the stack decides (its parameters, which its IAM policy is scoped
    /// to); a configuration may leave them out.
    fn stack_fields(&mut self) -> Vec<StackField<'_>> {
        Vec::new()
    }
    /// Whether the resource still exists while the component is COLD (a flag at
    /// `off`, a service at 0 tasks, a stopped database): such a resource is no orphan.
    fn present_when_cold(&self) -> bool;
    /// Whether the resource exists before revscale touches it (the company's service,
    /// group, database or function): revscale switches it and never creates it, so a
    /// missing one is an error of the configuration (`revscale config push` checks).
    fn must_exist(&self) -> bool {
        false
    }
    /// How long reaching a state may take before the step counts as timed out.
    fn readiness_minutes(&self) -> u32 {
        60
    }
    /// Whether AWS brings the resource back up by itself (a stopped RDS instance or
    /// Aurora cluster after 7 days): the drift check then takes it back to its
    /// recorded state, audited and counted, instead of only reporting it.
    fn restarts_by_itself(&self) -> bool {
        false
    }
    /// Whether going WARM first records HOT's capacity, which HOT then restores.
    fn saves_capacity(&self) -> bool {
        false
    }
    /// The capacity HOT reaches when the configuration fixes it (then nothing saved
    /// is used).
    fn configured_capacity(&self) -> Option<Capacity> {
        None
    }
    /// The file the spec names (relative to the configuration file) and where its text
    /// goes: whoever loads the configuration reads it in, so that the functions, which
    /// run on a pushed configuration, read no file.
    fn named_file(&mut self) -> Option<NamedFile<'_>> {
        None
    }
}

/// A file a spec names, and the field its text is read into.
#[derive(Debug)]
pub struct NamedFile<'a> {
    /// The keys under `driver`: the file's and its body's.
    pub key: &'static str,
    pub body_key: &'static str,
    pub file: &'a mut Option<String>,
    pub body: &'a mut Option<String>,
}

/// What every resource a driver creates or switches carries: `revscale status
/// --orphans` lists by the first; the second names the component (and is the cost
/// allocation tag); the third names the stack whose provisioner made it, so that two
/// stacks in one account do not take each other's resources for orphans.
pub const MANAGED_TAG: (&str, &str) = ("revscale:managed", "true");
pub const COMPONENT_TAG: &str = "revscale-component";
pub const STACK_TAG: &str = "revscale:stack";

/// Whether a kind's resource exists while COLD, by its `kind:` name (the orphans rule
/// reads kinds from the status API). An unknown kind answers `None`.
pub fn present_when_cold(kind: &str) -> Option<bool> {
    DriverSpec::examples().into_iter().find(|s| s.kind() == kind).map(|s| s.as_kind().present_when_cold())
}

/// How a field the stack decides is checked against the stack's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackRule {
    /// Left out, the stack's value is used; written, it must be the stack's.
    Equals,
    /// Must lie under the stack's value, a path prefix (`FlagPrefix`).
    UnderPrefix,
}

/// One field of a spec that a stack parameter decides.
#[derive(Debug)]
pub struct StackField<'a> {
    /// The key under `driver`.
    pub key: &'static str,
    pub value: &'a mut String,
    /// The stack parameter, e.g. `EksClusterName`.
    pub parameter: &'static str,
    pub rule: StackRule,
}

/// The stack parameters a spec may need, and the environment variable that carries
/// each to the functions. The template sets both; `revscale config push` reads the
/// first, the functions the second.
pub const STACK_PARAMETERS: &[(&str, &str)] = &[
    ("EksClusterName", "EKS_CLUSTER_NAME"),
    ("EksClusterRoleArn", "EKS_CLUSTER_ROLE_ARN"),
    ("EksNodeRoleArn", "EKS_NODE_ROLE_ARN"),
    ("FlagPrefix", "FLAG_PREFIX"),
    ("CloudFormationRoleArn", "CLOUDFORMATION_ROLE_ARN"),
    ("CloudFormationStackPrefix", "CLOUDFORMATION_STACK_PREFIX"),
];

macro_rules! registry {
    // `$d` is a `$` handed in, so that the macro this one defines can have its own
    // metavariables.
    ($d:tt; $($variant:ident($module:ident::$spec:ident)),* $(,)?) => {
        $(pub mod $module;)*
        $(pub use $module::$spec;)*

        /// How a component is switched, with the parameters its driver needs.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum DriverSpec {
            $($variant($spec)),*
        }

        impl DriverSpec {
            /// One spec of every kind, with its fields' defaults (for tests that must
            /// cover every kind, and for the documentation's list).
            pub fn examples() -> Vec<DriverSpec> {
                vec![$(DriverSpec::$variant(<$spec>::default())),*]
            }

            /// The spec, as its kind.
            pub fn as_kind(&self) -> &dyn Kind {
                match self {
                    $(DriverSpec::$variant(spec) => spec),*
                }
            }

            /// The spec, as its kind, to fill in the stack's fields.
            pub fn as_kind_mut(&mut self) -> &mut dyn Kind {
                match self {
                    $(DriverSpec::$variant(spec) => spec),*
                }
            }
        }

        /// Runs `$body` with `$spec` bound to the kind's own spec type: the adapters
        /// dispatch with it, so that a kind they do not implement fails to compile.
        #[macro_export]
        macro_rules! with_driver_spec {
            ($d value:expr, $d binding:ident => $d body:expr) => {
                match $d value {
                    $($d crate::drivers::DriverSpec::$variant($d binding) => $d body),*
                }
            };
        }

        $(impl From<$spec> for DriverSpec {
            fn from(spec: $spec) -> Self {
                DriverSpec::$variant(spec)
            }
        })*
    };
}

registry! {
    $;
    AlwaysOn(always_on::AlwaysOn),
    EksCluster(eks_cluster::EksCluster),
    EksNodegroup(eks_nodegroup::EksNodegroup),
    SsmFlag(ssm_flag::SsmFlag),
    EcsService(ecs_service::EcsService),
    AutoscalingGroup(autoscaling_group::AutoscalingGroup),
    RdsInstance(rds_instance::RdsInstance),
    AuroraCluster(aurora_cluster::AuroraCluster),
    Ec2Instances(ec2_instances::Ec2Instances),
    LambdaProvisionedConcurrency(lambda_provisioned_concurrency::LambdaProvisionedConcurrency),
    CloudformationStack(cloudformation_stack::CloudformationStack),
    KubernetesWorkload(kubernetes_workload::KubernetesWorkload),
}

impl DriverSpec {
    pub fn kind(&self) -> &'static str {
        self.as_kind().kind()
    }
}

/// A name AWS accepts for most resources: letters, digits, `-` and `_`, 1 to 255.
pub(crate) fn check_name(key: &str, value: &str, max_len: usize, problems: &mut Vec<(String, String)>) {
    if value.is_empty() {
        problems.push((key.into(), "must not be empty".into()));
    } else if value.len() > max_len {
        problems.push((key.into(), format!("is {} characters long; at most {max_len}", value.len())));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_kinds_name_is_its_yaml_tag_and_round_trips() {
        let examples = DriverSpec::examples();
        assert!(examples.len() >= 10);
        for spec in examples {
            let value = serde_json::to_value(&spec).unwrap();
            assert_eq!(value["kind"], spec.kind());
            assert_eq!(serde_json::from_value::<DriverSpec>(value).unwrap(), spec);
        }
    }

    #[test]
    fn an_unknown_kind_or_field_is_refused_by_name() {
        let e = serde_json::from_str::<DriverSpec>(r#"{"kind":"ecs_servce"}"#).unwrap_err().to_string();
        assert!(e.contains("ecs_servce"), "{e}");
        let e = serde_json::from_str::<DriverSpec>(
            r#"{"kind":"rds_instance","db_instance_identifier":"a","size":2}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("size"), "{e}");
    }
}
