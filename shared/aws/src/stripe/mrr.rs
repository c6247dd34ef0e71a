//! MRR from Stripe subscriptions: pure rules, no I/O.
//!
//! - `active` and `past_due` subscriptions count; the client asks Stripe for only
//!   those, and this module checks again.
//! - Each item is normalised to a month from its interval and `interval_count`
//!   (yearly / 12, weekly x 52 / 12, daily x 365 / 12).
//! - The amount per interval follows the price model: per unit x quantity; package
//!   pricing (`transform_quantity`: quantity / `divide_by`, rounded up or down) x unit;
//!   graduated tiers (each tier's units at its rate, plus the flat fee of every tier
//!   reached); volume tiers (every unit at the rate of the tier that holds the
//!   quantity, plus that tier's flat fee). A quantity of 0 counts 0.
//! - Metered items and one-off prices do not count: their amount is not known ahead.
//! - Only `forever` discounts reduce MRR. Item discounts apply to their item first,
//!   then subscription discounts to the subtotal, in Stripe's order. `percent_off`
//!   takes its share; `amount_off` (in the subscription's currency, from
//!   `currency_options` when the coupon's own currency differs) is taken once per
//!   billing period, so it is normalised like the items. A subscription never counts
//!   below zero. Discounts are de-duplicated by id.
//! - Amounts are minor units of their currency (Stripe's convention, see
//!   [`stripe_exponent`]); each subscription is converted into the revenue currency
//!   with a configured FX rate and rounded to its minor unit, and MRR is the sum of
//!   those, so the per-subscription explanation adds up to the figure exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use revscale_engine::money::FxRates;
use revscale_engine::{Currency, Money};
use rust_decimal::Decimal;
use serde::Serialize;

use super::StripeError;
use super::model::{Coupon, Discount, Expandable, Item, Price, Subscription, Tier, TransformQuantity};

/// Decimal places Stripe uses for a currency's amounts. This is ISO 4217's exponent
/// ([`Currency::exponent`]) except where Stripe documents otherwise: ISK stays a
/// two-decimal currency in the API (100 = 1 krona) and MGA is zero-decimal.
pub fn stripe_exponent(currency: Currency) -> u32 {
    match currency.as_str() {
        "ISK" => 2,
        "MGA" => 0,
        _ => currency.exponent(),
    }
}

pub(crate) fn stripe_minor_per_unit(currency: Currency) -> Decimal {
    Decimal::from(10i64.pow(stripe_exponent(currency)))
}

/// Objects Stripe does not embed in a subscription listing, fetched separately.
#[derive(Debug, Clone, Default)]
pub struct Lookups {
    /// Coupon id -> the coupon with `applies_to` and `currency_options` expanded. A
    /// deleted coupon cannot be fetched: the copy expanded in its discount is used,
    /// applied to every item (its product limits are unknown).
    pub coupons: BTreeMap<String, Coupon>,
    /// Price id -> the price with `tiers` and `currency_options` expanded, for tiered
    /// and multi-currency prices (a listing cannot expand that deep).
    pub prices: BTreeMap<String, Price>,
    /// Legacy plan id -> tiers.
    pub plan_tiers: BTreeMap<String, Vec<Tier>>,
}

/// What [`Lookups`] must hold before [`compute`] can run on these subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needed {
    /// Coupons of `forever` discounts (or of unknown duration): the only ones that count.
    pub coupons: BTreeSet<String>,
    /// Price id -> the currencies whose options are needed (empty: tiers only).
    pub prices: BTreeMap<String, BTreeSet<String>>,
    pub plan_tiers: BTreeSet<String>,
    /// Subscriptions whose item discounts arrived as ids: their items are listed again
    /// with discounts and coupons expanded.
    pub item_discounts: BTreeSet<String>,
}

impl Needed {
    pub fn is_empty(&self) -> bool {
        self.coupons.is_empty()
            && self.prices.is_empty()
            && self.plan_tiers.is_empty()
            && self.item_discounts.is_empty()
    }
}

/// What the listing referenced without including it.
pub fn needed(subscriptions: &[Subscription]) -> Needed {
    let mut needed = Needed::default();
    for sub in subscriptions.iter().filter(|s| counts(&s.status)) {
        let currency = sub
            .currency
            .clone()
            .or_else(|| sub.items.data.iter().find_map(|i| item_currency(i).map(str::to_string)));
        let item_discounts = sub.items.data.iter().flat_map(|i| i.discounts.iter());
        if item_discounts
            .clone()
            .any(|d| d.object().is_none_or(|d| matches!(d.coupon(), Some(Expandable::Id(_)))))
        {
            needed.item_discounts.insert(sub.id.clone());
        }
        let listed = sub.discounts.iter().chain(item_discounts).filter_map(Expandable::object);
        for discount in sub.discount.iter().chain(listed) {
            match discount.coupon() {
                Some(Expandable::Object(c)) if c.duration != "forever" => {}
                Some(coupon) => {
                    needed.coupons.insert(coupon.id().to_string());
                }
                None => {}
            }
        }
        for item in &sub.items.data {
            match (&item.price, &item.plan) {
                (Some(p), _) => {
                    let foreign = currency.as_deref().is_some_and(|c| !c.eq_ignore_ascii_case(&p.currency));
                    if is_tiered(&p.billing_scheme) && p.tiers.is_none() || foreign {
                        let currencies = needed.prices.entry(p.id.clone()).or_default();
                        if let (true, Some(c)) = (foreign, &currency) {
                            currencies.insert(c.to_ascii_lowercase());
                        }
                    }
                }
                (None, Some(p)) if is_tiered(&p.billing_scheme) && p.tiers.is_none() => {
                    needed.plan_tiers.insert(p.id.clone());
                }
                _ => {}
            }
        }
    }
    needed
}

fn counts(status: &str) -> bool {
    matches!(status, "active" | "past_due")
}

fn is_tiered(scheme: &Option<String>) -> bool {
    scheme.as_deref() == Some("tiered")
}

/// MRR with the contribution of every subscription counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MrrReport {
    pub mrr: Money,
    pub subscriptions_counted: u32,
    pub customers: u32,
    pub subscriptions: Vec<SubscriptionMrr>,
}

impl MrrReport {
    pub fn summary(&self) -> MrrSummary {
        MrrSummary {
            mrr: self.mrr,
            subscriptions_counted: self.subscriptions_counted,
            customers: self.customers,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrrSummary {
    pub mrr: Money,
    pub subscriptions_counted: u32,
    pub customers: u32,
}

/// One subscription's part of MRR, for reconciling with the Stripe dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionMrr {
    pub id: String,
    pub customer: String,
    pub status: String,
    /// The subscription's own currency.
    pub currency: Currency,
    pub items: Vec<ItemMrr>,
    pub discounts: Vec<DiscountMrr>,
    /// Monthly, after discounts, in the subscription's currency (major units).
    #[serde(with = "decimal_text")]
    pub monthly: Decimal,
    /// `monthly` in the revenue currency: this subscription's part of MRR.
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemMrr {
    pub price: String,
    pub quantity: u64,
    /// How the amount per interval was found, e.g. `graduated tiers: 1000 x 0.50 + ...`.
    pub pricing: String,
    /// The billing interval, e.g. `month`, `3 months`, `year`.
    pub interval: String,
    /// Monthly, before discounts, in the subscription's currency; 0 when not counted.
    #[serde(with = "decimal_text")]
    pub monthly: Decimal,
    pub counted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscountMrr {
    pub id: String,
    pub coupon: String,
    /// `subscription`, or the price id of the item it applies to.
    pub applies_to: String,
    /// e.g. `25.5% off, forever`.
    pub terms: String,
    /// Monthly reduction in the subscription's currency; 0 when it does not count.
    #[serde(with = "decimal_text")]
    pub monthly_off: Decimal,
    pub counted: bool,
}

mod decimal_text {
    use rust_decimal::Decimal;

    pub fn serialize<S: serde::Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.round_dp(6).normalize().to_string())
    }
}

/// MRR of `subscriptions` in `target`, converting with `fx`. Fails on anything it
/// cannot price exactly (a tiered price without its tiers, an unknown interval, a
/// currency without a rate): a wrong figure would move real infrastructure.
pub fn compute(
    subscriptions: &[Subscription],
    lookups: &Lookups,
    target: Currency,
    fx: &FxRates,
) -> Result<MrrReport, StripeError> {
    let mut total = Money::zero(target);
    let mut customers = BTreeSet::new();
    let mut lines = Vec::new();
    for sub in subscriptions.iter().filter(|s| counts(&s.status)) {
        let Some(line) = subscription_mrr(sub, lookups, target, fx)? else { continue };
        total = total.checked_add(line.amount).map_err(|e| StripeError::Malformed(e.to_string()))?;
        customers.insert(line.customer.clone());
        lines.push(line);
    }
    Ok(MrrReport {
        mrr: total,
        subscriptions_counted: u32::try_from(lines.len()).unwrap_or(u32::MAX),
        customers: u32::try_from(customers.len()).unwrap_or(u32::MAX),
        subscriptions: lines,
    })
}

fn unsupported(sub: &Subscription, message: String) -> StripeError {
    StripeError::Unsupported { subscription: sub.id.clone(), message }
}

/// An item's amount while discounts are applied to it, in the subscription's currency.
struct Counted {
    product: Option<String>,
    monthly: Decimal,
}

/// `None` for a subscription with nothing recurring and licensed in it.
fn subscription_mrr(
    sub: &Subscription,
    lookups: &Lookups,
    target: Currency,
    fx: &FxRates,
) -> Result<Option<SubscriptionMrr>, StripeError> {
    let currency_code = sub
        .currency
        .clone()
        .or_else(|| sub.items.data.iter().find_map(|i| item_currency(i).map(str::to_string)))
        .ok_or_else(|| unsupported(sub, "has no currency and no priced item".into()))?;
    let currency = parse_currency(&currency_code, sub)?;
    let mut items = Vec::new();
    let mut discounts = Vec::new();
    let mut seen_discounts = BTreeSet::new();
    let mut counted: Vec<Counted> = Vec::new();
    // The billing period of the subscription, for amounts taken once per invoice.
    let mut period_factor: Option<Decimal> = None;
    for item in &sub.items.data {
        let (line, factor) = item_mrr(sub, item, currency, lookups)?;
        if line.counted {
            period_factor.get_or_insert(factor);
            // The line keeps its amount before discounts, so the explanation adds up.
            let mut own = [Counted { product: item_product(item, lookups), monthly: line.monthly }];
            for discount in resolve_discounts(sub, &item.discounts, &mut seen_discounts)? {
                discounts.push(apply_discount(
                    sub,
                    discount,
                    lookups,
                    currency,
                    factor,
                    &mut own,
                    &line.price,
                )?);
            }
            counted.extend(own);
        }
        items.push(line);
    }
    if counted.is_empty() {
        return Ok(None);
    }
    let factor = period_factor.unwrap_or(Decimal::ONE);
    let subscription_level: Vec<Expandable<Discount>> = sub
        .discount
        .iter()
        .map(|d| Expandable::Object(Box::new(d.clone())))
        .chain(sub.discounts.iter().cloned())
        .collect();
    for discount in resolve_discounts(sub, &subscription_level, &mut seen_discounts)? {
        discounts.push(apply_discount(
            sub,
            discount,
            lookups,
            currency,
            factor,
            &mut counted,
            "subscription",
        )?);
    }
    let monthly = counted.iter().map(|c| c.monthly).sum::<Decimal>().max(Decimal::ZERO);
    let rate = fx.rate(currency, target)?;
    let converted = monthly
        .checked_mul(rate)
        .ok_or_else(|| unsupported(sub, format!("{monthly} {currency} x {rate} is too large")))?;
    let amount = Money::round_from_decimal(converted, target)
        .map_err(|e| unsupported(sub, format!("its amount cannot be held: {e}")))?;
    Ok(Some(SubscriptionMrr {
        id: sub.id.clone(),
        customer: sub.customer_id().to_string(),
        status: sub.status.clone(),
        currency,
        items,
        discounts,
        monthly,
        amount,
    }))
}

fn item_currency(item: &Item) -> Option<&str> {
    item.price.as_ref().map(|p| p.currency.as_str()).or(item.plan.as_ref().map(|p| p.currency.as_str()))
}

fn item_product(item: &Item, lookups: &Lookups) -> Option<String> {
    let price = item.price.as_ref().map(|p| lookups.prices.get(&p.id).unwrap_or(p));
    price
        .and_then(Price::product_id)
        .or_else(|| item.plan.as_ref().and_then(|p| p.product.as_ref().map(Expandable::id)))
        .map(str::to_string)
}

/// The price fields both `Price` and the legacy `Plan` carry.
struct PriceTerms<'a> {
    id: &'a str,
    currency: &'a str,
    unit_amount: Option<i64>,
    unit_amount_decimal: Option<&'a str>,
    interval: &'a str,
    interval_count: u32,
    metered: bool,
    tiers_mode: Option<&'a str>,
    tiered: bool,
    tiers: Option<&'a [Tier]>,
    transform: Option<&'a TransformQuantity>,
}

/// The item's line and its monthly factor. An item that does not count has a line
/// with `counted: false`, so the explanation still shows it.
fn item_mrr(
    sub: &Subscription,
    item: &Item,
    currency: Currency,
    lookups: &Lookups,
) -> Result<(ItemMrr, Decimal), StripeError> {
    let quantity = item.quantity.unwrap_or(1);
    let terms = match (&item.price, &item.plan) {
        (Some(listed), _) => {
            // The fetched price has what a listing leaves out (tiers, other currencies).
            let p = lookups.prices.get(&listed.id).unwrap_or(listed);
            let Some(r) = &p.recurring else {
                let line = skipped(&p.id, quantity, "one-off price: not recurring", "-");
                return Ok((line, Decimal::ZERO));
            };
            let metered = r.usage_type.as_deref() == Some("metered");
            // A multi-currency price bills a subscription in another of its currencies
            // at that currency's own amounts, never converted.
            let (unit_amount, unit_amount_decimal, tiers) =
                if metered || parse_currency(&p.currency, sub)? == currency {
                    (p.unit_amount, p.unit_amount_decimal.as_deref(), p.tiers.as_deref())
                } else {
                    let key = currency.as_str().to_ascii_lowercase();
                    let option = p.currency_options.as_ref().and_then(|o| o.get(&key)).ok_or_else(|| {
                        unsupported(
                            sub,
                            format!("price {} is in {} and has no {currency} amount", p.id, p.currency),
                        )
                    })?;
                    (option.unit_amount, option.unit_amount_decimal.as_deref(), option.tiers.as_deref())
                };
            PriceTerms {
                id: &p.id,
                currency: currency.as_str(),
                unit_amount,
                unit_amount_decimal,
                interval: &r.interval,
                interval_count: r.interval_count,
                metered,
                tiers_mode: p.tiers_mode.as_deref(),
                tiered: is_tiered(&p.billing_scheme),
                tiers,
                transform: p.transform_quantity.as_ref(),
            }
        }
        (None, Some(p)) => PriceTerms {
            id: &p.id,
            currency: &p.currency,
            unit_amount: p.amount,
            unit_amount_decimal: p.amount_decimal.as_deref(),
            interval: &p.interval,
            interval_count: p.interval_count,
            metered: p.usage_type.as_deref() == Some("metered"),
            tiers_mode: p.tiers_mode.as_deref(),
            tiered: is_tiered(&p.billing_scheme),
            tiers: p.tiers.as_deref(),
            transform: p.transform_usage.as_ref(),
        },
        (None, None) => {
            return Err(StripeError::Malformed(format!(
                "subscription {} has an item with neither price nor plan",
                sub.id
            )));
        }
    };
    let interval = interval_label(terms.interval, terms.interval_count);
    if terms.metered {
        return Ok((skipped(terms.id, quantity, "metered: billed in arrears", &interval), Decimal::ZERO));
    }
    if parse_currency(terms.currency, sub)? != currency {
        return Err(unsupported(
            sub,
            format!("price {} is in {}, the subscription in {currency}", terms.id, terms.currency),
        ));
    }
    let factor = monthly_factor(terms.interval, terms.interval_count)
        .ok_or_else(|| unsupported(sub, format!("unknown billing interval '{}'", terms.interval)))?;
    let per_unit = stripe_minor_per_unit(currency);
    let (minor, pricing) = if terms.tiered {
        let tiers =
            terms.tiers.or_else(|| lookups.plan_tiers.get(terms.id).map(Vec::as_slice)).ok_or_else(|| {
                unsupported(sub, format!("price {} is tiered but its tiers were not fetched", terms.id))
            })?;
        tiered_amount(sub, terms.id, terms.tiers_mode, tiers, quantity, per_unit)?
    } else {
        let unit = unit_amount(terms.id, terms.unit_amount, terms.unit_amount_decimal)?;
        match terms.transform {
            Some(t) => {
                let billed = packages(sub, terms.id, quantity, t)?;
                let text = format!(
                    "package: {} per {} units, rounded {} -> {billed} package(s)",
                    major(unit, per_unit),
                    t.divide_by,
                    t.round
                );
                (times(sub, unit, Decimal::from(billed))?, text)
            }
            None => (
                times(sub, unit, Decimal::from(quantity))?,
                format!("per unit: {} x {quantity}", major(unit, per_unit)),
            ),
        }
    };
    let monthly = times(sub, minor / per_unit, factor)?;
    let line = ItemMrr { price: terms.id.to_string(), quantity, pricing, interval, monthly, counted: true };
    Ok((line, factor))
}

/// `a x b`, or a named error where a plain product would overflow (and panic).
fn times(sub: &Subscription, a: Decimal, b: Decimal) -> Result<Decimal, StripeError> {
    a.checked_mul(b).ok_or_else(|| unsupported(sub, format!("{a} x {b} is too large to hold")))
}

fn skipped(price: &str, quantity: u64, why: &str, interval: &str) -> ItemMrr {
    ItemMrr {
        price: price.to_string(),
        quantity,
        pricing: why.to_string(),
        interval: interval.to_string(),
        monthly: Decimal::ZERO,
        counted: false,
    }
}

fn interval_label(interval: &str, count: u32) -> String {
    if count <= 1 { interval.to_string() } else { format!("{count} {interval}s") }
}

/// Months per billing interval, as a multiplier: yearly 1/12, weekly 52/12, daily 365/12.
pub(crate) fn monthly_factor(interval: &str, count: u32) -> Option<Decimal> {
    monthly_fraction(interval, count).map(|(n, d)| n / d)
}

/// The same multiplier as a fraction (numerator, denominator), for a caller that
/// multiplies before it divides: 7.77 x 52 / 24 is exactly 16.835, where 7.77 x (52/24)
/// falls a hair short of it and rounds the other way.
pub(crate) fn monthly_fraction(interval: &str, count: u32) -> Option<(Decimal, Decimal)> {
    let (per, months) = match interval {
        "month" => (1, 1),
        "year" => (1, 12),
        "week" => (52, 12),
        "day" => (365, 12),
        _ => return None,
    };
    Some((Decimal::from(per), Decimal::from(months) * Decimal::from(count.max(1))))
}

/// Minor units (possibly fractional), preferring the exact decimal string.
fn unit_amount(price: &str, integer: Option<i64>, decimal: Option<&str>) -> Result<Decimal, StripeError> {
    match (decimal, integer) {
        (Some(d), _) => Decimal::from_str(d)
            .map_err(|_| StripeError::Malformed(format!("price {price} has amount '{d}', not a number"))),
        (None, Some(a)) => Ok(Decimal::from(a)),
        (None, None) => Err(StripeError::Malformed(format!("price {price} has no amount"))),
    }
}

fn optional_amount(price: &str, integer: Option<i64>, decimal: Option<&str>) -> Result<Decimal, StripeError> {
    if integer.is_none() && decimal.is_none() {
        Ok(Decimal::ZERO)
    } else {
        unit_amount(price, integer, decimal)
    }
}

fn packages(
    sub: &Subscription,
    price: &str,
    quantity: u64,
    t: &TransformQuantity,
) -> Result<u64, StripeError> {
    if t.divide_by == 0 {
        return Err(unsupported(sub, format!("price {price} divides quantities by 0")));
    }
    match t.round.as_str() {
        "up" => Ok(quantity.div_ceil(t.divide_by)),
        "down" => Ok(quantity / t.divide_by),
        other => Err(unsupported(sub, format!("price {price} rounds packages '{other}'"))),
    }
}

/// The amount per interval of a tiered price, in minor units, and how it was found.
fn tiered_amount(
    sub: &Subscription,
    price: &str,
    mode: Option<&str>,
    tiers: &[Tier],
    quantity: u64,
    per_unit: Decimal,
) -> Result<(Decimal, String), StripeError> {
    if tiers.is_empty() {
        return Err(unsupported(sub, format!("price {price} is tiered with no tiers")));
    }
    if quantity == 0 {
        return Ok((Decimal::ZERO, format!("{} tiers: quantity 0", mode.unwrap_or("?"))));
    }
    let rate = |t: &Tier| optional_amount(price, t.unit_amount, t.unit_amount_decimal.as_deref());
    let flat = |t: &Tier| optional_amount(price, t.flat_amount, t.flat_amount_decimal.as_deref());
    match mode {
        Some("graduated") => {
            let mut total = Decimal::ZERO;
            let mut parts = Vec::new();
            let mut lower = 0u64;
            for tier in tiers {
                if lower >= quantity {
                    break;
                }
                let upper = tier.up_to.unwrap_or(u64::MAX).min(quantity);
                let units = upper.saturating_sub(lower);
                let (r, f) = (rate(tier)?, flat(tier)?);
                total = total
                    .checked_add(times(sub, r, Decimal::from(units))? + f)
                    .ok_or_else(|| unsupported(sub, format!("price {price} sums past what can be held")))?;
                parts.push(if f.is_zero() {
                    format!("{units} x {}", major(r, per_unit))
                } else {
                    format!("{units} x {} + {}", major(r, per_unit), major(f, per_unit))
                });
                lower = upper;
            }
            Ok((total, format!("graduated tiers: {}", parts.join(" + "))))
        }
        Some("volume") => {
            let tier = tiers.iter().find(|t| t.up_to.is_none_or(|up| quantity <= up)).ok_or_else(|| {
                unsupported(sub, format!("price {price} has no tier for quantity {quantity}"))
            })?;
            let (r, f) = (rate(tier)?, flat(tier)?);
            let text = match tier.up_to {
                Some(up) => format!("volume tier up to {up}: {quantity} x {}", major(r, per_unit)),
                None => format!("volume top tier: {quantity} x {}", major(r, per_unit)),
            };
            let text = if f.is_zero() { text } else { format!("{text} + {}", major(f, per_unit)) };
            Ok((times(sub, r, Decimal::from(quantity))? + f, text))
        }
        other => Err(unsupported(sub, format!("price {price} has tiers_mode {other:?}"))),
    }
}

/// Minor units as major units, for explanations.
fn major(minor: Decimal, per_unit: Decimal) -> String {
    (minor / per_unit).normalize().to_string()
}

/// The discount objects, without ones already applied (the same discount can appear
/// as the legacy `discount` and in `discounts`, or on both an item and the
/// subscription in older versions).
fn resolve_discounts<'a>(
    sub: &Subscription,
    discounts: &'a [Expandable<Discount>],
    seen: &mut BTreeSet<String>,
) -> Result<Vec<&'a Discount>, StripeError> {
    let mut out = Vec::new();
    for (i, d) in discounts.iter().enumerate() {
        let discount = match d {
            Expandable::Object(d) => d.as_ref(),
            Expandable::Id(id) if seen.contains(id) => continue,
            Expandable::Id(id) => {
                return Err(StripeError::Malformed(format!(
                    "subscription {}: discount {id} was not expanded",
                    sub.id
                )));
            }
        };
        // A discount without an id (very old objects) is keyed by its coupon.
        let key = discount.id.clone().unwrap_or_else(|| format!("{}#{i}", coupon_id(discount)));
        if seen.insert(key) {
            out.push(discount);
        }
    }
    Ok(out)
}

fn coupon_id(discount: &Discount) -> String {
    match discount.coupon() {
        Some(Expandable::Id(id)) => id.clone(),
        Some(Expandable::Object(c)) => c.id.clone(),
        None => "?".into(),
    }
}

/// Applies a discount to `targets` (its item, or every counted item of the
/// subscription) and says what it took. A coupon limited to some products
/// (`applies_to`) only takes from their items; an amount off is shared among them in
/// proportion to their amounts, the last taking the remainder, so that every figure
/// stays exact.
fn apply_discount(
    sub: &Subscription,
    discount: &Discount,
    lookups: &Lookups,
    currency: Currency,
    factor: Decimal,
    targets: &mut [Counted],
    applies_to: &str,
) -> Result<DiscountMrr, StripeError> {
    let (coupon, fetched) = match discount.coupon() {
        Some(c) => match (lookups.coupons.get(c.id()), c) {
            (Some(full), _) => (full, true),
            (None, Expandable::Object(copy)) => (copy.as_ref(), false),
            (None, Expandable::Id(id)) => {
                return Err(unsupported(sub, format!("coupon {id} was not fetched")));
            }
        },
        None => return Err(unsupported(sub, "has a discount without a coupon".into())),
    };
    let counted = coupon.duration == "forever";
    let eligible: Vec<usize> = (0..targets.len())
        .filter(|i| {
            coupon
                .applies_to
                .as_ref()
                .is_none_or(|limit| targets[*i].product.as_ref().is_some_and(|p| limit.products.contains(p)))
        })
        .collect();
    let base: Decimal = eligible.iter().map(|i| targets[*i].monthly.max(Decimal::ZERO)).sum();
    let per_unit = stripe_minor_per_unit(currency);
    let (off, what) = if let Some(pct) = &coupon.percent_off {
        let pct = percent(pct)
            .ok_or_else(|| unsupported(sub, format!("coupon {} has percent_off {pct}", coupon.id)))?;
        (base * pct / Decimal::ONE_HUNDRED, format!("{}% off", pct.normalize()))
    } else if let Some(amount) = coupon_amount(coupon, currency) {
        let per_month = Decimal::from(amount) / per_unit * factor;
        (per_month.min(base), format!("{currency} {} off", major(Decimal::from(amount), per_unit)))
    } else if coupon.amount_off.is_some() {
        return Err(unsupported(
            sub,
            format!(
                "coupon {} takes an amount off in {} and has none in {currency}",
                coupon.id,
                coupon.currency.as_deref().unwrap_or("?")
            ),
        ));
    } else {
        return Err(unsupported(sub, format!("coupon {} has neither percent_off nor amount_off", coupon.id)));
    };
    if counted && !base.is_zero() {
        let mut left = off;
        for (n, i) in eligible.iter().enumerate() {
            let share = if n + 1 == eligible.len() {
                left
            } else {
                targets[*i].monthly.max(Decimal::ZERO) * off / base
            };
            targets[*i].monthly -= share;
            left -= share;
        }
    }
    let mut terms = format!("{what}, {}", coupon.duration);
    if let Some(limit) = &coupon.applies_to {
        terms.push_str(&format!(" (only {})", limit.products.join(", ")));
    } else if !fetched {
        terms.push_str(" (coupon could not be fetched: any product limit is unknown)");
    }
    Ok(DiscountMrr {
        id: discount.id.clone().unwrap_or_default(),
        coupon: coupon.id.clone(),
        applies_to: applies_to.to_string(),
        terms,
        monthly_off: if counted { off } else { Decimal::ZERO },
        counted,
    })
}

/// The coupon's amount off in `currency`, in Stripe minor units.
fn coupon_amount(coupon: &Coupon, currency: Currency) -> Option<i64> {
    let own = coupon.currency.as_deref().map(str::to_ascii_uppercase);
    if own.as_deref() == Some(currency.as_str()) {
        return coupon.amount_off;
    }
    coupon.currency_options.as_ref()?.get(&currency.as_str().to_ascii_lowercase()).map(|o| o.amount_off)
}

/// `percent_off` exactly as written: 25.5 is 25.5, not 25.499999...
fn percent(n: &serde_json::Number) -> Option<Decimal> {
    let text = n.to_string();
    let value = Decimal::from_str(&text).or_else(|_| Decimal::from_scientific(&text)).ok()?;
    (Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&value).then_some(value)
}

fn parse_currency(code: &str, sub: &Subscription) -> Result<Currency, StripeError> {
    code.to_ascii_uppercase().parse().map_err(|_| {
        StripeError::Malformed(format!("subscription {}: '{code}' is not a currency code", sub.id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn subs(list: Value) -> Vec<Subscription> {
        serde_json::from_value(list).expect("Stripe-shaped subscriptions")
    }

    fn sub(id: &str, status: &str, customer: &str, items: Value) -> Value {
        json!({"id": id, "object": "subscription", "status": status, "customer": customer,
               "currency": "eur", "discounts": [], "items": {"object": "list", "data": items, "has_more": false}})
    }

    fn price(amount: i64, currency: &str, interval: &str, count: u32) -> Value {
        json!({"id": "price_x", "object": "price", "currency": currency, "billing_scheme": "per_unit",
               "unit_amount": amount, "unit_amount_decimal": amount.to_string(), "tiers_mode": null,
               "transform_quantity": null, "type": "recurring",
               "recurring": {"interval": interval, "interval_count": count, "usage_type": "licensed", "meter": null}})
    }

    fn item(price: Value, quantity: u64) -> Value {
        json!({"id": format!("si_{quantity}"), "object": "subscription_item", "price": price,
               "quantity": quantity, "discounts": []})
    }

    fn coupon(id: &str, duration: &str, terms: Value) -> Value {
        let mut c = json!({"id": id, "object": "coupon", "duration": duration, "percent_off": null,
                           "amount_off": null, "currency": null, "valid": true});
        for (k, v) in terms.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    /// A Discount as 2025-09-30.clover and later send it, its coupon expanded.
    fn discount(id: &str, coupon: Value) -> Value {
        json!({"id": id, "object": "discount", "source": {"type": "coupon", "coupon": coupon}, "end": null})
    }

    fn eur_fx() -> FxRates {
        FxRates::parse_list("USD=0.90 KWD=3.0 JPY=0.0061 ISK=0.0066").unwrap()
    }

    fn report(list: Value) -> MrrReport {
        compute(&subs(list), &Lookups::default(), Currency::EUR, &eur_fx()).unwrap()
    }

    fn minor(list: Value) -> i64 {
        report(list).mrr.minor
    }

    fn one(items: Value) -> i64 {
        minor(json!([sub("s", "active", "c1", items)]))
    }

    #[test]
    fn a_yearly_subscription_counts_one_twelfth() {
        assert_eq!(one(json!([item(price(120_000, "eur", "year", 1), 1)])), 10_000);
    }

    #[test]
    fn weekly_daily_and_quarterly_intervals_are_normalised_to_a_month() {
        let m = report(json!([
            sub("w", "active", "c1", json!([item(price(1_200, "eur", "week", 1), 1)])),
            sub("d", "active", "c2", json!([item(price(100, "eur", "day", 1), 1)])),
            sub("q", "active", "c3", json!([item(price(30_000, "eur", "month", 3), 1)])),
        ]));
        // 12 x 52/12 = 52.00; 1 x 365/12 = 30.4166.. -> 30.42; 300 / 3 = 100 -> 182.42
        assert_eq!(m.mrr.minor, 18_242);
        assert_eq!((m.subscriptions_counted, m.customers), (3, 3));
        assert_eq!(m.subscriptions.iter().map(|s| s.amount.minor).sum::<i64>(), m.mrr.minor);
    }

    #[test]
    fn quantity_multiplies_and_legacy_plans_are_read() {
        let plan = json!({"id": "plan_x", "object": "plan", "currency": "eur", "amount": 2_500,
                          "interval": "month", "interval_count": 1, "billing_scheme": "per_unit"});
        assert_eq!(one(json!([{"id": "si_1", "plan": plan, "quantity": 4}])), 10_000);
    }

    #[test]
    fn a_quantity_of_zero_counts_zero() {
        assert_eq!(one(json!([item(price(4_950, "eur", "month", 1), 0)])), 0);
    }

    #[test]
    fn the_decimal_unit_amount_is_preferred_for_sub_cent_prices() {
        let mut p = price(0, "eur", "month", 1);
        p["unit_amount"] = Value::Null;
        p["unit_amount_decimal"] = "0.125".into(); // an eighth of a cent per API call
        // 10,000 x 0.125 cents = 1,250 cents
        assert_eq!(one(json!([item(p, 10_000)])), 1_250);
    }

    #[test]
    fn only_active_and_past_due_subscriptions_count() {
        let items = json!([item(price(1_000, "eur", "month", 1), 1)]);
        let list: Vec<Value> = [
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
        .map(|(i, s)| sub(&format!("s{i}"), s, &format!("c{i}"), items.clone()))
        .collect();
        let m = report(Value::Array(list));
        assert_eq!((m.mrr.minor, m.subscriptions_counted, m.customers), (2_000, 2, 2));
    }

    #[test]
    fn metered_items_and_one_off_prices_do_not_count_but_are_explained() {
        let mut metered = price(5, "eur", "month", 1);
        metered["recurring"]["usage_type"] = "metered".into();
        let mut one_off = price(9_999, "eur", "month", 1);
        one_off["recurring"] = Value::Null;
        let m = report(json!([sub(
            "s",
            "active",
            "c1",
            json!([{"id": "si_m", "price": metered}, item(one_off, 1), item(price(1_000, "eur", "month", 1), 1)])
        )]));
        assert_eq!(m.mrr.minor, 1_000);
        let counted: Vec<bool> = m.subscriptions[0].items.iter().map(|i| i.counted).collect();
        assert_eq!(counted, [false, false, true]);
        assert!(m.subscriptions[0].items[0].pricing.starts_with("metered"));
    }

    #[test]
    fn a_subscription_of_only_metered_items_is_not_counted() {
        let mut metered = price(5, "eur", "month", 1);
        metered["recurring"]["usage_type"] = "metered".into();
        let m = report(json!([sub("s", "active", "c1", json!([{"id": "si_m", "price": metered}]))]));
        assert_eq!((m.mrr.minor, m.subscriptions_counted, m.customers), (0, 0, 0));
    }

    fn package(round: &str) -> Value {
        let mut p = price(1_000, "eur", "month", 1);
        p["transform_quantity"] = json!({"divide_by": 1_000, "round": round});
        p
    }

    #[test]
    fn package_pricing_bills_whole_packages_rounded_as_the_price_says() {
        // 5,500 units at EUR 10 per 1,000: 6 packages rounded up, 5 rounded down.
        assert_eq!(one(json!([item(package("up"), 5_500)])), 6_000);
        assert_eq!(one(json!([item(package("down"), 5_500)])), 5_000);
        assert_eq!(one(json!([item(package("up"), 5_000)])), 5_000);
        assert_eq!(one(json!([item(package("up"), 0)])), 0);
        let m = report(json!([sub("s", "active", "c1", json!([item(package("up"), 5_500)]))]));
        assert_eq!(
            m.subscriptions[0].items[0].pricing,
            "package: 10 per 1000 units, rounded up -> 6 package(s)"
        );
    }

    fn tiered(mode: &str) -> Value {
        let mut p = price(0, "eur", "month", 1);
        p["billing_scheme"] = "tiered".into();
        p["unit_amount"] = Value::Null;
        p["unit_amount_decimal"] = Value::Null;
        p["tiers_mode"] = mode.into();
        p["tiers"] = json!([
            {"up_to": 5, "unit_amount": 1_000, "unit_amount_decimal": "1000", "flat_amount": 2_000, "flat_amount_decimal": "2000"},
            {"up_to": 10, "unit_amount": 800, "unit_amount_decimal": "800", "flat_amount": null, "flat_amount_decimal": null},
            {"up_to": null, "unit_amount": 500, "unit_amount_decimal": "500", "flat_amount": null, "flat_amount_decimal": null}
        ]);
        p
    }

    #[test]
    fn graduated_tiers_sum_each_tier_and_the_flat_fee_of_every_tier_reached() {
        // 12 units: 5 x 10 + 20 flat, 5 x 8, 2 x 5 = 70 + 40 + 10 = EUR 120
        assert_eq!(one(json!([item(tiered("graduated"), 12)])), 12_000);
        // 3 units: 3 x 10 + 20 = EUR 50
        assert_eq!(one(json!([item(tiered("graduated"), 3)])), 5_000);
        assert_eq!(one(json!([item(tiered("graduated"), 0)])), 0);
        let m = report(json!([sub("s", "active", "c1", json!([item(tiered("graduated"), 12)]))]));
        assert_eq!(m.subscriptions[0].items[0].pricing, "graduated tiers: 5 x 10 + 20 + 5 x 8 + 2 x 5");
    }

    #[test]
    fn volume_tiers_price_every_unit_at_the_tier_that_holds_the_quantity() {
        assert_eq!(one(json!([item(tiered("volume"), 12)])), 6_000); // 12 x 5
        assert_eq!(one(json!([item(tiered("volume"), 7)])), 5_600); // 7 x 8
        assert_eq!(one(json!([item(tiered("volume"), 5)])), 7_000); // 5 x 10 + 20
        assert_eq!(one(json!([item(tiered("volume"), 0)])), 0);
    }

    #[test]
    fn tiers_not_in_the_listing_are_taken_from_the_lookups() {
        let full = tiered("graduated");
        let mut bare = full.clone();
        bare["tiers"] = Value::Null;
        let list = subs(json!([sub("s", "active", "c1", json!([item(bare, 12)]))]));
        let need = needed(&list);
        assert_eq!(need.prices.keys().collect::<Vec<_>>(), ["price_x"]);
        let err = compute(&list, &Lookups::default(), Currency::EUR, &eur_fx()).unwrap_err();
        assert_eq!(err.to_string(), "subscription s: price price_x is tiered but its tiers were not fetched");
        let mut lookups = Lookups::default();
        lookups.prices.insert("price_x".into(), serde_json::from_value(full).unwrap());
        assert_eq!(compute(&list, &lookups, Currency::EUR, &eur_fx()).unwrap().mrr.minor, 12_000);
    }

    #[test]
    fn a_legacy_tiered_plan_has_its_tiers_looked_up_by_plan_id() {
        let plan = json!({"id": "plan_t", "currency": "eur", "interval": "month", "billing_scheme": "tiered",
                          "tiers_mode": "volume", "amount": null});
        let list =
            subs(json!([sub("s", "active", "c1", json!([{"id": "si", "plan": plan, "quantity": 7}]))]));
        let need = needed(&list);
        assert_eq!(need.plan_tiers.iter().collect::<Vec<_>>(), ["plan_t"]);
        assert!(need.prices.is_empty() && need.coupons.is_empty());
        let mut lookups = Lookups::default();
        lookups
            .plan_tiers
            .insert("plan_t".into(), serde_json::from_value(tiered("volume")["tiers"].clone()).unwrap());
        assert_eq!(compute(&list, &lookups, Currency::EUR, &eur_fx()).unwrap().mrr.minor, 5_600);
    }

    fn with_discounts(items: Value, discounts: Value) -> Value {
        let mut s = sub("s", "active", "c1", items);
        s["discounts"] = discounts;
        json!([s])
    }

    fn hundred_a_month() -> Value {
        json!([item(price(10_000, "eur", "month", 1), 1)])
    }

    #[test]
    fn forever_discounts_reduce_mrr_but_once_and_repeating_do_not() {
        let with = |duration: &str, terms: Value| {
            minor(with_discounts(hundred_a_month(), json!([discount("di_1", coupon("c", duration, terms))])))
        };
        assert_eq!(with("forever", json!({"percent_off": 25.5})), 7_450);
        assert_eq!(with("forever", json!({"amount_off": 1_000, "currency": "eur"})), 9_000);
        assert_eq!(with("once", json!({"percent_off": 25.0})), 10_000);
        assert_eq!(with("repeating", json!({"percent_off": 25.0, "duration_in_months": 3})), 10_000);
        assert_eq!(with("forever", json!({"amount_off": 50_000, "currency": "eur"})), 0, "never below zero");
    }

    #[test]
    fn an_amount_off_is_taken_once_per_billing_period() {
        // EUR 1,200 a year with EUR 120 off each yearly invoice: EUR 90 a month.
        let yearly = json!([item(price(120_000, "eur", "year", 1), 1)]);
        let d = discount("di_1", coupon("c", "forever", json!({"amount_off": 12_000, "currency": "eur"})));
        assert_eq!(minor(with_discounts(yearly, json!([d]))), 9_000);
    }

    #[test]
    fn a_multi_currency_coupon_takes_its_amount_in_the_subscriptions_currency() {
        // The listing's copy has no currency_options; the fetched coupon has them.
        let listed = coupon("c", "forever", json!({"amount_off": 1_000, "currency": "usd"}));
        let fetched = coupon(
            "c",
            "forever",
            json!({"amount_off": 1_000, "currency": "usd", "currency_options": {"eur": {"amount_off": 900}}}),
        );
        let list = subs(with_discounts(hundred_a_month(), json!([discount("di_1", listed)])));
        assert_eq!(needed(&list).coupons.iter().collect::<Vec<_>>(), ["c"]);
        let mut lookups = Lookups::default();
        lookups.coupons.insert("c".into(), serde_json::from_value(fetched).unwrap());
        assert_eq!(compute(&list, &lookups, Currency::EUR, &eur_fx()).unwrap().mrr.minor, 9_100);
        let usd_only = coupon("c", "forever", json!({"amount_off": 1_000, "currency": "usd"}));
        let err = compute(
            &subs(with_discounts(hundred_a_month(), json!([discount("di_1", usd_only)]))),
            &Lookups::default(),
            Currency::EUR,
            &eur_fx(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "subscription s: coupon c takes an amount off in usd and has none in EUR"
        );
    }

    fn product_price(id: &str, product: &str, amount: i64) -> Value {
        let mut p = price(amount, "eur", "month", 1);
        p["id"] = id.into();
        p["product"] = product.into();
        p
    }

    #[test]
    fn a_coupon_limited_to_some_products_only_discounts_their_items() {
        let items = json!([
            item(product_price("p_seat", "prod_seats", 8_000), 1),
            item(product_price("p_sup", "prod_support", 2_000), 1)
        ]);
        let limited = coupon("half", "forever", json!({"percent_off": 50}));
        let list = subs(with_discounts(items, json!([discount("di_1", limited.clone())])));
        let mut lookups = Lookups::default();
        let mut fetched = limited;
        fetched["applies_to"] = json!({"products": ["prod_support"]});
        lookups.coupons.insert("half".into(), serde_json::from_value(fetched).unwrap());
        // 80 + 20 x 50% = 90, not (80 + 20) x 50% = 50
        let m = compute(&list, &lookups, Currency::EUR, &eur_fx()).unwrap();
        assert_eq!(m.mrr.minor, 9_000);
        assert_eq!(m.subscriptions[0].discounts[0].terms, "50% off, forever (only prod_support)");
    }

    #[test]
    fn an_amount_off_limited_to_products_takes_at_most_their_amount() {
        let items = json!([
            item(product_price("p_seat", "prod_seats", 8_000), 1),
            item(product_price("p_sup", "prod_support", 2_000), 1)
        ]);
        let c = coupon(
            "big",
            "forever",
            json!({"amount_off": 5_000, "currency": "eur", "applies_to": {"products": ["prod_support"]}}),
        );
        let list = subs(with_discounts(items, json!([discount("di_1", c.clone())])));
        let mut lookups = Lookups::default();
        lookups.coupons.insert("big".into(), serde_json::from_value(c).unwrap());
        // EUR 50 off, but only the EUR 20 support item is eligible: 80 left.
        assert_eq!(compute(&list, &lookups, Currency::EUR, &eur_fx()).unwrap().mrr.minor, 8_000);
    }

    #[test]
    fn a_deleted_coupon_still_discounts_from_the_copy_in_its_discount() {
        let c = coupon("gone", "forever", json!({"percent_off": 10}));
        let m = compute(
            &subs(with_discounts(hundred_a_month(), json!([discount("di_1", c)]))),
            &Lookups::default(),
            Currency::EUR,
            &eur_fx(),
        )
        .unwrap();
        assert_eq!(m.mrr.minor, 9_000);
        assert!(
            m.subscriptions[0].discounts[0]
                .terms
                .ends_with("(coupon could not be fetched: any product limit is unknown)")
        );
    }

    #[test]
    fn a_multi_currency_price_bills_in_the_subscriptions_currency_at_its_own_amount() {
        // A USD price with a EUR option of EUR 95: a EUR subscription pays 95, not 100 x FX.
        let listed = price(10_000, "usd", "month", 1);
        let mut fetched = listed.clone();
        fetched["currency_options"] = json!({"eur": {"unit_amount": 9_500, "unit_amount_decimal": "9500"},
                                             "usd": {"unit_amount": 10_000, "unit_amount_decimal": "10000"}});
        let list = subs(json!([sub("s", "active", "c1", json!([item(listed, 2)]))]));
        let need = needed(&list);
        assert_eq!(
            need.prices.get("price_x").map(|c| c.iter().map(String::as_str).collect::<Vec<_>>()),
            Some(vec!["eur"])
        );
        let err = compute(&list, &Lookups::default(), Currency::EUR, &eur_fx()).unwrap_err();
        assert_eq!(err.to_string(), "subscription s: price price_x is in usd and has no EUR amount");
        let mut lookups = Lookups::default();
        lookups.prices.insert("price_x".into(), serde_json::from_value(fetched).unwrap());
        assert_eq!(compute(&list, &lookups, Currency::EUR, &eur_fx()).unwrap().mrr.minor, 19_000);
    }

    #[test]
    fn a_coupon_sent_as_an_id_since_clover_is_read_from_the_lookups() {
        let d = json!({"id": "di_1", "object": "discount", "source": {"type": "coupon", "coupon": "SAVE20"}});
        let list = subs(with_discounts(hundred_a_month(), json!([d])));
        assert_eq!(needed(&list).coupons.iter().collect::<Vec<_>>(), ["SAVE20"]);
        let mut lookups = Lookups::default();
        lookups.coupons.insert(
            "SAVE20".into(),
            serde_json::from_value(coupon("SAVE20", "forever", json!({"percent_off": 20}))).unwrap(),
        );
        assert_eq!(compute(&list, &lookups, Currency::EUR, &eur_fx()).unwrap().mrr.minor, 8_000);
    }

    #[test]
    fn the_pre_clover_discount_shape_is_still_read() {
        let d = json!({"id": "di_1", "object": "discount", "coupon": coupon("c", "forever", json!({"percent_off": 10}))});
        assert_eq!(minor(with_discounts(hundred_a_month(), json!([d]))), 9_000);
    }

    #[test]
    fn a_discount_in_both_the_legacy_field_and_the_list_counts_once() {
        let d = json!({"id": "di_1", "object": "discount", "coupon": coupon("c", "forever", json!({"percent_off": 10}))});
        let mut s = sub("s", "active", "c1", hundred_a_month());
        s["discount"] = d.clone();
        s["discounts"] = json!(["di_1"]);
        assert_eq!(minor(json!([s.clone()])), 9_000);
        s["discounts"] = json!([d]);
        assert_eq!(minor(json!([s])), 9_000);
    }

    #[test]
    fn an_unexpanded_discount_fails_clearly_rather_than_counting_nothing() {
        let err = compute(
            &subs(with_discounts(hundred_a_month(), json!(["di_9"]))),
            &Lookups::default(),
            Currency::EUR,
            &eur_fx(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected Stripe response: subscription s: discount di_9 was not expanded"
        );
    }

    #[test]
    fn item_discounts_apply_to_their_item_before_subscription_discounts() {
        let mut cheap = item(price(2_000, "eur", "month", 1), 1);
        cheap["discounts"] = json!([discount("di_i", coupon("half", "forever", json!({"percent_off": 50})))]);
        let items = json!([item(price(8_000, "eur", "month", 1), 1), cheap]);
        let sub_discount = discount("di_s", coupon("ten", "forever", json!({"percent_off": 10})));
        // (80 + 20 x 50%) x 90% = 81
        let m = report(with_discounts(items, json!([sub_discount])));
        assert_eq!(m.mrr.minor, 8_100);
        let lines = &m.subscriptions[0];
        assert_eq!(lines.items[1].monthly, Decimal::from(20), "the item line is before its discount");
        let offs: Vec<Decimal> = lines.discounts.iter().map(|d| d.monthly_off).collect();
        assert_eq!(offs, [Decimal::from(10), Decimal::from(9)]);
        let applied: Vec<(&str, &str)> =
            m.subscriptions[0].discounts.iter().map(|d| (d.coupon.as_str(), d.applies_to.as_str())).collect();
        assert_eq!(applied, [("half", "price_x"), ("ten", "subscription")]);
    }

    #[test]
    fn other_currencies_are_converted_with_the_configured_rate() {
        let mut s = sub("s", "active", "c1", json!([item(price(10_000, "usd", "month", 1), 1)]));
        s["currency"] = "usd".into();
        assert_eq!(minor(json!([s])), 9_000);
    }

    #[test]
    fn a_currency_without_a_rate_fails_the_collection() {
        let mut s = sub("s", "active", "c1", json!([item(price(10_000, "gbp", "month", 1), 1)]));
        s["currency"] = "gbp".into();
        let err = compute(&subs(json!([s])), &Lookups::default(), Currency::EUR, &eur_fx()).unwrap_err();
        assert_eq!(err.to_string(), "no FX rate for GBP -> EUR: configure one (e.g. GBP=1.08)");
    }

    #[test]
    fn one_customer_with_two_subscriptions_counts_once() {
        let items = hundred_a_month();
        let m = report(json!([sub("a", "active", "c1", items.clone()), sub("b", "active", "c1", items)]));
        assert_eq!((m.subscriptions_counted, m.customers), (2, 1));
    }

    #[test]
    fn items_without_a_price_and_unknown_intervals_are_refused_clearly() {
        let err = compute(
            &subs(json!([sub("s", "active", "c1", json!([{"id": "si", "quantity": 1}]))])),
            &Lookups::default(),
            Currency::EUR,
            &eur_fx(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("neither price nor plan"), "{err}");
        let err = compute(
            &subs(json!([sub("s", "active", "c1", json!([item(price(100, "eur", "fortnight", 1), 1)]))])),
            &Lookups::default(),
            Currency::EUR,
            &eur_fx(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "subscription s: unknown billing interval 'fortnight'");
    }

    fn in_currency(code: &str, amount: i64) -> i64 {
        let mut s = sub("s", "active", "c1", json!([item(price(amount, code, "month", 1), 1)]));
        s["currency"] = code.into();
        minor(json!([s]))
    }

    #[test]
    fn three_decimal_currencies_are_thousandths() {
        // KWD 12.345 (12,345 fils) at 3.0 = EUR 37.035 -> 37.04, not ten times that.
        assert_eq!(in_currency("kwd", 12_345), 3_704);
    }

    #[test]
    fn zero_decimal_currencies_are_whole_units() {
        assert_eq!(in_currency("jpy", 10_000), 6_100); // JPY 10,000 x 0.0061
    }

    #[test]
    fn isk_is_two_decimal_in_stripes_api_although_iso_says_zero() {
        assert_eq!(in_currency("isk", 500_000), 3_300); // ISK 5,000 x 0.0066
    }

    #[test]
    fn stripe_exponents_follow_iso_4217_with_stripes_documented_exceptions() {
        let c = |s: &str| s.parse::<Currency>().unwrap();
        for (code, exponent) in
            [("EUR", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("UGX", 0), ("KWD", 3), ("BHD", 3), ("JOD", 3)]
                .into_iter()
                .chain([("OMR", 3), ("TND", 3), ("ISK", 2), ("MGA", 0), ("HUF", 2), ("TWD", 2)])
        {
            assert_eq!(stripe_exponent(c(code)), exponent, "{code}");
        }
    }

    #[test]
    fn an_absurd_quantity_is_a_named_error_not_a_panic() {
        let mut p = price(0, "eur", "month", 1);
        p["unit_amount"] = Value::Null;
        p["unit_amount_decimal"] = "79228162514264337593543950335".into();
        let err = compute(
            &subs(json!([sub("s", "active", "c1", json!([item(p, u64::MAX)]))])),
            &Lookups::default(),
            Currency::EUR,
            &eur_fx(),
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("is too large to hold"), "{err}");
    }

    #[test]
    fn the_revenue_currency_may_itself_have_three_decimals() {
        let kwd: Currency = "KWD".parse().unwrap();
        let mut s = sub("s", "active", "c1", json!([item(price(12_345, "kwd", "month", 1), 2)]));
        s["currency"] = "kwd".into();
        let m = compute(&subs(json!([s])), &Lookups::default(), kwd, &FxRates::new()).unwrap();
        assert_eq!(m.mrr, Money::from_minor(24_690, kwd));
        assert_eq!(m.mrr.to_string(), "KWD 24.690");
    }

    #[test]
    fn the_explanation_is_serialised_with_exact_decimal_text() {
        let m = report(json!([sub("d", "active", "c2", json!([item(price(100, "eur", "day", 1), 1)]))]));
        let v = serde_json::to_value(&m.subscriptions[0]).unwrap();
        assert_eq!(v["monthly"], "30.416667");
        assert_eq!(v["amount"], json!({"minor": 3_042, "currency": "EUR"}));
        assert_eq!(v["items"][0]["pricing"], "per unit: 1 x 1");
    }
}
