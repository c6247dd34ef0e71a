//! `ec2_instances`: EC2 instances the user owns, named by id or found by a tag filter.
//! WARM and COLD = stopped (EBS volumes, addresses and ENIs stay: revscale never
//! terminates an instance); HOT = running with both status checks passed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Kind;

/// The most instances one component switches: a tag filter that matches half the
/// account must be refused, not started.
pub const MAX_EC2_INSTANCES: usize = 50;
/// The most tags a filter names.
pub const MAX_TAG_FILTERS: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2Instances {
    /// The instances, by id (`i-0abc...`). Or:
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_ids: Vec<String>,
    /// Every instance that carries all these tags (key: value) and is not terminated,
    /// found again on each call, so that a replaced instance is switched too.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tag_filter: BTreeMap<String, String>,
}

/// `i-` and 8 or 17 lowercase hexadecimal digits, as EC2 issues them.
fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl Kind for Ec2Instances {
    fn kind(&self) -> &'static str {
        "ec2_instances"
    }
    fn resource(&self) -> String {
        if self.tag_filter.is_empty() {
            format!("EC2 instances {}", self.instance_ids.join(", "))
        } else {
            let tags: Vec<String> = self.tag_filter.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("EC2 instances tagged {}", tags.join(", "))
        }
    }
    fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        match (self.instance_ids.is_empty(), self.tag_filter.is_empty()) {
            (true, true) => problems.push((
                String::new(),
                "name the instances: instance_ids (a list of i-... ids) or tag_filter (tags every instance carries)"
                    .into(),
            )),
            (false, false) => problems.push((
                String::new(),
                "give instance_ids or tag_filter, not both (which would decide?)".into(),
            )),
            _ => {}
        }
        if self.instance_ids.len() > MAX_EC2_INSTANCES {
            problems.push((
                "instance_ids".into(),
                format!("{} instances: at most {MAX_EC2_INSTANCES} per component", self.instance_ids.len()),
            ));
        }
        for (n, id) in self.instance_ids.iter().enumerate() {
            if !is_instance_id(id) {
                problems.push((
                    format!("instance_ids[{n}]"),
                    format!("{id:?} is not an instance id (i- and 8 or 17 hexadecimal digits)"),
                ));
            } else if self.instance_ids[..n].contains(id) {
                problems.push((format!("instance_ids[{n}]"), format!("{id} is listed twice")));
            }
        }
        if self.tag_filter.len() > MAX_TAG_FILTERS {
            problems.push((
                "tag_filter".into(),
                format!("{} tags: at most {MAX_TAG_FILTERS}", self.tag_filter.len()),
            ));
        }
        for (key, value) in &self.tag_filter {
            let at = format!("tag_filter.{key}");
            if key.is_empty() || key.len() > 128 {
                problems.push((at, "a tag key has 1 to 128 characters".into()));
            } else if key.starts_with("aws:") {
                problems.push((
                    at,
                    "aws: tags belong to AWS (an Auto Scaling group's instances are switched with kind autoscaling_group)"
                        .into(),
                ));
            } else if value.len() > 256 {
                problems.push((at, "a tag value has at most 256 characters".into()));
            }
        }
        problems
    }
    fn must_exist(&self) -> bool {
        true
    }
    fn present_when_cold(&self) -> bool {
        true
    }
    /// A start takes a minute or two, the status checks a few more.
    fn readiness_minutes(&self) -> u32 {
        20
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(spec: Ec2Instances) -> Vec<(String, String)> {
        spec.check()
    }

    fn by_ids(ids: &[&str]) -> Ec2Instances {
        Ec2Instances { instance_ids: ids.iter().map(|s| (*s).to_owned()).collect(), ..Default::default() }
    }

    #[test]
    fn instances_by_id_or_by_tag_filter_are_accepted() {
        assert_eq!(problems(by_ids(&["i-0123456789abcdef0", "i-12345678"])), vec![]);
        let tagged = Ec2Instances { tag_filter: [("role".into(), "batch".into())].into(), ..Default::default() };
        assert_eq!(problems(tagged.clone()), vec![]);
        assert_eq!(tagged.resource(), "EC2 instances tagged role=batch");
    }

    #[test]
    fn neither_ids_nor_a_filter_or_both_is_refused() {
        let none = problems(Ec2Instances::default());
        assert!(none[0].1.starts_with("name the instances"), "{none:?}");
        let both = Ec2Instances {
            instance_ids: vec!["i-12345678".into()],
            tag_filter: [("role".into(), "batch".into())].into(),
        };
        assert!(problems(both)[0].1.contains("not both"));
    }

    #[test]
    fn a_malformed_or_repeated_id_is_refused_by_its_key_path() {
        let found = problems(by_ids(&["i-12345678", "i-1234", "I-12345678", "i-0123456789ABCDEF0", "i-12345678"]));
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["instance_ids[1]", "instance_ids[2]", "instance_ids[3]", "instance_ids[4]"]);
        assert!(found[3].1.contains("listed twice"), "{found:?}");
    }

    #[test]
    fn too_many_instances_or_tags_and_aws_tags_are_refused() {
        let ids: Vec<String> = (0..=MAX_EC2_INSTANCES).map(|n| format!("i-{n:08x}")).collect();
        let many = Ec2Instances { instance_ids: ids, ..Default::default() };
        assert_eq!(problems(many)[0].0, "instance_ids");
        let tags = (0..=MAX_TAG_FILTERS).map(|n| (format!("k{n}"), "v".to_owned())).collect();
        let wide = Ec2Instances { tag_filter: tags, ..Default::default() };
        assert_eq!(problems(wide)[0].0, "tag_filter");
        let asg = Ec2Instances {
            tag_filter: [("aws:autoscaling:groupName".into(), "workers".into())].into(),
            ..Default::default()
        };
        let found = problems(asg);
        assert_eq!(found[0].0, "tag_filter.aws:autoscaling:groupName");
        assert!(found[0].1.contains("autoscaling_group"), "{found:?}");
    }
}
