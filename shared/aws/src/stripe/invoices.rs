//! Daily MRR of the past, rebuilt from Stripe invoices: pure rules, no I/O.
//!
//! Subscriptions only say what they cost today; invoices say what each one was billed
//! for which period. A day's MRR is what the collector would have counted that day:
//!
//! - Invoices that are `paid` or `open` count; `draft`, `void` and `uncollectible` ones
//!   do not (a void invoice was never owed; an uncollectible one is lost revenue).
//! - A line counts when it bills a subscription item (`parent.type:
//!   subscription_item_details`) at a recurring, licensed price. Invoice items (a setup
//!   fee), one-off and metered prices do not count, as in the collector.
//! - **Prorations do not count.** A proration line is a one-time correction for part
//!   of a period; the new price is counted from the next regular invoice, which bills
//!   it for a whole period. A mid-period upgrade therefore shows from the next renewal.
//! - **Discounts** are taken from each line's `discount_amounts`, whatever the coupon's
//!   duration: the invoice shows what was billed for that period, and a coupon that has
//!   ended shows as its absence on later invoices. (The live collector, which cannot see
//!   the future, counts only `forever` coupons; on a day a `repeating` coupon runs, the
//!   two figures differ by that coupon.)
//! - **Refunds and credit notes do not count.** They correct a payment or an invoice
//!   after the fact and are not recurring revenue; they are left to the cost and cash
//!   reports they belong to. Stripe's own MRR ignores them the same way.
//! - A line's net amount (amount less its discounts) is normalised to a month by the
//!   collector's rule (yearly / 12, weekly x 52 / 12, daily x 365 / 12, divided by
//!   `interval_count`) and counts on every UTC day of its `period`, from the start's
//!   date up to, not including, the end's date. A subscription that ended (canceled,
//!   `ended_at`) stops counting on that day even when its last period ran further.
//! - A regular invoice that starts a subscription's new period before the previous one
//!   ended (a change of interval, or of the billing anchor, bills the whole new period
//!   at once and credits the rest of the old one with a proration) ends the earlier
//!   invoices' lines that day: the old price stops where the new one starts.
//! - Per day, each subscription's lines are summed, converted into the revenue currency
//!   with the configured rate and rounded to its minor unit, never below zero; MRR is
//!   the sum of those, as the collector sums subscriptions.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, NaiveDate};
use revscale_engine::money::FxRates;
use revscale_engine::{Currency, Money};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::StripeError;
use super::model::{Expandable, Identified, List, Price};
use super::mrr::{monthly_fraction, stripe_minor_per_unit};

/// The invoice statuses that count, each listed with its own server-side filter, in
/// this order (see `StripeSource::invoice_history`).
pub const COUNTED_INVOICE_STATUSES: [&str; 2] = ["open", "paid"];

#[derive(Debug, Clone, Deserialize)]
pub struct Invoice {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    pub currency: String,
    #[serde(default)]
    pub created: i64,
    /// Since 2025-03-31.basil: what the invoice bills (`subscription_details`).
    #[serde(default)]
    pub parent: Option<InvoiceParent>,
    /// Before 2025-03-31.basil.
    #[serde(default)]
    pub subscription: Option<Expandable<SubscriptionRef>>,
    /// Who is billed: counted once however many subscriptions they hold, as the
    /// collector counts customers.
    #[serde(default)]
    pub customer: Option<Expandable<CustomerRef>>,
    pub lines: List<InvoiceLine>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CustomerRef {
    pub id: String,
}

impl Identified for CustomerRef {
    fn identifier(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceParent {
    #[serde(default)]
    pub subscription_details: Option<SubscriptionDetails>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionDetails {
    #[serde(default)]
    pub subscription: Option<Expandable<SubscriptionRef>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionRef {
    pub id: String,
}

impl Identified for SubscriptionRef {
    fn identifier(&self) -> &str {
        &self.id
    }
}

impl Identified for Price {
    fn identifier(&self) -> &str {
        &self.id
    }
}

/// One invoice line (`object: line_item`).
#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceLine {
    #[serde(default)]
    pub id: Option<String>,
    /// Minor units of the line's currency, before discounts.
    pub amount: i64,
    #[serde(default)]
    pub currency: Option<String>,
    pub period: Period,
    #[serde(default)]
    pub discount_amounts: Vec<DiscountAmount>,
    #[serde(default)]
    pub quantity: Option<u64>,
    /// Since 2025-03-31.basil: `subscription_item_details` or `invoice_item_details`.
    #[serde(default)]
    pub parent: Option<LineParent>,
    /// Since 2025-03-31.basil: the price billed.
    #[serde(default)]
    pub pricing: Option<Pricing>,
    /// Before 2025-03-31.basil: `subscription` or `invoiceitem`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Before 2025-03-31.basil.
    #[serde(default)]
    pub proration: Option<bool>,
    /// Before 2025-03-31.basil.
    #[serde(default)]
    pub price: Option<Price>,
    /// Before 2025-03-31.basil.
    #[serde(default)]
    pub subscription: Option<Expandable<SubscriptionRef>>,
}

/// Unix seconds; `end` is exclusive.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Period {
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DiscountAmount {
    pub amount: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LineParent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub subscription_item_details: Option<SubscriptionItemDetails>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionItemDetails {
    #[serde(default)]
    pub subscription: Option<String>,
    #[serde(default)]
    pub proration: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pricing {
    #[serde(default)]
    pub price_details: Option<PriceDetails>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PriceDetails {
    pub price: Expandable<Price>,
}

/// A subscription from the `status=canceled` listing: when it stopped.
#[derive(Debug, Clone, Deserialize)]
pub struct EndedSubscription {
    pub id: String,
    #[serde(default)]
    pub ended_at: Option<i64>,
}

impl InvoiceLine {
    fn is_subscription_line(&self) -> bool {
        match &self.parent {
            Some(p) => p.kind == "subscription_item_details",
            None => self.kind.as_deref() == Some("subscription"),
        }
    }

    fn is_proration(&self) -> bool {
        self.parent
            .as_ref()
            .and_then(|p| p.subscription_item_details.as_ref())
            .map_or(self.proration.unwrap_or(false), |d| d.proration)
    }

    pub fn price_id(&self) -> Option<&str> {
        match self.pricing.as_ref().and_then(|p| p.price_details.as_ref()) {
            Some(d) => Some(d.price.id()),
            None => self.price.as_ref().map(|p| p.id.as_str()),
        }
    }

    fn subscription_id<'a>(&'a self, invoice: &'a Invoice) -> Option<&'a str> {
        self.parent
            .as_ref()
            .and_then(|p| p.subscription_item_details.as_ref())
            .and_then(|d| d.subscription.as_deref())
            .or(self.subscription.as_ref().map(Expandable::id))
            .or_else(|| invoice.subscription_id())
    }
}

impl Invoice {
    pub fn subscription_id(&self) -> Option<&str> {
        self.parent
            .as_ref()
            .and_then(|p| p.subscription_details.as_ref())
            .and_then(|d| d.subscription.as_ref())
            .or(self.subscription.as_ref())
            .map(Expandable::id)
    }

    fn counts(&self) -> bool {
        self.status.as_deref().is_some_and(|s| COUNTED_INVOICE_STATUSES.contains(&s))
    }
}

/// What the requests brought back: invoices with all their lines, the prices their
/// lines name, and when canceled subscriptions ended.
#[derive(Debug, Clone, Default)]
pub struct InvoiceHistory {
    pub invoices: Vec<Invoice>,
    pub prices: BTreeMap<String, Price>,
    pub ended: BTreeMap<String, NaiveDate>,
}

/// The prices whose terms (interval, usage type) a line does not carry itself.
pub fn prices_needed(invoices: &[Invoice]) -> BTreeSet<String> {
    invoices
        .iter()
        .filter(|i| i.counts())
        .flat_map(|i| &i.lines.data)
        .filter(|l| l.is_subscription_line() && !l.is_proration())
        .filter(|l| embedded_price(l).is_none_or(|p| p.recurring.is_none()))
        .filter_map(|l| l.price_id().map(str::to_string))
        .collect()
}

fn embedded_price(line: &InvoiceLine) -> Option<&Price> {
    match line.pricing.as_ref().and_then(|p| p.price_details.as_ref()) {
        Some(d) => d.price.object(),
        None => line.price.as_ref(),
    }
}

/// How the daily figures were made, for the CSV's provenance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconstructionStats {
    pub invoices_read: usize,
    /// Paid or open invoices.
    pub invoices_counted: usize,
    pub lines_counted: usize,
    pub prorations_left_out: usize,
    /// Invoice items, one-off and metered prices.
    pub other_lines_left_out: usize,
    pub subscriptions: usize,
    /// Subscriptions that ended before their last period did.
    pub cut_short_by_cancellation: usize,
    /// Lines ended early by a later invoice's new period (a plan or anchor change).
    pub superseded_lines: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyMrr {
    /// Every day of the window, in order.
    pub days: BTreeMap<NaiveDate, Money>,
    /// Per day, the subscriptions with a counted line and their customers (the
    /// collector's `subscriptions_counted` and `customers`, for a backfilled snapshot).
    pub counts: BTreeMap<NaiveDate, DayCounts>,
    pub stats: ReconstructionStats,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub subscriptions: u32,
    /// Distinct customers; a subscription whose invoices name none counts as its own.
    pub customers: u32,
}

/// One counted line: a monthly amount over a run of days.
struct Span {
    subscription: String,
    customer: Option<String>,
    /// The invoice's position in the listing: lines of one invoice never end each other.
    invoice: usize,
    currency: Currency,
    monthly: Decimal,
    from: NaiveDate,
    /// Exclusive.
    until: NaiveDate,
}

fn utc_date(seconds: i64, what: &str) -> Result<NaiveDate, StripeError> {
    DateTime::from_timestamp(seconds, 0)
        .map(|t| t.date_naive())
        .ok_or_else(|| StripeError::Malformed(format!("{what}: {seconds} is not a time")))
}

fn parse_currency(code: &str, invoice: &str) -> Result<Currency, StripeError> {
    code.to_ascii_uppercase()
        .parse()
        .map_err(|_| StripeError::Malformed(format!("invoice {invoice}: '{code}' is not a currency code")))
}

/// Daily MRR for every day from `from` to `to` inclusive. Refuses, by name, what it
/// cannot price exactly (a line whose price was not fetched, an unknown interval, a
/// currency without a rate), as the collector does.
pub fn reconstruct(
    history: &InvoiceHistory,
    from: NaiveDate,
    to: NaiveDate,
    target: Currency,
    fx: &FxRates,
) -> Result<DailyMrr, StripeError> {
    let mut stats = ReconstructionStats { invoices_read: history.invoices.len(), ..Default::default() };
    let mut spans = Vec::new();
    let mut cut_short = BTreeSet::new();
    for (position, invoice) in history.invoices.iter().enumerate().filter(|(_, i)| i.counts()) {
        stats.invoices_counted += 1;
        for line in &invoice.lines.data {
            if !line.is_subscription_line() {
                stats.other_lines_left_out += 1;
                continue;
            }
            if line.is_proration() {
                stats.prorations_left_out += 1;
                continue;
            }
            let Some(span) = span(position, invoice, line, history, &mut cut_short)? else {
                stats.other_lines_left_out += 1;
                continue;
            };
            stats.lines_counted += 1;
            spans.push(span);
        }
    }
    stats.superseded_lines = end_superseded(&mut spans);
    stats.subscriptions = spans.iter().map(|s| &s.subscription).collect::<BTreeSet<_>>().len();
    stats.cut_short_by_cancellation = cut_short.len();

    let mut days = BTreeMap::new();
    let mut counts = BTreeMap::new();
    let mut day = from;
    while day <= to {
        let mut per_subscription: BTreeMap<&str, (Currency, Decimal)> = BTreeMap::new();
        let mut customers = BTreeSet::new();
        for s in spans.iter().filter(|s| s.from <= day && day < s.until) {
            customers.insert(s.customer.as_deref().unwrap_or(&s.subscription));
            let entry = per_subscription.entry(&s.subscription).or_insert((s.currency, Decimal::ZERO));
            if entry.0 != s.currency {
                return Err(StripeError::Unsupported {
                    subscription: s.subscription.clone(),
                    message: format!("billed in {} and {} on {day}", entry.0, s.currency),
                });
            }
            entry.1 += s.monthly;
        }
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        counts.insert(
            day,
            DayCounts { subscriptions: count(per_subscription.len()), customers: count(customers.len()) },
        );
        let mut total = Money::zero(target);
        for (subscription, (currency, monthly)) in per_subscription {
            let converted = monthly.max(Decimal::ZERO) * fx.rate(currency, target)?;
            let amount =
                Money::round_from_decimal(converted, target).map_err(|e| StripeError::Unsupported {
                    subscription: subscription.to_string(),
                    message: format!("its amount cannot be held: {e}"),
                })?;
            total = total.checked_add(amount).map_err(|e| StripeError::Malformed(e.to_string()))?;
        }
        days.insert(day, total);
        day = day
            .checked_add_days(Days::new(1))
            .ok_or_else(|| StripeError::Malformed(format!("no day after {day}")))?;
    }
    Ok(DailyMrr { days, counts, stats })
}

/// Ends each line where a later invoice of its subscription starts a new period
/// inside its own; returns how many were ended early. Quadratic per subscription, which
/// has a few dozen invoices in the window at most.
fn end_superseded(spans: &mut [Span]) -> usize {
    // Each invoice's first day, per subscription.
    let mut starts: BTreeMap<(&str, usize), NaiveDate> = BTreeMap::new();
    for s in spans.iter() {
        let start = starts.entry((s.subscription.as_str(), s.invoice)).or_insert(s.from);
        *start = (*start).min(s.from);
    }
    let starts: Vec<(String, usize, NaiveDate)> =
        starts.into_iter().map(|((sub, invoice), from)| (sub.to_string(), invoice, from)).collect();
    let mut ended = 0;
    for span in spans.iter_mut() {
        let next = starts
            .iter()
            .filter(|(sub, invoice, from)| {
                *sub == span.subscription
                    && *invoice != span.invoice
                    && span.from < *from
                    && *from < span.until
            })
            .map(|(_, _, from)| *from)
            .min();
        if let Some(from) = next {
            span.until = from;
            ended += 1;
        }
    }
    ended
}

/// The line's monthly amount and its days; `None` for a price that does not count.
fn span(
    position: usize,
    invoice: &Invoice,
    line: &InvoiceLine,
    history: &InvoiceHistory,
    cut_short: &mut BTreeSet<String>,
) -> Result<Option<Span>, StripeError> {
    let line_name = line.id.as_deref().unwrap_or("?");
    let price_id = line.price_id().ok_or_else(|| {
        StripeError::Malformed(format!("invoice {}: line {line_name} names no price", invoice.id))
    })?;
    let price = history
        .prices
        .get(price_id)
        .or_else(|| embedded_price(line).filter(|p| p.recurring.is_some()))
        .ok_or_else(|| StripeError::Malformed(format!("price {price_id} was not fetched")))?;
    let Some(recurring) = &price.recurring else { return Ok(None) };
    if recurring.usage_type.as_deref() == Some("metered") {
        return Ok(None);
    }
    let (per, months) = monthly_fraction(&recurring.interval, recurring.interval_count).ok_or_else(|| {
        StripeError::Malformed(format!("price {price_id} has unknown interval '{}'", recurring.interval))
    })?;
    let currency = parse_currency(line.currency.as_deref().unwrap_or(&invoice.currency), &invoice.id)?;
    let discounts: i64 = line.discount_amounts.iter().map(|d| d.amount).sum();
    let net = Decimal::from(line.amount) - Decimal::from(discounts);
    let monthly = net * per / months / stripe_minor_per_unit(currency);
    let subscription = line.subscription_id(invoice).unwrap_or(&invoice.id).to_string();
    let from = utc_date(line.period.start, "period.start")?;
    let mut until = utc_date(line.period.end, "period.end")?;
    if let Some(ended) = history.ended.get(&subscription).copied()
        && ended < until
    {
        until = ended;
        cut_short.insert(subscription.clone());
    }
    let customer = invoice.customer.as_ref().map(|c| c.id().to_string());
    Ok(Some(Span { subscription, customer, invoice: position, currency, monthly, from, until }))
}

/// When each canceled subscription ended, by UTC date.
pub fn ended_dates(subscriptions: &[EndedSubscription]) -> Result<BTreeMap<String, NaiveDate>, StripeError> {
    subscriptions
        .iter()
        .filter_map(|s| s.ended_at.map(|t| (s, t)))
        .map(|(s, t)| Ok((s.id.clone(), utc_date(t, "ended_at")?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn ts(day: &str) -> i64 {
        d(day).and_hms_opt(10, 0, 0).unwrap().and_utc().timestamp()
    }

    fn price(id: &str, interval: &str, count: u32, usage: &str) -> Price {
        serde_json::from_value(json!({"id": id, "currency": "usd", "unit_amount": 1,
            "recurring": {"interval": interval, "interval_count": count, "usage_type": usage}}))
        .unwrap()
    }

    /// A basil-shaped invoice with one subscription line.
    fn invoice(id: &str, status: &str, currency: &str, line: Value) -> Invoice {
        serde_json::from_value(json!({"id": id, "object": "invoice", "status": status, "currency": currency,
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_1"}},
            "lines": {"object": "list", "data": [line], "has_more": false}}))
        .unwrap()
    }

    fn line(amount: i64, from: &str, to: &str, price: &str, off: i64) -> Value {
        json!({"id": "il_1", "object": "line_item", "amount": amount, "period": {"start": ts(from), "end": ts(to)},
               "discount_amounts": [{"amount": off, "discount": "di_1"}],
               "parent": {"type": "subscription_item_details",
                          "subscription_item_details": {"subscription": "sub_1", "subscription_item": "si_1", "proration": false}},
               "pricing": {"type": "price_details", "price_details": {"price": price, "product": "prod_1"}}})
    }

    fn history(invoices: Vec<Invoice>, prices: &[Price]) -> InvoiceHistory {
        InvoiceHistory {
            invoices,
            prices: prices.iter().map(|p| (p.id.clone(), p.clone())).collect(),
            ended: BTreeMap::new(),
        }
    }

    #[test]
    fn a_weekly_line_is_normalised_by_fifty_two_twelfths_and_rounded_to_the_cent() {
        // 10.00 a week, 1.00 off: 9.00 x 52 / 12 = 39.00; 7.77 a fortnight:
        // 7.77 x 52 / 24 = 16.835 -> 16.84 (half away from zero).
        let h = history(
            vec![invoice("in_1", "paid", "eur", line(1_000, "2026-03-02", "2026-03-09", "price_w", 100))],
            &[price("price_w", "week", 1, "licensed")],
        );
        let r = reconstruct(&h, d("2026-03-02"), d("2026-03-09"), Currency::EUR, &FxRates::new()).unwrap();
        assert_eq!(r.days[&d("2026-03-02")].minor, 3_900);
        assert_eq!(r.days[&d("2026-03-08")].minor, 3_900);
        assert_eq!(r.days[&d("2026-03-09")].minor, 0, "the period's end is exclusive");
        let h = history(
            vec![invoice("in_2", "paid", "eur", line(777, "2026-03-02", "2026-03-16", "price_f", 0))],
            &[price("price_f", "week", 2, "licensed")],
        );
        let r = reconstruct(&h, d("2026-03-02"), d("2026-03-02"), Currency::EUR, &FxRates::new()).unwrap();
        assert_eq!(r.days[&d("2026-03-02")].minor, 1_684);
    }

    #[test]
    fn another_currency_is_converted_at_the_configured_rate_and_a_missing_rate_is_refused() {
        let h = history(
            vec![invoice("in_1", "open", "usd", line(12_000, "2026-01-01", "2027-01-01", "price_y", 0))],
            &[price("price_y", "year", 1, "licensed")],
        );
        let fx = FxRates::new().with(Currency::USD, "0.93".parse().unwrap());
        let r = reconstruct(&h, d("2026-06-01"), d("2026-06-01"), Currency::EUR, &fx).unwrap();
        assert_eq!(r.days[&d("2026-06-01")].minor, 930, "120.00/12 = 10.00 USD = 9.30 EUR");
        let err =
            reconstruct(&h, d("2026-06-01"), d("2026-06-01"), Currency::EUR, &FxRates::new()).unwrap_err();
        assert!(err.to_string().contains("USD"), "{err}");
    }

    #[test]
    fn uncollectible_invoices_and_metered_prices_do_not_count_and_discounts_never_go_below_zero() {
        let h = history(
            vec![
                invoice(
                    "in_1",
                    "uncollectible",
                    "eur",
                    line(5_000, "2026-01-01", "2026-02-01", "price_m", 0),
                ),
                invoice("in_2", "paid", "eur", line(5_000, "2026-01-01", "2026-02-01", "price_metered", 0)),
                invoice("in_3", "paid", "eur", line(1_000, "2026-01-01", "2026-02-01", "price_m", 1_500)),
            ],
            &[price("price_m", "month", 1, "licensed"), price("price_metered", "month", 1, "metered")],
        );
        let r = reconstruct(&h, d("2026-01-10"), d("2026-01-10"), Currency::EUR, &FxRates::new()).unwrap();
        assert_eq!(r.days[&d("2026-01-10")].minor, 0);
        assert_eq!(r.stats.invoices_counted, 2);
        assert_eq!(r.stats.other_lines_left_out, 1);
    }

    #[test]
    fn a_change_to_yearly_mid_period_ends_the_monthly_line_where_the_yearly_one_starts() {
        // Monthly 30.00 billed 03-01..04-01; on 03-10 the plan becomes yearly 600.00,
        // billed at once for 03-10..next year (its credit for March is a proration).
        let h = history(
            vec![
                invoice("in_1", "paid", "eur", line(3_000, "2026-03-01", "2026-04-01", "price_m", 0)),
                invoice("in_2", "paid", "eur", line(60_000, "2026-03-10", "2027-03-10", "price_y", 0)),
            ],
            &[price("price_m", "month", 1, "licensed"), price("price_y", "year", 1, "licensed")],
        );
        let r = reconstruct(&h, d("2026-03-09"), d("2026-03-10"), Currency::EUR, &FxRates::new()).unwrap();
        assert_eq!(r.days[&d("2026-03-09")].minor, 3_000);
        assert_eq!(r.days[&d("2026-03-10")].minor, 5_000, "600/12, not 30 + 50");
        assert_eq!(r.stats.superseded_lines, 1);
    }

    #[test]
    fn each_day_counts_the_subscriptions_billed_for_it_and_their_customers_once() {
        let with = |id: &str, sub: &str, customer: Option<&str>, from: &str, to: &str| -> Invoice {
            let mut l = line(3_000, from, to, "price_m", 0);
            l["parent"]["subscription_item_details"]["subscription"] = json!(sub);
            serde_json::from_value(json!({"id": id, "object": "invoice", "status": "paid", "currency": "eur",
                "customer": customer,
                "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub}},
                "lines": {"object": "list", "data": [l], "has_more": false}}))
            .unwrap()
        };
        let h = history(
            vec![
                with("in_1", "sub_1", Some("cus_A"), "2026-03-01", "2026-04-01"),
                with("in_2", "sub_2", Some("cus_A"), "2026-03-01", "2026-04-01"),
                with("in_3", "sub_3", None, "2026-03-10", "2026-04-10"),
            ],
            &[price("price_m", "month", 1, "licensed")],
        );
        let r = reconstruct(&h, d("2026-03-09"), d("2026-03-10"), Currency::EUR, &FxRates::new()).unwrap();
        assert_eq!(
            r.counts[&d("2026-03-09")],
            DayCounts { subscriptions: 2, customers: 1 },
            "one customer, two subscriptions"
        );
        assert_eq!(
            r.counts[&d("2026-03-10")],
            DayCounts { subscriptions: 3, customers: 2 },
            "an invoice naming no customer counts its subscription as one"
        );
    }

    #[test]
    fn two_items_of_one_invoice_both_count() {
        let mut inv = invoice("in_1", "paid", "eur", line(3_000, "2026-03-01", "2026-04-01", "price_m", 0));
        let mut second = inv.lines.data[0].clone();
        second.amount = 1_000;
        second.period.start += 3_600;
        inv.lines.data.push(second);
        let h = history(vec![inv], &[price("price_m", "month", 1, "licensed")]);
        let r = reconstruct(&h, d("2026-03-05"), d("2026-03-05"), Currency::EUR, &FxRates::new()).unwrap();
        assert_eq!(r.days[&d("2026-03-05")].minor, 4_000);
        assert_eq!(r.stats.superseded_lines, 0);
    }

    #[test]
    fn the_shapes_before_basil_are_read_too() {
        let old: Invoice = serde_json::from_value(json!({"id": "in_old", "status": "paid", "currency": "eur",
            "subscription": "sub_old",
            "lines": {"data": [{"id": "il_old", "type": "subscription", "proration": false, "amount": 2_500,
                "subscription": "sub_old", "period": {"start": ts("2026-01-01"), "end": ts("2026-02-01")},
                "price": {"id": "price_old", "currency": "eur", "unit_amount": 2_500,
                          "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"}}}],
                "has_more": false}}))
        .unwrap();
        assert!(prices_needed(std::slice::from_ref(&old)).is_empty(), "the embedded price is enough");
        let r = reconstruct(
            &history(vec![old], &[]),
            d("2026-01-05"),
            d("2026-01-05"),
            Currency::EUR,
            &FxRates::new(),
        )
        .unwrap();
        assert_eq!(r.days[&d("2026-01-05")].minor, 2_500);
    }

    #[test]
    fn an_unknown_interval_or_a_price_not_fetched_is_refused_by_name() {
        let h = history(
            vec![invoice("in_1", "paid", "eur", line(1_000, "2026-01-01", "2026-02-01", "price_q", 0))],
            &[price("price_q", "fortnight", 1, "licensed")],
        );
        let err =
            reconstruct(&h, d("2026-01-01"), d("2026-01-01"), Currency::EUR, &FxRates::new()).unwrap_err();
        assert!(err.to_string().contains("fortnight"), "{err}");
        let h = history(h.invoices, &[]);
        assert_eq!(prices_needed(&h.invoices), BTreeSet::from(["price_q".to_string()]));
        let err =
            reconstruct(&h, d("2026-01-01"), d("2026-01-01"), Currency::EUR, &FxRates::new()).unwrap_err();
        assert!(err.to_string().contains("price_q was not fetched"), "{err}");
    }
}
