//! The SAM template's IAM grants, read from `infra/template.yaml` (no emulator needed).
//!
//! All items share one DynamoDB table, so what keeps the internet-facing API from
//! overwriting a revenue snapshot is the `dynamodb:LeadingKeys` condition on each
//! function's writes: these tests hold every write grant to the item families
//! (partition keys, `shared/aws/src/dynamo.rs`) the function's code writes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

/// The families each function writes, found in the code: `put_revenue` (collect-revenue),
/// `put_cost` (collect-cost), and `record_decision`, one TransactWriteItems of puts to
/// INVOCATION (when the store is scoped to an invocation: the evaluator's event, the
/// API's request), AUDIT and STATE (evaluate, override-api, provision, whose store is
/// not scoped). No function updates or deletes items.
const WRITES: &[(&str, &[&str])] = &[
    ("CollectRevenueFunction", &["REVENUE"]),
    ("CollectCostFunction", &["COST"]),
    ("EvaluateFunction", &["INVOCATION", "AUDIT", "AUDIT_ID", "STATE", "PUBLISHED"]),
    ("ProvisionFunction", &["AUDIT", "AUDIT_ID", "STATE"]),
    ("OverrideApiFunction", &["INVOCATION", "AUDIT", "AUDIT_ID", "STATE", "PUBLISHED"]),
];

/// The DynamoDB actions that change items (a transaction is authorised item by item as
/// these; `ConditionCheckItem` only reads, but it is a transaction's item too).
const DYNAMODB_WRITES: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
];

fn repo_file(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The template, CloudFormation's short tags (`!Ref`, `!Sub`, `!GetAtt`...) kept as
/// YAML tagged values.
fn template() -> Value {
    serde_norway::from_str(&repo_file("infra/template.yaml")).expect("infra/template.yaml parses")
}

/// A string or a list of strings, as IAM accepts for Action and condition values.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => vec![],
    }
}

/// Every IAM statement of the template (anything with an Effect and an Action), with
/// the resource it belongs to.
fn statements(template: &Value) -> Vec<(String, Value)> {
    fn walk(value: &Value, resource: &str, out: &mut Vec<(String, Value)>) {
        match value {
            Value::Mapping(map) => {
                if map.contains_key("Effect") && (map.contains_key("Action") || map.contains_key("NotAction"))
                {
                    out.push((resource.to_string(), value.clone()));
                }
                map.values().for_each(|v| walk(v, resource, out));
            }
            Value::Sequence(items) => items.iter().for_each(|v| walk(v, resource, out)),
            Value::Tagged(tagged) => walk(&tagged.value, resource, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let resources = template["Resources"].as_mapping().expect("Resources");
    for (name, resource) in resources {
        walk(resource, &statements_owner(name.as_str().expect("resource name"), resource), &mut out);
    }
    out
}

/// Whose statements a resource holds: a policy of its own attached to a function's
/// role (`Roles: [!Ref ProvisionFunctionRole]`) holds the function's.
fn statements_owner(name: &str, resource: &Value) -> String {
    if resource["Type"].as_str() != Some("AWS::IAM::Policy") {
        return name.to_string();
    }
    let roles = resource["Properties"]["Roles"].as_sequence().cloned().unwrap_or_default();
    match roles.as_slice() {
        [Value::Tagged(role)] if role.tag == "Ref" => role
            .value
            .as_str()
            .and_then(|r| r.strip_suffix("Role"))
            .map_or_else(|| name.to_string(), str::to_string),
        _ => name.to_string(),
    }
}

#[test]
fn no_functions_policies_name_its_own_role_which_cloudformation_would_refuse_as_circular() {
    // SAM renders a function's Policies into the role it makes for it (<Function>Role):
    // naming that role there (!GetAtt, !Ref, ${...}) is a circular dependency, which
    // cfn-lint and sam validate do not see before the transform. Such statements go
    // in an AWS::IAM::Policy of their own attached to the role.
    let template = template();
    let mut circular = Vec::new();
    for (name, resource) in template["Resources"].as_mapping().expect("Resources") {
        let name = name.as_str().expect("resource name");
        if resource["Type"].as_str() == Some("AWS::Serverless::Function") {
            let policies = serde_norway::to_string(&resource["Properties"]["Policies"]).expect("YAML");
            if policies.contains(&format!("{name}Role")) {
                circular.push(name.to_string());
            }
        }
    }
    assert!(circular.is_empty(), "these functions' policies name their own role: {circular:?}");
    let owner = statements(&template)
        .into_iter()
        .find(|(_, s)| strings(&s["Action"]).iter().any(|a| a == "eks:CreateAccessEntry"))
        .map(|(owner, _)| owner);
    assert_eq!(owner.as_deref(), Some("ProvisionFunction"), "the access-entry policy is the provisioner's");
}

/// Whether an action (possibly a wildcard such as `dynamodb:*` or `dynamodb:Put*`) may
/// change items.
fn grants_dynamodb_write(action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    if action == "*" {
        return true;
    }
    DYNAMODB_WRITES.iter().any(|write| {
        let write = write.to_ascii_lowercase();
        match action.strip_suffix('*') {
            Some(prefix) => write.starts_with(prefix),
            None => write == action,
        }
    })
}

fn leading_keys(statement: &Value) -> Option<BTreeSet<String>> {
    let condition = statement.get("Condition")?.as_mapping()?;
    // Only this operator holds every key of the request to the list; a second operator
    // would be a second condition, and anything else (ForAnyValue, StringLike) is looser.
    if condition.len() != 1 {
        return None;
    }
    let keys = condition.get("ForAllValues:StringEquals")?.get("dynamodb:LeadingKeys")?;
    Some(strings(keys).into_iter().collect())
}

fn expected_writes() -> BTreeMap<&'static str, BTreeSet<String>> {
    WRITES.iter().map(|(f, families)| (*f, families.iter().map(|s| s.to_string()).collect())).collect()
}

/// What is wrong with the template's DynamoDB write grants (nothing: empty), and the
/// functions granted writes.
fn write_grant_problems(template: &Value) -> (Vec<String>, BTreeSet<String>) {
    let expected = expected_writes();
    let mut granted = BTreeSet::new();
    let mut problems = Vec::new();
    for (resource, statement) in statements(template) {
        if statement["Effect"].as_str() != Some("Allow") {
            continue;
        }
        if statement.get("NotAction").is_some() {
            problems.push(format!("{resource}: an Allow with NotAction grants DynamoDB writes among others"));
            continue;
        }
        let writes: Vec<String> =
            strings(&statement["Action"]).into_iter().filter(|a| grants_dynamodb_write(a)).collect();
        if writes.is_empty() {
            continue;
        }
        let Some(families) = expected.get(resource.as_str()) else {
            problems.push(format!(
                "{resource} may write to DynamoDB ({writes:?}) but writes nothing in the code"
            ));
            continue;
        };
        if let Some(other) = writes.iter().find(|a| a.as_str() != "dynamodb:PutItem") {
            problems.push(format!("{resource} is granted {other}: the code only puts items"));
        }
        match leading_keys(&statement) {
            Some(keys) if &keys == families => {
                granted.insert(resource.clone());
            }
            Some(keys) => problems.push(format!(
                "{resource} may write the families {keys:?}; its code writes {families:?}"
            )),
            None => problems.push(format!(
                "{resource}'s {writes:?} has no (sole) ForAllValues:StringEquals dynamodb:LeadingKeys condition"
            )),
        }
    }
    (problems, granted)
}

#[test]
fn every_dynamodb_write_a_function_is_granted_is_limited_to_the_families_it_writes() {
    let (problems, granted) = write_grant_problems(&template());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The table above and the template describe the same functions: a function whose
    // grant went missing could not write at all.
    let expected: BTreeSet<String> = expected_writes().into_keys().map(String::from).collect();
    assert_eq!(granted, expected, "functions granted DynamoDB writes");
}

/// The check itself, on grants it must refuse: the API's former table-wide write, a
/// family too many, a looser operator, a wildcard.
#[test]
fn table_wide_or_wider_writes_are_reported() {
    let api = |statement: &str| -> Value {
        let yaml = format!(
            "Resources:\n  OverrideApiFunction:\n    Properties:\n      Policies:\n        - Statement:\n            - {statement}\n"
        );
        serde_norway::from_str(&yaml).unwrap()
    };
    for statement in [
        "{Effect: Allow, Action: [dynamodb:GetItem, dynamodb:PutItem], Resource: !GetAtt Table.Arn}",
        "{Effect: Allow, Action: dynamodb:PutItem, Resource: !GetAtt Table.Arn, Condition: {ForAllValues:StringEquals: {dynamodb:LeadingKeys: [INVOCATION, AUDIT, STATE, REVENUE]}}}",
        "{Effect: Allow, Action: dynamodb:PutItem, Resource: !GetAtt Table.Arn, Condition: {ForAnyValue:StringEquals: {dynamodb:LeadingKeys: [INVOCATION, AUDIT, STATE]}}}",
        "{Effect: Allow, Action: [dynamodb:Put*], Resource: !GetAtt Table.Arn}",
        "{Effect: Allow, Action: dynamodb:DeleteItem, Resource: !GetAtt Table.Arn, Condition: {ForAllValues:StringEquals: {dynamodb:LeadingKeys: [INVOCATION, AUDIT, STATE]}}}",
    ] {
        let (problems, _) = write_grant_problems(&api(statement));
        assert!(!problems.is_empty(), "not reported: {statement}");
    }
    let (problems, granted) = write_grant_problems(&api(
        "{Effect: Allow, Action: [dynamodb:PutItem], Resource: !GetAtt Table.Arn, Condition: {ForAllValues:StringEquals: {dynamodb:LeadingKeys: [STATE, AUDIT, AUDIT_ID, PUBLISHED, INVOCATION]}}}",
    ));
    assert_eq!((problems, granted), (vec![], BTreeSet::from(["OverrideApiFunction".to_string()])));
}

#[test]
fn the_families_written_are_the_partition_keys_the_store_defines() {
    let store = repo_file("shared/aws/src/dynamo.rs");
    let defined: BTreeSet<String> = store
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("const ")?;
            let (name, value) = rest.split_once(": &str = ")?;
            let value = value.trim_end_matches(';').trim_matches('"');
            (name == value).then(|| value.to_string())
        })
        .collect();
    let written: BTreeSet<String> = expected_writes().into_values().flatten().collect();
    // A family added to the store must be given to the function that writes it here
    // (and in the template); one removed must leave the grants.
    assert_eq!(written, defined, "families written vs the pk constants of dynamo.rs");
    assert!(defined.contains("REVENUE"), "the store's constants were found: {defined:?}");
}

#[test]
fn the_internet_facing_api_cannot_write_revenue_or_cost_snapshots() {
    let families = &expected_writes()["OverrideApiFunction"];
    assert!(!families.contains("REVENUE") && !families.contains("COST"), "{families:?}");
}

/// `FlagPrefix`'s AllowedPattern, as CloudFormation applies it: to the whole value.
fn flag_prefix_pattern() -> (regex_lite::Regex, Option<String>) {
    let template = template();
    let parameter = &template["Parameters"]["FlagPrefix"];
    let pattern =
        parameter.get("AllowedPattern").and_then(Value::as_str).expect("FlagPrefix has an AllowedPattern");
    let regex = regex_lite::Regex::new(&format!("^(?:{pattern})$")).expect("the AllowedPattern compiles");
    (regex, parameter.get("Default").and_then(Value::as_str).map(str::to_string))
}

#[test]
fn flag_prefix_refuses_the_root_and_paths_that_would_widen_the_provisioners_grant() {
    let (pattern, _) = flag_prefix_pattern();
    // The policy grants `parameter${FlagPrefix}/*`: "/" alone would be every parameter.
    for refused in ["/", "", "//", "revscale/flags", "/revscale/flags/", "/revscale//flags", "/revscale/*"] {
        assert!(!pattern.is_match(refused), "FlagPrefix {refused:?} is accepted");
    }
    for accepted in ["/revscale/flags", "/flags", "/team-a/revscale_flags.v2"] {
        assert!(pattern.is_match(accepted), "FlagPrefix {accepted:?} is refused");
    }
}

#[test]
fn flag_prefix_default_satisfies_its_own_pattern() {
    let (pattern, default) = flag_prefix_pattern();
    let default = default.expect("FlagPrefix has a default");
    assert!(pattern.is_match(&default), "{default}");
}

#[test]
fn the_provisioner_may_not_rewrite_the_stacks_configuration_or_its_files_whatever_flag_prefix_is() {
    let denied = statements(&template()).into_iter().any(|(resource, statement)| {
        resource == "ProvisionFunction"
            && statement["Effect"].as_str() == Some("Deny")
            && strings(&statement["Action"]).iter().any(|a| a == "ssm:PutParameter")
            && ["", "/files/*"].iter().all(|tail| {
                let arn = format!(":parameter/revscale/${{AWS::StackName}}/config{tail}");
                statement["Resource"].as_sequence().is_some_and(|resources| {
                    resources.iter().any(|r| {
                        matches!(r, Value::Tagged(sub)
                    if sub.tag == "Sub" && sub.value.as_str().is_some_and(|r| r.ends_with(&arn)))
                    })
                })
            })
    });
    assert!(
        denied,
        "ProvisionFunction has no Deny of ssm:PutParameter on its configuration parameter and its files"
    );
}

#[test]
fn service_linked_roles_may_be_created_only_for_eks() {
    let mut found = false;
    for (resource, statement) in statements(&template()) {
        if !strings(&statement["Action"])
            .iter()
            .any(|a| a.eq_ignore_ascii_case("iam:CreateServiceLinkedRole"))
        {
            continue;
        }
        found = true;
        assert_eq!(resource, "ProvisionFunction", "only the provisioner creates EKS clusters");
        let services: BTreeSet<String> = statement["Condition"]["StringEquals"]
            .get("iam:AWSServiceName")
            .map(strings)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let eks: BTreeSet<String> =
            ["eks.amazonaws.com", "eks-nodegroup.amazonaws.com"].map(String::from).into();
        assert_eq!(services, eks, "{resource}: iam:AWSServiceName");
    }
    assert!(found, "the provisioner may create EKS's service-linked roles on an account's first cluster");
}

/// The actions a function's Allow statements grant, and the Allow statements with their
/// resources and conditions, by the function (template resource) that holds them.
fn allowed(template: &Value, function: &str) -> Vec<Value> {
    statements(template)
        .into_iter()
        .filter(|(resource, s)| resource == function && s["Effect"].as_str() == Some("Allow"))
        .map(|(_, s)| s)
        .collect()
}

fn grants(statements: &[Value], action: &str) -> bool {
    statements.iter().any(|s| strings(&s["Action"]).iter().any(|a| a == action))
}

#[test]
fn the_provisioners_policy_grants_every_action_every_driver_kind_calls() {
    let template = template();
    let provisioner = allowed(&template, "ProvisionFunction");
    let mut missing = Vec::new();
    for spec in revscale_engine::config::DriverSpec::examples() {
        for action in revscale_aws::drivers::iam_actions(&spec) {
            if !grants(&provisioner, action) {
                missing.push(format!("{}: {action}", spec.kind()));
            }
        }
    }
    assert!(missing.is_empty(), "the provisioner would be denied: {missing:?}");
}

#[test]
fn the_evaluator_may_read_every_kind_for_the_drift_check_and_only_restart_databases_back_down() {
    let template = template();
    let evaluator = allowed(&template, "EvaluateFunction");
    let mut missing = Vec::new();
    for spec in revscale_engine::config::DriverSpec::examples() {
        for action in revscale_aws::drivers::iam_actions(&spec) {
            if reads(action) && !PROVISIONING_READS.contains(action) && !grants(&evaluator, action) {
                missing.push(format!("{}: {action}", spec.kind()));
            }
        }
    }
    assert!(missing.is_empty(), "the drift check would be denied: {missing:?}");
    let writes: Vec<String> = evaluator
        .iter()
        .flat_map(|s| strings(&s["Action"]))
        .filter(|a| {
            let verb = a.split(':').nth(1).unwrap_or_default();
            !["Describe", "Get", "List", "Query"].iter().any(|v| verb.starts_with(v))
                && !a.starts_with("dynamodb:")
                && !a.starts_with("kms:")
                && !["sns:Publish", "events:PutEvents", "ssm:GetParameter", "sqs:SendMessage"]
                    .contains(&a.as_str())
        })
        .collect();
    for action in &writes {
        assert!(
            ["rds:StopDBInstance", "rds:StopDBCluster", "rds:AddTagsToResource"].contains(&action.as_str()),
            "the evaluator may change nothing but stop (and tag) a database AWS restarted: {action}"
        );
    }
}

/// Whether an IAM action only reads.
/// Reads a kind makes only on its way to a write, never to observe: the drift check
/// does not need them (which policies revscale's roles have on the cluster is the
/// provisioner's to keep right, at each of its steps).
const PROVISIONING_READS: &[&str] = &["eks:ListAssociatedAccessPolicies"];

fn reads(action: &str) -> bool {
    ["Describe", "Get", "List"]
        .iter()
        .any(|verb| action.split(':').nth(1).is_some_and(|a| a.starts_with(verb)))
}

#[test]
fn what_the_provisioner_may_switch_in_a_users_account_is_limited_to_what_carries_the_component_tag() {
    // Every action that changes a resource the company owns (a kind whose resource
    // must exist before revscale touches it), derived from the kinds themselves, so a
    // new kind is covered without editing this test.
    let switching: BTreeSet<&str> = revscale_engine::config::DriverSpec::examples()
        .iter()
        .filter(|spec| spec.as_kind().must_exist())
        .flat_map(|spec| revscale_aws::drivers::iam_actions(spec).iter().copied())
        .filter(|action| !reads(action))
        .collect();
    assert!(
        switching.contains("ec2:StartInstances") && switching.contains("rds:StopDBInstance"),
        "{switching:?}"
    );
    let template = template();
    let functions = [allowed(&template, "ProvisionFunction"), allowed(&template, "EvaluateFunction")];
    for statement in functions.into_iter().flatten() {
        let actions = strings(&statement["Action"]);
        if actions.iter().any(|a| switching.contains(a.as_str())) {
            let tagged = statement["Condition"]["Null"]["aws:ResourceTag/revscale-component"].as_str();
            assert_eq!(
                tagged,
                Some("false"),
                "{actions:?} must require the revscale-component tag: {statement:?}"
            );
        }
    }
}

#[test]
fn the_provisioner_creates_updates_and_deletes_only_the_cloudformation_stacks_of_its_own_stack() {
    let template = template();
    for statement in allowed(&template, "ProvisionFunction") {
        let actions = strings(&statement["Action"]);
        let condition = &statement["Condition"]["StringEquals"];
        let tag_of = |key: &str| {
            condition[key].as_mapping().is_some()
                || condition[key].as_str().is_some()
                || matches!(&condition[key], serde_norway::Value::Tagged(_))
        };
        if actions.iter().any(|a| a == "cloudformation:CreateStack") {
            assert!(
                tag_of("aws:RequestTag/revscale:stack"),
                "CreateStack must tag revscale:stack: {statement:?}"
            );
        }
        if actions.iter().any(|a| a == "cloudformation:UpdateStack" || a == "cloudformation:DeleteStack") {
            assert!(
                tag_of("aws:ResourceTag/revscale:stack"),
                "Update/DeleteStack must require revscale:stack: {statement:?}"
            );
        }
    }
}

#[test]
fn the_provisioner_may_add_only_revscales_own_tags_to_an_ec2_instance_never_its_component_tag() {
    let template = template();
    let tagging: Vec<Value> = allowed(&template, "ProvisionFunction")
        .into_iter()
        .filter(|s| strings(&s["Action"]).iter().any(|a| a == "ec2:CreateTags"))
        .collect();
    assert!(!tagging.is_empty(), "ec2_instances tags what it switches");
    for statement in tagging {
        let keys = strings(&statement["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]);
        assert_eq!(keys, ["revscale:managed", "revscale:stack"], "{statement:?}");
        assert_eq!(
            statement["Condition"]["Null"]["aws:ResourceTag/revscale-component"].as_str(),
            Some("false"),
            "{statement:?}"
        );
    }
}
