//! The operator API's wire format: the body of every request and response, in one
//! place for the Lambda that answers (`functions/override-api`) and the CLI that asks
//! (`revscale status`, `override ...`). A field renamed here is renamed for both, and
//! a client reading an answer that lacks a required field gets an error, not a blank.
//!
//! | route | request body | response body |
//! | --- | --- | --- |
//! | `GET /status` | - | [`StatusResponse`] |
//! | `GET /decisions?limit=&before=` | ([`DecisionsQuery`]) | [`DecisionsResponse`] |
//! | `POST /overrides` | [`CreateOverrideRequest`] | [`CreateOverrideResponse`] (201) |
//! | `POST /overrides/{id}/approve` | - | [`ApproveOverrideResponse`] |
//! | `POST /overrides/{id}/reject` | - | [`RejectOverrideResponse`] |
//! | `DELETE /overrides/{id}` | - | [`CancelOverrideResponse`] |
//! | `POST /pending/approve` | [`ApproveRequest`] (the pending change's id) | [`ApprovePendingResponse`] |
//! | `POST /pending/reject` | [`RejectPendingRequest`] | [`RejectPendingResponse`] |
//! | `POST /breaker/reset` | - | [`ResetBreakerResponse`] |
//! | `POST /mode` | [`SetModeRequest`] | [`SetModeResponse`] |
//! | `POST /provisioning/release` | [`ReleaseRunRequest`] | [`ReleaseRunResponse`] |
//! | `POST /evaluate?dry_run=true` | - | [`DryRunResponse`] |
//! | `GET /drain/plan` | - | [`DryRunResponse`] (what an approved drain would do) |
//! | `POST /drain` | [`RequestDrainRequest`] | [`RequestDrainResponse`] (201) |
//! | `POST /drain/approve` | [`ApproveRequest`] (the drain's id) | [`ApproveDrainResponse`] |
//! | `POST /drain/cancel` | - | [`CancelDrainResponse`] |
//! | `POST /cash` | [`SetCashRequest`] | [`SetCashResponse`] |
//! | any refusal (4xx, 5xx) | - | [`ErrorResponse`] |
//!
//! Engine types are named through `revscale_engine`'s root only. The state's own parts
//! that are not exported there (an override, the pending approval, the breaker, the
//! audit record) have wire types of their own here, which also keeps the API's format
//! from following every change of the stored state's.
//!
//! Fields that are always present but may be `null` are read with
//! `deserialize_with = "Option::deserialize"`: serde would otherwise take a missing one
//! for `null`, and a renamed field would read as "none" without a word.

pub mod auth;

mod cash;
mod drain;
mod operations;
mod overrides;
mod pending;
mod status;

pub use cash::{CashBalance, RunwayMonths, RunwayView, SetCashRequest, SetCashResponse};
pub use drain::{
    ApproveDrainResponse, CancelDrainResponse, Drain, RequestDrainRequest, RequestDrainResponse,
};
pub use operations::{
    BreakerPosition, DryRunResponse, ReleaseRunRequest, ReleaseRunResponse, ResetBreakerResponse,
    SetModeRequest, SetModeResponse,
};
pub use overrides::{
    ApproveOverrideResponse, CancelOverrideResponse, CreateOverrideRequest, CreateOverrideResponse, Override,
    RejectOverrideResponse,
};
pub use pending::{ApprovePendingResponse, PendingApproval, RejectPendingRequest, RejectPendingResponse};
pub use status::{
    AuditEntry, BreakerState, BreakerView, ComponentView, DecisionsQuery, DecisionsResponse, NextStep,
    OpenOverrides, RecordedDecision, RunInProgress, StatusResponse,
};

use revscale_engine::{DecisionId, Outcome};
use serde::{Deserialize, Serialize};

/// `POST /pending/approve` and `POST /drain/approve`: the id of what the approver
/// reviewed (`PendingApproval::id()`, `Drain::id()`, shown by `GET /status`). If
/// something else waits by the time the request arrives, the answer is a 409 that shows
/// it, and nothing is approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    pub id: String,
}

/// The body of every refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
}

/// The evaluation an approval triggers at once (rather than at the next schedule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Evaluation {
    /// Recorded now; `published` when a level change request went out.
    Recorded {
        decision_id: DecisionId,
        from_level: u8,
        to_level: u8,
        outcome: Outcome,
        published: bool,
        reasons: Vec<String>,
    },
    /// This decision was recorded already (by the schedule or a retried request):
    /// nothing was published again.
    Replay { decision_id: DecisionId, published: bool },
}

impl Evaluation {
    pub fn decision_id(&self) -> &DecisionId {
        match self {
            Evaluation::Recorded { decision_id, .. } | Evaluation::Replay { decision_id, .. } => decision_id,
        }
    }
}

#[cfg(test)]
mod tests;
