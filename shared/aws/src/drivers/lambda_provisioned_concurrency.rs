//! `lambda_provisioned_concurrency`: HOT = the configured provisioned concurrency on a
//! function's alias or version (`PutProvisionedConcurrencyConfig`), READY; WARM and
//! COLD = none (`DeleteProvisionedConcurrencyConfig`): the function stays, billed per
//! request. `GetProvisionedConcurrencyConfig` is read first, so a repeated request makes
//! no call.
//!
//! Nothing is tagged: the function is the user's (it exists in every state and
//! revscale neither creates nor deletes it), and Lambda tags a function, not an alias
//! or version, so two components on two aliases of one function would fight over its
//! `revscale-component` tag, and its cost (its invocations too) is not the component's.

use aws_sdk_lambda::operation::get_provisioned_concurrency_config::GetProvisionedConcurrencyConfigOutput;
use aws_sdk_lambda::types::ProvisionedConcurrencyStatusEnum as PcStatus;
use revscale_engine::config::Component;
use revscale_engine::drivers::LambdaProvisionedConcurrency;
use revscale_engine::model::ComponentState;
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients, is_code, sdk_error};

/// The alias or version has no provisioned concurrency.
const CONFIG_NOT_FOUND: &[&str] = &["ProvisionedConcurrencyConfigNotFoundException"];
/// The function, or its alias or version, does not exist.
const FUNCTION_NOT_FOUND: &[&str] = &["ResourceNotFoundException"];
/// Another change of the function or its configuration is under way.
const BUSY: &[&str] = &["ResourceConflictException"];

/// A provisioned concurrency configuration as `GetProvisionedConcurrencyConfig`
/// answers it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PcConfig {
    pub status: Option<PcStatus>,
    pub requested: i32,
    pub allocated: i32,
    pub reason: Option<String>,
}

impl From<&GetProvisionedConcurrencyConfigOutput> for PcConfig {
    fn from(out: &GetProvisionedConcurrencyConfigOutput) -> Self {
        PcConfig {
            status: out.status().cloned(),
            requested: out.requested_provisioned_concurrent_executions().unwrap_or(0),
            allocated: out.allocated_provisioned_concurrent_executions().unwrap_or(0),
            reason: out.status_reason().map(str::to_owned),
        }
    }
}

/// What Lambda says of the alias or version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No such function, alias or version (`ResourceNotFoundException`).
    NoFunction,
    /// No provisioned concurrency (`ProvisionedConcurrencyConfigNotFoundException`).
    NoConfig,
    Config(PcConfig),
}

/// What `apply` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcAction {
    Put,
    Delete,
    Nothing,
    /// The function, alias or version does not exist: refused.
    Missing,
}

fn configured(spec: &LambdaProvisionedConcurrency) -> i32 {
    i32::try_from(spec.provisioned_concurrent_executions).unwrap_or(i32::MAX)
}

fn target_of(spec: &LambdaProvisionedConcurrency) -> String {
    format!("{}:{}", spec.function_name, spec.qualifier)
}

async fn found(aws: &Clients, spec: &LambdaProvisionedConcurrency) -> Result<Found, DriverError> {
    let answer = aws
        .lambda
        .get_provisioned_concurrency_config()
        .function_name(&spec.function_name)
        .qualifier(&spec.qualifier)
        .send()
        .await;
    match answer {
        Ok(out) => Ok(Found::Config(PcConfig::from(&out))),
        Err(e) if is_code(&e, CONFIG_NOT_FOUND) => Ok(Found::NoConfig),
        Err(e) if is_code(&e, FUNCTION_NOT_FOUND) => Ok(Found::NoFunction),
        Err(e) => Err(sdk_error(e, BUSY)),
    }
}

/// What `apply` does for `target` with `found` and `configured` environments.
pub fn pc_action(found: &Found, configured: i32, target: ComponentState) -> PcAction {
    match (found, target) {
        (Found::NoFunction, _) => PcAction::Missing,
        (Found::Config(c), ComponentState::Hot)
            if c.requested == configured && c.status != Some(PcStatus::Failed) =>
        {
            PcAction::Nothing
        }
        // None yet, another amount, or a FAILED allocation (a Put retries it).
        (_, ComponentState::Hot) => PcAction::Put,
        (Found::NoConfig, _) => PcAction::Nothing,
        (Found::Config(_), _) => PcAction::Delete,
    }
}

/// Progress towards `target`; `what` names the alias or version (`function:alias`).
pub fn pc_progress(found: &Found, configured: i32, target: ComponentState, what: &str) -> DriverStatus {
    match (found, target) {
        (Found::NoFunction, _) => DriverStatus::Failed(format!("Lambda function {what} does not exist")),
        (Found::NoConfig, ComponentState::Hot) => {
            DriverStatus::Failed(format!("{what} has no provisioned concurrency (removed outside revscale?)"))
        }
        (Found::NoConfig, _) => DriverStatus::Ready,
        // Lambda removes the configuration at once; until it shows, the delete is on
        // its way.
        (Found::Config(_), ComponentState::Cold | ComponentState::Warm) => DriverStatus::InProgress,
        (Found::Config(c), _) => match &c.status {
            Some(PcStatus::Failed) => DriverStatus::Failed(failed(c)),
            _ if c.requested != configured => DriverStatus::Failed(format!(
                "{what} has {} provisioned environments requested, not the configured {configured} \
                 (changed outside revscale?)",
                c.requested
            )),
            Some(PcStatus::Ready) if c.allocated == configured => DriverStatus::Ready,
            _ => DriverStatus::InProgress,
        },
    }
}

fn failed(c: &PcConfig) -> String {
    format!("FAILED: {}", c.reason.as_deref().unwrap_or("Lambda gives no reason"))
}

/// Where the alias or version is.
pub fn pc_observed(found: &Found, configured: i32, what: &str) -> Observed {
    use ComponentState::{Cold, Hot, Warm};
    match found {
        Found::NoFunction => {
            Observed::absent(format!("no Lambda function {what} (deleted outside revscale?)"))
        }
        Found::NoConfig => Observed::at(&[Cold, Warm], "no provisioned concurrency"),
        Found::Config(c) => match &c.status {
            Some(PcStatus::Ready) if c.allocated == configured && c.requested == configured => {
                Observed::at(&[Hot], format!("READY, {configured} provisioned"))
            }
            // Set by hand to another amount: drift, which the report names.
            Some(PcStatus::Ready) => Observed::at(
                &[],
                format!(
                    "READY with {} provisioned ({} requested), configured {configured}",
                    c.allocated, c.requested
                ),
            ),
            Some(PcStatus::Failed) => Observed::at(&[], failed(c)),
            _ => Observed::moving(format!("IN_PROGRESS, {} of {} allocated", c.allocated, c.requested)),
        },
    }
}

impl AwsKind for LambdaProvisionedConcurrency {
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "lambda:GetProvisionedConcurrencyConfig",
            "lambda:PutProvisionedConcurrencyConfig",
            "lambda:DeleteProvisionedConcurrencyConfig",
        ]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        let component = request.component;
        let no_function = || {
            DriverError::Rejected(format!(
                "{}: Lambda function {} has no alias or version {} (or does not exist; deleted outside revscale?)",
                component.id, self.function_name, self.qualifier
            ))
        };
        match pc_action(&found(aws, self).await?, configured(self), request.target) {
            PcAction::Nothing => Ok(()),
            PcAction::Missing => Err(no_function()),
            PcAction::Put => {
                match aws
                    .lambda
                    .put_provisioned_concurrency_config()
                    .function_name(&self.function_name)
                    .qualifier(&self.qualifier)
                    .provisioned_concurrent_executions(configured(self))
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if is_code(&e, FUNCTION_NOT_FOUND) => Err(no_function()),
                    Err(e) => Err(sdk_error(e, BUSY)),
                }
            }
            PcAction::Delete => {
                match aws
                    .lambda
                    .delete_provisioned_concurrency_config()
                    .function_name(&self.function_name)
                    .qualifier(&self.qualifier)
                    .send()
                    .await
                {
                    // Removed since it was read (with its function, maybe): nothing left.
                    Ok(_) => Ok(()),
                    Err(e) if is_code(&e, CONFIG_NOT_FOUND) || is_code(&e, FUNCTION_NOT_FOUND) => Ok(()),
                    Err(e) => Err(sdk_error(e, BUSY)),
                }
            }
        }
    }

    async fn status(
        &self,
        aws: &Clients,
        _: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        Ok(pc_progress(&found(aws, self).await?, configured(self), target, &target_of(self)))
    }

    async fn observe(&self, aws: &Clients, _: &Component) -> Result<Observed, DriverError> {
        Ok(pc_observed(&found(aws, self).await?, configured(self), &target_of(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::{Cold, Hot, Warm};

    const WHAT: &str = "api:live";

    /// A GetProvisionedConcurrencyConfig answer, as the API reference shapes it.
    fn config(status: PcStatus, requested: i32, allocated: i32, reason: Option<&str>) -> Found {
        let out = GetProvisionedConcurrencyConfigOutput::builder()
            .requested_provisioned_concurrent_executions(requested)
            .allocated_provisioned_concurrent_executions(allocated)
            .available_provisioned_concurrent_executions(allocated)
            .status(status)
            .set_status_reason(reason.map(str::to_owned))
            .last_modified("2026-01-01T00:00:00+0000")
            .build();
        Found::Config(PcConfig::from(&out))
    }

    #[test]
    fn hot_is_ready_once_the_configured_amount_is_allocated() {
        assert_eq!(pc_progress(&config(PcStatus::Ready, 5, 5, None), 5, Hot, WHAT), DriverStatus::Ready);
        assert_eq!(
            pc_progress(&config(PcStatus::InProgress, 5, 2, None), 5, Hot, WHAT),
            DriverStatus::InProgress
        );
    }

    #[test]
    fn a_failed_allocation_fails_hot_with_lambdas_reason() {
        let found = config(PcStatus::Failed, 5, 0, Some("FUNCTION_ERROR_INIT_FAILURE"));
        assert_eq!(
            pc_progress(&found, 5, Hot, WHAT),
            DriverStatus::Failed("FAILED: FUNCTION_ERROR_INIT_FAILURE".into())
        );
        let observed = pc_observed(&found, 5, WHAT);
        assert!(observed.states.is_empty());
        assert_eq!(observed.actual, "FAILED: FUNCTION_ERROR_INIT_FAILURE");
    }

    #[test]
    fn warm_and_cold_are_ready_when_no_config_is_left() {
        for target in [Warm, Cold] {
            assert_eq!(pc_progress(&Found::NoConfig, 5, target, WHAT), DriverStatus::Ready);
            let left = config(PcStatus::Ready, 5, 5, None);
            assert_eq!(pc_progress(&left, 5, target, WHAT), DriverStatus::InProgress);
        }
    }

    #[test]
    fn a_missing_function_fails_and_hot_without_a_config_fails() {
        let DriverStatus::Failed(why) = pc_progress(&Found::NoFunction, 5, Warm, WHAT) else { panic!() };
        assert!(why.contains(WHAT), "{why}");
        assert!(matches!(pc_progress(&Found::NoConfig, 5, Hot, WHAT), DriverStatus::Failed(_)));
        let changed = config(PcStatus::Ready, 3, 3, None);
        let DriverStatus::Failed(why) = pc_progress(&changed, 5, Hot, WHAT) else { panic!() };
        assert!(why.contains('3') && why.contains('5'), "{why}");
    }

    #[test]
    fn observe_reads_no_config_as_warm_and_cold_and_the_configured_amount_as_hot() {
        assert_eq!(pc_observed(&Found::NoConfig, 5, WHAT).states, vec![Cold, Warm]);
        assert_eq!(pc_observed(&config(PcStatus::Ready, 5, 5, None), 5, WHAT).states, vec![Hot]);
    }

    #[test]
    fn observe_reports_another_amount_as_drift_and_an_allocation_under_way_as_moving() {
        let drift = pc_observed(&config(PcStatus::Ready, 3, 3, None), 5, WHAT);
        assert!(drift.states.is_empty());
        assert!(
            drift.actual.contains("READY with 3") && drift.actual.contains("configured 5"),
            "{}",
            drift.actual
        );
        let moving = pc_observed(&config(PcStatus::InProgress, 5, 2, None), 5, WHAT);
        assert_eq!(moving, Observed::moving("IN_PROGRESS, 2 of 5 allocated"));
        let gone = pc_observed(&Found::NoFunction, 5, WHAT);
        assert!(gone.states.is_empty() && gone.actual.contains(WHAT), "{}", gone.actual);
    }

    #[test]
    fn apply_puts_only_what_is_missing_and_deletes_only_what_is_there() {
        let ready = config(PcStatus::Ready, 5, 5, None);
        let under_way = config(PcStatus::InProgress, 5, 1, None);
        assert_eq!(pc_action(&Found::NoConfig, 5, Hot), PcAction::Put);
        assert_eq!(pc_action(&ready, 5, Hot), PcAction::Nothing);
        assert_eq!(pc_action(&under_way, 5, Hot), PcAction::Nothing, "a repeated HOT waits for the first");
        assert_eq!(pc_action(&config(PcStatus::Ready, 3, 3, None), 5, Hot), PcAction::Put);
        assert_eq!(
            pc_action(&config(PcStatus::Failed, 5, 0, None), 5, Hot),
            PcAction::Put,
            "a FAILED one is retried"
        );
        for target in [Warm, Cold] {
            assert_eq!(pc_action(&ready, 5, target), PcAction::Delete);
            assert_eq!(pc_action(&under_way, 5, target), PcAction::Delete);
            assert_eq!(pc_action(&Found::NoConfig, 5, target), PcAction::Nothing);
        }
        for target in [Warm, Cold, Hot] {
            assert_eq!(pc_action(&Found::NoFunction, 5, target), PcAction::Missing);
        }
    }
}
