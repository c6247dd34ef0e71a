//! `cloudformation_stack`: COLD = no stack (`DeleteStack`); WARM = the stack with its
//! WARM parameters, HOT = with its HOT parameters (`CreateStack`, then `UpdateStack`).
//! CloudFormation acts with the spec's service role (`RoleARN`), so revscale needs only
//! the stack calls and `iam:PassRole` on that role.
//!
//! Choices, against AWS's documented behaviour:
//! - Capabilities: every call acknowledges `CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM` and
//!   `CAPABILITY_AUTO_EXPAND`. A template with IAM resources (CDK's always has some) or
//!   a macro / transform (SAM's `AWS::Serverless-2016-10-31`) is refused without them
//!   (`InsufficientCapabilitiesException`). Putting the template into revscale's
//!   configuration is the acknowledgement; what CloudFormation may do is bounded by the
//!   service role, not by these flags.
//! - A failed first create is left to CloudFormation's default (`OnFailure=ROLLBACK`),
//!   not `DELETE`: the stack stays in `ROLLBACK_COMPLETE` with its reason and its
//!   events, so `status` reports why (a deleted stack vanishes by name, and its reason
//!   with it). The failed step's undo takes the component COLD, which deletes it.
//! - A `ROLLBACK_COMPLETE` stack (or any `*_FAILED` one) is refused for WARM / HOT with
//!   its reason and the way out (COLD deletes it), rather than deleted and re-created
//!   behind the operator's back: the failure must be seen, and the provisioner takes a
//!   refusal as "nothing changed", which only a refusal guarantees.
//! - `UpdateStack` always passes the template too, so a changed template (a new
//!   `config push`) is applied with the next switch; "No updates are to be performed"
//!   is success.
//! - A stack whose parameters equal the target's after `UPDATE_ROLLBACK_COMPLETE` is
//!   where the target wants it: that is how the undo of a rolled-back update ends.
//!
//! The five calls go through the signed Query client ([`crate::query`] says why not
//! the SDK's client).

use std::collections::BTreeMap;

use revscale_engine::config::{Component, Kind};
use revscale_engine::drivers::CloudformationStack;
use revscale_engine::model::ComponentState;
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients, query_error};
use crate::query::{self, QueryError, child_text, child_value, members};

/// Another writer created the stack between our read and our create (or a retried
/// create's first attempt was accepted): this call changed nothing.
const BUSY: &[&str] = &["AlreadyExistsException"];

/// What a masked (`NoEcho`) parameter reads as: its value cannot be compared.
const MASKED: &str = "****";

/// The stack as `DescribeStacks` describes it: what the pure functions read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackView {
    /// `CREATE_COMPLETE`, `UPDATE_ROLLBACK_IN_PROGRESS`... ([`phase`] reads it).
    pub status: String,
    pub reason: Option<String>,
    pub parameters: BTreeMap<String, String>,
}

impl StackView {
    /// "UPDATE_COMPLETE: reason", or the status alone.
    fn described(&self) -> String {
        match self.reason.as_deref().filter(|r| !r.is_empty()) {
            Some(reason) => format!("{}: {reason}", self.status),
            None => self.status.clone(),
        }
    }

    fn parameters_text(&self) -> String {
        let listed: Vec<String> = self.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{}, parameters {}",
            self.status,
            if listed.is_empty() { "none".into() } else { listed.join(" ") }
        )
    }
}

/// One event of `DescribeStackEvents`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackEvent {
    pub logical_resource_id: String,
    pub resource_type: String,
    pub resource_status: String,
    pub resource_status_reason: Option<String>,
}

/// The first stack of a `DescribeStacks` answer.
pub fn parse_stack(xml: &str) -> Result<Option<StackView>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let result = query::result(&doc, "DescribeStacks")?;
    let Some(stack) = members(result, "Stacks", "member").next() else {
        return Ok(None);
    };
    Ok(Some(StackView {
        status: child_text(stack, "StackStatus").ok_or("a stack without <StackStatus>")?.to_owned(),
        reason: child_text(stack, "StackStatusReason").map(str::to_owned),
        parameters: members(stack, "Parameters", "member")
            .filter_map(|p| {
                Some((
                    child_text(p, "ParameterKey")?.to_owned(),
                    child_value(p, "ParameterValue").unwrap_or("").to_owned(),
                ))
            })
            .collect(),
    }))
}

/// The events of a `DescribeStackEvents` answer, newest first as it lists them.
pub fn parse_events(xml: &str) -> Result<Vec<StackEvent>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let result = query::result(&doc, "DescribeStackEvents")?;
    let text = |node, name| child_text(node, name).unwrap_or("").to_owned();
    Ok(members(result, "StackEvents", "member")
        .map(|e| StackEvent {
            logical_resource_id: text(e, "LogicalResourceId"),
            resource_type: text(e, "ResourceType"),
            resource_status: text(e, "ResourceStatus"),
            resource_status_reason: child_text(e, "ResourceStatusReason").map(str::to_owned),
        })
        .collect())
}

/// How a stack status reads: settled with its parameters in force, on its way, or
/// stopped by a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No stack: never created, or deleted.
    Absent,
    /// Settled, its parameters in force (a rolled-back update keeps the previous ones).
    Settled,
    /// Only after `UPDATE_ROLLBACK_COMPLETE`: settled, but the last update failed.
    RolledBack,
    Deleting,
    Moving,
    /// A failed create rolled back (`ROLLBACK_COMPLETE`) or any `*_FAILED`: only a
    /// delete (or a human) gets it out.
    Failed,
    Unknown,
}

/// The stack statuses of CloudFormation's API reference (`StackStatus`), read; a
/// status added later is moving or failed by its suffix, else unknown.
pub fn phase(status: &str) -> Phase {
    match status {
        "DELETE_COMPLETE" => Phase::Absent,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" | "IMPORT_ROLLBACK_COMPLETE" => {
            Phase::Settled
        }
        "UPDATE_ROLLBACK_COMPLETE" => Phase::RolledBack,
        "DELETE_IN_PROGRESS" => Phase::Deleting,
        // CREATE_, UPDATE_, UPDATE_COMPLETE_CLEANUP_, UPDATE_ROLLBACK_,
        // UPDATE_ROLLBACK_COMPLETE_CLEANUP_, ROLLBACK_, IMPORT_, IMPORT_ROLLBACK_ and
        // REVIEW_IN_PROGRESS.
        other if other.ends_with("_IN_PROGRESS") => Phase::Moving,
        // A failed create rolled back: only a delete gets it out.
        "ROLLBACK_COMPLETE" => Phase::Failed,
        // CREATE_, ROLLBACK_, UPDATE_, UPDATE_ROLLBACK_, DELETE_ and IMPORT_ROLLBACK_FAILED.
        other if other.ends_with("_FAILED") => Phase::Failed,
        _ => Phase::Unknown,
    }
}

fn phase_of(stack: Option<&StackView>) -> Phase {
    stack.map_or(Phase::Absent, |s| phase(&s.status))
}

/// The parameters `target` wants, `None` for COLD (no stack). WARMING and COOLING are
/// the state machine's, never a driver's target.
pub fn target_parameters(
    spec: &CloudformationStack,
    target: ComponentState,
) -> Result<Option<&BTreeMap<String, String>>, DriverError> {
    match target {
        ComponentState::Cold => Ok(None),
        ComponentState::Warm => Ok(Some(&spec.parameters.warm)),
        ComponentState::Hot => Ok(Some(&spec.parameters.hot)),
        other => Err(DriverError::Rejected(format!(
            "{}: {other} is no state a stack is taken to",
            spec.resource()
        ))),
    }
}

/// Whether the stack's parameters are the wanted ones. Parameters the state does not
/// name keep the template's default and are not compared; a masked (`NoEcho`) value
/// cannot be read back and counts as equal.
pub fn has_parameters(current: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|(k, v)| current.get(k).is_some_and(|c| c == v || c == MASKED))
}

/// What `apply` does to the stack it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Nothing,
    Create,
    Update,
    Delete,
}

/// The call that takes `stack` towards the target (`wanted`: its parameters, `None` for
/// COLD), or why there is none now.
pub fn plan(
    name: &str,
    stack: Option<&StackView>,
    wanted: Option<&BTreeMap<String, String>>,
) -> Result<Plan, DriverError> {
    let described = || stack.map_or_else(|| "no stack".to_string(), StackView::described);
    match (phase_of(stack), wanted) {
        (Phase::Absent | Phase::Deleting, None) => Ok(Plan::Nothing),
        (Phase::Moving, _) => {
            Err(DriverError::Busy(format!("stack {name} is {}: another operation is under way", described())))
        }
        // Deleting a settled or failed stack: DeleteStack takes every stable status.
        (Phase::Settled | Phase::RolledBack | Phase::Failed | Phase::Unknown, None) => Ok(Plan::Delete),
        (Phase::Absent, Some(_)) => Ok(Plan::Create),
        (Phase::Deleting, Some(_)) => Err(DriverError::Busy(format!(
            "stack {name} is being deleted: it can be created again once it is gone"
        ))),
        (Phase::Settled | Phase::RolledBack, Some(_)) => Ok(Plan::Update),
        (Phase::Failed, Some(_)) => Err(DriverError::Rejected(format!(
            "stack {name} is {}; CloudFormation can only delete it: take the component COLD (revscale deletes \
             it) or delete the stack, then try again",
            described()
        ))),
        (Phase::Unknown, Some(_)) => Err(DriverError::Rejected(format!(
            "stack {name} is {}: not a status revscale knows",
            described()
        ))),
    }
}

/// Maps the stack to progress towards the target (`wanted`: its parameters, `None` for
/// COLD).
pub fn stack_progress(stack: Option<&StackView>, wanted: Option<&BTreeMap<String, String>>) -> DriverStatus {
    let Some(wanted) = wanted else {
        return match phase_of(stack) {
            Phase::Absent => DriverStatus::Ready,
            Phase::Failed if stack.is_some_and(|s| s.status == "DELETE_FAILED") => {
                DriverStatus::Failed(format!(
                    "the stack could not be deleted: {}",
                    stack.map_or_else(String::new, StackView::described)
                ))
            }
            // Deleting, or the delete not visible yet.
            _ => DriverStatus::InProgress,
        };
    };
    let Some(s) = stack else {
        return DriverStatus::Failed("the stack does not exist (deleted outside revscale?)".into());
    };
    match phase(&s.status) {
        Phase::Absent => DriverStatus::Failed("the stack does not exist (deleted outside revscale?)".into()),
        Phase::Deleting => DriverStatus::Failed("the stack is being deleted".into()),
        Phase::Settled if has_parameters(&s.parameters, wanted) => DriverStatus::Ready,
        // The update request is not visible yet.
        Phase::Settled => DriverStatus::InProgress,
        // The undo of a failed update ends here, at the parameters it restored.
        Phase::RolledBack if has_parameters(&s.parameters, wanted) => DriverStatus::Ready,
        Phase::RolledBack => DriverStatus::Failed(format!(
            "the update was rolled back by CloudFormation: {}",
            s.reason.as_deref().unwrap_or("no reason given")
        )),
        // Rollbacks included: the stack must settle before anything else is asked of it.
        Phase::Moving => DriverStatus::InProgress,
        Phase::Failed => DriverStatus::Failed(format!("stack {}", s.described())),
        Phase::Unknown => DriverStatus::Failed(format!("unexpected stack status {}", s.described())),
    }
}

/// Where the stack is: COLD without one; WARM / HOT by its parameters (both when the
/// two states' parameters are equal).
pub fn stack_observed(spec: &CloudformationStack, stack: Option<&StackView>) -> Observed {
    let Some(s) = stack.filter(|s| phase(&s.status) != Phase::Absent) else {
        return Observed::at(&[ComponentState::Cold], "no stack");
    };
    match phase(&s.status) {
        Phase::Settled | Phase::RolledBack => {
            let mut states = Vec::new();
            if has_parameters(&s.parameters, &spec.parameters.warm) {
                states.push(ComponentState::Warm);
            }
            if has_parameters(&s.parameters, &spec.parameters.hot) {
                states.push(ComponentState::Hot);
            }
            // No state's parameters: changed by hand, the drift check names them.
            Observed::at(&states, s.parameters_text())
        }
        Phase::Deleting | Phase::Moving => Observed::moving(&s.status),
        _ => Observed::at(&[], s.described()),
    }
}

/// The first resource that failed in the stack's last operation, from its events
/// (newest first, as `DescribeStackEvents` lists them): the cause, where the stack's
/// own reason says only "The following resource(s) failed to create: [X]".
pub fn first_failure(stack_name: &str, events: &[StackEvent]) -> Option<String> {
    let mut first = None;
    for e in events {
        let status = e.resource_status.as_str();
        let is_stack = e.resource_type == "AWS::CloudFormation::Stack" && e.logical_resource_id == stack_name;
        if is_stack
            && matches!(
                status,
                "CREATE_IN_PROGRESS" | "UPDATE_IN_PROGRESS" | "DELETE_IN_PROGRESS" | "IMPORT_IN_PROGRESS"
            )
        {
            // Where the last operation began.
            break;
        }
        if !is_stack && status.ends_with("_FAILED") {
            first = Some(format!(
                "{} ({}) {status}: {}",
                e.logical_resource_id,
                e.resource_type,
                e.resource_status_reason.as_deref().unwrap_or("no reason given")
            ));
        }
    }
    first
}

/// How CloudFormation's `ValidationError`, its answer to nearly everything, reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `DescribeStacks` of a stack that does not exist (or was deleted).
    NoStack,
    /// `UpdateStack` with the template and parameters in force: nothing to do.
    NoUpdates,
    /// The stack is in the middle of another operation.
    Busy,
    Other,
}

pub fn refusal(code: Option<&str>, message: Option<&str>) -> Refusal {
    let message = message.unwrap_or("");
    match code {
        Some("ValidationError")
            if message.contains("does not exist") && message.starts_with("Stack with id") =>
        {
            Refusal::NoStack
        }
        Some("ValidationError") if message.contains("No updates are to be performed") => Refusal::NoUpdates,
        Some("ValidationError") if message.contains("_IN_PROGRESS state") => Refusal::Busy,
        _ => Refusal::Other,
    }
}

fn refusal_of(e: &QueryError) -> Refusal {
    refusal(e.code(), e.message())
}

/// A failed call as a driver error; a `ValidationError` about another operation under
/// way is busy, like an `AlreadyExistsException`.
fn stack_error(e: QueryError) -> DriverError {
    if refusal_of(&e) == Refusal::Busy {
        return DriverError::Busy(e.to_string());
    }
    query_error(e, BUSY)
}

/// The stack as `DescribeStacks` describes it, `None` when there is none.
async fn describe(aws: &Clients, name: &str) -> Result<Option<StackView>, DriverError> {
    const ACTION: &str = "DescribeStacks";
    match aws.cloudformation.call(ACTION, &[("StackName".into(), name.to_owned())]).await {
        Ok(xml) => parse_stack(&xml).map_err(|what| stack_error(aws.cloudformation.bad_answer(ACTION, what))),
        Err(e) if refusal_of(&e) == Refusal::NoStack => Ok(None),
        Err(e) => Err(stack_error(e)),
    }
}

/// Best effort: the stack's reason says enough when the events cannot be read.
async fn failure_cause(aws: &Clients, name: &str) -> Option<String> {
    let xml = aws
        .cloudformation
        .call("DescribeStackEvents", &[("StackName".into(), name.to_owned())])
        .await
        .ok()?;
    first_failure(name, &parse_events(&xml).ok()?)
}

/// `CreateStack` and `UpdateStack`'s parameters: the template, the state's parameters,
/// the service role, revscale's tags and the capabilities.
fn stack_call(
    name: &str,
    body: Option<&str>,
    wanted: &BTreeMap<String, String>,
    role: Option<&str>,
    tags: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut params = vec![("StackName".to_owned(), name.to_owned())];
    params.extend(body.map(|body| ("TemplateBody".to_owned(), body.to_owned())));
    for (n, (key, value)) in wanted.iter().enumerate() {
        let p = format!("Parameters.member.{}", n + 1);
        params.push((format!("{p}.ParameterKey"), key.clone()));
        params.push((format!("{p}.ParameterValue"), value.clone()));
    }
    params.extend(role.map(|role| ("RoleARN".to_owned(), role.to_owned())));
    for (n, (key, value)) in tags.iter().enumerate() {
        let t = format!("Tags.member.{}", n + 1);
        params.push((format!("{t}.Key"), (*key).to_owned()));
        params.push((format!("{t}.Value"), (*value).to_owned()));
    }
    let capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"];
    params.extend(query::member_list("Capabilities", &capabilities.map(String::from)));
    params
}

/// The problems that make a stack call pointless: no template, a parameter the
/// template does not declare, one without a default left unset. The configuration's
/// check refuses them already; this is the defence in depth, before any call.
fn refuse_bad_spec(spec: &CloudformationStack) -> Result<(), DriverError> {
    let problems = spec.check();
    if problems.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = problems.iter().map(|(field, why)| format!("{field}: {why}")).collect();
    Err(DriverError::Rejected(format!("{}: {}", spec.resource(), listed.join("; "))))
}

impl AwsKind for CloudformationStack {
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "cloudformation:DescribeStacks",
            "cloudformation:DescribeStackEvents",
            "cloudformation:CreateStack",
            "cloudformation:UpdateStack",
            "cloudformation:DeleteStack",
            // The stack's tags, passed with CreateStack and UpdateStack.
            "cloudformation:TagResource",
            "iam:PassRole",
        ]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        let wanted = target_parameters(self, request.target)?;
        if wanted.is_some() {
            refuse_bad_spec(self)?;
        }
        let name = &self.stack_name;
        let role = Some(self.role_arn.as_str()).filter(|r| !r.is_empty());
        let body = self.template_body.as_deref();
        let tags = aws.tags(request.component);
        let stack = describe(aws, name).await?;
        match (plan(name, stack.as_ref(), wanted)?, wanted) {
            (Plan::Nothing, _) => {}
            (Plan::Delete, _) => {
                let mut params = vec![("StackName".to_owned(), name.clone())];
                params.extend(role.map(|role| ("RoleARN".to_owned(), role.to_owned())));
                aws.cloudformation.call("DeleteStack", &params).await.map_err(stack_error)?;
            }
            (Plan::Create, Some(wanted)) => {
                let params = stack_call(name, body, wanted, role, &tags);
                aws.cloudformation.call("CreateStack", &params).await.map_err(stack_error)?;
            }
            (Plan::Update, Some(wanted)) => {
                let params = stack_call(name, body, wanted, role, &tags);
                match aws.cloudformation.call("UpdateStack", &params).await {
                    Ok(_) => {}
                    Err(e) if refusal_of(&e) == Refusal::NoUpdates => {}
                    Err(e) => return Err(stack_error(e)),
                }
            }
            (Plan::Create | Plan::Update, None) => {
                return Err(DriverError::Rejected(format!("stack {name}: nothing to create for COLD")));
            }
        }
        Ok(())
    }

    async fn status(
        &self,
        aws: &Clients,
        _: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        let wanted = target_parameters(self, target)?;
        let stack = describe(aws, &self.stack_name).await?;
        let mut progress = stack_progress(stack.as_ref(), wanted);
        let failed =
            stack.as_ref().is_some_and(|s| matches!(phase(&s.status), Phase::Failed | Phase::RolledBack));
        if let DriverStatus::Failed(why) = &mut progress
            && failed
            && let Some(cause) = failure_cause(aws, &self.stack_name).await
        {
            why.push_str(&format!("; first failure: {cause}"));
        }
        Ok(progress)
    }

    async fn observe(&self, aws: &Clients, _: &Component) -> Result<Observed, DriverError> {
        Ok(stack_observed(self, describe(aws, &self.stack_name).await?.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::{Cold, Hot, Warm};

    fn params(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn stack(status: &str, size: &str) -> StackView {
        StackView {
            status: status.into(),
            reason: Some("because".into()),
            parameters: params(&[("Size", size)]),
        }
    }

    fn spec() -> CloudformationStack {
        let mut s = CloudformationStack {
            stack_name: "revscale-search".into(),
            template_body: Some("Parameters:\n  Size: {Type: String}\nResources: {}\n".into()),
            ..Default::default()
        };
        s.parameters.warm.insert("Size".into(), "0".into());
        s.parameters.hot.insert("Size".into(), "2".into());
        s
    }

    #[test]
    fn each_state_wants_its_own_parameters_and_cold_wants_no_stack() {
        let s = spec();
        assert_eq!(target_parameters(&s, Cold).unwrap(), None);
        assert_eq!(target_parameters(&s, Warm).unwrap(), Some(&params(&[("Size", "0")])));
        assert_eq!(target_parameters(&s, Hot).unwrap(), Some(&params(&[("Size", "2")])));
        assert!(matches!(target_parameters(&s, ComponentState::Warming), Err(DriverError::Rejected(_))));
    }

    #[test]
    fn parameters_match_on_the_keys_a_state_names_and_masked_values_are_unreadable() {
        let current = params(&[("Size", "2"), ("Tier", "small"), ("Secret", "****")]);
        assert!(has_parameters(&current, &params(&[("Size", "2")])), "Tier keeps its default");
        assert!(!has_parameters(&current, &params(&[("Size", "0")])));
        assert!(has_parameters(&current, &params(&[("Secret", "hunter2")])), "NoEcho reads ****");
        assert!(!has_parameters(&current, &params(&[("Missing", "x")])));
    }

    #[test]
    fn apply_creates_updates_deletes_or_waits_by_the_stack_it_finds() {
        let hot = params(&[("Size", "2")]);
        let name = "revscale-search";
        assert_eq!(plan(name, None, Some(&hot)).unwrap(), Plan::Create);
        assert_eq!(plan(name, Some(&stack("DELETE_COMPLETE", "2")), Some(&hot)).unwrap(), Plan::Create);
        for settled in ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"] {
            assert_eq!(
                plan(name, Some(&stack(settled, "0")), Some(&hot)).unwrap(),
                Plan::Update,
                "{settled:?}"
            );
            assert_eq!(plan(name, Some(&stack(settled, "0")), None).unwrap(), Plan::Delete, "{settled:?}");
        }
        assert_eq!(plan(name, None, None).unwrap(), Plan::Nothing);
        assert_eq!(plan(name, Some(&stack("DELETE_IN_PROGRESS", "0")), None).unwrap(), Plan::Nothing);
        for failed in ["ROLLBACK_COMPLETE", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED", "ROLLBACK_FAILED"] {
            assert_eq!(plan(name, Some(&stack(failed, "0")), None).unwrap(), Plan::Delete, "{failed:?}");
        }
    }

    #[test]
    fn a_stack_under_way_is_busy_and_a_failed_one_is_refused_for_warm_and_hot() {
        let warm = params(&[("Size", "0")]);
        let name = "revscale-search";
        for moving in [
            "CREATE_IN_PROGRESS",
            "UPDATE_IN_PROGRESS",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "ROLLBACK_IN_PROGRESS",
        ] {
            assert!(matches!(plan(name, Some(&stack(moving, "0")), Some(&warm)), Err(DriverError::Busy(_))));
            assert!(matches!(plan(name, Some(&stack(moving, "0")), None), Err(DriverError::Busy(_))));
        }
        assert!(matches!(
            plan(name, Some(&stack("DELETE_IN_PROGRESS", "0")), Some(&warm)),
            Err(DriverError::Busy(_))
        ));
        let Err(DriverError::Rejected(why)) = plan(name, Some(&stack("ROLLBACK_COMPLETE", "0")), Some(&warm))
        else {
            panic!("a ROLLBACK_COMPLETE stack cannot be updated");
        };
        assert!(why.contains("ROLLBACK_COMPLETE: because") && why.contains("COLD"), "{why}");
        for failed in ["CREATE_FAILED", "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "NEW_STATUS"] {
            assert!(matches!(
                plan(name, Some(&stack(failed, "0")), Some(&warm)),
                Err(DriverError::Rejected(_))
            ));
        }
    }

    #[test]
    fn cold_is_ready_without_a_stack_and_fails_only_when_the_delete_fails() {
        assert_eq!(stack_progress(None, None), DriverStatus::Ready);
        assert_eq!(stack_progress(Some(&stack("DELETE_COMPLETE", "0")), None), DriverStatus::Ready);
        assert_eq!(stack_progress(Some(&stack("DELETE_IN_PROGRESS", "0")), None), DriverStatus::InProgress);
        assert_eq!(
            stack_progress(Some(&stack("UPDATE_COMPLETE", "0")), None),
            DriverStatus::InProgress,
            "not visible yet"
        );
        let DriverStatus::Failed(why) = stack_progress(Some(&stack("DELETE_FAILED", "0")), None) else {
            panic!("DELETE_FAILED");
        };
        assert!(why.contains("DELETE_FAILED: because"), "{why}");
    }

    #[test]
    fn warm_and_hot_are_ready_once_complete_with_their_parameters() {
        let (warm, hot) = (params(&[("Size", "0")]), params(&[("Size", "2")]));
        for done in ["CREATE_COMPLETE", "UPDATE_COMPLETE"] {
            assert_eq!(stack_progress(Some(&stack(done, "2")), Some(&hot)), DriverStatus::Ready);
            assert_eq!(
                stack_progress(Some(&stack(done, "2")), Some(&warm)),
                DriverStatus::InProgress,
                "update not visible yet"
            );
        }
        for moving in [
            "CREATE_IN_PROGRESS",
            "UPDATE_IN_PROGRESS",
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "ROLLBACK_IN_PROGRESS",
        ] {
            assert_eq!(
                stack_progress(Some(&stack(moving, "2")), Some(&hot)),
                DriverStatus::InProgress,
                "{moving:?}"
            );
        }
    }

    #[test]
    fn a_rolled_back_update_fails_the_step_and_lets_its_undo_be_ready() {
        let (warm, hot) = (params(&[("Size", "0")]), params(&[("Size", "2")]));
        // WARM -> HOT failed: CloudFormation put WARM's parameters back.
        let rolled_back = StackView {
            status: "UPDATE_ROLLBACK_COMPLETE".into(),
            reason: Some("Resource Flag failed to update".into()),
            parameters: params(&[("Size", "0")]),
        };
        assert_eq!(
            stack_progress(Some(&rolled_back), Some(&hot)),
            DriverStatus::Failed(
                "the update was rolled back by CloudFormation: Resource Flag failed to update".into()
            )
        );
        assert_eq!(stack_progress(Some(&rolled_back), Some(&warm)), DriverStatus::Ready, "the undo to WARM");
        assert!(stack_observed(&spec(), Some(&rolled_back)).agrees_with(Warm));
    }

    #[test]
    fn a_failed_or_missing_stack_is_a_failure_for_warm_and_hot_with_its_reason() {
        let hot = params(&[("Size", "2")]);
        for failed in ["ROLLBACK_COMPLETE", "CREATE_FAILED", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED"] {
            let DriverStatus::Failed(why) = stack_progress(Some(&stack(failed, "2")), Some(&hot)) else {
                panic!("{failed:?}");
            };
            assert!(why.contains(failed) && why.contains("because"), "{why}");
        }
        assert!(
            matches!(stack_progress(None, Some(&hot)), DriverStatus::Failed(w) if w.contains("does not exist"))
        );
        assert!(matches!(
            stack_progress(Some(&stack("DELETE_IN_PROGRESS", "2")), Some(&hot)),
            DriverStatus::Failed(_)
        ));
        assert!(matches!(
            stack_progress(Some(&stack("NEW_STATUS", "2")), Some(&hot)),
            DriverStatus::Failed(_)
        ));
    }

    #[test]
    fn observe_reads_the_state_from_the_parameters_in_force() {
        let s = spec();
        assert_eq!(stack_observed(&s, None).states, [Cold]);
        assert_eq!(stack_observed(&s, Some(&stack("DELETE_COMPLETE", "0"))).states, [Cold]);
        assert_eq!(stack_observed(&s, Some(&stack("CREATE_COMPLETE", "0"))).states, [Warm]);
        assert_eq!(stack_observed(&s, Some(&stack("UPDATE_COMPLETE", "2"))).states, [Hot]);
        let drifted = stack_observed(&s, Some(&stack("UPDATE_COMPLETE", "7")));
        assert!(drifted.states.is_empty());
        assert_eq!(drifted.actual, "UPDATE_COMPLETE, parameters Size=7");
        assert_eq!(
            stack_observed(&s, Some(&stack("UPDATE_IN_PROGRESS", "2"))),
            Observed::moving("UPDATE_IN_PROGRESS")
        );
        let failed = stack_observed(&s, Some(&stack("ROLLBACK_COMPLETE", "2")));
        assert!(failed.states.is_empty() && failed.actual == "ROLLBACK_COMPLETE: because", "{failed:?}");
    }

    #[test]
    fn equal_warm_and_hot_parameters_observe_as_both() {
        let mut s = spec();
        s.parameters.hot = s.parameters.warm.clone();
        assert_eq!(stack_observed(&s, Some(&stack("UPDATE_COMPLETE", "0"))).states, [Warm, Hot]);
    }

    fn event(logical: &str, kind: &str, status: &str, reason: Option<&str>) -> StackEvent {
        StackEvent {
            logical_resource_id: logical.into(),
            resource_type: kind.into(),
            resource_status: status.into(),
            resource_status_reason: reason.map(String::from),
        }
    }

    #[test]
    fn the_first_failed_resource_of_the_last_operation_names_the_cause() {
        const STACK: &str = "AWS::CloudFormation::Stack";
        // Newest first, as DescribeStackEvents lists them.
        let events = [
            event("revscale-search", STACK, "UPDATE_ROLLBACK_COMPLETE", None),
            event("Db", "AWS::RDS::DBInstance", "UPDATE_FAILED", Some("Resource update cancelled")),
            event(
                "revscale-search",
                STACK,
                "UPDATE_ROLLBACK_IN_PROGRESS",
                Some("The following resource(s) failed to update: [Flag]"),
            ),
            event("Flag", "AWS::SSM::Parameter", "UPDATE_FAILED", Some("Value too long")),
            event("revscale-search", STACK, "UPDATE_IN_PROGRESS", Some("User Initiated")),
            event("Old", "AWS::SSM::Parameter", "CREATE_FAILED", Some("an earlier operation")),
        ];
        assert_eq!(
            first_failure("revscale-search", &events).as_deref(),
            Some("Flag (AWS::SSM::Parameter) UPDATE_FAILED: Value too long")
        );
        assert_eq!(first_failure("revscale-search", &events[..1]), None);
    }

    #[test]
    fn cloudformation_validation_errors_are_told_apart_by_their_message() {
        let v = Some("ValidationError");
        assert_eq!(refusal(v, Some("Stack with id revscale-x does not exist")), Refusal::NoStack);
        assert_eq!(refusal(v, Some("No updates are to be performed.")), Refusal::NoUpdates);
        assert_eq!(
            refusal(
                v,
                Some(
                    "Stack:arn:aws:cloudformation:eu-west-1:1:stack/x/1 is in UPDATE_IN_PROGRESS state and can not be updated."
                )
            ),
            Refusal::Busy
        );
        assert_eq!(refusal(v, Some("Parameters: [Sise] do not exist in the template")), Refusal::Other);
        assert_eq!(refusal(Some("AccessDenied"), Some("Stack with id x does not exist")), Refusal::Other);
    }

    #[test]
    fn a_spec_without_a_template_or_with_an_undeclared_parameter_is_refused_before_any_call() {
        let mut s = spec();
        s.parameters.hot.insert("Sise".into(), "2".into());
        assert!(
            matches!(refuse_bad_spec(&s), Err(DriverError::Rejected(w)) if w.contains("parameters.hot.Sise"))
        );
        let s =
            CloudformationStack { template_body: None, template_file: Some("search.yaml".into()), ..spec() };
        assert!(matches!(refuse_bad_spec(&s), Err(DriverError::Rejected(w)) if w.contains("search.yaml")));
        assert!(refuse_bad_spec(&spec()).is_ok());
    }

    /// As CloudFormation's API reference shows DescribeStacks' answer.
    const STACKS: &str = r#"<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <DescribeStacksResult>
    <Stacks>
      <member>
        <StackName>revscale-search</StackName>
        <StackId>arn:aws:cloudformation:eu-west-1:123456789012:stack/revscale-search/1</StackId>
        <StackStatus>UPDATE_ROLLBACK_COMPLETE</StackStatus>
        <StackStatusReason>The following resource(s) failed to update: [Flag]</StackStatusReason>
        <Parameters>
          <member><ParameterKey>Size</ParameterKey><ParameterValue>0</ParameterValue></member>
          <member><ParameterKey>Secret</ParameterKey><ParameterValue>****</ParameterValue></member>
          <member><ParameterKey>Empty</ParameterKey><ParameterValue/></member>
          <member><ParameterKey>Block</ParameterKey><ParameterValue>line one
</ParameterValue></member>
        </Parameters>
        <Tags><member><Key>revscale-component</Key><Value>search</Value></member></Tags>
      </member>
    </Stacks>
  </DescribeStacksResult>
  <ResponseMetadata><RequestId>b9b4b068</RequestId></ResponseMetadata>
</DescribeStacksResponse>"#;

    #[test]
    fn a_describe_answer_gives_the_stacks_status_reason_and_parameters_not_its_tags() {
        let view = parse_stack(STACKS).unwrap().unwrap();
        assert_eq!(view.status, "UPDATE_ROLLBACK_COMPLETE");
        assert_eq!(view.reason.as_deref(), Some("The following resource(s) failed to update: [Flag]"));
        assert_eq!(
            view.parameters,
            params(&[("Size", "0"), ("Secret", "****"), ("Empty", ""), ("Block", "line one\n")]),
            "values as written, spaces and line ends kept"
        );
        let none = "<DescribeStacksResponse><DescribeStacksResult><Stacks/></DescribeStacksResult></DescribeStacksResponse>";
        assert_eq!(parse_stack(none).unwrap(), None);
        assert!(
            parse_stack(&STACKS.replace("<StackStatus>UPDATE_ROLLBACK_COMPLETE</StackStatus>", "")).is_err()
        );
        assert!(parse_stack("<ErrorResponse/>").is_err());
    }

    #[test]
    fn an_events_answer_lists_the_events_newest_first_as_given() {
        let xml = r#"<DescribeStackEventsResponse><DescribeStackEventsResult><StackEvents>
  <member><LogicalResourceId>revscale-search</LogicalResourceId><ResourceType>AWS::CloudFormation::Stack</ResourceType><ResourceStatus>UPDATE_ROLLBACK_IN_PROGRESS</ResourceStatus></member>
  <member><LogicalResourceId>Flag</LogicalResourceId><ResourceType>AWS::SSM::Parameter</ResourceType><ResourceStatus>UPDATE_FAILED</ResourceStatus><ResourceStatusReason>Value too long</ResourceStatusReason></member>
</StackEvents></DescribeStackEventsResult></DescribeStackEventsResponse>"#;
        let events = parse_events(xml).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].resource_status_reason, None);
        assert_eq!(
            first_failure("revscale-search", &events).as_deref(),
            Some("Flag (AWS::SSM::Parameter) UPDATE_FAILED: Value too long")
        );
    }

    #[test]
    fn create_and_update_pass_the_template_each_parameter_the_role_the_tags_and_the_capabilities() {
        let wanted = params(&[("Size", "2"), ("Tier", "small")]);
        let call = stack_call(
            "revscale-search",
            Some("Resources: {}"),
            &wanted,
            Some("arn:aws:iam::123456789012:role/cfn"),
            &[("revscale-component", "search"), ("revscale:managed", "true")],
        );
        let get = |key: &str| call.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(get("StackName"), Some("revscale-search"));
        assert_eq!(get("TemplateBody"), Some("Resources: {}"));
        assert_eq!(get("Parameters.member.1.ParameterKey"), Some("Size"));
        assert_eq!(get("Parameters.member.1.ParameterValue"), Some("2"));
        assert_eq!(get("Parameters.member.2.ParameterKey"), Some("Tier"));
        assert_eq!(get("RoleARN"), Some("arn:aws:iam::123456789012:role/cfn"));
        assert_eq!(get("Tags.member.2.Key"), Some("revscale:managed"));
        assert_eq!(get("Capabilities.member.3"), Some("CAPABILITY_AUTO_EXPAND"));
        let bare = stack_call("s", None, &params(&[]), None, &[]);
        assert!(
            bare.iter().all(|(k, _)| k != "RoleARN" && k != "TemplateBody" && !k.starts_with("Tags")),
            "{bare:?}"
        );
    }
}
