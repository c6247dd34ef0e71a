//! `revscale doctor --stack S`: what a real account will silently break, checked on
//! the day of the deploy. One line per check (PASS, WARN, FAIL or SKIP), what was
//! found and the exact fix; a non-zero exit on any FAIL. `--fix` applies only the fixes
//! that are safe and reversible, each shown first and confirmed unless `--yes`.
//! docs/deploying.md#the-first-week says what each check means.

mod checks;
mod diff;
mod probe;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
pub use checks::{Check, Repair, Verdict};
use serde::Serialize;

use crate::stack::Target;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// A local configuration to compare with the stack's (a diff), and to check the
    /// components of when nothing was pushed yet.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print `{"stack", "checks": [{"area", "name", "verdict", "found", "fix", "repair"}], "counts"}`.
    #[arg(long)]
    json: bool,
    /// Apply the safe, reversible fixes (activating the cost allocation tags), each shown
    /// and confirmed first; then check again.
    #[arg(long)]
    fix: bool,
    /// With --fix: do not ask.
    #[arg(long, requires = "fix")]
    yes: bool,
    /// Stripe API base URL (a test server, for instance).
    #[arg(long, default_value = "https://api.stripe.com", hide = true)]
    stripe_api_base: String,
}

#[derive(Serialize)]
struct Report<'a> {
    stack: &'a str,
    checks: &'a [Check],
    counts: Counts,
}

#[derive(Serialize, Default, Debug, PartialEq, Eq)]
struct Counts {
    pass: usize,
    warn: usize,
    fail: usize,
    skip: usize,
}

fn counts(checks: &[Check]) -> Counts {
    let mut c = Counts::default();
    for check in checks {
        match check.verdict {
            Verdict::Pass => c.pass += 1,
            Verdict::Warn => c.warn += 1,
            Verdict::Fail => c.fail += 1,
            Verdict::Skip => c.skip += 1,
        }
    }
    c
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let local = match &args.config {
        Some(path) => Some((
            path.display().to_string(),
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
        )),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let sdk = args.target.sdk().await;
        let stack = args.target.stack(&sdk).await?;
        // The stack dates its days in ScheduleTimezone: so does the doctor.
        let zone = stack.parameters.get("ScheduleTimezone").and_then(|z| z.parse::<chrono_tz::Tz>().ok());
        let today = match zone {
            Some(zone) => chrono::Utc::now().with_timezone(&zone).date_naive(),
            None => chrono::Utc::now().date_naive(),
        };
        let probe = probe::Probe { sdk: &sdk, stack: &stack, today, stripe_api_base: &args.stripe_api_base };
        let local = local.as_ref().map(|(name, text)| (name.as_str(), text.as_str()));
        let mut checks = examine(&probe, local).await;
        if args.fix {
            let repairs = repairs(&checks);
            if repairs.is_empty() {
                eprintln!("nothing for --fix to do: no failed check has a safe, reversible fix");
            } else {
                for repair in &repairs {
                    if !args.yes && !confirm(&format!("{repair}?"))? {
                        eprintln!("skipped");
                        continue;
                    }
                    // A refused fix (an Organizations member account may not activate
                    // tags: only the management account may) is said; the report follows.
                    match apply(&sdk, repair).await {
                        Ok(()) => eprintln!("done: {repair}"),
                        Err(e) => eprintln!("could not {repair}: {e:#}"),
                    }
                }
                checks = examine(&probe, local).await;
            }
        }
        if args.json {
            let report = Report { stack: &stack.name, checks: &checks, counts: counts(&checks) };
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", render(&stack.name, &checks));
        }
        Ok(if checks.iter().any(|c| c.verdict == Verdict::Fail) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// Every check, in the order of docs/deploying.md#the-first-week.
async fn examine(probe: &probe::Probe<'_>, local: Option<(&str, &str)>) -> Vec<Check> {
    let (config, config_checks) = probe.config(local).await;
    // The collectors store revenue in the stack's RevenueCurrency, whatever the
    // configuration says (a difference is the configuration check's FAIL).
    let currency = probe
        .stack
        .parameters
        .get("RevenueCurrency")
        .and_then(|c| c.parse().ok())
        .or_else(|| config.as_ref().map(|c| c.currency));
    let mut checks = Vec::new();
    match currency {
        Some(currency) => {
            checks.extend(probe.cost(currency).await);
            checks.extend(probe.stripe(currency).await);
        }
        None => checks.push(Check::fail(
            "cost",
            "revenue currency",
            "neither the configuration nor the stack names one",
        )),
    }
    // The data probe also reads each daily job's last mark, which belongs with the
    // schedules that run them.
    let (runs, data): (Vec<Check>, Vec<Check>) = match &config {
        Some(config) => probe.data(config).await.into_iter().partition(|c| c.area == "schedules"),
        None => (
            vec![],
            vec![Check::skip("data", "snapshots", "no valid configuration to read the windows from")],
        ),
    };
    checks.extend(probe.schedules().await);
    checks.extend(runs);
    checks.push(probe.dead_letters().await);
    checks.push(probe.alerts().await);
    checks.extend(data);
    checks.extend(config_checks);
    match &config {
        Some(config) => checks.extend(probe.components(config).await),
        None => checks.push(
            Check::skip("components", "components", "no configuration pushed or given")
                .fix("revscale doctor --config config/revenue_thresholds.yaml ..."),
        ),
    }
    checks.extend(probe.api().await);
    checks.extend(probe.state(config.as_ref()).await);
    checks
}

/// The distinct repairs the checks that did not pass carry.
fn repairs(checks: &[Check]) -> Vec<Repair> {
    let mut out: Vec<Repair> = Vec::new();
    for repair in checks.iter().filter(|c| c.verdict != Verdict::Pass).filter_map(|c| c.repair.clone()) {
        if !out.contains(&repair) {
            out.push(repair);
        }
    }
    out
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

async fn apply(sdk: &aws_config::SdkConfig, repair: &Repair) -> anyhow::Result<()> {
    match repair {
        Repair::ActivateCostAllocationTags { keys } => {
            use aws_sdk_costexplorer::types::{CostAllocationTagStatus, CostAllocationTagStatusEntry};
            let entries = keys
                .iter()
                .map(|k| {
                    CostAllocationTagStatusEntry::builder()
                        .tag_key(k)
                        .status(CostAllocationTagStatus::Active)
                        .build()
                        .map_err(|e| anyhow::anyhow!("{e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let answer = aws_sdk_costexplorer::Client::new(sdk)
                .update_cost_allocation_tags_status()
                .set_cost_allocation_tags_status(Some(entries))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", aws_sdk_costexplorer::error::DisplayErrorContext(&e)))
                .context(
                    "cannot activate the cost allocation tags (needs ce:UpdateCostAllocationTagsStatus)",
                )?;
            // A key Billing does not know is refused one by one, not for the whole call.
            if let Some(error) = answer.errors().first() {
                anyhow::bail!(
                    "cost allocation tag {}: {} ({})",
                    error.tag_key().unwrap_or("?"),
                    error.message().unwrap_or("refused"),
                    error.code().unwrap_or("no code")
                );
            }
            Ok(())
        }
    }
}

fn render(stack: &str, checks: &[Check]) -> String {
    let mut out = format!("revscale doctor: stack {stack}\n\n");
    let mut area = "";
    for check in checks {
        if check.area != area {
            area = check.area;
            out.push_str(&format!("{area}\n"));
        }
        out.push_str(&format!("  {}  {}: {}\n", check.verdict, check.name, check.found));
        if check.verdict != Verdict::Pass
            && let Some(fix) = &check.fix
        {
            out.push_str(&format!("        fix: {fix}\n"));
        }
        if check.verdict != Verdict::Pass
            && let Some(repair) = &check.repair
        {
            out.push_str(&format!("        --fix: {repair}\n"));
        }
    }
    let c = counts(checks);
    out.push_str(&format!("\n{} pass, {} warn, {} fail, {} skipped\n", c.pass, c.warn, c.fail, c.skip));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_report_gives_each_line_its_fix_and_counts_the_verdicts() {
        let checks = vec![
            Check::pass("cost", "Cost Explorer", "answers"),
            Check::fail("cost", "cost allocation tag k", "inactive")
                .fix("revscale doctor --fix")
                .repair(Repair::ActivateCostAllocationTags { keys: vec!["k".into()] }),
            Check::warn("alerts", "alert subscriptions", "pending").fix("click"),
        ];
        let text = render("rs", &checks);
        assert!(text.contains("cost\n  PASS  Cost Explorer: answers\n  FAIL  cost allocation tag k: inactive\n        fix: revscale doctor --fix\n        --fix: activate"), "{text}");
        assert!(text.contains("alerts\n  WARN  alert subscriptions: pending\n        fix: click"), "{text}");
        assert!(text.ends_with("1 pass, 1 warn, 1 fail, 0 skipped\n"), "{text}");
    }

    #[test]
    fn fix_applies_each_repair_once_and_never_for_a_passed_check() {
        let repair = Repair::ActivateCostAllocationTags { keys: vec!["a".into(), "b".into()] };
        let other = Repair::ActivateCostAllocationTags { keys: vec!["d".into()] };
        let checks = vec![
            Check::fail("cost", "a", "inactive").repair(repair.clone()),
            Check::fail("cost", "b", "inactive").repair(repair.clone()),
            Check::pass("cost", "c", "x")
                .repair(Repair::ActivateCostAllocationTags { keys: vec!["c".into()] }),
            Check::warn("cost", "d", "x").repair(other.clone()),
        ];
        assert_eq!(repairs(&checks), vec![repair, other]);
    }
}
