//! `/drain`: taking down everything revscale made, ahead of a teardown, with a second
//! person's approval.

/// The engine's own record: the API shows the drain exactly as it is stored.
pub use revscale_engine::state::Drain;
use serde::{Deserialize, Serialize};

use crate::{DryRunResponse, Evaluation};

/// `POST /drain`: an operator asks; an approver other than them must approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDrainRequest {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestDrainResponse {
    pub drain: Drain,
    /// What happens next, in words.
    pub next: String,
    /// What the engine would do once the drain is approved: the dry-run plan.
    pub plan: DryRunResponse,
}

/// `POST /drain/approve`: the approved drain, and the evaluation run at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproveDrainResponse {
    pub drain: Drain,
    pub evaluation: Evaluation,
}

/// `POST /drain/cancel`: the drain removed; the engine decides on revenue again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelDrainResponse {
    pub cancelled: Drain,
}
