//! `revscale status --orphans`: the resources revscale's drivers made (tagged
//! `revscale:managed=true`) that the state does not account for: a cluster or node
//! group of a component the state says is COLD, or of a component the configuration
//! no longer has; and the workloads labelled `revscale-component` on the stack's EKS
//! cluster that run while their component should not, or name no component of the
//! configuration. They are what keeps billing after a teardown gone wrong.

use std::collections::BTreeMap;

use anyhow::Context;
use revscale_api::StatusResponse;
use revscale_engine::ComponentState;
use serde::Serialize;

use crate::stack::Target;

pub use revscale_engine::drivers::{COMPONENT_TAG, MANAGED_TAG, STACK_TAG};

/// A tagged resource, as the Resource Groups Tagging API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub arn: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    pub arn: String,
    pub component: Option<String>,
    pub why: String,
}

/// The resources the state does not account for. Some kinds' resources exist while COLD
/// (a flag at `off`, a service at 0 tasks, a stopped database: the kind says so, by
/// `present_when_cold`): those are orphans only when their component is unknown.
/// Another stack's resources (`revscale:stack` names another) are not this one's to
/// judge; a resource without the stack tag (made before it existed) is.
pub fn orphans(resources: &[Tagged], status: &StatusResponse, stack: Option<&str>) -> Vec<Orphan> {
    let mut out = Vec::new();
    for resource in resources {
        let made_by = resource.tags.get(STACK_TAG).map(String::as_str);
        if let (Some(ours), Some(theirs)) = (stack, made_by)
            && ours != theirs
        {
            continue;
        }
        let component = resource.tags.get(COMPONENT_TAG).cloned();
        let view = component
            .as_ref()
            .and_then(|c| status.components.iter().find(|(id, _)| id.as_str() == c))
            .map(|(_, view)| view);
        let known = view.map(|v| v.state);
        // An older API names no kind: then only a flag (by its ARN) is known to stay.
        let stays = match view.and_then(|v| v.kind.as_deref()) {
            Some(kind) => revscale_engine::drivers::present_when_cold(kind).unwrap_or(false),
            None => resource.arn.contains(":parameter/"),
        };
        let why = match (known, stays) {
            (None, _) => Some(match &component {
                Some(c) => format!("component '{c}' is not in the configuration the stack runs"),
                None => format!("no {COMPONENT_TAG} tag: revscale cannot tell which component it was"),
            }),
            (Some(ComponentState::Cold), false) => {
                Some("the state says its component is COLD, yet it exists (still billing?)".to_string())
            }
            _ => None,
        };
        if let Some(why) = why {
            out.push(Orphan { arn: resource.arn.clone(), component, why });
        }
    }
    out
}

/// The workloads labelled `revscale-component` on the stack's cluster that the state does
/// not account for: a component the configuration does not have, or of another kind,
/// or pods running while the state says the component is COLD or WARM (still billing:
/// scaled up by hand, or by an autoscaler revscale does not know). A component on its
/// way (WARMING, COOLING) is left alone.
pub fn workload_orphans(
    cluster: &str,
    workloads: &[revscale_aws::drivers::kubernetes_workload::Labelled],
    status: &StatusResponse,
) -> Vec<Orphan> {
    let mut out = Vec::new();
    for w in workloads {
        let view = status.components.iter().find(|(id, _)| id.as_str() == w.component).map(|(_, v)| v);
        let why = match view {
            None => Some(format!("component '{}' is not in the configuration the stack runs", w.component)),
            Some(v) if v.kind.as_deref().is_some_and(|k| k != "kubernetes_workload") => Some(format!(
                "labelled for component '{}', whose kind is {}, not kubernetes_workload",
                w.component,
                v.kind.as_deref().unwrap_or_default()
            )),
            Some(v) if matches!(v.state, ComponentState::Cold | ComponentState::Warm) && w.replicas > 0 => {
                Some(format!(
                    "the state says its component is {}, yet it asks for {} replica(s) (still billing?)",
                    v.state.to_string().to_uppercase(),
                    w.replicas
                ))
            }
            _ => None,
        };
        if let Some(why) = why {
            let arn = format!("kubernetes://{cluster}/{}/{}/{}", w.namespace, w.kind.to_lowercase(), w.name);
            out.push(Orphan { arn, component: Some(w.component.clone()), why });
        }
    }
    out
}

/// The stack's cluster's labelled workloads, judged by [`workload_orphans`]: none when
/// the stack has no cluster (or it does not exist now); what cannot be read is said on
/// stderr, and the AWS resources' listing stands.
async fn workloads_on_the_cluster(
    sdk: &aws_config::SdkConfig,
    target: &Target,
    status: &StatusResponse,
) -> Vec<Orphan> {
    use revscale_aws::drivers::kubernetes_workload::{client_for, labelled_workloads};
    use revscale_aws::kubernetes::TestEndpoint;
    if target.stack_name().is_none() {
        return vec![];
    }
    let cluster = match target.stack(sdk).await {
        Ok(stack) => stack.parameters.get("EksClusterName").cloned().unwrap_or_default(),
        Err(e) => {
            eprintln!("note: workloads not listed: cannot read the stack's cluster name: {e:#}");
            return vec![];
        }
    };
    if cluster.is_empty() {
        return vec![];
    }
    let test_server = match std::env::var(TestEndpoint::VARIABLE).ok().filter(|v| !v.is_empty()) {
        Some(url) => match TestEndpoint::parse(&url) {
            Ok(endpoint) => Some(endpoint),
            Err(e) => {
                eprintln!("note: workloads not listed: {}: {e}", TestEndpoint::VARIABLE);
                return vec![];
            }
        },
        None => None,
    };
    let listed = match client_for(sdk, test_server.as_ref(), &cluster).await {
        Ok(None) => return vec![],
        Ok(Some(api)) => labelled_workloads(&api).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match listed {
        Ok(workloads) => workload_orphans(&cluster, &workloads, status),
        Err(e) => {
            eprintln!(
                "note: workloads on EKS cluster {cluster} not listed ({e}): your access entry needs list \
                 rights on deployments and statefulsets"
            );
            vec![]
        }
    }
}

/// Every resource the tagging API lists as tagged `revscale:managed=true`, with its
/// tags, every page (`status --orphans` and `doctor` read the same list).
pub async fn managed_resources(
    client: &aws_sdk_resourcegroupstagging::Client,
) -> Result<Vec<Tagged>, aws_sdk_resourcegroupstagging::Error> {
    let filter = aws_sdk_resourcegroupstagging::types::TagFilter::builder()
        .key(MANAGED_TAG.0)
        .values(MANAGED_TAG.1)
        .build();
    let mut resources = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_resources()
            .tag_filters(filter.clone())
            .set_pagination_token(token.clone())
            .send()
            .await?;
        for mapping in page.resource_tag_mapping_list() {
            let Some(arn) = mapping.resource_arn() else { continue };
            let tags = mapping.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
            resources.push(Tagged { arn: arn.to_string(), tags });
        }
        token = page.pagination_token().filter(|t| !t.is_empty()).map(String::from);
        if token.is_none() {
            return Ok(resources);
        }
    }
}

/// Lists what carries the managed tag in the target's region.
pub async fn find(
    sdk: &aws_config::SdkConfig,
    target: &Target,
    status: &StatusResponse,
) -> anyhow::Result<Vec<Orphan>> {
    // The stack's region: the one an execute-api URL names, when one was given.
    let mut config = aws_sdk_resourcegroupstagging::config::Builder::from(sdk);
    if let Some(region) = target.api_url.as_deref().and_then(crate::stack::region_from_url) {
        config = config.region(aws_config::Region::new(region));
    }
    let client = aws_sdk_resourcegroupstagging::Client::from_conf(config.build());
    let resources = managed_resources(&client)
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_resourcegroupstagging::error::DisplayErrorContext(&e)))
        .context("cannot list the resources tagged revscale:managed=true (needs tag:GetResources)")?;
    let mut found = orphans(&resources, status, target.stack_name().as_deref());
    found.extend(workloads_on_the_cluster(sdk, target, status).await);
    Ok(found)
}

/// The status, then the orphans: one JSON document `{"status", "orphans"}`, or the
/// status table followed by the orphans'.
pub fn render(status: &StatusResponse, found: &[Orphan], json: bool) -> anyhow::Result<String> {
    if json {
        return Ok(
            serde_json::to_string_pretty(&serde_json::json!({ "status": status, "orphans": found }))? + "\n"
        );
    }
    let mut out = crate::render::status(status);
    if found.is_empty() {
        out += "orphans    none: every resource tagged revscale:managed=true, and every workload labelled revscale-component, is accounted for\n";
        return Ok(out);
    }
    Ok(out
        + &format!("orphans    {} resource(s) the state does not account for:\n", found.len())
        + &crate::table::render(
            &["resource", "component", "why"],
            found.iter().map(|o| {
                vec![o.arn.clone(), o.component.clone().unwrap_or_else(|| "-".into()), o.why.clone()]
            }),
        ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOLDEN: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../functions/override-api/tests/wire_format.golden.json"
    ));

    fn status() -> StatusResponse {
        let all: serde_json::Value = serde_json::from_str(GOLDEN).unwrap();
        serde_json::from_value(all["status, fresh"]["body"].clone()).unwrap()
    }

    fn tagged(arn: &str, component: Option<&str>) -> Tagged {
        let mut tags = BTreeMap::from([(MANAGED_TAG.0.to_string(), MANAGED_TAG.1.to_string())]);
        if let Some(c) = component {
            tags.insert(COMPONENT_TAG.into(), c.into());
        }
        Tagged { arn: arn.into(), tags }
    }

    #[test]
    fn a_cluster_of_a_cold_component_or_of_an_unknown_one_is_an_orphan_and_a_cold_flag_is_not() {
        let s = status();
        assert_eq!(
            s.components[&revscale_engine::ComponentId::new("eks_control_plane")].state,
            ComponentState::Cold
        );
        let found = orphans(
            &[
                tagged("arn:aws:eks:eu-west-1:123456789012:cluster/revscale", Some("eks_control_plane")),
                tagged(
                    "arn:aws:ssm:eu-west-1:123456789012:parameter/revscale/flags/hume_ai",
                    Some("hume_ai"),
                ),
                tagged("arn:aws:eks:eu-west-1:123456789012:nodegroup/revscale/gpu/abc", Some("gpu_workers")),
                tagged("arn:aws:eks:eu-west-1:123456789012:cluster/other", None),
                Tagged {
                    arn: "arn:aws:eks:eu-west-1:123456789012:cluster/staging".into(),
                    tags: BTreeMap::from([
                        (MANAGED_TAG.0.into(), MANAGED_TAG.1.into()),
                        (COMPONENT_TAG.into(), "eks_control_plane".into()),
                        (STACK_TAG.into(), "revscale-staging".into()),
                    ]),
                },
            ],
            &s,
            Some("revscale"),
        );
        let arns: Vec<&str> = found.iter().map(|o| o.arn.as_str()).collect();
        assert_eq!(
            arns,
            [
                "arn:aws:eks:eu-west-1:123456789012:cluster/revscale",
                "arn:aws:eks:eu-west-1:123456789012:nodegroup/revscale/gpu/abc",
                "arn:aws:eks:eu-west-1:123456789012:cluster/other"
            ]
        );
        assert!(found[0].why.contains("COLD"), "{found:?}");
        assert!(found[1].why.contains("'gpu_workers' is not in the configuration"), "{found:?}");
    }

    #[test]
    fn a_stopped_database_or_a_service_at_zero_of_a_cold_component_is_no_orphan_and_its_stack_is() {
        let mut s = status();
        let cold = |kind: &str| revscale_api::ComponentView {
            state: ComponentState::Cold,
            since: s.date,
            kind: Some(kind.into()),
            saved_capacity: None,
        };
        let views = [
            ("reports", cold("rds_instance")),
            ("worker", cold("ecs_service")),
            ("search", cold("cloudformation_stack")),
        ];
        for (id, view) in views {
            s.components.insert(revscale_engine::ComponentId::new(id), view);
        }
        let found = orphans(
            &[
                tagged("arn:aws:rds:eu-west-1:123456789012:db:reports", Some("reports")),
                tagged("arn:aws:ecs:eu-west-1:123456789012:service/prod/worker", Some("worker")),
                tagged(
                    "arn:aws:cloudformation:eu-west-1:123456789012:stack/revscale-search/1",
                    Some("search"),
                ),
            ],
            &s,
            None,
        );
        let arns: Vec<&str> = found.iter().map(|o| o.arn.as_str()).collect();
        assert_eq!(arns, ["arn:aws:cloudformation:eu-west-1:123456789012:stack/revscale-search/1"]);
    }

    #[test]
    fn a_resource_of_a_running_component_is_accounted_for() {
        let mut s = status();
        let eks = revscale_engine::ComponentId::new("eks_control_plane");
        if let Some(view) = s.components.get_mut(&eks) {
            view.state = ComponentState::Hot;
        }
        let found = orphans(
            &[tagged("arn:aws:eks:eu-west-1:123456789012:cluster/revscale", Some("eks_control_plane"))],
            &s,
            None,
        );
        assert!(found.is_empty(), "{found:?}");
        let printed = render(&s, &found, false).unwrap();
        assert!(printed.contains("level      L0") && printed.contains("orphans    none"), "{printed}");
        let json: serde_json::Value = serde_json::from_str(&render(&s, &found, true).unwrap()).unwrap();
        assert_eq!(json["orphans"], serde_json::json!([]));
        assert_eq!(json["status"]["level"], 0, "one JSON document with both");
    }

    #[test]
    fn a_workload_running_while_its_component_is_cold_or_warm_or_of_no_component_is_an_orphan() {
        use revscale_aws::drivers::kubernetes_workload::Labelled;
        let mut s = status();
        let view = |state, kind: &str| revscale_api::ComponentView {
            state,
            since: s.date,
            kind: Some(kind.into()),
            saved_capacity: None,
        };
        let views = [
            ("vault_ha", view(ComponentState::Warm, "kubernetes_workload")),
            ("ledger", view(ComponentState::Hot, "kubernetes_workload")),
            ("search", view(ComponentState::Cold, "kubernetes_workload")),
            ("starting", view(ComponentState::Warming, "kubernetes_workload")),
            ("orders", view(ComponentState::Hot, "ecs_service")),
        ];
        for (id, v) in views {
            s.components.insert(revscale_engine::ComponentId::new(id), v);
        }
        let workload = |name: &str, component: &str, replicas| Labelled {
            namespace: "apps".into(),
            kind: "StatefulSet",
            name: name.into(),
            component: component.into(),
            replicas,
        };
        let found = workload_orphans(
            "revscale",
            &[
                workload("vault", "vault_ha", 3),      // WARM, yet 3 replicas
                workload("vault-idle", "vault_ha", 0), // WARM at 0: as it should be
                workload("ledger", "ledger", 2),       // HOT
                workload("search", "search", 0),       // COLD at 0
                workload("starting", "starting", 1),   // on its way
                workload("old", "gpu_jobs", 0),        // no such component
                workload("orders", "orders", 1),       // the label names an ECS component
            ],
            &s,
        );
        let got: Vec<(&str, &str)> = found.iter().map(|o| (o.arn.as_str(), o.why.as_str())).collect();
        assert_eq!(
            got,
            [
                (
                    "kubernetes://revscale/apps/statefulset/vault",
                    "the state says its component is WARM, yet it asks for 3 replica(s) (still billing?)"
                ),
                (
                    "kubernetes://revscale/apps/statefulset/old",
                    "component 'gpu_jobs' is not in the configuration the stack runs"
                ),
                (
                    "kubernetes://revscale/apps/statefulset/orders",
                    "labelled for component 'orders', whose kind is ecs_service, not kubernetes_workload"
                ),
            ]
        );
    }
}
