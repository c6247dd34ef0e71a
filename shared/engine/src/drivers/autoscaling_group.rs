//! `autoscaling_group`: an EC2 Auto Scaling group. WARM and COLD = min = desired = 0
//! (the group and its launch template stay); HOT = the sizes configured, else exactly
//! the min/desired/max saved when it last went WARM.

use serde::{Deserialize, Serialize};

use super::{Kind, check_name};
use crate::model::Capacity;

/// The largest group revscale will ask for.
pub const MAX_GROUP_SIZE: u32 = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscalingGroup {
    pub group_name: String,
    /// HOT's sizes; all three or none. Left out, HOT restores the saved ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_capacity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u32>,
}

impl Kind for AutoscalingGroup {
    fn kind(&self) -> &'static str {
        "autoscaling_group"
    }
    fn resource(&self) -> String {
        format!("Auto Scaling group {}", self.group_name)
    }
    fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        check_name("group_name", &self.group_name, 255, &mut problems);
        match (self.min_size, self.desired_capacity, self.max_size) {
            (None, None, None) => {}
            (Some(min), Some(desired), Some(max)) => {
                if !(min <= desired && desired <= max && (1..=MAX_GROUP_SIZE).contains(&max) && desired >= 1) {
                    problems.push((
                        String::new(),
                        format!(
                            "sizes must satisfy min <= desired <= max, desired >= 1 and max <= {MAX_GROUP_SIZE} (got {min}/{desired}/{max})"
                        ),
                    ));
                }
            }
            _ => problems.push((
                String::new(),
                "give min_size, desired_capacity and max_size together, or none (HOT then restores the saved sizes)".into(),
            )),
        }
        problems
    }
    fn must_exist(&self) -> bool {
        true
    }
    fn present_when_cold(&self) -> bool {
        true
    }
    fn readiness_minutes(&self) -> u32 {
        30
    }
    fn saves_capacity(&self) -> bool {
        true
    }
    fn configured_capacity(&self) -> Option<Capacity> {
        match (self.min_size, self.desired_capacity, self.max_size) {
            (Some(min), Some(desired), Some(max)) => Some(Capacity { desired, min: Some(min), max: Some(max) }),
            _ => None,
        }
    }
}
