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

use std::time::Duration;

use tokio::time::Instant;

use reqwest::header::HeaderMap;
use revscale_engine::Currency;
use revscale_engine::money::FxRates;
use serde::de::DeserializeOwned;

use super::StripeError;
use super::model::{Coupon, ErrorBody, Item, List, Plan, Price, STRIPE_VERSION, Subscription};
use super::mrr::{Lookups, MrrReport, MrrSummary, compute, needed};

/// The statuses that count as revenue, each listed with its own server-side filter.
const COUNTED_STATUSES: [&str; 2] = ["active", "past_due"];

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
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let wait = match retry_after {
            Some(asked) => asked,
            None => {
                let ceiling = self.base.saturating_mul(1u32 << attempt.min(16));
                ceiling.mul_f64(jitter.clamp(0.0, 1.0))
            }
        };
        wait.min(self.cap)
    }
}

/// `Retry-After` in seconds (Stripe sends whole seconds; an HTTP date is not used).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
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

    /// Every subscription whose status counts, each with all of its items.
    pub async fn list_subscriptions(&self, deadline: Instant) -> Result<Vec<Subscription>, StripeError> {
        let mut all = Vec::new();
        for status in COUNTED_STATUSES {
            let expanded = [
                ("status", status.to_string()),
                ("expand[]", "data.discounts.source.coupon".to_string()),
                ("expand[]", "data.items.data.discounts".to_string()),
            ];
            let page = match self.list::<Subscription>(&["v1", "subscriptions"], &expanded, deadline).await {
                // The pinned version accepts these; a server that does not (a test
                // double) is read without them. Nothing is miscounted that way: a
                // discount left as an id fails `compute` by name.
                Err(StripeError::Api { status: 400, message, .. }) if message.contains("expand") => {
                    tracing::warn!(stripe_message = %message, "Stripe refused the expansions; listing without them");
                    self.list::<Subscription>(&["v1", "subscriptions"], &expanded[..1], deadline).await?
                }
                other => other?,
            };
            all.extend(page);
        }
        for sub in all.iter_mut().filter(|s| s.items.has_more) {
            let query = [("subscription", sub.id.clone()), ("expand[]", "data.discounts".to_string())];
            sub.items.data = self.list::<Item>(&["v1", "subscription_items"], &query, deadline).await?;
            sub.items.has_more = false;
        }
        Ok(all)
    }

    /// The coupons and tiers the listing referenced without including.
    pub async fn lookups(
        &self,
        subscriptions: &[Subscription],
        deadline: Instant,
    ) -> Result<Lookups, StripeError> {
        let needed = needed(subscriptions);
        let mut lookups = Lookups::default();
        let expand_options = [("expand[]", "currency_options".to_string())];
        for id in &needed.coupons {
            let coupon: Coupon = self.get(&["v1", "coupons", id], &expand_options, deadline).await?;
            lookups.coupons.insert(id.clone(), coupon);
        }
        let expand_tiers = [("expand[]", "tiers".to_string())];
        for id in &needed.price_tiers {
            let price: Price = self.get(&["v1", "prices", id], &expand_tiers, deadline).await?;
            lookups.tiers.insert(id.clone(), price.tiers.unwrap_or_default());
        }
        for id in &needed.plan_tiers {
            let plan: Plan = self.get(&["v1", "plans", id], &expand_tiers, deadline).await?;
            lookups.tiers.insert(id.clone(), plan.tiers.unwrap_or_default());
        }
        Ok(lookups)
    }

    /// Every page of a list endpoint, in order.
    async fn list<T: DeserializeOwned + HasId>(
        &self,
        path: &[&str],
        query: &[(&str, String)],
        deadline: Instant,
    ) -> Result<Vec<T>, StripeError> {
        let mut all: Vec<T> = Vec::new();
        loop {
            let mut page_query = query.to_vec();
            page_query.push(("limit", self.page_size.to_string()));
            if let Some(last) = all.last().and_then(HasId::id) {
                page_query.push(("starting_after", last.to_string()));
            }
            let page: List<T> = self.get(path, &page_query, deadline).await?;
            let progressed = !page.data.is_empty();
            all.extend(page.data);
            if !page.has_more || !progressed {
                return Ok(all);
            }
            if all.last().and_then(HasId::id).is_none() {
                return Err(StripeError::Malformed(format!(
                    "{} page has more but no id to go on from",
                    path.join("/")
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
                    let wait = self.retry.delay(attempt, None, fastrand::f64());
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
            let in_time = Instant::now() + wait < deadline;
            if retry && !last && in_time {
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
        assert_eq!(p.delay(0, None, 0.0), Duration::ZERO);
        assert_eq!(p.delay(0, None, 0.5), Duration::from_millis(250));
        assert_eq!(p.delay(2, None, 0.5), Duration::from_millis(1_000));
        assert_eq!(p.delay(10, None, 0.99), Duration::from_secs(8), "capped");
    }

    #[test]
    fn retry_after_wins_over_the_backoff_but_not_over_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, Some(Duration::from_secs(3)), 0.0), Duration::from_secs(3));
        assert_eq!(p.delay(0, Some(Duration::from_secs(600)), 0.0), p.cap);
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
