//! `/overrides`: a manual pin of the level, in force once a second person approves it.

use chrono::NaiveDate;
/// The engine's own record: the API shows an override exactly as it is stored.
pub use revscale_engine::state::Override;
use serde::{Deserialize, Serialize};

use crate::Evaluation;

/// `POST /overrides`. Unknown fields are refused: a client that believes it can set
/// `approved_by` should hear that it cannot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOverrideRequest {
    pub level: u8,
    pub until: NaiveDate,
    pub reason: String,
}

/// `201` to `POST /overrides`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOverrideResponse {
    pub r#override: Override,
    /// What must happen next, for a human.
    pub next: String,
}

/// `POST /overrides/{id}/approve`: the override, and the evaluation run at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproveOverrideResponse {
    pub r#override: Override,
    pub evaluation: Evaluation,
}

/// `POST /overrides/{id}/reject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectOverrideResponse {
    pub r#override: Override,
    pub rejected: bool,
}

/// `DELETE /overrides/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelOverrideResponse {
    pub r#override: Override,
    pub cancelled: bool,
}
