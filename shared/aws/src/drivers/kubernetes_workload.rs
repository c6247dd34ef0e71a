//! `kubernetes_workload`: a Deployment or StatefulSet on the stack's EKS cluster. WARM
//! and COLD = 0 replicas; HOT = the configured replicas, else the count saved when it
//! last went WARM. revscale never creates, deletes or rewrites the workload: it
//! changes only `spec.replicas`, through the `scale` subresource.
//!
//! - **KEDA.** A workload a ScaledObject targets is paused, not scaled: WARM sets the
//!   ScaledObject's `autoscaling.keda.sh/paused-replicas: "0"` (KEDA then holds it at
//!   0), HOT removes the annotation and KEDA scales it again, from its
//!   `minReplicaCount`. Scaling the workload directly would be undone by KEDA within
//!   its polling interval.
//! - **HPA.** A workload a HorizontalPodAutoscaler targets (not one KEDA made for its
//!   ScaledObject) is refused, naming the HPA: two controllers writing one replica count
//!   never settle, and an HPA cannot scale to 0.
//! - **Safety.** As for the AWS resources, the workload must carry the label
//!   `revscale-component` naming the component before anything changes; every write
//!   carries the `resourceVersion` of the object revscale read and checked, so that a
//!   change in between is a 409 (retried: the next try reads it again), never a write
//!   over something revscale did not check.
//! - **Ready** at HOT when the rollout is observed (`status.observedGeneration` is the
//!   object's `generation`) and `replicas`, `readyReplicas` and `updatedReplicas` all
//!   equal the desired count; at WARM when no pod is left. A Deployment whose
//!   `Progressing` condition says `ProgressDeadlineExceeded` has failed.

use std::collections::BTreeMap;

use base64::Engine;
use revscale_engine::config::Component;
use revscale_engine::drivers::kubernetes_workload::Manifest;
use revscale_engine::drivers::{COMPONENT_TAG, KubernetesWorkload};
use revscale_engine::model::{Capacity, ComponentState};
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};
use serde::Deserialize;
use serde_json::json;

use super::eks_cluster::{BUSY, NOT_FOUND};
use super::{AwsKind, Clients, is_code, sdk_error};
use crate::kubernetes::{KubeClient, KubeError, TestEndpoint};

/// KEDA's annotation that holds a ScaledObject's target at a fixed count.
pub const PAUSED_REPLICAS: &str = "autoscaling.keda.sh/paused-replicas";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub generation: Option<i64>,
    pub resource_version: Option<String>,
    pub owner_references: Vec<OwnerReference>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OwnerReference {
    pub kind: String,
    pub name: String,
}

/// A Deployment or StatefulSet, as much of it as the driver reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Workload {
    pub metadata: ObjectMeta,
    pub spec: WorkloadSpec,
    pub status: WorkloadStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WorkloadSpec {
    /// Left out, the API server's default: 1.
    pub replicas: Option<i32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadStatus {
    pub replicas: i32,
    pub ready_replicas: i32,
    pub updated_replicas: i32,
    pub observed_generation: Option<i64>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// An HPA or a KEDA ScaledObject: what it scales.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Autoscaler {
    pub metadata: ObjectMeta,
    pub spec: AutoscalerSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AutoscalerSpec {
    pub scale_target_ref: ScaleTargetRef,
    /// KEDA's floor (0 when left out); an HPA's is `minReplicas`, unread.
    pub min_replica_count: Option<i32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ScaleTargetRef {
    /// KEDA lets it out for a Deployment.
    pub kind: Option<String>,
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct List<T> {
    items: Vec<T>,
}

fn workload_path(spec: &KubernetesWorkload) -> String {
    format!("/apis/apps/v1/namespaces/{}/{}/{}", spec.namespace, spec.workload_kind.plural(), spec.name)
}

fn hpa_path(spec: &KubernetesWorkload) -> String {
    format!("/apis/autoscaling/v2/namespaces/{}/horizontalpodautoscalers", spec.namespace)
}

fn scaled_objects_path(spec: &KubernetesWorkload) -> String {
    format!("/apis/keda.sh/v1alpha1/namespaces/{}/scaledobjects", spec.namespace)
}

/// Whether an autoscaler's target is this workload (KEDA's `kind` defaults to
/// Deployment).
fn targets(autoscaler: &Autoscaler, spec: &KubernetesWorkload) -> bool {
    let target = &autoscaler.spec.scale_target_ref;
    target.name == spec.name && target.kind.as_deref().unwrap_or("Deployment") == spec.workload_kind.as_str()
}

/// Who scales the workload besides revscale.
#[derive(Debug, Clone)]
pub enum Scaler {
    /// Nobody: revscale writes `replicas`.
    Revscale,
    /// A KEDA ScaledObject: revscale pauses and resumes it.
    Keda(Box<Autoscaler>),
}

/// The one autoscaler of `spec` among the namespace's, or a refusal naming the HPA
/// that scales it. KEDA makes an HPA of its own for each ScaledObject (owned by it):
/// that one is KEDA's, not a second controller.
pub fn scaler(
    component: &Component,
    spec: &KubernetesWorkload,
    hpas: &[Autoscaler],
    scaled_objects: &[Autoscaler],
) -> Result<Scaler, DriverError> {
    let keda = scaled_objects.iter().find(|s| targets(s, spec));
    let foreign = hpas
        .iter()
        .filter(|h| targets(h, spec))
        .find(|h| !h.metadata.owner_references.iter().any(|o| o.kind == "ScaledObject"));
    if let Some(hpa) = foreign {
        return Err(DriverError::Rejected(format!(
            "{}: the HorizontalPodAutoscaler {}/{} scales {}: revscale will not fight it (an HPA cannot \
             scale to 0, and two controllers writing one replica count never settle): delete the HPA, \
             or scale the workload with a KEDA ScaledObject, which revscale pauses at WARM",
            component.id,
            spec.namespace,
            hpa.metadata.name,
            spec.object()
        )));
    }
    Ok(keda.map_or(Scaler::Revscale, |s| Scaler::Keda(Box::new(s.clone()))))
}

/// Checks that the workload's `revscale-component` label names `component`, as
/// [`super::verify_component_tag`] does for the tags of AWS resources.
pub fn verify_component_label(
    component: &Component,
    spec: &KubernetesWorkload,
    workload: &Workload,
) -> Result<(), DriverError> {
    let kubectl =
        format!("-n {} {}/{}", spec.namespace, spec.workload_kind.as_str().to_lowercase(), spec.name);
    super::verify_component_mark(
        component,
        &spec.object(),
        workload.metadata.labels.get(COMPONENT_TAG).map(String::as_str),
        &super::Mark::Label { kubectl },
    )
}

/// The driver's error for an API error, naming the component and what to do.
pub fn kube_error(component: &Component, spec: &KubernetesWorkload, e: KubeError) -> DriverError {
    let id = &component.id;
    let message = match &e {
        KubeError::Api { message, .. } => message.clone(),
        other => other.to_string(),
    };
    if e.is_transient() {
        return DriverError::Transient(format!("{id}: {e}"));
    }
    match e.status() {
        // On the cluster revscale created, its step has just checked that the roles'
        // entries cover this namespace: a refusal now is EKS not having applied a new
        // scope yet (it takes seconds), retried within the state machine's attempts.
        Some(status @ (401 | 403)) if spec.access_namespaces.is_some() => DriverError::Transient(format!(
            "{id}: EKS cluster {} refused revscale's role ({status}: {message}) though its access entry covers \
             the namespace {}: EKS may not have applied the scope yet",
            spec.cluster_name, spec.namespace
        )),
        Some(409) => DriverError::Busy(format!(
            "{id}: {} changed after revscale read it (409 Conflict): {message}",
            spec.object()
        )),
        Some(401) => DriverError::Rejected(format!(
            "{id}: EKS cluster {} did not accept revscale's token (401): does the provisioner role have an \
             access entry on the cluster? ({e})",
            spec.cluster_name
        )),
        Some(403) => DriverError::Rejected(format!(
            "{id}: EKS cluster {} forbids it (403): {message}: the provisioner role's access policy must \
             cover the namespace {}",
            spec.cluster_name, spec.namespace
        )),
        Some(422) => DriverError::Rejected(format!(
            "{id}: the API server refused the change to {} as invalid (422): {message}",
            spec.object()
        )),
        _ => DriverError::Rejected(format!("{id}: {e}")),
    }
}

/// The replicas the workload asks for (the API server's default is 1).
fn desired(workload: &Workload) -> i32 {
    workload.spec.replicas.unwrap_or(1)
}

/// Whether the controller has seen the latest spec (without it, the status counts
/// describe the previous one).
fn observed(workload: &Workload) -> bool {
    match (workload.metadata.generation, workload.status.observed_generation) {
        (Some(generation), Some(seen)) => seen >= generation,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

fn stopped(workload: &Workload) -> bool {
    desired(workload) == 0 && workload.status.replicas == 0 && observed(workload)
}

fn settled(workload: &Workload) -> bool {
    let n = desired(workload);
    let s = &workload.status;
    observed(workload) && s.replicas == n && s.ready_replicas == n && s.updated_replicas == n
}

/// A Deployment's rollout that Kubernetes gave up on.
fn deadline_exceeded(workload: &Workload) -> Option<String> {
    workload
        .status
        .conditions
        .iter()
        .find(|c| c.kind == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
        .map(|c| c.message.clone().unwrap_or_else(|| "ProgressDeadlineExceeded".into()))
}

/// "replicas 3, ready 2, updated 3" (and "rollout not observed yet").
pub fn describe(workload: &Workload) -> String {
    let s = &workload.status;
    let pods = if s.replicas == desired(workload) { String::new() } else { format!(", pods {}", s.replicas) };
    let seen = if observed(workload) { "" } else { ", rollout not observed yet" };
    format!(
        "replicas {}, ready {}, updated {}{pods}{seen}",
        desired(workload),
        s.ready_replicas,
        s.updated_replicas
    )
}

fn paused(scaled_object: &Autoscaler) -> Option<&str> {
    scaled_object.metadata.annotations.get(PAUSED_REPLICAS).map(String::as_str)
}

/// Progress of an existing workload towards `target`.
pub fn progress(workload: &Workload, scaler: &Scaler, target: ComponentState) -> DriverStatus {
    if let Some(why) = deadline_exceeded(workload).filter(|_| target == ComponentState::Hot) {
        return DriverStatus::Failed(format!("rollout failed: {why} ({})", describe(workload)));
    }
    let ready = match (target, scaler) {
        (ComponentState::Hot, Scaler::Revscale) => desired(workload) > 0 && settled(workload),
        // KEDA decides HOT's count, from its floor up.
        (ComponentState::Hot, Scaler::Keda(so)) => {
            paused(so).is_none()
                && settled(workload)
                && desired(workload) >= so.spec.min_replica_count.unwrap_or(0)
        }
        (_, Scaler::Revscale) => stopped(workload),
        (_, Scaler::Keda(so)) => paused(so) == Some("0") && stopped(workload),
    };
    if ready { DriverStatus::Ready } else { DriverStatus::InProgress }
}

/// Where an existing workload is, with its replicas (what HOT restores).
pub fn observation(workload: &Workload, scaler: &Scaler) -> Observed {
    let mut actual = describe(workload);
    let states: &[ComponentState] = match scaler {
        Scaler::Keda(so) => {
            actual.push_str(&match paused(so) {
                Some(n) => format!(", KEDA ScaledObject {} paused at {n}", so.metadata.name),
                None => format!(", scaled by KEDA ScaledObject {}", so.metadata.name),
            });
            match paused(so) {
                Some("0") if stopped(workload) => &[ComponentState::Cold, ComponentState::Warm],
                None if settled(workload) => &[ComponentState::Hot],
                _ => &[],
            }
        }
        Scaler::Revscale if stopped(workload) => &[ComponentState::Cold, ComponentState::Warm],
        Scaler::Revscale if desired(workload) > 0 && settled(workload) => &[ComponentState::Hot],
        Scaler::Revscale => &[],
    };
    let observed = if states.is_empty() { Observed::moving(actual) } else { Observed::at(states, actual) };
    let replicas = u32::try_from(desired(workload)).unwrap_or(0);
    observed.with_capacity(Capacity { desired: replicas, min: None, max: None })
}

/// The driver's calls on one cluster, for one component.
pub struct Workloads<'a> {
    pub api: &'a KubeClient,
    pub spec: &'a KubernetesWorkload,
    pub component: &'a Component,
}

impl Workloads<'_> {
    fn error(&self, e: KubeError) -> DriverError {
        kube_error(self.component, self.spec, e)
    }

    async fn workload(&self) -> Result<Option<Workload>, DriverError> {
        self.api.get(&workload_path(self.spec)).await.map_err(|e| self.error(e))
    }

    /// The namespace's autoscalers of one kind; none when the kind is not installed
    /// (KEDA's CRD absent: the API answers 404 for its path).
    async fn autoscalers(&self, path: String) -> Result<Vec<Autoscaler>, DriverError> {
        let list: Option<List<Autoscaler>> = self.api.get(&path).await.map_err(|e| self.error(e))?;
        Ok(list.map(|l| l.items).unwrap_or_default())
    }

    async fn scaler(&self) -> Result<Scaler, DriverError> {
        let hpas = self.autoscalers(hpa_path(self.spec)).await?;
        let scaled_objects = self.autoscalers(scaled_objects_path(self.spec)).await?;
        scaler(self.component, self.spec, &hpas, &scaled_objects)
    }

    fn absent(&self) -> DriverError {
        DriverError::Rejected(format!(
            "{}: {} does not exist on EKS cluster {} (deleted outside revscale, or another namespace?)",
            self.component.id,
            self.spec.object(),
            self.spec.cluster_name
        ))
    }

    pub async fn apply(&self, target: ComponentState, hot: Option<Capacity>) -> Result<(), DriverError> {
        let manifests = self.manifests()?;
        if !manifests.is_empty() {
            return match target {
                ComponentState::Cold => self.delete_manifests(&manifests).await,
                _ => self.apply_manifests(&manifests, target, hot).await,
            };
        }
        let Some(workload) = self.workload().await? else {
            return Err(self.absent());
        };
        verify_component_label(self.component, self.spec, &workload)?;
        let resource_version = workload.metadata.resource_version.clone();
        match self.scaler().await? {
            Scaler::Keda(so) => {
                let value = match target {
                    ComponentState::Hot => serde_json::Value::Null,
                    _ => json!("0"),
                };
                let wanted = value.as_str();
                if paused(&so) == wanted {
                    return Ok(());
                }
                let path = format!("{}/{}", scaled_objects_path(self.spec), so.metadata.name);
                let patch = json!({"metadata": {
                    "resourceVersion": so.metadata.resource_version,
                    "annotations": {PAUSED_REPLICAS: value},
                }});
                self.api.merge_patch::<serde_json::Value>(&path, &patch).await.map_err(|e| self.error(e))?;
            }
            Scaler::Revscale => {
                let replicas = self.replicas_for(target, hot)?;
                if desired(&workload) == replicas {
                    return Ok(());
                }
                let patch = json!({
                    "metadata": {"resourceVersion": resource_version},
                    "spec": {"replicas": replicas},
                });
                let path = format!("{}/scale", workload_path(self.spec));
                self.api.merge_patch::<serde_json::Value>(&path, &patch).await.map_err(|e| self.error(e))?;
            }
        }
        Ok(())
    }

    /// The replicas `target` asks for: 0, or HOT's (configured, else saved; never 0).
    fn replicas_for(&self, target: ComponentState, hot: Option<Capacity>) -> Result<i32, DriverError> {
        let replicas = super::desired_count_for(target, hot).ok_or_else(|| {
            DriverError::Rejected(format!(
                "{}: no HOT replicas for {}: set replicas in the configuration, or let revscale see it HOT once",
                self.component.id,
                self.spec.object()
            ))
        })?;
        Ok(i32::try_from(replicas).unwrap_or(i32::MAX))
    }

    fn manifests(&self) -> Result<Vec<Manifest>, DriverError> {
        self.spec.manifests().map_err(|problems| {
            DriverError::Rejected(format!("{}: manifests: {}", self.component.id, problems.join("; ")))
        })
    }

    /// A document as revscale applies it: in the component's namespace, labelled with
    /// the component, the workload at `replicas`, and carrying the `resourceVersion`
    /// revscale read (a change in between is a 409, never overwritten unseen).
    fn prepared(
        &self,
        manifest: &Manifest,
        current: Option<&serde_json::Value>,
        replicas: i32,
    ) -> serde_json::Value {
        let mut object = manifest.object.clone();
        let metadata = &mut object["metadata"];
        metadata["namespace"] = json!(self.spec.namespace);
        metadata["labels"][COMPONENT_TAG] = json!(self.component.id.as_str());
        if let Some(version) = current.and_then(|c| c.pointer("/metadata/resourceVersion")) {
            metadata["resourceVersion"] = version.clone();
        }
        if self.is_workload(manifest) {
            object["spec"]["replicas"] = json!(replicas);
        }
        object
    }

    fn is_workload(&self, manifest: &Manifest) -> bool {
        manifest.kind == self.spec.workload_kind.as_str() && manifest.name == self.spec.name
    }

    /// What exists of each document, refusing any that exists without revscale's label
    /// for this component: revscale takes over, and deletes, only what it applied.
    async fn current(&self, manifests: &[Manifest]) -> Result<Vec<Option<serde_json::Value>>, DriverError> {
        let mut found = Vec::with_capacity(manifests.len());
        for manifest in manifests {
            let path = manifest.path(&self.spec.namespace);
            let current: Option<serde_json::Value> =
                self.api.get(&path).await.map_err(|e| self.manifest_error(manifest, e))?;
            if let Some(object) = &current {
                let label = object.pointer("/metadata/labels").and_then(|l| l.get(COMPONENT_TAG));
                if label.and_then(|v| v.as_str()) != Some(self.component.id.as_str()) {
                    return Err(DriverError::Rejected(format!(
                        "{}: {} already exists in namespace {} without the label {COMPONENT_TAG}={}: revscale \
                         applies and deletes only what it made; delete or rename it, or label it if it is \
                         this component's",
                        self.component.id,
                        manifest.describe(),
                        self.spec.namespace,
                        self.component.id
                    )));
                }
            }
            found.push(current);
        }
        Ok(found)
    }

    /// WARM or HOT with manifests: every document dry-run first (the API server checks
    /// each, admission included, and stores nothing), then applied. A document refused
    /// in the dry run leaves the cluster as it was.
    async fn apply_manifests(
        &self,
        manifests: &[Manifest],
        target: ComponentState,
        hot: Option<Capacity>,
    ) -> Result<(), DriverError> {
        let replicas = self.replicas_for(target, hot)?;
        if let Scaler::Keda(so) = self.scaler().await? {
            return Err(DriverError::Rejected(format!(
                "{}: the KEDA ScaledObject {} scales {}, whose replicas revscale's manifests set: scale it \
                 with one or the other",
                self.component.id,
                so.metadata.name,
                self.spec.object()
            )));
        }
        let current = self.current(manifests).await?;
        let prepared: Vec<_> =
            manifests.iter().zip(&current).map(|(m, c)| self.prepared(m, c.as_ref(), replicas)).collect();
        for (manifest, object) in manifests.iter().zip(&prepared) {
            self.api
                .apply::<serde_json::Value>(&manifest.path(&self.spec.namespace), object, true)
                .await
                .map_err(|e| self.dry_run_error(manifest, e))?;
        }
        for (manifest, object) in manifests.iter().zip(&prepared) {
            self.api
                .apply::<serde_json::Value>(&manifest.path(&self.spec.namespace), object, false)
                .await
                .map_err(|e| self.manifest_error(manifest, e))?;
        }
        Ok(())
    }

    /// COLD with manifests: the documents deleted, last first (the workload before
    /// what it uses), each only if it carries this component's label and is still the
    /// version read.
    async fn delete_manifests(&self, manifests: &[Manifest]) -> Result<(), DriverError> {
        let current = self.current(manifests).await?;
        for (manifest, current) in manifests.iter().zip(&current).rev() {
            let Some(current) = current else { continue };
            let options = json!({
                "kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                "preconditions": {
                    "uid": current.pointer("/metadata/uid"),
                    "resourceVersion": current.pointer("/metadata/resourceVersion"),
                },
            });
            self.api
                .delete(&manifest.path(&self.spec.namespace), &options)
                .await
                .map_err(|e| self.manifest_error(manifest, e))?;
        }
        Ok(())
    }

    fn manifest_error(&self, manifest: &Manifest, e: KubeError) -> DriverError {
        let id = &self.component.id;
        let namespace = &self.spec.namespace;
        match (&e, e.status()) {
            (KubeError::Api { message, .. }, Some(404)) => DriverError::Rejected(format!(
                "{id}: {} in namespace {namespace}: {message}: does the namespace exist? (kubectl create \
                 namespace {namespace}: revscale's access entry covers namespaces, it cannot create them)",
                manifest.describe()
            )),
            _ => match kube_error(self.component, self.spec, e) {
                DriverError::Rejected(why) => {
                    DriverError::Rejected(format!("{why} ({})", manifest.describe()))
                }
                other => other,
            },
        }
    }

    fn dry_run_error(&self, manifest: &Manifest, e: KubeError) -> DriverError {
        match self.manifest_error(manifest, e) {
            DriverError::Rejected(why) => {
                DriverError::Rejected(format!("{why}: refused in the dry run, so nothing was applied"))
            }
            other => other,
        }
    }

    pub async fn status(&self, target: ComponentState) -> Result<DriverStatus, DriverError> {
        let manifests = self.manifests()?;
        if !manifests.is_empty() && target == ComponentState::Cold {
            let left = self.current(&manifests).await?.iter().filter(|c| c.is_some()).count();
            return Ok(if left == 0 { DriverStatus::Ready } else { DriverStatus::InProgress });
        }
        let Some(workload) = self.workload().await? else {
            return Ok(DriverStatus::Failed(format!(
                "{} does not exist (deleted outside revscale?)",
                self.spec.object()
            )));
        };
        Ok(progress(&workload, &self.scaler().await?, target))
    }

    /// What the first step would refuse: an HPA on the workload, a KEDA ScaledObject
    /// on one revscale applies, the company's workload unlabelled (or labelled for
    /// another component), an object a manifest names that revscale did not make.
    pub async fn preflight(&self) -> Result<Vec<String>, DriverError> {
        let refusal = |e: DriverError| match e {
            DriverError::Rejected(why) => Ok(vec![why]),
            other => Err(other),
        };
        let manifests = self.manifests()?;
        match self.scaler().await {
            Ok(Scaler::Keda(so)) if !manifests.is_empty() => {
                return Ok(vec![format!(
                    "{}: the KEDA ScaledObject {} scales {}, whose replicas revscale's manifests set",
                    self.component.id,
                    so.metadata.name,
                    self.spec.object()
                )]);
            }
            Ok(_) => {}
            Err(e) => return refusal(e),
        }
        if !manifests.is_empty() {
            return self.current(&manifests).await.map(|_| Vec::new()).or_else(refusal);
        }
        match self.workload().await? {
            Some(workload) => verify_component_label(self.component, self.spec, &workload)
                .map(|()| Vec::new())
                .or_else(refusal),
            None => Ok(vec![self.absent().to_string()]),
        }
    }

    pub async fn observe(&self) -> Result<Observed, DriverError> {
        let applied = self.spec.has_manifests();
        let Some(workload) = self.workload().await? else {
            if applied {
                return Ok(Observed::at(
                    &[ComponentState::Cold],
                    format!("no {}: not applied", self.spec.object()),
                ));
            }
            return Ok(Observed::absent(format!("no {} (deleted outside revscale?)", self.spec.object())));
        };
        let mut observed = observation(&workload, &self.scaler().await?);
        // What revscale applied exists at WARM, never at COLD.
        if applied {
            observed.states.retain(|s| *s != ComponentState::Cold);
        }
        Ok(observed)
    }
}

/// A client for `cluster`'s API: its endpoint and certificate authority from
/// `DescribeCluster`, a token for it (from `tokens`' credentials), or the tests' server.
/// `Ok(None)` when the cluster does not exist; a cluster that is not ACTIVE has no API
/// to call.
pub async fn cluster_client(
    eks: &aws_sdk_eks::Client,
    tokens: &crate::kubernetes::TokenSource,
    test_server: Option<&TestEndpoint>,
    cluster: &str,
) -> Result<Option<KubeClient>, ClusterError> {
    let found = match eks.describe_cluster().name(cluster).send().await {
        Ok(out) => out.cluster,
        Err(e) if is_code(&e, NOT_FOUND) => None,
        Err(e) => return Err(ClusterError::Driver(sdk_error(e, BUSY))),
    };
    described_client(found, tokens, test_server, cluster).await
}

/// [`cluster_client`] for a cluster already described (`None`: it does not exist).
async fn described_client(
    found: Option<aws_sdk_eks::types::Cluster>,
    tokens: &crate::kubernetes::TokenSource,
    test_server: Option<&TestEndpoint>,
    cluster: &str,
) -> Result<Option<KubeClient>, ClusterError> {
    let Some(found) = found else { return Ok(None) };
    let status = found.status.as_ref().map_or("unknown", |s| s.as_str()).to_owned();
    let (Some(endpoint), Some(ca), "ACTIVE") = (
        found.endpoint.as_deref(),
        found.certificate_authority.as_ref().and_then(|c| c.data.as_deref()),
        status.as_str(),
    ) else {
        return Err(ClusterError::NotActive(status));
    };
    let ca = base64::engine::general_purpose::STANDARD.decode(ca).map_err(|e| {
        ClusterError::Kube(KubeError::Setup(format!("the certificate authority is not base64: {e}")))
    })?;
    let token = tokens.token(cluster).await.map_err(ClusterError::Kube)?;
    let client = match test_server {
        Some(test_server) => KubeClient::new(test_server.as_str(), None, token),
        None => KubeClient::new(endpoint, Some(&ca), token),
    };
    client.map(Some).map_err(ClusterError::Kube)
}

/// [`cluster_client`] with `sdk`'s credentials (an operator's, in the CLI).
pub async fn client_for(
    sdk: &aws_config::SdkConfig,
    test_server: Option<&TestEndpoint>,
    cluster: &str,
) -> Result<Option<KubeClient>, ClusterError> {
    let tokens = crate::kubernetes::TokenSource::new(sdk);
    cluster_client(&aws_sdk_eks::Client::new(sdk), &tokens, test_server, cluster).await
}

/// Why no client for a cluster could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Driver(DriverError),
    #[error("the cluster is {0}, not ACTIVE with an endpoint")]
    NotActive(String),
    #[error("{0}")]
    Kube(#[source] KubeError),
}

async fn cluster_api(
    aws: &Clients,
    component: &Component,
    spec: &KubernetesWorkload,
) -> Result<KubeClient, DriverError> {
    existing(cluster_api_if_any(aws, component, spec).await?, component, spec)
}

/// The client, or the refusal for a cluster that does not exist.
fn existing(
    api: Option<KubeClient>,
    component: &Component,
    spec: &KubernetesWorkload,
) -> Result<KubeClient, DriverError> {
    api.ok_or_else(|| {
        DriverError::Rejected(format!(
            "{}: EKS cluster {} does not exist: the workload's component must depend on the cluster's",
            component.id, spec.cluster_name
        ))
    })
}

/// [`cluster_api`], or `None` when the cluster does not exist.
async fn cluster_api_if_any(
    aws: &Clients,
    component: &Component,
    spec: &KubernetesWorkload,
) -> Result<Option<KubeClient>, DriverError> {
    let found = super::eks_cluster::cluster(aws, &spec.cluster_name).await?;
    described_api(aws, component, spec, found).await
}

/// [`cluster_api_if_any`] for the cluster as already described.
async fn described_api(
    aws: &Clients,
    component: &Component,
    spec: &KubernetesWorkload,
    found: Option<aws_sdk_eks::types::Cluster>,
) -> Result<Option<KubeClient>, DriverError> {
    let cluster = &spec.cluster_name;
    match described_client(found, &aws.kubernetes, aws.kubernetes_endpoint.as_ref(), cluster).await {
        Ok(client) => Ok(client),
        Err(ClusterError::NotActive(status)) => Err(DriverError::Rejected(format!(
            "{}: EKS cluster {cluster} is {status}, not ACTIVE with an endpoint: the workload's component \
             must depend on the cluster's",
            component.id
        ))),
        Err(ClusterError::Driver(e)) => Err(e),
        Err(ClusterError::Kube(e)) => Err(kube_error(component, spec, e)),
    }
}

/// A workload carrying the label `revscale-component`, anywhere in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    pub namespace: String,
    pub kind: &'static str,
    pub name: String,
    pub component: String,
    pub replicas: i32,
}

/// Every Deployment and StatefulSet labelled `revscale-component` (any value), in every
/// namespace the caller may list: `revscale status --orphans` judges them against the
/// state.
pub async fn labelled_workloads(api: &KubeClient) -> Result<Vec<Labelled>, KubeError> {
    let mut out = Vec::new();
    for (plural, kind) in [("deployments", "Deployment"), ("statefulsets", "StatefulSet")] {
        let path = format!("/apis/apps/v1/{plural}?labelSelector={COMPONENT_TAG}");
        let list: Option<List<Workload>> = api.get(&path).await?;
        for w in list.map(|l| l.items).unwrap_or_default() {
            let Some(component) = w.metadata.labels.get(COMPONENT_TAG).cloned() else { continue };
            out.push(Labelled {
                namespace: w.metadata.namespace.clone(),
                kind,
                name: w.metadata.name.clone(),
                component,
                replicas: desired(&w),
            });
        }
    }
    Ok(out)
}

impl AwsKind for KubernetesWorkload {
    /// The Kubernetes permissions are the cluster's (the access entry's policy), not
    /// IAM's: IAM grants only reading the cluster's endpoint. On the cluster revscale
    /// creates, its steps also keep the roles' access entries current, with the
    /// actions the `eks_cluster` component's kind lists (it is in the same
    /// configuration whenever they are called).
    fn iam_actions(&self) -> &'static [&'static str] {
        &["eks:DescribeCluster"]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        // On the cluster revscale created, the roles' access first: a workload in a
        // namespace added since the cluster's last step is covered before its first
        // call. EKS applies a new scope within seconds, so the step is retried (as a
        // transient error, by the state machine's Retry), not sent now to a 403.
        // One DescribeCluster for both the access entries and the API's client.
        let found = super::eks_cluster::cluster(aws, &self.cluster_name).await?;
        if let (Some(namespaces), Some(cluster)) = (&self.access_namespaces, &found)
            && super::eks_cluster::keep_access_current(aws, cluster, namespaces).await?
        {
            return Err(DriverError::Transient(format!(
                "{}: revscale's roles' access entries on EKS cluster {} now cover {}: retried once EKS applies them",
                request.component.id,
                self.cluster_name,
                namespaces.join(", ")
            )));
        }
        let api =
            existing(described_api(aws, request.component, self, found).await?, request.component, self)?;
        Workloads { api: &api, spec: self, component: request.component }
            .apply(request.target, request.hot_capacity())
            .await
    }

    async fn status(
        &self,
        aws: &Clients,
        component: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        let api = cluster_api(aws, component, self).await?;
        Workloads { api: &api, spec: self, component }.status(target).await
    }

    async fn preflight(&self, aws: &Clients, component: &Component) -> Result<Vec<String>, DriverError> {
        // No cluster yet (revscale creates it at an earlier level): nothing to read.
        match cluster_api_if_any(aws, component, self).await? {
            Some(api) => Workloads { api: &api, spec: self, component }.preflight().await,
            None => Ok(Vec::new()),
        }
    }

    async fn observe(&self, aws: &Clients, component: &Component) -> Result<Observed, DriverError> {
        // No cluster, no workload: what revscale applies is COLD (a drain deletes the
        // cluster last); the company's own is missing.
        let Some(api) = cluster_api_if_any(aws, component, self).await? else {
            let no_cluster = format!("no EKS cluster {}", self.cluster_name);
            return Ok(if self.has_manifests() {
                Observed::at(&[ComponentState::Cold], no_cluster)
            } else {
                Observed::absent(no_cluster)
            });
        };
        Workloads { api: &api, spec: self, component }.observe().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ComponentState::{Cold, Hot, Warm};
    use revscale_engine::drivers::kubernetes_workload::WorkloadKind;
    use wiremock::matchers::{body_json, body_partial_json, header, method, path, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "k8s-aws-v1.dGVzdA";

    fn vault_spec() -> KubernetesWorkload {
        KubernetesWorkload {
            cluster_name: "revscale".into(),
            namespace: "vault".into(),
            workload_kind: WorkloadKind::StatefulSet,
            name: "vault".into(),
            replicas: Some(3),
            ..KubernetesWorkload::default()
        }
    }

    fn component(spec: &KubernetesWorkload) -> Component {
        let zero = revscale_engine::Money::parse("0", revscale_engine::Currency::EUR)
            .unwrap_or_else(|e| panic!("{e}"));
        Component {
            id: revscale_engine::ComponentId::new("vault_ha"),
            driver: spec.clone().into(),
            billing: revscale_engine::config::Billing::Aws,
            hot_cost: zero,
            warm_cost: zero,
            depends_on: vec![],
            level: 3,
        }
    }

    /// A StatefulSet as the API server answers it: `spec` replicas, `ready` of them
    /// ready and updated, the rollout observed unless `generation` is ahead.
    fn workload_json(replicas: i32, ready: i32, generation: i64, observed: i64) -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "vault", "namespace": "vault", "generation": generation,
                         "resourceVersion": "4711", "labels": {"revscale-component": "vault_ha"}},
            "spec": {"replicas": replicas},
            "status": {"replicas": ready, "readyReplicas": ready, "updatedReplicas": ready,
                       "observedGeneration": observed},
        })
    }

    fn workload(replicas: i32, ready: i32) -> Workload {
        serde_json::from_value(workload_json(replicas, ready, 2, 2)).unwrap()
    }

    fn status_object(code: u16, reason: &str, message: &str) -> ResponseTemplate {
        ResponseTemplate::new(code).set_body_json(json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": reason, "message": message, "code": code,
        }))
    }

    fn scaled_object(paused: Option<&str>, min: Option<i32>) -> Autoscaler {
        let mut value = json!({
            "metadata": {"name": "vault-so", "resourceVersion": "17", "annotations": {}},
            "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "vault"}},
        });
        if let Some(n) = paused {
            value["metadata"]["annotations"][PAUSED_REPLICAS] = json!(n);
        }
        if let Some(min) = min {
            value["spec"]["minReplicaCount"] = json!(min);
        }
        serde_json::from_value(value).unwrap()
    }

    /// A server answering for the StatefulSet `vault/vault`, with no autoscalers (KEDA
    /// not installed: its path is a 404).
    async fn server(workload: ResponseTemplate) -> MockServer {
        let not_installed =
            status_object(404, "NotFound", "the server could not find the requested resource");
        server_with(workload, json!([]), not_installed).await
    }

    /// As [`server`], with the namespace's HPAs and the answer for its ScaledObjects.
    async fn server_with(
        workload: ResponseTemplate,
        hpas: serde_json::Value,
        scaled_objects: ResponseTemplate,
    ) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/apis/apps/v1/namespaces/vault/statefulsets/vault"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(workload)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/apis/autoscaling/v2/namespaces/vault/horizontalpodautoscalers"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": hpas})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/apis/keda.sh/v1alpha1/namespaces/vault/scaledobjects"))
            .respond_with(scaled_objects)
            .mount(&server)
            .await;
        server
    }

    async fn apply(server: &MockServer, target: ComponentState, hot: Option<u32>) -> Result<(), DriverError> {
        let spec = vault_spec();
        let c = component(&spec);
        let api = KubeClient::new(&server.uri(), None, TOKEN.into()).unwrap();
        let hot = hot.map(|desired| Capacity { desired, min: None, max: None });
        Workloads { api: &api, spec: &spec, component: &c }.apply(target, hot).await
    }

    async fn status(server: &MockServer, target: ComponentState) -> Result<DriverStatus, DriverError> {
        let spec = vault_spec();
        let c = component(&spec);
        let api = KubeClient::new(&server.uri(), None, TOKEN.into()).unwrap();
        Workloads { api: &api, spec: &spec, component: &c }.status(target).await
    }

    fn refusal<T: std::fmt::Debug>(result: Result<T, DriverError>) -> String {
        match result {
            Err(DriverError::Rejected(why)) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    /// A workload on the cluster revscale created: its step first keeps the roles'
    /// access entries current, and is retried (Transient) when it had to change them, before
    /// any Kubernetes call; with nothing to change it goes on to the API.
    #[tokio::test]
    async fn a_workload_in_a_namespace_the_roles_scope_lacks_gets_it_added_and_is_retried_before_any_call() {
        use crate::drivers::eks_cluster::ClusterAccess;
        const ROLE: &str = "arn:aws-cn:iam::111122223333:role/revscale-provision";
        const LIST: &str = r"^/clusters/revscale/access-entries/[^/]+/access-policies$";
        let described = json!({"cluster": {"name": "revscale", "status": "ACTIVE",
            "arn": "arn:aws-cn:eks:cn-north-1:111122223333:cluster/revscale",
            "endpoint": "https://revscale.eks.example", "certificateAuthority": {"data": "bm90IGEgY2VydA=="}}});
        let scoped = |namespaces: &[&str]| {
            ResponseTemplate::new(200).set_body_json(json!({"associatedAccessPolicies": [{
                "policyArn": "arn:aws-cn:eks::aws:cluster-access-policy/AmazonEKSEditPolicy",
                "accessScope": {"type": "namespace", "namespaces": namespaces}}]}))
        };
        let spec = KubernetesWorkload {
            access_namespaces: Some(vec!["tee".into(), "vault".into()]),
            ..vault_spec()
        };
        let c = component(&spec);
        for (scope, associations) in [(&["tee"][..], 1), (&["tee", "vault"][..], 0)] {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .and(path("/clusters/revscale"))
                .respond_with(ResponseTemplate::new(200).set_body_json(&described))
                .mount(&server)
                .await;
            Mock::given(method("GET"))
                .and(path_regex(LIST))
                .respond_with(scoped(scope))
                .expect(1)
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path_regex(LIST))
                .and(body_partial_json(json!({"accessScope": {"namespaces": ["tee", "vault"]}})))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
                .expect(associations)
                .mount(&server)
                .await;
            // The workload itself: gone, so a step that reaches the API is refused.
            Mock::given(method("GET"))
                .and(path("/apis/apps/v1/namespaces/vault/statefulsets/vault"))
                .respond_with(status_object(404, "NotFound", "statefulsets.apps \"vault\" not found"))
                .expect(1 - associations)
                .mount(&server)
                .await;
            let aws = crate::drivers::clients_at(
                &server.uri(),
                ClusterAccess { provisioner: Some(ROLE.into()), evaluator: None },
            );
            let result =
                AwsKind::apply(&spec, &aws, &Apply { component: &c, target: Warm, saved: None }).await;
            match (associations, result) {
                (1, Err(DriverError::Transient(why))) => {
                    assert!(why.contains("now cover tee, vault"), "{why}")
                }
                (0, Err(DriverError::Rejected(why))) => assert!(why.contains("does not exist"), "{why}"),
                (_, other) => panic!("scope {scope:?}: {other:?}"),
            }
        }
    }

    // The pure rules.

    #[test]
    fn a_workload_with_every_replica_ready_updated_and_observed_is_hot() {
        let w = workload(3, 3);
        assert_eq!(progress(&w, &Scaler::Revscale, Hot), DriverStatus::Ready);
        let o = observation(&w, &Scaler::Revscale);
        assert_eq!(o.states, [Hot]);
        assert_eq!(o.capacity.map(|c| c.desired), Some(3));
        assert_eq!(o.actual, "replicas 3, ready 3, updated 3");
    }

    #[test]
    fn a_rollout_the_controller_has_not_observed_is_not_ready_whatever_its_counts_say() {
        let w: Workload = serde_json::from_value(workload_json(3, 3, 3, 2)).unwrap();
        assert_eq!(progress(&w, &Scaler::Revscale, Hot), DriverStatus::InProgress);
        let o = observation(&w, &Scaler::Revscale);
        assert!(o.moving && o.states.is_empty(), "{o:?}");
        assert!(o.actual.ends_with("rollout not observed yet"), "{}", o.actual);
    }

    #[test]
    fn a_scale_that_never_becomes_ready_stays_in_progress_until_the_kinds_limit() {
        // Pods Pending for want of nodes, or crash-looping: the counts never meet, and
        // the state machine times the step out after readiness_minutes (30).
        for ready in [0, 1, 2] {
            assert_eq!(progress(&workload(3, ready), &Scaler::Revscale, Hot), DriverStatus::InProgress);
        }
        use revscale_engine::drivers::Kind;
        assert_eq!(vault_spec().readiness_minutes(), 30);
    }

    #[test]
    fn a_deployment_past_its_progress_deadline_fails_hot_with_kubernetes_words() {
        let mut w = workload(3, 1);
        w.status.conditions.push(Condition {
            kind: "Progressing".into(),
            status: "False".into(),
            reason: Some("ProgressDeadlineExceeded".into()),
            message: Some("ReplicaSet \"web-5d\" has timed out progressing.".into()),
        });
        let DriverStatus::Failed(why) = progress(&w, &Scaler::Revscale, Hot) else { panic!() };
        assert!(why.contains("has timed out progressing") && why.contains("replicas 3, ready 1"), "{why}");
        // Going WARM from there is not a failed rollout.
        w.spec.replicas = Some(0);
        assert_eq!(progress(&w, &Scaler::Revscale, Warm), DriverStatus::InProgress, "pods still there");
    }

    #[test]
    fn zero_replicas_with_no_pod_left_is_warm_and_cold_and_pods_still_stopping_are_not() {
        let w = workload(0, 0);
        assert_eq!(progress(&w, &Scaler::Revscale, Warm), DriverStatus::Ready);
        assert_eq!(progress(&w, &Scaler::Revscale, Cold), DriverStatus::Ready);
        assert_eq!(observation(&w, &Scaler::Revscale).states, [Cold, Warm]);
        let mut stopping = workload(0, 0);
        stopping.status.replicas = 2;
        assert_eq!(progress(&stopping, &Scaler::Revscale, Warm), DriverStatus::InProgress);
        assert_eq!(
            observation(&stopping, &Scaler::Revscale).actual,
            "replicas 0, ready 0, updated 0, pods 2"
        );
        assert_eq!(progress(&w, &Scaler::Revscale, Hot), DriverStatus::InProgress, "0 is never HOT");
    }

    #[test]
    fn replicas_left_out_are_the_api_servers_default_of_one() {
        let mut w = workload(1, 1);
        w.spec.replicas = None;
        assert_eq!(progress(&w, &Scaler::Revscale, Hot), DriverStatus::Ready);
    }

    #[test]
    fn a_keda_workload_is_warm_when_paused_at_zero_and_hot_when_resumed_at_its_floor() {
        let paused = Scaler::Keda(Box::new(scaled_object(Some("0"), Some(1))));
        let resumed = Scaler::Keda(Box::new(scaled_object(None, Some(1))));
        assert_eq!(progress(&workload(0, 0), &paused, Warm), DriverStatus::Ready);
        assert_eq!(
            progress(&workload(0, 0), &resumed, Warm),
            DriverStatus::InProgress,
            "KEDA may scale it up"
        );
        assert_eq!(progress(&workload(0, 0), &resumed, Hot), DriverStatus::InProgress, "below the floor");
        assert_eq!(progress(&workload(2, 2), &resumed, Hot), DriverStatus::Ready);
        assert_eq!(progress(&workload(2, 2), &paused, Hot), DriverStatus::InProgress);
        // minReplicaCount 0 (KEDA's default): KEDA may keep it at 0 until work comes.
        assert_eq!(
            progress(&workload(0, 0), &Scaler::Keda(Box::new(scaled_object(None, None))), Hot),
            DriverStatus::Ready
        );
        let o = observation(&workload(0, 0), &paused);
        assert_eq!(o.states, [Cold, Warm]);
        assert!(o.actual.ends_with("KEDA ScaledObject vault-so paused at 0"), "{}", o.actual);
    }

    #[test]
    fn an_hpa_on_the_workload_is_refused_by_name_and_kedas_own_hpa_is_not() {
        let spec = vault_spec();
        let c = component(&spec);
        let hpa = |name: &str, kind: &str, target: &str, owner: Option<&str>| -> Autoscaler {
            let owners: Vec<_> = owner.map(|k| json!({"kind": k, "name": "vault-so"})).into_iter().collect();
            serde_json::from_value(json!({
                "metadata": {"name": name, "ownerReferences": owners},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target}},
            }))
            .unwrap()
        };
        let why = refusal(scaler(&c, &spec, &[hpa("vault-cpu", "StatefulSet", "vault", None)], &[]));
        assert!(
            why.starts_with(
                "vault_ha: the HorizontalPodAutoscaler vault/vault-cpu scales StatefulSet vault/vault"
            ),
            "{why}"
        );
        assert!(why.contains("KEDA ScaledObject"), "{why}");
        let keda_hpa = hpa("keda-hpa-vault-so", "StatefulSet", "vault", Some("ScaledObject"));
        let so = scaled_object(None, None);
        assert!(matches!(scaler(&c, &spec, &[keda_hpa], &[so]), Ok(Scaler::Keda(_))));
        // Another workload's, or a Deployment of the same name.
        let others = [hpa("web", "StatefulSet", "web", None), hpa("vault", "Deployment", "vault", None)];
        assert!(matches!(scaler(&c, &spec, &others, &[]), Ok(Scaler::Revscale)));
        // A ScaledObject without a kind targets a Deployment.
        let mut deployment_so = scaled_object(None, None);
        deployment_so.spec.scale_target_ref.kind = None;
        assert!(matches!(scaler(&c, &spec, &[], &[deployment_so]), Ok(Scaler::Revscale)));
    }

    #[test]
    fn a_workload_without_the_label_or_labelled_for_another_component_is_refused() {
        let spec = vault_spec();
        let c = component(&spec);
        let mut w = workload(3, 3);
        assert_eq!(verify_component_label(&c, &spec, &w), Ok(()));
        w.metadata.labels.insert(COMPONENT_TAG.into(), "search".into());
        let why = refusal(verify_component_label(&c, &spec, &w));
        assert!(why.contains("carries the label revscale-component=search, not vault_ha"), "{why}");
        w.metadata.labels.clear();
        let why = refusal(verify_component_label(&c, &spec, &w));
        assert!(
            why.contains("kubectl label -n vault statefulset/vault revscale-component=vault_ha"),
            "{why}"
        );
    }

    // Every call and every answer, against a server speaking the API's JSON.

    const MANIFESTS: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: vault-config}\ndata: {a: b}\n---\n\
                             apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: vault}\nspec: {serviceName: vault}\n";
    const CONFIG_MAP: &str = "/api/v1/namespaces/vault/configmaps/vault-config";
    const STATEFUL_SET: &str = "/apis/apps/v1/namespaces/vault/statefulsets/vault";

    /// Runs `call` on the Vault workload applied from [`MANIFESTS`].
    async fn with_manifests<T>(
        server: &MockServer,
        call: impl AsyncFnOnce(&Workloads<'_>) -> Result<T, DriverError>,
    ) -> Result<T, DriverError> {
        let spec = KubernetesWorkload { manifests_body: Some(MANIFESTS.into()), ..vault_spec() };
        let c = component(&spec);
        let api = KubeClient::new(&server.uri(), None, TOKEN.into()).unwrap();
        call(&Workloads { api: &api, spec: &spec, component: &c }).await
    }

    /// The apply of one document (dry run or not) the API server answers with `answer`.
    async fn applies(server: &MockServer, at: &str, dry_run: bool, answer: ResponseTemplate, times: u64) {
        use wiremock::matchers::query_param;
        let mut mock = Mock::given(method("PATCH"))
            .and(path(at))
            .and(header("content-type", "application/apply-patch+yaml"))
            .and(query_param("fieldManager", "revscale"))
            .and(query_param("force", "true"));
        mock = if dry_run {
            mock.and(query_param("dryRun", "All"))
        } else {
            mock.and(wiremock::matchers::query_param_is_missing("dryRun"))
        };
        mock.respond_with(answer).expect(times).mount(server).await;
    }

    fn not_found(what: &str) -> ResponseTemplate {
        status_object(404, "NotFound", &format!("{what} not found"))
    }

    /// A server on which none of [`MANIFESTS`]' objects exists yet.
    async fn nothing_applied() -> MockServer {
        let server = server(not_found("statefulsets.apps \"vault\"")).await;
        Mock::given(method("GET"))
            .and(path(CONFIG_MAP))
            .respond_with(not_found("configmaps"))
            .mount(&server)
            .await;
        server
    }

    #[tokio::test]
    async fn warm_dry_runs_every_document_then_applies_each_labelled_in_its_namespace_at_zero_replicas() {
        let server = nothing_applied().await;
        let ok = ResponseTemplate::new(200).set_body_json(json!({}));
        for at in [CONFIG_MAP, STATEFUL_SET] {
            applies(&server, at, true, ok.clone(), 1).await;
            applies(&server, at, false, ok.clone(), 1).await;
        }
        with_manifests(&server, async |w| {
            w.apply(Warm, Some(Capacity { desired: 3, min: None, max: None })).await
        })
        .await
        .unwrap();
        let sent: Vec<(String, serde_json::Value)> = server
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.method.as_str() == "PATCH")
            .map(|r| {
                (r.url.query().unwrap_or_default().to_string(), serde_json::from_slice(&r.body).unwrap())
            })
            .collect();
        // Both dry runs come before the first real apply.
        let order: Vec<bool> = sent.iter().map(|(query, _)| query.contains("dryRun=All")).collect();
        assert_eq!(order, [true, true, false, false]);
        let (_, stateful_set) = &sent[3];
        assert_eq!(stateful_set["metadata"]["namespace"], "vault");
        assert_eq!(stateful_set["metadata"]["labels"]["revscale-component"], "vault_ha");
        assert_eq!(stateful_set["spec"]["replicas"], 0);
        assert_eq!(stateful_set["spec"]["serviceName"], "vault");
        assert!(sent[2].1["spec"].is_null(), "the ConfigMap gets no replicas: {:?}", sent[2].1);
    }

    #[tokio::test]
    async fn a_document_refused_in_the_dry_run_leaves_the_cluster_as_it_was() {
        let server = nothing_applied().await;
        let ok = ResponseTemplate::new(200).set_body_json(json!({}));
        applies(&server, CONFIG_MAP, true, ok.clone(), 1).await;
        let invalid = status_object(
            422,
            "Invalid",
            "StatefulSet.apps \"vault\" is invalid: spec.template.metadata.labels: Invalid value",
        );
        applies(&server, STATEFUL_SET, true, invalid, 1).await;
        applies(&server, CONFIG_MAP, false, ok.clone(), 0).await;
        applies(&server, STATEFUL_SET, false, ok, 0).await;
        let why = refusal(
            with_manifests(&server, async |w| {
                w.apply(Hot, Some(Capacity { desired: 3, min: None, max: None })).await
            })
            .await,
        );
        assert!(why.contains("vault_ha: the API server refused the change"), "{why}");
        assert!(why.contains("spec.template.metadata.labels"), "{why}");
        assert!(why.contains("(StatefulSet vault): refused in the dry run, so nothing was applied"), "{why}");
    }

    #[tokio::test]
    async fn a_namespace_that_does_not_exist_is_named_with_how_to_create_it() {
        let server = nothing_applied().await;
        applies(&server, CONFIG_MAP, true, not_found("namespaces \"vault\""), 1).await;
        let why = refusal(with_manifests(&server, async |w| w.apply(Warm, None).await).await);
        assert!(why.contains("namespaces \"vault\" not found"), "{why}");
        assert!(why.contains("kubectl create namespace vault"), "{why}");
    }

    #[tokio::test]
    async fn an_object_revscale_did_not_label_is_neither_taken_over_nor_deleted() {
        let server = server(not_found("statefulsets.apps \"vault\"")).await;
        let theirs =
            json!({"kind": "ConfigMap", "metadata": {"name": "vault-config", "resourceVersion": "9"}});
        Mock::given(method("GET"))
            .and(path(CONFIG_MAP))
            .respond_with(ResponseTemplate::new(200).set_body_json(theirs))
            .mount(&server)
            .await;
        Mock::given(method("PATCH")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
        Mock::given(method("DELETE")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
        for target in [Warm, Cold] {
            let why = refusal(
                with_manifests(&server, async |w| {
                    w.apply(target, Some(Capacity { desired: 3, min: None, max: None })).await
                })
                .await,
            );
            assert!(
                why.contains("ConfigMap vault-config already exists in namespace vault without the label"),
                "{why}"
            );
        }
    }

    #[tokio::test]
    async fn cold_deletes_what_revscale_applied_workload_first_and_is_ready_when_gone() {
        let ours = |kind: &str, name: &str, version: &str| {
            json!({"kind": kind, "metadata": {"name": name, "uid": format!("uid-{name}"),
                   "resourceVersion": version, "labels": {"revscale-component": "vault_ha"}}})
        };
        let applied =
            server(ResponseTemplate::new(200).set_body_json(ours("StatefulSet", "vault", "41"))).await;
        Mock::given(method("GET"))
            .and(path(CONFIG_MAP))
            .respond_with(ResponseTemplate::new(200).set_body_json(ours("ConfigMap", "vault-config", "40")))
            .mount(&applied)
            .await;
        for (at, name, version) in [(STATEFUL_SET, "vault", "41"), (CONFIG_MAP, "vault-config", "40")] {
            Mock::given(method("DELETE"))
                .and(path(at))
                .and(body_json(json!({
                    "kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                    "preconditions": {"uid": format!("uid-{name}"), "resourceVersion": version},
                })))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"kind": "Status"})))
                .expect(1)
                .mount(&applied)
                .await;
        }
        with_manifests(&applied, async |w| w.apply(Cold, None).await).await.unwrap();
        let deleted: Vec<String> = applied
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.method.as_str() == "DELETE")
            .map(|r| r.url.path().to_string())
            .collect();
        assert_eq!(deleted, [STATEFUL_SET, CONFIG_MAP], "the workload before what it uses");
        // Still there (deletion takes a moment): in progress, not ready.
        assert_eq!(
            with_manifests(&applied, async |w| w.status(Cold).await).await.unwrap(),
            DriverStatus::InProgress
        );
        let gone = nothing_applied().await;
        assert_eq!(with_manifests(&gone, async |w| w.status(Cold).await).await.unwrap(), DriverStatus::Ready);
        let observed = with_manifests(&gone, async |w| w.observe().await).await.unwrap();
        assert_eq!((observed.states, observed.absent), (vec![Cold], false), "not applied is COLD, not drift");
    }

    #[tokio::test]
    async fn warm_patches_the_scale_subresource_to_zero_with_the_resource_version_it_checked() {
        let server = server(ResponseTemplate::new(200).set_body_json(workload_json(3, 3, 2, 2))).await;
        Mock::given(method("PATCH"))
            .and(path("/apis/apps/v1/namespaces/vault/statefulsets/vault/scale"))
            .and(header("content-type", "application/merge-patch+json"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_json(json!({"metadata": {"resourceVersion": "4711"}, "spec": {"replicas": 0}})))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"kind": "Scale", "spec": {"replicas": 0}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        apply(&server, Warm, Some(3)).await.unwrap();
    }

    #[tokio::test]
    async fn hot_restores_the_replicas_and_a_workload_already_there_is_not_patched() {
        let server = server(ResponseTemplate::new(200).set_body_json(workload_json(0, 0, 2, 2))).await;
        Mock::given(method("PATCH"))
            .and(body_json(json!({"metadata": {"resourceVersion": "4711"}, "spec": {"replicas": 5}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .expect(1)
            .mount(&server)
            .await;
        apply(&server, Hot, Some(5)).await.unwrap();
        apply(&server, Warm, Some(5)).await.unwrap(); // already 0: no second PATCH
        let why = refusal(apply(&server, Hot, None).await);
        assert!(why.contains("no HOT replicas for StatefulSet vault/vault"), "{why}");
    }

    #[tokio::test]
    async fn a_workload_that_does_not_exist_is_refused_by_name_and_never_patched() {
        let server = server(status_object(404, "NotFound", "statefulsets.apps \"vault\" not found")).await;
        Mock::given(method("PATCH")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
        let why = refusal(apply(&server, Hot, Some(3)).await);
        assert!(
            why.contains("vault_ha: StatefulSet vault/vault does not exist on EKS cluster revscale"),
            "{why}"
        );
        assert!(
            matches!(status(&server, Hot).await, Ok(DriverStatus::Failed(why)) if why.contains("does not exist"))
        );
        let spec = vault_spec();
        let c = component(&spec);
        let api = KubeClient::new(&server.uri(), None, TOKEN.into()).unwrap();
        let observed = Workloads { api: &api, spec: &spec, component: &c }.observe().await.unwrap();
        assert!(observed.absent, "{observed:?}");
    }

    #[tokio::test]
    async fn a_conflict_on_the_resource_version_is_busy_and_retried_not_a_refusal() {
        let server = server(ResponseTemplate::new(200).set_body_json(workload_json(3, 3, 2, 2))).await;
        Mock::given(method("PATCH"))
            .respond_with(status_object(
                409,
                "Conflict",
                "Operation cannot be fulfilled on statefulsets.apps \"vault\": the object has been modified; \
                 please apply your changes to the latest version and try again",
            ))
            .mount(&server)
            .await;
        match apply(&server, Warm, None).await {
            Err(DriverError::Busy(why)) => {
                assert!(
                    why.contains("StatefulSet vault/vault changed after revscale read it (409 Conflict)"),
                    "{why}"
                );
                assert!(why.contains("the object has been modified"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn on_the_cluster_revscale_created_a_refusal_is_retried_while_eks_applies_the_scope() {
        let managed = KubernetesWorkload { access_namespaces: Some(vec!["vault".into()]), ..vault_spec() };
        let c = component(&managed);
        let refused = |status| KubeError::Api {
            method: "PATCH",
            path: "/apis/apps/v1/namespaces/vault/statefulsets/vault/scale".into(),
            status,
            reason: "Forbidden".into(),
            message: "forbidden".into(),
        };
        for status in [401, 403] {
            match kube_error(&c, &managed, refused(status)) {
                DriverError::Transient(why) => {
                    assert!(why.contains("may not have applied the scope yet"), "{why}")
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        // Elsewhere (the company's own cluster, its entries the operator's) it is refused.
        assert!(matches!(kube_error(&c, &vault_spec(), refused(403)), DriverError::Rejected(_)));
    }

    #[tokio::test]
    async fn forbidden_names_the_namespace_the_access_policy_must_cover() {
        let server = server(status_object(
            403,
            "Forbidden",
            "statefulsets.apps \"vault\" is forbidden: User \"arn:aws:sts::123456789012:assumed-role/provision\" \
             cannot get resource \"statefulsets\" in API group \"apps\" in the namespace \"vault\"",
        ))
        .await;
        let why = refusal(apply(&server, Warm, None).await);
        assert!(why.starts_with("vault_ha: EKS cluster revscale forbids it (403)"), "{why}");
        assert!(why.contains("cannot get resource"), "{why}");
        assert!(why.ends_with("access policy must cover the namespace vault"), "{why}");
    }

    #[tokio::test]
    async fn an_unaccepted_token_asks_for_the_roles_access_entry() {
        let server = server(status_object(401, "Unauthorized", "Unauthorized")).await;
        let why = refusal(status(&server, Hot).await);
        assert!(why.contains("did not accept revscale's token (401)"), "{why}");
        assert!(why.contains("access entry"), "{why}");
    }

    #[tokio::test]
    async fn an_invalid_change_is_refused_with_the_api_servers_message() {
        let server = server(ResponseTemplate::new(200).set_body_json(workload_json(0, 0, 2, 2))).await;
        Mock::given(method("PATCH"))
            .respond_with(status_object(
                422,
                "Invalid",
                "Scale.autoscaling \"vault\" is invalid: spec.replicas: Invalid value: 5: exceeds quota",
            ))
            .mount(&server)
            .await;
        let why = refusal(apply(&server, Hot, Some(5)).await);
        assert!(why.contains("refused the change to StatefulSet vault/vault as invalid (422)"), "{why}");
        assert!(why.contains("spec.replicas: Invalid value: 5"), "{why}");
    }

    #[tokio::test]
    async fn throttling_and_the_servers_own_errors_are_transient() {
        for code in [429, 500, 503] {
            let server = server(status_object(code, "TooManyRequests", "please try again later")).await;
            assert!(matches!(apply(&server, Warm, None).await, Err(DriverError::Transient(_))), "{code}");
        }
        // An answer that is not the API's JSON (a proxy's HTML page) is no refusal either.
        let server = server(ResponseTemplate::new(200).set_body_string("<html>gateway</html>")).await;
        assert!(matches!(status(&server, Hot).await, Err(DriverError::Transient(_))));
    }

    #[tokio::test]
    async fn an_hpa_on_the_workload_is_refused_at_run_time_before_any_change() {
        let hpa = json!([{
            "metadata": {"name": "vault-cpu"},
            "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "vault"}, "minReplicas": 2},
        }]);
        let no_scaled_objects = ResponseTemplate::new(200).set_body_json(json!({"items": []}));
        let workload = ResponseTemplate::new(200).set_body_json(workload_json(3, 3, 2, 2));
        let server = server_with(workload, hpa, no_scaled_objects).await;
        Mock::given(method("PATCH")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
        let why = refusal(apply(&server, Warm, None).await);
        assert!(why.contains("HorizontalPodAutoscaler vault/vault-cpu"), "{why}");
    }

    #[tokio::test]
    async fn a_keda_workload_is_paused_and_resumed_through_its_scaled_object_never_scaled() {
        let scaled_objects = ResponseTemplate::new(200).set_body_json(json!({"items": [{
            "metadata": {"name": "vault-so", "resourceVersion": "17"},
            "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "vault"}, "minReplicaCount": 1},
        }]}));
        let workload = ResponseTemplate::new(200).set_body_json(workload_json(2, 2, 2, 2));
        let server = server_with(workload, json!([]), scaled_objects).await;
        Mock::given(method("PATCH"))
            .and(path("/apis/keda.sh/v1alpha1/namespaces/vault/scaledobjects/vault-so"))
            .and(body_json(
                json!({"metadata": {"resourceVersion": "17", "annotations": {PAUSED_REPLICAS: "0"}}}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .and(path("/apis/apps/v1/namespaces/vault/statefulsets/vault/scale"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        apply(&server, Warm, None).await.unwrap();
        // HOT: the annotation is already absent, so nothing to write.
        apply(&server, Hot, None).await.unwrap();
        assert_eq!(status(&server, Hot).await, Ok(DriverStatus::Ready));
    }

    #[tokio::test]
    async fn the_labelled_workloads_of_every_namespace_are_listed_by_label_selector() {
        use wiremock::matchers::query_param;
        let server = MockServer::start().await;
        let item = |namespace: &str, name: &str, component: &str, replicas: i32| {
            json!({"metadata": {"name": name, "namespace": namespace,
                                "labels": {"revscale-component": component}},
                   "spec": {"replicas": replicas}})
        };
        Mock::given(method("GET"))
            .and(path("/apis/apps/v1/deployments"))
            .and(query_param("labelSelector", "revscale-component"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"items": [item("shop", "web", "web", 2)]})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/apis/apps/v1/statefulsets"))
            .and(query_param("labelSelector", "revscale-component"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"items": [item("vault", "vault", "vault_ha", 0)]})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let api = KubeClient::new(&server.uri(), None, TOKEN.into()).unwrap();
        let found = labelled_workloads(&api).await.unwrap();
        let labelled = |namespace: &str, kind, name: &str, component: &str, replicas| Labelled {
            namespace: namespace.into(),
            kind,
            name: name.into(),
            component: component.into(),
            replicas,
        };
        assert_eq!(
            found,
            [
                labelled("shop", "Deployment", "web", "web", 2),
                labelled("vault", "StatefulSet", "vault", "vault_ha", 0)
            ]
        );
    }
}
