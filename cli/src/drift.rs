//! `revscale drift`: every component's real state, read through its driver with the
//! operator's credentials, against the state the stack recorded. The daily check in
//! the evaluator alerts on the same comparison; this one answers "where is everything
//! now?" on demand, and reads only.
//!
//! With a stack (`--stack`, `--api-url`, `REVSCALE_STACK`), the configuration is the
//! one the stack runs (its pushed parameter, else `--config`/the default file, with the
//! stack's parameters filled in) and the recorded states come from `GET /status`.
//! Without one, `--config` (or the default file) alone: actual states, nothing to
//! compare them with.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use revscale_api::StatusResponse;
use revscale_aws::drivers::AwsDrivers;
use revscale_engine::config::Deployment;
use revscale_engine::drift::{Finding, compare};
use revscale_engine::ports::ComponentDriver;
use revscale_engine::{ComponentState, Config};
use serde::Serialize;

use crate::stack::Target;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// The configuration whose components to read [default: the stack's pushed one,
    /// else config/revenue_thresholds.yaml here, else the built-in one].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

/// One component: recorded (with a stack), actual, and the difference.
#[derive(Debug, Serialize)]
pub struct Row {
    pub component: String,
    pub kind: &'static str,
    pub recorded: Option<ComponentState>,
    pub actual: String,
    /// `agrees`, `drift`, `moving`, `unreadable` or `not compared` (no stack).
    pub difference: String,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let sdk = args.target.sdk().await;
        let with_api = args.target.stack_name().is_some() || args.target.api_url.is_some();
        let (config, recorded) = if with_api {
            let config = match args.target.stack_name() {
                Some(_) => stack_config(&sdk, &args.target, args.config.as_ref()).await?,
                // An API URL alone names no stack to read the configuration from.
                None => crate::load_config(args.config.as_ref())?,
            };
            let (status, text) = crate::api::send(&sdk, &args.target, "GET", "/status", None).await?;
            anyhow::ensure!(
                (200..300).contains(&status),
                "cannot read the recorded states ({status}): {text}"
            );
            let status: StatusResponse = serde_json::from_str(&text)
                .context("the API's answer is not the StatusResponse this revscale reads")?;
            (config, Some(status))
        } else {
            (crate::load_config(args.config.as_ref())?, None)
        };
        let drivers = AwsDrivers::new(&sdk);
        let mut rows = Vec::new();
        for id in &config.activation_order {
            let Some(component) = config.component(id) else { continue };
            if component.is_always_on() {
                continue;
            }
            let state =
                recorded.as_ref().map(|s| s.components.get(id).map_or(ComponentState::Cold, |v| v.state));
            let (actual, difference) = match drivers.observe(component).await {
                Err(e) => (String::from("-"), format!("unreadable: {e}")),
                Ok(observed) => {
                    let difference = match state {
                        None => "not compared (no stack)".to_string(),
                        Some(s) if s.is_transitional() => "moving (a provisioning step)".to_string(),
                        Some(s) => match compare(s, &observed) {
                            Finding::Agrees { .. } => "agrees".into(),
                            Finding::Moving { .. } => "moving".into(),
                            Finding::Drifted { .. } => "drift".into(),
                            Finding::Unreadable { error } => format!("unreadable: {error}"),
                        },
                    };
                    (observed.actual, difference)
                }
            };
            rows.push(Row {
                component: id.to_string(),
                kind: component.driver.kind(),
                recorded: state,
                actual,
                difference,
            });
        }
        let drifted = rows.iter().filter(|r| r.difference == "drift").count();
        print!("{}", render(&rows, args.json)?);
        // A script can tell drift by the exit status.
        Ok(if drifted > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
    })
}

/// The configuration the stack runs: its pushed parameter, else the file; with the
/// stack's parameters filled in, as the functions do.
async fn stack_config(
    sdk: &aws_config::SdkConfig,
    target: &Target,
    file: Option<&PathBuf>,
) -> anyhow::Result<Config> {
    let stack = target.stack(sdk).await?;
    // The pushed configuration, if any; a parameter never pushed means the file. Any
    // other failure (no permission) is said, never replaced by the local file.
    let name = stack.output("ConfigParameterName")?;
    let pushed = match revscale_aws::runtime_config::read_pushed(&aws_sdk_ssm::Client::new(sdk), &name).await
    {
        Ok(pushed) => pushed,
        Err(e) => {
            return Err(anyhow::anyhow!("{e}")).context(
                "cannot read the stack's configuration (needs ssm:GetParameter and ssm:GetParameters)",
            );
        }
    };
    if pushed.is_none() {
        eprintln!("note: nothing pushed to {name} yet: the stack runs the file");
    }
    let config = match pushed {
        Some(pushed) => {
            pushed.config(&name).map_err(|e| anyhow::anyhow!("the stack's pushed configuration: {e}"))?
        }
        None => crate::load_config(file)?,
    };
    let deployment = Deployment::from_parameters(|name| stack.parameters.get(name).cloned());
    config.for_deployment(&deployment).map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn render(rows: &[Row], json: bool) -> anyhow::Result<String> {
    if json {
        return Ok(serde_json::to_string_pretty(rows)? + "\n");
    }
    Ok(crate::table::render(
        &["component", "kind", "recorded", "actual", "difference"],
        rows.iter().map(|r| {
            vec![
                r.component.clone(),
                r.kind.to_string(),
                r.recorded.map_or("-".to_string(), |s| s.to_string()),
                r.actual.clone(),
                r.difference.clone(),
            ]
        }),
    ))
}
