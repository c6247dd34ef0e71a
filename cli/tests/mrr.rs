//! `revscale mrr` against a canned Stripe answer.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

/// Answers every request with one page of subscriptions, and returns the base URL.
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
            let (status, body) = if authorised {
                ("200 OK", body)
            } else {
                ("401 Unauthorized", r#"{"error":{"message":"Invalid API Key provided"}}"#)
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
        serde_json::json!({"mrr": 189.0, "currency": "EUR", "subscriptions_counted": 2, "customers": 2})
    );
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
    assert!(String::from_utf8_lossy(&out.stderr).contains("Stripe answered 401: Invalid API Key provided"));
    let out = revscale(&base, "", &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("STRIPE_API_KEY is not set"));
}
