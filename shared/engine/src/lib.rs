//! revscale's domain engine: ADR-017's revenue-driven scaling rules.
//!
//! Pure by construction: no AWS SDK, no async runtime, no clock (chrono is built
//! without its `clock` feature), no file or network I/O. `evaluate(inputs, today)`
//! returns a [`Decision`]; the adapters (Lambdas, the simulator) carry it out.

pub mod config;
pub mod cycle;
pub mod decision;
pub mod engine;
pub mod history;
pub mod money;
pub mod ports;
pub mod provisioning;
pub mod run;
pub mod sim;
pub mod state;

pub use config::{ComponentId, Config, ConfigError, DEFAULT_CONFIG_YAML};
pub use decision::{Cause, Decision, DecisionId, Event, Figures, Outcome, Severity};
pub use engine::{Inputs, evaluate, history_needed_from};
pub use history::{DailySnapshot, History, YearMonth};
pub use money::{Currency, Money, Ratio};
pub use state::{ComponentState, Mode, SystemState, Transition, TransitionKind};
