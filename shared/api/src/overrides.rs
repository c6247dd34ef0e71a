//! `/overrides`: a manual pin of the level, in force once a second person approves it.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::Evaluation;

/// An override as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub id: String,
    pub level: u8,
    /// The last day the pin holds (inclusive).
    pub until: NaiveDate,
    pub reason: String,
    /// The person who asked (a principal normalised to a person).
    pub requested_by: String,
    pub requested_on: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Cancelled or rejected.
    pub cancelled: bool,
}

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
