//! MRR from Stripe, computed the way Stripe Billing's analytics define it.
//!
//! - `model`: the objects as the pinned API version sends them;
//! - `mrr`: the pure rules (price models, discounts, currency exponents) and the
//!   per-subscription explanation;
//! - `client`: the requests, paging, look-ups and retries;
//! - `invoices`: daily MRR of the past, rebuilt from invoices (`revscale history fetch`).

pub mod client;
pub mod invoices;
pub mod model;
pub mod mrr;

pub use client::{COUNTED_STATUSES, RetryPolicy, StripeSource};
pub use model::STRIPE_VERSION;
pub use mrr::{Lookups, MrrReport, MrrSummary, SubscriptionMrr, compute, stripe_exponent};

use revscale_engine::money::FxError;

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("Stripe API base URL '{url}' is not a URL")]
    BadBaseUrl {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the HTTP client for Stripe could not be built")]
    Client {
        #[source]
        source: reqwest::Error,
    },
    /// No answer: DNS, connection, TLS, timeout. The transport error is the source.
    #[error("{endpoint} {kind} (attempt {attempts})")]
    Network {
        endpoint: String,
        kind: &'static str,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    /// Stripe answered with an error, in its own words.
    #[error(
        "Stripe answered {status} to {endpoint}: {message}{}{}",
        code.as_ref().map(|c| format!(" (code {c})")).unwrap_or_default(),
        request_id.as_ref().map(|r| format!(" [request {r}]")).unwrap_or_default()
    )]
    Api { endpoint: String, status: u16, code: Option<String>, message: String, request_id: Option<String> },
    /// Rate-limited or unavailable on every attempt: retry later.
    #[error("Stripe is rate-limiting or unavailable: gave up after {attempts} attempts")]
    Exhausted {
        attempts: u32,
        #[source]
        source: Box<StripeError>,
    },
    /// The collection's time budget ran out before this request could be made.
    #[error("{endpoint} not attempted: the collection's {budget:?} budget is spent")]
    OutOfTime { endpoint: String, budget: std::time::Duration },
    #[error("unexpected Stripe response: {0}")]
    Malformed(String),
    #[error("subscription {subscription}: {message}")]
    Unsupported { subscription: String, message: String },
    #[error(transparent)]
    Fx(#[from] FxError),
}

impl StripeError {
    /// Worth retrying later as is: nothing is wrong with the key or the data.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StripeError::Network { .. } | StripeError::Exhausted { .. } | StripeError::OutOfTime { .. }
        )
    }

    /// The key was refused: a human must fix the secret.
    pub fn is_unauthorised(&self) -> bool {
        matches!(self, StripeError::Api { status: 401 | 403, .. })
    }
}
