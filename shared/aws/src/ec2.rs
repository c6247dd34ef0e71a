//! The five EC2 calls the `ec2_instances` driver makes (DescribeInstances,
//! DescribeInstanceStatus, StartInstances, StopInstances, CreateTags), through the
//! signed Query client of [`crate::query`], which says why not `aws-sdk-ec2`.

use std::collections::BTreeMap;

use crate::query::{self, QueryClient, QueryError, child, child_text, members, numbered};

/// An instance as DescribeInstances answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`.
    pub state: String,
    pub tags: BTreeMap<String, String>,
    /// `spot` or `capacity-block` for such instances; none for on-demand ones.
    pub lifecycle: Option<String>,
}

/// An instance's two status checks, as DescribeInstanceStatus answers for a running
/// one: `ok`, `initializing`, `impaired`, `insufficient-data`, `not-applicable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChecks {
    pub id: String,
    pub system: String,
    pub instance: String,
}

/// Which instances DescribeInstances is asked for.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    Ids(&'a [String]),
    /// Every instance carrying all these tags, in any state but `terminated` and
    /// `shutting-down`.
    Tagged(&'a BTreeMap<String, String>),
}

pub struct Ec2Client {
    query: QueryClient,
}

/// EC2's lists hold `item` elements.
fn items<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    set: &str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + use<'a, 'i> {
    members(node, set, "item")
}

impl Ec2Client {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Ec2Client { query: QueryClient::new(sdk, query::EC2) }
    }

    /// As [`Ec2Client::new`], on a shared HTTP client ([`QueryClient::sharing`]).
    pub fn sharing(sdk: &aws_config::SdkConfig, http: &reqwest::Client) -> Self {
        Ec2Client { query: QueryClient::sharing(sdk, query::EC2, http) }
    }

    /// One signed call of any EC2 action: the driver uses the typed calls below; tests
    /// set instances up with it.
    pub async fn call(
        &self,
        action: &'static str,
        params: &[(String, String)],
    ) -> Result<String, QueryError> {
        self.query.call(action, params).await
    }

    /// The instances selected, every page of them.
    pub async fn describe_instances(&self, selection: Selection<'_>) -> Result<Vec<Instance>, QueryError> {
        const ACTION: &str = "DescribeInstances";
        let mut params = Vec::new();
        match selection {
            Selection::Ids(ids) => {
                for (n, id) in ids.iter().enumerate() {
                    params.push((format!("InstanceId.{}", n + 1), id.clone()));
                }
            }
            Selection::Tagged(tags) => {
                let mut n = 0;
                for (key, value) in tags {
                    n += 1;
                    params.push((format!("Filter.{n}.Name"), format!("tag:{key}")));
                    params.push((format!("Filter.{n}.Value.1"), value.clone()));
                }
                n += 1;
                params.push((format!("Filter.{n}.Name"), "instance-state-name".into()));
                for (v, state) in ["pending", "running", "stopping", "stopped"].iter().enumerate() {
                    params.push((format!("Filter.{n}.Value.{}", v + 1), (*state).into()));
                }
            }
        }
        let mut instances = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut page = params.clone();
            if let Some(token) = &token {
                page.push(("NextToken".into(), token.clone()));
            }
            // MaxResults cannot be combined with instance ids.
            if matches!(selection, Selection::Tagged(_)) {
                page.push(("MaxResults".into(), "1000".into()));
            }
            let xml = self.call(ACTION, &page).await?;
            let (found, next) = parse_instances(&xml).map_err(|what| self.query.bad_answer(ACTION, what))?;
            instances.extend(found);
            match next {
                Some(next) if token.as_ref() != Some(&next) => token = Some(next),
                _ => break,
            }
        }
        Ok(instances)
    }

    /// The status checks of the given instances that are running.
    pub async fn describe_instance_status(&self, ids: &[String]) -> Result<Vec<StatusChecks>, QueryError> {
        const ACTION: &str = "DescribeInstanceStatus";
        let params: Vec<(String, String)> =
            ids.iter().enumerate().map(|(n, id)| (format!("InstanceId.{}", n + 1), id.clone())).collect();
        let xml = self.call(ACTION, &params).await?;
        parse_status_checks(&xml).map_err(|what| self.query.bad_answer(ACTION, what))
    }

    pub async fn start_instances(&self, ids: &[String]) -> Result<(), QueryError> {
        self.call("StartInstances", &numbered("InstanceId", ids)).await.map(drop)
    }

    pub async fn stop_instances(&self, ids: &[String]) -> Result<(), QueryError> {
        self.call("StopInstances", &numbered("InstanceId", ids)).await.map(drop)
    }

    pub async fn create_tags(&self, ids: &[String], tags: &[(&str, &str)]) -> Result<(), QueryError> {
        let mut params = numbered("ResourceId", ids);
        for (n, (key, value)) in tags.iter().enumerate() {
            params.push((format!("Tag.{}.Key", n + 1), (*key).to_owned()));
            params.push((format!("Tag.{}.Value", n + 1), (*value).to_owned()));
        }
        self.call("CreateTags", &params).await.map(drop)
    }
}

/// The instances of a DescribeInstances page, and its next token.
pub fn parse_instances(xml: &str) -> Result<(Vec<Instance>, Option<String>), String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let root = query::root(&doc, "DescribeInstancesResponse")?;
    let mut instances = Vec::new();
    for reservation in items(root, "reservationSet") {
        for instance in items(reservation, "instancesSet") {
            let id = child_text(instance, "instanceId").ok_or("an instance without instanceId")?;
            let state = child(instance, "instanceState")
                .and_then(|s| child_text(s, "name"))
                .ok_or_else(|| format!("instance {id} without instanceState"))?;
            let tags = items(instance, "tagSet")
                .filter_map(|t| {
                    Some((
                        child_text(t, "key")?.to_owned(),
                        child_text(t, "value").unwrap_or_default().to_owned(),
                    ))
                })
                .collect();
            instances.push(Instance {
                id: id.to_owned(),
                state: state.to_owned(),
                tags,
                lifecycle: child_text(instance, "instanceLifecycle").map(str::to_owned),
            });
        }
    }
    let next = child_text(root, "nextToken").filter(|t| !t.is_empty()).map(str::to_owned);
    Ok((instances, next))
}

/// The status checks of a DescribeInstanceStatus answer.
pub fn parse_status_checks(xml: &str) -> Result<Vec<StatusChecks>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let root = query::root(&doc, "DescribeInstanceStatusResponse")?;
    items(root, "instanceStatusSet")
        .map(|item| {
            let id = child_text(item, "instanceId").ok_or("a status without instanceId")?;
            let check = |name: &str| {
                child(item, name)
                    .and_then(|s| child_text(s, "status"))
                    .unwrap_or("insufficient-data")
                    .to_owned()
            };
            Ok(StatusChecks {
                id: id.to_owned(),
                system: check("systemStatus"),
                instance: check("instanceStatus"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DescribeInstances as the EC2 API reference's example answers (trimmed), with a
    /// second reservation, a spot instance and a next token.
    const DESCRIBE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
  <reservationSet>
    <item>
      <reservationId>r-1234567890abcdef0</reservationId>
      <ownerId>123456789012</ownerId>
      <groupSet/>
      <instancesSet>
        <item>
          <instanceId>i-1234567890abcdef0</instanceId>
          <imageId>ami-bff32ccc</imageId>
          <instanceState><code>16</code><name>running</name></instanceState>
          <networkInterfaceSet><item><networkInterfaceId>eni-1</networkInterfaceId>
            <tagSet><item><key>eni</key><value>not the instance's</value></item></tagSet></item></networkInterfaceSet>
          <tagSet>
            <item><key>revscale-component</key><value>batch</value></item>
            <item><key>Name</key><value>batch &amp; reports</value></item>
          </tagSet>
        </item>
      </instancesSet>
    </item>
    <item>
      <reservationId>r-2</reservationId>
      <instancesSet>
        <item>
          <instanceId>i-0598c7d356eba48d7</instanceId>
          <instanceState><code>80</code><name>stopped</name></instanceState>
          <instanceLifecycle>spot</instanceLifecycle>
        </item>
      </instancesSet>
    </item>
  </reservationSet>
  <nextToken>eyJ2IjoiMiJ9</nextToken>
</DescribeInstancesResponse>"#;

    #[test]
    fn instances_are_read_with_their_own_tags_from_every_reservation() {
        let (found, next) = parse_instances(DESCRIBE).unwrap();
        assert_eq!(next.as_deref(), Some("eyJ2IjoiMiJ9"));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].id, "i-1234567890abcdef0");
        assert_eq!(found[0].state, "running");
        assert_eq!(
            found[0].tags,
            BTreeMap::from([
                ("Name".to_owned(), "batch & reports".to_owned()),
                ("revscale-component".to_owned(), "batch".to_owned())
            ]),
            "the network interface's tags are not the instance's"
        );
        assert_eq!(found[1].state, "stopped");
        assert_eq!(found[1].lifecycle.as_deref(), Some("spot"));
        assert!(found[1].tags.is_empty());
    }

    #[test]
    fn an_empty_answer_has_no_instance_and_no_next_page() {
        let xml = r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
            <requestId>x</requestId><reservationSet/></DescribeInstancesResponse>"#;
        assert_eq!(parse_instances(xml).unwrap(), (vec![], None));
    }

    #[test]
    fn an_answer_of_another_shape_is_refused_naming_it() {
        assert!(parse_instances("<html><body>502</body></html>").unwrap_err().contains("<html>"));
        assert!(parse_instances("not xml").is_err());
    }

    #[test]
    fn status_checks_are_read_per_instance() {
        let xml = r#"<DescribeInstanceStatusResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
          <requestId>x</requestId>
          <instanceStatusSet>
            <item><instanceId>i-1</instanceId><instanceState><code>16</code><name>running</name></instanceState>
              <systemStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></systemStatus>
              <instanceStatus><status>initializing</status></instanceStatus></item>
            <item><instanceId>i-2</instanceId></item>
          </instanceStatusSet>
        </DescribeInstanceStatusResponse>"#;
        assert_eq!(
            parse_status_checks(xml).unwrap(),
            vec![
                StatusChecks { id: "i-1".into(), system: "ok".into(), instance: "initializing".into() },
                StatusChecks {
                    id: "i-2".into(),
                    system: "insufficient-data".into(),
                    instance: "insufficient-data".into()
                },
            ]
        );
    }
}
