//! revscale's domain engine: ADR-017's revenue-driven scaling rules.
//!
//! Pure by construction: no AWS SDK, no async runtime, no clock (chrono is built
//! without its `clock` feature), no file or network I/O. `evaluate(inputs, today)`
//! returns a [`Decision`]; the adapters (the Lambdas, the simulator crate) carry it out.
//!
//! The modules form layers; each uses only those listed before it (checked by
//! `tests/layers.rs`):
//!
//! | layer | module | holds |
//! |---|---|---|
//! | 0 | [`money`] | exact amounts in minor units, currencies, ratios |
//! | 0 | [`model`] | ids, modes, component states and the moves between them |
//! | 0 | [`identity`] | who a principal is, as a person, for the two-person rule |
//! | 1 | [`history`] | daily revenue/cost snapshots and their windows |
//! | 1 | [`drivers`] | the driver kinds: one module per kind, and their registry |
//! | 2 | [`runway`] | cash, net burn and the months they give |
//! | 3 | [`config`] | the validated thresholds file |
//! | 4 | [`state`] | what revscale remembers, and the only ways it changes |
//! | 5 | [`decision`] | what one evaluation decides, and why |
//! | 5 | [`approval`] | the one two-person gate every approval goes through |
//! | 6 | [`rules`] | ADR-017's rules: `evaluate(inputs, today)` |
//! | 6 | [`ports`] | what the adapters implement: stores, bus, notifier, drivers |
//! | 7 | [`provisioning`] | carrying a decision out, step by step or in one go |
//! | 7 | [`drift`] | the daily check of every component's real state against the recorded one |
//! | 8 | [`evaluation`] | the daily use case: load, evaluate, record, publish |
//! | 9 | `testing` | in-memory ports (feature `testing`) |

pub mod identity;
pub mod model;
pub mod money;

pub mod drivers;
pub mod history;

pub mod runway;

pub mod config;

pub mod state;

pub mod approval;
pub mod decision;

pub mod ports;
pub mod rules;

pub mod drift;
pub mod provisioning;

pub mod evaluation;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::{Config, ConfigError, DEFAULT_CONFIG_YAML};
pub use decision::{Decision, Event, Figures, Outcome, RecordedDecision, Severity};
pub use history::{DailySnapshot, History, YearMonth};
pub use model::{
    Capacity, Cause, ComponentId, ComponentState, DecisionId, Mode, ModeSource, Transition, TransitionKind,
};
pub use money::{Currency, Money, Ratio};
pub use rules::{Inputs, evaluate, history_needed_from};
pub use state::SystemState;
