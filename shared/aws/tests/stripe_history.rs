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
use serde_json::Value;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stripe-history");

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Serves the recorded pages as Stripe would: invoices filtered by `status`, newest
/// first, two pages; the rest of one invoice's lines; prices by id; canceled
/// subscriptions.
async fn stripe() -> MockServer {
    let server = MockServer::start().await;
    let pages = [fixture("page1.json"), fixture("page2.json")];
    let invoices = move |request: &Request| {
        let status = request.url.query_pairs().find(|(k, _)| k == "status").map(|(_, v)| v.to_string());
        let after =
            request.url.query_pairs().find(|(k, _)| k == "starting_after").map(|(_, v)| v.to_string());
        let page = if after.is_some() { &pages[1] } else { &pages[0] };
        let mut page = page.clone();
        let data: Vec<Value> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| status.as_deref().is_none_or(|s| i["status"] == s))
            .cloned()
            .collect();
        page["data"] = Value::Array(data);
        // A filtered page that ends early still points on with the last id it had.
        if after.is_none() && page["data"].as_array().unwrap().is_empty() {
            page["has_more"] = Value::Bool(false);
        }
        ResponseTemplate::new(200).set_body_json(page)
    };
    Mock::given(method("GET")).and(path("/v1/invoices")).respond_with(invoices).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1/invoices/in_1Upgrade20260401/lines"))
        .and(query_param("starting_after", "il_1Upgrade20260401Remaining"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("lines-in_1Upgrade20260401.json")))
        .mount(&server)
        .await;
    let prices = fixture("prices.json");
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex("^/v1/prices/.+"))
        .respond_with(move |request: &Request| {
            let id = request.url.path().rsplit('/').next().unwrap_or_default();
            match prices.get(id) {
                Some(price) => ResponseTemplate::new(200).set_body_json(price),
                None => ResponseTemplate::new(404)
                    .set_body_json(serde_json::json!({"error": {"message": "no such price"}})),
            }
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .and(query_param("status", "canceled"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("canceled-subscriptions.json")))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn the_invoices_rebuild_every_hand_calculated_day() {
    let server = stripe().await;
    let source = StripeSource::new(&server.uri(), "sk_test_x".into(), Currency::EUR, FxRates::new()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let history = source.invoice_history(d("2026-01-01"), deadline).await.unwrap();
    let rebuilt =
        reconstruct(&history, d("2026-01-01"), d("2026-06-30"), Currency::EUR, &FxRates::new()).unwrap();

    let expected = fixture("expected.json");
    let days: BTreeMap<NaiveDate, String> = expected["days"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (d(k), v.as_str().unwrap().to_string()))
        .collect();
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
