//! `GET /status` and `GET /decisions`: where the system stands, and what it decided.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use revscale_engine::{
    Cause, ComponentId, ComponentState, DecisionId, Event, Figures, Mode, ModeSource, Money, Outcome,
    Transition,
};
use serde::{Deserialize, Serialize};

use crate::{Override, PendingApproval};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// "Today" in the schedule's time zone.
    pub date: NaiveDate,
    pub level: u8,
    pub level_since: NaiveDate,
    /// The mode in force ...
    pub mode: Mode,
    /// ... where it comes from ...
    pub mode_source: ModeSource,
    /// ... and the mode the stack is deployed with (its `Mode` parameter).
    pub deployed_mode: Mode,
    #[serde(deserialize_with = "Option::deserialize")]
    pub mrr: Option<Money>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub average_3m: Option<Money>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub cost: Option<Money>,
    /// Production cost as a percentage of MRR; `null` without revenue.
    #[serde(deserialize_with = "Option::deserialize")]
    pub ratio_pct: Option<f64>,
    pub components: BTreeMap<ComponentId, ComponentView>,
    pub breaker: BreakerView,
    pub overrides: OpenOverrides,
    #[serde(deserialize_with = "Option::deserialize")]
    pub pending_approval: Option<PendingApproval>,
    /// What `POST /pending/approve` must name to approve the pending change.
    #[serde(deserialize_with = "Option::deserialize")]
    pub pending_approval_id: Option<String>,
    /// A drain requested or in force.
    #[serde(deserialize_with = "Option::deserialize")]
    pub drain: Option<crate::Drain>,
    /// What `POST /drain/approve` must name to approve the drain.
    #[serde(deserialize_with = "Option::deserialize")]
    pub drain_id: Option<String>,
    /// The provisioning run holding the lock, if any.
    #[serde(deserialize_with = "Option::deserialize")]
    pub provisioning: Option<RunInProgress>,
    /// What the engine would do if it ran now.
    pub next: NextStep,
    /// The runway, when the configuration guards it (absent otherwise, and from an
    /// older API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runway: Option<crate::RunwayView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentView {
    pub state: ComponentState,
    pub since: NaiveDate,
    /// The driver's `kind` in the configuration the stack runs (absent from an older
    /// API, and for a component the configuration no longer has).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What ran at HOT when it last went WARM, which HOT restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_capacity: Option<revscale_engine::Capacity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerView {
    pub consecutive_failures: u32,
    #[serde(deserialize_with = "Option::deserialize")]
    pub opened_on: Option<NaiveDate>,
    pub state: BreakerState,
}

/// Where the circuit breaker stands today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    /// Open until that day, when one attempt is allowed.
    Open {
        until: NaiveDate,
    },
    /// The cool-down is over: one attempt may run.
    HalfOpen,
}

/// The overrides that still matter: approved ones in force, and those awaiting approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenOverrides {
    pub active: Vec<Override>,
    pub pending: Vec<Override>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInProgress {
    pub decision_id: DecisionId,
    pub from_level: u8,
    pub to_level: u8,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextStep {
    pub would_do: Outcome,
    pub to_level: u8,
    pub reasons: Vec<String>,
}

/// `GET /decisions`' query: a page of the audit trail, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionsQuery {
    /// 1 to [`DecisionsQuery::MAX_LIMIT`]; [`DecisionsQuery::DEFAULT_LIMIT`] when absent.
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub before: Option<String>,
}

impl DecisionsQuery {
    pub const DEFAULT_LIMIT: usize = 20;
    pub const MAX_LIMIT: usize = 100;

    /// The route with this query (audit ids are URL-safe: letters, digits, `-:._`).
    pub fn path(&self) -> String {
        let mut params = Vec::new();
        if let Some(limit) = self.limit {
            params.push(format!("limit={limit}"));
        }
        if let Some(before) = &self.before {
            params.push(format!("before={before}"));
        }
        if params.is_empty() { "/decisions".into() } else { format!("/decisions?{}", params.join("&")) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionsResponse {
    pub decisions: Vec<AuditEntry>,
    /// The cursor of the next page (`?before=`), when this one is full.
    #[serde(deserialize_with = "Option::deserialize")]
    pub next: Option<String>,
}

/// An entry of the audit trail: an evaluation, a change made through the API, a
/// provisioning step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub at: DateTime<Utc>,
    /// `evaluation`, `override-request`, `provisioning`...
    pub kind: String,
    /// `revscale` for scheduled runs, the IAM principal for API calls.
    pub actor: String,
    #[serde(deserialize_with = "Option::deserialize")]
    pub decision: Option<RecordedDecision>,
    pub events: Vec<Event>,
    pub note: String,
    /// The version of the state item this entry produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_version: Option<u64>,
}

/// A decision as the audit trail keeps it (without the state it produced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedDecision {
    pub id: DecisionId,
    pub date: NaiveDate,
    pub mode: Mode,
    pub from_level: u8,
    pub to_level: u8,
    #[serde(deserialize_with = "Option::deserialize")]
    pub cause: Option<Cause>,
    pub outcome: Outcome,
    pub transitions: Vec<Transition>,
    pub reasons: Vec<String>,
    pub figures: Figures,
}
