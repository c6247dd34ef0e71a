//! Daily, after the collectors: run the engine on the stored state and history, record
//! the decision and the new state atomically, alert, and request a level change.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use revscale_aws::SdkConfig;
use revscale_aws::drivers::AwsDrivers;
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::env::{EnvError, Vars};
use revscale_aws::kubernetes::TestEndpoint;
use revscale_aws::lambda::{
    FromEnv, FunctionError, event_date, event_time, idempotency_key, record_decision_id,
};
use revscale_aws::metrics;
use revscale_aws::publish::{EventBridgeBus, SnsNotifier};
use revscale_aws::runtime_config::ConfigSource;
use revscale_engine::Config;
use revscale_engine::drift::{self, DriftReport, Finding};
use revscale_engine::evaluation::{
    EvaluationError, EvaluationOutcome, publish_unpublished, run_evaluation_on,
};
use revscale_engine::ports::{ComponentDriver, EventBus, Notifier, ScopedStore, StateStore};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct Env {
    pub table_name: String,
    pub event_bus_name: String,
    pub alert_topic_arn: String,
    /// `REVSCALE_KUBERNETES_ENDPOINT`: the emulator tests' Kubernetes API (loopback only).
    pub kubernetes_endpoint: Option<TestEndpoint>,
    pub config: ConfigSource,
}

impl FromEnv for Env {
    fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Env, EnvError> {
        Ok(Env {
            table_name: vars.required("TABLE_NAME")?,
            event_bus_name: vars.required("EVENT_BUS_NAME")?,
            alert_topic_arn: vars.required("ALERT_TOPIC_ARN")?,
            kubernetes_endpoint: TestEndpoint::from_vars(vars)?,
            config: ConfigSource::from_vars(vars)?,
        })
    }
}

/// What the handler works with: built once per cold start.
pub struct Deps<S, B, N, D> {
    pub config: Config,
    /// Scoped to each invocation (its idempotency key), which makes a replay a no-op.
    pub store: S,
    pub bus: B,
    pub notifier: N,
    /// Reads each component's real state for the daily drift check.
    pub driver: D,
}

impl Deps<DynamoStore, EventBridgeBus, SnsNotifier, AwsDrivers> {
    pub async fn on_aws(env: Env, sdk: &SdkConfig) -> Result<Self, FunctionError> {
        Ok(Deps {
            config: env.config.load(sdk).await?.config,
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), env.table_name),
            bus: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(sdk), env.event_bus_name),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(sdk), env.alert_topic_arn),
            driver: AwsDrivers::new(sdk).with_kubernetes_endpoint(env.kubernetes_endpoint),
        })
    }
}

/// How long the drift check may take: it runs inside the evaluator's 60 s, after the
/// decision is recorded and published, and a hung describe call must not time the
/// invocation out (its retry would be a replay, which skips the check).
const DRIFT_CHECK_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The daily drift check, after the evaluation: the components today's decision (or a
/// change waiting for approval) is about to move are left alone, and the whole check
/// is skipped while a provisioning run holds the lock. Its failure changes nothing of
/// the decision, which is recorded and published already.
async fn check_drift<S: StateStore, N: Notifier, D: ComponentDriver>(
    config: &Config,
    store: &S,
    notifier: &N,
    driver: &D,
    decided: &[revscale_engine::Transition],
    now: chrono::DateTime<chrono::Utc>,
    today: chrono::NaiveDate,
) -> Option<DriftReport> {
    let checked = async {
        let report = drift::check(config, store, driver, today, decided).await?;
        drift::restore(config, store, driver, report, now, today).await
    };
    let report = match tokio::time::timeout(DRIFT_CHECK_LIMIT, checked).await {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the drift check could not read or write the state");
            return None;
        }
        Err(_) => {
            tracing::error!(
                limit_s = DRIFT_CHECK_LIMIT.as_secs(),
                "the drift check took too long: skipped today"
            );
            return None;
        }
    };
    if let Some(why) = &report.skipped {
        tracing::info!(%why, "drift check skipped");
        return Some(report);
    }
    for c in &report.components {
        match &c.finding {
            Finding::Unreadable { error } => {
                tracing::warn!(component = %c.component, %error, "drift check: unreadable");
            }
            finding => {
                let drifted = matches!(finding, Finding::Drifted { .. });
                println!("{}", metrics::component_drift(now, c.component.as_str(), drifted));
            }
        }
    }
    println!("{}", metrics::drift_restored(now, report.restored().count()));
    let lines = drift::describe(&report);
    if !lines.is_empty() {
        tracing::warn!(drift = ?lines, "components are not where revscale left them");
        if let Err(e) = drift::record(store, notifier, &report, now, today).await {
            tracing::error!(error = %e, "the drift entry could not be recorded");
        }
    }
    Some(report)
}

pub async fn handle<S: ScopedStore, B: EventBus, N: Notifier, D: ComponentDriver>(
    deps: &Deps<S, B, N, D>,
    event: LambdaEvent<EventBridgeEvent<Value>>,
) -> Result<Value, FunctionError> {
    let Deps { config, bus, notifier, driver, .. } = deps;
    let now = event_time(&event.payload)?;
    // The schedule's local date: the one the collectors dated the snapshots with.
    let today = event_date(&event.payload)?;
    // The schedule and its scheduled time: the same in every retry of every layer
    // (the event id is a new execution id per Scheduler attempt).
    let store = deps.store.for_invocation(&idempotency_key(&event.payload)?);
    // An approval's Execute whose event the API could not publish has nobody else to
    // publish it: swept first, and a failed sweep does not hold up today's decision.
    match publish_unpublished(&store, bus, now).await {
        Ok(swept) if !swept.is_empty() => {
            tracing::warn!(?swept, "committed level changes published late");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "the sweep of unpublished level changes failed"),
    }
    let outcome =
        run_evaluation_on(config, &store, bus, notifier, now, today).await.map_err(|e| match e {
            EvaluationError::Store(s) => FunctionError::from(s),
            // The decision is stored but its event did not go out: a retry of this
            // invocation is a replay that publishes it (it carries no publish mark).
            EvaluationError::Publish { ref decision_id, .. } => {
                record_decision_id(decision_id);
                FunctionError::Transient(e.to_string())
            }
            EvaluationError::Currency { .. } => FunctionError::Configuration(e.to_string()),
            EvaluationError::Contended { .. } => FunctionError::Transient(e.to_string()),
        })?;
    match outcome {
        EvaluationOutcome::Recorded { decision, published, alerts_sent, alerts_failed, reevaluations } => {
            record_decision_id(&decision.id);
            // Only today's executed decision moves anything today.
            let decided: &[revscale_engine::Transition] =
                if decision.outcome == revscale_engine::Outcome::Execute {
                    &decision.transitions
                } else {
                    &[]
                };
            let drift = check_drift(config, &store, notifier, driver, decided, now, today).await;
            let drifted: Vec<String> = drift
                .as_ref()
                .map(|r| r.drifted().map(|d| d.component.to_string()).collect())
                .unwrap_or_default();
            for (subject, error) in &alerts_failed {
                tracing::error!(%subject, %error, "notification failed; the decision stands");
            }
            println!("{}", metrics::notification_failed(now, alerts_failed.len()));
            if let Some(ratio) = decision.figures.ratio {
                println!("{}", metrics::cost_ratio(now, ratio));
            }
            let open = matches!(
                decision.state.breaker.status(config, decision.date),
                revscale_engine::state::BreakerStatus::Open { .. }
            );
            println!("{}", metrics::breaker_open(now, open));
            for (component, record) in &decision.state.components {
                println!("{}", metrics::activation_state(now, component.as_str(), record.state));
            }
            tracing::info!(
                from = decision.from_level,
                to = decision.to_level,
                outcome = ?decision.outcome,
                published,
                alerts_sent,
                alerts_failed = alerts_failed.len(),
                reevaluations,
                reasons = ?decision.reasons,
                "evaluated"
            );
            Ok(json!({
                "decision_id": decision.id,
                "from_level": decision.from_level,
                "to_level": decision.to_level,
                "outcome": decision.outcome,
                "published": published,
                "alerts_sent": alerts_sent,
                "alerts_failed": alerts_failed.len(),
                "reevaluations": reevaluations,
                "reasons": decision.reasons,
                "drifted": drifted,
            }))
        }
        EvaluationOutcome::Replay { decision_id, republished } => {
            record_decision_id(&decision_id);
            tracing::info!(republished, "already evaluated: the committed decision is replayed");
            Ok(json!({"decision_id": decision_id, "replay": true, "published": republished}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use revscale_engine::testing::{MemoryBus, MemoryNotifier, MemoryStore, ScriptedDriver};

    fn deps(
        config: &Config,
        store: &std::sync::Arc<MemoryStore>,
    ) -> Deps<std::sync::Arc<MemoryStore>, MemoryBus, MemoryNotifier, ScriptedDriver> {
        Deps {
            config: config.clone(),
            store: store.clone(),
            bus: MemoryBus::default(),
            notifier: MemoryNotifier::default(),
            driver: ScriptedDriver::default(),
        }
    }

    fn event(json: &str) -> LambdaEvent<EventBridgeEvent<Value>> {
        LambdaEvent::new(serde_json::from_str(json).unwrap(), lambda_runtime::Context::default())
    }

    #[test]
    fn env_names_each_missing_variable() {
        let err = Env::from_vars(&Vars(|k: &str| (k == "TABLE_NAME").then(|| "t".to_string()))).unwrap_err();
        assert_eq!(err.to_string(), "environment variable EVENT_BUS_NAME is not set");
        let env = Env::from_vars(&revscale_aws::env::from_pairs(&[
            ("TABLE_NAME", "t"),
            ("EVENT_BUS_NAME", "b"),
            ("ALERT_TOPIC_ARN", "a"),
            ("REVSCALE_MODE", "approval"),
        ]))
        .unwrap();
        assert_eq!(env.config.resolve(None).unwrap().config.mode, revscale_engine::Mode::Approval);
    }

    #[tokio::test]
    async fn with_no_history_the_sample_event_holds_at_level_0() {
        let config = Config::default_config().unwrap();
        let store = std::sync::Arc::new(MemoryStore::default());
        let deps = deps(&config, &store);
        let out =
            handle(&deps, event(include_str!("../../../events/evaluate/scheduled.json"))).await.unwrap();
        assert_eq!(out["to_level"], 0);
        assert_eq!(out["outcome"], "hold");
        assert!(out["reasons"][0].as_str().unwrap().starts_with("no snapshot for 2026-11-29"));
        assert!(deps.bus.published.lock().unwrap().is_empty());
    }

    /// The collectors ran at 05:00 local time and dated their snapshots with the local
    /// date; the evaluator at 06:00 local time must find them.
    #[tokio::test]
    async fn the_evaluator_reads_the_snapshots_of_the_schedules_local_date_at_plus_5_30_plus_14_and_minus_10()
    {
        use revscale_engine::ports::{CostSnapshot, RevenueSnapshot, SnapshotStore};
        use revscale_engine::{Currency, Money};
        let config = Config::default_config().unwrap();
        // Each evaluation time falls on another UTC day than its local one (05:15 in
        // Kolkata, 06:00 in Kiritimati, 15:30 in Honolulu), so a UTC date would miss.
        for (zone, evaluated_at) in [
            ("Asia/Kolkata", "2026-11-28T23:45:00Z"),
            ("Pacific/Kiritimati", "2026-11-28T16:00:00Z"),
            ("Pacific/Honolulu", "2026-11-30T01:30:00Z"),
        ] {
            let utc: chrono::DateTime<chrono::Utc> = evaluated_at.parse().unwrap();
            assert_ne!(
                utc.date_naive().to_string(),
                "2026-11-29",
                "{zone}: the case must tell UTC from local"
            );
            let store = std::sync::Arc::new(MemoryStore::default());
            let date = "2026-11-29".parse().unwrap();
            let collected_at = evaluated_at.parse().unwrap();
            store
                .put_revenue(&RevenueSnapshot {
                    date,
                    mrr: Money::whole(1000, Currency::EUR),
                    subscriptions_counted: 3,
                    customers: 3,
                    collected_at,
                })
                .await
                .unwrap();
            store
                .put_cost(&CostSnapshot {
                    date,
                    monthly_run_rate: Money::whole(100, Currency::EUR),
                    month_to_date: Money::whole(90, Currency::EUR),
                    previous_month: Money::whole(100, Currency::EUR),
                    per_component: Default::default(),
                    estimated: true,
                    forecast_used: false,
                    fx_rate: "0.93".into(),
                    requests: 1,
                    collected_at,
                })
                .await
                .unwrap();
            let json = format!(
                r#"{{"version": "0", "id": "e-{zone}", "detail-type": "Scheduled Event", "source": "aws.scheduler", "time": "{evaluated_at}", "detail": {{"timezone": "{zone}"}}}}"#
            );
            let out = handle(&deps(&config, &store), event(&json)).await.unwrap();
            assert!(out["decision_id"].as_str().unwrap().starts_with("2026-11-29-"), "{zone}: {out}");
            let reasons = out["reasons"].to_string();
            assert!(
                !reasons.contains("no snapshot"),
                "{zone}: the local date's snapshots are found: {reasons}"
            );
        }
    }

    /// The Scheduler retries a delivery with a new execution id (the event's `id`); the
    /// retry is the same scheduled run and must not decide, record or publish again.
    #[tokio::test]
    async fn a_scheduler_retry_with_a_new_execution_id_is_a_replay_that_records_and_publishes_nothing() {
        let config = Config::default_config().unwrap();
        let store = std::sync::Arc::new(MemoryStore::default());
        let deps = deps(&config, &store);
        let first =
            handle(&deps, event(include_str!("../../../events/evaluate/scheduled.json"))).await.unwrap();
        assert_eq!(first["outcome"], "hold", "{first}");
        // Between the attempts an operator changed the mode: a second evaluation of the
        // day would now decide differently (another decision id), so only the
        // invocation's key can tell that the retry is the same run.
        use revscale_engine::ports::StateStore;
        let stored = store.load_state().await.unwrap().unwrap();
        let mut state = stored.value.clone();
        state.mode = Some(revscale_engine::Mode::Shadow);
        let record =
            revscale_engine::testing::seed_record("operator-mode", "2026-11-29T00:40:00Z".parse().unwrap());
        store.record_decision(&record, &state, Some(stored.version)).await.unwrap();
        let audited = store.audit_len();

        let retry = handle(&deps, event(include_str!("../../../events/evaluate/scheduler-retry.json")))
            .await
            .unwrap();
        assert_eq!(retry["replay"], true, "{retry}");
        assert_eq!(store.audit_len(), audited, "the retry recorded nothing");
        assert!(deps.bus.published.lock().unwrap().is_empty());
    }

    /// Every sample in events/evaluate/ runs through the handler as written: the
    /// schedule's (Asia/Kolkata, 06:00 local is 00:30 UTC) and the backfill naming its day.
    #[tokio::test]
    async fn every_sample_event_runs_through_the_handler_and_decides_for_its_day() {
        let config = Config::default_config().unwrap();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/evaluate");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let store = std::sync::Arc::new(MemoryStore::default());
            let out = handle(&deps(&config, &store), event(&std::fs::read_to_string(&path).unwrap()))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let day = if name == "backfill.json" { "2026-11-20" } else { "2026-11-29" };
            assert!(out["decision_id"].as_str().unwrap().starts_with(day), "{name}: {out}");
            seen.push(name);
        }
        seen.sort();
        assert_eq!(seen, ["backfill.json", "scheduled.json", "scheduler-retry.json"]);
    }

    #[tokio::test]
    async fn an_event_without_time_is_invalid_input() {
        let config = Config::default_config().unwrap();
        let store = std::sync::Arc::new(MemoryStore::default());
        let json =
            r#"{"id": "x", "detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}}"#;
        let err = handle(&deps(&config, &store), event(json)).await.unwrap_err();
        assert_eq!(err.error_type(), "InvalidInput");
    }
}
