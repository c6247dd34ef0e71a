//! Invariants of the engine over generated histories (proptest).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use revscale_engine::DecisionId;
use revscale_engine::decision::Outcome;
use revscale_engine::model::Cause;
use revscale_engine::model::{Mode, TransitionKind};
use revscale_engine::rules::{Identify, cost_delta, decide};
use revscale_engine::runway::{CashBalance, runway_on};
use revscale_engine::state::{ComponentRecord, Drain, PendingApproval, ProvisioningRun};
use revscale_engine::{ComponentState, Config, Currency, History, Money, SystemState};
use revscale_simulator::{Scenario, SimOptions, simulate};
use revscale_test_support::*;

const MONTHS: [&str; 4] = ["2026-01", "2026-02", "2026-03", "2026-04"];

/// A history of four closed months (January to April) and May up to `today`.
fn history(closes: &[i64; 4], today_mrr: i64, cost: i64, today: u32) -> History {
    let mut h = months(&MONTHS.iter().copied().zip(closes.iter().copied()).collect::<Vec<_>>(), cost);
    fill(&mut h, "2026-05-01", &format!("2026-05-{today:02}"), today_mrr, cost);
    h
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![0i64..1_000, 0i64..5_000, 0i64..40_000]
}

/// A day in May 2026 at some level, after four closed months: what each generated
/// evaluation starts from.
#[derive(Debug, Clone)]
struct Situation {
    closes: [i64; 4],
    today_mrr: i64,
    cost: i64,
    level: u8,
    today: u32,
}

prop_compose! {
    fn situation()(
        closes in [amount(), amount(), amount(), amount()],
        today_mrr in amount(),
        cost in amount(),
        level in 0u8..=4,
        today in 1u32..=31,
    ) -> Situation {
        Situation { closes, today_mrr, cost, level, today }
    }
}

impl Situation {
    /// The config, the state at the situation's level, the history, and today's date.
    fn setup(&self) -> (Config, SystemState, History, String) {
        let c = config();
        let s = at_level(&c, self.level, "2026-01-01");
        let h = history(&self.closes, self.today_mrr, self.cost, self.today);
        (c, s, h, format!("2026-05-{:02}", self.today))
    }
}

/// Daily scenario rows: `base` from 2026-01-01, `other` on `[from, from + days)`.
fn episode_csv(base: i64, other: i64, from: NaiveDate, days: u64, cost: i64) -> String {
    let mut csv = format!("date,mrr,cost\n2026-01-01,{base},{cost}\n");
    if days > 0 {
        csv.push_str(&format!("{from},{other},{cost}\n{},{base},{cost}\n", from + Days::new(days)));
    }
    csv
}

fn levels_until(csv: &str, until: NaiveDate) -> Vec<u8> {
    let c = config();
    let scenario = Scenario::parse_csv(csv, &c).unwrap();
    let options = SimOptions { until: Some(until), ..SimOptions::default() };
    simulate(&c, &scenario, &options).unwrap().iter().map(|d| d.level).collect()
}

/// Counts a property's cases and says so once all have passed (on stderr, which
/// cargo test does not capture), so every run shows how much was tried.
fn count_case(counter: &AtomicU32, name: &str, cases: u32) {
    if counter.fetch_add(1, Ordering::SeqCst) + 1 == cases {
        let _ = writeln!(std::io::stderr().lock(), "property {name}: {cases} cases passed");
    }
}

const EPISODE_CASES: u32 = 48;
static SPIKES: AtomicU32 = AtomicU32::new(0);
static DIPS: AtomicU32 = AtomicU32::new(0);
const HOVER_CASES: u32 = 32;
static HOVERS: AtomicU32 = AtomicU32::new(0);
/// Pre-warming deploys the hovering property saw: it must see some, or it tests nothing.
static PREWARM_DEPLOYS: AtomicU32 = AtomicU32::new(0);
const GUARD_CASES: u32 = 512;
static GUARDS: AtomicU32 = AtomicU32::new(0);
/// Automatic activations the cost-guard property checked: it must check some, or its
/// assertions, which only apply to activations, test nothing.
static GUARDED_ACTIVATIONS: AtomicU32 = AtomicU32::new(0);
const RUNWAY_CASES: u32 = 512;
static RUNWAYS: AtomicU32 = AtomicU32::new(0);
/// Activations the runway property checked, and activations it saw held: it must see
/// both, or it proves nothing about the guard.
static RUNWAY_ACTIVATIONS: AtomicU32 = AtomicU32::new(0);
static RUNWAY_HOLDS: AtomicU32 = AtomicU32::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: EPISODE_CASES, ..ProptestConfig::default() })]

    /// ADR-017 "Revenue fittizia/spike": a spike of any height, starting on any day
    /// (month ends included), shorter than the shortest debounce window (a month:
    /// 28 days at the least), never changes the level.
    #[test]
    fn a_spike_shorter_than_the_window_never_changes_the_level(
        base in prop_oneof![0i64..449, 450i64..799, 800i64..2_999, 3_000i64..9_999],
        height in 1i64..200_000,
        start in 120u64..260,
        days in 1u64..28,
        cost_pct in 0i64..=10,
    ) {
        let from = day("2026-01-01") + Days::new(start);
        let until = from + Days::new(days + 60);
        let cost = base * cost_pct / 100;
        let steady = levels_until(&episode_csv(base, base, from, 0, cost), until);
        let spiky = levels_until(&episode_csv(base, base + height, from, days, cost), until);
        prop_assert_eq!(steady, spiky, "spike of {} for {} days from {}", height, days, from);
        count_case(&SPIKES, "a_spike_shorter_than_the_window_never_changes_the_level", EPISODE_CASES);
    }

    /// A dip of any depth shorter than `grace_days` never drops the level.
    #[test]
    fn a_dip_shorter_than_grace_days_never_drops_the_level(
        base in prop_oneof![450i64..799, 800i64..2_999, 3_000i64..9_999, 10_000i64..40_000],
        depth_pct in 1i64..=100,
        start in 200u64..300,
        days in 1u64..7,
    ) {
        let c = config();
        prop_assume!(u64::from(c.churn.grace_days) == 7);
        let from = day("2026-01-01") + Days::new(start);
        let until = from + Days::new(days + 30);
        let cost = base / 20;
        let steady = levels_until(&episode_csv(base, base, from, 0, cost), until);
        let dipped = levels_until(&episode_csv(base, base - base * depth_pct / 100, from, days, cost), until);
        prop_assert_eq!(steady, dipped, "dip of {}% for {} days from {}", depth_pct, days, from);
        count_case(&DIPS, "a_dip_shorter_than_grace_days_never_drops_the_level", EPISODE_CASES);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: HOVER_CASES, ..ProptestConfig::default() })]

    /// MRR hovering at a threshold, in episodes of any length above and below it: a
    /// pre-warming deploy (one without a level change) never follows the component's
    /// last COLD by less than 30 days, nor its last deploy by less than 90 unless the
    /// level changed in between.
    #[test]
    fn hovering_at_a_threshold_never_bounces_a_component(
        episodes in prop::collection::vec((any::<bool>(), 1u64..40, 0i64..60), 8..24),
    ) {
        let mut csv = String::from("date,mrr,cost\n");
        let mut date = day("2026-01-01");
        for (above, days, offset) in &episodes {
            let mrr = if *above { 450 + offset } else { 449 - offset };
            csv.push_str(&format!("{date},{mrr},20\n"));
            date = date + Days::new(*days);
        }
        let days = {
            let c = config();
            let scenario = Scenario::parse_csv(&csv, &c).unwrap();
            simulate(&c, &scenario, &SimOptions { until: Some(date), ..SimOptions::default() }).unwrap()
        };
        let c = config();
        for id in c.components.keys() {
            let (mut cold_since, mut last_deploy): (Option<NaiveDate>, Option<NaiveDate>) = (None, None);
            let mut level_moved = false;
            for pair in days.windows(2) {
                let (before, after) = (&pair[0], &pair[1]);
                level_moved |= after.level != before.level;
                let (was, is) = (before.components[id], after.components[id]);
                if was != ComponentState::Cold && is == ComponentState::Cold {
                    cold_since = Some(after.date);
                }
                if was == ComponentState::Cold && is != ComponentState::Cold {
                    let prewarm = after.level == before.level;
                    if prewarm {
                        PREWARM_DEPLOYS.fetch_add(1, Ordering::SeqCst);
                        if let Some(cold) = cold_since {
                            prop_assert!(after.date >= cold + Days::new(30), "{} pre-warmed {} after COLD on {}", id, after.date, cold);
                        }
                        if let Some(last) = last_deploy && !level_moved {
                            prop_assert!(after.date >= last + Days::new(90), "{} pre-warmed {} after a deploy on {}", id, after.date, last);
                        }
                    }
                    last_deploy = Some(after.date);
                    level_moved = false;
                }
            }
        }
        if HOVERS.load(Ordering::SeqCst) + 1 == HOVER_CASES {
            prop_assert!(PREWARM_DEPLOYS.load(Ordering::SeqCst) > 0, "no case pre-warmed anything");
        }
        count_case(&HOVERS, "hovering_at_a_threshold_never_bounces_a_component", HOVER_CASES);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_automatic_activation_leaves_projected_cost_above_ninety_percent_of_reference_revenue(
        situation in situation(),
    ) {
        let (c, s, h, date) = situation.setup();
        let d = eval(&c, &s, &h, &date);
        let activates = d.transitions.iter().any(|t| matches!(t.kind, TransitionKind::Deploy | TransitionKind::Activate));
        if d.outcome == Outcome::Execute && activates && d.cause != Some(Cause::Override) {
            let projected = situation.cost * 100 + cost_delta(&c, &d.transitions).minor;
            let average = h.three_month_mean(d.date).expect("an activation needs daily MRR").floor().minor;
            let reference = average.min(situation.today_mrr * 100);
            prop_assert!(projected * 10 <= reference * 9, "projected {projected} vs reference {reference}: {:?}", d.reasons);
            prop_assert!(projected <= c.level(d.to_level.max(d.from_level + 1).min(4)).max_burn.minor);
            GUARDED_ACTIVATIONS.fetch_add(1, Ordering::SeqCst);
        }
        if GUARDS.load(Ordering::SeqCst) + 1 == GUARD_CASES {
            let checked = GUARDED_ACTIVATIONS.load(Ordering::SeqCst);
            let _ = writeln!(std::io::stderr().lock(), "property cost guard: {checked} automatic activations checked");
            prop_assert!(checked >= 20, "only {checked} of {GUARD_CASES} cases activated anything");
        }
        count_case(&GUARDS, "no_automatic_activation_leaves_projected_cost_above_ninety_percent_of_reference_revenue", GUARD_CASES);
    }

    #[test]
    fn no_automatic_activation_leaves_the_projected_runway_under_the_minimum(
        situation in situation(),
        min_months in 1u32..=24,
        fixed_burn in prop_oneof![0i64..2_000, 0i64..20_000],
        cash in prop_oneof![0i64..50_000, 0i64..600_000],
        cash_age in 0u64..=120,
    ) {
        let (_, s, h, date) = situation.setup();
        let c = config_with(|v| {
            let runway = format!("{{ min_months: {min_months}, monthly_fixed_burn: {fixed_burn} }}");
            set(v, &["runway"], serde_norway::from_str(&runway).unwrap());
        });
        let today = day(&date);
        let mut s = s;
        s.cash = Some(CashBalance {
            amount: eur(cash),
            as_of: today - Days::new(cash_age),
            set_by: "ada".into(),
            set_on: today,
        });
        let d = eval(&c, &s, &h, &date);
        let activates = d.transitions.iter().any(|t| matches!(t.kind, TransitionKind::Deploy | TransitionKind::Activate));
        if d.outcome == Outcome::Execute && activates && d.cause != Some(Cause::Override) {
            let extra = cost_delta(&c, &d.transitions);
            let guard = c.runway.as_ref().unwrap();
            let after = runway_on(guard, s.cash.as_ref(), &h, today, extra);
            let months = after.as_ref().and_then(|r| r.months());
            prop_assert!(
                months.is_some_and(|m| !m.is_under(min_months)),
                "runway after {after:?} (minimum {min_months}): {:?}", d.reasons
            );
            RUNWAY_ACTIVATIONS.fetch_add(1, Ordering::SeqCst);
        }
        if d.events.iter().any(|e| matches!(e, revscale_engine::Event::RunwayHeld { .. })) {
            RUNWAY_HOLDS.fetch_add(1, Ordering::SeqCst);
        }
        if RUNWAYS.load(Ordering::SeqCst) + 1 == RUNWAY_CASES {
            let (checked, held) = (RUNWAY_ACTIVATIONS.load(Ordering::SeqCst), RUNWAY_HOLDS.load(Ordering::SeqCst));
            let _ = writeln!(std::io::stderr().lock(), "property runway guard: {checked} automatic activations checked, {held} held");
            prop_assert!(checked >= 10 && held >= 10, "{checked} activations and {held} holds in {RUNWAY_CASES} cases");
        }
        count_case(&RUNWAYS, "no_automatic_activation_leaves_the_projected_runway_under_the_minimum", RUNWAY_CASES);
    }

    #[test]
    fn a_decision_named_without_its_hash_differs_in_nothing_but_its_id(situation in situation()) {
        let (c, s, h, date) = situation.setup();
        let inputs = revscale_engine::Inputs { config: &c, state: &s, history: &h };
        let hashed = revscale_engine::evaluate(&inputs, day(&date));
        let mut unrecorded = decide(&inputs, day(&date), Identify::Unrecorded);
        prop_assert!(unrecorded.id.as_str().ends_with("-unrecorded"));
        unrecorded.id = hashed.id.clone();
        prop_assert_eq!(unrecorded, hashed);
    }

    #[test]
    fn the_decision_id_is_the_same_for_the_same_inputs(
        situation in situation(),
    ) {
        let (c, s, h, date) = situation.setup();
        let first = eval(&c, &s, &h, &date);
        // As the store would hand it back: serialised and read again.
        let stored: SystemState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        let again = eval(&c, &stored, &h.clone(), &date);
        prop_assert_eq!(&first.id, &again.id);
        prop_assert_eq!(first, again);
    }

    #[test]
    fn every_plan_is_a_sequence_of_legal_transitions_that_reaches_its_level(
        situation in situation(),
    ) {
        let (c, s, h, date) = situation.setup();
        let d = eval(&c, &s, &h, &date);
        let mut after = s.clone();
        for t in &d.transitions {
            prop_assert!(after.start(t, d.date).is_ok(), "illegal start {t}");
            prop_assert!(after.commit(t, d.date).is_ok(), "illegal commit {t}");
        }
        if d.outcome == Outcome::Execute {
            for id in c.components_up_to(d.to_level) {
                prop_assert_eq!(after.component_state(&id), ComponentState::Hot, "{} at L{}", id, d.to_level);
            }
        }
        prop_assert!(after.any_transitional().is_none());
        prop_assert_eq!(d.figures.mrr, Some(Money::whole(situation.today_mrr, Currency::EUR)));
    }

    #[test]
    fn an_approved_drain_only_takes_down_and_leaves_every_managed_component_cold_in_any_mode(
        situation in situation(),
        mode in prop_oneof![Just(Mode::Shadow), Just(Mode::Approval), Just(Mode::Auto)],
        warm in proptest::collection::vec(any::<bool>(), 9),
    ) {
        let (mut c, mut s, h, date) = situation.setup();
        c.mode = mode;
        // Some of the running components only WARM, as a churn drop leaves them.
        for (flag, id) in warm.iter().zip(c.activation_order.clone()) {
            if *flag && !c.components[&id].is_always_on() && s.component_state(&id) == ComponentState::Hot {
                s.components.insert(id, ComponentRecord::settled(ComponentState::Warm, day("2026-01-01")));
            }
        }
        s.drain = Some(Drain {
            reason: "teardown".into(),
            requested_by: "alice".into(),
            requested_on: day("2026-01-01"),
            approved_by: Some("bob".into()),
        });
        let d = eval(&c, &s, &h, &date);
        prop_assert!(d.transitions.iter().all(|t| matches!(t.kind, TransitionKind::Deactivate | TransitionKind::Decommission)), "{:?}", d.transitions);
        prop_assert_eq!(d.to_level, 0);
        let mut after = s.clone();
        for t in &d.transitions {
            prop_assert!(after.start(t, d.date).is_ok() && after.commit(t, d.date).is_ok(), "illegal {}", t);
        }
        for (id, component) in &c.components {
            let expected = if component.is_always_on() { s.component_state(id) } else { ComponentState::Cold };
            prop_assert_eq!(after.component_state(id), expected, "{}", id);
        }
        let nothing_to_do = d.transitions.is_empty() && s.level == 0;
        prop_assert_eq!(d.outcome, if nothing_to_do { Outcome::Hold } else { Outcome::Execute });
    }
}

const VALID_CONFIG_CASES: u32 = 256;
static CONFIGS: AtomicU32 = AtomicU32::new(0);
/// Generated configurations that validated: the no-panic property must run the engine
/// on some, or it tests nothing.
static VALID_CONFIGS: AtomicU32 = AtomicU32::new(0);

/// A count or a duration as a careless or hostile file might give it: mostly within
/// `plausible` (the bounds' edges included), sometimes anything a `u32` holds.
fn days_in(plausible: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = u32> {
    let (low, high) = (*plausible.start(), *plausible.end());
    prop_oneof![12 => plausible, 2 => Just(low), 2 => Just(high), 1 => any::<u32>()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: VALID_CONFIG_CASES, ..ProptestConfig::default() })]

    /// An approval given before the collectors ran, on a day one or both collectors
    /// failed, or while another run holds the lock, is kept as it was: never withdrawn
    /// for want of figures.
    #[test]
    fn an_approved_pending_change_survives_any_day_without_a_snapshot(
        situation in situation(),
        to in 0u8..=4,
        cause in prop_oneof![Just(Cause::Growth), Just(Cause::Churn), Just(Cause::CostOverrun)],
        mode in prop_oneof![Just(Mode::Shadow), Just(Mode::Approval), Just(Mode::Auto)],
        approved_days_ago in 0u64..=7,
        unknown in 0u8..3,
    ) {
        let (mut c, mut s, h, date) = situation.setup();
        c.mode = mode;
        let today = day(&date);
        s.pending_approval = Some(PendingApproval {
            from: s.level,
            to,
            cause: Some(cause),
            requested_on: today - Days::new(approved_days_ago),
            extra_monthly_cost: c.zero(),
            approved_by: Some("bob".into()),
            approved_on: Some(today - Days::new(approved_days_ago)),
        });
        let history = if unknown == 0 {
            s.provisioning = Some(ProvisioningRun {
                decision_id: DecisionId("2026-05-01-prewarm".into()),
                from_level: s.level,
                to_level: s.level,
                cause: None,
                transitions: Vec::new(),
                committed: 0,
                started_at: "2026-05-01T06:00:00Z".parse().unwrap(),
                step_started_at: None,
                failure: None,
                undoing: None,
                undone: Vec::new(),
            });
            h
        } else if unknown == 1 {
            // The revenue collector ran; the cost collector did not.
            History::from_snapshots(h.iter().map(|snapshot| {
                let mut snapshot = *snapshot;
                if snapshot.date == today {
                    snapshot.cost = None;
                }
                snapshot
            }))
        } else {
            History::from_snapshots(h.iter().filter(|snapshot| snapshot.date != today).copied())
        };
        let d = eval(&c, &s, &history, &date);
        prop_assert_eq!(d.outcome, Outcome::Hold);
        prop_assert_eq!(&d.state.pending_approval, &s.pending_approval, "{:?}", d.reasons);
    }

    /// Every count and duration has an upper bound: a file that validates, however odd,
    /// never makes the engine (or the simulator over a year of it) panic.
    #[test]
    fn any_configuration_that_validates_never_makes_the_engine_panic(
        grace in days_in(1..=365),
        cooldown in days_in(0..=1_095),
        breaker_cooldown in days_in(0..=1_095),
        failures in days_in(1..=100),
        prewarm in days_in(0..=31),
        expiry in days_in(1..=90),
        months_required in proptest::collection::vec(days_in(1..=36), 4),
        situation in situation(),
    ) {
        let mut value: serde_norway::Value = serde_norway::from_str(revscale_engine::DEFAULT_CONFIG_YAML).unwrap();
        value["churn"]["grace_days"] = grace.into();
        value["churn"]["cooldown_days"] = cooldown.into();
        value["circuit_breaker"]["cooldown_days"] = breaker_cooldown.into();
        value["circuit_breaker"]["failures"] = failures.into();
        value["prewarm_days"] = prewarm.into();
        value["safety"]["approval_expiry_days"] = expiry.into();
        for (level, months) in ["level_1_launch", "level_2_growth", "level_3_scale", "level_4_enterprise"].iter().zip(&months_required) {
            if let Some(l) = value["levels"].get_mut(*level) {
                l["required_consecutive_months"] = (*months).into();
            }
        }
        let yaml = serde_norway::to_string(&value).unwrap();
        if let Ok(c) = Config::from_yaml(&yaml) {
            VALID_CONFIGS.fetch_add(1, Ordering::SeqCst);
            let (_, mut s, h, date) = situation.setup();
            s.breaker.opened_on = Some(day("2026-04-30"));
            s.breaker.consecutive_failures = c.breaker.failures;
            let _ = eval(&c, &s, &h, &date);
            let csv = episode_csv(situation.today_mrr, situation.closes[0], day("2026-03-01"), 45, situation.cost);
            let scenario = Scenario::parse_csv(&csv, &c).unwrap();
            let options = SimOptions { until: Some(day("2026-12-31")), ..SimOptions::default() };
            prop_assert!(simulate(&c, &scenario, &options).is_ok());
        }
        if CONFIGS.load(Ordering::SeqCst) + 1 == VALID_CONFIG_CASES {
            let valid = VALID_CONFIGS.load(Ordering::SeqCst);
            let _ = writeln!(std::io::stderr().lock(), "property config bounds: {valid} valid configurations run");
            prop_assert!(valid >= 20, "only {valid} of {VALID_CONFIG_CASES} generated configurations validated");
        }
        count_case(&CONFIGS, "any_configuration_that_validates_never_makes_the_engine_panic", VALID_CONFIG_CASES);
    }
}
