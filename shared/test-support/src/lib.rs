//! Builders the tests of every crate share, and the store contract every `Store`
//! implementation must pass (the in-memory one and DynamoDB on moto).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use chrono::Days;
use revscale_engine::config::Config;
use revscale_engine::model::ComponentState;
use revscale_engine::state::{ComponentRecord, SystemState};
use revscale_engine::{ComponentId, DailySnapshot, Decision, History, Inputs, Money, YearMonth, evaluate};

pub use revscale_engine::testing::{at, day, recorded_execute, seed_record};

pub mod store_contract;
#[cfg(feature = "stripe-fixtures")]
pub mod stripe_history;

pub fn eur(units: i64) -> Money {
    Money::whole(units, revscale_engine::Currency::EUR)
}

pub fn config() -> Config {
    Config::default_config().expect("the shipped config is valid")
}

pub fn config_with(edit: impl FnOnce(&mut serde_norway::Value)) -> Config {
    let mut value: serde_norway::Value =
        serde_norway::from_str(revscale_engine::DEFAULT_CONFIG_YAML).unwrap();
    edit(&mut value);
    Config::from_yaml(&serde_norway::to_string(&value).unwrap()).expect("edited config is valid")
}

/// Fills every day from `from` to `to` (inclusive) with the same MRR and cost.
pub fn fill(history: &mut History, from: &str, to: &str, mrr: i64, cost: i64) {
    let (mut d, end) = (day(from), day(to));
    while d <= end {
        history.insert(DailySnapshot { date: d, mrr: eur(mrr), cost: Some(eur(cost)) });
        d = d + Days::new(1);
    }
}

/// Whole months (`"2026-01"`) at the given MRR, each day with the same cost.
pub fn months(closes: &[(&str, i64)], cost: i64) -> History {
    let mut h = History::new();
    for (month, mrr) in closes {
        let first = day(&format!("{month}-01"));
        let last = YearMonth::of(first).last_day();
        fill(&mut h, &first.to_string(), &last.to_string(), *mrr, cost);
    }
    h
}

/// A system that has been at `level` since `since`, with that level's components HOT.
pub fn at_level(config: &Config, level: u8, since: &str) -> SystemState {
    let mut s = SystemState::initial(config, day(since));
    for id in config.components_up_to(level) {
        s.components.insert(id, ComponentRecord::settled(ComponentState::Hot, day(since)));
    }
    s.level = level;
    s.level_since = day(since);
    s
}

pub fn eval(config: &Config, state: &SystemState, history: &History, today: &str) -> Decision {
    evaluate(&Inputs { config, state, history }, day(today))
}

pub fn id(s: &str) -> ComponentId {
    ComponentId::new(s)
}

pub fn set(value: &mut serde_norway::Value, path: &[&str], new: serde_norway::Value) {
    let mut cur = value;
    for key in &path[..path.len() - 1] {
        cur = cur.get_mut(*key).unwrap_or_else(|| panic!("no key {key}"));
    }
    cur.as_mapping_mut().unwrap().insert(path[path.len() - 1].into(), new);
}

/// Records `request` in `store`'s audit trail as the evaluator would (an `Execute`
/// decision taken at `when`), with the state as it stands.
pub async fn record_request(
    store: &impl revscale_engine::ports::StateStore,
    request: &revscale_engine::ports::LevelChangeRequested,
    when: chrono::DateTime<chrono::Utc>,
) {
    let current = store.load_state().await.unwrap().expect("a state to record against");
    store
        .record_decision(&recorded_execute(request, when), &current.value, Some(current.version))
        .await
        .unwrap();
}
