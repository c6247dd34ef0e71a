//! `revscale`: run the engine locally (simulate, validate a config) and, later, operate
//! a deployed stack.

mod api;
mod chart;
mod mrr;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use revscale_engine::Config;

#[derive(Parser)]
#[command(name = "revscale", version, about = "Revenue-driven scaling control plane (ADR-017)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the real engine day by day over a revenue/cost scenario, with no AWS.
    Simulate(simulate::Args),
    /// Print the current MRR from Stripe, as the collector computes it.
    Mrr(mrr::Args),
    /// Work with the thresholds configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Where the deployed system stands: level, money, components, breaker, overrides.
    Status(#[command(flatten)] api::Conn),
    /// The audit trail, newest first.
    Decisions {
        #[command(flatten)]
        conn: api::Conn,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Continue after this audit id (printed at the end of a full page).
        #[arg(long)]
        before: Option<String>,
    },
    /// Pin a level with a second person's approval.
    Override {
        #[command(flatten)]
        conn: api::Conn,
        #[command(subcommand)]
        command: api::OverrideCommand,
    },
    /// Reset the circuit breaker.
    Breaker {
        #[command(flatten)]
        conn: api::Conn,
        #[command(subcommand)]
        command: BreakerCommand,
    },
    /// Set the operating mode: shadow, approval or auto.
    Mode {
        #[command(flatten)]
        conn: api::Conn,
        #[arg(value_parser = ["shadow", "approval", "auto"])]
        mode: String,
    },
    /// What the engine would do now, without acting.
    Plan(#[command(flatten)] api::Conn),
    /// A provisioning run that could neither finish nor roll back.
    Provisioning {
        #[command(flatten)]
        conn: api::Conn,
        #[command(subcommand)]
        command: api::ProvisioningCommand,
    },
    /// Approve the level change that waits for approval.
    Pending {
        #[command(flatten)]
        conn: api::Conn,
        #[command(subcommand)]
        command: PendingCommand,
    },
}

#[derive(Subcommand)]
enum BreakerCommand {
    Reset,
}

#[derive(Subcommand)]
enum PendingCommand {
    /// Approve the level change waiting for approval; the engine evaluates at once.
    Approve,
    /// Refuse it for now (the engine proposes it again while its reasons hold).
    Reject {
        /// Why: recorded in the audit trail.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration; print every problem with its key path.
    Validate {
        /// The file to check (default: config/revenue_thresholds.yaml).
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) => simulate::run(&args),
        Command::Mrr(args) => mrr::run(&args),
        Command::Config { command: ConfigCommand::Validate { file } } => validate(file),
        Command::Status(conn) => api::run(&conn, api::Call::Status),
        Command::Decisions { conn, limit, before } => api::run(&conn, api::Call::Decisions { limit, before }),
        Command::Override { conn, command } => api::run(&conn, api::Call::Override(command)),
        Command::Breaker { conn, command: BreakerCommand::Reset } => api::run(&conn, api::Call::BreakerReset),
        Command::Mode { conn, mode } => api::run(&conn, api::Call::Mode(mode)),
        Command::Plan(conn) => api::run(&conn, api::Call::Plan),
        Command::Pending { conn, command: PendingCommand::Approve } => {
            api::run(&conn, api::Call::PendingApprove)
        }
        Command::Pending { conn, command: PendingCommand::Reject { reason } } => {
            api::run(&conn, api::Call::PendingReject { reason })
        }
        Command::Provisioning { conn, command } => api::run(&conn, api::Call::Provisioning(command)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("revscale: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub const DEFAULT_CONFIG_PATH: &str = "config/revenue_thresholds.yaml";

/// Loads `path`, or the default file when it exists, or the copy compiled into the
/// binary, so `revscale simulate` works from any directory.
pub fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    let (text, name) = match path {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
            p.display().to_string(),
        ),
        None => match std::fs::read_to_string(DEFAULT_CONFIG_PATH) {
            Ok(text) => (text, DEFAULT_CONFIG_PATH.to_string()),
            Err(_) => {
                (revscale_engine::DEFAULT_CONFIG_YAML.to_string(), "built-in default config".to_string())
            }
        },
    };
    Config::from_yaml(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

fn validate(file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let path = file.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    match Config::from_yaml(&text) {
        Ok(config) => {
            println!(
                "{}: valid ({} levels, {} components, mode {}, currency {})",
                path.display(),
                config.levels.len(),
                config.components.len(),
                config.mode,
                config.currency
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{}: {} problem(s)", path.display(), e.0.len());
            for problem in &e.0 {
                println!("  {problem}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
