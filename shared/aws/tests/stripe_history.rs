//! Daily MRR rebuilt from recorded, Stripe-shaped invoices (API 2026-07-29.dahlia,
//! `fixtures/stripe-history/`, described in its README) against figures calculated by
//! hand: a monthly subscription with a setup fee, a metered line, a void and a draft
//! invoice; a yearly one; a proration; an immediate cancellation; a repeating coupon.
//! The fixtures are served over HTTP (wiremock on 127.0.0.1) so that the paging, the
//! listing of each status, the line pages and the price look-ups are the real client's.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use revscale_aws::stripe::StripeSource;
use revscale_aws::stripe::invoices::reconstruct;
use revscale_engine::Currency;
use revscale_engine::money::FxRates;
use revscale_test_support::stripe_history::{self, fixture};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[tokio::test]
async fn the_invoices_rebuild_every_hand_calculated_day() {
    let server = stripe_history::server().await;
    let source = StripeSource::new(&server.uri(), "sk_test_x".into(), Currency::EUR, FxRates::new()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let history = source.invoice_history(d("2026-01-01"), deadline).await.unwrap();
    let rebuilt =
        reconstruct(&history, d("2026-01-01"), d("2026-06-30"), Currency::EUR, &FxRates::new()).unwrap();

    let expected = fixture("expected.json");
    let days = stripe_history::expected_days();
    assert_eq!(days.len(), 181);
    let got: BTreeMap<NaiveDate, String> =
        rebuilt.days.iter().map(|(k, v)| (*k, v.to_decimal().to_string())).collect();
    let wrong: Vec<String> = days
        .iter()
        .filter(|(day, want)| got.get(day) != Some(want))
        .map(|(day, want)| format!("{day}: got {:?}, hand-calculated {want}", got.get(day)))
        .collect();
    assert!(wrong.is_empty(), "{} days differ:\n{}", wrong.len(), wrong.join("\n"));
    for checkpoint in expected["checkpoints"].as_array().unwrap() {
        let day = d(checkpoint["date"].as_str().unwrap());
        println!(
            "{day}  rebuilt {:>8}  by hand {:>8}  {}",
            got[&day],
            checkpoint["mrr"].as_str().unwrap(),
            checkpoint["why"].as_str().unwrap()
        );
    }

    let stats = &rebuilt.stats;
    // The draft is never listed; the void one is listed under neither status.
    assert!(history.invoices.iter().all(|i| i.status.as_deref() != Some("draft")));
    assert_eq!(stats.prorations_left_out, 2, "the upgrade's two proration lines");
    assert_eq!(stats.subscriptions, 5);
    assert_eq!(stats.cut_short_by_cancellation, 1);
    assert!(stats.other_lines_left_out >= 2, "the setup fee and the metered lines: {stats:?}");
}

#[tokio::test]
async fn a_price_that_cannot_be_fetched_stops_the_history_by_name() {
    let server = MockServer::start().await;
    let mut page = fixture("page2.json");
    page["has_more"] = Value::Bool(false);
    Mock::given(method("GET"))
        .and(path("/v1/invoices"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex("^/v1/prices/.+"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(serde_json::json!({"error": {"message": "No such price"}})),
        )
        .mount(&server)
        .await;
    let source = StripeSource::new(&server.uri(), "sk_test_x".into(), Currency::EUR, FxRates::new()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let err = source.invoice_history(d("2026-01-01"), deadline).await.unwrap_err();
    assert!(err.to_string().contains("No such price") && err.to_string().contains("/v1/prices/"), "{err}");
}
