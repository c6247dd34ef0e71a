//! ADR-017's rules, one test (or a few) per rule, named after what they guarantee.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use revscale_engine::decision::{Event, Outcome, Severity};
use revscale_engine::model::Cause;
use revscale_engine::model::{ComponentState, Mode, TransitionKind};
use revscale_engine::provisioning::run::record_failure;
use revscale_engine::state::{ComponentRecord, Drain, Override, PendingApproval};
use revscale_engine::{History, Money, Ratio, Transition};
use revscale_test_support::*;

fn transitions(d: &revscale_engine::Decision) -> Vec<(String, TransitionKind)> {
    d.transitions.iter().map(|t| (t.component.to_string(), t.kind)).collect()
}

// ---- Debounce and eligibility -------------------------------------------------------

#[test]
fn a_level_needs_every_day_of_its_window_at_or_above_its_minimum() {
    let c = config();
    let s = at_level(&c, 1, "2026-01-01");
    let mut h = months(&[("2025-12", 900), ("2026-01", 900), ("2026-02", 900)], 50);
    fill(&mut h, "2026-03-01", "2026-03-01", 900, 50);
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!((d.from_level, d.to_level, d.outcome), (1, 2, Outcome::Execute));
    assert_eq!(d.cause, Some(Cause::Growth));

    // One day below EUR 800 on January 20th restarts the count: the 2-month window
    // (January 1st, March 1st] has 59 days, and 40 have passed since.
    fill(&mut h, "2026-01-20", "2026-01-20", 700, 50);
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.to_level, 1);
    assert!(
        d.reasons.contains(
            &"level 2 needs MRR >= EUR 800 on every day of the last 2 months: 40 of the 59 days needed"
                .to_string()
        ),
        "{:?}",
        d.reasons
    );
}

#[test]
fn reasons_say_what_the_next_level_still_needs_in_plain_words() {
    let c = config();
    let s0 = at_level(&c, 0, "2026-01-01");
    let mut h = months(&[("2026-08", 300), ("2026-09", 300)], 50);
    fill(&mut h, "2026-10-01", "2026-10-12", 300, 50);
    let d = eval(&c, &s0, &h, "2026-10-12");
    assert_eq!(
        d.reasons,
        vec![
            "level 1 needs MRR >= EUR 450 on every day of the last month: 0 of the 30 days needed"
                .to_string(),
            "level 1 needs 3 months of daily MRR with 90% of days recorded: 73 of 92".to_string(),
            "level 1 needs today's MRR >= EUR 450; it is EUR 300".to_string(),
        ]
    );
}

#[test]
fn a_ten_fold_spike_across_a_month_end_never_upgrades() {
    // ADR-017's worry, as an operator met it: a spike from March 20th to April 5th.
    let c = config();
    let s = at_level(&c, 0, "2025-12-01");
    let mut h = months(&[("2025-12", 300), ("2026-01", 300), ("2026-02", 300)], 30);
    fill(&mut h, "2026-03-01", "2026-03-19", 300, 30);
    fill(&mut h, "2026-03-20", "2026-04-05", 3_000, 30);
    fill(&mut h, "2026-04-06", "2026-05-31", 300, 30);
    let mut date = day("2026-03-20");
    while date <= day("2026-05-31") {
        let d = eval(&c, &s, &h, &date.to_string());
        assert_eq!(d.to_level, 0, "{date}: {:?}", d.reasons);
        date = date.succ_opt().unwrap();
    }
}

#[test]
fn a_two_day_blip_on_a_months_last_and_first_day_never_upgrades() {
    let c = config();
    let s = at_level(&c, 1, "2025-11-01");
    let mut h = months(&[("2025-11", 600), ("2025-12", 600), ("2026-01", 600), ("2026-02", 600)], 60);
    fill(&mut h, "2026-01-31", "2026-02-01", 6_000, 60);
    fill(&mut h, "2026-03-01", "2026-03-31", 600, 60);
    for today in ["2026-01-31", "2026-02-01", "2026-02-28", "2026-03-01", "2026-03-31"] {
        assert_eq!(eval(&c, &s, &h, today).to_level, 1, "{today}");
    }
}

#[test]
fn one_missed_collection_even_on_a_months_last_day_does_not_void_the_window() {
    let c = config();
    let s = at_level(&c, 1, "2026-01-01");
    let mut h = History::new();
    fill(&mut h, "2025-12-01", "2026-02-27", 900, 50); // no snapshot on February 28th
    fill(&mut h, "2026-03-01", "2026-03-01", 900, 50);
    assert_eq!(eval(&c, &s, &h, "2026-03-01").to_level, 2);
}

#[test]
fn a_window_with_fewer_than_ninety_percent_of_its_days_is_not_enough() {
    let c = config();
    let s = at_level(&c, 1, "2026-01-01");
    let mut h = History::new();
    fill(&mut h, "2025-12-01", "2026-01-31", 900, 50);
    fill(&mut h, "2026-02-11", "2026-03-01", 900, 50); // ten days of silence
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.to_level, 1);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.ends_with("49 of the 59 days needed (10 without a snapshot; 90% must have one)")),
        "{:?}",
        d.reasons
    );
}

#[test]
fn a_day_with_revenue_and_no_cost_still_counts_for_the_window() {
    let c = config();
    let s = at_level(&c, 1, "2026-01-01");
    let mut h = History::new();
    fill(&mut h, "2025-12-01", "2026-03-01", 900, 50);
    for d in ["2026-01-10", "2026-02-14", "2026-02-28"] {
        h.insert(revscale_engine::DailySnapshot { date: day(d), mrr: eur(900), cost: None });
    }
    assert_eq!(eval(&c, &s, &h, "2026-03-01").to_level, 2);
    // But today's cost is needed: no activation without the cost guard.
    h.insert(revscale_engine::DailySnapshot { date: day("2026-03-01"), mrr: eur(900), cost: None });
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.to_level, 1);
    assert!(
        d.reasons
            .contains(&"no cost snapshot for 2026-03-01: no activation without the cost guard".to_string())
    );
}

#[test]
fn the_three_month_daily_average_must_reach_the_minimum() {
    let c = config();
    let s = at_level(&c, 0, "2025-12-01");
    let mut h = months(&[("2025-12", 100), ("2026-01", 100), ("2026-02", 500)], 20);
    fill(&mut h, "2026-03-01", "2026-03-01", 500, 20);
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.to_level, 0);
    // (30 x 100 + 31 x 100 + 28 x 500 + 500) / 90 = 228.888.., shown half up.
    assert!(
        d.reasons.contains(&"level 1 needs a 3-month daily average >= EUR 450; it is EUR 228.89".to_string()),
        "{:?}",
        d.reasons
    );
}

#[test]
fn a_new_installation_needs_three_months_of_daily_mrr() {
    let c = config();
    let s = at_level(&c, 0, "2026-01-01");
    let mut h = History::new();
    fill(&mut h, "2026-01-21", "2026-03-01", 5_000, 20);
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.to_level, 0);
    assert!(
        d.reasons
            .contains(&"level 1 needs 3 months of daily MRR with 90% of days recorded: 40 of 90".to_string()),
        "{:?}",
        d.reasons
    );
}

#[test]
fn todays_mrr_must_reach_the_minimum() {
    let c = config();
    let s = at_level(&c, 0, "2026-01-01");
    let mut h = months(&[("2025-12", 500), ("2026-01", 500), ("2026-02", 500)], 20);
    fill(&mut h, "2026-03-01", "2026-03-01", 400, 20);
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.to_level, 0);
    assert!(d.reasons.iter().any(|r| r.contains("today's MRR >= EUR 450; it is EUR 400")));
}

#[test]
fn spike_of_one_month_does_not_upgrade() {
    let c = config();
    let s = at_level(&c, 1, "2026-01-01");
    // One month at ten times the usual MRR, then back: neither during nor after.
    let mut h = months(&[("2026-01", 600), ("2026-02", 600), ("2026-03", 6000)], 60);
    for today in ["2026-03-15", "2026-03-31"] {
        assert_eq!(eval(&c, &s, &h, today).to_level, 1);
    }
    fill(&mut h, "2026-04-01", "2026-04-30", 600, 60);
    for today in ["2026-04-01", "2026-04-30"] {
        assert_eq!(eval(&c, &s, &h, today).to_level, 1);
    }
}

#[test]
fn the_target_is_the_highest_eligible_level_and_every_intermediate_component_is_activated_in_dependency_order()
 {
    let c = config();
    let s = at_level(&c, 0, "2025-12-01");
    let mut h = months(&[("2025-12", 4000), ("2026-01", 4000), ("2026-02", 4000)], 100);
    fill(&mut h, "2026-03-01", "2026-03-01", 4000, 100);
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.to_level, 3);
    use TransitionKind::{Activate, Deploy};
    let expected: Vec<(String, TransitionKind)> = [
        ("eks_control_plane", Deploy),
        ("eks_control_plane", Activate),
        ("hume_ai", Deploy),
        ("hume_ai", Activate),
        ("k8s_workers", Deploy),
        ("k8s_workers", Activate),
        ("dat_iq", Deploy),
        ("dat_iq", Activate),
        ("vault_nodes", Deploy),
        ("vault_nodes", Activate),
        ("vault_ha", Deploy),
        ("vault_ha", Activate),
    ]
    .into_iter()
    .map(|(c, k)| (c.to_string(), k))
    .collect();
    assert_eq!(transitions(&d), expected);
}

// ---- Cost guard ---------------------------------------------------------------------

#[test]
fn an_activation_is_blocked_when_projected_cost_exceeds_ninety_percent_of_reference_revenue() {
    let c = config();
    let s = at_level(&c, 1, "2026-01-01");
    let mut h = months(&[("2025-12", 1000), ("2026-01", 1000), ("2026-02", 1000)], 800);
    fill(&mut h, "2026-03-01", "2026-03-01", 1000, 800);
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.to_level, 1);
    let blocked = d.events.iter().find_map(|e| match e {
        Event::Blocked { level, projected_cost, limit, reference_revenue, .. } => {
            Some((*level, *projected_cost, *limit, *reference_revenue))
        }
        _ => None,
    });
    // EUR 800 today + EUR 160 for hume_ai and k8s_workers = EUR 960 > 90% of EUR 1,000.
    assert_eq!(blocked, Some((2, eur(960), eur(900), eur(1000))));

    let mut h = months(&[("2025-12", 1000), ("2026-01", 1000), ("2026-02", 1000)], 740);
    fill(&mut h, "2026-03-01", "2026-03-01", 1000, 740);
    assert_eq!(eval(&c, &s, &h, "2026-03-01").to_level, 2, "EUR 900 exactly is allowed");
}

#[test]
fn reference_revenue_is_the_lower_of_todays_mrr_and_the_three_month_average() {
    let c = config();
    let s = at_level(&c, 1, "2025-12-01");
    let mut h = months(&[("2025-12", 800), ("2026-01", 800), ("2026-02", 3000)], 1300);
    fill(&mut h, "2026-03-01", "2026-03-01", 3000, 1300);
    let d = eval(&c, &s, &h, "2026-03-01");
    // Daily average (61 x 800 + 29 x 3,000) / 90 = EUR 1,508.88.. (rounded down for
    // the limit) < MRR 3,000: the limit is 90% of the average.
    assert_eq!(d.to_level, 1);
    assert!(d.events.iter().any(
        |e| matches!(e, Event::Blocked { reference_revenue, .. } if reference_revenue.minor == 150_888)
    ));
}

#[test]
fn a_blocked_level_falls_back_to_the_highest_lower_level_that_passes() {
    let c = config();
    let s = at_level(&c, 0, "2025-12-01");
    let mut h = months(&[("2025-12", 3000), ("2026-01", 3000), ("2026-02", 3000)], 2300);
    fill(&mut h, "2026-03-01", "2026-03-01", 3000, 2300);
    let d = eval(&c, &s, &h, "2026-03-01");
    // L3 would cost 2300 + 703 = 3003 > 2700; L2 costs 2300 + 228 = 2528.
    assert_eq!(d.to_level, 2);
    let blocked: Vec<u8> = d
        .events
        .iter()
        .filter_map(|e| if let Event::Blocked { level, .. } = e { Some(*level) } else { None })
        .collect();
    assert_eq!(blocked, vec![3], "one blocked event, naming the level that was wanted");
}

#[test]
fn max_burn_is_compared_with_projected_cost_not_with_revenue() {
    // The original implementation compared each level's max burn with revenue, which
    // blocks every level (max burn is always above the band's revenue).
    let c = config();
    let s = at_level(&c, 1, "2026-01-01");
    let mut h = months(&[("2025-12", 1000), ("2026-01", 1000), ("2026-02", 1000)], 50);
    fill(&mut h, "2026-03-01", "2026-03-01", 1000, 50);
    assert_eq!(eval(&c, &s, &h, "2026-03-01").to_level, 2);
}

#[test]
fn an_activation_above_the_target_levels_max_burn_is_blocked() {
    let c = config_with(|v| set(v, &["levels", "level_2_growth", "max_burn"], 820.into()));
    let s = at_level(&c, 1, "2026-01-01");
    let mut h = months(&[("2025-12", 2000), ("2026-01", 2000), ("2026-02", 2000)], 700);
    fill(&mut h, "2026-03-01", "2026-03-01", 2000, 700);
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.to_level, 1);
    assert!(d.reasons.iter().any(|r| r.contains("exceeds L2's max burn EUR 820")), "{:?}", d.reasons);
}

#[test]
fn an_activation_above_the_automatic_cost_limit_is_blocked() {
    let c = config_with(|v| set(v, &["safety", "auto_activation_cost_limit"], 100.into()));
    let s = at_level(&c, 1, "2026-01-01");
    let mut h = months(&[("2025-12", 2000), ("2026-01", 2000), ("2026-02", 2000)], 50);
    fill(&mut h, "2026-03-01", "2026-03-01", 2000, 50);
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.to_level, 1);
    assert!(d.reasons.iter().any(|r| r.contains("automatic-activation limit EUR 100")), "{:?}", d.reasons);
}

#[test]
fn no_revenue_means_nothing_is_activated() {
    let c = config();
    let s = at_level(&c, 0, "2026-01-01");
    let mut h = months(&[("2026-01", 0), ("2026-02", 0), ("2026-03", 0)], 30);
    fill(&mut h, "2026-04-01", "2026-04-30", 0, 30);
    for today in ["2026-04-01", "2026-04-30"] {
        let d = eval(&c, &s, &h, today);
        assert_eq!((d.to_level, d.outcome), (0, Outcome::Hold));
        assert!(d.transitions.is_empty());
        assert_eq!(d.figures.ratio, None);
    }
}

// ---- Alerts -------------------------------------------------------------------------

#[test]
fn alerts_fire_once_when_crossed_and_rearm_below_the_threshold() {
    let c = config();
    let s = at_level(&c, 2, "2026-01-01");
    let mut h = History::new();
    let ratios = [70, 85, 86, 95, 85, 70, 85];
    let expected =
        [None, Some(Severity::Warning), None, Some(Severity::Critical), None, None, Some(Severity::Warning)];
    for (i, (ratio, want)) in ratios.iter().zip(expected).enumerate() {
        let today = format!("2026-05-{:02}", i + 1);
        fill(&mut h, &today, &today, 1000, ratio * 10);
        let d = eval(&c, &s, &h, &today);
        let alerts: Vec<Severity> = d
            .events
            .iter()
            .filter_map(|e| if let Event::Alert { severity, .. } = e { Some(*severity) } else { None })
            .collect();
        assert_eq!(alerts, want.into_iter().collect::<Vec<_>>(), "day {today} at {ratio}%");
    }
}

#[test]
fn an_alert_carries_the_figures() {
    let c = config();
    let s = at_level(&c, 2, "2026-01-01");
    let mut h = History::new();
    fill(&mut h, "2026-05-01", "2026-05-01", 1000, 812);
    let d = eval(&c, &s, &h, "2026-05-01");
    assert!(d.events.contains(&Event::Alert {
        severity: Severity::Warning,
        ratio: Ratio::from_basis_points(8120),
        threshold: Ratio::from_basis_points(8000),
        cost: eur(812),
        mrr: eur(1000),
    }));
}

// ---- Churn rollback and cost overrun ------------------------------------------------

fn churned(mrr_after: i64) -> (revscale_engine::Config, revscale_engine::SystemState, History) {
    let c = config();
    let s = at_level(&c, 2, "2026-01-01");
    let mut h = months(&[("2026-01", 1000), ("2026-02", 1000), ("2026-03", 1000)], 100);
    fill(&mut h, "2026-04-01", "2026-04-30", mrr_after, 100);
    (c, s, h)
}

#[test]
fn churn_drops_to_the_band_holding_mrr_after_the_grace_days() {
    let (c, s, h) = churned(700);
    // 700 < 800 x 0.9 = 720 from April 1st: days 1-6 are within the grace period.
    assert_eq!(eval(&c, &s, &h, "2026-04-06").to_level, 2);
    let d = eval(&c, &s, &h, "2026-04-07");
    assert_eq!((d.to_level, d.cause, d.outcome), (1, Some(Cause::Churn), Outcome::Execute));
    use TransitionKind::Deactivate;
    assert_eq!(transitions(&d), vec![("k8s_workers".into(), Deactivate), ("hume_ai".into(), Deactivate)]);
    assert!(d.reasons.iter().any(|r| r.starts_with("churn: MRR below EUR 720")), "{:?}", d.reasons);
}

#[test]
fn churn_drops_straight_to_the_band_that_holds_the_mrr() {
    let (c, _, h) = churned(100);
    let s3 = at_level(&c, 3, "2026-01-01");
    assert_eq!(eval(&c, &s3, &h, "2026-04-07").to_level, 0);
}

#[test]
fn churn_hysteresis_keeps_the_level_just_below_its_minimum() {
    let (c, s, h) = churned(750);
    assert_eq!(eval(&c, &s, &h, "2026-04-30").to_level, 2);
}

#[test]
fn churn_never_drops_below_the_configured_floor() {
    let c = config_with(|v| set(v, &["churn", "floor_level"], 2.into()));
    let (_, s, h) = churned(100);
    assert_eq!(eval(&c, &s, &h, "2026-04-30").to_level, 2);
    let c = config_with(|v| set(v, &["churn", "floor_level"], 1.into()));
    assert_eq!(eval(&c, &s, &h, "2026-04-30").to_level, 1);
}

#[test]
fn a_saw_tooth_below_the_churn_line_counts_as_churn_within_fourteen_days() {
    // Six days under the line, one over, repeated: never seven in a row.
    let c = config();
    let s = at_level(&c, 2, "2026-01-01");
    let mut h = months(&[("2026-01", 1000), ("2026-02", 1000), ("2026-03", 1000)], 100);
    for week in 0..4u64 {
        let start = day("2026-04-01") + chrono::Days::new(week * 7);
        fill(&mut h, &start.to_string(), &(start + chrono::Days::new(5)).to_string(), 700, 100);
        let over = start + chrono::Days::new(6);
        fill(&mut h, &over.to_string(), &over.to_string(), 1000, 100);
    }
    let first_churn = (0..28u64)
        .map(|i| day("2026-04-01") + chrono::Days::new(i))
        .find(|d| eval(&c, &s, &h, &d.to_string()).cause == Some(Cause::Churn));
    assert_eq!(first_churn, Some(day("2026-04-08")), "the seventh day under the line, within 14 days");
}

#[test]
fn a_dip_shorter_than_the_grace_days_never_drops_the_level() {
    let c = config();
    let s = at_level(&c, 2, "2026-01-01");
    let mut h = months(&[("2026-01", 1000), ("2026-02", 1000), ("2026-03", 1000)], 100);
    fill(&mut h, "2026-04-01", "2026-04-06", 100, 100);
    fill(&mut h, "2026-04-07", "2026-04-30", 1000, 100);
    for i in 0..30u64 {
        let today = (day("2026-04-01") + chrono::Days::new(i)).to_string();
        assert_eq!(eval(&c, &s, &h, &today).to_level, 2, "{today}");
    }
}

#[test]
fn a_missed_collection_does_not_hold_off_churn() {
    let c = config();
    let s = at_level(&c, 2, "2026-01-01");
    let mut h = months(&[("2026-03", 1000)], 100);
    fill(&mut h, "2026-04-01", "2026-04-03", 100, 100);
    fill(&mut h, "2026-04-05", "2026-04-08", 100, 100); // no snapshot on April 4th
    assert_eq!(eval(&c, &s, &h, "2026-04-08").cause, Some(Cause::Churn));
}

#[test]
fn a_cost_overrun_proposes_a_step_down_for_approval_and_never_takes_it_alone() {
    let c = config();
    let s = at_level(&c, 3, "2026-01-01");
    let mut h = months(&[("2026-01", 4000), ("2026-02", 4000), ("2026-03", 4000)], 500);
    fill(&mut h, "2026-04-01", "2026-04-30", 4000, 3700);
    assert_eq!(eval(&c, &s, &h, "2026-04-06").to_level, 3);
    let d = eval(&c, &s, &h, "2026-04-07");
    // Without L3's components (EUR 475) cost would be 80.6% of MRR, not under 80%;
    // without L2's as well (EUR 635) it is 76.6%: L1 is proposed, and only proposed.
    assert_eq!((d.to_level, d.cause, d.outcome), (1, Some(Cause::CostOverrun), Outcome::AwaitingApproval));
    assert!(
        d.reasons.iter().any(|r| r.contains(
            "removing hume_ai, k8s_workers, dat_iq, vault_nodes, vault_ha would bring it to EUR 3,065"
        )),
        "{:?}",
        d.reasons
    );
    for mode in [Mode::Auto, Mode::Approval] {
        let mut s = s.clone();
        s.mode = Some(mode);
        assert_ne!(eval(&c, &s, &h, "2026-04-07").outcome, Outcome::Execute, "{mode:?}");
    }
    // Only days after the level was reached count: a fresh level gets its grace period.
    let fresh = at_level(&c, 3, "2026-04-03");
    assert_eq!(eval(&c, &fresh, &h, "2026-04-07").cause, None);
    assert_eq!(eval(&c, &fresh, &h, "2026-04-10").cause, Some(Cause::CostOverrun));
}

#[test]
fn spend_that_revscale_does_not_manage_is_not_cut() {
    let c = config();
    let s = at_level(&c, 3, "2026-01-01");
    let mut h = months(&[("2026-01", 4000), ("2026-02", 4000), ("2026-03", 4000)], 500);
    fill(&mut h, "2026-04-01", "2026-04-30", 4000, 6000);
    let d = eval(&c, &s, &h, "2026-04-20");
    assert_eq!((d.to_level, d.outcome), (3, Outcome::Hold));
    assert!(d.reasons.iter().any(|r| r.ends_with("the spend is not revscale's to cut")), "{:?}", d.reasons);
}

#[test]
fn churn_wins_over_cost_overrun_when_it_goes_lower() {
    let c = config();
    let s = at_level(&c, 3, "2026-01-01");
    let mut h = months(&[("2026-03", 4000)], 500);
    fill(&mut h, "2026-04-01", "2026-04-30", 500, 3700);
    let d = eval(&c, &s, &h, "2026-04-07");
    assert_eq!((d.to_level, d.cause), (1, Some(Cause::Churn)));
}

#[test]
fn dropped_components_go_warm_at_once_and_cold_after_the_cooldown() {
    let c = config();
    let mut s = at_level(&c, 1, "2026-04-07");
    for comp in ["hume_ai", "k8s_workers"] {
        s.components.insert(id(comp), ComponentRecord::settled(ComponentState::Warm, day("2026-04-07")));
    }
    let mut h = months(&[("2026-03", 1000)], 100);
    fill(&mut h, "2026-04-01", "2026-05-31", 700, 100);
    let d = eval(&c, &s, &h, "2026-05-06");
    assert!(d.transitions.is_empty(), "29 days WARM: not yet");
    let d = eval(&c, &s, &h, "2026-05-07");
    use TransitionKind::Decommission;
    assert_eq!(transitions(&d), vec![("k8s_workers".into(), Decommission), ("hume_ai".into(), Decommission)]);
    assert!(d.events.iter().any(|e| matches!(e, Event::Cooldown { .. })));
    assert_eq!(d.to_level, 1);
}

#[test]
fn a_warm_component_waits_for_its_warm_dependents_before_going_cold() {
    let c = config();
    let mut s = at_level(&c, 0, "2026-01-01");
    s.components
        .insert(id("eks_control_plane"), ComponentRecord::settled(ComponentState::Warm, day("2026-01-01")));
    s.components.insert(id("k8s_workers"), ComponentRecord::settled(ComponentState::Warm, day("2026-03-01")));
    let mut h = History::new();
    fill(&mut h, "2026-03-10", "2026-03-10", 100, 10);
    let d = eval(&c, &s, &h, "2026-03-10");
    assert!(d.transitions.is_empty(), "the cluster still has a node group: {:?}", d.transitions);
    let mut h = History::new();
    fill(&mut h, "2026-04-10", "2026-04-10", 100, 10);
    let d = eval(&c, &s, &h, "2026-04-10");
    use TransitionKind::Decommission;
    assert_eq!(
        transitions(&d),
        vec![("k8s_workers".into(), Decommission), ("eks_control_plane".into(), Decommission)]
    );
}

#[test]
fn a_warm_component_is_reactivated_without_redeploying() {
    let c = config();
    let mut s = at_level(&c, 1, "2026-01-01");
    for comp in ["hume_ai", "k8s_workers"] {
        s.components.insert(id(comp), ComponentRecord::settled(ComponentState::Warm, day("2026-02-20")));
    }
    let mut h = months(&[("2025-12", 1000), ("2026-01", 1000), ("2026-02", 1000)], 50);
    fill(&mut h, "2026-03-01", "2026-03-01", 1000, 50);
    let d = eval(&c, &s, &h, "2026-03-01");
    use TransitionKind::Activate;
    assert_eq!(transitions(&d), vec![("hume_ai".into(), Activate), ("k8s_workers".into(), Activate)]);
}

// ---- Pre-warming --------------------------------------------------------------------

fn prewarm_history(last_day: &str) -> History {
    let mut h = months(&[("2025-12", 700), ("2026-01", 700), ("2026-02", 900)], 60);
    fill(&mut h, "2026-03-01", last_day, 900, 60);
    h
}

#[test]
fn the_next_level_is_prewarmed_when_only_the_month_close_is_missing() {
    let c = config();
    let s = at_level(&c, 1, "2026-01-01");
    let d = eval(&c, &s, &prewarm_history("2026-03-25"), "2026-03-25");
    use TransitionKind::Deploy;
    assert_eq!(transitions(&d), vec![("hume_ai".into(), Deploy), ("k8s_workers".into(), Deploy)]);
    assert_eq!(d.to_level, 1, "pre-warming does not change the level");
    assert!(d.events.iter().any(|e| matches!(e, Event::Prewarm { level: 2, .. })));
}

#[test]
fn prewarming_waits_for_the_last_days_of_the_month() {
    let c = config();
    let s = at_level(&c, 1, "2026-01-01");
    assert!(eval(&c, &s, &prewarm_history("2026-03-20"), "2026-03-20").transitions.is_empty());
}

#[test]
fn prewarming_respects_the_cost_guard() {
    let c = config_with(|v| set(v, &["components", "hume_ai", "cost", "warm"], 65.into()));
    let s = at_level(&c, 1, "2026-01-01");
    let mut h = months(&[("2025-12", 700), ("2026-01", 700), ("2026-02", 900)], 700);
    fill(&mut h, "2026-03-01", "2026-03-25", 900, 700);
    let d = eval(&c, &s, &h, "2026-03-25");
    assert!(d.transitions.is_empty());
    assert!(d.reasons.iter().any(|r| r.starts_with("pre-warming L2 skipped")), "{:?}", d.reasons);
}

#[test]
fn prewarming_needs_more_than_the_month_close_to_be_missing() {
    let c = config();
    let s = at_level(&c, 1, "2026-01-01");
    // Two closed months are missing for level 2, not just the current one.
    let mut h = months(&[("2025-12", 700), ("2026-01", 700), ("2026-02", 700)], 60);
    fill(&mut h, "2026-03-01", "2026-03-25", 900, 60);
    assert!(eval(&c, &s, &h, "2026-03-25").transitions.is_empty());
}

// ---- Manual override ----------------------------------------------------------------

fn override_to(level: u8, approved_by: Option<&str>) -> Override {
    Override {
        id: "ovr-1".into(),
        level,
        until: day("2026-03-31"),
        reason: "enterprise pilot".into(),
        requested_by: "arn:aws:iam::123456789012:user/alice".into(),
        requested_on: day("2026-03-01"),
        approved_by: approved_by.map(String::from),
        cancelled: false,
    }
}

#[test]
fn an_approved_override_pins_the_level_bypassing_debounce_and_the_cost_guard() {
    let c = config();
    let mut s = at_level(&c, 0, "2026-01-01");
    s.overrides.push(override_to(3, Some("arn:aws:iam::123456789012:user/bob")));
    let mut h = History::new();
    fill(&mut h, "2026-03-10", "2026-03-10", 100, 95);
    let d = eval(&c, &s, &h, "2026-03-10");
    assert_eq!((d.to_level, d.cause, d.outcome), (3, Some(Cause::Override), Outcome::Execute));
    assert!(d.events.iter().any(
        |e| matches!(e, Event::OverrideApplied { level: 3, approved_by, .. } if approved_by.ends_with("bob"))
    ));
}

#[test]
fn every_use_of_an_override_is_audited() {
    let c = config();
    let mut s = at_level(&c, 3, "2026-03-10");
    s.overrides.push(override_to(3, Some("bob")));
    let mut h = History::new();
    fill(&mut h, "2026-03-11", "2026-03-11", 100, 95);
    let d = eval(&c, &s, &h, "2026-03-11");
    assert_eq!(d.outcome, Outcome::Hold, "already at the pinned level");
    assert!(d.events.iter().any(|e| matches!(e, Event::OverrideApplied { .. })));
    assert!(d.reasons[0].starts_with("level pinned to L3 by override ovr-1"), "{:?}", d.reasons);
}

#[test]
fn an_override_without_another_principals_approval_does_nothing() {
    let c = config();
    let mut h = History::new();
    fill(&mut h, "2026-03-10", "2026-03-10", 100, 95);
    for approval in [None, Some("arn:aws:iam::123456789012:user/alice")] {
        let mut s = at_level(&c, 0, "2026-01-01");
        s.overrides.push(override_to(3, approval));
        let d = eval(&c, &s, &h, "2026-03-10");
        assert_eq!(d.to_level, 0, "approved by {approval:?}");
    }
}

#[test]
fn an_expired_override_no_longer_pins_the_level() {
    let c = config();
    let mut s = at_level(&c, 0, "2026-01-01");
    s.overrides.push(override_to(3, Some("bob")));
    let mut h = History::new();
    fill(&mut h, "2026-04-01", "2026-04-01", 100, 95);
    assert_eq!(eval(&c, &s, &h, "2026-04-01").to_level, 0);
}

#[test]
fn an_override_can_pin_a_lower_level() {
    let c = config();
    let mut s = at_level(&c, 2, "2026-01-01");
    s.overrides.push(override_to(1, Some("bob")));
    let mut h = History::new();
    fill(&mut h, "2026-03-10", "2026-03-10", 1000, 95);
    let d = eval(&c, &s, &h, "2026-03-10");
    assert_eq!(d.to_level, 1);
    assert!(d.transitions.iter().all(|t| t.kind == TransitionKind::Deactivate));
}

// ---- Circuit breaker ----------------------------------------------------------------

fn ready_for_level_2() -> (revscale_engine::Config, revscale_engine::SystemState, History) {
    let c = config();
    let s = at_level(&c, 1, "2026-01-01");
    let mut h = months(&[("2025-12", 1000), ("2026-01", 1000), ("2026-02", 1000)], 50);
    fill(&mut h, "2026-03-01", "2026-03-31", 1000, 50);
    (c, s, h)
}

#[test]
fn the_breaker_opens_after_n_consecutive_failures_and_blocks_automatic_transitions() {
    let (c, mut s, h) = ready_for_level_2();
    assert!(record_failure(&c, &mut s, day("2026-03-01")).is_empty());
    assert!(record_failure(&c, &mut s, day("2026-03-02")).is_empty());
    let opened = record_failure(&c, &mut s, day("2026-03-03"));
    assert_eq!(opened, vec![Event::BreakerOpened { consecutive_failures: 3, until: day("2026-03-06") }]);
    let d = eval(&c, &s, &h, "2026-03-05");
    assert_eq!((d.outcome, d.to_level), (Outcome::Hold, 1));
    assert!(
        d.reasons.iter().any(|r| r.contains("circuit breaker open after 3 failed run(s)")),
        "{:?}",
        d.reasons
    );
}

#[test]
fn after_the_breaker_cooldown_one_attempt_is_allowed_and_a_failure_reopens_it() {
    let (c, mut s, h) = ready_for_level_2();
    for d in ["2026-03-01", "2026-03-02", "2026-03-03"] {
        record_failure(&c, &mut s, day(d));
    }
    let d = eval(&c, &s, &h, "2026-03-06");
    assert_eq!(d.outcome, Outcome::Execute);
    assert!(d.reasons.iter().any(|r| r.contains("one attempt is allowed")));
    let reopened = record_failure(&c, &mut s, day("2026-03-06"));
    assert!(matches!(reopened[..], [Event::BreakerOpened { .. }]));
    assert_eq!(eval(&c, &s, &h, "2026-03-07").outcome, Outcome::Hold);
}

#[test]
fn an_approved_override_is_not_stopped_by_an_open_breaker() {
    let (c, mut s, h) = ready_for_level_2();
    for d in ["2026-03-01", "2026-03-02", "2026-03-03"] {
        record_failure(&c, &mut s, day(d));
    }
    s.overrides.push(override_to(2, Some("bob")));
    assert_eq!(eval(&c, &s, &h, "2026-03-04").outcome, Outcome::Execute);
}

// ---- Modes and approvals ------------------------------------------------------------

#[test]
fn shadow_mode_decides_and_records_but_never_transitions() {
    let (c, mut s, h) = ready_for_level_2();
    s.mode = Some(Mode::Shadow);
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.outcome, Outcome::ShadowOnly);
    assert_eq!(d.state.level, 1);
    assert!(d.events.contains(&Event::ShadowOnly { from: 1, to: 2, transitions: 4 }));
}

#[test]
fn approval_mode_needs_an_approval_for_every_level_change() {
    let (c, mut s, h) = ready_for_level_2();
    s.mode = Some(Mode::Approval);
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.outcome, Outcome::AwaitingApproval);
    assert!(d.events.iter().any(|e| matches!(e, Event::ApprovalRequired { from: 1, to: 2, .. })));
    let pending = d.state.pending_approval.clone().expect("a pending approval is recorded");
    assert_eq!((pending.from, pending.to, pending.extra_monthly_cost), (1, 2, eur(160)));

    // The next day it still waits, without asking again.
    let mut waiting = d.state.clone();
    let d2 = eval(&c, &waiting, &h, "2026-03-02");
    assert_eq!(d2.outcome, Outcome::AwaitingApproval);
    assert!(!d2.events.iter().any(|e| matches!(e, Event::ApprovalRequired { .. })));

    waiting.pending_approval = Some(PendingApproval { approved_by: Some("bob".into()), ..pending });
    let d3 = eval(&c, &waiting, &h, "2026-03-02");
    assert_eq!(d3.outcome, Outcome::Execute);
    assert!(d3.state.pending_approval.is_none());
}

#[test]
fn approval_mode_also_gates_downgrades() {
    let (c, mut s, h) = churned(700);
    s.mode = Some(Mode::Approval);
    assert_eq!(eval(&c, &s, &h, "2026-04-07").outcome, Outcome::AwaitingApproval);
}

#[test]
fn auto_mode_needs_an_approval_only_above_the_threshold() {
    let (_, s, h) = ready_for_level_2();
    let strict = config_with(|v| set(v, &["safety", "approval_threshold"], 100.into()));
    assert_eq!(eval(&strict, &s, &h, "2026-03-01").outcome, Outcome::AwaitingApproval);
    assert_eq!(eval(&config(), &s, &h, "2026-03-01").outcome, Outcome::Execute);
}

#[test]
fn a_pending_approval_is_withdrawn_when_its_conditions_vanish() {
    let c = config();
    let mut s = at_level(&c, 1, "2026-01-01");
    s.pending_approval = Some(PendingApproval {
        from: 1,
        to: 2,
        cause: Some(Cause::Growth),
        requested_on: day("2026-03-01"),
        extra_monthly_cost: eur(160),
        approved_by: None,
        approved_on: None,
    });
    let mut h = History::new();
    fill(&mut h, "2026-03-05", "2026-03-05", 500, 50);
    let d = eval(&c, &s, &h, "2026-03-05");
    assert!(d.state.pending_approval.is_none());
    assert!(d.reasons.iter().any(|r| r.contains("withdrawn")));
}

#[test]
fn an_approved_change_is_kept_on_a_day_without_figures_and_runs_once_they_are_in() {
    let (c, mut s, h) = ready_for_level_2();
    s.mode = Some(Mode::Approval);
    let d = eval(&c, &s, &h, "2026-03-01");
    let mut approved = d.state.clone();
    let p = approved.pending_approval.as_mut().expect("proposed");
    p.approved_by = Some("bob".into());
    p.approved_on = Some(day("2026-03-01"));
    // The approval came before the 05:00 collectors: no snapshot for 03-02 yet.
    let without_today = History::from_snapshots(h.iter().filter(|s| s.date != day("2026-03-02")).copied());
    let waiting = eval(&c, &approved, &without_today, "2026-03-02");
    assert_eq!(waiting.outcome, Outcome::Hold);
    assert_eq!(waiting.state.pending_approval, approved.pending_approval, "kept as approved");
    assert!(
        waiting.reasons.iter().any(|r| r.contains("kept until the engine can decide again")),
        "{:?}",
        waiting.reasons
    );
    // A run holding the lock does not withdraw it either.
    let mut locked = approved.clone();
    locked.provisioning = Some(revscale_engine::state::ProvisioningRun {
        decision_id: revscale_engine::DecisionId("2026-03-01-prewarm".into()),
        from_level: 1,
        to_level: 1,
        cause: None,
        transitions: Vec::new(),
        committed: 0,
        started_at: "2026-03-01T06:00:00Z".parse().unwrap(),
        step_started_at: None,
        failure: None,
        undoing: None,
        undone: Vec::new(),
    });
    assert_eq!(eval(&c, &locked, &h, "2026-03-02").state.pending_approval, approved.pending_approval);
    // Once the figures are in, the approval executes.
    assert_eq!(eval(&c, &approved, &h, "2026-03-02").outcome, Outcome::Execute);
}

#[test]
fn an_approval_the_engine_could_not_act_on_for_a_week_lapses_and_the_change_is_proposed_again() {
    let (c, mut s, h) = ready_for_level_2();
    s.mode = Some(Mode::Approval);
    let mut approved = eval(&c, &s, &h, "2026-03-01").state;
    let p = approved.pending_approval.as_mut().expect("proposed");
    p.approved_by = Some("bob".into());
    p.approved_on = Some(day("2026-03-01"));
    let mut h = h.clone();
    fill(&mut h, "2026-03-02", "2026-03-09", 1000, 100);
    // Seven days after the approval it still holds; the eighth it has lapsed.
    assert_eq!(eval(&c, &approved, &h, "2026-03-08").outcome, Outcome::Execute);
    let lapsed = eval(&c, &approved, &h, "2026-03-09");
    assert_eq!(lapsed.outcome, Outcome::AwaitingApproval);
    let fresh = lapsed.state.pending_approval.expect("proposed again");
    assert_eq!((fresh.requested_on, fresh.approved_by), (day("2026-03-09"), None));
    assert!(lapsed.events.iter().any(|e| matches!(e, Event::ApprovalRequired { .. })));
    assert!(lapsed.reasons.iter().any(|r| r.contains("lapsed")), "{:?}", lapsed.reasons);
}

// ---- Safety of the loop itself -------------------------------------------------------

#[test]
fn nothing_is_planned_while_a_component_is_mid_transition() {
    let (c, mut s, h) = ready_for_level_2();
    s.start(&Transition { component: id("hume_ai"), kind: TransitionKind::Deploy }, day("2026-03-01"))
        .unwrap();
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.outcome, Outcome::Hold);
    assert!(d.reasons[0].starts_with("hume_ai is warming"), "{:?}", d.reasons);
}

#[test]
fn nothing_is_decided_without_todays_snapshot() {
    let (c, s, h) = ready_for_level_2();
    let d = eval(&c, &s, &h, "2026-04-01");
    assert_eq!(d.outcome, Outcome::Hold);
    assert_eq!(d.figures.mrr, None);
}

// ---- Decision ids ---------------------------------------------------------------------

#[test]
fn the_decision_id_is_the_same_for_the_same_inputs_and_ignores_the_store_version() {
    let (c, mut s, h) = ready_for_level_2();
    let a = eval(&c, &s, &h, "2026-03-01");
    s.version = 42;
    let b = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(a.id, b.id);
    assert!(a.id.0.starts_with("2026-03-01-L1-L2-"), "{}", a.id);
    assert!(a.id.0.len() <= 80 && a.id.0.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-'));
}

#[test]
fn the_decision_id_changes_when_an_input_changes() {
    let (c, s, h) = ready_for_level_2();
    let base = eval(&c, &s, &h, "2026-03-01").id;
    let mut other = h.clone();
    fill(&mut other, "2026-02-15", "2026-02-15", 1001, 50);
    assert_ne!(eval(&c, &s, &other, "2026-03-01").id, base);
    let strict = config_with(|v| set(v, &["safety", "approval_threshold"], 2999.into()));
    assert_ne!(eval(&strict, &s, &h, "2026-03-01").id, base);
    let mut s2 = s.clone();
    s2.breaker.consecutive_failures = 1;
    assert_ne!(eval(&c, &s2, &h, "2026-03-01").id, base);
}

#[test]
fn snapshots_outside_the_window_do_not_change_the_decision_id() {
    let (c, s, h) = ready_for_level_2();
    let base = eval(&c, &s, &h, "2026-03-01").id;
    let mut older = h.clone();
    fill(&mut older, "2024-01-01", "2024-01-31", 99, 9);
    assert_eq!(eval(&c, &s, &older, "2026-03-01").id, base);
    assert!(revscale_engine::history_needed_from(&c, day("2026-03-01")) <= day("2025-12-01"));
}

#[test]
fn money_in_decisions_keeps_its_currency() {
    let (c, s, h) = ready_for_level_2();
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.figures.mrr, Some(Money::whole(1000, revscale_engine::Currency::EUR)));
    let json = serde_json::to_string(&d).unwrap();
    assert!(json.contains("\"currency\":\"EUR\""));
    let back: revscale_engine::Decision = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
}

#[test]
fn nothing_is_planned_while_a_provisioning_run_holds_the_lock() {
    let (c, mut s, h) = ready_for_level_2();
    let request = revscale_engine::ports::LevelChangeRequested {
        decision_id: "d-prev".into(),
        from_level: 1,
        to_level: 1,
        transitions: vec![],
        reasons: vec![],
        mode: Mode::Auto,
        cause: None,
    };
    revscale_engine::provisioning::run::begin(
        &mut s,
        &request,
        "2026-03-01T05:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap(),
    )
    .unwrap();
    let d = eval(&c, &s, &h, "2026-03-01");
    assert_eq!(d.outcome, Outcome::Hold);
    assert!(d.reasons[0].starts_with("provisioning of d-prev (L1 -> L1) is in progress"), "{:?}", d.reasons);
}

#[test]
fn an_approved_override_acts_even_before_todays_snapshot_exists() {
    let c = config();
    let mut s = at_level(&c, 0, "2026-01-01");
    s.overrides.push(override_to(2, Some("bob")));
    let d = eval(&c, &s, &History::new(), "2026-03-10");
    assert_eq!((d.to_level, d.outcome), (2, Outcome::Execute));
}

// ---- Pre-warming without bounce -----------------------------------------------------

/// Level 1 would complete within the week if MRR held: 24 days at EUR 500 (L1 needs a
/// month of days >= 450), after months just under it (the 3-month mean reaches 450).
fn about_to_reach_level_1(today: &str) -> History {
    let t = day(today);
    let mut h = History::new();
    let (start, turn) = (t - chrono::Days::new(120), t - chrono::Days::new(24));
    fill(&mut h, &start.to_string(), &(turn - chrono::Days::new(1)).to_string(), 440, 20);
    fill(&mut h, &turn.to_string(), today, 500, 20);
    h
}

fn deploys(d: &revscale_engine::Decision) -> Vec<String> {
    d.transitions
        .iter()
        .filter(|t| t.kind == TransitionKind::Deploy)
        .map(|t| t.component.to_string())
        .collect()
}

#[test]
fn pre_warming_deploys_when_the_window_would_complete_within_the_week() {
    let c = config();
    let s = at_level(&c, 0, "2025-06-01");
    let d = eval(&c, &s, &about_to_reach_level_1("2026-03-20"), "2026-03-20");
    assert_eq!(deploys(&d), ["eks_control_plane"], "{:?}", d.reasons);
    assert!(d.events.iter().any(|e| matches!(e, Event::Prewarm { level: 1, .. })));
}

#[test]
fn a_component_that_went_cold_is_not_pre_warmed_again_within_thirty_days() {
    let c = config();
    let mut s = at_level(&c, 0, "2025-06-01");
    let mut record = ComponentRecord::settled(ComponentState::Cold, day("2026-03-10"));
    record.deployed_on = Some(day("2025-12-01"));
    s.components.insert(id("eks_control_plane"), record);
    let d = eval(&c, &s, &about_to_reach_level_1("2026-03-20"), "2026-03-20");
    assert!(deploys(&d).is_empty(), "{:?}", d.transitions);
    assert!(
        d.reasons.contains(&"pre-warming L1: eks_control_plane went COLD on 2026-03-10: not deployed again before 2026-04-09".to_string()),
        "{:?}",
        d.reasons
    );
    assert_eq!(
        deploys(&eval(&c, &s, &about_to_reach_level_1("2026-04-09"), "2026-04-09")),
        ["eks_control_plane"]
    );
}

#[test]
fn hovering_at_a_threshold_deploys_a_component_at_most_once_per_ninety_days() {
    let c = config();
    let mut s = at_level(&c, 0, "2025-06-01");
    let mut record = ComponentRecord::settled(ComponentState::Cold, day("2026-03-01"));
    record.deployed_on = Some(day("2026-02-01"));
    s.components.insert(id("eks_control_plane"), record);
    let d = eval(&c, &s, &about_to_reach_level_1("2026-04-20"), "2026-04-20");
    assert!(deploys(&d).is_empty(), "{:?}", d.transitions);
    assert!(
        d.reasons.iter().any(|r| r.ends_with("was deployed on 2026-02-01 and the level has not changed since: not deployed again before 2026-05-02")),
        "{:?}",
        d.reasons
    );
    assert_eq!(
        deploys(&eval(&c, &s, &about_to_reach_level_1("2026-05-02"), "2026-05-02")),
        ["eks_control_plane"]
    );
    // Unless the level changed since that deploy.
    let mut moved = s.clone();
    moved.level_since = day("2026-03-01");
    assert_eq!(
        deploys(&eval(&c, &moved, &about_to_reach_level_1("2026-04-20"), "2026-04-20")),
        ["eks_control_plane"]
    );
}

#[test]
fn a_pre_warmed_component_stays_warm_while_its_level_is_about_to_be_reached() {
    let c = config();
    let mut s = at_level(&c, 0, "2025-06-01");
    let mut record = ComponentRecord::settled(ComponentState::Warm, day("2026-01-01"));
    record.deployed_on = Some(day("2026-01-01"));
    s.components.insert(id("eks_control_plane"), record);
    // Cool-down (30 days WARM) is long over, but level 1 is days away: it stays.
    let d = eval(&c, &s, &about_to_reach_level_1("2026-03-20"), "2026-03-20");
    assert!(d.transitions.is_empty(), "{:?}", d.transitions);
    // When level 1 is out of sight, cool-down takes it.
    let mut far = History::new();
    fill(&mut far, "2025-12-01", "2026-03-20", 300, 20);
    let d = eval(&c, &s, &far, "2026-03-20");
    assert_eq!(transitions(&d), vec![("eks_control_plane".to_string(), TransitionKind::Decommission)]);
}

#[test]
fn a_component_cold_for_less_than_thirty_days_is_not_pre_warmed_even_without_a_deploy_on_record() {
    // State written before deploys were recorded, or a component that started HOT.
    let c = config();
    let mut s = at_level(&c, 0, "2025-06-01");
    s.components
        .insert(id("eks_control_plane"), ComponentRecord::settled(ComponentState::Cold, day("2026-03-10")));
    assert!(deploys(&eval(&c, &s, &about_to_reach_level_1("2026-03-20"), "2026-03-20")).is_empty());
    assert_eq!(
        deploys(&eval(&c, &s, &about_to_reach_level_1("2026-04-09"), "2026-04-09")),
        ["eks_control_plane"]
    );
}

#[test]
fn a_pre_warmed_component_stays_warm_when_its_level_is_eligible_but_blocked() {
    let c = config();
    let mut s = at_level(&c, 0, "2025-06-01");
    s.components
        .insert(id("eks_control_plane"), ComponentRecord::settled(ComponentState::Warm, day("2026-01-01")));
    let mut h = History::new();
    // L1 is eligible, but cost EUR 460 is above 90% of EUR 500: the guard blocks it.
    fill(&mut h, "2025-11-01", "2026-03-20", 500, 460);
    let d = eval(&c, &s, &h, "2026-03-20");
    assert_eq!(d.to_level, 0, "blocked by the cost guard: {:?}", d.reasons);
    assert!(d.events.iter().any(|e| matches!(e, Event::Blocked { level: 1, .. })));
    assert!(d.transitions.is_empty(), "kept WARM, not cooled down: {:?}", d.transitions);
}

#[test]
fn an_approval_holds_for_its_change_and_its_reason_only() {
    let c = config();
    let mut s = at_level(&c, 3, "2026-01-01");
    let mut h = months(&[("2026-01", 4000), ("2026-02", 4000), ("2026-03", 4000)], 500);
    fill(&mut h, "2026-04-01", "2026-04-30", 4000, 3700);
    // An approval given for another reason (a churn drop L3 -> L1) is not this one.
    s.pending_approval = Some(PendingApproval {
        from: 3,
        to: 1,
        cause: Some(Cause::Churn),
        requested_on: day("2026-04-06"),
        extra_monthly_cost: eur(0),
        approved_by: Some("bob".into()),
        approved_on: Some(day("2026-04-06")),
    });
    let d = eval(&c, &s, &h, "2026-04-07");
    assert_eq!((d.cause, d.outcome), (Some(Cause::CostOverrun), Outcome::AwaitingApproval));
    assert_eq!(d.state.pending_approval.as_ref().and_then(|p| p.cause), Some(Cause::CostOverrun));
    // Approved for this reason, it executes.
    let mut approved = d.state.clone();
    if let Some(p) = approved.pending_approval.as_mut() {
        p.approved_by = Some("bob".into());
    }
    assert_eq!(eval(&c, &approved, &h, "2026-04-08").outcome, Outcome::Execute);
}

// ---- Drain ---------------------------------------------------------------------------

fn drain(approved_by: Option<&str>) -> Drain {
    Drain {
        reason: "closing the company".into(),
        requested_by: "arn:aws:iam::123456789012:user/alice".into(),
        requested_on: day("2026-03-01"),
        approved_by: approved_by.map(String::from),
    }
}

#[test]
fn an_approved_drain_takes_everything_revscale_manages_cold_in_shadow_mode_and_with_the_breaker_open() {
    let mut c = config();
    c.mode = Mode::Shadow;
    let mut s = at_level(&c, 3, "2026-01-01");
    s.components.insert(id("tee"), ComponentRecord::settled(ComponentState::Warm, day("2026-02-01")));
    for _ in 0..c.breaker.failures {
        record_failure(&c, &mut s, day("2026-03-01"));
    }
    s.drain = Some(drain(Some("arn:aws:iam::123456789012:user/bob")));
    let d = eval(&c, &s, &History::new(), "2026-03-02");
    assert_eq!(
        (d.to_level, d.cause, d.outcome),
        (0, Some(Cause::Drain), Outcome::Execute),
        "{:?}",
        d.reasons
    );
    let moves = transitions(&d);
    // Every HOT component is deactivated then decommissioned, a WARM one decommissioned;
    // the always-on bootstrap is left alone.
    for (name, state) in &s.components {
        let kinds: Vec<TransitionKind> =
            moves.iter().filter(|(c, _)| c == name.as_str()).map(|(_, k)| *k).collect();
        let expected = match (c.components[name].is_always_on(), state.state) {
            (true, _) | (false, ComponentState::Cold) => vec![],
            (false, ComponentState::Warm) => vec![TransitionKind::Decommission],
            (false, _) => vec![TransitionKind::Deactivate, TransitionKind::Decommission],
        };
        assert_eq!(kinds, expected, "{name}");
    }
    // Node groups go before the cluster they run on.
    let position = |name: &str| moves.iter().rposition(|(c, _)| c == name).unwrap();
    assert!(position("k8s_workers") < position("eks_control_plane"), "{moves:?}");
    assert!(position("vault_ha") < position("eks_control_plane"), "{moves:?}");
    assert!(revscale_engine::rules::cost_delta(&c, &d.transitions).is_negative(), "a drain only saves");
}

#[test]
fn a_drain_without_a_second_persons_approval_does_nothing() {
    let c = config();
    let mut h = History::new();
    fill(&mut h, "2026-03-10", "2026-03-10", 100, 95);
    for approval in [None, Some("arn:aws:iam::123456789012:user/alice")] {
        let mut s = at_level(&c, 2, "2026-01-01");
        s.drain = Some(drain(approval));
        let d = eval(&c, &s, &h, "2026-03-10");
        assert_ne!(d.cause, Some(Cause::Drain), "approved by {approval:?}");
    }
}

#[test]
fn a_drained_system_starts_nothing_however_revenue_grows_until_the_drain_is_cancelled() {
    let c = config();
    let mut s = at_level(&c, 0, "2025-06-01");
    s.drain = Some(drain(Some("bob")));
    let h = months(&[("2025-12", 20_000), ("2026-01", 20_000), ("2026-02", 20_000)], 50);
    let d = eval(&c, &s, &h, "2026-02-28");
    assert_eq!((d.to_level, d.outcome), (0, Outcome::Hold));
    assert!(d.transitions.is_empty());
    assert!(
        d.reasons[0]
            .starts_with("drained (requested by arn:aws:iam::123456789012:user/alice, approved by bob"),
        "{:?}",
        d.reasons
    );
    s.drain = None;
    assert!(eval(&c, &s, &h, "2026-02-28").to_level > 0, "cancelled, growth counts again");
}

#[test]
fn an_approved_step_down_for_cost_waits_on_a_day_whose_cost_was_not_collected() {
    let c = config();
    let s = at_level(&c, 3, "2026-01-01");
    let mut h = months(&[("2026-01", 4000), ("2026-02", 4000), ("2026-03", 4000)], 500);
    fill(&mut h, "2026-04-01", "2026-04-30", 4000, 3700);
    let mut approved = eval(&c, &s, &h, "2026-04-07").state;
    let p = approved.pending_approval.as_mut().expect("a step-down for cost is proposed");
    assert_eq!(p.cause, Some(Cause::CostOverrun));
    p.approved_by = Some("bob".into());
    p.approved_on = Some(day("2026-04-07"));
    // 04-08: revenue collected, the cost collector failed.
    let mut no_cost = h.clone();
    no_cost.insert(revscale_engine::DailySnapshot { date: day("2026-04-08"), mrr: eur(4000), cost: None });
    let d = eval(&c, &approved, &no_cost, "2026-04-08");
    assert_eq!(d.outcome, Outcome::Hold);
    assert_eq!(d.state.pending_approval, approved.pending_approval, "{:?}", d.reasons);
    assert!(d.reasons.iter().any(|r| r.contains("waits for today's cost")), "{:?}", d.reasons);
    // With the cost in, the approval runs.
    assert_eq!(eval(&c, &approved, &h, "2026-04-08").outcome, Outcome::Execute);
}

#[test]
fn an_approved_change_that_now_costs_more_than_was_reviewed_is_proposed_again() {
    let (_, mut s, h) = ready_for_level_2();
    s.mode = Some(Mode::Approval);
    let cheap = config();
    let mut approved = eval(&cheap, &s, &h, "2026-03-01").state;
    let p = approved.pending_approval.as_mut().expect("proposed");
    let reviewed_id = p.id();
    p.approved_by = Some("bob".into());
    p.approved_on = Some(day("2026-03-01"));
    // A pushed config makes level 2's components dearer before the engine acts.
    let dear = config_with(|v| set(v, &["components", "k8s_workers", "cost", "hot"], 400.into()));
    let d = eval(&dear, &approved, &h, "2026-03-02");
    assert_eq!(d.outcome, Outcome::AwaitingApproval, "{:?}", d.reasons);
    let fresh = d.state.pending_approval.expect("proposed again");
    assert_eq!(fresh.approved_by, None);
    assert_ne!(fresh.id(), reviewed_id);
    assert!(d.reasons.iter().any(|r| r.contains("not what would run")), "{:?}", d.reasons);
}
