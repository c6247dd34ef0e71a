//! The simulator over the shipped scenarios, and its input checks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use revscale_engine::decision::{Event, Severity};
use revscale_engine::model::Cause;
use revscale_engine::model::ComponentState;
use revscale_simulator::{DayRecord, Scenario, ScenarioError, SimError, SimOptions, monthly, simulate};
use revscale_test_support::*;

fn run(csv: &str, options: &SimOptions) -> Vec<DayRecord> {
    let c = config();
    let scenario = Scenario::parse_csv(csv, &c).expect("scenario parses");
    simulate(&c, &scenario, options).expect("simulation runs")
}

fn level_on(days: &[DayRecord], date: &str) -> u8 {
    days.iter().find(|d| d.date == day(date)).map(|d| d.level).expect("day simulated")
}

fn events<'a>(days: &'a [DayRecord], type_name: &str) -> Vec<(&'a DayRecord, &'a Event)> {
    days.iter()
        .flat_map(|d| d.events.iter().map(move |e| (d, e)))
        .filter(|(_, e)| e.type_name() == type_name)
        .collect()
}

#[test]
fn steady_growth_climbs_one_level_at_a_time_to_level_4() {
    let days = run(include_str!("../../../events/scenarios/steady-growth.csv"), &SimOptions::default());
    let changes: Vec<(String, u8, u8)> = events(&days, "level_changed")
        .into_iter()
        .map(|(d, e)| match e {
            Event::LevelChanged { from, to, .. } => (d.date.to_string(), *from, *to),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            ("2026-04-30".into(), 0, 1),
            ("2026-07-31".into(), 1, 2),
            ("2026-12-31".into(), 2, 3),
            ("2027-07-30".into(), 3, 4),
        ]
    );
    let last = days.last().unwrap();
    assert!(last.components.values().all(|s| *s == ComponentState::Hot));
    assert_eq!(days.len(), 670, "from the first row to the last row plus one month");
}

#[test]
fn a_tenfold_spike_for_one_month_never_moves_the_level() {
    let days = run(include_str!("../../../events/scenarios/spike-10x.csv"), &SimOptions::default());
    // L1 once three months of daily MRR exist; the April spike changes nothing.
    let levels: std::collections::BTreeSet<u8> =
        days.iter().filter(|d| d.date >= day("2026-03-22")).map(|d| d.level).collect();
    assert_eq!(levels, [1].into());
}

#[test]
fn churn_after_level_3_drops_to_the_band_and_cools_components_down() {
    let days = run(include_str!("../../../events/scenarios/churn-after-level-3.csv"), &SimOptions::default());
    assert_eq!(level_on(&days, "2026-07-15"), 3);
    let drops: Vec<(String, u8, Cause)> = events(&days, "level_changed")
        .into_iter()
        .filter_map(|(d, e)| match e {
            Event::LevelChanged { to, cause, .. } if *cause == Cause::Churn => {
                Some((d.date.to_string(), *to, *cause))
            }
            _ => None,
        })
        .collect();
    assert_eq!(drops, vec![("2026-08-26".into(), 2, Cause::Churn), ("2026-09-11".into(), 1, Cause::Churn)]);
    let on =
        |date: &str, comp: &str| days.iter().find(|d| d.date == day(date)).unwrap().components[&id(comp)];
    assert_eq!(on("2026-08-26", "vault_ha"), ComponentState::Warm, "dropped components go WARM at once");
    assert_eq!(on("2026-09-24", "vault_ha"), ComponentState::Warm);
    assert_eq!(on("2026-09-25", "vault_ha"), ComponentState::Cold, "and COLD after the 30-day cool-down");
    assert_eq!(on("2026-12-01", "eks_control_plane"), ComponentState::Hot);
}

#[test]
fn a_cost_overrun_alerts_and_proposes_a_step_down_but_never_takes_one() {
    let days = run(include_str!("../../../events/scenarios/cost-overrun.csv"), &SimOptions::default());
    let alerts: Vec<(String, Severity)> = events(&days, "alert")
        .into_iter()
        .map(|(d, e)| match e {
            Event::Alert { severity, .. } => (d.date.to_string(), *severity),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        alerts,
        vec![("2026-05-15".into(), Severity::Warning), ("2026-06-01".into(), Severity::Critical)]
    );
    let proposals: Vec<String> =
        events(&days, "approval_required").iter().map(|(d, _)| d.date.to_string()).collect();
    // Proposed on the seventh day above 90%; a request nobody approved lapses after
    // `approval_expiry_days` (7) and is proposed afresh the day after, while it holds.
    assert_eq!(proposals, ["2026-06-07", "2026-06-15", "2026-06-23"]);
    assert!(
        !events(&days, "level_changed")
            .iter()
            .any(|(_, e)| matches!(e, Event::LevelChanged { cause: Cause::CostOverrun, .. })),
        "never stepped down on its own"
    );
    assert!(days.iter().filter(|d| d.date >= day("2026-03-22")).all(|d| d.level == 2));
}

#[test]
fn a_failing_component_is_rolled_back_three_times_then_the_breaker_opens_then_one_attempt_succeeds() {
    let days =
        run(include_str!("../../../events/scenarios/provisioning-failure.csv"), &SimOptions::default());
    let failed: Vec<String> =
        events(&days, "transition_failed").iter().map(|(d, _)| d.date.to_string()).collect();
    assert_eq!(failed, vec!["2026-03-22", "2026-03-23", "2026-03-24"]);
    assert_eq!(events(&days, "rollback").len(), 3);
    let opened: Vec<String> =
        events(&days, "breaker_opened").iter().map(|(d, _)| d.date.to_string()).collect();
    assert_eq!(opened, vec!["2026-03-24"]);
    assert_eq!(level_on(&days, "2026-03-26"), 0, "nothing starts while the breaker is open");
    assert_eq!(level_on(&days, "2026-03-27"), 2, "one attempt after the cool-down, which succeeds");
    for d in &days {
        assert!(d.components.values().all(|s| !s.is_transitional()), "{} left a component mid-way", d.date);
    }
}

#[test]
fn injected_failures_from_the_command_line_add_to_the_scenarios_own() {
    let csv = "date,mrr,cost\n2026-01-01,1000,50\n2026-05-01,1000,50\n";
    let failure = "eks_control_plane@2026-03-01".parse().unwrap();
    let days = run(csv, &SimOptions { failures: vec![failure], ..Default::default() });
    assert_eq!(events(&days, "transition_failed").len(), 1);
}

#[test]
fn auto_approve_lets_the_simulated_operator_approve_on_the_same_day() {
    let csv = "date,mrr,cost\n2026-01-01,1000,50\n2026-05-01,1000,50\n";
    let c = config_with(|v| set(v, &["mode"], "approval".into()));
    let scenario = Scenario::parse_csv(csv, &c).unwrap();
    let waiting = simulate(&c, &scenario, &SimOptions::default()).unwrap();
    assert_eq!(waiting.last().unwrap().level, 0);
    // Nobody approves: the request is renewed every eight days (it can be approved for
    // seven), and never acted on.
    let asked: Vec<chrono::NaiveDate> =
        events(&waiting, "approval_required").iter().map(|(d, _)| d.date).collect();
    assert!(asked.len() > 1, "{asked:?}");
    assert!(
        asked.windows(2).all(|w| (w[1] - w[0]).num_days() == i64::from(c.safety.approval_expiry_days) + 1),
        "{asked:?}"
    );
    let approved = simulate(&c, &scenario, &SimOptions { auto_approve: true, ..Default::default() }).unwrap();
    assert_eq!(approved.last().unwrap().level, 2);
}

#[test]
fn until_extends_or_shortens_the_simulation() {
    let csv = "date,mrr,cost\n2026-01-01,100,10\n";
    let days = run(csv, &SimOptions { until: Some(day("2026-01-10")), ..Default::default() });
    assert_eq!(days.len(), 10);
    let c = config();
    let s = Scenario::parse_csv(csv, &c).unwrap();
    let err =
        simulate(&c, &s, &SimOptions { until: Some(day("2025-01-01")), ..Default::default() }).unwrap_err();
    assert_eq!(err, SimError::UntilBeforeStart { until: day("2025-01-01"), first: day("2026-01-01") });
    let err = simulate(
        &c,
        &s,
        &SimOptions { failures: vec!["kafka@2026-01-01".parse().unwrap()], ..Default::default() },
    );
    assert!(matches!(err, Err(SimError::UnknownComponent(_))));
}

#[test]
fn bad_scenarios_are_refused_with_the_line_that_is_wrong() {
    let c = config();
    let cases = [
        (
            "date,mrr,cost\n2026-01-01,100,10\n2026-13-01,100,10\n",
            "line 3: '2026-13-01' is not a date (expected YYYY-MM-DD)",
        ),
        ("date,mrr,cost\n2026-01-01,-5,10\n", "line 2: mrr must not be negative (got -5)"),
        (
            "date,mrr,cost\n2026-01-01,100,ten\n",
            "line 2: cost: 'ten' is not an amount (expected a number such as 1234.56)",
        ),
        (
            "date,mrr,cost\n2026-02-01,100,10\n2026-01-01,100,10\n",
            "line 3: dates must increase: 2026-01-01 comes after 2026-02-01",
        ),
        ("date,mrr,cost\n2026-01-01,100\n", "line 2: expected 3 fields (date,mrr,cost), found 2"),
        (
            "day,mrr,cost\n2026-01-01,100,10\n",
            "the header must be 'date,mrr,cost' or 'date,mrr,cost,cash' (got 'day,mrr,cost')",
        ),
        ("date,mrr,cost,cash\n2026-01-01,100,10,-1\n", "line 2: cash must not be negative (got -1)"),
        (
            "date,mrr,cost,cash\n2026-01-01,100,10,1M\n",
            "line 2: cash: '1M' is not an amount (expected a number such as 1234.56)",
        ),
        (
            "date,mrr,cost,cash\n2026-01-01,100,10\n",
            "line 2: expected 4 fields (date,mrr,cost,cash), found 3",
        ),
        ("date,mrr,cost\n2026-01-01,100,10,5\n", "line 2: expected 3 fields (date,mrr,cost), found 4"),
        ("date,mrr,cost\n", "the scenario has no rows"),
        (
            "# inject-failure: nonsense\ndate,mrr,cost\n2026-01-01,1,1\n",
            "line 1: 'nonsense' is not COMPONENT@YYYY-MM-DD",
        ),
        (
            "# inject-failure: tee@soon\ndate,mrr,cost\n2026-01-01,1,1\n",
            "line 1: 'soon' is not a date (expected YYYY-MM-DD)",
        ),
    ];
    for (csv, expected) in cases {
        let err = Scenario::parse_csv(csv, &c).expect_err(csv);
        assert!(err.to_string().starts_with(expected), "{csv:?}: got '{err}', expected '{expected}'");
    }
    assert!(matches!(Scenario::parse_csv("", &c), Err(ScenarioError::Header(_)) | Err(ScenarioError::Empty)));
}

#[test]
fn the_month_table_shows_the_engines_three_month_mean_rounded_half_up() {
    let csv = "date,mrr,cost\n2026-01-01,2500,0\n2026-01-02,2800,0\n2026-01-03,3000,0\n";
    let days = run(csv, &SimOptions { until: Some(day("2026-01-03")), ..Default::default() });
    // (2,500 + 2,800 + 3,000) / 3 = 2,766.666..: EUR 2,766.67, not 2,766.66.
    assert_eq!(monthly(&days)[0].average_3m.to_string(), "EUR 2,766.67");
}

#[test]
fn the_month_table_lists_each_repeated_event_once_with_its_count() {
    let days =
        run(include_str!("../../../events/scenarios/provisioning-failure.csv"), &SimOptions::default());
    let rows = monthly(&days);
    let march = rows.iter().find(|r| r.month.to_string() == "2026-03").unwrap();
    let failed = march.changes.iter().find(|e| e.summary.contains("deploy failed")).expect("failure listed");
    assert_eq!(failed.days, 3);
    assert_eq!(failed.to_string(), "22 k8s_workers deploy failed (3 days)");
    assert_eq!(march.level, 2);
}

fn run_guarded(csv: &str) -> Vec<DayRecord> {
    let c = revscale_engine::Config::from_yaml(include_str!("../../../config/examples/runway.yaml")).unwrap();
    let scenario = Scenario::parse_csv(csv, &c).expect("scenario parses");
    simulate(&c, &scenario, &SimOptions::default()).expect("simulation runs")
}

#[test]
fn the_runway_guard_scenario_holds_level_3_until_the_round_that_the_cost_guard_would_allow() {
    let days = run_guarded(include_str!("../../../events/scenarios/runway-guard.csv"));
    // Without a runway section the same revenue climbs to L3 on December 31st.
    let free = run(include_str!("../../../events/scenarios/runway-guard.csv"), &SimOptions::default());
    assert_eq!(level_on(&free, "2026-12-31"), 3);
    // With it, L3 waits for the round of February 1st, held every day in between.
    assert_eq!(level_on(&days, "2026-12-31"), 2);
    assert_eq!(level_on(&days, "2027-01-31"), 2);
    assert_eq!(level_on(&days, "2027-02-01"), 3);
    let held: Vec<String> = events(&days, "runway_held").iter().map(|(d, _)| d.date.to_string()).collect();
    // From the pre-warming of December 24th (free WARM nodes, held all the same: the
    // runway is under the minimum) to the day before the round.
    assert_eq!(
        (held.first().map(String::as_str), held.last().map(String::as_str)),
        (Some("2026-12-24"), Some("2027-01-31"))
    );
    assert_eq!(held.len(), 39);
    // The alerts: a warning under 15 months, a critical one under 12, once each.
    let alerts: Vec<(String, Severity)> = events(&days, "runway_alert")
        .into_iter()
        .map(|(d, e)| match e {
            Event::RunwayAlert { severity, .. } => (d.date.to_string(), *severity),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(alerts, [("2026-07-13".into(), Severity::Warning), ("2026-10-24".into(), Severity::Critical)]);
    // Under the minimum, a step-down is proposed (for approval), never taken.
    let proposed = events(&days, "approval_required");
    assert!(!proposed.is_empty());
    assert!(days.iter().all(|d| d.level >= 2 || d.date < day("2026-07-31")), "never stepped down on its own");
    let day_of = |date: &str| days.iter().find(|d| d.date == day(date)).unwrap();
    assert_eq!(day_of("2026-10-24").runway.map(|m| m.to_string()), Some("11.9".into()));
    assert!(day_of("2027-02-01").runway.is_some_and(|m| !m.is_under(60)), "the round: over 60 months");
}

#[test]
fn a_scenario_without_cash_under_a_runway_guard_never_activates_anything() {
    let days = run_guarded(include_str!("../../../events/scenarios/steady-growth.csv"));
    assert!(days.iter().all(|d| d.level == 0), "no cash figure: the runway is unknown");
    assert!(
        events(&days, "runway_held").iter().any(|(_, e)| matches!(e, Event::RunwayHeld { after: None, .. }))
    );
}
