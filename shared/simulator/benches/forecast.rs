//! The forecast's budget: 10,000 one-year paths, each run day by day through the
//! engine, on every core of the machine (issue 26: at most 30 s on the 2-core CI
//! machine). docs/performance.md records the figure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use revscale_engine::Config;
use revscale_simulator::Scenario;
use revscale_simulator::forecast::{ForecastOptions, forecast};

fn bench(c: &mut Criterion) {
    let config = Config::default_config().expect("valid default config");
    let history = Scenario::parse_csv(include_str!("../../../events/scenarios/steady-growth.csv"), &config)
        .expect("valid");
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let options = ForecastOptions { months: 12, runs: 10_000, seed: 2026, confidence: 0.9 };
    let mut group = c.benchmark_group("forecast");
    group.sample_size(10).measurement_time(Duration::from_secs(60)).warm_up_time(Duration::from_secs(1));
    group.bench_function(format!("10000_paths_12_months_{threads}_threads"), |b| {
        b.iter(|| forecast(black_box(&config), black_box(&history), &options, threads).expect("forecast"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
