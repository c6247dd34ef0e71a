//! `revscale mrr` against a canned Stripe answer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

/// Answers each listing with the subscriptions of the status it asks for (as Stripe
/// filters server-side), and returns the base URL.
fn fake_stripe(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let authorised = request.to_ascii_lowercase().contains("authorization: bearer sk_test_cli");
            let pinned = request.to_ascii_lowercase().contains("stripe-version: 2026-07-29.dahlia");
            let (status, body) = if authorised && pinned {
                ("200 OK", filtered(body, &request))
            } else {
                ("401 Unauthorized", r#"{"error":{"message":"Invalid API Key provided"}}"#.to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    format!("http://{addr}")
}

/// The page with only the subscriptions whose status the request line asks for.
fn filtered(body: &str, request: &str) -> String {
    let line = request.lines().next().unwrap_or_default();
    let wanted =
        line.split(['?', '&', ' ']).find_map(|p| p.strip_prefix("status=")).unwrap_or("all").to_string();
    let mut page: serde_json::Value = serde_json::from_str(body).expect("page");
    page["data"].as_array_mut().expect("data").retain(|s| wanted == "all" || s["status"] == wanted.as_str());
    page.to_string()
}

const PAGE: &str = r#"{"has_more": false, "data": [
  {"id": "sub_1", "status": "active", "customer": "cus_1", "items": {"data": [
    {"quantity": 2, "price": {"id": "p1", "currency": "eur", "unit_amount": 4950, "recurring": {"interval": "month", "interval_count": 1}}}]}},
  {"id": "sub_2", "status": "past_due", "customer": "cus_2", "items": {"data": [
    {"quantity": 1, "plan": {"id": "yearly", "currency": "usd", "amount": 120000, "interval": "year", "interval_count": 1}}]}},
  {"id": "sub_3", "status": "canceled", "customer": "cus_3", "items": {"data": [
    {"quantity": 1, "price": {"id": "p1", "currency": "eur", "unit_amount": 4950, "recurring": {"interval": "month", "interval_count": 1}}}]}}
]}"#;

fn revscale(base: &str, key: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_revscale"))
        .args(["mrr", "--stripe-api-base", base])
        .args(extra)
        .env("STRIPE_API_KEY", key)
        .env_remove("FX_RATES")
        .output()
        .expect("binary runs")
}

#[test]
fn mrr_prints_the_collectors_figure_as_json() {
    let base = fake_stripe(PAGE);
    let out = revscale(&base, "sk_test_cli", &["--fx", "USD=0.90", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // 2 x 49.50 + 1,200 / 12 x 0.90 = 99 + 90 = 189
    assert_eq!(
        v,
        serde_json::json!({"mrr": "189.00", "currency": "EUR", "subscriptions_counted": 2, "customers": 2,
                           "stripe_version": "2026-07-29.dahlia"})
    );
}

#[test]
fn mrr_explain_shows_each_subscriptions_contribution() {
    let base = fake_stripe(PAGE);
    let out = revscale(&base, "sk_test_cli", &["--fx", "USD=0.90", "--explain"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "sub_1  customer cus_1  active  -> EUR 99");
    assert!(
        lines[1].contains("p1") && lines[1].contains("qty 2") && lines[1].contains("per unit: 49.5 x 2"),
        "{text}"
    );
    assert!(lines[1].ends_with("EUR 99.00/month"), "{text}");
    assert_eq!(lines[2], "sub_2  customer cus_2  past_due  -> EUR 90");
    assert!(lines[3].contains("per year") && lines[3].ends_with("USD 100.00/month"), "{text}");
    assert_eq!(lines.last(), Some(&"MRR EUR 189 (2 subscription(s) counted, 2 customer(s))"));
    assert!(!text.contains("sub_3"), "a canceled subscription is not listed: {text}");
}

#[test]
fn mrr_explain_json_carries_every_subscription() {
    let base = fake_stripe(PAGE);
    let out = revscale(&base, "sk_test_cli", &["--fx", "USD=0.90", "--explain", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let subs = v["subscriptions"].as_array().expect("subscriptions");
    let ids: Vec<&str> = subs.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, ["sub_1", "sub_2"]);
    assert_eq!(subs[1]["currency"], "USD");
    assert_eq!(subs[1]["monthly"], "100");
    assert_eq!(subs[1]["amount"], serde_json::json!({"minor": 9_000, "currency": "EUR"}));
    assert_eq!(subs[1]["items"][0]["interval"], "year");
}

#[test]
fn mrr_without_a_rate_for_a_currency_fails_clearly() {
    let base = fake_stripe(PAGE);
    let out = revscale(&base, "sk_test_cli", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no FX rate for USD -> EUR"));
}

#[test]
fn mrr_reports_a_rejected_key_and_a_missing_one() {
    let base = fake_stripe(PAGE);
    let out = revscale(&base, "sk_wrong", &["--fx", "USD=0.9"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Stripe answered 401 to GET /v1/subscriptions: Invalid API Key provided"),
        "{stderr}"
    );
    let out = revscale(&base, "", &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("STRIPE_API_KEY is not set"));
}
