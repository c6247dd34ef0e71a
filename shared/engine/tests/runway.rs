//! The runway guard: an activation that would take the runway under the founders'
//! minimum is held, even when the 90% cost guard allows it; an unknown runway holds
//! every activation; an approved override passes and says what it costs; the runway
//! under its minimum proposes a step-down, never takes one; alerts fire once per
//! crossing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use revscale_engine::decision::{Event, Outcome, Severity};
use revscale_engine::model::{Cause, Mode};
use revscale_engine::runway::{CashBalance, RunwayMonths};
use revscale_engine::state::Override;
use revscale_engine::{Config, DEFAULT_CONFIG_YAML, History, SystemState};
use revscale_test_support::*;

/// The shipped levels with a runway section: 12 months minimum, EUR 10,000 a month of
/// fixed burn.
fn guarded() -> Config {
    config_with(|v| {
        let runway: serde_norway::Value =
            serde_norway::from_str("{ min_months: 12, monthly_fixed_burn: 10000 }").unwrap();
        set(v, &["runway"], runway);
    })
}

fn with_cash(mut state: SystemState, amount: i64, as_of: &str) -> SystemState {
    state.cash = Some(CashBalance {
        amount: eur(amount),
        as_of: day(as_of),
        set_by: "ada".into(),
        set_on: day(as_of),
    });
    state
}

/// L1 since January, MRR 900 for three months and a day, cost 50: L2 is eligible on
/// March 1st, and L2's components (k8s_workers 95 + hume_ai 65 a month) pass the
/// cost guard (210 of 810).
fn eligible_for_l2() -> History {
    let mut h = months(&[("2025-12", 900), ("2026-01", 900), ("2026-02", 900)], 50);
    fill(&mut h, "2026-03-01", "2026-03-01", 900, 50);
    h
}

fn held(d: &revscale_engine::Decision) -> Vec<&Event> {
    d.events.iter().filter(|e| matches!(e, Event::RunwayHeld { .. })).collect()
}

#[test]
fn the_runway_guard_holds_a_level_the_cost_guard_allows() {
    let h = eligible_for_l2();
    // Without the runway section, the same day climbs.
    let free = eval(&config(), &at_level(&config(), 1, "2026-01-01"), &h, "2026-03-01");
    assert_eq!((free.to_level, free.outcome), (2, Outcome::Execute), "{:?}", free.reasons);

    // Net burn 10,000 + 50 - 900 = 9,150 a month: 110,000 lasts 12.0 months; with L2's
    // 160 more, 9,310 a month, 11.8.
    let c = guarded();
    let s = with_cash(at_level(&c, 1, "2026-01-01"), 110_000, "2026-03-01");
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!((d.to_level, d.outcome), (1, Outcome::Hold), "{:?}", d.reasons);
    assert!(
        d.reasons.contains(
            &"L2 held by the runway guard: level 2 would shorten the runway from 12.0 to 11.8 months (minimum 12)"
                .to_string()
        ),
        "{:?}",
        d.reasons
    );
    assert_eq!(
        held(&d),
        [&Event::RunwayHeld {
            level: 2,
            before: Some(RunwayMonths::Tenths(120)),
            after: Some(RunwayMonths::Tenths(118)),
            min_months: 12,
            reason: "level 2 would shorten the runway from 12.0 to 11.8 months (minimum 12)".into(),
        }]
    );
    assert_eq!(d.figures.runway, Some(RunwayMonths::Tenths(120)));

    // With 2,000 more, the runway after L2 is 12.0: it climbs.
    let s = with_cash(at_level(&c, 1, "2026-01-01"), 112_000, "2026-03-01");
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!((d.to_level, d.outcome), (2, Outcome::Execute), "{:?}", d.reasons);
    assert!(held(&d).is_empty());
}

#[test]
fn todays_cash_is_the_figure_set_less_the_net_burn_of_the_days_since() {
    let c = guarded();
    let h = eligible_for_l2();
    // Set on February 1st at 120,000: 28 days at 9,150 a month (8,422.47) later it is
    // 111,577.53, which lasts 12.1 months, and 11.9 after L2: held.
    let s = with_cash(at_level(&c, 1, "2026-01-01"), 120_000, "2026-02-01");
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.to_level, 1, "{:?}", d.reasons);
    assert!(
        d.reasons.iter().any(|r| r.contains("would shorten the runway from 12.1 to 11.9 months")),
        "{:?}",
        d.reasons
    );
}

#[test]
fn without_a_cash_figure_or_with_one_older_than_ninety_days_no_activation_passes() {
    let c = guarded();
    let h = eligible_for_l2();
    let no_cash = eval(&c, &at_level(&c, 1, "2026-01-01"), &h, "2026-03-01");
    assert_eq!(no_cash.to_level, 1);
    assert!(
        no_cash.reasons.iter().any(|r| r.starts_with(
            "L2 held by the runway guard: the runway is unknown (no cash figure is set (revscale cash set"
        )),
        "{:?}",
        no_cash.reasons
    );
    assert!(matches!(held(&no_cash)[..], [Event::RunwayHeld { after: None, .. }]));
    assert_eq!(no_cash.figures.runway, None);

    // A million set 91 days before: the figure is too old to estimate from.
    let old = with_cash(at_level(&c, 1, "2026-01-01"), 1_000_000, "2025-11-30");
    let d = eval(&c, &old, &h, "2026-03-01");
    assert_eq!(d.to_level, 1);
    assert!(
        d.reasons.iter().any(|r| r.contains("the cash figure is 91 days old (as of 2025-11-30)")),
        "{:?}",
        d.reasons
    );
    // 89 days: known, and plenty.
    let recent = with_cash(at_level(&c, 1, "2026-01-01"), 1_000_000, "2025-12-02");
    assert_eq!(eval(&c, &recent, &h, "2026-03-01").to_level, 2);
}

#[test]
fn a_profitable_company_is_never_held_by_the_runway() {
    let c = config_with(|v| {
        set(v, &["runway"], serde_norway::from_str("{ min_months: 12, monthly_fixed_burn: 100 }").unwrap());
    });
    // 100 + 50 + 160 - 900 < 0: nothing burns, even with no cash at all.
    let s = with_cash(at_level(&c, 1, "2026-01-01"), 0, "2026-03-01");
    let d = eval(&c, &s, &eligible_for_l2(), "2026-03-01");
    assert_eq!((d.to_level, d.outcome), (2, Outcome::Execute), "{:?}", d.reasons);
    assert_eq!(d.figures.runway, Some(RunwayMonths::Unlimited));
}

#[test]
fn an_approved_override_passes_the_runway_guard_and_says_what_it_costs() {
    let c = guarded();
    let mut s = with_cash(at_level(&c, 1, "2026-01-01"), 110_000, "2026-03-01");
    s.overrides.push(Override {
        id: "o1".into(),
        level: 2,
        until: day("2026-03-31"),
        reason: "launch week".into(),
        requested_by: "arn:aws:sts::1:assumed-role/Admin/ada".into(),
        requested_on: day("2026-02-28"),
        approved_by: Some("arn:aws:sts::1:assumed-role/Admin/grace".into()),
        cancelled: false,
    });
    let d = eval(&c, &s, &eligible_for_l2(), "2026-03-01");
    assert_eq!((d.to_level, d.outcome, d.cause), (2, Outcome::Execute, Some(Cause::Override)));
    assert!(
        d.reasons.contains(
            &"override o1 passes the runway guard by its two-person approval: L2 would shorten the runway from 12.0 to 11.8 months (minimum 12)"
                .to_string()
        ),
        "{:?}",
        d.reasons
    );
}

/// L2 since January with its components HOT, MRR 900 and cost 210.
fn at_l2() -> (Config, History) {
    let c = guarded();
    let mut h = months(&[("2025-12", 900), ("2026-01", 900), ("2026-02", 900)], 210);
    fill(&mut h, "2026-03-01", "2026-03-31", 900, 210);
    (c, h)
}

#[test]
fn a_runway_under_its_minimum_proposes_a_step_down_and_never_takes_one() {
    let (c, h) = at_l2();
    // Net burn 10,000 + 210 - 900 = 9,310: 100,000 is 10.7 months. Back at L1 (160
    // less) it is 10.9: still under 12 at any lower level, so nothing is proposed.
    let s = with_cash(at_level(&c, 2, "2026-01-01"), 100_000, "2026-03-10");
    let d = eval(&c, &s, &h, "2026-03-10");
    assert_eq!((d.to_level, d.outcome), (2, Outcome::Hold), "{:?}", d.reasons);
    assert!(d.reasons.iter().any(|r| r.contains("the burn is not revscale's to cut")), "{:?}", d.reasons);

    // 111,000: 11.9 months at L2, 12.1 at L1: the step-down is proposed, in auto mode.
    let s = with_cash(at_level(&c, 2, "2026-01-01"), 111_000, "2026-03-10");
    assert_eq!(s.mode(&c), Mode::Auto);
    let d = eval(&c, &s, &h, "2026-03-10");
    assert_eq!((d.to_level, d.outcome, d.cause), (1, Outcome::AwaitingApproval, Some(Cause::Runway)));
    assert!(
        d.reasons.iter().any(|r| r.starts_with("runway: 11.9 months (cash EUR 111,000")
            && r.ends_with("stepping down to L1 (removing hume_ai, k8s_workers) would bring it to 12.1: proposed, never automatic")),
        "{:?}",
        d.reasons
    );
    assert!(
        d.reasons.contains(
            &"L2 -> L1 needs a human approval: a step-down for runway is never automatic".to_string()
        ),
        "{:?}",
        d.reasons
    );
    // Approved, it runs.
    let mut approved = d.state.clone();
    if let Some(p) = approved.pending_approval.as_mut() {
        p.approved_by = Some("arn:aws:sts::1:assumed-role/Admin/grace".into());
        p.approved_on = Some(day("2026-03-10"));
    }
    let d = eval(&c, &approved, &h, "2026-03-11");
    assert_eq!((d.to_level, d.outcome), (1, Outcome::Execute), "{:?}", d.reasons);
}

#[test]
fn runway_alerts_fire_once_per_crossing_warning_three_months_above_the_minimum_critical_under_it() {
    let c = guarded();
    // 10,000 + 50 - 900 = 9,150 a month. Cash set on March 1st at 137,400 (15.0
    // months): at a steady burn the runway loses a month a month, so it slides under
    // 15 on March 2nd. On April 10th the cost jumps to 1,500 a month: 10,600 of net
    // burn on about 125,000 left is under 12 at once.
    let mut h = months(&[("2025-12", 900), ("2026-01", 900), ("2026-02", 900)], 50);
    fill(&mut h, "2026-03-01", "2026-04-09", 900, 50);
    fill(&mut h, "2026-04-10", "2026-05-20", 900, 1_500);
    let s = with_cash(at_level(&c, 1, "2026-01-01"), 137_400, "2026-03-01");
    let mut fired = Vec::new();
    let mut date = day("2026-03-01");
    while date <= day("2026-05-20") {
        let d = eval(&c, &s, &h, &date.to_string());
        for e in &d.events {
            if let Event::RunwayAlert { severity, months, .. } = e {
                fired.push((date.to_string(), *severity, *months));
            }
        }
        date = date.succ_opt().unwrap();
    }
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert_eq!(fired[0], ("2026-03-02".to_string(), Severity::Warning, RunwayMonths::Tenths(149)));
    assert_eq!((fired[1].0.as_str(), fired[1].1), ("2026-04-10", Severity::Critical));
    assert!(fired[1].2.is_under(12), "{fired:?}");
}

#[test]
fn a_cash_figure_warns_once_when_stale_and_once_when_too_old_to_use() {
    let c = guarded();
    let mut h = History::new();
    fill(&mut h, "2026-01-01", "2026-06-30", 900, 50);
    let s = with_cash(at_level(&c, 1, "2026-01-01"), 1_000_000, "2026-02-01");
    let mut fired = Vec::new();
    let mut date = day("2026-02-01");
    while date <= day("2026-06-30") {
        for e in eval(&c, &s, &h, &date.to_string()).events {
            if let Event::CashStale { severity, age_days, .. } = e {
                fired.push((date.to_string(), severity, age_days));
            }
        }
        date = date.succ_opt().unwrap();
    }
    assert_eq!(
        fired,
        [
            ("2026-03-18".to_string(), Severity::Warning, 45),
            ("2026-05-03".to_string(), Severity::Critical, 91)
        ]
    );
}

#[test]
fn pre_warming_is_held_by_the_runway_too() {
    // L1, MRR 900 since mid-January: L2's two-month window completes within the
    // pre-warm days, so its components go COLD -> WARM. The shipped WARM costs are 0,
    // which nothing holds: k8s_workers costs 40 WARM here.
    let c = config_with(|v| {
        set(v, &["runway"], serde_norway::from_str("{ min_months: 12, monthly_fixed_burn: 10000 }").unwrap());
        set(v, &["components", "k8s_workers", "cost", "warm"], 40.into());
    });
    let mut h = months(&[("2025-12", 900)], 50);
    fill(&mut h, "2026-01-01", "2026-01-10", 500, 50);
    fill(&mut h, "2026-01-11", "2026-03-05", 900, 50);
    let today = "2026-03-05";
    let rich = with_cash(at_level(&c, 1, "2026-01-01"), 1_000_000, today);
    let d = eval(&c, &rich, &h, today);
    assert!(d.events.iter().any(|e| matches!(e, Event::Prewarm { level: 2, .. })), "{:?}", d.reasons);
    // 110,000 / 9,150 = 12.0; with 40 more WARM, 11.9.
    let tight = with_cash(at_level(&c, 1, "2026-01-01"), 110_000, today);
    let d = eval(&c, &tight, &h, today);
    assert!(!d.events.iter().any(|e| matches!(e, Event::Prewarm { .. })), "{:?}", d.reasons);
    assert!(
        d.reasons.contains(&"pre-warming L2 held by the runway guard: pre-warming L2 would shorten the runway from 12.0 to 11.9 months (minimum 12)".to_string()),
        "{:?}",
        d.reasons
    );
    assert!(matches!(held(&d)[..], [Event::RunwayHeld { level: 2, .. }]));
}

#[test]
fn a_configuration_without_a_runway_section_decides_with_the_same_ids_as_before() {
    // The fingerprint leaves an absent runway out: the ids of every shipped scenario
    // stay what they were.
    let c = config();
    assert!(c.runway.is_none());
    assert!(!serde_json::to_string(&c).unwrap().contains("runway"));
}

#[test]
fn a_runway_section_is_checked_with_its_key_paths() {
    let text = revscale_engine::DEFAULT_CONFIG_YAML.to_string()
        + "\nrunway: { min_months: 0, monthly_fixed_burn: -5 }\n";
    let err = Config::from_yaml(&text).unwrap_err().to_string();
    assert!(err.contains("runway.min_months: must be at least 1"), "{err}");
    assert!(err.contains("runway.monthly_fixed_burn: must not be negative"), "{err}");
    let text = revscale_engine::DEFAULT_CONFIG_YAML.to_string()
        + "\nrunway: { min_months: 121, monthly_fixed_burn: 5, burn: 3 }\n";
    let err = Config::from_yaml(&text).unwrap_err().to_string();
    assert!(err.contains("burn"), "an unknown key is refused: {err}");
}

#[test]
fn runway_and_stale_cash_alerts_are_mailed_with_the_figures_and_the_fix() {
    let c = guarded();
    // Critical on the day it falls under 12: 120,000 lasts 13.1 months at 9,150 a
    // month the day before, 11.3 at 10,600 once the cost jumps to 1,500.
    let mut h = months(&[("2025-12", 900), ("2026-01", 900), ("2026-02", 900)], 50);
    fill(&mut h, "2026-03-01", "2026-03-01", 900, 50);
    fill(&mut h, "2026-03-02", "2026-03-02", 900, 1_500);
    let s = with_cash(at_level(&c, 1, "2026-01-01"), 120_000, "2026-03-02");
    let d = eval(&c, &s, &h, "2026-03-02");
    let mails = revscale_engine::evaluation::alerts_for(&d);
    let runway = mails.iter().find(|m| m.subject.contains("runway")).expect("a runway e-mail");
    assert_eq!(runway.subject, "revscale CRITICAL: runway 11.3 months");
    assert!(runway.message.contains("EUR 120,000 at a net burn of EUR 10,600 a month"), "{}", runway.message);
    assert!(runway.message.contains("(the minimum is 12)"), "{}", runway.message);

    let stale = with_cash(at_level(&c, 1, "2026-01-01"), 1_000_000, "2026-01-15");
    let d = eval(&c, &stale, &h, "2026-03-01");
    let mails = revscale_engine::evaluation::alerts_for(&d);
    assert!(
        mails.iter().any(|m| m.subject == "revscale WARNING: the cash figure is 45 days old"
            && m.message.contains("revscale cash set --amount N --as-of DATE --stack S")),
        "{:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
}

#[test]
fn an_activation_on_a_runway_already_under_the_minimum_is_held_naming_what_it_adds() {
    let c = guarded();
    // 100,000 / 9,150 = 10.9 months: already under 12 before L2's 160 a month.
    let s = with_cash(at_level(&c, 1, "2026-01-01"), 100_000, "2026-03-01");
    let d = eval(&c, &s, &eligible_for_l2(), "2026-03-01");
    assert_eq!(d.to_level, 1);
    assert!(
        d.reasons.contains(
            &"L2 held by the runway guard: the runway is 10.9 months, under the minimum 12: level 2 waits until it is back over it (it would add EUR 160 a month, leaving 10.7)"
                .to_string()
        ),
        "{:?}",
        d.reasons
    );
}

#[test]
fn the_runway_example_is_the_shipped_configuration_plus_a_runway_section_and_nothing_else() {
    let example = include_str!("../../../config/examples/runway.yaml");
    // Its manifests are named from its own directory (config/examples/).
    let shipped_from_examples =
        DEFAULT_CONFIG_YAML.replace("manifests_file: examples/manifests/", "manifests_file: manifests/");
    assert!(example.contains(&shipped_from_examples), "the shipped file, unchanged, inside the example");
    let guarded = Config::from_yaml(example).unwrap();
    let shipped = config();
    assert_eq!(
        guarded.runway,
        Some(revscale_engine::runway::RunwayConfig { min_months: 12, monthly_fixed_burn: eur(50_000) })
    );
    // The same components, but for where each names its manifests from.
    let without_file_names = |c: Config| {
        let c = c.without_file_names();
        (c.levels, c.components)
    };
    assert_eq!(without_file_names(guarded), without_file_names(shipped));
}

#[test]
fn a_cash_figure_in_another_currency_negative_in_the_future_or_too_old_is_refused() {
    let c = guarded();
    let mut s = at_level(&c, 1, "2026-01-01");
    let today = day("2026-12-05");
    let usd = revscale_engine::Money::whole(1_000, revscale_engine::Currency::USD);
    let refused = |s: &mut SystemState, amount, as_of: &str| {
        s.set_cash(&c, amount, day(as_of), "ada", today).unwrap_err().to_string()
    };
    assert!(refused(&mut s, usd, "2026-12-01").starts_with("cash is in USD, the configuration in EUR"));
    assert!(refused(&mut s, eur(-1), "2026-12-01").contains("is negative"));
    assert!(refused(&mut s, eur(1), "2026-12-06").contains("is in the future (today is 2026-12-05)"));
    assert!(refused(&mut s, eur(1), "2026-09-05").contains("more than 90 days before today"));
    assert!(s.cash.is_none(), "nothing stored");
    s.set_cash(&c, eur(420_000), day("2026-09-06"), "ada", today).unwrap();
    assert_eq!(s.cash.as_ref().map(|c| (c.amount, c.set_on)), Some((eur(420_000), today)));
}
