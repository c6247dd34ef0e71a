//! The daily evaluation as a use case over the ports: load, decide, record, publish.
//! The `evaluate` Lambda runs it with DynamoDB, EventBridge and SNS; tests run it with
//! the in-memory adapters.

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::Config;
use crate::decision::{Decision, Event, Outcome, RecordedDecision, Severity};
use crate::history::History;
use crate::model::DecisionId;
use crate::ports::{
    Alert, AuditRecord, EventBus, LEVEL_CHANGE_REQUESTED, LevelChangeRequested, Notifier, PublishError,
    Store, StoreError, Written, backfill_window,
};
use crate::rules::{Inputs, evaluate, history_needed_from};
use crate::state::SystemState;

#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The decision is recorded but its event could not be published.
    #[error("decision {decision_id} recorded, but publishing failed: {source}")]
    Publish { decision_id: DecisionId, source: PublishError },
    /// A snapshot in another currency than the configuration's: comparing them would
    /// compare raw minor units of two currencies.
    #[error(
        "the {date} snapshot is in {found}, the configuration in {expected}: set REVENUE_CURRENCY to {expected} (and FX_RATES for the others), or the configuration's currency to {found}"
    )]
    Currency { date: chrono::NaiveDate, found: crate::money::Currency, expected: crate::money::Currency },
    /// Other writes kept changing the state under the evaluation.
    #[error("the state changed under the evaluation {attempts} times in a row; try again")]
    Contended { attempts: u32 },
}

/// What one evaluation did.
#[derive(Debug, Clone, PartialEq)]
pub enum EvaluationOutcome {
    /// Recorded; `published` when a `Level Change Requested` event went out. A failed
    /// notification is listed in `alerts_failed` (subject, error) for the caller to log
    /// and count; it does not fail the evaluation. `reevaluations` counts the times
    /// another write changed the state first.
    Recorded {
        decision: Box<Decision>,
        published: bool,
        alerts_sent: usize,
        alerts_failed: Vec<(String, String)>,
        reevaluations: u32,
    },
    /// This decision was recorded already (the same invocation, or an identical
    /// concurrent one). `decision_id` is the one committed; `republished` when it was
    /// an Execute whose event went out again, in case the first attempt died or failed
    /// between its commit and its publish (the dispatch state machine names the run
    /// after the decision id, so a second event starts nothing twice).
    Replay { decision_id: DecisionId, republished: bool },
}

/// Evaluations of one day tried against a state that keeps moving (a mode change, an
/// override request, a provisioner commit): then the invocation fails, to be retried.
pub const MAX_EVALUATION_ATTEMPTS: u32 = 3;

pub async fn run_evaluation<S: Store, B: EventBus, N: Notifier>(
    config: &Config,
    store: &S,
    bus: &B,
    notifier: &N,
    now: DateTime<Utc>,
) -> Result<EvaluationOutcome, EvaluationError> {
    run_evaluation_on(config, store, bus, notifier, now, now.date_naive()).await
}

/// [`run_evaluation`] for `today` as the schedule's time zone dates it (the collectors
/// dated their snapshots the same way), at `now`.
pub async fn run_evaluation_on<S: Store, B: EventBus, N: Notifier>(
    config: &Config,
    store: &S,
    bus: &B,
    notifier: &N,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<EvaluationOutcome, EvaluationError> {
    let billed = billed_history(config, store, today).await?;
    for attempt in 1..=MAX_EVALUATION_ATTEMPTS {
        let loaded = store.load_state().await?;
        let (state, version) = match loaded {
            Some(v) => (v.value, Some(v.version)),
            None => (SystemState::initial(config, today), None),
        };
        let history = production_history(config, &state, &billed);
        let mut decision = evaluate(&Inputs { config, state: &state, history: &history }, today);
        // The audit trail's account of a day collected late: the collectors may write
        // only their own snapshots, so the decision that used the day says so.
        decision.reasons.extend(late_collections(&billed, today));
        let record = AuditRecord {
            id: decision.id.to_string(),
            at: now,
            kind: "evaluation".into(),
            actor: "revscale".into(),
            decision: Some(RecordedDecision::from(&decision)),
            events: decision.events.clone(),
            note: decision.reasons.join("; "),
            state_version: None,
        };
        match store.record_decision(&record, &decision.state, version).await {
            Ok(Written::Created) => return act(decision, attempt - 1, store, bus, notifier).await,
            Ok(Written::AlreadyExists) => return replay(store, bus, decision.id).await,
            // Another write moved the state on (if it had been this very decision, the
            // audit record would exist): decide again on what is there now.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(EvaluationError::Contended { attempts: MAX_EVALUATION_ATTEMPTS })
}

/// A decision recorded already: publishes its event again if it was an Execute. Its
/// first attempt may have died or failed to publish after the commit, and nothing else
/// would ever start the run or release what the decision consumed (an approval).
async fn replay<S: Store, B: EventBus>(
    store: &S,
    bus: &B,
    computed: DecisionId,
) -> Result<EvaluationOutcome, EvaluationError> {
    // Only this invocation's own commit is published again: an identical evaluation
    // that another invocation committed is that invocation's to publish (it is alive,
    // or its own retry replays it; a scheduled run sweeps what is left, see
    // [`publish_unpublished`]).
    let Some(committed) = store.recorded_by_invocation().await?.map(DecisionId) else {
        return Ok(EvaluationOutcome::Replay { decision_id: computed, republished: false });
    };
    let recorded = store.audit_record(committed.as_str()).await?.and_then(|r| r.decision);
    let Some(decision) = recorded.filter(|d| d.outcome == Outcome::Execute) else {
        return Ok(EvaluationOutcome::Replay { decision_id: committed, republished: false });
    };
    if store.is_published(committed.as_str()).await? {
        return Ok(EvaluationOutcome::Replay { decision_id: committed, republished: false });
    }
    publish(store, bus, &LevelChangeRequested::for_record(&decision)).await?;
    Ok(EvaluationOutcome::Replay { decision_id: committed, republished: true })
}

/// How far back [`publish_unpublished`] looks: older decisions are stale for the
/// provisioner anyway (`MaxDecisionAgeHours`), which refuses them with an alert.
pub const UNPUBLISHED_LOOKBACK_HOURS: i64 = 24;
/// Audit records [`publish_unpublished`] reads: a day holds a handful.
const UNPUBLISHED_LOOKBACK_RECORDS: usize = 50;

/// Publishes the Executes committed in the last [`UNPUBLISHED_LOOKBACK_HOURS`] whose
/// event never went out: one committed by an API request (an approval) whose publish
/// failed has no invocation that will ever replay it. The scheduled evaluator sweeps
/// them before it decides; a duplicate is absorbed by the dispatch state machine.
pub async fn publish_unpublished<S: Store, B: EventBus>(
    store: &S,
    bus: &B,
    now: DateTime<Utc>,
) -> Result<Vec<DecisionId>, EvaluationError> {
    let since = now - chrono::Duration::hours(UNPUBLISHED_LOOKBACK_HOURS);
    let mut published = Vec::new();
    for record in store.recent_audit(UNPUBLISHED_LOOKBACK_RECORDS, None).await? {
        if record.at < since {
            break;
        }
        let Some(decision) = record.decision.filter(|d| d.outcome == Outcome::Execute) else { continue };
        if store.is_published(decision.id.as_str()).await? {
            continue;
        }
        publish(store, bus, &LevelChangeRequested::for_record(&decision)).await?;
        published.push(decision.id);
    }
    Ok(published)
}

/// Publishes the event, then marks it published: a failure between the two publishes
/// it once more on the next replay, which the dispatch state machine absorbs.
async fn publish<S: Store, B: EventBus>(
    store: &S,
    bus: &B,
    event: &LevelChangeRequested,
) -> Result<(), EvaluationError> {
    let failed = |source| EvaluationError::Publish { decision_id: event.decision_id.clone(), source };
    let detail = serde_json::to_value(event).map_err(|e| failed(PublishError(e.to_string())))?;
    bus.publish(LEVEL_CHANGE_REQUESTED, &detail).await.map_err(failed)?;
    store.mark_published(event.decision_id.as_str()).await?;
    Ok(())
}

/// The snapshots the rules read on `today`, as collected (Cost Explorer's figures),
/// refusing any in another currency than the configuration's.
pub async fn billed_history<S: Store>(
    config: &Config,
    store: &S,
    today: NaiveDate,
) -> Result<History, EvaluationError> {
    let billed = store.history(history_needed_from(config, today), today).await?;
    if let Some(s) = billed
        .iter()
        .find(|s| s.mrr.currency != config.currency || s.cost.is_some_and(|c| c.currency != config.currency))
    {
        let found = if s.mrr.currency != config.currency {
            s.mrr.currency
        } else {
            s.cost.map_or(s.mrr.currency, |c| c.currency)
        };
        return Err(EvaluationError::Currency { date: s.date, found, expected: config.currency });
    }
    Ok(billed)
}

/// One reason per day of the collectors' look-back ([`backfill_window`] up to `today`)
/// whose figures were backfilled: a collector missed the day and a later run of it
/// filled it from its source. The rules read the day like any other; these reasons put
/// on record, in the decision and its audit note, that they did.
pub fn late_collections(history: &History, today: NaiveDate) -> Vec<String> {
    let (from, _) = backfill_window(today);
    history
        .backfilled(from, today)
        .filter_map(|(date, mark)| {
            let how = match (mark.revenue, mark.cost) {
                (true, true) => "revenue rebuilt from Stripe invoices, cost from Cost Explorer for that day",
                (true, false) => "revenue rebuilt from Stripe invoices",
                (false, true) => "cost from Cost Explorer for that day",
                (false, false) => return None,
            };
            Some(format!("{date} was collected late: {how}"))
        })
        .collect()
}

/// The history the rules decide on: Cost Explorer sees the AWS bill, and what is
/// billed elsewhere comes from the configuration, for the components as they stand in
/// `state` (the simulator takes its cost from the same function).
pub fn production_history(config: &Config, state: &SystemState, billed: &History) -> History {
    state.production_history(config, billed)
}

/// Publishes the event first (what provisioning waits for), then sends the e-mails:
/// a notifier outage must not cost a level change.
async fn act<S: Store, B: EventBus, N: Notifier>(
    decision: Decision,
    reevaluations: u32,
    store: &S,
    bus: &B,
    notifier: &N,
) -> Result<EvaluationOutcome, EvaluationError> {
    let published = decision.outcome == Outcome::Execute;
    if published {
        publish(store, bus, &LevelChangeRequested::for_decision(&decision)).await?;
    }
    let (mut alerts_sent, mut alerts_failed) = (0, Vec::new());
    for alert in alerts_for(&decision) {
        match notifier.notify(&alert).await {
            Ok(()) => alerts_sent += 1,
            Err(e) => alerts_failed.push((alert.subject, e.to_string())),
        }
    }
    Ok(EvaluationOutcome::Recorded {
        decision: Box::new(decision),
        published,
        alerts_sent,
        alerts_failed,
        reevaluations,
    })
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
            Event::RunwayAlert { severity, months, min_months, cash, net_burn } => {
                let (level, line) = match severity {
                    Severity::Warning => ("WARNING", min_months.saturating_add(crate::runway::WARNING_MARGIN_MONTHS)),
                    Severity::Critical => ("CRITICAL", *min_months),
                };
                Some(Alert {
                    subject: format!("revscale {level}: runway {months} months"),
                    message: format!(
                        "On {}, the estimated cash {cash} at a net burn of {net_burn} a month lasts {months} months, \
                         under {line} (the minimum is {min_months}). revscale activates nothing that would take it \
                         under {min_months}.\nLevel: L{}. Decision: {}.\nReasons:\n- {}",
                        decision.date,
                        decision.from_level,
                        decision.id,
                        decision.reasons.join("\n- ")
                    ),
                })
            }
            Event::CashStale { severity, as_of, age_days } => Some(Alert {
                subject: match severity {
                    Severity::Warning => format!("revscale WARNING: the cash figure is {age_days} days old"),
                    Severity::Critical => "revscale CRITICAL: the cash figure is too old, runway unknown".to_string(),
                },
                message: format!(
                    "On {}, the cash figure the runway guard uses is as of {as_of}, {age_days} days old. {}\n\
                     Set it: revscale cash set --amount N --as-of DATE --stack S",
                    decision.date,
                    match severity {
                        Severity::Warning => format!(
                            "After {} days the runway is unknown and no activation passes.",
                            crate::runway::CASH_UNKNOWN_DAYS
                        ),
                        Severity::Critical => "No activation passes until it is set again.".to_string(),
                    }
                ),
            }),
            Event::ApprovalRequired { from, to, extra_monthly_cost } => Some(Alert {
                subject: format!("revscale: level L{from} -> L{to} waits for your approval"),
                message: format!(
                    "On {}, revscale wants to move from L{from} to L{to}, adding {extra_monthly_cost} a month. \
                     It waits for an approval ({} mode). Decision: {}.\n{}Reasons:\n- {}",
                    decision.date,
                    decision.mode,
                    decision.id,
                    // The approval names this id: if the engine replaces the change
                    // before the click, the approval is refused rather than applied to it.
                    decision.state.pending_approval.as_ref().map_or(String::new(), |p| format!(
                        "To approve exactly this change: revscale pending approve --id {}\n",
                        p.id()
                    )),
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
    use crate::ports::{AuditStore, CostSnapshot, RevenueSnapshot, Snapshot, SnapshotStore, StateStore};
    use crate::testing::{MemoryBus, MemoryNotifier, MemoryStore};
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
    fn a_decision_over_a_backfilled_day_decides_with_it_and_names_it_in_its_reasons_and_audit_note() {
        let config = Config::default_config().unwrap();
        let (store, bus, notifier) =
            (MemoryStore::default(), MemoryBus::default(), MemoryNotifier::default());
        // Collected every day but 2026-02-27, which a later run filled from the sources.
        seed(&store, "2025-11-01", 118, 1000, 100);
        seed(&store, "2026-02-28", 2, 1000, 100);
        let missed: NaiveDate = "2026-02-27".parse().unwrap();
        let later = at("2026-02-28");
        let revenue = RevenueSnapshot {
            date: missed,
            mrr: Money::whole(10_000, Currency::EUR),
            subscriptions_counted: 1,
            customers: 1,
            collected_at: later,
        };
        let cost = CostSnapshot {
            date: missed,
            monthly_run_rate: Money::whole(100, Currency::EUR),
            month_to_date: Money::whole(90, Currency::EUR),
            previous_month: Money::whole(100, Currency::EUR),
            per_component: Default::default(),
            estimated: true,
            forecast_used: false,
            fx_rate: "1".into(),
            requests: 1,
            collected_at: later,
        };
        pollster::block_on(async {
            store.put_backfilled(&Snapshot::Revenue(revenue)).await.unwrap();
            store.put_backfilled(&Snapshot::Cost(cost)).await.unwrap();
        });

        let outcome =
            pollster::block_on(run_evaluation(&config, &store, &bus, &notifier, at("2026-03-01"))).unwrap();
        let EvaluationOutcome::Recorded { decision, .. } = outcome else { panic!("{outcome:?}") };
        // The three months (2025-12-01, 2026-03-01]: 89 days of EUR 1,000 and the
        // backfilled EUR 10,000: EUR 1,100 on average.
        assert_eq!(decision.figures.average_3m, Some(Money::whole(1_100, Currency::EUR)));
        let late = "2026-02-27 was collected late: revenue rebuilt from Stripe invoices, cost from Cost Explorer for that day";
        assert!(decision.reasons.iter().any(|r| r == late), "{:?}", decision.reasons);
        let audit = pollster::block_on(store.recent_audit(1, None)).unwrap();
        assert!(audit[0].note.contains(late), "{}", audit[0].note);
        // A week on, the day has left the collectors' look-back, and no reason names it.
        let history = pollster::block_on(store.history(missed, "2026-03-08".parse().unwrap())).unwrap();
        assert!(late_collections(&history, "2026-03-07".parse().unwrap()).len() == 1);
        assert!(late_collections(&history, "2026-03-08".parse().unwrap()).is_empty());
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
    fn a_committed_execute_whose_publish_failed_is_published_by_the_retry_and_only_once() {
        let config = Config::default_config().unwrap();
        let (store, notifier) = (MemoryStore::default(), MemoryNotifier::default());
        let bus = MemoryBus::failing(1);
        seed(&store, "2025-11-01", 121, 1000, 100);
        let now = at("2026-03-01");
        let invocation = crate::ports::ScopedStore::for_invocation(&store, "scheduled-2026-03-01");
        let first = pollster::block_on(run_evaluation(&config, &invocation, &bus, &notifier, now));
        let Err(EvaluationError::Publish { decision_id, .. }) = first else { panic!("{first:?}") };
        assert_eq!(store.audit_len(), 1, "the decision is committed");
        assert!(bus.published.lock().unwrap().is_empty());
        // The retry of the same invocation decides afresh on the committed state (another
        // id), finds what its first attempt committed, and publishes that.
        let retry = pollster::block_on(run_evaluation(&config, &invocation, &bus, &notifier, now)).unwrap();
        assert_eq!(retry, EvaluationOutcome::Replay { decision_id: decision_id.clone(), republished: true });
        let again = pollster::block_on(run_evaluation(&config, &invocation, &bus, &notifier, now)).unwrap();
        assert_eq!(again, EvaluationOutcome::Replay { decision_id: decision_id.clone(), republished: false });
        let published = bus.published.lock().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].1["decision_id"], decision_id.as_str());
        assert_eq!(store.audit_len(), 1);
    }

    #[test]
    fn an_execute_an_approval_committed_but_could_not_publish_is_published_by_the_next_sweep() {
        let config = Config::default_config().unwrap();
        let (store, notifier) = (MemoryStore::default(), MemoryNotifier::default());
        seed(&store, "2025-11-01", 121, 1000, 100);
        let now = at("2026-03-01");
        // The API's evaluation, scoped to its request: its publish fails, and API Gateway
        // never retries a request.
        let request = crate::ports::ScopedStore::for_invocation(&store, "api-request-1");
        let failed =
            pollster::block_on(run_evaluation(&config, &request, &MemoryBus::failing(1), &notifier, now));
        let Err(EvaluationError::Publish { decision_id, .. }) = failed else { panic!("{failed:?}") };
        let bus = MemoryBus::default();
        let swept =
            pollster::block_on(publish_unpublished(&store, &bus, now + chrono::Duration::hours(1))).unwrap();
        assert_eq!(swept, vec![decision_id.clone()]);
        assert_eq!(bus.published.lock().unwrap()[0].1["decision_id"], decision_id.as_str());
        // Published once: the next sweep finds it marked, and one a day later no longer looks.
        assert!(
            pollster::block_on(publish_unpublished(&store, &bus, now + chrono::Duration::hours(2)))
                .unwrap()
                .is_empty()
        );
        assert_eq!(bus.published.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_identical_evaluation_committed_by_another_invocation_is_not_published_twice() {
        let config = Config::default_config().unwrap();
        let (store, bus, notifier) =
            (MemoryStore::default(), MemoryBus::default(), MemoryNotifier::default());
        seed(&store, "2025-11-01", 121, 1000, 100);
        let now = at("2026-03-01");
        let first = crate::ports::ScopedStore::for_invocation(&store, "a");
        let second = crate::ports::ScopedStore::for_invocation(&store, "b");
        pollster::block_on(run_evaluation(&config, &first, &bus, &notifier, now)).unwrap();
        let other = pollster::block_on(run_evaluation(&config, &second, &bus, &notifier, now)).unwrap();
        assert!(matches!(other, EvaluationOutcome::Replay { republished: false, .. }), "{other:?}");
        assert_eq!(bus.published.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_replayed_hold_publishes_nothing() {
        let config = Config::default_config().unwrap();
        let (store, bus, notifier) =
            (MemoryStore::default(), MemoryBus::default(), MemoryNotifier::default());
        seed(&store, "2026-02-01", 28, 100, 10);
        let invocation = crate::ports::ScopedStore::for_invocation(&store, "scheduled-2026-02-28");
        let now = at("2026-02-28");
        let first = pollster::block_on(run_evaluation(&config, &invocation, &bus, &notifier, now)).unwrap();
        assert!(matches!(&first, EvaluationOutcome::Recorded { published: false, .. }), "{first:?}");
        let retry = pollster::block_on(run_evaluation(&config, &invocation, &bus, &notifier, now)).unwrap();
        assert!(matches!(retry, EvaluationOutcome::Replay { republished: false, .. }), "{retry:?}");
        assert!(bus.published.lock().unwrap().is_empty());
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
        config.mode = crate::model::Mode::Approval;
        let (store, bus, notifier) =
            (MemoryStore::default(), MemoryBus::default(), MemoryNotifier::default());
        seed(&store, "2025-11-01", 121, 1000, 100);
        pollster::block_on(run_evaluation(&config, &store, &bus, &notifier, at("2026-03-01"))).unwrap();
        assert!(bus.published.lock().unwrap().is_empty());
        let sent = notifier.sent.lock().unwrap();
        assert!(sent[0].subject.contains("waits for your approval"));
        let pending =
            pollster::block_on(store.load_state()).unwrap().unwrap().value.pending_approval.unwrap();
        assert!(
            sent[0].message.contains(&format!("revscale pending approve --id {}", pending.id())),
            "{}",
            sent[0].message
        );
    }

    /// A store where another writer (the API changing the mode) gets in first, the
    /// first `interferences` times a decision is recorded.
    struct Interfering {
        inner: MemoryStore,
        interferences: std::sync::atomic::AtomicU32,
    }

    impl SnapshotStore for Interfering {
        async fn put_revenue(&self, s: &RevenueSnapshot) -> Result<Written, StoreError> {
            self.inner.put_revenue(s).await
        }
        async fn put_cost(&self, s: &CostSnapshot) -> Result<Written, StoreError> {
            self.inner.put_cost(s).await
        }
        async fn put_backfilled(&self, s: &crate::ports::Snapshot) -> Result<Written, StoreError> {
            self.inner.put_backfilled(s).await
        }
        async fn snapshot_days(
            &self,
            kind: crate::ports::SnapshotKind,
            from: NaiveDate,
            to: NaiveDate,
        ) -> Result<std::collections::BTreeSet<NaiveDate>, StoreError> {
            self.inner.snapshot_days(kind, from, to).await
        }
        async fn history(&self, from: NaiveDate, to: NaiveDate) -> Result<crate::History, StoreError> {
            self.inner.history(from, to).await
        }
    }

    impl StateStore for Interfering {
        async fn load_state(&self) -> Result<Option<crate::ports::Versioned<SystemState>>, StoreError> {
            self.inner.load_state().await
        }
        async fn record_decision(
            &self,
            record: &AuditRecord,
            state: &SystemState,
            expected_version: Option<u64>,
        ) -> Result<Written, StoreError> {
            use std::sync::atomic::Ordering;
            let left = self.interferences.load(Ordering::SeqCst);
            if left > 0 {
                self.interferences.fetch_sub(1, Ordering::SeqCst);
                let current = self.inner.load_state().await?;
                let mut moved = current.as_ref().map_or_else(|| state.clone(), |v| v.value.clone());
                moved.mode = Some(crate::model::Mode::Shadow);
                let write = AuditRecord {
                    id: format!("mode-{left}-{}", record.id),
                    kind: "mode".into(),
                    decision: None,
                    ..record.clone()
                };
                self.inner.record_decision(&write, &moved, current.map(|v| v.version)).await?;
            }
            self.inner.record_decision(record, state, expected_version).await
        }
    }

    impl AuditStore for Interfering {
        async fn recent_audit(
            &self,
            limit: usize,
            before: Option<String>,
        ) -> Result<Vec<AuditRecord>, StoreError> {
            self.inner.recent_audit(limit, before).await
        }
        async fn audit_record(&self, id: &str) -> Result<Option<AuditRecord>, StoreError> {
            self.inner.audit_record(id).await
        }
        async fn recorded_by_invocation(&self) -> Result<Option<String>, StoreError> {
            self.inner.recorded_by_invocation().await
        }
        async fn mark_published(&self, id: &str) -> Result<(), StoreError> {
            self.inner.mark_published(id).await
        }
        async fn is_published(&self, id: &str) -> Result<bool, StoreError> {
            self.inner.is_published(id).await
        }
    }

    fn interfering(times: u32) -> Interfering {
        let inner = MemoryStore::default();
        seed(&inner, "2025-11-01", 121, 1000, 100);
        Interfering { inner, interferences: std::sync::atomic::AtomicU32::new(times) }
    }

    #[test]
    fn a_write_that_is_not_an_evaluation_makes_the_cycle_decide_again_on_the_new_state() {
        let config = Config::default_config().unwrap();
        let (store, bus, notifier) = (interfering(1), MemoryBus::default(), MemoryNotifier::default());
        let out =
            pollster::block_on(run_evaluation(&config, &store, &bus, &notifier, at("2026-03-01"))).unwrap();
        // The mode became shadow first: the day's decision is taken again, in shadow.
        let EvaluationOutcome::Recorded { decision, published, reevaluations, .. } = out else {
            panic!("recorded, not {out:?}")
        };
        assert_eq!((decision.outcome, published, reevaluations), (Outcome::ShadowOnly, false, 1));
        assert!(bus.published.lock().unwrap().is_empty());
    }

    #[test]
    fn a_state_that_keeps_changing_fails_the_invocation_after_three_attempts() {
        let config = Config::default_config().unwrap();
        let (store, bus, notifier) = (interfering(3), MemoryBus::default(), MemoryNotifier::default());
        let err = pollster::block_on(run_evaluation(&config, &store, &bus, &notifier, at("2026-03-01")))
            .unwrap_err();
        assert!(matches!(err, EvaluationError::Contended { attempts: 3 }), "{err:?}");
        assert!(bus.published.lock().unwrap().is_empty());
    }

    struct DownNotifier;

    impl Notifier for DownNotifier {
        async fn notify(&self, _: &Alert) -> Result<(), PublishError> {
            Err(PublishError("SNS is unavailable".into()))
        }
    }

    #[test]
    fn the_level_change_goes_out_even_when_the_alert_cannot_be_sent() {
        let mut config = Config::default_config().unwrap();
        config.safety.alert_ratio = crate::money::Ratio::from_basis_points(1000);
        let (store, bus) = (MemoryStore::default(), MemoryBus::default());
        seed(&store, "2025-11-01", 120, 1000, 50);
        // Cost crosses the (lowered) 10% alert ratio on the day L2 becomes eligible.
        seed(&store, "2026-03-01", 1, 1000, 100);
        let out = pollster::block_on(run_evaluation(&config, &store, &bus, &DownNotifier, at("2026-03-01")))
            .unwrap();
        let EvaluationOutcome::Recorded { decision, published, alerts_sent, alerts_failed, .. } = out else {
            panic!("recorded, not {out:?}")
        };
        assert_eq!((decision.to_level, published, alerts_sent), (2, true, 0));
        assert_eq!(
            alerts_failed,
            vec![("revscale WARNING: cost is 10% of MRR".to_string(), "SNS is unavailable".to_string())]
        );
        assert_eq!(bus.published.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_snapshot_in_another_currency_is_refused_naming_both() {
        let config = Config::default_config().unwrap();
        let (store, bus, notifier) =
            (MemoryStore::default(), MemoryBus::default(), MemoryNotifier::default());
        let date: NaiveDate = "2026-03-01".parse().unwrap();
        pollster::block_on(store.put_revenue(&RevenueSnapshot {
            date,
            mrr: Money::whole(1000, Currency::USD),
            subscriptions_counted: 1,
            customers: 1,
            collected_at: at("2026-03-01"),
        }))
        .unwrap();
        let err = pollster::block_on(run_evaluation(&config, &store, &bus, &notifier, at("2026-03-01")))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the 2026-03-01 snapshot is in USD, the configuration in EUR: set REVENUE_CURRENCY to EUR (and FX_RATES for the others), or the configuration's currency to USD"
        );
    }

    #[test]
    fn the_evaluated_cost_adds_what_is_billed_outside_aws_for_the_components_as_they_stand() {
        let config = Config::default_config().unwrap();
        let (store, bus, notifier) =
            (MemoryStore::default(), MemoryBus::default(), MemoryNotifier::default());
        seed(&store, "2026-03-01", 1, 1000, 100);
        // hume_ai (external, EUR 65 HOT) and k8s_workers (aws, EUR 95) are HOT: only
        // hume_ai is added to Cost Explorer's EUR 100, which already holds the nodes.
        let mut state = SystemState::initial(&config, "2026-02-01".parse().unwrap());
        for id in ["hume_ai", "k8s_workers", "eks_control_plane"] {
            state.components.insert(
                crate::model::ComponentId::new(id),
                crate::state::ComponentRecord::settled(
                    crate::ComponentState::Hot,
                    "2026-02-01".parse().unwrap(),
                ),
            );
        }
        let record = AuditRecord {
            id: "seed".into(),
            at: at("2026-02-01"),
            kind: "test".into(),
            actor: "t".into(),
            decision: None,
            events: vec![],
            note: String::new(),
            state_version: None,
        };
        pollster::block_on(store.record_decision(&record, &state, None)).unwrap();
        let out =
            pollster::block_on(run_evaluation(&config, &store, &bus, &notifier, at("2026-03-01"))).unwrap();
        let EvaluationOutcome::Recorded { decision, .. } = out else { panic!("recorded") };
        assert_eq!(decision.figures.cost, Some(Money::whole(165, Currency::EUR)));
    }
}
