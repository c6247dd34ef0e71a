//! `cloudformation_stack`: the escape hatch. Anything a company can write in
//! CloudFormation (or synthesise from CDK) becomes a component: COLD = no stack,
//! WARM = the stack with its WARM parameters, HOT = with its HOT parameters.
//! CloudFormation acts with the service role the stack names (`CloudFormationRoleArn`),
//! so revscale's own role needs none of the resources' permissions.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Kind, NamedFile, StackField, StackRule};

/// CloudFormation's limit on a template passed inline (`TemplateBody`).
pub const MAX_TEMPLATE_BODY_BYTES: usize = 51_200;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudformationStack {
    /// The stack's name; it must begin with the stack's `CloudFormationStackPrefix`
    /// (the provisioner's policy allows only those stacks).
    pub stack_name: String,
    /// The template, relative to the configuration file. Whoever loads the
    /// configuration reads it into `template_body` (`revscale config push` sends the
    /// body, so the functions never read a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_body: Option<String>,
    /// Left out, the stack's `CloudFormationRoleArn` is used.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role_arn: String,
    /// The template's parameters in each state.
    #[serde(default)]
    pub parameters: StateParameters,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateParameters {
    #[serde(default)]
    pub warm: BTreeMap<String, String>,
    #[serde(default)]
    pub hot: BTreeMap<String, String>,
}

/// The parameters a template declares, or why it cannot be read. A template is YAML or
/// JSON; CloudFormation's short forms (`!Ref`, `!Sub`) parse as tagged values.
pub fn declared_parameters(body: &str) -> Result<BTreeSet<String>, String> {
    Ok(template_parameters(body)?.into_iter().map(|(name, _)| name).collect())
}

/// The parameters a template declares without a `Default`: CloudFormation refuses a
/// stack that is not given each (`Parameters: [..] must have values`).
pub fn parameters_without_default(body: &str) -> Result<BTreeSet<String>, String> {
    Ok(template_parameters(body)?.into_iter().filter(|(_, default)| !default).map(|(name, _)| name).collect())
}

/// Each parameter the template declares, and whether it has a `Default`.
fn template_parameters(body: &str) -> Result<Vec<(String, bool)>, String> {
    let template: serde_norway::Value =
        serde_norway::from_str(body).map_err(|e| format!("the template is not YAML or JSON: {e}"))?;
    if !template.is_mapping() {
        return Err("the template is not a mapping (no Resources)".into());
    }
    let Some(resources) = template.get("Resources") else {
        return Err("the template has no Resources section".into());
    };
    // Logical ids are one namespace: CloudFormation refuses a resource named like a
    // parameter (and moto crashes on it).
    if let (Some(resources), Some(parameters)) =
        (resources.as_mapping(), template.get("Parameters").and_then(|p| p.as_mapping()))
        && let Some(clash) = resources.keys().filter_map(|k| k.as_str()).find(|k| parameters.contains_key(*k))
    {
        return Err(format!("'{clash}' is both a parameter and a resource: logical ids must be unique"));
    }
    Ok(match template.get("Parameters").and_then(|p| p.as_mapping()) {
        None => Vec::new(),
        Some(parameters) => parameters
            .iter()
            .filter_map(|(k, v)| k.as_str().map(|name| (name.to_string(), v.get("Default").is_some())))
            .collect(),
    })
}

impl Kind for CloudformationStack {
    fn kind(&self) -> &'static str {
        "cloudformation_stack"
    }
    fn named_file(&mut self) -> Option<NamedFile<'_>> {
        Some(NamedFile {
            key: "template_file",
            body_key: "template_body",
            file: &mut self.template_file,
            body: &mut self.template_body,
        })
    }
    fn resource(&self) -> String {
        format!("CloudFormation stack {}", self.stack_name)
    }
    fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let name = &self.stack_name;
        let valid = name.len() <= 128
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            problems.push((
                "stack_name".into(),
                format!("'{name}' is no stack name: a letter, then letters, digits and '-', at most 128"),
            ));
        }
        let Some(body) = &self.template_body else {
            let message = match &self.template_file {
                Some(file) => format!("the template '{file}' was not read (nothing read files here)"),
                None => "name the template: template_file, relative to this configuration".into(),
            };
            problems.push(("template_file".into(), message));
            return problems;
        };
        if body.len() > MAX_TEMPLATE_BODY_BYTES {
            problems.push((
                "template_file".into(),
                format!(
                    "the template is {} bytes; CloudFormation takes at most {MAX_TEMPLATE_BODY_BYTES} inline",
                    body.len()
                ),
            ));
        }
        match declared_parameters(body).and_then(|d| Ok((d, parameters_without_default(body)?))) {
            Err(e) => problems.push(("template_file".into(), e)),
            Ok((declared, required)) => {
                for (state, given) in [("warm", &self.parameters.warm), ("hot", &self.parameters.hot)] {
                    for key in given.keys().filter(|k| !declared.contains(*k)) {
                        let known = declared.iter().cloned().collect::<Vec<_>>().join(", ");
                        problems.push((
                            format!("parameters.{state}.{key}"),
                            format!("the template declares no parameter '{key}' (it declares: {known})"),
                        ));
                    }
                    for key in required.iter().filter(|k| !given.contains_key(*k)) {
                        problems.push((
                            format!("parameters.{state}.{key}"),
                            format!("the template's parameter '{key}' has no Default: give it a value"),
                        ));
                    }
                }
            }
        }
        problems
    }
    fn stack_fields(&mut self) -> Vec<StackField<'_>> {
        vec![
            StackField {
                key: "role_arn",
                value: &mut self.role_arn,
                parameter: "CloudFormationRoleArn",
                rule: StackRule::Equals,
            },
            StackField {
                key: "stack_name",
                value: &mut self.stack_name,
                parameter: "CloudFormationStackPrefix",
                rule: StackRule::UnderPrefix,
            },
        ]
    }
    fn present_when_cold(&self) -> bool {
        false
    }
    /// A stack with a database or a distribution in it takes long.
    fn readiness_minutes(&self) -> u32 {
        120
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TEMPLATE: &str = "Parameters:\n  Size:\n    Type: Number\nResources:\n  Flag:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: !Ref Size\n";

    fn spec() -> CloudformationStack {
        CloudformationStack {
            stack_name: "revscale-search".into(),
            template_body: Some(TEMPLATE.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_resource_named_like_a_parameter_is_refused() {
        let clash = "Parameters:\n  Size: {Type: String}\nResources:\n  Size: {Type: AWS::SSM::Parameter}\n";
        assert!(declared_parameters(clash).unwrap_err().contains("'Size' is both a parameter and a resource"));
    }

    #[test]
    fn a_template_with_short_forms_declares_its_parameters() {
        assert_eq!(declared_parameters(TEMPLATE).unwrap(), BTreeSet::from(["Size".to_string()]));
    }

    #[test]
    fn a_parameter_the_template_does_not_declare_is_refused_by_its_key() {
        let mut s = spec();
        s.parameters.hot.insert("Sise".into(), "2".into());
        s.parameters.hot.insert("Size".into(), "2".into());
        s.parameters.warm.insert("Size".into(), "0".into());
        let problems = s.check();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "parameters.hot.Sise");
        assert!(problems[0].1.contains("declares: Size"), "{problems:?}");
    }

    #[test]
    fn a_parameter_without_a_default_that_a_state_leaves_unset_is_refused() {
        let template =
            "Parameters:\n  Size: {Type: String}\n  Tier: {Type: String, Default: small}\nResources: {}\n";
        assert_eq!(parameters_without_default(template).unwrap(), BTreeSet::from(["Size".to_string()]));
        let mut s = CloudformationStack { template_body: Some(template.into()), ..spec() };
        s.parameters.hot.insert("Size".into(), "2".into());
        let problems = s.check();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "parameters.warm.Size");
        assert!(problems[0].1.contains("no Default"), "{problems:?}");
        s.parameters.warm.insert("Size".into(), "0".into());
        assert!(s.check().is_empty(), "Tier keeps its Default");
    }

    #[test]
    fn a_template_that_was_not_read_or_is_not_a_template_is_refused() {
        let mut s = spec();
        s.template_body = None;
        s.template_file = Some("search.yaml".into());
        assert!(s.check()[0].1.contains("search.yaml"));
        s.template_body = Some("just text".into());
        assert!(s.check()[0].1.contains("not a mapping"), "{:?}", s.check());
        s.template_body = Some("Parameters: {}\n".into());
        assert!(s.check()[0].1.contains("no Resources"));
    }

    #[test]
    fn a_stack_name_cloudformation_would_refuse_is_refused_here() {
        for bad in ["", "1abc", "has_underscore", &"a".repeat(129)] {
            let s = CloudformationStack { stack_name: bad.into(), ..spec() };
            assert!(s.check().iter().any(|(k, _)| k == "stack_name"), "{bad}");
        }
    }
}
