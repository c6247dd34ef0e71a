//! The tables and summaries the operator commands print, from the API's typed answers.
//! A value the API says is absent (`null`: no revenue yet, say) prints as "-".

use std::fmt::Display;

use chrono::{DateTime, SecondsFormat, Utc};
use revscale_api::{
    ApproveDrainResponse, ApproveOverrideResponse, ApprovePendingResponse, BreakerPosition, BreakerState,
    BreakerView, CancelDrainResponse, CreateOverrideResponse, DecisionsResponse, Drain, DryRunResponse,
    Evaluation, OpenOverrides, Override, PendingApproval, RejectPendingResponse, ReleaseRunResponse,
    RequestDrainResponse, ResetBreakerResponse, RunwayMonths, RunwayView, SetCashResponse, SetModeResponse,
    StatusResponse,
};
use revscale_engine::ModeSource;
use serde::Serialize;

/// The name a value has on the wire (`execute`, `half_open`...), for enums without
/// a `Display` of their own.
fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(e) => format!("<{e}>"),
    }
}

fn or_dash<T: Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn breaker_state(state: BreakerState) -> String {
    match state {
        BreakerState::Closed => "closed".into(),
        BreakerState::Open { until } => format!("open until {until}"),
        BreakerState::HalfOpen => "half_open".into(),
    }
}

fn breaker(b: &BreakerView) -> String {
    format!("breaker    {} ({} consecutive failure(s))\n", breaker_state(b.state), b.consecutive_failures)
}

fn reasons(reasons: &[String]) -> String {
    reasons.iter().map(|r| format!("  - {r}\n")).collect()
}

pub fn status(s: &StatusResponse) -> String {
    let mut out = format!("level      L{} since {}\n", s.level, s.level_since);
    out += &mode(s);
    let ratio = s.ratio_pct.map_or("no revenue".into(), |r| format!("{r:.2}% of MRR"));
    out += &format!(
        "MRR        {} (3-month average {})\ncost       {} ({ratio})\n",
        or_dash(s.mrr),
        or_dash(s.average_3m),
        or_dash(s.cost)
    );
    if let Some(r) = &s.runway {
        out += &runway(r);
    }
    out += &breaker(&s.breaker);
    if let Some(run) = &s.provisioning {
        out += &format!(
            "provisioning {} (L{} -> L{}, started {})\n",
            run.decision_id,
            run.from_level,
            run.to_level,
            instant(run.started_at)
        );
    }
    if let Some(p) = &s.pending_approval {
        out += &pending_line(p, "waits for approval");
    }
    if let Some(d) = &s.drain {
        out += &drain_line(d);
    }
    out += &crate::table::render(
        &["component", "state", "since"],
        s.components.iter().map(|(name, c)| vec![name.to_string(), c.state.to_string(), c.since.to_string()]),
    );
    out += &overrides(&s.overrides);
    out += &format!("next       {} -> L{}\n", wire_name(&s.next.would_do), s.next.to_level);
    out + &reasons(&s.next.reasons)
}

/// "runway     13.8 months (minimum 12): cash EUR 393,764.38, net burn EUR 28,500 a month, from EUR 420,000 as of 2026-11-01"
fn runway(r: &RunwayView) -> String {
    let from = r
        .set
        .as_ref()
        .map_or(String::new(), |c| format!(", from {} as of {} (set by {})", c.amount, c.as_of, c.set_by));
    match (r.months, r.cash, r.net_burn) {
        (Some(months), Some(cash), Some(burn)) => {
            let unit = if months == RunwayMonths::Unlimited { "" } else { " months" };
            let under = if months.is_under(r.min_months) { ", UNDER THE MINIMUM" } else { "" };
            format!(
                "runway     {months}{unit} (minimum {}{under}): cash {cash}, net burn {burn} a month{from}\n",
                r.min_months
            )
        }
        _ => format!(
            "runway     unknown (minimum {}): {}; no activation passes until it is known\n",
            r.min_months,
            r.unknown_because.as_deref().unwrap_or("no figures")
        ),
    }
}

pub fn cash_set(r: &SetCashResponse) -> String {
    let mut out =
        format!("cash       {} as of {}, recorded (set by {})\n", r.cash.amount, r.cash.as_of, r.cash.set_by);
    if let Some(view) = &r.runway {
        out += &runway(view);
    }
    out
}

pub fn open_overrides(s: &StatusResponse) -> String {
    overrides(&s.overrides)
}

/// The mode in force and where it comes from.
pub fn mode(s: &StatusResponse) -> String {
    let source = match s.mode_source {
        ModeSource::Deployment => "the stack's Mode parameter".to_string(),
        ModeSource::Operator => format!(
            "set with `revscale mode`; holds until a deploy changes the stack's Mode, now {}",
            s.deployed_mode
        ),
    };
    format!("mode       {} ({source})\n", s.mode)
}

pub fn mode_set(r: &SetModeResponse) -> String {
    format!(
        "mode       {} (holds until a deploy changes the stack's Mode, now {})\n",
        r.mode, r.deployed_mode
    )
}

fn overrides(open: &OpenOverrides) -> String {
    let rows: Vec<Vec<String>> = [("active", &open.active), ("pending", &open.pending)]
        .into_iter()
        .flat_map(|(kind, list)| list.iter().map(move |o| (kind, o)))
        .map(|(kind, o)| {
            vec![
                kind.to_string(),
                o.id.clone(),
                format!("L{}", o.level),
                o.until.to_string(),
                o.requested_by.clone(),
                o.approved_by.clone().unwrap_or_else(|| "-".into()),
                o.reason.clone(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "overrides  none open\n".into();
    }
    crate::table::render(&["override", "id", "level", "until", "requested by", "approved by", "reason"], rows)
}

pub fn decisions(d: &DecisionsResponse) -> String {
    let mut out = crate::table::render(
        &["id", "kind", "actor", "note"],
        d.decisions
            .iter()
            .map(|e| vec![e.id.to_string(), e.kind.to_string(), e.actor.to_string(), e.note.clone()]),
    );
    if let Some(next) = &d.next {
        out += &format!("more: revscale decisions --before {next}\n");
    }
    out
}

/// What an approved drain would take down, in order.
pub fn drain_plan(p: &DryRunResponse) -> String {
    let d = &p.decision;
    if d.transitions.is_empty() {
        return format!(
            "drain      nothing to take down: every component revscale manages is COLD (L{})\n",
            d.from_level
        );
    }
    let mut out = format!("drain      would take L{} -> L{}, in this order:\n", d.from_level, d.to_level);
    out += &crate::table::render(
        &["component", "step"],
        d.transitions.iter().map(|t| vec![t.component.to_string(), wire_name(&t.kind)]),
    );
    out
}

fn drain_line(d: &Drain) -> String {
    let approved = d.approved_by.as_ref().map(|by| format!(", approved by {by}")).unwrap_or_default();
    format!(
        "drain      {} requested by {} on {}{approved}: {}\n",
        d.id(),
        d.requested_by,
        d.requested_on,
        d.reason
    )
}

pub fn drain_requested(r: &RequestDrainResponse) -> String {
    drain_line(&r.drain) + &format!("next       {}\n", r.next) + &drain_plan(&r.plan)
}

pub fn drain_approved(r: &ApproveDrainResponse) -> String {
    drain_line(&r.drain) + &evaluation(&r.evaluation)
}

pub fn drain_cancelled(r: &CancelDrainResponse) -> String {
    format!("drain      cancelled (requested by {}): revenue decides again\n", r.cancelled.requested_by)
}

pub fn plan(p: &DryRunResponse) -> String {
    let d = &p.decision;
    let mut out =
        format!("would do {} : L{} -> L{} ({})\n", wire_name(&d.outcome), d.from_level, d.to_level, d.id);
    for t in &d.transitions {
        out += &format!("  {} {}\n", t.component, wire_name(&t.kind));
    }
    out + &reasons(&d.reasons)
}

fn override_line(o: &Override, what: &str) -> String {
    format!("override   {} {what}: L{} until {} (requested by {})\n", o.id, o.level, o.until, o.requested_by)
}

fn evaluation(e: &Evaluation) -> String {
    match e {
        Evaluation::Recorded { decision_id, from_level, to_level, outcome, published, reasons: why } => {
            let sent = if *published { ", level change requested" } else { "" };
            format!(
                "evaluated  {decision_id}: {} L{from_level} -> L{to_level}{sent}\n{}",
                wire_name(outcome),
                reasons(why)
            )
        }
        Evaluation::Replay { decision_id, published: true } => {
            format!("evaluated  {decision_id}: recorded already; its level change request went out again\n")
        }
        Evaluation::Replay { decision_id, published: false } => {
            format!("evaluated  {decision_id}: recorded already, nothing published again\n")
        }
    }
}

pub fn override_created(r: &CreateOverrideResponse) -> String {
    let o = &r.r#override;
    format!("{}reason     {}\nnext       {}\n", override_line(o, "requested"), o.reason, r.next)
}

pub fn override_approved(r: &ApproveOverrideResponse) -> String {
    let o = &r.r#override;
    let approved = o.approved_by.as_ref().map_or("approved".into(), |by| format!("approved by {by}"));
    override_line(o, &approved) + &evaluation(&r.evaluation)
}

pub fn override_closed(o: &Override, verb: &str) -> String {
    override_line(o, verb)
}

fn pending_line(p: &PendingApproval, what: &str) -> String {
    let cause = p.cause.map(|c| format!(", {c}")).unwrap_or_default();
    format!(
        "pending    {} L{} -> L{} {what} (requested {}{cause}, {} more a month)\n",
        p.id(),
        p.from,
        p.to,
        p.requested_on,
        p.extra_monthly_cost
    )
}

pub fn pending_approved(r: &ApprovePendingResponse) -> String {
    let p = &r.pending_approval;
    let approved = p.approved_by.as_ref().map_or("approved".into(), |by| format!("approved by {by}"));
    pending_line(p, &approved) + &evaluation(&r.evaluation)
}

pub fn pending_rejected(r: &RejectPendingResponse) -> String {
    pending_line(&r.rejected, "rejected") + &format!("reason     {}\n", r.reason)
}

pub fn breaker_reset(r: &ResetBreakerResponse) -> String {
    let position = match r.breaker {
        BreakerPosition::Closed => "closed",
        BreakerPosition::Open => "open",
        BreakerPosition::HalfOpen => "half_open",
    };
    format!("breaker    {position} (reset: its failures are forgotten)\n")
}

pub fn run_released(r: &ReleaseRunResponse) -> String {
    let mut out = format!("released   {} (counted as a failed run)\n", r.released);
    out += &crate::table::render(
        &["component", "declared"],
        r.components.iter().map(|(name, state)| vec![name.to_string(), state.to_string()]),
    );
    out + &breaker(&r.breaker)
}
