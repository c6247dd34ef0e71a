//! `revscale mrr`: the MRR the system acts on, from the same Stripe code the
//! collect-revenue Lambda runs.

use std::path::PathBuf;
use std::process::ExitCode;

use std::fmt::Write as _;

use revscale_aws::stripe::{STRIPE_VERSION, StripeSource, SubscriptionMrr};
use revscale_engine::money::{FxRates, parse_pair};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Stripe API base URL (a test server such as localstripe, for instance).
    #[arg(long, default_value = "https://api.stripe.com")]
    stripe_api_base: String,
    /// Exchange rate into the revenue currency, e.g. `USD=0.93`; repeatable; overrides
    /// the rates in FX_RATES.
    #[arg(long = "fx", value_name = "CUR=RATE")]
    fx: Vec<String>,
    /// Thresholds configuration, for the revenue currency.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print `{"mrr", "currency", "subscriptions_counted", "customers", "stripe_version"}`
    /// (`mrr` as exact decimal text, e.g. "189.00"),
    /// and with --explain a `subscriptions` array as well.
    #[arg(long)]
    json: bool,
    /// Show each subscription's contribution (items, how each was priced and
    /// normalised to a month, discounts, amount), to reconcile with the Stripe dashboard.
    #[arg(long)]
    explain: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let config = crate::load_config(args.config.as_ref())?;
    let api_key = std::env::var("STRIPE_API_KEY").ok().filter(|k| !k.trim().is_empty()).ok_or_else(|| {
        anyhow::anyhow!(
            "STRIPE_API_KEY is not set (a restricted key with read access to subscriptions is enough)"
        )
    })?;
    let mut fx = FxRates::parse_list(&std::env::var("FX_RATES").unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("FX_RATES: {e}"))?;
    for pair in &args.fx {
        let (currency, rate) = parse_pair(pair).map_err(|e| anyhow::anyhow!("--fx: {e}"))?;
        fx.set(currency, rate);
    }
    let source = StripeSource::new(&args.stripe_api_base, api_key, config.currency, fx)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(source.report())?;
    if args.json {
        // Exact as text: a JSON number would be read as a float by most tools.
        let mut out = json!({
            "mrr": report.mrr.to_decimal().to_string(),
            "currency": report.mrr.currency,
            "subscriptions_counted": report.subscriptions_counted,
            "customers": report.customers,
            "stripe_version": STRIPE_VERSION,
        });
        if args.explain {
            out["subscriptions"] = serde_json::to_value(&report.subscriptions)?;
        }
        println!("{out}");
    } else {
        if args.explain {
            print!("{}", explain(&report.subscriptions));
        }
        println!(
            "MRR {} ({} subscription(s) counted, {} customer(s))",
            report.mrr, report.subscriptions_counted, report.customers
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One block per subscription: its items and discounts, each with its monthly amount
/// in the subscription's currency, then its part of MRR in the revenue currency.
fn explain(subscriptions: &[SubscriptionMrr]) -> String {
    let mut out = String::new();
    for sub in subscriptions {
        let _ = writeln!(out, "{}  customer {}  {}  -> {}", sub.id, sub.customer, sub.status, sub.amount);
        for item in &sub.items {
            let monthly = if item.counted {
                format!("{} {}/month", sub.currency, shown(item.monthly, sub.currency))
            } else {
                "not counted".into()
            };
            let _ = writeln!(
                out,
                "  item     {:<28} qty {:<6} per {:<9} {:<48} {monthly}",
                item.price, item.quantity, item.interval, item.pricing
            );
        }
        for d in &sub.discounts {
            let off = if d.counted {
                format!("-{} {}/month", sub.currency, shown(d.monthly_off, sub.currency))
            } else {
                "not counted".into()
            };
            let _ = writeln!(
                out,
                "  discount {:<28} on {:<22} {:<48} {off}",
                format!("{} ({})", d.id, d.coupon),
                d.applies_to,
                d.terms
            );
        }
    }
    if !subscriptions.is_empty() {
        out.push('\n');
    }
    out
}

/// Monthly amounts can hold fractions of a minor unit (a daily price x 365 / 12): shown
/// with the currency's decimals, and up to four places when there is more.
fn shown(d: rust_decimal::Decimal, currency: revscale_engine::Currency) -> rust_decimal::Decimal {
    let mut d = d.round_dp(4).normalize();
    if d.scale() < currency.exponent() {
        d.rescale(currency.exponent());
    }
    d
}
