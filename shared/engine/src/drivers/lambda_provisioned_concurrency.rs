//! `lambda_provisioned_concurrency`: a function's alias or version. WARM and COLD = no
//! provisioned concurrency (the function stays, billed per request); HOT = the
//! configured amount, READY.

use serde::{Deserialize, Serialize};

use super::{Kind, check_name};

/// The most environments revscale will keep warm: the account's default concurrency
/// limit.
pub const MAX_PROVISIONED_CONCURRENCY: u32 = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaProvisionedConcurrency {
    /// The function's name or ARN.
    pub function_name: String,
    /// An alias or a published version (provisioned concurrency cannot be set on
    /// `$LATEST`).
    pub qualifier: String,
    pub provisioned_concurrent_executions: u32,
}

impl Kind for LambdaProvisionedConcurrency {
    fn kind(&self) -> &'static str {
        "lambda_provisioned_concurrency"
    }
    fn resource(&self) -> String {
        format!("provisioned concurrency of Lambda function {}:{}", self.function_name, self.qualifier)
    }
    fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        check_name("function_name", &self.function_name, 170, &mut problems);
        check_name("qualifier", &self.qualifier, 128, &mut problems);
        if self.qualifier == "$LATEST" {
            problems.push((
                "qualifier".into(),
                "provisioned concurrency cannot be set on $LATEST: name an alias or a published version".into(),
            ));
        }
        let n = self.provisioned_concurrent_executions;
        if !(1..=MAX_PROVISIONED_CONCURRENCY).contains(&n) {
            problems.push((
                "provisioned_concurrent_executions".into(),
                format!("{n}: HOT needs 1 to {MAX_PROVISIONED_CONCURRENCY} (WARM removes it)"),
            ));
        }
        problems
    }
    /// The function exists in every state; only its provisioned concurrency comes and
    /// goes.
    fn must_exist(&self) -> bool {
        true
    }
    fn present_when_cold(&self) -> bool {
        true
    }
    fn readiness_minutes(&self) -> u32 {
        20
    }
}
