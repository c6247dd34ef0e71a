//! `ssm_flag`: a feature flag (`off` / `warm` / `on`) in SSM Parameter Store that the
//! application reads, for SaaS components billed per use.

use serde::{Deserialize, Serialize};

use super::{Kind, StackField, StackRule};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsmFlag {
    pub parameter_name: String,
}

impl Kind for SsmFlag {
    fn kind(&self) -> &'static str {
        "ssm_flag"
    }
    fn resource(&self) -> String {
        format!("SSM parameter {}", self.parameter_name)
    }
    fn stack_fields(&mut self) -> Vec<StackField<'_>> {
        vec![StackField {
            key: "parameter_name",
            value: &mut self.parameter_name,
            parameter: "FlagPrefix",
            rule: StackRule::UnderPrefix,
        }]
    }
    /// COLD is the value `off`: the parameter stays.
    fn present_when_cold(&self) -> bool {
        true
    }
    fn readiness_minutes(&self) -> u32 {
        5
    }
}
