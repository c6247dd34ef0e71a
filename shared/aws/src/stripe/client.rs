//! Stripe over HTTPS: the requests behind `compute`, with Stripe's retry rules.
//!
//! - Every request sends `Stripe-Version` ([`STRIPE_VERSION`]), so the answers have
//!   the shapes `model` describes whatever the account's default version is.
//! - Only the statuses that count are listed (`status=active`, then
//!   `status=past_due`), 100 per page with `starting_after`: a daily collection does
//!   not re-read every subscription the account ever had.
//! - Subscription discounts come with their coupons expanded; item discounts are
//!   expanded, and their coupons (one level too deep to expand in a listing) are
//!   fetched once each. Tiered prices' tiers are fetched once per price the same way.
//!   A subscription with more items than the embedded list holds is read to the end.
//! - 429, 409 (lock timeout), 5xx and connection failures are retried up to four
//!   attempts with jittered exponential backoff; `Retry-After` is honoured (capped),
//!   and `Stripe-Should-Retry` overrides the status code either way. A collection has
//!   a time budget (45 s): a retry that would not fit in it is not made.
//! - Errors keep their cause: DNS, connection, TLS and timeout failures name the
//!   request and carry the transport error as their source; Stripe's refusals carry
//!   its own message, code and request id.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};

use tokio::time::Instant;

use reqwest::header::HeaderMap;
use revscale_engine::Currency;
use revscale_engine::money::FxRates;
use serde::de::DeserializeOwned;

use super::StripeError;
use super::invoices::{
    COUNTED_INVOICE_STATUSES, DailyMrr, EndedSubscription, Invoice, InvoiceHistory, InvoiceLine, ended_dates,
    prices_needed, reconstruct,
};
use super::model::{Coupon, ErrorBody, Item, List, Plan, Price, STRIPE_VERSION, Subscription};
use super::mrr::{Lookups, MrrReport, MrrSummary, compute, needed};

/// The statuses that count as revenue, each listed with its own server-side filter.
pub const COUNTED_STATUSES: [&str; 2] = ["active", "past_due"];

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    /// The first backoff ceiling; it doubles per attempt.
    pub base: Duration,
    /// No single wait is longer, whatever `Retry-After` asks: the Lambda has a timeout.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 4, base: Duration::from_millis(500), cap: Duration::from_secs(8) }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: `Retry-After` when Stripe sent one,
    /// otherwise "full jitter" (a uniform draw below `base x 2^attempt`), so that
    /// concurrent clients do not retry in lockstep. `jitter` is in [0, 1).
    /// `None` when Stripe asks for a longer wait than `cap`: retrying earlier than
    /// asked would only be refused again, so the caller gives up (and retries later).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Option<Duration> {
        match retry_after {
            Some(asked) => (asked <= self.cap).then_some(asked),
            None => {
                let ceiling = self.base.saturating_mul(1u32 << attempt.min(16));
                Some(ceiling.mul_f64(jitter.clamp(0.0, 1.0)).min(self.cap))
            }
        }
    }
}

/// `Retry-After` in seconds (Stripe sends whole seconds; an HTTP date is not used).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<f64>().ok().and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// Stripe's own verdict, which wins over the status code.
fn should_retry(headers: &HeaderMap) -> Option<bool> {
    match headers.get("stripe-should-retry")?.to_str().ok()? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn retryable_status(status: u16) -> bool {
    status == 429 || status == 409 || status >= 500
}

/// Lists subscriptions, fetches what they reference, and computes MRR.
pub struct StripeSource {
    http: reqwest::Client,
    api_base: reqwest::Url,
    api_key: String,
    pub target: Currency,
    pub fx: FxRates,
    /// Subscriptions per page (Stripe's maximum, 100, unless a test wants more pages).
    pub page_size: u32,
    pub retry: RetryPolicy,
    /// How long one whole collection may take, retries included: the collector's
    /// Lambda has 60 s, and a timed-out Lambda reports no error type of ours.
    pub budget: Duration,
    /// Per request; a request near the end of the budget gets less.
    timeout: Duration,
}

impl StripeSource {
    pub fn new(api_base: &str, api_key: String, target: Currency, fx: FxRates) -> Result<Self, StripeError> {
        Self::with_timeout(api_base, api_key, target, fx, Duration::from_secs(20))
    }

    /// As `new`, with a per-request timeout.
    pub fn with_timeout(
        api_base: &str,
        api_key: String,
        target: Currency,
        fx: FxRates,
        timeout: Duration,
    ) -> Result<Self, StripeError> {
        let api_base = reqwest::Url::parse(api_base.trim_end_matches('/'))
            .map_err(|e| StripeError::BadBaseUrl { url: api_base.to_string(), source: Box::new(e) })?;
        let mut headers = HeaderMap::new();
        headers.insert("stripe-version", reqwest::header::HeaderValue::from_static(STRIPE_VERSION));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .user_agent(concat!("revscale/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .build()
            .map_err(|source| StripeError::Client { source })?;
        Ok(StripeSource {
            http,
            api_base,
            api_key,
            target,
            fx,
            page_size: 100,
            retry: RetryPolicy::default(),
            budget: Duration::from_secs(45),
            timeout,
        })
    }

    pub async fn mrr(&self) -> Result<MrrSummary, StripeError> {
        Ok(self.report().await?.summary())
    }

    /// MRR with every counted subscription's contribution.
    pub async fn report(&self) -> Result<MrrReport, StripeError> {
        let deadline = Instant::now() + self.budget;
        let subscriptions = self.list_subscriptions(deadline).await?;
        let lookups = self.lookups(&subscriptions, deadline).await?;
        compute(&subscriptions, &lookups, self.target, &self.fx)
    }

    /// Every subscription whose status counts, once each, with all of its items.
    pub async fn list_subscriptions(&self, deadline: Instant) -> Result<Vec<Subscription>, StripeError> {
        let mut all: Vec<Subscription> = Vec::new();
        let mut seen = BTreeSet::new();
        for status in COUNTED_STATUSES {
            let query =
                [("status", status.to_string()), ("expand[]", "data.discounts.source.coupon".to_string())];
            let page = match self.list::<Subscription>(&["v1", "subscriptions"], &query, deadline).await {
                // The pinned version accepts this; a server that does not (a test
                // double) is read without it. Nothing is miscounted that way: a
                // discount left as an id fails `compute` by name.
                Err(StripeError::Api { status: 400, message, .. }) if message.contains("expand") => {
                    tracing::warn!(stripe_message = %message, "Stripe refused the expansion; listing without it");
                    self.list::<Subscription>(&["v1", "subscriptions"], &query[..1], deadline).await?
                }
                other => other?,
            };
            // A subscription that turned past_due between the two listings is in both.
            all.extend(page.into_iter().filter(|s| seen.insert(s.id.clone())));
        }
        let relist = needed(&all).item_discounts;
        for sub in all.iter_mut().filter(|s| s.items.has_more || relist.contains(&s.id)) {
            // Item discounts with their coupons: four levels, the most a listing expands.
            let query =
                [("subscription", sub.id.clone()), ("expand[]", "data.discounts.source.coupon".to_string())];
            sub.items.data = self.list::<Item>(&["v1", "subscription_items"], &query, deadline).await?;
            sub.items.has_more = false;
        }
        Ok(all)
    }

    /// What the listing referenced without including: every coupon that could count,
    /// with its product limits and other currencies; tiered and multi-currency prices.
    pub async fn lookups(
        &self,
        subscriptions: &[Subscription],
        deadline: Instant,
    ) -> Result<Lookups, StripeError> {
        let needed = needed(subscriptions);
        let mut lookups = Lookups::default();
        let coupon_query =
            [("expand[]", "applies_to".to_string()), ("expand[]", "currency_options".to_string())];
        for id in &needed.coupons {
            match self.get::<Coupon>(&["v1", "coupons", id], &coupon_query, deadline).await {
                Ok(coupon) => {
                    lookups.coupons.insert(id.clone(), coupon);
                }
                // A deleted coupon still discounts the subscriptions that have it; the
                // copy expanded in the discount is used (see `Lookups`).
                Err(StripeError::Api { status: 404, .. }) => {
                    tracing::warn!(coupon = %id, "coupon deleted; using the copy in its discounts");
                }
                Err(e) => return Err(e),
            }
        }
        for (id, currencies) in &needed.prices {
            let mut query =
                vec![("expand[]", "tiers".to_string()), ("expand[]", "currency_options".to_string())];
            query.extend(currencies.iter().map(|c| ("expand[]", format!("currency_options.{c}.tiers"))));
            let price: Price = self.get(&["v1", "prices", id], &query, deadline).await?;
            lookups.prices.insert(id.clone(), price);
        }
        let expand_tiers = [("expand[]", "tiers".to_string())];
        for id in &needed.plan_tiers {
            let plan: Plan = self.get(&["v1", "plans", id], &expand_tiers, deadline).await?;
            lookups.plan_tiers.insert(id.clone(), plan.tiers.unwrap_or_default());
        }
        Ok(lookups)
    }

    /// What `invoices::reconstruct` needs for the days from `since` on: every paid or
    /// open invoice created since three years before it (Stripe's longest billing
    /// interval: an invoice bills up to three years ahead), with all its lines; the prices those lines name; and when canceled
    /// subscriptions ended. Read-only, like the collector: a restricted key with read
    /// access to invoices, subscriptions and prices is enough.
    pub async fn invoice_history(
        &self,
        since: NaiveDate,
        deadline: Instant,
    ) -> Result<InvoiceHistory, StripeError> {
        let lookback = since - chrono::Months::new(36);
        let created = lookback.and_time(NaiveTime::MIN).and_utc().timestamp().to_string();
        let mut invoices: Vec<Invoice> = Vec::new();
        let mut seen = BTreeSet::new();
        // Open first: an invoice paid between the two listings is then in both (and
        // kept once), where the other order would miss it.
        for status in COUNTED_INVOICE_STATUSES {
            let query = [("status", status.to_string()), ("created[gte]", created.clone())];
            let page = self.list::<Invoice>(&["v1", "invoices"], &query, deadline).await?;
            invoices.extend(page.into_iter().filter(|i| seen.insert(i.id.clone())));
        }
        for invoice in invoices.iter_mut().filter(|i| i.lines.has_more) {
            // An invoice embeds its first lines only: the rest follow the last of them.
            let after = invoice.lines.data.last().and_then(|l| l.id.clone());
            if after.is_none() {
                // Listing from the start would count the embedded lines twice.
                return Err(StripeError::Malformed(format!(
                    "invoice {} has more lines, but its last embedded line has no id to continue after",
                    invoice.id
                )));
            }
            let path = ["v1", "invoices", invoice.id.as_str(), "lines"];
            let rest = self.list_from::<InvoiceLine>(&path, &[], after, deadline).await?;
            invoice.lines.data.extend(rest);
            invoice.lines.has_more = false;
        }
        let mut history = InvoiceHistory { invoices, ..Default::default() };
        for id in prices_needed(&history.invoices) {
            let price: Price = self.get(&["v1", "prices", &id], &[], deadline).await?;
            history.prices.insert(id, price);
        }
        let ended: Vec<EndedSubscription> =
            self.list(&["v1", "subscriptions"], &[("status", "canceled".to_string())], deadline).await?;
        history.ended = ended_dates(&ended)?;
        Ok(history)
    }

    /// Daily MRR of the past days `from..=to`, rebuilt from the invoices as
    /// `revscale history fetch` rebuilds it (see `invoices`): what a collector fills the
    /// days it missed with. Within `within` and the source's `budget`, whichever ends
    /// first: the collector runs it after the day's own collection, in what is left of
    /// its Lambda's time.
    pub async fn past_mrr(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        within: Duration,
    ) -> Result<DailyMrr, StripeError> {
        let deadline = Instant::now() + within.min(self.budget);
        let history = self.invoice_history(from, deadline).await?;
        reconstruct(&history, from, to, self.target, &self.fx)
    }

    /// The first page of at most `limit` objects of a list endpoint, as Stripe sent it:
    /// `revscale doctor` asks each endpoint the collector and `history` read for one
    /// object, so that a restricted key's missing permission is named on the day of the
    /// deploy rather than the day an object of that kind first appears.
    pub async fn first_page(
        &self,
        path: &[&str],
        query: &[(&str, String)],
        limit: u32,
    ) -> Result<serde_json::Value, StripeError> {
        let mut query = query.to_vec();
        query.push(("limit", limit.to_string()));
        self.get(path, &query, Instant::now() + self.budget).await
    }

    /// Every page of a list endpoint, in order.
    async fn list<T: DeserializeOwned + HasId>(
        &self,
        path: &[&str],
        query: &[(&str, String)],
        deadline: Instant,
    ) -> Result<Vec<T>, StripeError> {
        self.list_from(path, query, None, deadline).await
    }

    /// The pages of a list endpoint after the object `first_after` (from the start
    /// when `None`), in order.
    async fn list_from<T: DeserializeOwned + HasId>(
        &self,
        path: &[&str],
        query: &[(&str, String)],
        first_after: Option<String>,
        deadline: Instant,
    ) -> Result<Vec<T>, StripeError> {
        let mut all: Vec<T> = Vec::new();
        loop {
            let mut page_query = query.to_vec();
            page_query.push(("limit", self.page_size.to_string()));
            let after = all.last().and_then(HasId::id).map(str::to_string).or_else(|| first_after.clone());
            if let Some(last) = &after {
                page_query.push(("starting_after", last.clone()));
            }
            let page: List<T> = self.get(path, &page_query, deadline).await?;
            let more = page.has_more;
            let empty = page.data.is_empty();
            all.extend(page.data);
            if !more {
                return Ok(all);
            }
            // A page that says there is more must let the next one start further on;
            // otherwise the list would be cut short, or read forever.
            let next = all.last().and_then(HasId::id);
            if empty || next.is_none() || next == after.as_deref() {
                return Err(StripeError::Malformed(format!(
                    "GET /{} says it has more after {} but gives no way on",
                    path.join("/"),
                    after.as_deref().unwrap_or("the first page")
                )));
            }
        }
    }

    fn url(&self, path: &[&str], query: &[(&str, String)]) -> reqwest::Url {
        let mut url = self.api_base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            // Ids are the account's own strings (coupon ids especially): encode them.
            segments.pop_if_empty().extend(path);
        }
        url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        url
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &[&str],
        query: &[(&str, String)],
        deadline: Instant,
    ) -> Result<T, StripeError> {
        let url = self.url(path, query);
        let endpoint = format!("GET /{}", path.join("/"));
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StripeError::OutOfTime { endpoint, budget: self.budget });
            }
            // A request's timeout replaces the client's, so pass the smaller of the two.
            let timeout = self.timeout.min(left);
            let outcome = self.http.get(url.clone()).bearer_auth(&self.api_key).timeout(timeout).send().await;
            let last = attempt + 1 >= self.retry.attempts;
            let response = match outcome {
                Ok(r) => r,
                // A request that never got an answer is safe to repeat: these are GETs.
                Err(source) if !last && (source.is_connect() || source.is_timeout()) => {
                    let wait = self.retry.delay(attempt, None, fastrand::f64()).unwrap_or(self.retry.cap);
                    if Instant::now() + wait >= deadline {
                        return Err(StripeError::network(endpoint, attempt + 1, source));
                    }
                    tracing::warn!(%endpoint, attempt, error = %source, "Stripe unreachable; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
                Err(source) => return Err(StripeError::network(endpoint, attempt + 1, source)),
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .text()
                .await
                .map_err(|source| StripeError::network(endpoint.clone(), attempt + 1, source))?;
            if (200..300).contains(&status) {
                let mut de = serde_json::Deserializer::from_str(&body);
                return serde_path_to_error::deserialize(&mut de).map_err(|e| {
                    StripeError::Malformed(format!("{endpoint}: {} at {}", e.inner(), e.path()))
                });
            }
            let retry = should_retry(&headers).unwrap_or_else(|| retryable_status(status));
            let error = StripeError::api(endpoint.clone(), status, &headers, &body);
            let wait = self.retry.delay(attempt, retry_after(&headers), fastrand::f64());
            let in_time = wait.filter(|w| Instant::now() + *w < deadline);
            if let (true, false, Some(wait)) = (retry, last, in_time) {
                tracing::warn!(%endpoint, status, attempt, wait_ms = wait.as_millis() as u64, "Stripe asked to retry");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Err(if retry {
                StripeError::Exhausted { attempts: attempt + 1, source: Box::new(error) }
            } else {
                error
            });
        }
    }
}

/// Objects a list can page through.
pub trait HasId {
    fn id(&self) -> Option<&str>;
}

impl HasId for Subscription {
    fn id(&self) -> Option<&str> {
        Some(&self.id)
    }
}

impl HasId for Invoice {
    fn id(&self) -> Option<&str> {
        Some(&self.id)
    }
}

impl HasId for InvoiceLine {
    fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

impl HasId for EndedSubscription {
    fn id(&self) -> Option<&str> {
        Some(&self.id)
    }
}

impl HasId for Item {
    fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

impl StripeError {
    fn network(endpoint: String, attempts: u32, source: reqwest::Error) -> Self {
        let kind = if source.is_timeout() {
            "timed out"
        } else if source.is_connect() {
            "could not connect (DNS, TCP or TLS)"
        } else if source.is_body() || source.is_decode() {
            "broke off while reading the answer"
        } else {
            "failed"
        };
        StripeError::Network { endpoint, kind, attempts, source }
    }

    fn api(endpoint: String, status: u16, headers: &HeaderMap, body: &str) -> Self {
        let detail = serde_json::from_str::<ErrorBody>(body).ok().map(|b| b.error);
        let message = detail
            .as_ref()
            .and_then(|d| d.message.clone())
            .unwrap_or_else(|| body.chars().take(200).collect::<String>().trim().to_string());
        StripeError::Api {
            endpoint,
            status,
            code: detail.and_then(|d| d.code.or(d.kind)),
            message,
            request_id: headers.get("request-id").and_then(|v| v.to_str().ok()).map(str::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_below_a_doubling_ceiling() {
        let p = RetryPolicy { attempts: 4, base: Duration::from_millis(500), cap: Duration::from_secs(8) };
        assert_eq!(p.delay(0, None, 0.0), Some(Duration::ZERO));
        assert_eq!(p.delay(0, None, 0.5), Some(Duration::from_millis(250)));
        assert_eq!(p.delay(2, None, 0.5), Some(Duration::from_millis(1_000)));
        assert_eq!(p.delay(10, None, 0.99), Some(Duration::from_secs(8)), "capped");
    }

    #[test]
    fn retry_after_wins_over_the_backoff_and_a_longer_one_than_the_cap_gives_up() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, Some(Duration::from_secs(3)), 0.0), Some(Duration::from_secs(3)));
        assert_eq!(p.delay(0, Some(Duration::from_secs(600)), 0.0), None);
    }

    #[test]
    fn retry_headers_are_read_as_stripe_sends_them() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "2".parse().unwrap());
        h.insert("stripe-should-retry", "false".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        assert_eq!(should_retry(&h), Some(false));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "1e300".parse().unwrap());
        assert_eq!(retry_after(&h), None, "too long to be a duration: no panic");
        h.insert("retry-after", "-1".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        assert!(retryable_status(429) && retryable_status(503) && retryable_status(409));
        assert!(!retryable_status(400) && !retryable_status(401) && !retryable_status(404));
    }

    #[test]
    fn ids_in_paths_are_percent_encoded() {
        let s = StripeSource::new("http://127.0.0.1:1/", "k".into(), Currency::EUR, FxRates::new()).unwrap();
        let url = s.url(&["v1", "coupons", "SUMMER 25/x"], &[("expand[]", "tiers".into())]);
        assert_eq!(url.as_str(), "http://127.0.0.1:1/v1/coupons/SUMMER%2025%2Fx?expand%5B%5D=tiers");
    }
}
