//! The Stripe objects revscale reads, as the pinned API version sends them.
//!
//! Requests carry `Stripe-Version: 2026-07-29.dahlia` ([`STRIPE_VERSION`]), so the
//! account's default version does not change these shapes. A few older shapes are
//! still accepted because test servers (localstripe) ignore the header:
//! - a Discount's coupon as `coupon` (before 2025-09-30.clover) as well as
//!   `source.coupon` (since);
//! - the subscription's singular `discount` (removed in 2025-03-31.basil), which then
//!   also appears in `discounts`: discounts are de-duplicated by id.
//!
//! Fields follow Stripe's published OpenAPI spec (`stripe/openapi`) and changelog.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The newest API version whose shapes this module models. Every request sends it.
pub const STRIPE_VERSION: &str = "2026-07-29.dahlia";

/// A list page (`object: "list"`).
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List { data: Vec::new(), has_more: false }
    }
}

/// An expandable field: an id, or the object when the request expanded it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

impl<T> Expandable<T> {
    pub fn object(&self) -> Option<&T> {
        match self {
            Expandable::Object(o) => Some(o),
            Expandable::Id(_) => None,
        }
    }
}

/// Objects that have an id, expanded or not.
pub trait Identified {
    fn identifier(&self) -> &str;
}

impl<T: Identified> Expandable<T> {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(o) => o.identifier(),
        }
    }
}

impl Identified for ProductObject {
    fn identifier(&self) -> &str {
        &self.id
    }
}

impl Identified for Coupon {
    fn identifier(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CustomerObject {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub status: String,
    pub customer: Expandable<CustomerObject>,
    /// Three-letter ISO code, lower case. Absent on some older objects: the items'
    /// currency is used then.
    #[serde(default)]
    pub currency: Option<String>,
    pub items: List<Item>,
    /// Before 2025-03-31.basil only.
    #[serde(default)]
    pub discount: Option<Discount>,
    #[serde(default)]
    pub discounts: Vec<Expandable<Discount>>,
}

impl Subscription {
    pub fn customer_id(&self) -> &str {
        match &self.customer {
            Expandable::Id(id) => id,
            Expandable::Object(c) => &c.id,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    #[serde(default)]
    pub id: Option<String>,
    /// Absent for metered items.
    #[serde(default)]
    pub quantity: Option<u64>,
    #[serde(default)]
    pub price: Option<Price>,
    /// The legacy Plan; Stripe still sends it beside `price`.
    #[serde(default)]
    pub plan: Option<Plan>,
    #[serde(default)]
    pub discounts: Vec<Expandable<Discount>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub id: String,
    /// The product, for coupons restricted to some products (`applies_to`).
    #[serde(default)]
    pub product: Option<Expandable<ProductObject>>,
    pub currency: String,
    #[serde(default)]
    pub unit_amount: Option<i64>,
    /// A decimal string of minor units, up to 12 decimal places: more precise than
    /// `unit_amount` when both are present.
    #[serde(default)]
    pub unit_amount_decimal: Option<String>,
    #[serde(default)]
    pub recurring: Option<Recurring>,
    /// `per_unit` or `tiered`.
    #[serde(default)]
    pub billing_scheme: Option<String>,
    /// `graduated` or `volume`, for tiered prices.
    #[serde(default)]
    pub tiers_mode: Option<String>,
    /// Only present when the request expanded `tiers`.
    #[serde(default)]
    pub tiers: Option<Vec<Tier>>,
    #[serde(default)]
    pub transform_quantity: Option<TransformQuantity>,
    /// A multi-currency price's amounts in its other currencies (only when expanded).
    #[serde(default)]
    pub currency_options: Option<BTreeMap<String, PriceCurrencyOption>>,
}

impl Price {
    pub fn product_id(&self) -> Option<&str> {
        self.product.as_ref().map(Expandable::id)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProductObject {
    pub id: String,
}

/// A price's amounts in one of its other currencies.
#[derive(Debug, Clone, Deserialize)]
pub struct PriceCurrencyOption {
    #[serde(default)]
    pub unit_amount: Option<i64>,
    #[serde(default)]
    pub unit_amount_decimal: Option<String>,
    /// Only when expanded (`currency_options.<currency>.tiers`).
    #[serde(default)]
    pub tiers: Option<Vec<Tier>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Recurring {
    pub interval: String,
    #[serde(default = "one")]
    pub interval_count: u32,
    /// `licensed` or `metered`.
    #[serde(default)]
    pub usage_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Plan {
    pub id: String,
    #[serde(default)]
    pub product: Option<Expandable<ProductObject>>,
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
    #[serde(default)]
    pub tiers_mode: Option<String>,
    #[serde(default)]
    pub tiers: Option<Vec<Tier>>,
    /// The Plan's name for `transform_quantity`.
    #[serde(default)]
    pub transform_usage: Option<TransformQuantity>,
}

fn one() -> u32 {
    1
}

/// One price tier. `up_to: null` is the last, unbounded tier ("inf" in requests).
/// Numbers are also accepted as text, as localstripe sends them.
#[derive(Debug, Clone, Deserialize)]
pub struct Tier {
    #[serde(default, deserialize_with = "lenient::up_to")]
    pub up_to: Option<u64>,
    #[serde(default, deserialize_with = "lenient::amount")]
    pub unit_amount: Option<i64>,
    #[serde(default)]
    pub unit_amount_decimal: Option<String>,
    #[serde(default, deserialize_with = "lenient::amount")]
    pub flat_amount: Option<i64>,
    #[serde(default)]
    pub flat_amount_decimal: Option<String>,
}

/// Package pricing: the quantity billed is `quantity / divide_by`, rounded `up` or `down`.
#[derive(Debug, Clone, Deserialize)]
pub struct TransformQuantity {
    pub divide_by: u64,
    pub round: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Discount {
    #[serde(default)]
    pub id: Option<String>,
    /// Since 2025-09-30.clover: `{type: "coupon", coupon: <id or Coupon>}`.
    #[serde(default)]
    pub source: Option<DiscountSource>,
    /// Before 2025-09-30.clover: the Coupon, always expanded.
    #[serde(default)]
    pub coupon: Option<Expandable<Coupon>>,
}

impl Discount {
    /// The coupon, wherever this API version puts it.
    pub fn coupon(&self) -> Option<&Expandable<Coupon>> {
        self.source.as_ref().and_then(|s| s.coupon.as_ref()).or(self.coupon.as_ref())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DiscountSource {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub coupon: Option<Expandable<Coupon>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Coupon {
    #[serde(default)]
    pub id: String,
    /// `forever`, `once` or `repeating`.
    pub duration: String,
    /// A JSON number such as 25.5; read as text (see `percent`) so that it stays exact.
    #[serde(default)]
    pub percent_off: Option<serde_json::Number>,
    /// Minor units of `currency`.
    #[serde(default)]
    pub amount_off: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    /// `amount_off` in other currencies, for multi-currency coupons (when expanded).
    #[serde(default)]
    pub currency_options: Option<BTreeMap<String, CouponCurrencyOption>>,
    /// The products the coupon is limited to (only when expanded; absent: all).
    #[serde(default)]
    pub applies_to: Option<AppliesTo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AppliesTo {
    #[serde(default)]
    pub products: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CouponCurrencyOption {
    pub amount_off: i64,
}

/// Stripe's error body: `{"error": {"type", "code", "message"}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// Integers that some servers send as text.
mod lenient {
    use serde::{Deserialize, Deserializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(i64),
        Text(String),
    }

    pub fn amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<NumberOrText>::deserialize(d)? {
            None => Ok(None),
            Some(NumberOrText::Number(n)) => Ok(Some(n)),
            Some(NumberOrText::Text(t)) => {
                t.parse().map(Some).map_err(|_| D::Error::custom(format!("'{t}' is not an amount")))
            }
        }
    }

    /// `null` (or `"inf"`) is the unbounded last tier.
    pub fn up_to<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<NumberOrText>::deserialize(d)? {
            None => Ok(None),
            Some(NumberOrText::Text(t)) if t == "inf" => Ok(None),
            Some(NumberOrText::Number(n)) => {
                u64::try_from(n).map(Some).map_err(|_| D::Error::custom(format!("up_to {n}")))
            }
            Some(NumberOrText::Text(t)) => {
                t.parse().map(Some).map_err(|_| D::Error::custom(format!("'{t}' is not a tier bound")))
            }
        }
    }
}
