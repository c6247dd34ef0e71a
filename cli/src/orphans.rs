//! `revscale status --orphans`: the resources revscale's drivers made (tagged
//! `revscale:managed=true`) that the state does not account for: a cluster or node
//! group of a component the state says is COLD, or of a component the configuration
//! no longer has. They are what keeps billing after a teardown gone wrong.

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
    Ok(orphans(&resources, status, target.stack_name().as_deref()))
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
        out += "orphans    none: every resource tagged revscale:managed=true is accounted for\n";
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
}
