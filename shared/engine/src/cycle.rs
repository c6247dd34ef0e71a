//! The daily evaluation as a use case over the ports: load, decide, record, publish.
//! The `evaluate` Lambda runs it with DynamoDB, EventBridge and SNS; tests run it with
//! the in-memory adapters.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::decision::{Decision, Event, Outcome, Severity};
use crate::engine::{Inputs, evaluate, history_needed_from};
use crate::ports::{
    Alert, AuditRecord, EventBus, LEVEL_CHANGE_REQUESTED, LevelChangeRequested, Notifier, PublishError,
    Store, StoreError, Written,
};
use crate::state::SystemState;

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The decision is recorded but its event could not be published.
    #[error("decision {decision_id} recorded, but publishing failed: {source}")]
    Publish { decision_id: String, source: PublishError },
}

/// What one evaluation did.
#[derive(Debug, Clone, PartialEq)]
pub enum EvaluationOutcome {
    /// Recorded; `published` when a `Level Change Requested` event went out.
    Recorded { decision: Box<Decision>, published: bool, alerts_sent: usize },
    /// The same invocation (or an identical concurrent one) already recorded it.
    Replay { decision_id: String },
    /// Another evaluation changed the state first; it published what was needed.
    LostRace { decision_id: String },
}

pub async fn run_evaluation<S: Store, B: EventBus, N: Notifier>(
    config: &Config,
    store: &S,
    bus: &B,
    notifier: &N,
    now: DateTime<Utc>,
) -> Result<EvaluationOutcome, CycleError> {
    let today = now.date_naive();
    let loaded = store.load_state().await?;
    let (state, version) = match loaded {
        Some(v) => (v.value, Some(v.version)),
        None => (SystemState::initial(config, today), None),
    };
    let history = store.history(history_needed_from(config, today), today).await?;
    let decision = evaluate(&Inputs { config, state: &state, history: &history }, today);

    let record = AuditRecord {
        id: decision.id.to_string(),
        at: now,
        kind: "evaluation".into(),
        actor: "revscale".into(),
        decision: Some(decision.clone()),
        events: decision.events.clone(),
        note: decision.reasons.join("; "),
    };
    match store.record_decision(&record, &decision.state, version).await {
        Ok(Written::Created) => {}
        Ok(Written::AlreadyExists) => return Ok(EvaluationOutcome::Replay { decision_id: record.id }),
        Err(StoreError::Conflict(_)) => return Ok(EvaluationOutcome::LostRace { decision_id: record.id }),
        Err(e) => return Err(e.into()),
    }

    let mut alerts_sent = 0;
    for alert in alerts_for(&decision) {
        notifier
            .notify(&alert)
            .await
            .map_err(|source| CycleError::Publish { decision_id: record.id.clone(), source })?;
        alerts_sent += 1;
    }
    let published = decision.outcome == Outcome::Execute;
    if published {
        let event = LevelChangeRequested {
            decision_id: record.id.clone(),
            from_level: decision.from_level,
            to_level: decision.to_level,
            transitions: decision.transitions.clone(),
            reasons: decision.reasons.clone(),
            mode: decision.mode,
            cause: decision.cause,
        };
        let detail = serde_json::to_value(&event).map_err(|e| CycleError::Publish {
            decision_id: record.id.clone(),
            source: PublishError(e.to_string()),
        })?;
        bus.publish(LEVEL_CHANGE_REQUESTED, &detail)
            .await
            .map_err(|source| CycleError::Publish { decision_id: record.id.clone(), source })?;
    }
    Ok(EvaluationOutcome::Recorded { decision: Box::new(decision), published, alerts_sent })
}

/// The operator e-mails a decision calls for: cost alerts, and changes that wait for a
/// human.
pub fn alerts_for(decision: &Decision) -> Vec<Alert> {
    decision
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Alert { severity, ratio, threshold, cost, mrr } => {
                let level = match severity {
                    Severity::Warning => "WARNING",
                    Severity::Critical => "CRITICAL",
                };
                Some(Alert {
                    subject: format!("revscale {level}: cost is {ratio} of MRR"),
                    message: format!(
                        "On {}, the monthly cost run-rate {cost} is {ratio} of MRR {mrr}, at or above the {threshold} threshold.\n\
                         Level: L{}. Decision: {}.\nReasons:\n- {}",
                        decision.date,
                        decision.from_level,
                        decision.id,
                        decision.reasons.join("\n- ")
                    ),
                })
            }
            Event::ApprovalRequired { from, to, extra_monthly_cost } => Some(Alert {
                subject: format!("revscale: level L{from} -> L{to} waits for your approval"),
                message: format!(
                    "On {}, revscale wants to move from L{from} to L{to}, adding {extra_monthly_cost} a month. \
                     It waits for an approval ({} mode). Decision: {}.\nReasons:\n- {}",
                    decision.date,
                    decision.mode,
                    decision.id,
                    decision.reasons.join("\n- ")
                ),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::DailySnapshot;
    use crate::money::{Currency, Money};
    use crate::ports::memory::{MemoryBus, MemoryNotifier, MemoryStore};
    use crate::ports::{CostSnapshot, RevenueSnapshot};
    use chrono::{Days, NaiveDate};

    fn at(date: &str) -> DateTime<Utc> {
        format!("{date}T06:00:00Z").parse().unwrap()
    }

    fn seed(store: &MemoryStore, from: &str, days: u64, mrr: i64, cost: i64) {
        let start: NaiveDate = from.parse().unwrap();
        for i in 0..days {
            let date = start + Days::new(i);
            let snap = DailySnapshot {
                date,
                mrr: Money::whole(mrr, Currency::EUR),
                cost: Some(Money::whole(cost, Currency::EUR)),
            };
            let cost = Money::whole(cost, Currency::EUR);
            pollster::block_on(store.put_revenue(&RevenueSnapshot {
                date,
                mrr: snap.mrr,
                subscriptions_counted: 1,
                customers: 1,
                collected_at: at(&date.to_string()),
            }))
            .unwrap();
            pollster::block_on(store.put_cost(&CostSnapshot {
                date,
                monthly_run_rate: cost,
                month_to_date: cost,
                previous_month: cost,
                per_component: Default::default(),
                estimated: false,
                forecast_used: false,
                fx_rate: "1".into(),
                requests: 2,
                collected_at: at(&date.to_string()),
            }))
            .unwrap();
        }
    }

    #[test]
    fn an_eligible_level_is_recorded_and_requested_once_and_a_replay_does_nothing() {
        let config = Config::default_config().unwrap();
        let (store, bus, notifier) =
            (MemoryStore::default(), MemoryBus::default(), MemoryNotifier::default());
        seed(&store, "2025-11-01", 121, 1000, 100);
        let now = at("2026-03-01");
        let first = pollster::block_on(run_evaluation(&config, &store, &bus, &notifier, now)).unwrap();
        assert!(
            matches!(&first, EvaluationOutcome::Recorded { published: true, decision, .. } if decision.to_level == 2)
        );
        let second = pollster::block_on(run_evaluation(&config, &store, &bus, &notifier, now)).unwrap();
        assert!(matches!(second, EvaluationOutcome::Replay { .. }), "{second:?}");
        let published = bus.published.lock().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].0, "Level Change Requested");
        assert_eq!(published[0].1["from_level"], 0);
        assert_eq!(store.audit_len(), 1);
    }

    #[test]
    fn a_cost_alert_goes_to_the_notifier_with_the_figures() {
        let config = Config::default_config().unwrap();
        let (store, bus, notifier) =
            (MemoryStore::default(), MemoryBus::default(), MemoryNotifier::default());
        seed(&store, "2026-03-01", 1, 1000, 850);
        let out =
            pollster::block_on(run_evaluation(&config, &store, &bus, &notifier, at("2026-03-01"))).unwrap();
        assert!(matches!(out, EvaluationOutcome::Recorded { alerts_sent: 1, published: false, .. }));
        let sent = notifier.sent.lock().unwrap();
        assert_eq!(sent[0].subject, "revscale WARNING: cost is 85% of MRR");
        assert!(sent[0].message.contains("EUR 850 is 85% of MRR EUR 1,000"), "{}", sent[0].message);
    }

    #[test]
    fn a_change_waiting_for_approval_is_e_mailed() {
        let mut config = Config::default_config().unwrap();
        config.mode = crate::state::Mode::Approval;
        let (store, bus, notifier) =
            (MemoryStore::default(), MemoryBus::default(), MemoryNotifier::default());
        seed(&store, "2025-11-01", 121, 1000, 100);
        pollster::block_on(run_evaluation(&config, &store, &bus, &notifier, at("2026-03-01"))).unwrap();
        assert!(bus.published.lock().unwrap().is_empty());
        assert!(notifier.sent.lock().unwrap()[0].subject.contains("waits for your approval"));
    }
}
