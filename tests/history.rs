//! `revscale history` and `revscale backtest` as an operator runs them: `fetch` from the
//! recorded Stripe invoices (served on 127.0.0.1) and Cost Explorer `DAILY` on moto;
//! `import` into a stack's table and `export` back, on moto; the backtest report
//! opened in a real headless Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::collections::BTreeMap;
use std::process::Output;

use chrono::{Days, NaiveDate, Utc};
use revscale_aws::dynamo::DynamoStore;
use revscale_engine::ports::{CostSnapshot, RevenueSnapshot, SnapshotStore};
use revscale_engine::{Currency, Money};
use revscale_integration_tests::*;
use revscale_test_support::stripe_history;
use serde_json::{Value, json};

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// `date -> (mrr, cost)` from a history CSV, header comments skipped.
fn rows(csv: &str) -> BTreeMap<NaiveDate, (String, String)> {
    csv.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("date,"))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (d(f[0]), (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

/// Cost Explorer `DAILY` results for January to June 2026, as moto will answer the
/// next request: USD 10.00 a day untagged, USD 90.00 more on each 1st (a monthly
/// charge), and USD 5.00 a day tagged as a managed component, which is left out.
async fn inject_daily_costs(tag_key: &str) {
    let mut results = Vec::new();
    for day in d("2026-01-01").iter_days().take_while(|x| *x <= d("2026-06-30")) {
        let untagged = if day.format("%d").to_string() == "01" { "100.00" } else { "10.00" };
        let group = |value: &str, amount: &str| json!({"Keys": [format!("{tag_key}${value}")], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}});
        results.push(json!({
            "TimePeriod": {"Start": day.to_string(), "End": (day + Days::new(1)).to_string()},
            "Total": {},
            "Groups": [group("", untagged), group("k8s_workers", "5.00")],
            "Estimated": false,
        }));
    }
    inject_cost_results(json!({"ResultsByTime": results, "DimensionValueAttributes": []})).await;
}

#[tokio::test]
async fn history_fetch_rebuilds_mrr_from_invoices_and_takes_daily_cost_from_cost_explorer() {
    let stripe = stripe_history::server().await;
    // moto answers a request it has seen before with the same result: a tag key of
    // this run's own keeps the request new.
    let tag_key = unique("revscale-component");
    inject_daily_costs(&tag_key).await;
    let out = std::env::temp_dir().join(format!("{}.csv", unique("history")));
    let o = revscale_command(&[
        "history",
        "fetch",
        "--months",
        "6",
        "--until",
        "2026-06-30",
        "--out",
        out.to_str().unwrap(),
        "--stripe-api-base",
        &stripe.uri(),
        "--fx",
        "USD=0.5",
        "--cost-tag-key",
        &tag_key,
    ])
    .env("STRIPE_API_KEY", "sk_test_fixture")
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(&out).unwrap();
    println!("{}", csv.lines().take(6).collect::<Vec<_>>().join("\n"));
    let rows = rows(&csv);
    assert_eq!(rows.len(), 181);

    // MRR: every day as calculated by hand from the invoices.
    let expected = stripe_history::expected_days();
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(day, mrr)| rows[day].0 != **mrr)
        .map(|(day, mrr)| format!("{day}: {} != {mrr}", rows[day].0))
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");

    // Cost, by hand: a 31-day month is 30 x 10 + 100 = USD 400 -> EUR 200.00 at 0.5;
    // February 27 x 10 + 100 = 370 -> 185.00; a 30-day month 390 -> 195.00. The tagged
    // USD 5.00 a day is not in it. Every day of a month carries the month's total.
    let by_hand = [
        ("2026-01", "200.00"),
        ("2026-02", "185.00"),
        ("2026-03", "200.00"),
        ("2026-04", "195.00"),
        ("2026-05", "200.00"),
        ("2026-06", "195.00"),
    ];
    for (month, cost) in by_hand {
        let days: Vec<_> = rows.iter().filter(|(day, _)| day.to_string().starts_with(month)).collect();
        assert!(days.iter().all(|(_, (_, c))| c == cost), "{month}: {days:?}");
    }

    // Provenance in the header comments: source, dates, counts, currency.
    assert!(csv.starts_with("# revscale history: 2026-01-01 to 2026-06-30, 181 days\n"), "{csv}");
    assert!(csv.contains("# currency: EUR\n"));
    assert!(csv.contains("2 proration lines"), "{csv}");
    assert!(csv.contains("DAILY, record types Credit,Refund left out"), "{csv}");
    assert!(csv.contains("(USD 905.00 over the window)"), "181 days x 5.00 tagged: {csv}");

    // The backtest reads it as it is.
    let html = std::env::temp_dir().join(format!("{}.html", unique("backtest")));
    let o = revscale_command(&["backtest", out.to_str().unwrap(), "--html", html.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("181 days replayed (2026-01-01 to 2026-06-30)"), "{}", text(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("2 proration lines"), "the provenance is in the report");
}

/// A stack shaped like the SAM template's as far as `history` reads it: its revenue
/// currency and schedule time zone, and its `TableName` output, naming a fresh table.
async fn stack_with_table(sdk: &aws_config::SdkConfig, currency: &str) -> (String, String) {
    use aws_sdk_cloudformation::types::Parameter;
    let table = table(sdk).await;
    let name = unique("rs").replace('-', "x");
    let template = json!({
        "Parameters": {"RevenueCurrency": {"Type": "String"}, "ScheduleTimezone": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"TableName": {"Value": table}},
    });
    let p = |k: &str, v: &str| Parameter::builder().parameter_key(k).parameter_value(v).build();
    aws_sdk_cloudformation::Client::new(sdk)
        .create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .parameters(p("RevenueCurrency", currency))
        // UTC: the collectors' day is the test's UTC date whatever the time of the run.
        .parameters(p("ScheduleTimezone", "UTC"))
        .send()
        .await
        .unwrap();
    (name, table)
}

fn counts(o: &Output) -> Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[tokio::test]
async fn history_import_never_overwrites_a_collected_day_and_export_gives_the_same_csv_back() {
    let sdk = sdk().await;
    let (stack, table) = stack_with_table(&sdk, "EUR").await;
    let today = Utc::now().date_naive();
    let first = today - Days::new(60);

    // 62 rows: 60 past days, today and tomorrow. MRR grows by a cent a day so that a
    // swapped or shifted day would show.
    let mut csv = String::from("# currency: EUR\ndate,mrr,cost\n");
    for (i, day) in first.iter_days().take(62).enumerate() {
        csv.push_str(&format!("{day},{}.{:02},{}.00\n", 500 + i / 100, i % 100, 100 + i % 7));
    }
    let file = std::env::temp_dir().join(format!("{}.csv", unique("import")));
    std::fs::write(&file, &csv).unwrap();

    // One day was collected before the import, with other figures.
    let collected_day = first + Days::new(10);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let eur = |minor| Money::from_minor(minor, Currency::EUR);
    store
        .put_revenue(&RevenueSnapshot {
            date: collected_day,
            mrr: eur(99_900),
            subscriptions_counted: 3,
            customers: 3,
            collected_at: Utc::now(),
        })
        .await
        .unwrap();
    store
        .put_cost(&CostSnapshot {
            date: collected_day,
            monthly_run_rate: eur(12_345),
            month_to_date: eur(4_000),
            previous_month: eur(11_000),
            per_component: BTreeMap::new(),
            estimated: true,
            forecast_used: true,
            fx_rate: "0.93".into(),
            requests: 2,
            collected_at: Utc::now(),
        })
        .await
        .unwrap();

    let import = |extra: &[&str]| {
        let mut args = vec!["history", "import", file.to_str().unwrap(), "--stack", &stack, "--json"];
        args.extend_from_slice(extra);
        counts(&revscale_command(&args).output().unwrap())
    };
    let dry = import(&["--dry-run"]);
    assert_eq!(
        dry,
        json!({"days_in_file": 62, "written": 59, "already_stored": 1, "not_yet_over": 2, "dry_run": true})
    );
    let stored = store.stored_days(first, today + Days::new(1)).await.unwrap();
    assert_eq!(stored.len(), 1, "a dry run writes nothing");

    let real = import(&[]);
    assert_eq!(
        real,
        json!({"days_in_file": 62, "written": 59, "already_stored": 1, "not_yet_over": 2, "dry_run": false})
    );
    let again = import(&[]);
    assert_eq!(again["written"], 0);
    assert_eq!(again["already_stored"], 60);
    report(&format!(
        "history import: 62 days in the file, {} written, {} already stored, {} today or later; again: {} written",
        real["written"], real["already_stored"], real["not_yet_over"], again["written"]
    ));

    // The evaluator reads imported days as collected ones: its windows are filled.
    let history = store.history(first, today).await.unwrap();
    assert_eq!(history.len(), 60);
    assert_eq!(history.get(first).unwrap().mrr, eur(50_000));
    assert_eq!(history.get(first + Days::new(1)).unwrap().cost, Some(eur(10_100)));

    // The collected day is as it was.
    let day = &store.stored_days(collected_day, collected_day).await.unwrap()[&collected_day];
    assert_eq!(day.revenue.as_ref().unwrap().mrr, eur(99_900));
    assert_eq!(day.cost.as_ref().unwrap().monthly_run_rate, eur(12_345));
    assert_eq!(day.imported_from, None);

    // Export: the same rows back, the collected day with its collected figures.
    let out = std::env::temp_dir().join(format!("{}.csv", unique("export")));
    let o = revscale_command(&["history", "export", "--stack", &stack, "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("60 days (1 collected, 59 imported); 0 incomplete days left out"),
        "{}",
        text(&o)
    );
    let exported = std::fs::read_to_string(&out).unwrap();
    assert!(exported.contains("# currency: EUR\n"), "{exported}");
    let mut want = rows(&csv);
    want.retain(|d, _| *d < today);
    want.insert(collected_day, ("999.00".into(), "123.45".into()));
    assert_eq!(rows(&exported), want);
    report(&format!(
        "history export: {} rows back, equal to the imported file's past days (the collected day kept)",
        want.len()
    ));

    // What was exported imports into another stack as the same days.
    let (other, _) = stack_with_table(&sdk, "EUR").await;
    let o = revscale_command(&["history", "import", out.to_str().unwrap(), "--stack", &other, "--json"])
        .output()
        .unwrap();
    assert_eq!(counts(&o)["written"], 60);
}

#[tokio::test]
async fn a_history_in_another_currency_than_the_file_or_the_stack_is_refused_before_anything_is_written() {
    let sdk = sdk().await;
    let (stack, table) = stack_with_table(&sdk, "EUR").await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let file = std::env::temp_dir().join(format!("{}.csv", unique("usd")));
    std::fs::write(&file, "# currency: USD\ndate,mrr,cost\n2026-01-01,100,10\n").unwrap();
    let o =
        revscale_command(&["history", "import", file.to_str().unwrap(), "--stack", &stack]).output().unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("the history is in USD and the configuration in EUR"), "{}", text(&o));
    assert!(store.stored_days(d("2025-01-01"), d("2027-01-01")).await.unwrap().is_empty());

    // A file with no currency line is read in the configuration's (EUR), which a stack
    // counting in USD refuses.
    let (usd_stack, usd_table) = stack_with_table(&sdk, "USD").await;
    std::fs::write(&file, "date,mrr,cost\n2026-01-01,100,10\n").unwrap();
    let o = revscale_command(&["history", "import", file.to_str().unwrap(), "--stack", &usd_stack])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("counts revenue in USD"), "{}", text(&o));
    let usd_store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &usd_table);
    assert!(usd_store.stored_days(d("2025-01-01"), d("2027-01-01")).await.unwrap().is_empty());
}

#[test]
fn history_fetch_refuses_a_day_not_over_yet() {
    let today = Utc::now().date_naive().to_string();
    let out = std::env::temp_dir().join(format!("{}.csv", unique("future")));
    let o = revscale_command(&["history", "fetch", "--until", &today, "--out", out.to_str().unwrap()])
        .env("STRIPE_API_KEY", "sk_test_unused")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("is not over yet"), "{}", text(&o));
    assert!(!out.exists());
}
