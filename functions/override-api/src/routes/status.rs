//! `GET /status` and `GET /decisions`: where the system stands, and what it decided.

use chrono::{DateTime, Utc};
use lambda_http::{Request, RequestExt};
use revscale_api::{
    AuditEntry, ComponentView, DecisionsQuery, DecisionsResponse, NextStep, OpenOverrides, RecordedDecision,
    RunInProgress, StatusResponse,
};
use revscale_engine::ports::{AuditRecord, Store};
use revscale_engine::state::Override;

use super::{breaker_view, plan_with_runway};
use crate::context::{ApiError, Deps, only_params};

/// The longest audit id (a provisioning record's: a decision id and a step suffix).
const MAX_AUDIT_ID_CHARS: usize = 160;

pub(crate) async fn status<S: Store, B, N>(
    deps: &Deps<S, B, N>,
    store: &S,
    now: DateTime<Utc>,
) -> Result<StatusResponse, ApiError> {
    let (state, decision, runway) = plan_with_runway(deps, store, now).await?;
    let today = deps.today(now);
    let (active, pending): (Vec<&Override>, Vec<&Override>) =
        state.overrides.iter().filter(|o| !o.cancelled && today <= o.until).partition(|o| o.is_active(today));
    let components = state
        .components
        .iter()
        .map(|(id, r)| {
            let kind = deps.config.component(id).map(|c| c.driver.kind().to_string());
            (
                id.clone(),
                ComponentView { state: r.state, since: r.since, kind, saved_capacity: r.saved_capacity },
            )
        })
        .collect();
    let provisioning = state.provisioning.as_ref().map(|r| RunInProgress {
        decision_id: r.decision_id.clone(),
        from_level: r.from_level,
        to_level: r.to_level,
        started_at: r.started_at,
    });
    let (mode, mode_source) = state.mode_in_force(&deps.config);
    Ok(StatusResponse {
        date: today,
        level: state.level,
        level_since: state.level_since,
        mode,
        mode_source,
        deployed_mode: deps.config.mode,
        drain: state.drain.clone(),
        drain_id: state.drain.as_ref().map(|d| d.id()),
        mrr: decision.figures.mrr,
        average_3m: decision.figures.average_3m,
        cost: decision.figures.cost,
        ratio_pct: decision.figures.ratio.map(|r| r.as_percent()),
        components,
        breaker: breaker_view(&deps.config, &state, today),
        overrides: OpenOverrides {
            active: active.into_iter().cloned().collect(),
            pending: pending.into_iter().cloned().collect(),
        },
        pending_approval: state.pending_approval.as_ref().cloned(),
        pending_approval_id: state.pending_approval.as_ref().map(|p| p.id()),
        provisioning,
        next: NextStep { would_do: decision.outcome, to_level: decision.to_level, reasons: decision.reasons },
        runway,
    })
}

/// `?limit=` (1 to 100) and `?before=` (a trail key, the `next` of a previous page), checked: a bad value is a 400
/// that says what is accepted.
pub(crate) fn decisions_query(req: &Request) -> Result<DecisionsQuery, ApiError> {
    only_params(req, &["limit", "before"])?;
    let params = req.query_string_parameters();
    let limit = match params.first("limit") {
        None => None,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=DecisionsQuery::MAX_LIMIT).contains(&n) => Some(n),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "query parameter 'limit' must be 1 to {} (got '{raw}')",
                    DecisionsQuery::MAX_LIMIT
                )));
            }
        },
    };
    let before = match params.first("before") {
        None => None,
        Some(raw) => {
            let valid = !raw.is_empty()
                && raw.chars().count() <= MAX_AUDIT_ID_CHARS
                && raw.chars().all(|c| c.is_ascii_alphanumeric() || "-:._#".contains(c));
            if !valid {
                return Err(ApiError::BadRequest(format!(
                    "query parameter 'before' must be the 'next' of a previous page, got '{raw}'"
                )));
            }
            Some(raw.to_string())
        }
    };
    Ok(DecisionsQuery { limit, before })
}

pub(crate) async fn decisions<S: Store>(
    store: &S,
    query: DecisionsQuery,
) -> Result<DecisionsResponse, ApiError> {
    let limit = query.limit.unwrap_or(DecisionsQuery::DEFAULT_LIMIT);
    let records = store.recent_audit(limit, query.before).await?;
    let next = if records.len() == limit { records.last().map(|r| r.trail_key()) } else { None };
    Ok(DecisionsResponse { decisions: records.into_iter().map(audit_entry).collect(), next })
}

fn audit_entry(r: AuditRecord) -> AuditEntry {
    AuditEntry {
        id: r.id,
        at: r.at,
        kind: r.kind,
        actor: r.actor,
        decision: r.decision.map(|d| RecordedDecision {
            id: d.id,
            date: d.date,
            mode: d.mode,
            from_level: d.from_level,
            to_level: d.to_level,
            cause: d.cause,
            outcome: d.outcome,
            transitions: d.transitions,
            reasons: d.reasons,
            figures: d.figures,
        }),
        events: r.events,
        note: r.note,
        state_version: r.state_version,
    }
}
