//! `/pending`: the level change the engine wants and that waits for a human.

/// The engine's own record: the API shows the pending change exactly as it is stored.
pub use revscale_engine::state::PendingApproval;
use serde::{Deserialize, Serialize};

use crate::Evaluation;

/// `POST /pending/approve`: the approved change, and the evaluation run at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovePendingResponse {
    pub pending_approval: PendingApproval,
    pub evaluation: Evaluation,
}

/// `POST /pending/reject`: a "not now", with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectPendingRequest {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectPendingResponse {
    pub rejected: PendingApproval,
    pub reason: String,
}
