//! The operator's levers: the mode, the breaker, a stuck run's release, a dry run.

use std::collections::BTreeMap;

use revscale_engine::{ComponentId, ComponentState, Decision, DecisionId, Mode};
use serde::{Deserialize, Serialize};

use crate::BreakerView;

/// `POST /mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetModeRequest {
    pub mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetModeResponse {
    pub mode: Mode,
    /// The stack's `Mode` parameter: a deploy that changes it replaces `mode`.
    pub deployed_mode: Mode,
}

/// The breaker's position, without its dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerPosition {
    Closed,
    Open,
    HalfOpen,
}

/// `POST /breaker/reset`: the breaker is closed and its failures forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetBreakerResponse {
    pub breaker: BreakerPosition,
}

/// `POST /provisioning/release`: a run that could neither finish nor roll back, once
/// repaired by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRunRequest {
    pub decision_id: DecisionId,
    /// Where each component the run may have touched really stands after the repair.
    pub components: BTreeMap<ComponentId, ComponentState>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRunResponse {
    /// The released run's decision id.
    pub released: DecisionId,
    pub components: BTreeMap<ComponentId, ComponentState>,
    /// The breaker after the run counted as a failure.
    pub breaker: BreakerView,
}

/// `POST /evaluate?dry_run=true`: what the engine would decide now, without acting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DryRunResponse {
    /// The level now.
    pub level: u8,
    pub decision: Decision,
}
