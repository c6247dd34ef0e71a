//! `kubernetes_workload`: a Deployment or StatefulSet on the EKS cluster the stack
//! manages. ADR-017's WARM, "deployed, stopped (replicas: 0)": WARM and COLD = 0
//! replicas (the workload, its volumes and its configuration stay: revscale never
//! deletes what it did not create); HOT = the configured replicas, else the count saved
//! when it last went WARM.
//!
//! Without manifests the workload is the company's own (its CD deploys it): revscale
//! scales it through the `scale` subresource, never rewrites its spec, and COLD is
//! WARM. A workload KEDA scales is paused at 0 through the ScaledObject instead of
//! fought; one an HPA scales is refused (two controllers writing one replica count
//! never settle).
//!
//! With manifests (`manifests_file`, YAML documents) the workload is revscale's: COLD
//! = none of the documents exist; WARM and HOT = all applied (server-side apply, field
//! manager `revscale`, every document dry-run first), the workload's `spec.replicas`
//! set by revscale (0, or the HOT count). The documents are checked here, before any
//! cluster is asked: only namespaced kinds the access entry's edit policy may write,
//! all in the component's namespace, the workload among them.

use serde::{Deserialize, Serialize};

use super::{Kind, NamedFile, StackField, StackRule};
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
    /// YAML documents revscale applies going WARM and deletes going COLD, relative to
    /// the configuration file. Whoever loads the configuration reads it into
    /// `manifests_body` (`revscale config push` sends the body: the functions read no
    /// file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests_body: Option<String>,
    /// Filled in when the configuration is checked, if it creates the stack's cluster
    /// (it has an `eks_cluster` component): the namespaces of all its workloads, which
    /// revscale's roles' access entries are scoped to. The workload's own steps keep
    /// that scope current, so one added in a new namespace is covered before its first
    /// call; the cluster's own next step may be months away.
    #[serde(skip)]
    pub access_namespaces: Option<Vec<String>>,
}

/// The kinds a component's manifests may hold, with their API version and the plural
/// of their path: namespaced, and within what the edit access policy lets revscale's
/// access entry write (no RBAC, nothing cluster-wide).
const APPLICABLE: &[(&str, &str, &str)] = &[
    ("v1", "ConfigMap", "configmaps"),
    ("v1", "Service", "services"),
    ("v1", "ServiceAccount", "serviceaccounts"),
    ("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("apps/v1", "Deployment", "deployments"),
    ("apps/v1", "StatefulSet", "statefulsets"),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    ("networking.k8s.io/v1", "Ingress", "ingresses"),
];

/// Why a kind that is not [`APPLICABLE`] is refused, for the kinds people write.
fn refusal(kind: &str) -> String {
    let applicable: Vec<&str> = APPLICABLE.iter().map(|(_, kind, _)| *kind).collect();
    match kind {
        "Secret" => "a Secret would sit in plain text in the configuration (an SSM String parameter): \
                     create it outside revscale (External Secrets, or kubectl) and refer to it"
            .into(),
        "HorizontalPodAutoscaler" => "an HPA would fight revscale over the replicas".into(),
        "Role" | "RoleBinding" => format!(
            "a {kind} needs more than the edit access policy revscale's access entry holds: create it \
             outside revscale"
        ),
        "Namespace" | "ClusterRole" | "ClusterRoleBinding" | "CustomResourceDefinition" | "PersistentVolume"
        | "StorageClass" | "PriorityClass" => format!(
            "a {kind} is cluster-wide: revscale's access entry covers only its workloads' namespaces"
        ),
        _ => format!("revscale applies only {}", applicable.join(", ")),
    }
}

/// One document of a component's manifests, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub kind: String,
    pub name: String,
    plural: &'static str,
    api_version: &'static str,
    /// The document as written (JSON: what the apply sends).
    pub object: serde_json::Value,
}

impl Manifest {
    /// The object's path in `namespace`: `/api/v1/...` for the core group.
    pub fn path(&self, namespace: &str) -> String {
        let group = match self.api_version {
            "v1" => "/api/v1".to_string(),
            other => format!("/apis/{other}"),
        };
        format!("{group}/namespaces/{namespace}/{}/{}", self.plural, self.name)
    }

    /// "StatefulSet vault".
    pub fn describe(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }

    /// The label `revscale-component` the document already carries, if any.
    pub fn component_label(&self) -> Option<&str> {
        self.object.pointer("/metadata/labels").and_then(|l| l.get(super::COMPONENT_TAG)).and_then(|v| v.as_str())
    }
}

impl KubernetesWorkload {
    /// "StatefulSet vault/vault".
    pub fn object(&self) -> String {
        format!("{} {}/{}", self.workload_kind.as_str(), self.namespace, self.name)
    }

    /// Whether revscale applies the workload (and deletes it going COLD).
    pub fn has_manifests(&self) -> bool {
        self.manifests_file.is_some() || self.manifests_body.is_some()
    }

    /// The documents of `manifests_body` in order (none without manifests), or every
    /// problem found in them, each naming its document.
    pub fn manifests(&self) -> Result<Vec<Manifest>, Vec<String>> {
        let Some(body) = &self.manifests_body else {
            return match &self.manifests_file {
                Some(file) => Err(vec![format!("the manifests '{file}' were not read (nothing read files here)")]),
                None => Ok(Vec::new()),
            };
        };
        let mut manifests = Vec::new();
        let mut problems = Vec::new();
        for (n, document) in serde_norway::Deserializer::from_str(body).enumerate() {
            let at = format!("document {}", n + 1);
            let value = match serde_norway::Value::deserialize(document) {
                Ok(serde_norway::Value::Null) => continue,
                Ok(value) => value,
                Err(e) => {
                    problems.push(format!("{at} does not parse: {e}"));
                    break;
                }
            };
            match self.manifest(value) {
                Ok(m) if manifests.iter().any(|o: &Manifest| o.kind == m.kind && o.name == m.name) => {
                    problems.push(format!("{at}: {} appears twice", m.describe()));
                }
                Ok(m) => manifests.push(m),
                Err(why) => problems.push(format!("{at}: {why}")),
            }
        }
        if problems.is_empty() && manifests.is_empty() {
            problems.push("the manifests hold no document".into());
        }
        let workload = manifests.iter().find(|m| m.kind == self.workload_kind.as_str() && m.name == self.name);
        match workload {
            None if problems.is_empty() => problems.push(format!(
                "no document is the {} {} the component names",
                self.workload_kind.as_str(),
                self.name
            )),
            Some(w) if w.object.pointer("/spec/replicas").is_some() => problems.push(format!(
                "{}: leave spec.replicas out: revscale sets it (0 at WARM, `replicas` at HOT)",
                w.describe()
            )),
            _ => {}
        }
        if problems.is_empty() { Ok(manifests) } else { Err(problems) }
    }

    fn manifest(&self, value: serde_norway::Value) -> Result<Manifest, String> {
        if let Some(tag) = first_tag(&value) {
            return Err(format!("is not plain YAML: the tag {tag} means nothing to the API server"));
        }
        let object = serde_json::to_value(&value).map_err(|e| format!("is not plain YAML: {e}"))?;
        let text = |pointer: &str| object.pointer(pointer).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(api_version), Some(kind)) = (text("/apiVersion"), text("/kind")) else {
            return Err("needs apiVersion and kind".into());
        };
        let Some(&(api_version, kind, plural)) =
            APPLICABLE.iter().find(|(version, k, _)| *k == kind && *version == api_version)
        else {
            return Err(match APPLICABLE.iter().find(|(_, k, _)| *k == kind) {
                Some((version, ..)) => format!("{kind} is {version}, not {api_version}"),
                None => format!("{kind}: {}", refusal(&kind)),
            });
        };
        let name = text("/metadata/name").ok_or_else(|| format!("{kind} has no metadata.name"))?;
        dns_subdomain(&name).map_err(|why| format!("{kind} {why}"))?;
        if let Some(namespace) = text("/metadata/namespace")
            && namespace != self.namespace
        {
            return Err(format!(
                "{kind} {name} names the namespace {namespace}: the component's is {}",
                self.namespace
            ));
        }
        Ok(Manifest { kind: kind.into(), name, plural, api_version, object })
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
        if self.has_manifests() {
            if let Err(found) = self.manifests() {
                problems.extend(found.into_iter().map(|why| ("manifests_file".to_string(), why)));
            }
            if self.replicas.is_none() {
                problems.push((
                    "replicas".into(),
                    "a workload revscale applies has never been HOT to save a count from: set replicas".into(),
                ));
            }
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
    /// The company's own workload must be there; one revscale applies is not, while
    /// COLD.
    fn named_file(&mut self) -> Option<NamedFile<'_>> {
        Some(NamedFile {
            key: "manifests_file",
            body_key: "manifests_body",
            file: &mut self.manifests_file,
            body: &mut self.manifests_body,
        })
    }
    fn must_exist(&self) -> bool {
        !self.has_manifests()
    }
    fn present_when_cold(&self) -> bool {
        !self.has_manifests()
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

/// The first YAML tag (`!Ref`) in `value`: JSON, which the API server reads, has none.
fn first_tag(value: &serde_norway::Value) -> Option<String> {
    use serde_norway::Value;
    match value {
        Value::Tagged(tagged) => Some(tagged.tag.to_string()),
        Value::Sequence(items) => items.iter().find_map(first_tag),
        Value::Mapping(map) => map.iter().find_map(|(k, v)| first_tag(k).or_else(|| first_tag(v))),
        _ => None,
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
            ..KubernetesWorkload::default()
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

    const VAULT_MANIFESTS: &str = "\
# a comment before the first document
---
apiVersion: v1
kind: Service
metadata: { name: vault }
spec: { clusterIP: None, ports: [{ port: 8200 }] }
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: vault, namespace: vault }
spec: { serviceName: vault }
";

    fn with_manifests(body: &str) -> KubernetesWorkload {
        KubernetesWorkload { manifests_body: Some(body.into()), ..vault() }
    }

    #[test]
    fn manifests_are_read_in_order_with_their_paths_and_the_workload_among_them() {
        let spec = with_manifests(VAULT_MANIFESTS);
        assert_eq!(spec.check(), vec![]);
        let manifests = spec.manifests().unwrap();
        let paths: Vec<String> = manifests.iter().map(|m| m.path("vault")).collect();
        assert_eq!(paths, [
            "/api/v1/namespaces/vault/services/vault",
            "/apis/apps/v1/namespaces/vault/statefulsets/vault"
        ]);
        assert_eq!(manifests[0].object["spec"]["clusterIP"], "None");
        // revscale creates and deletes it: nothing to find while COLD.
        assert!(!spec.must_exist() && !spec.present_when_cold());
        assert!(vault().must_exist() && vault().present_when_cold());
    }

    #[test]
    fn a_manifest_revscale_must_not_apply_is_refused_naming_its_document_and_why() {
        let refused = |document: &str| -> String {
            let body = format!("{VAULT_MANIFESTS}---\n{document}");
            with_manifests(&body).manifests().unwrap_err().join("; ")
        };
        for (document, why) in [
            ("apiVersion: v1\nkind: Secret\nmetadata: {name: token}\n", "plain text"),
            ("apiVersion: v1\nkind: Namespace\nmetadata: {name: vault}\n", "cluster-wide"),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: r}\n", "edit access policy"),
            ("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n", "fight"),
            ("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\n", "revscale applies only"),
            ("apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: d}\n", "is apps/v1, not apps/v1beta1"),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\n", "names the namespace default"),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: c-}\n", "no metadata.name"),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Config_1}\n", "no Kubernetes name"),
            ("apiVersion: v1\nkind: Service\nmetadata: {name: vault}\n", "appears twice"),
            ("kind: ConfigMap\n", "needs apiVersion and kind"),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: !Ref b}\n", "not plain YAML"),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n", "document 3 does not parse"),
        ] {
            let problems = refused(document);
            assert!(problems.contains("document 3") && problems.contains(why), "{document}: {problems}");
        }
    }

    #[test]
    fn manifests_without_the_workload_with_its_replicas_or_without_hot_replicas_are_refused() {
        let only_service = "apiVersion: v1\nkind: Service\nmetadata: {name: vault}\n";
        let e = with_manifests(only_service).manifests().unwrap_err().join("; ");
        assert!(e.contains("no document is the StatefulSet vault"), "{e}");
        let with_replicas = VAULT_MANIFESTS.replace("serviceName: vault", "serviceName: vault, replicas: 3");
        let e = with_manifests(&with_replicas).manifests().unwrap_err().join("; ");
        assert!(e.contains("leave spec.replicas out"), "{e}");
        let e = with_manifests("# nothing\n").manifests().unwrap_err().join("; ");
        assert!(e.contains("no document"), "{e}");
        let problems = KubernetesWorkload { replicas: None, ..with_manifests(VAULT_MANIFESTS) }.check();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "replicas");
        let unread = KubernetesWorkload { manifests_file: Some("vault.yaml".into()), ..vault() }.check();
        assert!(unread[0].1.contains("'vault.yaml' were not read"), "{unread:?}");
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
