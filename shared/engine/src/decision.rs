//! What one evaluation decides: the transitions, the events, and why.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::model::{Cause, ComponentId, DecisionId, Mode, Transition, TransitionKind};
use crate::money::{Money, Ratio};
use crate::runway::RunwayMonths;
use crate::state::SystemState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A level change was committed (provisioning succeeded).
    LevelChanged {
        from: u8,
        to: u8,
        cause: Cause,
    },
    /// An activation was refused by the cost guard.
    Blocked {
        level: u8,
        projected_cost: Money,
        limit: Money,
        reference_revenue: Money,
        max_burn: Money,
        reason: String,
    },
    Alert {
        severity: Severity,
        ratio: Ratio,
        threshold: Ratio,
        cost: Money,
        mrr: Money,
    },
    TransitionFailed {
        component: ComponentId,
        transition: TransitionKind,
        error: String,
    },
    /// Completed steps of a failed run were undone, newest first.
    Rollback {
        undone: Vec<Transition>,
    },
    BreakerOpened {
        consecutive_failures: u32,
        until: NaiveDate,
    },
    /// The next level's components go COLD -> WARM ahead of its month closing.
    Prewarm {
        level: u8,
        components: Vec<ComponentId>,
    },
    /// WARM components unused for the cool-down period go COLD.
    Cooldown {
        components: Vec<ComponentId>,
    },
    /// A level change waits for a human approval.
    ApprovalRequired {
        from: u8,
        to: u8,
        extra_monthly_cost: Money,
    },
    /// Shadow mode: what would have happened.
    ShadowOnly {
        from: u8,
        to: u8,
        transitions: usize,
    },
    /// An approved override pinned the level today (audited on every use).
    OverrideApplied {
        id: String,
        level: u8,
        requested_by: String,
        approved_by: String,
        until: NaiveDate,
    },
    /// An activation (`level`'s, or its pre-warming) was held by the runway guard:
    /// the runway after it would be under the minimum, or the runway is unknown
    /// (`after` is `None`).
    RunwayHeld {
        level: u8,
        before: Option<RunwayMonths>,
        after: Option<RunwayMonths>,
        min_months: u32,
        reason: String,
    },
    /// The runway crossed `min_months + 3` (a warning) or `min_months` (critical).
    RunwayAlert {
        severity: Severity,
        months: RunwayMonths,
        min_months: u32,
        cash: Money,
        net_burn: Money,
    },
    /// The cash figure turned stale (a warning) or too old to estimate the runway from
    /// (critical: activations are held until it is set again).
    CashStale {
        severity: Severity,
        as_of: NaiveDate,
        age_days: i64,
    },
}

impl Event {
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::LevelChanged { .. } => "level_changed",
            Event::Blocked { .. } => "blocked",
            Event::Alert { .. } => "alert",
            Event::TransitionFailed { .. } => "transition_failed",
            Event::Rollback { .. } => "rollback",
            Event::BreakerOpened { .. } => "breaker_opened",
            Event::Prewarm { .. } => "prewarm",
            Event::Cooldown { .. } => "cooldown",
            Event::ApprovalRequired { .. } => "approval_required",
            Event::ShadowOnly { .. } => "shadow_only",
            Event::OverrideApplied { .. } => "override_applied",
            Event::RunwayHeld { .. } => "runway_held",
            Event::RunwayAlert { .. } => "runway_alert",
            Event::CashStale { .. } => "cash_stale",
        }
    }

    /// One short line, for tables and e-mails.
    pub fn summary(&self) -> String {
        match self {
            Event::LevelChanged { from, to, cause } => format!("level {from} -> {to} ({cause})"),
            Event::Blocked { level, projected_cost, limit, .. } => {
                format!("blocked L{level}: cost {projected_cost} > {limit}")
            }
            Event::Alert { severity, ratio, .. } => {
                format!("{} cost/MRR {ratio}", format!("{severity:?}").to_lowercase())
            }
            Event::TransitionFailed { component, transition, .. } => {
                format!("{component} {transition:?} failed").to_lowercase()
            }
            Event::Rollback { undone } => format!("rollback of {} step(s)", undone.len()),
            Event::BreakerOpened { until, .. } => format!("breaker open until {until}"),
            Event::Prewarm { level, components } => {
                format!("prewarm L{level} ({})", join(components))
            }
            Event::Cooldown { components } => format!("cold: {}", join(components)),
            Event::ApprovalRequired { from, to, .. } => format!("L{from} -> L{to} awaits approval"),
            Event::ShadowOnly { from, to, .. } => format!("shadow: would go L{from} -> L{to}"),
            Event::OverrideApplied { id, level, .. } => format!("override {id} pins L{level}"),
            // The figures move every day; the summary does not, so that a table lists a
            // hold that lasts once (the event and the reasons carry the figures).
            Event::RunwayHeld { level, after: Some(_), min_months, .. } => {
                format!("held L{level}: runway under {min_months} months")
            }
            Event::RunwayHeld { level, after: None, .. } => format!("held L{level}: runway unknown"),
            Event::RunwayAlert { severity, months, .. } => {
                format!("{} runway {months} months", format!("{severity:?}").to_lowercase())
            }
            Event::CashStale { severity, age_days, .. } => {
                format!("{} cash figure {age_days} days old", format!("{severity:?}").to_lowercase())
            }
        }
    }
}

fn join(ids: &[ComponentId]) -> String {
    ids.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
}

/// What the adapters must do with a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing to provision.
    Hold,
    /// Provision `transitions` now.
    Execute,
    /// A level change waits for a human.
    AwaitingApproval,
    /// Shadow mode: record, do not provision.
    ShadowOnly,
}

/// The day's numbers the decision was based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    pub mrr: Option<Money>,
    pub average_3m: Option<Money>,
    pub cost: Option<Money>,
    pub ratio: Option<Ratio>,
    /// RunwayMonths of runway at today's figures, when the configuration has a runway
    /// section and the runway is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runway: Option<RunwayMonths>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub id: DecisionId,
    pub date: NaiveDate,
    pub mode: Mode,
    pub from_level: u8,
    /// The level once `transitions` are done (`from_level` when the level holds).
    pub to_level: u8,
    pub cause: Option<Cause>,
    pub outcome: Outcome,
    /// In order: dependencies first going up, dependents first going down.
    pub transitions: Vec<Transition>,
    pub events: Vec<Event>,
    pub reasons: Vec<String>,
    pub figures: Figures,
    /// The state to store with this decision (pending approvals and the like), before
    /// any provisioning.
    pub state: SystemState,
}

impl Decision {
    pub fn changes_level(&self) -> bool {
        self.from_level != self.to_level
    }
}

/// A decision as the audit trail keeps it: everything but the state it produced. That
/// state is the state item at the audit record's `state_version`; embedding it in every
/// record would grow the trail with the state and push a record past DynamoDB's 400 KB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedDecision {
    pub id: DecisionId,
    pub date: NaiveDate,
    pub mode: Mode,
    pub from_level: u8,
    pub to_level: u8,
    pub cause: Option<Cause>,
    pub outcome: Outcome,
    pub transitions: Vec<Transition>,
    pub reasons: Vec<String>,
    pub figures: Figures,
}

impl From<&Decision> for RecordedDecision {
    fn from(d: &Decision) -> Self {
        RecordedDecision {
            id: d.id.clone(),
            date: d.date,
            mode: d.mode,
            from_level: d.from_level,
            to_level: d.to_level,
            cause: d.cause,
            outcome: d.outcome,
            transitions: d.transitions.clone(),
            reasons: d.reasons.clone(),
            figures: d.figures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::testing::*;

    #[test]
    fn every_event_has_a_type_name_and_a_one_line_summary() {
        let eur = |n| Money::whole(n, Currency::EUR);
        let comp = ComponentId::new("k8s_workers");
        let t = Transition { component: comp.clone(), kind: TransitionKind::Deploy };
        let cases = [
            (
                Event::LevelChanged { from: 1, to: 2, cause: Cause::CostOverrun },
                "level_changed",
                "level 1 -> 2 (cost overrun)",
            ),
            (
                Event::Blocked {
                    level: 2,
                    projected_cost: eur(960),
                    limit: eur(900),
                    reference_revenue: eur(1000),
                    max_burn: eur(3000),
                    reason: String::new(),
                },
                "blocked",
                "blocked L2: cost EUR 960 > EUR 900",
            ),
            (
                Event::Alert {
                    severity: Severity::Critical,
                    ratio: Ratio::from_basis_points(9150),
                    threshold: Ratio::from_basis_points(9000),
                    cost: eur(915),
                    mrr: eur(1000),
                },
                "alert",
                "critical cost/MRR 91.50%",
            ),
            (
                Event::TransitionFailed {
                    component: comp.clone(),
                    transition: TransitionKind::Activate,
                    error: "x".into(),
                },
                "transition_failed",
                "k8s_workers activate failed",
            ),
            (Event::Rollback { undone: vec![t.clone()] }, "rollback", "rollback of 1 step(s)"),
            (
                Event::BreakerOpened { consecutive_failures: 3, until: day("2026-03-06") },
                "breaker_opened",
                "breaker open until 2026-03-06",
            ),
            (
                Event::Prewarm { level: 2, components: vec![comp.clone()] },
                "prewarm",
                "prewarm L2 (k8s_workers)",
            ),
            (Event::Cooldown { components: vec![comp.clone()] }, "cooldown", "cold: k8s_workers"),
            (
                Event::ApprovalRequired { from: 1, to: 2, extra_monthly_cost: eur(160) },
                "approval_required",
                "L1 -> L2 awaits approval",
            ),
            (
                Event::ShadowOnly { from: 1, to: 2, transitions: 4 },
                "shadow_only",
                "shadow: would go L1 -> L2",
            ),
            (
                Event::OverrideApplied {
                    id: "o1".into(),
                    level: 3,
                    requested_by: "a".into(),
                    approved_by: "b".into(),
                    until: day("2026-03-31"),
                },
                "override_applied",
                "override o1 pins L3",
            ),
            (
                Event::RunwayHeld {
                    level: 2,
                    before: Some(RunwayMonths::Tenths(142)),
                    after: Some(RunwayMonths::Tenths(118)),
                    min_months: 12,
                    reason: String::new(),
                },
                "runway_held",
                "held L2: runway under 12 months",
            ),
            (
                Event::RunwayHeld {
                    level: 2,
                    before: None,
                    after: None,
                    min_months: 12,
                    reason: String::new(),
                },
                "runway_held",
                "held L2: runway unknown",
            ),
            (
                Event::RunwayAlert {
                    severity: Severity::Warning,
                    months: RunwayMonths::Tenths(149),
                    min_months: 12,
                    cash: eur(420_000),
                    net_burn: eur(28_200),
                },
                "runway_alert",
                "warning runway 14.9 months",
            ),
            (
                Event::CashStale { severity: Severity::Warning, as_of: day("2026-10-01"), age_days: 45 },
                "cash_stale",
                "warning cash figure 45 days old",
            ),
        ];
        for (event, name, summary) in cases {
            assert_eq!(event.type_name(), name);
            assert_eq!(event.summary(), summary);
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["type"], name, "the serialised tag matches type_name()");
        }
        assert_eq!(t.to_string(), "k8s_workers cold -> warm");
    }

    #[test]
    fn causes_read_as_words_and_ids_print_plainly() {
        let words: Vec<String> =
            [Cause::Growth, Cause::Churn, Cause::CostOverrun, Cause::Override, Cause::Drain, Cause::Runway]
                .iter()
                .map(|c| c.to_string())
                .collect();
        assert_eq!(words, ["growth", "churn", "cost overrun", "override", "drain", "runway"]);
        let id = DecisionId("2026-03-01-L1-L2-abc".into());
        assert_eq!(format!("{id} {id:?}"), "2026-03-01-L1-L2-abc 2026-03-01-L1-L2-abc");
    }
}
