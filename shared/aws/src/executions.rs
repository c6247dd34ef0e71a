//! Whether a provisioning run's Step Functions execution is still running
//! (`DescribeExecution`), for the operator's release of a stuck run.

use std::future::Future;
use std::pin::Pin;

use aws_sdk_sfn::error::ProvideErrorMetadata;
use aws_sdk_sfn::types::ExecutionStatus;
use revscale_engine::DecisionId;
use revscale_engine::ports::{ExecutionsError, ProvisioningExecutions};

/// The provision state machine's executions. The dispatch state machine names each one
/// after its decision id (infra/statemachine/dispatch.asl.json), so the id is enough to
/// find it.
pub struct StepFunctionsExecutions {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl StepFunctionsExecutions {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: String) -> Self {
        StepFunctionsExecutions { client, state_machine_arn }
    }
}

/// `arn:aws:states:<region>:<account>:stateMachine:<name>` and a decision id ->
/// `arn:aws:states:<region>:<account>:execution:<name>:<decision id>`, how Step Functions
/// names a standard execution. `None` for anything else than a state machine's ARN.
pub fn execution_arn(state_machine_arn: &str, decision_id: &DecisionId) -> Option<String> {
    let (prefix, name) = state_machine_arn.split_once(":stateMachine:")?;
    (!name.is_empty() && !name.contains(':')).then(|| format!("{prefix}:execution:{name}:{decision_id}"))
}

/// The port as a trait object, for dependencies that are not generic over it (the
/// operator API's `Deps`): any [`ProvisioningExecutions`] is one.
pub trait RunningExecutions: Send + Sync {
    fn is_running<'a>(
        &'a self,
        decision_id: &'a DecisionId,
    ) -> Pin<Box<dyn Future<Output = Result<bool, ExecutionsError>> + Send + 'a>>;
}

impl<T: ProvisioningExecutions + Send + Sync> RunningExecutions for T {
    fn is_running<'a>(
        &'a self,
        decision_id: &'a DecisionId,
    ) -> Pin<Box<dyn Future<Output = Result<bool, ExecutionsError>> + Send + 'a>> {
        Box::pin(ProvisioningExecutions::is_running(self, decision_id))
    }
}

impl ProvisioningExecutions for StepFunctionsExecutions {
    async fn is_running(&self, decision_id: &DecisionId) -> Result<bool, ExecutionsError> {
        let failed = |message: String| ExecutionsError { decision_id: decision_id.clone(), message };
        let arn = execution_arn(&self.state_machine_arn, decision_id)
            .ok_or_else(|| failed(format!("{} is not a state machine ARN", self.state_machine_arn)))?;
        match self.client.describe_execution().execution_arn(&arn).send().await {
            Ok(out) => Ok(out.status == ExecutionStatus::Running),
            // No execution by that name (a run the simulator made, or one whose history
            // Step Functions no longer keeps): nothing is running under it.
            Err(e) if e.code() == Some("ExecutionDoesNotExist") => Ok(false),
            Err(e) => Err(failed(aws_sdk_sfn::error::DisplayErrorContext(&e).to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_is_named_after_its_decision_under_its_state_machine() {
        let machine = "arn:aws:states:eu-west-1:123456789012:stateMachine:revscale-provision";
        assert_eq!(
            execution_arn(machine, &"2026-03-01-L0-L1-ab12".into()).as_deref(),
            Some("arn:aws:states:eu-west-1:123456789012:execution:revscale-provision:2026-03-01-L0-L1-ab12")
        );
        assert_eq!(execution_arn("arn:aws:lambda:eu-west-1:1:function:provision", &"d".into()), None);
    }
}
