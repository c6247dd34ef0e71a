//! `ecs_service`: a service the user owns (Fargate or EC2). WARM and COLD = desiredCount
//! 0; HOT = the configured count, else the one saved when it last left HOT
//! (`UpdateService`). revscale never creates nor deletes the service.
//!
//! Ready at a count when the service runs exactly that many tasks and its primary
//! deployment has finished rolling out (`rolloutState` COMPLETED). AWS leaves
//! `rolloutState` out for services it does not roll out itself (CODE_DEPLOY or
//! EXTERNAL controllers, a Classic Load Balancer): then the counts alone decide, once a
//! single deployment is left.
//!
//! `apply` switches only a service whose `revscale-component` tag names the component
//! ([`verify_component_tag`], on the tags `DescribeServices` returns), and adds only the
//! tags of revscale's it lacks, never rewriting the component tag.

use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, Service, ServiceField};
use revscale_engine::config::{Component, Kind};
use revscale_engine::drivers::EcsService;
use revscale_engine::model::{Capacity, ComponentState};
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients, desired_count_for, is_code, missing, sdk_error, verify_component_tag};

/// A service or cluster that is gone (or a service being deleted).
const NOT_FOUND: &[&str] =
    &["ServiceNotFoundException", "ServiceNotActiveException", "ClusterNotFoundException"];

/// The service as ECS describes it (with its tags), or `None` when it (or its cluster)
/// does not exist or is being deleted (DRAINING) or deleted (INACTIVE: still described
/// for a while).
async fn service(aws: &Clients, spec: &EcsService) -> Result<Option<Service>, DriverError> {
    let out = match aws
        .ecs
        .describe_services()
        .cluster(&spec.cluster)
        .services(&spec.service)
        .include(ServiceField::Tags)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if is_code(&e, NOT_FOUND) => return Ok(None),
        Err(e) => return Err(sdk_error(e, &[])),
    };
    if let Some(found) = out.services.unwrap_or_default().into_iter().next() {
        return Ok(found.status.as_deref().is_some_and(|s| s == "ACTIVE").then_some(found));
    }
    // A missing service is no error: DescribeServices lists it under `failures`.
    match out.failures.unwrap_or_default().into_iter().next() {
        None => Ok(None),
        Some(f) if f.reason.as_deref() == Some("MISSING") => Ok(None),
        Some(f) => Err(DriverError::Rejected(format!(
            "{}: DescribeServices failed: {} {}",
            spec.resource(),
            f.reason.unwrap_or_default(),
            f.detail.unwrap_or_default()
        ))),
    }
}

impl AwsKind for EcsService {
    fn iam_actions(&self) -> &'static [&'static str] {
        &["ecs:DescribeServices", "ecs:UpdateService", "ecs:TagResource"]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        let Some(count) = desired_count_for(request.target, request.hot_capacity()) else {
            return Err(DriverError::Rejected(format!(
                "{}: no HOT count for {}: set desired_count in the configuration, or let revscale see it HOT once",
                request.component.id,
                self.resource()
            )));
        };
        let Some(found) = service(aws, self).await? else {
            return Err(missing(request.component));
        };
        let existing = found.tags().iter().filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())));
        verify_component_tag(request.component, existing.clone())?;
        // Tagged first with what it lacks, so that `status --orphans` finds it; the
        // count is the last call, so a refused one leaves the service as it was.
        let lacking: Vec<_> = aws
            .missing_tags(request.component, existing)
            .into_iter()
            .map(|(key, value)| aws_sdk_ecs::types::Tag::builder().key(key).value(value).build())
            .collect();
        if let Some(arn) = found.service_arn.as_ref().filter(|_| !lacking.is_empty()) {
            aws.ecs.tag_resource().resource_arn(arn).set_tags(Some(lacking)).send().await.map_err(|e| {
                if is_code(&e, &["ResourceNotFoundException"]) || is_code(&e, NOT_FOUND) {
                    missing(request.component)
                } else {
                    sdk_error(e, &[])
                }
            })?;
        }
        let count = i32::try_from(count).unwrap_or(i32::MAX);
        if found.desired_count == count {
            return Ok(());
        }
        match aws
            .ecs
            .update_service()
            .cluster(&self.cluster)
            .service(&self.service)
            .desired_count(count)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, NOT_FOUND) => Err(missing(request.component)),
            Err(e) => Err(sdk_error(e, &[])),
        }
    }

    async fn status(
        &self,
        aws: &Clients,
        _: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        Ok(match service(aws, self).await? {
            Some(found) => service_progress(&found, target),
            None => DriverStatus::Failed(format!(
                "{} does not exist (deleted outside revscale?)",
                self.resource()
            )),
        })
    }

    async fn observe(&self, aws: &Clients, _: &Component) -> Result<Observed, DriverError> {
        Ok(match service(aws, self).await? {
            Some(found) => service_observed(&found),
            None => Observed::absent("no service (deleted outside revscale?)"),
        })
    }
}

/// Where the service's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rollout {
    Settled,
    Rolling,
    Failed(String),
}

fn rollout(service: &Service) -> Rollout {
    let deployments = service.deployments();
    let primary = deployments.iter().find(|d| d.status.as_deref() == Some("PRIMARY"));
    match primary.and_then(|d: &Deployment| d.rollout_state.as_ref().map(|s| (s, d))) {
        Some((DeploymentRolloutState::Completed, _)) => Rollout::Settled,
        Some((DeploymentRolloutState::Failed, d)) => Rollout::Failed(format!(
            "deployment FAILED: {}",
            d.rollout_state_reason.as_deref().unwrap_or("no reason given")
        )),
        Some(_) => Rollout::Rolling,
        // No rollout information (not an ECS-controlled rolling update): settled once
        // the old deployments are gone.
        None if deployments.len() <= 1 => Rollout::Settled,
        None => Rollout::Rolling,
    }
}

/// "desiredCount 2, running 1, rollout IN_PROGRESS".
fn describe(service: &Service) -> String {
    let state = service
        .deployments()
        .iter()
        .find(|d| d.status.as_deref() == Some("PRIMARY"))
        .and_then(|d| d.rollout_state.as_ref())
        .map_or("not reported", |s| s.as_str());
    let pending = match service.pending_count {
        0 => String::new(),
        n => format!(", pending {n}"),
    };
    format!(
        "desiredCount {}, running {}{pending}, rollout {state}",
        service.desired_count, service.running_count
    )
}

fn stopped(service: &Service) -> bool {
    service.desired_count == 0 && service.running_count == 0 && service.pending_count == 0
}

fn steady(service: &Service) -> bool {
    service.desired_count > 0
        && service.running_count == service.desired_count
        && rollout(service) == Rollout::Settled
}

/// Progress of an existing service towards `target`.
pub fn service_progress(service: &Service, target: ComponentState) -> DriverStatus {
    match target {
        ComponentState::Hot => match rollout(service) {
            Rollout::Failed(why) => DriverStatus::Failed(format!("{why} ({})", describe(service))),
            _ if steady(service) => DriverStatus::Ready,
            // desiredCount 0: the update may not be visible yet.
            _ => DriverStatus::InProgress,
        },
        _ if stopped(service) => DriverStatus::Ready,
        _ => DriverStatus::InProgress,
    }
}

/// Where an existing service is, with its count (what HOT restores).
pub fn service_observed(service: &Service) -> Observed {
    let actual = describe(service);
    let observed = if stopped(service) {
        Observed::at(&[ComponentState::Cold, ComponentState::Warm], actual)
    } else if steady(service) {
        Observed::at(&[ComponentState::Hot], actual)
    } else {
        Observed::moving(actual)
    };
    let desired = u32::try_from(service.desired_count).unwrap_or(0);
    observed.with_capacity(Capacity { desired, min: None, max: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::{Cold, Hot, Warm};

    /// A service as AWS describes it: one PRIMARY deployment (`rollout` None: AWS left
    /// `rolloutState` out).
    fn service(desired: i32, running: i32, rollout: Option<DeploymentRolloutState>) -> Service {
        let primary = Deployment::builder()
            .id("ecs-svc/1")
            .status("PRIMARY")
            .desired_count(desired)
            .running_count(running)
            .pending_count(desired - running)
            .set_rollout_state(rollout)
            .rollout_state_reason("ECS deployment ecs-svc/1 in progress.")
            .build();
        Service::builder()
            .service_arn("arn:aws:ecs:eu-west-1:123456789012:service/prod/web")
            .service_name("web")
            .status("ACTIVE")
            .desired_count(desired)
            .running_count(running)
            .pending_count(desired - running)
            .deployments(primary)
            .build()
    }

    fn with_old_deployment(mut s: Service) -> Service {
        let old = Deployment::builder().id("ecs-svc/0").status("ACTIVE").running_count(1).build();
        s.deployments.get_or_insert_with(Vec::new).push(old);
        s
    }

    const COMPLETED: Option<DeploymentRolloutState> = Some(DeploymentRolloutState::Completed);
    const IN_PROGRESS: Option<DeploymentRolloutState> = Some(DeploymentRolloutState::InProgress);

    #[test]
    fn a_service_running_its_count_with_a_completed_rollout_is_hot() {
        let s = service(2, 2, COMPLETED);
        assert_eq!(service_progress(&s, Hot), DriverStatus::Ready);
        let observed = service_observed(&s);
        assert_eq!(observed.states, [Hot]);
        assert_eq!(observed.capacity, Some(Capacity { desired: 2, min: None, max: None }));
        assert_eq!(observed.actual, "desiredCount 2, running 2, rollout COMPLETED");
    }

    #[test]
    fn a_service_still_rolling_out_is_not_ready() {
        let s = service(2, 1, IN_PROGRESS);
        assert_eq!(service_progress(&s, Hot), DriverStatus::InProgress);
        let observed = service_observed(&s);
        assert!(observed.states.is_empty(), "{observed:?}");
        assert_eq!(observed.actual, "desiredCount 2, running 1, pending 1, rollout IN_PROGRESS");
        assert_eq!(observed.capacity.map(|c| c.desired), Some(2), "what leaving HOT now would save");
        // All tasks up, but the deployment has not reached steady state yet.
        assert_eq!(service_progress(&service(2, 2, IN_PROGRESS), Hot), DriverStatus::InProgress);
    }

    #[test]
    fn a_scaled_up_service_is_not_ready_until_every_task_runs() {
        // Scaling alone starts no deployment: the primary one stays COMPLETED.
        assert_eq!(service_progress(&service(3, 1, COMPLETED), Hot), DriverStatus::InProgress);
        assert_eq!(
            service_progress(&service(0, 0, COMPLETED), Hot),
            DriverStatus::InProgress,
            "update not seen yet"
        );
    }

    #[test]
    fn a_failed_deployment_fails_hot_with_its_reason() {
        let s = service(2, 0, Some(DeploymentRolloutState::Failed));
        assert!(matches!(service_progress(&s, Hot), DriverStatus::Failed(why) if why.contains("FAILED")));
        assert_eq!(
            service_progress(&service(0, 0, Some(DeploymentRolloutState::Failed)), Warm),
            DriverStatus::Ready
        );
    }

    #[test]
    fn a_service_at_zero_tasks_is_warm_and_cold() {
        let s = service(0, 0, COMPLETED);
        assert_eq!(service_progress(&s, Warm), DriverStatus::Ready);
        assert_eq!(service_progress(&s, Cold), DriverStatus::Ready);
        assert_eq!(service_observed(&s).states, [Cold, Warm]);
        assert_eq!(service_observed(&s).capacity.map(|c| c.is_zero()), Some(true));
    }

    #[test]
    fn a_service_still_stopping_tasks_is_not_warm_yet() {
        let s = service(0, 2, COMPLETED);
        assert_eq!(service_progress(&s, Warm), DriverStatus::InProgress);
        assert!(service_observed(&s).states.is_empty());
        assert_eq!(service_progress(&service(2, 2, COMPLETED), Warm), DriverStatus::InProgress);
    }

    #[test]
    fn without_rollout_state_the_counts_decide_once_one_deployment_is_left() {
        // CODE_DEPLOY / EXTERNAL controllers, Classic Load Balancers: AWS omits it.
        let s = service(2, 2, None);
        assert_eq!(service_progress(&s, Hot), DriverStatus::Ready);
        assert_eq!(service_observed(&s).actual, "desiredCount 2, running 2, rollout not reported");
        let rolling = with_old_deployment(service(2, 2, None));
        assert_eq!(service_progress(&rolling, Hot), DriverStatus::InProgress, "old tasks still count");
        let no_deployments = Service::builder().status("ACTIVE").desired_count(1).running_count(1).build();
        assert_eq!(service_progress(&no_deployments, Hot), DriverStatus::Ready);
    }

    #[test]
    fn hot_takes_the_configured_or_saved_count_and_never_zero() {
        let two = Some(Capacity { desired: 2, min: None, max: None });
        assert_eq!(desired_count_for(Hot, two), Some(2));
        assert_eq!(desired_count_for(Hot, None), None);
        assert_eq!(desired_count_for(Hot, Some(Capacity { desired: 0, min: None, max: None })), None);
        assert_eq!(desired_count_for(Warm, two), Some(0));
        assert_eq!(desired_count_for(Cold, two), Some(0));
    }
}
