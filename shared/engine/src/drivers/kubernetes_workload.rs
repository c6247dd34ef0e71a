//! `kubernetes_workload`: a Deployment or StatefulSet on the EKS cluster the stack
//! manages. ADR-017's WARM, "deployed, stopped (replicas: 0)": WARM and COLD = 0
//! replicas (the workload, its volumes and its configuration stay: revscale never
//! deletes what it did not create); HOT = the configured replicas, else the count saved
//! when it last went WARM.
//!
//! The workload is the company's own (its CD deploys it): revscale scales it through
//! the `scale` subresource and never rewrites its spec. A workload KEDA scales is paused
//! at 0 through the ScaledObject instead of fought; one an HPA scales is refused (two
//! controllers writing one replica count never settle).

use serde::{Deserialize, Serialize};

use super::{Kind, StackField, StackRule};
use crate::model::Capacity;

/// The most replicas revscale will ask for: a typo must not start a thousand pods.
pub const MAX_REPLICAS: u32 = 500;

/// The workload kinds that have a `scale` subresource and a rollout status revscale
/// reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadKind {
    #[default]
    Deployment,
    StatefulSet,
}

impl WorkloadKind {
    /// The resource's plural, as it appears in the API's paths.
    pub fn plural(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
        }
    }

    /// The `kind` an autoscaler's `scaleTargetRef` names.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesWorkload {
    /// Left out, the deployment's (the stack's `EksClusterName`) is used.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    pub namespace: String,
    /// `Deployment` or `StatefulSet`.
    pub workload_kind: WorkloadKind,
    /// The workload's name (`metadata.name`).
    pub name: String,
    /// HOT's replicas. Left out, HOT restores the count saved when the workload last
    /// went WARM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

impl KubernetesWorkload {
    /// "StatefulSet vault/vault".
    pub fn object(&self) -> String {
        format!("{} {}/{}", self.workload_kind.as_str(), self.namespace, self.name)
    }
}

impl Kind for KubernetesWorkload {
    fn kind(&self) -> &'static str {
        "kubernetes_workload"
    }
    fn resource(&self) -> String {
        format!("Kubernetes {} on EKS cluster {}", self.object(), self.cluster_name)
    }
    fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Err(why) = dns_label(&self.namespace) {
            problems.push(("namespace".into(), why));
        }
        if let Err(why) = dns_subdomain(&self.name) {
            problems.push(("name".into(), why));
        }
        if let Some(n) = self.replicas
            && !(1..=MAX_REPLICAS).contains(&n)
        {
            problems.push((
                "replicas".into(),
                format!("{n} replicas: HOT needs 1 to {MAX_REPLICAS} (WARM is 0; leave it out to restore the saved count)"),
            ));
        }
        problems
    }
    fn stack_fields(&mut self) -> Vec<StackField<'_>> {
        vec![StackField {
            key: "cluster_name",
            value: &mut self.cluster_name,
            parameter: "EksClusterName",
            rule: StackRule::Equals,
        }]
    }
    fn must_exist(&self) -> bool {
        true
    }
    fn present_when_cold(&self) -> bool {
        true
    }
    /// Pods start in minutes once their nodes are there (the node group's own step
    /// waited for those); a StatefulSet starts its pods one by one.
    fn readiness_minutes(&self) -> u32 {
        30
    }
    fn saves_capacity(&self) -> bool {
        true
    }
    fn configured_capacity(&self) -> Option<Capacity> {
        self.replicas.map(|desired| Capacity { desired, min: None, max: None })
    }
}

/// A namespace's name: an RFC 1123 label (lower-case letters, digits and `-`, starting
/// and ending with a letter or digit, at most 63), as the API server requires.
pub fn dns_label(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > 63 {
        return Err(format!("{value:?} is {} characters long; at most 63", value.len()));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !value.chars().all(allowed) || !edge(value.chars().next()) || !edge(value.chars().last()) {
        return Err(format!(
            "{value:?} is no Kubernetes name: lower-case letters, digits and '-', starting and ending \
             with a letter or digit"
        ));
    }
    Ok(())
}

/// A label value: at most 63 characters, letters, digits, `-`, `_` and `.`, starting and
/// ending with a letter or digit (empty is allowed by Kubernetes, not here: it would
/// name no component).
pub fn label_value(value: &str) -> Result<(), String> {
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if value.len() > 63 {
        return Err(format!("{value:?} is {} characters long; a label value has at most 63", value.len()));
    }
    if !value.chars().all(allowed) || !alphanumeric(value.chars().next()) || !alphanumeric(value.chars().last()) {
        return Err(format!(
            "{value:?} is no label value: letters, digits, '-', '_' and '.', starting and ending with a \
             letter or digit"
        ));
    }
    Ok(())
}

/// A workload's name: an RFC 1123 subdomain (labels joined by `.`, at most 253).
pub fn dns_subdomain(value: &str) -> Result<(), String> {
    if value.len() > 253 {
        return Err(format!("{value:?} is {} characters long; at most 253", value.len()));
    }
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    value.split('.').try_for_each(|label| {
        dns_label(label).map_err(|_| {
            format!(
                "{value:?} is no Kubernetes name: lower-case letters, digits, '-' and '.', each part \
                 starting and ending with a letter or digit"
            )
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn vault() -> KubernetesWorkload {
        KubernetesWorkload {
            cluster_name: "revscale".into(),
            namespace: "vault".into(),
            workload_kind: WorkloadKind::StatefulSet,
            name: "vault".into(),
            replicas: Some(3),
        }
    }

    #[test]
    fn a_well_formed_workload_has_no_problems_and_names_itself() {
        assert_eq!(vault().check(), vec![]);
        assert_eq!(vault().resource(), "Kubernetes StatefulSet vault/vault on EKS cluster revscale");
        assert_eq!(vault().configured_capacity(), Some(Capacity { desired: 3, min: None, max: None }));
    }

    #[test]
    fn names_the_api_server_would_refuse_are_refused_by_key() {
        for (namespace, name) in [("Vault", "vault"), ("vault", "vault_ha"), ("-vault", "vault"), ("", "")] {
            let problems = KubernetesWorkload { namespace: namespace.into(), name: name.into(), ..vault() }.check();
            assert!(!problems.is_empty(), "{namespace:?} {name:?}");
        }
        let long = "a".repeat(64);
        let problems = KubernetesWorkload { namespace: long.clone(), ..vault() }.check();
        assert_eq!(problems[0].0, "namespace");
        assert!(problems[0].1.contains("at most 63"), "{problems:?}");
        // A workload's name may have dots and be longer than a label.
        assert_eq!(KubernetesWorkload { name: "api.v2".into(), ..vault() }.check(), vec![]);
        assert_eq!(KubernetesWorkload { name: format!("{long}.b"), ..vault() }.check().len(), 1);
    }

    #[test]
    fn hot_replicas_must_be_between_one_and_the_limit_or_left_out() {
        for (replicas, ok) in [(Some(0), false), (Some(1), true), (Some(MAX_REPLICAS), true), (Some(501), false), (None, true)] {
            let problems = KubernetesWorkload { replicas, ..vault() }.check();
            assert_eq!(problems.is_empty(), ok, "{replicas:?}: {problems:?}");
        }
    }

    #[test]
    fn a_component_id_kubernetes_cannot_carry_as_a_label_value_is_refused() {
        for ok in ["vault_ha", "ledger", "tee.v2", "A1"] {
            assert_eq!(label_value(ok), Ok(()), "{ok}");
        }
        for bad in ["", "_vault", "vault ha", "vault/ha", "ha-", &"v".repeat(64)] {
            assert!(label_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_yaml_names_the_workload_kind_as_kubernetes_does() {
        let spec: super::super::DriverSpec = serde_norway::from_str(
            "kind: kubernetes_workload\nnamespace: shop\nworkload_kind: Deployment\nname: web\n",
        )
        .unwrap();
        let super::super::DriverSpec::KubernetesWorkload(w) = spec else { panic!("{spec:?}") };
        assert_eq!((w.workload_kind, w.replicas, w.cluster_name.as_str()), (WorkloadKind::Deployment, None, ""));
        let e = serde_norway::from_str::<super::super::DriverSpec>(
            "kind: kubernetes_workload\nnamespace: shop\nworkload_kind: DaemonSet\nname: web\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("DaemonSet"), "{e}");
    }
}
