//! The vocabulary every other module speaks: component and decision ids, modes,
//! component states and the moves between them, and why a level moves. It depends on
//! nothing else in the crate, so every layer above can use it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A component's key in the config, such as `eks_control_plane`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ComponentId(pub String);

impl ComponentId {
    pub fn new(id: impl Into<String>) -> Self {
        ComponentId(id.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Same inputs, same id: `2026-11-29-L1-L2-3f9a0c1e22b4`. Safe as a Step Functions
/// execution name (letters, digits and dashes, under 80 characters), so a duplicate
/// event cannot start a second execution.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DecisionId(pub String);

impl DecisionId {
    pub fn new(id: impl Into<String>) -> Self {
        DecisionId(id.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Any text names a decision; whether it is one is for the audit trail to say.
impl std::str::FromStr for DecisionId {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DecisionId(s.to_string()))
    }
}

impl From<&str> for DecisionId {
    fn from(id: &str) -> Self {
        DecisionId(id.to_string())
    }
}

impl PartialEq<str> for DecisionId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for DecisionId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for DecisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DecisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the level is moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Revenue sustained above the next thresholds.
    Growth,
    /// Revenue stayed below the current band (churn rollback).
    Churn,
    /// Cost stayed above the block ratio for the grace period.
    CostOverrun,
    /// An approved manual override.
    Override,
    /// An approved drain: everything revscale made goes COLD, ahead of a teardown.
    Drain,
    /// The runway fell under the founders' minimum (proposed for approval, never
    /// automatic).
    Runway,
}

impl Cause {
    /// A step-down the engine proposes but never takes on its own: cutting spend is a
    /// business decision, in every mode.
    pub fn is_proposed_only(self) -> bool {
        matches!(self, Cause::CostOverrun | Cause::Runway)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cause::Growth => "growth",
            Cause::Churn => "churn",
            Cause::CostOverrun => "cost overrun",
            Cause::Override => "override",
            Cause::Drain => "drain",
            Cause::Runway => "runway",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Decide and record, never transition.
    Shadow,
    /// Every level change waits for an approval.
    Approval,
    /// Automatic; approval only above the configured cost threshold.
    #[default]
    Auto,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Shadow => "shadow",
            Mode::Approval => "approval",
            Mode::Auto => "auto",
        })
    }
}

/// Where the mode in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeSource {
    /// The deployment: the stack's `Mode` parameter (or the configuration's `mode`).
    Deployment,
    /// An operator's `revscale mode`, under the mode the stack was deployed with then.
    Operator,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "shadow" => Ok(Mode::Shadow),
            "approval" => Ok(Mode::Approval),
            "auto" => Ok(Mode::Auto),
            other => Err(format!("unknown mode '{other}' (expected shadow, approval or auto)")),
        }
    }
}

/// ADR-017's resource states, plus `Cooling`, the transitional state going down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    /// Not deployed.
    Cold,
    /// Deploying or activating.
    Warming,
    /// Deployed, stopped (replicas 0): minimal cost.
    Warm,
    /// Active.
    Hot,
    /// Deactivating or being torn down.
    Cooling,
}

impl ComponentState {
    /// The ADR's `component_activation_state` metric: 0 = cold, 1 = warm, 2 = hot;
    /// transitional states report where they come from.
    pub fn metric_value(self) -> u8 {
        match self {
            ComponentState::Cold | ComponentState::Warming => 0,
            ComponentState::Warm => 1,
            ComponentState::Hot | ComponentState::Cooling => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ComponentState::Cold => "cold",
            ComponentState::Warming => "warming",
            ComponentState::Warm => "warm",
            ComponentState::Hot => "hot",
            ComponentState::Cooling => "cooling",
        }
    }

    pub fn is_transitional(self) -> bool {
        matches!(self, ComponentState::Warming | ComponentState::Cooling)
    }
}

impl fmt::Display for ComponentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much of a scalable resource runs: an ECS service's desiredCount, an Auto Scaling
/// group's min / desired / max. Going WARM saves HOT's, so that HOT restores exactly
/// what ran before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub desired: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

impl Capacity {
    /// Nothing runs: never worth saving as HOT's capacity.
    pub fn is_zero(&self) -> bool {
        self.desired == 0
    }
}

impl std::fmt::Display for Capacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.min, self.max) {
            (Some(min), Some(max)) => write!(f, "min {min} / desired {} / max {max}", self.desired),
            _ => write!(f, "desired {}", self.desired),
        }
    }
}

/// The four legal moves between stable states. A decision's transitions are a list of these, so a jump
/// such as COLD -> HOT cannot even be written down: it is `Deploy` then `Activate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    /// COLD -> WARMING -> WARM
    Deploy,
    /// WARM -> WARMING -> HOT
    Activate,
    /// HOT -> COOLING -> WARM
    Deactivate,
    /// WARM -> COOLING -> COLD
    Decommission,
}

impl TransitionKind {
    pub fn from_state(self) -> ComponentState {
        match self {
            TransitionKind::Deploy => ComponentState::Cold,
            TransitionKind::Activate | TransitionKind::Decommission => ComponentState::Warm,
            TransitionKind::Deactivate => ComponentState::Hot,
        }
    }

    pub fn to_state(self) -> ComponentState {
        match self {
            TransitionKind::Deploy | TransitionKind::Deactivate => ComponentState::Warm,
            TransitionKind::Activate => ComponentState::Hot,
            TransitionKind::Decommission => ComponentState::Cold,
        }
    }

    pub fn transitional_state(self) -> ComponentState {
        match self {
            TransitionKind::Deploy | TransitionKind::Activate => ComponentState::Warming,
            TransitionKind::Deactivate | TransitionKind::Decommission => ComponentState::Cooling,
        }
    }

    /// The move that undoes this one, used by rollback.
    pub fn inverse(self) -> TransitionKind {
        match self {
            TransitionKind::Deploy => TransitionKind::Decommission,
            TransitionKind::Activate => TransitionKind::Deactivate,
            TransitionKind::Deactivate => TransitionKind::Activate,
            TransitionKind::Decommission => TransitionKind::Deploy,
        }
    }
}

/// One component's move in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transition {
    pub component: ComponentId,
    pub kind: TransitionKind,
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.component, self.kind.from_state(), self.kind.to_state())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IllegalTransition {
    #[error("{component}: cannot start {kind:?} from {state} (needs {needs})")]
    WrongStart { component: ComponentId, kind: TransitionKind, state: ComponentState, needs: ComponentState },
    #[error("{component}: cannot finish {kind:?} from {state} (needs {needs})")]
    WrongFinish { component: ComponentId, kind: TransitionKind, state: ComponentState, needs: ComponentState },
    #[error("{0}: not a configured component")]
    UnknownComponent(ComponentId),
}
