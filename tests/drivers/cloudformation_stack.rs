//! `cloudformation_stack` on moto: a template with one SSM parameter whose value is the
//! stack parameter `Size` (WARM 0, HOT 2), so the resource shows which parameters are
//! in force. Where moto departs from CloudFormation:
//! - every operation completes within the call (no `*_IN_PROGRESS` is ever seen);
//! - a resource that fails fails the call itself: no `ROLLBACK_COMPLETE` nor
//!   `UPDATE_ROLLBACK_COMPLETE` (a failed create stays `CREATE_IN_PROGRESS`, a failed
//!   update keeps its new parameters with the resource gone), so failed stacks are
//!   covered by the driver's unit tests on recorded statuses;
//! - a `Number` parameter reaches the resource as a number (`0` then fails SSM's
//!   length check): `Size` is a `String` here;
//! - a parameter the template does not declare is ignored, where CloudFormation
//!   refuses it: the driver's own refusal is what the refusal test sees.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_cloudformation::types::Parameter;
use revscale_engine::config::Component;
use revscale_engine::drivers::{COMPONENT_TAG, CloudformationStack};
use revscale_engine::model::ComponentState::{Cold, Hot, Warm};
use revscale_engine::ports::{Apply, ComponentDriver, DriverError, DriverStatus};
use revscale_integration_tests::{sdk, unique};

use crate::contract::{component, drivers, keeps_the_contract, until_ready};

pub const KIND: &str = "cloudformation_stack";

const ROLE: &str = "arn:aws:iam::123456789012:role/revscale-cloudformation";

fn template(flag: &str) -> String {
    format!(
        "Parameters:\n  Size:\n    Type: String\nResources:\n  Flag:\n    Type: AWS::SSM::Parameter\n    \
         Properties:\n      Name: {flag}\n      Type: String\n      Value: !Ref Size\n"
    )
}

/// A stack of its own, with the SSM parameter its template manages.
fn stack_spec() -> (CloudformationStack, String) {
    let name = unique("revscale-cfn");
    let flag = format!("/revscale-tests/{name}");
    let mut spec = CloudformationStack {
        stack_name: name,
        template_body: Some(template(&flag)),
        role_arn: ROLE.into(),
        ..Default::default()
    };
    spec.parameters.warm.insert("Size".into(), "0".into());
    spec.parameters.hot.insert("Size".into(), "2".into());
    (spec, flag)
}

async fn cloudformation() -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&sdk().await)
}

/// The stack as moto describes it, `None` once it is gone.
async fn described(name: &str) -> Option<aws_sdk_cloudformation::types::Stack> {
    cloudformation()
        .await
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .ok()?
        .stacks
        .unwrap_or_default()
        .pop()
}

/// The value of the SSM parameter the stack manages, `None` when there is none.
async fn flag_value(flag: &str) -> Option<String> {
    let ssm = aws_sdk_ssm::Client::new(&sdk().await);
    ssm.get_parameter().name(flag).send().await.ok()?.parameter?.value
}

#[tokio::test]
async fn a_stack_keeps_the_contract_and_its_resource_follows_the_state() {
    let (spec, flag) = stack_spec();
    let name = spec.stack_name.clone();
    let c = component("search", spec);
    // Read after each WARM / HOT step: the stack's tags, and what the resource holds.
    let seen_values = Arc::new(Mutex::new(Vec::new()));
    let tags = || {
        let (name, flag, seen_values) = (name.clone(), flag.clone(), seen_values.clone());
        async move {
            let stack = described(&name).await.expect("the stack exists at WARM and HOT");
            assert_eq!(stack.role_arn.as_deref(), Some(ROLE), "CloudFormation acts with the service role");
            let value = flag_value(&flag).await;
            seen_values.lock().unwrap().push(value);
            let tags: BTreeMap<String, String> =
                stack.tags().iter().filter_map(|t| Some((t.key.clone()?, t.value.clone()?))).collect();
            Some(tags)
        }
    };
    let seen = keeps_the_contract(&c, tags).await;
    assert_eq!(
        *seen_values.lock().unwrap(),
        [Some("0".to_string()), Some("2".to_string()), Some("0".to_string())],
        "the parameter follows WARM -> HOT -> WARM"
    );
    assert_eq!(flag_value(&flag).await, None, "COLD deleted the stack and its resource");
    assert!(described(&name).await.is_none(), "no stack at COLD");
    assert_eq!(seen[1].1.actual, "UPDATE_COMPLETE, parameters Size=2");
}

#[tokio::test]
async fn a_parameter_the_template_does_not_declare_is_refused_before_any_stack_call() {
    let drivers = drivers().await;
    let (mut spec, flag) = stack_spec();
    spec.parameters.warm.insert("Sise".into(), "1".into());
    let name = spec.stack_name.clone();
    let c = component("search", spec.clone());
    let refused = drivers.apply(Apply { component: &c, target: Warm, saved: None }).await;
    let Err(DriverError::Rejected(why)) = refused else { panic!("applied: {refused:?}") };
    assert!(why.contains("parameters.warm.Sise") && why.contains("declares: Size"), "{why}");
    assert!(described(&name).await.is_none(), "no stack was created");
    assert_eq!(flag_value(&flag).await, None);

    // A template that was never read is refused the same way.
    let unread =
        CloudformationStack { template_body: None, template_file: Some("search.yaml".into()), ..spec };
    let c = component("search", unread);
    let refused = drivers.apply(Apply { component: &c, target: Hot, saved: None }).await;
    assert!(matches!(&refused, Err(DriverError::Rejected(w)) if w.contains("search.yaml")), "{refused:?}");
    assert!(described(&name).await.is_none(), "no stack was created");
    // COLD needs no template: there is nothing to delete, and nothing is called but
    // DescribeStacks.
    drivers.apply(Apply { component: &c, target: Cold, saved: None }).await.unwrap();
}

async fn take_hot(c: &Component) {
    let drivers = drivers().await;
    drivers.apply(Apply { component: c, target: Hot, saved: None }).await.unwrap();
    until_ready(&drivers, c, Hot).await;
}

#[tokio::test]
async fn a_stack_deleted_behind_revscales_back_is_cold_drift_and_fails_hot() {
    let drivers = drivers().await;
    let (spec, flag) = stack_spec();
    let name = spec.stack_name.clone();
    let c = component("search", spec);
    take_hot(&c).await;
    assert_eq!(flag_value(&flag).await.as_deref(), Some("2"));

    cloudformation().await.delete_stack().stack_name(&name).send().await.unwrap();
    let observed = drivers.observe(&c).await.unwrap();
    assert_eq!(observed.states, [Cold], "{observed:?}");
    assert!(!observed.agrees_with(Hot), "the recorded HOT is drift");
    let status = drivers.status(&c, Hot).await.unwrap();
    assert!(matches!(&status, DriverStatus::Failed(w) if w.contains("does not exist")), "{status:?}");
    // Taking it COLD has nothing left to do.
    drivers.apply(Apply { component: &c, target: Cold, saved: None }).await.unwrap();
    assert_eq!(drivers.status(&c, Cold).await.unwrap(), DriverStatus::Ready);
}

#[tokio::test]
async fn parameters_changed_by_hand_are_drift_that_the_next_switch_repairs() {
    let drivers = drivers().await;
    let (spec, flag) = stack_spec();
    let name = spec.stack_name.clone();
    let body = spec.template_body.clone().unwrap();
    let c = component("search", spec);
    take_hot(&c).await;

    let by_hand = Parameter::builder().parameter_key("Size").parameter_value("7").build();
    cloudformation()
        .await
        .update_stack()
        .stack_name(&name)
        .template_body(body)
        .parameters(by_hand)
        .send()
        .await
        .unwrap();
    let observed = drivers.observe(&c).await.unwrap();
    assert!(observed.states.is_empty(), "{observed:?}");
    assert_eq!(observed.actual, "UPDATE_COMPLETE, parameters Size=7");
    assert_eq!(
        drivers.status(&c, Hot).await.unwrap(),
        DriverStatus::InProgress,
        "not HOT's parameters (yet)"
    );

    take_hot(&c).await;
    assert_eq!(drivers.observe(&c).await.unwrap().states, [Hot]);
    assert_eq!(flag_value(&flag).await.as_deref(), Some("2"));
    drivers.apply(Apply { component: &c, target: Cold, saved: None }).await.unwrap();
    until_ready(&drivers, &c, Cold).await;
}

#[tokio::test]
async fn a_changed_template_is_applied_with_the_next_switch() {
    let drivers = drivers().await;
    let (spec, flag) = stack_spec();
    let name = spec.stack_name.clone();
    let c = component("search", spec.clone());
    take_hot(&c).await;

    // A new `config push`: the template now names another parameter for the value.
    let moved = format!("{flag}-moved");
    let changed = CloudformationStack { template_body: Some(template(&moved)), ..spec };
    let c = component("search", changed);
    drivers.apply(Apply { component: &c, target: Warm, saved: None }).await.unwrap();
    until_ready(&drivers, &c, Warm).await;
    assert_eq!(flag_value(&moved).await.as_deref(), Some("0"), "the new template is in force");
    let stack = described(&name).await.unwrap();
    assert!(stack.tags().iter().any(|t| t.key.as_deref() == Some(COMPONENT_TAG)), "{:?}", stack.tags());
    drivers.apply(Apply { component: &c, target: Cold, saved: None }).await.unwrap();
    until_ready(&drivers, &c, Cold).await;
    assert_eq!(flag_value(&moved).await, None);
}
