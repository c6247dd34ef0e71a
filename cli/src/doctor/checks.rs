//! The verdicts of `revscale doctor`, decided from what was read: pure functions, one
//! per check, so that each PASS, WARN and FAIL is tested on its own without an account.
//! The reading is in [`super::probe`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, Months, NaiveDate};
use revscale_api::auth::{Caller, Patterns};
use revscale_engine::identity;
use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    /// Works today, but something will go wrong or is incomplete.
    Warn,
    /// Something that will silently break: the command exits non-zero.
    Fail,
    /// Could not be checked (with the reason): not a failure of the stack.
    Skip,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        })
    }
}

/// A fix `--fix` may apply: safe (it changes no resource that runs or bills) and
/// reversible (each has its undo, said in the line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Repair {
    /// `ce:UpdateCostAllocationTagsStatus` to Active (undo: the same call, Inactive).
    ActivateCostAllocationTags { keys: Vec<String> },
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repair::ActivateCostAllocationTags { keys } => write!(
                f,
                "activate the cost allocation tag(s) {} (undo: aws ce update-cost-allocation-tags-status with Status=Inactive)",
                keys.join(", ")
            ),
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The area: cost, stripe, schedules, alerts, data, config, components, api, state.
    pub area: &'static str,
    /// What was checked, e.g. `cost allocation tag revscale-component`.
    pub name: String,
    pub verdict: Verdict,
    /// What was found, in words.
    pub found: String,
    /// The exact fix: a command, a console path or a policy statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// What `--fix` would do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<Repair>,
}

impl Check {
    pub fn new(
        area: &'static str,
        name: impl Into<String>,
        verdict: Verdict,
        found: impl Into<String>,
    ) -> Self {
        Check { area, name: name.into(), verdict, found: found.into(), fix: None, repair: None }
    }

    pub fn pass(area: &'static str, name: impl Into<String>, found: impl Into<String>) -> Self {
        Self::new(area, name, Verdict::Pass, found)
    }

    pub fn warn(area: &'static str, name: impl Into<String>, found: impl Into<String>) -> Self {
        Self::new(area, name, Verdict::Warn, found)
    }

    pub fn fail(area: &'static str, name: impl Into<String>, found: impl Into<String>) -> Self {
        Self::new(area, name, Verdict::Fail, found)
    }

    pub fn skip(area: &'static str, name: impl Into<String>, found: impl Into<String>) -> Self {
        Self::new(area, name, Verdict::Skip, found)
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub fn repair(mut self, repair: Repair) -> Self {
        self.repair = Some(repair);
        self
    }
}

// ---- cost data ----------------------------------------------------------------------

/// A cost allocation tag key as Cost Explorer lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostTag {
    pub key: String,
    pub active: bool,
    /// When its status last changed: for an active tag, when it was activated.
    pub last_updated: Option<NaiveDate>,
}

/// Cost Explorer groups cost by a tag only from its activation on: the evaluator reads
/// up to three months of cost (the guard's projection, the 3-month figures), so
/// per-component cost is complete once the activation is that old.
pub const TAG_COMPLETE_AFTER_DAYS: u64 = 90;

/// The tag revscale's drivers put on what they create, naming each component, and the
/// one naming the stack that created it.
pub use revscale_engine::drivers::{COMPONENT_TAG, STACK_TAG};

/// The stack's `CostTagKey` (what the cost collector groups by) against what the
/// drivers tag with: two different keys and every component costs 0.
pub fn cost_tag_key(configured: &str) -> Check {
    let name = "CostTagKey";
    if configured == COMPONENT_TAG {
        return Check::pass("cost", name, format!("{configured}, the key the drivers tag with"));
    }
    Check::fail(
        "cost",
        name,
        format!(
            "the cost collector groups by {configured}, but the drivers tag what they create {COMPONENT_TAG}=<component>: no component's cost is ever found"
        ),
    )
    .fix(format!("sam deploy --parameter-overrides CostTagKey={COMPONENT_TAG}"))
}

/// The component tag and the stack tag: known to Billing and active, and for how long.
/// `carried` is how many of the account's resources carry the component tag now.
pub fn cost_tags(listed: &[CostTag], carried: usize, today: NaiveDate) -> Vec<Check> {
    let mut checks = Vec::new();
    for key in [COMPONENT_TAG, STACK_TAG] {
        let component = key == COMPONENT_TAG;
        let name = format!("cost allocation tag {key}");
        let why = if component {
            "Cost Explorer groups no cost by it, so every component costs 0 and the guard's ratios leave them out"
        } else {
            "Cost Explorer cannot tell this stack's spend from another stack's (it is not used for the guard)"
        };
        let activate = || Repair::ActivateCostAllocationTags { keys: vec![key.to_string()] };
        match listed.iter().find(|t| t.key == key) {
            // A key appears in Billing only once a resource carrying it was billed: in
            // shadow mode, before any climb, nothing revscale creates exists yet.
            None => {
                let verdict = if component && carried > 0 { Verdict::Fail } else { Verdict::Warn };
                let found = if carried > 0 && component {
                    format!("unknown to Billing although {carried} resource(s) carry it: {why}")
                } else {
                    format!("unknown to Billing: no billed resource carried it yet (revscale tags what it creates, at the first climb); until it is activated {why}")
                };
                checks.push(Check::new("cost", name, verdict, found).fix(format!(
                    "a key shows in Billing up to 24 h after a resource carrying it is billed; then `revscale doctor --fix`, or Billing and Cost Management console > Cost allocation tags > {key} > Activate"
                )));
            }
            Some(tag) if !tag.active => checks.push(
                Check::new("cost", name, if component { Verdict::Fail } else { Verdict::Warn }, format!("inactive: {why}"))
                    .fix(format!(
                        "revscale doctor --fix (or: aws ce update-cost-allocation-tags-status --cost-allocation-tags-status TagKey={key},Status=Active)"
                    ))
                    .repair(activate()),
            ),
            Some(tag) => {
                let since = tag.last_updated.map_or_else(|| "an unknown date".to_string(), |d| d.to_string());
                checks.push(Check::pass("cost", name, format!("active since {since}")));
                if let (true, Some(activated)) = (component, tag.last_updated) {
                    checks.push(tag_age(key, activated, today));
                }
            }
        }
    }
    // One repair for every inactive key: one call activates them all.
    let inactive: Vec<String> = checks
        .iter()
        .filter_map(|c| c.repair.as_ref())
        .flat_map(|Repair::ActivateCostAllocationTags { keys }| keys.clone())
        .collect();
    if inactive.len() > 1 {
        for check in &mut checks {
            if check.repair.is_some() {
                check.repair = Some(Repair::ActivateCostAllocationTags { keys: inactive.clone() });
            }
        }
    }
    checks
}

fn tag_age(key: &str, activated: NaiveDate, today: NaiveDate) -> Check {
    let days = (today - activated).num_days().max(0);
    let complete = activated + Days::new(TAG_COMPLETE_AFTER_DAYS);
    let name = format!("cost by {key} since activation");
    if today >= complete {
        Check::pass(
            "cost",
            name,
            format!(
                "{days} days: the {TAG_COMPLETE_AFTER_DAYS} days the evaluator reads are all grouped by component"
            ),
        )
    } else {
        let from = today - Days::new(TAG_COMPLETE_AFTER_DAYS);
        Check::warn(
            "cost",
            name,
            format!(
                "{days} days: cost before {activated} is not grouped by component, so per-component cost is incomplete until {complete}"
            ),
        )
        .fix(format!(
            "aws ce start-cost-allocation-tag-backfill --backfill-from {from}T00:00:00Z (Cost Explorer regroups up to 12 months back, within about a day), or wait"
        ))
    }
}

/// Resources revscale manages (tagged `revscale:managed=true`) that lack the component
/// tag: their spend lands in Cost Explorer's untagged group, as if nothing paid for it.
pub fn untagged_managed(tag_key: &str, managed: &[(String, BTreeMap<String, String>)]) -> Check {
    let name = format!("managed resources tagged {tag_key}");
    let untagged: Vec<&str> =
        managed.iter().filter(|(_, tags)| !tags.contains_key(tag_key)).map(|(arn, _)| arn.as_str()).collect();
    if untagged.is_empty() {
        return Check::pass("cost", name, format!("{} managed resource(s), all tagged", managed.len()));
    }
    let shown: Vec<&str> = untagged.iter().take(5).copied().collect();
    let more = untagged.len().saturating_sub(shown.len());
    Check::fail(
        "cost",
        name,
        format!(
            "{} of {} managed resource(s) carry no {tag_key} tag, so their spend is counted as no component's: {}{}",
            untagged.len(),
            managed.len(),
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ),
    )
    .fix(format!(
        "aws resourcegroupstaggingapi tag-resources --resource-arn-list {} --tags {tag_key}=<component id>",
        shown.first().copied().unwrap_or_default()
    ))
}

// ---- Stripe ---------------------------------------------------------------------------

/// What kind of key the collector holds.
pub fn stripe_key(key: &str) -> Check {
    let name = "Stripe key kind";
    let restricted_fix = "Stripe Dashboard > Developers > API keys > Create restricted key: Read on Subscriptions, Invoices, Products (prices, plans), Coupons; then aws secretsmanager put-secret-value --secret-id <StripeSecretArn> --secret-string file://key.txt (a file, not the shell's history)";
    match key.trim() {
        k if k.starts_with("rk_live_") => Check::pass("stripe", name, "a live restricted key"),
        k if k.starts_with("rk_test_") => Check::warn(
            "stripe",
            name,
            "a test-mode restricted key: MRR comes from test data, not from customers",
        )
        .fix(restricted_fix),
        k if k.starts_with("sk_live_") || k.starts_with("sk_test_") => Check::warn(
            "stripe",
            name,
            "a full secret key: it can refund, pay out and delete; revscale needs only to read",
        )
        .fix(restricted_fix),
        k if k.starts_with("pk_") => {
            Check::fail("stripe", name, "a publishable key: it reads nothing the collector needs")
                .fix(restricted_fix)
        }
        _ => Check::fail("stripe", name, "not a Stripe secret or restricted key (rk_... or sk_...)")
            .fix(restricted_fix),
    }
}

/// The list endpoints the collector and `history` read, with the restricted-key
/// permission each needs (as Stripe's Dashboard names it).
pub const STRIPE_ENDPOINTS: [(&str, &str); 6] = [
    ("subscriptions", "Subscriptions: Read"),
    ("subscription_items", "Subscriptions: Read"),
    ("prices", "Products: Read (prices)"),
    ("plans", "Plans: Read"),
    ("coupons", "Coupons: Read"),
    ("invoices", "Invoices: Read (and their lines)"),
];

/// How one endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointAnswer {
    Answered,
    /// Not asked, and why (no subscription to list the items of, say).
    NotAsked(String),
    Refused {
        status: u16,
        message: String,
    },
    Unreachable(String),
}

pub fn stripe_endpoint(path: &str, permission: &str, answer: &EndpointAnswer) -> Check {
    let name = format!("Stripe GET {path}");
    match answer {
        EndpointAnswer::Answered => Check::pass("stripe", name, "answers"),
        EndpointAnswer::NotAsked(why) => Check::skip("stripe", name, why.clone()),
        EndpointAnswer::Refused { status: 401, message } => {
            Check::fail("stripe", name, format!("the key is refused (401): {message}"))
                .fix("the key was revoked or mistyped: put a valid one in the stack's StripeSecretArn secret")
        }
        EndpointAnswer::Refused { status: 403, message } => Check::fail(
            "stripe",
            name,
            format!("the key lacks a permission (403), which fails only on the day such an object first appears: {message}"),
        )
        .fix(format!("Stripe Dashboard > Developers > API keys > the restricted key > Edit: {permission}")),
        EndpointAnswer::Refused { status, message } => {
            Check::fail("stripe", name, format!("Stripe answered {status}: {message}"))
        }
        EndpointAnswer::Unreachable(why) => Check::fail("stripe", name, format!("no answer: {why}")),
    }
}

/// Every currency the account bills in is the revenue currency or has a rate.
pub fn stripe_currencies(
    seen: &BTreeSet<String>,
    revenue_currency: &str,
    rates: &BTreeSet<String>,
    sampled: usize,
) -> Check {
    let name = "Stripe currencies";
    let missing: Vec<&String> =
        seen.iter().filter(|c| c.as_str() != revenue_currency && !rates.contains(c.as_str())).collect();
    let list = |v: &[&String]| v.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ");
    if missing.is_empty() {
        let seen: Vec<&String> = seen.iter().collect();
        return Check::pass(
            "stripe",
            name,
            format!(
                "{} in the first {sampled} subscriptions and prices: each is {revenue_currency} or has a rate",
                if seen.is_empty() { "no currency".to_string() } else { list(&seen) }
            ),
        );
    }
    Check::fail(
        "stripe",
        name,
        format!(
            "{} billed, with no rate into {revenue_currency}: the collector fails on the first such subscription",
            list(&missing)
        ),
    )
    .fix(format!(
        "sam deploy --parameter-overrides FxRates=\"<the current FxRates>,{}=<rate>\"",
        missing.first().map_or("XXX", |c| c.as_str())
    ))
}

// ---- schedules and alerts -------------------------------------------------------------

/// A schedule as EventBridge Scheduler describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub name: String,
    pub enabled: bool,
    pub timezone: Option<String>,
    pub expression: String,
}

pub fn schedule(found: Option<&Schedule>, name: &str, timezone: &str) -> Check {
    let check = format!("schedule {name}");
    match found {
        None => Check::fail("schedules", check, "does not exist: nothing runs it")
            .fix("sam deploy (the stack creates it); was it deleted by hand?"),
        Some(s) if !s.enabled => Check::fail("schedules", check, format!("disabled ({}): no snapshot or evaluation is made", s.expression))
            // update-schedule replaces the whole schedule (target, time zone, retries and
            // dead-letter queue included): the template is the one place that has them.
            .fix(format!("sam deploy, which sets {name} back as the template has it (aws scheduler update-schedule replaces the whole schedule: a hand-made one loses its time zone, retries and dead-letter queue)")),
        Some(s) if s.timezone.as_deref().unwrap_or("UTC") != timezone => Check::fail(
            "schedules",
            check,
            format!(
                "runs in {} while the stack dates its days in {timezone}: snapshots and decisions land on the wrong day",
                s.timezone.as_deref().unwrap_or("UTC")
            ),
        )
        .fix("sam deploy (the template sets ScheduleTimezone on every schedule)"),
        Some(s) => Check::pass("schedules", check, format!("enabled, {} in {timezone}", s.expression)),
    }
}

/// When a daily job last left its mark: the newest snapshot of a kind, or the newest
/// evaluation in the audit trail. A day's slack: the job may not have run yet today.
pub fn last_run(job: &str, last: Option<NaiveDate>, today: NaiveDate) -> Check {
    let name = format!("last {job}");
    match last {
        None => Check::warn("schedules", name, "never: nothing recorded yet")
            .fix("wait for the first scheduled run, or see the function's log group for its error"),
        Some(day) if today - day <= chrono::Duration::days(1) => {
            Check::pass("schedules", name, format!("{day}"))
        }
        Some(day) => Check::fail(
            "schedules",
            name,
            format!("{day}, {} days ago: the runs since failed or did not happen", (today - day).num_days()),
        )
        .fix("read the function's log group (/aws/lambda/<stack>-...) and the DailyDeadLetterQueue"),
    }
}

pub fn dead_letters(waiting: u64) -> Check {
    let name = "failed daily runs (DailyDeadLetterQueue)";
    if waiting == 0 {
        return Check::pass("schedules", name, "none waiting");
    }
    Check::fail("schedules", name, format!("{waiting} daily run(s) failed every retry and wait there"))
        .fix("read them (aws sqs receive-message --queue-url <DailyDeadLetterQueueUrl>), fix the cause, then purge the queue")
}

/// An SNS subscription: who, how, and its ARN (`PendingConfirmation` until confirmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub protocol: String,
    pub endpoint: String,
    pub arn: String,
}

pub fn subscriptions(topic: &str, subscriptions: &[Subscription]) -> Check {
    let name = "alert subscriptions";
    let subscribe = format!(
        "aws sns subscribe --topic-arn {topic} --protocol email --notification-endpoint you@example.com (then click the link in the e-mail)"
    );
    if subscriptions.is_empty() {
        return Check::fail("alerts", name, "none: the 80% cost alert and every other alert go nowhere")
            .fix(subscribe);
    }
    let pending: Vec<String> = subscriptions
        .iter()
        .filter(|s| s.arn == "PendingConfirmation" || s.arn.is_empty())
        .map(|s| format!("{} ({})", s.endpoint, s.protocol))
        .collect();
    if pending.is_empty() {
        return Check::pass("alerts", name, format!("{} confirmed", subscriptions.len()));
    }
    let confirmed = subscriptions.len() - pending.len();
    Check::new(
        "alerts",
        name,
        if confirmed == 0 { Verdict::Fail } else { Verdict::Warn },
        format!(
            "not confirmed: {}; SNS delivers nothing to them until they click the link in AWS's e-mail ({confirmed} confirmed)",
            pending.join(", ")
        ),
    )
    .fix(format!("click the link in the \"AWS Notification - Subscription Confirmation\" e-mail, or resend it: {subscribe}"))
}

// ---- data -----------------------------------------------------------------------------

/// What the store holds for one day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredDay {
    pub revenue: bool,
    pub cost: bool,
    pub backfilled: bool,
    pub imported: bool,
}

/// Days the doctor reads back.
pub const DATA_DAYS: u64 = 90;

/// The last [`DATA_DAYS`] days (today excluded: its snapshots may not be made yet).
pub fn snapshots(days: &BTreeMap<NaiveDate, StoredDay>, today: NaiveDate, refill: &str) -> Check {
    let name = format!("snapshots of the last {DATA_DAYS} days");
    // Days before the first snapshot are before the stack (or before its history was
    // imported): the debounce check says what they hold back; they are not gaps.
    let Some(first) = days.keys().next().copied() else {
        return Check::warn(
            "data",
            name,
            "none stored yet: the collectors have not run (see the last runs above)",
        );
    };
    let from = (today - Days::new(DATA_DAYS)).max(first);
    let span: Vec<NaiveDate> = from.iter_days().take_while(|d| *d < today).collect();
    let complete = |d: &NaiveDate| days.get(d).is_some_and(|s| s.revenue && s.cost);
    let missing: Vec<NaiveDate> = span.iter().filter(|d| !complete(d)).copied().collect();
    let backfilled = span.iter().filter(|d| days.get(d).is_some_and(|s| s.backfilled)).count();
    let imported = span.iter().filter(|d| days.get(d).is_some_and(|s| s.imported)).count();
    let counts = format!(
        "{} of {} days since {from} complete, {backfilled} backfilled, {imported} imported",
        span.len() - missing.len(),
        span.len()
    );
    if missing.is_empty() {
        return Check::pass("data", name, counts);
    }
    let recent_gap = missing.iter().any(|d| today - *d <= chrono::Duration::days(7));
    Check::new(
        "data",
        name,
        if recent_gap { Verdict::Fail } else { Verdict::Warn },
        format!("{counts}; missing or incomplete: {}", ranges(&missing)),
    )
    .fix(format!("the collectors backfill the last days they missed on their next run; older gaps: {refill}"))
}

/// The commands that fill the stack's history from Stripe and Cost Explorer, with the
/// stack's own settings (the fetch reads no stack: given others, it writes other figures).
pub fn refill_commands(months: u32, stack: &str, fx_rates: &str, config: &str) -> String {
    let fx: String = fx_rates
        .split([',', ' '])
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!(" --fx {}", p.trim()))
        .collect();
    format!(
        "STRIPE_API_KEY=<the stack's key> revscale history fetch --months {months} --config {config}{fx} --cost-tag-key {COMPONENT_TAG} --out h.csv && revscale history import h.csv --stack {stack}"
    )
}

/// `2026-01-03..2026-01-05, 2026-02-01`.
pub fn ranges(days: &[NaiveDate]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut start: Option<(NaiveDate, NaiveDate)> = None;
    for d in days {
        start = match start {
            Some((a, b)) if b.succ_opt() == Some(*d) => Some((a, *d)),
            Some((a, b)) => {
                out.push(if a == b { a.to_string() } else { format!("{a}..{b}") });
                Some((*d, *d))
            }
            None => Some((*d, *d)),
        };
    }
    if let Some((a, b)) = start {
        out.push(if a == b { a.to_string() } else { format!("{a}..{b}") });
    }
    if out.len() > 6 {
        let more = out.len() - 6;
        out.truncate(6);
        out.push(format!("and {more} more"));
    }
    out.join(", ")
}

/// Whether the stored history is long enough for the debounce: a level needs
/// `months` closed months above its threshold, which the engine reads from the store,
/// so the history must reach back to the first day of the month `months` before this
/// one (from 2026-12-06, 3 months: 2026-09-01).
pub fn debounce_windows(
    first_stored: Option<NaiveDate>,
    months: u32,
    today: NaiveDate,
    refill: &str,
) -> Check {
    let name = format!("history for the debounce ({months} closed months)");
    let month_start = |d: NaiveDate| d.with_day(1).unwrap_or(d);
    let needed = month_start(today).checked_sub_months(Months::new(months)).unwrap_or(today);
    let fix = refill.to_string();
    match first_stored {
        None => {
            Check::warn("data", name, "no snapshot stored: no level can be climbed until the windows fill")
                .fix(fix)
        }
        Some(first) if first <= needed => {
            Check::pass("data", name, format!("from {first}: the longest window (from {needed}) is full"))
        }
        Some(first) => {
            // The first whole month stored, then `months` of them.
            let first_whole = if first.day() == 1 {
                first
            } else {
                month_start(first).checked_add_months(Months::new(1)).unwrap_or(first)
            };
            let ready = first_whole.checked_add_months(Months::new(months)).unwrap_or(first_whole);
            Check::warn(
                "data",
                name,
                format!(
                    "from {first} only: the longest window needs history from {needed}, so a climb that needs it cannot pass before {ready}"
                ),
            )
            .fix(fix)
        }
    }
}

// ---- components -----------------------------------------------------------------------

/// Where the stack runs, for the ARNs a simulation names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Place {
    /// From any ARN of the account (the caller's): its partition and account.
    pub fn from_arn(arn: &str, region: &str) -> Option<Place> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        (parts.len() == 6 && parts[0] == "arn").then(|| Place {
            partition: parts[1].to_string(),
            region: region.to_string(),
            account: parts[4].to_string(),
        })
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{}:{}:{resource}", self.partition, self.region, self.account)
    }
}

/// The EKS actions authorised on an access entry, not on the cluster.
const ON_ACCESS_ENTRY: &[&str] =
    &["eks:ListAssociatedAccessPolicies", "eks:AssociateAccessPolicy", "eks:DisassociateAccessPolicy"];

/// An id AWS generates (a node group's, an Auto Scaling group's, a stack's): any
/// matches the policies' `*`.
const SOME_ID: &str = "00000000-0000-0000-0000-000000000000";

/// What the provisioner's policy must allow for one component: its kind's actions on
/// the component's own resource, with the tags revscale puts and finds there as
/// condition keys (the template scopes every statement so), and `iam:PassRole` on the
/// role the kind hands to its service. A cluster's access entries are simulated as
/// EKS authorises them: on an access entry with the policy associated, and creating
/// one for the provisioner's own role (`role`). Empty for a kind that calls nothing.
pub fn simulations(
    spec: &revscale_engine::drivers::DriverSpec,
    actions: &[&str],
    role: &str,
    place: &Place,
    stack: &str,
    id: &str,
) -> Vec<revscale_aws::iam::Simulation> {
    use revscale_aws::iam::Simulation;
    use revscale_engine::drivers::DriverSpec;
    let (resource, passed): (Option<String>, Option<(&str, &str)>) = match spec {
        DriverSpec::AlwaysOn(_) => (None, None),
        DriverSpec::EksCluster(s) => (
            Some(place.arn("eks", &format!("cluster/{}", s.cluster_name))),
            Some((s.role_arn.as_str(), "eks.amazonaws.com")),
        ),
        DriverSpec::EksNodegroup(s) => (
            Some(place.arn("eks", &format!("nodegroup/{}/{}/{SOME_ID}", s.cluster_name, s.nodegroup_name))),
            Some((s.node_role_arn.as_str(), "eks.amazonaws.com")),
        ),
        DriverSpec::SsmFlag(s) => {
            let name = if s.parameter_name.starts_with('/') {
                s.parameter_name.clone()
            } else {
                format!("/{}", s.parameter_name)
            };
            (Some(place.arn("ssm", &format!("parameter{name}"))), None)
        }
        DriverSpec::EcsService(s) => {
            (Some(place.arn("ecs", &format!("service/{}/{}", s.cluster, s.service))), None)
        }
        DriverSpec::AutoscalingGroup(s) => (
            Some(place.arn(
                "autoscaling",
                &format!("autoScalingGroup:{SOME_ID}:autoScalingGroupName/{}", s.group_name),
            )),
            None,
        ),
        DriverSpec::RdsInstance(s) => {
            (Some(place.arn("rds", &format!("db:{}", s.db_instance_identifier))), None)
        }
        DriverSpec::AuroraCluster(s) => {
            (Some(place.arn("rds", &format!("cluster:{}", s.db_cluster_identifier))), None)
        }
        DriverSpec::Ec2Instances(s) => {
            let instance = s.instance_ids.first().map_or("i-00000000000000000", String::as_str);
            (Some(place.arn("ec2", &format!("instance/{instance}"))), None)
        }
        DriverSpec::LambdaProvisionedConcurrency(s) => {
            (Some(place.arn("lambda", &format!("function:{}:{}", s.function_name, s.qualifier))), None)
        }
        DriverSpec::CloudformationStack(s) => (
            Some(place.arn("cloudformation", &format!("stack/{}/{SOME_ID}", s.stack_name))),
            Some((s.role_arn.as_str(), "cloudformation.amazonaws.com")),
        ),
        // IAM only reads the cluster's endpoint; the rest is the cluster's access entry.
        DriverSpec::KubernetesWorkload(s) => {
            (Some(place.arn("eks", &format!("cluster/{}", s.cluster_name))), None)
        }
    };
    let one = |v: &str| vec![v.to_string()];
    let tags = vec![
        (format!("aws:ResourceTag/{COMPONENT_TAG}"), one(id)),
        ("aws:ResourceTag/revscale:managed".to_string(), one("true")),
        (format!("aws:ResourceTag/{STACK_TAG}"), one(stack)),
        (format!("aws:RequestTag/{COMPONENT_TAG}"), one(id)),
        ("aws:RequestTag/revscale:managed".to_string(), one("true")),
        (format!("aws:RequestTag/{STACK_TAG}"), one(stack)),
        ("aws:TagKeys".to_string(), vec!["revscale:managed".to_string(), STACK_TAG.to_string()]),
    ];
    let mut out = Vec::new();
    let mut own: Vec<String> =
        actions.iter().filter(|a| **a != "iam:PassRole").map(|a| a.to_string()).collect();
    if let DriverSpec::EksCluster(cluster) = spec {
        let cluster_arn = place.arn("eks", &format!("cluster/{}", cluster.cluster_name));
        let on_entry: Vec<String> =
            own.iter().filter(|a| ON_ACCESS_ENTRY.contains(&a.as_str())).cloned().collect();
        if !on_entry.is_empty() {
            let entry =
                format!("access-entry/{}/role/{}/revscale/{SOME_ID}", cluster.cluster_name, place.account);
            let policy = revscale_aws::drivers::eks_cluster::policy_arn(
                Some(&cluster_arn),
                revscale_aws::drivers::eks_cluster::EDIT_POLICY,
            );
            out.push(Simulation {
                actions: on_entry,
                resources: vec![place.arn("eks", &entry)],
                context: vec![("eks:policyArn".into(), one(&policy))],
            });
        }
        if own.iter().any(|a| a == "eks:CreateAccessEntry") {
            out.push(Simulation {
                actions: vec!["eks:CreateAccessEntry".into()],
                resources: vec![cluster_arn],
                context: vec![("eks:principalArn".into(), one(role))],
            });
        }
        own.retain(|a| a != "eks:CreateAccessEntry" && !ON_ACCESS_ENTRY.contains(&a.as_str()));
    }
    if let Some(resource) = resource
        && !own.is_empty()
    {
        out.push(Simulation { actions: own, resources: vec![resource], context: tags });
    }
    if let Some((role, service)) = passed
        && actions.contains(&"iam:PassRole")
        && !role.is_empty()
    {
        out.push(Simulation {
            actions: vec!["iam:PassRole".into()],
            resources: vec![role.to_string()],
            context: vec![("iam:PassedToService".into(), one(service))],
        });
    }
    out
}

// ---- operator API ---------------------------------------------------------------------

/// The caller's roles under the stack's patterns, and whether a second approver exists.
pub fn operator_roles(
    caller: &str,
    readers: &Patterns,
    operators: &Patterns,
    approvers: &Patterns,
) -> Vec<Check> {
    let mut checks = Vec::new();
    match Caller::from_principal(caller) {
        Err(e) => checks.push(Check::fail("api", "your roles", format!("{caller}: {e}"))),
        Ok(c) => {
            let mut held = Vec::new();
            if approvers.matches(&c.person) {
                held.push("approver");
            }
            if operators.matches(&c.person) {
                held.push("operator");
            }
            if held.is_empty() && readers.matches(&c.person) {
                held.push("reader");
            }
            checks.push(if held.is_empty() {
                Check::warn("api", "your roles", format!("{caller}: none (every API call is refused with 403)"))
                    .fix("sam deploy --parameter-overrides ReaderPrincipals=... OperatorPrincipals=... ApproverPrincipals=... (principal ARN patterns)")
            } else {
                Check::pass("api", "your roles", format!("{caller}: {}", held.join(", ")))
            });
        }
    }
    checks.push(second_approver(approvers, operators));
    checks
}

/// Whether the approver patterns admit two persons. A request cannot be approved by
/// the person who made it: with one approver, what that person asks for (an override,
/// a drain) waits for ever, though what the engine proposes and other operators ask
/// for can still be approved. FAIL when the one approver is also every operator (no
/// override or drain can ever be approved), WARN otherwise.
pub fn second_approver(approvers: &Patterns, operators: &Patterns) -> Check {
    let name = "a second approver";
    let fix = "sam deploy --parameter-overrides ApproverPrincipals=\"<first>,<second>\" (two people, or an Identity Center permission set's role)";
    let patterns = approvers.as_written();
    if patterns.is_empty() {
        return Check::fail("api", name, "ApproverPrincipals is empty: nothing can be approved").fix(fix);
    }
    if let Some(wide) = wide(&patterns) {
        return Check::pass("api", name, format!("{wide} admits several people"));
    }
    let people = persons(&patterns);
    if people.len() >= 2 {
        return Check::pass("api", name, format!("{} distinct approvers", people.len()));
    }
    let only = patterns.join(", ");
    let operator_patterns = operators.as_written();
    let operator_people = persons(&operator_patterns);
    let every_operator_is_the_approver = wide(&operator_patterns).is_none()
        && !operator_people.is_empty()
        && operator_people.is_subset(&people);
    if every_operator_is_the_approver {
        Check::fail(
            "api",
            name,
            format!("only {only}, who is every operator too: no override or drain they ask for can ever be approved"),
        )
        .fix(fix)
    } else {
        Check::warn(
            "api",
            name,
            format!("only {only}: what they ask for themselves cannot be approved, and nothing is while they are away"),
        )
        .fix(fix)
    }
}

/// A pattern that admits more than one person: a wildcard, or an Identity Center
/// permission set's role (each of its users is a person).
fn wide<'a>(patterns: &[&'a str]) -> Option<&'a str> {
    patterns.iter().find(|p| p.contains(['*', '?']) || p.contains("AWSReservedSSO_")).copied()
}

fn persons(patterns: &[&str]) -> BTreeSet<String> {
    patterns.iter().map(|p| identity::two_person_key(p)).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn keys() -> Vec<String> {
        vec!["revscale-component".into(), "revscale:stack".into()]
    }

    fn refill() -> String {
        refill_commands(4, "rs", "USD=0.93, GBP=1.17", "c.yaml")
    }

    #[test]
    fn an_inactive_component_tag_fails_with_a_repair_and_an_unknown_one_fails_only_once_resources_carry_it() {
        let listed = [CostTag { key: "revscale-component".into(), active: false, last_updated: None }];
        let checks = cost_tags(&listed, 0, d("2026-12-06"));
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].verdict, Verdict::Fail);
        assert_eq!(
            checks[0].repair,
            Some(Repair::ActivateCostAllocationTags { keys: vec!["revscale-component".into()] })
        );
        // The stack tag is not used for the guard, and unknown until a created resource is billed.
        assert_eq!(checks[1].verdict, Verdict::Warn);
        assert!(checks[1].found.contains("unknown to Billing"), "{}", checks[1].found);
        assert_eq!(checks[1].repair, None, "a key Billing never saw cannot be activated");
        // Day 0 in shadow mode: nothing carries the component tag yet.
        assert_eq!(cost_tags(&[], 0, d("2026-12-06"))[0].verdict, Verdict::Warn);
        let overdue = &cost_tags(&[], 3, d("2026-12-06"))[0];
        assert_eq!(overdue.verdict, Verdict::Fail);
        assert!(overdue.found.contains("although 3 resource(s) carry it"), "{}", overdue.found);
    }

    #[test]
    fn a_cost_tag_key_other_than_the_drivers_fails() {
        assert_eq!(cost_tag_key("revscale-component").verdict, Verdict::Pass);
        let other = cost_tag_key("component");
        assert_eq!(other.verdict, Verdict::Fail);
        assert!(other.fix.unwrap().ends_with("CostTagKey=revscale-component"));
    }

    #[test]
    fn two_inactive_tags_are_activated_in_one_repair() {
        let listed = [
            CostTag { key: "revscale-component".into(), active: false, last_updated: None },
            CostTag { key: "revscale:stack".into(), active: false, last_updated: None },
        ];
        let checks = cost_tags(&listed, 1, d("2026-12-06"));
        assert!(checks.iter().all(|c| c.repair == Some(Repair::ActivateCostAllocationTags { keys: keys() })));
    }

    #[test]
    fn a_recently_activated_tag_warns_until_the_evaluators_window_is_grouped() {
        let listed = [
            CostTag { key: "revscale-component".into(), active: true, last_updated: Some(d("2026-11-20")) },
            CostTag { key: "revscale:stack".into(), active: true, last_updated: Some(d("2026-01-01")) },
        ];
        let checks = cost_tags(&listed, 1, d("2026-12-06"));
        let verdicts: Vec<Verdict> = checks.iter().map(|c| c.verdict).collect();
        assert_eq!(verdicts, [Verdict::Pass, Verdict::Warn, Verdict::Pass]);
        assert!(checks[1].found.contains("incomplete until 2027-02-18"), "{}", checks[1].found);
        assert!(
            checks[1]
                .fix
                .as_ref()
                .unwrap()
                .contains("start-cost-allocation-tag-backfill --backfill-from 2026-09-07T00:00:00Z")
        );
        let old =
            [CostTag { key: "revscale-component".into(), active: true, last_updated: Some(d("2026-01-01")) }];
        assert_eq!(cost_tags(&old, 1, d("2026-12-06"))[1].verdict, Verdict::Pass);
    }

    #[test]
    fn a_managed_resource_without_the_component_tag_fails_by_name() {
        let tagged = BTreeMap::from([("revscale-component".to_string(), "db".to_string())]);
        let ok = [("arn:a".to_string(), tagged.clone())];
        assert_eq!(untagged_managed("revscale-component", &ok).verdict, Verdict::Pass);
        let bad = [("arn:a".to_string(), tagged), ("arn:b".to_string(), BTreeMap::new())];
        let check = untagged_managed("revscale-component", &bad);
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(check.found.contains("1 of 2") && check.found.contains("arn:b"), "{}", check.found);
        assert!(check.fix.unwrap().contains("--resource-arn-list arn:b"));
    }

    #[test]
    fn a_restricted_key_passes_a_secret_key_warns_and_anything_else_fails() {
        assert_eq!(stripe_key("rk_live_abc").verdict, Verdict::Pass);
        assert_eq!(stripe_key("rk_test_abc").verdict, Verdict::Warn);
        assert_eq!(stripe_key("sk_live_abc").verdict, Verdict::Warn);
        assert_eq!(stripe_key("pk_live_abc").verdict, Verdict::Fail);
        assert_eq!(stripe_key("whsec_abc").verdict, Verdict::Fail);
    }

    #[test]
    fn a_refused_endpoint_names_the_permission_to_add() {
        let refused = EndpointAnswer::Refused {
            status: 403,
            message: "Having the 'rak_coupon_read' permission would allow this request to continue.".into(),
        };
        let check = stripe_endpoint("/v1/coupons", "Coupons: Read", &refused);
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(check.found.contains("rak_coupon_read"));
        assert!(check.fix.unwrap().ends_with("Coupons: Read"));
        assert_eq!(stripe_endpoint("/v1/coupons", "x", &EndpointAnswer::Answered).verdict, Verdict::Pass);
        let revoked = EndpointAnswer::Refused { status: 401, message: "Invalid API Key".into() };
        assert!(stripe_endpoint("/v1/coupons", "x", &revoked).fix.unwrap().contains("StripeSecretArn"));
    }

    #[test]
    fn a_currency_without_a_rate_fails_and_the_revenue_currency_needs_none() {
        let rates = BTreeSet::from(["USD".to_string()]);
        let ok = BTreeSet::from(["EUR".to_string(), "USD".to_string()]);
        assert_eq!(stripe_currencies(&ok, "EUR", &rates, 2).verdict, Verdict::Pass);
        let gbp = BTreeSet::from(["EUR".to_string(), "GBP".to_string()]);
        let check = stripe_currencies(&gbp, "EUR", &rates, 2);
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(check.found.starts_with("GBP billed"), "{}", check.found);
    }

    #[test]
    fn a_disabled_missing_or_wrongly_zoned_schedule_fails() {
        let s = Schedule {
            name: "n".into(),
            enabled: true,
            timezone: Some("Europe/Rome".into()),
            expression: "cron(0 5 * * ? *)".into(),
        };
        assert_eq!(schedule(Some(&s), "n", "Europe/Rome").verdict, Verdict::Pass);
        assert_eq!(schedule(None, "n", "Europe/Rome").verdict, Verdict::Fail);
        let off = Schedule { enabled: false, ..s.clone() };
        assert!(schedule(Some(&off), "n", "Europe/Rome").found.starts_with("disabled"));
        let utc = Schedule { timezone: None, ..s };
        let check = schedule(Some(&utc), "n", "Europe/Rome");
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(check.found.starts_with("runs in UTC"), "{}", check.found);
    }

    #[test]
    fn a_job_that_left_no_mark_since_yesterday_fails() {
        let today = d("2026-12-06");
        assert_eq!(last_run("revenue snapshot", Some(d("2026-12-05")), today).verdict, Verdict::Pass);
        assert_eq!(last_run("revenue snapshot", Some(d("2026-12-03")), today).verdict, Verdict::Fail);
        assert_eq!(last_run("revenue snapshot", None, today).verdict, Verdict::Warn);
        assert_eq!(dead_letters(0).verdict, Verdict::Pass);
        assert_eq!(dead_letters(2).verdict, Verdict::Fail);
    }

    #[test]
    fn unconfirmed_or_absent_subscriptions_fail() {
        let confirmed = Subscription {
            protocol: "email".into(),
            endpoint: "a@x".into(),
            arn: "arn:aws:sns:x:1:t:abc".into(),
        };
        let pending =
            Subscription { arn: "PendingConfirmation".into(), endpoint: "b@x".into(), ..confirmed.clone() };
        assert_eq!(subscriptions("t", &[]).verdict, Verdict::Fail);
        assert_eq!(subscriptions("t", std::slice::from_ref(&confirmed)).verdict, Verdict::Pass);
        assert_eq!(subscriptions("t", std::slice::from_ref(&pending)).verdict, Verdict::Fail);
        let both = subscriptions("t", &[confirmed, pending]);
        assert_eq!(both.verdict, Verdict::Warn);
        assert!(both.found.contains("b@x (email)"), "{}", both.found);
    }

    #[test]
    fn gaps_in_the_snapshots_are_named_as_ranges_and_a_recent_one_fails() {
        let today = d("2026-12-06");
        let full = StoredDay { revenue: true, cost: true, ..StoredDay::default() };
        let mut days: BTreeMap<NaiveDate, StoredDay> = (today - Days::new(DATA_DAYS))
            .iter_days()
            .take_while(|x| *x < today)
            .map(|x| (x, full.clone()))
            .collect();
        assert_eq!(snapshots(&days, today, &refill()).verdict, Verdict::Pass);
        for x in ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-10"] {
            days.remove(&d(x));
        }
        let old = snapshots(&days, today, &refill());
        assert_eq!(old.verdict, Verdict::Warn);
        assert!(old.found.ends_with("2026-10-01..2026-10-03, 2026-10-10"), "{}", old.found);
        assert!(old.fix.unwrap().contains("--fx USD=0.93 --fx GBP=1.17 --cost-tag-key revscale-component"));
        days.get_mut(&d("2026-12-04")).unwrap().cost = false;
        assert_eq!(snapshots(&days, today, &refill()).verdict, Verdict::Fail);
    }

    #[test]
    fn the_days_before_the_first_snapshot_are_no_gap() {
        let today = d("2026-12-06");
        let full = StoredDay { revenue: true, cost: true, ..StoredDay::default() };
        let days: BTreeMap<NaiveDate, StoredDay> =
            d("2026-12-03").iter_days().take_while(|x| *x < today).map(|x| (x, full.clone())).collect();
        let check = snapshots(&days, today, &refill());
        assert_eq!(check.verdict, Verdict::Pass);
        assert!(check.found.starts_with("3 of 3 days since 2026-12-03"), "{}", check.found);
        assert_eq!(snapshots(&BTreeMap::new(), today, &refill()).verdict, Verdict::Warn);
    }

    #[test]
    fn a_history_shorter_than_the_longest_window_warns_with_the_import_as_fix() {
        let today = d("2026-12-06");
        assert_eq!(debounce_windows(Some(d("2026-09-01")), 3, today, &refill()).verdict, Verdict::Pass);
        let short = debounce_windows(Some(d("2026-09-02")), 3, today, &refill());
        assert_eq!(short.verdict, Verdict::Warn);
        assert!(
            short.found.ends_with(
                "needs history from 2026-09-01, so a climb that needs it cannot pass before 2027-01-01"
            ),
            "{}",
            short.found
        );
        assert!(short.fix.unwrap().contains("history import h.csv --stack rs"));
        assert_eq!(debounce_windows(None, 3, today, &refill()).verdict, Verdict::Warn);
    }

    #[test]
    fn one_approver_who_is_every_operator_fails_two_people_or_a_permission_set_pass() {
        let p = |s: &str| Patterns::parse(s).unwrap();
        let alice = "arn:aws:iam::123456789012:user/alice";
        let bob = "arn:aws:iam::123456789012:user/bob";
        assert_eq!(second_approver(&p(""), &p(alice)).verdict, Verdict::Fail);
        assert_eq!(second_approver(&p(alice), &p(alice)).verdict, Verdict::Fail);
        // One person under two spellings is still one.
        let both = format!("{alice},arn:aws:iam::123456789012:user/Alice");
        assert_eq!(second_approver(&p(&both), &p(alice)).verdict, Verdict::Fail);
        // Bob's requests can be approved; alice's own cannot.
        assert_eq!(second_approver(&p(alice), &p(&format!("{alice},{bob}"))).verdict, Verdict::Warn);
        assert_eq!(second_approver(&p(&format!("{alice},{bob}")), &p(alice)).verdict, Verdict::Pass);
        let sso = "arn:aws:iam::123456789012:role/AWSReservedSSO_Approver_9f8e";
        assert_eq!(second_approver(&p(sso), &p(alice)).verdict, Verdict::Pass);
        assert_eq!(second_approver(&p("arn:aws:iam::123456789012:user/*"), &p(alice)).verdict, Verdict::Pass);
    }

    #[test]
    fn a_components_actions_are_simulated_on_its_own_resource_and_pass_role_on_its_role() {
        let place = Place::from_arn("arn:aws:iam::123456789012:user/alice", "eu-west-1").unwrap();
        let spec = revscale_engine::drivers::DriverSpec::EksNodegroup(
            revscale_engine::drivers::eks_nodegroup::EksNodegroup {
                cluster_name: "revscale".into(),
                nodegroup_name: "workers".into(),
                node_role_arn: "arn:aws:iam::123456789012:role/node".into(),
                ..Default::default()
            },
        );
        let sims =
            simulations(&spec, &["eks:CreateNodegroup", "iam:PassRole"], ROLE, &place, "rs", "k8s_workers");
        assert_eq!(sims.len(), 2);
        assert_eq!(sims[0].actions, ["eks:CreateNodegroup"]);
        assert_eq!(
            sims[0].resources,
            [
                "arn:aws:eks:eu-west-1:123456789012:nodegroup/revscale/workers/00000000-0000-0000-0000-000000000000"
            ]
        );
        assert!(
            sims[0]
                .context
                .contains(&("aws:ResourceTag/revscale-component".into(), vec!["k8s_workers".into()]))
        );
        assert_eq!(sims[1].resources, ["arn:aws:iam::123456789012:role/node"]);
        assert_eq!(
            sims[1].context,
            [("iam:PassedToService".to_string(), vec!["eks.amazonaws.com".to_string()])]
        );
        let flag =
            revscale_engine::drivers::DriverSpec::SsmFlag(revscale_engine::drivers::ssm_flag::SsmFlag {
                parameter_name: "/revscale/flags/x".into(),
            });
        let sims = simulations(&flag, &["ssm:PutParameter"], ROLE, &place, "rs", "x");
        assert_eq!(sims[0].resources, ["arn:aws:ssm:eu-west-1:123456789012:parameter/revscale/flags/x"]);
        let gov =
            Place::from_arn("arn:aws-us-gov:sts::123456789012:assumed-role/R/s", "us-gov-west-1").unwrap();
        assert_eq!(gov.partition, "aws-us-gov");
        assert_eq!(Place::from_arn("not an arn", "eu-west-1"), None);
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/rs-ProvisionFunctionRole-X";

    #[test]
    fn a_clusters_access_entry_actions_are_simulated_on_an_entry_and_creating_one_for_the_provisioner() {
        let place = Place::from_arn("arn:aws-cn:iam::123456789012:user/alice", "cn-north-1").unwrap();
        let spec = revscale_engine::drivers::DriverSpec::EksCluster(revscale_engine::drivers::EksCluster {
            cluster_name: "revscale".into(),
            role_arn: "arn:aws-cn:iam::123456789012:role/cluster".into(),
            ..Default::default()
        });
        let actions = revscale_aws::drivers::iam_actions(&spec);
        let sims = simulations(&spec, actions, ROLE, &place, "rs", "eks_control_plane");
        let on = |action: &str| sims.iter().find(|s| s.actions.iter().any(|a| a == action)).unwrap();
        let entry = on("eks:AssociateAccessPolicy");
        assert_eq!(
            entry.actions,
            ["eks:ListAssociatedAccessPolicies", "eks:AssociateAccessPolicy", "eks:DisassociateAccessPolicy"]
        );
        assert!(
            entry.resources[0].starts_with("arn:aws-cn:eks:cn-north-1:123456789012:access-entry/revscale/")
        );
        assert_eq!(
            entry.context,
            [(
                "eks:policyArn".to_string(),
                vec!["arn:aws-cn:eks::aws:cluster-access-policy/AmazonEKSEditPolicy".to_string()]
            )]
        );
        let create = on("eks:CreateAccessEntry");
        assert_eq!(create.actions, ["eks:CreateAccessEntry"]);
        assert_eq!(create.context, [("eks:principalArn".to_string(), vec![ROLE.to_string()])]);
        let cluster = on("eks:CreateCluster");
        assert_eq!(cluster.resources, ["arn:aws-cn:eks:cn-north-1:123456789012:cluster/revscale"]);
        assert!(!cluster.actions.iter().any(|a| a.contains("Access")), "{:?}", cluster.actions);
        assert_eq!(on("iam:PassRole").resources, ["arn:aws-cn:iam::123456789012:role/cluster"]);
    }

    #[test]
    fn the_callers_roles_are_named_and_no_role_warns() {
        let p = |s: &str| Patterns::parse(s).unwrap();
        let checks = operator_roles(
            "arn:aws:sts::123456789012:assumed-role/Operator/x",
            &p(""),
            &p("arn:aws:iam::123456789012:role/Operator"),
            &p("arn:aws:iam::123456789012:user/alice,arn:aws:iam::123456789012:user/bob"),
        );
        assert_eq!(checks[0].found, "arn:aws:sts::123456789012:assumed-role/Operator/x: operator");
        assert_eq!(checks[1].verdict, Verdict::Pass);
        let none = operator_roles(
            "arn:aws:iam::123456789012:user/eve",
            &p(""),
            &p(""),
            &p("arn:aws:iam::123456789012:user/alice"),
        );
        assert_eq!(none[0].verdict, Verdict::Warn);
        assert_eq!(
            none[1].verdict,
            Verdict::Warn,
            "no operator: only the engine's proposals wait, and alice approves them"
        );
    }
}
