//! The collectors against localstripe (revenue) and moto (Cost Explorer, DynamoDB).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use revscale_aws::cost_explorer::CostExplorerSource;
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::metrics::RequestCounter;
use revscale_aws::stripe::StripeSource;
use revscale_engine::money::FxRates;
use revscale_engine::ports::SnapshotStore;
use revscale_engine::{Currency, Money};
use revscale_integration_tests::{
    inject_cost_results, report, scheduled, sdk, stripe_customer, stripe_url, table,
};
use revscale_test_support::day;
use serde_json::{Value, json};

async fn counted_store(sdk: &aws_config::SdkConfig) -> (DynamoStore, RequestCounter) {
    let counter = RequestCounter::default();
    let conf = aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(counter.clone()).build();
    (DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), table(sdk).await), counter)
}

// ---- Stripe -----------------------------------------------------------------------------

const KEY: &str = "sk_test_revscale";

async fn stripe(method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
    revscale_integration_tests::stripe(KEY, method, path, form).await
}

async fn customer_with_card(email: &str) -> String {
    stripe_customer(KEY, email).await
}

async fn plan(id: &str, amount: &str, currency: &str, interval: &str, count: &str) {
    stripe(
        reqwest::Method::POST,
        "/v1/plans",
        &[
            ("id", id),
            ("amount", amount),
            ("currency", currency),
            ("interval", interval),
            ("interval_count", count),
            ("product[name]", id),
        ],
    )
    .await;
}

/// A tiered plan (localstripe wants a flat amount on every tier): up to 5 units at
/// EUR 10 plus EUR 20 flat, up to 10 at EUR 8, then EUR 5.
async fn tiered_plan(id: &str, mode: &str) {
    let form = [
        ("id", id),
        ("currency", "eur"),
        ("interval", "month"),
        ("product[name]", id),
        ("billing_scheme", "tiered"),
        ("tiers_mode", mode),
        ("tiers[0][up_to]", "5"),
        ("tiers[0][unit_amount]", "1000"),
        ("tiers[0][flat_amount]", "2000"),
        ("tiers[1][up_to]", "10"),
        ("tiers[1][unit_amount]", "800"),
        ("tiers[1][flat_amount]", "0"),
        ("tiers[2][up_to]", "inf"),
        ("tiers[2][unit_amount]", "500"),
        ("tiers[2][flat_amount]", "0"),
    ];
    stripe(reqwest::Method::POST, "/v1/plans", &form).await;
}

async fn subscribe(customer: &str, plan: &str, quantity: &str) -> String {
    let form = [("customer", customer), ("items[0][plan]", plan), ("items[0][quantity]", quantity)];
    stripe(reqwest::Method::POST, "/v1/subscriptions", &form).await["id"].as_str().unwrap().to_string()
}

/// A subscription on a trial: localstripe reports it `trialing` or `incomplete`,
/// neither of which is revenue.
async fn trial(customer: &str, plan: &str) {
    let form = [("customer", customer), ("items[0][plan]", plan), ("trial_period_days", "14")];
    let sub = stripe(reqwest::Method::POST, "/v1/subscriptions", &form).await;
    let status = sub["status"].as_str().unwrap_or_default();
    assert!(status == "trialing" || status == "incomplete", "unexpected trial status {status}");
}

fn source(base: &str) -> StripeSource {
    StripeSource::new(base, KEY.into(), Currency::EUR, FxRates::parse_list("USD=0.90 KWD=3.0").unwrap())
        .unwrap()
}

/// One test, in order: localstripe is one shared account, so these steps must not
/// interleave with each other.
#[tokio::test]
async fn stripe_mrr_is_exact_to_the_cent_and_collected_once_a_day() {
    let flushed = reqwest::Client::new().delete(format!("{}/_config/data", stripe_url())).send().await;
    assert!(flushed.is_ok_and(|r| r.status().is_success()), "localstripe flush failed");

    plan("pro-monthly", "2500", "eur", "month", "1").await;
    plan("pro-yearly", "120000", "eur", "year", "1").await;
    plan("pro-quarterly", "29999", "eur", "month", "3").await;
    plan("us-monthly", "5000", "usd", "month", "1").await;
    plan("kw-monthly", "12345", "kwd", "month", "1").await;
    tiered_plan("api-graduated", "graduated").await;
    tiered_plan("api-volume", "volume").await;

    let (a, b, c, d, e) = (
        customer_with_card("a@example.com").await,
        customer_with_card("b@example.com").await,
        customer_with_card("c@example.com").await,
        customer_with_card("d@example.com").await,
        customer_with_card("e@example.com").await,
    );
    let (f, g) = (customer_with_card("f@example.com").await, customer_with_card("g@example.com").await);
    subscribe(&a, "pro-monthly", "3").await; // 75.00
    subscribe(&a, "pro-quarterly", "1").await; // 299.99 / 3 = 99.9966...
    subscribe(&b, "pro-yearly", "1").await; // 1,200 / 12 = 100.00
    subscribe(&c, "us-monthly", "1").await; // USD 50 x 0.90 = 45.00
    subscribe(&f, "api-graduated", "12").await; // 5 x 10 + 20 + 5 x 8 + 2 x 5 = 120.00
    subscribe(&f, "api-volume", "7").await; // 7 x 8 = 56.00
    subscribe(&g, "kw-monthly", "1").await; // KWD 12.345 x 3.0 = 37.035 -> 37.04
    // localstripe has no subscription discounts, prices or packages: those shapes are
    // served from recorded fixtures in shared/aws/tests/stripe_api.rs.
    trial(&d, "pro-monthly").await; // trialing: not counted
    let gone = subscribe(&e, "pro-monthly", "10").await; // canceled: not counted
    stripe(reqwest::Method::DELETE, &format!("/v1/subscriptions/{gone}"), &[]).await;

    let mut small_pages = source(&stripe_url());
    small_pages.page_size = 2;
    let summary = small_pages.mrr().await.expect("MRR");
    // 75 + 99.9966.. (-> 100.00) + 100 + 45 + 120 + 56 + 37.04 = EUR 533.04
    assert_eq!(summary.mrr, Money::from_minor(53_304, Currency::EUR));
    assert_eq!((summary.subscriptions_counted, summary.customers), (7, 5));
    report(&format!(
        "MRR from localstripe: {} over {} subscriptions, {} customers",
        summary.mrr, summary.subscriptions_counted, summary.customers
    ));

    // The collector writes one snapshot for the day; a replay changes nothing.
    let sdk = sdk().await;
    let (store, requests) = counted_store(&sdk).await;
    let deps = collect_revenue::handler::Deps { store: &store, stripe: source(&stripe_url()) };
    let event = || scheduled("rev-1", "2026-11-29T05:00:00Z");
    let first = collect_revenue::handler::handle(&deps, event()).await.expect("collected");
    assert_eq!((first["mrr"].as_str(), first["written"].as_bool()), (Some("533.04"), Some(true)));
    assert_eq!(requests.get(), 2, "one PutItem per collection, and one Query for the days it missed");
    let replay = collect_revenue::handler::handle(&deps, event()).await.expect("replayed");
    assert_eq!(replay["written"], false);
    let history = store.history(day("2026-11-29"), day("2026-11-29")).await.unwrap();
    let only = history.get(day("2026-11-29")).expect("a revenue day is a day of history");
    assert_eq!(
        (only.mrr, only.cost),
        (Money::from_minor(53_304, Currency::EUR), None),
        "no cost snapshot yet"
    );

    // Without a rate for USD the collection fails clearly instead of mixing currencies.
    let no_usd = StripeSource::new(&stripe_url(), KEY.into(), Currency::EUR, FxRates::new()).unwrap();
    let err = no_usd.mrr().await.unwrap_err().to_string();
    // Whichever foreign subscription comes first names its currency.
    assert!(
        ["USD", "KWD"]
            .map(|c| format!("no FX rate for {c} -> EUR: configure one (e.g. {c}=1.08)"))
            .contains(&err),
        "{err}"
    );
}

/// Serves one canned HTTP response per connection, for malformed upstream answers.
async fn canned_server(body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for _ in 0..8 {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_malformed_billing_response_is_a_clear_error_and_writes_no_snapshot() {
    let base = canned_server(r#"{"data": [{"id": 42, "status": "active"}], "has_more": false}"#).await;
    let sdk = sdk().await;
    let (store, requests) = counted_store(&sdk).await;
    let err = collect_revenue::handler::handle(
        &collect_revenue::handler::Deps { store: &store, stripe: source(&base) },
        scheduled("rev-bad", "2026-11-29T05:00:00Z"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "UpstreamData");
    assert!(
        err.to_string()
            .starts_with("unexpected Stripe response: GET /v1/subscriptions: invalid type: integer `42`"),
        "{err}"
    );
    assert!(err.to_string().contains("at data[0].id"), "{err}");
    assert_eq!(requests.get(), 0, "nothing was written");
}

// ---- Cost Explorer ------------------------------------------------------------------------

/// moto hands the same result again to a request with the same parameters, even
/// across test runs: a tag key unique to this run keeps each request new.
fn tag_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| revscale_integration_tests::unique("revscale-component"))
}

fn period(start: &str, end: &str, estimated: bool, groups: &[(&str, &str)]) -> Value {
    json!({
        "TimePeriod": {"Start": start, "End": end},
        "Total": {},
        "Groups": groups
            .iter()
            .map(|(component, a)| json!({"Keys": [format!("{}${component}", tag_key())], "Metrics": {"UnblendedCost": {"Amount": a, "Unit": "USD"}}}))
            .collect::<Vec<_>>(),
        "Estimated": estimated,
    })
}

fn cost_source(sdk: &aws_config::SdkConfig) -> CostExplorerSource {
    CostExplorerSource::new(
        sdk,
        "UnblendedCost",
        tag_key(),
        Currency::EUR,
        FxRates::parse_list("USD=0.93").unwrap(),
    )
}

/// moto serves injected Cost Explorer results from one queue: the tests that inject
/// take turns.
static MOTO_COST_EXPLORER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One test, in order: moto serves injected Cost Explorer results from one queue.
#[tokio::test]
async fn cost_explorer_results_become_one_snapshot_in_at_most_four_requests() {
    let _turn = MOTO_COST_EXPLORER.lock().await;
    let sdk = sdk().await;
    inject_cost_results(json!({
        "ResultsByTime": [
            period("2026-10-01", "2026-11-01", false, &[("", "310.0000004"), ("k8s_workers", "99.99")]),
            period("2026-11-01", "2026-11-29", true, &[("", "280.00"), ("k8s_workers", "93.24"), ("eks_control_plane", "67.76")]),
        ],
        "DimensionValueAttributes": [],
    }))
    .await;
    let (store, dynamo_requests) = counted_store(&sdk).await;
    let deps = collect_cost::handler::Deps { store: &store, source: cost_source(&sdk) };
    let out = collect_cost::handler::handle(&deps, scheduled("cost-1", "2026-11-29T05:00:00Z"))
        .await
        .expect("collected");

    // Month to date USD 441.00 over 28 days; moto has no forecast, so the run-rate is
    // 441 x 30 / 28 = USD 472.50 -> EUR 439.43 at 0.93.
    assert_eq!(out["month_to_date"], "410.13");
    assert_eq!(out["monthly_run_rate"], "439.43");
    assert_eq!(out["estimated"], true);
    assert_eq!(out["forecast_used"], false);
    assert_eq!(out["fx_rate"], "0.93");
    // GetCostAndUsage, then one attempt at GetCostForecast (which moto lacks).
    let ce = out["cost_explorer_requests"].as_u64().unwrap();
    assert_eq!(ce, 2, "Cost Explorer bills USD 0.01 per request");
    report(&format!(
        "daily run requests: Cost Explorer {ce} (GetCostAndUsage + GetCostForecast), DynamoDB {} (collect-cost)",
        dynamo_requests.get()
    ));

    let replay =
        collect_cost::handler::handle(&deps, scheduled("cost-1", "2026-11-29T05:00:00Z")).await.unwrap();
    assert_eq!(replay["written"], false);

    // The per-component actual costs are stored with the snapshot.
    let rev = revscale_engine::ports::RevenueSnapshot {
        date: day("2026-11-29"),
        mrr: Money::whole(1000, Currency::EUR),
        subscriptions_counted: 1,
        customers: 1,
        collected_at: "2026-11-29T05:00:00Z".parse().unwrap(),
    };
    store.put_revenue(&rev).await.unwrap();
    let history = store.history(day("2026-11-29"), day("2026-11-29")).await.unwrap();
    assert_eq!(history.get(day("2026-11-29")).unwrap().cost, Some(Money::from_minor(43_943, Currency::EUR)));

    // A malformed answer: a clear error, and no snapshot for that day.
    inject_cost_results(json!({
        "ResultsByTime": [period("2026-11-01", "2026-11-30", true, &[("", "lots")])],
        "DimensionValueAttributes": [],
    }))
    .await;
    let before = dynamo_requests.get();
    let err =
        collect_cost::handler::handle(&deps, scheduled("cost-2", "2026-11-30T05:00:00Z")).await.unwrap_err();
    assert_eq!(err.error_type(), "UpstreamData");
    assert_eq!(
        err.to_string(),
        "unexpected Cost Explorer response: UnblendedCost Amount 'lots' is not a number"
    );
    assert_eq!(dynamo_requests.get(), before, "nothing was written");
}

/// A stand-in for Cost Explorer's JSON protocol (moto has no GetCostForecast): answers
/// each operation, named by the `X-Amz-Target` header, with its canned body, and keeps
/// every (operation, request body) it received.
async fn cost_explorer_stand_in(
    answers: Vec<(&'static str, Value)>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            let mut wanted = None;
            while wanted.is_none_or(|total| request.len() < total) {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                if let (None, Some(end)) = (wanted, request.windows(4).position(|w| w == b"\r\n\r\n")) {
                    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    wanted = Some(end + 4 + length);
                }
            }
            let text = String::from_utf8_lossy(&request).to_string();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let operation = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("x-amz-target").then(|| value.trim().to_string())
                })
                .and_then(|t| t.rsplit('.').next().map(String::from))
                .unwrap_or_default();
            let answer = answers.iter().find(|(op, _)| *op == operation).map(|(_, v)| v.to_string());
            log.lock().unwrap().push((operation, body.to_string()));
            let (status, answer) = match answer {
                Some(a) => ("200 OK", a),
                None => (
                    "400 Bad Request",
                    r#"{"__type": "ValidationException", "message": "unexpected"}"#.into(),
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (url, seen)
}

#[tokio::test]
async fn with_a_forecast_the_month_is_month_to_date_plus_the_forecast_of_the_rest() {
    let usage = json!({
        "ResultsByTime": [
            period("2026-10-01", "2026-11-01", false, &[("k8s_workers", "90.00")]),
            period("2026-11-01", "2026-11-29", true, &[("k8s_workers", "100.00")]),
        ],
        "DimensionValueAttributes": [],
    });
    let forecast = json!({"Total": {"Amount": "10.00", "Unit": "USD"}, "ForecastResultsByTime": []});
    let (url, seen) =
        cost_explorer_stand_in(vec![("GetCostAndUsage", usage), ("GetCostForecast", forecast)]).await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await;
    let source = CostExplorerSource::new(
        &sdk,
        "UnblendedCost",
        tag_key(),
        Currency::EUR,
        FxRates::parse_list("USD=0.90").unwrap(),
    );

    let snapshot = source.snapshot("2026-11-29T05:00:00Z".parse().unwrap()).await.expect("snapshot");

    // USD 100 to date + USD 10 forecast for Nov 29-30 = USD 110 -> EUR 99.00 at 0.90
    // (the run-rate would have said 100 x 30 / 28 = USD 107.14).
    assert!(snapshot.forecast_used);
    assert_eq!(snapshot.monthly_run_rate, Money::whole(99, Currency::EUR));
    assert_eq!(snapshot.month_to_date, Money::whole(90, Currency::EUR));
    assert_eq!(snapshot.requests, 2);
    let seen = seen.lock().unwrap().clone();
    let operations: Vec<&str> = seen.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(operations, ["GetCostAndUsage", "GetCostForecast"]);
    // The forecast covers today up to the end of the month, in the forecast API's
    // spelling of the metric.
    let asked: Value = serde_json::from_str(&seen[1].1).unwrap();
    assert_eq!(asked["TimePeriod"], json!({"Start": "2026-11-29", "End": "2026-12-01"}));
    assert_eq!(asked["Metric"], "UNBLENDED_COST");
}

// ---- A day both collectors missed ---------------------------------------------------------

/// 2026-03-24 was collected; on 2026-03-25 neither collector ran (a whole day lost: the
/// queue gave up, or the schedules were off); on 2026-03-26 each collector collects its
/// day, then fills 2026-03-25 from its source: MRR rebuilt from the recorded Stripe
/// invoices (the ones `history fetch` is tested on), cost from Cost Explorer on moto.
#[tokio::test]
async fn a_day_both_collectors_missed_is_filled_by_the_next_days_runs_marked_and_read_back() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, ResponseTemplate};

    let _turn = MOTO_COST_EXPLORER.lock().await;
    let sdk = sdk().await;
    let (store, dynamo_requests) = counted_store(&sdk).await;
    let (collected, missed, today) = (day("2026-03-24"), day("2026-03-25"), day("2026-03-26"));

    // Stripe: the recorded invoices, and today's subscriptions (none left active: the
    // day's own figure is not what this test is about).
    let stripe = revscale_test_support::stripe_history::server().await;
    for status in ["active", "past_due"] {
        Mock::given(method("GET"))
            .and(path("/v1/subscriptions"))
            .and(query_param("status", status))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"object": "list", "data": [], "has_more": false})),
            )
            .mount(&stripe)
            .await;
    }
    // Cost Explorer, in the order the cost collector asks: today's month to date
    // (Feb 1 to Mar 26), then the missed day's (Feb 1 to Mar 25).
    inject_cost_results(json!({
        "ResultsByTime": [
            period("2026-02-01", "2026-03-01", false, &[("", "280.00")]),
            period("2026-03-01", "2026-03-26", true, &[("", "210.00"), ("k8s_workers", "40.00")]),
        ],
        "DimensionValueAttributes": [],
    }))
    .await;
    inject_cost_results(json!({
        "ResultsByTime": [
            period("2026-02-01", "2026-03-01", false, &[("", "280.00")]),
            period("2026-03-01", "2026-03-25", true, &[("", "200.00"), ("k8s_workers", "40.00")]),
        ],
        "DimensionValueAttributes": [],
    }))
    .await;

    // The day before the gap, as its collectors stored it.
    let revenue_before = revscale_engine::ports::RevenueSnapshot {
        date: collected,
        mrr: Money::whole(288, Currency::EUR),
        subscriptions_counted: 4,
        customers: 4,
        collected_at: "2026-03-24T05:00:00Z".parse().unwrap(),
    };
    let cost_before = revscale_engine::ports::CostSnapshot {
        date: collected,
        monthly_run_rate: Money::whole(300, Currency::EUR),
        month_to_date: Money::whole(200, Currency::EUR),
        previous_month: Money::whole(260, Currency::EUR),
        per_component: Default::default(),
        estimated: true,
        forecast_used: true,
        fx_rate: "0.93".into(),
        requests: 2,
        collected_at: "2026-03-24T05:00:00Z".parse().unwrap(),
    };
    store.put_revenue(&revenue_before).await.unwrap();
    store.put_cost(&cost_before).await.unwrap();

    let revenue = collect_revenue::handler::Deps { store: &store, stripe: source(&stripe.uri()) };
    let costs = collect_cost::handler::Deps { store: &store, source: cost_source(&sdk) };
    let at = "2026-03-26T05:00:00Z";
    let before = dynamo_requests.get();
    let rev = collect_revenue::handler::handle(&revenue, scheduled("rev-0326", at)).await.expect("revenue");
    assert_eq!((rev["date"].as_str(), rev["mrr"].as_str()), (Some("2026-03-26"), Some("0.00")), "{rev}");
    assert_eq!(rev["backfilled"], json!(["2026-03-25"]), "{rev}");
    assert_eq!(
        dynamo_requests.get() - before,
        3,
        "the day's PutItem, the look-back's Query, the missed day's PutItem"
    );
    let cost = collect_cost::handler::handle(&costs, scheduled("cost-0326", at)).await.expect("cost");
    assert_eq!(cost["backfilled"], json!(["2026-03-25"]), "{cost}");
    // Today's own snapshot: USD 250 over 25 days of March, no forecast on moto:
    // 250 x 31 / 25 = USD 310 -> EUR 288.30.
    assert_eq!(cost["monthly_run_rate"], "288.30", "{cost}");

    // What the evaluator reads: three days, the missed one filled and marked.
    let history = store.history(collected, today).await.unwrap();
    assert_eq!(history.len(), 3, "{history:?}");
    let filled = history.get(missed).unwrap();
    // The hand-calculated MRR of 2026-03-25 (expected.json): 98 + 100 + 30 + 60.
    assert_eq!(filled.mrr, Money::whole(288, Currency::EUR));
    // USD 240 over 24 days of March: 240 x 31 / 24 = USD 310 -> EUR 288.30.
    assert_eq!(filled.cost, Some(Money::from_minor(28_830, Currency::EUR)));
    let marks: Vec<_> = history.backfilled(collected, today).collect();
    assert_eq!(marks, [(missed, revscale_engine::history::Backfilled { revenue: true, cost: true })]);
    assert_eq!(
        revscale_engine::evaluation::late_collections(&history, today),
        [
            "2026-03-25 was collected late: revenue rebuilt from Stripe invoices, cost from Cost Explorer for that day"
        ]
    );
    // The collected day is as it was.
    let kept = history.get(collected).unwrap();
    assert_eq!((kept.mrr, kept.cost), (revenue_before.mrr, Some(cost_before.monthly_run_rate)));

    // The items carry where they came from, and what the collector would have counted.
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let item = |pk: &'static str| {
        dynamo
            .get_item()
            .table_name(store.table())
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("2026-03-25".into()))
            .send()
    };
    let rev_item = item("REVENUE").await.unwrap().item.expect("the missed day's revenue");
    let text = |i: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, k: &str| {
        i.get(k).and_then(|v| v.as_s().ok().or_else(|| v.as_n().ok())).cloned().unwrap_or_default()
    };
    assert_eq!(text(&rev_item, "backfilled_from"), "stripe-invoices");
    assert_eq!(
        (text(&rev_item, "subscriptions_counted"), text(&rev_item, "customers")),
        ("4".into(), "4".into())
    );
    let cost_item = item("COST").await.unwrap().item.expect("the missed day's cost");
    assert_eq!(text(&cost_item, "backfilled_from"), "cost-explorer");
    assert_eq!(
        cost_item.get("forecast_used").and_then(|v| v.as_bool().ok()),
        Some(&false),
        "no forecast of a past day"
    );
    assert!(!rev_item.contains_key("imported_from"));
    let today_item = dynamo
        .get_item()
        .table_name(store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("REVENUE".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("2026-03-26".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!today_item.contains_key("backfilled_from"), "a collected day carries no mark");

    // A replay of the day's runs fills nothing twice.
    let again = collect_revenue::handler::handle(&revenue, scheduled("rev-0326", at)).await.unwrap();
    assert_eq!((again["written"].as_bool(), again["backfilled"].clone()), (Some(false), json!([])));
    let again = collect_cost::handler::handle(&costs, scheduled("cost-0326", at)).await.unwrap();
    assert_eq!((again["written"].as_bool(), again["backfilled"].clone()), (Some(false), json!([])));
    report(&format!(
        "missed day 2026-03-25 filled on 2026-03-26: MRR {} from Stripe invoices, cost {} from Cost Explorer",
        filled.mrr,
        filled.cost.unwrap()
    ));
}

/// A missed day whose source fails is left for the next run: the day's own collection
/// stands.
#[tokio::test]
async fn a_backfill_that_stripe_refuses_does_not_fail_the_days_collection() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let sdk = sdk().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table(&sdk).await);
    let stripe = MockServer::start().await;
    for status in ["active", "past_due"] {
        Mock::given(method("GET"))
            .and(path("/v1/subscriptions"))
            .and(query_param("status", status))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [], "has_more": false})))
            .mount(&stripe)
            .await;
    }
    // No invoice endpoint: Stripe answers 404, as to a key without invoice access.
    let before = revscale_engine::ports::RevenueSnapshot {
        date: day("2026-03-24"),
        mrr: Money::whole(288, Currency::EUR),
        subscriptions_counted: 4,
        customers: 4,
        collected_at: "2026-03-24T05:00:00Z".parse().unwrap(),
    };
    store.put_revenue(&before).await.unwrap();
    let deps = collect_revenue::handler::Deps { store: &store, stripe: source(&stripe.uri()) };
    let out = collect_revenue::handler::handle(&deps, scheduled("rev-0326", "2026-03-26T05:00:00Z"))
        .await
        .expect("the day is collected whatever the backfill does");
    assert_eq!((out["written"].as_bool(), out["backfilled"].clone()), (Some(true), json!([])));
    let days = store
        .snapshot_days(revscale_engine::ports::SnapshotKind::Revenue, day("2026-03-24"), day("2026-03-26"))
        .await
        .unwrap();
    assert_eq!(
        days.into_iter().collect::<Vec<_>>(),
        [day("2026-03-24"), day("2026-03-26")],
        "the gap waits for the next run"
    );
}

// ---- Retries: Scheduler -> SQS -> collector ----------------------------------------------

fn template() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml")).unwrap()
}

/// The lines of one top-level resource of the template.
fn resource<'t>(template: &'t str, name: &str) -> Vec<&'t str> {
    let header = format!("  {name}:");
    let mut lines = template.lines().skip_while(|l| *l != header);
    let first = lines.next().unwrap_or_else(|| panic!("no resource {name} in the template"));
    std::iter::once(first)
        .chain(lines.take_while(|l| l.is_empty() || l.starts_with("    ") || l.trim_start().starts_with('#')))
        .collect()
}

/// A numeric property of a resource (`VisibilityTimeout: 360 # ...`).
fn number(lines: &[&str], key: &str) -> u64 {
    let line = lines.iter().find(|l| l.trim_start().starts_with(&format!("{key}:"))).unwrap();
    let value = line.split_once(':').unwrap().1.split('#').next().unwrap().trim();
    value.parse().unwrap_or_else(|_| panic!("{key}: {value}"))
}

/// The queue settings the retries rest on: (visibility timeout, receives).
fn retry_settings(queue: &str) -> (u64, u64) {
    let template = template();
    let lines = resource(&template, queue);
    (number(&lines, "VisibilityTimeout"), number(&lines, "maxReceiveCount"))
}

/// What each schedule sends is the sample in events/ (the same JSON once the Scheduler
/// fills in its context attributes), and the collectors' schedules send it to a queue
/// that receives a failed collection again for over an hour.
#[test]
fn the_schedules_send_the_sample_events_and_the_collectors_queues_retry_for_over_an_hour() {
    let template = template();
    for (schedule, function, target) in [
        ("CollectRevenueDaily", "collect-revenue", "CollectRevenueQueue"),
        ("CollectCostDaily", "collect-cost", "CollectCostQueue"),
        ("EvaluateDaily", "evaluate", "EvaluateFunction"),
    ] {
        let lines = resource(&template, schedule);
        assert!(
            lines.iter().any(|l| l.trim() == format!("Arn: !GetAtt {target}.Arn")),
            "{schedule} targets {target}"
        );
        let input = lines.iter().find_map(|l| l.trim().strip_prefix("Input: !Sub '")).unwrap();
        let input = input.strip_suffix('\'').unwrap();
        let sample: Value = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{}/../events/{function}/scheduled.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        let sent = input
            .replace("${AWS::AccountId}", sample["account"].as_str().unwrap())
            .replace("${AWS::Region}", sample["region"].as_str().unwrap())
            .replace("${ScheduleTimezone}", sample["detail"]["timezone"].as_str().unwrap())
            .replace("<aws.scheduler.execution-id>", sample["id"].as_str().unwrap())
            .replace("<aws.scheduler.scheduled-time>", sample["time"].as_str().unwrap())
            .replace("<aws.scheduler.schedule-arn>", sample["resources"][0].as_str().unwrap());
        let sent: Value = serde_json::from_str(&sent).unwrap_or_else(|e| panic!("{schedule}: {e}: {sent}"));
        assert_eq!(sent, sample, "{schedule} sends events/{function}/scheduled.json");
    }
    for queue in ["CollectRevenueQueue", "CollectCostQueue"] {
        let (visibility, receives) = retry_settings(queue);
        // The last receive comes (receives - 1) visibility timeouts after the first.
        assert!((receives - 1) * visibility >= 3600, "{queue}: {receives} receives every {visibility} s");
        // AWS: at least 6 times the function's timeout (60 s), or a throttled poll
        // could make a message visible again while its invocation still runs.
        assert!(visibility >= 6 * 60, "{queue}: {visibility} s");
        let lines = resource(&template, queue);
        assert!(lines.iter().any(|l| l.contains("deadLetterTargetArn: !GetAtt DailyDeadLetterQueue.Arn")));
    }
}

/// A 10-minute Stripe outage at 05:00: the collection fails with `Transient`, its
/// message comes back after each visibility timeout (played here on moto's SQS with the
/// template's settings, the wait itself skipped), and the day is collected once Stripe
/// answers again, long before the message would be dead-lettered.
#[tokio::test]
async fn a_ten_minute_stripe_outage_is_retried_by_the_queue_until_the_day_is_collected() {
    let sdk = sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (visibility, receives) = retry_settings("CollectRevenueQueue");
    let dlq = sqs
        .create_queue()
        .queue_name(revscale_integration_tests::unique("revscale-daily-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let queue = sqs
        .create_queue()
        .queue_name(revscale_integration_tests::unique("revscale-collect-revenue"))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, visibility.to_string())
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": receives}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    // What the schedule sends at 05:00 (Asia/Kolkata): the sample, for 2026-11-29.
    let input = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/collect-revenue/scheduled.json"
    ))
    .unwrap();
    sqs.send_message().queue_url(&queue).message_body(&input).send().await.unwrap();

    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table(&sdk).await);
    let down = collect_revenue::handler::Deps { store: &store, stripe: source("http://127.0.0.1:9") };
    let up = collect_revenue::handler::Deps { store: &store, stripe: source(&stripe_url()) };
    let outage = 600;
    let mut collected_at = None;
    for attempt in 1..=receives {
        let elapsed = (attempt - 1) * visibility;
        let received = sqs.receive_message().queue_url(&queue).send().await.unwrap();
        let message = received.messages.unwrap_or_default().pop().expect("the message is back");
        // The batch the event source mapping hands the function.
        let batch = json!({"Records": [{
            "messageId": message.message_id, "receiptHandle": message.receipt_handle,
            "body": message.body, "attributes": {}, "messageAttributes": {},
            "eventSource": "aws:sqs", "awsRegion": "eu-west-1",
        }]});
        let event = lambda_runtime::LambdaEvent::new(
            serde_json::from_value(batch).unwrap(),
            lambda_runtime::Context::default(),
        );
        let deps = if elapsed < outage { &down } else { &up };
        match collect_revenue::handler::handle(deps, event).await {
            Ok(out) => {
                assert_eq!(out["date"], "2026-11-29", "the schedule's local date: {out}");
                // The mapping deletes a message whose invocation succeeded.
                sqs.delete_message()
                    .queue_url(&queue)
                    .receipt_handle(message.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
                collected_at = Some(elapsed);
                break;
            }
            Err(e) => {
                assert!(elapsed < outage, "only the outage fails: {e}");
                assert_eq!(e.error_type(), "Transient", "{e}");
                // Its visibility timeout has passed: the message is visible again.
                sqs.change_message_visibility()
                    .queue_url(&queue)
                    .receipt_handle(message.receipt_handle.unwrap())
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    let collected_at = collected_at.expect("collected before the message ran out of receives");
    assert!(collected_at >= outage, "{collected_at}");
    report(&format!(
        "10-minute Stripe outage: collected {} min after the first attempt (receives every {} min, {receives} in all)",
        collected_at / 60,
        visibility / 60
    ));
    let history = store.history(day("2026-11-29"), day("2026-11-29")).await.unwrap();
    assert!(history.get(day("2026-11-29")).is_some(), "the day has its revenue snapshot");
    let dead = sqs.receive_message().queue_url(&dlq).send().await.unwrap().messages.unwrap_or_default();
    assert!(dead.is_empty(), "nothing was dead-lettered: {dead:?}");
}
