//! `POST /cash`: the company's cash on a day, for the runway guard; and the runway as
//! `GET /status` shows it.

use chrono::NaiveDate;
use revscale_engine::Money;
/// The engine's own record: the API shows the cash figure exactly as it is stored.
pub use revscale_engine::runway::{CashBalance, RunwayMonths};
use serde::{Deserialize, Serialize};

/// `POST /cash` (operator). `amount` is a decimal in major units of the configuration's
/// currency (`"420000"`, `"420000.50"`); `currency`, when given, must be that
/// currency: a balance in another one is refused, not converted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCashRequest {
    pub amount: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub as_of: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetCashResponse {
    pub cash: CashBalance,
    /// The runway today with this figure (absent without a `runway` section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runway: Option<RunwayView>,
}

/// Where the runway stands today (`GET /status`, `POST /cash`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunwayView {
    pub min_months: u32,
    /// RunwayMonths at today's figures; `null` while unknown.
    #[serde(deserialize_with = "Option::deserialize")]
    pub months: Option<RunwayMonths>,
    /// Today's estimate: the figure set, less the net burn since.
    #[serde(deserialize_with = "Option::deserialize")]
    pub cash: Option<Money>,
    /// Fixed burn + production cost - MRR, a month.
    #[serde(deserialize_with = "Option::deserialize")]
    pub net_burn: Option<Money>,
    /// The figure the estimate starts from.
    #[serde(deserialize_with = "Option::deserialize")]
    pub set: Option<CashBalance>,
    /// Why the runway is unknown (no cash, a figure too old, no snapshot today).
    #[serde(deserialize_with = "Option::deserialize")]
    pub unknown_because: Option<String>,
}
