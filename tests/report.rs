//! The backtest report in a real browser: `revscale backtest` over a shipped scenario,
//! then headless Chromium (Debian's package, driven by the pinned puppeteer-core in
//! tests/browser/) opens the file and checks that it renders, that the chart and the
//! tables are there, that nothing was loaded from the network and nothing was logged
//! as an error; it saves a full-page screenshot in target/backtest-report/.
//! tests/run.sh installs Chromium (apt-get, or says how) and the checker (`npm ci`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::path::PathBuf;
use std::process::Command;

use revscale_integration_tests::{report, revscale_command};

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn the_backtest_report_of_a_shipped_scenario_renders_in_headless_chromium() {
    let dir = repo().join("target/backtest-report");
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("steady-growth.html");
    let shot = dir.join("steady-growth.png");
    let _ = std::fs::remove_file(&shot);
    let o = revscale_command(&[
        "backtest",
        "events/scenarios/steady-growth.csv",
        "--html",
        html.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let checker = repo().join("tests/browser/check-report.mjs");
    assert!(
        repo().join("tests/browser/node_modules/puppeteer-core").exists(),
        "the checker is not installed: npm ci --prefix tests/browser (tests/run.sh does it)"
    );
    let o = Command::new("node")
        .arg(&checker)
        .arg(&html)
        .arg(&shot)
        // The shipped configuration's levels, as the chart names them on their bands.
        .env("LEVEL_NAMES", "L0 bootstrap,L1 launch,L2 growth,L3 scale,L4 enterprise")
        .output()
        .expect("node runs (Chromium: apt-get install chromium, or set CHROMIUM)");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // steady-growth.csv runs from 2026-01 to 2027-10: 22 months, each in both tables.
    assert_eq!(summary["monthlyRows"], 22, "{summary}");
    assert_eq!(summary["addedCostRows"], 22, "{summary}");
    assert!(summary["decisionRows"].as_u64().unwrap() >= 22, "{summary}");
    assert!(summary["monthLabels"].as_u64().unwrap() >= 10, "month starts on the axis: {summary}");
    assert_eq!(summary["consoleErrors"], 0);
    assert_eq!(summary["networkRequests"], 0);
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot with something in it");
    report(&format!("backtest report screenshot: {} ({summary})", shot.canonicalize().unwrap().display()));
}

#[test]
fn the_forecast_page_renders_in_headless_chromium_with_its_fan_chart_and_tables() {
    let dir = repo().join("target/forecast-report");
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("steady-growth.html");
    let shot = dir.join("steady-growth.png");
    let _ = std::fs::remove_file(&shot);
    let o = revscale_command(&[
        "forecast",
        "events/scenarios/steady-growth.csv",
        "--runs",
        "50",
        "--months",
        "12",
        "--html",
        html.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("node")
        .arg(repo().join("tests/browser/check-report.mjs"))
        .arg(&html)
        .arg(&shot)
        .env("LEVEL_NAMES", "L1 launch,L2 growth,L3 scale,L4 enterprise")
        .env("TABLES", "months")
        .output()
        .expect("node runs (Chromium: apt-get install chromium, or set CHROMIUM)");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["tableRows"]["months"], 12, "{summary}");
    assert!(summary["monthLabels"].as_u64().unwrap() >= 2, "months on the fan chart's axis: {summary}");
    assert_eq!((summary["consoleErrors"].as_u64(), summary["networkRequests"].as_u64()), (Some(0), Some(0)));
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot with something in it");
    report(&format!("forecast page screenshot: {} ({summary})", shot.canonicalize().unwrap().display()));
}
