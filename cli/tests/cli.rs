//! The `revscale` binary as a user runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ is inside the repo").to_path_buf()
}

fn revscale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_revscale")).args(args).current_dir(repo()).output().expect("binary runs")
}

fn scratch(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("revscale-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write temp file");
    path
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn simulate_prints_a_month_by_month_table() {
    let o = revscale(&["simulate", "events/scenarios/steady-growth.csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let header = out.lines().next().expect("a header line");
    for column in ["month", "MRR", "3-mo avg", "cost", "ratio", "level", "changes", "alerts"] {
        assert!(header.contains(column), "header lacks {column}: {header}");
    }
    assert!(out.contains("2027-07") && out.contains("30 level 3 -> 4 (growth)"), "{out}");
    assert!(out.contains("final level L4"));
}

#[test]
fn simulate_jsonl_prints_one_object_per_day_with_the_documented_fields() {
    let csv = scratch("zero.csv", "date,mrr,cost\n2026-01-01,0,30\n2026-01-03,900,30\n");
    let o = revscale(&["simulate", csv.to_str().unwrap(), "--format", "jsonl", "--until", "2026-01-05"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let days: Vec<serde_json::Value> =
        stdout(&o).lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert_eq!(days.len(), 5);
    for day in &days {
        for key in ["date", "mrr", "cost", "ratio_pct", "level", "components", "events"] {
            assert!(day.get(key).is_some(), "{key} missing in {day}");
        }
    }
    assert_eq!(days[0]["ratio_pct"], serde_json::Value::Null, "no revenue, no ratio");
    assert_eq!(days[0]["mrr"], serde_json::json!(0.0));
    assert_eq!(days[0]["cost"], serde_json::json!(55.0), "EUR 30 plus ollama's EUR 25");
    assert_eq!(days[2]["mrr"], serde_json::json!(900.0));
    assert_eq!(days[0]["components"]["ollama"], "hot");
    assert_eq!(days[0]["components"]["tee"], "cold");
}

#[test]
fn simulate_json_is_the_jsonl_format_and_completions_name_the_commands() {
    let scenario = repo().join("events/scenarios/steady-growth.csv");
    let jsonl = revscale(&["simulate", scenario.to_str().unwrap(), "--format", "jsonl"]);
    let json = revscale(&["simulate", scenario.to_str().unwrap(), "--json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    assert_eq!(stdout(&json), stdout(&jsonl));
    let bash = revscale(&["completions", "bash"]);
    assert!(bash.status.success(), "{}", stderr(&bash));
    let operator_words: &[&str] =
        if cfg!(feature = "aws") { &["drain", "--profile", "--stack"] } else { &[] };
    for word in ["simulate", "completions"].iter().chain(operator_words) {
        assert!(stdout(&bash).contains(word), "bash completion lacks {word}");
    }
}

#[test]
fn simulate_jsonl_events_carry_their_type() {
    let o = revscale(&["simulate", "events/scenarios/provisioning-failure.csv", "--format", "jsonl"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let types: Vec<String> = stdout(&o)
        .lines()
        .flat_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["type"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for t in ["prewarm", "level_changed", "transition_failed", "rollback", "breaker_opened"] {
        assert!(types.iter().any(|x| x == t), "no {t} event in {types:?}");
    }
}

#[test]
fn simulate_draws_an_svg_chart() {
    let svg = std::env::temp_dir().join(format!("revscale-chart-{}.svg", std::process::id()));
    let o =
        revscale(&["simulate", "events/scenarios/churn-after-level-3.csv", "--svg", svg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&svg).expect("chart written");
    assert!(text.starts_with("<svg"));
    // The churn scenario starts on 2026-01-01: the axis is labelled at month starts, the
    // bands and the legend name the levels.
    for label in [
        "MRR",
        "total cost",
        "90% of MRR (cost guard)",
        "L3 scale from EUR 3,000",
        "L0 bootstrap in force",
        "Feb 2026",
    ] {
        assert!(text.contains(label), "chart lacks '{label}'");
    }
}

#[test]
fn bad_scenarios_fail_with_the_line_and_print_nothing_else() {
    for (csv, message) in [
        ("date,mrr,cost\n2026-01-01,100,10\n2026-01-xx,100,10\n", "line 3: '2026-01-xx' is not a date"),
        ("date,mrr,cost\n2026-01-01,100,-1\n", "line 2: cost must not be negative"),
        ("date,mrr,cost\n2026-01-01,1e,10\n", "line 2: mrr: '1e' is not an amount"),
        ("date,mrr,cost\n2026-02-01,100,10\n2026-01-01,100,10\n", "line 3: dates must increase"),
    ] {
        let path = scratch("bad.csv", csv);
        let o = revscale(&["simulate", path.to_str().unwrap(), "--format", "jsonl"]);
        assert!(!o.status.success(), "{csv:?} was accepted");
        assert!(stdout(&o).is_empty(), "half-printed output for {csv:?}");
        assert!(stderr(&o).contains(message), "{csv:?}: {}", stderr(&o));
    }
    let o = revscale(&["simulate", "no/such/file.csv"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cannot read no/such/file.csv"), "{}", stderr(&o));
}

#[test]
fn inject_failure_must_name_a_component_and_a_date() {
    let o = revscale(&["simulate", "events/scenarios/spike-10x.csv", "--inject-failure", "tee"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("'tee' is not COMPONENT@YYYY-MM-DD"), "{}", stderr(&o));
    let o = revscale(&["simulate", "events/scenarios/spike-10x.csv", "--inject-failure", "kafka@2026-02-01"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("'kafka', which is not a configured component"), "{}", stderr(&o));
}

#[test]
fn config_validate_accepts_the_shipped_config() {
    let o = revscale(&["config", "validate"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("valid (5 levels, 11 components, mode auto, currency EUR)"));
}

#[test]
fn config_validate_lists_every_problem_with_its_path_and_fails() {
    let shipped = std::fs::read_to_string(repo().join("config/revenue_thresholds.yaml")).unwrap();
    let broken = shipped
        .replace("revenue_range: { min: 800, max: 2999 }", "revenue_range: { min: 700, max: 2999 }")
        .replace("cost: { hot: 400, warm: 0 }", "cost: { hot: -400, warm: 0 }")
        // Written elsewhere: its manifests named where they are.
        .replace(
            "manifests_file: examples/",
            &format!("manifests_file: {}/", repo().join("config/examples").display()),
        );
    let path = scratch("broken.yaml", &broken);
    let o = revscale(&["config", "validate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("2 problem(s)"), "{out}");
    assert!(out.contains("levels.level_2_growth.revenue_range.min: band overlaps level_1_launch"), "{out}");
    assert!(out.contains("components.dat_iq.cost.hot: must not be negative"), "{out}");
}

#[test]
fn simulate_refuses_an_invalid_config() {
    let path = scratch("invalid.yaml", "currency: EUR\n");
    let o = revscale(&["simulate", "events/scenarios/spike-10x.csv", "--config", path.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stdout(&o).is_empty());
    assert!(stderr(&o).contains("invalid configuration"), "{}", stderr(&o));
}

#[test]
fn simulate_into_a_closed_pipe_stops_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_revscale"))
        .args(["simulate", concat!(env!("CARGO_MANIFEST_DIR"), "/../events/scenarios/steady-growth.csv")])
        .args(["--format", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    // Like `| head -1`: read one line (of ~670, far more than a pipe buffers), then close.
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("a line");
    assert!(first.starts_with('{'), "{first}");
    let out = child.wait_with_output().expect("exits");
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
