//! `aurora_cluster`: an Aurora DB cluster. WARM and COLD = stopped (never deleted);
//! HOT = available. AWS starts a stopped cluster again after 7 days: the daily drift
//! check stops it again.

use serde::{Deserialize, Serialize};

use super::{Kind, check_name};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuroraCluster {
    pub db_cluster_identifier: String,
}

impl Kind for AuroraCluster {
    fn kind(&self) -> &'static str {
        "aurora_cluster"
    }
    fn resource(&self) -> String {
        format!("Aurora cluster {}", self.db_cluster_identifier)
    }
    fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        check_name("db_cluster_identifier", &self.db_cluster_identifier, 63, &mut problems);
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
    fn readiness_minutes(&self) -> u32 {
        45
    }
}
