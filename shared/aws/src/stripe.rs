//! MRR from Stripe, computed the way Stripe Billing's analytics define it.
//!
//! - `active` and `past_due` subscriptions count; `trialing`, `canceled`, `unpaid`,
//!   `incomplete`, `incomplete_expired` and `paused` do not.
//! - Each item is normalised to a month from its interval and `interval_count`
//!   (yearly / 12, weekly x 52 / 12, daily x 365 / 12), times its quantity.
//! - Metered items do not count (their amount is not known in advance).
//! - `forever` discounts reduce MRR; `once` and `repeating` ones do not.
//! - Both `price` and the legacy `plan` are read on items.
//! - Other currencies are converted with configured FX rates; a currency without a
//!   rate fails the collection rather than being skipped or mixed.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use revscale_engine::money::{FxError, FxRates};
use revscale_engine::{Currency, Money};
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("Stripe request failed: {0}")]
    Http(String),
    #[error("Stripe answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("Stripe is rate-limiting or unavailable ({0}); retry later")]
    Transient(String),
    #[error("unexpected Stripe response: {0}")]
    Malformed(String),
    #[error("subscription {subscription}: {message}")]
    Unsupported { subscription: String, message: String },
    #[error(transparent)]
    Fx(#[from] FxError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrrSummary {
    pub mrr: Money,
    pub subscriptions_counted: u32,
    pub customers: u32,
}

#[derive(Debug, Deserialize)]
pub struct SubscriptionList {
    pub data: Vec<Subscription>,
    pub has_more: bool,
}

#[derive(Debug, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub status: String,
    pub customer: CustomerRef,
    pub items: ItemList,
    #[serde(default)]
    pub discount: Option<Discount>,
    #[serde(default)]
    pub discounts: Vec<DiscountRef>,
}

/// `customer` is an id, or an object when expanded.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CustomerRef {
    Id(String),
    Object { id: String },
}

impl CustomerRef {
    fn id(&self) -> &str {
        match self {
            CustomerRef::Id(id) | CustomerRef::Object { id } => id,
        }
    }
}

/// `discounts` holds ids unless expanded.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DiscountRef {
    Id(String),
    Object(Discount),
}

#[derive(Debug, Deserialize)]
pub struct ItemList {
    pub data: Vec<Item>,
}

#[derive(Debug, Deserialize)]
pub struct Item {
    #[serde(default)]
    pub quantity: Option<u64>,
    #[serde(default)]
    pub price: Option<Price>,
    #[serde(default)]
    pub plan: Option<Plan>,
}

#[derive(Debug, Deserialize)]
pub struct Price {
    pub id: String,
    pub currency: String,
    #[serde(default)]
    pub unit_amount: Option<i64>,
    #[serde(default)]
    pub unit_amount_decimal: Option<String>,
    #[serde(default)]
    pub recurring: Option<Recurring>,
    #[serde(default)]
    pub billing_scheme: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Recurring {
    pub interval: String,
    #[serde(default = "one")]
    pub interval_count: u32,
    #[serde(default)]
    pub usage_type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Plan {
    pub id: String,
    pub currency: String,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub amount_decimal: Option<String>,
    pub interval: String,
    #[serde(default = "one")]
    pub interval_count: u32,
    #[serde(default)]
    pub usage_type: Option<String>,
    #[serde(default)]
    pub billing_scheme: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
pub struct Discount {
    pub coupon: Coupon,
}

#[derive(Debug, Deserialize)]
pub struct Coupon {
    pub duration: String,
    #[serde(default)]
    pub percent_off: Option<f64>,
    #[serde(default)]
    pub amount_off: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
}

/// Stripe amounts are minor units of the price's currency; zero-decimal currencies
/// such as JPY are whole units.
fn minor_unit_divisor(currency: &str) -> Decimal {
    const ZERO_DECIMAL: [&str; 16] = [
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf",
        "xof", "xpf",
    ];
    if ZERO_DECIMAL.contains(&currency) { Decimal::ONE } else { Decimal::ONE_HUNDRED }
}

/// Months per billing interval, as a multiplier: yearly 1/12, weekly 52/12, daily 365/12.
fn monthly_factor(interval: &str, count: u32, subscription: &str) -> Result<Decimal, StripeError> {
    let per_month = match interval {
        "month" => Decimal::ONE,
        "year" => Decimal::ONE / Decimal::from(12),
        "week" => Decimal::from(52) / Decimal::from(12),
        "day" => Decimal::from(365) / Decimal::from(12),
        other => {
            return Err(StripeError::Unsupported {
                subscription: subscription.into(),
                message: format!("unknown billing interval '{other}'"),
            });
        }
    };
    Ok(per_month / Decimal::from(count.max(1)))
}

struct Normalised {
    /// Monthly amount in major units of `currency`.
    monthly: Decimal,
    currency: String,
    factor: Decimal,
}

fn normalise_item(sub: &str, item: &Item) -> Result<Option<Normalised>, StripeError> {
    let quantity = Decimal::from(item.quantity.unwrap_or(1));
    let (id, currency, amount, amount_decimal, interval, count, usage, scheme) =
        match (&item.price, &item.plan) {
            (Some(p), _) => {
                let Some(r) = &p.recurring else { return Ok(None) }; // a one-off price is not recurring revenue
                (
                    &p.id,
                    &p.currency,
                    p.unit_amount,
                    &p.unit_amount_decimal,
                    &r.interval,
                    r.interval_count,
                    &r.usage_type,
                    &p.billing_scheme,
                )
            }
            (None, Some(p)) => (
                &p.id,
                &p.currency,
                p.amount,
                &p.amount_decimal,
                &p.interval,
                p.interval_count,
                &p.usage_type,
                &p.billing_scheme,
            ),
            (None, None) => {
                return Err(StripeError::Malformed(format!(
                    "subscription {sub} has an item with neither price nor plan"
                )));
            }
        };
    if usage.as_deref() == Some("metered") {
        return Ok(None);
    }
    if scheme.as_deref() == Some("tiered") {
        return Err(StripeError::Unsupported {
            subscription: sub.into(),
            message: format!("price {id} is tiered; its MRR cannot be derived from a unit amount"),
        });
    }
    let unit = match (amount, amount_decimal) {
        (Some(a), _) => Decimal::from(a),
        (None, Some(d)) => Decimal::from_str(d)
            .map_err(|_| StripeError::Malformed(format!("price {id} has amount '{d}', not a number")))?,
        (None, None) => return Err(StripeError::Malformed(format!("price {id} has no amount"))),
    };
    let currency = currency.to_ascii_lowercase();
    let factor = monthly_factor(interval, count, sub)?;
    let monthly = unit / minor_unit_divisor(&currency) * quantity * factor;
    Ok(Some(Normalised { monthly, currency, factor }))
}

/// MRR of the given subscriptions in `target`, converting with `fx`.
pub fn compute_mrr(
    subscriptions: &[Subscription],
    target: Currency,
    fx: &FxRates,
) -> Result<MrrSummary, StripeError> {
    let mut total = Decimal::ZERO;
    let mut counted = 0u32;
    let mut customers = BTreeSet::new();
    for sub in subscriptions {
        if !matches!(sub.status.as_str(), "active" | "past_due") {
            continue;
        }
        let mut sub_total = Decimal::ZERO;
        let mut first: Option<(String, Decimal)> = None;
        for item in &sub.items.data {
            let Some(n) = normalise_item(&sub.id, item)? else { continue };
            let currency = parse_currency(&n.currency, &sub.id)?;
            sub_total += n.monthly * fx.rate(currency, target)?;
            first.get_or_insert((n.currency, n.factor));
        }
        let Some((currency, factor)) = first else { continue };
        let discounts = sub.discount.iter().chain(sub.discounts.iter().filter_map(|d| match d {
            DiscountRef::Object(d) => Some(d),
            DiscountRef::Id(_) => None,
        }));
        for discount in discounts {
            let coupon = &discount.coupon;
            if coupon.duration != "forever" {
                continue;
            }
            if let Some(pct) = coupon.percent_off {
                let pct = Decimal::from_str(&pct.to_string()).unwrap_or(Decimal::ZERO);
                sub_total -= sub_total * pct / Decimal::ONE_HUNDRED;
            } else if let Some(off) = coupon.amount_off {
                // An amount off applies to each invoice: normalise it like the items.
                let cur = coupon.currency.clone().unwrap_or(currency.clone()).to_ascii_lowercase();
                let per_month = Decimal::from(off) / minor_unit_divisor(&cur) * factor;
                sub_total -= per_month * fx.rate(parse_currency(&cur, &sub.id)?, target)?;
            }
        }
        total += sub_total.max(Decimal::ZERO);
        counted += 1;
        customers.insert(sub.customer.id().to_string());
    }
    let cents = (total * Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    Ok(MrrSummary {
        mrr: Money::from_minor(i64::try_from(cents).unwrap_or(i64::MAX), target),
        subscriptions_counted: counted,
        customers: customers.len() as u32,
    })
}

fn parse_currency(code: &str, sub: &str) -> Result<Currency, StripeError> {
    code.to_ascii_uppercase()
        .parse()
        .map_err(|_| StripeError::Malformed(format!("subscription {sub}: '{code}' is not a currency code")))
}

/// Lists every subscription, page by page, and computes MRR.
pub struct StripeSource {
    http: reqwest::Client,
    api_base: String,
    api_key: String,
    pub target: Currency,
    pub fx: FxRates,
    /// Subscriptions per page (Stripe's maximum, 100, unless a test wants more pages).
    pub page_size: u32,
}

impl StripeSource {
    pub fn new(api_base: &str, api_key: String, target: Currency, fx: FxRates) -> Result<Self, StripeError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .user_agent("revscale")
            .build()
            .map_err(|e| StripeError::Http(e.to_string()))?;
        Ok(StripeSource {
            http,
            api_base: api_base.trim_end_matches('/').to_string(),
            api_key,
            target,
            fx,
            page_size: 100,
        })
    }

    pub async fn mrr(&self) -> Result<MrrSummary, StripeError> {
        let subscriptions = self.list_subscriptions().await?;
        compute_mrr(&subscriptions, self.target, &self.fx)
    }

    pub async fn list_subscriptions(&self) -> Result<Vec<Subscription>, StripeError> {
        // Expanded discounts carry their coupon's duration. A server that cannot expand
        // them (an old API version, a test double) still gives the legacy `discount`.
        let mut expand = true;
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = vec![("limit", self.page_size.to_string()), ("status", "all".to_string())];
            if expand {
                query.push(("expand[]", "data.discounts".to_string()));
            }
            if let Some(a) = &after {
                query.push(("starting_after", a.clone()));
            }
            let page: SubscriptionList = match self.get("/v1/subscriptions", &query).await {
                Err(StripeError::Api { status: 400, message }) if expand && message.contains("expand") => {
                    tracing::warn!(stripe_message = %message, "Stripe cannot expand discounts; reading the legacy discount field");
                    expand = false;
                    continue;
                }
                other => other?,
            };
            after = page.data.last().map(|s| s.id.clone());
            let more = page.has_more && after.is_some();
            all.extend(page.data);
            if !more {
                return Ok(all);
            }
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, StripeError> {
        let mut delay = Duration::from_millis(500);
        for attempt in 0..4 {
            let response = self
                .http
                .get(format!("{}{path}", self.api_base))
                .bearer_auth(&self.api_key)
                .query(query)
                .send()
                .await
                .map_err(|e| StripeError::Http(e.to_string()))?;
            let status = response.status();
            let body = response.text().await.map_err(|e| StripeError::Http(e.to_string()))?;
            if status.as_u16() == 429 || status.is_server_error() {
                if attempt == 3 {
                    return Err(StripeError::Transient(format!("HTTP {status}")));
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
                continue;
            }
            if !status.is_success() {
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(String::from))
                    .unwrap_or_else(|| body.chars().take(200).collect());
                return Err(StripeError::Api { status: status.as_u16(), message });
            }
            let mut de = serde_json::Deserializer::from_str(&body);
            return serde_path_to_error::deserialize(&mut de)
                .map_err(|e| StripeError::Malformed(format!("{} at {}", e.inner(), e.path())));
        }
        Err(StripeError::Transient("retries exhausted".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(json: serde_json::Value) -> Vec<Subscription> {
        serde_json::from_value(json).expect("valid subscriptions")
    }

    fn sub(id: &str, status: &str, customer: &str, items: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"id": id, "status": status, "customer": customer, "items": {"data": items}})
    }

    fn price(amount: i64, currency: &str, interval: &str, count: u32) -> serde_json::Value {
        serde_json::json!({"id": "price_x", "currency": currency, "unit_amount": amount,
            "recurring": {"interval": interval, "interval_count": count, "usage_type": "licensed"}})
    }

    fn eur_fx() -> FxRates {
        FxRates::parse_list("USD=0.90").unwrap()
    }

    fn mrr(list: serde_json::Value) -> MrrSummary {
        compute_mrr(&subs(list), Currency::EUR, &eur_fx()).unwrap()
    }

    #[test]
    fn a_yearly_subscription_counts_one_twelfth() {
        let m = mrr(serde_json::json!([sub(
            "s1",
            "active",
            "c1",
            serde_json::json!([{"price": price(120_000, "eur", "year", 1)}])
        )]));
        assert_eq!(m.mrr.minor, 10_000);
    }

    #[test]
    fn weekly_and_daily_intervals_are_normalised_to_a_month() {
        let m = mrr(serde_json::json!([
            sub("w", "active", "c1", serde_json::json!([{"price": price(1_200, "eur", "week", 1)}])),
            sub("d", "active", "c2", serde_json::json!([{"price": price(100, "eur", "day", 1)}])),
            sub("q", "active", "c3", serde_json::json!([{"price": price(30_000, "eur", "month", 3)}])),
        ]));
        // 12 x 52/12 = 52.00; 1 x 365/12 = 30.4166...; 300 / 3 = 100 -> 182.42
        assert_eq!(m.mrr.minor, 18_242);
        assert_eq!((m.subscriptions_counted, m.customers), (3, 3));
    }

    #[test]
    fn quantity_multiplies_and_legacy_plans_are_read() {
        let plan = serde_json::json!({"id": "plan_x", "currency": "eur", "amount": 2_500, "interval": "month", "interval_count": 1});
        let m = mrr(serde_json::json!([sub(
            "s",
            "active",
            "c1",
            serde_json::json!([{"plan": plan, "quantity": 4}])
        )]));
        assert_eq!(m.mrr.minor, 10_000);
    }

    #[test]
    fn only_active_and_past_due_subscriptions_count() {
        let item = serde_json::json!([{"price": price(1_000, "eur", "month", 1)}]);
        let list: Vec<serde_json::Value> = [
            "active",
            "past_due",
            "trialing",
            "canceled",
            "unpaid",
            "incomplete",
            "incomplete_expired",
            "paused",
        ]
        .iter()
        .enumerate()
        .map(|(i, s)| sub(&format!("s{i}"), s, &format!("c{i}"), item.clone()))
        .collect();
        let m = mrr(serde_json::Value::Array(list));
        assert_eq!((m.mrr.minor, m.subscriptions_counted, m.customers), (2_000, 2, 2));
    }

    #[test]
    fn metered_items_and_one_off_prices_do_not_count() {
        let metered = serde_json::json!({"id": "p", "currency": "eur", "unit_amount": 5,
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "metered"}});
        let one_off = serde_json::json!({"id": "p2", "currency": "eur", "unit_amount": 9_999});
        let m = mrr(serde_json::json!([sub(
            "s",
            "active",
            "c1",
            serde_json::json!([
                {"price": metered}, {"price": one_off}, {"price": price(1_000, "eur", "month", 1)}
            ])
        )]));
        assert_eq!(m.mrr.minor, 1_000);
    }

    #[test]
    fn forever_discounts_reduce_mrr_but_once_and_repeating_do_not() {
        let with = |duration: &str, coupon: serde_json::Value| {
            let mut s =
                sub("s", "active", "c1", serde_json::json!([{"price": price(10_000, "eur", "month", 1)}]));
            let mut c = coupon;
            c["duration"] = duration.into();
            s["discount"] = serde_json::json!({"coupon": c});
            mrr(serde_json::json!([s])).mrr.minor
        };
        assert_eq!(with("forever", serde_json::json!({"percent_off": 25.0})), 7_500);
        assert_eq!(with("forever", serde_json::json!({"amount_off": 1_000, "currency": "eur"})), 9_000);
        assert_eq!(with("once", serde_json::json!({"percent_off": 25.0})), 10_000);
        assert_eq!(with("repeating", serde_json::json!({"percent_off": 25.0})), 10_000);
    }

    #[test]
    fn other_currencies_are_converted_with_the_configured_rate() {
        let m = mrr(serde_json::json!([sub(
            "s",
            "active",
            "c1",
            serde_json::json!([{"price": price(10_000, "usd", "month", 1)}])
        )]));
        assert_eq!(m.mrr.minor, 9_000);
    }

    #[test]
    fn a_currency_without_a_rate_fails_the_collection() {
        let list = subs(serde_json::json!([sub(
            "s",
            "active",
            "c1",
            serde_json::json!([{"price": price(10_000, "gbp", "month", 1)}])
        )]));
        let err = compute_mrr(&list, Currency::EUR, &eur_fx()).unwrap_err();
        assert_eq!(err.to_string(), "no FX rate for GBP -> EUR: configure one (e.g. GBP=1.08)");
    }

    #[test]
    fn one_customer_with_two_subscriptions_counts_once() {
        let item = serde_json::json!([{"price": price(1_000, "eur", "month", 1)}]);
        let m =
            mrr(serde_json::json!([sub("a", "active", "c1", item.clone()), sub("b", "active", "c1", item)]));
        assert_eq!((m.subscriptions_counted, m.customers), (2, 1));
    }

    #[test]
    fn tiered_prices_and_items_without_a_price_are_refused_clearly() {
        let tiered = serde_json::json!({"id": "price_t", "currency": "eur", "billing_scheme": "tiered",
            "recurring": {"interval": "month", "interval_count": 1}});
        let list =
            subs(serde_json::json!([sub("s", "active", "c1", serde_json::json!([{"price": tiered}]))]));
        let err = compute_mrr(&list, Currency::EUR, &eur_fx()).unwrap_err().to_string();
        assert!(err.contains("price_t is tiered"), "{err}");
        let list = subs(serde_json::json!([sub("s", "active", "c1", serde_json::json!([{"quantity": 1}]))]));
        assert!(compute_mrr(&list, Currency::EUR, &eur_fx()).is_err());
    }

    #[test]
    fn zero_decimal_currencies_are_whole_units() {
        let fx = FxRates::parse_list("JPY=0.0061").unwrap();
        let list = subs(serde_json::json!([sub(
            "s",
            "active",
            "c1",
            serde_json::json!([{"price": price(10_000, "jpy", "month", 1)}])
        )]));
        assert_eq!(compute_mrr(&list, Currency::EUR, &fx).unwrap().mrr.minor, 6_100);
    }
}
