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

use std::collections::BTreeMap;

use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::types::{Capability, Parameter, StackEvent, StackStatus, Tag};
use revscale_engine::config::{Component, Kind};
use revscale_engine::drivers::CloudformationStack;
use revscale_engine::model::ComponentState;
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients, sdk_error};

/// Another writer created the stack between our read and our create (or a retried
/// create's first attempt was accepted): this call changed nothing.
const BUSY: &[&str] = &["AlreadyExistsException"];

/// What a masked (`NoEcho`) parameter reads as: its value cannot be compared.
const MASKED: &str = "****";

/// The stack as `DescribeStacks` describes it: what the pure functions read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackView {
    pub status: StackStatus,
    pub reason: Option<String>,
    pub parameters: BTreeMap<String, String>,
}

impl StackView {
    fn from_sdk(stack: &aws_sdk_cloudformation::types::Stack) -> Self {
        StackView {
            status: stack.stack_status.clone().unwrap_or_else(|| StackStatus::from("UNKNOWN")),
            reason: stack.stack_status_reason.clone(),
            parameters: stack
                .parameters()
                .iter()
                .filter_map(|p| {
                    Some((p.parameter_key.clone()?, p.parameter_value.clone().unwrap_or_default()))
                })
                .collect(),
        }
    }

    /// "UPDATE_COMPLETE: reason", or the status alone.
    fn described(&self) -> String {
        match self.reason.as_deref().filter(|r| !r.is_empty()) {
            Some(reason) => format!("{}: {reason}", self.status.as_str()),
            None => self.status.as_str().to_string(),
        }
    }

    fn parameters_text(&self) -> String {
        let listed: Vec<String> = self.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{}, parameters {}",
            self.status.as_str(),
            if listed.is_empty() { "none".into() } else { listed.join(" ") }
        )
    }
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

pub fn phase(status: &StackStatus) -> Phase {
    use StackStatus as S;
    match status {
        S::DeleteComplete => Phase::Absent,
        S::CreateComplete | S::UpdateComplete | S::ImportComplete | S::ImportRollbackComplete => {
            Phase::Settled
        }
        S::UpdateRollbackComplete => Phase::RolledBack,
        S::DeleteInProgress => Phase::Deleting,
        S::CreateInProgress
        | S::UpdateInProgress
        | S::UpdateCompleteCleanupInProgress
        | S::UpdateRollbackInProgress
        | S::UpdateRollbackCompleteCleanupInProgress
        | S::RollbackInProgress
        | S::ImportInProgress
        | S::ImportRollbackInProgress
        | S::ReviewInProgress => Phase::Moving,
        S::RollbackComplete
        | S::CreateFailed
        | S::RollbackFailed
        | S::UpdateFailed
        | S::UpdateRollbackFailed
        | S::DeleteFailed
        | S::ImportRollbackFailed => Phase::Failed,
        other if other.as_str().ends_with("_IN_PROGRESS") => Phase::Moving,
        other if other.as_str().ends_with("_FAILED") => Phase::Failed,
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
            Phase::Failed if stack.is_some_and(|s| s.status == StackStatus::DeleteFailed) => {
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
        Phase::Deleting | Phase::Moving => Observed::moving(s.status.as_str()),
        _ => Observed::at(&[], s.described()),
    }
}

/// The first resource that failed in the stack's last operation, from its events
/// (newest first, as `DescribeStackEvents` lists them): the cause, where the stack's
/// own reason says only "The following resource(s) failed to create: [X]".
pub fn first_failure(stack_name: &str, events: &[StackEvent]) -> Option<String> {
    let mut first = None;
    for e in events {
        let status = e.resource_status.as_ref().map_or("", |s| s.as_str());
        let is_stack = e.resource_type.as_deref() == Some("AWS::CloudFormation::Stack")
            && e.logical_resource_id.as_deref() == Some(stack_name);
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
                e.logical_resource_id.as_deref().unwrap_or("?"),
                e.resource_type.as_deref().unwrap_or("?"),
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

fn refusal_of<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Refusal {
    refusal(e.code(), e.message())
}

/// An SDK error as a driver error; a `ValidationError` about another operation under
/// way is busy, like an `AlreadyExistsException`.
fn stack_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E, aws_sdk_cloudformation::config::http::HttpResponse>,
) -> DriverError {
    if refusal_of(&e) == Refusal::Busy {
        return DriverError::Busy(DisplayErrorContext(&e).to_string());
    }
    sdk_error(e, BUSY)
}

/// The stack as `DescribeStacks` describes it, `None` when there is none.
async fn describe(aws: &Clients, name: &str) -> Result<Option<StackView>, DriverError> {
    match aws.cloudformation.describe_stacks().stack_name(name).send().await {
        Ok(out) => Ok(out.stacks().first().map(StackView::from_sdk)),
        Err(e) if refusal_of(&e) == Refusal::NoStack => Ok(None),
        Err(e) => Err(stack_error(e)),
    }
}

/// Best effort: the stack's reason says enough when the events cannot be read.
async fn failure_cause(aws: &Clients, name: &str) -> Option<String> {
    let out = aws.cloudformation.describe_stack_events().stack_name(name).send().await.ok()?;
    first_failure(name, out.stack_events())
}

fn parameters(wanted: &BTreeMap<String, String>) -> Vec<Parameter> {
    wanted.iter().map(|(k, v)| Parameter::builder().parameter_key(k).parameter_value(v).build()).collect()
}

fn capabilities() -> Vec<Capability> {
    vec![Capability::CapabilityIam, Capability::CapabilityNamedIam, Capability::CapabilityAutoExpand]
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
        let role = Some(self.role_arn.clone()).filter(|r| !r.is_empty());
        let body = self.template_body.clone();
        let tags: Vec<Tag> = aws
            .tags(request.component)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let stack = describe(aws, name).await?;
        match (plan(name, stack.as_ref(), wanted)?, wanted) {
            (Plan::Nothing, _) => {}
            (Plan::Delete, _) => {
                aws.cloudformation
                    .delete_stack()
                    .stack_name(name)
                    .set_role_arn(role)
                    .send()
                    .await
                    .map_err(stack_error)?;
            }
            (Plan::Create, Some(wanted)) => {
                aws.cloudformation
                    .create_stack()
                    .stack_name(name)
                    .set_template_body(body)
                    .set_parameters(Some(parameters(wanted)))
                    .set_role_arn(role)
                    .set_tags(Some(tags))
                    .set_capabilities(Some(capabilities()))
                    .send()
                    .await
                    .map_err(stack_error)?;
            }
            (Plan::Update, Some(wanted)) => {
                let updated = aws
                    .cloudformation
                    .update_stack()
                    .stack_name(name)
                    .set_template_body(body)
                    .set_parameters(Some(parameters(wanted)))
                    .set_role_arn(role)
                    .set_tags(Some(tags))
                    .set_capabilities(Some(capabilities()))
                    .send()
                    .await;
                match updated {
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
    use StackStatus as S;

    fn params(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn stack(status: StackStatus, size: &str) -> StackView {
        StackView { status, reason: Some("because".into()), parameters: params(&[("Size", size)]) }
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
        assert_eq!(plan(name, Some(&stack(S::DeleteComplete, "2")), Some(&hot)).unwrap(), Plan::Create);
        for settled in [S::CreateComplete, S::UpdateComplete, S::UpdateRollbackComplete] {
            assert_eq!(
                plan(name, Some(&stack(settled.clone(), "0")), Some(&hot)).unwrap(),
                Plan::Update,
                "{settled:?}"
            );
            assert_eq!(
                plan(name, Some(&stack(settled.clone(), "0")), None).unwrap(),
                Plan::Delete,
                "{settled:?}"
            );
        }
        assert_eq!(plan(name, None, None).unwrap(), Plan::Nothing);
        assert_eq!(plan(name, Some(&stack(S::DeleteInProgress, "0")), None).unwrap(), Plan::Nothing);
        for failed in [S::RollbackComplete, S::DeleteFailed, S::UpdateRollbackFailed, S::RollbackFailed] {
            assert_eq!(
                plan(name, Some(&stack(failed.clone(), "0")), None).unwrap(),
                Plan::Delete,
                "{failed:?}"
            );
        }
    }

    #[test]
    fn a_stack_under_way_is_busy_and_a_failed_one_is_refused_for_warm_and_hot() {
        let warm = params(&[("Size", "0")]);
        let name = "revscale-search";
        for moving in
            [S::CreateInProgress, S::UpdateInProgress, S::UpdateRollbackInProgress, S::RollbackInProgress]
        {
            assert!(matches!(
                plan(name, Some(&stack(moving.clone(), "0")), Some(&warm)),
                Err(DriverError::Busy(_))
            ));
            assert!(matches!(plan(name, Some(&stack(moving.clone(), "0")), None), Err(DriverError::Busy(_))));
        }
        assert!(matches!(
            plan(name, Some(&stack(S::DeleteInProgress, "0")), Some(&warm)),
            Err(DriverError::Busy(_))
        ));
        let Err(DriverError::Rejected(why)) = plan(name, Some(&stack(S::RollbackComplete, "0")), Some(&warm))
        else {
            panic!("a ROLLBACK_COMPLETE stack cannot be updated");
        };
        assert!(why.contains("ROLLBACK_COMPLETE: because") && why.contains("COLD"), "{why}");
        for failed in [S::CreateFailed, S::UpdateRollbackFailed, S::DeleteFailed, S::from("NEW_STATUS")] {
            assert!(matches!(
                plan(name, Some(&stack(failed.clone(), "0")), Some(&warm)),
                Err(DriverError::Rejected(_))
            ));
        }
    }

    #[test]
    fn cold_is_ready_without_a_stack_and_fails_only_when_the_delete_fails() {
        assert_eq!(stack_progress(None, None), DriverStatus::Ready);
        assert_eq!(stack_progress(Some(&stack(S::DeleteComplete, "0")), None), DriverStatus::Ready);
        assert_eq!(stack_progress(Some(&stack(S::DeleteInProgress, "0")), None), DriverStatus::InProgress);
        assert_eq!(
            stack_progress(Some(&stack(S::UpdateComplete, "0")), None),
            DriverStatus::InProgress,
            "not visible yet"
        );
        let DriverStatus::Failed(why) = stack_progress(Some(&stack(S::DeleteFailed, "0")), None) else {
            panic!("DELETE_FAILED");
        };
        assert!(why.contains("DELETE_FAILED: because"), "{why}");
    }

    #[test]
    fn warm_and_hot_are_ready_once_complete_with_their_parameters() {
        let (warm, hot) = (params(&[("Size", "0")]), params(&[("Size", "2")]));
        for done in [S::CreateComplete, S::UpdateComplete] {
            assert_eq!(stack_progress(Some(&stack(done.clone(), "2")), Some(&hot)), DriverStatus::Ready);
            assert_eq!(
                stack_progress(Some(&stack(done.clone(), "2")), Some(&warm)),
                DriverStatus::InProgress,
                "update not visible yet"
            );
        }
        for moving in [
            S::CreateInProgress,
            S::UpdateInProgress,
            S::UpdateCompleteCleanupInProgress,
            S::UpdateRollbackInProgress,
            S::RollbackInProgress,
        ] {
            assert_eq!(
                stack_progress(Some(&stack(moving.clone(), "2")), Some(&hot)),
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
            status: S::UpdateRollbackComplete,
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
        for failed in [S::RollbackComplete, S::CreateFailed, S::RollbackFailed, S::UpdateRollbackFailed] {
            let DriverStatus::Failed(why) = stack_progress(Some(&stack(failed.clone(), "2")), Some(&hot))
            else {
                panic!("{failed:?}");
            };
            assert!(why.contains(failed.as_str()) && why.contains("because"), "{why}");
        }
        assert!(
            matches!(stack_progress(None, Some(&hot)), DriverStatus::Failed(w) if w.contains("does not exist"))
        );
        assert!(matches!(
            stack_progress(Some(&stack(S::DeleteInProgress, "2")), Some(&hot)),
            DriverStatus::Failed(_)
        ));
        assert!(matches!(
            stack_progress(Some(&stack(S::from("NEW_STATUS"), "2")), Some(&hot)),
            DriverStatus::Failed(_)
        ));
    }

    #[test]
    fn observe_reads_the_state_from_the_parameters_in_force() {
        let s = spec();
        assert_eq!(stack_observed(&s, None).states, [Cold]);
        assert_eq!(stack_observed(&s, Some(&stack(S::DeleteComplete, "0"))).states, [Cold]);
        assert_eq!(stack_observed(&s, Some(&stack(S::CreateComplete, "0"))).states, [Warm]);
        assert_eq!(stack_observed(&s, Some(&stack(S::UpdateComplete, "2"))).states, [Hot]);
        let drifted = stack_observed(&s, Some(&stack(S::UpdateComplete, "7")));
        assert!(drifted.states.is_empty());
        assert_eq!(drifted.actual, "UPDATE_COMPLETE, parameters Size=7");
        assert_eq!(
            stack_observed(&s, Some(&stack(S::UpdateInProgress, "2"))),
            Observed::moving("UPDATE_IN_PROGRESS")
        );
        let failed = stack_observed(&s, Some(&stack(S::RollbackComplete, "2")));
        assert!(failed.states.is_empty() && failed.actual == "ROLLBACK_COMPLETE: because", "{failed:?}");
    }

    #[test]
    fn equal_warm_and_hot_parameters_observe_as_both() {
        let mut s = spec();
        s.parameters.hot = s.parameters.warm.clone();
        assert_eq!(stack_observed(&s, Some(&stack(S::UpdateComplete, "0"))).states, [Warm, Hot]);
    }

    fn event(logical: &str, kind: &str, status: &str, reason: Option<&str>) -> StackEvent {
        StackEvent::builder()
            .logical_resource_id(logical)
            .resource_type(kind)
            .resource_status(aws_sdk_cloudformation::types::ResourceStatus::from(status))
            .set_resource_status_reason(reason.map(String::from))
            .build()
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
}
