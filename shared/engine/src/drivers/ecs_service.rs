//! `ecs_service`: an ECS service you own (Fargate or EC2). WARM and COLD = desiredCount
//! 0 (the service, its task definition and load balancer stay: revscale never
//! deletes what it did not create); HOT = the configured count, else the count saved
//! when it last went WARM.

use serde::{Deserialize, Serialize};

use super::{Kind, check_name};
use crate::model::Capacity;

/// The most tasks revscale will ask for: a typo must not start a thousand tasks.
pub const MAX_ECS_TASKS: u32 = 500;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsService {
    /// The cluster's name or ARN.
    pub cluster: String,
    /// The service's name or ARN.
    pub service: String,
    /// HOT's desiredCount. Left out, HOT restores the count saved when the service
    /// last went WARM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_count: Option<u32>,
}

impl Kind for EcsService {
    fn kind(&self) -> &'static str {
        "ecs_service"
    }
    fn resource(&self) -> String {
        format!("ECS service {} in cluster {}", self.service, self.cluster)
    }
    fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        check_name("cluster", &self.cluster, 2048, &mut problems);
        check_name("service", &self.service, 2048, &mut problems);
        if let Some(n) = self.desired_count
            && !(1..=MAX_ECS_TASKS).contains(&n)
        {
            problems.push((
                "desired_count".into(),
                format!("{n} tasks: HOT needs 1 to {MAX_ECS_TASKS} (WARM is 0; leave it out to restore the saved count)"),
            ));
        }
        problems
    }
    fn must_exist(&self) -> bool {
        true
    }
    fn present_when_cold(&self) -> bool {
        true
    }
    /// New tasks pass their health checks within minutes; a deployment circuit breaker
    /// rolls a failing one back sooner than this.
    fn readiness_minutes(&self) -> u32 {
        30
    }
    fn saves_capacity(&self) -> bool {
        true
    }
    fn configured_capacity(&self) -> Option<Capacity> {
        self.desired_count.map(|desired| Capacity { desired, min: None, max: None })
    }
}
