//! The operator commands: `revscale status`, `decisions`, `override ...`, `breaker
//! reset`, `mode`, `plan`, `pending approve|reject`, `override reject`, `provisioning release`. Each is one SigV4-signed call to the
//! API (credentials from the standard AWS chain), printed as a table or as JSON.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use chrono::NaiveDate;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct Conn {
    /// The API's base URL (the stack's `ApiUrl` output).
    #[arg(long, env = "REVSCALE_API_URL", global = true)]
    api_url: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
pub enum OverrideCommand {
    /// Ask to pin a level until a date; another principal must approve it.
    Request {
        #[arg(long)]
        level: u8,
        #[arg(long, value_name = "YYYY-MM-DD")]
        until: NaiveDate,
        #[arg(long)]
        reason: String,
    },
    /// Approve someone else's override request (an approver, never its requester).
    Approve { id: String },
    /// Refuse someone else's override request (an approver).
    Reject { id: String },
    /// Cancel an override.
    Cancel { id: String },
    /// List active and pending overrides.
    List,
}

#[derive(Subcommand)]
pub enum ProvisioningCommand {
    /// Release the lock of a run that could neither finish nor roll back
    /// (RollbackFailed, or an execution stopped by hand), once you have repaired its
    /// components by hand: say where each one it touched stands. Counts as a failed run.
    Release {
        /// The run's decision id (the execution's name; `revscale status` shows it).
        decision_id: String,
        /// Where a component stands now: cold, warm or hot. Once per component the run
        /// may have touched.
        #[arg(long = "component", value_name = "COMPONENT=STATE", value_parser = declared_state, required = true)]
        components: Vec<(String, String)>,
        #[arg(long)]
        reason: String,
    },
}

fn declared_state(text: &str) -> Result<(String, String), String> {
    let (component, state) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}': expected COMPONENT=STATE, e.g. eks_control_plane=cold"))?;
    match state {
        "cold" | "warm" | "hot" => Ok((component.to_string(), state.to_string())),
        other => Err(format!("'{other}': a repaired component is cold, warm or hot")),
    }
}

pub enum Call {
    Status,
    Decisions { limit: u32, before: Option<String> },
    Override(OverrideCommand),
    BreakerReset,
    Mode(String),
    Plan,
    PendingApprove,
    PendingReject { reason: String },
    Provisioning(ProvisioningCommand),
}

/// Signs and sends one request; returns the status and the JSON body.
async fn send(
    base: &str,
    method: &str,
    path_and_query: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let url = format!("{}{path_and_query}", base.trim_end_matches('/'));
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .or_else(|| region_from_url(base))
        .context("no AWS region: set AWS_REGION (or use an execute-api URL, which names it)")?;
    let provider = sdk
        .credentials_provider()
        .context("no AWS credentials provider: configure the AWS CLI or set AWS_PROFILE")?;
    let credentials = provider.provide_credentials().await.context("cannot load AWS credentials")?;
    let identity: Identity = credentials.into();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let host = reqwest::Url::parse(&url).context("invalid API URL")?;
    let host_header = match host.port() {
        Some(p) => format!("{}:{p}", host.host_str().unwrap_or_default()),
        None => host.host_str().unwrap_or_default().to_string(),
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
    let mut request = client.request(method.parse()?, &url);
    for (k, v) in &headers {
        if k != "host" {
            request = request.header(k, v);
        }
    }
    let response = request.body(payload).send().await.with_context(|| format!("cannot reach {url}"))?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    let value = serde_json::from_str(&text).unwrap_or_else(|_| json!({"error": text}));
    Ok((status, value))
}

/// `https://abc.execute-api.eu-west-1.amazonaws.com` -> `eu-west-1`.
pub fn region_from_url(url: &str) -> Option<String> {
    let host = reqwest::Url::parse(url).ok()?.host_str()?.to_string();
    let mut parts = host.split('.');
    parts.next()?;
    (parts.next()? == "execute-api").then(|| parts.next().map(String::from)).flatten()
}

pub fn run(conn: &Conn, call: Call) -> anyhow::Result<ExitCode> {
    let Some(base) = conn.api_url.clone() else {
        bail!("no API URL: pass --api-url or set REVSCALE_API_URL")
    };
    let (method, path, body) = match &call {
        Call::Status | Call::Override(OverrideCommand::List) => ("GET", "/status".to_string(), None),
        Call::Decisions { limit, before } => {
            let cursor = before.as_ref().map(|b| format!("&before={b}")).unwrap_or_default();
            ("GET", format!("/decisions?limit={limit}{cursor}"), None)
        }
        Call::Override(OverrideCommand::Request { level, until, reason }) => {
            ("POST", "/overrides".into(), Some(json!({"level": level, "until": until, "reason": reason})))
        }
        Call::Override(OverrideCommand::Approve { id }) => ("POST", format!("/overrides/{id}/approve"), None),
        Call::Override(OverrideCommand::Cancel { id }) => ("DELETE", format!("/overrides/{id}"), None),
        Call::Override(OverrideCommand::Reject { id }) => ("POST", format!("/overrides/{id}/reject"), None),
        Call::BreakerReset => ("POST", "/breaker/reset".into(), None),
        Call::Mode(mode) => ("POST", "/mode".into(), Some(json!({"mode": mode}))),
        Call::Plan => ("POST", "/evaluate?dry_run=true".into(), None),
        Call::PendingApprove => ("POST", "/pending/approve".into(), None),
        Call::PendingReject { reason } => ("POST", "/pending/reject".into(), Some(json!({"reason": reason}))),
        Call::Provisioning(ProvisioningCommand::Release { decision_id, components, reason }) => {
            let components: serde_json::Map<String, Value> =
                components.iter().map(|(c, s)| (c.clone(), Value::from(s.as_str()))).collect();
            let body = json!({"decision_id": decision_id, "components": components, "reason": reason});
            ("POST", "/provisioning/release".into(), Some(body))
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (status, value) = runtime.block_on(send(&base, method, &path, body))?;
    if !(200..300).contains(&status) {
        let message = value["error"].as_str().map(String::from).unwrap_or_else(|| value.to_string());
        eprintln!("revscale: the API refused ({status}): {message}");
        return Ok(ExitCode::FAILURE);
    }
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", render(&call, &value));
    }
    Ok(ExitCode::SUCCESS)
}

fn money(v: &Value) -> String {
    match (v["minor"].as_i64(), v["currency"].as_str()) {
        (Some(minor), Some(c)) => {
            revscale_engine::Money::from_minor(minor, c.parse().unwrap_or(revscale_engine::Currency::EUR))
                .to_string()
        }
        _ => "-".into(),
    }
}

fn render(call: &Call, v: &Value) -> String {
    let mut out = String::new();
    match call {
        Call::Status => {
            out += &format!(
                "level      L{} since {} (mode {})\n",
                v["level"],
                v["level_since"].as_str().unwrap_or("-"),
                v["mode"].as_str().unwrap_or("-")
            );
            out += &format!(
                "MRR        {} (3-month average {})\ncost       {} ({})\n",
                money(&v["mrr"]),
                money(&v["average_3m"]),
                money(&v["cost"]),
                v["ratio_pct"].as_f64().map_or("no revenue".into(), |r| format!("{r:.2}% of MRR"))
            );
            out += &format!(
                "breaker    {} ({} consecutive failure(s))\n",
                v["breaker"]["state"]["status"].as_str().unwrap_or("-"),
                v["breaker"]["consecutive_failures"]
            );
            if let Some(run) = v["provisioning"].as_object() {
                out += &format!(
                    "provisioning {} (L{} -> L{}, started {})\n",
                    run["decision_id"].as_str().unwrap_or("-"),
                    run["from_level"],
                    run["to_level"],
                    run["started_at"].as_str().unwrap_or("-")
                );
            }
            out += "components\n";
            if let Some(components) = v["components"].as_object() {
                for (name, c) in components {
                    out += &format!(
                        "  {name:<20} {:<8} since {}\n",
                        c["state"].as_str().unwrap_or("-"),
                        c["since"].as_str().unwrap_or("-")
                    );
                }
            }
            out += &overrides(v);
            out += &format!(
                "next       {} -> L{}\n",
                v["next"]["would_do"].as_str().unwrap_or("-"),
                v["next"]["to_level"]
            );
            for reason in v["next"]["reasons"].as_array().into_iter().flatten() {
                out += &format!("  - {}\n", reason.as_str().unwrap_or_default());
            }
        }
        Call::Override(OverrideCommand::List) => out += &overrides(v),
        Call::Decisions { .. } => {
            out += &format!("{:<36} {:<18} {:<40} note\n", "id", "kind", "actor");
            for d in v["decisions"].as_array().into_iter().flatten() {
                let note: String = d["note"].as_str().unwrap_or_default().chars().take(80).collect();
                out += &format!(
                    "{:<36} {:<18} {:<40} {note}\n",
                    d["id"].as_str().unwrap_or_default(),
                    d["kind"].as_str().unwrap_or_default(),
                    d["actor"].as_str().unwrap_or_default()
                );
            }
            if let Some(next) = v["next"].as_str() {
                out += &format!("more: revscale decisions --before {next}\n");
            }
        }
        Call::Plan => {
            let d = &v["decision"];
            out += &format!(
                "would do {} : L{} -> L{} ({})\n",
                d["outcome"].as_str().unwrap_or("-"),
                d["from_level"],
                d["to_level"],
                d["id"].as_str().unwrap_or("-")
            );
            for t in d["transitions"].as_array().into_iter().flatten() {
                out += &format!(
                    "  {} {}\n",
                    t["component"].as_str().unwrap_or_default(),
                    t["kind"].as_str().unwrap_or_default()
                );
            }
            for reason in d["reasons"].as_array().into_iter().flatten() {
                out += &format!("  - {}\n", reason.as_str().unwrap_or_default());
            }
        }
        _ => out += &format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default()),
    }
    out
}

fn overrides(v: &Value) -> String {
    let mut out = String::from("overrides\n");
    for (kind, list) in [("active", &v["overrides"]["active"]), ("pending", &v["overrides"]["pending"])] {
        for o in list.as_array().into_iter().flatten() {
            out += &format!(
                "  {kind:<8} {} L{} until {} by {}{}: {}\n",
                o["id"].as_str().unwrap_or_default(),
                o["level"],
                o["until"].as_str().unwrap_or_default(),
                o["requested_by"].as_str().unwrap_or_default(),
                o["approved_by"].as_str().map(|a| format!(", approved by {a}")).unwrap_or_default(),
                o["reason"].as_str().unwrap_or_default()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_is_read_from_an_execute_api_url() {
        assert_eq!(
            region_from_url("https://a1b2.execute-api.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_from_url("http://127.0.0.1:9000"), None);
    }
}
