//! The recorded Stripe invoice history (`fixtures/stripe-history/`, described in its
//! README) and a server that answers as Stripe would: invoices filtered by `status`,
//! newest first, in two pages; the rest of one invoice's lines; prices by id; the
//! canceled subscriptions. Bound to 127.0.0.1 (wiremock's default).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::Value;
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/stripe-history");

pub fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The hand-calculated daily MRR (EUR, as decimal text), 2026-01-01 to 2026-06-30.
pub fn expected_days() -> BTreeMap<NaiveDate, String> {
    fixture("expected.json")["days"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.as_str().unwrap().to_string()))
        .collect()
}

fn query(request: &Request, key: &str) -> Option<String> {
    request.url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.to_string())
}

pub async fn server() -> MockServer {
    let server = MockServer::start().await;
    let pages = [fixture("page1.json"), fixture("page2.json")];
    let invoices = move |request: &Request| {
        let status = query(request, "status");
        let after = query(request, "starting_after");
        let mut page = if after.is_some() { pages[1].clone() } else { pages[0].clone() };
        let data: Vec<Value> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| status.as_deref().is_none_or(|s| i["status"] == s))
            .cloned()
            .collect();
        // A filtered first page with nothing on it ends the listing: a page that says
        // there is more must name an id to start after (the client checks this).
        if data.is_empty() {
            page["has_more"] = Value::Bool(false);
        }
        page["data"] = Value::Array(data);
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
        .and(path_regex("^/v1/prices/.+"))
        .respond_with(move |request: &Request| {
            let id = request.url.path().rsplit('/').next().unwrap_or_default();
            match prices.get(id) {
                Some(price) => ResponseTemplate::new(200).set_body_json(price),
                None => ResponseTemplate::new(404)
                    .set_body_json(serde_json::json!({"error": {"message": "No such price"}})),
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
