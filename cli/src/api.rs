//! The operator commands: `revscale status`, `decisions`, `override ...`, `breaker
//! reset`, `mode`, `plan`, `pending approve|reject`, `provisioning release`. Each is one
//! SigV4-signed call to the API (credentials from the standard AWS chain). The request
//! and the answer are `revscale-api`'s types, the ones the Lambda writes: an answer
//! that lacks a field is an error here, never a blank in a table. Printed as a table
//! ([`render`]) or, with `--json`, as the typed answer serialised.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use chrono::NaiveDate;
use clap::Subcommand;
use revscale_api::{
    ApproveDrainResponse, ApproveOverrideResponse, ApprovePendingResponse, ApproveRequest,
    CancelDrainResponse, CancelOverrideResponse, CreateOverrideRequest, CreateOverrideResponse,
    DecisionsQuery, DecisionsResponse, DryRunResponse, ErrorResponse, RejectOverrideResponse,
    RejectPendingRequest, RejectPendingResponse, ReleaseRunRequest, ReleaseRunResponse, RequestDrainRequest,
    RequestDrainResponse, ResetBreakerResponse, SetCashRequest, SetCashResponse, SetModeRequest,
    SetModeResponse, StatusResponse,
};
use revscale_engine::{ComponentId, ComponentState, DecisionId, Mode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::render;
use crate::stack::{Target, signing_region};

#[derive(clap::Args)]
pub struct Conn {
    #[command(flatten)]
    pub target: Target,
    /// Print the API's answer as JSON (the typed answer, exactly as the API gave it)
    /// instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum OverrideCommand {
    /// Ask to pin a level until a date; another principal must approve it.
    Request {
        /// The level to pin (0-4), above or below the one revenue justifies.
        #[arg(long)]
        level: u8,
        /// The last day the override holds, at most 30 days ahead.
        #[arg(long, value_name = "YYYY-MM-DD")]
        until: NaiveDate,
        /// Why: recorded in the audit trail and shown to the approver.
        #[arg(long)]
        reason: String,
    },
    /// Approve someone else's override request (an approver, never its requester).
    Approve {
        /// The override's id (`revscale override list`).
        id: String,
    },
    /// Refuse someone else's override request (an approver).
    Reject {
        /// The override's id (`revscale override list`).
        id: String,
    },
    /// Cancel an override.
    Cancel {
        /// The override's id (`revscale override list`).
        id: String,
    },
    /// List active and pending overrides.
    List,
}

#[derive(Subcommand, Clone)]
pub enum DrainCommand {
    /// Approve the drain someone else requested: the components go COLD at once.
    /// Without --id, the drain waiting now is shown and, once you confirm, its id sent:
    /// if another drain replaces it in between, the API refuses (409) rather than
    /// approve it. Scripts pass --id.
    Approve {
        /// The drain's id (`drain_id` in `revscale status --json`).
        #[arg(long)]
        id: Option<String>,
    },
    /// Cancel the drain (requested or in force): revenue decides again.
    Cancel,
}

#[derive(Subcommand)]
pub enum CashCommand {
    /// Record the company's cash on a day (operator; audited): the runway guard
    /// estimates today's cash from it, less the net burn of every day since.
    Set {
        /// The balance, in major units of the configuration's currency (420000, 420000.50).
        #[arg(long)]
        amount: String,
        /// The balance's currency: must be the configuration's (a balance in another is
        /// refused, not converted). Without it, the configuration's is assumed.
        #[arg(long)]
        currency: Option<String>,
        /// The day the balance was true (YYYY-MM-DD, not after today).
        #[arg(long)]
        as_of: chrono::NaiveDate,
    },
}

#[derive(Subcommand)]
pub enum ProvisioningCommand {
    /// Release the lock of a run that could neither finish nor roll back
    /// (RollbackFailed, or an execution stopped by hand), once you have repaired its
    /// components by hand: say where each one it touched stands. Counts as a failed run.
    Release {
        /// The run's decision id (the execution's name; `revscale status` shows it).
        decision_id: DecisionId,
        /// Where a component stands now: cold, warm or hot. Once per component the run
        /// may have touched.
        #[arg(long = "component", value_name = "COMPONENT=STATE", value_parser = declared_state, required = true)]
        components: Vec<(ComponentId, ComponentState)>,
        /// What was repaired and how: recorded in the audit trail.
        #[arg(long)]
        reason: String,
    },
}

fn declared_state(text: &str) -> Result<(ComponentId, ComponentState), String> {
    let (component, state) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}': expected COMPONENT=STATE, e.g. eks_control_plane=cold"))?;
    let state = match state {
        "cold" => ComponentState::Cold,
        "warm" => ComponentState::Warm,
        "hot" => ComponentState::Hot,
        other => return Err(format!("'{other}': a repaired component is cold, warm or hot")),
    };
    Ok((ComponentId::new(component), state))
}

pub enum Call {
    Status,
    Decisions { limit: u32, before: Option<String> },
    Override(OverrideCommand),
    BreakerReset,
    Mode(String),
    ShowMode,
    Plan,
    PendingApprove { id: Option<String> },
    PendingReject { reason: String },
    Provisioning(ProvisioningCommand),
    StatusWithOrphans,
    DrainPlan,
    DrainRequest { reason: String },
    Drain(DrainCommand),
    Cash(CashCommand),
}

/// A call as HTTP: method, path with its query, and the JSON body of its request type.
fn request_of(call: &Call) -> anyhow::Result<(&'static str, String, Option<String>)> {
    Ok(match call {
        Call::Status | Call::StatusWithOrphans | Call::ShowMode | Call::Override(OverrideCommand::List) => {
            ("GET", "/status".into(), None)
        }
        Call::DrainPlan => ("GET", "/drain/plan".into(), None),
        Call::DrainRequest { reason } => {
            ("POST", "/drain".into(), json(&RequestDrainRequest { reason: reason.clone() })?)
        }
        Call::Drain(DrainCommand::Approve { id }) => {
            ("POST", "/drain/approve".into(), json(&ApproveRequest { id: id.clone().unwrap_or_default() })?)
        }
        Call::Drain(DrainCommand::Cancel) => ("POST", "/drain/cancel".into(), None),
        Call::Decisions { limit, before } => {
            let query = DecisionsQuery { limit: Some(usize::try_from(*limit)?), before: before.clone() };
            ("GET", query.path(), None)
        }
        Call::Override(OverrideCommand::Request { level, until, reason }) => {
            let body = CreateOverrideRequest { level: *level, until: *until, reason: reason.clone() };
            ("POST", "/overrides".into(), json(&body)?)
        }
        Call::Override(OverrideCommand::Approve { id }) => ("POST", format!("/overrides/{id}/approve"), None),
        Call::Override(OverrideCommand::Cancel { id }) => ("DELETE", format!("/overrides/{id}"), None),
        Call::Override(OverrideCommand::Reject { id }) => ("POST", format!("/overrides/{id}/reject"), None),
        Call::BreakerReset => ("POST", "/breaker/reset".into(), None),
        Call::Mode(mode) => {
            let mode: Mode = mode.parse().map_err(anyhow::Error::msg)?;
            ("POST", "/mode".into(), json(&SetModeRequest { mode })?)
        }
        Call::Plan => ("POST", "/evaluate?dry_run=true".into(), None),
        Call::Cash(CashCommand::Set { amount, currency, as_of }) => {
            let body = SetCashRequest { amount: amount.clone(), currency: currency.clone(), as_of: *as_of };
            ("POST", "/cash".into(), json(&body)?)
        }
        Call::PendingApprove { id } => {
            ("POST", "/pending/approve".into(), json(&ApproveRequest { id: id.clone().unwrap_or_default() })?)
        }
        Call::PendingReject { reason } => {
            ("POST", "/pending/reject".into(), json(&RejectPendingRequest { reason: reason.clone() })?)
        }
        Call::Provisioning(ProvisioningCommand::Release { decision_id, components, reason }) => {
            let body = ReleaseRunRequest {
                decision_id: decision_id.clone(),
                components: components.iter().cloned().collect(),
                reason: reason.clone(),
            };
            ("POST", "/provisioning/release".into(), json(&body)?)
        }
    })
}

fn json<T: Serialize>(body: &T) -> anyhow::Result<Option<String>> {
    Ok(Some(serde_json::to_string(body)?))
}

/// Signs and sends one request with the target's profile; returns the status and the
/// body, read by [`output`].
pub(crate) async fn send(
    sdk: &aws_config::SdkConfig,
    target: &Target,
    method: &str,
    path_and_query: &str,
    body: Option<String>,
) -> anyhow::Result<(u16, String)> {
    let base = target.api_url(sdk).await?;
    let url = format!("{}{path_and_query}", base.trim_end_matches('/'));
    let parsed = reqwest::Url::parse(&url).with_context(|| format!("invalid API URL '{base}'"))?;
    let provider = sdk
        .credentials_provider()
        .context("no AWS credentials provider: pass --profile, set AWS_PROFILE or configure the AWS CLI")?;
    let credentials = provider.provide_credentials().await.context("cannot load AWS credentials")?;
    let identity: Identity = credentials.into();
    // After the credentials: a profile that does not exist has no region either, and
    // the credentials' error is the one that names it.
    let region = signing_region(&base, sdk.region())?;
    let payload = body.unwrap_or_default();
    let host = parsed.host_str().with_context(|| format!("the API URL '{base}' names no host"))?;
    let host_header = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let mut headers =
        vec![("host".to_string(), host_header), ("content-type".to_string(), "application/json".to_string())];
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(payload.as_bytes()),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    headers.extend(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())));

    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build()?;
    let mut request = client.request(method.parse()?, parsed);
    for (k, v) in &headers {
        if k != "host" {
            request = request.header(k, v);
        }
    }
    let response = request.body(payload).send().await.with_context(|| format!("cannot reach {url}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.with_context(|| format!("cannot read the answer of {url}"))?;
    Ok((status, text))
}

pub fn run(conn: &Conn, call: Call) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // One SDK configuration per command: an SSO or credential_process profile is
    // resolved once, whatever the command calls.
    let sdk = runtime.block_on(conn.target.sdk());
    let call = match runtime.block_on(name_what_is_approved(&sdk, &conn.target, call))? {
        Ok(call) => call,
        Err(nothing) => {
            eprintln!("revscale: {nothing}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let (method, path, body) = request_of(&call)?;
    let (status, text) = runtime.block_on(send(&sdk, &conn.target, method, &path, body))?;
    if !(200..300).contains(&status) {
        // A refusal from API Gateway itself (not the Lambda) may not be an ErrorResponse.
        let message = serde_json::from_str::<ErrorResponse>(&text).map_or(text, |e| e.error);
        eprintln!("revscale: the API refused ({status}): {message}");
        return Ok(ExitCode::FAILURE);
    }
    if matches!(call, Call::StatusWithOrphans) {
        let status: StatusResponse = serde_json::from_str(&text)
            .context("the API's answer is not the StatusResponse this revscale reads")?;
        let found = runtime.block_on(crate::orphans::find(&sdk, &conn.target, &status))?;
        print!("{}", crate::orphans::render(&status, &found, conn.json)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", output(&call, &text, conn.json)?);
    Ok(ExitCode::SUCCESS)
}

/// An approval names what it approves: without `--id`, the pending change or drain
/// waiting now is read from `/status` and shown, and, once confirmed at a terminal, its
/// id is sent, so that the API refuses the approval (409) if something else replaced it
/// in between. `Err` says why nothing is sent: nothing waits, not confirmed, or not at a
/// terminal (where `--id` is the way).
async fn name_what_is_approved(
    sdk: &aws_config::SdkConfig,
    target: &Target,
    call: Call,
) -> anyhow::Result<Result<Call, String>> {
    let needs_status =
        matches!(call, Call::PendingApprove { id: None } | Call::Drain(DrainCommand::Approve { id: None }));
    if !needs_status {
        return Ok(Ok(call));
    }
    let (status, text) = send(sdk, target, "GET", "/status", None).await?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<ErrorResponse>(&text).map_or(text, |e| e.error);
        return Ok(Err(format!("cannot read what waits for approval ({status}): {message}")));
    }
    let now: StatusResponse = serde_json::from_str(&text)
        .context("the API's answer is not the StatusResponse this revscale reads")?;
    let call = match approval_of(call, &now) {
        Ok(call) => call,
        Err(nothing) => return Ok(Err(nothing)),
    };
    // What is approved is what the approver saw: confirmed at a terminal, named with
    // --id in a script (which cannot have seen it).
    let shown = match &call {
        Call::PendingApprove { id: Some(id) } | Call::Drain(DrainCommand::Approve { id: Some(id) }) => {
            id.clone()
        }
        _ => String::new(),
    };
    if !std::io::stdin().is_terminal() {
        return Ok(Err(format!(
            "not at a terminal: review what is shown above, then approve it by its id: --id {shown}"
        )));
    }
    eprint!("approve {shown}? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).context("cannot read the answer")?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        return Ok(Err("not approved".into()));
    }
    Ok(Ok(call))
}

/// The approval `call` makes, naming what `now` shows waiting.
fn approval_of(call: Call, now: &StatusResponse) -> Result<Call, String> {
    match call {
        Call::PendingApprove { id: None } => {
            let (Some(p), Some(id)) = (&now.pending_approval, &now.pending_approval_id) else {
                return Err("no level change waits for approval".into());
            };
            eprintln!("approving {}", revscale_engine::approval::Approvable::describe(p));
            Ok(Call::PendingApprove { id: Some(id.clone()) })
        }
        Call::Drain(DrainCommand::Approve { id: None }) => {
            let (Some(d), Some(id)) = (&now.drain, &now.drain_id) else {
                return Err("no drain was requested".into());
            };
            eprintln!("approving {}", revscale_engine::approval::Approvable::describe(d));
            Ok(Call::Drain(DrainCommand::Approve { id: Some(id.clone()) }))
        }
        other => Ok(other),
    }
}

/// The answer to `call`, read as its response type, printed as a table or as JSON.
pub fn output(call: &Call, answer: &str, json: bool) -> anyhow::Result<String> {
    match call {
        Call::Status | Call::StatusWithOrphans => show::<StatusResponse>(answer, json, render::status),
        Call::DrainPlan => show::<DryRunResponse>(answer, json, render::drain_plan),
        Call::DrainRequest { .. } => show::<RequestDrainResponse>(answer, json, render::drain_requested),
        Call::Drain(DrainCommand::Approve { .. }) => {
            show::<ApproveDrainResponse>(answer, json, render::drain_approved)
        }
        Call::Drain(DrainCommand::Cancel) => {
            show::<CancelDrainResponse>(answer, json, render::drain_cancelled)
        }
        Call::Override(OverrideCommand::List) => show::<StatusResponse>(answer, json, render::open_overrides),
        Call::Decisions { .. } => show::<DecisionsResponse>(answer, json, render::decisions),
        Call::Override(OverrideCommand::Request { .. }) => {
            show::<CreateOverrideResponse>(answer, json, render::override_created)
        }
        Call::Override(OverrideCommand::Approve { .. }) => {
            show::<ApproveOverrideResponse>(answer, json, render::override_approved)
        }
        Call::Override(OverrideCommand::Reject { .. }) => show::<RejectOverrideResponse>(answer, json, |r| {
            render::override_closed(&r.r#override, "rejected")
        }),
        Call::Override(OverrideCommand::Cancel { .. }) => show::<CancelOverrideResponse>(answer, json, |r| {
            render::override_closed(&r.r#override, "cancelled")
        }),
        Call::BreakerReset => show::<ResetBreakerResponse>(answer, json, render::breaker_reset),
        Call::Mode(_) => show::<SetModeResponse>(answer, json, render::mode_set),
        Call::ShowMode => show::<StatusResponse>(answer, json, render::mode),
        Call::Plan => show::<DryRunResponse>(answer, json, render::plan),
        Call::Cash(CashCommand::Set { .. }) => show::<SetCashResponse>(answer, json, render::cash_set),
        Call::PendingApprove { .. } => show::<ApprovePendingResponse>(answer, json, render::pending_approved),
        Call::PendingReject { .. } => show::<RejectPendingResponse>(answer, json, render::pending_rejected),
        Call::Provisioning(ProvisioningCommand::Release { .. }) => {
            show::<ReleaseRunResponse>(answer, json, render::run_released)
        }
    }
}

fn show<T: DeserializeOwned + Serialize>(
    answer: &str,
    json: bool,
    table: impl Fn(&T) -> String,
) -> anyhow::Result<String> {
    let typed: T = serde_json::from_str(answer).with_context(|| {
        let name = std::any::type_name::<T>().rsplit("::").next().unwrap_or_default();
        format!("the API's answer is not the {name} this revscale reads (a newer or older API?)")
    })?;
    Ok(if json { serde_json::to_string_pretty(&typed)? + "\n" } else { table(&typed) })
}

#[cfg(test)]
mod tests;
