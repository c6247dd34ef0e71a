//! `revscale mrr`: the MRR the system acts on, from the same Stripe code the
//! collect-revenue Lambda runs.

use std::path::PathBuf;
use std::process::ExitCode;

use revscale_aws::stripe::StripeSource;
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
    /// Print `{"mrr", "currency", "subscriptions_counted", "customers"}`.
    #[arg(long)]
    json: bool,
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
    let summary = runtime.block_on(source.mrr())?;
    if args.json {
        let mrr: serde_json::Number = summary.mrr.to_decimal().to_string().parse()?;
        println!(
            "{}",
            json!({
                "mrr": mrr,
                "currency": summary.mrr.currency,
                "subscriptions_counted": summary.subscriptions_counted,
                "customers": summary.customers,
            })
        );
    } else {
        println!(
            "MRR {} ({} subscription(s) counted, {} customer(s))",
            summary.mrr, summary.subscriptions_counted, summary.customers
        );
    }
    Ok(ExitCode::SUCCESS)
}
