//! Ten years of daily history: the whole simulation (one evaluation a day, with
//! provisioning), and one evaluation that is handed all ten years.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::hint::black_box;

use chrono::{Days, Months, NaiveDate};
use criterion::{Criterion, criterion_group, criterion_main};
use revscale_engine::{Config, Currency, DailySnapshot, History, Inputs, Money, SystemState, evaluate};
use revscale_simulator::{Scenario, SimOptions, simulate};

/// Monthly rows over ten years: growth to level 4, a churn dip, recovery, a cost spike.
fn scenario_csv() -> String {
    let mut csv = String::from("date,mrr,cost\n");
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date");
    for month in 0..120u32 {
        let mrr = match month {
            0..=47 => 200 + month * 300,
            48..=59 => 3_000,
            60..=99 => 3_000 + (month - 60) * 400,
            _ => 19_000,
        };
        let cost = if (80..84).contains(&month) { mrr * 95 / 100 } else { mrr / 12 };
        let date = start + Months::new(month);
        csv.push_str(&format!("{date},{mrr},{cost}\n"));
    }
    csv
}

fn bench(c: &mut Criterion) {
    let config = Config::default_config().expect("valid default config");
    let scenario = Scenario::parse_csv(&scenario_csv(), &config).expect("valid scenario");
    let days = simulate(&config, &scenario, &SimOptions::default()).expect("simulation runs").len();
    assert!(days >= 3_650, "ten years simulated ({days} days)");

    let mut group = c.benchmark_group("ten_years");
    group.sample_size(20);
    group.bench_function("simulate_3652_days", |b| {
        b.iter(|| simulate(black_box(&config), black_box(&scenario), &SimOptions::default()))
    });

    let start = NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date");
    let history = History::from_snapshots((0..3_652u64).map(|i| DailySnapshot {
        date: start + Days::new(i),
        mrr: Money::whole(200 + i as i64 * 5, Currency::EUR),
        cost: Some(Money::whole(100 + i as i64, Currency::EUR)),
    }));
    let today = start + Days::new(3_651);
    let state = SystemState::initial(&config, start);
    group.bench_function("evaluate_one_day_given_3652_days", |b| {
        b.iter(|| evaluate(black_box(&Inputs { config: &config, state: &state, history: &history }), today))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
