//! The Stripe client against a fixture server (wiremock on 127.0.0.1) answering with
//! recorded Stripe-shaped responses (`fixtures/stripe/`, API version 2026-07-29.dahlia):
//! the shapes localstripe cannot serve, the requests the client must make, and how it
//! retries and reports failures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::time::Duration;

use revscale_aws::lambda::with_causes;
use revscale_aws::stripe::{RetryPolicy, STRIPE_VERSION, StripeError, StripeSource};
use revscale_engine::Currency;
use revscale_engine::money::FxRates;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "sk_test_fixtures";

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/stripe/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ok(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(fixture(name))
}

/// Only requests pinned to our version, with our key, match a route: anything else
/// gets wiremock's 404 and fails the collection.
fn stripe(route: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(route))
        .and(header("stripe-version", STRIPE_VERSION))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
}

fn source(server: &MockServer) -> StripeSource {
    let mut s =
        StripeSource::new(&server.uri(), KEY.into(), Currency::EUR, FxRates::parse_list("KWD=3.0").unwrap())
            .expect("client");
    s.retry = RetryPolicy { attempts: 3, base: Duration::from_millis(5), cap: Duration::from_millis(50) };
    s
}

async fn dahlia_account() -> MockServer {
    let server = MockServer::start().await;
    let listing = |status: &str| {
        stripe("/v1/subscriptions")
            .and(query_param("status", status))
            .and(query_param("limit", "100"))
            .and(query_param("expand[]", "data.discounts.source.coupon"))
    };
    listing("active")
        .and(query_param_is_missing("starting_after"))
        .respond_with(ok("subscriptions_active_1.json"))
        .expect(1)
        .mount(&server)
        .await;
    listing("active")
        .and(query_param("starting_after", "sub_1Graduated"))
        .respond_with(ok("subscriptions_active_2.json"))
        .expect(1)
        .mount(&server)
        .await;
    listing("past_due").respond_with(ok("subscriptions_past_due.json")).expect(1).mount(&server).await;
    let items = |sub: &str| {
        stripe("/v1/subscription_items")
            .and(query_param("subscription", sub))
            .and(query_param("expand[]", "data.discounts.source.coupon"))
    };
    items("sub_1ManyItems").respond_with(ok("subscription_items_many.json")).expect(1).mount(&server).await;
    // Its item discount arrived as an id: the items are listed again, coupons expanded.
    items("sub_1Package").respond_with(ok("subscription_items_package.json")).expect(1).mount(&server).await;
    stripe("/v1/prices/price_Graduated")
        .and(query_param("expand[]", "tiers"))
        .and(query_param("expand[]", "currency_options"))
        .respond_with(ok("price_graduated.json"))
        .expect(1)
        .mount(&server)
        .await;
    // Every coupon that can count is fetched once, with its product limits.
    let coupon = |id: &str| {
        stripe(&format!("/v1/coupons/{id}"))
            .and(query_param("expand[]", "applies_to"))
            .and(query_param("expand[]", "currency_options"))
    };
    coupon("TENOFF").respond_with(ok("coupon_tenoff.json")).expect(1).mount(&server).await;
    coupon("QUARTER").respond_with(ok("coupon_quarter.json")).with_priority(5).mount(&server).await;
    server
}

#[tokio::test]
async fn a_dahlia_account_with_every_price_model_and_discount_shape_is_collected_exactly() {
    let server = dahlia_account().await;
    let report = source(&server).report().await.expect("collected");
    // By hand:
    //   seats     2 x 49.50 = 99.00, 25% off forever (coupon expanded under source)  74.25
    //   graduated 12 units: 5 x 10 + 20 flat, 5 x 8, 2 x 5 (tiers fetched)          120.00
    //   package   5,500 units at 10 per 1,000 rounded up = 6 x 10, minus 10 forever
    //             (item discount listed as an id: items listed again, coupon fetched) 50.00
    //   items     2 add-ons x 10, the second one past the embedded list              20.00
    //   KWD       12.345 KWD (12,345 fils) x 3.0 = 37.035                             37.04
    //   total                                                                        301.29
    let amounts: Vec<(&str, i64)> =
        report.subscriptions.iter().map(|s| (s.id.as_str(), s.amount.minor)).collect();
    assert_eq!(
        amounts,
        [
            ("sub_1SeatsDiscounted", 7_425),
            ("sub_1Graduated", 12_000),
            ("sub_1Package", 5_000),
            ("sub_1ManyItems", 2_000),
            ("sub_1Kuwait", 3_704)
        ]
    );
    assert_eq!(report.mrr.minor, 30_129);
    assert_eq!((report.subscriptions_counted, report.customers), (5, 4));
    // Every expectation (.expect(1)) is verified when the server drops: no status was
    // listed twice, and each tier and coupon was fetched once.
}

#[tokio::test]
async fn every_request_carries_the_pinned_version() {
    let server = dahlia_account().await;
    source(&server).mrr().await.expect("collected");
    let requests = server.received_requests().await.expect("recorded");
    // 3 listing pages, 2 item listings, 1 price, 2 coupons.
    assert_eq!(requests.len(), 8);
    for r in &requests {
        assert_eq!(
            r.headers.get("stripe-version").and_then(|v| v.to_str().ok()),
            Some(STRIPE_VERSION),
            "{}",
            r.url
        );
    }
}

fn listing_any() -> wiremock::MockBuilder {
    stripe("/v1/subscriptions")
}

fn empty_page() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(serde_json::json!({"object": "list", "data": [], "has_more": false}))
}

#[tokio::test]
async fn retry_after_is_honoured_and_the_collection_then_succeeds() {
    let server = MockServer::start().await;
    listing_any()
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1").set_body_json(
            serde_json::json!({"error": {"type": "rate_limit_error", "message": "Too many requests"}}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    listing_any().respond_with(empty_page()).mount(&server).await;
    let mut s = source(&server);
    s.retry.cap = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let summary = s.mrr().await.expect("collected after one retry");
    assert!(started.elapsed() >= Duration::from_secs(1), "waited as Stripe asked");
    assert_eq!(summary.mrr.minor, 0);
    // 429 once, then active and past_due.
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(3));
}

#[tokio::test]
async fn stripe_should_retry_false_is_obeyed_even_on_a_server_error() {
    let server = MockServer::start().await;
    listing_any()
        .respond_with(
            ResponseTemplate::new(500)
                .insert_header("stripe-should-retry", "false")
                .insert_header("request-id", "req_123")
                .set_body_json(
                    serde_json::json!({"error": {"type": "api_error", "message": "Something broke"}}),
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = source(&server).mrr().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Stripe answered 500 to GET /v1/subscriptions: Something broke (code api_error) [request req_123]"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn rate_limiting_on_every_attempt_gives_up_as_transient_with_stripes_words() {
    let server = MockServer::start().await;
    listing_any()
        .respond_with(ResponseTemplate::new(429).set_body_json(serde_json::json!({"error": {
            "type": "invalid_request_error", "code": "rate_limit", "message": "Request rate limit exceeded."}})))
        .expect(3)
        .mount(&server)
        .await;
    let err = source(&server).mrr().await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(
        with_causes(&err),
        "Stripe is rate-limiting or unavailable: gave up after 3 attempts: \
         Stripe answered 429 to GET /v1/subscriptions: Request rate limit exceeded. (code rate_limit)"
    );
}

#[tokio::test]
async fn a_refused_key_keeps_stripes_message() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({"error": {
            "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****ures"}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = source(&server).mrr().await.unwrap_err();
    assert!(err.is_unauthorised());
    assert_eq!(
        err.to_string(),
        "Stripe answered 401 to GET /v1/subscriptions: Invalid API Key provided: sk_test_****ures \
         (code invalid_request_error)"
    );
}

#[tokio::test]
async fn a_timeout_names_the_request_and_keeps_its_cause() {
    let server = MockServer::start().await;
    listing_any().respond_with(empty_page().set_delay(Duration::from_secs(5))).mount(&server).await;
    let mut s = StripeSource::with_timeout(
        &server.uri(),
        KEY.into(),
        Currency::EUR,
        FxRates::new(),
        Duration::from_millis(200),
    )
    .unwrap();
    s.retry = RetryPolicy { attempts: 2, base: Duration::from_millis(1), cap: Duration::from_millis(1) };
    let err = s.mrr().await.unwrap_err();
    assert!(matches!(err, StripeError::Network { attempts: 2, .. }), "{err:?}");
    assert!(err.is_transient());
    let text = with_causes(&err);
    assert!(text.starts_with("GET /v1/subscriptions timed out (attempt 2): error sending request"), "{text}");
    assert!(text.contains("timed out"), "{text}");
}

#[tokio::test]
async fn a_refused_connection_names_the_request_and_keeps_its_cause() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut s = StripeSource::new(&base, KEY.into(), Currency::EUR, FxRates::new()).unwrap();
    s.retry = RetryPolicy { attempts: 1, base: Duration::from_millis(1), cap: Duration::from_millis(1) };
    let err = s.mrr().await.unwrap_err();
    let text = with_causes(&err);
    assert!(
        text.starts_with("GET /v1/subscriptions could not connect (DNS, TCP or TLS) (attempt 1)"),
        "{text}"
    );
    assert!(text.contains("Connection refused"), "{text}");
}

#[tokio::test]
async fn a_malformed_page_names_the_endpoint_and_the_field() {
    let server = MockServer::start().await;
    listing_any()
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": 42, "has_more": false})),
        )
        .mount(&server)
        .await;
    let err = source(&server).mrr().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unexpected Stripe response: GET /v1/subscriptions: invalid type: integer `42`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_page_that_says_more_but_gives_no_way_on_is_an_error_not_a_short_list() {
    let server = MockServer::start().await;
    listing_any()
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": [], "has_more": true})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = source(&server).mrr().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unexpected Stripe response: GET /v1/subscriptions says it has more after the first page but gives no way on"
    );
}

#[tokio::test]
async fn a_server_that_ignores_starting_after_is_an_error_not_an_endless_read() {
    let server = MockServer::start().await;
    let mut page = fixture("subscriptions_past_due.json");
    page["has_more"] = true.into();
    listing_any().respond_with(ResponseTemplate::new(200).set_body_json(page)).expect(2).mount(&server).await;
    let err = source(&server).mrr().await.unwrap_err();
    assert!(err.to_string().ends_with("says it has more after sub_1Kuwait but gives no way on"), "{err}");
}

#[tokio::test]
async fn a_subscription_in_both_listings_counts_once() {
    let server = MockServer::start().await;
    // It turned past_due between the two listings.
    let page = fixture("subscriptions_past_due.json");
    let mut one = page.clone();
    one["data"] = serde_json::json!([page["data"][1].clone()]);
    listing_any().respond_with(ResponseTemplate::new(200).set_body_json(one)).expect(2).mount(&server).await;
    let report = source(&server).report().await.unwrap();
    assert_eq!((report.subscriptions_counted, report.mrr.minor), (1, 3_704));
}

#[tokio::test]
async fn a_deleted_coupon_still_counts_from_the_copy_in_its_discount() {
    let server = dahlia_account().await;
    stripe("/v1/coupons/QUARTER")
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({"error": {
            "type": "invalid_request_error", "code": "resource_missing", "message": "No such coupon: 'QUARTER'"}})))
        .with_priority(1)
        .mount(&server)
        .await;
    let report = source(&server).report().await.expect("collected");
    assert_eq!(report.mrr.minor, 30_129);
    let seats = &report.subscriptions[0].discounts[0];
    assert!(
        seats.terms.ends_with("(coupon could not be fetched: any product limit is unknown)"),
        "{}",
        seats.terms
    );
}

#[tokio::test]
async fn canceled_and_trialing_subscriptions_are_never_requested() {
    let server = dahlia_account().await;
    source(&server).mrr().await.unwrap();
    let requests: Vec<Request> = server.received_requests().await.unwrap();
    let statuses: Vec<String> = requests
        .iter()
        .filter(|r| r.url.path() == "/v1/subscriptions")
        .filter_map(|r| r.url.query_pairs().find(|(k, _)| k == "status").map(|(_, v)| v.into_owned()))
        .collect();
    assert_eq!(statuses, ["active", "active", "past_due"]);
}

#[tokio::test]
async fn a_retry_that_would_not_fit_in_the_budget_is_not_made() {
    let server = MockServer::start().await;
    listing_any()
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "5")
                .set_body_json(serde_json::json!({"error": {"message": "Too many requests"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut s = source(&server);
    s.retry = RetryPolicy { attempts: 4, base: Duration::from_millis(5), cap: Duration::from_secs(10) };
    s.budget = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let err = s.mrr().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up at once instead of sleeping past the budget"
    );
    assert!(err.is_transient());
    assert_eq!(
        with_causes(&err),
        "Stripe is rate-limiting or unavailable: gave up after 1 attempts: \
         Stripe answered 429 to GET /v1/subscriptions: Too many requests"
    );
}

#[tokio::test]
async fn a_slow_stripe_is_cut_off_at_the_budget_not_after_every_retry() {
    let server = MockServer::start().await;
    listing_any().respond_with(empty_page().set_delay(Duration::from_secs(10))).mount(&server).await;
    let mut s = source(&server);
    s.budget = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = s.mrr().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(err.is_transient(), "{err}");
}
