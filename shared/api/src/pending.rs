//! `/pending`: the level change the engine wants and that waits for a human.

use chrono::NaiveDate;
use revscale_engine::{Cause, Money};
use serde::{Deserialize, Serialize};

use crate::Evaluation;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApproval {
    pub from: u8,
    pub to: u8,
    /// Why the change is wanted (absent on approvals recorded before causes were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    pub requested_on: NaiveDate,
    pub extra_monthly_cost: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

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
