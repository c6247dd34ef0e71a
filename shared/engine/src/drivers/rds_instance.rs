//! `rds_instance`: an RDS DB instance. WARM and COLD = stopped (revscale never deletes a
//! database); HOT = available. AWS starts a stopped instance again after 7 days: the
//! daily drift check stops it again.

use serde::{Deserialize, Serialize};

use super::{Kind, check_name};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdsInstance {
    pub db_instance_identifier: String,
}

impl Kind for RdsInstance {
    fn kind(&self) -> &'static str {
        "rds_instance"
    }
    fn resource(&self) -> String {
        format!("RDS instance {}", self.db_instance_identifier)
    }
    fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        check_name("db_instance_identifier", &self.db_instance_identifier, 63, &mut problems);
        problems
    }
    fn must_exist(&self) -> bool {
        true
    }
    fn present_when_cold(&self) -> bool {
        true
    }
    /// AWS starts a database stopped for 7 days again by itself.
    fn restarts_by_itself(&self) -> bool {
        true
    }
    /// A start takes 5 to 15 minutes, a large instance's longer.
    fn readiness_minutes(&self) -> u32 {
        45
    }
}
