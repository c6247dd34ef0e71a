//! `revscale`: run the engine locally (simulate, validate a config) and operate a
//! deployed stack (status, overrides, approvals, mode, config, drain).
//!
//! The operator commands need the `aws` feature (on by default); without it the CLI
//! is the simulator and the validator, and builds without the AWS SDK.

#[cfg(feature = "aws")]
mod api;
mod backtest;
mod chart;
#[cfg(feature = "aws")]
mod config_push;
#[cfg(feature = "aws")]
mod doctor;
#[cfg(feature = "aws")]
mod drift;
mod forecast;
#[cfg(feature = "aws")]
mod history;
#[cfg(feature = "aws")]
mod mrr;
#[cfg(feature = "aws")]
mod orphans;
#[cfg(feature = "aws")]
mod render;
mod simulate;
#[cfg(feature = "aws")]
mod stack;
#[cfg(feature = "aws")]
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
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
    /// Replay a company's own history (`history fetch`, `history export`) through the
    /// engine and write one self-contained HTML report.
    Backtest(backtest::Args),
    /// A Monte Carlo forecast through the engine: the probability of each level by
    /// month, when each level comes, and when to pre-warm (no AWS).
    Forecast(forecast::Args),
    /// Fetch the past from Stripe and Cost Explorer, seed a stack with it, or export what
    /// a stack has collected.
    #[cfg(feature = "aws")]
    History {
        #[command(subcommand)]
        command: history::Command,
    },
    /// Work with the thresholds configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script: `revscale completions bash > /etc/bash_completion.d/revscale`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the current MRR from Stripe, as the collector computes it.
    #[cfg(feature = "aws")]
    Mrr(mrr::Args),
    /// Where the deployed system stands: level, money, components, breaker, overrides.
    #[cfg(feature = "aws")]
    Status {
        #[command(flatten)]
        conn: api::Conn,
        /// Also list the resources tagged revscale:managed=true that the state does not
        /// account for (needs tag:GetResources).
        #[arg(long)]
        orphans: bool,
    },
    /// The audit trail, newest first.
    #[cfg(feature = "aws")]
    Decisions {
        #[command(flatten)]
        conn: api::Conn,
        /// How many entries to show (at most 100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Continue after this audit id (printed at the end of a full page).
        #[arg(long)]
        before: Option<String>,
    },
    /// Pin a level with a second person's approval.
    #[cfg(feature = "aws")]
    Override {
        #[command(flatten)]
        conn: api::Conn,
        #[command(subcommand)]
        command: api::OverrideCommand,
    },
    /// Reset the circuit breaker.
    #[cfg(feature = "aws")]
    Breaker {
        #[command(flatten)]
        conn: api::Conn,
        #[command(subcommand)]
        command: BreakerCommand,
    },
    /// Show the operating mode and where it comes from, or set it: shadow, approval or auto.
    #[cfg(feature = "aws")]
    Mode {
        #[command(flatten)]
        conn: api::Conn,
        /// The mode to set; without it, the mode in force and its source are shown.
        #[arg(value_parser = ["shadow", "approval", "auto"])]
        mode: Option<String>,
    },
    /// What the engine would do now, without acting.
    #[cfg(feature = "aws")]
    Plan(#[command(flatten)] api::Conn),
    /// The company's cash, for the runway guard (`runway` in the configuration).
    #[cfg(feature = "aws")]
    Cash {
        #[command(flatten)]
        conn: api::Conn,
        #[command(subcommand)]
        command: api::CashCommand,
    },
    /// A provisioning run that could neither finish nor roll back.
    #[cfg(feature = "aws")]
    Provisioning {
        #[command(flatten)]
        conn: api::Conn,
        #[command(subcommand)]
        command: api::ProvisioningCommand,
    },
    /// Where every component really is, read through its driver, against the state the
    /// stack recorded (exit status 3 when anything drifted).
    #[cfg(feature = "aws")]
    Drift(drift::Args),
    /// What a real account will silently break, checked now: cost allocation tags, the
    /// Stripe key's permissions, schedules, alert subscriptions, snapshots, the pushed
    /// configuration, each component's resource and permissions, your roles, the state
    /// (exit status 1 on any FAIL; --fix applies the safe, reversible fixes).
    #[cfg(feature = "aws")]
    Doctor(doctor::Args),
    /// Take down everything revscale made (every managed component COLD, level 0), with a
    /// second person's approval: the way out before `sam delete`.
    #[cfg(feature = "aws")]
    #[command(subcommand_negates_reqs = true)]
    Drain {
        #[command(flatten)]
        conn: api::Conn,
        #[command(subcommand)]
        command: Option<api::DrainCommand>,
        /// Why: recorded in the audit trail and shown to the approver.
        #[arg(long, required_unless_present = "dry_run")]
        reason: Option<String>,
        /// Show what a drain would take down, in order, without asking for one.
        #[arg(long)]
        dry_run: bool,
    },
    /// Approve or refuse the level change that waits for approval.
    #[cfg(feature = "aws")]
    Pending {
        #[command(flatten)]
        conn: api::Conn,
        #[command(subcommand)]
        command: PendingCommand,
    },
}

#[derive(Subcommand)]
enum BreakerCommand {
    /// Close the breaker and forget its failures.
    Reset,
}

#[derive(Subcommand)]
enum PendingCommand {
    /// Approve the level change waiting for approval; the engine evaluates at once.
    /// Without --id, the change waiting now is shown and, once you confirm, its id sent:
    /// if the engine replaced it in between (a churn drop where growth was proposed),
    /// the API refuses (409) rather than approve it. Scripts pass --id.
    Approve {
        /// The change's id (`pending_approval_id` in `revscale status --json`).
        #[arg(long)]
        id: Option<String>,
    },
    /// Refuse it for now (the engine proposes it again while its reasons hold).
    Reject {
        /// Why: recorded in the audit trail.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration; print every problem with its key path. With --stack (the
    /// flag: REVSCALE_STACK alone keeps this offline), also against the deployed stack
    /// and the account, as `config push --dry-run` does: the stack's parameters,
    /// resources that must exist, and what a workload's first step would refuse (an
    /// HPA, a missing label).
    Validate {
        /// The file to check [default: config/revenue_thresholds.yaml if it exists here,
        /// else the configuration built into revscale].
        file: Option<PathBuf>,
        /// Print `{"file", "valid", "problems": [...]}` instead of text (with --stack,
        /// what `config push --dry-run --json` prints).
        #[arg(long)]
        json: bool,
        #[cfg(feature = "aws")]
        #[command(flatten)]
        target: stack::Target,
    },
    /// Validate a configuration against the deployed stack, then upload it: the
    /// functions load it at their next cold start.
    #[cfg(feature = "aws")]
    Push(config_push::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) => simulate::run(&args),
        Command::Backtest(args) => backtest::run(&args),
        Command::Forecast(args) => forecast::run(&args),
        #[cfg(feature = "aws")]
        Command::History { command } => history::run(&command),
        #[cfg(feature = "aws")]
        Command::Config { command: ConfigCommand::Validate { file, json, target } }
            if target.stack.is_some() =>
        {
            validate_against_stack(file, target, json)
        }
        #[cfg(feature = "aws")]
        Command::Config { command: ConfigCommand::Validate { file, json, .. } } => validate(file, json),
        #[cfg(not(feature = "aws"))]
        Command::Config { command: ConfigCommand::Validate { file, json } } => validate(file, json),
        #[cfg(feature = "aws")]
        Command::Config { command: ConfigCommand::Push(args) } => config_push::run(&args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "revscale", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "aws")]
        Command::Mrr(args) => mrr::run(&args),
        #[cfg(feature = "aws")]
        Command::Drift(args) => drift::run(&args),
        #[cfg(feature = "aws")]
        Command::Doctor(args) => doctor::run(&args),
        #[cfg(feature = "aws")]
        Command::Status { conn, orphans: false } => api::run(&conn, api::Call::Status),
        #[cfg(feature = "aws")]
        Command::Status { conn, orphans: true } => api::run(&conn, api::Call::StatusWithOrphans),
        #[cfg(feature = "aws")]
        Command::Drain { command: Some(_), reason: Some(_), .. }
        | Command::Drain { command: Some(_), dry_run: true, .. } => {
            Err(anyhow::anyhow!("drain approve and drain cancel take no --reason or --dry-run"))
        }
        #[cfg(feature = "aws")]
        Command::Drain { conn, command: Some(command), .. } => api::run(&conn, api::Call::Drain(command)),
        #[cfg(feature = "aws")]
        Command::Drain { conn, command: None, dry_run: true, .. } => api::run(&conn, api::Call::DrainPlan),
        #[cfg(feature = "aws")]
        Command::Drain { conn, command: None, reason, .. } => {
            api::run(&conn, api::Call::DrainRequest { reason: reason.unwrap_or_default() })
        }
        #[cfg(feature = "aws")]
        Command::Decisions { conn, limit, before } => api::run(&conn, api::Call::Decisions { limit, before }),
        #[cfg(feature = "aws")]
        Command::Override { conn, command } => api::run(&conn, api::Call::Override(command)),
        #[cfg(feature = "aws")]
        Command::Breaker { conn, command: BreakerCommand::Reset } => api::run(&conn, api::Call::BreakerReset),
        #[cfg(feature = "aws")]
        Command::Mode { conn, mode: Some(mode) } => api::run(&conn, api::Call::Mode(mode)),
        #[cfg(feature = "aws")]
        Command::Mode { conn, mode: None } => api::run(&conn, api::Call::ShowMode),
        #[cfg(feature = "aws")]
        Command::Plan(conn) => api::run(&conn, api::Call::Plan),
        #[cfg(feature = "aws")]
        Command::Cash { conn, command } => api::run(&conn, api::Call::Cash(command)),
        #[cfg(feature = "aws")]
        Command::Pending { conn, command: PendingCommand::Approve { id } } => {
            api::run(&conn, api::Call::PendingApprove { id })
        }
        #[cfg(feature = "aws")]
        Command::Pending { conn, command: PendingCommand::Reject { reason } } => {
            api::run(&conn, api::Call::PendingReject { reason })
        }
        #[cfg(feature = "aws")]
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
    let (text, name) = config_text(path)?;
    parse_config(&text, &name).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

/// The configuration in `text`, read from the file `name`: the files it names (a
/// CloudFormation template) are read relative to that file's directory.
pub fn parse_config(text: &str, name: &str) -> Result<Config, revscale_engine::ConfigError> {
    let file = std::path::Path::new(name);
    let base = file.is_file().then(|| file.parent().map(std::path::Path::to_path_buf).unwrap_or_default());
    let read = |relative: &str| match &base {
        Some(dir) => std::fs::read_to_string(dir.join(relative)).map_err(|e| e.to_string()),
        None => revscale_engine::config::shipped_file(relative),
    };
    Config::from_yaml_reading(text, &read)
}

/// The text of `path`, or of the default file when it exists, or of the built-in
/// configuration, with the name to report it under.
pub fn config_text(path: Option<&PathBuf>) -> anyhow::Result<(String, String)> {
    Ok(match path {
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
    })
}

/// `config validate [FILE] --stack NAME`: the file's checks, then the stack's and the
/// account's, uploading nothing.
#[cfg(feature = "aws")]
fn validate_against_stack(
    file: Option<PathBuf>,
    target: stack::Target,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let file = match file {
        Some(file) => file,
        None if std::path::Path::new(DEFAULT_CONFIG_PATH).is_file() => PathBuf::from(DEFAULT_CONFIG_PATH),
        None => anyhow::bail!("name the file to check against the stack (no {DEFAULT_CONFIG_PATH} here)"),
    };
    config_push::run(&config_push::Args { file, target, dry_run: true, json })
}

/// Checks `file`, or the default file when it exists here, or the configuration built
/// into revscale (what `simulate` runs with outside the repository).
fn validate(file: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let (text, name) = config_text(file.as_ref())?;
    let result = parse_config(&text, &name);
    if json {
        let problems: Vec<String> = match &result {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        };
        println!("{}", serde_json::json!({"file": name, "valid": result.is_ok(), "problems": problems}));
        return Ok(if result.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    match result {
        Ok(config) => {
            println!(
                "{name}: valid ({} levels, {} components, mode {}, currency {})",
                config.levels.len(),
                config.components.len(),
                config.mode,
                config.currency
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{name}: {} problem(s)", e.0.len());
            for problem in &e.0 {
                println!("  {problem}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command and every flag says what it is for in `--help`.
    fn undocumented(command: &clap::Command, path: &str, out: &mut Vec<String>) {
        let path = format!("{path} {}", command.get_name()).trim().to_string();
        if command.get_about().is_none() && path != "revscale" {
            out.push(format!("{path}: no about"));
        }
        for arg in command.get_arguments() {
            let builtin = ["help", "version"].contains(&arg.get_id().as_str());
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} --{}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            undocumented(sub, &path, out);
        }
    }

    #[test]
    fn every_command_and_flag_has_help() {
        let mut missing = Vec::new();
        undocumented(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:#?}");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
