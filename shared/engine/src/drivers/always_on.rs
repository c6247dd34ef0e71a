//! `always_on`: never switched, part of the bootstrap level.

use serde::{Deserialize, Serialize};

use super::Kind;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlwaysOn {}

impl Kind for AlwaysOn {
    fn kind(&self) -> &'static str {
        "always_on"
    }
    fn resource(&self) -> String {
        "nothing (always on)".into()
    }
    fn present_when_cold(&self) -> bool {
        true
    }
}
